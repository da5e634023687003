"""Basic authentication: keep a staging site or a preview private with one shared user and password.

Use case: password-protect a whole distribution (staging, previews, internal docs) without touching the origin.
Trigger: viewer-request (the check runs before the cache, so cached pages are protected too).
What it does: reads ``Authorization: Basic ...``; when it is missing, malformed or wrong it returns a generated
``401 Unauthorized`` with ``WWW-Authenticate`` so that browsers prompt for credentials, and the origin is never
contacted. When it is right it removes the ``Authorization`` header (the origin has no use for the shared password)
and passes the request on.

Lambda@Edge has no environment variables, so the credentials live in the code. Only a SHA-256 digest of
``user:password`` is kept here; the demo credentials are ``edge`` / ``correct-horse-battery-staple``. Replace
``CREDENTIALS_SHA256`` with ``hashlib.sha256(b"user:password").hexdigest()`` for your own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

CREDENTIALS_SHA256 = "c6a2d3509c65b334c5209be79d7d4cf1182cf769ecaa2a9f5efa20731c088fdb"
REALM = "Restricted"


def _credentials(request: dict[str, Any]) -> bytes | None:
    """The ``user:password`` bytes of a Basic ``Authorization`` header, or ``None``."""
    entries = request["headers"].get("authorization", [])
    if not entries:
        return None
    scheme, _, token = entries[0]["value"].strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _unauthorized() -> dict[str, Any]:
    return {
        "status": "401",
        "statusDescription": "Unauthorized",
        "headers": {
            "www-authenticate": [{"key": "WWW-Authenticate", "value": f'Basic realm="{REALM}", charset="UTF-8"'}],
            "content-type": [{"key": "Content-Type", "value": "text/plain; charset=utf-8"}],
            "cache-control": [{"key": "Cache-Control", "value": "no-store"}],
        },
        "body": "Authentication required.\n",
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    credentials = _credentials(request)
    if credentials is None:
        return _unauthorized()
    digest = hashlib.sha256(credentials).hexdigest()
    if not hmac.compare_digest(digest, CREDENTIALS_SHA256):
        return _unauthorized()
    del request["headers"]["authorization"]
    return request
