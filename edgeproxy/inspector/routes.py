"""The inspector's routes, added to the admin application (:func:`install`):

* ``GET /``: the page (static HTML, CSS and a small script, shipped as package data: no build step, nothing from
  the network);
* ``GET /api/stream``: server-sent events: first the ring as it is (``event: list``), then new exchanges in batches
  (``event: exchanges``); the ring records while at least one stream is open;
* ``GET /api/exchanges`` (the summaries, newest first), ``GET /api/exchanges/{id}`` (one exchange, whole);
* ``GET /api/exchanges/{id}/har`` and ``GET /api/har``: one exchange, or the whole ring, as a HAR 1.2 file written
  by the recording's own writer, with its default redactions (credentials headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from edgeproxy import __version__
from edgeproxy.exchange import Observers
from edgeproxy.inspector import views
from edgeproxy.inspector.ring import BODY_LIMIT, PUSH_INTERVAL, Kept, Ring, Signal
from edgeproxy.record.har import CREATOR, entry
from edgeproxy.record.redact import Redactor

RING: web.AppKey[Ring] = web.AppKey("inspector_ring", Ring)
STATIC = {"inspector.css": "text/css", "inspector.js": "text/javascript"}
HEARTBEAT = 15.0  # seconds between two comments on an idle stream, so that a closed page is noticed


def install(app: web.Application, observers: Observers, *, size: int) -> Ring:
    """Add the inspector to ``app`` (the admin application), watching the proxy whose observers are ``observers``."""
    ring = Ring(observers, size)
    app[RING] = ring
    app.router.add_get("/", page)
    app.router.add_get("/inspector/{name}", static)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/api/exchanges", listing)
    app.router.add_get("/api/exchanges/{id}", one)
    app.router.add_get("/api/exchanges/{id}/har", one_as_har)
    app.router.add_get("/api/har", ring_as_har)

    async def close_streams(app: web.Application) -> None:  # open streams would hold the shutdown up
        ring.close()

    app.on_shutdown.append(close_streams)
    return ring


def _asset(name: str) -> bytes:
    return resources.files("edgeproxy.inspector").joinpath("static", name).read_bytes()


async def page(request: web.Request) -> web.Response:
    return web.Response(body=_asset("index.html"), content_type="text/html", charset="utf-8")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    return web.Response(body=_asset(name), content_type=STATIC[name], charset="utf-8")


async def listing(request: web.Request) -> web.Response:
    ring = request.app[RING]
    return _json_response({"size": ring.size, "exchanges": [kept.summary for kept in ring]})


async def one(request: web.Request) -> web.Response:
    kept = request.app[RING].get(request.match_info["id"])
    if kept is None:
        raise web.HTTPNotFound(text='{"error": "not in the ring (any more)"}', content_type="application/json")
    return _json_response(views.detail(kept.exchange, cut=kept.cut))


async def one_as_har(request: web.Request) -> web.Response:
    kept = request.app[RING].get(request.match_info["id"])
    if kept is None:
        raise web.HTTPNotFound(text='{"error": "not in the ring (any more)"}', content_type="application/json")
    return _har([kept], f"edgeproxy-{kept.seq}.har")


async def ring_as_har(request: web.Request) -> web.Response:
    ring = request.app[RING]
    return _har(list(reversed(list(ring))), "edgeproxy-inspector.har")  # oldest first, as recorded


def _har(kept: list[Kept], filename: str) -> web.Response:
    redactor = Redactor.make()
    entries = []
    for each in kept:
        written = entry(each.exchange, redactor)
        if each.cut:  # the ring keeps the first BODY_LIMIT bytes of a body: the sizes here are of what it kept
            cut = ", ".join(sorted(each.cut))
            written["comment"] = f"bodies cut at {BODY_LIMIT} bytes by edgeproxy's inspector: {cut}"
        entries.append(written)
    document = {"log": {"version": "1.2", "creator": CREATOR, "pages": [], "entries": entries}}
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return web.Response(body=_dumps(document), content_type="application/json", headers=headers)


async def stream(request: web.Request) -> web.StreamResponse:
    """The page's live feed. The ring is attached to the proxy for as long as this stream is open."""
    ring = request.app[RING]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        async with ring.watch() as feed:
            snapshot = {"size": ring.size, "version": __version__, "exchanges": [kept.summary for kept in ring]}
            await response.write(_event("list", snapshot))
            quiet = 0.0  # seconds since the page was last written to
            while True:
                await asyncio.sleep(PUSH_INTERVAL)
                if feed.signal is Signal.CLOSE:
                    break
                if feed.signal is Signal.RELOAD:  # it fell too far behind: start again from the ring
                    snapshot["exchanges"] = [kept.summary for kept in ring]
                    await response.write(_event("list", snapshot))
                    break
                if batch := feed.take():
                    await response.write(_event("exchanges", batch[::-1]))  # newest first, as the list shows them
                    quiet = 0.0
                elif (quiet := quiet + PUSH_INTERVAL) >= HEARTBEAT:
                    await response.write(b": idle\n\n")
                    quiet = 0.0
    return response


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n"


def _json_response(value: Any) -> web.Response:
    return web.Response(body=_dumps(value), content_type="application/json")


def _dumps(value: Any) -> bytes:
    """JSON; orjson, and ``json`` for what it refuses (an integer past 64 bits, a lone surrogate)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()
