"""The header tables of reference/aws-behaviour.md, written out once for the tests that check them (§3.3, §3.4)."""

from __future__ import annotations

from edgeproxy.triggers import Trigger

# §3.3, current list: disallowed headers.
DISALLOWED = [
    "Connection",
    "Expect",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Connection",
    "Trailer",
    "Upgrade",
    "X-Accel-Buffering",
    "X-Accel-Charset",
    "X-Accel-Limit-Rate",
    "X-Accel-Redirect",
    "X-Amzn-Auth",
    "X-Amzn-Cf-Billing",
    "X-Amzn-Cf-Id",
    "X-Amzn-Cf-Xff",
    "X-Amzn-Errortype",
    "X-Amzn-Fle-Profile",
    "X-Amzn-Header-Count",
    "X-Amzn-Header-Order",
    "X-Amzn-Lambda-Integration-Tag",
    "X-Amzn-RequestId",
    "X-Cache",
    "X-Forwarded-Proto",
    "X-Real-IP",
]
# The list plus names under the disallowed prefixes X-Amz-Cf-* and X-Edge-*.
DISALLOWED_EXAMPLES = [*DISALLOWED, "X-Amz-Cf-Foo", "X-Amz-Cf-Id", "X-Edge-Bar", "X-Edge-Origin-Shield"]

# §3.4, current lists: read-only headers per trigger.
READ_ONLY: dict[Trigger, set[str]] = {
    "viewer-request": {"Content-Length", "Host", "Transfer-Encoding", "Via"},
    "origin-request": {
        "Accept-Encoding",
        "Content-Length",
        "If-Modified-Since",
        "If-None-Match",
        "If-Range",
        "If-Unmodified-Since",
        "Transfer-Encoding",
        "Via",
    },
    "origin-response": {"Transfer-Encoding", "Via"},
    "viewer-response": {"Warning", "Via"},
}
