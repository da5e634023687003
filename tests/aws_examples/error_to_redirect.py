"""Redirect an origin error to a plan-B path (origin-response): 302 to /plan-b/path with the query string.

The status is set as a number, as AWS's example does, and the body is emptied.
"""


def handler(event, context):
    cf = event["Records"][0]["cf"]
    response = cf["response"]
    if 400 <= int(response["status"]) <= 599:
        response["status"] = 302
        response["statusDescription"] = "Found"
        response["body"] = ""
        response["headers"]["location"] = [{"key": "Location", "value": f"/plan-b/path?{cf['request']['querystring']}"}]
    return response
