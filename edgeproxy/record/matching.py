"""Which recorded origin request an origin request is, by vcrpy's matcher names, with vcrpy's diagnostic for one
that matches none: the nearest recorded request, and what differed.

Matchers: ``method``, ``scheme``, ``host`` (the origin's name as the event gives it), ``port``, ``path`` (the origin
path and the uri, raw), ``query`` (raw and order-sensitive: ``a=1&b=2`` is not ``b=2&a=1``, as CloudFront's cache
key sees it), ``uri`` (all of these), ``body`` (vcrpy's: the body read by its Content-Type, see :func:`_body_key`),
``raw_body`` (the bytes sent) and ``headers`` (every header, names case-insensitively, values and the order of
repeats, less the request id CloudFront adds). Redacted values are compared redacted on both sides, so secrets never
decide a match.
"""

from __future__ import annotations

import json
import operator
import sys
import xmlrpc.client
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from yarl import URL

from edgeproxy.origin import OriginRequest
from edgeproxy.record.har import body_of, header_pairs
from edgeproxy.record.redact import Redactor

DEFAULT_MATCH_ON = ("method", "host", "path", "query")
# Different on every request by design: never compared.
VOLATILE_REQUEST_HEADERS = frozenset({"x-amz-cf-id"})


@dataclass(frozen=True, slots=True)
class Call:
    """An origin request in the terms matchers compare."""

    method: str
    scheme: str
    host: str
    port: int
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None = None

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}" + (f"?{self.query}" if self.query else "")

    def __str__(self) -> str:
        return f"{self.method} {self.uri}"

    @classmethod
    def of(cls, request: OriginRequest, body: bytes | None, redactor: Redactor) -> Call:
        return cls(
            request.method,
            request.protocol,
            request.domain_name.lower(),
            request.port,
            request.path,
            redactor.query(request.query),
            tuple(redactor.headers_list(request.headers.items())),
            body,
        )

    @classmethod
    def recorded(cls, record: dict[str, Any], *, headers: bool = True, body: bool = True) -> Call:
        """A recorded origin request (HAR's ``request``); ``headers=False`` or ``body=False`` leaves out what no
        matcher in use compares (an index of a long recording stays small)."""
        url = str(record["url"])
        scheme, host, port, path, query = _plain_url(url) or _parsed_url(url)
        return cls(  # the method, scheme and host repeat from call to call: one string each (sys.intern)
            sys.intern(str(record["method"])),
            sys.intern(scheme),
            sys.intern(host),
            port,
            path,
            query,
            tuple(header_pairs(record.get("headers"))) if headers else (),
            (body_of(record.get("postData")) or b"") if body else None,
        )


# scheme, host (as written, in lower case: as the live request's domain name is compared), port, raw path, raw query
UrlParts = tuple[str, str, int, str, str]


def _parsed_url(url: str) -> UrlParts:
    parsed = URL(url, encoded=True)
    # The host as written: yarl's .host decodes IDNA (and fails on a host written in Unicode, as the config's
    # origin domain names are), where the live request's domain name is compared as it is.
    host = parsed.raw_host
    assert host is not None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, host.lower(), port, parsed.raw_path, parsed.raw_query_string


def _plain_url(url: str) -> UrlParts | None:
    """The parts of a URL as edgeproxy records an origin request's (``scheme://host:port/path?query``), split as
    yarl would split it, in a tenth of the time (indexing a long recording is mostly this); ``None`` for any other
    shape (no port, user info, an IPv6 host, a fragment), which yarl then parses."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in ("http", "https") or "#" in rest:
        return None
    location, slash, target = rest.partition("/")
    host, colon, port = location.rpartition(":")
    if not (slash and colon and host and port.isascii() and port.isdigit()) or "@" in location:
        return None
    if "[" in host or "%" in host:
        return None
    path, _, query = target.partition("?")
    return scheme, host.lower(), int(port), "/" + path, query


def _compared_headers(call: Call) -> tuple[tuple[str, str], ...]:
    return tuple((name.lower(), value) for name, value in call.headers if name.lower() not in VOLATILE_REQUEST_HEADERS)


@dataclass(frozen=True)
class Matcher:
    """What a matcher compares (``key``: equal keys match) and how it says what differs."""

    key: Callable[[Call], Any]
    differ: Callable[[Call, Call], str]


def _field(name: str) -> Matcher:
    def differ(recorded: Call, live: Call) -> str:
        return f"{name} {getattr(recorded, name)!r} != {getattr(live, name)!r}"

    return Matcher(operator.attrgetter(name), differ)


def _headers_differ(recorded: Call, live: Call) -> str:
    left, right = _compared_headers(recorded), _compared_headers(live)
    names = {name for name, _ in left} | {name for name, _ in right}
    differ = [name for name in sorted(names) if [v for n, v in left if n == name] != [v for n, v in right if n == name]]
    return "headers differ: " + ", ".join(differ)


def _body_differ(recorded: Call, live: Call) -> str:
    return f"body differs ({len(recorded.body or b'')} bytes recorded, {len(live.body or b'')} sent)"


MATCHERS: dict[str, Matcher] = {
    name: _field(name) for name in ("method", "scheme", "host", "port", "path", "query", "uri")
}


def _header(call: Call, name: str) -> str:
    return next((value for key, value in call.headers if key.lower() == name), "").lower()


def _json(body: bytes) -> Any:
    return json.loads(body) if body else None


def _form(body: bytes) -> Any:
    return parse_qs(body.decode("ascii"))


def _transformers(call: Call) -> tuple[Callable[[bytes], Any], ...]:
    """vcrpy's (``vcr/matchers.py``, ``_checker_transformer_pairs``): a form by its Content-Type, JSON by its, an
    XML-RPC call by a Content-Type of ``text/xml`` and ``xmlrpc`` in the User-Agent. Its de-chunking is not needed:
    a body here is already what the chunks carried."""
    content_type = _header(call, "content-type")
    return tuple(
        transform
        for applies, transform in (
            ("application/x-www-form-urlencoded" in content_type, _form),
            ("application/json" in content_type, _json),
            ("text/xml" in content_type and "xmlrpc" in _header(call, "user-agent"), xmlrpc.client.loads),
        )
        if applies
    )


def _body_key(call: Call) -> Any:
    """vcrpy's ``body``: "the entire request body unmarshalled by content-type i.e. xmlrpc, json, form-urlencoded,
    falling back on raw_body". JSON is compared as values (an object's keys in any order), a form as vcrpy's
    ``parse_qs`` reads it (each name's values in order, the names in any), an XML-RPC call as its method and
    parameters; a body its Content-Type's reading fails on, or with none, as its bytes. vcrpy compares two requests'
    bodies raw when their Content-Types give different readings; here each body has its reading, so the same bytes
    sent as JSON and as a form are two bodies."""
    body = call.body or b""
    readings = _transformers(call)
    if not readings:
        return body
    value: Any = body
    try:
        for read in readings:
            value = read(value)
        key = (readings, _hashable(value))
        hash(key)  # an XML-RPC DateTime or Binary does not hash
    except Exception:  # not what its Content-Type says (ValueError, UnicodeError, an XML or XML-RPC error...)
        return body
    return key


def _hashable(value: Any) -> Any:
    """A parsed body as a key equal where the values are (dicts in any order, lists and tuples in theirs)."""
    if isinstance(value, dict):
        return frozenset((key, _hashable(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return (type(value) is tuple, tuple(_hashable(item) for item in value))
    return value


MATCHERS["body"] = Matcher(_body_key, _body_differ)
MATCHERS["raw_body"] = Matcher(lambda call: call.body or b"", _body_differ)
MATCHERS["headers"] = Matcher(lambda call: _header_key(call), _headers_differ)


def _header_key(call: Call) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Header names case-insensitively, each with its values in order (repeats kept)."""
    grouped: dict[str, list[str]] = {}
    for name, value in _compared_headers(call):
        grouped.setdefault(name, []).append(value)
    return tuple(sorted((name, tuple(values)) for name, values in grouped.items()))


def match_on(names: Iterable[str]) -> tuple[str, ...]:
    """Matcher names from ``--match-on`` values (comma-separated or repeated); raises ``ValueError`` for an unknown
    name, listing the known ones."""
    chosen = tuple(part.strip() for value in names for part in value.split(",") if part.strip())
    unknown = [name for name in chosen if name not in MATCHERS]
    if unknown:
        raise ValueError(f"unknown matcher {unknown[0]!r} (known: {', '.join(sorted(MATCHERS))})")
    return chosen or DEFAULT_MATCH_ON


@dataclass(slots=True)
class _Candidate:
    call: Call
    answer: Any
    plays: int = 0


@dataclass
class Index:
    """Recorded origin requests and their answers, in recording order. :meth:`find` gives identical requests their
    recorded answers in order, and the last one again once they are used up (a lookup by the matchers' keys, so
    replaying a long recording stays fast)."""

    on: Sequence[str] = DEFAULT_MATCH_ON
    _candidates: list[_Candidate] = field(default_factory=list)
    _by_key: dict[tuple[Any, ...], list[_Candidate]] = field(default_factory=dict)
    _keys: tuple[Callable[[Call], Any], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._keys = tuple(MATCHERS[name].key for name in self.on)

    def _key(self, call: Call) -> tuple[Any, ...]:
        return tuple([key(call) for key in self._keys])

    def add(self, call: Call, answer: Any, *, played: bool = False) -> None:
        candidate = _Candidate(call, answer, plays=int(played))
        self._candidates.append(candidate)
        self._by_key.setdefault(self._key(call), []).append(candidate)

    def __len__(self) -> int:
        return len(self._candidates)

    def _failures(self, recorded: Call, live: Call) -> list[str]:
        matchers = [MATCHERS[name] for name in self.on]
        return [matcher.differ(recorded, live) for matcher in matchers if matcher.key(recorded) != matcher.key(live)]

    def find(self, live: Call) -> Any | None:
        matching = self._by_key.get(self._key(live))
        if not matching:
            return None
        chosen = next((candidate for candidate in matching if candidate.plays == 0), matching[-1])
        chosen.plays += 1
        return chosen.answer

    def nearest(self, live: Call) -> str:
        """Why ``live`` matches nothing: vcrpy's diagnostic, the nearest recorded request and what differed."""
        on = ", ".join(self.on)
        if not self._candidates:
            return f"{live} is not in the recording (it holds no origin requests; matching on {on})"
        failures = [(self._failures(candidate.call, live), candidate.call) for candidate in self._candidates]
        fewest, nearest = min(failures, key=lambda pair: len(pair[0]))
        return f"{live} matches no recorded origin request (on {on}); nearest recorded: {nearest}: {'; '.join(fewest)}"
