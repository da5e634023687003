"""Move a query-string parameter into a header (viewer-request): ?auth=X becomes Auth-Header: X.

The origin expects the value in a header: the ``auth`` parameter is taken out of the query string (the rest is
encoded again) and sent as ``Auth-Header``.
"""

from urllib.parse import parse_qsl, urlencode


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    params = dict(parse_qsl(request["querystring"]))
    request["headers"]["auth-header"] = [{"key": "Auth-Header", "value": params.pop("auth")}]
    request["querystring"] = urlencode(params)
    return request
