"""Change the origin's domain name based on the viewer's country (origin-request): viewers in Great Britain, Germany
and Ireland go to ``eu.example.com``; the Host header follows."""

EUROPE = ("GB", "DE", "IE")
DOMAIN_NAME = "eu.example.com"


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    country = request["headers"].get("cloudfront-viewer-country")
    if country and country[0]["value"] in EUROPE:
        request["origin"]["custom"]["domainName"] = DOMAIN_NAME
        request["headers"]["host"] = [{"key": "host", "value": DOMAIN_NAME}]
    return request
