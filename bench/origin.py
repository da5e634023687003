"""A fast, fixed origin for the benchmarks: every GET answers a 1 KiB body. ``python bench/origin.py PORT``."""

from __future__ import annotations

import sys

from aiohttp import web

BODY = b"x" * 1024


async def answer(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="text/plain")


if __name__ == "__main__":
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
