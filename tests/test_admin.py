"""The admin listener: the cache's listing and invalidations as JSON, over real sockets; ``edgeproxy serve
--admin-port`` with ``edgeproxy invalidate``; ``proxy.cache`` and ``proxy.invalidate`` in the testing API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from edgeproxy import admin, alb, serving
from edgeproxy.cli import main
from edgeproxy.config import Association, TargetGroup
from edgeproxy.server import Options, create_app
from edgeproxy.testing import EdgeProxyFactory
from tests.conftest import PASS_THROUGH, Clock, HandlerWriter, ScriptedOrigin, distribution_from


def cached_toml(origin: str) -> str:
    return f'[origins.app]\nurl = "{origin}"\n[default_behavior]\norigin = "app"\ncache_policy = "CachingOptimized"\n'


async def test_the_admin_app_lists_the_cache_and_invalidates(
    scripted: ScriptedOrigin, aiohttp_client: AiohttpClient, tmp_path: Path, clock: Clock
) -> None:
    for path in ("/images/a.png", "/images/b.png", "/index.html"):
        scripted.answer(path)
    app = create_app(distribution_from(tmp_path, cached_toml(scripted.url)), Options(clock=clock))
    proxy = await aiohttp_client(app)
    control = await aiohttp_client(admin.admin_app(app))
    for path in ("/images/a.png", "/images/b.png", "/index.html"):
        await (await proxy.get(path)).read()
    clock.advance(3)
    listing = await (await control.get("/cache")).json()
    assert [
        (entry["path"], entry["status"], entry["age"], entry["ttl"], entry["fresh"]) for entry in listing["entries"]
    ] == [
        ("/images/a.png", 200, 3, 86400, True),
        ("/images/b.png", 200, 3, 86400, True),
        ("/index.html", 200, 3, 86400, True),
    ]
    assert listing["bytes"] > 0
    made = await control.post("/invalidations", json={"paths": ["/images/*"]})
    answer = await made.json()
    assert (made.status, answer["status"], answer["invalidated"], answer["paths"]) == (
        201,
        "Completed",
        2,
        ["/images/*"],
    )
    assert answer["id"].startswith("I")
    assert (await proxy.get("/images/a.png")).headers["X-Cache"] == "Miss from cloudfront"
    assert (await proxy.get("/index.html")).headers["X-Cache"] == "Hit from cloudfront"
    assert control.app[admin.OBSERVERS] is app[serving.OBSERVERS]  # an inspector attaches its observer there
    assert control.app[admin.PROXY] is app


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "the body is JSON"),
        ('{"paths": []}', "one or more"),
        ('{"paths": ["images/a.png"]}', "starts with '/'"),
        ("[" * 100_000 + "]" * 100_000, "the body is JSON"),  # nested past the decoder: not its traceback
    ],
)
async def test_a_bad_invalidation_is_a_400_saying_why(
    body: str, problem: str, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    app = create_app(distribution_from(tmp_path, cached_toml("http://127.0.0.1:1")))
    control = await aiohttp_client(admin.admin_app(app))
    response = await control.post("/invalidations", data=body)
    assert response.status == 400
    assert problem in (await response.json())["error"]


async def test_unknown_paths_and_methods_are_json_not_aiohttps_pages(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    app = create_app(distribution_from(tmp_path, cached_toml("http://127.0.0.1:1")))
    control = await aiohttp_client(admin.admin_app(app))
    missing = await control.get("/nonexistent")
    assert (missing.status, await missing.json()) == (404, {"error": "404 Not Found"})
    wrong = await control.delete("/cache")
    assert (wrong.status, await wrong.json()) == (405, {"error": "405 Method Not Allowed"})
    assert "GET" in wrong.headers["Allow"]


async def test_an_alb_has_no_cache(aiohttp_client: AiohttpClient, write_handler: HandlerWriter) -> None:
    target = Association(
        write_handler("t", "def handler(event, context):\n    return {'statusCode': 200}\n"), Path(), "t", "k"
    )
    control = await aiohttp_client(admin.admin_app(alb.create_app(TargetGroup(target=target))))
    response = await control.get("/cache")
    assert (response.status, (await response.json())["error"]) == (404, "an ALB target group has no cache")


async def test_the_testing_api_lists_and_invalidates(
    scripted: ScriptedOrigin, edgeproxy: EdgeProxyFactory, clock: Clock
) -> None:
    scripted.answer("/images/a.png")
    scripted.answer("/images/a.png?size=2")
    proxy = await edgeproxy(origin=scripted.url, cache_policy="CachingOptimized", clock=clock)
    await (await proxy.client.get("/images/a.png")).read()
    [entry] = proxy.cache
    assert (entry.key.url, entry.status, entry.age, entry.ttl) == ("/images/a.png", 200, 0, 86400)
    assert proxy.invalidate("/images/b.png") == 0
    assert proxy.invalidate("/images/*") == 1
    assert proxy.cache == []
    with pytest.raises(ValueError, match="starts with '/'"):
        proxy.invalidate("images/*")


def test_serve_with_an_admin_port_and_edgeproxy_invalidate(
    scripted_process: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, admin_url = scripted_process
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def x_cache(path: str) -> str:
        with opener.open(url + path, timeout=10) as response:
            response.read()
            return str(response.headers["X-Cache"])

    assert [x_cache("/a"), x_cache("/a")] == ["Miss from cloudfront", "Hit from cloudfront"]
    with opener.open(admin_url + "/cache", timeout=10) as response:
        assert [entry["path"] for entry in json.loads(response.read())["entries"]] == ["/a"]
    assert main(["invalidate", "--admin", admin_url, "/a"]) == 0
    assert "Completed: 1 cached object(s) removed" in capsys.readouterr().out
    assert x_cache("/a") == "Miss from cloudfront"
    assert main(["invalidate", "--admin", admin_url, "a"]) == 2
    assert "starts with '/'" in capsys.readouterr().err


def test_invalidate_says_when_the_admin_listener_cannot_be_reached(
    unused_tcp_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["invalidate", "--admin", f"http://127.0.0.1:{unused_tcp_port}", "/*"]) == 1
    assert "cannot reach" in capsys.readouterr().err


@pytest.fixture
def scripted_process(tmp_path: Path, write_handler: HandlerWriter) -> Iterator[tuple[str, str]]:
    """``edgeproxy serve --port 0 --admin-port 0`` in front of a folder origin: (its URL, its admin URL)."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a").write_text("a")
    ref = write_handler("pass", PASS_THROUGH)
    (tmp_path / "edgeproxy.toml").write_text(
        '[origins.site]\ndirectory = "site"\n[default_behavior]\norigin = "site"\ncache_policy = "CachingOptimized"\n'
        f'[default_behavior.functions]\nviewer-response = "{ref}"\n'
    )
    command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--config", "edgeproxy.toml", "--port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [*command, "--admin-port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None
            listening = process.stdout.readline().strip()
            admin_line = process.stdout.readline().strip()
            assert listening.startswith("edgeproxy listening on http://127.0.0.1:")
            assert admin_line.startswith("edgeproxy inspector on http://127.0.0.1:")
            yield listening.rsplit(" ", 1)[1], admin_line.rsplit(" ", 1)[1]
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            process.kill()
