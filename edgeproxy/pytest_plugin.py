"""pytest fixtures for edgeproxy, registered through the ``pytest11`` entry point (installing edgeproxy is enough).

``edgeproxy`` is a factory: ``proxy = await edgeproxy(origin=..., viewer_request=...)`` starts a local CloudFront
in the test's event loop (the arguments are :func:`edgeproxy.testing.start`'s) and returns an
:class:`edgeproxy.testing.EdgeProxy`. Every proxy it started is closed after the test. When a test fails, the
report gains an "edgeproxy" section listing each handler error with the handler's own traceback.

The fixture is async, so it needs pytest-asyncio (which pytest-aiohttp brings); it works in its ``auto`` and
``strict`` modes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Generator
from pathlib import Path
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
    forced_mode = request.config.getoption("edgeproxy_record_mode")

    async def factory(**kwargs: Any) -> EdgeProxy:
        if kwargs.get("recording") is True:
            kwargs["recording"] = recording_path(request)
        if kwargs.get("recording") is not None and forced_mode is not None:
            kwargs["record_mode"] = forced_mode
        proxy = await start(**kwargs)
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        await proxy.close()


_UNSAFE_IN_FILE_NAMES = re.compile(r"[<>?%*:|\"'/\\\s]")


def recording_path(request: pytest.FixtureRequest) -> Path:
    """``recordings/<test module>/<test name>.har`` next to the test file (``recording=True``), the test name as
    pytest-recording writes it (a parametrized test's id kept, characters unsafe in file names as ``-``)."""
    path = Path(str(request.node.path))
    name = _UNSAFE_IN_FILE_NAMES.sub("-", request.node.name)
    if request.cls is not None:
        name = f"{request.cls.__name__}.{name}"
    return path.parent / "recordings" / path.stem / f"{name}.har"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgeproxy")
    group.addoption(
        "--edgeproxy-record-mode",
        dest="edgeproxy_record_mode",
        choices=("once", "new_episodes", "none", "all"),
        default=None,
        help="record mode of every edgeproxy recording in this run, whatever the tests give (as vcrpy's "
        "--record-mode): once, new_episodes, none or all",
    )


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - only where pytest-asyncio is missing

    @pytest.fixture(name="edgeproxy")
    def _needs_pytest_asyncio() -> None:
        pytest.fail("edgeproxy's fixtures are async and need pytest-asyncio: pip install pytest-asyncio")

else:
    edgeproxy = pytest_asyncio.fixture(_edgeproxy, name="edgeproxy")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test whose proxy was asked for an origin request its recording does not hold (record mode ``none``) fails,
    naming the request and the nearest recorded one, even if the test itself did not look at the 502."""
    yield
    misses = [miss for proxy in item.stash.get(_STARTED, []) for miss in proxy.replay_misses]
    if misses:
        lines = [f"{len(misses)} origin request(s) not in the recording:", *(f"  {miss.reason}" for miss in misses)]
        pytest.fail("\n".join(lines), pytrace=False)


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
        misses = [f"{miss.request}: {miss.reason}" for proxy in proxies for miss in proxy.replay_misses]
        if misses:
            report.sections.append(("edgeproxy replay misses", "\n".join(misses)))
    return report
