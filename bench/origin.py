"""The fallback origin for the benchmarks, used when nginx is not installed: every request gets the same body.
With ``--digest``, every request gets the length and SHA-256 of its own body instead (read in chunks, never held).

python bench/origin.py --port PORT (--body FILE | --digest)
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--body", type=Path, help="file whose bytes are every response's body")
    given.add_argument("--digest", action="store_true", help="answer with the length and SHA-256 of the request body")
    args = parser.parse_args()
    body = args.body.read_bytes() if args.body else b""

    async def answer(request: web.Request) -> web.Response:
        if not args.digest:
            return web.Response(body=body, content_type="text/plain")
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        return web.Response(text=f"{size} {digest.hexdigest()}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
