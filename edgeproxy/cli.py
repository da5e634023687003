"""The ``edgeproxy`` command: serve, alb, invoke, events, replay, invalidate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

from aiohttp import web
from yarl import URL

from edgeproxy import alb, config, record, testing, workers
from edgeproxy.admin import admin_app
from edgeproxy.cache import invalidation_problem
from edgeproxy.config import Distribution, TargetGroup
from edgeproxy.errors import AlbError, ConfigError, EventArgumentError, LambdaExecutionError, LambdaValidationError
from edgeproxy.events import alb as alb_events
from edgeproxy.events import cloudfront
from edgeproxy.inspector import DEFAULT_SIZE as DEFAULT_RING
from edgeproxy.listener import Timeouts, serve_until_stopped
from edgeproxy.record import golden
from edgeproxy.rules import Strictness
from edgeproxy.server import Options, create_app
from edgeproxy.triggers import DEFAULT_MEMORY, LAMBDA_MAX_MEMORY, LAMBDA_MAX_TIMEOUT, TRIGGERS, Trigger


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad command line told in one line (and exit status 2) instead of the usage and the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgeproxy", description="A local CloudFront + Lambda@Edge emulator.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve a distribution in front of an origin")
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="a TOML distribution config")
    source.add_argument("--origin", help="one origin: an http(s) URL (its path is the origin path) or a folder")
    for trigger in TRIGGERS:
        serve.add_argument(
            f"--{trigger}",
            metavar="REF",
            help=f"handler for {trigger} (file.py:function, file.mjs:handler or module.function)",
        )
    serve.add_argument("--include-body", action="store_true", help="include the body at viewer-/origin-request")
    serve.add_argument(
        "--cache-policy", metavar="NAME", help="the behavior's managed cache policy (name or id; with --origin)"
    )
    serve.add_argument(
        "--origin-request-policy",
        metavar="NAME",
        help="the behavior's managed origin request policy (name or id; with --origin and --cache-policy)",
    )
    _add_server_options(serve)
    serve.add_argument("--lenient", action="store_true", help="log rule violations as warnings instead of failing")
    serve.add_argument("--debug-headers", action="store_true", help="send X-Edgeproxy-Error on error pages")
    serve.add_argument(
        "--viewer-response-read-only",
        choices=["current", "2021"],
        help="read-only headers at viewer-response: current (Warning, Via; the default) or 2021 (also "
        "Content-Encoding, Content-Length, Transfer-Encoding); overrides the config file",
    )

    _recording_flags(serve)

    balancer = commands.add_parser("alb", help="serve one Lambda function behind an emulated ALB target group")
    balancer.add_argument(
        "--target",
        required=True,
        metavar="REF",
        help="the function: file.py:function, file.mjs:handler or module.function",
    )
    balancer.add_argument("--multi-value-headers", action="store_true", help="the target group's multi-value mode")
    balancer.add_argument("--target-group-arn", metavar="ARN", help="requestContext.elb.targetGroupArn in events")
    balancer.add_argument(
        "--timeout", type=_lambda_timeout, help="the function's timeout in seconds, up to 900 (default: Lambda's 3)"
    )
    balancer.add_argument(
        "--memory",
        type=_memory_size,
        default=DEFAULT_MEMORY,
        help=f"the function's memory in MB, 128-10240 (default {DEFAULT_MEMORY})",
    )
    _add_server_options(balancer)
    _recording_flags(balancer)

    replaying = commands.add_parser(
        "replay", help="replay a recording through the current distribution and say what differs (exit 1 if any)"
    )
    replaying.add_argument("recording", type=Path, metavar="FILE.har", help="a recording, or a HAR from a browser")
    source = replaying.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="a TOML distribution (or [alb] target group) config")
    source.add_argument("--origin", help="one origin: an http(s) URL or a folder, with trigger flags")
    for trigger in TRIGGERS:
        replaying.add_argument(f"--{trigger}", metavar="REF", help=f"handler for {trigger}")
    replaying.add_argument("--include-body", action="store_true", help="include the body at viewer-/origin-request")
    replaying.add_argument(
        "--origin-from",
        choices=("recording", "live"),
        help="answer origin requests from the recording (the default when it holds origin exchanges) or send them "
        "to the live origin (required for a recording without them, such as a browser's HAR)",
    )
    replaying.add_argument(
        "--ignore-header", action="append", default=[], metavar="NAME", help="a header never compared (repeatable)"
    )
    replaying.add_argument(
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="'NAME: VALUE'",
        help="the real value of a request header the recording holds as [REDACTED] (a Cookie gives its cookies' "
        "values, by name); repeatable",
    )
    replaying.add_argument("--json", action="store_true", help="print the report as JSON")
    replaying.add_argument(
        "--jobs",
        type=_processes,
        metavar="N",
        help=f"replay in N processes (default: one per CPU for {golden.ENTRIES_PER_JOB} entries or more, else 1)",
    )
    _loop_flag(replaying)
    _redaction_flags(replaying)

    invalidating = commands.add_parser(
        "invalidate", help="invalidate cached objects of a running edgeproxy serve (through its admin listener)"
    )
    invalidating.add_argument(
        "--admin",
        required=True,
        action="append",
        metavar="URL",
        help="the admin listener's URL (serve --admin-port prints it); repeat it for each worker of serve --workers",
    )
    invalidating.add_argument(
        "paths", nargs="+", metavar="PATH", help="CloudFront invalidation paths: /images/a.jpg, /images/* (quote it)"
    )

    invoke = commands.add_parser("invoke", help="run one handler on one event and print its validated result")
    invoke.add_argument("ref", metavar="REF", help="handler: file.py:function, file.mjs:handler or module.function")
    invoke.add_argument("--event", required=True, help="event JSON file, or - for standard input")
    invoke.add_argument(
        "--timeout", type=_seconds, help="seconds (default: 5 at viewer triggers, 30 at origin triggers, 3 for ALB)"
    )
    invoke.add_argument("--lenient", action="store_true", help="report rule violations as warnings")
    _isolation_flag(invoke)
    invoke.add_argument(
        "--viewer-response-read-only", choices=["current", "2021"], default="current", help="as for serve"
    )

    events = commands.add_parser("events", help="print a sample event for a trigger, or for an ALB target (alb)")
    events.add_argument("trigger", choices=(*TRIGGERS, "alb"))
    events.add_argument("--uri", default="/", help="request path, may include ?query")
    events.add_argument("--method", default="GET")
    events.add_argument(
        "--header", action="append", default=[], metavar="'Name: value'", help="a viewer request header (repeatable)"
    )
    events.add_argument("--client-ip", default="203.0.113.178")
    events.add_argument(
        "--origin",
        metavar="URL|s3://BUCKET",
        help="the origin of origin events: an http(s) URL (its path is the origin path) or an S3 bucket "
        f"(default {testing.ORIGIN_URL})",
    )
    events.add_argument("--status", type=int, help="the origin's status in response events (default 200)")
    events.add_argument(
        "--country",
        metavar="CODE",
        help="CloudFront-Viewer-Country in origin events, as a policy naming it adds it (ISO 3166-1 alpha-2)",
    )
    events.add_argument(
        "--response-header",
        action="append",
        metavar="'Name: value'",
        help="an origin response header in response events (repeatable; replaces the sample ones)",
    )
    events.add_argument(
        "--body", help="the request body: request.body in request events (as with include-body), or the ALB body"
    )
    events.add_argument(
        "--include-body", action="store_true", help="request.body in request events, empty unless --body is given"
    )
    events.add_argument("--multi-value-headers", action="store_true", help="a multi-value mode event (alb)")
    events.add_argument("--health-check", action="store_true", help="the health checker's event (alb)")
    return parser


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    """What ``serve`` and ``alb`` share: where to listen, the viewer connection timeouts, reloading and logging."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8080, help="the port to listen on (0: a free one; default 8080)")
    parser.add_argument(
        "--reload", action="store_true", help="reload handlers (restart their environments) when their source changes"
    )
    _isolation_flag(parser)
    parser.add_argument(
        "--workers",
        type=_processes,
        default=1,
        metavar="N",
        help="serve from N processes on one port (SO_REUSEPORT); each has its own cache and execution environments "
        "(default 1)",
    )
    _loop_flag(parser)
    parser.add_argument(
        "--idle-reclaim",
        type=_seconds,
        metavar="S",
        help="seconds an idle execution environment is kept (default 600, or the config file's idle_reclaim)",
    )
    parser.add_argument(
        "--admin-port",
        type=_port,
        metavar="PORT",
        help="also serve the admin listener on this port of the same host: the inspector at /, the cache's "
        "listing, invalidations; with --workers, worker i's on PORT+i (a free port each for 0)",
    )
    parser.add_argument(
        "--inspector-ring",
        type=_positive,
        default=DEFAULT_RING,
        metavar="N",
        help=f"exchanges the inspector keeps while a page watches (default {DEFAULT_RING}; the oldest drop out)",
    )
    parser.add_argument(
        "--header-timeout",
        type=_seconds,
        metavar="S",
        help=f"seconds a request head may take to arrive whole, from its first byte (default {Timeouts.header:g})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_seconds,
        metavar="S",
        help=f"seconds a keep-alive connection may wait for its next request, and a request body may stop coming "
        f"before a 408 (default {Timeouts.idle:g}; "
        f"{alb.IDLE_TIMEOUT:g} in ALB mode, the load balancer's)",
    )
    parser.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default="INFO", help="default INFO"
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no START/END/REPORT lines for invocations that succeed (errors are still logged)",
    )


def _isolation_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--isolation",
        choices=["process", "thread"],
        help="process: every function in execution environments of its own (the default); thread: Python handlers "
        "in the proxy's process (breakpoints work; Node.js ones still get environments); overrides the config file",
    )


def _loop_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        help="the event loop (default: uvloop when it is installed, else asyncio's own)",
    )


def _processes(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 or more)")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _lambda_timeout(text: str) -> float:
    value = _seconds(text)
    if value > LAMBDA_MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text!r}: a Lambda function's timeout is at most {LAMBDA_MAX_TIMEOUT:g} s")
    return value


def _memory_size(text: str) -> int:
    value = int(text)
    if not DEFAULT_MEMORY <= value <= LAMBDA_MAX_MEMORY:
        sizes = f"{DEFAULT_MEMORY}-{LAMBDA_MAX_MEMORY}"
        raise argparse.ArgumentTypeError(f"{text!r}: a Lambda function's memory is {sizes} MB")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0-65535; 0 picks a free one)")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _header(text: str) -> tuple[str, str]:
    """``--header 'NAME: VALUE'``."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME: VALUE")
    return name.strip(), value.strip()


def _redaction_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="NAME",
        help="a header, cookie or query-parameter name whose values are written as [REDACTED] (repeatable)",
    )
    parser.add_argument(
        "--no-default-redactions",
        action="store_true",
        help="do not redact Authorization, Proxy-Authorization, X-Api-Key, X-Amz-Security-Token and origin custom "
        "headers",
    )


def _recording_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recording", type=Path, metavar="FILE.har", help="serve with a HAR recording")
    parser.add_argument(
        "--record-mode",
        choices=record.RECORD_MODES,
        default="once",
        help="all: record everything live; none: answer origin requests from the recording only; once (the "
        "default): all if the file does not exist, else none; new_episodes: replay what is recorded, record the rest",
    )
    parser.add_argument(
        "--match-on",
        action="append",
        default=[],
        metavar="NAMES",
        help="what identifies an origin request (comma-separated or repeated: method, scheme, host, port, path, "
        "query, uri, body (read by its Content-Type, as vcrpy does), raw_body, headers; default "
        "method,host,path,query)",
    )
    _redaction_flags(parser)


def _recording_settings(args: argparse.Namespace) -> record.Settings | None:
    if args.recording is None:
        return None
    try:
        match_on = record.match_on(args.match_on)
    except ValueError as exc:
        raise ConfigError("command line", "--match-on", str(exc)) from None
    return record.Settings(
        args.recording, args.record_mode, match_on, tuple(args.redact), not args.no_default_redactions
    )


def _with_recording(served: Distribution | TargetGroup, args: argparse.Namespace) -> record.Session | None:
    settings = _recording_settings(args)
    if settings is None:
        return None
    session = record.open_for(served, settings)
    print(f"edgeproxy: recording {session.path} (record mode {session.mode})", file=sys.stderr)
    return session


class _BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, on the event loop, writes once per loop iteration instead of once per record. Under
    load the proxy logs several records per iteration (one per invocation), and Python's standard error is
    unbuffered: each write to it is a write syscall, four per request with four handlers. Off the loop (another
    thread, start-up, shutdown) a record is written at once, after those still held; :meth:`flush` (which
    ``logging.shutdown`` calls at exit) writes them too."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._held: list[str] = []
        self._write_scheduled = False

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            self._held.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_held()
            return
        if not self._write_scheduled:
            self._write_scheduled = True
            loop.call_soon(self._write_soon)

    def _write_soon(self) -> None:
        self.acquire()
        try:
            self._write_scheduled = False
            self._write_held()
        finally:
            self.release()

    def _write_held(self) -> None:
        if not self._held:
            return
        text = "".join(self._held)
        self._held.clear()
        with contextlib.suppress(OSError, ValueError):  # a closed stream: nothing more can be said on it
            self.stream.write(text)
            self.stream.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_held()
        finally:
            self.release()
        super().flush()


class _LineFormatter(logging.Formatter):
    """``<asctime> <LEVEL> <message>``, formatted without the generic machinery: one record per invocation goes
    through here, so the time is formatted once a second (``strftime`` is most of a record's cost otherwise)."""

    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        line = f"{self._stamp},{int(record.msecs):03d} {record.levelname} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _configure_logging(level: str = "INFO", quiet: bool = False) -> None:
    handler = _BatchedStreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    logging.basicConfig(level=getattr(logging, level), handlers=[handler])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if quiet:  # an invocation's lines are logged at INFO, or at ERROR when it crashed or timed out
        logging.getLogger("edgeproxy.lambda").setLevel(logging.WARNING)
    # The format above uses none of these; not collecting them makes each log record cheaper.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def _served(args: argparse.Namespace) -> Distribution | TargetGroup:
    """What ``serve`` runs: the config file (a distribution, or an ALB target group with ``[alb]``) or the flags,
    with the command-line overrides applied."""
    functions: dict[Trigger, str] = {
        trigger: ref for trigger in TRIGGERS if (ref := getattr(args, trigger.replace("-", "_")))
    }
    if args.config is not None:
        given = [f"--{trigger}" for trigger in functions] + (["--include-body"] if args.include_body else [])
        given += [
            flag
            for flag, value in (
                ("--cache-policy", args.cache_policy),
                ("--origin-request-policy", args.origin_request_policy),
            )
            if value
        ]
        if given:
            raise ConfigError("command line", given[0], "goes with --origin; a config file names its own")
        loaded = config.load_any(args.config)
    else:
        loaded = config.from_flags(
            args.origin,
            functions,
            include_body=args.include_body,
            cache_policy=args.cache_policy,
            origin_request_policy=args.origin_request_policy,
        )
    if args.viewer_response_read_only is not None:
        if isinstance(loaded, TargetGroup):
            problem = "applies to a CloudFront distribution, and this config is an ALB target group ([alb])"
            raise ConfigError("command line", "--viewer-response-read-only", problem)
        loaded = replace(loaded, viewer_response_read_only=args.viewer_response_read_only)
    return config.with_environments(loaded, isolation=args.isolation, idle_reclaim=args.idle_reclaim)


def serve(args: argparse.Namespace) -> int:
    return _serve(_served(args), args)


def serve_alb(args: argparse.Namespace) -> int:
    group = config.target_group_from_flags(
        args.target,
        multi_value_headers=args.multi_value_headers,
        target_group_arn=args.target_group_arn,
        timeout=args.timeout,
        memory=args.memory,
    )
    return _serve(config.with_environments(group, isolation=args.isolation, idle_reclaim=args.idle_reclaim), args)


def _application(
    served: Distribution | TargetGroup, args: argparse.Namespace, session: record.Session | None
) -> web.Application:
    observers = session.observers if session is not None else ()
    if isinstance(served, TargetGroup):
        return alb.create_app(served, reload=args.reload, observers=observers)
    options = Options(
        strictness=Strictness(lenient=getattr(args, "lenient", False)),
        debug_headers=getattr(args, "debug_headers", False),
        reload=args.reload,
        observers=observers,
    )
    return create_app(served, options, origin=session.origin if session else None)


def _serve(served: Distribution | TargetGroup, args: argparse.Namespace) -> int:
    """Serve in this process, or in ``--workers`` forks of it (:mod:`edgeproxy.workers`)."""
    _tune_collector()
    loop_factory = _loop_factory(args.loop)
    if args.workers == 1:
        session = _with_recording(served, args)
        return _run(_application(served, args, session), args, loop_factory, session)
    settings = _recording_settings(args)
    if settings is not None:
        # The file is started (or checked) once, here, and its record mode settled; every worker then appends to it
        # (under HarFile's lock) or replays from it.
        prepared = _with_recording(served, args)
        assert prepared is not None
        prepared.close()
        settings = replace(settings, mode=prepared.mode, truncate=False)

    def worker(slot: workers.Worker) -> int:
        session = record.open_for(served, settings) if settings is not None else None
        try:
            application = _application(served, args, session)
        except ConfigError as error:  # a handler that does not load: the parent says it once, not each worker
            if session is not None:
                session.close()
            slot.refuse(f"configuration error: {error}")
            return 2
        return _run(application, args, loop_factory, session, slot)

    try:
        code = workers.run(args.workers, args.host, args.port, worker)
    except OSError as exc:
        print(f"edgeproxy: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print("edgeproxy stopped", file=sys.stderr)
    return code


# The cyclic collector's young-generation threshold in edgeproxy's own long-running processes (serve, alb, replay):
# CPython's default, 700 net new container objects, makes a proxy with a few dozen requests in flight collect every
# dozen requests, walking every live request's objects each time, though nearly all of them are freed by reference
# counting when their request ends. At 10,000 it collects a few times a minute. Cyclic garbage waits that much longer
# (a few MB at most); what handlers do in their own environments is unaffected.
YOUNG_COLLECTION_THRESHOLD = 10_000


def _tune_collector() -> None:
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)


def _loop_factory(choice: str | None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``--loop`` names; by default uvloop when it is installed, else asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("command line", "--loop uvloop", "uvloop is not installed (pip install uvloop)") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run(
    app: web.Application,
    args: argparse.Namespace,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
    session: record.Session | None = None,
    worker: workers.Worker | None = None,
) -> int:
    """Serve ``app`` until stopped: alone, or as ``worker`` (on its resolved port with SO_REUSEPORT, its admin
    listener on the admin port plus its index, its URLs told to the parent)."""
    admin = admin_app(app, inspector_ring=args.inspector_ring) if args.admin_port is not None else None
    admin_port = args.admin_port or 0
    if worker is not None and admin_port:
        admin_port += worker.index
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(
                serve_until_stopped(
                    app,
                    args.host,
                    args.port if worker is None else worker.port,
                    header_timeout=args.header_timeout,
                    idle_timeout=args.idle_timeout,
                    admin=admin,
                    admin_port=admin_port,
                    reuse_port=worker is not None,
                    announce=None if worker is None else worker.announce,
                )
            )
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        port = f"{args.port} or admin port {admin_port}" if admin is not None else str(args.port)
        print(f"edgeproxy: cannot listen on {args.host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    finally:
        if session is not None:
            session.close()
    if worker is None:
        print("edgeproxy stopped", file=sys.stderr)
    return 0


def replay(args: argparse.Namespace) -> int:
    """``edgeproxy replay``: 0 when every entry came back as recorded, 1 when any differs, 2 on bad input."""
    functions = {trigger: ref for trigger in TRIGGERS if (ref := getattr(args, trigger.replace("-", "_")))}
    source: dict[str, Any] = {"config_file": args.config} if args.config is not None else {"origin": args.origin}
    if args.config is None:
        source |= {trigger.replace("-", "_"): ref for trigger, ref in functions.items()}
        source["include_body"] = args.include_body
    elif functions or args.include_body:
        raise ConfigError("command line", "--viewer-request etc.", "go with --origin; a config file names its own")
    _tune_collector()
    report = golden.replay_in_processes(
        args.recording,
        jobs=args.jobs,
        loop_factory=_loop_factory(args.loop),
        origin_from=args.origin_from,
        ignore_headers=args.ignore_header,
        redact=args.redact,
        default_redactions=not args.no_default_redactions,
        headers=args.header,
        **source,
    )
    if args.json:
        json.dump(report.as_json(), sys.stdout, indent=2)
        print()
    else:
        report.print()
    return 0 if report.same else 1


def invalidate(args: argparse.Namespace) -> int:
    """``edgeproxy invalidate``: 0 when the invalidation was made, 2 for a path CloudFront would refuse, 1 when the
    admin listener cannot be reached or refuses it."""
    for path in args.paths:
        if problem := invalidation_problem(path):
            print(f"edgeproxy: invalidate: {problem}", file=sys.stderr)
            return 2
    code = 0
    for admin in args.admin:  # serve --workers: each worker's cache has its own admin listener
        code = max(code, _invalidate_at(admin, args.paths))
    return code


def _is_http_url(text: str) -> bool:
    try:
        url = URL(text)
        return url.scheme in ("http", "https") and bool(url.raw_host) and url.explicit_port != 0
    except ValueError:  # yarl's: a port that is not a number, an unclosed [IPv6 address...
        return False


def _invalidate_at(admin: str, paths: list[str]) -> int:
    url = admin.rstrip("/") + "/invalidations"
    if not _is_http_url(url):
        print(f"edgeproxy: invalidate: --admin {admin!r} is not an http:// URL (as serve prints it)", file=sys.stderr)
        return 2
    request = urllib.request.Request(
        url, data=json.dumps({"paths": paths}).encode(), headers={"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP(S)_PROXY
    try:
        with opener.open(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        print(
            f"edgeproxy: invalidate: {url} answered {error.code}: {error.read().decode(errors='replace')}",
            file=sys.stderr,
        )
        return 1
    except (OSError, ValueError) as error:
        print(f"edgeproxy: invalidate: cannot reach {url}: {error}", file=sys.stderr)
        return 1
    print(f"{answer['id']} {answer['status']}: {answer['invalidated']} cached object(s) removed")
    return 0


def invoke(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text(encoding="utf-8")
        event = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"edgeproxy: cannot read event {args.event}: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print(f"edgeproxy: cannot read event {args.event}: nested too deeply for JSON", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(
            testing.ainvoke(
                args.ref,
                event,
                timeout=args.timeout,
                lenient=args.lenient,
                viewer_response_read_only=args.viewer_response_read_only or "current",
                isolation=args.isolation,
            )
        )
    except ConfigError as error:
        if error.source != testing.AINVOKE:
            raise
        # the handler does not load: named as the command line names it, not as the testing API does
        print(f"edgeproxy: configuration error: command line: {args.ref}: {error.problem}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"edgeproxy: {args.event}: {exc}", file=sys.stderr)
        return 2
    except (LambdaValidationError, LambdaExecutionError) as error:
        print(f"edgeproxy: {error.status} {error.x_cache}: {error.message}\n  reason: {error.reason}", file=sys.stderr)
        return 1
    except AlbError as error:
        print(f"edgeproxy: {error.status} {error.error_reason or '-'}\n  reason: {error.reason}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


# The ``edgeproxy events`` flag of each argument of the event builders, to name it in an error.
EVENT_FLAGS = {"headers": "--header", "response_headers": "--response-header", "path": "--uri"}
ALB_ONLY = ("multi_value_headers", "health_check")
CLOUDFRONT_ONLY = ("origin", "status", "response_header", "include_body", "country")


def sample_event(args: argparse.Namespace) -> cloudfront.Event | alb_events.Event:
    """A realistic event for ``args.trigger``, built the way the proxy (or the ALB facade) builds its events, by
    the testing API's builders; a flag of the other kind of event is refused."""
    alb_mode = args.trigger == "alb"
    for name in CLOUDFRONT_ONLY if alb_mode else ALB_ONLY:
        if getattr(args, name) not in (None, False):
            kind = "CloudFront events" if alb_mode else "alb events"
            raise EventArgumentError(f"--{name.replace('_', '-')}", getattr(args, name), f"applies to {kind} only")
    headers = _given_headers("--header", args.header)
    if alb_mode:
        return testing.alb_event(
            args.uri,
            method=args.method,
            headers=headers,
            body=args.body or "",
            multi_value_headers=args.multi_value_headers,
            client_ip=args.client_ip,
            health_check=args.health_check,
        )
    if args.include_body and args.trigger.endswith("response"):
        raise EventArgumentError("--include-body", True, "applies to viewer-request and origin-request events")
    given_response = args.response_header
    response_headers = None if given_response is None else _given_headers("--response-header", given_response)
    return testing.cloudfront_event(
        args.trigger,
        args.uri,
        method=args.method,
        headers=headers,
        client_ip=args.client_ip,
        origin=args.origin,
        body=b"" if args.include_body and args.body is None else args.body,
        status=args.status,
        response_headers=response_headers,
        country=args.country,
    )


def _given_headers(flag: str, header_args: list[str]) -> list[tuple[str, str]]:
    given: list[tuple[str, str]] = []
    for header in header_args:
        name, sep, value = header.partition(":")
        if not sep:
            raise EventArgumentError(flag, header, "a header is 'Name: value'")
        given.append((name.strip(), value.strip()))
    return given


def events(args: argparse.Namespace) -> int:
    """``edgeproxy events``: print the event, or one line naming the flag CloudFront (or ALB) could not send."""
    try:
        event = sample_event(args)
    except EventArgumentError as error:
        flag = EVENT_FLAGS.get(error.argument, "--" + error.argument.removeprefix("--").replace("_", "-"))
        print(f"edgeproxy: events {args.trigger}: {flag} {error.shown}: {error.problem}", file=sys.stderr)
        return 2
    json.dump(event, sys.stdout, indent=2)
    print()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(getattr(args, "log_level", "INFO"), getattr(args, "quiet", False))
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "alb":
            return serve_alb(args)
        if args.command == "invoke":
            return invoke(args)
        if args.command == "invalidate":
            return invalidate(args)
        if args.command == "replay":
            logging.getLogger("edgeproxy.lambda").setLevel(logging.WARNING)  # the report is the output, not the runs
            try:
                return replay(args)
            except KeyboardInterrupt:
                print("edgeproxy: replay interrupted", file=sys.stderr)
                return 130
        return events(args)
    except ConfigError as error:
        print(f"edgeproxy: configuration error: {error}", file=sys.stderr)
        return 2
    except record.RecordingError as error:
        print(f"edgeproxy: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `edgeproxy events ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
