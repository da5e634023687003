"""The baseline: about the smallest reasonable aiohttp forwarding proxy, with no CloudFront semantics at all.

    python bench/minimal_proxy.py --port PORT --origin http://127.0.0.1:ORIGIN_PORT

Every request is forwarded with ONE shared ``aiohttp.ClientSession`` (``auto_decompress=False``, pooled keep-alive
connections) to the origin, keeping the raw path and query; the status, reason, headers (less hop-by-hop ones and
those named in ``Connection``, repeats kept) and the body come back, the body streamed chunk by chunk.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
ORIGIN = web.AppKey("origin", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """``headers`` without the hop-by-hop ones (RFC 9110 §7.6.1), in order, repeats kept."""
    named = {token.strip().lower() for value in headers.getall("Connection", ()) for token in value.split(",")}
    skip = HOP_BY_HOP.union(named)
    return CIMultiDict((name, value) for name, value in headers.items() if name.lower() not in skip)


async def forward(request: web.Request) -> web.StreamResponse:
    headers = end_to_end(request.headers)
    headers.popall("Host", None)  # the session sets the origin's
    async with request.app[SESSION].request(
        request.method,
        URL(request.app[ORIGIN] + request.raw_path, encoded=True),
        headers=headers,
        data=request.content if request.body_exists else None,
        allow_redirects=False,
    ) as upstream:
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=end_to_end(upstream.headers)
        )
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def client_session(app: web.Application) -> AsyncIterator[None]:
    app[SESSION] = aiohttp.ClientSession(
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),  # a proxy must not keep the origin's cookies
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )
    yield
    await app[SESSION].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--origin", required=True, help="origin base URL, e.g. http://127.0.0.1:8081")
    args = parser.parse_args()
    app = web.Application()
    app[ORIGIN] = args.origin.rstrip("/")
    app.cleanup_ctx.append(client_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
