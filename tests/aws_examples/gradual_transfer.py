"""Move traffic from one S3 bucket to another step by step (origin-request).

A random number from 1 to 100 no larger than ``BLUE_TRAFFIC_PERCENTAGE`` sends the request to
``blue-bucket.s3.amazonaws.com`` (the S3 origin's domain name is changed in place, and the Host header follows);
the rest stay on the bucket the behavior is configured with.
"""

import random

BLUE_TRAFFIC_PERCENTAGE = 80
BLUE = "blue-bucket.s3.amazonaws.com"


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if random.randint(1, 100) <= BLUE_TRAFFIC_PERCENTAGE:
        request["origin"]["s3"]["domainName"] = BLUE
        request["headers"]["host"] = [{"key": "host", "value": BLUE}]
    return request
