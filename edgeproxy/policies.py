"""Cache policies and origin request policies: the managed ones as data, inline ones from the config, and what
they let through to the origin (reference/aws-behaviour.md §4.1, §5.4; notes: "Use managed cache policies", "Use
managed origin request policies", "Control the cache key with a policy", "Control origin requests with a policy").

* A **cache policy** names the TTLs and what goes in the cache key: headers (a list), cookies and query strings
  (none, all, an include list or an exclude list), and whether the normalised ``Accept-Encoding`` is in it (the
  gzip and brotli flags).
* An **origin request policy** names what else reaches the origin, without going in the key: headers (none, all the
  viewer's, an include list, which may name CloudFront's own headers, or all except a list), cookies and query
  strings.
* What the origin (and the origin-request event) gets is the union of the two, per header, cookie and query string,
  plus the headers CloudFront always sends (``Host``, ``User-Agent``, ``Via``, ``X-Forwarded-For``,
  ``X-Amz-Cf-Id``); anything neither selects is removed.

A behavior that names neither policy keeps edgeproxy's behaviour from before policies: nothing is cached
(CachingDisabled) and every viewer header, cookie and query string is forwarded (AllViewerExceptHostHeader), with
``User-Agent`` replaced by ``Amazon CloudFront`` as CloudFront's legacy cache settings do. That is :data:`LEGACY`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from edgeproxy.errors import ConfigError
from edgeproxy.headers import CLOUDFRONT_HEADERS, DEVICE_HEADERS, ORIGIN_REQUEST_POLICY_ONLY

SelectionKind = Literal["none", "all", "include", "exclude"]
DAY = 86_400
YEAR = 31_536_000
# "Quotas": 10 headers, 10 cookies and 10 query strings per cache policy and per origin request policy.
MAX_NAMES = 10


@dataclass(frozen=True)
class Selection:
    """Which headers, cookies or query strings a policy selects, by name. Header names are lower case; cookie and
    query-string names are case-sensitive (§4.2 of the notes: "Cache content based on cookies / query strings")."""

    kind: SelectionKind = "none"
    names: frozenset[str] = frozenset()

    def selects(self, name: str) -> bool:
        if self.kind == "all":
            return True
        if self.kind == "include":
            return name in self.names
        if self.kind == "exclude":
            return name not in self.names
        return False

    @property
    def any(self) -> bool:
        return self.kind != "none"

    def union(self, other: Selection) -> Selection:
        """What either selection selects (a request's names are then tested against both)."""
        if self.kind == "none":
            return other
        if other.kind == "none":
            return self
        if "all" in (self.kind, other.kind):
            return Selection("all")
        if self.kind == other.kind == "include":
            return Selection("include", self.names | other.names)
        if self.kind == other.kind == "exclude":
            return Selection("exclude", self.names & other.names)
        include, exclude = (self, other) if self.kind == "include" else (other, self)
        return Selection("exclude", exclude.names - include.names)


NONE = Selection()
ALL = Selection("all")


def include(*names: str, lower: bool = False) -> Selection:
    return Selection("include", frozenset(name.lower() if lower else name for name in names))


@dataclass(frozen=True)
class CachePolicy:
    """A cache policy: TTLs in seconds and the cache key's contents. ``headers`` is ``none`` or ``include`` (the
    API allows nothing else for a cache policy), lower-case names, CloudFront's own headers among them if named."""

    name: str
    id: str | None = None
    min_ttl: int = 0
    default_ttl: int = DAY
    max_ttl: int = YEAR
    headers: Selection = NONE
    cookies: Selection = NONE
    query_strings: Selection = NONE
    gzip: bool = False
    brotli: bool = False

    @property
    def caching_disabled(self) -> bool:
        """All TTLs 0: nothing is cached, errors included ("With CachingDisabled, CloudFront caches no error
        codes")."""
        return self.max_ttl == 0


@dataclass(frozen=True)
class OriginRequestPolicy:
    """An origin request policy. ``headers``: ``all`` is every viewer header (allViewer), ``exclude`` every one but
    those (allExcept), ``include`` those named (whitelist); ``cloudfront_headers`` are CloudFront's own headers it
    adds (from a whitelist, or allViewerAndWhitelistCloudFront), lower case."""

    name: str
    id: str | None = None
    headers: Selection = NONE
    cookies: Selection = NONE
    query_strings: Selection = NONE
    cloudfront_headers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Policies:
    """A behavior's two policies, as the pipeline applies them. ``legacy``: the behavior named neither (see the
    module's docstring). ``origin_request`` may be ``None``: a cache policy alone sends the origin exactly what is
    in the key ("but nothing more")."""

    cache: CachePolicy
    origin_request: OriginRequestPolicy | None = None
    legacy: bool = False
    # Derived once: what reaches the origin, the union of the two policies' selections.
    headers: Selection = field(init=False)
    cookies: Selection = field(init=False)
    query_strings: Selection = field(init=False)
    cloudfront_headers: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        orp = self.origin_request or OriginRequestPolicy("none")
        set_ = object.__setattr__
        set_(self, "headers", self.cache.headers.union(orp.headers))
        set_(self, "cookies", self.cache.cookies.union(orp.cookies))
        set_(self, "query_strings", self.cache.query_strings.union(orp.query_strings))
        named = set(self.cache.headers.names) if self.cache.headers.kind == "include" else set()
        if orp.headers.kind == "include":
            named |= orp.headers.names
        cloudfront = {name for name in named if name in CLOUDFRONT_HEADERS} | orp.cloudfront_headers
        set_(self, "cloudfront_headers", frozenset(cloudfront))

    @property
    def caching_disabled(self) -> bool:
        return self.cache.caching_disabled

    @property
    def compression(self) -> bool:
        """Whether ``Accept-Encoding`` is normalised (in the key and toward the origin)."""
        return self.cache.gzip or self.cache.brotli

    @property
    def forwards_cookies(self) -> bool:
        return self.cookies.any

    @property
    def device_headers(self) -> bool:
        return bool(self.cloudfront_headers & DEVICE_HEADERS)

    def forwards_header(self, name: str) -> bool:
        """Whether the viewer's header ``name`` (lower case) reaches the origin. CloudFront's own headers are added
        by CloudFront, never forwarded from the viewer (:attr:`cloudfront_headers`)."""
        if name in CLOUDFRONT_HEADERS:
            return self.legacy
        return self.headers.selects(name)


# --- managed policies ---------------------------------------------------------------------------------------------

_ORIGIN_HEADERS_OF_UOCCH = ("host", "origin", "x-http-method-override", "x-http-method", "x-method-override")

# "Use managed cache policies" (current page), with the Amplify-internal ones the page lists as used by Amplify only
# (settings from the Amplify Hosting guide). Elemental-MediaPackage is gzip only (the current page, and accounts'
# exports); UseOriginCacheControlHeaders* have a default TTL of 0 (reference §5.4 lists three policies only).
MANAGED_CACHE_POLICIES: tuple[CachePolicy, ...] = (
    CachePolicy(
        "Amplify",
        "2e54312d-136d-493c-8eb9-b001f22f67d2",
        2,
        2,
        600,
        include("authorization", "cloudfront-viewer-country", "host"),
        ALL,
        ALL,
        True,
        True,
    ),
    CachePolicy("CachingDisabled", "4135ea2d-6df8-44a3-9df3-4b5a84be39ad", 0, 0, 0),
    CachePolicy("CachingOptimized", "658327ea-f89d-4fab-a63d-7e88639e58f6", 1, DAY, YEAR, gzip=True, brotli=True),
    CachePolicy("CachingOptimizedForUncompressedObjects", "b2884449-e4de-46a7-ac36-70bc7f1ddd6d", 1, DAY, YEAR),
    CachePolicy(
        "Elemental-MediaPackage",
        "08627262-05a9-4f76-9ded-b50ca2e3a84f",
        0,
        DAY,
        YEAR,
        include("origin"),
        NONE,
        include("aws.manifestfilter", "start", "end", "m"),
        gzip=True,
    ),
    CachePolicy(
        "UseOriginCacheControlHeaders",
        "83da9c7e-98b4-4e11-a168-04f0df8e2c65",
        0,
        0,
        YEAR,
        include(*_ORIGIN_HEADERS_OF_UOCCH),
        ALL,
        NONE,
        True,
        True,
    ),
    CachePolicy(
        "UseOriginCacheControlHeaders-QueryStrings",
        "4cc15a8a-d715-48a4-82b8-cc0b614638fe",
        0,
        0,
        YEAR,
        include(*_ORIGIN_HEADERS_OF_UOCCH),
        ALL,
        ALL,
        True,
        True,
    ),
    CachePolicy(
        "Amplify-Default",
        "4d1d2f1d-3a71-49ad-9e08-7ea5d843a556",
        0,
        0,
        YEAR,
        include("authorization", "accept", "cloudfront-viewer-country", "host"),
        ALL,
        ALL,
        True,
        True,
    ),
    CachePolicy(
        "Amplify-DefaultNoCookies",
        "a6bad946-36c3-4c33-aa98-362c74a7fb13",
        0,
        0,
        YEAR,
        include("authorization", "accept", "cloudfront-viewer-country", "host"),
        NONE,
        ALL,
        True,
        True,
    ),
    CachePolicy(
        "Amplify-ImageOptimization",
        "1c6db51a-a33f-469a-8245-dae26771f530",
        0,
        0,
        YEAR,
        include("authorization", "accept", "host"),
        NONE,
        ALL,
        True,
        True,
    ),
    CachePolicy(
        "Amplify-StaticContent",
        "7e5fad67-ee98-4ad0-b05a-394999eefc1a",
        0,
        0,
        YEAR,
        include("authorization", "host"),
        NONE,
        NONE,
        True,
        True,
    ),
)

# The CloudFront headers of AllViewerAndCloudFrontHeaders-2022-06, exactly as the page lists them: those released
# through June 2022 (so not JA3/JA4 fingerprints nor the header order and count).
CLOUDFRONT_HEADERS_2022_06 = frozenset(
    {
        "cloudfront-forwarded-proto",
        "cloudfront-is-android-viewer",
        "cloudfront-is-desktop-viewer",
        "cloudfront-is-ios-viewer",
        "cloudfront-is-mobile-viewer",
        "cloudfront-is-smarttv-viewer",
        "cloudfront-is-tablet-viewer",
        "cloudfront-viewer-address",
        "cloudfront-viewer-asn",
        "cloudfront-viewer-city",
        "cloudfront-viewer-country",
        "cloudfront-viewer-country-name",
        "cloudfront-viewer-country-region",
        "cloudfront-viewer-country-region-name",
        "cloudfront-viewer-http-version",
        "cloudfront-viewer-latitude",
        "cloudfront-viewer-longitude",
        "cloudfront-viewer-metro-code",
        "cloudfront-viewer-postal-code",
        "cloudfront-viewer-time-zone",
        "cloudfront-viewer-tls",
    }
)
_CORS = ("origin", "access-control-request-headers", "access-control-request-method")

# "Use managed origin request policies" (current topic list; HostHeaderOnly's settings are those of the name: the
# page body was not available, and two emulators' tables agree).
MANAGED_ORIGIN_REQUEST_POLICIES: tuple[OriginRequestPolicy, ...] = (
    OriginRequestPolicy("AllViewer", "216adef6-5c7f-47e4-b989-5492eafa07d3", ALL, ALL, ALL),
    OriginRequestPolicy(
        "AllViewerAndCloudFrontHeaders-2022-06",
        "33f36d7e-f396-46d9-90e0-52428a34d9dc",
        ALL,
        ALL,
        ALL,
        CLOUDFRONT_HEADERS_2022_06,
    ),
    OriginRequestPolicy(
        "AllViewerExceptHostHeader",
        "b689b0a8-53d0-40ab-baf2-68738e2966ac",
        Selection("exclude", frozenset({"host"})),
        ALL,
        ALL,
    ),
    OriginRequestPolicy("CORS-CustomOrigin", "59781a5b-3903-41f3-afcb-af62929ccde1", include("origin")),
    OriginRequestPolicy("CORS-S3Origin", "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf", include(*_CORS)),
    OriginRequestPolicy(
        "Elemental-MediaTailor-PersonalizedManifests",
        "775133bc-15f2-49f9-abea-afb2e0bf67d2",
        include(*_CORS, "user-agent", "x-forwarded-for"),
        NONE,
        ALL,
    ),
    OriginRequestPolicy("HostHeaderOnly", "bf0718e1-ba1e-49d1-88b1-f726733018ae", include("host")),
    OriginRequestPolicy(
        "UserAgentRefererHeaders", "acba4595-bd28-49b8-b9fe-13317c0390fa", include("user-agent", "referer")
    ),
)

CACHING_DISABLED = MANAGED_CACHE_POLICIES[1]
ALL_VIEWER_EXCEPT_HOST_HEADER = MANAGED_ORIGIN_REQUEST_POLICIES[2]
LEGACY = Policies(CACHING_DISABLED, ALL_VIEWER_EXCEPT_HOST_HEADER, legacy=True)

_CACHE_BY_NAME = {policy.name: policy for policy in MANAGED_CACHE_POLICIES}
_CACHE_BY_ID = {policy.id: policy for policy in MANAGED_CACHE_POLICIES}
_ORIGIN_BY_NAME = {policy.name: policy for policy in MANAGED_ORIGIN_REQUEST_POLICIES}
_ORIGIN_BY_ID = {policy.id: policy for policy in MANAGED_ORIGIN_REQUEST_POLICIES}


def managed_cache_policy(name_or_id: str) -> CachePolicy | None:
    """A managed cache policy by its name, with or without the API's ``Managed-`` prefix, or by its id."""
    return _CACHE_BY_NAME.get(name_or_id.removeprefix("Managed-")) or _CACHE_BY_ID.get(name_or_id.lower())


def managed_origin_request_policy(name_or_id: str) -> OriginRequestPolicy | None:
    """A managed origin request policy by its name, with or without ``Managed-``, or by its id."""
    return _ORIGIN_BY_NAME.get(name_or_id.removeprefix("Managed-")) or _ORIGIN_BY_ID.get(name_or_id.lower())


# --- policies from the config -------------------------------------------------------------------------------------


def cache_policy(value: str | Mapping[str, Any], *, source: str, key: str) -> CachePolicy:
    """The cache policy a behavior's ``cache_policy`` names (a managed name or id) or describes (an inline table:
    ``min_ttl``, ``default_ttl``, ``max_ttl``, ``headers``, ``cookies``, ``query_strings``, ``gzip``, ``brotli``),
    checked as CloudFront checks a CreateCachePolicy request. Raises :class:`ConfigError` naming ``key``."""
    if isinstance(value, str):
        found = managed_cache_policy(value)
        if found is None:
            known = ", ".join(policy.name for policy in MANAGED_CACHE_POLICIES)
            raise ConfigError(
                source, key, f"no managed cache policy is named {value!r} or has that id (known: {known})"
            )
        return found
    # CachePolicyConfig: DefaultTTL defaults to 86,400 (or MinTTL if larger), MaxTTL to 31,536,000 (or DefaultTTL).
    min_ttl = int(value.get("min_ttl", 0))
    default_ttl = int(value.get("default_ttl", max(min_ttl, DAY)))
    max_ttl = int(value.get("max_ttl", max(default_ttl, YEAR)))
    if not min_ttl <= default_ttl <= max_ttl:
        raise ConfigError(
            source, key, f"the TTLs must be min_ttl <= default_ttl <= max_ttl ({min_ttl}, {default_ttl}, {max_ttl})"
        )
    headers = value.get("headers", "none")
    header_names = () if headers == "none" else tuple(headers)
    for name in header_names:
        if name.lower() in ORIGIN_REQUEST_POLICY_ONLY:
            problem = (
                f"{name} can be added in an origin request policy, not in a cache policy (it is not in a cache key)"
            )
            raise ConfigError(source, f"{key}.headers", problem)
    policy = CachePolicy(
        name=str(value.get("name", "inline cache policy")),
        min_ttl=min_ttl,
        default_ttl=default_ttl,
        max_ttl=max_ttl,
        headers=include(*header_names, lower=True) if header_names else NONE,
        cookies=_selection(value.get("cookies", "none"), source=source, key=f"{key}.cookies"),
        query_strings=_selection(value.get("query_strings", "none"), source=source, key=f"{key}.query_strings"),
        gzip=bool(value.get("gzip", False)),
        brotli=bool(value.get("brotli", False)),
    )
    _check_count(header_names, source, f"{key}.headers")
    if policy.caching_disabled:
        # The API refuses these in a policy whose TTLs are all 0 ("The parameter EnableAcceptEncodingGzip is invalid
        # for policy with caching disabled"; the console disables them): what to forward goes in the origin request
        # policy.
        for name, given in (
            ("headers", policy.headers),
            ("cookies", policy.cookies),
            ("query_strings", policy.query_strings),
        ):
            if given.any:
                problem = (
                    "a cache policy whose TTLs are all 0 (caching disabled) has no cache key: forward it with an "
                    "origin_request_policy"
                )
                raise ConfigError(source, f"{key}.{name}", problem)
        for flag in ("gzip", "brotli"):
            if value.get(flag):
                raise ConfigError(
                    source,
                    f"{key}.{flag}",
                    "a cache policy whose TTLs are all 0 (caching disabled) cannot normalise Accept-Encoding",
                )
    if policy.headers.selects("accept-encoding") and (policy.gzip or policy.brotli):
        problem = "Accept-Encoding cannot be a key header when gzip or brotli is on (it is then in the key, normalised)"
        raise ConfigError(source, f"{key}.headers", problem)
    return policy


def origin_request_policy(value: str | Mapping[str, Any], *, source: str, key: str) -> OriginRequestPolicy:
    """The origin request policy a behavior's ``origin_request_policy`` names (a managed name or id) or describes
    (``headers``, ``cookies``, ``query_strings``, ``cloudfront_headers``). Raises :class:`ConfigError`."""
    if isinstance(value, str):
        found = managed_origin_request_policy(value)
        if found is None:
            known = ", ".join(policy.name for policy in MANAGED_ORIGIN_REQUEST_POLICIES)
            problem = f"no managed origin request policy is named {value!r} or has that id (known: {known})"
            raise ConfigError(source, key, problem)
        return found
    headers = _selection(value.get("headers", "none"), source=source, key=f"{key}.headers", lower=True)
    if headers.kind == "include" and "authorization" in headers.names:
        # CloudFront refuses Authorization in an origin request policy's list (reference §4.1): it reaches the origin
        # through the cache key, or with all viewer headers.
        problem = (
            "Authorization cannot be listed in an origin request policy: put it in the cache policy's headers, or "
            "forward all viewer headers"
        )
        raise ConfigError(source, f"{key}.headers", problem)
    cloudfront = frozenset(name.lower() for name in value.get("cloudfront_headers", ()))
    for name in cloudfront | {name for name in headers.names if name.startswith("cloudfront-")}:
        if name not in CLOUDFRONT_HEADERS:
            raise ConfigError(
                source,
                f"{key}.headers",
                f"{name!r} is not one of CloudFront's headers ({', '.join(sorted(CLOUDFRONT_HEADERS.values()))})",
            )
    if cloudfront and headers.kind != "all":
        problem = (
            'cloudfront_headers go with headers = "all" (allViewerAndWhitelistCloudFront); otherwise list them in '
            "headers.include"
        )
        raise ConfigError(source, f"{key}.cloudfront_headers", problem)
    return OriginRequestPolicy(
        name=str(value.get("name", "inline origin request policy")),
        headers=headers,
        cookies=_selection(value.get("cookies", "none"), source=source, key=f"{key}.cookies"),
        query_strings=_selection(value.get("query_strings", "none"), source=source, key=f"{key}.query_strings"),
        cloudfront_headers=cloudfront,
    )


def _selection(value: Any, *, source: str, key: str, lower: bool = False) -> Selection:
    """``"none"``, ``"all"``, ``{include = [...]}`` or ``{exclude = [...]}`` (the schema has checked the shape)."""
    if value in ("none", "all"):
        return Selection(value)
    (kind, names), *_ = value.items()
    _check_count(names, source, f"{key}.{kind}")
    return Selection(kind, frozenset(name.lower() if lower else name for name in names))


def _check_count(names: Sequence[str], source: str, key: str) -> None:
    if len(names) > MAX_NAMES:
        raise ConfigError(source, key, f"{len(names)} names: CloudFront's quota is {MAX_NAMES} per policy")


def for_behavior(
    cache: str | Mapping[str, Any] | None, origin_request: str | Mapping[str, Any] | None, *, source: str, key: str
) -> Policies:
    """A behavior's policies from its ``cache_policy`` and ``origin_request_policy`` (either may be absent)."""
    if cache is None and origin_request is None:
        return LEGACY
    if cache is None:
        # CloudFront refuses an origin request policy on a behavior with legacy cache settings ("Control origin
        # requests with a policy").
        problem = "an origin request policy needs a cache_policy on the same behavior (CachingDisabled caches nothing)"
        raise ConfigError(source, f"{key}.origin_request_policy", problem)
    cache_ = cache_policy(cache, source=source, key=f"{key}.cache_policy")
    orp = (
        None
        if origin_request is None
        else origin_request_policy(origin_request, source=source, key=f"{key}.origin_request_policy")
    )
    return Policies(cache_, orp)


# --- what reaches the origin, and the cache key --------------------------------------------------------------------


def select_query(querystring: str, selection: Selection) -> str:
    """The parameters of a raw query string that ``selection`` selects, in order, as they came. Only ``&``
    separates parameters (``;`` is part of a value); a name is compared as it is written (case-sensitive)."""
    if selection.kind == "all" or not querystring:
        return querystring
    if selection.kind == "none":
        return ""
    return "&".join(part for part in querystring.split("&") if part and selection.selects(part.partition("=")[0]))


def parse_cookies(values: Iterable[str]) -> list[tuple[str, str]] | None:
    """The cookies of ``Cookie`` header values, or ``None`` if one is not in the ``name=value; name2=value2`` form
    (CloudFront forwards a Cookie header only in that form)."""
    cookies: list[tuple[str, str]] = []
    for value in values:
        for part in value.split(";"):
            part = part.strip()
            if not part:
                continue
            name, equals, cookie = part.partition("=")
            if not equals or not name.strip():
                return None
            cookies.append((name.strip(), cookie.strip()))
    return cookies


def select_cookies(values: Sequence[str], selection: Selection) -> str | None:
    """The ``Cookie`` header toward the origin: the selected cookies, sorted by name ("in natural order by cookie
    name"), or ``None`` when there are none or the header is malformed."""
    if not values or not selection.any:
        return None
    cookies = parse_cookies(values)
    if cookies is None:
        return None
    chosen = sorted((cookie for cookie in cookies if selection.selects(cookie[0])), key=lambda cookie: cookie[0])
    return "; ".join(f"{name}={value}" for name, value in chosen) or None


def accepted_encodings(values: Iterable[str]) -> set[str]:
    """The content codings an ``Accept-Encoding`` accepts (a ``q=0`` one is refused)."""
    accepted = set()
    for value in values:
        for item in value.split(","):
            coding, *params = (part.strip() for part in item.split(";"))
            refused = any(param.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000") for param in params)
            if coding and not refused:
                accepted.add(coding.lower())
    return accepted


def normalised_accept_encoding(values: Sequence[str], policy: CachePolicy) -> tuple[str | None, str | None]:
    """``Accept-Encoding`` as the policy's gzip and brotli flags normalise it: (the value in the cache key, the value
    sent to the origin). A viewer that sent none gets none in either; one that accepts neither coding the flags name
    gets none in the key and ``identity`` toward the origin (notes §4.3; the reference's §4.1 omits the first
    case). Other codings and q-values are dropped."""
    if not values:
        return None, None
    accepted = accepted_encodings(values)
    chosen = [coding for coding, on in (("br", policy.brotli), ("gzip", policy.gzip)) if on and coding in accepted]
    if not chosen:
        return None, "identity"
    normal = ",".join(chosen)
    return normal, normal
