"""Functional: CloudFront's validation of what handlers return, through a running proxy to a real origin.

One parametrized table per rule family. Each case runs a handler at one trigger that either breaks the rule (the
viewer gets a 502 with ``X-Cache: LambdaValidationError from cloudfront``, and the log and the debug header name
the handler, the trigger and the header or field) or stays just inside it (the request goes through).
Handlers are written as snippets (see ``snippet`` in conftest): ``target`` is the request in request triggers and
the response in response triggers. Rule-by-rule unit tables are in tests/test_rules.py.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse

from edgeproxy import config
from edgeproxy.config import TRIGGERS, Trigger
from edgeproxy.rules import MSG_BLACKLISTED, MSG_BODY, MSG_NOT_OBJECT, MSG_READ_ONLY, MSG_URI, Strictness
from edgeproxy.server import Options
from tests.aws_reference import DISALLOWED_EXAMPLES
from tests.conftest import (
    RECORD_EVENTS,
    HandlerWriter,
    Origin,
    ProxyFactory,
    SnippetWriter,
    assert_cloudfront_error,
    recorded_events,
)

KB = 1024
MB = 1024 * KB
# What a case expects: (status, X-Cache word) when the result is accepted, or the detail of the broken rule (502).
Expected = tuple[int, str] | str
MISS = (200, "Miss")
GENERATED = (200, "LambdaGeneratedResponse")
LENIENT = Options(strictness=Strictness(lenient=True), debug_headers=True)


def cases(*rows: tuple[Any, ...], triggers: tuple[Trigger, ...] = TRIGGERS) -> list[Any]:
    """(trigger, *row) for every trigger, with readable ids."""
    return [pytest.param(trigger, *row, id=f"{trigger}-{row[0][:40]}") for trigger in triggers for row in rows]


async def run(
    proxy: ProxyFactory,
    origin: Origin,
    trigger: Trigger,
    ref: str,
    path: str = "/x",
    *,
    options: Options | None = None,
    **request: Any,
) -> ClientResponse:
    client = await proxy(origin=origin.url, functions={trigger: ref}, options=options)
    method = request.pop("method", "GET")
    return await client.request(method, path, allow_redirects=False, **request)


async def check(
    response: ClientResponse, caplog: pytest.LogCaptureFixture, ref: str, trigger: Trigger, expected: Expected
) -> None:
    if isinstance(expected, str):
        assert_cloudfront_error(response, caplog, 502, "LambdaValidationError", f"{ref} at {trigger}: ", expected)
        assert "<H1>502 ERROR</H1>" in await response.text()
    else:
        assert (response.status, response.headers["X-Cache"]) == (expected[0], f"{expected[1]} from cloudfront"), (
            response.headers.get("X-Edgeproxy-Error")
        )


# -- shape: what a trigger may return -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "code", "expected"),
    [
        *cases(
            ("return None", "the handler returned None, not an object"),
            ("return 'ok'", "the handler returned str, not an object"),
            ("return 42", "the handler returned int, not an object"),
            ("return [target]", "the handler returned list, not an object"),
            ("return event", "the handler returned the whole event"),
        ),
        *cases(("return cf", "the returned request has no 'uri'"), triggers=("viewer-request", "origin-request")),
        *cases(
            ("return cf", "a response trigger must return a response object with a 'status'"),
            ("return request", "a response trigger must return a response object with a 'status'"),
            ("return response", MISS),
            triggers=("origin-response", "viewer-response"),
        ),
        *cases(
            ("return request", MISS),
            ("return {'status': '200', 'body': 'made here'}", GENERATED),
            triggers=("viewer-request", "origin-request"),
        ),
    ],
)
async def test_result_shape(
    trigger: Trigger,
    code: str,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    response = await run(proxy, origin, trigger, ref)
    await check(response, caplog, ref, trigger, expected)
    if expected == GENERATED:
        assert await response.text() == "made here"
        assert origin.seen == []


@pytest.mark.parametrize("trigger", TRIGGERS)
async def test_non_object_result_shows_cloudfronts_message(
    trigger: Trigger, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    response = await run(proxy, origin, trigger, snippet("return None"))
    assert MSG_NOT_OBJECT in await response.text()


@pytest.mark.parametrize(
    ("trigger", "code", "expected"),
    cases(
        ("target['self'] = target", "Circular reference detected"),
        ("target['extra'] = {1, 2}", "Object of type set is not JSON serializable"),
        ("target['extra'] = b'bytes'", "Object of type bytes is not JSON serializable"),
        ("target['headers']['x-foo'] = ({'value': '1'},)", MISS),  # a tuple is a JSON array
        ("target['headers'][1] = [{'value': '1'}]", MISS),  # a JSON object's keys are strings
    ),
)
async def test_result_is_serialized_to_json_as_lambda_does(
    trigger: Trigger,
    code: str,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The Python runtime sends the result as JSON; one it cannot serialize fails the invocation with
    # Runtime.MarshalError, a function error: 503 LambdaExecutionError (§3.1), not a validation error or a 200.
    ref = snippet(code)
    response = await run(proxy, origin, trigger, ref)
    if isinstance(expected, str):
        assert_cloudfront_error(
            response, caplog, 503, "LambdaExecutionError", f"{ref} at {trigger}", "Runtime.MarshalError", expected
        )
    else:
        await check(response, caplog, ref, trigger, expected)


# -- header maps ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "code", "expected"),
    cases(
        ("target['headers']['x-foo'] = [{'value': '1'}]", MISS),
        ("target['headers']['x-foo'] = [{'key': 'x-FOO', 'value': '1'}]", MISS),
        ("target['headers']['x-foo'] = []", MISS),
        ("target['headers']['x-foo'] = {'value': '1'}", "['x-foo'] must be an array of {key, value} objects"),
        ("target['headers']['x-foo'] = [{'key': 'X-Foo', 'value': 1}]", "['x-foo'][0].value must be a string, not int"),
        ("target['headers']['x-foo'] = [{'key': 'X-Foo'}]", "['x-foo'][0] must be an object with a 'value'"),
        ("target['headers']['x-foo'] = [{'key': 'X-Bar', 'value': '1'}]", MISS),  # §3.6: the map name decides
        ("target['headers']['X-Foo'] = [{'value': '1'}]", "['X-Foo']: header map names must be lower case"),
        ("target['headers'] = [['X-Foo', '1']]", "headers must be an object of header lists, not list"),
    ),
)
async def test_header_maps(
    trigger: Trigger,
    code: str,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    response = await run(proxy, origin, trigger, ref)
    await check(response, caplog, ref, trigger, expected)


@pytest.mark.parametrize(
    ("trigger", "entries", "sent"),
    cases(
        ("[{'value': '1'}]", ["X-Foo-Bar"]),  # key filled in, title-cased
        ("[{'key': 'x-FOO-bar', 'value': '1'}]", ["x-FOO-bar"]),  # the key's spelling is kept
        ("[{'value': '1'}, {'value': '2'}]", ["X-Foo-Bar", "X-Foo-Bar"]),  # one header line per entry
        ("[{'key': 'X-Other', 'value': '1'}]", ["X-Foo-Bar"]),  # §3.6: a key naming another header is not used
    ),
)
async def test_header_key_is_filled_in_and_spelled_on_the_wire(
    trigger: Trigger, entries: str, sent: list[str], origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    response = await run(proxy, origin, trigger, snippet(f"target['headers']['x-foo-bar'] = {entries}"))
    assert response.status == 200
    if trigger.endswith("request"):
        names = [name for name, _ in origin.last.headers if name.lower() == "x-foo-bar"]
    else:
        names = [name.decode() for name, _ in response.raw_headers if name.lower() == b"x-foo-bar"]
    assert names == sent
    sent_anywhere = [name for name, _ in origin.last.headers] + [name.decode() for name, _ in response.raw_headers]
    assert "x-other" not in {name.lower() for name in sent_anywhere}


async def test_filled_in_key_is_what_the_next_trigger_sees(
    origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, write_handler: HandlerWriter
) -> None:
    recorder = write_handler("recorder", RECORD_EVENTS)
    add = snippet("request['headers']['x-foo'] = [{'value': '1'}]")
    client = await proxy(origin=origin.url, functions={"viewer-request": add, "origin-request": recorder})
    assert (await client.get("/x")).status == 200
    event = recorded_events(recorder)[0]
    assert event["Records"][0]["cf"]["request"]["headers"]["x-foo"] == [{"key": "X-Foo", "value": "1"}]  # type: ignore[index]


# -- disallowed headers (§3.3) --------------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("name", DISALLOWED_EXAMPLES)
async def test_adding_a_disallowed_header_is_502(
    trigger: Trigger,
    name: str,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(f"target['headers'][{name.lower()!r}] = [{{'key': {name!r}, 'value': '1'}}]")
    response = await run(proxy, origin, trigger, ref)
    side = "response" if trigger.endswith("response") else "request"
    await check(response, caplog, ref, trigger, f"{side}.headers: added disallowed header {name.lower()!r}")
    assert MSG_BLACKLISTED in await response.text()


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("name", ["X-Amzn-Trace-Id", "X-Amz-Meta-Owner", "X-Cache-Status", "X-Edgeproxy-Test"])
async def test_near_misses_of_disallowed_headers_go_through(
    trigger: Trigger, name: str, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    """X-Amzn-* was blacklisted as a family in 2021; the current list names specific headers (§10.6)."""
    ref = snippet(f"target['headers'][{name.lower()!r}] = [{{'value': 'v'}}]")
    response = await run(proxy, origin, trigger, ref)
    assert response.status == 200
    wire = origin.last.header(name) if trigger.endswith("request") else response.headers.getall(name)
    assert wire == ["v"]


@pytest.mark.parametrize(("trigger", "allowed"), [("viewer-request", False), ("origin-request", True)])
async def test_cloudfront_viewer_country(
    trigger: Trigger,
    allowed: bool,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet("request['headers']['cloudfront-viewer-country'] = [{'value': 'DE'}]")
    response = await run(proxy, origin, trigger, ref)
    if allowed:
        assert response.status == 200
        assert origin.last.header("CloudFront-Viewer-Country") == ["DE"]
    else:
        await check(response, caplog, ref, trigger, "added 'cloudfront-viewer-country' at viewer-request")
        assert origin.seen == []


# -- read-only headers (§3.4) ---------------------------------------------------------------------------------------

READ_ONLY: dict[Trigger, list[str]] = {
    "viewer-request": ["Content-Length", "Host", "Transfer-Encoding", "Via"],
    "origin-request": [
        "Accept-Encoding",
        "Content-Length",
        "If-Modified-Since",
        "If-None-Match",
        "If-Range",
        "If-Unmodified-Since",
        "Transfer-Encoding",
        "Via",
    ],
    "origin-response": ["Transfer-Encoding", "Via"],
    "viewer-response": ["Warning", "Via"],
}
# Values a viewer (request triggers) or the origin (response triggers) sends so that the header is in the event.
SENT = {
    "Accept-Encoding": "gzip",
    "If-Modified-Since": "Sat, 21 Nov 2026 10:00:00 GMT",
    "If-None-Match": '"v1"',
    "If-Range": '"v1"',
    "If-Unmodified-Since": "Sat, 21 Nov 2026 10:00:00 GMT",
    "Via": "1.1 proxy.example",
    "Warning": '110 - "Response is Stale"',
}
# Never in the event: hop-by-hop on the viewer side; always there: Host, and Via toward the origin.
NEVER_PRESENT = {("viewer-request", "Transfer-Encoding"), ("origin-request", "Transfer-Encoding")}
ALWAYS_PRESENT = {("viewer-request", "Host"), ("origin-request", "Via")}


def carrying(trigger: Trigger, name: str | None) -> dict[str, Any]:
    """Request arguments so that the event at ``trigger`` carries ``name`` (or none of the optional headers)."""
    if trigger.endswith("response"):
        if name == "Transfer-Encoding":
            return {"path": "/chunked"}
        if name is not None:
            return {"path": f"/headers?{name}={SENT[name]}"}
        return {"path": "/x"}
    if name == "Content-Length":
        return {"method": "POST", "data": b"a=1"}
    if name is not None and name in SENT:
        return {"headers": {name: SENT[name]}}
    return {"skip_auto_headers": ("Accept-Encoding",)}


def read_only_cases() -> list[Any]:
    rows = []
    for trigger, names in READ_ONLY.items():
        for name in names:
            for action in ("added", "changed", "deleted"):
                present = action != "added"
                if (trigger, name) in (NEVER_PRESENT if present else ALWAYS_PRESENT):
                    continue
                rows.append(pytest.param(trigger, name, action, id=f"{trigger}-{action}-{name}"))
    return rows


@pytest.mark.parametrize(("trigger", "name", "action"), read_only_cases())
async def test_read_only_header_added_changed_or_deleted_is_502(
    trigger: Trigger,
    name: str,
    action: str,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lower = name.lower()
    if action == "deleted":
        ref = snippet(f"del target['headers'][{lower!r}]")
    else:
        ref = snippet(f"target['headers'][{lower!r}] = [{{'key': {name!r}, 'value': 'edited'}}]")
    request = carrying(trigger, None if action == "added" else name)
    response = await run(proxy, origin, trigger, ref, method=request.pop("method", "GET"), **request)
    side = "response" if trigger.endswith("response") else "request"
    await check(response, caplog, ref, trigger, f"{side}.headers: {action} read-only header {lower!r}")
    assert MSG_READ_ONLY in await response.text()


@pytest.mark.parametrize(
    ("trigger", "name"),
    [(t, n) for t, names in READ_ONLY.items() for n in names if (t, n) not in NEVER_PRESENT],
)
async def test_read_only_header_read_and_returned_as_it_was_goes_through(
    trigger: Trigger, name: str, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    lower = name.lower()
    ref = snippet(
        f"""
        entries = target['headers'][{lower!r}]
        assert entries[0]['value']
        target['headers'][{lower!r}] = [{{'key': e['key'].upper(), 'value': e['value']}} for e in entries]
        """
    )
    request = carrying(trigger, name)
    response = await run(proxy, origin, trigger, ref, method=request.pop("method", "GET"), **request)
    assert (response.status, response.headers["X-Cache"]) == (200, "Miss from cloudfront")


async def test_host_is_writable_at_origin_request(origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter) -> None:
    ref = snippet("request['headers']['host'] = [{'key': 'Host', 'value': 'api.example.com'}]")
    response = await run(proxy, origin, "origin-request", ref)
    assert response.status == 200
    assert origin.last.header("Host") == ["api.example.com"]


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
async def test_content_length_in_a_generated_response_is_502(
    trigger: Trigger, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, caplog: pytest.LogCaptureFixture
) -> None:
    ref = snippet("return {'status': '200', 'body': 'ok', 'headers': {'content-length': [{'value': '2'}]}}")
    response = await run(proxy, origin, trigger, ref)
    await check(response, caplog, ref, trigger, "response.headers: added read-only header 'content-length'")


# -- read-only fields -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "code", "expected"),
    cases(
        ("request['clientIp'] = '192.0.2.1'", "request.clientIp is read-only (changed '127.0.0.1' to '192.0.2.1')"),
        ("request['method'] = 'POST'", "request.method is read-only (changed 'GET' to 'POST')"),
        ("request['clientIp'] = '127.0.0.1'; request['method'] = 'GET'", MISS),  # set to what they were
        triggers=("viewer-request", "origin-request"),
    ),
)
async def test_client_ip_and_method_are_read_only(
    trigger: Trigger,
    code: str,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    await check(await run(proxy, origin, trigger, ref), caplog, ref, trigger, expected)


async def test_config_is_read_only_edits_do_not_reach_later_triggers(
    origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, write_handler: HandlerWriter
) -> None:
    """``config`` is not part of what a handler returns, so editing it in the event changes nothing."""
    forge = snippet("cf['config'].update(requestId='forged==', eventType='origin-request', distributionId='EFORGED')")
    recorder = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(
        origin=origin.url, functions={"viewer-request": forge, "origin-request": recorder, "viewer-response": recorder}
    )
    response = await client.get("/x")
    assert response.status == 200
    configs = [event["Records"][0]["cf"]["config"] for event in recorded_events(recorder)]  # type: ignore[index]
    assert [config["eventType"] for config in configs] == ["origin-request", "viewer-response"]
    assert {config["requestId"] for config in configs} == {response.headers["X-Amz-Cf-Id"]}
    assert {config["distributionId"] for config in configs} == {"EDFDVBD6EXAMPLE"}


@pytest.mark.parametrize(
    ("options", "status", "x_cache"),
    [(None, 502, "LambdaValidationError"), (LENIENT, 200, "Miss")],
    ids=["strict", "lenient"],
)
async def test_viewer_response_cannot_change_the_status(
    options: Options | None,
    status: int,
    x_cache: str,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet("response['status'] = '201'; response['statusDescription'] = 'Created'")
    response = await run(proxy, origin, "viewer-response", ref, options=options)
    assert (response.status, response.headers["X-Cache"]) == (status, f"{x_cache} from cloudfront")
    assert "viewer-response cannot change the status (200 -> 201)" in caplog.text


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("response['status'] = '201'", (201, "Miss")),
        ("response['status'] = '599'", (599, "Miss")),
        ("response['status'] = '199'", "response.status must be a string from '200' to '599', got '199'"),
        ("response['status'] = '600'", "response.status must be a string from '200' to '599', got '600'"),
    ],
)
async def test_origin_response_may_change_the_status_within_200_599(
    code: str,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    await check(await run(proxy, origin, "origin-response", ref), caplog, ref, "origin-response", expected)


# -- uri and query string (§3.5) ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "code", "expected"),
    cases(
        ("request['uri'] = 'no-slash'", "request.uri must be a string starting with '/', got 'no-slash'"),
        ("request['uri'] = ''", "request.uri must be a string starting with '/', got ''"),
        ("request['uri'] = '/a\\r\\nX-Injected: 1'", "request.uri contains '\\r' (no spaces, control characters"),
        ("request['uri'] = '/a b'", "request.uri contains ' '"),  # "GET /a b HTTP/1.1" would reach the origin
        ("request['uri'] = '/a?b=1'", "request.uri contains '?'"),
        ("request['querystring'] = 'a=1 2'", "request.querystring contains ' '"),
        ("request['querystring'] = 'a=1#top'", "request.querystring contains '#'"),
        ("request['querystring'] = 'a=\\x01'", "request.querystring contains '\\x01'"),
        ("request['querystring'] = 'a=\\x7f'", "request.querystring contains '\\x7f'"),
        ("request['uri'] = '/' + 'u' * 8185; request['querystring'] = 'q=1&r'", MISS),  # 8,191 characters
        ("request['uri'] = '/' + 'u' * 8186; request['querystring'] = 'q=1&r'", "is 8192 characters (must be < 8192)"),
        ("request['uri'] = '/new/p%20q'; request['querystring'] = 'a=%20&b=%23'", MISS),
        triggers=("viewer-request", "origin-request"),
    ),
)
async def test_uri_and_querystring(
    trigger: Trigger,
    code: str,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    response = await run(proxy, origin, trigger, ref)
    await check(response, caplog, ref, trigger, expected)
    if isinstance(expected, str):
        assert MSG_URI in await response.text()
        assert origin.seen == []
    else:
        sent = origin.last.raw_path
        assert len(sent) - 1 == 8191 or sent == "/new/p%20q?a=%20&b=%23"


# -- generated and replaced responses (§2.3) ------------------------------------------------------------------------

STATUS_OK = {"viewer-request": GENERATED, "origin-request": GENERATED, "origin-response": MISS}
GENERATING = ("viewer-request", "origin-request", "origin-response")


def respond(fields: str) -> str:
    """Snippet: the response trigger's response, or a fresh generated one, updated with ``fields``."""
    return f"result = response if response is not None else {{}}\nresult.update({fields})\nreturn result"


@pytest.mark.parametrize(
    ("trigger", "fields", "expected"),
    [
        *[
            pytest.param(trigger, fields, expected, id=f"{trigger}-{fields}")
            for trigger in GENERATING
            for fields, expected in [
                ("status='200'", STATUS_OK[trigger]),
                ("status='599'", (599, STATUS_OK[trigger][1])),
                ("status='199'", "response.status must be a string from '200' to '599', got '199'"),
                ("status='600'", "response.status must be a string from '200' to '599', got '600'"),
                ("status='abc'", "response.status must be a string from '200' to '599', got 'abc'"),
                ("status='²⁰⁰'", "response.status must be a string from '200' to '599', got '²⁰⁰'"),
                ("status=200", STATUS_OK[trigger]),  # §2.3: a whole number, as in AWS's own examples
                ("status=302", (302, STATUS_OK[trigger][1])),
                ("status=600", "response.status must be from 200 to 599, got the number 600"),
                ("status=True", "response.status must be a string from '200' to '599', got True"),
            ]
        ],
        pytest.param("viewer-request", "body='no status'", "the returned request has no 'uri'", id="vr-no-status"),
        pytest.param("origin-request", "body='no status'", "the returned request has no 'uri'", id="or-no-status"),
    ],
)
async def test_generated_status(
    trigger: Trigger,
    fields: str,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(respond(fields))
    await check(await run(proxy, origin, trigger, ref), caplog, ref, trigger, expected)


@pytest.mark.parametrize("trigger", ["origin-response", "viewer-response"])
async def test_response_without_status_is_502(
    trigger: Trigger, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, caplog: pytest.LogCaptureFixture
) -> None:
    ref = snippet("del response['status']")
    response = await run(proxy, origin, trigger, ref)
    await check(response, caplog, ref, trigger, "a response trigger must return a response object with a 'status'")


@pytest.mark.parametrize("trigger", GENERATING)
async def test_integer_status_is_taken_like_its_digit_string(
    trigger: Trigger, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, caplog: pytest.LogCaptureFixture
) -> None:
    # §2.3: AWS's "update error statuses to 200 / 302" examples set a JSON number, in the default (strict) mode.
    ref = snippet(respond("status=203, statusDescription='Numbered', body='number'"))
    with caplog.at_level(logging.WARNING, logger="edgeproxy"):
        response = await run(proxy, origin, trigger, ref)
    assert (response.status, response.reason, await response.text()) == (203, "Numbered", "number")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("trigger", "fields", "expected", "body"),
    [
        ("viewer-request", "status='204', body='x'", "a 204 generated at viewer-request cannot have a body", None),
        ("viewer-request", "status='204'", (204, "LambdaGeneratedResponse"), b""),
        ("viewer-request", "status='204', body=''", (204, "LambdaGeneratedResponse"), b""),
        ("viewer-request", "status='200', body='x'", (200, "LambdaGeneratedResponse"), b"x"),
        ("origin-request", "status='204', body='x'", (204, "LambdaGeneratedResponse"), b""),
    ],
)
async def test_204_with_a_body(
    trigger: Trigger,
    fields: str,
    expected: Expected,
    body: bytes | None,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(respond(fields))
    response = await run(proxy, origin, trigger, ref)
    await check(response, caplog, ref, trigger, expected)
    if body is not None:
        assert await response.read() == body


HEADERS = "{'content-type': [{'key': 'Content-Type', 'value': 'text/plain'}]}"
HEADERS_SIZE = len("Content-Type") + len("text/plain")


@pytest.mark.parametrize(
    ("trigger", "size", "expected"),
    [
        ("viewer-request", 40 * KB, GENERATED),
        ("viewer-request", 40 * KB + 1, f"response headers + body are {40 * KB + 1} bytes (limit {40 * KB} at "),
        ("origin-request", 40 * KB + 1, GENERATED),
        ("origin-request", MB, GENERATED),
        ("origin-request", MB + 1, f"response headers + body are {MB + 1} bytes (limit {MB} at "),
    ],
)
async def test_generated_response_size_counts_headers_and_body(
    trigger: Trigger,
    size: int,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(respond(f"status='200', headers={HEADERS}, body='b' * {size - HEADERS_SIZE}"))
    response = await run(proxy, origin, trigger, ref)
    await check(response, caplog, ref, trigger, expected)
    if not isinstance(expected, str):
        assert len(await response.read()) == size - HEADERS_SIZE
        assert response.headers["Content-Length"] == str(size - HEADERS_SIZE)
    else:
        assert MSG_BODY in await response.text()


@pytest.mark.parametrize(("trigger", "limit"), [("viewer-response", 40 * KB), ("origin-response", MB)])
@pytest.mark.parametrize("over", [0, 1])
async def test_replaced_response_size_counts_the_origins_headers_too(
    trigger: Trigger,
    limit: int,
    over: int,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(
        f"""
        used = sum(len(e['key']) + len(e['value']) for entries in response['headers'].values() for e in entries)
        response['body'] = 'r' * ({limit} - used + {over})
        """
    )
    response = await run(proxy, origin, trigger, ref)
    if over:
        await check(response, caplog, ref, trigger, f"bytes (limit {limit} at {trigger})")
    else:
        await check(response, caplog, ref, trigger, MISS)
        body = await response.read()
        assert set(body) == {ord("r")}
        assert response.headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize(
    ("trigger", "fields", "expected"),
    [
        *cases(
            ("status='200', body='!!!', bodyEncoding='base64'", "response.body is not valid base64"),
            ("status='200', body='aGk=', bodyEncoding='gzip'", "response.bodyEncoding must be 'text' or 'base64'"),
            ("status='200', body=7", "response.body must be a string, got int"),
        ),
    ],
)
async def test_invalid_body_or_encoding_is_502(
    trigger: Trigger,
    fields: str,
    expected: Expected,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(respond(fields))
    await check(await run(proxy, origin, trigger, ref), caplog, ref, trigger, expected)


BINARY = bytes(range(256)) * 3


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(
    ("fields", "body"),
    [
        (f"body={base64.b64encode(BINARY).decode()!r}, bodyEncoding='base64'", BINARY),
        ("body='héllo', bodyEncoding='text'", "héllo".encode()),
        ("body='!!!'", b"!!!"),  # text is the default encoding
        ("body=''", b""),
    ],
    ids=["base64", "text", "default-text", "empty"],
)
async def test_body_encodings_reach_the_viewer_as_bytes(
    trigger: Trigger, fields: str, body: bytes, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    ref = snippet(respond(f"status='200', {fields}"))
    response = await run(proxy, origin, trigger, ref)
    assert response.status == 200
    assert await response.read() == body
    assert response.headers["Content-Length"] == str(len(body))


# -- lenient mode ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "code", "violation"),
    [
        (
            "viewer-request",
            "request['headers']['x-accel-buffering'] = [{'value': 'no'}]",
            "request.headers: added disallowed header 'x-accel-buffering'",
        ),
        (
            "origin-request",
            "request['headers']['via'] = [{'value': '1.1 edited'}]",
            "request.headers: changed read-only header 'via'",
        ),
        (
            "viewer-response",
            "response['headers']['warning'] = [{'value': '199 - lenient'}]",
            "response.headers: added read-only header 'warning'",
        ),
        (
            "viewer-request",
            "return {'status': '200', 'body': 'g' * (40 * 1024 + 1)}",
            "response headers + body are 40961 bytes (limit 40960 at viewer-request)",
        ),
        (
            "origin-request",
            "request['headers']['X-Upper'] = [{'value': '1'}]",
            "request.headers['X-Upper']: header map names must be lower case",
        ),
    ],
)
async def test_lenient_mode_logs_violations_and_lets_results_through(
    trigger: Trigger,
    code: str,
    violation: str,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    strict = await run(proxy, origin, trigger, ref)
    await check(strict, caplog, ref, trigger, violation)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edgeproxy"):
        lenient = await run(proxy, origin, trigger, ref, options=LENIENT)
    assert lenient.status == 200
    assert "X-Edgeproxy-Error" not in lenient.headers
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"lenient: {ref} at {trigger}: {violation}"]


async def test_lenient_mode_sends_what_the_handler_set(
    origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    ref = snippet(
        """
        request['headers']['x-accel-buffering'] = [{'value': 'no'}]
        request['headers']['X-Upper'] = [{'key': 'x-UPPER', 'value': '1'}]
        """
    )
    response = await run(proxy, origin, "origin-request", ref, options=LENIENT)
    assert response.status == 200
    assert origin.last.header("X-Accel-Buffering") == ["no"]
    assert [name for name, _ in origin.last.headers if name.lower() == "x-upper"] == ["x-UPPER"]


@pytest.mark.parametrize("code", ["return None", "return event", "target['headers']['x-a'] = {'value': '1'}"])
async def test_lenient_mode_still_rejects_unusable_results(
    code: str, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    response = await run(proxy, origin, "viewer-request", snippet(code), options=LENIENT)
    assert (response.status, response.headers["X-Cache"]) == (502, "LambdaValidationError from cloudfront")


# -- which read-only list applies at viewer-response (§3.4, §10.5; checklist 28) ----------------------------------


@pytest.mark.parametrize(
    ("code", "path", "detail"),
    [
        (
            "response['headers']['content-length'] = [{'value': '13'}]",
            "/chunked",
            "added read-only header 'content-length'",
        ),
        ("del response['headers']['content-length']", "/x", "deleted read-only header 'content-length'"),
        (
            "response['headers']['content-encoding'] = [{'value': 'identity'}]",
            "/x",
            "added read-only header 'content-encoding'",
        ),
        ("del response['headers']['transfer-encoding']", "/chunked", "deleted read-only header 'transfer-encoding'"),
        ("response['headers']['warning'] = [{'value': '199 - x'}]", "/x", "added read-only header 'warning'"),
    ],
)
@pytest.mark.parametrize("setting", ["current", "2021"])
async def test_viewer_response_read_only_list_setting(
    setting: str,
    code: str,
    path: str,
    detail: str,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    distribution = config.from_mapping(
        {
            "distribution": {"viewer_response_read_only": setting},
            "origins": {"app": {"url": origin.url}},
            "default_behavior": {"origin": "app", "functions": {"viewer-response": ref}},
        },
        source="test",
        base_dir=tmp_path,
    )
    response = await (await proxy(distribution)).get(path)
    if setting == "current" and "warning" not in detail:  # only Warning and Via are read-only now
        assert (response.status, response.headers["X-Cache"]) == (200, "Miss from cloudfront")
        expected = b"one,two,three" if path == "/chunked" else b'"path": "/x"'
        assert expected in await response.read()  # the origin's body, whatever the headers say
    else:
        await check(response, caplog, ref, "viewer-response", f"response.headers: {detail}")


# Results that cannot be sent at all (left) stay 502 in lenient mode; results that merely break a rule (right) go
# through. Either way the proxy never fails with an internal error (checked by ``check``'s X-Cache).
UNUSABLE = [
    ("viewer-request", "request['uri'] = 7", "request.uri must be a string"),
    ("viewer-request", "request['uri'] = '/a\\r\\nb'", "request.uri contains '\\r'"),
    ("viewer-request", "request['querystring'] = 5", "request.querystring must be a string"),
    ("viewer-request", "request['querystring'] = 'a\\x01'", "request.querystring contains '\\x01'"),
    ("viewer-request", "request['headers']['x-a'] = [{'value': 'a\\r\\nb'}]", "value contains '\\r'"),
    ("viewer-request", "request['headers']['x a'] = [{'value': '1'}]", "['x a'] is not a valid header name"),
    ("viewer-request", "request['body'] = {'action': 'replace', 'data': 'aGk'}", "not valid base64"),
    ("viewer-request", "request['body'] = {'action': 'replace', 'data': 5}", "data must be a string"),
    ("origin-request", "request['origin'] = {}", "exactly one of 'custom' or 's3'"),
    ("origin-request", "del request['origin']", "exactly one of 'custom' or 's3'"),
    ("origin-request", "request['origin'] = {'s3': {}}", "request.origin.s3.domainName must be"),
    ("origin-request", "request['origin']['custom']['port'] = 'x'", "request.origin.custom.port must be"),
    ("origin-request", "del request['origin']['custom']['protocol']", "request.origin.custom.protocol must be"),
    ("origin-request", "request['origin']['custom']['domainName'] = 'a' * 64", "domainName must be a DNS name"),
    ("origin-request", "request['origin']['custom']['readTimeout'] = 'x'", "readTimeout must be 4-60 seconds"),
    ("origin-request", "request['origin']['custom']['path'] = None", "request.origin.custom.path must be"),
    ("viewer-request", "return {'status': '200', 'statusDescription': 5}", "statusDescription must be a string"),
    ("viewer-request", "request['querystring'] = 'a#b'", "request.querystring contains '#'"),
    ("viewer-request", "request['uri'] = '/a b'", "request.uri contains ' '"),  # a request line it would break
    ("viewer-request", "return {'status': '200', 'statusDescription': 'A\\nB'}", "statusDescription contains '\\n'"),
    ("origin-response", "response['headers']['content-length'] = [{'value': 'abc'}]", "must be a number, got 'abc'"),
]
ONLY_BROKEN = [
    ("viewer-request", "request['method'] = 'POST'", "request.method is read-only"),
    ("viewer-request", "del request['headers']['host']", "deleted read-only header 'host'"),
    ("origin-request", "request['uri'] = '/' + 'u' * 9000", "request.uri + querystring is 9001 characters"),
    ("viewer-request", "request['body'] = {'action': 'replace', 'encoding': 'gzip', 'data': 'x'}", "encoding must be"),
    ("origin-request", "request['origin']['custom']['sslProtocols'] = [['TLSv1.2']]", "sslProtocols may hold only"),
    ("origin-request", "request['origin']['custom']['readTimeout'] = 61", "readTimeout must be 4-60 seconds"),
    ("origin-request", "request['origin']['custom']['customHeaders'] = {'x-cache': [{'value': '1'}]}", "disallowed"),
    ("viewer-request", "return {'status': '200', 'body': 7}", "response.body must be a string, got int"),
    ("viewer-request", "return {'status': '204', 'body': 'x'}", "a 204 generated at viewer-request cannot have"),
    ("viewer-response", "response['status'] = '500'", "viewer-response cannot change the status (200 -> 500)"),
]


@pytest.mark.parametrize(
    ("trigger", "code", "detail", "unusable"),
    [(*case, True) for case in UNUSABLE] + [(*case, False) for case in ONLY_BROKEN],
)
async def test_lenient_mode_lets_through_only_what_can_be_sent(
    trigger: Trigger,
    code: str,
    detail: str,
    unusable: bool,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    await check(await run(proxy, origin, trigger, ref), caplog, ref, trigger, detail)
    caplog.clear()
    lenient = await run(proxy, origin, trigger, ref, options=LENIENT)
    if unusable:
        await check(lenient, caplog, ref, trigger, detail)
    else:
        assert lenient.status < 500, lenient.headers.get("X-Edgeproxy-Error")
        assert f"lenient: {ref} at {trigger}: " in caplog.text
        assert detail in caplog.text
