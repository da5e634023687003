"""inspector/views.py: what the page shows of an exchange, from exchanges made by a real proxy."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from edgeproxy import testing
from edgeproxy.exchange import Exchange, Observer
from edgeproxy.inspector import views

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
        ("f.py:h at viewer-response: response.headers: added disallowed header 'x-cache'", "headers"),
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


async def test_curl_sends_the_same_request_to_the_proxy(tmp_path: Path) -> None:
    exchange = await exchange_of(
        tmp_path, "/page?a=1&a=2", method="POST", data=b"x=1", headers={"X-Twice": "1", "Host": "www.example.com"}
    )
    words = shlex.split(views.curl(exchange))
    local = exchange.viewer.local_address
    assert local is not None
    assert words[:4] == ["curl", "-i", "-X", "POST"]
    assert words[-1] == f"http://{local[0]}:{local[1]}/page?a=1&a=2"
    assert words[words.index("Host: www.example.com") - 1 :][:2] == ["-H", "Host: www.example.com"]
    assert "X-Twice: 1" in words
    assert words[words.index("--data-binary") + 1] == "x=1"
    assert not any(word.lower().startswith("content-length") for word in words)


async def test_detail_is_the_har_entry_unredacted_with_the_page_s_additions(tmp_path: Path) -> None:
    exchange = await exchange_of(tmp_path, "/page", headers={"Authorization": "Bearer secret"})
    detail = views.detail(exchange)
    assert detail["summary"]["status"] == 200
    assert {"name": "Authorization", "value": "Bearer secret"} in detail["har"]["request"]["headers"]
    assert detail["har"]["response"]["content"]["text"] == "hello"
    assert [item["trigger"] for item in detail["invocations"]] == ["viewer-request", "origin-response"]
    assert detail["bodies_cut"] == []
