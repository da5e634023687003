"""edgeproxy: a local, faithful emulator of CloudFront's request pipeline with Lambda@Edge.

The public API for tests lives in :mod:`edgeproxy.testing` and is re-exported here, typed, so that user tests can
be annotated: ``from edgeproxy import EdgeProxy, EdgeProxyFactory, cloudfront_event, invoke``.
"""

from edgeproxy.errors import (
    AlbError,
    ConfigError,
    EdgeProxyError,
    LambdaExecutionError,
    LambdaValidationError,
    ViewerError,
)
from edgeproxy.runtime import Invocation
from edgeproxy.testing import EdgeProxy, EdgeProxyFactory, ainvoke, alb_event, cloudfront_event, invoke, start

__version__ = "0.1.0"

__all__ = [
    "AlbError",
    "ConfigError",
    "EdgeProxy",
    "EdgeProxyError",
    "EdgeProxyFactory",
    "Invocation",
    "LambdaExecutionError",
    "LambdaValidationError",
    "ViewerError",
    "ainvoke",
    "alb_event",
    "cloudfront_event",
    "invoke",
    "start",
]
