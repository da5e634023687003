"""The fallback load generator, used when ``wrk`` is not on PATH: a closed loop of concurrent aiohttp clients.

    python bench/loadgen.py URL --duration SECONDS --connections N

``N`` workers share one ``ClientSession`` limited to ``N`` keep-alive connections; each sends a GET, reads the whole
body and sends the next, until ``SECONDS`` have passed. Prints one JSON object: requests, requests_per_second (of
the successful requests), errors (non-2xx/3xx answers and failed requests), p50_ms and p99_ms (successful ones).

It is Python, so it costs far more CPU per request than wrk: on a small machine it can be the bottleneck for the
faster target, which flattens the differences between targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


async def run(url: str, duration: float, connections: int) -> dict[str, float | int | None]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
        started = time.perf_counter()
        deadline = started + duration

        async def worker() -> None:
            nonlocal errors
            while (start := time.perf_counter()) < deadline:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        ok = 200 <= response.status < 400
                except (aiohttp.ClientError, OSError, TimeoutError):
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    return {
        "requests_per_second": len(latencies) / elapsed,
        "requests": len(latencies) + errors,
        "errors": errors,
        "p50_ms": None if p50 is None else p50 * 1000,
        "p99_ms": None if p99 is None else p99 * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--connections", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.duration, args.connections))))


if __name__ == "__main__":
    main()
