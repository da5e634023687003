"""listener.py: the viewer-facing socket's deadlines and its one-line logs, over raw sockets, in both modes; the
Listener that serves an application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from edgeproxy import EdgeProxy, EdgeProxyFactory, alb, config, serving
from edgeproxy.config import Association, TargetGroup
from edgeproxy.listener import Listener, Timeouts, ViewerSite
from edgeproxy.server import create_app
from tests.conftest import Origin

PASS = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n"


def _pass_through(event: dict[str, Any], context: object) -> Any:
    cf = event["Records"][0]["cf"]
    return cf.get("response", cf["request"])


def _alb_ok(event: dict[str, Any], context: object) -> Any:
    return {"statusCode": 200, "body": "ok"}


async def _proxy(mode: str, edgeproxy: EdgeProxyFactory, origin: Origin, **timeouts: float) -> EdgeProxy:
    if mode == "alb":
        return await edgeproxy(alb_target=_alb_ok, **timeouts)
    return await edgeproxy(origin=origin.url, viewer_request=_pass_through, **timeouts)


async def _connect(proxy: EdgeProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert proxy.url.port is not None
    return await asyncio.open_connection("127.0.0.1", proxy.url.port)


async def _response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The status line and the headers of one response (and its body, read by Content-Length)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, _, headers = head.partition(b"\r\n")
    lines = headers.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return status_line, headers


async def _closed_without_a_response(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), 10) == b""
    except ConnectionError:  # reset, or our own write to the closed connection failed
        return True


MODES = pytest.mark.parametrize("mode", ["cloudfront", "alb"])


# -- the header deadline (slowloris) and the idle keep-alive timeout -----------------------------------------------


@MODES
@pytest.mark.parametrize("in_time", [False, True])
async def test_a_request_head_must_arrive_whole_within_the_header_timeout(
    mode: str, in_time: bool, origin: Origin, edgeproxy: EdgeProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await _proxy(mode, edgeproxy, origin, header_timeout=0.6, idle_timeout=30)
    reader, writer = await _connect(proxy)
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n\r\n"
    pause = 0.05 if in_time else 0.3  # a byte every pause: 0.2 s in all, or well past the 0.6 s deadline
    parts = [head[:4], head[4:16], head[16:30], head[30:]]
    if mode == "alb" and not in_time:  # it stalls (and writes nothing more, to read the answer)
        parts = parts[:2]
    try:
        with contextlib.suppress(ConnectionError):  # in the slow case, the proxy closes before the last parts
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(pause)
        if in_time:
            status_line, _ = await _response(reader)
            assert status_line.startswith(b"HTTP/1.1 200")
        elif mode == "alb":  # "HTTP 408: The client did not send data before the idle timeout period expired"
            answer = await asyncio.wait_for(reader.read(), 10)
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\nServer: awselb/2.0\r\n"), answer
            assert b"Connection: close\r\n" in answer
            assert answer.endswith(b"<center><h1>408 Request Timeout</h1></center>\r\n</body>\r\n</html>\r\n")
            assert "request head not received whole within 0.6 s; answered 408, connection closed" in caplog.text
        else:  # CloudFront documents no answer: the connection is closed
            assert await _closed_without_a_response(reader)
            assert "request head not received whole within 0.6 s; connection closed" in caplog.text
    finally:
        writer.close()


@MODES
@pytest.mark.parametrize("idle", [True, False])
async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    mode: str, idle: bool, origin: Origin, edgeproxy: EdgeProxyFactory
) -> None:
    proxy = await _proxy(mode, edgeproxy, origin, header_timeout=30, idle_timeout=0.4)
    reader, writer = await _connect(proxy)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await _response(reader))[0].startswith(b"HTTP/1.1 200")
        if idle:
            assert await _closed_without_a_response(reader)
        else:  # the next request, well within the idle timeout, on the same connection
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await _response(reader))[0].startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


# -- a request body that stops coming ---------------------------------------------------------------------------


def _echo_length(event: dict[str, Any], context: object) -> Any:
    if "requestContext" in event:  # ALB
        return {"statusCode": 200, "body": str(len(event["body"]))}
    return event["Records"][0]["cf"]["request"]


@MODES
@pytest.mark.parametrize("stalls", [True, False])
async def test_a_request_body_that_stops_coming_for_the_idle_timeout_gets_a_408(
    mode: str,
    stalls: bool,
    origin: Origin,
    edgeproxy: EdgeProxyFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The load balancer: "HTTP 408: The client did not send data before the idle timeout period expired." A body that
    # keeps coming, however slowly, is waited for.
    if mode == "alb":
        proxy = await edgeproxy(alb_target=_echo_length, idle_timeout=0.8)
    else:
        config_file = tmp_path / "edgeproxy.toml"
        config_file.write_text(
            f'[origins.app]\nurl = "{origin.url}"\n[default_behavior]\norigin = "app"\n'
            'allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]\n'
        )
        proxy = await edgeproxy(config_file=config_file, idle_timeout=0.8)
    reader, writer = await _connect(proxy)
    try:
        # A whole request first, on the same keep-alive connection: the next body is watched all the same.
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
        await asyncio.sleep(0.1)  # its body after its head: watched, then whole
        writer.write(b"ok")
        assert (await _response(reader))[0].startswith(b"HTTP/1.1 200")
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab")
        for part in (b"cd", b"ef"):
            await asyncio.sleep(0.5)  # slower than the whole idle timeout in all, but never quiet that long
            if not stalls:
                writer.write(part)
        with caplog.at_level(logging.WARNING, logger="edgeproxy"):
            status_line, headers = await _response(reader)
        if stalls:
            assert status_line == b"HTTP/1.1 408 Request Timeout"
            assert b"Connection: close" in headers
            assert await _closed_without_a_response(reader)
            assert any("no byte of its request body for 1 s" in message for message in caplog.messages)
            assert not any(record.exc_info for record in caplog.records)
        else:
            assert status_line.startswith(b"HTTP/1.1 200")
            if mode == "cloudfront":
                assert origin.last.body == b"abcdef"
    finally:
        writer.close()


# -- requests the HTTP parser rejects: the mode's own 400 page and one log line --------------------------------------


@MODES
@pytest.mark.parametrize(
    ("request_bytes", "bad"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", True),  # a control character in a header
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", True),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", True),  # TLS on the plain port
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n", False),
    ],
)
async def test_a_request_the_parser_rejects_gets_the_modes_400_and_one_log_line(
    mode: str,
    request_bytes: bytes,
    bad: bool,
    origin: Origin,
    edgeproxy: EdgeProxyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = await _proxy(mode, edgeproxy, origin)
    reader, writer = await _connect(proxy)
    try:
        writer.write(request_bytes)
        status_line, headers = await _response(reader)
    finally:
        writer.close()
    lines = [record for record in caplog.records if record.name.startswith(("edgeproxy", "aiohttp"))]
    assert all(record.exc_info is None for record in lines)  # no traceback
    assert not [record for record in lines if record.levelno >= logging.ERROR]
    if not bad:
        assert status_line.startswith(b"HTTP/1.1 200")
        return
    assert status_line.split()[1] == b"400"
    assert (b"Server: CloudFront" if mode == "cloudfront" else b"Server: awselb/2.0") in headers
    rejected = [record for record in lines if "the HTTP parser rejected the request" in record.getMessage()]
    assert len(rejected) == 1
    assert rejected[0].getMessage().startswith("- 127.0.0.1 -> 400 Error: ")


# -- a viewer that goes away mid-response is nobody's error -----------------------------------------------------------


@pytest.mark.parametrize("reads_it_all", [False, True])
async def test_a_viewer_that_disconnects_mid_response_logs_nothing(
    reads_it_all: bool, edgeproxy: EdgeProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for _ in range(64):
                await response.write(b"x" * 65536)
            await response.write_eof()
        except ConnectionError:  # the proxy gave up on this origin request: the origin's business, not logged
            pass
        return response

    origin = web.Application()
    origin.router.add_get("/big", big)
    proxy = await edgeproxy(origin=origin, viewer_request=_pass_through)
    reader, writer = await _connect(proxy)
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    received = await reader.read() if reads_it_all else await reader.readexactly(200_000)
    writer.close()
    await asyncio.sleep(0.3)  # let the proxy notice
    if reads_it_all:
        assert received.endswith(b"x\r\n0\r\n\r\n")  # the whole chunked body
    logged = [record for record in caplog.records if record.name.startswith("edgeproxy") and record.levelno >= 30]
    assert logged == []
    assert not [record for record in caplog.records if record.exc_info is not None]


# -- at the file-descriptor limit: one warning line, not a flood of tracebacks --------------------------------------


def _limit_open_files(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_at_the_fd_limit_accepting_pauses_with_one_warning_line_then_resumes(loop: str, tmp_path: Path) -> None:
    """asyncio's event loop stops accepting for a moment (logged once, here); uvloop's (libuv) accepts and closes
    what it cannot hold, silently: either way no traceback, and the proxy serves again once fds are free."""
    if loop == "uvloop" and os.environ.get("CI") != "true":
        pytest.importorskip("uvloop")
    (tmp_path / "app.py").write_text(PASS)
    command = [sys.executable, "-m", "edgeproxy.cli", "alb", "--target", "app.handler", "--port", "0"]
    command += ["--header-timeout", "1.5", "--quiet", "--loop", loop]
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: _limit_open_files(48),
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            port = int(process.stdout.readline().strip().rsplit(":", 1)[1])
            half_sent = []
            for _ in range(80):  # more than the proxy can hold open: each sends half a request head
                connection = socket.create_connection(("127.0.0.1", port))
                connection.sendall(b"GET / HTTP/1.1\r\n")
                half_sent.append(connection)
            time.sleep(1.0)  # the proxy hits its limit and keeps hitting it
            served = _get(port, attempts=100)  # once the header deadline frees the half-sent ones
            for connection in half_sent:
                connection.close()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
            stderr = process.stderr.read()
        finally:
            process.kill()
    assert served.startswith(b"HTTP/1.1 200")
    assert "Traceback" not in stderr
    if loop == "asyncio":
        assert stderr.count("cannot accept connections: [Errno 24] Too many open files") == 1


def _get(port: int, attempts: int) -> bytes:
    for _ in range(attempts):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
                connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                received = connection.recv(65536)
                if received:
                    return received
        except OSError:
            pass
        time.sleep(0.1)
    return b""


# -- each mode's default timeouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "given", "expected"),
    [
        ("cloudfront", {}, Timeouts(header=60, idle=75)),
        ("alb", {}, Timeouts(header=60, idle=60)),  # the load balancer's idle timeout
        ("alb", {"header_timeout": 5, "idle_timeout": 7}, Timeouts(header=5, idle=7)),
    ],
)
async def test_default_timeouts_are_the_modes_own(
    mode: str, given: dict[str, float], expected: Timeouts, origin: Origin
) -> None:
    if mode == "alb":
        association = Association(_alb_ok, Path.cwd(), "test", "alb.target")
        app = alb.create_app(TargetGroup(target=association))
    else:
        app = create_app(config.from_flags(origin.url, {}))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = ViewerSite(
            runner, "127.0.0.1", 0, header_timeout=given.get("header_timeout"), idle_timeout=given.get("idle_timeout")
        )
        assert site.timeouts == expected
    finally:
        await runner.cleanup()


async def test_the_listener_serves_on_a_free_port_keeps_connections_alive_and_closes() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"{serving.request_target(request)}")

    listener = await Listener.start(serving.application(hello, max_line_size=8190, max_headers=128))
    try:
        assert listener.url.port not in (None, 0)
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.get(URL(f"{listener.url}/a%2Fb?q=1", encoded=True)) as response:
                    assert await response.text() == "('/a%2Fb', 'q=1')"
            connector = session.connector
            assert connector is not None
            assert len(connector._conns) == 1  # one kept-alive connection, reused
    finally:
        await listener.close()
    with pytest.raises(aiohttp.ClientConnectorError):
        async with aiohttp.ClientSession() as session:
            await session.get(listener.url)
