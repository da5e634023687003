"""record/golden.py: golden replays of a recording through the current distribution, and of a browser's HAR."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer

from edgeproxy import replay
from edgeproxy.exchange import Exchange, ViewerRequest
from edgeproxy.record.golden import REJECTED_NOTE, _Exchanges, _shares, decoder
from edgeproxy.record.har import RecordingError, read
from edgeproxy.testing import start

FIXTURES = Path(__file__).parents[2] / "fixtures" / "har"
PASS = """
def handler(event, context):
    cf = event["Records"][0]["cf"]
    return cf.get("response") or cf["request"]
"""
VERSIONED = """
VERSION = "{version}"

def handler(event, context):
    cf = event["Records"][0]["cf"]
    if cf["request"]["uri"] == "/a":
        cf["response"]["headers"]["x-version"] = [{{"value": VERSION}}]
    return cf["response"]
"""


def origin_app() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=f"page {request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def write_distribution(folder: Path, origin_url: str, version: str) -> Path:
    (folder / "pass.py").write_text(PASS)
    (folder / "versioned.py").write_text(VERSIONED.format(version=version))
    config = folder / "edgeproxy.toml"
    config.write_text(
        f'[origins.app]\nurl = "{origin_url}"\n[default_behavior]\norigin = "app"\n'
        "[default_behavior.functions]\n"
        'viewer-request = "pass.py:handler"\norigin-request = "pass.py:handler"\n'
        'origin-response = "pass.py:handler"\nviewer-response = "versioned.py:handler"\n'
    )
    return config


async def record_through(config: Path, recording: Path, targets: Iterable[str]) -> None:
    """GET each target through the distribution (or target group) of ``config``, recording every exchange."""
    proxy = await start(config_file=config, recording=recording, record_mode="all")
    try:
        for target in targets:
            async with proxy.client.get(target) as response:
                assert response.status == 200
    finally:
        await proxy.close()


def run_replay(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeproxy.cli", "replay", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_changed_handler_is_reported_at_exactly_the_entries_it_changed(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    origin = await aiohttp_server(origin_app())
    origin_url = str(origin.make_url("")).rstrip("/")
    config = write_distribution(tmp_path, origin_url, version="1")
    recording = tmp_path / "golden.har"
    await record_through(config, recording, ("/a", "/b", "/c?x=1"))
    await origin.close()  # replay answers origin requests from the recording

    unchanged = run_replay(str(recording), "--config", str(config), cwd=tmp_path)
    assert (unchanged.returncode, unchanged.stdout.strip()) == (0, "replay: 3 same, 0 differ"), unchanged.stderr

    write_distribution(tmp_path, origin_url, version="2")
    changed = run_replay(str(recording), "--config", str(config), cwd=tmp_path)
    assert changed.returncode == 1, changed.stderr
    lines = changed.stdout.strip().splitlines()
    assert lines[0] == "#1 GET /a: 200 recorded, 200 replayed"
    assert "  header X-Version: recorded '1', replayed '2'" in lines
    assert '  viewer-response result $.headers.x-version[0].value: recorded "1", replayed "2"' in lines
    assert lines[-1] == "replay: 2 same, 1 differ"
    assert not any(line.startswith(("#2", "#3")) for line in lines)

    as_json = run_replay(str(recording), "--config", str(config), "--json", cwd=tmp_path)
    report = json.loads(as_json.stdout)
    assert (report["same"], report["differ"]) == (2, 1)

    # An ignored header is ignored in the viewer's response and in the triggers' results alike.
    ignoring = run_replay(str(recording), "--config", str(config), "--ignore-header", "x-VERSION", cwd=tmp_path)
    assert (ignoring.returncode, ignoring.stdout.strip()) == (0, "replay: 3 same, 0 differ"), ignoring.stdout


async def test_a_browsers_har_replays_against_a_live_origin_and_reports_a_status_that_differs(
    aiohttp_server: AiohttpServer,
) -> None:
    async def index(request: web.Request) -> web.Response:
        assert request.query_string == "lang=en&lang=de"
        assert request.headers["Accept-Language"] == "en-GB,en;q=0.9"  # the recorded viewer's own headers
        assert ":authority" not in request.headers
        body = gzip.compress(b"<h1>hello from production</h1>\n\n\n")
        return web.Response(body=body, headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/index.html", index)  # the logo is not there: 404 where production said 200
    origin = await aiohttp_server(app)
    recording = read(FIXTURES / "chrome-shaped.har")
    assert not recording.is_edgeproxys
    report = await replay(FIXTURES / "chrome-shaped.har", origin=str(origin.make_url("")), origin_from="live")
    assert not report.same
    [logo] = report.differ
    assert (logo.method, logo.target, logo.recorded_status, logo.status) == ("GET", "/images/logo.png", 200, 404)
    assert "status: recorded 200, replayed 404" in [str(difference) for difference in logo.differences]
    assert "header x-cache: recorded 'Hit from cloudfront', replayed 'Error from cloudfront'" in str(report)
    assert report.summary() == "replay: 1 same, 1 differ"


def test_an_alb_exchange_whose_response_was_never_read_is_not_handed_to_the_next_entry() -> None:
    # ALB responses carry no request id: exchanges are taken in order, one request at a time. One left behind by a
    # request whose client failed belongs to no later entry.
    def alb_exchange(path: str) -> Exchange:
        viewer = ViewerRequest("192.0.2.1", "GET", path, "", CIMultiDict(), None)
        return Exchange(f"Root=1-{path}", "alb", viewer)

    exchanges = _Exchanges()
    exchanges.sending()
    exchanges.exchange_done(alb_exchange("/failed"))  # its client then failed: nobody took it
    exchanges.sending()
    exchanges.exchange_done(alb_exchange("/next"))
    taken = exchanges.of(CIMultiDict())
    assert taken is not None
    assert taken.viewer.uri == "/next"
    assert exchanges.of(CIMultiDict()) is None


def test_a_browsers_har_needs_origin_from_live(tmp_path: Path) -> None:
    result = run_replay(str(FIXTURES / "chrome-shaped.har"), "--origin", "http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 2
    assert "it holds no origin exchanges (a browser's HAR?): replay it with origin_from 'live'" in result.stderr
    assert "Traceback" not in result.stderr


async def test_replay_in_several_processes_reports_what_one_process_reports(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    served: dict[str, int] = {}

    async def counting(request: web.Request) -> web.Response:  # a repeated request gets a new answer each time
        served[request.path_qs] = served.get(request.path_qs, 0) + 1
        return web.Response(text=f"{request.path_qs} #{served[request.path_qs]}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", counting)
    origin = await aiohttp_server(app)
    origin_url = str(origin.make_url("")).rstrip("/")
    config = write_distribution(tmp_path, origin_url, version="1")
    recording = tmp_path / "golden.har"
    targets = ["/a", "/n", "/b", "/n", "/c?x=1", "/n", "/a", "/d"]
    await record_through(config, recording, targets)
    await origin.close()

    for jobs in ("1", "3"):
        unchanged = run_replay(str(recording), "--config", str(config), "--jobs", jobs, cwd=tmp_path)
        assert (unchanged.returncode, unchanged.stdout.strip()) == (0, "replay: 8 same, 0 differ"), unchanged.stderr

    write_distribution(tmp_path, origin_url, version="2")  # the origin (closed) is answered from the recording
    reports = {
        jobs: run_replay(str(recording), "--config", str(config), "--jobs", jobs, "--json", cwd=tmp_path)
        for jobs in ("1", "3")
    }
    one, three = (json.loads(reports[jobs].stdout) for jobs in ("1", "3"))
    assert reports["3"].returncode == 1, reports["3"].stderr
    assert three == one
    assert [(entry["index"], entry["target"]) for entry in three["entries"] if entry["differences"]] == [
        (0, "/a"),
        (6, "/a"),
    ]
    assert [entry["index"] for entry in three["entries"]] == list(range(8))


def test_replay_in_processes_passes_a_configuration_error_back(tmp_path: Path) -> None:
    recording = tmp_path / "golden.har"
    recording.write_text(
        json.dumps(
            {
                "log": {
                    "version": "1.2",
                    "creator": {"name": "edgeproxy", "version": "0"},
                    "entries": [
                        {
                            "request": {"method": "GET", "url": f"http://localhost/{n}", "headers": []},
                            "response": {"status": 200, "headers": [], "content": {"text": ""}},
                            "_origin": {},
                        }
                        for n in range(4)
                    ],
                }
            }
        )
    )
    config = tmp_path / "edgeproxy.toml"
    config.write_text('[origins.app]\nurl = "http://127.0.0.1:9"\n[default_behavior]\norigin = "nowhere"\n')
    result = run_replay(str(recording), "--config", str(config), "--jobs", "2", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "edgeproxy: configuration error:" in result.stderr
    assert "Traceback" not in result.stderr


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30), st.integers(min_value=1, max_value=8))
def test_the_shares_of_a_replay_hold_every_entry_once_with_identical_requests_together(
    sizes: list[int], jobs: int
) -> None:
    groups, start_at = [], 0
    for size in sizes:
        groups.append(list(range(start_at, start_at + size)))
        start_at += size
    shares = _shares(groups, jobs)
    assert len(shares) == min(jobs, len(groups))
    assert sorted(tuple(group) for share in shares for group in share) == sorted(tuple(group) for group in groups)
    loads = [sum(len(group) for group in share) for share in shares]
    if loads:  # each group went to the least loaded share: none is over the lightest by more than one group
        assert max(loads) - min(loads) <= max(sizes)


async def test_ctrl_c_stops_a_replay_in_several_processes_and_leaves_none_behind(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    origin = await aiohttp_server(origin_app())
    origin_url = str(origin.make_url("")).rstrip("/")
    config = write_distribution(tmp_path, origin_url, version="1")
    recording = tmp_path / "golden.har"
    await record_through(config, recording, ("/a", "/b", "/c", "/d"))
    (tmp_path / "pass.py").write_text("import time\n\ndef handler(event, context):\n    time.sleep(30)\n")

    await asyncio.to_thread(_interrupted_replay, recording, config, tmp_path)


def _interrupted_replay(recording: Path, config: Path, folder: Path) -> None:
    replaying = subprocess.Popen(
        [sys.executable, "-m", "edgeproxy.cli", "replay", str(recording), "--config", str(config), "--jobs", "2"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job is
    )
    deadline = time.monotonic() + 30
    while len(_processes_in(folder)) < 3 and time.monotonic() < deadline:  # it, its forks, their environments
        time.sleep(0.1)
    os.killpg(replaying.pid, signal.SIGINT)  # Ctrl-C
    out, err = replaying.communicate(timeout=30)
    assert replaying.returncode == 130, (out, err)
    assert "edgeproxy: replay interrupted" in err
    assert "Traceback" not in err
    while _processes_in(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_in(folder) == []


def _processes_in(folder: Path) -> list[int]:
    """The processes working in ``folder`` (replay and its forks run there; an environment runs in its task root)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                    found.append(int(entry.name))
    return found


ALB_TARGET = """
VERSION = "{version}"

def handler(event, context):
    return {{"statusCode": 200, "headers": {{"x-version": VERSION}}, "body": "path " + event["path"]}}
"""


def test_an_alb_recording_replays_with_jobs(tmp_path: Path) -> None:
    (tmp_path / "target.py").write_text(ALB_TARGET.format(version="1"))
    config = tmp_path / "alb.toml"
    config.write_text('[alb]\ntarget = "target.py:handler"\n')
    recording = tmp_path / "alb.har"

    asyncio.run(record_through(config, recording, ("/a", "/b", "/a", "/c?x=1")))
    for jobs in ("1", "2"):
        same = run_replay(str(recording), "--config", str(config), "--jobs", jobs, cwd=tmp_path)
        assert (same.returncode, same.stdout.strip()) == (0, "replay: 4 same, 0 differ"), same.stderr
    (tmp_path / "target.py").write_text(ALB_TARGET.format(version="2"))
    reports = [run_replay(str(recording), "--config", str(config), "--jobs", j, "--json", cwd=tmp_path) for j in "12"]
    one, two = (json.loads(report.stdout) for report in reports)
    assert reports[1].returncode == 1
    assert two == one
    assert (two["same"], two["differ"]) == (0, 4)
    differences = {d["what"] for entry in two["entries"] for d in entry["differences"]}
    assert differences == {"header x-version", "alb result $.headers.x-version"}, differences


async def test_a_replaying_process_that_dies_is_reported_with_how_it_ended(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    origin = await aiohttp_server(origin_app())
    config = write_distribution(tmp_path, str(origin.make_url("")).rstrip("/"), version="1")
    recording = tmp_path / "golden.har"
    await record_through(config, recording, ("/a", "/b"))
    # In the proxy's own process (isolation "thread"), a handler can end it: here, the replaying fork.
    (tmp_path / "pass.py").write_text("import os\n\ndef handler(event, context):\n    os._exit(3)\n")
    config.write_text('[distribution]\nisolation = "thread"\n' + config.read_text())
    result = await asyncio.to_thread(run_replay, str(recording), "--config", str(config), "--jobs", "2", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "a replaying process" in result.stderr
    assert "ended without its results: exit status 3" in result.stderr
    assert "Traceback" not in result.stderr


def browser_har(
    folder: Path, *requests: dict[str, object], name: str = "other-tool.har", response: dict[str, object] | None = None
) -> Path:
    """A HAR in a browser's shape (no pipeline), one entry per request (``url``, and what else a request has), each
    recorded as a 200 with the body ``ok`` (and what ``response`` sets)."""
    entries = [
        {
            "startedDateTime": f"2026-11-30T14:02:{index:02d}.000Z",
            "time": 1,
            "request": {
                "method": "GET",
                "httpVersion": "http/2.0",
                "headers": [],
                "queryString": [],
                "cookies": [],
                "headersSize": -1,
                "bodySize": 0,
                **request,
            },
            "response": {
                "status": 200,
                "statusText": "",
                "httpVersion": "http/2.0",
                "headers": [],
                "cookies": [],
                "content": {"size": 2, "mimeType": "text/plain", "text": "ok"},
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": -1,
                **(response or {}),
            },
            "cache": {},
            "timings": {"send": 0, "wait": 1, "receive": 0},
        }
        for index, request in enumerate(requests)
    ]
    path = folder / name
    document = {"log": {"version": "1.2", "creator": {"name": "OtherTool", "version": "1"}, "entries": entries}}
    path.write_text(json.dumps(document, ensure_ascii=False))
    return path


def test_a_request_the_http_parser_rejects_is_compared_as_the_400_the_viewer_gets(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "ok").write_text("ok")
    base = "https://d111111abcdef8.cloudfront.net"
    recording = browser_har(
        tmp_path,
        {"url": f"{base}/a b"},
        {"url": f"{base}/xé"},
        {"url": f"{base}/ok", "headers": [{"name": "bad header", "value": "v"}]},
        {"url": f"{base}/ok"},
    )
    result = run_replay(str(recording), "--origin", str(site), "--origin-from", "live", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    for head in ("#1 GET /a b: 200 recorded, 400 replayed", "#2 GET /xé: 200 recorded, 400 replayed"):
        assert head in lines
    assert "#3 GET /ok: 200 recorded, 400 replayed" in lines
    assert "  status: recorded 200, replayed 400" in lines
    assert lines.count(f"  note: {REJECTED_NOTE}") == 3
    assert lines[-1] == "replay: 1 same, 3 differ"


def test_a_request_that_cannot_be_sent_as_http_is_bad_input_naming_its_entry(tmp_path: Path) -> None:
    recording = browser_har(
        tmp_path, {"url": "https://example.com/ok"}, {"url": "https://example.com/b", "method": "G T"}
    )
    result = run_replay(str(recording), "--origin", str(tmp_path), "--origin-from", "live", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert f"edgeproxy: {recording}: entry 2 (G T /b): its request cannot be sent as HTTP/1.1: " in result.stderr


BASIC_AUTH = "Basic " + base64.b64encode(b"edge:correct-horse-battery-staple").decode()


async def test_redacted_credentials_are_supplied_at_replay_and_named_when_they_were_not(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    origin = await aiohttp_server(origin_app())
    config = tmp_path / "edgeproxy.toml"
    basic_auth = Path(__file__).parents[2] / "sample_functions" / "basic_auth.py"
    config.write_text(
        f'[origins.app]\nurl = "{str(origin.make_url("")).rstrip("/")}"\n[default_behavior]\norigin = "app"\n'
        f'[default_behavior.functions]\nviewer-request = "{basic_auth}:handler"\n'
    )
    recording = tmp_path / "private.har"
    proxy = await start(config_file=config, recording=recording, record_mode="all", redact=["session"])
    try:
        headers = {"Authorization": BASIC_AUTH, "Cookie": "theme=dark; session=s3cret"}
        async with proxy.client.get("/private", headers=headers) as response:
            assert response.status == 200
    finally:
        await proxy.close()
    assert BASIC_AUTH not in recording.read_text()

    sent = run_replay(str(recording), "--config", str(config), cwd=tmp_path)
    assert sent.returncode == 1, sent.stderr
    assert "#1 GET /private: 200 recorded, 401 replayed" in sent.stdout
    assert (
        "  note: its request was recorded with redacted values, and was sent with them as '[REDACTED]': header "
        "Authorization, cookie session; give the real ones with --header 'NAME: VALUE' (replay(headers=...) in Python)"
    ) in sent.stdout.splitlines()

    supplied = run_replay(
        str(recording), "--config", str(config), "--header", f"authorization: {BASIC_AUTH}", cwd=tmp_path
    )
    assert (supplied.returncode, supplied.stdout.strip()) == (0, "replay: 1 same, 0 differ"), supplied.stdout
    report = await replay(recording, config_file=config, headers={"Authorization": BASIC_AUTH})
    assert report.same, str(report)


async def test_hop_by_hop_response_headers_are_not_compared(tmp_path: Path, aiohttp_server: AiohttpServer) -> None:
    origin = await aiohttp_server(origin_app())
    config = write_distribution(tmp_path, str(origin.make_url("")).rstrip("/"), version="1")
    recording = tmp_path / "golden.har"
    proxy = await start(config_file=config, recording=recording, record_mode="all")
    try:
        async with proxy.client.get("/a", headers={"Connection": "close"}) as response:  # answered "close"
            assert response.headers["Connection"] == "close"
    finally:
        await proxy.close()
    result = run_replay(str(recording), "--config", str(config), cwd=tmp_path)  # sent on a kept-alive connection
    assert (result.returncode, result.stdout.strip()) == (0, "replay: 1 same, 0 differ"), result.stdout

    site = tmp_path / "site"
    site.mkdir()
    (site / "ok").write_text("ok")
    hop_by_hop = [
        {"name": "Connection", "value": "keep-alive, X-Hop"},
        {"name": "Keep-Alive", "value": "timeout=5"},
        {"name": "X-Hop", "value": "this connection's"},
        {"name": "Transfer-Encoding", "value": "chunked"},
    ]
    browsers = browser_har(tmp_path, {"url": "https://example.com/ok"}, response={"headers": hop_by_hop})
    result = run_replay(str(browsers), "--origin", str(site), "--origin-from", "live", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "replay: 1 same, 0 differ"), result.stdout


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip"])
async def test_a_browsers_body_is_compared_decoded_or_said_to_be_undecodable(
    encoding: str, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """The bodies of a browser's HAR are decoded; so is the replayed one, with whatever decoder is installed here for
    br and zstd (brotli, zstandard... none is a dependency): with none, the entry says it could not compare."""
    page = b"<h1>hello from production</h1>\n"
    decode = decoder(encoding)
    if decode is not None:
        modules = {"br": ("brotli", "brotlicffi"), "zstd": ("compression.zstd", "backports.zstd", "zstandard")}
        encode = next(m for m in modules.get(encoding, (encoding,)) if importlib.util.find_spec(m.split(".")[0]))
        encoded = importlib.import_module(encode).compress(page)
        assert decode(encoded) == page
    else:
        encoded = b"whatever it is, it cannot be read here"

    async def compressed(request: web.Request) -> web.Response:
        return web.Response(body=encoded, headers={"Content-Type": "text/html", "Content-Encoding": encoding})

    app = web.Application()
    app.router.add_get("/page", compressed)
    origin = await aiohttp_server(app)
    headers = [{"name": "content-encoding", "value": encoding}]
    recording = browser_har(
        tmp_path,
        {"url": "https://d111111abcdef8.cloudfront.net/page"},
        response={"headers": headers, "content": {"size": len(page), "mimeType": "text/html", "text": page.decode()}},
    )
    report = await replay(recording, origin=str(origin.make_url("")), origin_from="live")
    if decode is not None:
        assert report.same, str(report)
    else:
        assert [str(difference) for difference in report.differ[0].differences] == [
            f"body: recorded {len(page)} bytes, replayed {encoding}-encoded: not compared, as no decoder for "
            f"{encoding} is installed ({'brotli or brotlicffi' if encoding == 'br' else 'zstandard'})"
        ]


async def test_a_recording_cut_short_is_replayed_with_a_warning_and_a_damaged_one_is_bad_input(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    origin = await aiohttp_server(origin_app())
    config = write_distribution(tmp_path, str(origin.make_url("")).rstrip("/"), version="1")
    recording = tmp_path / "golden.har"
    await record_through(config, recording, ("/a", "/b", "/c"))
    whole = recording.read_bytes()

    recording.write_bytes(whole[: len(whole) - 40])  # the last entry cut short (power loss)
    result = run_replay(str(recording), "--config", str(config), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warning = f"{recording} was cut short: replaying the 2 exchanges that completed"
    assert warning in result.stderr
    report = json.loads(result.stdout)
    assert (report["same"], report["warnings"]) == (2, [warning])

    lines = whole.split(b"\n")
    lines[2] = lines[2][:30]  # the second entry's line cut off in the middle of the file
    recording.write_bytes(b"\n".join(lines))
    result = run_replay(str(recording), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert f"edgeproxy: {recording}: line 3 is not a whole JSON object" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_browsers_post_data_with_only_params_is_sent_as_the_body_they_make(
    tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"{request.content_type} {await request.text()}")

    app = web.Application()
    app.router.add_post("/{tail:.*}", echo)
    origin = await aiohttp_server(app)
    form = "application/x-www-form-urlencoded"
    multipart = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk"
    params = [{"name": "q", "value": "a b&c"}, {"name": "q", "value": "é~*"}, {"name": "empty", "value": ""}]
    parts = [
        {"name": "title", "value": "hi"},
        {"name": "doc", "value": "text", "fileName": "a.txt", "contentType": "text/plain"},
    ]
    multipart_body = (
        '------WebKitFormBoundary7MA4YWxk\r\nContent-Disposition: form-data; name="title"\r\n\r\nhi\r\n'
        '------WebKitFormBoundary7MA4YWxk\r\nContent-Disposition: form-data; name="doc"; filename="a.txt"\r\n'
        "Content-Type: text/plain\r\n\r\ntext\r\n------WebKitFormBoundary7MA4YWxk--\r\n"
    )
    cases = [
        ("/search", form, params, "application/x-www-form-urlencoded q=a+b%26c&q=%C3%A9%7E*&empty="),
        ("/upload", multipart, parts, f"multipart/form-data {multipart_body}"),
    ]
    requests: list[dict[str, object]] = [
        {
            "url": f"https://example.com{path}",
            "method": "POST",
            "headers": [{"name": "content-type", "value": mime}],
            "postData": {"mimeType": mime, "params": fields},
        }
        for path, mime, fields, _ in cases
    ]
    recording = browser_har(tmp_path, *requests)
    document = json.loads(recording.read_text())
    for entry, (*_, echoed) in zip(document["log"]["entries"], cases, strict=True):
        entry["response"]["content"] = {"size": len(echoed), "mimeType": "text/plain", "text": echoed}
    recording.write_text(json.dumps(document))
    report = await replay(recording, origin=str(origin.make_url("")), origin_from="live")
    assert report.same, str(report)

    document["log"]["entries"][1]["request"]["postData"]["mimeType"] = "application/json"
    for header in document["log"]["entries"][1]["request"]["headers"]:
        header["value"] = "application/json"
    recording.write_text(json.dumps(document))
    with pytest.raises(RecordingError, match=r"entry 2 \(POST /upload\): its postData has params but no text"):
        await replay(recording, origin=str(origin.make_url("")), origin_from="live")
