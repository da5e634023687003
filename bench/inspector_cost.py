"""What an open inspector costs the proxy, counted in instructions (deterministic, unlike time on a shared machine).

    .venv/bin/python bench/inspector_cost.py [--requests 700] [--ring 500] [--connections 4]

What is measured
    Two ``edgeproxy serve`` processes with the pass-through handler at the four triggers (``bench/
    passthrough_handler.py``, in execution environments), each run under Valgrind's callgrind, both with
    ``--admin-port``; one is left unwatched, the other has ``bench/inspector_watcher.py`` reading its inspector's
    event stream, as an open page does. Each gets 80 requests to warm up, then callgrind counts the proxy
    process's instructions (its environments, the origin and the clients are not counted) over ``--requests``
    more, enough to fill the ring of ``--ring`` exchanges. Printed: instructions per request, both, and their
    ratio. The origin is ``bench/origin.py`` (aiohttp, a 1024-byte body), the load a few concurrent aiohttp clients.

    Under callgrind the proxy runs some 50 times slower: a run takes a minute or two. Needs ``valgrind``
    (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
TRIGGERS = ("viewer-request", "origin-request", "origin-response", "viewer-response")
WARM_UP = 80


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def load(url: str, requests: int, connections: int) -> None:
    left = [requests]
    async with aiohttp.ClientSession() as client:

        async def one() -> None:
            while left[0] > 0:
                left[0] -= 1
                async with client.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{url}: {response.status}")

        await asyncio.gather(*(one() for _ in range(connections)))


def count(origin: str, workdir: Path, *, watched: bool, requests: int, ring: int, connections: int) -> int:
    """The proxy process's instructions over ``requests`` requests, after the warm-up."""
    name = "watched" if watched else "unwatched"
    out = workdir / f"callgrind.{name}"
    port, admin = free_port(), free_port()
    handler = f"{HERE / 'passthrough_handler.py'}:handler"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    command += [PYTHON, "-m", "edgeproxy.cli", "serve", "--origin", origin, "--port", str(port), "--quiet"]
    command += ["--admin-port", str(admin), "--inspector-ring", str(ring)]
    command += [arg for trigger in TRIGGERS for arg in (f"--{trigger}", handler)]
    proxy = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watcher = None
    try:
        assert proxy.stdout is not None
        if "listening" not in proxy.stdout.readline():
            raise SystemExit("edgeproxy did not start")
        if watched:
            watcher_command = [PYTHON, str(HERE / "inspector_watcher.py"), f"http://127.0.0.1:{admin}"]
            watcher = subprocess.Popen(watcher_command, stdout=subprocess.DEVNULL)
            time.sleep(3)  # connected, and the ring attached
        url = f"http://127.0.0.1:{port}/a"
        asyncio.run(load(url, WARM_UP, connections))
        subprocess.run(["callgrind_control", "-i", "on", str(proxy.pid)], capture_output=True, check=True)
        asyncio.run(load(url, requests, connections))
        subprocess.run(["callgrind_control", "-i", "off", str(proxy.pid)], capture_output=True, check=True)
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait()
        proxy.send_signal(signal.SIGTERM)
        try:
            proxy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()
    total = 0
    for path in workdir.glob(f"callgrind.{name}*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=700, help="requests counted (default 700)")
    parser.add_argument("--ring", type=int, default=500, help="the inspector's ring size (default 500)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent clients (default 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgeproxy-inspector-cost-") as folder:
        workdir = Path(folder)
        origin_port = free_port()
        body = workdir / "body.txt"
        body.write_bytes(b"x" * 1024)
        origin = subprocess.Popen(
            [PYTHON, str(HERE / "origin.py"), "--port", str(origin_port), "--body", str(body)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", origin_port), 0.2):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("bench/origin.py did not start")
                time.sleep(0.05)
            url = f"http://127.0.0.1:{origin_port}"
            options = {"requests": args.requests, "ring": args.ring, "connections": args.connections}
            unwatched = count(url, workdir, watched=False, **options)
            watched = count(url, workdir, watched=True, **options)
        finally:
            origin.terminate()
            origin.wait()
    per = args.requests
    print(f"instructions per request, proxy process, {args.requests} requests, ring of {args.ring}:")
    print(f"  inspector unwatched   {unwatched / per:>12,.0f}")
    print(f"  inspector open        {watched / per:>12,.0f}")
    print(f"  ratio open / unwatched: {watched / unwatched:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
