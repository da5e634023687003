"""Add a field to an HTML form's body (viewer-request or origin-request, with include body).

The body is decoded, ``new-param-name=new-param-value`` is added, and the new form replaces the body as text.
"""

import base64
from urllib.parse import parse_qsl, urlencode


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["method"] == "POST":
        body = request["body"]
        fields = dict(parse_qsl(base64.b64decode(body["data"]).decode("utf-8")))
        fields["new-param-name"] = "new-param-value"
        body.update(action="replace", encoding="text", data=urlencode(fields))
    return request
