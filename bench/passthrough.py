"""Requests per second through edgeproxy with four pass-through handlers, against a minimal aiohttp proxy.

    .venv/bin/python bench/passthrough.py [--duration 10] [--connections 32] [--rounds 3] [--warmup 2]
        [--load-generator auto|wrk|builtin] [--origin auto|nginx|aiohttp] [--json PATH] [--cache-hit]

What is measured
    The cost of edgeproxy's pipeline (four handler invocations per request, the events built and validated,
    CloudFront's headers) over plain aiohttp forwarding. Three servers run, each as its own process on a free
    loopback port:

    * the origin: nginx (``/usr/sbin/nginx``, one worker, a config written to a temporary folder) when installed,
      otherwise ``bench/origin.py`` (aiohttp); either answers every request with the same 1024-byte body;
    * the baseline: ``bench/minimal_proxy.py``, an aiohttp proxy forwarding through one shared ``ClientSession``;
    * ``edgeproxy serve`` with ``bench/passthrough_handler.py`` at viewer-request, origin-request, origin-response
      and viewer-response, in front of the same origin.

How
    Before measuring, one GET through each proxy must return the origin's body byte for byte (else the run stops).
    Each target is warmed up, then driven by the same closed-loop load: ``wrk -t1 -cN -dDs --latency`` when wrk
    is on PATH, otherwise ``bench/loadgen.py`` (concurrent aiohttp clients in their own process). The targets are
    measured in turns for ``--rounds`` rounds (the order reversed every other round, so a slow drift of the machine
    hits both alike); each target's figures are its median round by requests/s. The origin alone is measured too,
    as a reference showing it is not the bottleneck.

    The load generator, the proxy under test and the origin share the machine's cores (2 on the development
    machine), so the absolute rates are low and the ratio edgeproxy / minimal proxy is the meaningful figure.
    ``--cache-hit`` also measures edgeproxy with the managed CachingOptimized cache policy, so that every request
    after the first is a cache hit: viewer-request and viewer-response run, origin-request, the origin and
    origin-response do not.

    Each server's output goes to a log file in the temporary folder: edgeproxy's per-invocation START/END/REPORT
    log is written as a user would get it, so its cost is part of the figure. Every server is stopped at the end,
    also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
NGINX = Path("/usr/sbin/nginx")
TRIGGERS = ("viewer-request", "origin-request", "origin-response", "viewer-response")
REQUEST_PATH = "/bench/item?id=42"
# 1024 bytes of letters and digits: safe to write inside nginx.conf, easy to compare.
BODY = bytes(b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(1024))
LABELS = {
    "origin": "origin alone (reference)",
    "minimal": "minimal aiohttp proxy",
    "edgeproxy": "edgeproxy, 4 Python, process",
    "edgeproxy-thread": "edgeproxy, 4 Python, thread",
    "edgeproxy-node": "edgeproxy, 4 Node.js, process",
    "edgeproxy-compared": "compared edgeproxy, 4 pass-through",
    "edgeproxy-recording": "edgeproxy, --record-mode all",
    "edgeproxy-admin": "edgeproxy, inspector unwatched",
    "edgeproxy-watched": "edgeproxy, inspector open, ring full",
    "edgeproxy-hit": "edgeproxy, 4 handlers, cache hits",
    "edgeproxy-workers": "edgeproxy, 4 Python, --workers N",
    "edgeproxy-asyncio": "edgeproxy, 4 Python, --loop asyncio",
    "edgeproxy-bare": "edgeproxy, no handlers",
    "peer": "serverless-offline-edge-lambda, 4 Node",
}
TICKS = os.sysconf("SC_CLK_TCK")
WARMUP_SLICES = 3
PROC = Path("/proc")


class BenchError(Exception):
    """Stops the benchmark with a message for the user."""


@dataclass
class Measurement:
    requests_per_second: float
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    cpu_us: float | None = None  # CPU time of the server's processes (all of them: workers, environments) / request
    environments_cpu_us: float | None = None  # the part of it spent in execution environments


@dataclass
class Summary:
    """A target's figures over all rounds: its median round (by requests/s), and every round."""

    target: str
    label: str
    median: Measurement
    rounds: list[Measurement] = field(default_factory=list)

    @classmethod
    def of(cls, target: str, rounds: list[Measurement]) -> Summary:
        by_rate = sorted(rounds, key=lambda measurement: measurement.requests_per_second)
        return cls(target, LABELS[target], by_rate[(len(by_rate) - 1) // 2], rounds)  # the lower median: a real round


# --- servers -----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _stat(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return [text[: text.index(" ")], *text[text.rindex(")") + 2 :].split()]  # comm may hold spaces


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(int(stat[2]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def _is_environment(pid: int) -> bool:
    """Whether ``pid`` is one of edgeproxy's execution environments (its bootstrap program runs in it)."""
    try:
        return b"bootstrap." in (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time used so far by ``pid`` and its descendants (user + system, with their reaped children's), and the
    part of it used by execution environments."""
    ticks = environments = 0
    for each in _tree(pid):
        if (stat := _stat(each)) is not None:
            used = sum(int(value) for value in stat[12:16])  # utime, stime, cutime, cstime: fields 14-17 of stat(5)
            ticks += used
            if _is_environment(each):
                environments += used
    return ticks / TICKS, environments / TICKS


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Server:
    name: str
    url: str
    description: str
    process: subprocess.Popen[bytes]
    log: Path


class Servers:
    """Starts servers as subprocesses, each in its own session (so a Ctrl-C reaches only this script, which then
    stops them in order), with stdout and stderr in a log file; :meth:`stop` ends them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Server] = []
        self.watchers: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        name: str,
        description: str,
        command: list[str],
        port: int,
        *,
        ready_text: str | None = None,
        timeout: float = 20.0,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Server:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
                env=None if env is None else {**os.environ, **env},
            )
        server = Server(name, f"http://127.0.0.1:{port}", description, process, log)
        self.started.append(server)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise BenchError(f"{name} exited with code {process.returncode} before it was ready:\n{tail(log)}")
            printed = ready_text is None or ready_text in log.read_text(errors="replace")
            if printed and accepts(port):
                return server
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{name} was not accepting connections on port {port} after {timeout:g} s:\n{tail(log)}"
                )
            time.sleep(0.05)

    def watch_inspector(self, admin: str) -> subprocess.Popen[bytes]:
        """``bench/inspector_watcher.py`` reading ``admin``'s event stream, as an open page does; stopped with the
        servers."""
        with (self.workdir / "watcher.log").open("wb") as output:
            process = subprocess.Popen(
                [PYTHON, str(HERE / "inspector_watcher.py"), admin],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.watchers.append(process)
        return process

    def stop(self) -> None:
        for watcher in self.watchers:
            watcher.terminate()
            watcher.wait()
        self.watchers.clear()
        for server in reversed(self.started):
            if server.process.poll() is None:
                server.process.terminate()
        for server in reversed(self.started):
            try:
                server.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                # Its own session: the group holds only this server and its children (nginx's worker).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait()
        self.started.clear()


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            return 200 "{body}";
        }}
    }}
}}
"""


def nginx_version() -> str:
    output = subprocess.run([str(NGINX), "-v"], capture_output=True, text=True, check=False).stderr
    match = re.search(r"nginx/(\S+)", output)
    return match.group(1) if match else "?"


def start_origin(servers: Servers, workdir: Path, use_nginx: bool) -> Server:
    port = free_port()
    if use_nginx:
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=workdir, port=port, body=BODY.decode("ascii")))
        command = [str(NGINX), "-p", str(workdir), "-e", str(workdir / "nginx-error.log"), "-c", str(conf)]
        description = f"nginx {nginx_version()}, 1 worker, {len(BODY)}-byte body"
        return servers.start("origin", description, command, port)
    body = workdir / "body.txt"
    body.write_bytes(BODY)
    command = [PYTHON, str(HERE / "origin.py"), "--port", str(port), "--body", str(body)]
    return servers.start("origin", f"bench/origin.py (aiohttp), {len(BODY)}-byte body", command, port)


def edgeproxy_command(python: str = PYTHON) -> list[str]:
    """``edgeproxy`` from ``python``'s environment, else from PATH, else as a module. (The console script, not
    ``python -m``: that would put the current folder, this checkout, first on the other interpreter's path.)"""
    beside = Path(python).with_name("edgeproxy")
    if beside.exists():
        return [str(beside)]
    if python != PYTHON:
        return [python, "-m", "edgeproxy.cli"]
    if found := shutil.which("edgeproxy"):
        return [found]
    return [PYTHON, "-m", "edgeproxy.cli"]


def start_minimal(servers: Servers, origin: Server) -> Server:
    port = free_port()
    return servers.start(
        "minimal",
        "bench/minimal_proxy.py",
        [PYTHON, str(HERE / "minimal_proxy.py"), "--port", str(port), "--origin", origin.url],
        port,
    )


def start_edgeproxy(
    servers: Servers,
    origin: Server,
    name: str,
    python: str = PYTHON,
    extra: tuple[str, ...] = (),
    handler_file: str | None = "passthrough_handler.py",
) -> Server:
    """``edgeproxy serve`` with the pass-through handler at the four triggers, run by ``python`` (another
    checkout's interpreter for ``--compare``), with ``extra`` arguments."""
    port = free_port()
    command = [*edgeproxy_command(python), "serve", "--origin", origin.url, "--host", "127.0.0.1", "--port", str(port)]
    if handler_file is not None:
        handler = f"{HERE / handler_file}:handler"
        command += [arg for trigger in TRIGGERS for arg in (f"--{trigger}", handler)]
    command += extra
    where = "" if python == PYTHON else f" ({Path(python).parent.parent.parent})"
    handlers = "no handlers" if handler_file is None else f"4 x bench/{handler_file}"
    return servers.start(
        name,
        f"edgeproxy serve, {handlers} {' '.join(extra)}{where}",
        command,
        port,
        ready_text="listening on",
    )


PEER = HERE / "peer"
PEER_YML = """\
# Written by bench/passthrough.py --peer for one run (the origin's port changes).
service: edgeproxy-bench-peer
frameworkVersion: '3'
configValidationMode: off   # lambdaAtEdge is not in Serverless v3's schema
plugins: [serverless-offline-edge-lambda]
provider: {{ name: aws, runtime: nodejs20.x }}
functions:
{functions}
custom:
  offlineEdgeLambda:
    originMap: [ {{ pathPattern: '*', target: '{origin}' }} ]
resources:
  Resources:
    WebsiteDistribution: {{ Type: AWS::CloudFront::Distribution, Properties: {{ DistributionConfig: {{}} }} }}
"""


def start_peer(servers: Servers, origin: Server, workdir: Path) -> Server:
    """serverless-offline-edge-lambda with ``bench/peer/handlers.js`` (pass-through) at the four triggers, in front
    of the same origin; installed by ``bench/peer/setup.sh``."""
    serverless = PEER / "node_modules" / "serverless" / "bin" / "serverless.js"
    if not serverless.exists() or not (PEER / "node_modules" / "serverless-offline-edge-lambda").exists():
        raise BenchError("--peer: serverless-offline-edge-lambda is not installed; run bench/peer/setup.sh first")
    functions = "\n".join(
        f"  {trigger.replace('-', '_')}:\n    handler: handlers.passthrough\n"
        f"    lambdaAtEdge: {{ distribution: WebsiteDistribution, eventType: {trigger}, pathPattern: '*' }}"
        for trigger in TRIGGERS
    )
    (PEER / "serverless.yml").write_text(PEER_YML.format(functions=functions, origin=origin.url))
    port = free_port()
    version = json.loads((PEER / "node_modules" / "serverless-offline-edge-lambda" / "package.json").read_text())
    command = ["node", str(serverless), "offline", "start", "--port", str(port), "--disableCache"]
    command += ["--cacheDir", str(workdir / "peer-cache")]
    env = {"SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off", "SLS_DEPRECATION_DISABLE": "*"}
    return servers.start(
        "peer",
        f"serverless-offline-edge-lambda {version['version']}, 4 x bench/peer/handlers.js (Node.js)",
        command,
        port,
        cwd=PEER,
        env=env,
        timeout=60.0,
    )


# --- checks ------------------------------------------------------------------------------------------------------


def fetch(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP(S)_PROXY
    try:
        with opener.open(url, timeout=10) as response:
            status: int = response.status
            return status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError as error:
        raise BenchError(f"GET {url} failed: {error}") from None


def verify(servers: list[Server]) -> list[str]:
    """One GET through each server must return 200 and :data:`BODY` byte for byte. Returns warnings."""
    warnings = []
    for server in servers:
        status, body = fetch(server.url + REQUEST_PATH)
        if server.name == "peer" and status == 200:
            if body != BODY:  # it rebuilds every origin response (status 200, application/json, text body)
                warnings.append(f"the peer answered {len(body)} bytes, not the origin's {len(BODY)}")
            continue
        if status != 200 or body != BODY:
            raise BenchError(
                f"{server.name} did not return the origin's body byte for byte (status {status}, {len(body)} bytes"
                f" instead of {len(BODY)}, starting {body[:80]!r}); not measuring"
            )
    for server in servers:
        if server.name == "edgeproxy-hit":
            fetch(server.url + REQUEST_PATH)  # the miss that stores it (the check above made one too)
            cached = _x_cache(server.url + REQUEST_PATH)
            if cached != "Hit from cloudfront":
                raise BenchError(f"edgeproxy-hit's second GET was not a cache hit (X-Cache: {cached}); not measuring")
    for edgeproxy in (
        server for server in servers if server.name.startswith("edgeproxy") and server.name != "edgeproxy-bare"
    ):
        deadline = time.monotonic() + 2.0  # the log is written once per loop iteration: the last lines may be due
        while True:
            log = edgeproxy.log.read_text(errors="replace")
            missing = [trigger for trigger in TRIGGERS if not re.search(rf"\b{trigger}\] START RequestId", log)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if missing:
            warnings.append(f"{edgeproxy.name}'s log does not show the {', '.join(missing)} handler(s) running")
    return warnings


def _x_cache(url: str) -> str | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        response.read()
        return response.headers.get("X-Cache")


# --- load generators ---------------------------------------------------------------------------------------------

LoadGenerator = Callable[[str, float, int], Measurement]

_WRK_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _wrk_percentile(output: str, label: str) -> float | None:
    match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
    return None if match is None else float(match.group(1)) * _WRK_UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> Measurement:
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    if rate is None or total is None:
        raise BenchError(f"cannot read wrk's output:\n{output}")
    errors = 0
    if socket_errors := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(count) for count in socket_errors.groups())
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(non_2xx.group(1))
    return Measurement(
        float(rate.group(1)), int(total.group(1)), errors, _wrk_percentile(output, "50"), _wrk_percentile(output, "99")
    )


def run_wrk(url: str, duration: float, connections: int) -> Measurement:
    seconds = max(1, round(duration))
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def run_builtin(url: str, duration: float, connections: int) -> Measurement:
    command = [PYTHON, str(HERE / "loadgen.py"), url, "--duration", str(duration), "--connections", str(connections)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=duration + 120)
    if done.returncode != 0:
        raise BenchError(f"bench/loadgen.py failed ({done.returncode}):\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout)
    return Measurement(**figures)


def choose_load_generator(choice: str, connections: int) -> tuple[str, LoadGenerator]:
    wrk = shutil.which("wrk")
    if choice == "wrk" and wrk is None:
        raise BenchError("--load-generator wrk: wrk is not on PATH")
    if choice != "builtin" and wrk is not None:
        version = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False).stdout.split()
        name = f"wrk {version[1] if len(version) > 1 else ''}".strip()
        return f"{name}, 1 thread, {connections} connections", run_wrk
    return f"bench/loadgen.py (aiohttp clients in one process), {connections} connections", run_builtin


# --- report ------------------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(summaries: dict[str, Summary], context: dict[str, Any], warnings: list[str]) -> str:
    lines = [
        f"edgeproxy pass-through benchmark, {context['date']}",
        f"machine: {context['cpus']} CPU cores, shared by the origin, the proxy under test and the load generator"
        " (absolute rates are low; compare the ratio)",
        f"origin: {context['origin']}",
        f"load generator: {context['load_generator']}",
        f"timing: {context['warmup_s']:g} s warm-up per target, then {context['rounds']} interleaved round(s) of "
        f"{context['duration_s']:g} s per target; figures are each target's median round by requests/s",
        "",
        f"{'target':<40}{'requests/s':>11}{'(all rounds)':>24}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>11}"
        f"{'(in envs)':>10}{'errors':>7}",
    ]
    for summary in summaries.values():
        median = summary.median
        every = "/".join(f"{m.requests_per_second:.0f}" for m in summary.rounds)
        cpu = "-" if median.cpu_us is None else f"{median.cpu_us:.0f}"
        in_environments = "-" if not median.environments_cpu_us else f"{median.environments_cpu_us:.0f}"
        lines.append(
            f"{summary.label:<40}{median.requests_per_second:>11.0f}{every:>24}{_ms(median.p50_ms):>9}"
            f"{_ms(median.p99_ms):>9}{cpu:>11}{in_environments:>10}{median.errors:>7}"
        )
    lines.append("")
    if "compared" in context:
        lines.append(f"compared edgeproxy: {context['compared']}")
    for name, ratio in context["ratios"].items():
        lines.append(f"ratio {name}: {ratio:.2f}")
    for name, added in context["p50_added_us"].items():
        lines.append(f"p50 added over the minimal proxy, {LABELS[name]}: {added:.0f} us")
    return "\n".join(lines + [f"warning: {warning}" for warning in warnings])


# --- main --------------------------------------------------------------------------------------------------------


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def measure(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Summary], dict[str, Any], list[str]]:
    generator_name, load = choose_load_generator(args.load_generator, args.connections)
    use_nginx = NGINX.exists() and args.origin != "aiohttp"
    if args.origin == "nginx" and not use_nginx:
        raise BenchError(f"--origin nginx: {NGINX} does not exist")
    servers = Servers(workdir)
    try:
        origin = start_origin(servers, workdir, use_nginx)
        targets: dict[str, Server] = {"origin": origin, "minimal": start_minimal(servers, origin)}
        wanted = set(args.only.split(",")) if args.only else None

        def add(name: str, start: Callable[[], Server]) -> None:
            if wanted is None or name in wanted:
                targets[name] = start()

        add("edgeproxy", lambda: start_edgeproxy(servers, origin, "edgeproxy"))
        thread = ("--isolation", "thread")
        add("edgeproxy-thread", lambda: start_edgeproxy(servers, origin, "edgeproxy-thread", extra=thread))
        if shutil.which("node") and not args.no_node:
            node = "passthrough_handler.mjs"
            add("edgeproxy-node", lambda: start_edgeproxy(servers, origin, "edgeproxy-node", handler_file=node))
        if args.bare:
            add("edgeproxy-bare", lambda: start_edgeproxy(servers, origin, "edgeproxy-bare", handler_file=None))
        if args.asyncio:
            asyncio_loop = ("--loop", "asyncio")
            add("edgeproxy-asyncio", lambda: start_edgeproxy(servers, origin, "edgeproxy-asyncio", extra=asyncio_loop))
        if args.workers:
            LABELS["edgeproxy-workers"] = f"edgeproxy, 4 Python, --workers {args.workers}"
            several = ("--workers", str(args.workers))
            add("edgeproxy-workers", lambda: start_edgeproxy(servers, origin, "edgeproxy-workers", extra=several))
            LABELS["edgeproxy-thread-workers"] = f"edgeproxy, 4 Python, thread, --workers {args.workers}"
            threads = (*several, *thread)
            add(
                "edgeproxy-thread-workers",
                lambda: start_edgeproxy(servers, origin, "edgeproxy-thread-workers", extra=threads),
            )
        if args.compare is not None:
            compare = args.compare
            add("edgeproxy-compared", lambda: start_edgeproxy(servers, origin, "edgeproxy-compared", compare))
        if args.cache_hit:
            hits = ("--cache-policy", "CachingOptimized")
            add("edgeproxy-hit", lambda: start_edgeproxy(servers, origin, "edgeproxy-hit", extra=hits))
        if args.recording:
            recording = ("--recording", str(workdir / "recording.har"), "--record-mode", "all")
            add("edgeproxy-recording", lambda: start_edgeproxy(servers, origin, "edgeproxy-recording", extra=recording))
        if args.peer:
            add("peer", lambda: start_peer(servers, origin, workdir))
        if args.inspector:
            admin_port = free_port()
            unwatched = ("--admin-port", str(free_port()))
            add("edgeproxy-admin", lambda: start_edgeproxy(servers, origin, "edgeproxy-admin", extra=unwatched))
            watched = ("--admin-port", str(admin_port))
            add("edgeproxy-watched", lambda: start_edgeproxy(servers, origin, "edgeproxy-watched", extra=watched))
            watcher = servers.watch_inspector(f"http://127.0.0.1:{admin_port}")
        warnings = verify(list(targets.values()))
        print(f"servers up and verified; origin: {origin.description}; load: {generator_name}", file=sys.stderr)

        for name, server in targets.items():
            print(f"warm-up: {name}", file=sys.stderr)
            # In slices, each a new set of connections: a --workers target's kernel spreads every set differently,
            # and each worker's pool grows (cold starts) to the most connections it has held.
            for _ in range(WARMUP_SLICES):
                load(server.url + REQUEST_PATH, max(1.0, args.warmup / WARMUP_SLICES), args.connections)
        rounds: dict[str, list[Measurement]] = {name: [] for name in targets}
        for index in range(args.rounds):
            order = list(targets) if index % 2 == 0 else list(reversed(targets))
            for name in order:
                before, before_environments = cpu_seconds(targets[name].process.pid)
                result = load(targets[name].url + REQUEST_PATH, args.duration, args.connections)
                if result.requests:
                    after, after_environments = cpu_seconds(targets[name].process.pid)
                    result.cpu_us = (after - before) / result.requests * 1e6
                    result.environments_cpu_us = (after_environments - before_environments) / result.requests * 1e6
                rounds[name].append(result)
                print(f"round {index + 1}: {name}: {result.requests_per_second:.0f} requests/s", file=sys.stderr)
        for name, server in targets.items():
            if server.process.poll() is not None:
                raise BenchError(f"{name} exited during the measurement:\n{tail(server.log)}")
        if args.inspector:
            ring = json.loads(fetch(f"http://127.0.0.1:{admin_port}/api/exchanges")[1])
            if len(ring["exchanges"]) < ring["size"]:
                raise BenchError(f"the inspector's ring was not full: {len(ring['exchanges'])} of {ring['size']}")
            if watcher.poll() is not None:
                raise BenchError(f"the inspector watcher exited:\n{tail(workdir / 'watcher.log')}")
    finally:
        servers.stop()

    summaries = {name: Summary.of(name, rounds[name]) for name in targets}
    context = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "origin": origin.description,
        "load_generator": generator_name,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "request": REQUEST_PATH,
        "ratios": ratios(summaries, args.workers),
        "p50_added_us": p50_added(summaries),
    }
    if "edgeproxy-compared" in summaries:
        context["compared"] = str(args.compare)
    return summaries, context, warnings


# (numerator, denominator, what the ratio is called in the report)
RATIOS = [
    ("edgeproxy", "minimal", "edgeproxy (Python, process, the default) / minimal proxy"),
    ("edgeproxy-thread", "minimal", "edgeproxy (Python, thread) / minimal proxy"),
    ("edgeproxy-node", "minimal", "edgeproxy (Node.js) / minimal proxy"),
    ("edgeproxy-bare", "minimal", "edgeproxy with no handlers / minimal proxy"),
    ("edgeproxy", "edgeproxy-thread", "process / thread (Python)"),
    ("edgeproxy", "edgeproxy-asyncio", "edgeproxy on uvloop (the default) / on asyncio's loop"),
    ("edgeproxy-workers", "edgeproxy", "edgeproxy --workers N / one process"),
    ("edgeproxy-workers", "minimal", "edgeproxy --workers N / minimal proxy (one process)"),
    ("edgeproxy-thread-workers", "edgeproxy-thread", "edgeproxy thread --workers N / thread, one process"),
    ("edgeproxy-hit", "minimal", "edgeproxy on cache hits / minimal proxy"),
    ("edgeproxy-recording", "edgeproxy", "edgeproxy recording every exchange / edgeproxy"),
    ("edgeproxy-admin", "edgeproxy", "edgeproxy, inspector unwatched / edgeproxy"),
    ("edgeproxy-watched", "edgeproxy", "edgeproxy, inspector open, ring full / edgeproxy"),
    ("edgeproxy-compared", "minimal", "compared edgeproxy / minimal proxy"),
    ("edgeproxy-compared", "edgeproxy", "compared edgeproxy / this edgeproxy"),
    ("edgeproxy", "peer", "edgeproxy (Python, process) / serverless-offline-edge-lambda"),
    ("edgeproxy-node", "peer", "edgeproxy (Node.js) / serverless-offline-edge-lambda (Node.js both)"),
    ("edgeproxy-workers", "peer", "edgeproxy --workers N / serverless-offline-edge-lambda"),
]


def ratios(summaries: dict[str, Summary], workers: int | None) -> dict[str, float]:
    """The requests/s ratios between the targets measured, of their median rounds."""
    return {
        name.replace("--workers N", f"--workers {workers}"): (
            summaries[top].median.requests_per_second / summaries[bottom].median.requests_per_second
        )
        for top, bottom, name in RATIOS
        if top in summaries and bottom in summaries and summaries[bottom].median.requests_per_second
    }


def p50_added(summaries: dict[str, Summary]) -> dict[str, float]:
    """Each proxy's median latency over the minimal proxy's, in microseconds (from one connection, the time one
    request adds; under load it is mostly queueing)."""
    base = summaries["minimal"].median.p50_ms
    return {
        name: (summary.median.p50_ms - base) * 1000
        for name, summary in summaries.items()
        if name not in ("origin", "minimal") and summary.median.p50_ms is not None and base is not None
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per target, interleaved (default 3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target (default 2)")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "builtin"), default="auto")
    parser.add_argument("--origin", choices=("auto", "nginx", "aiohttp"), default="auto")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--no-node", action="store_true", help="leave out the Node.js pass-through handlers")
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="measure only these edgeproxy targets (comma-separated names: edgeproxy, edgeproxy-thread, "
        "edgeproxy-node, ..., peer), besides the origin and the minimal proxy",
    )
    parser.add_argument("--workers", type=int, metavar="N", help="also measure edgeproxy serve --workers N")
    parser.add_argument("--bare", action="store_true", help="also measure edgeproxy with no handlers")
    parser.add_argument("--asyncio", action="store_true", help="also measure edgeproxy on asyncio's own event loop")
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also measure serverless-offline-edge-lambda with 4 Node.js pass-through handlers (bench/peer/setup.sh "
        "installs it)",
    )
    parser.add_argument(
        "--recording",
        action="store_true",
        help="also measure edgeproxy recording every exchange (--record-mode all) and give its ratio to edgeproxy",
    )
    parser.add_argument(
        "--inspector",
        action="store_true",
        help="also measure edgeproxy with --admin-port, unwatched, and with its inspector open (a client reading "
        "its event stream, bench/inspector_watcher.py) and its ring full; give their ratios to edgeproxy",
    )
    parser.add_argument(
        "--cache-hit",
        action="store_true",
        help="also measure edgeproxy answering from its cache (CachingOptimized: every request after the first hits)",
    )
    parser.add_argument(
        "--compare",
        metavar="PYTHON",
        help="also measure the edgeproxy installed for this interpreter (another checkout's .venv/bin/python), "
        "interleaved with the others",
    )
    args = parser.parse_args()
    if args.duration <= 0 or args.connections < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--duration, --connections and --rounds must be positive, --warmup not negative")

    signal.signal(signal.SIGTERM, _raise_system_exit)  # so that the servers are stopped on SIGTERM too
    try:
        with tempfile.TemporaryDirectory(prefix="edgeproxy-bench-") as workdir:
            summaries, context, warnings = measure(args, Path(workdir))
    except BenchError as error:
        print(f"passthrough.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("passthrough.py: interrupted; servers stopped", file=sys.stderr)
        return 130
    except SystemExit:
        print("passthrough.py: terminated; servers stopped", file=sys.stderr)
        raise

    print(report(summaries, context, warnings))
    if args.json:
        figures = {
            **context,
            "warnings": warnings,
            "targets": {name: asdict(summary) for name, summary in summaries.items()},
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
