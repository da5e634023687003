"""inspector/ring.py: the ring records only while a page watches, holds the newest exchanges, and cuts long bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeproxy import serving, testing
from edgeproxy.exchange import Observers
from edgeproxy.inspector import ring as ring_module
from tests.inspector.harness import InspectedFactory, with_a_cut_body


async def _get(proxy: testing.EdgeProxy, path: str) -> int:
    async with proxy.client.get(path) as response:
        await response.read()
        status: int = response.status
        return status


async def test_nothing_is_kept_or_copied_while_no_page_watches(inspected: InspectedFactory, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    setup = await inspected(origin=str(tmp_path))
    observers = setup.proxy._app[serving.OBSERVERS]
    # Not attached: no body is captured for it (testing.start's own observer, for `invocations`, wants none).
    assert not observers.wants_bodies
    await _get(setup.proxy, "/a.txt")
    assert len(setup.ring) == 0
    async with setup.ring.watch():
        assert observers.wants_bodies
        await _get(setup.proxy, "/a.txt")
    assert not observers.wants_bodies
    await _get(setup.proxy, "/a.txt")
    assert [kept.summary["path"] for kept in setup.ring] == ["/a.txt"]  # kept after the page closed


async def test_the_ring_holds_the_newest_exchanges_newest_first(inspected: InspectedFactory, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    setup = await inspected(ring_size=3, origin=str(tmp_path))
    async with setup.ring.watch() as feed:
        for n in range(5):
            await _get(setup.proxy, f"/a.txt?n={n}")
        summaries = feed.take()  # what the page's stream sends next, oldest first
        assert feed.take() == []
    assert [summary["path"] for summary in summaries] == [f"/a.txt?n={n}" for n in range(5)]
    assert [kept.summary["path"] for kept in setup.ring] == ["/a.txt?n=4", "/a.txt?n=3", "/a.txt?n=2"]
    assert [kept.seq for kept in setup.ring] == [5, 4, 3]
    assert setup.ring.get(summaries[0]["id"]) is None  # fell out: gone
    assert setup.ring.get(summaries[-1]["id"]) is not None


async def test_long_bodies_are_cut_in_the_ring_not_for_the_proxy(
    inspected: InspectedFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ring_module, "BODY_LIMIT", 1000)
    setup = await with_a_cut_body(inspected, tmp_path)
    [kept] = list(setup.ring)
    assert kept.cut == frozenset({"origin_body", "viewer_body"})
    assert bytes(kept.exchange.viewer_body or b"") == b"x" * 1000


def test_a_ring_holds_at_least_one_exchange() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ring_module.Ring(Observers(), 0)
