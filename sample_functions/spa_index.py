"""SPA rewriting: serve ``index.html`` for client-side routes and directory URLs.

Use case: a single-page app (React, Vue, ...) or a static site in an S3 bucket, where ``/settings/profile`` is a
route handled in the browser and ``/docs/`` means ``/docs/index.html``. Without this, S3 answers 403 or 404.
Trigger: origin-request (runs only on cache misses, and the rewritten object is cached under the viewer's URL).
What it does: a uri ending in ``/`` gets ``index.html`` appended (``/`` -> ``/index.html``, ``/docs/`` ->
``/docs/index.html``); a uri whose last segment has no file extension (``/settings/profile``) becomes
``/index.html``; anything else (``/assets/app.js``) is left alone. The query string is kept. A last segment with
a dot is taken for a file, so a route like ``/users/jane.doe`` is not rewritten.
"""

from __future__ import annotations

from typing import Any

INDEX = "index.html"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    uri: str = request["uri"]
    if uri.endswith("/"):
        request["uri"] = uri + INDEX
    elif "." not in uri.rsplit("/", 1)[-1]:
        request["uri"] = "/" + INDEX
    return request
