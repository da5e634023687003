"""Security headers (viewer-response or origin-response).

Adds the HTTP security headers every site should send — HSTS, nosniff, frame denial, a referrer policy and a
content security policy — unless the origin already set them.
"""

SECURITY_HEADERS = {
    "strict-transport-security": ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
    "x-content-type-options": ("X-Content-Type-Options", "nosniff"),
    "x-frame-options": ("X-Frame-Options", "DENY"),
    "referrer-policy": ("Referrer-Policy", "strict-origin-when-cross-origin"),
    "content-security-policy": (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'",
    ),
}


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    for name, (key, value) in SECURITY_HEADERS.items():
        headers.setdefault(name, [{"key": key, "value": value}])
    return response
