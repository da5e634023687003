"""Form spam at the edge: turn away bots that fill in a hidden field, and forward the rest of the form without it.

Use case: a contact or sign-up form posted through the distribution. The form has a field people never see (a
"honeypot", ``HONEYPOT``, hidden with CSS); bots that fill in every field fill it in too.
Trigger: viewer-request, with include body (the association's Include Body option: the form is in
``request.body``, base64-encoded; without it the function sees no body and lets everything through).
What it does, for a ``POST`` of an ``application/x-www-form-urlencoded`` form whose body CloudFront did not
truncate (over 40 KB at viewer-request, the body is passed on untouched):

* when the honeypot field is filled in, answers ``403`` with a short text at the edge (the origin never sees it);
* otherwise drops the honeypot field and replaces the body with the remaining form (``action: replace``,
  ``encoding: text``); CloudFront recomputes ``Content-Length``.

Anything else passes unchanged.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl, urlencode

HONEYPOT = "website"
FORM_TYPE = "application/x-www-form-urlencoded"


def _content_type(request: dict[str, Any]) -> str:
    entries = request["headers"].get("content-type", [{"value": ""}])
    return str(entries[0]["value"]).split(";")[0].strip().lower()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    body = request.get("body")
    if request["method"] != "POST" or body is None or body["inputTruncated"] or _content_type(request) != FORM_TYPE:
        return request
    fields = parse_qsl(base64.b64decode(body["data"]).decode("utf-8", "replace"), keep_blank_values=True)
    if any(name == HONEYPOT and value for name, value in fields):
        return {
            "status": "403",
            "statusDescription": "Forbidden",
            "headers": {"content-type": [{"key": "Content-Type", "value": "text/plain; charset=utf-8"}]},
            "body": "This form could not be sent.\n",
        }
    kept = [(name, value) for name, value in fields if name != HONEYPOT]
    if len(kept) < len(fields):
        body.update(action="replace", encoding="text", data=urlencode(kept))
    return request
