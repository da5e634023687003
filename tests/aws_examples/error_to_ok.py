"""Turn an origin error into a 200 with a page of its own (origin-response).

For an origin status from 400 to 599 the response becomes ``200 OK`` with a short body. The status is set as a
number, as AWS's example does.
"""


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    if 400 <= int(response["status"]) <= 599:
        response["status"] = 200
        response["statusDescription"] = "OK"
        response["body"] = "Body generation example"
    return response
