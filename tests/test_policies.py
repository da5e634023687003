"""Cache and origin request policies: the managed ones, inline ones and their config errors, and, through the proxy
over real sockets, what the origin and the origin-request event get (the union of the two policies, plus CloudFront's
own headers) while viewer-request sees the viewer's request whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgeproxy import config, policies
from edgeproxy.errors import ConfigError
from edgeproxy.policies import CachePolicy, Selection
from tests.conftest import (
    RECORD_EVENTS,
    Clock,
    HandlerWriter,
    Origin,
    ProxyFactory,
    distribution_from,
    recorded_events,
)

ALL_METHODS = '["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]'


def behavior_toml(origin: str, *, cache: str | None = None, orp: str | None = None, functions: str = "") -> str:
    lines = [f'[origins.app]\nurl = "{origin}"\n[default_behavior]\norigin = "app"\nallowed_methods = {ALL_METHODS}']
    if cache is not None:
        lines.append(f"cache_policy = {cache}")
    if orp is not None:
        lines.append(f"origin_request_policy = {orp}")
    if functions:
        lines.append(f"[default_behavior.functions]\n{functions}")
    return "\n".join(lines) + "\n"


def cf(event: Any) -> Any:
    return event["Records"][0]["cf"]


# -- the managed policies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["CachingOptimized", "Managed-CachingOptimized", "658327ea-f89d-4fab-a63d-7e88639e58f6"]
)
def test_a_managed_cache_policy_is_named_with_or_without_managed_or_by_id(name: str) -> None:
    policy = policies.managed_cache_policy(name)
    assert policy is not None
    assert (policy.name, policy.min_ttl, policy.default_ttl, policy.max_ttl) == ("CachingOptimized", 1, 86400, 31536000)
    assert (policy.gzip, policy.brotli, policy.headers.kind, policy.cookies.kind) == (True, True, "none", "none")


def test_managed_policies_have_the_settings_aws_publishes() -> None:
    disabled = policies.managed_cache_policy("CachingDisabled")
    assert disabled is not None
    assert disabled.caching_disabled
    uocch = policies.managed_cache_policy("UseOriginCacheControlHeaders")
    assert uocch is not None
    assert (uocch.default_ttl, uocch.cookies.kind, uocch.query_strings.kind) == (0, "all", "none")
    media = policies.managed_cache_policy("Elemental-MediaPackage")
    assert media is not None
    assert (media.gzip, media.brotli) == (True, False)
    cors = policies.managed_origin_request_policy("Managed-CORS-S3Origin")
    assert cors is not None
    assert cors.headers == policies.include("origin", "access-control-request-headers", "access-control-request-method")
    all_cf = policies.managed_origin_request_policy("33f36d7e-f396-46d9-90e0-52428a34d9dc")
    assert all_cf is not None
    assert all_cf.name == "AllViewerAndCloudFrontHeaders-2022-06"
    assert len(all_cf.cloudfront_headers) == 21
    assert "cloudfront-viewer-ja3-fingerprint" not in all_cf.cloudfront_headers


def test_a_behavior_naming_neither_policy_is_the_legacy_default() -> None:
    assert policies.for_behavior(None, None, source="s", key="k") is policies.LEGACY
    assert policies.LEGACY.caching_disabled
    assert policies.LEGACY.legacy


def test_the_union_of_two_selections() -> None:
    a, b = Selection("include", frozenset({"a"})), Selection("exclude", frozenset({"a", "b"}))
    union = a.union(b)
    assert (union.selects("a"), union.selects("b"), union.selects("c")) == (True, False, True)
    assert Selection().union(a) == a
    assert a.union(Selection("all")).kind == "all"


@pytest.mark.parametrize(
    ("values", "gzip", "brotli", "expected"),
    [
        (["gzip, deflate, br"], True, True, ("br,gzip", "br,gzip")),
        (["gzip"], True, True, ("gzip", "gzip")),
        (["br;q=1.0, gzip;q=0"], True, True, ("br", "br")),
        (["deflate"], True, True, (None, "identity")),
        ([], True, True, (None, None)),
        (["br, gzip"], True, False, ("gzip", "gzip")),
        (["br, gzip"], False, True, ("br", "br")),
    ],
)
def test_accept_encoding_is_normalised_per_the_flags(
    values: list[str], gzip: bool, brotli: bool, expected: tuple[str | None, str | None]
) -> None:
    policy = CachePolicy("p", gzip=gzip, brotli=brotli)
    assert policies.normalised_accept_encoding(values, policy) == expected


def test_query_strings_and_cookies_are_selected_by_name_in_order() -> None:
    keep = policies.include("b", "a")
    assert policies.select_query("a=1&c=3&b=2&a=4;x", keep) == "a=1&b=2&a=4;x"
    assert policies.select_query("A=1", keep) == ""  # names are case-sensitive
    assert policies.select_cookies(["z=1; a=2", "b=3"], Selection("all")) == "a=2; b=3; z=1"
    assert policies.select_cookies(["not a cookie"], Selection("all")) is None


# -- config errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache", "orp", "key", "problem"),
    [
        ('"CachingFast"', None, "default_behavior.cache_policy", "no managed cache policy is named 'CachingFast'"),
        (None, '"AllViewer"', "default_behavior.origin_request_policy", "needs a cache_policy"),
        ("{ min_ttl = 10, default_ttl = 5 }", None, "default_behavior.cache_policy", "min_ttl <= default_ttl"),
        (
            '{ max_ttl = 0, default_ttl = 0, headers = ["Authorization"] }',
            None,
            "default_behavior.cache_policy.headers",
            "caching disabled",
        ),
        ("{ max_ttl = 0, default_ttl = 0, gzip = true }", None, "default_behavior.cache_policy.gzip", "disabled"),
        (
            '{ headers = ["CloudFront-Viewer-Address"] }',
            None,
            "default_behavior.cache_policy.headers",
            "not in a cache policy",
        ),
        ('{ headers = ["Accept-Encoding"], gzip = true }', None, "default_behavior.cache_policy.headers", "gzip"),
        (
            '"CachingOptimized"',
            '{ headers = { include = ["Authorization"] } }',
            "default_behavior.origin_request_policy.headers",
            "Authorization",
        ),
        (
            '"CachingOptimized"',
            '{ headers = { include = ["CloudFront-Viewer-Planet"] } }',
            "default_behavior.origin_request_policy.headers",
            "not one of CloudFront's headers",
        ),
        (
            '{ query_strings = { include = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"] } }',
            None,
            "default_behavior.cache_policy.query_strings.include",
            "quota is 10",
        ),
        ('{ cookies = "some" }', None, "default_behavior.cache_policy.cookies", 'is not "none", "all"'),
        ("5", None, "default_behavior.cache_policy", "a managed policy's name or id, or an inline table"),
    ],
)
def test_a_bad_policy_names_the_file_the_key_and_the_problem(
    cache: str | None, orp: str | None, key: str, problem: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as raised:
        distribution_from(tmp_path, behavior_toml("http://127.0.0.1:1", cache=cache, orp=orp))
    assert raised.value.source.endswith("edgeproxy.toml")
    assert raised.value.key == key
    assert problem in raised.value.problem


def test_policies_given_in_python_are_checked_as_a_file_would_be() -> None:
    with pytest.raises(ConfigError) as raised:
        config.from_flags("http://127.0.0.1:1", {}, cache_policy={"query_strings": "some"})
    assert (raised.value.source, raised.value.key) == ("command line", "default_behavior.cache_policy.query_strings")
    behavior = config.from_flags("http://127.0.0.1:1", {}, cache_policy="CachingOptimized").default_behavior
    assert behavior.policies.cache.name == "CachingOptimized"


def test_cached_methods_must_be_allowed(tmp_path: Path) -> None:
    toml = '[origins.app]\nurl = "http://127.0.0.1:1"\n[default_behavior]\norigin = "app"\n'
    toml += 'cache_policy = "CachingOptimized"\ncached_methods = ["GET", "HEAD", "OPTIONS"]\n'
    with pytest.raises(ConfigError, match="OPTIONS can be cached only where it is allowed"):
        distribution_from(tmp_path, toml)


# -- what reaches the origin, through the proxy ---------------------------------------------------------------------

VIEWER_HEADERS = [
    ("X-Custom", "v"),
    ("Accept-Language", "de"),
    ("Cookie", "z=1; session=abc; a=2"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Authorization", "Bearer t"),
]


async def test_caching_disabled_alone_sends_the_origin_the_path_and_cloudfronts_own_headers(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path, write_handler: HandlerWriter
) -> None:
    ref = write_handler("recorder", RECORD_EVENTS)
    toml = behavior_toml(
        origin.url,
        cache='"CachingDisabled"',
        functions=f'viewer-request = "{ref}"\norigin-request = "{ref}"',
    )
    client = await proxy(distribution_from(tmp_path, toml))
    response = await client.get("/page?q=1&lang=de", headers=VIEWER_HEADERS)
    assert response.status == 200
    seen = origin.last
    assert seen.raw_path == "/page"  # no query string
    names = {name.lower() for name, _ in seen.headers}
    assert names.isdisjoint({"x-custom", "accept-language", "cookie", "authorization", "accept-encoding"})
    assert seen.header("User-Agent") == ["Amazon CloudFront"]
    assert seen.header("Host") == [origin.url.removeprefix("http://").split(":")[0]]
    viewer_request, origin_request = (cf(event)["request"] for event in recorded_events(ref))
    # viewer-request sees what the viewer sent; origin-request sees what the origin gets
    assert viewer_request["querystring"] == "q=1&lang=de"
    assert viewer_request["headers"]["x-custom"] == [{"key": "X-Custom", "value": "v"}]
    assert origin_request["querystring"] == ""
    assert "x-custom" not in origin_request["headers"]
    assert "cookie" not in origin_request["headers"]


async def test_the_origin_gets_the_union_of_the_cache_key_and_the_origin_request_policy(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path, write_handler: HandlerWriter
) -> None:
    ref = write_handler("recorder", RECORD_EVENTS)
    cache = (
        '{ headers = ["Accept-Language"], cookies = { include = ["session"] }, query_strings = { include = ["q"] } }'
    )
    orp = '{ headers = { include = ["X-Custom"] }, cookies = { include = ["a"] }, query_strings = { include = ["p"] } }'
    toml = behavior_toml(origin.url, cache=cache, orp=orp, functions=f'origin-request = "{ref}"')
    client = await proxy(distribution_from(tmp_path, toml))
    assert (await client.get("/page?p=1&x=2&q=3", headers=VIEWER_HEADERS)).status == 200
    seen = origin.last
    assert seen.raw_path == "/page?p=1&q=3"  # in the viewer's order, x removed
    assert seen.header("Accept-Language") == ["de"]
    assert seen.header("X-Custom") == ["v"]
    assert seen.header("Cookie") == ["a=2; session=abc"]  # the selected ones, sorted by name
    assert seen.header("Authorization") == []
    assert seen.header("Accept-Encoding") == []  # neither flag: an ordinary header, not selected
    assert seen.header("User-Agent") == ["Amazon CloudFront"]
    [event] = recorded_events(ref)
    request = cf(event)["request"]
    assert request["querystring"] == "p=1&q=3"
    assert request["headers"]["cookie"] == [{"key": "Cookie", "value": "a=2; session=abc"}]


async def test_all_viewer_except_host_forwards_the_viewers_request_but_host(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    toml = behavior_toml(origin.url, cache='"CachingOptimized"', orp='"AllViewerExceptHostHeader"')
    client = await proxy(distribution_from(tmp_path, toml))
    assert (await client.get("/page?b=2&a=1", headers=VIEWER_HEADERS)).status == 200
    seen = origin.last
    assert seen.raw_path == "/page?b=2&a=1"
    assert seen.header("X-Custom") == ["v"]
    assert seen.header("Authorization") == ["Bearer t"]
    assert seen.header("User-Agent") == ["Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"]  # forwarded, so the viewer's
    assert seen.header("Accept-Encoding") == ["br,gzip"]  # CachingOptimized's gzip and brotli flags
    assert seen.header("Cookie") == ["a=2; session=abc; z=1"]
    assert seen.header("Host") != ["localhost"]
    assert seen.header("Via")[0].endswith(".cloudfront.net (CloudFront)")


async def test_all_viewer_forwards_the_viewers_host(origin: Origin, proxy: ProxyFactory, tmp_path: Path) -> None:
    toml = behavior_toml(origin.url, cache='"CachingDisabled"', orp='"AllViewer"')
    client = await proxy(distribution_from(tmp_path, toml))
    assert (await client.get("/", headers={"Host": "www.example.com"})).status == 200
    assert origin.last.header("Host") == ["www.example.com"]


async def test_a_body_keeps_its_content_length_whatever_the_policies_forward(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    # Framing, not a header a policy selects: without it the origin got the body chunked.
    toml = behavior_toml(origin.url, cache='"CachingOptimized"')
    client = await proxy(distribution_from(tmp_path, toml))
    assert (await client.post("/form", data=b"hello")).status == 200
    assert origin.last.header("Content-Length") == ["5"]
    assert origin.last.header("Transfer-Encoding") == []
    assert origin.last.body == b"hello"


async def test_a_behavior_without_policies_forwards_everything_as_before(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url)
    assert (await client.get("/page?b=2", headers=VIEWER_HEADERS)).status == 200
    seen = origin.last
    assert seen.raw_path == "/page?b=2"
    assert seen.header("Cookie") == ["z=1; session=abc; a=2"]  # as the viewer wrote it
    assert seen.header("Accept-Encoding") == ["gzip, deflate, br"]
    assert seen.header("User-Agent") == ["Amazon CloudFront"]
    assert (await client.get("/status/200")).headers["X-Cache"] == "Miss from cloudfront"


async def test_managed_all_viewer_policies_withhold_s3s_response_header_parameters(
    proxy: ProxyFactory, tmp_path: Path, write_handler: HandlerWriter, clock: Clock
) -> None:
    ref = write_handler("recorder", RECORD_EVENTS)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("a")
    toml = (
        '[origins.site]\ndirectory = "site"\n[default_behavior]\norigin = "site"\n'
        'cache_policy = "CachingDisabled"\norigin_request_policy = "AllViewer"\n'
        f'[default_behavior.functions]\norigin-request = "{ref}"\n'
    )
    client = await proxy(distribution_from(tmp_path, toml))
    assert (await client.get("/a.txt?response-content-type=text/html&v=1")).status == 200
    [event] = recorded_events(ref)
    assert cf(event)["request"]["querystring"] == "v=1"
