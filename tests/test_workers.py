"""workers.py: ``edgeproxy serve --workers N`` as a real subprocess, over real sockets: requests served by several
worker processes on one port, each worker's own protections and cache, one recording, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeproxy.cli import main
from edgeproxy.record.har import read
from tests.processes import descendants, wait_until_gone

# Which process ran the handler: the worker itself in thread isolation, its environment in process isolation.
PID_HANDLER = (
    "import os\n"
    "def handler(event, context):\n"
    "    response = event['Records'][0]['cf']['response']\n"
    "    response['headers']['x-handler-pid'] = [{'key': 'X-Handler-Pid', 'value': str(os.getpid())}]\n"
    "    return response\n"
)


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    lines: list[str]  # what it printed on stdout once it listened (the URL, the admin listeners)
    stderr: Path


@contextmanager
def serving(tmp_path: Path, *args: str, admins: int = 0) -> Iterator[Served]:
    """``edgeproxy serve --origin site`` with ``args`` on a free port, the pid handler at viewer-response; killed
    (with whatever it started) if the test has not stopped it. ``admins``: how many admin lines follow the URL."""
    (tmp_path / "site").mkdir(exist_ok=True)
    (tmp_path / "site" / "a.txt").write_bytes(b"from the folder\n")
    (tmp_path / "pid.py").write_text(PID_HANDLER)
    command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--origin", "site", "--port", "0"]
    command += ["--viewer-response", "pid.py:handler", *args]
    stderr = tmp_path / "stderr.txt"
    with (
        stderr.open("w") as errors,
        subprocess.Popen(
            command,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as process,
    ):
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("edgeproxy listening on http://127.0.0.1:"), stderr.read_text()
            lines = [line]
            lines += [process.stdout.readline().strip() for _ in range(admins)]
            yield Served(process, line.rsplit(" ", 1)[1], lines, stderr)
        finally:
            left = descendants(process.pid)
            process.kill()
            for pid in left:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.wait()


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """One GET on a connection of its own (so the kernel may pick another worker for each)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def pids_answering(url: str, tries: int = 40) -> set[str]:
    seen: set[str] = set()
    for _ in range(tries):
        status, headers, body = get(url)
        assert (status, body) == (200, b"from the folder\n")
        seen.add(headers["X-Handler-Pid"])
        if len(seen) > 1:
            break
    return seen


def test_two_workers_serve_one_port_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    with serving(tmp_path, "--workers", "2", "--isolation", "thread") as served:
        workers = descendants(served.process.pid)
        assert len(workers) == 2
        answered = pids_answering(served.url + "/a.txt")
        assert answered == {str(pid) for pid in workers}  # each worker ran the handler in its own process
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0
        assert wait_until_gone(workers) == []
        stderr = served.stderr.read_text()
        assert "2 workers on one port" in stderr
        assert "Traceback" not in stderr
        assert stderr.rstrip().endswith("edgeproxy stopped")


def test_ctrl_c_stops_every_worker_and_its_environments(tmp_path: Path) -> None:
    with serving(tmp_path, "--workers", "2") as served:
        answered = pids_answering(served.url + "/a.txt")
        below = descendants(served.process.pid)
        assert answered <= {str(pid) for pid in below}  # the handlers ran in the workers' environments
        assert len(below) >= 3  # two workers, and at least one environment
        served.process.send_signal(signal.SIGINT)
        assert served.process.wait(timeout=20) == 0
        assert wait_until_gone(below) == []


def test_nothing_outlives_a_killed_parent(tmp_path: Path) -> None:
    with serving(tmp_path, "--workers", "2") as served:
        pids_answering(served.url + "/a.txt")
        below = descendants(served.process.pid)
        served.process.kill()
        served.process.wait()
        assert wait_until_gone(below) == []


def test_every_worker_applies_the_header_timeout(tmp_path: Path) -> None:
    with serving(tmp_path, "--workers", "2", "--isolation", "thread", "--header-timeout", "0.5") as served:
        port = int(served.url.rsplit(":", 1)[1])
        slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(6)]
        for sock in slow:
            sock.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n")  # never finished
        try:
            for sock in slow:
                assert sock.recv(100) == b""  # closed by whichever worker holds it
        finally:
            for sock in slow:
                sock.close()
        assert served.stderr.read_text().count("request head not received whole within 0.5 s") == 6


def test_each_worker_has_its_own_cache_and_admin_listener(tmp_path: Path) -> None:
    args = ("--workers", "2", "--isolation", "thread", "--cache-policy", "CachingOptimized", "--admin-port", "0")
    with serving(tmp_path, *args, admins=2) as served:
        admins = [line.split()[3] for line in served.lines[1:]]
        assert len(admins) == 2
        assert all(line.startswith("edgeproxy inspector on http://127.0.0.1:") for line in served.lines[1:])
        hits: dict[str, str] = {}
        for _ in range(40):
            _, headers, _ = get(served.url + "/a.txt")
            hits.setdefault(headers["X-Handler-Pid"], headers["X-Cache"])
            if headers["X-Cache"] == "Hit from cloudfront":
                hits[headers["X-Handler-Pid"]] = "Hit from cloudfront"
            if len(hits) == 2 and set(hits.values()) == {"Hit from cloudfront"}:
                break
        assert set(hits.values()) == {"Hit from cloudfront"}, hits  # each worker stored its own copy
        assert main(["invalidate", *(arg for admin in admins for arg in ("--admin", admin)), "/a.txt"]) == 0
        listings = [json.loads(get(admin + "/cache")[2]) for admin in admins]
        assert all(listing["entries"] == [] for listing in listings), listings


def test_workers_record_into_one_file(tmp_path: Path) -> None:
    har = tmp_path / "recording.har"
    with serving(tmp_path, "--workers", "2", "--isolation", "thread", "--recording", str(har)) as served:
        answered = {get(served.url + f"/a.txt?n={n}")[1]["X-Handler-Pid"] for n in range(20)}
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0
    assert len(answered) == 2
    recording = read(har)
    assert not recording.cut_short
    recorded = sorted(entry["request"]["url"].rsplit("?", 1)[1] for entry in recording.entries)
    assert recorded == sorted(f"n={n}" for n in range(20))


def test_a_worker_that_cannot_listen_stops_the_others(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "site").mkdir()
        command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--origin", "site", "--port", "0"]
        command += ["--workers", "2", "--admin-port", str(port - 1)]  # worker 2's admin port is taken
        started = time.monotonic()
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert "cannot listen" in done.stderr
    assert time.monotonic() - started < 60


def test_workers_do_not_share_a_port_another_process_listens_on(tmp_path: Path) -> None:
    """Not even one listening with SO_REUSEPORT (another serve --workers): the requests would go to both."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        (tmp_path / "site").mkdir()
        command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--origin", "site", "--workers", "2"]
        command += ["--port", str(other.getsockname()[1])]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "cannot listen on 127.0.0.1:" in done.stderr
    assert "Address already in use" in done.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_serve_on_either_event_loop_with_its_header_timeout(loop: str, tmp_path: Path) -> None:
    if loop == "uvloop" and os.environ.get("CI") != "true":
        pytest.importorskip("uvloop")
    args = ("--loop", loop, "--isolation", "thread", "--header-timeout", "0.5")
    with serving(tmp_path, *args) as served:
        status, _, body = get(served.url + "/a.txt")
        assert (status, body) == (200, b"from the folder\n")
        port = int(served.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n")  # at once, and never finished
            assert slow.recv(100) == b""
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0


def test_a_handler_that_does_not_load_is_one_configuration_error_for_all_workers(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "h.py").write_text("def handler(event, context):\n    return None\n")
    command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--origin", "site", "--port", "0", "--workers", "2"]
    command += ["--viewer-request", "h.py:nope"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("edgeproxy: configuration error")]
    assert errors == [
        "edgeproxy: configuration error: command line: --viewer-request: "
        f"{str(tmp_path / 'h.py')!r} has no function 'nope' (Runtime.HandlerNotFound: Handler 'nope' missing on "
        "module 'h')"
    ]
    assert "Traceback (most recent call last):\n  File" not in done.stderr.replace("[h] ", "")
    assert "edgeproxy/" not in done.stderr  # none of edgeproxy's own frames
