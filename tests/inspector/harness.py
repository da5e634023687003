"""A proxy with its inspector on an admin listener of its own, over real sockets (the ``inspected`` fixture, in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from yarl import URL

from edgeproxy import serving, testing
from edgeproxy.inspector import Ring, install
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
    """A proxy from :func:`edgeproxy.testing.start` with ``arguments``, and its inspector on a second port; both are
    added to ``running``, to be closed."""
    proxy = await testing.start(**arguments)
    admin = web.Application()
    ring = install(admin, proxy._app[serving.OBSERVERS], size=ring_size)
    listener = await Listener.start(admin)
    running.append((proxy, listener))
    return Inspected(proxy, listener.url, ring)
