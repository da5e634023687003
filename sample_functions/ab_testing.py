"""A/B testing by cookie (viewer-request).

Viewers carry an ``experiment=a`` or ``experiment=b`` cookie; the uri is rewritten to ``/experiment-a/...`` or
``/experiment-b/...`` so each group sees its variant. Viewers without the cookie are assigned a group at random
(the origin's response sets the cookie so the group sticks).
"""

import random

COOKIE = "experiment"
GROUPS = ("a", "b")


def _cookie_value(headers, name):
    for entry in headers.get("cookie", []):
        for pair in entry["value"].split(";"):
            key, _, value = pair.strip().partition("=")
            if key == name:
                return value
    return None


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    group = _cookie_value(request["headers"], COOKIE)
    if group not in GROUPS:
        group = random.choice(GROUPS)
        request["headers"].setdefault("cookie", []).append({"key": "Cookie", "value": f"{COOKIE}={group}"})
    request["uri"] = f"/experiment-{group}{request['uri']}"
    return request
