"""A/B testing: send each visitor to one variant of the site, and keep them there.

Use case: serve two versions of a page (or a whole site) from ``/experiment-a/...`` and ``/experiment-b/...`` on
the origin, with each visitor sticking to one of them.
Trigger: viewer-request, plus viewer-response on the same function to make the assignment stick (it dispatches
on ``eventType``; one function version may be associated with several triggers).
What it does:

* at viewer-request, picks the visitor's group, in this order: an ``X-Experiment: a|b`` request header (to force
  a group while testing); the ``experiment`` cookie; a hash of the ``session-id`` cookie (deterministic, so a
  visitor keeps a group on every device where they are logged in); otherwise at random (``SPLIT_A`` of visitors
  get ``a``). Cookies are read from every ``cookie`` header entry. It prefixes the uri with ``/experiment-<group>``
  and sets ``X-Experiment: <group>`` on the request, so the origin (and viewer-response) know the group;
* at viewer-response, when the visitor's ``experiment`` cookie is not already that group, appends a
  ``Set-Cookie: experiment=<group>`` (origin cookies are kept) so that the next request lands in the same group.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

GROUPS = ("a", "b")
SPLIT_A = 0.5
COOKIE = "experiment"
IDENTITY_COOKIE = "session-id"
HEADER = "x-experiment"
COOKIE_ATTRIBUTES = "Path=/; Max-Age=2592000; Secure; SameSite=Lax"


def _cookies(headers: dict[str, list[dict[str, str]]]) -> dict[str, str]:
    """Every cookie of every ``cookie`` header entry; the first occurrence of a name wins."""
    cookies: dict[str, str] = {}
    for entry in headers.get("cookie", []):
        for pair in entry["value"].split(";"):
            name, sep, value = pair.strip().partition("=")
            if sep and name and name not in cookies:
                cookies[name] = value.strip().strip('"')
    return cookies


def _valid(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value if value in GROUPS else None


def _choose(headers: dict[str, list[dict[str, str]]]) -> str:
    forced = headers.get(HEADER)
    if forced and (group := _valid(forced[0]["value"])):
        return group
    cookies = _cookies(headers)
    if group := _valid(cookies.get(COOKIE)):
        return group
    if identity := cookies.get(IDENTITY_COOKIE):
        bucket = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big") / 2**64
    else:
        bucket = random.random()
    return GROUPS[0] if bucket < SPLIT_A else GROUPS[1]


def _assign(request: dict[str, Any]) -> dict[str, Any]:
    headers = request["headers"]
    group = _choose(headers)
    prefix = f"/experiment-{group}"
    if request["uri"] != prefix and not request["uri"].startswith(prefix + "/"):
        request["uri"] = prefix + request["uri"]
    headers[HEADER] = [{"key": "X-Experiment", "value": group}]
    return request


def _remember(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    headers = request["headers"]
    group = _valid(headers[HEADER][0]["value"]) if headers.get(HEADER) else None
    if group is None or _cookies(headers).get(COOKIE) == group:
        return response
    set_cookie = response.setdefault("headers", {}).setdefault("set-cookie", [])
    set_cookie.append({"key": "Set-Cookie", "value": f"{COOKIE}={group}; {COOKIE_ATTRIBUTES}"})
    return response


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    cf = event["Records"][0]["cf"]
    if "response" in cf:
        return _remember(cf["request"], cf["response"])
    return _assign(cf["request"])
