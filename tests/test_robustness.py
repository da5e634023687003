"""Functional: no bad result, request or origin makes the proxy answer aiohttp's 500, hang, cut a body or flood its
log. Each case comes as a twin: the bad input, and the nearest good one, through a running proxy over real sockets.

The property-based counterpart (thousands of generated results and request heads) is tests/test_fuzz.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from edgeproxy.config import TRIGGERS, Trigger
from tests.conftest import HandlerWriter, Origin, ProxyFactory, SnippetWriter
from tests.test_alb import returning
from tests.test_validation import GENERATED, MISS, Expected, check, run

# -- control characters in header values and reason phrases ---------------------------------------------------------


def _header_set(trigger: Trigger, value: str) -> str:
    if trigger in ("viewer-request", "origin-request"):  # a generated response: a request header would reach the origin
        return f"return {{'status': '200', 'headers': {{'x-a': [{{'value': {value!r}}}]}}}}"
    return f"response['headers']['x-a'] = [{{'value': {value!r}}}]"


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\x0bb", "value contains '\\x0b' (a control character)"),
        ("\x1b[1m", "value contains '\\x1b' (a control character)"),
        ("a\x7f", "value contains '\\x7f' (a control character)"),
        ("a\tb", None),  # the nearest good case: tab is allowed in a field value
    ],
)
async def test_control_character_in_a_header_value_is_502_not_aiohttps_500(
    trigger: Trigger,
    value: str,
    expected: str | None,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(_header_set(trigger, value))
    response = await run(proxy, origin, trigger, ref, "/chunked")  # a streamed origin body at response triggers
    good: Expected = GENERATED if trigger.endswith("request") else MISS
    await check(response, caplog, ref, trigger, good if expected is None else expected)
    if expected is None:
        assert response.headers["X-A"] == "a\tb"
        await response.read()  # the whole body arrives, framed as announced


@pytest.mark.parametrize(("description", "bad"), [("Moved\x01Away", True), ("Moved Away", False)])
async def test_control_character_in_status_description_is_502(
    description: str,
    bad: bool,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(f"response['status'] = '302'\nresponse['statusDescription'] = {description!r}")
    response = await run(proxy, origin, "origin-response", ref, "/chunked")
    if bad:
        await check(response, caplog, ref, "origin-response", "statusDescription contains '\\x01'")
    else:
        assert (response.status, response.reason) == (302, "Moved Away")


@pytest.mark.parametrize("multi_value", [False, True], ids=["single-value", "multi-value"])
@pytest.mark.parametrize(
    ("field", "value", "bad"),
    [("header", "a\x0bb", True), ("header", "a\tb", False), ("statusDescription", "200 O\x1bK", True)]
    + [("statusDescription", "200 Fine", False)],
)
async def test_alb_control_character_in_a_header_or_status_description_is_502(
    multi_value: bool,
    field: str,
    value: str,
    bad: bool,
    alb_proxy: ProxyFactory,
    write_handler: HandlerWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = {"x-a": [value] if multi_value else value} if field == "header" else {}
    result: dict[str, Any] = {"statusCode": 200, "multiValueHeaders" if multi_value else "headers": headers}
    if field == "statusDescription":
        result["statusDescription"] = value
    client = await alb_proxy(returning(write_handler, result), multi_value=multi_value)
    response = await client.get("/p")
    if bad:
        assert (response.status, response.headers["Server"]) == (502, "awselb/2.0")
        assert "GET /p -> 502 LambdaInvalidResponse" in caplog.text
        assert "(a control character)" in caplog.text
    else:
        assert response.status == 200
        assert response.headers.get("X-A", "a\tb") == "a\tb"
        assert response.reason in ("OK", "Fine")
