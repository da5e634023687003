"""Send viewers without a session to a sign-in page (viewer-request).

A request whose first Cookie header has a ``session-id`` goes on; any other gets a 302 to
``https://www.example.com/signin`` with the page it asked for, as an https URL, in ``redirect_url``.
"""

from urllib.parse import quote_plus


def cookies(headers):
    found = {}
    for part in headers.get("cookie", [{"value": ""}])[0]["value"].split(";"):
        name, sep, value = part.partition("=")
        if sep:
            found[name.strip()] = value.strip()
    return found


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    headers = request["headers"]
    if cookies(headers).get("session-id"):
        return request
    asked_for = f"https://{headers['host'][0]['value']}{request['uri']}?{request['querystring']}"
    location = "https://www.example.com/signin?redirect_url=" + quote_plus(asked_for)
    return {
        "status": "302",
        "statusDescription": "Found",
        "headers": {"location": [{"key": "Location", "value": location}]},
    }
