"""edgeproxy: a local, faithful emulator of CloudFront's request pipeline with Lambda@Edge.

The public API for tests lives in :mod:`edgeproxy.testing` and is re-exported here, typed, so that user tests can
be annotated: ``from edgeproxy import EdgeProxy, EdgeProxyFactory, cloudfront_event, invoke``.
"""

from edgeproxy.errors import (
    ConfigError,
    EdgeProxyError,
    LambdaExecutionError,
    LambdaValidationError,
    ViewerError,
)
from edgeproxy.pipeline import Invocation
from edgeproxy.testing import EdgeProxy, EdgeProxyFactory, ainvoke, cloudfront_event, invoke, start

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "EdgeProxy",
    "EdgeProxyError",
    "EdgeProxyFactory",
    "Invocation",
    "LambdaExecutionError",
    "LambdaValidationError",
    "ViewerError",
    "ainvoke",
    "cloudfront_event",
    "invoke",
    "start",
]
