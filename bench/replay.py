"""Entries per second of ``edgeproxy replay``: a recording of ``--entries`` exchanges (distinct paths, through four
pass-through handlers) is made first, then replayed through the same distribution with the origin answered from
the recording, as a golden test in CI would.

    .venv/bin/python bench/replay.py [--entries 10000] [--rounds 3] [--jobs N]

The recording is made by ``edgeproxy.testing.start`` in this process against a small aiohttp origin; the replay runs
``edgeproxy replay`` as a user runs it (its own process), timed from start to exit, and its report must say every
entry is the same. The figure is the median round. ``--jobs`` is passed on to ``edgeproxy replay`` (by default it
picks one process per CPU for a recording this long). The peak resident memory of the largest process the replays
ran (``ru_maxrss`` from ``wait4``) is printed too. That figure counts what the process spawning it had resident
(``ru_maxrss`` survives fork and exec), so the recording is made in a process of its own and this one stays small.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HANDLER = f"{HERE / 'passthrough_handler.py'}:handler"
BODY = bytes(b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(1024))


async def record(folder: Path, entries: int) -> tuple[Path, Path]:
    from aiohttp import web

    from edgeproxy.testing import start

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    origin = web.AppRunner(app)
    await origin.setup()
    site = web.TCPSite(origin, "127.0.0.1", 0)
    await site.start()
    port = origin.addresses[0][1]
    config = folder / "edgeproxy.toml"
    functions = "\n".join(
        f'{t} = "{HANDLER}"' for t in ("viewer-request", "origin-request", "origin-response", "viewer-response")
    )
    config.write_text(
        f'[origins.app]\nurl = "http://127.0.0.1:{port}"\n[default_behavior]\norigin = "app"\n'
        f"[default_behavior.functions]\n{functions}\n"
    )
    recording = folder / "recording.har"
    proxy = await start(config_file=config, recording=recording, record_mode="all")

    async def some(start_at: int) -> None:
        for n in range(start_at, entries, 16):
            async with proxy.client.get(f"/items/{n}?page={n % 7}") as response:
                await response.read()

    await asyncio.gather(*(some(k) for k in range(16)))
    await proxy.close()
    await origin.cleanup()
    return config, recording


def replay_once(config: Path, recording: Path, jobs: int | None) -> tuple[float, float]:
    """Seconds the whole command took, and the peak resident memory (MB) of its largest process."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "edgeproxy.cli", "replay", str(recording), "--config", str(config)]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command + ([] if jobs is None else ["--jobs", str(jobs)]), stdout=output, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)  # its own usage: it and the processes it waited for
        process.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        if process.returncode != 0:
            output.seek(0)
            raise SystemExit(f"replay failed ({process.returncode}):\n{output.read()[-4000:].decode()}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, help="edgeproxy replay --jobs (default: its own choice)")
    parser.add_argument("--record-into", type=Path, help=argparse.SUPPRESS)  # the recording process
    args = parser.parse_args()
    logging.disable(logging.INFO)
    if args.record_into is not None:
        asyncio.run(record(args.record_into, args.entries))
        return 0
    with tempfile.TemporaryDirectory(prefix="edgeproxy-replay-bench-") as workdir:
        print(f"recording {args.entries} exchanges...", file=sys.stderr)
        command = [sys.executable, __file__, "--entries", str(args.entries), "--record-into", workdir]
        subprocess.run(command, check=True)
        config, recording = Path(workdir) / "edgeproxy.toml", Path(workdir) / "recording.har"
        size = recording.stat().st_size
        rates, peaks = [], []
        for index in range(args.rounds):
            seconds, peak = replay_once(config, recording, args.jobs)
            rates.append(args.entries / seconds)
            peaks.append(peak)
            print(f"round {index + 1}: {seconds:.2f} s, {rates[-1]:.0f} entries/s, {peak:.0f} MB", file=sys.stderr)
    jobs = "" if args.jobs is None else f" --jobs {args.jobs}"
    print(f"edgeproxy replay{jobs} of {args.entries} entries ({size / 1e6:.1f} MB of HAR), whole command,", end=" ")
    print(f"median of {args.rounds}:")
    print(f"{statistics.median(rates):.0f} entries/s (rounds: {', '.join(f'{rate:.0f}' for rate in rates)})")
    print(f"peak resident memory of its largest process: {max(peaks):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
