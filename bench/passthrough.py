"""Requests per second through edgeproxy with four pass-through handlers, against a minimal aiohttp proxy.

    .venv/bin/python bench/passthrough.py [--duration 10] [--connections 32] [--rounds 2] [--json out.json]

One run starts, each as its own process on a free loopback port:

* ``origin``: ``bench/origin.py``, answering every GET with a fixed 1 KiB body;
* ``minimal``: ``bench/minimal_proxy.py``, the baseline, forwarding to the origin;
* ``edgeproxy``: ``edgeproxy serve`` with ``bench/passthrough_handler.py`` at all four triggers, same origin.

It checks that both proxies return the origin's body byte for byte, warms each up, then drives each with the same
closed-loop load (``wrk`` if it is on PATH, otherwise a built-in aiohttp client in a separate process), alternating
targets for ``--rounds`` rounds and keeping each target's best round. It prints requests/s, latency percentiles and
the ratio edgeproxy / minimal. On a 2-core machine the load generator shares the CPU with the proxy and the origin;
the ratio is the meaningful figure, not the absolute rates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
TRIGGERS = ("viewer-request", "origin-request", "origin-response", "viewer-response")


@dataclass
class Result:
    target: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on port {port} after {timeout} s")


@contextlib.contextmanager
def servers() -> Iterator[dict[str, str]]:
    """Start the origin and both proxies; yield their URLs; always stop them."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], port: int) -> str:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        wait_until_listening(port, process)
        return f"http://127.0.0.1:{port}"

    try:
        origin_port, minimal_port, edge_port = free_port(), free_port(), free_port()
        origin = start([PYTHON, str(HERE / "origin.py"), str(origin_port)], origin_port)
        minimal = start([PYTHON, str(HERE / "minimal_proxy.py"), str(minimal_port), origin], minimal_port)
        handler = f"{HERE / 'passthrough_handler.py'}:handler"
        edge_command = [PYTHON, "-m", "edgeproxy.cli", "serve", "--origin", origin, "--port", str(edge_port)]
        edge_command += [arg for trigger in TRIGGERS for arg in (f"--{trigger}", handler)]
        edgeproxy = start(edge_command, edge_port)
        yield {"origin": origin, "minimal": minimal, "edgeproxy": edgeproxy}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def run_wrk(url: str, duration: float, connections: int) -> Result:
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", output, re.MULTILINE)
        if match is None:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|errors: .*?timeout)\D+(\d+)", output))
    return Result("", rate, percentile("50"), percentile("99"), errors)


LOAD_SCRIPT = """
import asyncio, json, sys, time
import aiohttp

async def main(url, duration, connections):
    latencies, errors = [], 0
    deadline = time.perf_counter() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        async def worker():
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - start)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(json.dumps({"rate": len(latencies) / elapsed, "p50": pick(0.5), "p99": pick(0.99), "errors": errors}))

asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
"""


def run_builtin(url: str, duration: float, connections: int) -> Result:
    output = subprocess.run(
        [PYTHON, "-c", LOAD_SCRIPT, url, str(duration), str(connections)], capture_output=True, text=True, check=True
    ).stdout
    figures = json.loads(output)
    return Result("", figures["rate"], figures["p50"], figures["p99"], figures["errors"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    tool = "wrk" if shutil.which("wrk") else "built-in aiohttp client"
    measure = run_wrk if tool == "wrk" else run_builtin

    with servers() as urls:
        path = "/bench/item?id=42"
        expected = fetch(urls["origin"] + path)
        for name in ("minimal", "edgeproxy"):
            if fetch(urls[name] + path) != expected:
                raise SystemExit(f"{name} did not return the origin's body byte for byte; not measuring")
        best: dict[str, Result] = {}
        for name in ("minimal", "edgeproxy"):
            measure(urls[name] + path, 2.0, args.connections)  # warm-up
        for _ in range(args.rounds):
            for name in ("minimal", "edgeproxy"):
                result = measure(urls[name] + path, args.duration, args.connections)
                result.target = name
                if name not in best or result.requests_per_second > best[name].requests_per_second:
                    best[name] = result

    ratio = best["edgeproxy"].requests_per_second / best["minimal"].requests_per_second
    print(
        f"origin: bench/origin.py (aiohttp, 1 KiB body); load: {tool}, {args.connections} connections, "
        f"{args.duration:g} s x {args.rounds} rounds, best round kept; {os.cpu_count()} CPUs shared by all processes"
    )
    print(f"{'target':<28}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    labels = {"minimal": "minimal aiohttp proxy", "edgeproxy": "edgeproxy, 4 pass-through"}
    for name in ("minimal", "edgeproxy"):
        r = best[name]
        print(f"{labels[name]:<28}{r.requests_per_second:>12.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}")
    print(f"ratio edgeproxy / minimal: {ratio:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps({"tool": tool, "ratio": ratio, "results": [asdict(r) for r in best.values()]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
