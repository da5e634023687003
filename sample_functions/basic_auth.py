"""Basic authentication (viewer-request).

Protects a staging distribution with HTTP Basic auth: a missing or wrong ``Authorization`` header gets a 401 with
``WWW-Authenticate`` generated at the edge; the right credentials let the request through unchanged.
"""

import base64
import hmac

USER = "staging"
PASSWORD = "let-me-in"
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    supplied = request["headers"].get("authorization", [{"value": ""}])[0]["value"]
    if hmac.compare_digest(supplied.encode(), EXPECTED.encode()):
        return request
    return {
        "status": "401",
        "statusDescription": "Unauthorized",
        "headers": {
            "www-authenticate": [{"key": "WWW-Authenticate", "value": 'Basic realm="staging", charset="UTF-8"'}],
            "content-type": [{"key": "Content-Type", "value": "text/plain"}],
        },
        "body": "Authentication required",
    }
