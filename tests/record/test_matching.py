"""record/matching.py: which recorded origin request an origin request is, and the diagnostic for one that is none."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict
from yarl import URL

from edgeproxy.origin import OriginRequest
from edgeproxy.record.matching import DEFAULT_MATCH_ON, Call, Index, match_on
from edgeproxy.record.redact import Redactor


def call(
    path: str = "/v1/items",
    query: str = "a=1&b=2",
    *,
    method: str = "GET",
    host: str = "api.example.com",
    **more: object,
) -> Call:
    headers = CIMultiDict([("Host", host), ("X-Amz-Cf-Id", str(more.pop("request_id", "id-1")))])
    headers.extend(more.pop("headers", None) or {})  # type: ignore[arg-type]
    request = OriginRequest(method, "custom", host, "https", 443, path, query, headers)
    return Call.of(request, more.pop("body", None), Redactor.make(["token"]))  # type: ignore[arg-type]


def test_default_is_method_host_path_and_the_raw_query_in_order() -> None:
    assert DEFAULT_MATCH_ON == ("method", "host", "path", "query")
    index = Index()
    index.add(call(), "answer")
    assert index.find(call(request_id="another-id")) == "answer"
    assert index.find(call(host="API.example.com")) == "answer"  # host names are case-insensitive
    for other in (call(query="b=2&a=1"), call(method="POST"), call("/v1/other"), call(host="eu.example.com")):
        assert index.find(other) is None


def test_identical_requests_get_their_answers_in_order_then_the_last_again() -> None:
    index = Index()
    for n in (1, 2):
        index.add(call(), f"answer {n}")
    assert [index.find(call()) for _ in range(4)] == ["answer 1", "answer 2", "answer 2", "answer 2"]


def test_redacted_values_never_decide_a_match() -> None:
    index = Index()
    index.add(call(query="token=[REDACTED]&a=1"), "answer")  # as the recording holds it
    assert index.find(call(query="token=live-secret&a=1")) == "answer"


@pytest.mark.parametrize(
    ("on", "live", "matches"),
    [
        ("headers", call(request_id="x"), True),  # the request id is never compared
        ("headers", call(host="other.example.com"), False),
        ("body", call(body=b"data"), False),
        ("uri", call(query="a=1&b=2"), True),
        ("port", call("/elsewhere"), True),
    ],
)
def test_other_matchers(on: str, live: Call, matches: bool) -> None:
    index = Index(match_on([on]))
    index.add(call(), "answer")
    assert (index.find(live) is not None) == matches


def test_a_miss_names_the_nearest_recorded_request_and_what_differed() -> None:
    index = Index()
    index.add(call("/v1/items", "a=1"), "x")
    index.add(call("/v2/else", "z=9", method="POST"), "y")
    assert index.nearest(call("/v1/items", "a=2")) == (
        "GET https://api.example.com:443/v1/items?a=2 matches no recorded origin request (on method, host, path, "
        "query); nearest recorded: GET https://api.example.com:443/v1/items?a=1: query 'a=1' != 'a=2'"
    )
    assert "holds no origin requests" in Index().nearest(call())


def test_match_on_names() -> None:
    assert match_on(["method,path", "query"]) == ("method", "path", "query")
    assert match_on([]) == DEFAULT_MATCH_ON
    with pytest.raises(ValueError, match="unknown matcher 'colour'"):
        match_on(["colour"])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/items/0?page=0",
        "https://API.Example.com:443/a/../b?x=1&x=2",  # raw: no dot segments resolved, the host in lower case
        "http://h:80/p?",
        "http://h:1/",
        "http://h:1/p?q?r=1",
        "http://h:1/%7e/a%2Fb;v?a=%20",
        "http://xn--bcher-kva.ch:80/a",  # as written: not decoded
        "http://Bücher.ch:80/a",  # a config's IDNA domain name, as yarl gives it (decoded)
        # shapes edgeproxy does not write, split by yarl
        "http://h/p",
        "https://h/p",
        "http://user@h:1/p",
        "http://[::1]:8080/p?a",
        "http://h:1/p#fragment",
        "http://h:1",
    ],
)
def test_a_recorded_url_is_split_as_yarl_splits_it_the_host_as_written(url: str) -> None:
    parsed = URL(url, encoded=True)
    assert parsed.raw_host is not None
    recorded = Call.recorded({"method": "GET", "url": url})
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    expected = (parsed.scheme, parsed.raw_host.lower(), port, parsed.raw_path, parsed.raw_query_string)
    assert (recorded.scheme, recorded.host, recorded.port, recorded.path, recorded.query) == expected


_SAFE = "abcXYZ019-._~!$&'()*+,;=:@%"
_HOSTS = ["origin.example.com", "API.Example.COM", "127.0.0.1", "localhost", "a-b.c", "xn--bcher-kva.ch", "bücher.ch"]


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=st.sampled_from(_HOSTS),
    port=st.integers(1, 65535),
    path=st.lists(st.text(_SAFE + "/", max_size=8), max_size=4).map("/".join),
    query=st.text(_SAFE + "/?", max_size=12),
)
def test_a_recorded_origin_request_is_the_live_one_it_was_recorded_from(
    scheme: str, host: str, port: int, path: str, query: str
) -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    request = OriginRequest("GET", "custom", host, scheme, port, "/" + path, query, headers)
    live = Call.of(request, None, Redactor())
    recorded = Call.recorded({"method": "GET", "url": live.uri}, headers=False, body=False)
    assert recorded == live


JSON = {"Content-Type": "application/json; charset=utf-8"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
XMLRPC = {"Content-Type": "text/xml", "User-Agent": "Python-xmlrpc/3.11"}
CALL_XML = (
    "<?xml version='1.0'?><methodCall><methodName>add</methodName><params>"
    "<param><value><struct>{}</struct></value></param></params></methodCall>"
)
A, B = (f"<member><name>{name}</name><value><int>{n}</int></value></member>" for name, n in (("a", 1), ("b", 2)))
A_B, B_A = A + B, B + A


@pytest.mark.parametrize(
    ("headers", "recorded", "live", "same"),
    [
        (JSON, b'{"a": 1, "b": [1, 2]}', b'{"b":[1,2],"a":1}', True),  # JSON compared as values
        (JSON, b'{"a": 1, "b": [1, 2]}', b'{"a": 1, "b": [2, 1]}', False),
        (JSON, b"not json", b"not json", True),  # falls back on the raw bytes
        (JSON, b"not json", b"not  json", False),
        (FORM, b"a=1&b=2&a=3", b"b=2&a=1&a=3", True),  # form pairs, each name's values in order (vcrpy's parse_qs)
        (FORM, b"a=1&b=2&a=3", b"a=3&b=2&a=1", False),
        (FORM, b"a=%41", b"a=A", True),
        (XMLRPC, CALL_XML.format(A_B).encode(), CALL_XML.format(B_A).encode(), True),
        (
            XMLRPC,
            *[CALL_XML.format("<member><name>d</name><value><base64>eA==</base64></value></member>").encode()] * 2,
            True,
        ),
        ({}, b'{"a": 1, "b": 2}', b'{"b": 2, "a": 1}', False),  # no Content-Type: raw
    ],
)
def test_body_is_vcrpys_the_body_read_by_content_type(
    headers: dict[str, str], recorded: bytes, live: bytes, same: bool
) -> None:
    for on, expected in (("body", same), ("raw_body", recorded == live)):
        index = Index(match_on([on]))
        index.add(call(method="POST", body=recorded, headers=headers), "answer")
        assert (index.find(call(method="POST", body=live, headers=headers)) is not None) == expected, on
