"""Instructions per request of the proxy process, two proxies side by side, counted by Valgrind's callgrind
(deterministic, unlike time on a shared machine).

    .venv/bin/python bench/instructions.py --compare CHECKOUT [--requests 800] [--connections 32] [--isolation thread]
    .venv/bin/python bench/instructions.py --inspector [--requests 700] [--ring 500] [--connections 4]

What is measured
    Two ``edgeproxy serve`` processes with the pass-through handler at the four triggers (``bench/
    passthrough_handler.py``, in execution environments unless ``--isolation thread``), each under callgrind:

    * ``--compare CHECKOUT``: the code of another checkout (run with ``PYTHONPATH=CHECKOUT``, with this
      interpreter and its packages) against this one: what a change costs or saves;
    * ``--inspector``: this code with ``--admin-port``, left unwatched, against the same with
      ``bench/inspector_watcher.py`` reading its inspector's event stream as an open page does (``--requests`` must
      be enough to fill the ring of ``--ring`` exchanges).

    Each gets 80 requests to warm up, then callgrind counts the proxy process's instructions (its environments,
    the origin and the clients are not counted) over ``--requests`` more from ``--connections`` concurrent aiohttp
    clients. Printed: instructions per request, both, and their ratio. The origin is ``bench/origin.py`` (aiohttp,
    a 1024-byte body). The two run at the same time.

    Under callgrind the proxy runs some 50 times slower: a run takes a minute or two. Needs ``valgrind``
    (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Proxy:
    """One of the two proxies: its name, the checkout whose code it runs (``None``: this one), and whether an
    inspector page watches it."""

    name: str
    checkout: Path | None = None
    watched: bool = False


def count(proxy_spec: Proxy, origin: str, workdir: Path, args: argparse.Namespace) -> int:
    """The proxy process's instructions over ``args.requests`` requests, after the warm-up."""
    out = workdir / f"callgrind.{proxy_spec.name}"
    port, admin = free_port(), free_port()
    handler = f"{HERE / 'passthrough_handler.py'}:handler"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    command += [PYTHON, "-m", "edgeproxy.cli", "serve", "--origin", origin, "--port", str(port), "--quiet"]
    command += ["--isolation", args.isolation]
    if args.inspector:
        command += ["--admin-port", str(admin), "--inspector-ring", str(args.ring)]
    command += [arg for trigger in TRIGGERS for arg in (f"--{trigger}", handler)]
    environment = dict(os.environ)
    if proxy_spec.checkout is not None:
        environment["PYTHONPATH"] = str(proxy_spec.checkout)
    proxy = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment, cwd=workdir
    )
    watcher = None
    try:
        assert proxy.stdout is not None
        if "listening" not in proxy.stdout.readline():
            raise SystemExit(f"edgeproxy ({proxy_spec.name}) did not start")
        if proxy_spec.watched:
            watcher_command = [PYTHON, str(HERE / "inspector_watcher.py"), f"http://127.0.0.1:{admin}"]
            watcher = subprocess.Popen(watcher_command, stdout=subprocess.DEVNULL)
            time.sleep(3)  # connected, and the ring attached
        url = f"http://127.0.0.1:{port}/a"
        asyncio.run(load(url, WARM_UP, args.connections))
        subprocess.run(["callgrind_control", "-i", "on", str(proxy.pid)], capture_output=True, check=True)
        asyncio.run(load(url, args.requests, args.connections))
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
    for path in workdir.glob(f"callgrind.{proxy_spec.name}*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--compare", type=Path, metavar="CHECKOUT", help="another checkout's code against this one")
    which.add_argument("--inspector", action="store_true", help="the inspector unwatched against open, ring full")
    parser.add_argument("--requests", type=int, default=700, help="requests counted (default 700)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--isolation", choices=("process", "thread"), default="process")
    parser.add_argument("--ring", type=int, default=500, help="with --inspector: the ring's size (default 500)")
    args = parser.parse_args()
    if args.compare is not None:
        pair = (Proxy("before", checkout=args.compare.resolve()), Proxy("after"))
    else:
        pair = (Proxy("unwatched"), Proxy("open", watched=True))
    with tempfile.TemporaryDirectory(prefix="edgeproxy-instructions-") as folder:
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
            with concurrent.futures.ThreadPoolExecutor(2) as both:
                first, second = both.map(lambda spec: count(spec, url, workdir, args), pair)
        finally:
            origin.terminate()
            origin.wait()
    per = args.requests
    what = f"ring of {args.ring}" if args.inspector else f"{args.isolation} isolation"
    print(f"instructions per request, proxy process, {per} requests over {args.connections} connections, {what}:")
    for spec, total in zip(pair, (first, second), strict=True):
        label = f"{spec.name} ({spec.checkout})" if spec.checkout else spec.name
        print(f"  {label:<40} {total / per:>12,.0f}")
    print(f"  ratio {pair[1].name} / {pair[0].name}: {second / first:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
