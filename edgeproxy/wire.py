"""Header handling on the wire, shared by the viewer side and the origin side."""

from __future__ import annotations

from collections.abc import Iterable

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
