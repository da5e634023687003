"""inspector/views.py: what the page shows of an exchange, from exchanges made by a real proxy."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edgeproxy import testing
from edgeproxy.exchange import Exchange, Observer
from edgeproxy.inspector import views
from edgeproxy.listener import Listener

ADD_HEADER = """
def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-added"] = [{"key": "X-Added", "value": "yes"}]
    response["headers"]["content-type"] = [{"key": "Content-Type", "value": "text/plain"}]
    del response["headers"]["server"]
    return response
"""
REWRITE = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] == "/generate":
        return {"status": "302", "headers": {"location": [{"key": "Location", "value": "/elsewhere"}]}}
    if request["uri"] == "/broken":
        return {"status": "200", "headers": {"x-bad": [{"key": "X-Bad", "value": "a\\r\\nb"}]}}
    request["uri"] = "/index.html"
    request["querystring"] = "v=2"
    return request
"""


class Collect(Observer):
    wants_bodies = True

    def __init__(self) -> None:
        self.done: list[Exchange] = []

    def exchange_done(self, exchange: Exchange) -> None:
        self.done.append(exchange)


async def exchange_of(tmp_path: Path, path: str, *, method: str = "GET", **request: Any) -> Exchange:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("hello")
    (tmp_path / "add_header.py").write_text(ADD_HEADER)
    (tmp_path / "rewrite.py").write_text(REWRITE)
    proxy = await testing.start(
        origin=str(site),
        viewer_request=f"{tmp_path / 'rewrite.py'}:handler",
        origin_response=f"{tmp_path / 'add_header.py'}:handler",
    )
    collect = Collect()
    proxy.observe(collect)
    try:
        async with proxy.client.request(method, path, allow_redirects=False, **request) as response:
            await response.read()
    finally:
        await proxy.close()
    [exchange] = collect.done
    return exchange


async def test_changes_name_the_header_entries_and_fields_a_handler_changed(tmp_path: Path) -> None:
    exchange = await exchange_of(tmp_path, "/page?v=1")
    viewer_request, origin_response = (views.invocation_view(i, exchange.started) for i in exchange.invocations)
    assert {(change["path"], change["kind"]) for change in viewer_request["changes"]} == {
        ("querystring", "changed"),
        ("uri", "changed"),
    }
    uri = next(change for change in viewer_request["changes"] if change["path"] == "uri")
    assert (uri["before"], uri["after"]) == ("/page", "/index.html")
    found = {change["path"]: change for change in origin_response["changes"]}
    assert found["headers['x-added']"] == {
        "path": "headers['x-added']",
        "kind": "added",
        "header": "x-added",
        "after": ["yes"],
    }
    assert found["headers['server']"]["kind"] == "removed"
    assert found["headers['content-type']"] == {
        "path": "headers['content-type']",
        "kind": "changed",
        "header": "content-type",
        "before": ["text/html"],
        "after": ["text/plain"],
    }
    assert origin_response["part"] == "response"
    assert origin_response["before"]["headers"]["server"] == [{"key": "Server", "value": "AmazonS3"}]


def test_changes_of_nested_fields_and_values_of_another_type() -> None:
    before = {"origin": {"custom": {"domainName": "a.example", "port": 443}}, "status": "200", "body": None}
    after = {"origin": {"custom": {"domainName": "b.example", "port": 443}}, "status": 200, "extra": 1}
    assert views.changes(before, after) == [
        {"path": "body", "kind": "removed", "before": None},
        {"path": "extra", "kind": "added", "after": 1},
        {"path": "origin.custom.domainName", "kind": "changed", "before": "a.example", "after": "b.example"},
        {"path": "status", "kind": "changed", "before": "200", "after": 200},  # a number is not its string
    ]
    assert views.changes(before, before) == []


async def test_a_generated_response_is_not_compared_with_the_request(tmp_path: Path) -> None:
    exchange = await exchange_of(tmp_path, "/generate")
    [view] = [views.invocation_view(i, exchange.started) for i in exchange.invocations]
    assert view["generated"] is True
    assert view["changes"] == []
    assert view["after"]["status"] == "302"
    assert exchange.skipped["origin"] == "viewer-request generated a response"


async def test_a_broken_rule_is_shown_at_its_field(tmp_path: Path) -> None:
    exchange = await exchange_of(tmp_path, "/broken")
    [view] = [views.invocation_view(i, exchange.started) for i in exchange.invocations]
    error = view["error"]
    assert (error["status"], error["name"]) == (502, "LambdaValidationError")
    assert error["field"] == "headers['x-bad'][0].value"
    assert error["field_path"] == "response.headers['x-bad'][0].value"
    assert "contains '\\r' (a control character)" in error["reason"]
    assert views.summary(exchange)["error"] == "LambdaValidationError"


@pytest.mark.parametrize(
    ("reason", "field"),
    [
        ("f.py:h at viewer-request: request.uri must be a string starting with '/', got 'x'", "uri"),
        ("f.py:h at origin-response: response.status must be a string from '200' to '599', got 'x'", "status"),
        ("f.py:h at origin-request: request.origin.custom.port must be 80, 443 or 1024-65535", "origin.custom.port"),
        ("f.py:h at viewer-response: response.headers: added disallowed header 'x-cache'", "headers['x-cache']"),
        ("f.py:h at viewer-request: request.headers: changed read-only header 'host'", "headers['host']"),
        ("f.py:h at origin-request: request.headers: deleted read-only header 'Via'", "headers['via']"),
        ("f.py:h at viewer-request: a response trigger must return a response object with a 'status'", None),
    ],
)
def test_rule_field(reason: str, field: str | None) -> None:
    assert views.rule_field(reason) == field


async def test_waterfall_has_every_stage_in_order_with_why_one_was_skipped(tmp_path: Path) -> None:
    exchange = await exchange_of(tmp_path, "/page")
    rows = views.waterfall(exchange)
    assert [row["stage"] for row in rows] == [
        "viewer-request",
        "origin-request",
        "origin",
        "origin-response",
        "viewer-response",
        "response",
    ]
    by_stage = {row["stage"]: row for row in rows}
    assert by_stage["origin-request"] == {"stage": "origin-request", "skipped": "no function is associated"}
    ran = [row for row in rows if "skipped" not in row]
    assert all(row["ms"] >= 0 and row["start_ms"] >= 0 for row in ran)
    starts = [row["start_ms"] for row in ran]
    assert starts == sorted(starts)  # viewer-request, then the origin, origin-response, the response
    assert by_stage["origin"]["ms"] > 0


CURL = pytest.mark.skipif(
    shutil.which("curl") is None and not os.environ.get("CI"), reason="curl is not installed (.ci/run installs it)"
)


@CURL
@pytest.mark.parametrize(
    ("method", "target", "headers", "body"),
    [
        ("POST", "/page?a=1&a=2", [("X-Twice", "1"), ("X-Twice", "2"), ("Host", "www.example.com")], b"x=1"),
        ("POST", "/at", [], b"@etc/passwd-not-a-file"),  # curl reads a file for @...: not here
        ("PUT", "/bin", [("Content-Type", "application/octet-stream")], bytes(range(256)) * 4),
        ("HEAD", "/head", [("Accept", "text/html")], b""),  # --head: a HEAD waits for no body
        ("GET", "/q?a[]=1&a[]=2&b={x}", [], b""),  # curl's globbing is off
        ("GET", "/a/./b/../c", [("X-Empty", ""), ("X-Quote", "it's $HOME `x`")], b""),  # dot segments, an empty value
    ],
)
async def test_curl_sends_the_same_request_again(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, tmp_path: Path
) -> None:
    # Run it: the origin must get the same request line, header lines (in order, with repeats) and body.
    seen: list[tuple[str, str, list[tuple[bytes, bytes]], bytes]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.method, request.raw_path, list(request.raw_headers), await request.read()))
        return web.Response(body=b"ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    origin = await Listener.start(app)
    proxy = await testing.start(origin=str(origin.url))
    collect = Collect()
    proxy.observe(collect)
    try:
        own_host = "" if any(name == "Host" for name, _ in headers) else f"Host: {proxy.url.host}:{proxy.url.port}\r\n"
        raw = f"{method} {target} HTTP/1.1\r\n{own_host}"
        raw += "".join(f"{name}: {value}\r\n" for name, value in headers)
        raw += f"Content-Length: {len(body)}\r\n" if body else ""
        reader, writer = await asyncio.open_connection(proxy.url.host, proxy.url.port)
        writer.write(raw.encode() + b"Connection: close\r\n\r\n" + body)
        assert (await reader.read()).startswith(b"HTTP/1.1 200 ")
        writer.close()
        await writer.wait_closed()
        [exchange] = collect.done
        command = views.curl(exchange)
        done = await asyncio.create_subprocess_shell(
            command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(done.communicate(), 20)
        assert done.returncode == 0, (command, err)
    finally:
        await proxy.close()
        await origin.close()
    first, again = seen
    assert again[:2] == first[:2], command
    assert again[3] == first[3] == body, command

    def lines(raw_headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return [(name, value) for name, value in raw_headers if name.lower() != b"x-amz-cf-id"]

    assert lines(again[2]) == lines(first[2]), command


async def test_detail_is_the_har_entry_unredacted_with_the_page_s_additions(tmp_path: Path) -> None:
    exchange = await exchange_of(tmp_path, "/page", headers={"Authorization": "Bearer secret"})
    detail = views.detail(exchange)
    assert detail["summary"]["status"] == 200
    assert {"name": "Authorization", "value": "Bearer secret"} in detail["har"]["request"]["headers"]
    assert detail["har"]["response"]["content"]["text"] == "hello"
    assert [item["trigger"] for item in detail["invocations"]] == ["viewer-request", "origin-response"]
    assert detail["bodies_cut"] == []


async def test_an_alb_target_crash_shows_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "target.py").write_text("def handler(event, context):\n    raise ValueError('alb target crash')\n")
    proxy = await testing.start(alb_target=f"{tmp_path / 'target.py'}:handler")
    collect = Collect()
    proxy.observe(collect)
    try:
        async with proxy.client.get("/crash") as response:
            assert response.status == 502
    finally:
        await proxy.close()
    [exchange] = collect.done
    [view] = views.detail(exchange)["invocations"]
    assert view["error"]["name"] == "LambdaUnhandled"
    assert "Traceback (most recent call last):" in view["error"]["traceback"]
    assert "ValueError: alb target crash" in view["error"]["traceback"]
