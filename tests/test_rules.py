"""rules.py: what check_result accepts and rejects at each trigger, rule family by rule family.

Fast unit tests on plain events; tests/test_validation.py drives the same rules through a running proxy.
Each table holds a breaking case and a twin that stays just inside the rule.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import pytest

from edgeproxy.config import TRIGGERS, Trigger
from edgeproxy.errors import LambdaValidationError
from edgeproxy.rules import (
    MSG_BLACKLISTED,
    MSG_BODY,
    MSG_HEADER_ARRAY,
    MSG_HEADER_VALUE,
    MSG_INVALID,
    MSG_NOT_OBJECT,
    MSG_READ_ONLY,
    MSG_URI,
    STRICT,
    Checked,
    Snapshot,
    Strictness,
    check_result,
)
from tests.aws_reference import DISALLOWED_EXAMPLES, READ_ONLY

KB = 1024
Json = dict[str, Any]
Mutation = Callable[[Json, Json | None], Any]

ORIGIN = {
    "custom": {
        "customHeaders": {},
        "domainName": "example.org",
        "keepaliveTimeout": 5,
        "path": "",
        "port": 443,
        "protocol": "https",
        "readTimeout": 30,
        "sslProtocols": ["TLSv1.2"],
    }
}


def make_request(trigger: Trigger, headers: dict[str, str]) -> Json:
    request: Json = {
        "clientIp": "203.0.113.178",
        "headers": {name.lower(): [{"key": name, "value": value}] for name, value in headers.items()},
        "method": "GET",
        "querystring": "a=1",
        "uri": "/index.html",
    }
    if trigger.startswith("origin"):
        request["origin"] = copy.deepcopy(ORIGIN)
    return request


def outcome(
    trigger: Trigger,
    mutate: Mutation,
    *,
    request_headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
    strictness: Strictness = STRICT,
) -> tuple[str, str] | None:
    """None when what ``mutate`` returns passes at ``trigger``; else (CloudFront's message, the precise detail) of
    the first broken rule, whether it raised at once or was collected as a violation."""
    try:
        checked = run(trigger, mutate, request_headers, response_headers, strictness)
    except LambdaValidationError as error:
        return error.message, error.reason
    if checked.violations:
        return checked.violations[0].message, checked.violations[0].detail
    return None


def run(
    trigger: Trigger,
    mutate: Mutation,
    request_headers: dict[str, str] | None = None,
    response_headers: dict[str, str] | None = None,
    strictness: Strictness = STRICT,
) -> Checked:
    request = make_request(trigger, {"Host": "d111111abcdef8.cloudfront.net", **(request_headers or {})})
    response = None
    if trigger.endswith("response"):
        headers = {"Content-Type": "text/html", **(response_headers or {})}
        response = {
            "status": "200",
            "statusDescription": "OK",
            "headers": {name.lower(): [{"key": name, "value": value}] for name, value in headers.items()},
        }
    before = Snapshot.of(request, response)
    return check_result(trigger, before, mutate(copy.deepcopy(request), copy.deepcopy(response)), strictness)


def target(request: Json, response: Json | None) -> Json:
    return response if response is not None else request


def returned(request: Json, response: Json | None) -> Json:
    return target(request, response)


def set_header(name: str, entries: Any) -> Mutation:
    def mutate(request: Json, response: Json | None) -> Json:
        target(request, response)["headers"][name] = entries
        return target(request, response)

    return mutate


def generated(**fields: Any) -> Mutation:
    """A handler returning a fresh response object (a generated response in request triggers)."""
    return lambda request, response: {"status": "200", **fields}


# -- shape --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("value", [None, "ok", 42, 4.2, True, ["a"]])
def test_non_objects_are_rejected(trigger: Trigger, value: Any) -> None:
    found = outcome(trigger, lambda request, response: value)
    assert found is not None
    assert found[0] == MSG_NOT_OBJECT
    assert f"returned {'None' if value is None else type(value).__name__}" in found[1]


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_whole_event_is_rejected(trigger: Trigger) -> None:
    found = outcome(trigger, lambda request, response: {"Records": [{"cf": {"request": request}}]})
    assert found is not None
    assert found[0] == MSG_INVALID
    assert "the handler returned the whole event" in found[1]


@pytest.mark.parametrize(
    ("trigger", "mutate", "kind"),
    [
        ("viewer-request", returned, "request"),
        ("viewer-request", generated(), "response"),
        ("origin-request", returned, "request"),
        ("origin-request", generated(), "response"),
        ("origin-response", returned, "response"),
        ("viewer-response", returned, "response"),
    ],
)
def test_request_triggers_return_request_or_response_response_triggers_a_response(
    trigger: Trigger, mutate: Mutation, kind: str
) -> None:
    checked = run(trigger, mutate)
    assert (checked.kind, checked.violations) == (kind, ())


@pytest.mark.parametrize("trigger", ["origin-response", "viewer-response"])
def test_response_trigger_returning_request_is_rejected(trigger: Trigger) -> None:
    found = outcome(trigger, lambda request, response: request)
    assert found is not None
    assert "must return a response object with a 'status'" in found[1]


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
@pytest.mark.parametrize("field", ["uri", "headers"])
def test_request_without_uri_or_headers_is_rejected(trigger: Trigger, field: str) -> None:
    def drop(request: Json, response: Json | None) -> Json:
        del request[field]
        return request

    found = outcome(trigger, drop)
    assert found is not None
    assert f"has no {field!r}" in found[1]


# -- header maps ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(
    ("entries", "message", "detail"),
    [
        ({"value": "1"}, MSG_HEADER_ARRAY, "must be an array"),
        ("1", MSG_HEADER_ARRAY, "must be an array"),
        ([{"key": "X-A", "value": 1}], MSG_HEADER_VALUE, "value must be a string, not int"),
        ([{"key": "X-A", "value": ["1"]}], MSG_HEADER_VALUE, "value must be a string, not list"),
        ([{"key": "X-A", "value": None}], MSG_HEADER_VALUE, "value must be a string"),
        ([{"key": "X-A"}], MSG_HEADER_VALUE, "must be an object with a 'value'"),
        (["1"], MSG_HEADER_VALUE, "must be an object with a 'value'"),
        ([{"key": 7, "value": "1"}], MSG_INVALID, "key 7 is not a valid header name"),
        ([{"key": "X-A", "value": "1\r\nX-Injected: 1"}], MSG_HEADER_VALUE, "value contains '\\r' (a control"),
        ([{"key": "X-A", "value": "1\n"}], MSG_HEADER_VALUE, "value contains '\\n' (a control character)"),
        ([{"key": "X-A", "value": "1\x00"}], MSG_HEADER_VALUE, "value contains '\\x00' (a control character)"),
        # What aiohttp refuses to write (RFC 9110 §5.5): every control character but tab, and DEL.
        ([{"key": "X-A", "value": "a\x0bb"}], MSG_HEADER_VALUE, "value contains '\\x0b' (a control character)"),
        ([{"key": "X-A", "value": "\x1b[31m"}], MSG_HEADER_VALUE, "value contains '\\x1b' (a control character)"),
        ([{"key": "X-A", "value": "a\x7f"}], MSG_HEADER_VALUE, "value contains '\\x7f' (a control character)"),
        ([{"key": "X-A", "value": "\x01"}], MSG_HEADER_VALUE, "value contains '\\x01' (a control character)"),
    ],
)
def test_header_map_shape(trigger: Trigger, entries: Any, message: str, detail: str) -> None:
    found = outcome(trigger, set_header("x-a", entries))
    assert found is not None
    assert found[0] == message
    assert detail in found[1]


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("name", ["x a", "", "x-a:", "x-a\r\nx-b", "é"])
def test_header_map_names_must_be_tokens(trigger: Trigger, name: str) -> None:
    found = outcome(trigger, set_header(name, [{"value": "1"}]))
    assert found is not None
    assert f"[{name!r}] is not a valid header name" in found[1]


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("value", ["tab\tand spaces are fine", "", "üñí"])
def test_header_values_may_hold_any_other_text(trigger: Trigger, value: str) -> None:
    assert outcome(trigger, set_header("x-a", [{"value": value}])) is None


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_header_map_names_must_be_lower_case(trigger: Trigger) -> None:
    found = outcome(trigger, set_header("X-A", [{"key": "X-A", "value": "1"}]))
    assert found is not None
    assert "header map names must be lower case" in found[1]


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(
    ("entries", "keys"),
    [
        ([{"value": "1"}], ["X-Amz-Meta-Thing"]),
        ([{"key": "x-AMZ-meta-THING", "value": "1"}], ["x-AMZ-meta-THING"]),
        ([{"value": "1"}, {"key": "X-Amz-Meta-Thing", "value": "2"}], ["X-Amz-Meta-Thing", "X-Amz-Meta-Thing"]),
        ([], []),
    ],
)
def test_missing_key_is_filled_title_cased(trigger: Trigger, entries: Any, keys: list[str]) -> None:
    checked = run(trigger, set_header("x-amz-meta-thing", entries))
    assert checked.violations == ()
    assert [entry["key"] for entry in target(checked.value, None)["headers"]["x-amz-meta-thing"]] == keys


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("strictness", [STRICT, Strictness(lenient=True)], ids=["strict", "lenient"])
@pytest.mark.parametrize(
    ("entries", "keys"),
    [
        # §3.6: AWS's "override a response header" example copies this entry under 'last-modified'.
        ([{"key": "X-Amz-Meta-Last-Modified", "value": "1"}], ["Last-Modified"]),
        ([{"key": "last-MODIFIED", "value": "1"}, {"key": "Date", "value": "2"}], ["last-MODIFIED", "Last-Modified"]),
        ([{"key": "Last Modified", "value": "1"}], ["Last-Modified"]),
    ],
)
def test_a_key_naming_another_header_is_replaced_by_the_map_name(
    trigger: Trigger, strictness: Strictness, entries: Any, keys: list[str]
) -> None:
    checked = run(trigger, set_header("last-modified", entries), strictness=strictness)
    assert checked.violations == ()
    assert [entry["key"] for entry in target(checked.value, None)["headers"]["last-modified"]] == keys


@pytest.mark.parametrize(
    ("trigger", "name", "key", "message"),
    [
        ("viewer-request", "x-cache", "X-Allowed", MSG_BLACKLISTED),
        ("origin-response", "x-edge-thing", "X-Allowed", MSG_BLACKLISTED),
        ("viewer-request", "via", "X-Allowed", MSG_READ_ONLY),
        ("viewer-response", "warning", "X-Allowed", MSG_READ_ONLY),
        ("viewer-request", "x-allowed", "X-Cache", None),
        ("viewer-response", "x-allowed", "Via", None),
    ],
)
def test_header_rules_judge_the_map_name_not_the_key(
    trigger: Trigger, name: str, key: str, message: str | None
) -> None:
    found = outcome(trigger, set_header(name, [{"key": key, "value": "1"}]))
    assert (found and found[0]) == message, found


# -- disallowed headers (§3.3) --------------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("name", DISALLOWED_EXAMPLES)
def test_adding_a_disallowed_header_is_rejected(trigger: Trigger, name: str) -> None:
    found = outcome(trigger, set_header(name.lower(), [{"key": name, "value": "1"}]))
    assert found == (MSG_BLACKLISTED, f"{target_field(trigger)}: added disallowed header {name.lower()!r}")


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("name", ["X-Amzn-Trace-Id", "X-Amz-Meta-A", "X-Cache-Status", "X-Edgeproxy", "X-Accel"])
def test_near_misses_of_disallowed_headers_are_allowed(trigger: Trigger, name: str) -> None:
    assert outcome(trigger, set_header(name.lower(), [{"key": name, "value": "1"}])) is None


def target_field(trigger: Trigger) -> str:
    return "response.headers" if trigger.endswith("response") else "request.headers"


@pytest.mark.parametrize(("trigger", "rejected"), [(t, t == "viewer-request") for t in TRIGGERS])
def test_cloudfront_viewer_country_may_not_be_added_at_viewer_request(trigger: Trigger, rejected: bool) -> None:
    found = outcome(trigger, set_header("cloudfront-viewer-country", [{"value": "DE"}]))
    assert (found is not None) == rejected
    if found:
        assert found[0] == MSG_BLACKLISTED


def test_disallowed_header_in_generated_response_is_rejected() -> None:
    found = outcome("viewer-request", generated(headers={"keep-alive": [{"value": "timeout=5"}]}))
    assert found == (MSG_BLACKLISTED, "response.headers: added disallowed header 'keep-alive'")


# -- read-only headers (§3.4) ---------------------------------------------------------------------------------------

READ_ONLY_CASES = [(trigger, name) for trigger in TRIGGERS for name in sorted(READ_ONLY[trigger])]


def present(trigger: Trigger, name: str) -> dict[str, dict[str, str]]:
    """Event headers so that ``name`` is in the object the trigger returns."""
    side = "response_headers" if trigger.endswith("response") else "request_headers"
    return {side: {name: "original"}}


@pytest.mark.parametrize(
    ("trigger", "name", "action"),
    [
        (trigger, name, action)
        for trigger, name in READ_ONLY_CASES
        for action in ("added", "changed", "deleted")
        if (name, action) != ("Host", "added")  # every viewer request has a Host
    ],
)
def test_read_only_header_may_not_be_added_changed_or_deleted(trigger: Trigger, name: str, action: str) -> None:
    lower = name.lower()

    def mutate(request: Json, response: Json | None) -> Json:
        headers = target(request, response)["headers"]
        if action == "deleted":
            del headers[lower]
        else:
            headers[lower] = [{"key": name, "value": "new"}]
        return target(request, response)

    headers = {} if action == "added" else present(trigger, name)
    found = outcome(trigger, mutate, **headers)  # type: ignore[arg-type]
    assert found == (MSG_READ_ONLY, f"{target_field(trigger)}: {action} read-only header {lower!r}")


@pytest.mark.parametrize(("trigger", "name"), READ_ONLY_CASES)
def test_read_only_header_may_be_read_and_returned_unchanged(trigger: Trigger, name: str) -> None:
    def rewrite_same(request: Json, response: Json | None) -> Json:
        headers = target(request, response)["headers"]
        headers[name.lower()] = [{"key": name.upper(), "value": headers[name.lower()][0]["value"]}]
        return target(request, response)

    assert outcome(trigger, rewrite_same, **present(trigger, name)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["Content-Encoding", "Content-Length", "Transfer-Encoding"])
@pytest.mark.parametrize(("legacy", "rejected"), [(False, False), (True, True)])
def test_viewer_response_2021_read_only_list(name: str, legacy: bool, rejected: bool) -> None:
    strictness = Strictness(legacy_viewer_response_read_only=legacy)
    found = outcome("viewer-response", set_header(name.lower(), [{"value": "1"}]), strictness=strictness)
    assert (found is not None) == rejected


def test_host_is_writable_at_origin_request() -> None:
    assert outcome("origin-request", set_header("host", [{"value": "other.example"}])) is None


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
def test_content_length_in_generated_response_is_read_only(trigger: Trigger) -> None:
    found = outcome(trigger, generated(headers={"content-length": [{"value": "0"}]}))
    assert found == (MSG_READ_ONLY, "response.headers: added read-only header 'content-length'")


# -- read-only fields -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
@pytest.mark.parametrize(("field", "value"), [("clientIp", "192.0.2.1"), ("method", "POST")])
def test_client_ip_and_method_are_read_only(trigger: Trigger, field: str, value: str) -> None:
    def change(request: Json, response: Json | None) -> Json:
        request[field] = value
        return request

    found = outcome(trigger, change)
    assert found is not None
    assert f"request.{field} is read-only" in found[1]


@pytest.mark.parametrize(
    ("status", "lenient", "result_status", "violations"),
    [
        ("200", False, "200", 0),  # unchanged
        ("304", False, "200", 1),
        ("304", True, "200", 1),  # lenient: logged, and the viewer still gets the original status
    ],
)
def test_viewer_response_cannot_change_status(status: str, lenient: bool, result_status: str, violations: int) -> None:
    def change(request: Json, response: Json | None) -> Json:
        assert response is not None
        response["status"] = status
        return response

    checked = run("viewer-response", change, strictness=Strictness(lenient=lenient))
    assert len(checked.violations) == violations
    assert checked.value["status"] == result_status
    if violations:
        assert "viewer-response cannot change the status (200 -> 304)" in checked.violations[0].detail


def test_origin_response_may_change_status() -> None:
    def change(request: Json, response: Json | None) -> Json:
        assert response is not None
        response["status"] = "503"
        return response

    assert outcome("origin-response", change) is None


# -- uri and query string (§3.5) ------------------------------------------------------------------------------------


def set_fields(**fields: Any) -> Mutation:
    def mutate(request: Json, response: Json | None) -> Json:
        request.update(fields)
        return request

    return mutate


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"uri": "no-slash"}, "must be a string starting with '/'"),
        ({"uri": ""}, "must be a string starting with '/'"),
        ({"uri": 7}, "must be a string starting with '/'"),
        ({"uri": "/a\r\nX-Injected: 1"}, "request.uri contains '\\r' (no spaces, control characters, '#' or '?')"),
        ({"uri": "/a b"}, "request.uri contains ' '"),  # on the request line: "GET /a b HTTP/1.1"
        ({"uri": "/a#b"}, "request.uri contains '#'"),
        ({"uri": "/a?b=1"}, "request.uri contains '?'"),  # the query would silently become "b=1?<querystring>"
        ({"uri": "/a\x00"}, "request.uri contains '\\x00'"),
        ({"uri": "/a\tb"}, "request.uri contains '\\t'"),
        ({"querystring": "a b"}, "contains ' '"),
        ({"querystring": "a=1#frag"}, "contains '#'"),
        ({"querystring": "a=\x01"}, "contains '\\x01'"),
        ({"querystring": "a=\t"}, "contains '\\t'"),
        ({"querystring": "a=\x7f"}, "contains '\\x7f'"),
        ({"querystring": 1}, "querystring must be a string"),
        ({"uri": "/" + "a" * 8186, "querystring": "b=1&c"}, "8192 characters (must be < 8192)"),
        ({"uri": "/" + "a" * 8191, "querystring": ""}, "8192 characters (must be < 8192)"),
        ({"uri": "/" + "a" * 8185, "querystring": "b=1&c"}, None),  # 8191
        ({"uri": "/" + "a" * 8190, "querystring": ""}, None),
        ({"uri": "/", "querystring": "a=%20b&c=%23"}, None),
        ({"uri": "/caf%C3%A9/ü", "querystring": "q=ü"}, None),
    ],
)
def test_uri_and_querystring(trigger: Trigger, fields: Json, detail: str | None) -> None:
    found = outcome(trigger, set_fields(**fields))
    if detail is None:
        assert found is None
    else:
        assert found is not None
        assert (found[0], detail in found[1]) == (MSG_URI, True), found


@pytest.mark.parametrize(
    "fields", [{"uri": "no-slash"}, {"uri": "/a b"}, {"uri": "/a#b"}, {"querystring": "a b"}, {"querystring": "a#b"}]
)
def test_a_uri_or_querystring_that_cannot_go_on_a_request_line_is_refused_even_when_lenient(fields: Json) -> None:
    # lenient mode lets through what CloudFront would refuse but could be sent; these could not be, as they are.
    with pytest.raises(LambdaValidationError) as refused:
        run("viewer-request", set_fields(**fields), strictness=Strictness(lenient=True))
    assert refused.value.message == MSG_URI


# -- generated and replaced responses (§2.3) ------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request", "origin-response"])
@pytest.mark.parametrize(
    ("status", "ok"),
    [
        ("200", True),
        ("599", True),
        ("404", True),
        ("199", False),
        ("600", False),
        ("0", False),
        ("", False),
        ("2OO", False),
        (" 200", False),
        ("²⁰⁰", False),  # digits to str.isdigit, not to int()
        ("200.0", False),
        (None, False),
        (200.0, False),
        (True, False),
    ],
)
def test_status_is_a_string_from_200_to_599(trigger: Trigger, status: Any, ok: bool) -> None:
    def respond(request: Json, response: Json | None) -> Json:
        result = response if response is not None else {"headers": {}}
        result["status"] = status
        return result

    found = outcome(trigger, respond)
    assert (found is None) == ok, found
    if found:
        assert found[0] == MSG_INVALID


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request", "origin-response"])
@pytest.mark.parametrize(("status", "ok"), [(200, True), (302, True), (599, True), (199, False), (600, False)])
def test_whole_number_status_is_taken_like_its_digit_string(trigger: Trigger, status: int, ok: bool) -> None:
    # §2.3: AWS's "update error statuses" examples set response['status'] = 200 (a JSON number).
    def respond(request: Json, response: Json | None) -> Json:
        result = response if response is not None else {"headers": {}}
        result["status"] = status
        return result

    if not ok:
        detail = f"response.status must be from 200 to 599, got the number {status}"
        assert outcome(trigger, respond) == (MSG_INVALID, detail)
        return
    checked = run(trigger, respond)
    assert checked.violations == ()
    assert checked.value["status"] == str(status)


@pytest.mark.parametrize("trigger", ["origin-response", "viewer-response"])
def test_response_trigger_result_without_status_is_rejected(trigger: Trigger) -> None:
    def drop(request: Json, response: Json | None) -> Json:
        assert response is not None
        del response["status"]
        return response

    found = outcome(trigger, drop)
    assert found is not None
    assert "'status'" in found[1]


@pytest.mark.parametrize(
    ("trigger", "response", "ok"),
    [
        ("viewer-request", {"status": "204", "body": "x"}, False),
        ("viewer-request", {"status": "204", "body": ""}, True),
        ("viewer-request", {"status": "204"}, True),
        ("viewer-request", {"status": "200", "body": "x"}, True),
        ("origin-request", {"status": "204", "body": "x"}, True),  # the RFC 2616 rule is applied at viewer-request
    ],
)
def test_204_with_body_at_viewer_request(trigger: Trigger, response: Json, ok: bool) -> None:
    found = outcome(trigger, lambda request, _: dict(response))
    assert (found is None) == ok
    if found:
        assert found == (MSG_BODY, "a 204 generated at viewer-request cannot have a body")


HEADERS_SIZE = len("Content-Type") + len("text/plain")


@pytest.mark.parametrize(
    ("trigger", "limit"),
    [("viewer-request", 40 * KB), ("origin-request", 1024 * KB)],
)
@pytest.mark.parametrize("over", [0, 1])
@pytest.mark.parametrize("with_headers", [False, True])
def test_generated_response_size_counts_headers_and_body(
    trigger: Trigger, limit: int, over: int, with_headers: bool
) -> None:
    headers = {"content-type": [{"key": "Content-Type", "value": "text/plain"}]} if with_headers else {}
    body = "a" * (limit - (HEADERS_SIZE if with_headers else 0) + over)
    found = outcome(trigger, generated(headers=headers, body=body))
    if over:
        assert found == (MSG_BODY, f"response headers + body are {limit + 1} bytes (limit {limit} at {trigger})")
    else:
        assert found is None


@pytest.mark.parametrize(("trigger", "limit"), [("viewer-response", 40 * KB), ("origin-response", 1024 * KB)])
@pytest.mark.parametrize("over", [0, 1])
def test_replaced_response_body_size(trigger: Trigger, limit: int, over: int) -> None:
    def replace(request: Json, response: Json | None) -> Json:
        assert response is not None
        response["headers"] = {}
        response["body"] = "é" * ((limit + over) // 2) + "a" * ((limit + over) % 2)  # measured in UTF-8 bytes
        return response

    assert (outcome(trigger, replace) is None) == (not over)


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request", "origin-response", "viewer-response"])
@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"body": "!!!", "bodyEncoding": "base64"}, "not valid base64"),
        ({"body": "aGk", "bodyEncoding": "base64"}, "not valid base64"),
        ({"body": "aGk=", "bodyEncoding": "gzip"}, "bodyEncoding must be 'text' or 'base64'"),
        ({"body": 7}, "response.body must be a string, got int"),
        ({"body": {"data": "x"}}, "response.body must be a string, got dict"),
        ({"body": "aGk=", "bodyEncoding": "base64"}, None),
        ({"body": "", "bodyEncoding": "base64"}, None),
        ({"body": "!!!", "bodyEncoding": "text"}, None),
        ({"body": "plain"}, None),
    ],
)
def test_body_encoding(trigger: Trigger, fields: Json, detail: str | None) -> None:
    def respond(request: Json, response: Json | None) -> Json:
        result = response if response is not None else {"status": "200"}
        result.update(fields)
        return result

    found = outcome(trigger, respond)
    if detail is None:
        assert found is None
    else:
        assert found is not None
        assert (found[0], detail in found[1]) == (MSG_BODY, True), found


def test_status_description_must_be_a_string() -> None:
    found = outcome("viewer-request", generated(statusDescription=404))
    assert found == (MSG_INVALID, "response.statusDescription must be a string")


@pytest.mark.parametrize(
    ("description", "forbidden"),
    [
        ("Moved\r\nX-Injected: 1", "'\\r'"),
        ("Moved\n", "'\\n'"),
        ("Moved\x0b", "'\\x0b'"),
        ("\x7f", "'\\x7f'"),
        ("Très bien", None),
        ("Tab\tis fine", None),
    ],
)
def test_status_description_holds_no_control_character(description: str, forbidden: str | None) -> None:
    found = outcome("origin-request", generated(statusDescription=description))
    detail = f"response.statusDescription contains {forbidden} (a control character)"
    assert found == (None if forbidden is None else (MSG_INVALID, detail))


# -- include-body replacement (§1.5) --------------------------------------------------------------------------------


def body(**fields: Any) -> Mutation:
    def mutate(request: Json, response: Json | None) -> Json:
        request["body"] = {"inputTruncated": False, "action": "read-only", "encoding": "base64", "data": ""} | fields
        return request

    return mutate


@pytest.mark.parametrize(("trigger", "limit"), [("viewer-request", 40 * KB), ("origin-request", 1024 * KB)])
@pytest.mark.parametrize(
    ("encoding", "over"),
    [("text", 0), ("text", 1), ("base64", 0), ("base64", 1)],
)
def test_a_replacement_body_over_the_limit_is_no_error(trigger: Trigger, limit: int, encoding: str, over: int) -> None:
    # AWS: an over-size replacement "is truncated" (the pipeline cuts it: tests/test_include_body.py), not refused.
    data = bytes(limit + over)
    encoded = data.decode() if encoding == "text" else base64.b64encode(data).decode()
    assert outcome(trigger, body(action="replace", encoding=encoding, data=encoded)) is None


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"action": "replace", "data": "!!!"}, "not valid base64"),
        ({"action": "replace", "encoding": "gzip", "data": "x"}, "encoding must be 'base64' or 'text'"),
        ({"action": "replace", "encoding": "text", "data": 1}, "data must be a string"),
        ({"action": "write"}, "action must be 'read-only' or 'replace'"),
        ({"action": "read-only", "data": "!!! ignored, the original body is sent"}, None),
        ({"action": "replace", "encoding": "text", "data": "a=1"}, None),
        ({"action": "replace", "data": "YT0x"}, None),
    ],
)
def test_replacement_body_fields(fields: Json, detail: str | None) -> None:
    found = outcome("viewer-request", body(**fields))
    if detail is None:
        assert found is None
    else:
        assert found is not None
        assert (found[0], detail in found[1]) == (MSG_BODY, True), found


def test_request_body_must_be_an_object() -> None:
    found = outcome("viewer-request", set_fields(body="a=1"))
    assert found == (MSG_BODY, "request.body must be an object")


# -- origin rewrites (§1.6) -----------------------------------------------------------------------------------------


def custom_origin(**fields: Any) -> Mutation:
    def mutate(request: Json, response: Json | None) -> Json:
        request["origin"]["custom"].update(fields)
        for name in [name for name, value in fields.items() if value is ...]:
            del request["origin"]["custom"][name]
        return request

    return mutate


LONGEST_DOMAIN = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters, labels of at most 63
CUSTOM_ORIGIN_CASES: list[tuple[str, list[Any], list[Any]]] = [
    # field, bad values, good values
    (
        "domainName",
        ["", "a.example:8080", "192.0.2.10", "2001:db8::1", LONGEST_DOMAIN + "b", "a" * 64, None, ...],
        ["b.example", LONGEST_DOMAIN, "a" * 63],
    ),
    ("port", [0, 79, 81, 442, 444, 1023, 65536, "8080", None, ...], [80, 443, 1024, 8080, 65535]),
    ("protocol", ["ftp", "HTTP", "", None, ...], ["http", "https"]),
    ("path", ["prod", "/prod/", "/", "/" + "a" * 255, 7], ["", "/prod", "/a/b", "/" + "a" * 254, ...]),
    ("readTimeout", [0, 3, 61, "30"], [4, 30, 60, 4.5, ...]),
    ("keepaliveTimeout", [0, 61, "5"], [1, 60, ...]),
    ("sslProtocols", [["TLSv1.3"], ["tlsv1.2"], "TLSv1.2"], [["TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3"], [], ...]),
]


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        (field, value, ok)
        for field, bad, good in CUSTOM_ORIGIN_CASES
        for values, ok in ((bad, False), (good, True))
        for value in values
    ],
)
def test_custom_origin_fields(field: str, value: Any, ok: bool) -> None:
    found = outcome("origin-request", custom_origin(**{field: value}))
    if ok:
        assert found is None
    else:
        assert found is not None
        assert f"request.origin.custom.{field}" in found[1]


@pytest.mark.parametrize("domain", ["127.0.0.1", "localhost"])
def test_loopback_origin_domains_are_allowed_for_local_development(domain: str) -> None:
    assert outcome("origin-request", custom_origin(domainName=domain)) is None


S3 = {"authMethod": "none", "customHeaders": {}, "domainName": "bucket.s3.us-east-1.amazonaws.com", "path": ""}


@pytest.mark.parametrize(
    ("origin", "detail"),
    [
        ({"custom": ORIGIN["custom"], "s3": S3}, "exactly one of 'custom' or 's3'"),
        ({}, "exactly one of 'custom' or 's3'"),
        (None, "exactly one of 'custom' or 's3'"),
        ({"http": ORIGIN["custom"]}, "exactly one of 'custom' or 's3'"),
        ({"s3": "bucket"}, "request.origin.s3 must be an object"),
        ({"s3": S3 | {"domainName": "Bucket.s3.amazonaws.com"}}, "domainName must be lower case"),
        ({"s3": S3 | {"domainName": "b" * 129}}, "domainName must be lower case, 1-128 characters"),
        ({"s3": S3 | {"authMethod": "origin-access-control"}}, "authMethod must be"),
        ({"s3": S3 | {"authMethod": "origin-access-identity"}}, "region is required"),
        ({"s3": S3 | {"path": "/assets/"}}, "path must be"),
        ({"s3": S3}, None),
        ({"s3": S3 | {"domainName": "b" * 128}}, None),
        ({"s3": S3 | {"authMethod": "origin-access-identity", "region": "eu-west-1"}}, None),
    ],
)
def test_origin_is_exactly_one_valid_custom_or_s3(origin: Any, detail: str | None) -> None:
    def mutate(request: Json, response: Json | None) -> Json:
        request["origin"] = copy.deepcopy(origin)
        return request

    found = outcome("origin-request", mutate)
    if detail is None:
        assert found is None
    else:
        assert found is not None
        assert detail in found[1], found


def test_origin_removed_is_rejected() -> None:
    def drop(request: Json, response: Json | None) -> Json:
        del request["origin"]
        return request

    found = outcome("origin-request", drop)
    assert found is not None
    assert "exactly one of 'custom' or 's3'" in found[1]


@pytest.mark.parametrize(
    ("custom_headers", "detail"),
    [
        ({"x-cache": [{"value": "1"}]}, "disallowed header 'x-cache'"),
        ({"x-amz-cf-id": [{"value": "1"}]}, "disallowed header 'x-amz-cf-id'"),
        ({"host": [{"value": "b.example"}]}, "'host' is also in request.headers"),
        ({"x-origin-key": {"value": "1"}}, "must be an array"),
        ({"x-origin-key": [{"value": 1}]}, "must be a string"),
        ({"x-origin-key": [{"value": "k"}]}, None),
    ],
)
def test_origin_custom_headers(custom_headers: Json, detail: str | None) -> None:
    found = outcome("origin-request", custom_origin(customHeaders=custom_headers))
    if detail is None:
        assert found is None
    else:
        assert found is not None
        assert detail in found[1], found


def test_unchanged_origin_is_not_revalidated() -> None:
    """The configured origin is accepted even where a local setup bends CloudFront's ranges (a test origin with a
    0.5 s read timeout); only a handler's change is checked."""
    request = make_request("origin-request", {"Host": "x"})
    request["origin"]["custom"]["readTimeout"] = 0.5
    checked = check_result("origin-request", Snapshot.of(request, None), copy.deepcopy(request))
    assert checked.violations == ()
    request["origin"]["custom"]["path"] = "/v2"
    found = check_result("origin-request", Snapshot.of(make_request("origin-request", {}), None), request)
    assert [v.detail for v in found.violations] == ["request.origin.custom.readTimeout must be 4-60 seconds, got 0.5"]
