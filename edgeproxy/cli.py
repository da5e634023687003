"""The ``edgeproxy`` command: serve, alb, invoke, events."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from edgeproxy import alb, config
from edgeproxy.config import TRIGGERS, Association, Distribution, TargetGroup, Trigger
from edgeproxy.errors import AlbError, ConfigError, LambdaExecutionError, LambdaValidationError
from edgeproxy.events import alb as alb_events
from edgeproxy.events import cloudfront
from edgeproxy.pipeline import toward_origin
from edgeproxy.rules import STRICT, Snapshot, Strictness, check_result
from edgeproxy.runtime import Runtime
from edgeproxy.server import Options, create_app, via_value


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
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--reload", action="store_true", help="reload handler source files when they change")
    serve.add_argument("--lenient", action="store_true", help="log rule violations as warnings instead of failing")
    serve.add_argument("--debug-headers", action="store_true", help="send X-Edgeproxy-Error on error pages")

    balancer = commands.add_parser("alb", help="serve one Lambda function behind an emulated ALB target group")
    balancer.add_argument(
        "--target", required=True, metavar="REF", help="the function: file.py:function or module.function"
    )
    balancer.add_argument("--multi-value-headers", action="store_true", help="the target group's multi-value mode")
    balancer.add_argument("--target-group-arn", metavar="ARN", help="requestContext.elb.targetGroupArn in events")
    balancer.add_argument("--timeout", type=float, help="the function's timeout in seconds (default: Lambda's 3)")
    balancer.add_argument("--memory", type=int, default=128, help="the function's memory in MB")
    balancer.add_argument("--host", default="127.0.0.1")
    balancer.add_argument("--port", type=int, default=8080)
    balancer.add_argument("--reload", action="store_true", help="reload the handler's source file when it changes")

    invoke = commands.add_parser("invoke", help="run one handler on one event and print its validated result")
    invoke.add_argument("ref", metavar="REF", help="handler: file.py:function or module.function")
    invoke.add_argument("--event", required=True, help="event JSON file, or - for standard input")
    invoke.add_argument(
        "--timeout", type=float, help="seconds (default: 5 at viewer triggers, 30 at origin triggers, 3 for ALB)"
    )
    invoke.add_argument("--lenient", action="store_true", help="report rule violations as warnings")

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


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _distribution(args: argparse.Namespace) -> Distribution:
    if args.config is not None:
        return config.load(args.config)
    functions: dict[Trigger, str] = {
        trigger: getattr(args, trigger.replace("-", "_"))
        for trigger in TRIGGERS
        if getattr(args, trigger.replace("-", "_"))
    }
    return config.from_flags(args.origin, functions, include_body=args.include_body)


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, keepalive_timeout=75)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
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
        asyncio.run(_serve(app, args.host, args.port))
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
    if alb_events.is_alb_event(event):
        return _invoke_alb(args, event)
    try:
        cf = event["Records"][0]["cf"]
        trigger: Trigger = cf["config"]["eventType"]
        if trigger not in TRIGGERS:
            raise ValueError(trigger)
    except (KeyError, IndexError, TypeError, ValueError):
        print(
            f"edgeproxy: {args.event} is not a Lambda@Edge event (no Records[0].cf.config.eventType)", file=sys.stderr
        )
        return 2
    runtime = Runtime(max_threads=2)
    association = Association(handler=args.ref, base_dir=Path.cwd(), source="command line", key="REF")
    strictness = Strictness(lenient=args.lenient) if args.lenient else STRICT
    before = Snapshot.of(cf["request"], cf.get("response"))

    async def run() -> Any:
        return await runtime.invoke(runtime.load(association), event, trigger=trigger, seconds=args.timeout)

    try:
        result = asyncio.run(run())
        checked = check_result(trigger, before, result, strictness)
        if checked.violations and not args.lenient:
            raise checked.violations[0].error()
        for violation in checked.violations:
            print(f"edgeproxy: warning: {violation.detail}", file=sys.stderr)
    except (LambdaValidationError, LambdaExecutionError) as error:
        print(f"edgeproxy: {error.status} {error.x_cache}: {error.message}\n  reason: {error.reason}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    json.dump(checked.value, sys.stdout, indent=2)
    print()
    return 0


def _invoke_alb(args: argparse.Namespace, event: Any) -> int:
    """``invoke`` with an ALB event: the mode is the event's (multi-value when it has ``multiValueHeaders``)."""
    runtime = Runtime(max_threads=2)
    association = Association(
        handler=args.ref, base_dir=Path.cwd(), source="command line", key="REF", timeout=args.timeout
    )

    async def run() -> alb_events.TargetResponse:
        function = runtime.load(association)
        group = TargetGroup(target=association, multi_value_headers=alb_events.is_multi_value(event))
        return await alb.Target(group=group, runtime=runtime, function=function).respond(event)

    try:
        response = asyncio.run(run())
    except AlbError as error:
        print(f"edgeproxy: {error.status} {error.error_reason or '-'}\n  reason: {error.reason}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    if response.ignored is not None:
        print(f"edgeproxy: warning: '{response.ignored}' is ignored by the load balancer in this mode", file=sys.stderr)
    json.dump(response.payload, sys.stdout, indent=2)
    print()
    return 0


def sample_alb_event(args: argparse.Namespace) -> alb_events.Event:
    """A realistic ALB event, built the way the ALB facade builds its events (§7.1)."""
    if args.health_check:
        return alb_events.health_check_event(
            target_group_arn=config.DEFAULT_TARGET_GROUP_ARN, path="/", multi_value=args.multi_value_headers
        )
    path, _, querystring = args.uri.partition("?")
    given = _given_headers(args.header)
    overridden = {name.lower() for name, _ in given}
    body = args.body.encode()
    defaults = [
        ("Host", "edgeproxy-alb-123578498.us-east-1.elb.amazonaws.com"),
        ("User-Agent", "curl/8.5.0"),
        ("Accept", "*/*"),
    ]
    if body:
        defaults.append(("Content-Length", str(len(body))))
    headers = [(name, value) for name, value in defaults if name.lower() not in overridden] + given
    headers += [
        ("X-Amzn-Trace-Id", alb.trace_header(None)),
        ("X-Forwarded-For", args.client_ip),
        ("X-Forwarded-Port", "80"),
        ("X-Forwarded-Proto", "http"),
    ]
    return alb_events.build_event(
        target_group_arn=config.DEFAULT_TARGET_GROUP_ARN,
        method=args.method.upper(),
        path=path,
        querystring=querystring,
        headers=headers,
        body=body,
        multi_value=args.multi_value_headers,
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
    uri, _, querystring = args.uri.partition("?")
    distribution = Distribution(
        default_behavior=config.Behavior(path_pattern="*", origin=config.custom_origin_from_url("o", args.origin))
    )
    given = _given_headers(args.header)
    overridden = {name.lower() for name, _ in given}
    defaults = [("Host", distribution.domain_name), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*")]
    headers = [(name, value) for name, value in defaults if name.lower() not in overridden] + given
    request: dict[str, Any] = dict(
        cloudfront.request_record(
            client_ip=args.client_ip, method=args.method.upper(), uri=uri, querystring=querystring, headers=headers
        )
    )
    if args.trigger.startswith("origin"):
        request = toward_origin(
            request, distribution.default_behavior.origin, client_ip=args.client_ip, via=via_value(distribution)
        )
    response = None
    if args.trigger.endswith("response"):
        response = cloudfront.response_record(
            status=args.status,
            reason=None,
            headers=[
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", "1024"),
                ("Date", "Mon, 23 Nov 2026 12:00:00 GMT"),
                ("Last-Modified", "Fri, 20 Nov 2026 09:30:00 GMT"),
                ("ETag", '"7f8a9b0c1d2e3f405162738495a6b7c8"'),
                ("Server", "nginx"),
            ],
        )
    return cloudfront.build_event(
        trigger=args.trigger,
        request_id=cloudfront.new_request_id(),
        domain_name=distribution.domain_name,
        distribution_id=distribution.id,
        request=request,  # type: ignore[arg-type]
        response=response,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging()
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


if __name__ == "__main__":
    sys.exit(main())
