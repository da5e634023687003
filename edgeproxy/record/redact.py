"""Secrets kept out of recordings: named headers, cookies and query parameters, and origin custom headers, written as
``[REDACTED]`` wherever they would appear (viewer side, origin side, and inside recorded events and results)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

REDACTED = "[REDACTED]"
# Credentials a request carries; redacted unless --no-default-redactions.
DEFAULT_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "x-amz-security-token"})
_COOKIE_PAIR = re.compile(r"\s*([^=;\s]+)\s*=")


@dataclass(frozen=True)
class Redactor:
    """What to redact. ``headers`` are header names; ``names`` (``--redact NAME``) are header, cookie or
    query-parameter names; ``custom_headers`` are origin custom headers (CloudFront users put shared secrets there),
    whose values are redacted wherever they appear. All names are compared case-insensitively."""

    headers: frozenset[str] = DEFAULT_HEADERS
    names: frozenset[str] = frozenset()
    custom_headers: frozenset[str] = frozenset()
    _all_headers: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lower = frozenset(name.lower() for name in (*self.headers, *self.names, *self.custom_headers))
        object.__setattr__(self, "_all_headers", lower)
        object.__setattr__(self, "names", frozenset(name.lower() for name in self.names))

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

    def redacts_header(self, name: str) -> bool:
        return name.lower() in self._all_headers

    def header(self, name: str, value: str) -> str:
        """A header's value as recorded: ``[REDACTED]`` for a redacted name; a ``Cookie`` or ``Set-Cookie`` with its
        redacted cookies' values replaced."""
        lower = name.lower()
        if lower in self._all_headers:
            return REDACTED
        if lower == "cookie" and self.names:
            return self._cookies(value, separator=";")
        if lower == "set-cookie" and self.names:
            cookie, semicolon, attributes = value.partition(";")
            return self._cookies(cookie, separator=";") + semicolon + attributes
        return value

    def headers_list(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(name, self.header(name, value)) for name, value in headers]

    def query(self, query: str) -> str:
        """A raw query string with the values of redacted parameters replaced (``&`` separates, as for CloudFront)."""
        if not self.names or not query:
            return query
        parts = []
        for part in query.split("&"):
            name, equals, _ = part.partition("=")
            parts.append(f"{name}={REDACTED}" if equals and _unquoted(name) in self.names else part)
        return "&".join(parts)

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

    def event(self, value: Any) -> Any:
        """A copy of a recorded event or result (either service's shape) with its secrets redacted."""
        if not isinstance(value, dict):
            return value
        if "Records" in value:
            records = value.get("Records")
            if isinstance(records, list):
                return {**value, "Records": [self._record(record) for record in records]}
            return value
        return self._message(value)

    def _record(self, record: Any) -> Any:
        if not isinstance(record, dict) or not isinstance(record.get("cf"), dict):
            return record
        cf = dict(record["cf"])
        for part in ("request", "response"):
            if isinstance(cf.get(part), dict):
                cf[part] = self._message(cf[part])
        return {**record, "cf": cf}

    def _message(self, message: dict[str, Any]) -> dict[str, Any]:
        """A Lambda@Edge request or response, or an ALB event or result."""
        redacted = dict(message)
        for key, value in message.items():
            if key == "headers" and isinstance(value, dict):
                redacted[key] = self._header_map(value)
            elif key == "multiValueHeaders" and isinstance(value, dict):
                redacted[key] = {
                    name: [self.header(name, item) if isinstance(item, str) else item for item in items]
                    if isinstance(items, list)
                    else items
                    for name, items in value.items()
                }
            elif key == "querystring" and isinstance(value, str):
                redacted[key] = self.query(value)
            elif key in ("queryStringParameters", "multiValueQueryStringParameters") and isinstance(value, dict):
                redacted[key] = {
                    name: (REDACTED if not isinstance(items, list) else [REDACTED] * len(items))
                    if _unquoted(name) in self.names
                    else items
                    for name, items in value.items()
                }
            elif key == "origin" and isinstance(value, dict):
                redacted[key] = {kind: self._origin(spec) for kind, spec in value.items()}
        return redacted

    def _header_map(self, headers: Mapping[str, Any]) -> dict[str, Any]:
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

    def _origin(self, spec: Any) -> Any:
        if not isinstance(spec, dict) or not isinstance(spec.get("customHeaders"), dict):
            return spec
        custom = {
            name: [{**entry, "value": REDACTED} if isinstance(entry, dict) else entry for entry in entries]
            if isinstance(entries, list)
            else entries
            for name, entries in spec["customHeaders"].items()
        }
        return {**spec, "customHeaders": custom}


def custom_header_names(value: Any) -> set[str]:
    """The names of the origin custom headers an event or result carries (``request.origin.*.customHeaders``)."""
    names: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            custom = item.get("customHeaders")
            if isinstance(custom, dict):
                names.update(str(name).lower() for name in custom)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names


def _unquoted(name: str) -> str:
    return unquote_plus(name).lower()
