"""Custom error responses (§5.6), through the proxy over real sockets: the page is fetched through the behavior its
path matches, without viewer-request; viewer-response is skipped; ``response_code`` replaces the status; a page that
cannot be fetched gives its own origin's status; the error is cached for ``error_caching_min_ttl``; an origin that
cannot be reached gets the page too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgeproxy.errors import ConfigError
from edgeproxy.server import Options
from tests.conftest import (
    RECORD_EVENTS,
    Client,
    Clock,
    HandlerWriter,
    ProxyFactory,
    ScriptedOrigin,
    distribution_from,
    recorded_events,
)


def config(app: str, pages: str, *, errors: str, cache_policy: str = '"CachingOptimized"', functions: str = "") -> str:
    return (
        f'[origins.app]\nurl = "{app}"\n[origins.pages]\nurl = "{pages}"\n'
        '[[behaviors]]\npath_pattern = "/errors/*"\norigin = "pages"\ncache_policy = "CachingOptimized"\n'
        f'[default_behavior]\norigin = "app"\ncache_policy = {cache_policy}\n'
        + (f"[default_behavior.functions]\n{functions}\n" if functions else "")
        + errors
    )


async def serve(proxy: ProxyFactory, tmp_path: Path, clock: Clock, text: str) -> Client:
    return await proxy(distribution_from(tmp_path, text), options=Options(debug_headers=True, clock=clock))


NOT_FOUND_PAGE = '[[custom_error_responses]]\nerror_code = 404\nresponse_page_path = "/errors/404.html"\n'


async def test_a_404_gets_the_page_with_the_response_code_without_viewer_request_or_viewer_response(
    scripted: ScriptedOrigin,
    proxy: ProxyFactory,
    tmp_path: Path,
    clock: Clock,
    write_handler: HandlerWriter,
) -> None:
    ref = write_handler("recorder", RECORD_EVENTS)
    scripted.answer("/missing", status=404, body=b"origin's 404")
    scripted.answer("/errors/404.html", headers=[("Content-Type", "text/html")], body=b"<h1>Not here</h1>")
    functions = f'viewer-request = "{ref}"\nviewer-response = "{ref}"'
    errors = NOT_FOUND_PAGE + "response_code = 200\n"
    client = await serve(proxy, tmp_path, clock, config(scripted.url, scripted.url, errors=errors, functions=functions))
    response = await client.get("/missing")
    assert (response.status, await response.read()) == (200, b"<h1>Not here</h1>")
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["X-Cache"] == "Error from cloudfront"  # the result type stays Error
    assert scripted.paths() == ["/missing", "/errors/404.html"]
    events: list[Any] = recorded_events(ref)
    assert [event["Records"][0]["cf"]["config"]["eventType"] for event in events] == ["viewer-request"]
    assert events[0]["Records"][0]["cf"]["request"]["uri"] == "/missing"  # not run for the page's fetch
    # The 404 is cached (10 s), and the page under its own behavior: neither origin is asked again.
    clock.advance(5)
    again = await client.get("/missing")
    assert (again.status, await again.read()) == (200, b"<h1>Not here</h1>")
    assert scripted.paths() == ["/missing", "/errors/404.html"]


async def test_a_response_code_of_the_origins_status_goes_with_the_page(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/missing", status=404)
    scripted.answer("/errors/404.html", body=b"page")
    errors = NOT_FOUND_PAGE + "response_code = 404\n"
    client = await serve(proxy, tmp_path, clock, config(scripted.url, scripted.url, errors=errors))
    response = await client.get("/missing")
    assert (response.status, response.reason, await response.read()) == (404, "Not Found", b"page")


def test_a_page_without_a_response_code_is_refused_as_cloudfront_refuses_it(tmp_path: Path) -> None:
    # CustomErrorResponse: "If you specify a value for ResponsePagePath, you must also specify a value for
    # ResponseCode."
    with pytest.raises(ConfigError, match=r"custom_error_responses\[0\]\.response_code: a response_page_path goes"):
        distribution_from(tmp_path, config("http://127.0.0.1:1", "http://127.0.0.1:1", errors=NOT_FOUND_PAGE))


async def test_a_page_that_cannot_be_fetched_gives_its_origins_status(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/broken", status=500)  # and no page at /errors/500.html: the scripted origin's 404
    errors = (
        '[[custom_error_responses]]\nerror_code = 500\nresponse_page_path = "/errors/500.html"\nresponse_code = 200\n'
    )
    client = await serve(proxy, tmp_path, clock, config(scripted.url, scripted.url, errors=errors))
    response = await client.get("/broken")
    assert (response.status, await response.read()) == (404, b"not scripted")


async def test_error_caching_min_ttl_sets_how_long_the_error_is_cached(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock
) -> None:
    scripted.answer("/down", status=503)
    errors = "[[custom_error_responses]]\nerror_code = 503\nerror_caching_min_ttl = 60\n"
    client = await serve(proxy, tmp_path, clock, config(scripted.url, scripted.url, errors=errors))
    for step in (0, 59, 2):
        clock.advance(step)
        assert (await client.get("/down")).status == 503
    assert scripted.paths() == ["/down", "/down"]


async def test_an_origin_that_cannot_be_reached_gets_the_page(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock, unused_tcp_port: int
) -> None:
    scripted.answer("/errors/502.html", body=b"we will be back")
    errors = (
        '[[custom_error_responses]]\nerror_code = 502\nresponse_page_path = "/errors/502.html"\nresponse_code = 503\n'
    )
    text = config(f"http://127.0.0.1:{unused_tcp_port}", scripted.url, errors=errors)
    client = await serve(proxy, tmp_path, clock, text)
    response = await client.get("/anything")
    assert (response.status, await response.read()) == (503, b"we will be back")
    assert response.headers["X-Cache"] == "Error from cloudfront"


async def test_a_custom_error_response_needs_its_page_for_a_response_code(tmp_path: Path) -> None:
    errors = "[[custom_error_responses]]\nerror_code = 404\nresponse_code = 200\n"
    with pytest.raises(ConfigError, match="a response_code goes with a response_page_path"):
        distribution_from(tmp_path, config("http://a", "http://b", errors=errors))
    twice = (NOT_FOUND_PAGE + "response_code = 200\n") * 2
    with pytest.raises(ConfigError, match="already has a custom error response"):
        distribution_from(tmp_path, config("http://a", "http://b", errors=twice))
    with pytest.raises(ConfigError) as raised:
        distribution_from(
            tmp_path, config("http://a", "http://b", errors="[[custom_error_responses]]\nerror_code = 412\n")
        )
    assert raised.value.key == "custom_error_responses[0].error_code"


def folder_pages(app: str, tmp_path: Path, *, errors: str, pages_policy: str = '"CachingOptimized"') -> str:
    """``config`` with the pages in an S3-style folder origin (which answers a matching If-None-Match with a 304)."""
    (tmp_path / "pages" / "errors").mkdir(parents=True, exist_ok=True)
    for name in ("404.html", "502.html"):
        (tmp_path / "pages" / "errors" / name).write_bytes(b"<h1>" + name.encode() + b"</h1>")
    return (
        f'[origins.app]\nurl = "{app}"\n[origins.pages]\ndirectory = "pages"\n'
        f'[[behaviors]]\npath_pattern = "/errors/*"\norigin = "pages"\n'
        + (f"cache_policy = {pages_policy}\n" if pages_policy else "")
        + '[default_behavior]\norigin = "app"\ncache_policy = "CachingOptimized"\n'
        + errors
    )


@pytest.mark.parametrize("pages_policy", ['"CachingOptimized"', ""])  # "": legacy, the viewer's headers forwarded
async def test_a_viewer_revalidating_a_custom_error_page_gets_the_whole_page(
    scripted: ScriptedOrigin, proxy: ProxyFactory, tmp_path: Path, clock: Clock, pages_policy: str
) -> None:
    # The viewer's conditional headers are about the resource it asked for, not the page standing in for it: the
    # page is served whole, never a 304 turned into a blank 200.
    scripted.answer("/missing", status=404)
    text = folder_pages(
        scripted.url, tmp_path, errors=NOT_FOUND_PAGE + "response_code = 200\n", pages_policy=pages_policy
    )
    client = await serve(proxy, tmp_path, clock, text)
    first = await client.get("/missing")
    assert (first.status, await first.read()) == (200, b"<h1>404.html</h1>")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    for conditional in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = await client.get("/missing", headers=conditional)
        assert (again.status, await again.read()) == (200, b"<h1>404.html</h1>"), conditional
        assert again.headers["X-Cache"] == "Error from cloudfront"


async def test_a_viewer_revalidating_the_page_of_an_unreachable_origin_gets_the_whole_page(
    proxy: ProxyFactory, tmp_path: Path, clock: Clock, unused_tcp_port: int
) -> None:
    errors = (
        '[[custom_error_responses]]\nerror_code = 502\nresponse_page_path = "/errors/502.html"\nresponse_code = 502\n'
    )
    client = await serve(
        proxy, tmp_path, clock, folder_pages(f"http://127.0.0.1:{unused_tcp_port}", tmp_path, errors=errors)
    )
    first = await client.get("/anything")
    assert (first.status, await first.read()) == (502, b"<h1>502.html</h1>")
    again = await client.get("/anything", headers={"If-None-Match": first.headers["ETag"]})
    assert (again.status, await again.read()) == (502, b"<h1>502.html</h1>")
