"""The inspector's memory: a bounded ring of the proxy's recent exchanges, and the pages watching it.

:class:`Ring` is an observer that is attached to the proxy only while at least one inspector page is open (a page
holds an event stream open), so the inspector costs nothing when no one is watching. While attached it keeps the
last ``size`` finished exchanges (an exchange that falls out of the ring is gone) and tells every watching page
about each new one, in batches of up to :data:`PUSH_INTERVAL` seconds, so that a busy proxy makes a few writes a
second per page, not one per request.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import enum
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from edgeproxy.exchange import Exchange, Observer, Observers
from edgeproxy.inspector import views

DEFAULT_SIZE = 500
PUSH_INTERVAL = 0.2  # seconds between two pushes of new exchanges to a page
# Bodies kept per exchange for the page and its HAR download: captured bodies over this are cut (and marked so).
BODY_LIMIT = 1024 * 1024
WATCHER_BACKLOG = 10_000  # summaries a slow page may fall behind by before it is told to reload the list


class Signal(enum.Enum):
    """What a watching page may be told instead of being sent new exchanges."""

    RELOAD = "reload"  # it fell too far behind: start again from the ring
    CLOSE = "close"  # the inspector is closing: end the stream


class Feed:
    """What one watching page has not been sent yet: the summaries of new exchanges, oldest first (a list the ring
    appends to, which the page's stream takes every :data:`PUSH_INTERVAL`: nothing is woken per exchange), or a
    :class:`Signal`."""

    def __init__(self) -> None:
        self.pending: list[dict[str, Any]] = []
        self.signal: Signal | None = None

    def take(self) -> list[dict[str, Any]]:
        taken, self.pending = self.pending, []
        return taken


@dataclass(frozen=True)
class Kept:
    """One exchange in the ring, with its number (``seq``, rising) and its summary row."""

    seq: int
    exchange: Exchange
    summary: dict[str, Any]
    cut: frozenset[str]  # the bodies cut at BODY_LIMIT ("request_body", "origin_body", ...)


class Ring(Observer):
    """The ring of one proxy, given its :class:`~edgeproxy.exchange.Observers`."""

    wants_bodies = True

    def __init__(self, observers: Observers, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("the inspector's ring holds at least one exchange")
        self.size = size
        self._observers = observers
        self._kept: collections.deque[Kept] = collections.deque(maxlen=size)
        self._by_id: dict[str, Kept] = {}
        self._numbers = itertools.count(1)
        self._watchers: set[Feed] = set()

    # -- what the proxy tells it ---------------------------------------------------------------------------------

    def exchange_done(self, exchange: Exchange) -> None:
        exchange, cut = _with_bodies_cut(exchange)
        kept = Kept(next(self._numbers), exchange, views.summary(exchange), cut)
        kept.summary["seq"] = kept.seq
        if len(self._kept) == self.size:
            dropped = self._kept[0]
            self._by_id.pop(dropped.exchange.id, None)
        self._kept.append(kept)
        self._by_id[exchange.id] = kept
        for feed in self._watchers:
            feed.pending.append(kept.summary)
            if len(feed.pending) > WATCHER_BACKLOG:  # not taken for a long while: it starts again from the ring
                feed.signal = Signal.RELOAD

    # -- what the pages read ---------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Kept]:
        """Newest first."""
        return reversed(self._kept)

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, exchange_id: str) -> Kept | None:
        return self._by_id.get(exchange_id)

    @property
    def watched(self) -> bool:
        return bool(self._watchers)

    def close(self) -> None:
        """Tell every watching page to end its stream (the admin listener is shutting down)."""
        for feed in self._watchers:
            feed.signal = Signal.CLOSE

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[Feed]:
        """A page watching: the summaries of new exchanges gather in its :class:`Feed`. The ring is attached to the
        proxy while any page watches."""
        feed = Feed()
        if not self._watchers:
            self._observers.attach(self)
        self._watchers.add(feed)
        try:
            yield feed
        finally:
            self._watchers.discard(feed)
            if not self._watchers:
                self._observers.detach(self)


def _with_bodies_cut(exchange: Exchange) -> tuple[Exchange, frozenset[str]]:
    """The exchange, or a copy of it whose captured bodies are cut at :data:`BODY_LIMIT` (the proxy's own exchange is
    left as it is: other observers may still read it)."""
    names = ("request_body", "origin_request_body", "origin_body", "viewer_body")
    long = [name for name in names if len(getattr(exchange, name) or b"") > BODY_LIMIT]
    if not long:
        return exchange, frozenset()
    kept = copy.copy(exchange)
    for name in long:
        setattr(kept, name, bytearray(getattr(exchange, name)[:BODY_LIMIT]))
    return kept, frozenset(long)
