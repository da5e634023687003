"""A soak: many requests through edgeproxy with four pass-through handlers, watching its memory, its file
descriptors and the size of its log.

    .venv/bin/python bench/soak.py [--requests 200000] [--connections 32] [--slice 5] [--verbose-log]
        [--origin auto|nginx|aiohttp] [--json PATH]

What is measured
    ``edgeproxy serve --quiet`` with ``bench/passthrough_handler.py`` at all four triggers, in front of nginx (or
    ``bench/origin.py``), is driven by ``wrk -t1 -cN`` in slices of ``--slice`` seconds until ``--requests`` requests
    have been answered. After each slice the script reads the proxy's resident memory (``VmRSS``) and open file
    descriptors from ``/proc/<pid>``, and the size of its log (its stderr, as a user would keep it). A leak shows as
    a rising curve; the figures after the first slice (warm-up: modules, pools, threads) should stay flat.
    ``--verbose-log`` runs without ``--quiet`` (Lambda-style START/END/REPORT lines for every invocation).

Needs Linux (``/proc``) and ``wrk``; every server is stopped at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from passthrough import (
    HERE,
    NGINX,
    REQUEST_PATH,
    TRIGGERS,
    BenchError,
    Server,
    Servers,
    _raise_system_exit,
    edgeproxy_command,
    fetch,
    free_port,
    parse_wrk,
    start_origin,
)


@dataclass
class Sample:
    requests: int  # answered so far
    seconds: float
    rss_mb: float
    fds: int
    threads: int
    log_bytes: int
    errors: int


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def sample(server: Server, requests: int, started: float, errors: int) -> Sample:
    status = proc_status(server.process.pid)
    return Sample(
        requests=requests,
        seconds=round(time.monotonic() - started, 1),
        rss_mb=round(int(status["VmRSS"].split()[0]) / 1024, 1),
        fds=len(os.listdir(f"/proc/{server.process.pid}/fd")),
        threads=int(status["Threads"]),
        log_bytes=server.log.stat().st_size,
        errors=errors,
    )


def start_edgeproxy(servers: Servers, origin: Server, quiet: bool) -> Server:
    port = free_port()
    handler = f"{HERE / 'passthrough_handler.py'}:handler"
    command = [*edgeproxy_command(), "serve", "--origin", origin.url, "--host", "127.0.0.1", "--port", str(port)]
    command += [arg for trigger in TRIGGERS for arg in (f"--{trigger}", handler)]
    if quiet:
        command.append("--quiet")
    return servers.start("edgeproxy", "edgeproxy serve, 4 x pass-through", command, port, ready_text="listening on")


def soak(args: argparse.Namespace, workdir: Path) -> tuple[list[Sample], dict[str, object]]:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not on PATH (apt-get install -y wrk)")
    if not Path("/proc/self/status").exists():
        raise BenchError("needs Linux's /proc to read the proxy's memory and file descriptors")
    use_nginx = NGINX.exists() and args.origin != "aiohttp"
    servers = Servers(workdir)
    samples: list[Sample] = []
    try:
        origin = start_origin(servers, workdir, use_nginx)
        edgeproxy = start_edgeproxy(servers, origin, quiet=not args.verbose_log)
        status, _ = fetch(edgeproxy.url + REQUEST_PATH)
        if status != 200:
            raise BenchError(f"edgeproxy answered {status} to the first request; not soaking")
        started = time.monotonic()
        answered, errors = 1, 0
        samples.append(sample(edgeproxy, answered, started, errors))
        print(f"soaking {edgeproxy.url} with {args.requests} requests ({origin.description})", file=sys.stderr)
        while answered < args.requests:
            command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.slice}s", edgeproxy.url + REQUEST_PATH]
            done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=args.slice + 60)
            if done.returncode != 0:
                raise BenchError(f"wrk failed ({done.returncode}):\n{done.stderr or done.stdout}")
            measured = parse_wrk(done.stdout)
            answered += measured.requests
            errors += measured.errors
            if edgeproxy.process.poll() is not None:
                raise BenchError(f"edgeproxy exited during the soak (code {edgeproxy.process.returncode})")
            samples.append(sample(edgeproxy, answered, started, errors))
            last = samples[-1]
            print(
                f"{last.requests:>8} requests  {last.rss_mb:>7.1f} MB  {last.fds:>4} fds  {last.threads:>3} threads  "
                f"{last.log_bytes:>10} log bytes  {last.errors} errors",
                file=sys.stderr,
            )
    finally:
        servers.stop()
    context: dict[str, object] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "origin": origin.description,
        "connections": args.connections,
        "slice_s": args.slice,
        "quiet": not args.verbose_log,
    }
    return samples, context


def report(samples: list[Sample], context: dict[str, object]) -> str:
    first, warm, last = samples[0], samples[1], samples[-1]
    served = last.requests - first.requests
    lines = [
        f"edgeproxy soak, {context['date']}: {last.requests} requests in {last.seconds:g} s "
        f"({served / max(last.seconds, 0.001):.0f} requests/s), {context['connections']} connections, "
        f"origin: {context['origin']}, log: {'--quiet' if context['quiet'] else 'Lambda lines for every invocation'}",
        "",
        f"{'requests':>9} {'seconds':>8} {'RSS MB':>8} {'fds':>5} {'threads':>8} {'log bytes':>11} {'errors':>7}",
    ]
    step = max(1, (len(samples) - 1) // 12)  # about a dozen rows
    shown = [*samples[::step], last] if samples[::step][-1] is not last else samples[::step]
    for row in shown:
        lines.append(
            f"{row.requests:>9} {row.seconds:>8g} {row.rss_mb:>8.1f} {row.fds:>5} {row.threads:>8} "
            f"{row.log_bytes:>11} {row.errors:>7}"
        )
    lines += [
        "",
        f"RSS after the first slice: {warm.rss_mb:.1f} MB; at the end: {last.rss_mb:.1f} MB "
        f"(max {max(row.rss_mb for row in samples[1:]):.1f} MB)",
        f"file descriptors after the first slice: {warm.fds}; at the end: {last.fds} "
        f"(max {max(row.fds for row in samples[1:])})",
        f"log: {last.log_bytes} bytes, {last.log_bytes / served:.2f} bytes per request",
        f"errors (non-2xx/3xx or socket errors seen by wrk): {last.errors}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000, help="requests to send in all (default 200000)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--slice", type=int, default=5, help="seconds of load between two samples (default 5)")
    parser.add_argument("--verbose-log", action="store_true", help="without --quiet: Lambda lines for every call")
    parser.add_argument("--origin", choices=("auto", "nginx", "aiohttp"), default="auto")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the samples to PATH as JSON")
    args = parser.parse_args()
    if args.requests < 1 or args.connections < 1 or args.slice < 1:
        parser.error("--requests, --connections and --slice must be positive")
    signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        with tempfile.TemporaryDirectory(prefix="edgeproxy-soak-") as workdir:
            samples, context = soak(args, Path(workdir))
    except BenchError as error:
        print(f"soak.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("soak.py: interrupted; servers stopped", file=sys.stderr)
        return 130
    print(report(samples, context))
    if args.json:
        args.json.write_text(json.dumps({**context, "samples": [asdict(row) for row in samples]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
