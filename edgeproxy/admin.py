"""The admin listener: a second aiohttp application, on a port of its own (``serve --admin-port PORT``), to control a
running proxy and look into it. It answers JSON:

* ``GET /cache``: what the edge cache holds (each entry's key, path, status, age, TTL, freshness and size);
* ``GET /``: the inspector (:mod:`edgeproxy.inspector`: every request's path through the pipeline, live), and its
  ``/api/...`` routes;
* ``POST /invalidations`` with ``{"paths": ["/images/*", ...]}``: an invalidation, by CloudFront's path rules
  (:func:`edgeproxy.cache.covers`), answered as CloudFront's CreateInvalidation is (201, an id, ``Completed``: here
  it takes effect at once).

:func:`admin_app` builds it from the running proxy's application (CloudFront or ALB mode: an ALB has no cache, and
says so), with the proxy's application, its observers and its cache reachable under :data:`PROXY`,
:data:`OBSERVERS` and :data:`CACHE`. More pages add their routes to :data:`ROUTES` (or to the application
:func:`admin_app` returns). A failure in a route is a JSON 500 and one logged traceback, an unknown path or method a
JSON 404 or 405: never aiohttp's page.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from aiohttp import web

from edgeproxy import inspector, serving
from edgeproxy.cache import Cache, invalidation_problem
from edgeproxy.exchange import Observers
from edgeproxy.server import PIPELINE

log = logging.getLogger("edgeproxy")

PROXY = web.AppKey("proxy", web.Application)  # the proxy's own application
OBSERVERS = web.AppKey("observers", Observers)  # its observers: attach one to watch every exchange
CACHE = web.AppKey("cache", Cache)  # its edge cache (CloudFront mode only)
ROUTES = web.RouteTableDef()


def admin_app(proxy: web.Application, *, inspector_ring: int = inspector.DEFAULT_SIZE) -> web.Application:
    """The admin application of the proxy application ``proxy`` (from :func:`edgeproxy.server.create_app` or
    :func:`edgeproxy.alb.create_app`), its inspector keeping the last ``inspector_ring`` exchanges while a page
    watches."""
    app = web.Application(middlewares=[_json_errors])
    app[PROXY] = proxy
    app[OBSERVERS] = proxy[serving.OBSERVERS]
    pipeline = proxy.get(PIPELINE)
    if pipeline is not None:
        app[CACHE] = pipeline.cache
    app.add_routes(ROUTES)
    inspector.install(app, app[OBSERVERS], size=inspector_ring)
    return app


def _cache_of(request: web.Request) -> Cache:
    cache = request.app.get(CACHE)
    if cache is None:
        raise web.HTTPNotFound(text='{"error": "an ALB target group has no cache"}', content_type="application/json")
    return cache


@ROUTES.get("/cache")
async def cache_listing(request: web.Request) -> web.Response:
    """What the edge cache holds, least recently used first."""
    cache = _cache_of(request)
    entries = [entry.as_json() for entry in cache.listing()]
    return web.json_response({"entries": entries, "bytes": cache.bytes, "max_bytes": cache.max_bytes})


@ROUTES.post("/invalidations")
async def create_invalidation(request: web.Request) -> web.Response:
    """Invalidate ``paths`` (CloudFront's rules: exact paths, or a ``*`` at the end)."""
    cache = _cache_of(request)
    try:
        body: Any = await request.json()
    except (ValueError, RecursionError):  # not JSON, or nested past what the decoder takes
        return _problem('the body is JSON: {"paths": ["/images/*"]}')
    paths = body.get("paths") if isinstance(body, dict) else None
    if not isinstance(paths, list) or not paths or not all(isinstance(path, str) for path in paths):
        return _problem('"paths" is a list of one or more invalidation paths')
    for path in paths:
        if problem := invalidation_problem(path):
            return _problem(problem)
    removed = cache.invalidate(paths)
    invalidation_id = "I" + os.urandom(7).hex().upper()
    log.info("invalidation %s: %s (%d cached objects removed)", invalidation_id, " ".join(paths), removed)
    answer = {"id": invalidation_id, "status": "Completed", "paths": paths, "invalidated": removed}
    return web.json_response(answer, status=201)


def _problem(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


@web.middleware
async def _json_errors(request: web.Request, handler: serving.Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:  # an unknown path, a method a path does not take...: JSON, not aiohttp's page
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return web.json_response({"error": f"{exc.status} {exc.reason}"}, status=exc.status, headers=headers)
    except Exception:
        log.exception("admin %s %s: internal error", request.method, request.path)
        return web.json_response({"error": "internal error in edgeproxy (see its log)"}, status=500)
