"""A pass-through Lambda@Edge handler for every trigger: returns the request or response unchanged."""


def handler(event, context):  # type: ignore[no-untyped-def]
    cf = event["Records"][0]["cf"]
    return cf.get("response", cf["request"])
