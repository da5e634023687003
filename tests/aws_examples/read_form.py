"""Read an HTML form's fields from the request body (viewer-request or origin-request, with include body).

The body is handed over base64-encoded; the form fields are logged and the request goes on unchanged.
"""

import base64
from urllib.parse import parse_qsl


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["method"] == "POST":
        form = base64.b64decode(request["body"]["data"]).decode("utf-8")
        for name, value in parse_qsl(form):
            print(f"form field {name!r} is {value!r}")
    return request
