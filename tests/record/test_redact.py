"""record/redact.py: secrets written as [REDACTED] wherever they would appear in a recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edgeproxy.record.redact import REDACTED, Redactor, custom_header_names, redacted_parameters, unredacted
from edgeproxy.testing import start

SECRETS = {
    "authorization": "Bearer AUTH-SECRET-1",
    "x-api-key": "APIKEY-SECRET-2",
    "x-amz-security-token": "STS-SECRET-3",
    "cookie": "theme=dark; session=COOKIE-SECRET-4",
}
SWITCH_ORIGIN = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["origin"]["custom"]["customHeaders"]["x-switched-secret"] = [{"value": "SWITCHED-SECRET-6"}]
    return request
"""


async def test_no_secret_is_anywhere_in_the_file(tmp_path: Path) -> None:
    async def answer(request: web.Request) -> web.Response:
        response = web.Response(text="ok", status=302)
        response.headers["Set-Cookie"] = "session=SETCOOKIE-SECRET-7; Path=/"
        response.headers["Location"] = "/next?token=LOCATION-SECRET-8&x=1"  # in the header, redirectURL and events
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    (tmp_path / "switch.py").write_text(SWITCH_ORIGIN)
    (tmp_path / "pass.py").write_text(
        "def handler(event, context):\n    return event['Records'][0]['cf']['response']\n"
    )
    recording = tmp_path / "r.har"
    proxy = await start(
        origin=app,
        origin_request=f"{tmp_path}/switch.py:handler",
        viewer_response=f"{tmp_path}/pass.py:handler",
        recording=recording,
        record_mode="all",
        redact=["session", "token"],
    )
    try:
        target = "/p?token=QUERY-SECRET-5&other=kept"
        async with proxy.client.get(target, headers=SECRETS, allow_redirects=False) as response:
            assert response.status == 302
    finally:
        await proxy.close()
    text = recording.read_text()
    secrets = ["AUTH-SECRET-1", "APIKEY-SECRET-2", "STS-SECRET-3", "COOKIE-SECRET-4", "QUERY-SECRET-5"]
    for secret in [*secrets, "SWITCHED-SECRET-6", "SETCOOKIE-SECRET-7", "LOCATION-SECRET-8"]:
        assert secret not in text, secret
    assert f"/next?token={REDACTED}&x=1" in text
    assert "theme=dark" in text  # a cookie not named stays
    assert "other=kept" in text
    assert REDACTED in text


def test_names_values_cookies_and_queries() -> None:
    redactor = Redactor.make(["session", "token"], custom_headers=["X-Origin-Verify"])
    assert redactor.header("Authorization", "Basic x") == REDACTED
    assert redactor.header("x-origin-verify", "shared") == REDACTED
    assert redactor.header("Session", "abc") == REDACTED  # --redact names headers too
    assert redactor.header("Cookie", "a=1; session=abc; b=2") == f"a=1; session={REDACTED}; b=2"
    assert redactor.header("Set-Cookie", "session=abc; Path=/; Secure") == f"session={REDACTED}; Path=/; Secure"
    assert redactor.header("Accept", "*/*") == "*/*"
    assert redactor.query("token=abc&a=1&TOKEN=2&b") == f"token={REDACTED}&a=1&TOKEN={REDACTED}&b"
    assert redactor.url("http://x/p?token=1") == f"http://x/p?token={REDACTED}"
    assert redactor.header("Location", "https://x/p?token=1&a=2#f") == f"https://x/p?token={REDACTED}&a=2#f"
    assert not Redactor.make(defaults=False).redacts_header("authorization")


@pytest.mark.parametrize("multi", [False, True])
def test_alb_events_and_results(multi: bool) -> None:
    redactor = Redactor.make(["token"])
    event: dict[str, Any]
    if multi:
        event = {
            "multiValueHeaders": {"authorization": ["a", "b"]},
            "multiValueQueryStringParameters": {"token": ["1"]},
        }
        assert redactor.event(event) == {
            "multiValueHeaders": {"authorization": [REDACTED, REDACTED]},
            "multiValueQueryStringParameters": {"token": [REDACTED]},
        }
    else:
        event = {"headers": {"x-api-key": "k", "host": "h"}, "queryStringParameters": {"token": "1", "a": "2"}}
        assert redactor.event(event) == {
            "headers": {"x-api-key": REDACTED, "host": "h"},
            "queryStringParameters": {"token": REDACTED, "a": "2"},
        }


def test_lambda_at_edge_events_and_the_custom_headers_they_carry() -> None:
    request = {
        "headers": {"authorization": [{"key": "Authorization", "value": "x"}]},
        "querystring": "token=1",
        "origin": {"custom": {"customHeaders": {"x-k": [{"key": "X-K", "value": "v"}]}, "domainName": "d"}},
    }
    event = {"Records": [{"cf": {"request": request}}]}
    redacted = Redactor.make(["token"]).event(event)["Records"][0]["cf"]["request"]
    assert redacted["headers"]["authorization"][0]["value"] == REDACTED
    assert redacted["querystring"] == f"token={REDACTED}"
    assert redacted["origin"]["custom"]["customHeaders"]["x-k"][0]["value"] == REDACTED
    assert request["querystring"] == "token=1"  # a copy: the event itself is left alone
    assert custom_header_names(event) == {"x-k"}


def test_supplied_values_replace_redacted_ones_of_their_name_only() -> None:
    recorded = [
        ("Authorization", REDACTED),
        ("X-Api-Key", REDACTED),
        ("Cookie", f"theme=dark; session={REDACTED}; other={REDACTED}"),
        ("X-Plain", "as recorded"),
    ]
    supplied = {"authorization": "Basic abc", "x-plain": "not this", "cookie": "session=s3cret; theme=light"}
    headers, still = unredacted(recorded, supplied)
    assert headers == [
        ("Authorization", "Basic abc"),
        ("X-Api-Key", REDACTED),
        ("Cookie", f"theme=dark; session=s3cret; other={REDACTED}"),
        ("X-Plain", "as recorded"),
    ]
    assert still == ["header X-Api-Key", "cookie other"]
    assert redacted_parameters(f"a=1&token={REDACTED}&b") == ["query parameter token"]
