"""Functional: the scenarios of AWS's "Lambda@Edge example functions" page (CloudFront Developer Guide,
lambda-examples.html), each through the proxy over real sockets, and through ``edgeproxy events`` + ``invoke``.

The handlers in ``tests/aws_examples/`` are written for these tests; each does what AWS documents for its
scenario, relying on CloudFront the way AWS's example does: a JSON number as ``status`` (§2.3), a header entry
copied under another map name (§3.6), an S3 origin named by a bucket host name (served here by a folder origin
with that ``bucket``), a switch to ``www.example.com`` (pointed at a local origin by ``[resolve]``), include-body
forms (§1.5). Handlers that pick at random get their random numbers from the test.

The four scenarios that read CloudFront's viewer headers (redirecting to a country-specific URL, serving an object by
device type, changing the S3 origin's Region or the origin's domain name by country) run with the cache and origin
request policies their setup asks for, the viewer's country simulated by ``[viewer]`` or ``X-Edgeproxy-Viewer-Country``
and its device read from its ``User-Agent``.

AWS's Python listing of the gradual-transfer scenario (archived guide, 2023) cannot run as printed: its handler is
``lambda_handler(min, max)``, reads an undefined ``event`` and writes ``request['heaaders']``. Its handler here does
what the scenario's text and its Node.js listing document.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from edgeproxy import config, testing
from edgeproxy.cli import main
from tests.conftest import Client, Origin, ProxyFactory, serve_and_get

EXAMPLES = Path(__file__).parent / "aws_examples"
GENERATED = "LambdaGeneratedResponse from cloudfront"
ALL_METHODS = '["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]'


def ref(name: str) -> str:
    return f"{EXAMPLES / name}.py:handler"


async def serve(proxy: ProxyFactory, tmp_path: Path, toml: str, *, isolation: config.Isolation | None = None) -> Client:
    """The proxy for the distribution an ``edgeproxy.toml`` describes (written to ``tmp_path``). The tests that
    choose a handler's random numbers (with monkeypatch, in this process) run it with ``isolation="thread"``."""
    path = tmp_path / "edgeproxy.toml"
    path.write_text(toml)
    return await proxy(config.with_environments(config.load(path), isolation=isolation))


def folder(tmp_path: Path, name: str, files: dict[str, str]) -> None:
    for key, text in files.items():
        (tmp_path / name / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name / key).write_text(text)


def in_front_of(origin: Origin, trigger: str, handler: str, *, include_body: bool = False) -> str:
    """A config: one HTTP origin, and ``handler`` at ``trigger`` of the default behavior (every method allowed)."""
    association = f'{{ handler = "{ref(handler)}", include_body = true }}' if include_body else f'"{ref(handler)}"'
    return (
        f'[origins.app]\nurl = "{origin.url}"\n'
        f'[default_behavior]\norigin = "app"\nallowed_methods = {ALL_METHODS}\n'
        f"[default_behavior.functions]\n{trigger} = {association}\n"
    )


# -- General: A/B testing, overriding a response header -------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookies", "dice", "uri"),
    [
        (["X-Experiment-Name=A"], None, "/experiment-group/control-pixel.jpg"),
        (["session=1", "theme=dark; X-Experiment-Name=B"], None, "/experiment-group/treatment-pixel.jpg"),
        ([], 0.74, "/experiment-group/control-pixel.jpg"),  # three in four viewers without a cookie: control
        ([], 0.75, "/experiment-group/treatment-pixel.jpg"),
    ],
)
async def test_ab_testing_picks_the_pixel_by_cookie_or_at_random(
    cookies: list[str],
    dice: float | None,
    uri: str,
    origin: Origin,
    proxy: ProxyFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(random, "random", lambda: dice)
    client = await serve(proxy, tmp_path, in_front_of(origin, "viewer-request", "ab_testing"), isolation="thread")
    response = await client.get("/experiment-pixel.jpg", headers=[("Cookie", cookie) for cookie in cookies])
    assert response.status == 200
    assert origin.last.raw_path == uri
    assert (await client.get("/other.jpg")).status == 200
    assert origin.last.raw_path == "/other.jpg"


async def test_overriding_a_response_header_from_another_sets_last_modified(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    # §3.6: the entry keeps its key 'X-Amz-Meta-Last-Modified', but its map name is 'last-modified'.
    client = await serve(proxy, tmp_path, in_front_of(origin, "origin-response", "override_header"))
    meta, stale = "Tue, 01 Dec 2026 10:00:00 GMT", "Mon, 30 Nov 2026 08:00:00 GMT"
    response = await client.get("/headers", params={"X-Amz-Meta-Last-Modified": meta, "Last-Modified": stale})
    assert response.status == 200
    assert response.headers.getall("Last-Modified") == [meta]
    assert response.headers.getall("X-Amz-Meta-Last-Modified") == [meta]
    names = [name.decode() for name, _ in response.raw_headers]
    assert (names.count("Last-Modified"), names.count("X-Amz-Meta-Last-Modified")) == (1, 1)


# -- Generated responses: static content, an HTTP redirect ----------------------------------------------------------


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
async def test_static_content_is_generated_at_the_edge(
    trigger: str, origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, trigger, "static_content"))
    response = await client.get("/index.html")
    assert (response.status, response.headers["X-Cache"]) == (200, GENERATED)
    assert response.headers["Cache-Control"] == "max-age=100"
    assert response.headers["Content-Type"] == "text/html"
    assert "<p>Hello from Lambda@Edge!</p>" in await response.text()
    assert origin.seen == []


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
async def test_an_http_redirect_is_generated_at_the_edge(
    trigger: str, origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, trigger, "http_redirect"))
    response = await client.get("/old", allow_redirects=False)
    assert (response.status, response.reason, response.headers["X-Cache"]) == (302, "Found", GENERATED)
    assert response.headers["Location"] == "https://docs.aws.amazon.com/lambda/latest/dg/lambda-edge.html"
    assert (response.headers["Content-Length"], await response.read()) == ("0", b"")
    assert origin.seen == []


# -- Query strings: a header from a parameter, normalising, a sign-in redirect ---------------------------------------


async def test_a_query_string_parameter_becomes_a_header(origin: Origin, proxy: ProxyFactory, tmp_path: Path) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, "viewer-request", "query_to_header"))
    assert (await client.get("/items?auth=s3cr%20t&lang=en")).status == 200
    assert origin.last.raw_path == "/items?lang=en"
    assert origin.last.header("Auth-Header") == ["s3cr t"]


async def test_the_query_string_is_normalised(origin: Origin, proxy: ProxyFactory, tmp_path: Path) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, "viewer-request", "normalize_query"))
    assert (await client.get("/search?Zeta=1&ALPHA=Two&mid=3")).status == 200
    assert origin.last.raw_path == "/search?alpha=two&mid=3&zeta=1"


@pytest.mark.parametrize(("cookie", "signed_in"), [(None, False), ("theme=dark", False), ("a=1; session-id=42", True)])
async def test_viewers_without_a_session_are_sent_to_sign_in(
    cookie: str | None, signed_in: bool, origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, "viewer-request", "signin_redirect"))
    headers = {"Host": "www.example.org"} | ({"Cookie": cookie} if cookie else {})
    response = await client.get("/account?tab=orders", headers=headers, allow_redirects=False)
    if signed_in:
        assert (response.status, origin.last.raw_path) == (200, "/account?tab=orders")
        return
    assert (response.status, response.headers["X-Cache"]) == (302, GENERATED)
    page = quote_plus("https://www.example.org/account?tab=orders")
    assert response.headers["Location"] == f"https://www.example.com/signin?redirect_url={page}"
    assert origin.seen == []


# -- Content-based dynamic origin selection ------------------------------------------------------------------------


async def test_switching_from_a_custom_origin_to_an_s3_bucket(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    folder(tmp_path, "bucket", {"logo.txt": "from my-bucket\n"})
    toml = in_front_of(origin, "origin-request", "custom_to_s3") + (
        '[origins.assets]\ndirectory = "bucket"\nbucket = "my-bucket"\n'
    )
    client = await serve(proxy, tmp_path, toml)
    switched = await client.get("/logo.txt?useS3Origin=true")
    assert (switched.status, await switched.text()) == (200, "from my-bucket\n")
    assert switched.headers["Server"] == "AmazonS3"
    assert origin.seen == []
    assert (await client.get("/logo.txt?useS3Origin=false")).status == 200
    assert origin.last.raw_path == "/logo.txt?useS3Origin=false"


async def test_switching_from_an_s3_bucket_to_www_example_com(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    folder(tmp_path, "bucket", {"page.html": "<p>S3</p>"})
    toml = (
        '[origins.site]\ndirectory = "bucket"\n'
        f'[default_behavior]\norigin = "site"\n[default_behavior.functions]\norigin-request = "{ref("s3_to_custom")}"\n'
        f'[resolve]\n"www.example.com" = "{origin.url}"\n'
    )
    client = await serve(proxy, tmp_path, toml)
    switched = await client.get("/page.html?useCustomOrigin=true")
    assert switched.status == 200
    assert (origin.last.raw_path, origin.last.header("Host")) == (
        "/page.html?useCustomOrigin=true",
        ["www.example.com"],
    )
    unswitched = await client.get("/page.html")
    assert (unswitched.status, await unswitched.text()) == (200, "<p>S3</p>")
    assert len(origin.seen) == 1


@pytest.mark.parametrize(("number", "bucket"), [(1, "blue"), (80, "blue"), (81, "green"), (100, "green")])
async def test_traffic_moves_gradually_to_the_blue_bucket(
    number: int, bucket: str, proxy: ProxyFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "randint", lambda low, high: number if (low, high) == (1, 100) else None)
    folder(tmp_path, "green", {"app.js": "green"})
    folder(tmp_path, "blue", {"app.js": "blue"})
    toml = (
        '[origins.green]\ndirectory = "green"\nbucket = "green-bucket"\n'
        '[origins.blue]\ndirectory = "blue"\nbucket = "blue-bucket"\n'
        f'[default_behavior]\norigin = "green"\n'
        f'[default_behavior.functions]\norigin-request = "{ref("gradual_transfer")}"\n'
    )
    response = await (await serve(proxy, tmp_path, toml, isolation="thread")).get("/app.js")
    assert (response.status, await response.text()) == (200, bucket)


# -- Updating error statuses (a JSON number as the status, §2.3) -----------------------------------------------------


@pytest.mark.parametrize("status", [404, 503])
async def test_an_origin_error_becomes_200_with_a_generated_body(
    status: int, origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, "origin-response", "error_to_ok"))
    response = await client.get(f"/status/{status}")
    assert (response.status, response.reason, await response.text()) == (200, "OK", "Body generation example")
    fine = await client.get("/fine")
    assert (fine.status, (await fine.json())["path"]) == (200, "/fine")


async def test_an_origin_error_becomes_a_redirect_to_plan_b(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, "origin-response", "error_to_redirect"))
    response = await client.get("/status/500?item=7", allow_redirects=False)
    assert (response.status, response.reason) == (302, "Found")
    assert response.headers["Location"] == "/plan-b/path?item=7"
    assert (response.headers["Content-Length"], await response.read()) == ("0", b"")


# -- Accessing the request body (include body, §1.5) ----------------------------------------------------------------

FORM = "name1=Ada+Lovelace&name2=caf%C3%A9"


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
async def test_a_form_in_the_body_is_read(
    trigger: str, origin: Origin, proxy: ProxyFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, trigger, "read_form", include_body=True))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with caplog.at_level(logging.INFO, logger="edgeproxy.lambda"):
        response = await client.post("/contact", data=FORM, headers=form)
    assert response.status == 200
    assert origin.last.body == FORM.encode()  # read-only: the origin gets the body as sent
    assert "form field 'name1' is 'Ada Lovelace'" in caplog.text
    assert "form field 'name2' is 'café'" in caplog.text


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
async def test_a_form_in_the_body_is_replaced(
    trigger: str, origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, trigger, "modify_form", include_body=True))
    response = await client.post("/contact", data=FORM, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 200
    sent = "name1=Ada+Lovelace&name2=caf%C3%A9&new-param-name=new-param-value"
    assert (origin.last.body, origin.last.header("Content-Length")) == (sent.encode(), [str(len(sent))])


# -- Personalizing content by country or device type (CloudFront's viewer headers) ---------------------------------


@pytest.mark.parametrize(
    ("country", "location"),
    [("TW", "https://tw.example.com/"), ("US", "https://us.example.com/"), ("DE", "https://example.com/")],
)
async def test_viewers_are_redirected_to_their_countrys_url(
    country: str, location: str, origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    # AWS's setup: cache on CloudFront-Viewer-Country, so each country's redirect is cached apart.
    toml = in_front_of(origin, "origin-request", "redirect_by_country")
    toml = toml.replace(
        "[default_behavior.functions]",
        'cache_policy = { headers = ["CloudFront-Viewer-Country"] }\n[default_behavior.functions]',
    )
    client = await serve(proxy, tmp_path, toml)
    for expected_cache in (GENERATED, "Hit from cloudfront"):
        response = await client.get("/", headers={"X-Edgeproxy-Viewer-Country": country}, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (302, location)
        assert response.headers["X-Cache"] == expected_cache
    assert origin.seen == []


BROWSER = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
DEVICES = {
    "desktop": f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {BROWSER}",
    "mobile": f"Mozilla/5.0 (Linux; Android 14; Pixel 8) {BROWSER.replace('Safari', 'Mobile Safari')}",
    "tablet": f"Mozilla/5.0 (Linux; Android 13; SM-X700) {BROWSER}",
    "smarttv": f"Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) {BROWSER.replace('Safari', 'TV Safari')}",
}


async def test_each_device_type_gets_its_version_of_the_object(proxy: ProxyFactory, tmp_path: Path) -> None:
    folder(tmp_path, "site", {f"{device}/image.png": f"{device} image" for device in DEVICES})
    device_headers = ", ".join(f'"CloudFront-Is-{name}-Viewer"' for name in ("Desktop", "Mobile", "Tablet", "SmartTV"))
    toml = (
        f'[origins.site]\ndirectory = "site"\n[default_behavior]\norigin = "site"\n'
        f"cache_policy = {{ headers = [{device_headers}] }}\n"
        f'[default_behavior.functions]\norigin-request = "{ref("object_by_device")}"\n'
    )
    client = await serve(proxy, tmp_path, toml)
    for device, agent in DEVICES.items():
        response = await client.get("/image.png", headers={"User-Agent": agent})
        assert (response.status, await response.text()) == (200, f"{device} image")
    again = await client.get("/image.png", headers={"User-Agent": DEVICES["tablet"]})
    assert (again.headers["X-Cache"], await again.text()) == ("Hit from cloudfront", "tablet image")


@pytest.mark.parametrize(("country", "body"), [("DE", "Frankfurt"), ("JP", "Tokyo"), ("US", "default")])
async def test_the_s3_origins_region_follows_the_viewers_country(
    country: str, body: str, proxy: ProxyFactory, tmp_path: Path
) -> None:
    folder(tmp_path, "default", {"index.html": "default"})
    folder(tmp_path, "frankfurt", {"index.html": "Frankfurt"})
    folder(tmp_path, "tokyo", {"index.html": "Tokyo"})
    toml = (
        '[origins.default]\ndirectory = "default"\nbucket = "my-bucket"\n'
        '[origins.frankfurt]\ndirectory = "frankfurt"\nbucket = "my-bucket-in-eu-central-1"\n'
        '[origins.tokyo]\ndirectory = "tokyo"\nbucket = "my-bucket-in-ap-northeast-1"\n'
        '[default_behavior]\norigin = "default"\ncache_policy = "CachingOptimized"\n'
        'origin_request_policy = { headers = { include = ["CloudFront-Viewer-Country"] } }\n'
        f'[default_behavior.functions]\norigin-request = "{ref("s3_region_by_country")}"\n'
        f'[viewer]\ncountry = "{country}"\n'
    )
    response = await (await serve(proxy, tmp_path, toml)).get("/index.html")
    assert (response.status, await response.text()) == (200, body)


@pytest.mark.parametrize(("country", "eu"), [("GB", True), ("IE", True), ("US", False), ("FR", False)])
async def test_the_origins_domain_name_follows_the_viewers_country(
    country: str, eu: bool, origin: Origin, second_origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    toml = (
        in_front_of(origin, "origin-request", "origin_by_country")
        + f'[resolve]\n"eu.example.com" = "{second_origin.url}"\n'
    )
    toml = toml.replace(
        "[default_behavior.functions]",
        'cache_policy = "CachingDisabled"\norigin_request_policy = "AllViewerAndCloudFrontHeaders-2022-06"\n'
        "[default_behavior.functions]",
    )
    client = await serve(proxy, tmp_path, toml)
    assert (await client.get("/page", headers={"X-Edgeproxy-Viewer-Country": country})).status == 200
    reached, other = (second_origin, origin) if eu else (origin, second_origin)
    assert (len(reached.seen), len(other.seen)) == (1, 0)
    if eu:
        assert reached.last.header("Host") == ["eu.example.com"]
    assert reached.last.header("CloudFront-Viewer-Country") == [country]


# -- The same scenarios from `edgeproxy events` through `edgeproxy invoke` ------------------------------------------

Check = Callable[[dict[str, Any]], object]
META = "Tue, 01 Dec 2026 10:00:00 GMT"
CLI_CASES: list[tuple[str, list[str], Check]] = [
    (
        "ab_testing",
        ["viewer-request", "--uri", "/experiment-pixel.jpg", "--header", "Cookie: X-Experiment-Name=B"],
        lambda result: result["uri"] == "/experiment-group/treatment-pixel.jpg",
    ),
    (
        "override_header",
        ["origin-response", "--response-header", f"X-Amz-Meta-Last-Modified: {META}", "--response-header", "ETag: x"],
        lambda result: result["headers"]["last-modified"] == [{"key": "Last-Modified", "value": META}],
    ),
    ("static_content", ["viewer-request"], lambda result: result["headers"]["content-type"][0]["value"] == "text/html"),
    ("http_redirect", ["origin-request"], lambda result: result["status"] == "302"),
    (
        "query_to_header",
        ["viewer-request", "--uri", "/x?auth=k&lang=en"],
        lambda result: (result["querystring"], result["headers"]["auth-header"][0]["value"]) == ("lang=en", "k"),
    ),
    ("normalize_query", ["viewer-request", "--uri", "/x?B=2&a=1"], lambda result: result["querystring"] == "a=1&b=2"),
    (
        "signin_redirect",
        ["viewer-request", "--uri", "/p?a=1"],
        lambda result: result["headers"]["location"][0]["value"].endswith(
            quote_plus("https://d111111abcdef8.cloudfront.net/p?a=1")
        ),
    ),
    (
        "custom_to_s3",
        ["origin-request", "--uri", "/x?useS3Origin=true"],
        lambda result: result["origin"]["s3"]["domainName"] == "my-bucket.s3.amazonaws.com",
    ),
    (
        "s3_to_custom",
        ["origin-request", "--origin", "s3://my-bucket", "--uri", "/x?useCustomOrigin=true"],
        lambda result: result["origin"]["custom"]["domainName"] == "www.example.com",
    ),
    (
        "gradual_transfer",
        ["origin-request", "--origin", "s3://green-bucket"],
        lambda result: result["headers"]["host"] == [{"key": "host", "value": "blue-bucket.s3.amazonaws.com"}],
    ),
    ("error_to_ok", ["origin-response", "--status", "404"], lambda result: result["status"] == "200"),
    (
        "error_to_redirect",
        ["origin-response", "--status", "503", "--uri", "/a?x=1"],
        lambda result: (result["status"], result["body"]) == ("302", ""),
    ),
    (
        "origin_by_country",
        ["origin-request", "--country", "DE"],
        lambda result: result["origin"]["custom"]["domainName"] == "eu.example.com",
    ),
    (
        "read_form",
        ["viewer-request", "--method", "POST", "--body", FORM],
        lambda result: result["body"]["data"] == base64.b64encode(FORM.encode()).decode(),
    ),
    (
        "modify_form",
        ["origin-request", "--method", "POST", "--body", FORM],
        lambda result: result["body"]["data"].endswith("&new-param-name=new-param-value"),
    ),
]


@pytest.mark.parametrize(("handler", "args", "check"), [pytest.param(*case, id=case[0]) for case in CLI_CASES])
def test_edgeproxy_events_makes_each_event_and_invoke_runs_the_handler_on_it(
    handler: str,
    args: list[str],
    check: Check,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(random, "randint", lambda low, high: low)  # the gradual transfer sends this one to blue
    assert main(["events", *args]) == 0
    (tmp_path / "event.json").write_text(capsys.readouterr().out)
    in_process = ["--isolation", "thread"] if handler == "gradual_transfer" else []  # its random numbers are ours
    assert main(["invoke", ref(handler), "--event", str(tmp_path / "event.json"), *in_process]) == 0
    result = json.loads(capsys.readouterr().out)
    assert check(result), result


def test_the_python_api_makes_the_same_events() -> None:
    # edgeproxy events calls testing.cloudfront_event: the S3 origin and include-body body are the API's too.
    event = testing.cloudfront_event("origin-request", "/f", method="POST", origin="s3://green-bucket", body=FORM)
    request = event["Records"][0]["cf"]["request"]
    assert request["origin"]["s3"]["domainName"] == "green-bucket.s3.us-east-1.amazonaws.com"
    assert base64.b64decode(request["body"]["data"]) == FORM.encode()


def test_two_examples_unmodified_behind_edgeproxy_serve(tmp_path: Path) -> None:
    # The switch to my-bucket.s3.amazonaws.com at origin-request, and the numeric 200 at origin-response, through the
    # command itself; www.example.com is never contacted: both requests end at the folder standing for my-bucket.
    folder(tmp_path, "bucket", {"logo.txt": "from my-bucket\n"})
    (tmp_path / "edgeproxy.toml").write_text(
        '[origins.app]\nurl = "https://www.example.com"\n'
        '[origins.assets]\ndirectory = "bucket"\nbucket = "my-bucket"\n'
        '[default_behavior]\norigin = "app"\n[default_behavior.functions]\n'
        f'origin-request = "{ref("custom_to_s3")}"\norigin-response = "{ref("error_to_ok")}"\n'
    )
    paths = ("/logo.txt?useS3Origin=true", "/missing.txt?useS3Origin=true")
    [found, missing], stderr = serve_and_get(["serve", "--config", "edgeproxy.toml"], tmp_path, *paths)
    assert (found[0], found[1]["Server"], found[2]) == (200, "AmazonS3", b"from my-bucket\n")
    assert (missing[0], missing[2]) == (200, b"Body generation example")
    assert "Traceback" not in stderr
