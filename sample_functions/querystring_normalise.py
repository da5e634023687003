"""Query-string normalisation (viewer-request).

Improves the cache hit ratio: parameter names are lower-cased, ``utm_*`` and ``fbclid``/``gclid`` tracking
parameters are dropped, and the rest are sorted. Values keep their raw encoding.
"""

TRACKING = ("utm_", "fbclid", "gclid")


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    kept = []
    for pair in request["querystring"].split("&"):
        if not pair:
            continue
        name, sep, value = pair.partition("=")
        name = name.lower()
        if name.startswith(TRACKING):
            continue
        kept.append(f"{name}{sep}{value}")
    request["querystring"] = "&".join(sorted(kept))
    return request
