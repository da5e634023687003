"""Unit tests of the sample functions, written the way a user tests their own function with the public API.

Each test builds a Lambda@Edge event with :func:`edgeproxy.cloudfront_event`, runs the handler by reference with
:func:`edgeproxy.invoke` (which applies CloudFront's validation to the result) and asserts on the request or
response it returns. No proxy and no origin are involved; ``tests/test_sample_functions.py`` drives the same
functions through the proxy.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import sample_functions.generated_response as generated_response
from edgeproxy import LambdaExecutionError, LambdaValidationError, cloudfront_event, invoke

ROOT = Path(__file__).parents[1]  # handler references are resolved from the repository root (base_dir=ROOT)

SECURITY_HEADERS = "sample_functions/security_headers.py:handler"
REDIRECTS = "sample_functions/redirects.py:handler"
BASIC_AUTH = "sample_functions/basic_auth.py:handler"
AB_TESTING = "sample_functions/ab_testing.py:handler"
SPA_INDEX = "sample_functions/spa_index.py:handler"
ORIGIN_BY_DEVICE = "sample_functions/origin_by_device.py:handler"
QUERYSTRING_NORMALISE = "sample_functions/querystring_normalise.py:handler"
GENERATED_RESPONSE = "sample_functions/generated_response.py:handler"
CORS_HEADERS = "sample_functions/cors_headers.py:handler"
CACHE_CONTROL = "sample_functions/cache_control.py:handler"
FORM_HONEYPOT = "sample_functions/form_honeypot.py:handler"


def values(message: dict[str, Any], name: str) -> list[str]:
    """The values of header ``name`` (lower case) in a request or a response."""
    return [entry["value"] for entry in message["headers"].get(name, [])]


def basic(user_password: bytes, scheme: str = "Basic") -> dict[str, str]:
    return {"Authorization": f"{scheme} {base64.b64encode(user_password).decode()}"}


# security_headers.py


def test_security_headers_added_at_viewer_response() -> None:
    response = invoke(SECURITY_HEADERS, cloudfront_event("viewer-response", "/page"), base_dir=ROOT)
    assert response["status"] == "200"
    assert response["headers"]["strict-transport-security"] == [
        {"key": "Strict-Transport-Security", "value": "max-age=63072000; includeSubDomains; preload"}
    ]
    assert values(response, "x-content-type-options") == ["nosniff"]
    assert values(response, "referrer-policy") == ["strict-origin-when-cross-origin"]
    assert values(response, "content-security-policy")[0].startswith("default-src 'self'")
    assert values(response, "etag") == ['"7f8a9b0c1d2e3f405162738495a6b7c8"']  # the origin's headers are kept


def test_security_headers_replace_the_origin_values() -> None:
    event = cloudfront_event("viewer-response", response_headers={"X-Frame-Options": "SAMEORIGIN"})
    response = invoke(SECURITY_HEADERS, event, base_dir=ROOT)
    assert response["headers"]["x-frame-options"] == [{"key": "X-Frame-Options", "value": "DENY"}]


def test_security_headers_cover_errors_at_origin_response() -> None:
    response = invoke(SECURITY_HEADERS, cloudfront_event("origin-response", "/gone", status=404), base_dir=ROOT)
    assert response["status"] == "404"
    assert values(response, "x-frame-options") == ["DENY"]


# redirects.py


def test_redirect_from_the_map_keeps_the_query_string() -> None:
    response = invoke(REDIRECTS, cloudfront_event("viewer-request", "/old-page?ref=mail&x=%20"), base_dir=ROOT)
    assert (response["status"], response["statusDescription"]) == ("301", "Moved Permanently")
    assert response["headers"]["location"] == [{"key": "Location", "value": "/new-page?ref=mail&x=%20"}]
    assert values(response, "cache-control") == ["max-age=3600"]


@pytest.mark.parametrize(
    ("uri", "location"),
    [("/docs/", "/docs"), ("/about-us/", "/about"), ("//evil.example/", "/evil.example")],
)
def test_redirect_drops_trailing_slashes(uri: str, location: str) -> None:
    response = invoke(REDIRECTS, cloudfront_event("viewer-request", uri), base_dir=ROOT)
    assert response["status"] == "301"
    assert values(response, "location") == [location]


def test_redirect_keeps_the_method_of_a_post() -> None:
    response = invoke(REDIRECTS, cloudfront_event("viewer-request", "/old-page", method="POST"), base_dir=ROOT)
    assert (response["status"], values(response, "location")) == ("308", ["/new-page"])


def test_other_paths_are_passed_on_unchanged() -> None:
    request = invoke(REDIRECTS, cloudfront_event("viewer-request", "/new-page?x=1"), base_dir=ROOT)
    assert "status" not in request  # a request, not a generated response
    assert (request["uri"], request["querystring"]) == ("/new-page", "x=1")


# basic_auth.py


def test_basic_auth_asks_for_credentials() -> None:
    response = invoke(BASIC_AUTH, cloudfront_event("viewer-request", "/secret"), base_dir=ROOT)
    assert (response["status"], response["statusDescription"]) == ("401", "Unauthorized")
    assert values(response, "www-authenticate") == ['Basic realm="Restricted", charset="UTF-8"']
    assert values(response, "cache-control") == ["no-store"]
    assert response["body"] == "Authentication required.\n"


@pytest.mark.parametrize(
    "headers",
    [basic(b"edge:wrong"), basic(b"edge:correct-horse-battery-staple", "Bearer"), {"Authorization": "Basic ***"}],
    ids=["wrong-password", "other-scheme", "malformed"],
)
def test_basic_auth_rejects_bad_credentials(headers: dict[str, str]) -> None:
    response = invoke(BASIC_AUTH, cloudfront_event("viewer-request", "/secret", headers=headers), base_dir=ROOT)
    assert response["status"] == "401"


def test_basic_auth_passes_the_request_on_without_the_password() -> None:
    event = cloudfront_event("viewer-request", "/secret?x=1", headers=basic(b"edge:correct-horse-battery-staple"))
    request = invoke(BASIC_AUTH, event, base_dir=ROOT)
    assert (request["uri"], request["querystring"]) == ("/secret", "x=1")
    assert "authorization" not in request["headers"]


# ab_testing.py


def test_ab_group_comes_from_the_experiment_cookie() -> None:
    cookies = [("Cookie", "theme=dark"), ("Cookie", "lang=en; experiment=b")]
    request = invoke(AB_TESTING, cloudfront_event("viewer-request", "/home", headers=cookies), base_dir=ROOT)
    assert request["uri"] == "/experiment-b/home"
    assert request["headers"]["x-experiment"] == [{"key": "X-Experiment", "value": "b"}]


def test_ab_header_forces_a_group() -> None:
    headers = {"X-Experiment": "A", "Cookie": "experiment=b"}
    request = invoke(AB_TESTING, cloudfront_event("viewer-request", "/", headers=headers), base_dir=ROOT)
    assert (request["uri"], values(request, "x-experiment")) == ("/experiment-a/", ["a"])


def test_ab_group_of_a_session_is_the_same_every_time() -> None:
    event = cloudfront_event("viewer-request", "/home", headers={"Cookie": "session-id=user-42"})
    first = invoke(AB_TESTING, event, base_dir=ROOT)
    second = invoke(AB_TESTING, event, base_dir=ROOT)  # the same event again: invoke leaves it unchanged
    assert first["uri"] in ("/experiment-a/home", "/experiment-b/home")
    assert second["uri"] == first["uri"]
    assert event["Records"][0]["cf"]["request"]["uri"] == "/home"


def test_ab_viewer_response_sets_the_cookie_once() -> None:
    origin_cookie = [("Set-Cookie", "sid=s1; Path=/")]
    new_visitor = cloudfront_event(
        "viewer-response", "/experiment-b/home", headers={"X-Experiment": "b"}, response_headers=origin_cookie
    )
    response = invoke(AB_TESTING, new_visitor, base_dir=ROOT)
    assert values(response, "set-cookie") == [
        "sid=s1; Path=/",
        "experiment=b; Path=/; Max-Age=2592000; Secure; SameSite=Lax",
    ]

    returning = cloudfront_event(
        "viewer-response", "/experiment-b/home", headers={"X-Experiment": "b", "Cookie": "experiment=b"}
    )
    assert values(invoke(AB_TESTING, returning, base_dir=ROOT), "set-cookie") == []


# spa_index.py


@pytest.mark.parametrize(
    ("uri", "rewritten"),
    [
        ("/settings/profile", "/index.html"),
        ("/", "/index.html"),
        ("/docs/", "/docs/index.html"),
        ("/assets/app.js", "/assets/app.js"),
        ("/users/jane.doe", "/users/jane.doe"),
    ],
)
def test_spa_routes_are_rewritten_and_files_are_not(uri: str, rewritten: str) -> None:
    request = invoke(SPA_INDEX, cloudfront_event("origin-request", uri), base_dir=ROOT)
    assert request["uri"] == rewritten


def test_spa_rewrite_keeps_the_query_string() -> None:
    request = invoke(SPA_INDEX, cloudfront_event("origin-request", "/search?q=edge&page=2"), base_dir=ROOT)
    assert (request["uri"], request["querystring"]) == ("/index.html", "q=edge&page=2")


# origin_by_device.py


@pytest.mark.parametrize(("uri", "rewritten"), [("/shop", "/mobile/shop"), ("/mobile/shop", "/mobile/shop")])
def test_mobile_viewers_get_mobile_pages(uri: str, rewritten: str) -> None:
    event = cloudfront_event("origin-request", uri, headers={"CloudFront-Is-Mobile-Viewer": "true"})
    assert invoke(ORIGIN_BY_DEVICE, event, base_dir=ROOT)["uri"] == rewritten


def test_mobile_user_agent_at_viewer_request() -> None:
    phone = cloudfront_event("viewer-request", "/shop", headers={"User-Agent": "Mozilla/5.0 (iPhone) Mobile/15E148"})
    assert invoke(ORIGIN_BY_DEVICE, phone, base_dir=ROOT)["uri"] == "/mobile/shop"
    desktop = cloudfront_event("origin-request", "/shop", headers={"CloudFront-Is-Mobile-Viewer": "false"})
    assert invoke(ORIGIN_BY_DEVICE, desktop, base_dir=ROOT)["uri"] == "/shop"


def test_x_origin_switches_origin_and_host() -> None:
    event = cloudfront_event("origin-request", "/", headers={"X-Origin": "eu"})
    request = invoke(ORIGIN_BY_DEVICE, event, base_dir=ROOT)
    custom = request["origin"]["custom"]
    assert (custom["domainName"], custom["path"], custom["protocol"]) == ("eu.origin.example.com", "/site", "https")
    assert request["headers"]["host"] == [{"key": "Host", "value": "eu.origin.example.com"}]
    assert "x-origin" not in request["headers"]


def test_x_origin_cannot_name_an_unlisted_origin() -> None:
    event = cloudfront_event("origin-request", "/", headers={"X-Origin": "evil.example"})
    request = invoke(ORIGIN_BY_DEVICE, event, base_dir=ROOT)
    assert request["origin"]["custom"]["domainName"] == "origin.example.com"  # the distribution's origin
    assert values(request, "host") == ["origin.example.com"]
    assert "x-origin" not in request["headers"]


# querystring_normalise.py


@pytest.mark.parametrize(
    ("query", "normalised"),
    [
        ("b=2&A=1", "a=1&b=2"),
        ("q=shoes&utm_source=news&utm_medium=mail&gclid=x&fbclid=y", "q=shoes"),
        ("tag=b&tag=a&&sort=", "sort=&tag=b&tag=a"),
        ("Q=caf%C3%A9&%C3%89T%C3%89=1", "%C3%89t%C3%89=1&q=caf%C3%A9"),
    ],
)
def test_querystring_is_normalised(query: str, normalised: str) -> None:
    request = invoke(QUERYSTRING_NORMALISE, cloudfront_event("viewer-request", f"/search?{query}"), base_dir=ROOT)
    assert request["querystring"] == normalised


def test_querystring_normalisation_leaves_the_rest_alone() -> None:
    event = cloudfront_event("viewer-request", "/Search/?B=1", headers={"Accept-Language": "en"})
    request = invoke(QUERYSTRING_NORMALISE, event, base_dir=ROOT)
    assert (request["uri"], request["querystring"]) == ("/Search/", "b=1")
    assert values(request, "accept-language") == ["en"]


# generated_response.py


def test_healthz_is_answered_at_the_edge() -> None:
    event = cloudfront_event("viewer-request", "/healthz")
    response = invoke(GENERATED_RESPONSE, event, base_dir=ROOT)
    assert response["status"] == "200"
    assert values(response, "content-type") == ["application/json"]
    assert values(response, "cache-control") == ["no-store"]
    body = json.loads(response["body"])
    config = event["Records"][0]["cf"]["config"]
    assert body["status"] == "ok"
    assert (body["distributionId"], body["requestId"]) == (config["distributionId"], config["requestId"])


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_robots_txt_keeps_crawlers_off(method: str) -> None:
    response = invoke(
        GENERATED_RESPONSE, cloudfront_event("viewer-request", "/robots.txt", method=method), base_dir=ROOT
    )
    assert response["status"] == "200"
    assert values(response, "content-type") == ["text/plain; charset=utf-8"]
    assert response["body"] == "User-agent: *\nDisallow: /\n"


def test_other_requests_are_passed_on() -> None:
    request = invoke(GENERATED_RESPONSE, cloudfront_event("viewer-request", "/healthz", method="POST"), base_dir=ROOT)
    assert "status" not in request
    assert (request["method"], request["uri"]) == ("POST", "/healthz")


def test_maintenance_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # A callable works as well as a reference; it is not re-imported, so a patched setting holds.
    monkeypatch.setattr(generated_response, "MAINTENANCE", True)
    response = invoke(generated_response.handler, cloudfront_event("viewer-request", "/shop"))
    assert (response["status"], response["statusDescription"]) == ("503", "Service Unavailable")
    assert values(response, "retry-after") == ["300"]
    assert "We'll be back soon" in response["body"]
    assert invoke(generated_response.handler, cloudfront_event("viewer-request", "/healthz"))["status"] == "200"


# form_honeypot.py

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form_event(body: bytes | str, headers: dict[str, str] = FORM) -> dict[str, Any]:
    return dict(cloudfront_event("viewer-request", "/contact", method="POST", headers=headers, body=body))


def test_honeypot_filled_in_is_a_403() -> None:
    response = invoke(FORM_HONEYPOT, form_event("name=Bot&website=spam"), base_dir=ROOT)
    assert (response["status"], values(response, "content-type")) == ("403", ["text/plain; charset=utf-8"])


def test_honeypot_left_empty_is_dropped_from_the_form() -> None:
    request = invoke(FORM_HONEYPOT, form_event("name=Ada&website="), base_dir=ROOT)
    assert request["body"] == {
        "inputTruncated": False,
        "action": "replace",
        "encoding": "text",
        "data": "name=Ada",
    }


@pytest.mark.parametrize(
    "event",
    [
        form_event("website=x", headers={"Content-Type": "text/plain"}),  # not a form
        form_event("website=x" + "&a=" + "b" * 41 * 1024),  # truncated at 40 KB: cannot be read whole
        cloudfront_event("viewer-request", "/contact", method="POST", headers=FORM),  # no include body
    ],
    ids=["not-a-form", "truncated", "no-body"],
)
def test_honeypot_lets_what_it_cannot_read_through(event: dict[str, Any]) -> None:
    request = invoke(FORM_HONEYPOT, event, base_dir=ROOT)
    assert "status" not in request
    assert request.get("body", {}).get("action", "read-only") == "read-only"


# cors_headers.py

APP = "https://app.example.com"


def test_cors_allows_a_listed_origin() -> None:
    event = cloudfront_event("origin-response", "/api/items", headers={"Origin": APP})
    response = invoke(CORS_HEADERS, event, base_dir=ROOT)
    assert response["headers"]["access-control-allow-origin"] == [{"key": "Access-Control-Allow-Origin", "value": APP}]
    assert values(response, "access-control-allow-credentials") == ["true"]
    assert values(response, "vary") == ["Origin"]
    assert "access-control-allow-methods" not in response["headers"]  # not a preflight


def test_cors_headers_not_sent_to_other_origins_but_vary_is_merged() -> None:
    event = cloudfront_event(
        "origin-response",
        "/api/items",
        headers={"Origin": "https://evil.example"},
        response_headers={"Content-Type": "application/json", "Vary": "Accept-Encoding"},
    )
    response = invoke(CORS_HEADERS, event, base_dir=ROOT)
    assert "access-control-allow-origin" not in response["headers"]
    assert values(response, "vary") == ["Accept-Encoding, Origin"]


def test_cors_preflight_refused_by_the_origin_becomes_204() -> None:
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT"}
    event = cloudfront_event("origin-response", "/api/items", method="OPTIONS", headers=preflight, status=405)
    response = invoke(CORS_HEADERS, event, base_dir=ROOT)
    assert (response["status"], response["body"]) == ("204", "")
    assert values(response, "access-control-allow-methods") == ["GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"]
    assert values(response, "access-control-max-age") == ["600"]
    assert "content-type" not in response["headers"]


# cache_control.py


@pytest.mark.parametrize(
    ("uri", "status", "content_type", "expected"),
    [
        ("/assets/site.css", 200, "text/css", "public, max-age=31536000, immutable"),
        ("/app.3f9a1c2b.js", 200, "text/javascript", "public, max-age=31536000, immutable"),
        ("/about", 200, "text/html; charset=utf-8", "no-cache"),
        ("/data.json", 200, "application/json", "public, max-age=300"),
        ("/assets/missing.css", 404, "text/html", "public, max-age=10"),
    ],
)
def test_cache_control_default_policy(uri: str, status: int, content_type: str, expected: str) -> None:
    event = cloudfront_event("origin-response", uri, status=status, response_headers={"Content-Type": content_type})
    response = invoke(CACHE_CONTROL, event, base_dir=ROOT)
    assert response["headers"]["cache-control"] == [{"key": "Cache-Control", "value": expected}]


def test_cache_control_of_the_origin_is_kept() -> None:
    event = cloudfront_event("origin-response", "/account", response_headers={"Cache-Control": "private"})
    assert values(invoke(CACHE_CONTROL, event, base_dir=ROOT), "cache-control") == ["private"]


# Mistakes invoke catches, as CloudFront would


def broken_redirect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A redirect CloudFront rejects: its header map is named 'Location', not 'location'."""
    return {"status": 301, "headers": {"Location": [{"key": "Location", "value": "/new-page"}]}}


def test_a_result_cloudfront_rejects_raises_a_validation_error() -> None:
    event = cloudfront_event("viewer-request", "/old-page")
    with pytest.raises(LambdaValidationError, match=r"broken_redirect at viewer-request: .*must be lower case"):
        invoke(broken_redirect, event)
    # lenient=True logs the violation instead of raising, and returns the result as CloudFront received it (the
    # numeric status as its digit string, §2.3)
    assert invoke(broken_redirect, event, lenient=True)["status"] == "301"


def test_a_function_at_the_wrong_trigger_raises_an_execution_error() -> None:
    # security_headers reads the response, which a viewer-request event does not have
    with pytest.raises(LambdaExecutionError, match="at viewer-request raised KeyError") as caught:
        invoke(SECURITY_HEADERS, cloudfront_event("viewer-request"), base_dir=ROOT)
    assert caught.value.handler_traceback is not None
    assert 'event["Records"][0]["cf"]["response"]' in caught.value.handler_traceback
