"""Switch from an S3 origin to a custom origin (origin-request) when the query string says useCustomOrigin=true.

The custom origin is ``https://www.example.com`` (port 443, TLSv1 / TLSv1.1, 5 s read and keep-alive timeouts),
and the Host header follows.
"""

from urllib.parse import parse_qs

HOST = "www.example.com"


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if parse_qs(request["querystring"]).get("useCustomOrigin") == ["true"]:
        request["origin"] = {
            "custom": {
                "domainName": HOST,
                "port": 443,
                "protocol": "https",
                "path": "",
                "sslProtocols": ["TLSv1", "TLSv1.1"],
                "readTimeout": 5,
                "keepaliveTimeout": 5,
                "customHeaders": {},
            }
        }
        request["headers"]["host"] = [{"key": "host", "value": HOST}]
    return request
