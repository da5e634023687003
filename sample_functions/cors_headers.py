"""CORS headers (origin-response).

Lets the listed front-end origins call the API from the browser: when the request's ``Origin`` is allowed, the
response gets ``Access-Control-Allow-Origin`` for it and ``Vary: Origin``, so the cached copy stays correct.
"""

ALLOWED_ORIGINS = {"https://app.example.com", "http://localhost:5173"}


def handler(event, context):
    cf = event["Records"][0]["cf"]
    origin = cf["request"]["headers"].get("origin", [{"value": ""}])[0]["value"]
    response = cf["response"]
    if origin in ALLOWED_ORIGINS:
        headers = response["headers"]
        headers["access-control-allow-origin"] = [{"key": "Access-Control-Allow-Origin", "value": origin}]
        headers["access-control-allow-credentials"] = [{"key": "Access-Control-Allow-Credentials", "value": "true"}]
        headers.setdefault("vary", []).append({"key": "Vary", "value": "Origin"})
    return response
