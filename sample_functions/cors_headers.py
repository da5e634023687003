"""CORS headers: let a known set of web apps call an API or fetch fonts from this distribution.

Use case: an API or asset origin that does not send CORS headers itself, called from browser apps on other
domains.
Trigger: origin-response (once per origin fetch; the headers are cached along with the response, which is why
``Vary: Origin`` is added).
What it does: when the request's ``Origin`` is in ``ALLOWED_ORIGINS``, sets ``Access-Control-Allow-Origin`` to it
(never ``*``, so credentials can be allowed) with ``Access-Control-Allow-Credentials``; for a preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) it also sets the allowed methods and headers and a max age,
and turns an origin that does not answer ``OPTIONS`` (any status 400 and up) into an empty ``204``. ``Vary: Origin``
is added to every response (allowed origin or not), merged with the origin's own ``Vary``. Responses to other
origins get no CORS headers, so browsers block them.
"""

from __future__ import annotations

from typing import Any

ALLOWED_ORIGINS = frozenset({"https://app.example.com", "https://admin.example.com", "http://localhost:3000"})
ALLOWED_METHODS = "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Requested-With"
MAX_AGE = "600"


def _set(headers: dict[str, Any], name: str, value: str) -> None:
    headers[name.lower()] = [{"key": name, "value": value}]


def _add_vary(headers: dict[str, Any], name: str) -> None:
    values = [value.strip() for entry in headers.get("vary", []) for value in entry["value"].split(",")]
    if "*" in values or name.lower() in (value.lower() for value in values):
        return
    _set(headers, "Vary", ", ".join([*(value for value in values if value), name]))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    cf = event["Records"][0]["cf"]
    request: dict[str, Any] = cf["request"]
    response: dict[str, Any] = cf["response"]
    headers = response.setdefault("headers", {})
    _add_vary(headers, "Origin")

    origin = request["headers"].get("origin", [{"value": ""}])[0]["value"]
    if origin not in ALLOWED_ORIGINS:
        return response
    _set(headers, "Access-Control-Allow-Origin", origin)
    _set(headers, "Access-Control-Allow-Credentials", "true")

    if request["method"] == "OPTIONS" and "access-control-request-method" in request["headers"]:
        _set(headers, "Access-Control-Allow-Methods", ALLOWED_METHODS)
        _set(headers, "Access-Control-Allow-Headers", ALLOWED_HEADERS)
        _set(headers, "Access-Control-Max-Age", MAX_AGE)
        if int(response["status"]) >= 400:
            response["status"] = "204"
            response["statusDescription"] = "No Content"
            response["body"] = ""
            headers.pop("content-type", None)
    return response
