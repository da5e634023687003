"""A proxy with its inspector on an admin listener of its own, over real sockets (the ``inspected`` fixture, in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from edgeproxy import testing
from edgeproxy.admin import admin_app
from edgeproxy.inspector import RING, Ring
from edgeproxy.listener import Listener


@dataclass
class Inspected:
    proxy: testing.EdgeProxy
    admin: URL  # the admin listener: the inspector page is at /
    ring: Ring


InspectedFactory = Callable[..., Awaitable[Inspected]]


async def start_inspected(
    running: list[tuple[testing.EdgeProxy, Listener]], ring_size: int, **arguments: Any
) -> Inspected:
    """A proxy from :func:`edgeproxy.testing.start` with ``arguments``, and its admin listener (the one ``serve
    --admin-port`` serves) on a second port; both are added to ``running``, to be closed."""
    proxy = await testing.start(**arguments)
    admin = admin_app(proxy._app, inspector_ring=ring_size)
    listener = await Listener.start(admin)
    running.append((proxy, listener))
    return Inspected(proxy, listener.url, admin[RING])


async def with_a_cut_body(inspected: InspectedFactory, tmp_path: Path) -> Inspected:
    """An inspected proxy (the ring's BODY_LIMIT patched down to 1000 bytes by the caller) whose ring holds one
    exchange of a 5000-byte file: its origin and viewer bodies cut."""
    (tmp_path / "big.bin").write_bytes(b"x" * 5000)
    setup = await inspected(origin=str(tmp_path))
    async with setup.ring.watch(), setup.proxy.client.get("/big.bin") as response:
        assert await response.read() == b"x" * 5000
    return setup
