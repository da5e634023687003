"""edgeproxy: a local, faithful emulator of CloudFront's request pipeline with Lambda@Edge.

The public API for tests lives in :mod:`edgeproxy.testing` and is re-exported here, typed, so that user tests can
be annotated: ``from edgeproxy import EdgeProxy, EdgeProxyFactory, cloudfront_event, invoke``. The names are
imported when first used (PEP 562), so ``import edgeproxy`` (and the pytest plugin) stays light: aiohttp and the
server load only when something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgeproxy.errors import (
    AlbError,
    ConfigError,
    EdgeProxyError,
    FunctionError,
    LambdaExecutionError,
    LambdaLimitExceeded,
    LambdaValidationError,
    ReplayMissError,
    ViewerError,
)

if TYPE_CHECKING:
    from edgeproxy.exchange import Exchange, Invocation, Observer
    from edgeproxy.record.golden import ReplayReport, replay
    from edgeproxy.testing import EdgeProxy, EdgeProxyFactory, ainvoke, alb_event, cloudfront_event, invoke, start

__version__ = "0.1.0"

_LAZY = {
    "EdgeProxy": "edgeproxy.testing",
    "EdgeProxyFactory": "edgeproxy.testing",
    "ainvoke": "edgeproxy.testing",
    "alb_event": "edgeproxy.testing",
    "cloudfront_event": "edgeproxy.testing",
    "invoke": "edgeproxy.testing",
    "start": "edgeproxy.testing",
    "Exchange": "edgeproxy.exchange",
    "Invocation": "edgeproxy.exchange",
    "Observer": "edgeproxy.exchange",
    "replay": "edgeproxy.record.golden",
    "ReplayReport": "edgeproxy.record.golden",
}

__all__ = [
    "AlbError",
    "ConfigError",
    "EdgeProxy",
    "EdgeProxyError",
    "EdgeProxyFactory",
    "Exchange",
    "FunctionError",
    "Invocation",
    "LambdaExecutionError",
    "LambdaLimitExceeded",
    "LambdaValidationError",
    "Observer",
    "ReplayMissError",
    "ReplayReport",
    "ViewerError",
    "ainvoke",
    "alb_event",
    "cloudfront_event",
    "invoke",
    "replay",
    "start",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgeproxy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
