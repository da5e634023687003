"""Secrets kept out of recordings: named headers, cookies and query parameters, and origin custom headers, written as
``[REDACTED]`` wherever they would appear (viewer side, origin side, and inside recorded events and results)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from edgeproxy.exchange import Exchange

REDACTED = "[REDACTED]"
# Credentials a request carries; redacted unless --no-default-redactions.
DEFAULT_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "x-amz-security-token"})
_COOKIE_PAIR = re.compile(r"\s*([^=;\s]+)\s*=")
# Headers whose values hold --redact names: cookies, and the URL a redirect sends the viewer to (its query).
_HOLDING_NAMES = frozenset({"cookie", "set-cookie", "location"})


@dataclass(frozen=True)
class Redactor:
    """What to redact. ``headers`` are header names; ``names`` (``--redact NAME``) are header, cookie or
    query-parameter names; ``custom_headers`` are origin custom headers (CloudFront users put shared secrets there),
    whose values are redacted wherever they appear. All names are compared case-insensitively."""

    headers: frozenset[str] = DEFAULT_HEADERS
    names: frozenset[str] = frozenset()
    custom_headers: frozenset[str] = frozenset()
    _all_headers: frozenset[str] = field(init=False, repr=False)
    idle: bool = field(init=False, repr=False)  # redacts nothing at all

    def __post_init__(self) -> None:
        lower = frozenset(name.lower() for name in (*self.headers, *self.names, *self.custom_headers))
        object.__setattr__(self, "_all_headers", lower)
        object.__setattr__(self, "names", frozenset(name.lower() for name in self.names))
        object.__setattr__(self, "idle", not lower)

    @classmethod
    def make(cls, extra: Iterable[str] = (), *, defaults: bool = True, custom_headers: Iterable[str] = ()) -> Redactor:
        return cls(
            headers=DEFAULT_HEADERS if defaults else frozenset(),
            names=frozenset(extra),
            custom_headers=frozenset(name.lower() for name in custom_headers),
        )

    def with_custom_headers(self, names: Iterable[str]) -> Redactor:
        """The same, also redacting the values of the custom headers ``names`` (found in one exchange's events)."""
        more = frozenset(name.lower() for name in names) - self.custom_headers
        if not more:
            return self
        return Redactor(self.headers, self.names, self.custom_headers | more)

    def for_exchange(self, exchange: Exchange) -> Redactor:
        """The redactor for one exchange: :data:`NOTHING` when no header, cookie or query parameter anywhere in it
        is to be redacted (a quick look at names, so that recording every exchange stays cheap), else this one,
        also redacting the custom headers its origin-request result names."""
        names: set[str] = set(exchange.viewer.headers.keys())
        custom: set[str] = set()
        for invocation in exchange.invocations:
            # An unchanged result is its event's request or response: nothing more to look at.
            for value in (invocation.event, invocation.result) if invocation.changed else (invocation.event,):
                for part in _cf(value):
                    headers = part.get("headers")
                    if type(headers) is dict:
                        names.update(headers)
                    if part.get("origin"):
                        custom |= custom_header_names(part)
        if custom or self.names:  # custom headers' values, cookies and query parameters: the careful way
            return self.with_custom_headers(custom)
        for wire in (exchange.origin_request, exchange.origin_response, exchange.sent):
            if wire is not None:
                names.update(wire.headers.keys())
        lowered = {str(name).lower() for name in names}  # one pass over the names, not one per message
        return self if not self._all_headers.isdisjoint(lowered) else NOTHING

    def redacts_header(self, name: str) -> bool:
        return name.lower() in self._all_headers

    def header(self, name: str, value: str) -> str:
        """A header's value as recorded: ``[REDACTED]`` for a redacted name; a ``Cookie`` or ``Set-Cookie`` with its
        redacted cookies' values replaced, a ``Location`` with its redacted query parameters'."""
        lower = name.lower()
        if lower in self._all_headers:
            return REDACTED
        if lower == "cookie" and self.names:
            return self._cookies(value, separator=";")
        if lower == "set-cookie" and self.names:
            cookie, semicolon, attributes = value.partition(";")
            return self._cookies(cookie, separator=";") + semicolon + attributes
        if lower == "location" and self.names:
            return self.url(value)
        return value

    def headers_list(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        pairs = list(headers)
        if self.idle:
            return pairs
        names = {name.lower() for name, _ in pairs}
        if self._all_headers.isdisjoint(names) and (not self.names or _HOLDING_NAMES.isdisjoint(names)):
            return pairs  # nothing to redact
        return [(name, self.header(name, value)) for name, value in pairs]

    def query(self, query: str) -> str:
        """A raw query string with the values of redacted parameters replaced (``&`` separates, as for CloudFront)."""
        if self.idle or not self.names or not query:
            return query
        parts = []
        for part in query.split("&"):
            name, equals, _ = part.partition("=")
            parts.append(f"{name}={REDACTED}" if equals and _unquoted(name) in self.names else part)
        redacted = "&".join(parts)
        return query if redacted == query else redacted

    def url(self, url: str) -> str:
        base, question, query = url.partition("?")
        return base + question + self.query(query) if question else url

    def _cookies(self, value: str, *, separator: str) -> str:
        pairs = []
        for pair in value.split(separator):
            match = _COOKIE_PAIR.match(pair)
            if match and match.group(1).lower() in self.names:
                pairs.append(pair[: match.end()] + REDACTED)
            else:
                pairs.append(pair)
        return separator.join(pairs)

    # -- events and results: Lambda@Edge and ALB shapes, walked where headers and query strings live ----------------
    # Copy on write: what holds nothing to redact comes back as it is (recording every exchange stays cheap).

    def event(self, value: Any) -> Any:
        """A recorded event or result (either service's shape) with its secrets redacted (a copy, when any is)."""
        if self.idle or type(value) is not dict:
            return value
        records = value.get("Records")
        if records is None:
            return self._message(value)
        if type(records) is not list or len(records) != 1 or type(records[0]) is not dict:
            return value
        cf = records[0].get("cf")
        if type(cf) is not dict:
            return value
        request, response = cf.get("request"), cf.get("response")
        new_request = self._message(request) if type(request) is dict else request
        new_response = self._message(response) if type(response) is dict else response
        if new_request is request and new_response is response:
            return value
        parts = {"request": new_request} | ({} if response is None else {"response": new_response})
        return {**value, "Records": [{**records[0], "cf": {**cf, **parts}}]}

    def _message(self, message: dict[str, Any]) -> dict[str, Any]:
        """A Lambda@Edge request or response, or an ALB event or result."""
        changes: dict[str, Any] = {}
        headers = message.get("headers")
        if type(headers) is dict and self._touched(headers):
            changes["headers"] = self._header_map(headers)
        origin = message.get("origin")
        if type(origin) is dict:
            new = self._origin(origin)
            if new is not origin:
                changes["origin"] = new
        multi = message.get("multiValueHeaders")
        if type(multi) is dict and self._touched(multi):
            changes["multiValueHeaders"] = self._multi_value_headers(multi)
        if self.names:
            query = message.get("querystring")
            if type(query) is str and (new := self.query(query)) is not query:
                changes["querystring"] = new
            for key in ("queryStringParameters", "multiValueQueryStringParameters"):
                parameters = message.get(key)
                if type(parameters) is dict and (new := self._parameters(parameters)) is not parameters:
                    changes[key] = new
        return {**message, **changes} if changes else message

    def _touched(self, names: Mapping[str, Any]) -> bool:
        """Whether a header map may hold something to redact (checked before any copy is made). Map names are lower
        case in events and in results CloudFront accepts; a lenient run may let others through."""
        if self.idle:
            return False
        if self._all_headers.isdisjoint(names) and (not self.names or _HOLDING_NAMES.isdisjoint(names)):
            if all(type(name) is str and name.islower() for name in names):
                return False
            lower = {str(name).lower() for name in names}
            return not self._all_headers.isdisjoint(lower) or (
                bool(self.names) and not _HOLDING_NAMES.isdisjoint(lower)
            )
        return True

    def _header_map(self, headers: Mapping[str, Any]) -> Any:
        """Lambda@Edge's ``{name: [{key, value}]}`` (or ALB's single-value ``{name: value}``)."""
        result: dict[str, Any] = {}
        for name, entries in headers.items():
            if isinstance(entries, str):
                result[name] = self.header(name, entries)
            elif isinstance(entries, list):
                result[name] = [
                    {**entry, "value": self.header(name, entry["value"])}
                    if isinstance(entry, dict) and isinstance(entry.get("value"), str)
                    else entry
                    for entry in entries
                ]
            else:
                result[name] = entries
        return result

    def _multi_value_headers(self, headers: Mapping[str, Any]) -> Any:
        return {
            name: [self.header(name, item) if isinstance(item, str) else item for item in items]
            if isinstance(items, list)
            else items
            for name, items in headers.items()
        }

    def _parameters(self, parameters: Mapping[str, Any]) -> Any:
        if not self.names or not any(_unquoted(str(name)) in self.names for name in parameters):
            return parameters
        return {
            name: (REDACTED if not isinstance(items, list) else [REDACTED] * len(items))
            if _unquoted(str(name)) in self.names
            else items
            for name, items in parameters.items()
        }

    def _origin(self, origin: Mapping[str, Any]) -> Any:
        if not any(type(spec) is dict and spec.get("customHeaders") for spec in origin.values()):
            return origin
        return {kind: self._origin_spec(spec) for kind, spec in origin.items()}

    def _origin_spec(self, spec: Any) -> Any:
        if not isinstance(spec, dict) or not spec.get("customHeaders"):
            return spec
        custom = {
            name: [{**entry, "value": REDACTED} if isinstance(entry, dict) else entry for entry in entries]
            if isinstance(entries, list)
            else entries
            for name, entries in spec["customHeaders"].items()
        }
        return {**spec, "customHeaders": custom}


NOTHING = Redactor(headers=frozenset())  # redacts nothing


def _cf(value: Any) -> list[dict[str, Any]]:
    """The request and response of a Lambda@Edge event (or the result itself, a request or a response)."""
    if type(value) is not dict:
        return []
    records = value.get("Records")
    if type(records) is list and records and type(records[0]) is dict and type(records[0].get("cf")) is dict:
        cf = records[0]["cf"]
        return [part for part in (cf.get("request"), cf.get("response")) if type(part) is dict]
    return [value]


def custom_header_names(value: Any) -> set[str]:
    """The names of the origin custom headers a Lambda@Edge request carries (``origin.*.customHeaders``), in an
    event or a result."""
    if isinstance(value, dict) and isinstance(value.get("Records"), list) and value["Records"]:
        value = (value["Records"][0].get("cf") or {}).get("request")
    origin = value.get("origin") if isinstance(value, dict) else None
    if not isinstance(origin, dict):
        return set()
    return {
        str(name).lower()
        for spec in origin.values()
        if isinstance(spec, dict) and isinstance(spec.get("customHeaders"), dict)
        for name in spec["customHeaders"]
    }


def unredacted(
    headers: Iterable[tuple[str, str]], supplied: Mapping[str, str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Recorded request headers with their secrets given back, for a replay: each value recorded as ``[REDACTED]``
    becomes the one ``supplied`` (keyed by lower-case name) has for its name, and a supplied ``Cookie`` gives the
    values of the redacted cookies of a recorded ``Cookie``, by name. Nothing is added. Also what stays redacted,
    named (``header X-Api-Key``, ``cookie session``): the secret is not in the file, so it is sent as recorded."""
    given_cookies = {key.strip(): value for key, _, value in _pairs(supplied.get("cookie", ""))}
    restored, still = [], []
    for name, value in headers:
        lower = name.lower()
        if value == REDACTED:
            if lower in supplied:
                value = supplied[lower]
            else:
                still.append(f"header {name}")
        elif lower == "cookie" and REDACTED in value:
            pairs = []
            for pair in value.split(";"):
                key, equals, item = pair.partition("=")
                if equals and item.strip() == REDACTED:
                    if key.strip() in given_cookies:
                        pair = f"{key}={given_cookies[key.strip()]}"
                    else:
                        still.append(f"cookie {key.strip()}")
                pairs.append(pair)
            value = ";".join(pairs)
        restored.append((name, value))
    return restored, still


def redacted_parameters(query: str) -> list[str]:
    """The query parameters of a recorded raw query string whose values were redacted, named."""
    return [f"query parameter {unquote_plus(name)}" for name, equals, value in _pairs(query, "&") if value == REDACTED]


def _pairs(text: str, separator: str = ";") -> list[tuple[str, str, str]]:
    return [part.strip().partition("=") for part in text.split(separator) if part.strip()]


def _unquoted(name: str) -> str:
    return unquote_plus(name).lower()
