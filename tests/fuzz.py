"""Property-based fuzzing of the proxy, reusable by any test module (record/replay, cache, environments...).

What is here:

* hypothesis strategies: :func:`cloudfront_programs` (a handler result of every shape, at one of the four triggers:
  an edit of the event's request or response, a generated response, or any JSON value at all),
  :func:`alb_programs` (an ALB target's result of every shape, in either header mode) and :func:`request_heads`
  (malformed viewer request heads);
* :class:`FuzzProxy`: edgeproxy (either mode) in front of a small origin, running on an event loop in a thread of its
  own so that thousands of examples go through ONE running proxy: each example stores its program under an id, and
  the handlers play it back for the request whose path carries that id;
* :class:`RawClient`: a strict HTTP/1.1 client over a raw socket, which fails on an empty reply, a malformed status
  line or header, a body that does not match its framing, or no answer in time;
* the property, :meth:`FuzzProxy.check_cloudfront` / :meth:`FuzzProxy.check_alb` / :meth:`FuzzProxy.check_head`:
  every response is CloudFront's (or the ALB's) own status and ``X-Cache`` for that input, as edgeproxy's validator
  decides it, well framed, and the proxy serves the next request.

    with FuzzProxy.cloudfront() as proxy:
        @given(cloudfront_programs())
        def test(program): proxy.check_cloudfront(program)
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st

from edgeproxy import testing
from edgeproxy.errors import AlbError, LambdaValidationError
from edgeproxy.events import alb as alb_events
from edgeproxy.events import cloudfront
from edgeproxy.rules import STRICT, validate
from edgeproxy.runtime.marshal import MarshalError, copy_json, marshalled
from edgeproxy.triggers import TRIGGERS, Trigger

# Bounded by examples, not time: deterministic (derandomized) and fast in CI; no example database anywhere.
settings.register_profile(
    "fuzz",
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FUZZ = settings.get_profile("fuzz")

ORIGIN_BODY = b"the origin's body"
ORIGIN_SERVER = "fuzz-origin"  # so that the origin's own answers are told apart from the proxy's
TIMEOUT = 10.0

# -- values -----------------------------------------------------------------------------------------------------------

# Characters that break things: every kind of control character, tab, non-ASCII, an astral one, lone surrogates.
TRICKY = ["\t", "\r", "\n", "\x00", "\x01", "\x0b", "\x1b", "\x7f", "é", "€", "😀", "\ud800", "\udfff", " ", ":", "#"]
texts = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(codec="utf-8"), max_size=12)
safe_texts = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
big_texts = st.sampled_from(["x" * 41_000, "y" * 40_000, "z" * 1_100_000])
json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | texts
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)

HEADER_NAMES = [
    "host",
    "content-length",
    "transfer-encoding",
    "via",
    "warning",
    "x-cache",
    "connection",
    "keep-alive",
    "x-amz-cf-id",
    "x-edge-location",
    "x-forwarded-proto",
    "set-cookie",
    "content-type",
    "content-encoding",
    "location",
    "cloudfront-viewer-country",
    "accept-encoding",
    "if-none-match",
    "x-a",
    "X-Upper",
    "x a",
    "",
    "x-ä",
]
token_names = st.text(alphabet=st.sampled_from("abcdefxyz-_0123"), min_size=1, max_size=10).map(lambda n: "x-" + n)
header_names = st.sampled_from(HEADER_NAMES) | token_names | st.text(st.sampled_from("abcxyz-_0!~ :é"), max_size=8)
# Values mostly fine, now and then with a tricky character in them: the ones validation must catch.
plausible_values = safe_texts | st.sampled_from(["0", "3", "100000", "chunked", "-1", "abc", "text/html", "a\tb"])
header_values = plausible_values | plausible_values | texts
header_entries = st.lists(
    st.fixed_dictionaries({"value": header_values}, optional={"key": st.sampled_from(["X-A", "x-a", "Host"]) | texts})
    | st.fixed_dictionaries({"value": header_values})
    | st.fixed_dictionaries({"value": json_scalars})
    | json_values,
    max_size=3,
)
plausible_entries = st.lists(st.fixed_dictionaries({"value": header_values}), max_size=2)
plausible_header_maps = st.dictionaries(token_names, plausible_entries)
header_maps = (
    plausible_header_maps
    | plausible_header_maps
    | st.dictionaries(header_names, header_entries, max_size=3)
    | st.just({f"x-h{n}": [{"value": "v" * 1000}] for n in range(45)})  # over 40 KB of headers alone
)

valid_statuses = st.integers(200, 599).map(str) | st.sampled_from(["200", "204", "301", "302", "304", "404", "503"])
statuses = (
    valid_statuses
    | valid_statuses
    | st.sampled_from(["600", "199", "0200", "2" * 5000, "abc", "", " 200"])
    | st.integers(100, 700)
    | json_scalars
)
base64_texts = st.binary(max_size=40).map(lambda data: base64.b64encode(data).decode())
bodies = safe_texts | texts | big_texts | base64_texts
body_encodings = st.sampled_from(["text", "text", "base64", "gzip"]) | json_scalars

# -- CloudFront programs ----------------------------------------------------------------------------------------------

Edit = tuple[Any, ...]

request_edits = st.one_of(
    st.tuples(st.just("header"), header_names, header_entries),
    st.tuples(st.just("del_header"), st.sampled_from(["host", "via", "user-agent", "x-fuzz", "content-length"])),
    st.tuples(
        st.just("field"),
        st.sampled_from(["uri", "querystring", "method", "clientIp", "headers"]),
        st.sampled_from(["/", "/elsewhere", "no-slash", "/a b", "/" + "u" * 9000, "a=1", "a b", "a#b", "POST"])
        | json_values,
    ),
    st.tuples(st.just("del_field"), st.sampled_from(["uri", "headers", "querystring", "origin", "body"])),
    st.tuples(
        st.just("body"),
        st.fixed_dictionaries(
            {},
            optional={
                "action": st.sampled_from(["replace", "read-only", "other"]),
                "encoding": st.sampled_from(["text", "base64", "gzip"]),
                "data": bodies | json_scalars,
            },
        )
        | json_values,
    ),
    st.tuples(
        st.just("origin"),
        st.sampled_from(["domainName", "port", "protocol", "path", "readTimeout", "customHeaders", "sslProtocols"]),
        st.sampled_from(["127.0.0.1", "localhost", "-bad-", "a" * 64, "http", "https", "/p", "p/", 1, 80, 70000])
        | json_values,
    ),
)
response_edits = st.one_of(
    st.tuples(st.just("header"), header_names, header_entries),
    st.tuples(st.just("del_header"), st.sampled_from(["transfer-encoding", "via", "content-length", "content-type"])),
    st.tuples(st.just("field"), st.just("status"), statuses),
    st.tuples(st.just("field"), st.just("statusDescription"), texts | json_scalars),
    st.tuples(st.just("field"), st.just("body"), bodies | json_scalars),
    st.tuples(st.just("field"), st.just("bodyEncoding"), body_encodings),
    st.tuples(st.just("field"), st.just("headers"), header_maps | json_values),
    st.tuples(st.just("del_field"), st.sampled_from(["status", "headers", "statusDescription"])),
)
generated_responses = st.fixed_dictionaries(
    {"status": statuses},
    optional={
        "statusDescription": safe_texts | texts,
        "headers": header_maps,
        "body": bodies,
        "bodyEncoding": body_encodings,
    },
) | st.fixed_dictionaries(  # base64 bodies that decode
    {"status": valid_statuses, "body": base64_texts, "bodyEncoding": st.just("base64")},
    optional={"headers": plausible_header_maps},
)


@dataclass(frozen=True)
class Program:
    """What the handler at ``trigger`` returns for one request: ``literal`` if given, else the event's request (at
    request triggers) or response (at response triggers) with ``edits`` applied. The other triggers pass the event
    through. ``method`` and ``origin`` say what request the viewer sends and how the origin answers it."""

    trigger: Trigger
    edits: tuple[Edit, ...] = ()
    literal: Any = None
    use_literal: bool = False
    method: str = "GET"
    origin: str = "length"  # "length" (Content-Length), "chunked", or "404"

    def apply(self, event: dict[str, Any]) -> Any:
        if self.use_literal:
            return copy_json(self.literal)
        cf = event["Records"][0]["cf"]
        target = cf["response"] if self.trigger.endswith("response") else cf["request"]
        for edit in self.edits:
            _apply(target, edit)
        return target


def _apply(target: dict[str, Any], edit: Edit) -> None:
    kind = edit[0]
    headers = target.get("headers")
    if kind == "header" and isinstance(headers, dict):
        headers[edit[1]] = copy_json(edit[2])
    elif kind == "del_header" and isinstance(headers, dict):
        headers.pop(edit[1], None)
    elif kind == "field":
        target[edit[1]] = copy_json(edit[2])
    elif kind == "del_field":
        target.pop(edit[1], None)
    elif kind == "body":
        target["body"] = copy_json(edit[1])
    elif kind == "origin" and isinstance(target.get("origin"), dict) and "custom" in target["origin"]:
        target["origin"]["custom"][edit[1]] = copy_json(edit[2])


@st.composite
def cloudfront_programs(draw: st.DrawFn) -> Program:
    """A handler result of every shape at one of the four triggers."""
    trigger: Trigger = draw(st.sampled_from(TRIGGERS))
    method = draw(st.sampled_from(["GET", "GET", "GET", "HEAD", "POST"]))
    origin = draw(st.sampled_from(["length", "length", "chunked", "404"]))
    shape = draw(st.sampled_from(["edit", "edit", "edit", "generated", "literal"]))
    if shape == "literal":
        return Program(trigger, literal=draw(json_values), use_literal=True, method=method, origin=origin)
    if shape == "generated" and trigger in ("viewer-request", "origin-request"):
        return Program(trigger, literal=draw(generated_responses), use_literal=True, method=method, origin=origin)
    edits = request_edits if trigger in ("viewer-request", "origin-request") else response_edits
    return Program(trigger, tuple(draw(st.lists(edits, min_size=0, max_size=3))), method=method, origin=origin)


# -- ALB programs -----------------------------------------------------------------------------------------------------

alb_header_values = header_values | header_values | json_scalars
alb_status_codes = st.integers(200, 599) | st.integers(200, 599) | st.integers(100, 700) | json_scalars
alb_results = (
    st.fixed_dictionaries(
        {"statusCode": alb_status_codes},
        optional={
            "statusDescription": safe_texts | texts | st.sampled_from(["200 OK", "404 Not Found"]),
            "headers": st.dictionaries(token_names, alb_header_values, max_size=3),
            "multiValueHeaders": st.dictionaries(token_names, st.lists(alb_header_values, max_size=3), max_size=3),
            "body": safe_texts | texts | big_texts,
            "isBase64Encoded": st.just(False),
        },
    )
    | st.fixed_dictionaries(
        {"statusCode": alb_status_codes, "body": base64_texts | texts, "isBase64Encoded": st.just(True)},
        optional={"headers": st.dictionaries(header_names, alb_header_values, max_size=3)},
    )
    | st.fixed_dictionaries(
        {},
        optional={
            "statusCode": alb_status_codes,
            "statusDescription": texts | json_scalars,
            "headers": st.dictionaries(header_names, alb_header_values, max_size=3) | json_values,
            "multiValueHeaders": st.dictionaries(header_names, st.lists(alb_header_values, max_size=3), max_size=3)
            | json_values,
            "body": bodies | json_scalars,
            "isBase64Encoded": st.booleans() | json_scalars,
        },
    )
    | json_values
)


@dataclass(frozen=True)
class AlbProgram:
    """What the ALB target returns for one request, in single- or multi-value mode."""

    result: Any
    multi_value: bool
    method: str = "GET"


@st.composite
def alb_programs(draw: st.DrawFn) -> AlbProgram:
    return AlbProgram(draw(alb_results), draw(st.booleans()), draw(st.sampled_from(["GET", "GET", "HEAD", "POST"])))


# -- request heads ----------------------------------------------------------------------------------------------------

VALID_HEAD = b"GET /head?q=1 HTTP/1.1\r\nHost: fuzz.example\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n"
HEAD_PIECES = [b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b"\x00", b"\x01", b"\x7f", b"\xff", b"\xc3\xa9", b"%", b"/"]
HEAD_PIECES += [b"HTTP/1.1", b"HTTP/0.9", b"HTTP/2.0", b"GET", b"\r\nX-A: 1", b"\r\nHost: b", b" HTTP/1.0", b"%00"]
HEAD_PIECES += [b"\x16\x03\x01"]  # the start of a TLS handshake
head_bytes = st.sampled_from(HEAD_PIECES) | st.binary(max_size=4)
# What could make the server wait for more bytes (a declared body, an upgrade), which is not malformed.
WAITS_FOR_MORE = re.compile(rb"content-length|transfer-encoding|expect|upgrade", re.IGNORECASE)


@st.composite
def request_heads(draw: st.DrawFn) -> bytes:
    """A viewer request head, mutated: bytes inserted, deleted or replaced, at random places; always ending the head
    (so that the proxy owes an answer), never declaring a body."""
    head = bytearray(VALID_HEAD[:-2])
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(head)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            head[where:where] = draw(head_bytes)
        elif action == "delete":
            del head[where : where + draw(st.integers(1, 6))]
        else:
            head[where : where + 1] = draw(head_bytes)
    if draw(st.booleans()):
        head += b"X-Long: " + b"l" * draw(st.sampled_from([10, 9000, 30000, 90000])) + b"\r\n"
    data = bytes(head).replace(b"\r\n\r\n", b"\r\n") + b"\r\n"
    if not data.endswith(b"\r\n\r\n"):
        data += b"\r\n"
    return WAITS_FOR_MORE.sub(b"X-Gone", data)


# -- a strict raw client ----------------------------------------------------------------------------------------------


class FrameError(AssertionError):
    """The proxy's answer is not a well-formed HTTP/1.1 response (or there was none)."""


@dataclass
class RawResponse:
    version: bytes
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    closes: bool

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        if len(values) > 1 and name.lower() in ("content-length", "x-cache", "server"):
            raise FrameError(f"{len(values)} {name} headers: {values}")
        return values[0] if values else None


STATUS_LINE = re.compile(rb"HTTP/(1\.[01]|0\.9) ([1-5][0-9][0-9]) ([^\r\n]*)")
FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*")


class RawClient:
    """One keep-alive connection at a time to ``port``; :meth:`exchange` sends bytes and reads exactly one response."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._socket: socket.socket | None = None
        self._buffer = b""

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket, self._buffer = None, b""

    def exchange(self, data: bytes, *, method: str) -> RawResponse:
        if self._socket is None:
            self._socket = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        try:
            self._socket.sendall(data)
            response = self._read(method)
        except (TimeoutError, OSError) as exc:
            self.close()
            raise FrameError(f"no whole answer within {TIMEOUT:g} s: {exc!r}") from None
        if response.closes:
            self.close()
        return response

    def _more(self) -> bool:
        assert self._socket is not None
        chunk = self._socket.recv(65536)
        self._buffer += chunk
        return bool(chunk)

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if not self._more():
                raise FrameError(f"connection closed mid-head after {self._buffer[:200]!r}")
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._more():
                raise FrameError(f"body cut short: {len(self._buffer)} of {size} bytes")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read(self, method: str) -> RawResponse:
        if not self._buffer and not self._more():
            raise FrameError("empty reply: the connection closed without a response")
        status_line = self._line()
        match = STATUS_LINE.fullmatch(status_line)
        if match is None:
            raise FrameError(f"malformed status line {status_line[:200]!r}")
        headers = []
        while line := self._line():
            field_match = FIELD.fullmatch(line)
            if field_match is None:
                raise FrameError(f"malformed header line {line[:200]!r}")
            headers.append((field_match.group(1).decode(), field_match.group(2).decode("utf-8", "replace")))
        reason = match.group(3).decode("utf-8", "replace")
        response = RawResponse(match.group(1), int(match.group(2)), reason, headers, b"", False)
        connection = (response.header("Connection") or "").lower()
        response.closes = connection == "close" or (match.group(1) != b"1.1" and connection != "keep-alive")
        length, chunked = response.header("Content-Length"), response.header("Transfer-Encoding")
        if length is not None and chunked is not None:
            raise FrameError(f"both Content-Length {length} and Transfer-Encoding {chunked}")
        if method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
            return response
        if chunked is not None:
            if chunked.lower() != "chunked":
                raise FrameError(f"Transfer-Encoding {chunked!r}")
            response.body = self._chunks()
        elif length is not None:
            if not length.isdigit():
                raise FrameError(f"Content-Length {length!r}")
            response.body = self._exactly(int(length))
        else:
            while self._more():
                pass
            response.body, self._buffer, response.closes = self._buffer, b"", True
        return response

    def _chunks(self) -> bytes:
        body = b""
        while True:
            size_line = self._line()
            if not re.fullmatch(rb"[0-9a-fA-F]+", size_line):
                raise FrameError(f"malformed chunk size {size_line[:50]!r}")
            size = int(size_line, 16)
            if size == 0:
                if self._line() != b"":
                    raise FrameError("trailers after the last chunk")
                return body
            body += self._exactly(size)
            if self._exactly(2) != b"\r\n":
                raise FrameError("chunk not followed by CRLF")


# -- the proxy under fuzz ---------------------------------------------------------------------------------------------


@dataclass
class Seen:
    """What the handler at a program's trigger was given and returned (for the oracle)."""

    before: tuple[Any, Any]
    result: Any = None
    raised: BaseException | None = None


@dataclass
class Playback:
    """Programs stored by id, played back by the proxy's handlers; what they saw, recorded by id."""

    programs: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def store(self, program: Any) -> str:
        key = str(next(self.ids))
        self.programs[key] = program
        return key

    def cloudfront_handler(self, trigger: Trigger) -> Callable[[dict[str, Any], object], Any]:
        def handler(event: dict[str, Any], context: object) -> Any:
            cf = event["Records"][0]["cf"]
            key = str(cf["request"].get("uri", "")).rsplit("/", 1)[-1]
            program = self.programs.get(key)
            if not isinstance(program, Program) or program.trigger != trigger:
                return cf.get("response", cf["request"])
            seen = self.seen[key] = Seen(before=copy_json((cf["request"], cf.get("response"))))
            try:
                seen.result = copy_json(program.apply(event))
            except Exception as exc:
                seen.raised = exc
                raise
            return seen.result

        handler.__qualname__ = handler.__name__ = f"fuzz_{trigger.replace('-', '_')}"
        return handler

    def alb_handler(self, event: dict[str, Any], context: object) -> Any:
        program = self.programs.get(event["path"].rsplit("/", 1)[-1])
        return None if program is None else copy_json(program.result)


async def _origin(request: web.Request) -> web.StreamResponse:
    await request.read()
    kind = request.query.get("o", "length")
    if kind == "chunked":
        response = web.StreamResponse(headers={"Content-Type": "text/plain", "Server": ORIGIN_SERVER})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if request.method != "HEAD":
            await response.write(ORIGIN_BODY)
        await response.write_eof()
        return response
    status = 404 if kind == "404" else 200
    return web.Response(body=ORIGIN_BODY, status=status, content_type="text/plain", headers={"Server": ORIGIN_SERVER})


@dataclass
class Expected:
    """The answers allowed for one input: statuses (``None``: any), X-Cache words, and the body, if known."""

    statuses: frozenset[int] | None
    x_cache: frozenset[str]
    body: bytes | None = None
    why: str = ""


class FuzzProxy:
    """A running proxy (and origin) on an event loop in a thread of its own, shared by every example of a module."""

    def __init__(self, playback: Playback, start: Callable[[], Any]) -> None:
        self.playback = playback
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fuzz-proxy", daemon=True)
        self._thread.start()
        self.proxies: dict[str, testing.EdgeProxy] = self._run(start())
        self.clients = {name: RawClient(proxy.url.port or 0) for name, proxy in self.proxies.items()}

    def _run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=60)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        for proxy in self.proxies.values():
            self._run(proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @classmethod
    @contextmanager
    def cloudfront(cls) -> Iterator[FuzzProxy]:
        """CloudFront mode: a playback handler at every trigger, include-body at the request triggers."""
        playback = Playback()
        # An origin that accepts whatever the proxy may forward (so that its parser's own 400 never shows up here).
        limits = {"max_line_size": 1 << 20, "max_field_size": 1 << 20, "max_headers": 1 << 16}
        origin = web.Application(handler_args=limits, client_max_size=1 << 24)
        origin.router.add_route("*", "/{tail:.*}", _origin)

        async def start() -> dict[str, testing.EdgeProxy]:
            handlers = {trigger.replace("-", "_"): playback.cloudfront_handler(trigger) for trigger in TRIGGERS}
            proxy = await testing.start(origin=origin, include_body=True, **handlers)  # type: ignore[arg-type]
            return {"cloudfront": proxy}

        proxy = cls(playback, start)
        try:
            yield proxy
        finally:
            proxy.close()

    @classmethod
    @contextmanager
    def alb(cls) -> Iterator[FuzzProxy]:
        """ALB mode, in both header modes: a target that returns the stored result."""
        playback = Playback()

        async def start() -> dict[str, testing.EdgeProxy]:
            return {
                "single": await testing.start(alb_target=playback.alb_handler),
                "multi": await testing.start(alb_target=playback.alb_handler, multi_value_headers=True),
            }

        proxy = cls(playback, start)
        try:
            yield proxy
        finally:
            proxy.close()

    # -- the property -------------------------------------------------------------------------------------------------

    def _request(self, client: RawClient, method: str, target: str) -> RawResponse:
        body = b"hello, origin" if method == "POST" else b""
        head = f"{method} {target} HTTP/1.1\r\nHost: fuzz.example\r\nX-Fuzz: 1\r\nContent-Length: {len(body)}\r\n\r\n"
        return client.exchange(head.encode() + body, method=method)

    def _still_serving(self, client: RawClient) -> None:
        response = self._request(client, "GET", "/still-serving")
        assert response.status == 200, f"the next request got {response.status}"

    def check_cloudfront(self, program: Program) -> None:
        """Send one request whose handler at ``program.trigger`` plays ``program``; assert the property."""
        key = self.playback.store(program)
        client = self.clients["cloudfront"]
        response = self._request(client, program.method, f"/fuzz/{key}?o={program.origin}")
        expected = expected_cloudfront(program, self.playback.seen.get(key))
        _event(f"{program.trigger}: {'/'.join(sorted(expected.x_cache))}")
        _assert_answer(response, expected, server="CloudFront", x_cache=True)
        self._still_serving(client)
        del self.playback.programs[key]
        self.playback.seen.pop(key, None)

    def check_alb(self, program: AlbProgram) -> None:
        key = self.playback.store(program)
        client = self.clients["multi" if program.multi_value else "single"]
        response = self._request(client, program.method, f"/alb/{key}")
        expected = expected_alb(program)
        _event(f"{'multi' if program.multi_value else 'single'}-value: {sorted(expected.statuses or ())}")
        _assert_answer(response, expected, server="awselb/2.0", x_cache=False)
        self.playback.programs[key] = AlbProgram({"statusCode": 200}, program.multi_value)
        assert self._request(client, "GET", f"/alb/{key}").status == 200, "the next request"
        del self.playback.programs[key]

    def check_head(self, head: bytes) -> None:
        """A malformed request head gets a well-framed answer of the mode's own (never aiohttp's 500, never
        nothing), and a fresh connection is served right after."""
        for name, client in self.clients.items():
            client.close()
            response = client.exchange(head, method=head.split(b" ", 1)[0].decode("latin-1"))
            _event(f"{name}: {response.status}")
            assert response.status != 500, f"{name}: 500 for {head!r}"
            server = response.header("Server")
            own = "CloudFront" if name == "cloudfront" else "awselb/2.0"
            if response.status >= 400 or name != "cloudfront":  # only the origin may answer otherwise
                assert server in (own, ORIGIN_SERVER), f"{name}: {response.status} from {server!r} for {head!r}"
            client.close()
            if name == "cloudfront":
                self._still_serving(client)
            else:
                assert self._request(client, "GET", "/alb/none").status == 502  # the target returns null


def _event(name: str) -> None:
    """Count outcomes for ``pytest --hypothesis-show-statistics`` (and nothing outside a hypothesis test)."""
    if currently_in_test_context():
        event(name)


def _assert_answer(response: RawResponse, expected: Expected, *, server: str, x_cache: bool) -> None:
    why = f"({expected.why}) got {response.status} {response.headers} {response.body[:200]!r}"
    if expected.statuses is not None:
        assert response.status in expected.statuses, why
    if x_cache:
        word = (response.header("X-Cache") or "").removesuffix(" from cloudfront")
        assert word in expected.x_cache, why
        if word not in ("Miss", "Error"):  # an answer of CloudFront's own
            assert response.header("Server") == server, why
    elif response.status >= 500:
        assert response.header("Server") == server, why
    if expected.body is not None:
        assert response.body == expected.body, why


def _generated_body(value: dict[str, Any], method: str, status: int) -> bytes:
    if method == "HEAD" or status in (204, 304):
        return b""
    return cloudfront.body_bytes(value) or b""


def expected_cloudfront(program: Program, seen: Seen | None) -> Expected:
    """CloudFront's answer for ``program``, as edgeproxy's own validator judges what the handler returned."""
    origin_status = 404 if program.origin == "404" else 200
    origin_x_cache = "Error" if origin_status >= 400 else "Miss"
    origin_body = b"" if program.method == "HEAD" else ORIGIN_BODY
    passed_through = Expected(frozenset({origin_status}), frozenset({origin_x_cache}), origin_body, "pass-through")
    if seen is None:  # the trigger did not run (viewer-response after an origin error)
        return passed_through
    trigger = program.trigger
    if seen.raised is not None:
        return Expected(frozenset({503}), frozenset({"LambdaExecutionError"}), why=f"raised {seen.raised!r}")
    try:
        result, _ = marshalled(seen.result)  # what the runtime sends CloudFront: JSON
        checked = validate(trigger, seen.before, result, STRICT, handler="fuzz")
    except MarshalError as error:
        return Expected(frozenset({503}), frozenset({"LambdaExecutionError"}), why=str(error))
    except LambdaValidationError as error:
        return Expected(frozenset({502}), frozenset({"LambdaValidationError"}), why=error.reason)
    value = checked.value
    if trigger in ("viewer-request", "origin-request"):
        if checked.kind == "response":
            status = int(value["status"])
            body = _generated_body(value, program.method, status)
            return Expected(frozenset({status}), frozenset({"LambdaGeneratedResponse"}), body, "generated")
        # The request goes on to an origin (maybe another one, or none that answers): whatever it says.
        return Expected(None, frozenset({"Miss", "Error"}), why="forwarded")
    if not checked.changed:
        return passed_through
    status = int(value["status"]) if trigger == "origin-response" else origin_status
    replaced = cloudfront.body_bytes(value)
    body = origin_body if replaced is None else _generated_body(value, program.method, status)
    if status in (204, 304) or program.method == "HEAD":
        body = b""
    return Expected(frozenset({status}), frozenset({origin_x_cache}), body, f"{trigger} response")


def expected_alb(program: AlbProgram) -> Expected:
    """The load balancer's answer for ``program``, as edgeproxy reads the target's result."""
    try:
        value, size = marshalled(program.result)  # what the runtime sends the load balancer: JSON
        response = alb_events.read_result(value, size=size, multi_value=program.multi_value, target="fuzz")
    except MarshalError as error:
        return Expected(frozenset({502}), frozenset(), why=str(error))
    except AlbError as error:
        return Expected(frozenset({error.status}), frozenset(), why=error.reason)
    body = b"" if program.method == "HEAD" or response.status in (204, 304) else response.body
    return Expected(frozenset({response.status}), frozenset(), body, "valid")
