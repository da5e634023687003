"""CloudFront's viewer headers: where the viewer is, what device it is on, how it connected ("Add CloudFront request
headers"; reference §4.1, §2.5).

CloudFront adds these toward the origin when a cache or origin request policy names them, after viewer-request (which
never sees them), replacing a viewer's own header of the same name. Here the viewer's location is simulated: a
distribution's ``[viewer]`` table (:class:`Location`, by default the guide's own example viewer in Altadena,
California), overridden per request by ``X-Edgeproxy-Viewer-*`` headers (:data:`OVERRIDE_PREFIX`), which the proxy
takes off the request before the pipeline. The device flags come from the ``User-Agent`` (:func:`devices`).
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import quote

import pycountry

from edgeproxy.headers import CLOUDFRONT_HEADERS

OVERRIDE_PREFIX = "x-edgeproxy-viewer-"
MAX_HEADER_ORDER = 7680  # CloudFront-Viewer-Header-Order is truncated beyond 7,680 characters
# RFC 5398's documentation AS number, as TEST-NET addresses stand in for viewers' IP addresses: CloudFront's guide
# gives no example ASN.
DOCUMENTATION_ASN = "64496"


@dataclass(frozen=True)
class Location:
    """Where the simulated viewer is, and how it connected: the ``[viewer]`` table's keys. ``None`` is a value
    CloudFront does not know (its header is then not sent), as for a viewer whose address locates no city.
    ``country_name`` and ``region_name`` default to ISO 3166's names for the codes."""

    country: str = "US"
    country_name: str | None = None
    region: str | None = None
    region_name: str | None = None
    city: str | None = None
    postal_code: str | None = None
    time_zone: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    metro_code: str | None = None
    asn: str | None = DOCUMENTATION_ASN
    protocol: str = "http"  # the viewer's protocol (CloudFront-Forwarded-Proto): the listener is plain HTTP


# The guide's example values for each location header ("Add CloudFront request headers").
DEFAULT_LOCATION = Location(
    country="US",
    country_name="United States",
    region="CA",
    region_name="California",
    city="Altadena",
    postal_code="91001",
    time_zone="America/Los_Angeles",
    latitude="34.19310",
    longitude="-118.13830",
    metro_code="803",
)
FIELDS = tuple(item.name for item in fields(Location))
# X-Edgeproxy-Viewer-Country, -Country-Name, -Region, ... -> the Location field each overrides.
OVERRIDES = {OVERRIDE_PREFIX + name.replace("_", "-"): name for name in FIELDS}


class LocationError(ValueError):
    """A location value that is not one (an unknown country code, a region of another country...): ``field`` is the
    Location field it was given for."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def location(values: Mapping[str, Any], base: Location = DEFAULT_LOCATION) -> Location:
    """``base`` with ``values`` (Location field -> value) applied and checked, the names filled in. A different
    ``country`` starts from that country alone: ``base``'s region, city and the rest described another one."""
    given: dict[str, Any] = {name: _text(name, value) for name, value in values.items()}
    country = given.pop("country", base.country).upper()
    if country != base.country:
        base = Location(country=country, asn=base.asn, protocol=base.protocol)
    if "region" in given and "region_name" not in given:
        given["region_name"] = None  # named after the new region
    return _completed(replace(base, country=country, **given))


def _text(name: str, value: Any) -> str:
    if name in ("latitude", "longitude") and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.5f}"  # as CloudFront writes them: 34.19310
    return str(value)


def _completed(place: Location) -> Location:
    country = _country(place.country) if len(place.country) == 2 else None
    if country is None:
        raise LocationError("country", f"{place.country!r} is not an ISO 3166-1 alpha-2 country code")
    updates: dict[str, Any] = {}
    if place.country_name is None:
        updates["country_name"] = getattr(country, "common_name", None) or country.name
    if place.region is not None:
        region = _subdivision(f"{place.country}-{place.region.upper()}")
        if region is None or region.parent_code is not None:
            problem = f"{place.region!r} is not a first-level ISO 3166-2 subdivision of {place.country}"
            raise LocationError("region", problem)
        updates["region"] = place.region.upper()
        if place.region_name is None:
            updates["region_name"] = region.name
    if place.time_zone is not None and place.time_zone not in _time_zones():
        raise LocationError("time_zone", f"{place.time_zone!r} is not an IANA time zone")
    for name, bound in (("latitude", 90.0), ("longitude", 180.0)):
        value = getattr(place, name)
        if value is not None:
            try:
                number = float(value)
            except ValueError:
                raise LocationError(name, f"{value!r} is not a number") from None
            if not -bound <= number <= bound:
                raise LocationError(name, f"{value} is not between -{bound:g} and {bound:g}")
    if place.metro_code is not None and place.country != "US":
        raise LocationError("metro_code", "metro codes are sent for viewers in the United States only")
    if place.asn is not None and not place.asn.isdigit():
        raise LocationError("asn", f"{place.asn!r} is not an AS number")
    if place.protocol not in ("http", "https"):
        raise LocationError("protocol", f"{place.protocol!r} is not http or https")
    return replace(place, **updates)


def overrides(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The ``X-Edgeproxy-Viewer-*`` headers of a request, as Location field -> value (the last one of a name wins)."""
    return {field: value.strip() for name, value in headers if (field := OVERRIDES.get(name.lower())) is not None}


def override_header(field: str) -> str:
    """The header that overrides Location ``field``: ``X-Edgeproxy-Viewer-Time-Zone`` for ``time_zone``."""
    return "X-Edgeproxy-Viewer-" + "-".join(part.capitalize() for part in field.split("_"))


def is_override(name: str) -> bool:
    return name.lower().startswith(OVERRIDE_PREFIX)


def _country(code: str) -> Any:
    return pycountry.countries.get(alpha_2=code)


def _subdivision(code: str) -> Any:
    return pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def preload() -> None:
    """Load ISO 3166's tables and the time zones' names now (they load on first use, some 0.1 s: not on the event
    loop in a request)."""
    _country("US")
    _subdivision("US-CA")
    _time_zones()


# --- device type ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Devices:
    """The six ``CloudFront-Is-*-Viewer`` flags."""

    desktop: bool
    mobile: bool
    tablet: bool
    smarttv: bool
    android: bool
    ios: bool


# CloudFront documents what each flag means, not how it reads a User-Agent: Android and iOS are the operating
# systems ("iPhone, iPod touch, and some iPad devices"), several flags may be true ("for some tablet devices,
# CloudFront sets both CloudFront-Is-Mobile-Viewer and CloudFront-Is-Tablet-Viewer"), and curl is a desktop viewer in
# captures of live traffic (desktop: anything not found to be a phone, a tablet or a TV). The tokens below are the
# ones devices put in their User-Agent for that purpose ("Mobile" in phone browsers and iPad Safari, "Tablet" in
# Firefox on Android tablets, Android without "Mobile" on tablets, TV platforms' own names).
SMART_TV = re.compile(
    r"SMART-?TV|SmartTV|HbbTV|NetCast|Web0S|webOS\.TV|Tizen.*\bTV\b|AppleTV|Apple ?TV|tvOS|GoogleTV|Android ?TV"
    r"|CrKey|Roku|BRAVIA|\bAFT[A-Z]|Opera TV|\bDTV\b|Viera|AQUOS",
    re.IGNORECASE,
)
TABLET = re.compile(r"iPad|Tablet|Kindle|Silk/|\bKF[A-Z]{2,4}\b|PlayBook|Nexus (?:7|9|10)\b", re.IGNORECASE)
MOBILE = re.compile(
    r"iPhone|iPod|Mobile|Windows Phone|IEMobile|BlackBerry|\bBB10\b|Opera Mini|KaiOS|Symbian|Nokia|\bPhone\b",
    re.IGNORECASE,
)
ANDROID = re.compile(r"Android", re.IGNORECASE)
IOS = re.compile(r"iPhone|iPad|iPod", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def devices(user_agent: str | None) -> Devices:
    """The device flags CloudFront sets for a ``User-Agent`` (an absent one is a desktop's, like curl's)."""
    agent = user_agent or ""
    smarttv = bool(SMART_TV.search(agent))
    android = bool(ANDROID.search(agent))
    mobile_token = bool(MOBILE.search(agent))
    tablet = not smarttv and (bool(TABLET.search(agent)) or (android and not mobile_token))
    mobile = not smarttv and mobile_token
    return Devices(
        desktop=not (smarttv or tablet or mobile),
        mobile=mobile,
        tablet=tablet,
        smarttv=smarttv,
        android=android,
        ios=bool(IOS.search(agent)) and not smarttv,
    )


# --- the headers --------------------------------------------------------------------------------------------------


def _encoded(value: str) -> str:
    """Non-ASCII characters percent-encoded (RFC 3986 §2.1), as CloudFront sends location values."""
    return "".join(char if char.isascii() else quote(char, safe="") for char in value)


def cloudfront_headers(
    names: Iterable[str],
    *,
    place: Location,
    user_agent: str | None,
    client_ip: str,
    client_port: int | None,
    http_version: str,
    viewer_header_names: list[str],
) -> list[tuple[str, str]]:
    """CloudFront's headers ``names`` (lower case) for this viewer, in CloudFront's spelling; a header CloudFront has
    no value for (a city it does not know; TLS details and fingerprints of a plain HTTP viewer) is not sent."""
    wanted = set(names)
    flags = devices(user_agent) if any(name.startswith("cloudfront-is-") for name in wanted) else None
    order = ":".join(viewer_header_names)[:MAX_HEADER_ORDER]
    values: dict[str, str | None] = {
        "cloudfront-forwarded-proto": place.protocol,
        "cloudfront-viewer-address": f"{client_ip}:{client_port}" if client_port is not None else None,
        "cloudfront-viewer-asn": place.asn,
        "cloudfront-viewer-city": place.city,
        "cloudfront-viewer-country": place.country,
        "cloudfront-viewer-country-name": place.country_name,
        "cloudfront-viewer-country-region": place.region,
        "cloudfront-viewer-country-region-name": place.region_name,
        "cloudfront-viewer-header-count": str(len(viewer_header_names)),
        "cloudfront-viewer-header-order": order,
        "cloudfront-viewer-http-version": http_version,
        "cloudfront-viewer-latitude": place.latitude,
        "cloudfront-viewer-longitude": place.longitude,
        "cloudfront-viewer-metro-code": place.metro_code,
        "cloudfront-viewer-postal-code": place.postal_code,
        "cloudfront-viewer-time-zone": place.time_zone,
    }
    if flags is not None:
        for flag in ("android", "desktop", "ios", "mobile", "smarttv", "tablet"):
            values[f"cloudfront-is-{flag}-viewer"] = "true" if getattr(flags, flag) else "false"
    headers = []
    for name, spelling in CLOUDFRONT_HEADERS.items():
        value = values.get(name) if name in wanted else None
        if value is not None:
            headers.append((spelling, _encoded(value)))
    return headers
