"""Golden replay: each recorded viewer request goes through the current distribution over real HTTP, and what came
back is compared with what was recorded: the viewer's response (status, headers by name case-insensitively with
their values and the order of repeats, body bytes) and each function's result, where the recording has them.

The origin answers from the recording (``origin_from="recording"``, the default when the file holds origin
exchanges) or is the live one. A HAR saved by a browser against production has no pipeline in it and replays with a
live origin: its HTTP/2 pseudo-headers are dropped, only the headers it holds are compared (browsers leave some out),
its bodies are already decoded (the replayed body is decoded to match), and an entry without ``content.text`` is
compared on status and headers only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import difflib
import functools
import gc
import gzip
import hashlib
import importlib
import json
import os
import pickle
import signal
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from edgeproxy.errors import EdgeProxyError
from edgeproxy.exchange import Exchange, Invocation, Observer
from edgeproxy.headers import HOP_BY_HOP, as_received, end_to_end
from edgeproxy.record.har import Recording, RecordingError, body_of, header_pairs, request_body
from edgeproxy.record.redact import Redactor, redacted_parameters, unredacted
from edgeproxy.record.session import read_for_replay

# Different on every request by design; ignored in viewer responses and trigger results alike.
VOLATILE_HEADERS = frozenset({"date", "age", "x-amz-cf-id", "x-amz-cf-pop", "via"})
REQUEST_ID = "<request id>"
OriginFrom = Literal["recording", "live"]
ENTRIES_PER_JOB = 1000  # below this, a process of its own costs more than it saves (its start, its cold starts)
REJECTED_NOTE = (
    "the proxy's HTTP parser rejected the request as the recording has it (not HTTP/1.1: a space or a raw non-ASCII "
    "character in its URL, a header name that is not a token...), so no function ran"
)


@dataclass(frozen=True)
class Difference:
    """One thing that differs: what (``status``, ``header X-A``, ``body``, ``origin-request result $.uri``...), and its
    recorded and replayed values as text."""

    what: str
    recorded: str
    replayed: str

    def __str__(self) -> str:
        return f"{self.what}: recorded {self.recorded}, replayed {self.replayed}"


@dataclass
class EntryResult:
    """One recorded exchange replayed."""

    index: int
    method: str
    target: str  # path and query
    recorded_status: int
    status: int | None
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why it may differ, printed when it does

    @property
    def same(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        head = f"#{self.index + 1} {self.method} {self.target}: {self.recorded_status} recorded, {self.status} replayed"
        details = [str(difference) for difference in self.differences] + [f"note: {note}" for note in self.notes]
        return [head, *(f"  {line}" for detail in details for line in detail.splitlines())]


@dataclass
class ReplayReport:
    """What a golden replay found. ``same`` is true when every entry came back as recorded."""

    path: Path
    results: list[EntryResult]
    warnings: list[str] = field(default_factory=list)  # said on stderr too (the "edgeproxy" logger)

    @property
    def differ(self) -> list[EntryResult]:
        return [result for result in self.results if not result.same]

    @property
    def same(self) -> bool:
        return not self.differ

    def summary(self) -> str:
        return f"replay: {len(self.results) - len(self.differ)} same, {len(self.differ)} differ"

    def __str__(self) -> str:
        return "\n".join([line for result in self.differ for line in result.lines()] + [self.summary()])

    def print(self, file: TextIO | None = None) -> None:
        print(self, file=file)

    def as_json(self) -> dict[str, Any]:
        return {
            "recording": str(self.path),
            "same": len(self.results) - len(self.differ),
            "differ": len(self.differ),
            "warnings": self.warnings,
            "entries": [
                {
                    "index": result.index,
                    "method": result.method,
                    "target": result.target,
                    "recordedStatus": result.recorded_status,
                    "status": result.status,
                    "differences": [difference.__dict__ for difference in result.differences],
                    "notes": result.notes if result.differences else [],
                }
                for result in self.results
            ],
        }


class _Exchanges(Observer):
    """Hands each finished exchange to the replayed request it answered: by its id, which a CloudFront response
    carries (``X-Amz-Cf-Id``); an ALB response carries none, so ALB recordings replay one request at a time and
    exchanges are taken in order."""

    def __init__(self) -> None:
        self._by_id: dict[str, Exchange] = {}
        self._in_order: collections.deque[Exchange] = collections.deque()

    def exchange_done(self, exchange: Exchange) -> None:
        if exchange.mode == "alb":
            self._in_order.append(exchange)
        else:
            self._by_id[exchange.id] = exchange

    def sending(self) -> None:
        """A request is about to be sent: an ALB exchange still here is of a request whose response was never read
        (the client failed), and is not this one's."""
        self._in_order.clear()

    def of(self, headers: CIMultiDict[str]) -> Exchange | None:
        """The exchange of a response read whole, or ``None`` when there was none: the proxy's HTTP parser rejected
        the request (its error page is all the viewer got). An exchange is done before the last bytes of its
        response go out (``serving.send``), on this event loop, which the proxy runs on: by the time its response
        has been read, it is here; nothing is waited for."""
        request_id = headers.get("X-Amz-Cf-Id")
        if request_id is None:
            return self._in_order.popleft() if self._in_order else None
        return self._by_id.pop(request_id, None)


@dataclass(frozen=True)
class _Plan:
    """A replay made ready: the recording read, how to compare, how to start the distribution, and the work.

    ``groups`` are the entries' indexes, identical requests (method and target) together, in their recorded order:
    the unit of work, so that repeated requests get their recorded answers in order."""

    path: Path
    recording: Recording
    comparer: _Comparer
    start_arguments: dict[str, Any]
    concurrency: int  # connections at a time, in each process
    groups: list[list[int]]
    secrets: dict[str, str]  # real values of redacted headers, by lower-case name
    warnings: list[str]


def _plan(
    path: str | Path,
    origin_from: OriginFrom | None,
    ignore_headers: Iterable[str],
    concurrency: int,
    redact: Iterable[str],
    default_redactions: bool,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    start_arguments: dict[str, Any],
) -> _Plan:
    recording_path = Path(path)
    recording = read_for_replay(recording_path)  # says so when it was cut short
    alb = has_origin = False
    groups: dict[tuple[str, str], list[int]] = {}
    for index, entry in enumerate(recording.heads()):  # one pass: a long recording is parsed an entry at a time
        alb = alb or entry.get("_mode") == "alb"
        has_origin = has_origin or isinstance(entry.get("_origin"), dict)
        request = entry.get("request") or {}
        groups.setdefault((str(request.get("method")), _target(request)), []).append(index)
    if alb:
        origin_from = "live"  # an ALB has no origin: its target is the current handler, the one being replayed
    elif origin_from is None:
        if not has_origin:
            raise RecordingError(
                f"{recording_path}: it holds no origin exchanges (a browser's HAR?): replay it with origin_from "
                "'live' (--origin-from live)"
            )
        origin_from = "recording"
    if origin_from == "recording" and not has_origin:
        raise RecordingError(f"{recording_path}: it holds no origin exchanges to answer from")
    ignored = VOLATILE_HEADERS | {name.lower() for name in ignore_headers}
    redact = tuple(redact)
    arguments = dict(start_arguments, redact=redact, default_redactions=default_redactions)
    if origin_from == "recording":
        arguments.update(recording=recording, record_mode="none")  # read once: here
    comparer = _Comparer(recording, Redactor.make(redact, defaults=default_redactions), ignored)
    concurrency = 1 if alb else max(1, concurrency)
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    secrets = {name.lower(): value for name, value in pairs}
    warnings = [recording.cut_short_warning] if recording.cut_short_warning else []
    return _Plan(recording_path, recording, comparer, arguments, concurrency, list(groups.values()), secrets, warnings)


async def replay(
    path: str | Path,
    *,
    origin_from: OriginFrom | None = None,
    ignore_headers: Iterable[str] = (),
    concurrency: int = 8,
    redact: Iterable[str] = (),
    default_redactions: bool = True,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    **start_arguments: Any,
) -> ReplayReport:
    """Replay the recording at ``path`` through a distribution started with :func:`edgeproxy.testing.start`'s
    arguments (``config_file=...``, or ``origin=...`` and handlers per trigger, or ``alb_target=...``), and compare.

    ``origin_from``: ``"recording"`` answers origin requests from the recording, ``"live"`` sends them to the
    origin; the default is ``"recording"`` when the file holds origin exchanges (and must be given otherwise).
    ``ignore_headers`` adds names to the volatile ones that are never compared (Date, Age, X-Amz-Cf-Id,
    X-Amz-Cf-Pop, Via). ``headers`` gives back secrets the recording holds redacted (``edgeproxy replay --header``):
    a request header recorded as ``[REDACTED]`` is sent with the value given for its name (a ``Cookie`` given gives
    its cookies' values, by name, to the redacted cookies of a recorded one); nothing is added to a request. An entry
    that differs while its request was sent with redacted values says so. Raises
    :class:`~edgeproxy.record.har.RecordingError` for a file that cannot be replayed. It runs in this process;
    :func:`replay_in_processes` spreads a long recording over several."""
    plan = _plan(path, origin_from, ignore_headers, concurrency, redact, default_redactions, headers, start_arguments)
    return ReplayReport(plan.path, await _replay_groups(plan, plan.groups), plan.warnings)


def replay_in_processes(
    path: str | Path,
    *,
    jobs: int | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    origin_from: OriginFrom | None = None,
    ignore_headers: Iterable[str] = (),
    concurrency: int = 8,
    redact: Iterable[str] = (),
    default_redactions: bool = True,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    **start_arguments: Any,
) -> ReplayReport:
    """:func:`replay`, with the entries shared out over ``jobs`` processes (``edgeproxy replay --jobs``): each is a
    fork of this one, made before any event loop or thread, with the recording already read, that runs a
    distribution of its own (its own environments, its own origin answered from the recording) over its share.
    The entries are independent, so the report is the same as from one process: identical requests stay in one
    process, in their recorded order. ``jobs=None``: one per usable CPU for a recording of
    :data:`ENTRIES_PER_JOB` entries or more, else one. Call it where no event loop runs (it runs its own,
    made by ``loop_factory``)."""
    import edgeproxy.testing  # noqa: F401  (imported once, here, rather than in every process forked)

    plan = _plan(path, origin_from, ignore_headers, concurrency, redact, default_redactions, headers, start_arguments)
    # The recording, read, lives until the process ends: out of the cyclic collector's sight (its full collections
    # would walk every one of its objects), and so left unwritten in the forked processes' memory.
    gc.freeze()
    groups = plan.groups
    if jobs is None:
        jobs = len(os.sched_getaffinity(0)) if len(plan.recording.entries) >= ENTRIES_PER_JOB else 1
    shares = _shares(groups, max(1, jobs))
    if len(shares) <= 1:
        return ReplayReport(plan.path, _run_share(plan, groups, loop_factory), plan.warnings)
    return ReplayReport(plan.path, _in_forks(plan, shares, loop_factory), plan.warnings)


def _shares(groups: list[list[int]], jobs: int) -> list[list[list[int]]]:
    """The groups shared out over at most ``jobs`` processes, each next group to the share with fewest entries."""
    shares: list[list[list[int]]] = [[] for _ in range(min(jobs, len(groups)))]
    sizes = [0] * len(shares)
    for group in groups:
        least = sizes.index(min(sizes))
        shares[least].append(group)
        sizes[least] += len(group)
    return shares


def _in_forks(
    plan: _Plan, shares: list[list[list[int]]], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> list[EntryResult]:
    """Each share replayed in a fork of this process, which sends its results back pickled through a pipe. Ctrl-C
    here (or a stop) ends them all; a fork that dies without its results is an error naming how it ended."""
    from edgeproxy.workers import as_child, how_it_ended

    parent = os.getpid()
    children: dict[int, int | None] = {}  # pid -> the read end of its pipe (None once read)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        for share in shares:
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                for fd in (*children.values(), read_end):
                    if fd is not None:
                        os.close(fd)
                os._exit(as_child(functools.partial(_send_share, write_end, plan, share, loop_factory), parent))
            os.close(write_end)
            children[pid] = read_end
        results: list[EntryResult] = []
        for pid, fd in list(children.items()):
            assert fd is not None
            data = _read_to_end(fd)
            os.close(fd)
            children[pid] = None
            _, status = os.waitpid(pid, 0)
            del children[pid]
            try:
                outcome = pickle.loads(data)
            except Exception:  # nothing, or cut short: it died before it had written them all
                raise RecordingError(
                    f"{plan.path}: a replaying process ({pid}) ended without its results: {how_it_ended(status)}"
                ) from None
            if isinstance(outcome, BaseException):
                raise outcome
            results += outcome
    finally:
        for pid, fd in children.items():  # what is left: stopped (Ctrl-C, or another share's error)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if fd is not None:
                os.close(fd)
            os.waitpid(pid, 0)
    return sorted(results, key=lambda result: result.index)


def _send_share(
    fd: int, plan: _Plan, share: list[list[int]], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> int:
    """A fork's work: replay its share, and write the results (or the error that stopped it) to ``fd``."""
    outcome: list[EntryResult] | EdgeProxyError
    try:
        outcome = _run_share(plan, share, loop_factory)
    except EdgeProxyError as error:  # a configuration error, say: the parent reports it as it would its own
        outcome = error
    with open(fd, "wb") as pipe:
        pipe.write(pickle.dumps(outcome))
    return 0


def _read_to_end(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _run_share(
    plan: _Plan, groups: list[list[int]], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> list[EntryResult]:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_replay_groups(plan, groups))


async def _replay_groups(plan: _Plan, groups: list[list[int]]) -> list[EntryResult]:
    """The entries of ``groups`` through a distribution of their own, over real HTTP, ``plan.concurrency``
    connections at a time; each group's entries one after another, in their recorded order."""
    from edgeproxy.testing import start  # the proxy: only when replaying

    proxy = await start(**plan.start_arguments, keep_invocations=False)  # the exchanges are compared as they end
    exchanges = _Exchanges()
    proxy.observe(exchanges)
    try:
        pending: asyncio.Queue[list[int]] = asyncio.Queue()
        for indexes in groups:
            pending.put_nowait(indexes)
        results: dict[int, EntryResult] = {}

        async def worker() -> None:
            connector = aiohttp.TCPConnector(limit=1)  # one request at a time on one connection
            async with aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                cookie_jar=aiohttp.DummyCookieJar(),
            ) as session:
                while not pending.empty():
                    for index in pending.get_nowait():
                        entry = plan.recording.entries[index]
                        results[index] = await _one(session, proxy.url, index, entry, exchanges, plan)

        workers = [asyncio.create_task(worker()) for _ in range(min(plan.concurrency, len(groups)) or 1)]
        try:
            await asyncio.gather(*workers)
        finally:  # one stopped by bad input stops the others
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    finally:
        await proxy.close()
    return [results[index] for index in sorted(results)]


def _target(request: Mapping[str, Any]) -> str:
    url = URL(str(request.get("url", "/")), encoded=True)
    return url.raw_path_qs


def _request_headers(request: Mapping[str, Any], secrets: Mapping[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The recorded viewer's own headers, as it sent them: less HTTP/2 pseudo-headers and the framing of its
    connection (the replay's own connection frames the body), with the ``secrets`` given back to what the recording
    holds redacted; and what stays redacted, named (:func:`~edgeproxy.record.redact.unredacted`)."""
    framing = HOP_BY_HOP | {"content-length"}
    recorded = [
        (name, value)
        for name, value in header_pairs(request.get("headers"))
        if not name.startswith(":") and name.lower() not in framing
    ]
    return unredacted(recorded, secrets)


async def _one(
    session: aiohttp.ClientSession,
    base: URL,
    index: int,
    entry: Mapping[str, Any],
    exchanges: _Exchanges,
    plan: _Plan,
) -> EntryResult:
    request = entry.get("request") or {}
    method = str(request.get("method", "GET"))
    target = _target(request)
    recorded = entry.get("response") or {}
    result = EntryResult(index, method, target, int(recorded.get("status") or 0), None)
    url = URL(f"{base}{target}", encoded=True)
    try:
        body = request_body(request)
    except ValueError as exc:
        raise RecordingError(f"{plan.path}: entry {index + 1} ({method} {target}): {exc}") from None
    headers, redacted = _request_headers(request, plan.secrets)
    if redacted := redacted + redacted_parameters(url.raw_query_string):
        result.notes.append(
            "its request was recorded with redacted values, and was sent with them as '[REDACTED]': "
            f"{', '.join(redacted)}; give the real ones with --header 'NAME: VALUE' (replay(headers=...) in Python)"
        )
    exchanges.sending()
    try:
        async with session.request(method, url, headers=headers, data=body, allow_redirects=False) as response:
            data = await response.read()
            result.status = response.status
            received = as_received(response.raw_headers, response.headers)
    except ValueError as exc:  # what aiohttp will not put on the wire (a method not a token, a CR LF in a header...)
        raise RecordingError(
            f"{plan.path}: entry {index + 1} ({method} {target}): its request cannot be sent as HTTP/1.1: {exc}"
        ) from None
    except aiohttp.ClientError as exc:
        result.differences.append(Difference("response", f"status {result.recorded_status}", f"no response ({exc})"))
        return result
    exchange = exchanges.of(received)
    if exchange is None:
        result.notes.append(REJECTED_NOTE)
    result.differences += plan.comparer.compare(entry, response.status, received, data, exchange)
    return result


class _Comparer:
    """Compares one recorded entry with what its replay gave."""

    def __init__(self, recording: Recording, redactor: Redactor, ignored: frozenset[str]) -> None:
        self.browser = not recording.is_edgeproxys
        self.redactor = redactor
        self.ignored = ignored

    def compare(
        self,
        entry: Mapping[str, Any],
        status: int,
        headers: CIMultiDict[str],
        body: bytes,
        exchange: Exchange | None,
    ) -> list[Difference]:
        recorded = entry.get("response") or {}
        # Hop-by-hop headers (RFC 9110 §7.6.1: Connection, Keep-Alive, Transfer-Encoding... and those Connection
        # names) describe a connection, the recorded viewer's or the replay's, not the response: never compared.
        recorded_headers = list(
            end_to_end(
                CIMultiDict(pair for pair in header_pairs(recorded.get("headers")) if not pair[0].startswith(":"))
            )
        )
        replayed_headers = self.redactor.headers_list(end_to_end(headers))
        ids = {str(entry.get("_requestId", "")), *self._ids(recorded_headers), *(self._ids(headers.items()))} - {""}
        differences = []
        if int(recorded.get("status") or 0) != status:
            differences.append(Difference("status", str(recorded.get("status")), str(status)))
        differences += self._headers(recorded_headers, replayed_headers, ids)
        recorded_body = body_of(recorded.get("content"))
        if recorded_body is not None:
            decoded = self._decoded(body, headers)
            if isinstance(decoded, str):
                differences.append(Difference("body", f"{len(recorded_body)} bytes", decoded))
            else:
                differences += self._body(recorded_body, decoded, ids)
        if "_invocations" in entry:  # no exchange: no function ran
            differences += self._invocations(entry["_invocations"], exchange.invocations if exchange else [], ids)
        return differences

    @staticmethod
    def _ids(headers: Iterable[tuple[str, str]]) -> set[str]:
        return {value for name, value in headers if name.lower() == "x-amz-cf-id"}

    def _headers(
        self, recorded: list[tuple[str, str]], replayed: list[tuple[str, str]], ids: set[str]
    ) -> list[Difference]:
        def grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
            groups: dict[str, list[str]] = {}
            for name, value in pairs:
                if name.lower() not in self.ignored:
                    groups.setdefault(name.lower(), []).append(_without_ids(value, ids))
            return groups

        left, right = grouped(recorded), grouped(replayed)
        names = sorted(left if self.browser else left.keys() | right.keys())
        differences = []
        for name in names:
            if left.get(name) != right.get(name):
                spelled = next((n for n, _ in recorded + replayed if n.lower() == name), name)
                differences.append(Difference(f"header {spelled}", _values(left.get(name)), _values(right.get(name))))
        return differences

    def _decoded(self, body: bytes, headers: CIMultiDict[str]) -> bytes | str:
        """A browser's HAR holds bodies decoded: so is the replayed one before comparing (its codings undone last
        first). Bytes a decoder refuses stay as they are; a coding with no decoder here is why it cannot be
        compared (the text)."""
        codings = [part.strip().lower() for part in headers.get("Content-Encoding", "").split(",")]
        if not self.browser:
            return body
        for coding in reversed([coding for coding in codings if coding not in ("", "identity")]):
            decode = decoder(coding)
            if decode is None:
                missing = DECODER_MODULES.get(coding)
                why = (
                    f"no decoder for {coding} is installed ({' or '.join(missing)})"
                    if missing
                    else (f"edgeproxy has no decoder for {coding}")
                )
                return f"{coding}-encoded: not compared, as {why}"
            try:
                body = decode(body)
            except Exception:  # not what its Content-Encoding says (zlib.error, OSError, brotli.error...)
                return body
        return body

    @staticmethod
    def _body(recorded: bytes, replayed: bytes, ids: set[str]) -> list[Difference]:
        left, right = _without_ids_bytes(recorded, ids), _without_ids_bytes(replayed, ids)
        if left == right:
            return []
        try:
            a, b = left.decode("utf-8"), right.decode("utf-8")
        except UnicodeDecodeError:
            return [Difference("body", _digest(left), _digest(right))]
        diff = difflib.unified_diff(a.splitlines(), b.splitlines(), "recorded", "replayed", lineterm="", n=1)
        lines = list(diff)[2:]
        shown = "\n".join(lines[:20] + (["..."] if len(lines) > 20 else []))
        return [Difference("body", f"{len(left)} bytes", f"{len(right)} bytes, as text:\n{shown}")]

    def _invocations(self, recorded: Any, replayed: list[Invocation], ids: set[str]) -> list[Difference]:
        differences = []
        ran: list[str] = [invocation.trigger for invocation in replayed]
        was = [str(item.get("trigger")) for item in recorded if isinstance(item, dict)]
        for trigger in dict.fromkeys(was + ran):
            if trigger not in ran:
                differences.append(Difference(str(trigger), "ran", "did not run"))
            elif trigger not in was:
                differences.append(Difference(str(trigger), "did not run", "ran"))
        for item in recorded if isinstance(recorded, list) else ():
            if not isinstance(item, dict):
                continue
            trigger = str(item.get("trigger"))
            match = next((invocation for invocation in replayed if invocation.trigger == trigger), None)
            if match is None:
                continue
            error = _error_name(match)
            if (item.get("error") or {}).get("name") != error:
                differences.append(
                    Difference(f"{trigger} error", str((item.get("error") or {}).get("name")), str(error))
                )
            recorded_result = _recorded_result(item)
            if recorded_result is not None and match.error is None:
                replayed_result = self.redactor.event(match.result)
                if recorded_result == replayed_result:
                    continue  # the usual case, at C speed: nothing volatile in a result
                left = self._normalised(recorded_result, ids)
                right = self._normalised(replayed_result, ids)
                differences += [
                    Difference(f"{trigger} result {where}", a, b) for where, a, b in _json_differences(left, right)
                ]
        return differences

    def _normalised(self, value: Any, ids: set[str]) -> Any:
        """A result without what differs on every run: the volatile headers, the request id."""
        if isinstance(value, dict):
            return {
                key: self._normalised(item, ids)
                for key, item in value.items()
                if not (isinstance(key, str) and key.lower() in self.ignored)
            }
        if isinstance(value, list):
            return [self._normalised(item, ids) for item in value]
        if isinstance(value, str):
            return _without_ids(value, ids)
        return value


# Where the decoders of content codings the standard library lacks may be, none a dependency of edgeproxy's (only the
# comparison of a browser's HAR decodes a body): aiohttp's own choices for br and zstd, and zstandard.
DECODER_MODULES = {"br": ("brotli", "brotlicffi"), "zstd": ("zstandard",)}


@functools.cache
def decoder(coding: str) -> Callable[[bytes], bytes] | None:
    """The decoder of an HTTP content coding (lower case), or ``None`` when none is installed here: gzip and deflate
    from the standard library; br from ``brotli`` or ``brotlicffi``; zstd from ``compression.zstd`` (Python 3.14),
    ``backports.zstd`` or ``zstandard``."""
    if coding in ("gzip", "x-gzip"):
        return gzip.decompress
    if coding == "deflate":
        return zlib.decompress
    candidates = {"br": ("brotli", "brotlicffi"), "zstd": ("compression.zstd", "backports.zstd")}.get(coding, ())
    for name in candidates:
        with contextlib.suppress(ImportError):
            decompress: Callable[[bytes], bytes] = importlib.import_module(name).decompress
            return decompress
    if coding == "zstd":
        with contextlib.suppress(ImportError):
            zstandard = importlib.import_module("zstandard")
            # A frame written as it was sent has no content size: a decompressobj does not need one.
            return lambda data: bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    return None


def _recorded_result(item: Mapping[str, Any]) -> Any:
    """A recorded invocation's result; one that returned what it was given unchanged is recorded as its event."""
    if "result" in item:
        return item["result"]
    event = item.get("event")
    if not item.get("unchanged") or not isinstance(event, dict):
        return None
    if "Records" not in event:
        return event
    cf = event["Records"][0]["cf"]
    return cf.get("response") or cf.get("request")


def _error_name(invocation: Invocation) -> str | None:
    error = invocation.error
    if error is None:
        return None
    return str(getattr(error, "x_cache", None) or getattr(error, "error_reason", None))


def _without_ids(text: str, ids: set[str]) -> str:
    for request_id in ids:
        text = text.replace(request_id, REQUEST_ID)
    return text


def _without_ids_bytes(data: bytes, ids: set[str]) -> bytes:
    for request_id in ids:
        data = data.replace(request_id.encode(), REQUEST_ID.encode())
    return data


def _values(values: list[str] | None) -> str:
    return "(absent)" if values is None else " | ".join(repr(value) for value in values)


def _digest(data: bytes) -> str:
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}"


def _json_differences(left: Any, right: Any, where: str = "$") -> list[tuple[str, str, str]]:
    """The JSON paths at which two values differ, with both sides."""
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in [*left, *(key for key in right if key not in left)]:
            path = f"{where}.{key}"
            if key not in right:
                found.append((path, _json(left[key]), "(absent)"))
            elif key not in left:
                found.append((path, "(absent)", _json(right[key])))
            else:
                found += _json_differences(left[key], right[key], path)
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [
            d
            for index, (a, b) in enumerate(zip(left, right, strict=True))
            for d in _json_differences(a, b, f"{where}[{index}]")
        ]
    return [] if left == right else [(where, _json(left), _json(right))]


def _json(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:197] + "..."
