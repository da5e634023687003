"""Shared fixtures: a real origin on a real socket that records what reaches it, and a proxy factory."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from pytest_aiohttp import AiohttpClient, AiohttpServer
from yarl import URL

from edgeproxy import alb, config, testing
from edgeproxy.config import Association, Distribution, HealthCheck, TargetGroup, Trigger
from edgeproxy.listener import Listener
from edgeproxy.runtime import Runtime
from edgeproxy.server import Options, create_app
from tests.inspector.harness import Inspected, InspectedFactory, start_inspected

Client = TestClient[web.Request, web.Application]


def raw_url(client: Client, path_and_query: str) -> URL:
    """A URL sent exactly as written: no re-quoting of the path or the query string."""
    return URL(str(client.make_url("/")).rstrip("/") + path_and_query, encoded=True)


async def wait_for_checks(client: Client, count: int) -> None:
    """Wait (at most 10 s) until the ALB facade's health checker has completed ``count`` checks."""
    checker = client.app[alb.HEALTH]
    for _ in range(1000):
        if checker.checks >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {checker.checks} health checks ran")


Answer = tuple[int, dict[str, str], bytes]  # status, headers, body


@contextlib.contextmanager
def edgeproxy_process(command: list[str], cwd: Path) -> Iterator[subprocess.Popen[str]]:
    """``edgeproxy COMMAND --port 0`` running as a subprocess (text pipes for its output); killed at the end whatever
    happened (a test stops it with :func:`stop_cleanly` to see it exit cleanly)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "edgeproxy.cli", *command, "--port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            yield process
        finally:
            process.kill()


def stop_cleanly(process: subprocess.Popen[str], timeout: float = 10) -> None:
    """Ctrl-C, and the process must exit 0."""
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=timeout) == 0


def serve_and_get(command: list[str], cwd: Path, *paths: str) -> tuple[list[Answer], str]:
    """Run ``edgeproxy <command>`` as a subprocess on a free port, GET each path, stop it with Ctrl-C (it must exit
    0): the answers, and everything it wrote to stderr."""
    with edgeproxy_process(command, cwd) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        line = process.stdout.readline().strip()
        assert line.startswith("edgeproxy listening on http://127.0.0.1:"), process.stderr.read()
        answers = []
        for path in paths:
            try:
                with urllib.request.urlopen(line.rsplit(" ", 1)[1] + path, timeout=10) as response:
                    answers.append((response.status, dict(response.headers), response.read()))
            except urllib.error.HTTPError as error:  # an error page is an answer too
                answers.append((error.code, dict(error.headers), error.read()))
                error.close()
        stop_cleanly(process)
        return answers, process.stderr.read()


# Node.js tests skip without a node only outside CI; under CI (CI=true, where .ci/run installs it) they fail instead.
needs_node = pytest.mark.skipif(
    shutil.which("node") is None and not os.environ.get("CI"), reason="Node.js is not installed"
)

BINARY = bytes(range(256)) * 64
GZIPPED = gzip.compress(b"compressed hello " * 100)


@dataclass
class Seen:
    """One request as the origin received it."""

    method: str
    raw_path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


@dataclass
class Origin:
    """A running origin: its URL and every request it received."""

    url: str
    seen: list[Seen] = field(default_factory=list)

    @property
    def last(self) -> Seen:
        return self.seen[-1]


def origin_app(seen: list[Seen]) -> web.Application:
    async def record(request: web.Request) -> None:
        seen.append(
            Seen(
                method=request.method,
                raw_path=request.raw_path,
                headers=[(key.decode(), value.decode()) for key, value in request.raw_headers],
                body=await request.read(),
            )
        )

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response(
            {"method": request.method, "path": request.raw_path, "body": seen[-1].body.decode("latin-1")}
        )

    async def binary(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=BINARY, content_type="application/octet-stream")

    async def cookies(request: web.Request) -> web.Response:
        await record(request)
        response = web.Response(text="cookies", reason="Cookies Set")
        response.headers.add("Set-Cookie", "a=1; Path=/")
        response.headers.add("Set-Cookie", "b=2; Path=/; HttpOnly")
        response.headers.add("X-Repeated", "one")
        response.headers.add("X-Repeated", "two")
        return response

    async def compressed(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=GZIPPED, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    async def status(request: web.Request) -> web.Response:
        await record(request)
        code = int(request.match_info["code"])
        return web.Response(status=code, text=f"status {code}", reason="Custom Reason")

    async def with_headers(request: web.Request) -> web.Response:
        """Answers with the response headers named in the query string (``/headers?Via=1.1%20x``)."""
        await record(request)
        return web.Response(text="headers", headers=dict(request.query))

    async def chunked(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"one,", b"two,", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    # Long request lines and headers accepted, so that size limits are the proxy's to enforce (§5.3); bodies
    # recorded as they arrived (not decompressed).
    app = web.Application(
        client_max_size=16 * 1024 * 1024,
        handler_args={"max_line_size": 32768, "max_field_size": 32768, "max_headers": 8192, "auto_decompress": False},
    )
    app.router.add_route("*", "/bytes", binary)
    app.router.add_route("*", "/cookies", cookies)
    app.router.add_route("*", "/gzip", compressed)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_route("*", "/chunked", chunked)
    app.router.add_route("*", "/headers", with_headers)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def origin(aiohttp_server: AiohttpServer) -> Origin:
    seen: list[Seen] = []
    server: TestServer = await aiohttp_server(origin_app(seen))
    return Origin(url=str(server.make_url("")).rstrip("/"), seen=seen)


@pytest.fixture
async def second_origin(aiohttp_server: AiohttpServer) -> Origin:
    """Another recording origin, for handlers that switch origins."""
    seen: list[Seen] = []
    server: TestServer = await aiohttp_server(origin_app(seen))
    return Origin(url=str(server.make_url("")).rstrip("/"), seen=seen)


HandlerWriter = Callable[[str, str], str]


@pytest.fixture
def write_handler(tmp_path: Path) -> HandlerWriter:
    """Write handler source to ``tmp_path/<name>.py`` and return its ``file.py:handler`` reference."""

    def write(name: str, source: str) -> str:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        return f"{path}:handler"

    return write


SNIPPET = """
import base64, json

def handler(event, context):
    cf = event["Records"][0]["cf"]
    request = cf["request"]
    response = cf.get("response")
    target = response if response is not None else request
{code}
    return target
"""
SnippetWriter = Callable[..., str]


@pytest.fixture
def snippet(write_handler: HandlerWriter) -> SnippetWriter:
    """A handler made of a few statements run on the event. They see ``event``, ``cf``, ``request``, ``response``
    (None in request triggers) and ``target`` (the response in response triggers, else the request), which is
    returned unless the statements return something else first."""

    def write(code: str, name: str = "snippet") -> str:
        return write_handler(name, SNIPPET.format(code=textwrap.indent(textwrap.dedent(code).strip(), "    ")))

    return write


def assert_cloudfront_error(
    response: ClientResponse, caplog: pytest.LogCaptureFixture, status: int, x_cache: str, *reason: str
) -> None:
    """The viewer got CloudFront's error (status, ``X-Cache``, ``Server``), and both the debug header and the
    warning logged by the proxy contain every part of ``reason`` (handler, trigger, header or field...)."""
    assert (response.status, response.headers["X-Cache"]) == (status, f"{x_cache} from cloudfront")
    assert response.headers["Server"] == "CloudFront"
    debug = response.headers["X-Edgeproxy-Error"]
    assert all(part in debug for part in reason), (reason, debug)
    logged = [r.getMessage() for r in caplog.records if r.name == "edgeproxy" and r.levelno == logging.WARNING]
    assert any(all(part in message for part in reason) for message in logged), (reason, logged)


PASS_THROUGH = """
def handler(event, context):
    cf = event["Records"][0]["cf"]
    return cf["response"] if "response" in cf else cf["request"]
"""

RECORD_EVENTS = """
import json, pathlib
LOG = pathlib.Path(__file__).with_suffix(".jsonl")

def handler(event, context):
    with LOG.open("a") as f:
        f.write(json.dumps(event) + "\\n")
    cf = event["Records"][0]["cf"]
    return cf["response"] if "response" in cf else cf["request"]
"""


def recorded_events(ref: str) -> list[dict[str, object]]:
    path = Path(ref.rsplit(":", 1)[0]).with_suffix(".jsonl")
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


ProxyFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def proxy(aiohttp_client: AiohttpClient) -> ProxyFactory:
    """Start a proxy on a real socket for a distribution, or for ``origin=`` + ``functions=`` like the CLI flags."""

    async def start(
        distribution: Distribution | None = None,
        *,
        origin: str | None = None,
        functions: Mapping[Trigger, str] | None = None,
        include_body: bool = False,
        options: Options | None = None,
    ) -> TestClient[web.Request, web.Application]:
        if distribution is None:
            assert origin is not None
            distribution = config.from_flags(origin, dict(functions or {}), include_body=include_body)
        return await aiohttp_client(create_app(distribution, options or Options(debug_headers=True)))

    return start


@pytest.fixture
def alb_proxy(aiohttp_client: AiohttpClient) -> ProxyFactory:
    """Start the ALB facade on a real socket in front of one handler (``file.py:function``), in single-value mode or,
    with ``multi_value=True``, multi-value mode. ``seconds`` is the function's timeout; ``health_check`` may use
    intervals below ALB's 5 s minimum."""

    async def start(
        target: str,
        *,
        multi_value: bool = False,
        seconds: float | None = None,
        health_check: HealthCheck | None = None,
        reload: bool = False,
    ) -> TestClient[web.Request, web.Application]:
        group = TargetGroup(
            target=Association(handler=target, base_dir=Path.cwd(), source="test", key="alb.target", timeout=seconds),
            multi_value_headers=multi_value,
            health_check=health_check or HealthCheck(),
        )
        return await aiohttp_client(alb.create_app(group, reload=reload))

    return start


def association(tmp_path: Path, ref: str) -> Association:
    """An association of the handler ``ref``, relative to ``tmp_path``, as a config would make it."""
    return Association(handler=ref, base_dir=tmp_path, source="test", key="k")


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A runtime on the thread executor (``isolation="thread"``, whatever the associations say), closed after the
    test."""
    runtime = Runtime(max_threads=8, isolation="thread")
    yield runtime
    runtime.close()


@pytest.fixture
async def inspected() -> AsyncIterator[InspectedFactory]:
    """``await inspected(ring_size=..., **start_arguments)``: a proxy from :func:`edgeproxy.testing.start`, and its
    inspector served on a second port."""
    running: list[tuple[testing.EdgeProxy, Listener]] = []

    async def start(ring_size: int = 100, **arguments: Any) -> Inspected:
        return await start_inspected(running, ring_size, **arguments)

    yield start
    for proxy, listener in running:
        await listener.close()
        await proxy.close()


@dataclass
class Answer_:
    """What the scripted origin answers for a path: status, headers (in order, repeats kept) and body."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b"body"


@dataclass
class ScriptedOrigin:
    """A real origin whose answers a test sets per path (:meth:`answer`), recording every request it receives. A
    request whose ``If-None-Match`` names the answer's ``ETag`` gets a 304 (unless ``revalidation`` is set to
    another answer for that path)."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    answers: dict[str, Answer_] = field(default_factory=dict)

    def answer(
        self, path: str, status: int = 200, headers: Iterable[tuple[str, str]] = (), body: bytes = b"body"
    ) -> None:
        self.answers[path] = Answer_(status, list(headers), body)

    def paths(self) -> list[str]:
        return [seen.raw_path for seen in self.seen]

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.seen.append(
                Seen(
                    method=request.method,
                    raw_path=request.raw_path,
                    headers=[(key.decode(), value.decode()) for key, value in request.raw_headers],
                    body=await request.read(),
                )
            )
            answer = self.answers.get(request.path, Answer_(404, [], b"not scripted"))
            etag = dict((name.lower(), value) for name, value in answer.headers).get("etag")
            if etag is not None and request.headers.get("If-None-Match") == etag and answer.status == 200:
                response = web.Response(status=304)
                for name, value in answer.headers:
                    if name.lower() not in ("content-type", "content-length"):
                        response.headers.add(name, value)
                return response
            response = web.Response(status=answer.status, body=answer.body)
            for name, value in answer.headers:
                if name.lower() == "content-type":
                    response.content_type = value
                else:
                    response.headers.add(name, value)
            return response

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


@pytest.fixture
async def scripted(aiohttp_server: AiohttpServer) -> ScriptedOrigin:
    origin = ScriptedOrigin()
    server: TestServer = await aiohttp_server(origin.app())
    origin.url = str(server.make_url("")).rstrip("/")
    return origin


class Clock:
    """A monotonic clock a test advances by hand (the edge cache's: ``Options(clock=clock)``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def distribution_from(tmp_path: Path, toml: str) -> Distribution:
    """The distribution an ``edgeproxy.toml`` describes (written to ``tmp_path``)."""
    path = tmp_path / "edgeproxy.toml"
    path.write_text(toml)
    return config.load(path)
