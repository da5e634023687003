"""Preferences in cookies: set two cookies at once, in either header mode.

Use case: a Lambda behind an ALB that sets more than one cookie (a session and a preference, a CSRF token...). With
multi-value headers enabled the response lists every ``Set-Cookie`` value under ``multiValueHeaders``; with them
disabled (ALB's default) a ``headers`` map can hold one value per name, so the known workaround is to send each
cookie under a differently cased ``set-cookie`` key, which the load balancer emits as separate header lines
(reference/aws-behaviour.md §7.2; Mangum and serverless-wsgi do the same).
Target: an ALB target group, single-value or multi-value headers.
What it does: ``GET /prefs?theme=dark&lang=de`` sets ``theme`` and ``lang`` cookies (defaults ``light`` and ``en``)
and answers with the cookies the request carried, as JSON. Any other path is a 404.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.cookies import SimpleCookie
from itertools import product
from typing import Any

MAX_AGE = 60 * 60 * 24 * 365


def _casings(name: str) -> Iterator[str]:
    """``set-cookie``, ``set-cookiE``, ``set-cookIe``, ...: distinct keys for the same header name."""
    choices = [(char.lower(), char.upper()) if char.isalpha() else (char,) for char in name]
    for combination in product(*choices):
        yield "".join(combination)


def _request_cookies(event: dict[str, Any]) -> dict[str, str]:
    if "multiValueHeaders" in event:
        lines = event["multiValueHeaders"].get("cookie", [])
    else:
        lines = [event["headers"]["cookie"]] if "cookie" in event.get("headers", {}) else []
    jar: SimpleCookie = SimpleCookie()
    for line in lines:
        jar.load(line)
    return {name: morsel.value for name, morsel in jar.items()}


def _response(event: dict[str, Any], status: int, body: Any, cookies: list[str]) -> dict[str, Any]:
    response: dict[str, Any] = {"statusCode": status, "body": json.dumps(body)}
    if "multiValueHeaders" in event:
        response["multiValueHeaders"] = {"Content-Type": ["application/json"], "Set-Cookie": cookies}
    else:
        headers = {"Content-Type": "application/json"}
        headers.update(zip(_casings("set-cookie"), cookies, strict=False))
        response["headers"] = headers
    return response


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["path"] != "/prefs":
        return _response(event, 404, {"error": "not found"}, [])
    query = event.get("queryStringParameters") or {
        key: values[-1] for key, values in event.get("multiValueQueryStringParameters", {}).items()
    }
    theme = query.get("theme", "light")
    lang = query.get("lang", "en")
    cookies = [
        f"theme={theme}; Path=/; Max-Age={MAX_AGE}; SameSite=Lax",
        f"lang={lang}; Path=/; Max-Age={MAX_AGE}; SameSite=Lax",
    ]
    return _response(event, 200, {"received": _request_cookies(event), "set": {"theme": theme, "lang": lang}}, cookies)
