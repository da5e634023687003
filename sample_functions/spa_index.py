"""Single-page app routing (origin-request).

Client-side routes like ``/settings/profile`` have no file behind them: any uri whose last segment has no file
extension is served ``/index.html``, and directory uris ending in ``/`` get ``index.html`` appended. Real files
(``/assets/app.js``) pass through unchanged.
"""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    uri = request["uri"]
    if uri.endswith("/"):
        request["uri"] = uri + "index.html"
    elif "." not in uri.rsplit("/", 1)[-1]:
        request["uri"] = "/index.html"
    return request
