"""The ``edgeproxy`` command: serve, alb, invoke, events."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from edgeproxy import alb, config, testing
from edgeproxy.config import TRIGGERS, Distribution, TargetGroup, Trigger
from edgeproxy.errors import AlbError, ConfigError, LambdaExecutionError, LambdaValidationError
from edgeproxy.events import alb as alb_events
from edgeproxy.events import cloudfront
from edgeproxy.listener import Timeouts, ViewerSite
from edgeproxy.rules import Strictness
from edgeproxy.server import Options, create_app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeproxy", description="A local CloudFront + Lambda@Edge emulator.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve a distribution in front of an origin")
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="a TOML distribution config")
    source.add_argument("--origin", help="one origin: an http(s) URL (its path is the origin path) or a folder")
    for trigger in TRIGGERS:
        serve.add_argument(
            f"--{trigger}", metavar="REF", help=f"handler for {trigger} (file.py:function or module.function)"
        )
    serve.add_argument("--include-body", action="store_true", help="include the body at viewer-/origin-request")
    _add_server_options(serve)
    serve.add_argument("--lenient", action="store_true", help="log rule violations as warnings instead of failing")
    serve.add_argument("--debug-headers", action="store_true", help="send X-Edgeproxy-Error on error pages")
    serve.add_argument(
        "--viewer-response-read-only",
        choices=["current", "2021"],
        help="read-only headers at viewer-response: current (Warning, Via; the default) or 2021 (also "
        "Content-Encoding, Content-Length, Transfer-Encoding); overrides the config file",
    )

    balancer = commands.add_parser("alb", help="serve one Lambda function behind an emulated ALB target group")
    balancer.add_argument(
        "--target", required=True, metavar="REF", help="the function: file.py:function or module.function"
    )
    balancer.add_argument("--multi-value-headers", action="store_true", help="the target group's multi-value mode")
    balancer.add_argument("--target-group-arn", metavar="ARN", help="requestContext.elb.targetGroupArn in events")
    balancer.add_argument("--timeout", type=float, help="the function's timeout in seconds (default: Lambda's 3)")
    balancer.add_argument("--memory", type=int, default=128, help="the function's memory in MB")
    _add_server_options(balancer)

    invoke = commands.add_parser("invoke", help="run one handler on one event and print its validated result")
    invoke.add_argument("ref", metavar="REF", help="handler: file.py:function or module.function")
    invoke.add_argument("--event", required=True, help="event JSON file, or - for standard input")
    invoke.add_argument(
        "--timeout", type=float, help="seconds (default: 5 at viewer triggers, 30 at origin triggers, 3 for ALB)"
    )
    invoke.add_argument("--lenient", action="store_true", help="report rule violations as warnings")
    invoke.add_argument(
        "--viewer-response-read-only", choices=["current", "2021"], default="current", help="as for serve"
    )

    events = commands.add_parser("events", help="print a sample event for a trigger, or for an ALB target (alb)")
    events.add_argument("trigger", choices=(*TRIGGERS, "alb"))
    events.add_argument("--uri", default="/", help="request path, may include ?query")
    events.add_argument("--method", default="GET")
    events.add_argument("--header", action="append", default=[], metavar="'Name: value'")
    events.add_argument("--client-ip", default="203.0.113.178")
    events.add_argument("--origin", default="https://example.org", help="origin URL for origin events")
    events.add_argument("--status", type=int, default=200, help="response status for response events")
    events.add_argument("--body", default="", help="request body (alb)")
    events.add_argument("--multi-value-headers", action="store_true", help="a multi-value mode event (alb)")
    events.add_argument("--health-check", action="store_true", help="the health checker's event (alb)")
    return parser


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    """What ``serve`` and ``alb`` share: where to listen, the viewer connection timeouts, reloading and logging."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--reload", action="store_true", help="reload handler source files when they change")
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
        help=f"seconds a keep-alive connection may wait for its next request (default {Timeouts.idle:g}; "
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


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


class _BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, on the event loop, flushes once per loop iteration instead of once per record: under
    load the proxy logs several records per iteration (one per invocation), and each flush is a write syscall."""

    _flush_pending = False

    def flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            super().flush()
            return
        if not self._flush_pending:
            self._flush_pending = True
            loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_pending = False
        super().flush()


def _configure_logging(level: str = "INFO", quiet: bool = False) -> None:
    handler = _BatchedStreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=getattr(logging, level), handlers=[handler])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if quiet:  # an invocation's lines are logged at INFO, or at ERROR when it crashed or timed out
        logging.getLogger("edgeproxy.lambda").setLevel(logging.WARNING)
    # The format above uses none of these; not collecting them makes each log record cheaper.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def _distribution(args: argparse.Namespace) -> Distribution:
    """The distribution ``serve`` runs: the config file or the flags, with command-line overrides applied."""
    if args.config is not None:
        distribution = config.load(args.config)
    else:
        functions: dict[Trigger, str] = {
            trigger: getattr(args, trigger.replace("-", "_"))
            for trigger in TRIGGERS
            if getattr(args, trigger.replace("-", "_"))
        }
        distribution = config.from_flags(args.origin, functions, include_body=args.include_body)
    if args.viewer_response_read_only is not None:
        distribution = replace(distribution, viewer_response_read_only=args.viewer_response_read_only)
    return distribution


async def _serve(app: web.Application, args: argparse.Namespace) -> None:
    host, port = args.host, args.port
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = ViewerSite(runner, host, port, header_timeout=args.header_timeout, idle_timeout=args.idle_timeout)
        await site.start()
        bound = runner.addresses[0]
        print(f"edgeproxy listening on http://{host}:{bound[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(args: argparse.Namespace) -> int:
    loaded = config.load_any(args.config) if args.config is not None else _distribution(args)
    if isinstance(loaded, TargetGroup):
        return _run(alb.create_app(loaded, reload=args.reload), args)
    options = Options(strictness=Strictness(lenient=args.lenient), debug_headers=args.debug_headers, reload=args.reload)
    return _run(create_app(loaded, options), args)


def serve_alb(args: argparse.Namespace) -> int:
    group = config.target_group_from_flags(
        args.target,
        multi_value_headers=args.multi_value_headers,
        target_group_arn=args.target_group_arn,
        timeout=args.timeout,
        memory=args.memory,
    )
    return _run(alb.create_app(group, reload=args.reload), args)


def _run(app: web.Application, args: argparse.Namespace) -> int:
    try:
        asyncio.run(_serve(app, args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"edgeproxy: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print("edgeproxy stopped", file=sys.stderr)
    return 0


def invoke(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text(encoding="utf-8")
        event = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"edgeproxy: cannot read event {args.event}: {exc}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(
            testing.ainvoke(
                args.ref,
                event,
                timeout=args.timeout,
                lenient=args.lenient,
                viewer_response_read_only=args.viewer_response_read_only or "current",
            )
        )
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


def sample_alb_event(args: argparse.Namespace) -> alb_events.Event:
    """A realistic ALB event, built the way the ALB facade builds its events (§7.1)."""
    return testing.alb_event(
        args.uri,
        method=args.method,
        headers=_given_headers(args.header),
        body=args.body,
        multi_value_headers=args.multi_value_headers,
        client_ip=args.client_ip,
        health_check=args.health_check,
    )


def _given_headers(header_args: list[str]) -> list[tuple[str, str]]:
    given: list[tuple[str, str]] = []
    for header in header_args:
        name, sep, value = header.partition(":")
        if not sep:
            raise SystemExit(f"edgeproxy: --header {header!r} is not 'Name: value'")
        given.append((name.strip(), value.strip()))
    return given


def sample_event(args: argparse.Namespace) -> cloudfront.Event:
    """A realistic event for ``args.trigger``, built the way the proxy builds its events."""
    return testing.cloudfront_event(
        args.trigger,
        args.uri,
        method=args.method,
        headers=_given_headers(args.header),
        client_ip=args.client_ip,
        origin=args.origin,
        status=args.status,
    )


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
        json.dump(sample_alb_event(args) if args.trigger == "alb" else sample_event(args), sys.stdout, indent=2)
        print()
        return 0
    except ConfigError as error:
        print(f"edgeproxy: configuration error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `edgeproxy events ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
