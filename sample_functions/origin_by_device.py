"""Origin selection: serve mobile pages to mobile viewers, and route chosen requests to another origin.

Use case: one distribution in front of a site with a separate mobile tree (``/mobile/...``) and several origins
(a canary, a regional copy), picked per request without separate behaviors.
Trigger: origin-request (the only trigger that can change ``request.origin``). The mobile rewrite also works at
viewer-request, where the viewer's own ``User-Agent`` is visible; at origin-request CloudFront forwards the
viewer's ``User-Agent`` only if the cache or origin-request policy includes it, so rely on
``CloudFront-Is-Mobile-Viewer`` there.
What it does:

* when ``CloudFront-Is-Mobile-Viewer`` is ``true`` (or, if CloudFront did not send that header, the
  ``User-Agent`` looks like a phone), prefixes the uri with ``/mobile`` (once);
* when an ``X-Origin`` header names an origin in ``ORIGINS``, replaces ``request.origin`` with that custom origin
  (domain name, port, protocol, path; timeouts are kept; the old origin's custom headers are not sent to the new
  one), sets ``Host`` to the new domain name as CloudFront requires, and removes ``X-Origin``. Unknown names are
  ignored: only origins listed here can be reached, never one the viewer spells out.

``ORIGINS`` is read from an ``origins.json`` file bundled next to this file when there is one (Lambda@Edge has no
environment variables), else the defaults below are used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MOBILE_PREFIX = "/mobile"
MOBILE_USER_AGENT = re.compile(r"Mobi|Android|iPhone|iPod|BlackBerry|IEMobile|Opera Mini", re.IGNORECASE)
DEFAULT_ORIGINS: dict[str, dict[str, Any]] = {
    "canary": {"domainName": "canary.origin.example.com", "port": 443, "protocol": "https", "path": ""},
    "eu": {"domainName": "eu.origin.example.com", "port": 443, "protocol": "https", "path": "/site"},
}


def _load_origins() -> dict[str, dict[str, Any]]:
    bundled = Path(__file__).with_name("origins.json")
    if bundled.is_file():
        origins: dict[str, dict[str, Any]] = json.loads(bundled.read_text(encoding="utf-8"))
        return {name.lower(): spec for name, spec in origins.items()}
    return DEFAULT_ORIGINS


ORIGINS = _load_origins()  # once per cold start


def _first(headers: dict[str, list[dict[str, str]]], name: str) -> str | None:
    entries = headers.get(name)
    return entries[0]["value"] if entries else None


def _is_mobile(headers: dict[str, list[dict[str, str]]]) -> bool:
    flag = _first(headers, "cloudfront-is-mobile-viewer")
    if flag is not None:
        return flag.strip().lower() == "true"
    return bool(MOBILE_USER_AGENT.search(_first(headers, "user-agent") or ""))


def _custom_origin(current: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    spec = dict(current.get("custom", {}))  # keep readTimeout, keepaliveTimeout, sslProtocols
    spec.update(
        {
            "domainName": target["domainName"],
            "port": int(target.get("port", 443)),
            "protocol": target.get("protocol", "https"),
            "path": target.get("path", ""),
            "customHeaders": target.get("customHeaders", {}),
        }
    )
    spec.setdefault("sslProtocols", ["TLSv1.2"])
    spec.setdefault("readTimeout", 30)
    spec.setdefault("keepaliveTimeout", 5)
    return {"custom": spec}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    headers = request["headers"]

    uri: str = request["uri"]
    if _is_mobile(headers) and uri != MOBILE_PREFIX and not uri.startswith(MOBILE_PREFIX + "/"):
        request["uri"] = MOBILE_PREFIX + uri

    name = _first(headers, "x-origin")
    if name is not None:
        del headers["x-origin"]
        target = ORIGINS.get(name.strip().lower())
        if target is not None and "origin" in request:
            request["origin"] = _custom_origin(request["origin"], target)
            headers["host"] = [{"key": "Host", "value": target["domainName"]}]
    return request
