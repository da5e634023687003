"""Serve different versions of an object based on the device (origin-request), by the ``CloudFront-Is-*-Viewer``
headers that the cache policy keys on: the uri is prefixed with ``/desktop``, ``/mobile``, ``/tablet`` or
``/smarttv``."""

PREFIXES = (
    ("cloudfront-is-desktop-viewer", "/desktop"),
    ("cloudfront-is-mobile-viewer", "/mobile"),
    ("cloudfront-is-tablet-viewer", "/tablet"),
    ("cloudfront-is-smarttv-viewer", "/smarttv"),
)


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    headers = request["headers"]
    for name, prefix in PREFIXES:
        if name in headers and headers[name][0]["value"] == "true":
            request["uri"] = prefix + request["uri"]
            break
    return request
