"""Each sample function in ``sample_functions/``, driven through the proxy to a real origin on a real socket."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from edgeproxy import cli, config
from tests.conftest import Origin, ProxyFactory, Seen, needs_node, origin_app, raw_url

ROOT = Path(__file__).parents[1]
SAMPLES = ROOT / "sample_functions"
GENERATED = "LambdaGeneratedResponse from cloudfront"


def ref(name: str, folder: Path = SAMPLES) -> str:
    return f"{folder / name}.py:handler"


# The samples that have a Node.js version: an ES module, CommonJS with a callback, an ES module, CommonJS (.cjs).
NODE_SAMPLES = {
    "security_headers": "security_headers.mjs",
    "redirects": "redirects.js",
    "basic_auth": "basic_auth.mjs",
    "spa_index": "spa_index.cjs",
}


@pytest.fixture(params=["python", pytest.param("node", marks=needs_node)])
def language(request: pytest.FixtureRequest) -> str:
    """Each test of a sample with a Node.js version runs against both versions."""
    value: str = request.param
    return value


def sample(name: str, language: str) -> str:
    return ref(name) if language == "python" else f"{SAMPLES / NODE_SAMPLES[name]}:handler"


def basic(credentials: bytes, scheme: str = "Basic") -> dict[str, str]:
    return {"Authorization": f"{scheme} {base64.b64encode(credentials).decode()}"}


async def other_origin(aiohttp_server: AiohttpServer) -> tuple[int, list[Seen]]:
    """A second recording origin, like the ``origin`` fixture: its port and the requests it received."""
    seen: list[Seen] = []
    server = await aiohttp_server(origin_app(seen))
    assert server.port is not None
    return server.port, seen


# security_headers.py


SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


async def test_security_headers_at_viewer_response(language: str, origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-response": sample("security_headers", language)})
    response = await client.get("/page")
    assert response.status == 200
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.getall(name) == [value]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert (await response.json())["path"] == "/page"  # the body is the origin's, untouched
    assert response.headers["X-Cache"] == "Miss from cloudfront"


async def test_security_headers_on_errors_need_origin_response(
    language: str, origin: Origin, proxy: ProxyFactory
) -> None:
    # CloudFront skips viewer-response for statuses of 400 and up; origin-response still runs.
    at_viewer = await proxy(origin=origin.url, functions={"viewer-response": sample("security_headers", language)})
    response = await at_viewer.get("/status/404")
    assert response.status == 404
    assert "Strict-Transport-Security" not in response.headers

    at_origin = await proxy(origin=origin.url, functions={"origin-response": sample("security_headers", language)})
    response = await at_origin.get("/status/404")
    assert (response.status, await response.text()) == (404, "status 404")
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


# redirects.py


async def test_redirect_keeps_raw_query_and_skips_origin(language: str, origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": sample("redirects", language)})
    response = await client.session.get(raw_url(client, "/old-page?ref=mail&q=a%20b"), allow_redirects=False)
    assert (response.status, response.reason) == (301, "Moved Permanently")
    assert response.headers["Location"] == "/new-page?ref=mail&q=a%20b"
    assert response.headers["Cache-Control"] == "max-age=3600"
    assert response.headers["X-Cache"] == GENERATED
    assert response.headers["Content-Length"] == "0"
    assert origin.seen == []


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/docs/", "/docs"),
        ("/docs/?page=2", "/docs?page=2"),
        ("/old-page/", "/new-page"),  # one hop, not two
        ("//evil.example/", "/evil.example"),  # never a protocol-relative, off-site Location
        ("//evil.example", "/evil.example"),
    ],
)
async def test_redirect_trailing_slash_normalisation(
    language: str, origin: Origin, proxy: ProxyFactory, path: str, location: str
) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": sample("redirects", language)})
    response = await client.session.get(raw_url(client, path), allow_redirects=False)
    assert response.status == 301
    assert response.headers["Location"] == location
    assert origin.seen == []


async def test_redirect_keeps_method_for_post(language: str, origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": sample("redirects", language)})
    response = await client.post("/old-page", data=b"form=1", allow_redirects=False)
    assert (response.status, response.reason) == (308, "Permanent Redirect")
    assert response.headers["Location"] == "/new-page"


async def test_unmapped_paths_reach_origin_unchanged(language: str, origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": sample("redirects", language)})
    for path in ("/", "/new-page?x=1", "/docs/intro.html"):
        response = await client.session.get(raw_url(client, path), allow_redirects=False)
        assert response.status == 200
        assert origin.last.raw_path == path
    assert len(origin.seen) == 3


# basic_auth.py


GOOD = b"edge:correct-horse-battery-staple"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(b"edge:wrong"),
        basic(b"someone:correct-horse-battery-staple"),
        basic(GOOD, scheme="Bearer"),
        {"Authorization": "Basic not*base64"},
        {"Authorization": "Basic"},
    ],
    ids=["missing", "wrong-password", "wrong-user", "other-scheme", "malformed", "empty"],
)
async def test_basic_auth_rejects(language: str, origin: Origin, proxy: ProxyFactory, headers: dict[str, str]) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": sample("basic_auth", language)})
    response = await client.get("/secret", headers=headers)
    assert (response.status, response.reason) == (401, "Unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Restricted", charset="UTF-8"'
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Cache"] == GENERATED
    assert await response.text() == "Authentication required.\n"
    assert origin.seen == []


@pytest.mark.parametrize("scheme", ["Basic", "basic"])
async def test_basic_auth_lets_right_credentials_through(
    language: str, origin: Origin, proxy: ProxyFactory, scheme: str
) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": sample("basic_auth", language)})
    response = await client.get("/secret?x=1", headers=basic(GOOD, scheme))
    assert response.status == 200
    assert response.headers["X-Cache"] == "Miss from cloudfront"
    assert origin.last.raw_path == "/secret?x=1"
    assert origin.last.header("Authorization") == []  # the shared password stays at the edge


# ab_testing.py


def ab_functions() -> dict[str, str]:
    return {"viewer-request": ref("ab_testing"), "viewer-response": ref("ab_testing")}


def experiment_cookies(response_headers: list[str]) -> list[str]:
    return [value for value in response_headers if value.startswith("experiment=")]


async def test_ab_group_from_cookie_among_several_cookie_headers(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions=ab_functions())
    response = await client.get("/home", headers=[("Cookie", "theme=dark"), ("Cookie", "lang=en; experiment=b")])
    assert response.status == 200
    assert origin.last.raw_path == "/experiment-b/home"
    assert origin.last.header("X-Experiment") == ["b"]
    assert origin.last.header("Cookie") == ["theme=dark", "lang=en; experiment=b"]
    assert experiment_cookies(response.headers.getall("Set-Cookie", [])) == []  # already in group b


async def test_ab_new_visitor_gets_a_group_that_sticks(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions=ab_functions())
    first = await client.get("/home?x=1")
    assert first.status == 200
    (set_cookie,) = experiment_cookies(first.headers.getall("Set-Cookie", []))
    group = set_cookie.split(";")[0].removeprefix("experiment=")
    assert group in ("a", "b")
    assert set_cookie == f"experiment={group}; Path=/; Max-Age=2592000; Secure; SameSite=Lax"
    assert origin.last.raw_path == f"/experiment-{group}/home?x=1"

    for _ in range(5):  # the browser sends the cookie back (over HTTPS in real life)
        again = await client.get("/home", headers={"Cookie": f"experiment={group}"})
        assert origin.last.raw_path == f"/experiment-{group}/home"
        assert experiment_cookies(again.headers.getall("Set-Cookie", [])) == []


async def test_ab_without_cookie_splits_visitors(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions=ab_functions())
    for _ in range(40):
        await client.get("/")
    groups = {seen.raw_path for seen in origin.seen}
    assert groups == {"/experiment-a/", "/experiment-b/"}  # 2 * 2**-40 chance of a false failure


async def test_ab_group_is_deterministic_for_a_session(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions=ab_functions())
    paths = set()
    for _ in range(10):
        response = await client.get("/home", headers={"Cookie": "session-id=user-42"})
        paths.add(origin.last.raw_path)
        assert len(experiment_cookies(response.headers.getall("Set-Cookie", []))) == 1
    assert len(paths) == 1
    groups = set()
    for user in range(40):
        await client.get("/home", headers={"Cookie": f"session-id=user-{user}"})
        groups.add(origin.last.header("X-Experiment")[0])
    assert groups == {"a", "b"}


async def test_ab_header_forces_a_group_and_moves_the_cookie(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions=ab_functions())
    response = await client.get("/home", headers={"Cookie": "experiment=a", "X-Experiment": "B"})
    assert origin.last.raw_path == "/experiment-b/home"
    assert experiment_cookies(response.headers.getall("Set-Cookie")) == [
        "experiment=b; Path=/; Max-Age=2592000; Secure; SameSite=Lax"
    ]


async def test_ab_keeps_origin_cookies(proxy: ProxyFactory, aiohttp_server: AiohttpServer) -> None:
    async def page(request: web.Request) -> web.Response:
        response = web.Response(text=request.path)
        response.set_cookie("session-id", "s1")
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    server = await aiohttp_server(app)
    client = await proxy(origin=str(server.make_url("")).rstrip("/"), functions=ab_functions())
    response = await client.get("/home")
    set_cookies = response.headers.getall("Set-Cookie")
    assert set_cookies[0] == "session-id=s1; Path=/"
    assert len(experiment_cookies(set_cookies)) == 1
    assert (await response.text()).startswith("/experiment-")


# spa_index.py


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/index.html"),
        ("/settings/profile", "/index.html"),
        ("/settings/profile?tab=2", "/index.html?tab=2"),
        ("/docs/", "/docs/index.html"),
        ("/assets/app.js", "/assets/app.js"),
        ("/favicon.ico?v=3", "/favicon.ico?v=3"),
    ],
)
async def test_spa_index_rewrites_routes_not_files(
    language: str, origin: Origin, proxy: ProxyFactory, path: str, expected: str
) -> None:
    client = await proxy(origin=origin.url, functions={"origin-request": sample("spa_index", language)})
    response = await client.get(path)
    assert response.status == 200
    assert origin.last.raw_path == expected


async def test_spa_index_in_front_of_s3_style_folder(language: str, proxy: ProxyFactory, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_text("<h1>docs</h1>")
    (tmp_path / "app.js").write_text("console.log('app')")
    client = await proxy(origin=str(tmp_path), functions={"origin-request": sample("spa_index", language)})
    for path, body in (
        ("/", "<!doctype html><title>app</title>"),
        ("/any/client/route", "<!doctype html><title>app</title>"),
        ("/docs/", "<h1>docs</h1>"),
        ("/app.js", "console.log('app')"),
    ):
        response = await client.get(path)
        assert (response.status, await response.text()) == (200, body), path
    missing = await client.get("/missing.js")  # a file that does not exist stays a 404, not the app
    assert missing.status == 404
    assert "<Code>NoSuchKey</Code>" in await missing.text()


# origin_by_device.py


def origin_by_device_bundle(tmp_path: Path, origins: dict[str, dict[str, object]]) -> str:
    """The handler deployed with an ``origins.json`` next to it, as one would bundle it for Lambda@Edge."""
    shutil.copy(SAMPLES / "origin_by_device.py", tmp_path / "origin_by_device.py")
    (tmp_path / "origins.json").write_text(json.dumps(origins))
    return ref("origin_by_device", tmp_path)


async def test_mobile_viewers_get_mobile_pages(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"origin-request": ref("origin_by_device")})
    await client.get("/page?x=1", headers={"CloudFront-Is-Mobile-Viewer": "true"})
    assert origin.last.raw_path == "/mobile/page?x=1"
    await client.get("/mobile/page", headers={"CloudFront-Is-Mobile-Viewer": "true"})
    assert origin.last.raw_path == "/mobile/page"  # not prefixed twice
    await client.get("/page", headers={"CloudFront-Is-Mobile-Viewer": "false", "User-Agent": "Mozilla/5.0 (iPhone)"})
    assert origin.last.raw_path == "/page"  # CloudFront's device header wins over the user agent
    await client.get("/page")
    assert origin.last.raw_path == "/page"


async def test_mobile_user_agent_at_viewer_request(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("origin_by_device")})
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
    await client.get("/page", headers={"User-Agent": iphone})
    assert origin.last.raw_path == "/mobile/page"
    await client.get("/page", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"})
    assert origin.last.raw_path == "/page"


async def test_x_origin_switches_origin_and_host(
    origin: Origin, proxy: ProxyFactory, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    port, canary_seen = await other_origin(aiohttp_server)
    handler = origin_by_device_bundle(
        tmp_path, {"canary": {"domainName": "localhost", "port": port, "protocol": "http", "path": "/canary"}}
    )
    client = await proxy(origin=origin.url, functions={"origin-request": handler})

    response = await client.get("/page?x=1", headers={"X-Origin": "canary", "CloudFront-Is-Mobile-Viewer": "true"})
    assert response.status == 200
    assert (await response.json())["path"] == "/canary/mobile/page?x=1"
    assert origin.seen == []
    seen = canary_seen[-1]
    assert seen.raw_path == "/canary/mobile/page?x=1"
    assert seen.header("Host") == ["localhost"]
    assert seen.header("X-Origin") == []
    assert seen.header("User-Agent") == ["Amazon CloudFront"]

    await client.get("/page")  # without the header: the configured origin, its own Host
    assert origin.last.raw_path == "/page"
    assert origin.last.header("Host") == ["127.0.0.1"]
    assert len(canary_seen) == 1


async def test_x_origin_only_reaches_listed_origins(
    origin: Origin, proxy: ProxyFactory, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    port, other_seen = await other_origin(aiohttp_server)
    handler = origin_by_device_bundle(tmp_path, {})
    client = await proxy(origin=origin.url, functions={"origin-request": handler})
    for value in (f"localhost:{port}", f"127.0.0.1:{port}", "canary"):
        response = await client.get("/page", headers={"X-Origin": value})
        assert response.status == 200
        assert origin.last.raw_path == "/page"
        assert origin.last.header("X-Origin") == []
    assert other_seen == []


async def test_x_origin_does_not_leak_custom_headers(
    origin: Origin, proxy: ProxyFactory, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    port, canary_seen = await other_origin(aiohttp_server)
    handler = origin_by_device_bundle(
        tmp_path, {"canary": {"domainName": "localhost", "port": port, "protocol": "http"}}
    )
    distribution = config.from_mapping(
        {
            "origins": {"app": {"url": origin.url, "custom_headers": {"x-origin-verify": "app-secret"}}},
            "default_behavior": {"origin": "app", "functions": {"origin-request": handler}},
        },
        source="test",
        base_dir=tmp_path,
    )
    client = await proxy(distribution)
    await client.get("/page")
    assert origin.last.header("X-Origin-Verify") == ["app-secret"]
    await client.get("/page", headers={"X-Origin": "canary"})
    assert canary_seen[-1].raw_path == "/page"
    assert canary_seen[-1].header("X-Origin-Verify") == []


# querystring_normalise.py


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?Size=10&utm_source=news&b=%20x&UTM_Medium=email&fbclid=abc&a=1", "?a=1&b=%20x&size=10"),
        ("?tag=b&tag=a&Q=shoes", "?q=shoes&tag=b&tag=a"),  # repeated names keep their order
        ("?Caf%C3%A9=cr%C3%A8me&x=a+b&&flag", "?caf%C3%A9=cr%C3%A8me&flag&x=a+b"),
        ("?utm_campaign=spring&gclid=1", ""),
        ("", ""),
    ],
)
async def test_querystring_normalised(origin: Origin, proxy: ProxyFactory, query: str, expected: str) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("querystring_normalise")})
    response = await client.session.get(raw_url(client, "/list" + query))
    assert response.status == 200
    assert origin.last.raw_path == "/list" + expected


async def test_querystring_variants_share_one_origin_url(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("querystring_normalise")})
    for query in ("?b=2&a=1", "?A=1&B=2", "?a=1&utm_source=x&b=2&fbclid=y"):
        await client.session.get(raw_url(client, "/p" + query))
    assert {seen.raw_path for seen in origin.seen} == {"/p?a=1&b=2"}


# generated_response.py


async def test_healthz_answered_at_the_edge(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("generated_response")})
    response = await client.get("/healthz")
    assert (response.status, response.reason) == (200, "OK")
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Cache"] == GENERATED
    body = await response.json()
    assert body["status"] == "ok"
    assert body["requestId"] == response.headers["X-Amz-Cf-Id"]
    assert body["distributionId"] == "EDFDVBD6EXAMPLE"
    assert response.headers["Content-Length"] == str(len(await response.read()))

    head = await client.head("/healthz")
    assert (head.status, await head.read()) == (200, b"")
    robots = await client.get("/robots.txt")
    assert robots.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await robots.text() == "User-agent: *\nDisallow: /\n"
    assert origin.seen == []


async def test_other_requests_reach_origin(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("generated_response")})
    assert (await client.get("/other?x=1")).status == 200
    assert origin.last.raw_path == "/other?x=1"
    response = await client.post("/healthz", data=b"{}")  # only GET and HEAD are answered at the edge
    assert response.headers["X-Cache"] == "Miss from cloudfront"
    assert origin.last.method == "POST"


async def test_maintenance_page(origin: Origin, proxy: ProxyFactory, tmp_path: Path) -> None:
    source = (SAMPLES / "generated_response.py").read_text()
    assert source.count("\nMAINTENANCE = False\n") == 1
    (tmp_path / "generated_response.py").write_text(source.replace("\nMAINTENANCE = False\n", "\nMAINTENANCE = True\n"))
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("generated_response", tmp_path)})
    response = await client.get("/shop/cart")
    assert (response.status, response.reason) == (503, "Service Unavailable")
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Retry-After"] == "300"
    assert response.headers["X-Cache"] == GENERATED
    assert "We'll be back soon" in await response.text()
    assert (await client.get("/healthz")).status == 200
    assert origin.seen == []


# form_honeypot.py

FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_honeypot_turns_bots_away_at_the_edge(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("form_honeypot")}, include_body=True)
    response = await client.post("/contact", data="name=Bot&website=http%3A%2F%2Fspam.example", headers=FORM_TYPE)
    assert (response.status, response.headers["X-Cache"]) == (403, GENERATED)
    assert await response.text() == "This form could not be sent.\n"
    assert origin.seen == []


async def test_honeypot_forwards_the_form_without_the_hidden_field(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"viewer-request": ref("form_honeypot")}, include_body=True)
    response = await client.post("/contact", data="name=Ada+L&website=&note=caf%C3%A9", headers=FORM_TYPE)
    assert response.status == 200
    assert (origin.last.body, origin.last.header("Content-Length")) == (b"name=Ada+L&note=caf%C3%A9", ["25"])
    other = await client.post("/upload", data=b"website=x", headers={"Content-Type": "text/plain"})
    assert (other.status, origin.last.body) == (200, b"website=x")  # not a form: untouched


# cors_headers.py


async def test_cors_for_allowed_origin_only(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"origin-response": ref("cors_headers")})
    allowed = await client.get("/api/items", headers={"Origin": "https://app.example.com"})
    assert allowed.status == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert allowed.headers.getall("Vary") == ["Origin"]
    assert "Access-Control-Allow-Methods" not in allowed.headers  # not a preflight

    other = await client.get("/api/items", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.headers["Vary"] == "Origin"  # the cached copy must not be served to the allowed origin
    assert (await other.json())["path"] == "/api/items"


async def test_cors_preflight(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url, functions={"origin-response": ref("cors_headers")})
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT"}
    answered = await client.options("/api/items", headers=preflight)
    assert answered.status == 200  # the origin answered OPTIONS itself
    assert answered.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"
    assert answered.headers["Access-Control-Max-Age"] == "600"

    refused = await client.options("/status/405", headers=preflight)  # an origin that does not answer OPTIONS
    assert (refused.status, await refused.read()) == (204, b"")
    assert refused.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert refused.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type, X-Requested-With"
    assert origin.last.method == "OPTIONS"


async def test_cors_merges_vary(proxy: ProxyFactory, aiohttp_server: AiohttpServer) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"Vary": "Accept-Encoding"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    server = await aiohttp_server(app)
    client = await proxy(
        origin=str(server.make_url("")).rstrip("/"), functions={"origin-response": ref("cors_headers")}
    )
    response = await client.get("/", headers={"Origin": "https://app.example.com"})
    assert response.headers.getall("Vary") == ["Accept-Encoding, Origin"]


# cache_control.py


async def test_cache_control_defaults(proxy: ProxyFactory, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>home</h1>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "site.css").write_text("body {}")
    (tmp_path / "app.3f9a1c2b.js").write_text("1")
    (tmp_path / "data.json").write_text("{}")
    client = await proxy(origin=str(tmp_path), functions={"origin-response": ref("cache_control")})
    for path, expected in (
        ("/index.html", "no-cache"),
        ("/assets/site.css", "public, max-age=31536000, immutable"),
        ("/app.3f9a1c2b.js", "public, max-age=31536000, immutable"),
        ("/data.json", "public, max-age=300"),
        ("/missing.html", "public, max-age=10"),
    ):
        response = await client.get(path)
        assert response.headers.getall("Cache-Control") == [expected], path


async def test_cache_control_of_origin_is_kept(proxy: ProxyFactory, aiohttp_server: AiohttpServer) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<p>mine</p>", content_type="text/html", headers={"Cache-Control": "private"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    server = await aiohttp_server(app)
    client = await proxy(
        origin=str(server.make_url("")).rstrip("/"), functions={"origin-response": ref("cache_control")}
    )
    response = await client.get("/account")
    assert response.headers.getall("Cache-Control") == ["private"]


# Every sample at its trigger on the fixture events, through `edgeproxy invoke` (validated like the proxy does).


@pytest.mark.parametrize(
    ("name", "trigger"),
    [
        ("security_headers", "viewer-response"),
        ("security_headers", "origin-response"),
        ("redirects", "viewer-request"),
        ("basic_auth", "viewer-request"),
        ("ab_testing", "viewer-request"),
        ("ab_testing", "viewer-response"),
        ("spa_index", "origin-request"),
        ("origin_by_device", "origin-request"),
        ("querystring_normalise", "viewer-request"),
        ("generated_response", "viewer-request"),
        ("form_honeypot", "viewer-request"),
        ("cors_headers", "origin-response"),
        ("cache_control", "origin-response"),
        *[
            (f"node:{name}", trigger)
            for name, trigger in [
                ("security_headers", "viewer-response"),
                ("redirects", "viewer-request"),
                ("basic_auth", "viewer-request"),
                ("spa_index", "origin-request"),
            ]
        ],
    ],
)
def test_invoke_on_fixture_events(name: str, trigger: str, capsys: pytest.CaptureFixture[str]) -> None:
    event = ROOT / "fixtures" / "events" / f"{trigger}.json"
    handler = sample(name.removeprefix("node:"), "node") if name.startswith("node:") else ref(name)
    name = name.removeprefix("node:")
    assert cli.main(["invoke", handler, "--event", str(event)]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert isinstance(result, dict)
    if name == "basic_auth":
        assert result["status"] == "401"
    elif trigger.endswith("response"):
        assert result["status"] == "200"
    else:
        assert result["uri"].startswith("/")


# The example distribution of the README's quickstart, which uses three of the samples.


async def test_example_distribution(proxy: ProxyFactory) -> None:
    client = await proxy(config.load(ROOT / "fixtures" / "example" / "edgeproxy.toml"))
    page = await client.get("/any/client/route")
    assert page.status == 200
    assert "Served through edgeproxy" in await page.text()
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    css = await client.get("/assets/site.css")
    assert css.headers["Content-Type"] == "text/css"
