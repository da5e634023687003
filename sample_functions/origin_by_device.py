"""Origin selection by header or device (origin-request).

Mobile viewers (``CloudFront-Is-Mobile-Viewer: true``) get the ``/mobile`` variant of a page. Note that the
viewer's ``User-Agent`` is not visible here: at origin-request it is already ``Amazon CloudFront``, which is why
device detection uses CloudFront's device headers (edgeproxy forwards them when the viewer sends them; it does not
generate them). A request carrying ``X-Origin: <host:port>`` is routed to that
origin instead, with the ``Host`` header changed to match, as AWS's own origin-switching example does.
"""


def _first(headers, name):
    entries = headers.get(name)
    return entries[0]["value"] if entries else None


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    headers = request["headers"]
    if _first(headers, "cloudfront-is-mobile-viewer") == "true" and not request["uri"].startswith("/mobile/"):
        request["uri"] = "/mobile" + request["uri"]
    target = _first(headers, "x-origin")
    if target and "custom" in request["origin"]:
        host, _, port = target.partition(":")
        custom = request["origin"]["custom"]
        custom["domainName"] = host
        custom["port"] = int(port) if port else 80
        custom["protocol"] = "http"
        custom["path"] = ""
        headers["host"] = [{"key": "Host", "value": host}]
    return request
