"""Generated responses: answer health checks, ``robots.txt`` and a maintenance page at the edge.

Use case: a ``/healthz`` endpoint for uptime monitors that checks the distribution itself, a ``robots.txt`` that
keeps crawlers off a staging distribution whatever the origin serves, and a maintenance page during an origin
outage or migration. None of them reaches the origin.
Trigger: viewer-request (answered before the cache; origin-request would work too, but only on cache misses).
What it does: ``GET``/``HEAD /healthz`` gets ``200`` with a JSON body (status, distribution id, request id, time)
and ``Cache-Control: no-store``; ``/robots.txt`` gets ``200`` with a plain-text body that disallows everything.
While ``MAINTENANCE`` is ``True`` (deploy a new version to switch it; Lambda@Edge has no environment variables)
every other request gets a ``503`` HTML page with ``Retry-After``; otherwise it is passed on unchanged.
Every generated response sets ``Content-Type``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MAINTENANCE = False
RETRY_AFTER_SECONDS = 300
ROBOTS_TXT = "User-agent: *\nDisallow: /\n"
MAINTENANCE_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Back soon</title></head>
<body><h1>We'll be back soon</h1><p>The site is down for maintenance. Please try again in a few minutes.</p></body>
</html>
"""


def _response(status: str, description: str, body: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "status": status,
        "statusDescription": description,
        "headers": {name.lower(): [{"key": name, "value": value}] for name, value in headers.items()},
        "body": body,
    }


def _healthz(cf: dict[str, Any]) -> dict[str, Any]:
    body = {
        "status": "ok",
        "distributionId": cf["config"]["distributionId"],
        "requestId": cf["config"]["requestId"],
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    return _response("200", "OK", json.dumps(body), headers)


def _robots(cf: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "max-age=86400"}
    return _response("200", "OK", ROBOTS_TXT, headers)


def _maintenance() -> dict[str, Any]:
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Retry-After": str(RETRY_AFTER_SECONDS),
        "Cache-Control": "no-store",
    }
    return _response("503", "Service Unavailable", MAINTENANCE_PAGE, headers)


ROUTES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "/healthz": _healthz,
    "/robots.txt": _robots,
}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    cf: dict[str, Any] = event["Records"][0]["cf"]
    request: dict[str, Any] = cf["request"]
    route = ROUTES.get(request["uri"])
    if route is not None and request["method"] in ("GET", "HEAD"):
        return route(cf)
    if MAINTENANCE:
        return _maintenance()
    return request
