"""What an open inspector page does to the proxy, without a browser: read the inspector's event stream and parse
every batch of exchanges, as the page's script does (``bench/passthrough.py --inspector`` runs one).

    .venv/bin/python bench/inspector_watcher.py http://127.0.0.1:PORT

Prints how many exchanges it was sent when it is stopped (SIGTERM or Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys

import aiohttp


async def watch(admin: str, seen: list[int]) -> None:
    async with aiohttp.ClientSession() as client, client.get(admin + "/api/stream", timeout=None) as stream:
        async for line in stream.content:
            if line.startswith(b"data: "):
                data = json.loads(line[6:])
                seen[0] += len(data) if isinstance(data, list) else 1


def main() -> int:
    seen = [0]
    loop = asyncio.new_event_loop()
    task = loop.create_task(watch(sys.argv[1].rstrip("/"), seen))
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        loop.run_until_complete(task)
    print(f"inspector watcher: {seen[0]} exchanges received", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
