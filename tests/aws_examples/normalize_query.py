"""Normalise the query string for a better cache hit ratio (viewer-request): lower case, sorted by name."""

from urllib.parse import parse_qsl, urlencode


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    print("query string as received:", request["querystring"])
    params = dict(parse_qsl(request["querystring"].lower()))
    request["querystring"] = urlencode(sorted(params.items()))
    return request
