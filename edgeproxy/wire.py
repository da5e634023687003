"""Header handling on the wire, shared by the viewer side and the origin side."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

# RFC 9110 §7.6.1: connection-specific headers an intermediary must not forward, plus every header the
# Connection header names.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)


# What no header value or reason phrase can carry: the control characters other than tab (RFC 9110 §5.5, RFC 9112
# §4; aiohttp refuses them when it writes the head, so a result holding one must be rejected before that).
FORBIDDEN_IN_FIELD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def forbidden_in_field(text: str) -> str | None:
    """The first character that cannot go in a header value or reason phrase, as ``repr`` shows it, or ``None``."""
    match = FORBIDDEN_IN_FIELD.search(text)
    return None if match is None else repr(match.group())


def unpaired_surrogate(value: Any, where: str = "the result") -> str | None:
    """Where JSON-shaped ``value`` holds a string with an unpaired surrogate (``"\\ud800"`` parses from JSON, but no
    UTF-8 message can carry it), or ``None``."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unpaired_surrogate(key, f"a key in {where}") or unpaired_surrogate(item, f"{where}[{key!r}]")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := unpaired_surrogate(item, f"{where}[{index}]"):
                return found
    return None


def connection_named(headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> frozenset[str]:
    """Header names listed in ``Connection`` (lower case), which are hop-by-hop for this message."""
    return frozenset(
        token.strip().lower()
        for value in headers.getall("Connection", ())
        for token in value.split(",")
        if token.strip()
    )


def end_to_end(headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> Iterable[tuple[str, str]]:
    """The headers of a message without its hop-by-hop ones, in order, repeats kept."""
    named = connection_named(headers)
    for name, value in headers.items():
        lower = name.lower()
        if lower not in HOP_BY_HOP and lower not in named:
            yield name, value


def title_case(name: str) -> str:
    """``user-agent`` -> ``User-Agent``: how Lambda@Edge fills a missing ``key`` (§1.4)."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))
