"""The edge cache through the proxy, over real sockets, against a scripted origin that logs every request: a miss and
a hit told apart by the origin's log and by which triggers ran; TTLs (with the cache's clock advanced by hand, never
slept on); revalidation; error caching; stale objects; Set-Cookie and Vary; keys; the size bound; invalidation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer

from edgeproxy import cache
from edgeproxy.cache import Cache, CacheKey, Entry
from edgeproxy.policies import CachePolicy
from edgeproxy.server import Options
from edgeproxy.testing import EdgeProxyFactory
from tests.conftest import (
    BINARY,
    PASS_THROUGH,
    Client,
    Clock,
    HandlerWriter,
    ProxyFactory,
    ScriptedOrigin,
    SnippetWriter,
    distribution_from,
)

FOUR = ("viewer-request", "origin-request", "origin-response", "viewer-response")
OPTIMIZED = CachePolicy("CachingOptimized", min_ttl=1, default_ttl=86400, max_ttl=31536000, gzip=True, brotli=True)
ZERO_MIN = CachePolicy("zero", min_ttl=0, default_ttl=60, max_ttl=3600)


def toml(
    origin: str, *, cache_policy: str = '"CachingOptimized"', extra: str = "", functions: str = "", top: str = ""
) -> str:
    text = (
        f'{top}[origins.app]\nurl = "{origin}"\n[default_behavior]\norigin = "app"\n'
        f'allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]\n'
        f"cache_policy = {cache_policy}\n{extra}"
    )
    if functions:
        text += f"[default_behavior.functions]\n{functions}"
    return text


async def served(
    proxy: ProxyFactory, tmp_path: Path, clock: Clock, text: str, *, observers: tuple[object, ...] = ()
) -> Client:
    return await proxy(distribution_from(tmp_path, text), options=Options(debug_headers=True, clock=clock))


def x_cache(response: ClientResponse) -> str:
    return response.headers["X-Cache"].removesuffix(" from cloudfront")


# -- hit and miss ---------------------------------------------------------------------------------------------------


async def test_a_hit_skips_origin_request_the_origin_and_origin_response(
    scripted: ScriptedOrigin, edgeproxy: EdgeProxyFactory, tmp_path: Path, clock: Clock, write_handler: HandlerWriter
) -> None:
    ref = write_handler("pass", PASS_THROUGH)
    scripted.answer(
        "/bytes",
        headers=[("Content-Type", "application/octet-stream"), ("X-Repeated", "1"), ("X-Repeated", "2")],
        body=BINARY,
    )
    functions = "\n".join(f'{trigger} = "{ref}"' for trigger in FOUR)
    (tmp_path / "edgeproxy.toml").write_text(toml(scripted.url, functions=functions))
    proxy = await edgeproxy(config_file=tmp_path / "edgeproxy.toml", clock=clock)
    miss = await proxy.client.get("/bytes")
    assert (miss.status, x_cache(miss), await miss.read()) == (200, "Miss", BINARY)
    assert "Age" not in miss.headers
    clock.advance(7)
    hit = await proxy.client.get("/bytes")
    assert (hit.status, x_cache(hit), await hit.read()) == (200, "Hit", BINARY)
    assert hit.headers["Age"] == "7"
    assert hit.headers.getall("X-Repeated") == ["1", "2"]
    assert hit.headers["Content-Length"] == str(len(BINARY))
    assert scripted.paths() == ["/bytes"]  # the origin saw one request
    assert [invocation.trigger for invocation in proxy.invocations_for(miss)] == list(FOUR)
    assert [invocation.trigger for invocation in proxy.invocations_for(hit)] == ["viewer-request", "viewer-response"]
    [listed] = proxy.cache
    assert (listed.key.url, listed.status, listed.age, listed.ttl, listed.fresh) == ("/bytes", 200, 7, 86400, True)
    assert str(listed.key) == "/bytes | accept-encoding: gzip"  # aiohttp's client accepts gzip and deflate


async def test_the_hits_skipped_stages_are_on_the_exchange(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    from edgeproxy import serving
    from tests.test_exchange import Notes

    scripted.answer("/a")
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    notes = Notes()
    client.app[serving.OBSERVERS].attach(notes)
    await (await client.get("/a")).read()
    await (await client.get("/a")).read()
    miss, hit = notes.done
    assert "cache-lookup" not in miss.skipped
    assert "cache-store" not in miss.skipped
    assert hit.skipped["origin-request"] == hit.skipped["origin"] == hit.skipped["origin-response"] == "cache hit"
    assert hit.skipped["cache-store"] == "served from the cache"
    assert hit.origin_request is None


async def test_what_is_cached_is_the_response_after_origin_response(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock, snippet: SnippetWriter
) -> None:
    scripted.answer("/a", body=b"origin")
    ref = snippet('response["headers"]["x-added"] = [{"key": "X-Added", "value": "by origin-response"}]')
    client = await served(proxy, tmp_path, clock, toml(scripted.url, functions=f'origin-response = "{ref}"'))
    first, second = [await client.get("/a") for _ in range(2)]
    assert [x_cache(first), x_cache(second)] == ["Miss", "Hit"]
    assert second.headers["X-Added"] == "by origin-response"
    assert await second.read() == b"origin"
    assert len(scripted.seen) == 1


async def test_a_generated_origin_request_response_is_cached_and_a_viewer_request_one_is_not(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock, write_handler: HandlerWriter
) -> None:
    generate = write_handler(
        "generate",
        """
        import pathlib
        COUNT = pathlib.Path(__file__).with_suffix(".count")

        def handler(event, context):
            COUNT.write_text(str(int(COUNT.read_text() or 0) + 1) if COUNT.exists() else "1")
            headers = {"cache-control": [{"value": "max-age=60"}]}
            return {"status": "200", "body": "made at the edge", "headers": headers}
        """,
    )
    count = Path(generate.rsplit(":", 1)[0]).with_suffix(".count")
    client = await served(proxy, tmp_path, clock, toml(scripted.url, functions=f'origin-request = "{generate}"'))
    answers = [(x_cache(r), await r.text()) for r in [await client.get("/g") for _ in range(3)]]
    assert answers == [
        ("LambdaGeneratedResponse", "made at the edge"),
        ("Hit", "made at the edge"),
        ("Hit", "made at the edge"),
    ]
    assert count.read_text() == "1"  # later hits do not invoke origin-request

    count.unlink()
    client = await served(proxy, tmp_path, clock, toml(scripted.url, functions=f'viewer-request = "{generate}"'))
    for _ in range(2):
        assert x_cache(await client.get("/g")) == "LambdaGeneratedResponse"
    assert count.read_text() == "2"  # §2.2: viewer-request's responses are never cached
    assert scripted.seen == []


async def test_a_head_is_answered_from_a_cached_get_and_post_is_never_cached(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a", body=b"0123456789")
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    await (await client.get("/a")).read()
    head = await client.head("/a")
    assert (x_cache(head), head.headers["Content-Length"], await head.read()) == ("Hit", "10", b"")
    for _ in range(2):
        assert x_cache(await client.post("/a", data=b"x")) == "Miss"
    assert [seen.method for seen in scripted.seen] == ["GET", "POST", "POST"]


async def test_a_viewers_condition_met_by_the_cached_object_gets_a_304(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a", headers=[("ETag", '"v1"'), ("Last-Modified", "Mon, 01 Jun 2026 10:00:00 GMT")])
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    await (await client.get("/a")).read()
    not_modified = await client.get("/a", headers={"If-None-Match": '"v1"'})
    assert (not_modified.status, x_cache(not_modified), await not_modified.read()) == (304, "Hit", b"")
    assert not_modified.headers["ETag"] == '"v1"'
    since = await client.get("/a", headers={"If-Modified-Since": "Tue, 02 Jun 2026 10:00:00 GMT"})
    assert since.status == 304
    changed = await client.get("/a", headers={"If-None-Match": '"v0"'})
    assert (changed.status, await changed.read()) == (200, b"body")
    assert len(scripted.seen) == 1


# -- TTLs -----------------------------------------------------------------------------------------------------------


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


@pytest.mark.parametrize(
    ("policy", "sent", "ttl"),
    [
        (OPTIMIZED, [], 86400),  # nothing: the default TTL
        (OPTIMIZED, [("Cache-Control", "max-age=0")], 1),  # below the min TTL: the min
        (OPTIMIZED, [("Cache-Control", "max-age=600")], 600),
        (OPTIMIZED, [("Cache-Control", "max-age=99999999999")], 31536000),  # capped at the max TTL
        (OPTIMIZED, [("Cache-Control", "max-age=60, s-maxage=120")], 120),  # s-maxage wins for CloudFront
        (
            OPTIMIZED,
            [("Expires", "Mon, 01 Jun 2026 10:10:00 GMT"), ("Date", "Mon, 01 Jun 2026 10:00:00 GMT")],
            600,
        ),
        (OPTIMIZED, [("Cache-Control", "max-age=30"), ("Expires", "Mon, 01 Jun 2026 11:00:00 GMT")], 30),
        (OPTIMIZED, [("Cache-Control", "no-store")], 1),  # min TTL > 0: cached for the min TTL anyway
        (OPTIMIZED, [("Cache-Control", "private, max-age=600")], 1),
        (ZERO_MIN, [("Cache-Control", "no-cache")], None),  # min TTL 0: respected
        (ZERO_MIN, [("Cache-Control", 'no-cache="Set-Cookie", max-age=50')], 50),  # the field-name form is not
        (ZERO_MIN, [("Cache-Control", "max-age=5000")], 3600),
        (ZERO_MIN, [("Expires", "0")], 0),  # an invalid Expires is in the past
        (
            CachePolicy("big", max_ttl=cache.HUNDRED_YEARS * 2),
            [("Cache-Control", "max-age=9999999999999")],
            cache.HUNDRED_YEARS,
        ),
    ],
)
def test_the_ttl_table(policy: CachePolicy, sent: list[tuple[str, str]], ttl: float | None) -> None:
    freshness = cache.ttl_for(headers(*sent), policy)
    assert (freshness.ttl if freshness is not None else None) == ttl


@pytest.mark.parametrize(
    ("status", "sent", "minimum", "ttl"),
    [
        (404, [], 10, 10.0),
        (404, [("Cache-Control", "max-age=60")], 10, 60.0),
        (404, [("Cache-Control", "no-store")], 10, None),  # respected for 404, 410, 414, 501
        (503, [("Cache-Control", "no-store")], 10, 10.0),  # ignored for the others
        (500, [], 0, 0.0),
        (403, [], 10, None),  # only with max-age or s-maxage
        (403, [("Cache-Control", "s-maxage=30")], 10, 30.0),
        (416, [("Cache-Control", "max-age=30")], 10, None),  # never
        (401, [], 10, None),  # not a status CloudFront caches
        (502, [("Cache-Control", "max-age=99999999999")], 10, 31536000.0),  # capped at the max TTL
    ],
)
def test_the_error_caching_rules(status: int, sent: list[tuple[str, str]], minimum: int, ttl: float | None) -> None:
    assert cache.error_ttl_for(status, headers(*sent), OPTIMIZED, minimum, s3=False) == ttl


def test_errors_under_caching_disabled_and_s3s_one_second_floor() -> None:
    disabled = CachePolicy("CachingDisabled", min_ttl=0, default_ttl=0, max_ttl=0)
    assert cache.error_ttl_for(404, headers(), disabled, 10, s3=False) is None
    assert cache.error_ttl_for(404, headers(), OPTIMIZED, 0, s3=True) == 1.0


async def test_an_object_expires_after_its_ttl(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a", headers=[("Cache-Control", "max-age=5")])
    policy = "{ min_ttl = 10, default_ttl = 60, max_ttl = 100 }"
    client = await served(proxy, tmp_path, clock, toml(scripted.url, cache_policy=policy))
    words = []
    for step in (0, 9, 2):  # max-age 5 under a min TTL of 10: fresh for 10 s
        clock.advance(step)
        words.append(x_cache(await client.get("/a")))
    assert words == ["Miss", "Hit", "RefreshHit"]  # expired: fetched again (no validator: a 200)
    assert len(scripted.seen) == 2


async def test_no_store_under_a_min_ttl_of_zero_is_not_cached(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a", headers=[("Cache-Control", "no-store")])
    client = await served(proxy, tmp_path, clock, toml(scripted.url, cache_policy='"UseOriginCacheControlHeaders"'))
    assert [x_cache(await client.get("/a")) for _ in range(2)] == ["Miss", "Miss"]
    scripted.answer("/b")  # nothing said, and UseOriginCacheControlHeaders' default TTL is 0
    assert [x_cache(await client.get("/b")) for _ in range(2)] == ["Miss", "Miss"]
    scripted.answer("/c", headers=[("Cache-Control", "max-age=60")])
    assert [x_cache(await client.get("/c")) for _ in range(2)] == ["Miss", "Hit"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_307_and_308_are_cached_only_with_cache_control(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock, status: int
) -> None:
    # "CloudFront caches 307 and 308 responses only when you include the Cache-Control header in responses from the
    # origin"; other 3xx "according to the settings in your CloudFront distribution and the headers in the response".
    scripted.answer("/moved", status=status, headers=[("Location", "/new")])
    scripted.answer("/said", status=status, headers=[("Location", "/new"), ("Cache-Control", "public")])
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    moved = [await client.get("/moved", allow_redirects=False) for _ in range(2)]
    assert [(response.status, x_cache(response)) for response in moved] == [
        (status, "Miss"),
        (status, "Miss" if status in (307, 308) else "Hit"),
    ]
    said = [x_cache(await client.get("/said", allow_redirects=False)) for _ in range(2)]
    assert said == ["Miss", "Hit"]  # any Cache-Control header; its lifetime (none here: the default TTL)


# -- revalidation and stale objects ---------------------------------------------------------------------------------


async def test_an_expired_object_is_revalidated_and_a_304_is_a_refresh_hit(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock, write_handler: HandlerWriter
) -> None:
    from tests.conftest import RECORD_EVENTS, recorded_events

    ref = write_handler("recorder", RECORD_EVENTS)
    scripted.answer("/a", headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=10")], body=b"version 1")
    functions = f'origin-request = "{ref}"\norigin-response = "{ref}"'
    client = await served(proxy, tmp_path, clock, toml(scripted.url, functions=functions))
    await (await client.get("/a")).read()
    clock.advance(11)
    refreshed = await client.get("/a")
    assert (refreshed.status, x_cache(refreshed), await refreshed.read()) == (200, "RefreshHit", b"version 1")
    assert refreshed.headers["Age"] == "0"
    assert scripted.last.header("If-None-Match") == ['"v1"']
    events: list[Any] = recorded_events(ref)
    assert events[2]["Records"][0]["cf"]["request"]["headers"]["if-none-match"][0]["value"] == '"v1"'
    assert events[3]["Records"][0]["cf"]["response"]["status"] == "304"  # origin-response sees the 304
    clock.advance(5)
    assert x_cache(await client.get("/a")) == "Hit"  # fresh again for its TTL
    scripted.answer("/a", headers=[("ETag", '"v2"'), ("Cache-Control", "max-age=10")], body=b"version 2")
    clock.advance(10)
    changed = await client.get("/a")
    assert (x_cache(changed), await changed.read()) == ("RefreshHit", b"version 2")  # a 200 to the revalidation
    assert x_cache(await client.get("/a")) == "Hit"
    assert len(scripted.seen) == 3


async def test_a_refresh_hit_keeps_the_cached_header_order_with_the_304s_values_in_place(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer(
        "/a", headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=10"), ("X-Version", "1")], body=b"version 1"
    )
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    await (await client.get("/a")).read()
    hit = await client.get("/a")
    scripted.answer(
        "/a", headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=10"), ("X-Version", "2")], body=b"version 1"
    )
    clock.advance(11)
    refreshed = await client.get("/a")
    assert x_cache(refreshed) == "RefreshHit"
    assert list(refreshed.headers) == list(hit.headers)  # the order as cached (and as a hit sends it)
    assert (refreshed.headers["X-Version"], refreshed.headers["Content-Length"]) == ("2", "9")


def test_merged_headers_replace_in_place_and_append_what_is_new() -> None:
    stored = headers(("Content-Type", "text/plain"), ("Date", "d1"), ("X-Two", "a"), ("X-Two", "b"), ("ETag", "e"))
    fresh = headers(("Date", "d2"), ("x-two", "c"), ("Content-Type", "text/html"), ("X-New", "n"))
    merged = cache.merged_headers(stored, fresh, keep=("Content-Type",))
    assert list(merged.items()) == [
        ("Content-Type", "text/plain"),
        ("Date", "d2"),
        ("x-two", "c"),
        ("ETag", "e"),
        ("X-New", "n"),
    ]


async def test_a_stale_object_stands_in_for_an_origin_5xx_for_the_error_caching_min_ttl(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a", headers=[("Cache-Control", "max-age=10")], body=b"good")
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    await (await client.get("/a")).read()
    scripted.answer("/a", status=503, body=b"down")
    clock.advance(11)
    stale = await client.get("/a")
    assert (stale.status, await stale.read()) == (200, b"good")
    clock.advance(5)
    assert (await (await client.get("/a")).read()) == b"good"
    assert len(scripted.seen) == 2  # within the 10 s, the origin is not asked again
    clock.advance(6)
    await (await client.get("/a")).read()
    assert len(scripted.seen) == 3
    scripted.answer("/a", status=404, body=b"gone")
    clock.advance(11)
    gone = await client.get("/a")
    assert (gone.status, x_cache(gone), await gone.read()) == (404, "Error", b"gone")  # a 4xx is passed on


async def test_stale_if_error_zero_passes_the_error_on(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a", headers=[("Cache-Control", "max-age=10, stale-if-error=0")], body=b"good")
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    await (await client.get("/a")).read()
    scripted.answer("/a", status=502, body=b"bad")
    clock.advance(11)
    assert (await client.get("/a")).status == 502


async def test_a_stale_object_stands_in_for_an_origin_that_cannot_be_reached(
    proxy: ProxyFactory, tmp_path: Path, clock: Clock, aiohttp_server: AiohttpServer
) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="up", headers={"Cache-Control": "max-age=10"})

    app = web.Application()
    app.router.add_get("/a", page)
    server = await aiohttp_server(app)
    client = await served(proxy, tmp_path, clock, toml(f"http://127.0.0.1:{server.port}"))
    await (await client.get("/a")).read()
    await server.close()
    clock.advance(11)
    stale = await client.get("/a")
    assert (stale.status, await stale.text(), x_cache(stale)) == (200, "up", "RefreshHit")


# -- error caching through the proxy --------------------------------------------------------------------------------


async def test_a_404_is_cached_for_ten_seconds_and_a_403_only_with_max_age(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/missing", status=404, body=b"no")
    scripted.answer("/denied", status=403, body=b"no")
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    first = await client.get("/missing")
    clock.advance(9)
    second = await client.get("/missing")
    assert [x_cache(first), x_cache(second), second.headers.get("Age")] == ["Error", "Error", "9"]
    clock.advance(2)
    await client.get("/missing")
    assert scripted.paths() == ["/missing", "/missing"]
    for _ in range(2):
        assert (await client.get("/denied")).status == 403
    assert scripted.paths().count("/denied") == 2


async def test_caching_disabled_caches_no_error(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/missing", status=404)
    client = await served(proxy, tmp_path, clock, toml(scripted.url, cache_policy='"CachingDisabled"'))
    for _ in range(2):
        assert (await client.get("/missing")).status == 404
    assert len(scripted.seen) == 2


# -- Set-Cookie and Vary --------------------------------------------------------------------------------------------


async def test_set_cookie_is_removed_unless_cookies_are_forwarded(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a", headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    assert "Set-Cookie" not in (await client.get("/a")).headers
    forwarding = '{ cookies = "all" }'
    client = await served(proxy, tmp_path, clock, toml(scripted.url, cache_policy=forwarding))
    first = await client.get("/a")
    client.session.cookie_jar.clear()  # the same viewer cookies (none), so the same key
    hit = await client.get("/a")
    assert first.headers.getall("Set-Cookie") == hit.headers.getall("Set-Cookie") == ["a=1", "b=2"]  # replayed
    assert x_cache(hit) == "Hit"


async def test_no_cache_set_cookie_keeps_set_cookie_out_of_the_cache(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a", headers=[("Set-Cookie", "a=1"), ("Cache-Control", 'no-cache="Set-Cookie", max-age=60')])
    client = await served(proxy, tmp_path, clock, toml(scripted.url, cache_policy='{ cookies = "all" }'))
    first = await client.get("/a")
    client.session.cookie_jar.clear()
    hit = await client.get("/a")
    assert (first.headers.getall("Set-Cookie"), x_cache(hit), hit.headers.getall("Set-Cookie", [])) == (
        ["a=1"],
        "Hit",
        [],
    )


async def test_vary_keeps_only_what_cloudfront_passes_on(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a", headers=[("Vary", "Accept-Encoding, X-Theme, Accept-Language"), ("Vary", "User-Agent")])
    client = await served(proxy, tmp_path, clock, toml(scripted.url, cache_policy='{ headers = ["Accept-Language"] }'))
    assert (await client.get("/a")).headers.getall("Vary") == ["Accept-Encoding, Accept-Language"]


# -- keys -----------------------------------------------------------------------------------------------------------


async def test_the_key_holds_the_policys_query_strings_headers_cookies_and_encoding(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a")
    policy = (
        '{ query_strings = { include = ["v"] }, headers = ["X-Theme"], cookies = { include = ["s"] }, gzip = true }'
    )
    client = await served(proxy, tmp_path, clock, toml(scripted.url, cache_policy=policy))
    requests = [
        ("/a?v=1", {}),
        ("/a?v=1&other=2", {}),  # not in the key: the same object
        ("/a?v=2", {}),
        ("/a?v=1", {"X-Theme": "dark"}),
        ("/a?v=1", {"x-theme": "dark"}),  # header names are case-insensitive
        ("/a?v=1", {"Cookie": "s=1; t=2"}),
        ("/a?v=1", {"Cookie": "t=3; s=1"}),
        ("/a?v=1", {"Accept-Encoding": "gzip"}),  # aiohttp's client sends "gzip, deflate": normalised to the same
        ("/a?v=1", {"Accept-Encoding": "br"}),  # gzip only: no encoding in the key
        ("/a?v=1", {"Accept-Encoding": "identity"}),
    ]
    words = [x_cache(await client.get(path, headers=sent)) for path, sent in requests]
    assert words == ["Miss", "Hit", "Miss", "Miss", "Hit", "Miss", "Hit", "Hit", "Miss", "Hit"]


async def test_options_is_cached_apart_when_cached_methods_say_so(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/a")
    extra = 'cached_methods = ["GET", "HEAD", "OPTIONS"]\n'
    client = await served(proxy, tmp_path, clock, toml(scripted.url, extra=extra))
    words = [x_cache(await client.request(method, "/a")) for method in ("GET", "OPTIONS", "OPTIONS", "GET")]
    assert words == ["Miss", "Miss", "Hit", "Hit"]
    client = await served(proxy, tmp_path, clock, toml(scripted.url))
    assert [x_cache(await client.options("/a")) for _ in range(2)] == ["Miss", "Miss"]


# -- size and eviction ----------------------------------------------------------------------------------------------


async def test_a_body_larger_than_the_cache_streams_through_uncached(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/big", body=BINARY * 4)  # 64 KiB
    text = toml(scripted.url, top='[distribution]\ncache_size = "16KB"\n')
    client = await served(proxy, tmp_path, clock, text)
    for _ in range(2):
        response = await client.get("/big")
        assert (x_cache(response), await response.read()) == ("Miss", BINARY * 4)
    assert len(scripted.seen) == 2


def entry_of(path: str, size: int, stored: float = 0.0) -> Entry:
    return Entry(CacheKey(path), 200, None, CIMultiDict(), b"x" * size, stored, 60, 60)


def test_the_least_recently_used_object_goes_first() -> None:
    store = Cache(max_bytes=3 * entry_of("/a", 1000).size)
    for path in ("/a", "/b", "/c"):
        assert store.put(entry_of(path, 1000))
    store.get(CacheKey("/a"))  # /a used: /b is now the least recently used
    store.put(entry_of("/d", 1000))
    assert [entry.key.path for entry in store] == ["/c", "/a", "/d"]
    assert not store.put(entry_of("/huge", 10_000))
    assert store.bytes <= store.max_bytes


# -- invalidation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "url", "covered"),
    [
        ("/images/a.jpg", "/images/a.jpg", True),
        ("/images/a.jpg", "/images/A.jpg", False),  # case-sensitive
        ("/images/a.jpg", "/images/a.jpg?size=2", False),  # a query string variant needs its own path or a *
        ("/images/a.jpg*", "/images/a.jpg?size=2", True),
        ("/images/*", "/images/deep/b.png", True),
        ("/images*", "/images", True),
        ("/*", "/anything?at=all", True),
        ("/im*ges/a.jpg", "/images/a.jpg", False),  # a * elsewhere is the character itself
        ("/im*ges/a.jpg", "/im*ges/a.jpg", True),
    ],
)
def test_cloudfronts_invalidation_path_rules(pattern: str, url: str, covered: bool) -> None:
    assert cache.covers(pattern, url) is covered


def test_invalidation_paths_are_checked() -> None:
    assert cache.invalidation_problem("images/a.jpg") is not None
    assert cache.invalidation_problem("/a~b") is not None
    assert cache.invalidation_problem("/x" * 2001) is not None
    assert cache.invalidation_problem("/images/*") is None


# -- recording ------------------------------------------------------------------------------------------------------


async def test_a_recording_holds_misses_and_hits_and_replays_them_byte_for_byte(
    scripted: ScriptedOrigin, edgeproxy: EdgeProxyFactory, tmp_path: Path
) -> None:

    scripted.answer("/bytes", headers=[("Content-Type", "application/octet-stream")], body=BINARY)
    recording = tmp_path / "cached.har"
    live = await edgeproxy(origin=scripted.url, cache_policy="CachingOptimized", recording=recording, record_mode="all")
    recorded = [await (await live.client.get("/bytes")).read() for _ in range(2)]
    await live.close()
    entries = json.loads(recording.read_text())["log"]["entries"]
    assert [entry["_origin"] is None for entry in entries] == [False, True]
    assert entries[1]["_skipped"]["origin"] == "cache hit"
    offline = await edgeproxy(
        origin=scripted.url, cache_policy="CachingOptimized", recording=recording, record_mode="none"
    )
    replayed = [await offline.client.get("/bytes") for _ in range(2)]
    assert [x_cache(response) for response in replayed] == ["Miss", "Hit"]
    assert [await response.read() for response in replayed] == recorded == [BINARY, BINARY]
    assert len(scripted.seen) == 1  # only the first, live, miss reached the origin
