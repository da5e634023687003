"""pytest fixtures for edgeproxy, registered through the ``pytest11`` entry point (installing edgeproxy is enough).

``edgeproxy`` is a factory: ``proxy = await edgeproxy(origin=..., viewer_request=...)`` starts a local CloudFront
in the test's event loop (the arguments are :func:`edgeproxy.testing.start`'s) and returns an
:class:`edgeproxy.testing.EdgeProxy`. Every proxy it started is closed after the test. When a test fails, the
report gains an "edgeproxy" section listing each handler error with the handler's own traceback.

The fixture is async, so it needs pytest-asyncio (which pytest-aiohttp brings); it works in its ``auto`` and
``strict`` modes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any

import pytest

from edgeproxy.errors import LambdaExecutionError, ViewerError

if TYPE_CHECKING:  # imported when a test uses the fixture: the plugin loads in every pytest run
    from edgeproxy.testing import EdgeProxy, EdgeProxyFactory

_STARTED = pytest.StashKey[list["EdgeProxy"]]()


async def _edgeproxy(request: pytest.FixtureRequest) -> AsyncIterator[EdgeProxyFactory]:
    """Start edgeproxy around your handlers: ``await edgeproxy(origin=URL_or_app, viewer_request=REF, ...)`` or
    ``await edgeproxy(config_file="edgeproxy.toml")``. Returns an :class:`~edgeproxy.testing.EdgeProxy` (``url``,
    ``client``, ``invocations``, ``invocations_for(response)``); every proxy started is closed after the test."""
    from edgeproxy.testing import start

    started = request.node.stash.setdefault(_STARTED, [])

    async def factory(**kwargs: Any) -> EdgeProxy:
        proxy = await start(**kwargs)
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        await proxy.close()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - only where pytest-asyncio is missing

    @pytest.fixture(name="edgeproxy")
    def _needs_pytest_asyncio() -> None:
        pytest.fail("edgeproxy's fixtures are async and need pytest-asyncio: pip install pytest-asyncio")

else:
    edgeproxy = pytest_asyncio.fixture(_edgeproxy, name="edgeproxy")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    proxies = item.stash.get(_STARTED, [])
    if report.failed and call.when == "call" and proxies:
        lines = []
        for proxy in proxies:
            for invocation in proxy.errors:
                error = invocation.error
                assert error is not None
                name = error.x_cache if isinstance(error, ViewerError) else error.error_reason or "-"
                lines.append(f"{invocation.trigger} {invocation.handler}: {error.status} {name}")
                lines.append(f"  {error.reason}")
                if isinstance(error, LambdaExecutionError) and error.handler_traceback:
                    lines.extend(f"  {line}" for line in error.handler_traceback.splitlines())
        if lines:
            report.sections.append(("edgeproxy handler errors", "\n".join(lines)))
    return report
