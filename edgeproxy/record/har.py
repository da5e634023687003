"""Recordings as HAR 1.2: an exchange becomes one entry, a file is written as exchanges complete, and any reader here
accepts a file that was cut short.

One entry per viewer exchange: the viewer's request and the response it got, as HAR ``request``/``response``
objects (every header in wire order with repeats, the query in order, bodies as ``text``, base64 when they are not
UTF-8 text or are compressed: a body is recorded exactly as it went). The pipeline rides along in underscore-prefixed
fields, HAR's convention for custom data:

* ``_requestId``, ``_mode`` (``cloudfront`` or ``alb``), ``_behavior`` (the path pattern), ``_skipped`` (stage:
  why it did not run), ``_error`` (the service's own error, when the viewer got one);
* ``_origin``: the origin request as sent and its response as received (byte-exact), or ``null``;
* ``_invocations``: every function invocation, with its event, its result (or error) and its duration.

A request body that is not UTF-8 text is written as base64 in ``postData.text`` with ``"_encoding": "base64"``
(HAR 1.2 has no encoding on postData; the 1.3 draft's ``encoding`` is read too).

Reading (:func:`read`): a file written here, one entry a line, is indexed rather than loaded (:class:`Entries`:
where each entry is in the file, each parsed when asked for), so a day of traffic replays in little memory; any
other HAR (a browser's) is parsed whole.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import gc
import json
import os
import re
import time
import weakref
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, overload
from urllib.parse import parse_qsl, quote_plus

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from edgeproxy import __version__
from edgeproxy.errors import AlbError, EdgeProxyError, ViewerError
from edgeproxy.exchange import Exchange, Invocation
from edgeproxy.record.redact import Redactor
from edgeproxy.viewer import override_header

CREATOR = {"name": "edgeproxy", "version": __version__}
# The file is always a whole HAR document: entries go between HEAD and TAIL, one per line.
HEAD = '{"log": {"version": "1.2", "creator": ' + json.dumps(CREATOR) + ', "pages": [], "entries": ['
TAIL = "\n]}}\n"
IDENTITY = ("", "identity")


class RecordingError(EdgeProxyError):
    """A recording that cannot be read (not HAR, not JSON), named with its path and what is wrong."""


def timestamp(seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds, as browsers write HAR dates: ``2026-12-01T08:12:05.123Z``."""
    whole = int(seconds)
    prefix = _second(whole)
    return f"{prefix}.{int((seconds - whole) * 1000):03d}Z"


@functools.lru_cache(maxsize=64)
def _second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def parse_timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def name_values(headers: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def header_pairs(entries: Any) -> list[tuple[str, str]]:
    """HAR headers (``{name, value}`` objects, or ``[name, value]`` pairs as some exporters write) as pairs."""
    pairs = []
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and "name" in entry:
            pairs.append((str(entry["name"]), str(entry.get("value", ""))))
        elif isinstance(entry, list | tuple) and len(entry) == 2:
            pairs.append((str(entry[0]), str(entry[1])))
    return pairs


def _content_encoded(headers: Mapping[str, str] | CIMultiDict[str] | CIMultiDictProxy[str]) -> bool:
    return headers.get("Content-Encoding", "").strip().lower() not in IDENTITY


def body_text(data: bytes, *, encoded: bool) -> dict[str, str]:
    """``{"text": ...}`` for UTF-8 text that is not content-encoded, else base64 with ``encoding``."""
    if not encoded:
        try:
            return {"text": data.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"text": base64.b64encode(data).decode("ascii"), "encoding": "base64"}


def content(data: bytes, headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> dict[str, Any]:
    """A HAR ``content`` holding ``data`` exactly (a compressed body stays compressed, in base64)."""
    text = body_text(data, encoded=_content_encoded(headers))
    return {"size": len(data), "mimeType": headers.get("Content-Type", ""), **text}


def post_data(data: bytes, headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> dict[str, Any]:
    text = body_text(data, encoded=_content_encoded(headers))
    record: dict[str, Any] = {"mimeType": headers.get("Content-Type", ""), "text": text["text"]}
    if "encoding" in text:
        record["_encoding"] = "base64"
    return record


def body_of(record: Mapping[str, Any] | None) -> bytes | None:
    """The bytes of a HAR ``content`` or ``postData`` (``None`` when it holds no text)."""
    if not isinstance(record, Mapping) or not isinstance(record.get("text"), str):
        return None
    text: str = record["text"]
    if "base64" in (record.get("encoding"), record.get("_encoding")):
        return base64.b64decode(text)
    return text.encode("utf-8", "surrogateescape")


def request_body(request: Mapping[str, Any]) -> bytes | None:
    """The body of a HAR ``request``: its ``postData.text``, or, as HAR 1.2 has "text and params fields are mutually
    exclusive", the body its ``params`` make for their type: a form (as browsers encode one) or multipart, with the
    boundary its Content-Type names. ``None`` with no postData; ``ValueError`` for params no body can be made of
    (another type, a multipart one with no boundary)."""
    post = request.get("postData")
    if not isinstance(post, Mapping):
        return None
    body = body_of(post)
    params = post.get("params")
    if body is not None or not isinstance(params, list) or not params:
        return body
    headers = CIMultiDict(header_pairs(request.get("headers")))
    mime = str(post.get("mimeType") or headers.get("Content-Type", ""))
    media_type, _, parameters = mime.partition(";")
    media_type = media_type.strip().lower()
    fields = [param for param in params if isinstance(param, Mapping)]
    if media_type == "application/x-www-form-urlencoded":
        return "&".join(
            f"{_form_encoded(param.get('name'))}={_form_encoded(param.get('value'))}" for param in fields
        ).encode()
    boundary = next(
        (
            value.strip().strip('"')
            for key, _, value in (p.partition("=") for p in parameters.split(";"))
            if key.strip().lower() == "boundary"
        ),
        None,
    )
    if media_type == "multipart/form-data" and boundary:
        parts = []
        for param in fields:
            disposition = f'form-data; name="{param.get("name", "")}"'
            if param.get("fileName") is not None:
                disposition += f'; filename="{param["fileName"]}"'
            head = f"Content-Disposition: {disposition}\r\n"
            if param.get("contentType"):
                head += f"Content-Type: {param['contentType']}\r\n"
            parts.append(f"--{boundary}\r\n{head}\r\n{param.get('value', '')}\r\n")
        return ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8", "surrogateescape")
    raise ValueError(f"its postData has params but no text, and no body of type {mime!r} can be made of params")


def _form_encoded(value: Any) -> str:
    """A form name or value as browsers encode it (the WHATWG application/x-www-form-urlencoded serializer: UTF-8,
    a space as ``+``, all but ASCII letters, digits and ``*-._`` percent-encoded)."""
    return quote_plus(str(value or ""), safe="*").replace("~", "%7E")


def request_cookies(headers: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    cookies = []
    for name, value in headers:
        if name.lower() == "cookie":
            for pair in value.split(";"):
                key, equals, item = pair.strip().partition("=")
                if equals:
                    cookies.append({"name": key, "value": item})
    return cookies


def response_cookies(headers: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    cookies = []
    for name, value in headers:
        if name.lower() != "set-cookie":
            continue
        first, *attributes = value.split(";")
        key, equals, item = first.strip().partition("=")
        if not equals:
            continue
        cookie: dict[str, Any] = {"name": key, "value": item}
        for attribute in attributes:
            field, _, setting = attribute.strip().partition("=")
            lower = field.lower()
            if lower in ("path", "domain"):
                cookie[lower] = setting
            elif lower == "expires" and (expires := cookie_date(setting)) is not None:
                cookie["expires"] = expires  # HAR 1.2: "Cookie expiration time. (ISO 8601)"
            elif lower == "httponly":
                cookie["httpOnly"] = True
            elif lower == "secure":
                cookie["secure"] = True
        cookies.append(cookie)
    return cookies


_DATE_DELIMITERS = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\D|$)")
_DAY = re.compile(r"(\d{1,2})(?:\D|$)")
_YEAR = re.compile(r"(\d{2,4})(?:\D|$)")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def cookie_date(text: str) -> str | None:
    """A Set-Cookie ``Expires`` date as browsers read it (RFC 6265 §5.1.1: the first time, day of month, month and
    year among its tokens, whatever the format), in ISO 8601 as HAR wants it; ``None`` when it is not a date."""
    time_of_day = day = month = year = None
    for token in _DATE_DELIMITERS.split(text):
        if not token:
            continue
        if time_of_day is None and (match := _TIME.match(token)):
            time_of_day = tuple(int(part) for part in match.groups())
        elif day is None and (match := _DAY.match(token)):
            day = int(match.group(1))
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (match := _YEAR.match(token)):
            year = int(match.group(1))
    if time_of_day is None or day is None or month is None or year is None:
        return None
    year += 1900 if 70 <= year <= 99 else 2000 if year <= 69 else 0
    hour, minute, second = time_of_day
    if year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # not a day of that month
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _query(raw: str) -> list[dict[str, str]]:
    if not raw:
        return []
    return [{"name": name, "value": value} for name, value in parse_qsl(raw, keep_blank_values=True)]


def _milliseconds(seconds: float | None) -> float:
    return round(seconds * 1000, 3) if seconds is not None and seconds > 0 else 0.0


def entry(exchange: Exchange, redactor: Redactor) -> dict[str, Any]:
    """The HAR entry of a finished exchange, with ``redactor``'s secrets redacted everywhere."""
    redactor = redactor.for_exchange(exchange)
    viewer = exchange.viewer
    # The X-Edgeproxy-Viewer-* headers the proxy took off (the simulated location) go back in: a replay sends them.
    sent = [*viewer.headers.items(), *((override_header(name), value) for name, value in viewer.overrides.items())]
    headers = redactor.headers_list(sent)
    local = viewer.local_address
    host = viewer.headers.get("Host") or (f"{local[0]}:{local[1]}" if local else "localhost")
    query = redactor.query(viewer.querystring)
    url = f"http://{host}{viewer.uri}" + (f"?{query}" if query else "")
    request: dict[str, Any] = {
        "method": viewer.method,
        "url": url,
        "httpVersion": f"HTTP/{viewer.http_version}",
        "cookies": request_cookies(headers),
        "headers": name_values(headers),
        "queryString": _query(query),
        "headersSize": -1,
        "bodySize": len(exchange.request_body or b""),
    }
    if exchange.request_body:
        request["postData"] = post_data(bytes(exchange.request_body), viewer.headers)
    finished = exchange.finished or exchange.started
    responded = exchange.responded or finished
    wait, receive = _milliseconds(responded - exchange.started), _milliseconds(finished - responded)
    record: dict[str, Any] = {
        "startedDateTime": timestamp(exchange.started),
        "time": round(wait + receive, 3),
        "request": request,
        "response": _response(exchange, redactor),
        "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "ssl": -1, "send": 0, "wait": wait, "receive": receive},
        "_requestId": exchange.id,
        "_mode": exchange.mode,
    }
    if viewer.local_address is not None:
        record["serverIPAddress"] = viewer.local_address[0]
        record["connection"] = str(viewer.local_address[1])
    if exchange.behavior is not None:
        record["_behavior"] = exchange.behavior
    if exchange.skipped:
        record["_skipped"] = dict(exchange.skipped)
    if exchange.error is not None:
        record["_error"] = _error(exchange.error)
    if exchange.mode == "cloudfront":
        record["_origin"] = _origin(exchange, redactor)
    # Last, and it must stay last: a reader may parse only what comes before it (Entries.head).
    record["_invocations"] = [_invocation(invocation, redactor) for invocation in exchange.invocations]
    return record


def _response(exchange: Exchange, redactor: Redactor) -> dict[str, Any]:
    sent = exchange.sent
    if sent is None:  # the viewer went away before anything was sent
        return {
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
            "_error": "the viewer's connection closed before the response",
        }
    headers = redactor.headers_list(sent.headers.items())
    body = bytes(exchange.viewer_body or b"")
    return {
        "status": sent.status,
        "statusText": sent.reason,
        "httpVersion": f"HTTP/{exchange.viewer.http_version}",
        "cookies": response_cookies(headers),
        "headers": name_values(headers),
        "content": content(body, sent.headers),
        "redirectURL": redactor.header("Location", sent.headers.get("Location", "")),
        "headersSize": -1,
        "bodySize": len(body),
    }


def _origin(exchange: Exchange, redactor: Redactor) -> dict[str, Any] | None:
    sent, received = exchange.origin_request, exchange.origin_response
    if sent is None or received is None:
        return None
    query = f"?{sent.query}" if sent.query else ""
    url = redactor.url(f"{sent.protocol}://{sent.domain_name}:{sent.port}{sent.path}{query}")
    request: dict[str, Any] = {
        "method": sent.method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "headers": name_values(redactor.headers_list(sent.headers.items())),
        "bodySize": len(exchange.origin_request_body or b""),
    }
    if exchange.origin_request_body:
        request["postData"] = post_data(bytes(exchange.origin_request_body), sent.headers)
    body = bytes(exchange.origin_body or b"")
    response = {
        "status": received.status,
        "statusText": received.reason or "",
        "httpVersion": "HTTP/1.1",
        "headers": name_values(redactor.headers_list(received.headers.items())),
        "content": content(body, received.headers),
        "bodySize": len(body),
    }
    return {
        "startedDateTime": timestamp(exchange.origin_started or exchange.started),
        "time": _milliseconds(exchange.origin_duration),
        "request": request,
        "response": response,
    }


def _error(error: ViewerError | AlbError) -> dict[str, Any]:
    if isinstance(error, ViewerError):
        return {"status": error.status, "name": error.x_cache, "reason": error.reason, "message": error.message}
    return {"status": error.status, "name": error.error_reason, "reason": error.reason}


def _invocation(invocation: Invocation, redactor: Redactor) -> dict[str, Any]:
    record: dict[str, Any] = {
        "trigger": invocation.trigger,
        "handler": invocation.handler,
        "startedDateTime": timestamp(invocation.started),
        "time": _milliseconds(invocation.duration),
        "event": redactor.event(invocation.event),
    }
    if invocation.changed:
        record["result"] = redactor.event(invocation.result)
    else:
        record["unchanged"] = True  # the result is the event's request (or response), as the handler got it
    record["error"] = None if invocation.error is None else _error(invocation.error)
    traceback = getattr(invocation.error, "handler_traceback", None)
    if traceback:
        record["error"]["traceback"] = traceback
    return record


# -- files ---------------------------------------------------------------------------------------------------------


class HarFile:
    """A recording being written: always a whole HAR 1.2 document, each exchange added as it completes.

    Each entry is one line, put in front of the closing ``]}}`` under an exclusive lock, so several processes can
    record into one file, and a process killed mid-write loses only that entry (the readers here recover the rest).
    """

    def __init__(self, path: Path, *, truncate: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        with self._locked():
            if truncate or os.fstat(self._fd).st_size == 0:
                os.ftruncate(self._fd, 0)
                os.pwrite(self._fd, (HEAD + TAIL).encode(), 0)
            elif not self._ends_whole():
                raise RecordingError(f"{path}: cannot add to it: it was not written whole (read it, then record anew)")

    def _locked(self) -> _Lock:
        return _Lock(self._fd)

    def _ends_whole(self) -> bool:
        size = os.fstat(self._fd).st_size
        return size >= len(HEAD) + len(TAIL) and os.pread(self._fd, len(TAIL), size - len(TAIL)) == TAIL.encode()

    def append(self, record: Mapping[str, Any]) -> None:
        line = dumps(record)
        with self._locked():
            size = os.fstat(self._fd).st_size
            offset = size - len(TAIL)
            separator = "\n" if offset == len(HEAD) else ",\n"
            os.pwrite(self._fd, separator.encode() + line + TAIL.encode(), offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def dumps(record: Mapping[str, Any]) -> bytes:
    """One entry as one line of JSON. orjson, because recording every exchange must cost the proxy little (it is
    about 15 times as fast as the standard library here); text orjson refuses (a lone surrogate, from bytes that are
    not UTF-8) goes through ``json``, escaped."""
    try:
        return orjson.dumps(record)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(record, separators=(",", ":")).encode()


class _Lock:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)


@dataclass
class Recording:
    """A HAR file's entries, sorted by start time (ties keep their order), and whether the file was cut short.

    ``entries`` is a list for a file read whole (a browser's HAR), and :class:`Entries` for edgeproxy's own: those
    are parsed one at a time, when asked for, so a day of traffic replays in little memory."""

    path: Path
    entries: Sequence[dict[str, Any]]
    cut_short: bool = False

    @property
    def cut_short_warning(self) -> str | None:
        """What a reader that replays it says of a file cut short (``None`` for a whole one)."""
        if not self.cut_short:
            return None
        return f"{self.path} was cut short: replaying the {len(self.entries)} exchanges that completed"

    @property
    def is_edgeproxys(self) -> bool:
        """Whether edgeproxy wrote it (its entries carry the pipeline); a browser's HAR does not."""
        return any("_mode" in entry for entry in self.heads())

    def head(self, index: int) -> dict[str, Any]:
        """Entry ``index`` without what its ``_invocations`` hold, where that is quicker (:meth:`Entries.head`):
        enough for all but the comparison of trigger results."""
        entries = self.entries
        return entries.head(index) if isinstance(entries, Entries) else entries[index]

    def heads(self) -> Iterator[dict[str, Any]]:
        return (self.head(index) for index in range(len(self.entries)))

    def origin(self, index: int) -> Any:
        """Entry ``index``'s ``_origin`` (its origin exchange, ``None`` when the origin was not contacted), where
        that is quicker, parsed alone (:meth:`Entries.origin`)."""
        entries = self.entries
        return entries.origin(index) if isinstance(entries, Entries) else entries[index].get("_origin")


class Entries(Sequence[dict[str, Any]]):
    """The entries of a recording written by :class:`HarFile`, one a line: only where each entry's line starts and
    ends is held, and an entry is read from the file and parsed each time it is asked for (a copy: changing it
    changes nothing here). Appending to the file as it is read is safe (:meth:`HarFile.append` writes only past the
    last entry); rewriting it is not, so a file is rewritten by replacing it (see ``session._appendable``)."""

    def __init__(self, path: Path, fd: int, spans: array[int]) -> None:
        self._path = path
        self._fd = fd  # its own, read with pread (forks of a replay share it safely), closed with this
        weakref.finalize(self, os.close, fd)
        self._spans = spans  # start, end, start, end, ... in the order the entries are read in

    def __len__(self) -> int:
        return len(self._spans) // 2

    def __eq__(self, other: object) -> bool:
        """Equal to a list (or any sequence) of the same entries, as the list a whole read gives would be."""
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(mine == theirs for mine, theirs in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which do not hash

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        return self._parsed(index, self._line(index))

    def head(self, index: int) -> dict[str, Any]:
        """Entry ``index`` without its ``_invocations``, the last of its fields (:func:`entry` writes them last), and
        most of its bytes (every trigger's event): the rest of the line parsed alone, in less than half the time.
        Only object keys are unquoted in JSON, so the first ``,"_invocations":`` in the line is that field's."""
        line = self._line(index)
        cut = line.find(_INVOCATIONS)
        item = _entry(line[:cut] + b"}") if cut > 0 else None
        return item if item is not None else self._parsed(index, line)

    def origin(self, index: int) -> Any:
        """Entry ``index``'s ``_origin``, which :func:`entry` writes just before its ``_invocations``: that part of the
        line parsed alone, in under a third of the time the entry takes (found as in :meth:`head`: only object keys are
        unquoted, and no object before it has keys of the user's)."""
        line = self._line(index)
        start = line.find(_ORIGIN)
        end = line.find(_INVOCATIONS, start)
        if 0 < start < end:
            try:
                return orjson.loads(line[start + len(_ORIGIN) : end])
            except orjson.JSONDecodeError:
                pass  # what orjson refuses but JSON allows (an escaped lone surrogate): the entry, parsed whole
        return self.head(index).get("_origin")

    def _line(self, index: int) -> bytes:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("entry index out of range")
        start, end = self._spans[2 * index], self._spans[2 * index + 1]
        return os.pread(self._fd, end - start, start)

    def _parsed(self, index: int, line: bytes) -> dict[str, Any]:
        item = _entry(line)
        if item is None:
            position = index % len(self)
            line_number = self._line_number(self._spans[2 * position])
            raise RecordingError(
                f"{self._path}: line {line_number} (entry {position + 1} by start time) is not a whole JSON object: "
                "the file was damaged, or changed since it was read"
            )
        return item

    def _line_number(self, offset: int) -> int:
        """The number of the line starting at ``offset`` (for an error message: the file is read up to it)."""
        newlines, position = 0, 0
        while position < offset:
            chunk = os.pread(self._fd, min(READ_BUFFER * 16, offset - position), position)
            if not chunk:
                break
            newlines += chunk.count(b"\n")
            position += len(chunk)
        return newlines + 1


def read(path: Path) -> Recording:
    """Read a HAR file: edgeproxy's own (cut short or not), entries read when asked for, or a browser's, read whole
    (a byte-order mark is skipped)."""
    try:
        file = path.open("rb", buffering=READ_BUFFER)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        with file:
            recording = _indexed(path, file)
            if recording is not None:
                return recording
            file.seek(0)
            data = file.read().removeprefix(b"\xef\xbb\xbf")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot be read: {exc.strerror}") from None
    with collector_paused():  # millions of new objects, none garbage: the collector would walk them again and again
        return _parsed(path, data)


# Read a line at a time (entries are ~10 kB): with the default 8 kB buffer, most lines took several reads.
READ_BUFFER = 1 << 16
_INVOCATIONS = b',"_invocations":'
_ORIGIN = b',"_origin":'
# The first line of every file :class:`HarFile` writes, whichever edgeproxy version wrote it, starts so.
_OWN_HEAD = b'{"log": {"version": "1.2", "creator": {"name": "edgeproxy", '


def _indexed(path: Path, file: BinaryIO) -> Recording | None:
    """An edgeproxy recording's entries, one a line after the head: only each line's place and start time are kept.

    Entries are appended whole, each with one write, so only the last line can have been cut short (a process
    killed mid-write, a power loss): that line alone is parsed here, to check it. Every other line as
    :func:`entry` writes it is only looked at (its start time is read from its first bytes), and is parsed when it
    is read: a day of traffic is indexed at the speed of the disk. A line of another shape (edited by hand) is
    parsed. Reading stops at the first line that is not a JSON object: the last line, cut short; any line before it
    is damage (only the last line can have been cut short), a :class:`RecordingError` naming it. ``None`` for a file
    edgeproxy did not write a line at a time (not its head, or not even one entry)."""
    head = file.readline()
    if not (head.startswith(_OWN_HEAD) and head.endswith(b'"entries": [\n')):
        return None
    spans: array[int] = array("q")
    starts: list[float] = []
    position = len(head)
    cut_short = True
    last = b""
    for line in file:
        entry_line = line.rstrip(b"\n").removesuffix(b",")
        if entry_line == b"]}}":
            cut_short = False
            break
        started = _start_of(entry_line)
        if started is None:
            rest = file.read()
            if not rest.strip(b"\x00\t\r\n "):
                break  # the last line, cut short (what a power loss leaves past it may be zeros)
            if not starts and not any(_start_of(later.removesuffix(b",")) is not None for later in rest.split(b"\n")):
                return None  # no line is an entry: not a file written a line at a time
            raise RecordingError(
                f"{path}: line {len(starts) + 2} is not a whole JSON object, and lines follow it: the file was damaged "
                "(only a recording's last line can have been cut short)"
            )
        spans.extend((position, position + len(entry_line)))
        starts.append(started)
        position += len(line)
        last = entry_line
    if starts and _entry(last) is None:  # the last entry, cut short
        del spans[-2:], starts[-1]
        cut_short = True
    order = sorted(range(len(starts)), key=starts.__getitem__)  # sorted() is stable: ties keep their order
    if order != list(range(len(starts))):
        spans = array("q", (spans[2 * index + side] for index in order for side in (0, 1)))
    return Recording(path, Entries(path, os.dup(file.fileno()), spans), cut_short)


_STARTED = b'{"startedDateTime":"'


def _start_of(line: bytes) -> float | None:
    """The start time of an entry's line, or ``None`` for a line that is not a JSON object. A line as :func:`entry`
    writes it is not parsed: its start time is read from its first bytes. Any other line is parsed."""
    if line.startswith(_STARTED) and line.endswith(b"}"):
        end = line.find(b'"', len(_STARTED))
        stamp = line[len(_STARTED) : end]
        if end > 0 and b"\\" not in stamp:
            try:
                return parse_timestamp(stamp.decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                return 0.0
    item = _entry(line)
    return None if item is None else _started(item)


def _entry(line: bytes) -> dict[str, Any] | None:
    """One entry's line parsed, or ``None`` when it is not a whole JSON object."""
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            item = json.loads(line.decode("utf-8", "surrogateescape"))  # an escaped lone surrogate: JSON allows it
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    return item if isinstance(item, dict) else None


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off while a recording's objects are made, for a reader that makes many and keeps them
    (none is garbage: each collection would walk them all again)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _parsed(path: Path, data: bytes) -> Recording:
    cut_short = False
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data.decode("utf-8", "surrogateescape")
        try:
            document = json.loads(text)  # what orjson refuses but JSON allows (an escaped lone surrogate)
        except json.JSONDecodeError as exc:
            entries = _recover(text)
            if entries is None:
                raise RecordingError(f"{path}: not a HAR file (not JSON: {exc})") from None
            document, cut_short = {"log": {"entries": entries}}, True
    log = document.get("log") if isinstance(document, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list) or not all(isinstance(item, dict) for item in entries):
        raise RecordingError(f"{path}: not a HAR file (no log.entries list of objects)")
    ordered = sorted(enumerate(entries), key=lambda pair: (_started(pair[1]), pair[0]))
    return Recording(path, [item for _, item in ordered], cut_short)


def _started(record: Mapping[str, Any]) -> float:
    try:
        return parse_timestamp(str(record.get("startedDateTime", "")))
    except ValueError:
        return 0.0


def _recover(text: str) -> list[dict[str, Any]] | None:
    """The whole entries of a file cut short that edgeproxy did not write a line at a time, or ``None``."""
    lines = text.split("\n")
    if not lines or not lines[0].startswith('{"log"'):
        return None
    entries = []
    for line in lines[1:]:
        item = _entry(line.removesuffix(",").encode("utf-8", "surrogateescape"))
        if item is None:
            break
        entries.append(item)
    return entries
