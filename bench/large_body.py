"""A large POST through edgeproxy with include-body at viewer-request and origin-request: the proxy's memory, and
whether the origin receives the body byte for byte.

    .venv/bin/python bench/large_body.py [--megabytes 300]

The handlers see the body's first 40 KB and 1 MB (§1.5); the rest should stream through, so the proxy's peak
resident memory (``VmHWM`` in ``/proc/<pid>/status``) should stay near its idle size, whatever the body's size. The
origin (``bench/origin.py --digest``) answers with the length and SHA-256 of what it received, which must be the
body's. Needs Linux (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from passthrough import HERE, PYTHON, BenchError, Servers, edgeproxy_command, free_port
from soak import proc_status

BLOCK = bytes(range(256)) * 256  # 64 KiB


async def post(url: str, megabytes: int) -> tuple[int, str, float]:
    blocks = megabytes * 16

    async def body() -> AsyncIterator[bytes]:
        for _ in range(blocks):
            yield BLOCK

    headers = {"Content-Length": str(blocks * len(BLOCK)), "Content-Type": "application/octet-stream"}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=timeout) as session, session.post(url, data=body(), headers=headers) as r:
        return r.status, await r.text(), time.monotonic() - started


def megabytes(status_value: str) -> str:
    """``"12345 kB"`` from /proc/<pid>/status -> ``"12.1"``."""
    return f"{int(status_value.split()[0]) / 1024:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=300, help="body size in MiB (default 300)")
    args = parser.parse_args()
    expected = hashlib.sha256()
    for _ in range(args.megabytes * 16):
        expected.update(BLOCK)
    with tempfile.TemporaryDirectory(prefix="edgeproxy-large-body-") as workdir:
        servers = Servers(Path(workdir))
        try:
            port = free_port()
            digest = [PYTHON, str(HERE / "origin.py"), "--port", str(port), "--digest"]
            origin = servers.start("origin", "bench/origin.py --digest", digest, port)
            port = free_port()
            handler = f"{HERE / 'passthrough_handler.py'}:handler"
            command = [*edgeproxy_command(), "serve", "--origin", origin.url, "--port", str(port), "--quiet"]
            command += ["--include-body", "--viewer-request", handler, "--origin-request", handler]
            proxy = servers.start("edgeproxy", "edgeproxy", command, port, ready_text="listening on")
            before = proc_status(proxy.process.pid)
            status, answer, seconds = asyncio.run(post(proxy.url + "/upload", args.megabytes))
            after = proc_status(proxy.process.pid)
        except BenchError as error:
            print(f"large_body.py: {error}", file=sys.stderr)
            return 1
        finally:
            servers.stop()
    size = args.megabytes * 1024 * 1024
    ok = status == 200 and answer == f"{size} {expected.hexdigest()}"
    print(f"POST of {args.megabytes} MiB, include-body at viewer- and origin-request: {status} in {seconds:.1f} s")
    print(f"origin received it byte for byte: {'yes' if ok else 'NO: ' + answer}")
    print(
        f"proxy RSS before: {megabytes(before['VmRSS'])} MB; after: {megabytes(after['VmRSS'])} MB; "
        f"peak (VmHWM): {megabytes(after['VmHWM'])} MB"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
