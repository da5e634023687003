"""Serve a static page from the function (viewer-request or origin-request): a generated 200 with HTML."""

PAGE = """<!DOCTYPE html>
<html lang="en">
  <head><meta charset="utf-8"><title>Generated at the edge</title></head>
  <body><p>Hello from Lambda@Edge!</p></body>
</html>
"""


def handler(event, context):
    return {
        "status": "200",
        "statusDescription": "OK",
        "headers": {
            "cache-control": [{"key": "Cache-Control", "value": "max-age=100"}],
            "content-type": [{"key": "Content-Type", "value": "text/html"}],
        },
        "body": PAGE,
    }
