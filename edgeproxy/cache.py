"""The edge cache: cache keys, TTLs, stored objects with least-recently-used eviction by bytes, invalidation
(reference/aws-behaviour.md §5.4-§5.6; notes: "Manage how long content stays in the cache", "How CloudFront
processes HTTP 4xx and 5xx status codes", "Invalidate files").

* A key (:class:`CacheKey`) is the path as viewer-request left it, the cache policy's headers, cookies and query
  strings, the normalised ``Accept-Encoding``, and the method for OPTIONS (:func:`key_for`).
* How long an object is fresh is the TTL table of §5.5 (:func:`ttl_for`); an error's, §5.6 (:func:`error_ttl_for`).
* An expired object is kept for revalidation (``If-None-Match`` / ``If-Modified-Since``, a 304 makes it fresh again:
  ``RefreshHit``) and to be served when the origin fails, until evicted or past its stale limit.
* The store (:class:`Cache`) holds bodies in memory up to its byte bound, least recently used out; a body larger than
  the bound is never stored. Its clock is a monotonic-time function, which tests can replace.

The pipeline decides what to look up and store (:mod:`edgeproxy.pipeline`); this module knows no trigger.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from multidict import CIMultiDict

from edgeproxy.policies import CachePolicy, normalised_accept_encoding, parse_cookies, select_query

Clock = Callable[[], float]
# §5.5: CloudFront accepts max-age values up to 100 years.
HUNDRED_YEARS = 3_153_600_000
# §5.6 and "HTTP 4xx and 5xx status codes that CloudFront caches": cached whatever the origin says about caching...
ERRORS_CACHED = frozenset({404, 414, 500, 501, 502, 503, 504})
# ... cached only when the origin sends Cache-Control max-age or s-maxage ...
ERRORS_CACHED_WITH_MAX_AGE = frozenset({400, 403, 405, 412, 415})
# ... and those whose no-store, no-cache or private the cache respects (for the others it caches them for the error
# caching minimum TTL anyway): "Control how long CloudFront caches errors".
ERRORS_RESPECTING_NO_CACHE = frozenset({404, 410, 414, 501})
# "How CloudFront processes HTTP 3xx status codes" (http-3xx-status-codes.html): "CloudFront caches 307 and 308
# responses only when you include the Cache-Control header in responses from the origin"; other 3xx go by the TTLs.
CACHED_ONLY_WITH_CACHE_CONTROL = frozenset({307, 308})
DIRECTIVE = re.compile(r'\s*([A-Za-z-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?\s*(?:,|$)')


@dataclass(frozen=True)
class CacheKey:
    """What identifies a cached object (§5.4). ``method`` is ``OPTIONS`` or empty (GET and HEAD share objects);
    ``query`` is the key's query strings, raw and in order; ``headers`` and ``cookies`` the key's values, by name."""

    path: str
    query: str = ""
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()
    accept_encoding: str | None = None
    method: str = ""

    @property
    def url(self) -> str:
        """The path and the key's query string, as an invalidation path names them."""
        return f"{self.path}?{self.query}" if self.query else self.path

    def __str__(self) -> str:
        parts = [f"{self.method} {self.url}" if self.method else self.url]
        parts += [f"{name}: {', '.join(values)}" for name, values in self.headers]
        parts += [f"cookie {name}={value}" for name, value in self.cookies]
        if self.accept_encoding is not None:
            parts.append(f"accept-encoding: {self.accept_encoding}")
        return " | ".join(parts)


def key_for(method: str, uri: str, querystring: str, headers: CIMultiDict[str], policy: CachePolicy) -> CacheKey:
    """The cache key of a request as viewer-request left it (``headers`` with CloudFront's own added). Header names
    are case-insensitive in the key, values case-sensitive; cookie names and values and query strings are
    case-sensitive, and the order of query strings counts (§5.4)."""
    key_headers = tuple(
        (name, tuple(headers.getall(name, ())))
        for name in sorted(policy.headers.names)
        if policy.headers.kind == "include"
    )
    cookies: tuple[tuple[str, str], ...] = ()
    if policy.cookies.any:
        parsed = parse_cookies(headers.getall("Cookie", ())) or []
        cookies = tuple(sorted(cookie for cookie in parsed if policy.cookies.selects(cookie[0])))
    encoding = None
    if policy.gzip or policy.brotli:
        encoding, _ = normalised_accept_encoding(headers.getall("Accept-Encoding", ()), policy)
    return CacheKey(
        path=uri,
        query=select_query(querystring, policy.query_strings),
        headers=key_headers,
        cookies=cookies,
        accept_encoding=encoding,
        method="OPTIONS" if method == "OPTIONS" else "",
    )


# --- TTLs -----------------------------------------------------------------------------------------------------------


def directives(headers: CIMultiDict[str]) -> dict[str, str | None]:
    """``Cache-Control``'s directives, lower-case names -> value (``None`` without one), the first of each kept."""
    found: dict[str, str | None] = {}
    for value in headers.getall("Cache-Control", ()):
        for match in DIRECTIVE.finditer(value):
            name, argument = match.group(1).lower(), match.group(2)
            if name and name not in found:
                found[name] = argument.strip('"') if argument is not None else None
    return found


def _seconds(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return min(int(value), HUNDRED_YEARS)


def http_date(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass(frozen=True)
class Freshness:
    """How long a response may be served from the cache: ``ttl`` seconds fresh; then, as a stale object, for
    ``stale_if_error`` seconds more when the origin fails (``None``: up to the max TTL)."""

    ttl: float
    stale_if_error: float | None = None


def _origin_lifetime(headers: CIMultiDict[str], found: dict[str, str | None]) -> int | None:
    """What the origin says, in seconds: ``s-maxage``, else ``max-age``, else ``Expires`` (§5.5: max-age beats
    Expires; s-maxage beats max-age for CloudFront). ``None`` when it says none of them."""
    for name in ("s-maxage", "max-age"):
        if name in found:
            seconds = _seconds(found[name])
            return 0 if seconds is None else seconds
    if "Expires" in headers:
        expires = http_date(headers.get("Expires"))
        date = http_date(headers.get("Date"))
        if expires is None:
            return 0  # an invalid Expires (such as "0") means already expired (RFC 9111 §5.3)
        return max(0, int(expires - (date if date is not None else time.time())))
    return None


def ttl_for(headers: CIMultiDict[str], policy: CachePolicy) -> Freshness | None:
    """How long CloudFront caches a 2xx or 3xx response with these headers under ``policy`` (§5.5), or ``None``
    when it does not cache it."""
    if policy.caching_disabled:
        return None
    found = directives(headers)
    stale = _seconds(found.get("stale-if-error")) if "stale-if-error" in found else None
    if {"no-store", "private"} & set(found) or ("no-cache" in found and found["no-cache"] is None):
        # Respected with a min TTL of 0; cached for the min TTL otherwise (the guide's warning). A field-name form,
        # no-cache="Set-Cookie", only keeps Set-Cookie out of the cache.
        return None if policy.min_ttl == 0 else Freshness(policy.min_ttl, stale)
    lifetime = _origin_lifetime(headers, found)
    if lifetime is None:
        return Freshness(max(policy.min_ttl, policy.default_ttl), stale)
    return Freshness(min(max(lifetime, policy.min_ttl), policy.max_ttl), stale)


def error_ttl_for(
    status: int, headers: CIMultiDict[str], policy: CachePolicy, minimum: int, *, s3: bool
) -> float | None:
    """How long CloudFront caches an origin's error response (§5.6), or ``None``: 404, 414 and 500-504 always;
    400, 403, 405, 412 and 415 only with ``max-age`` or ``s-maxage``; for the max of the error caching minimum TTL
    and the origin's own lifetime (capped at the max TTL). S3 origins treat a minimum of 0 as 1 s."""
    if policy.caching_disabled or status == 416:
        return None
    found = directives(headers)
    if status in ERRORS_CACHED_WITH_MAX_AGE:
        if "max-age" not in found and "s-maxage" not in found:
            return None
    elif status not in ERRORS_CACHED:
        return None
    if status in ERRORS_RESPECTING_NO_CACHE and ({"no-store", "private"} & set(found) or "no-cache" in found):
        return None
    if s3 and minimum == 0:
        minimum = 1
    lifetime = _origin_lifetime(headers, found)
    return float(max(minimum, min(lifetime, policy.max_ttl) if lifetime is not None else 0))


# --- the store ------------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One cached response, as it is sent on a hit: its status, reason, headers (after origin-response, repeats kept;
    framing headers as the origin sent them) and whole body. ``stored`` is the cache clock when it was stored or
    last revalidated; ``stale_until`` (clock time) is set while it is served in place of a failing origin."""

    key: CacheKey
    status: int
    reason: str | None
    headers: CIMultiDict[str]
    body: bytes
    stored: float
    ttl: float
    max_ttl: float
    stale_if_error: float | None = None
    revalidate: bool = True  # conditional requests when it expires (not when cookies are forwarded, §4.2 notes)
    generated: bool = False  # an origin-request function made it
    stale_until: float | None = None
    initial_age: int = 0  # the origin's own Age, if it sent one

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(name) + len(value) for name, value in self.headers.items()) + 200

    def age(self, now: float) -> int:
        """``Age``: whole seconds since it was stored or last revalidated, plus the origin's own Age."""
        return self.initial_age + max(0, int(now - self.stored))

    def fresh(self, now: float) -> bool:
        return now - self.stored < self.ttl

    def may_serve_stale(self, now: float) -> bool:
        """Whether it may stand in for a failing origin: within ``stale-if-error`` of expiring (never past the max
        TTL; ``stale-if-error=0`` never)."""
        limit = self.max_ttl if self.stale_if_error is None else min(self.stale_if_error, self.max_ttl)
        return now - self.stored - self.ttl <= limit and self.stale_if_error != 0

    @property
    def etag(self) -> str | None:
        return self.headers.get("ETag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("Last-Modified")


@dataclass(frozen=True)
class Cached:
    """One entry as :attr:`edgeproxy.EdgeProxy.cache` lists it: its key, status, age (seconds), TTL (seconds),
    whether it is fresh, and its size in bytes."""

    key: CacheKey
    status: int
    age: int
    ttl: float
    fresh: bool
    size: int

    def as_json(self) -> dict[str, object]:
        return {
            "key": str(self.key),
            "path": self.key.url,
            "status": self.status,
            "age": self.age,
            "ttl": self.ttl,
            "fresh": self.fresh,
            "size": self.size,
        }


@dataclass
class Cache:
    """The distribution's edge cache: entries by key, least recently used first, at most ``max_bytes`` in all."""

    max_bytes: int
    clock: Clock = time.monotonic
    _entries: collections.OrderedDict[CacheKey, Entry] = field(default_factory=collections.OrderedDict)
    _bytes: int = 0

    def now(self) -> float:
        return self.clock()

    def get(self, key: CacheKey) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def fits(self, size: int) -> bool:
        return size <= self.max_bytes

    def put(self, entry: Entry) -> bool:
        """Store ``entry`` (replacing any of its key), evicting the least recently used as needed; ``False`` when it
        is larger than the whole cache."""
        self.remove(entry.key)
        if not self.fits(entry.size):
            return False
        self._entries[entry.key] = entry
        self._bytes += entry.size
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size
        return True

    def remove(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    def invalidate(self, paths: Iterable[str]) -> int:
        """Remove every entry that an invalidation of ``paths`` covers (:func:`covers`); how many were removed."""
        patterns = list(paths)
        doomed = [key for key in self._entries if any(covers(pattern, key.url) for pattern in patterns)]
        for key in doomed:
            self.remove(key)
        return len(doomed)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def listing(self) -> list[Cached]:
        now = self.now()
        return [
            Cached(entry.key, entry.status, entry.age(now), entry.ttl, entry.fresh(now), entry.size)
            for entry in self._entries.values()
        ]


def covers(pattern: str, url: str) -> bool:
    """Whether an invalidation path covers a cached object's path (with its key's query string). CloudFront's rules:
    case-sensitive, exact unless the path ends in ``*``, which matches any run of characters (only there: a ``*``
    elsewhere is the character itself). Every header and cookie variant of a path goes together."""
    if pattern.endswith("*"):
        return url.startswith(pattern[:-1])
    return url == pattern


INVALIDATION_PATH_LIMIT = 4000


def invalidation_problem(path: str) -> str | None:
    """What is wrong with an invalidation path, as CloudFront's API would refuse it, or ``None``."""
    if not path.startswith("/"):
        return f"{path!r}: an invalidation path starts with '/'"
    if len(path) > INVALIDATION_PATH_LIMIT:
        return f"an invalidation path is at most {INVALIDATION_PATH_LIMIT} characters"
    if "~" in path:
        return f"{path!r}: CloudFront does not support '~' in invalidation paths"
    return None


def merged_headers(stored: CIMultiDict[str], fresh: CIMultiDict[str], keep: Sequence[str]) -> CIMultiDict[str]:
    """A stored response's headers updated with a 304's (RFC 9111 §3.2): each name the 304 carries replaces the
    stored ones, except ``keep`` (the framing and the content's own headers). The stored order is kept: a replaced
    name's new values stand where its first stored one stood, and names the object did not have come last."""
    kept = {name.lower() for name in keep}
    replacing: dict[str, list[tuple[str, str]]] = {}
    for name, value in fresh.items():
        if name.lower() not in kept:
            replacing.setdefault(name.lower(), []).append((name, value))
    merged: CIMultiDict[str] = CIMultiDict()
    for name, value in stored.items():
        lower = name.lower()
        if lower not in replacing:
            merged.add(name, value)
        elif lower not in merged:
            merged.extend(replacing[lower])
    for lower, values in replacing.items():
        if lower not in merged:
            merged.extend(values)
    return merged
