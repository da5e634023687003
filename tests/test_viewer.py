"""CloudFront's viewer headers: the device flags from the User-Agent, the simulated location from ``[viewer]`` and the
``X-Edgeproxy-Viewer-*`` overrides, and, through the proxy, where they appear (origin-request and the origin, never
viewer-request) and that they replace a viewer's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgeproxy import testing, viewer
from edgeproxy.errors import ConfigError
from tests.conftest import RECORD_EVENTS, HandlerWriter, Origin, ProxyFactory, distribution_from, recorded_events

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1 "
    "Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile "
    "Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_TABLET = "Mozilla/5.0 (Android 4.4; Tablet; rv:41.0) Gecko/41.0 Firefox/41.0"
TIZEN_TV = (
    "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36"
)
FIRE_TV = (
    "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/70.0.3538.110 Mobile Safari/537.36"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36"
)
MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari"
KINDLE = "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; KFTT Build/IML74K) AppleWebKit/537.36 Silk/3.68 Safari/537.36"


@pytest.mark.parametrize(
    ("agent", "flags"),
    [
        # desktop, mobile, tablet, smarttv, android, ios
        ("curl/8.5.0", (True, False, False, False, False, False)),  # curl is a desktop viewer in live captures
        (None, (True, False, False, False, False, False)),
        (WINDOWS, (True, False, False, False, False, False)),
        (MAC, (True, False, False, False, False, False)),  # iPadOS Safari's default UA is this one too
        (IPHONE, (False, True, False, False, False, True)),
        (IPAD, (False, True, True, False, False, True)),  # "for some tablet devices, both Mobile and Tablet"
        (ANDROID_PHONE, (False, True, False, False, True, False)),
        (ANDROID_TABLET, (False, False, True, False, True, False)),
        (FIREFOX_TABLET, (False, False, True, False, True, False)),
        (KINDLE, (False, False, True, False, True, False)),
        (TIZEN_TV, (False, False, False, True, False, False)),
        (FIRE_TV, (False, False, False, True, True, False)),
    ],
)
def test_device_flags_from_the_user_agent(agent: str | None, flags: tuple[bool, ...]) -> None:
    found = viewer.devices(agent)
    assert (found.desktop, found.mobile, found.tablet, found.smarttv, found.android, found.ios) == flags


def test_the_default_viewer_is_the_guides_example_and_a_country_starts_afresh() -> None:
    place = viewer.DEFAULT_LOCATION
    assert (place.country, place.city, place.region, place.time_zone, place.metro_code) == (
        "US",
        "Altadena",
        "CA",
        "America/Los_Angeles",
        "803",
    )
    german = viewer.location({"country": "de", "region": "BY", "latitude": 48.1})
    assert (german.country, german.country_name, german.region, german.region_name) == ("DE", "Germany", "BY", "Bayern")
    assert (german.city, german.metro_code, german.latitude) == (None, None, "48.10000")
    assert viewer.location({"country": "KR"}).country_name == "South Korea"  # ISO's common name


@pytest.mark.parametrize(
    ("values", "key", "problem"),
    [
        ({"country": "XX"}, "viewer.country", "not an ISO 3166-1 alpha-2"),
        ({"region": "BY"}, "viewer.region", "not a first-level ISO 3166-2 subdivision of US"),
        ({"time_zone": "Mars/Olympus"}, "viewer.time_zone", "not an IANA time zone"),
        ({"country": "DE", "metro_code": "803"}, "viewer.metro_code", "United States only"),
        ({"latitude": 91}, "viewer.latitude", "between -90 and 90"),
    ],
)
def test_a_bad_viewer_table_names_the_key(values: dict[str, Any], key: str, problem: str, tmp_path: Path) -> None:
    table = "\n".join(f"{name} = {value!r}".replace("'", '"') for name, value in values.items())
    toml = f'[origins.app]\nurl = "http://127.0.0.1:1"\n[default_behavior]\norigin = "app"\n[viewer]\n{table}\n'
    with pytest.raises(ConfigError) as raised:
        distribution_from(tmp_path, toml)
    assert (raised.value.key, problem in raised.value.problem) == (key, True)


def test_non_ascii_values_are_percent_encoded() -> None:
    place = viewer.location({"country": "IN", "region": "TN", "city": "Chennai"})
    headers = dict(
        viewer.cloudfront_headers(
            ["cloudfront-viewer-country-region-name", "cloudfront-viewer-city"],
            place=place,
            user_agent=None,
            client_ip="203.0.113.10",
            client_port=1,
            http_version="1.1",
            viewer_header_names=[],
        )
    )
    assert headers == {"CloudFront-Viewer-Country-Region-Name": "Tamil N%C4%81du", "CloudFront-Viewer-City": "Chennai"}


def cf(event: Any) -> Any:
    return event["Records"][0]["cf"]


def all_headers_toml(origin: Origin, ref: str, extra: str = "") -> str:
    return (
        f'[origins.app]\nurl = "{origin.url}"\n[default_behavior]\norigin = "app"\n'
        'cache_policy = "CachingDisabled"\norigin_request_policy = "AllViewerAndCloudFrontHeaders-2022-06"\n'
        f'[default_behavior.functions]\nviewer-request = "{ref}"\norigin-request = "{ref}"\n{extra}'
    )


async def test_cloudfront_headers_reach_origin_request_and_the_origin_not_viewer_request(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path, write_handler: HandlerWriter
) -> None:
    ref = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(distribution_from(tmp_path, all_headers_toml(origin, ref)))
    spoofed = {"User-Agent": IPHONE, "CloudFront-Viewer-Country": "FR"}
    assert (await client.get("/", headers=spoofed)).status == 200
    seen = origin.last
    assert seen.header("CloudFront-Viewer-Country") == ["US"]  # the viewer's own is replaced
    assert seen.header("CloudFront-Viewer-Country-Name") == ["United States"]
    assert seen.header("CloudFront-Viewer-City") == ["Altadena"]
    assert seen.header("CloudFront-Viewer-Time-Zone") == ["America/Los_Angeles"]
    assert seen.header("CloudFront-Is-Mobile-Viewer") == ["true"]
    assert seen.header("CloudFront-Is-IOS-Viewer") == ["true"]
    assert seen.header("CloudFront-Is-Desktop-Viewer") == ["false"]
    assert seen.header("CloudFront-Forwarded-Proto") == ["http"]
    assert seen.header("CloudFront-Viewer-HTTP-Version") == ["1.1"]
    assert seen.header("CloudFront-Viewer-Address")[0].startswith("127.0.0.1:")
    assert seen.header("CloudFront-Viewer-TLS") == []  # a plain HTTP viewer has no TLS details
    assert seen.header("CloudFront-Viewer-Header-Order") == []  # not in the 2022-06 policy
    viewer_request, origin_request = (cf(event)["request"]["headers"] for event in recorded_events(ref))
    assert viewer_request["cloudfront-viewer-country"] == [{"key": "CloudFront-Viewer-Country", "value": "FR"}]
    assert "cloudfront-is-mobile-viewer" not in viewer_request
    assert origin_request["cloudfront-viewer-country"] == [{"key": "CloudFront-Viewer-Country", "value": "US"}]
    assert origin_request["cloudfront-viewer-http-version"] == [
        {"key": "CloudFront-Viewer-HTTP-Version", "value": "1.1"}
    ]


async def test_the_viewer_table_and_the_override_headers_set_the_location(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path, write_handler: HandlerWriter
) -> None:
    ref = write_handler("recorder", RECORD_EVENTS)
    toml = all_headers_toml(origin, ref, '[viewer]\ncountry = "GB"\nregion = "SCT"\ncity = "Edinburgh"\n')
    client = await proxy(distribution_from(tmp_path, toml))
    assert (await client.get("/")).status == 200
    assert (origin.last.header("CloudFront-Viewer-Country"), origin.last.header("CloudFront-Viewer-City")) == (
        ["GB"],
        ["Edinburgh"],
    )
    assert origin.last.header("CloudFront-Viewer-Country-Region-Name") == ["Scotland"]
    overrides = {"X-Edgeproxy-Viewer-Country": "DE", "X-Edgeproxy-Viewer-City": "München"}
    assert (await client.get("/", headers=overrides)).status == 200
    seen = origin.last
    assert (seen.header("CloudFront-Viewer-Country"), seen.header("CloudFront-Viewer-Country-Name")) == (
        ["DE"],
        ["Germany"],
    )
    assert seen.header("CloudFront-Viewer-City") == ["M%C3%BCnchen"]
    assert seen.header("CloudFront-Viewer-Country-Region") == []  # Scotland was the configured viewer's
    assert all(not name.lower().startswith("x-edgeproxy") for name, _ in seen.headers)  # taken off before the pipeline
    viewer_event = cf(recorded_events(ref)[2])["request"]["headers"]
    assert all(not name.startswith("x-edgeproxy") for name in viewer_event)


async def test_a_bad_override_is_a_400_naming_the_header(
    origin: Origin, proxy: ProxyFactory, tmp_path: Path, write_handler: HandlerWriter
) -> None:
    ref = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(distribution_from(tmp_path, all_headers_toml(origin, ref)))
    response = await client.get("/", headers={"X-Edgeproxy-Viewer-Country": "Atlantis"})
    assert response.status == 400
    assert "X-Edgeproxy-Viewer-Country" in response.headers["X-Edgeproxy-Error"]
    assert origin.seen == []


async def test_cloudfront_headers_only_when_a_policy_names_them(origin: Origin, proxy: ProxyFactory) -> None:
    client = await proxy(origin=origin.url)
    assert (await client.get("/", headers={"X-Edgeproxy-Viewer-Country": "DE"})).status == 200
    assert [name for name, _ in origin.last.headers if name.lower().startswith(("cloudfront-", "x-edgeproxy"))] == []


async def test_a_cache_policy_can_key_on_the_country(origin: Origin, proxy: ProxyFactory, tmp_path: Path) -> None:
    toml = (
        f'[origins.app]\nurl = "{origin.url}"\n[default_behavior]\norigin = "app"\n'
        'cache_policy = { headers = ["CloudFront-Viewer-Country"] }\n'
    )
    client = await proxy(distribution_from(tmp_path, toml))
    answers = []
    for country in ("DE", "FR", "DE", "FR"):
        response = await client.get("/hello", headers={"X-Edgeproxy-Viewer-Country": country})
        answers.append(response.headers["X-Cache"].split()[0])
    assert answers == ["Miss", "Miss", "Hit", "Hit"]
    assert [seen.header("CloudFront-Viewer-Country") for seen in origin.seen] == [["DE"], ["FR"]]


def test_cloudfront_event_takes_the_viewers_country() -> None:
    event = testing.cloudfront_event("origin-request", "/", country="DE")
    headers = cf(event)["request"]["headers"]
    assert headers["cloudfront-viewer-country"] == [{"key": "CloudFront-Viewer-Country", "value": "DE"}]
    assert "cloudfront-viewer-country" not in cf(testing.cloudfront_event("viewer-request", "/"))["request"]["headers"]
    with pytest.raises(ValueError, match="country"):
        testing.cloudfront_event("origin-request", "/", country="XX")
