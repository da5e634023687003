"""Override a response header from another one (origin-response): Last-Modified from x-amz-meta-last-modified.

The entry S3 sent for the object's metadata header is put, as it is (its ``key`` still says
``X-Amz-Meta-Last-Modified``), under the map name ``last-modified``: the viewer gets ``Last-Modified`` with that
value, because the map name decides which header an entry is.
"""

SOURCE = "x-amz-meta-last-modified"
TARGET = "last-modified"


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    if headers.get(SOURCE):
        headers[TARGET] = [headers[SOURCE][0]]
        print("last-modified set to", headers[TARGET][0]["value"])
    return response
