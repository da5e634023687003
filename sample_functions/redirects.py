"""Redirects (viewer-request).

Answers moved pages with a 301 from the edge, keeping the query string, and adds the trailing slash to
directory-like paths — the origin is never contacted for a redirect.
"""

REDIRECTS = {
    "/old-page": "/new-page",
    "/blog/2019/launch": "/news/launch",
}


def _redirect(location, querystring):
    if querystring:
        location = f"{location}?{querystring}"
    return {
        "status": "301",
        "statusDescription": "Moved Permanently",
        "headers": {
            "location": [{"key": "Location", "value": location}],
            "cache-control": [{"key": "Cache-Control", "value": "max-age=3600"}],
        },
    }


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    uri = request["uri"]
    if uri in REDIRECTS:
        return _redirect(REDIRECTS[uri], request["querystring"])
    last_segment = uri.rsplit("/", 1)[-1]
    if uri != "/" and last_segment and "." not in last_segment and uri.startswith("/docs/"):
        return _redirect(uri + "/", request["querystring"])
    return request
