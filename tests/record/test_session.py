"""record/session.py: serving with a recording in vcrpy's record modes, through `edgeproxy serve` as a user runs it.

The main test: record a mix of traffic through four handlers, SIGKILL the proxy, stop the origin, serve again from
the recording in mode `none`, and every viewer response comes back byte for byte (apart from the volatile headers).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from edgeproxy.record.har import read
from edgeproxy.testing import start

BIG = os.urandom(100 * 1024)
GZIPPED = gzip.compress(b"a gzip body " * 500)
VOLATILE = {"date", "age", "x-amz-cf-id", "x-amz-cf-pop", "via"}

HANDLERS = {
    "viewer_request.py": """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] == "/generated":
        return {"status": "200", "statusDescription": "Made Here", "headers": {
            "content-type": [{"value": "text/plain"}]}, "body": "generated at the edge"}
    request["headers"]["x-seen-by"] = [{"value": "viewer-request"}]
    return request
""",
    "origin_request.py": """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] == "/broken":
        request["headers"]["via"] = [{"value": "1.1 changed"}]  # read-only: CloudFront's 502
    return request
""",
    "origin_response.py": """
def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-origin-response"] = [{"value": "yes"}]
    return response
""",
    "viewer_response.py": """
def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-viewer-response"] = [{"value": "yes"}]
    return response
""",
}


@dataclass(frozen=True)
class Call:
    method: str
    target: str
    body: bytes | None = None


MIX = [
    Call("GET", "/big"),
    Call("GET", "/gzip"),
    Call("GET", "/cookies"),
    Call("GET", "/missing"),
    Call("GET", "/query?tag=a&tag=b&q=x%20y"),
    Call("POST", "/upload", bytes(range(256)) * 40),
    Call("GET", "/generated"),
    Call("GET", "/broken"),
    Call("GET", "/query?tag=a&tag=b&q=x%20y"),  # again: the same answer, in order
]


def origin_app() -> web.Application:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="application/octet-stream")

    async def compressed(request: web.Request) -> web.Response:
        return web.Response(body=GZIPPED, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    async def cookies(request: web.Request) -> web.Response:
        response = web.Response(text="cookies", reason="Cookies Set")
        response.headers.add("Set-Cookie", "a=1; Path=/")
        response.headers.add("Set-Cookie", "b=2; Path=/; HttpOnly")
        return response

    async def query(request: web.Request) -> web.Response:
        return web.json_response({"query": request.query_string, "tags": request.query.getall("tag", [])})

    async def upload(request: web.Request) -> web.Response:
        data = await request.read()
        return web.json_response({"size": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    async def anything(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such thing")

    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/gzip", compressed)
    app.router.add_get("/cookies", cookies)
    app.router.add_get("/query", query)
    app.router.add_post("/upload", upload)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


def write_config(folder: Path, origin_url: str) -> Path:
    for name, source in HANDLERS.items():
        (folder / name).write_text(source)
    functions = "\n".join(f'{name.removesuffix(".py").replace("_", "-")} = "{name}:handler"' for name in HANDLERS)
    config = folder / "edgeproxy.toml"
    config.write_text(
        f'[origins.app]\nurl = "{origin_url}"\ncustom_headers = {{ x-origin-verify = "origin-secret-123" }}\n'
        '[default_behavior]\norigin = "app"\n'
        'allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]\n'
        f"[default_behavior.functions]\n{functions}\n"
    )
    return config


class Proxy:
    """`edgeproxy serve` in a subprocess."""

    def __init__(self, *arguments: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgeproxy.cli", "serve", *arguments, "--port", "0"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("edgeproxy listening on "):
            self.process.kill()
            raise AssertionError(self.stderr())
        self.url = line.rsplit(" ", 1)[1]

    def stderr(self) -> str:
        """Everything it wrote to stderr, once it has exited."""
        assert self.process.stderr is not None
        self.process.wait(timeout=10)
        return self.process.stderr.read()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


Answer = tuple[int, str, list[tuple[str, str]], bytes]


async def ask(url: str, calls: list[Call]) -> list[Answer]:
    answers = []
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for call in calls:
            async with session.request(call.method, url + call.target, data=call.body) as response:
                headers = [(name.decode(), value.decode()) for name, value in response.raw_headers]
                answers.append((response.status, response.reason or "", headers, await response.read()))
    return answers


def without_volatile(answer: Answer) -> Answer:
    status, reason, headers, body = answer
    ids = [value for name, value in headers if name.lower() == "x-amz-cf-id"]
    for request_id in ids:
        body = body.replace(request_id.encode(), b"<id>")
    return status, reason, [(n, v) for n, v in headers if n.lower() not in VOLATILE], body


@pytest.fixture
def proxies() -> Iterator[list[Proxy]]:
    started: list[Proxy] = []
    yield started
    for proxy in started:
        proxy.close()


async def test_record_kill_and_replay_offline_byte_for_byte(
    tmp_path: Path, aiohttp_server: AiohttpServer, proxies: list[Proxy]
) -> None:
    origin = await aiohttp_server(origin_app())
    config = write_config(tmp_path, str(origin.make_url("")).rstrip("/"))
    recording = tmp_path / "session.har"
    proxies.append(Proxy("--config", str(config), "--recording", str(recording), "--record-mode", "all", cwd=tmp_path))
    live = await ask(proxies[-1].url, MIX)
    assert [answer[0] for answer in live] == [200, 200, 200, 404, 200, 200, 200, 502, 200]
    proxies[-1].kill()  # SIGKILL: no chance to finish the file
    await origin.close()  # and no origin any more

    entries = read(recording).entries
    assert len(entries) == len(MIX)
    proxies.append(Proxy("--config", str(config), "--recording", str(recording), "--record-mode", "none", cwd=tmp_path))
    replayed = await ask(proxies[-1].url, MIX)
    assert [without_volatile(answer) for answer in replayed] == [without_volatile(answer) for answer in live]
    assert replayed[0][3] == BIG
    assert replayed[1][3] == GZIPPED  # still compressed, as the origin sent it
    assert [v for n, v in replayed[2][2] if n == "Set-Cookie"] == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
    assert json.loads(replayed[5][3]) == {"size": 10240, "sha256": hashlib.sha256(bytes(range(256)) * 40).hexdigest()}
    assert "origin-secret-123" not in recording.read_text()  # the origin custom header is redacted


async def test_mode_none_answers_502_for_what_is_not_recorded_and_names_the_nearest(
    tmp_path: Path, aiohttp_server: AiohttpServer, proxies: list[Proxy]
) -> None:
    origin = await aiohttp_server(origin_app())
    config = write_config(tmp_path, str(origin.make_url("")).rstrip("/"))
    recording = tmp_path / "r.har"
    proxies.append(Proxy("--config", str(config), "--recording", str(recording), cwd=tmp_path))  # once: records
    await ask(proxies[-1].url, [Call("GET", "/query?q=1")])
    proxies[-1].process.send_signal(signal.SIGINT)
    assert "record mode all" in proxies[-1].stderr()
    proxies.append(Proxy("--config", str(config), "--recording", str(recording), cwd=tmp_path))  # once: replays
    [answer] = await ask(proxies[-1].url, [Call("GET", "/query?q=2")])
    assert (answer[0], dict(answer[2])["X-Cache"]) == (502, "Error from cloudfront")
    proxies[-1].process.send_signal(signal.SIGINT)
    log = proxies[-1].stderr()
    assert "record mode none" in log
    assert "GET http://127.0.0.1:" in log
    assert "/query?q=2 matches no recorded origin request (on method, host, path, query); nearest recorded:" in log
    assert "query 'q=1' != 'q=2'" in log


async def new_episodes_through_a_counting_origin(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> tuple[list[str], tuple[str, ...]]:
    """An origin answering ``/count`` with ``answer N`` (N its hits so far, their queries in the list), and the
    arguments serving it with ``tmp_path/r.har`` in mode new_episodes."""
    hits: list[str] = []

    async def count(request: web.Request) -> web.Response:
        hits.append(request.query_string)
        return web.Response(text=f"answer {len(hits)}")

    app = web.Application()
    app.router.add_get("/count", count)
    origin = await aiohttp_server(app)
    config = write_config(tmp_path, str(origin.make_url("")).rstrip("/"))
    recording = tmp_path / "r.har"
    return hits, ("--config", str(config), "--recording", str(recording), "--record-mode", "new_episodes")


async def test_new_episodes_replays_what_is_recorded_and_appends_the_rest(
    tmp_path: Path, aiohttp_server: AiohttpServer, proxies: list[Proxy]
) -> None:
    hits, arguments = await new_episodes_through_a_counting_origin(tmp_path, aiohttp_server)
    recording = tmp_path / "r.har"
    proxies.append(Proxy(*arguments, cwd=tmp_path))
    await ask(proxies[-1].url, [Call("GET", "/count?n=1")])
    proxies[-1].kill()
    proxies.append(Proxy(*arguments, cwd=tmp_path))
    first, second, again = await ask(proxies[-1].url, [Call("GET", f"/count?n={n}") for n in (1, 2, 2)])
    assert (first[3], second[3], again[3]) == (b"answer 1", b"answer 2", b"answer 2")  # replayed, live, repeated
    assert hits == ["n=1", "n=2"]
    proxies[-1].kill()
    entries = read(recording).entries
    assert [entry["request"]["url"].rsplit("/", 1)[1] for entry in entries] == ["count?n=1", "count?n=2"]


async def test_a_recording_cut_mid_entry_keeps_every_exchange_before_the_cut(
    tmp_path: Path, aiohttp_server: AiohttpServer, proxies: list[Proxy]
) -> None:
    origin = await aiohttp_server(origin_app())
    config = write_config(tmp_path, str(origin.make_url("")).rstrip("/"))
    recording = tmp_path / "r.har"
    proxies.append(Proxy("--config", str(config), "--recording", str(recording), "--record-mode", "all", cwd=tmp_path))
    await ask(proxies[-1].url, [Call("GET", "/query?n=1"), Call("GET", "/query?n=2")])
    proxies[-1].kill()
    whole = recording.read_bytes()
    recording.write_bytes(whole[: len(whole) - 40])  # power loss in the middle of the last entry
    proxies.append(Proxy("--config", str(config), "--recording", str(recording), "--record-mode", "none", cwd=tmp_path))
    [first] = await ask(proxies[-1].url, [Call("GET", "/query?n=1")])
    assert first[0] == 200
    proxies[-1].process.send_signal(signal.SIGINT)
    assert "was cut short: replaying the 1 exchanges that completed" in proxies[-1].stderr()


async def test_new_episodes_on_a_file_cut_short_rewrites_it_whole_and_replays_from_it(
    tmp_path: Path, aiohttp_server: AiohttpServer, proxies: list[Proxy]
) -> None:
    hits, arguments = await new_episodes_through_a_counting_origin(tmp_path, aiohttp_server)
    recording = tmp_path / "r.har"
    proxies.append(Proxy(*arguments, cwd=tmp_path))
    await ask(proxies[-1].url, [Call("GET", f"/count?n={n}") for n in (1, 2)])
    proxies[-1].kill()
    whole = recording.read_bytes()
    recording.write_bytes(whole[: len(whole) - 40])  # cut in the middle of the second entry
    proxies.append(Proxy(*arguments, cwd=tmp_path))
    first, second = await ask(proxies[-1].url, [Call("GET", f"/count?n={n}") for n in (1, 3)])
    assert (first[3], second[3]) == (b"answer 1", b"answer 3")  # replayed from the rewritten file, then live
    proxies[-1].kill()
    assert hits == ["n=1", "n=2", "n=3"]
    rewritten = read(recording)
    assert not rewritten.cut_short
    assert [entry["request"]["url"].rsplit("/", 1)[1] for entry in rewritten.entries] == ["count?n=1", "count?n=3"]
    assert not list(tmp_path.glob("*rewrite*"))  # noqa: ASYNC240 (a test, after the proxy has gone)


async def test_match_on_body_reads_a_json_body_as_values(tmp_path: Path) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"got {await request.text()}")

    app = web.Application()
    app.router.add_post("/api", echo)
    recording = tmp_path / "r.har"
    json_type = {"Content-Type": "application/json"}
    for mode, body, status in (
        ("all", '{"a": 1, "b": [1, 2]}', 200),
        ("none", '{"b":[1,2],  "a":1}', 200),  # the same values: answered from the recording
        ("none", '{"a": 1, "b": [2, 1]}', 502),
    ):
        proxy = await start(origin=app, recording=recording, record_mode=mode, match_on=["method", "path", "body"])
        try:
            async with proxy.client.post("/api", data=body, headers=json_type) as response:
                assert response.status == status, (mode, body)
                if status == 200:
                    assert await response.text() == 'got {"a": 1, "b": [1, 2]}'
        finally:
            await proxy.close()
