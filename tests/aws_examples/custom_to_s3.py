"""Switch from a custom origin to an S3 origin (origin-request) when the query string says useS3Origin=true.

The bucket is named by its legacy global host name, ``my-bucket.s3.amazonaws.com``, and the Host header follows.
"""

from urllib.parse import parse_qs

BUCKET_HOST = "my-bucket.s3.amazonaws.com"


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if parse_qs(request["querystring"]).get("useS3Origin") == ["true"]:
        request["origin"] = {
            "s3": {"domainName": BUCKET_HOST, "region": "", "authMethod": "none", "path": "", "customHeaders": {}}
        }
        request["headers"]["host"] = [{"key": "host", "value": BUCKET_HOST}]
    return request
