"""Functional: origin-request functions that switch the origin, and origins' custom headers (reference §1.6,
checklist 32-33), over real sockets.

A handler may replace ``request.origin`` with another custom origin or an S3 origin (served here by the configured
folder origin standing for its bucket, by any of the bucket's host names); the request goes there. A host name in
``[resolve]`` is connected to at its local URL, under its own name. ``Host`` changes only if the handler changes it.
Each field of a rewritten origin is checked against CloudFront's ranges: one case just outside (502, naming the
field, no origin contacted) and one inside (the request lands on the new origin).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from edgeproxy import config
from edgeproxy.config import Distribution
from tests.conftest import (
    RECORD_EVENTS,
    HandlerWriter,
    Origin,
    ProxyFactory,
    SnippetWriter,
    assert_cloudfront_error,
    recorded_events,
)


def custom_spec(target: Origin, **fields: Any) -> dict[str, Any]:
    url = URL(target.url)
    spec: dict[str, Any] = {
        "customHeaders": {},
        "domainName": url.host,
        "keepaliveTimeout": 5,
        "path": "",
        "port": url.port,
        "protocol": "http",
        "readTimeout": 30,
        "sslProtocols": ["TLSv1.2"],
    }
    spec.update(fields)
    return spec


def switch_to(origin_value: Any, *, host: str | None = None) -> str:
    """Snippet: replace request.origin (and the Host header if ``host``)."""
    code = f"request['origin'] = json.loads({json.dumps(origin_value)!r})"
    if host is not None:
        code += f"\nrequest['headers']['host'] = [{{'key': 'Host', 'value': {host!r}}}]"
    return code


FIELD_CASES: list[tuple[str, list[Any], list[Any]]] = [
    ("domainName", ["", "127.0.0.1:80", "192.0.2.10", "a" * 64, "b..c", "bücher.example"], ["localhost", "127.0.0.1"]),
    ("port", [79, 1023, 65536, "8080"], ["<second origin's port>"]),
    ("protocol", ["ftp", "HTTP"], ["http"]),
    ("path", ["prefix", "/prefix/", "/" + "p" * 255], ["/prefix", "/" + "p" * 254]),
    ("readTimeout", [3, 61], [4, 60]),
    ("keepaliveTimeout", [0, 61], [1, 60]),
    ("sslProtocols", [["TLSv1.3"], "TLSv1.2"], [["SSLv3"], ["TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3"]]),
]


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        pytest.param(field, value, ok, id=f"{field}-{str(value)[:20]}-{'ok' if ok else 'bad'}")
        for field, bad, good in FIELD_CASES
        for values, ok in ((bad, False), (good, True))
        for value in values
    ],
)
async def test_switched_custom_origin_fields(
    field: str,
    value: Any,
    ok: bool,
    origin: Origin,
    second_origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if value == "<second origin's port>":
        value = URL(second_origin.url).port
    ref = snippet(switch_to({"custom": custom_spec(second_origin, **{field: value})}))
    client = await proxy(origin=origin.url, functions={"origin-request": ref})
    response = await client.get("/x")
    assert origin.seen == []
    if ok:
        assert (response.status, response.headers["X-Cache"]) == (200, "Miss from cloudfront")
        expected_path = (value if field == "path" else "") + "/x"
        assert [seen.raw_path for seen in second_origin.seen] == [expected_path]
    else:
        detail = f"{ref} at origin-request: request.origin.custom.{field}"
        assert_cloudfront_error(response, caplog, 502, "LambdaValidationError", detail)
        assert second_origin.seen == []


@pytest.mark.parametrize(
    ("custom_headers", "detail"),
    [
        ({"x-cache": [{"value": "1"}]}, "customHeaders: disallowed header 'x-cache'"),
        ({"x-edge-secret": [{"value": "1"}]}, "customHeaders: disallowed header 'x-edge-secret'"),
        ({"user-agent": [{"value": "mine"}]}, "customHeaders: 'user-agent' is also in request.headers"),
        ({"x-origin-key": {"value": "k"}}, "customHeaders['x-origin-key'] must be an array"),
        ({"x-origin-key": [{"value": "k"}]}, None),
    ],
)
async def test_switched_origin_custom_headers(
    custom_headers: dict[str, Any],
    detail: str | None,
    origin: Origin,
    second_origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(switch_to({"custom": custom_spec(second_origin, customHeaders=custom_headers)}))
    client = await proxy(origin=origin.url, functions={"origin-request": ref})
    response = await client.get("/x")
    if detail is None:
        assert response.status == 200
        assert [(name, value) for name, value in second_origin.last.headers if name.lower() == "x-origin-key"] == [
            ("X-Origin-Key", "k")
        ]
    else:
        assert_cloudfront_error(response, caplog, 502, "LambdaValidationError", f"{ref} at origin-request: ", detail)
        assert second_origin.seen == []


S3_ASSETS: dict[str, Any] = {
    "authMethod": "none",
    "customHeaders": {},
    "domainName": "assets.s3.us-east-1.amazonaws.com",  # the configured folder origin named "assets"
    "path": "/static",
    "region": "us-east-1",
}


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("request['origin']['s3'] = {'domainName': 'b.s3.amazonaws.com'}", "exactly one of 'custom' or 's3'"),
        ("request['origin'] = {}", "exactly one of 'custom' or 's3'"),
        ("del request['origin']", "exactly one of 'custom' or 's3'"),
        (switch_to({"s3": S3_ASSETS | {"domainName": "Assets.s3.us-east-1.amazonaws.com"}}), "must be lower case"),
        (switch_to({"s3": S3_ASSETS | {"authMethod": "origin-access-identity", "region": ""}}), "region is required"),
        (switch_to({"s3": S3_ASSETS | {"authMethod": "origin-access-control"}}), "authMethod must be"),
        (switch_to({"s3": S3_ASSETS | {"authMethod": "origin-access-identity"}}), None),
        (switch_to({"s3": S3_ASSETS}), None),
    ],
)
async def test_origin_is_exactly_one_of_custom_or_s3(
    code: str,
    detail: str | None,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref = snippet(code)
    client = await proxy(with_assets(tmp_path, origin.url, {"origin-request": ref}))
    response = await client.get("/logo.txt")
    if detail is None:
        assert (response.status, await response.text()) == (200, "logo\n")
    else:
        assert_cloudfront_error(response, caplog, 502, "LambdaValidationError", f"{ref} at origin-request: ", detail)
    assert origin.seen == []


def with_assets(
    tmp_path: Path,
    origin_url: str,
    functions: dict[str, Any],
    *,
    app_headers: dict[str, str] | None = None,
    bucket: str | None = None,
) -> Distribution:
    """Origins ``app`` (HTTP, the default behavior's) and ``assets`` (a folder with static/logo.txt, standing for
    the bucket ``assets`` unless ``bucket`` names another)."""
    (tmp_path / "assets" / "static").mkdir(parents=True, exist_ok=True)
    (tmp_path / "assets" / "static" / "logo.txt").write_text("logo\n")
    assets = {"directory": "assets", "custom_headers": {"x-from": "assets"}} | ({"bucket": bucket} if bucket else {})
    return config.from_mapping(
        {
            "origins": {
                "app": {"url": origin_url, "custom_headers": app_headers or {}},
                "assets": assets,
            },
            "default_behavior": {"origin": "app", "functions": functions},
        },
        source="test",
        base_dir=tmp_path,
    )


@pytest.mark.parametrize(("host", "received"), [(None, "127.0.0.1"), ("localhost", "localhost")])
async def test_switching_domain_changes_host_only_if_the_handler_does(
    host: str | None,
    received: str,
    origin: Origin,
    second_origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    write_handler: HandlerWriter,
) -> None:
    """Checklist 33: domainName switched to B; without a Host change, B receives the old origin's Host."""
    spec = custom_spec(second_origin, domainName="localhost", path="/v2", readTimeout=10)
    spec["customHeaders"] = {"x-origin-key": [{"key": "X-Origin-Key", "value": "k"}]}
    ref = snippet(switch_to({"custom": spec}, host=host))
    recorder = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(origin=origin.url, functions={"origin-request": ref, "origin-response": recorder})
    response = await client.get("/page?q=1")
    assert (response.status, response.headers["X-Cache"]) == (200, "Miss from cloudfront")
    assert origin.seen == []
    seen = second_origin.last
    assert seen.raw_path == "/v2/page?q=1"
    assert seen.header("Host") == [received]
    assert seen.header("X-Origin-Key") == ["k"]
    # origin-response sees the request as it was sent, with the new origin.
    sent = recorded_events(recorder)[0]["Records"][0]["cf"]["request"]  # type: ignore[index]
    assert sent["origin"] == {"custom": spec}
    assert sent["headers"]["host"][0]["value"] == received


async def test_switching_to_an_s3_origin_served_by_a_folder(
    origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, tmp_path: Path
) -> None:
    ref = snippet(switch_to({"s3": S3_ASSETS}, host=S3_ASSETS["domainName"]))
    client = await proxy(with_assets(tmp_path, origin.url, {"origin-request": ref}))
    response = await client.get("/logo.txt")
    assert (response.status, await response.text()) == (200, "logo\n")
    assert response.headers["Server"] == "AmazonS3"
    assert response.headers["X-Cache"] == "Miss from cloudfront"
    assert origin.seen == []
    missing = await client.get("/nope.txt")
    assert (missing.status, missing.headers["X-Cache"]) == (404, "Error from cloudfront")
    assert "<Key>static/nope.txt</Key>" in await missing.text()


async def test_switching_to_an_unknown_s3_bucket_is_502(
    origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ref = snippet(switch_to({"s3": S3_ASSETS | {"domainName": "elsewhere.s3.amazonaws.com"}}))
    client = await proxy(with_assets(tmp_path, origin.url, {"origin-request": ref}))
    response = await client.get("/logo.txt")
    assert_cloudfront_error(
        response, caplog, 502, "Error", "no folder origin stands for S3 domain 'elsewhere.s3.amazonaws.com'"
    )


@pytest.mark.parametrize(
    "domain",
    [
        # S3 user guide, "Virtual hosting of buckets" and "Amazon S3 endpoints": every host name of a bucket.
        "my-bucket.s3.amazonaws.com",
        "my-bucket.s3.eu-west-1.amazonaws.com",
        "my-bucket.s3-eu-west-1.amazonaws.com",
        "my-bucket.s3-external-1.amazonaws.com",
        "my-bucket.s3.dualstack.ap-southeast-2.amazonaws.com",
        "my-bucket.s3-fips.us-gov-west-1.amazonaws.com",
        "my-bucket.s3-fips.dualstack.us-east-2.amazonaws.com",
        "my-bucket.s3-accelerate.amazonaws.com",
        "my-bucket.s3-accelerate.dualstack.amazonaws.com",
        "my-bucket.s3.cn-north-1.amazonaws.com.cn",
    ],
)
async def test_a_folder_origin_answers_to_its_bucket_by_every_s3_host_name(
    domain: str, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, tmp_path: Path
) -> None:
    ref = snippet(switch_to({"s3": S3_ASSETS | {"domainName": domain}}, host=domain))
    distribution = with_assets(tmp_path, origin.url, {"origin-request": ref}, bucket="my-bucket")
    response = await (await proxy(distribution)).get("/logo.txt")
    assert (response.status, await response.text()) == (200, "logo\n")
    assert response.headers["Server"] == "AmazonS3"
    assert origin.seen == []


@pytest.mark.parametrize(
    "domain", ["assets.s3.amazonaws.com", "my-bucket.s3-website-us-east-1.amazonaws.com", "my-bucket.example.com"]
)
async def test_other_host_names_are_not_the_bucket(
    domain: str, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, tmp_path: Path
) -> None:
    # "assets" is the origin's name, but its bucket is "my-bucket"; a website endpoint is a custom origin (§5.2).
    ref = snippet(switch_to({"s3": S3_ASSETS | {"domainName": domain}}))
    distribution = with_assets(tmp_path, origin.url, {"origin-request": ref}, bucket="my-bucket")
    response = await (await proxy(distribution)).get("/logo.txt")
    assert (response.status, response.headers["X-Cache"]) == (502, "Error from cloudfront")


async def test_switching_from_s3_to_custom(
    origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, tmp_path: Path
) -> None:
    (tmp_path / "site").mkdir()
    ref = snippet(switch_to({"custom": custom_spec(origin)}))
    distribution = config.from_mapping(
        {
            "origins": {"site": {"directory": "site"}},
            "default_behavior": {"origin": "site", "functions": {"origin-request": ref}},
        },
        source="test",
        base_dir=tmp_path,
    )
    response = await (await proxy(distribution)).get("/api")
    assert response.status == 200
    assert origin.last.raw_path == "/api"
    assert origin.last.header("Host") == ["site.s3.us-east-1.amazonaws.com"]  # Host unchanged


async def test_configured_custom_headers_reach_the_origin_and_the_event(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter, tmp_path: Path
) -> None:
    recorder = write_handler("recorder", RECORD_EVENTS)
    distribution = with_assets(
        tmp_path, origin.url, {"origin-request": recorder}, app_headers={"x-origin-verify": "s3cr3t", "X-Team": "web"}
    )
    response = await (await proxy(distribution)).get("/x")
    assert response.status == 200
    custom = recorded_events(recorder)[0]["Records"][0]["cf"]["request"]["origin"]["custom"]  # type: ignore[index]
    assert custom["customHeaders"] == {
        "x-origin-verify": [{"key": "X-Origin-Verify", "value": "s3cr3t"}],
        "x-team": [{"key": "X-Team", "value": "web"}],
    }
    assert origin.last.header("X-Origin-Verify") == ["s3cr3t"]
    assert origin.last.header("X-Team") == ["web"]
    assert [name for name, _ in origin.last.headers if name.lower() == "x-origin-verify"] == ["X-Origin-Verify"]


@pytest.mark.parametrize("spelling", ["X-Origin-Verify", "x-origin-verify"])
async def test_a_custom_header_overwrites_the_viewers_header_of_that_name(
    spelling: str, origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter, tmp_path: Path
) -> None:
    # add-origin-custom-headers: "If a header is present, CloudFront overwrites the header value before forwarding
    # the request to the origin." A viewer cannot spoof the shared secret the origin checks, in either spelling.
    recorder = write_handler("recorder", RECORD_EVENTS)
    distribution = with_assets(
        tmp_path, origin.url, {"origin-request": recorder}, app_headers={"x-origin-verify": "s3cr3t", "X-Team": "web"}
    )
    response = await (await proxy(distribution)).get("/x", headers={spelling: "spoof", "X-After": "1"})
    assert response.status == 200
    assert origin.last.header("X-Origin-Verify") == ["s3cr3t"]
    assert origin.last.header("X-After") == ["1"]
    request = recorded_events(recorder)[0]["Records"][0]["cf"]["request"]  # type: ignore[index]
    assert "x-origin-verify" not in request["headers"]  # a name is in customHeaders or in headers, not both
    assert request["origin"]["custom"]["customHeaders"]["x-origin-verify"][0]["value"] == "s3cr3t"


async def test_handler_may_drop_or_change_configured_custom_headers(
    origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, tmp_path: Path
) -> None:
    ref = snippet(
        """
        headers = request['origin']['custom']['customHeaders']
        del headers['x-team']
        headers['x-origin-verify'][0]['value'] = 'rotated'
        """
    )
    distribution = with_assets(
        tmp_path, origin.url, {"origin-request": ref}, app_headers={"x-origin-verify": "s3cr3t", "X-Team": "web"}
    )
    assert (await (await proxy(distribution)).get("/x")).status == 200
    assert origin.last.header("X-Origin-Verify") == ["rotated"]
    assert origin.last.header("X-Team") == []


async def test_folder_origin_custom_headers_are_in_the_s3_event(
    proxy: ProxyFactory, write_handler: HandlerWriter, tmp_path: Path
) -> None:
    recorder = write_handler("recorder", RECORD_EVENTS)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "a.txt").write_text("a")
    distribution = config.from_mapping(
        {
            "origins": {"assets": {"directory": "assets", "custom_headers": {"x-from": "assets"}}},
            "default_behavior": {"origin": "assets", "functions": {"origin-request": recorder}},
        },
        source="test",
        base_dir=tmp_path,
    )
    response = await (await proxy(distribution)).get("/a.txt")
    assert (response.status, await response.text()) == (200, "a")
    s3 = recorded_events(recorder)[0]["Records"][0]["cf"]["request"]["origin"]["s3"]  # type: ignore[index]
    assert s3["customHeaders"] == {"x-from": [{"key": "X-From", "value": "assets"}]}
    assert s3["domainName"] == "assets.s3.us-east-1.amazonaws.com"


async def test_uri_rewrite_keeps_the_behavior_and_origin_chosen_from_the_viewers_uri(
    origin: Origin, second_origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, tmp_path: Path
) -> None:
    """Checklist 32: /images/a.jpg rewritten to /api/x at viewer-request still goes to the images origin."""
    rewrite = snippet("request['uri'] = '/api/x'")
    distribution = config.from_mapping(
        {
            "origins": {"images": {"url": origin.url}, "api": {"url": second_origin.url}},
            "behaviors": [
                {"path_pattern": "images/*", "origin": "images", "functions": {"viewer-request": rewrite}},
                {"path_pattern": "api/*", "origin": "api"},
            ],
            "default_behavior": {"origin": "api"},
        },
        source="test",
        base_dir=tmp_path,
    )
    response = await (await proxy(distribution)).get("/images/a.jpg")
    assert response.status == 200
    assert [seen.raw_path for seen in origin.seen] == ["/api/x"]
    assert second_origin.seen == []


# -- [resolve]: origin host names pointed at local servers ----------------------------------------------------------


def resolving(tmp_path: Path, origin_url: str, resolve: dict[str, str], functions: dict[str, Any]) -> Distribution:
    """One HTTP origin at ``origin_url`` (a real host name, reached through ``resolve``)."""
    return config.from_mapping(
        {
            "origins": {"app": {"url": origin_url}},
            "default_behavior": {"origin": "app", "functions": functions},
            "resolve": resolve,
        },
        source="test",
        base_dir=tmp_path,
    )


async def test_a_configured_origin_is_reached_at_its_resolved_url_under_its_own_name(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter, tmp_path: Path
) -> None:
    recorder = write_handler("recorder", RECORD_EVENTS)
    distribution = resolving(
        tmp_path, "https://www.example.com/prod", {"www.example.com": origin.url}, {"origin-request": recorder}
    )
    response = await (await proxy(distribution)).get("/page?q=1")
    assert (response.status, response.headers["X-Cache"]) == (200, "Miss from cloudfront")
    assert origin.last.raw_path == "/prod/page?q=1"
    assert origin.last.header("Host") == ["www.example.com"]
    custom = recorded_events(recorder)[0]["Records"][0]["cf"]["request"]["origin"]["custom"]  # type: ignore[index]
    assert (custom["domainName"], custom["port"], custom["protocol"]) == ("www.example.com", 443, "https")


async def test_an_international_origin_name_is_its_dns_name_in_the_event_and_the_host_header(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter, tmp_path: Path
) -> None:
    recorder = write_handler("recorder", RECORD_EVENTS)
    resolve = {"xn--bcher-kva.example": origin.url}
    distribution = resolving(tmp_path, "https://Bücher.example/shop", resolve, {"origin-request": recorder})
    response = await (await proxy(distribution)).get("/page")
    assert response.status == 200
    assert origin.last.header("Host") == ["xn--bcher-kva.example"]
    custom = recorded_events(recorder)[0]["Records"][0]["cf"]["request"]["origin"]["custom"]  # type: ignore[index]
    assert custom["domainName"] == "xn--bcher-kva.example"


async def test_a_switched_to_host_is_reached_at_its_resolved_url(
    origin: Origin, second_origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, tmp_path: Path
) -> None:
    spec = custom_spec(second_origin, domainName="eu.example.com", port=443, protocol="https")
    ref = snippet(switch_to({"custom": spec}, host="eu.example.com"))
    distribution = resolving(tmp_path, origin.url, {"eu.example.com": second_origin.url}, {"origin-request": ref})
    response = await (await proxy(distribution)).get("/x")
    assert response.status == 200
    assert origin.seen == []
    assert second_origin.last.header("Host") == ["eu.example.com"]


@pytest.mark.parametrize(("port", "lands_on"), [(8443, "second"), (443, "first")])
async def test_a_host_and_port_key_comes_before_the_host_alone(
    port: int,
    lands_on: str,
    origin: Origin,
    second_origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    tmp_path: Path,
) -> None:
    ref = snippet(switch_to({"custom": custom_spec(origin, domainName="API.example.com", port=port, protocol="https")}))
    resolve = {"api.example.com:8443": second_origin.url, "api.example.com": origin.url}
    distribution = resolving(tmp_path, "http://localhost:1", resolve, {"origin-request": ref})
    assert (await (await proxy(distribution)).get("/x")).status == 200
    assert (len(origin.seen), len(second_origin.seen)) == ((0, 1) if lands_on == "second" else (1, 0))


async def test_an_s3_host_name_no_folder_stands_for_may_be_resolved(
    origin: Origin, second_origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, tmp_path: Path
) -> None:
    domain = "other-bucket.s3.eu-west-1.amazonaws.com"
    ref = snippet(switch_to({"s3": S3_ASSETS | {"domainName": domain}}, host=domain))
    distribution = resolving(tmp_path, origin.url, {domain: second_origin.url}, {"origin-request": ref})
    response = await (await proxy(distribution)).get("/logo.txt?v=2")
    assert response.status == 200
    assert (second_origin.last.raw_path, second_origin.last.header("Host")) == ("/static/logo.txt?v=2", [domain])
