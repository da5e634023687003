"""A generated response (viewer-request): a health check and a maintenance page answered at the edge.

``/healthz`` gets a small JSON body; while ``MAINTENANCE`` is on, every other page gets a 503 HTML page with
``Retry-After``. Neither reaches the origin.
"""

import json

MAINTENANCE = False
PAGE = "<!doctype html><title>Back soon</title><h1>We'll be back soon</h1>"


def handler(event, context):
    cf = event["Records"][0]["cf"]
    request = cf["request"]
    if request["uri"] == "/healthz":
        return {
            "status": "200",
            "statusDescription": "OK",
            "headers": {
                "content-type": [{"key": "Content-Type", "value": "application/json"}],
                "cache-control": [{"key": "Cache-Control", "value": "no-store"}],
            },
            "body": json.dumps({"status": "ok", "requestId": cf["config"]["requestId"]}),
        }
    if MAINTENANCE:
        return {
            "status": "503",
            "statusDescription": "Service Unavailable",
            "headers": {
                "content-type": [{"key": "Content-Type", "value": "text/html; charset=utf-8"}],
                "retry-after": [{"key": "Retry-After", "value": "120"}],
            },
            "body": PAGE,
        }
    return request
