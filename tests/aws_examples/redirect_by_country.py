"""Redirect viewer requests to a country-specific URL (origin-request), by ``CloudFront-Viewer-Country``.

AWS's scenario: the distribution caches on ``CloudFront-Viewer-Country`` (a cache policy naming it), so the header
reaches origin-request, and each country's redirect is cached apart. Viewers in Taiwan go to ``tw.example.com``,
viewers in the United States to ``us.example.com``, everyone else to ``example.com``.
"""

URLS = {"TW": "https://tw.example.com/", "US": "https://us.example.com/"}


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    url = "https://example.com/"
    country = request["headers"].get("cloudfront-viewer-country")
    if country:
        url = URLS.get(country[0]["value"], url)
    return {
        "status": "302",
        "statusDescription": "Found",
        "headers": {"location": [{"key": "Location", "value": url}]},
    }
