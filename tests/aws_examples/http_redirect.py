"""Generate an HTTP redirect (viewer-request or origin-request): 302 Found to the Lambda@Edge guide."""

TARGET = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-edge.html"


def handler(event, context):
    return {
        "status": "302",
        "statusDescription": "Found",
        "headers": {"location": [{"key": "Location", "value": TARGET}]},
    }
