"""Change the Amazon S3 origin's Region based on the viewer's country (origin-request): a bucket per Region, named
``my-bucket-in-<region>``, chosen by ``CloudFront-Viewer-Country`` (which the origin request policy adds); the Host
header follows. Countries not in the table stay on the configured bucket."""

COUNTRY_TO_REGION = {
    "DE": "eu-central-1",
    "IE": "eu-west-1",
    "GB": "eu-west-2",
    "FR": "eu-west-3",
    "JP": "ap-northeast-1",
    "IN": "ap-south-1",
}


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    country = request["headers"].get("cloudfront-viewer-country")
    if country:
        region = COUNTRY_TO_REGION.get(country[0]["value"])
        if region:
            domain_name = f"my-bucket-in-{region}.s3.{region}.amazonaws.com"
            request["origin"]["s3"]["region"] = region
            request["origin"]["s3"]["domainName"] = domain_name
            request["headers"]["host"] = [{"key": "host", "value": domain_name}]
    return request
