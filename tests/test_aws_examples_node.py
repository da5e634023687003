"""Functional: the scenarios of AWS's "Lambda@Edge example functions" page (CloudFront Developer Guide,
lambda-examples.html) with Node.js handlers, each through the proxy over real sockets, and through
``edgeproxy events`` + ``invoke``.

The handlers in ``tests/aws_examples/node/`` are written for these tests (see the README there); each does what AWS
documents for its scenario, relying on CloudFront the way AWS's example does, in the Node.js style AWS's examples use:
CommonJS, ``(event, context, callback)`` handlers, ``require('querystring')``. The same eighteen scenarios as the
Python ones (test_aws_examples.py): the four that read ``CloudFront-Viewer-Country`` or ``CloudFront-Is-*-Viewer``
run with the cache and origin request policies their setup asks for, the viewer's country simulated by ``[viewer]``
or ``X-Edgeproxy-Viewer-Country`` and its device read from its ``User-Agent``, as there.

The handlers that pick at random (A/B testing, the gradual transfer) get their random numbers from the test: the
environment preloads ``fixed_random.cjs`` (``NODE_OPTIONS``, passed through from the proxy's own environment),
which makes ``Math.random()`` return ``EDGEPROXY_TEST_RANDOM``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from edgeproxy import config
from edgeproxy.cli import main
from tests.conftest import Client, Origin, ProxyFactory, needs_node, serve_and_get
from tests.test_aws_examples import ALL_METHODS, DEVICES, FORM, GENERATED, folder

pytestmark = needs_node

EXAMPLES = Path(__file__).parent / "aws_examples" / "node"


def ref(name: str) -> str:
    return f"{EXAMPLES / name}.js:handler"


@pytest.fixture
def fixed_random(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``fixed_random(0.3)``: the environments started from now on draw 0.3 from ``Math.random()``."""

    def fix(value: float) -> None:
        monkeypatch.setenv("NODE_OPTIONS", f"--require {EXAMPLES / 'fixed_random.cjs'}")
        monkeypatch.setenv("EDGEPROXY_TEST_RANDOM", str(value))

    return fix


async def serve(proxy: ProxyFactory, tmp_path: Path, toml: str) -> Client:
    path = tmp_path / "edgeproxy.toml"
    path.write_text(toml)
    return await proxy(config.load(path))


def in_front_of(origin: Origin, trigger: str, handler: str, *, include_body: bool = False) -> str:
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
    fixed_random: Callable[[float], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if dice is not None:
        fixed_random(dice)
    client = await serve(proxy, tmp_path, in_front_of(origin, "viewer-request", "ab_testing"))
    with caplog.at_level(logging.INFO, logger="edgeproxy.lambda"):
        response = await client.get("/experiment-pixel.jpg", headers=[("Cookie", cookie) for cookie in cookies])
    assert response.status == 200
    assert origin.last.raw_path == uri
    assert f'\tINFO\tRequest uri set to "{uri}"' in caplog.text  # its console.log, as the Node.js runtime logs it
    assert (await client.get("/other.jpg")).status == 200
    assert origin.last.raw_path == "/other.jpg"


async def test_overriding_a_response_header_from_another_sets_last_modified(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, "origin-response", "override_header"))
    meta, stale = "Tue, 01 Dec 2026 10:00:00 GMT", "Mon, 30 Nov 2026 08:00:00 GMT"
    response = await client.get("/headers", params={"X-Amz-Meta-Last-Modified": meta, "Last-Modified": stale})
    assert response.status == 200
    assert response.headers.getall("Last-Modified") == [meta]
    assert response.headers.getall("X-Amz-Meta-Last-Modified") == [meta]


# -- Generated responses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
async def test_static_content_is_generated_at_the_edge(
    trigger: str, origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, trigger, "static_content"))
    response = await client.get("/index.html")
    assert (response.status, response.headers["X-Cache"]) == (200, GENERATED)
    assert (response.headers["Cache-Control"], response.headers["Content-Type"]) == ("max-age=100", "text/html")
    text = await response.text()
    assert text.startswith("\n<!DOCTYPE html>\n")  # the template literal starts with a line break
    assert "<p>Hello from Lambda@Edge!</p>" in text
    assert origin.seen == []


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
async def test_an_http_redirect_is_generated_at_the_edge(
    trigger: str, origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, trigger, "http_redirect"))
    response = await client.get("/old", allow_redirects=False)
    assert (response.status, response.reason, response.headers["X-Cache"]) == (302, "Found", GENERATED)
    assert response.headers["Location"] == "http://docs.aws.amazon.com/lambda/latest/dg/lambda-edge.html"
    assert origin.seen == []


# -- Query strings --------------------------------------------------------------------------------------------------


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
    page = quote("https://www.example.org/account?tab=orders", safe="")  # encodeURIComponent
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
    assert (switched.status, await switched.text(), switched.headers["Server"]) == (200, "from my-bucket\n", "AmazonS3")
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


@pytest.mark.parametrize(("dice", "bucket"), [(0.0, "blue"), (0.79, "blue"), (0.8, "green"), (0.99, "green")])
async def test_traffic_moves_gradually_to_the_blue_bucket(
    dice: float, bucket: str, proxy: ProxyFactory, tmp_path: Path, fixed_random: Callable[[float], None]
) -> None:
    fixed_random(dice)  # the number drawn from 1 to 100 is then 1, 80, 81 or 100: blue up to 80
    folder(tmp_path, "green", {"app.js": "green"})
    folder(tmp_path, "blue", {"app.js": "blue"})
    toml = (
        '[origins.green]\ndirectory = "green"\nbucket = "green-bucket"\n'
        '[origins.blue]\ndirectory = "blue"\nbucket = "blue-bucket"\n'
        f'[default_behavior]\norigin = "green"\n'
        f'[default_behavior.functions]\norigin-request = "{ref("gradual_transfer")}"\n'
    )
    response = await (await serve(proxy, tmp_path, toml)).get("/app.js")
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
    assert '\tINFO\tFor "name1" user submitted "Ada Lovelace".' in caplog.text
    assert '\tINFO\tFor "name2" user submitted "café".' in caplog.text


@pytest.mark.parametrize("trigger", ["viewer-request", "origin-request"])
async def test_a_form_in_the_body_is_replaced(
    trigger: str, origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    client = await serve(proxy, tmp_path, in_front_of(origin, trigger, "modify_form", include_body=True))
    response = await client.post("/contact", data=FORM, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 200
    sent = "name1=Ada%20Lovelace&name2=caf%C3%A9&new-param-name=new-param-value"  # Node's querystring.stringify
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
    toml = in_front_of(origin, "origin-request", "redirect_by_country").replace(
        "[default_behavior.functions]",
        'cache_policy = { headers = ["CloudFront-Viewer-Country"] }\n[default_behavior.functions]',
    )
    client = await serve(proxy, tmp_path, toml)
    for expected_cache in (GENERATED, "Hit from cloudfront"):
        response = await client.get("/", headers={"X-Edgeproxy-Viewer-Country": country}, allow_redirects=False)
        assert (response.status, response.reason, response.headers["Location"]) == (302, "Found", location)
        assert response.headers["X-Cache"] == expected_cache
    assert origin.seen == []


async def test_each_device_type_gets_its_version_of_the_object(
    proxy: ProxyFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder(tmp_path, "site", {f"{device}/image.png": f"{device} image" for device in DEVICES})
    device_headers = ", ".join(f'"CloudFront-Is-{name}-Viewer"' for name in ("Desktop", "Mobile", "Tablet", "SmartTV"))
    toml = (
        f'[origins.site]\ndirectory = "site"\n[default_behavior]\norigin = "site"\n'
        f"cache_policy = {{ headers = [{device_headers}] }}\n"
        f'[default_behavior.functions]\norigin-request = "{ref("object_by_device")}"\n'
    )
    client = await serve(proxy, tmp_path, toml)
    for device, agent in DEVICES.items():
        with caplog.at_level(logging.INFO, logger="edgeproxy.lambda"):
            response = await client.get("/image.png", headers={"User-Agent": agent})
        assert (response.status, await response.text()) == (200, f"{device} image")
        assert f'\tINFO\tRequest uri set to "/{device}/image.png"' in caplog.text
    again = await client.get("/image.png", headers={"User-Agent": DEVICES["tablet"]})
    assert (again.headers["X-Cache"], await again.text()) == ("Hit from cloudfront", "tablet image")


@pytest.mark.parametrize(("country", "body"), [("DE", "Frankfurt"), ("JP", "Tokyo"), ("US", "default")])
async def test_the_s3_origins_region_follows_the_viewers_country(
    country: str, body: str, proxy: ProxyFactory, tmp_path: Path
) -> None:
    # As in AWS's Node.js example, the bucket is named by its global endpoint, my-bucket-in-<region>.s3.amazonaws.com.
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
    assert (response.status, await response.text(), response.headers["Server"]) == (200, body, "AmazonS3")


@pytest.mark.parametrize(("country", "eu"), [("GB", True), ("IE", True), ("DE", True), ("US", False), ("FR", False)])
async def test_the_origins_domain_name_follows_the_viewers_country(
    country: str, eu: bool, origin: Origin, second_origin: Origin, proxy: ProxyFactory, tmp_path: Path
) -> None:
    toml = (
        in_front_of(origin, "origin-request", "origin_by_country").replace(
            "[default_behavior.functions]",
            'cache_policy = "CachingDisabled"\norigin_request_policy = "AllViewerAndCloudFrontHeaders-2022-06"\n'
            "[default_behavior.functions]",
        )
        + f'[resolve]\n"eu.example.com" = "{second_origin.url}"\n'
    )
    client = await serve(proxy, tmp_path, toml)
    assert (await client.get("/page", headers={"X-Edgeproxy-Viewer-Country": country})).status == 200
    reached, other = (second_origin, origin) if eu else (origin, second_origin)
    assert (len(reached.seen), len(other.seen)) == (1, 0)
    assert reached.last.raw_path == "/page"
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
            quote("https://d111111abcdef8.cloudfront.net/p?a=1", safe="")
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
        "redirect_by_country",
        ["origin-request", "--country", "TW"],
        lambda result: result["headers"]["location"] == [{"key": "Location", "value": "https://tw.example.com/"}],
    ),
    (
        "object_by_device",
        ["origin-request", "--uri", "/image.png", "--header", "CloudFront-Is-Mobile-Viewer: true"],
        lambda result: result["uri"] == "/mobile/image.png",
    ),
    (
        "s3_region_by_country",
        ["origin-request", "--origin", "s3://my-bucket", "--country", "JP"],
        lambda result: (
            (result["origin"]["s3"]["region"], result["headers"]["host"][0]["value"])
            == ("ap-northeast-1", "my-bucket-in-ap-northeast-1.s3.amazonaws.com")
        ),
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
def test_edgeproxy_events_makes_each_event_and_invoke_runs_the_node_handler_on_it(
    handler: str,
    args: list[str],
    check: Check,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fixed_random: Callable[[float], None],
) -> None:
    fixed_random(0.0)  # the gradual transfer sends this one to blue
    assert main(["events", *args]) == 0
    (tmp_path / "event.json").write_text(capsys.readouterr().out)
    assert main(["invoke", ref(handler), "--event", str(tmp_path / "event.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert check(result), result


def test_two_handlers_behind_edgeproxy_serve(tmp_path: Path) -> None:
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
