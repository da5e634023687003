"""The ALB sample functions in ``sample_functions/alb_*.py``, each through the ALB facade on a real socket, in both
header modes. ``alb_powertools.py`` is Powertools for AWS Lambda's ``ALBResolver``, a third-party framework, run
unmodified."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import pytest

from edgeproxy.alb import HEALTH
from edgeproxy.config import HealthCheck
from tests.conftest import BINARY, HandlerWriter, ProxyFactory, raw_url, wait_for_checks

SAMPLES = Path(__file__).parents[1] / "sample_functions"
MODES = pytest.mark.parametrize("multi_value", [False, True], ids=["single-value", "multi-value"])


def ref(name: str) -> str:
    return f"{SAMPLES / name}.py:handler"


# alb_echo.py


@MODES
async def test_echo_shows_what_the_load_balancer_sent(multi_value: bool, alb_proxy: ProxyFactory) -> None:
    client = await alb_proxy(ref("alb_echo"), multi_value=multi_value)
    response = await client.session.post(
        raw_url(client, "/a%2Fb/c?x=hello%20world&x=2&y=a+b"),
        data=b"\x00\x01\x02",
        headers={"Content-Type": "application/octet-stream", "X-Forwarded-For": "192.0.2.1"},
    )
    assert response.status == 200
    assert response.reason == "OK"
    assert response.headers["Content-Type"] == "application/json"
    echo = await response.json()
    assert echo["mode"] == ("multi-value" if multi_value else "single-value")
    assert (echo["method"], echo["path"]) == ("POST", "/a%2Fb/c")
    if multi_value:
        assert echo["query"] == {"x": ["hello%20world", "2"], "y": ["a+b"]}
        assert echo["decoded_query"] == {"x": ["hello world", "2"], "y": ["a b"]}
    else:
        assert echo["query"] == {"x": ["2"], "y": ["a+b"]}
    assert echo["headers"]["x-forwarded-for"] == ["192.0.2.1, 127.0.0.1"]
    assert (echo["body_base64_encoded"], echo["body_bytes"]) == (True, 3)


@MODES
async def test_echo_answers_the_health_checker(multi_value: bool, alb_proxy: ProxyFactory) -> None:
    check = HealthCheck(enabled=True, interval=0.01)
    client = await alb_proxy(ref("alb_echo"), multi_value=multi_value, health_check=check)
    await wait_for_checks(client, 1)
    assert client.app[HEALTH].state == "healthy"


# alb_cookies.py


@MODES
async def test_cookies_sets_two_cookies_in_either_mode(multi_value: bool, alb_proxy: ProxyFactory) -> None:
    client = await alb_proxy(ref("alb_cookies"), multi_value=multi_value)
    response = await client.get("/prefs?theme=dark&lang=de", headers={"Cookie": "theme=light; seen=1"})
    assert response.status == 200
    cookies = sorted(response.headers.getall("Set-Cookie"))
    assert len(cookies) == 2
    assert cookies[0].startswith("lang=de; Path=/")
    assert cookies[1].startswith("theme=dark; Path=/")
    body = await response.json()
    assert body["received"] == {"theme": "light", "seen": "1"}
    assert (await client.get("/other")).status == 404


# alb_powertools.py: a third-party framework, unmodified


@MODES
async def test_powertools_routes(multi_value: bool, alb_proxy: ProxyFactory) -> None:
    client = await alb_proxy(ref("alb_powertools"), multi_value=multi_value)
    response = await client.get("/")
    assert (response.status, await response.json()) == (200, {"status": "ok"})
    assert response.headers["Server"] == "awselb/2.0"

    hello = await client.session.get(raw_url(client, "/hello/J%C3%BCrgen"))
    assert (await hello.json())["message"] == "hello J%C3%BCrgen"  # the path keeps its encoding (§7.1)

    search = await client.session.get(raw_url(client, "/search?q=hello%20world&q=b%26c"))
    expected = ["hello world", "b&c"] if multi_value else ["b&c"]  # single-value mode: the last one wins
    assert (await search.json())["q"] == expected

    missing = await client.get("/nowhere")
    assert missing.status == 404


@MODES
async def test_powertools_json_post_and_read_back(multi_value: bool, alb_proxy: ProxyFactory) -> None:
    client = await alb_proxy(ref("alb_powertools"), multi_value=multi_value)
    created = await client.post("/notes", json={"text": "buy milk"})
    assert created.status == 201
    location = created.headers["Location"]
    assert location.startswith("/notes/")
    note = await (await client.get(location)).json()
    assert note["text"] == "buy milk"
    assert (await client.post("/notes", json=[1, 2])).status == 400


@MODES
async def test_powertools_binary_upload_and_download(multi_value: bool, alb_proxy: ProxyFactory) -> None:
    client = await alb_proxy(ref("alb_powertools"), multi_value=multi_value)
    name = f"blob-{multi_value}.bin"
    uploaded = await client.put(f"/files/{name}", data=io.BytesIO(BINARY), headers={"Content-Type": "image/png"})
    assert await uploaded.json() == {"name": name, "bytes": len(BINARY), "sha256": hashlib.sha256(BINARY).hexdigest()}
    downloaded = await client.get(f"/files/{name}")
    assert downloaded.headers["Content-Type"] == "image/png"
    assert await downloaded.read() == BINARY
    assert downloaded.headers["Content-Length"] == str(len(BINARY))


async def test_powertools_two_cookies_with_multi_value_headers(alb_proxy: ProxyFactory) -> None:
    client = await alb_proxy(ref("alb_powertools"), multi_value=True)
    response = await client.post("/login")
    assert response.status == 200
    cookies = sorted(response.headers.getall("Set-Cookie"))
    assert [cookie.split(";")[0] for cookie in cookies] == ["csrf=t0k3n", "session=s3ss10n"]


async def test_powertools_answers_health_checks(alb_proxy: ProxyFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client = await alb_proxy(ref("alb_powertools"), health_check=HealthCheck(enabled=True, interval=0.01))
    await wait_for_checks(client, 1)
    assert client.app[HEALTH].state == "healthy"
    assert "is healthy (was initial)" in caplog.text


MANGUM_APP = """
from mangum import Mangum


async def app(scope, receive, send):
    body = f"path={scope['path']} query={scope['query_string'].decode()}".encode()
    headers = [(b"content-type", b"text/plain"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


handler = Mangum(app, lifespan="off")
"""


@MODES
async def test_mangum_asgi_adapter_runs_unmodified(
    multi_value: bool, alb_proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    # Mangum (third-party) calls asyncio.get_event_loop() inside the handler, which works on Lambda's main thread;
    # it must work on edgeproxy's handler threads too. It also decodes the path and, in single-value mode, gets
    # the last of repeated query parameters and sends cookies under differently cased keys: its own reading of ALB.
    client = await alb_proxy(write_handler("asgi", MANGUM_APP), multi_value=multi_value)
    response = await client.session.get(raw_url(client, "/a%20b?x=1&x=2"))
    assert response.status == 200
    assert await response.text() == ("path=/a b query=x=1&x=2" if multi_value else "path=/a b query=x=2")
    assert sorted(response.headers.getall("Set-Cookie")) == ["a=1", "b=2"]
