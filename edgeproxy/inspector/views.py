"""What the inspector page shows, as JSON: an exchange's summary row, and the whole of one exchange.

The whole exchange is its HAR entry (:func:`edgeproxy.record.har.entry`, nothing redacted: the page shows the
developer's own traffic as it went) with what the page adds to it: the waterfall of the stages on one time axis, and
for each invocation the part of the event the handler could change, what it returned, what it changed (header
entries added, removed or changed; uri, querystring, status, body...), and the broken rule at its field.
"""

from __future__ import annotations

import base64
import re
import shlex
from typing import Any

from edgeproxy.errors import AlbError, LambdaExecutionError, LambdaValidationError, ViewerError
from edgeproxy.exchange import Exchange, Invocation
from edgeproxy.record.har import entry
from edgeproxy.record.redact import NOTHING
from edgeproxy.triggers import FACTS

# CloudFront's stages in order, as the pipeline names them; the page draws the ones an exchange has.
STAGES = (
    "viewer-request",
    "cache-lookup",
    "origin-request",
    "origin",
    "origin-response",
    "cache-store",
    "custom-error-response",
    "viewer-response",
)
# The field a broken rule names at the head of its reason: request.uri, response.headers['x-a'][0].value, ...
RULE_FIELD = re.compile(r"((?:request|response)(?:\.[A-Za-z_]+|\[(?:'[^']*'|\"[^\"]*\"|\d+)\])+)")
_NAMED_HEADER = re.compile(r"^: [^']*\bheader '([^']+)'")
_NOT_CURL = frozenset({"host", "content-length", "connection", "transfer-encoding"})


def summary(exchange: Exchange) -> dict[str, Any]:
    """The exchange's row in the list."""
    viewer = exchange.viewer
    finished = exchange.finished or exchange.started
    error = exchange.error
    return {
        "id": exchange.id,
        "mode": exchange.mode,
        "started": exchange.started,
        "method": viewer.method,
        "path": viewer.uri + (f"?{viewer.querystring}" if viewer.querystring else ""),
        "status": exchange.sent.status if exchange.sent is not None else exchange.status,
        "x_cache": exchange.x_cache.value if exchange.x_cache is not None else None,
        "ms": round((finished - exchange.started) * 1000, 3),
        "behavior": exchange.behavior,
        "triggers": [invocation.trigger for invocation in exchange.invocations],
        "error": None if error is None else _error_name(error),
    }


def detail(exchange: Exchange, *, cut: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Everything the page shows of one exchange."""
    return {
        "summary": summary(exchange),
        "har": entry(exchange, NOTHING),
        "waterfall": waterfall(exchange),
        "invocations": [invocation_view(invocation, exchange.started) for invocation in exchange.invocations],
        "curl": curl(exchange),
        "bodies_cut": sorted(cut),
    }


def waterfall(exchange: Exchange) -> list[dict[str, Any]]:
    """The stages on one axis, in milliseconds from the request's arrival: each one that ran with its start and
    duration, each one skipped with why (an error that ended the request skips the stages after it). In ALB mode:
    the target's invocation. Then the response to the viewer."""
    start = exchange.started
    rows: list[dict[str, Any]] = []
    if exchange.mode == "alb":
        for target in exchange.invocations:
            rows.append(_span("target", target.started - start, target.duration))
    else:
        invoked: dict[str, Invocation] = {invocation.trigger: invocation for invocation in exchange.invocations}
        ended: str | None = None  # why the stages after a failed one did not run
        for stage in STAGES:
            if stage in exchange.skipped:
                rows.append({"stage": stage, "skipped": exchange.skipped[stage]})
            elif (invocation := invoked.get(stage)) is not None:
                rows.append(_span(stage, invocation.started - start, invocation.duration))
                if invocation.error is not None:
                    name = _error_name(invocation.error)
                    ended = f"not reached: the request ended at {stage} ({invocation.error.status} {name})"
            elif stage == "origin" and exchange.origin_started is not None:
                rows.append(_span(stage, exchange.origin_started - start, exchange.origin_duration or 0.0))
            elif stage in exchange.stages:
                began, finished = exchange.stages[stage]
                rows.append(_span(stage, began - start, finished - began))
            elif ended is not None:
                rows.append({"stage": stage, "skipped": ended})
    done = exchange.finished or exchange.started
    if exchange.responded is not None:
        rows.append(_span("response", exchange.responded - start, done - exchange.responded))
    return rows


def _span(stage: str, offset: float, duration: float) -> dict[str, Any]:
    return {"stage": stage, "start_ms": round(max(0.0, offset) * 1000, 3), "ms": round(max(0.0, duration) * 1000, 3)}


def invocation_view(invocation: Invocation, exchange_started: float) -> dict[str, Any]:
    """One invocation as the page shows it: ``before`` (what the handler could change: the event's request, or its
    response at response triggers; the whole event in ALB mode), ``after`` (what it returned), what changed, its
    error with the rule's field, and its timing."""
    event = invocation.event
    trigger = invocation.trigger
    if trigger == "alb":
        before, part = event, "event"
    else:
        cf = event["Records"][0]["cf"] if isinstance(event, dict) else {}
        part = "request" if FACTS[trigger].is_request else "response"
        before = cf.get(part)
    after = before if not invocation.changed else invocation.result
    generated = trigger != "alb" and part == "request" and isinstance(after, dict) and "status" in after
    view: dict[str, Any] = {
        "trigger": trigger,
        "handler": invocation.handler,
        "start_ms": round(max(0.0, invocation.started - exchange_started) * 1000, 3),
        "ms": round(invocation.duration * 1000, 3),
        "event": event,
        "part": part,
        "before": before,
        "after": after,
        "changed": invocation.changed,
        "generated": generated,  # a response returned at a request trigger: nothing to compare it with
        "changes": [] if trigger == "alb" or generated or not invocation.changed else changes(before, after),
        "error": None,
    }
    if invocation.error is not None:
        view["error"] = error_view(invocation.error)
    return view


def error_view(error: ViewerError | AlbError) -> dict[str, Any]:
    """The error the viewer got: status, AWS's name, CloudFront's message, edgeproxy's reason; for a broken rule the
    field it names (relative to the request or response, as ``before``/``after`` are), for a crash its traceback."""
    view: dict[str, Any] = {"status": error.status, "name": _error_name(error), "reason": error.reason}
    if isinstance(error, ViewerError):
        view["message"] = error.message
    if isinstance(error, LambdaValidationError):
        view["field"] = rule_field(error.reason)
        view["field_path"] = _named_field(error.reason)
    if isinstance(error, LambdaExecutionError | AlbError) and error.handler_traceback:
        view["traceback"] = error.handler_traceback
    return view


def rule_field(reason: str) -> str | None:
    """The field a validation reason names, relative to the request or response: ``"headers['x-a'][0].value"``,
    ``"status"``, ``""`` for the object itself; ``None`` when the rule is about the result as a whole."""
    field = _named_field(reason)
    if field is None:
        return None
    return field.partition(".")[2] if "." in field else re.sub(r"^(request|response)", "", field)


def _named_field(reason: str) -> str | None:
    """The field as the reason names it (``response.headers['x-a'][0].value``), after ``<handler> at <trigger>:``."""
    _, _, detail = reason.partition(": ")
    match = RULE_FIELD.match(detail or reason)
    if match is None:
        return None
    field = match.group(1)
    # "response.headers: changed read-only header 'host'": the rule is about that one header's entry
    if field.endswith(".headers") and (named := _NAMED_HEADER.search(detail[match.end() :])) is not None:
        return f"{field}['{named.group(1).lower()}']"
    return field


def changes(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """What differs between what a handler got and what it returned. Header maps are compared by header name (the
    values in order); anything else field by field. Each change: ``path`` (as rules name fields), ``kind``
    (``added``, ``removed``, ``changed``) and the values."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key == "headers" and isinstance(before.get(key), dict) and isinstance(after.get(key), dict):
                found += _header_changes(before[key], after[key], where)
            elif key not in after:
                found.append({"path": where, "kind": "removed", "before": before[key]})
            elif key not in before:
                found.append({"path": where, "kind": "added", "after": after[key]})
            else:
                found += changes(before[key], after[key], where)
        return found
    if before == after and type(before) is type(after):
        return []
    return [{"path": path, "kind": "changed", "before": before, "after": after}]


def _header_changes(before: dict[str, Any], after: dict[str, Any], path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name in sorted(set(before) | set(after)):
        where = f"{path}[{name!r}]"
        old, new = _values(before.get(name)), _values(after.get(name))
        if name not in after:
            found.append({"path": where, "kind": "removed", "header": name, "before": old})
        elif name not in before:
            found.append({"path": where, "kind": "added", "header": name, "after": new})
        elif old != new:
            found.append({"path": where, "kind": "changed", "header": name, "before": old, "after": new})
    return found


def _values(entries: Any) -> list[Any]:
    if not isinstance(entries, list):
        return [entries]
    return [item.get("value") if isinstance(item, dict) else item for item in entries]


def curl(exchange: Exchange) -> str:
    """The viewer's request as a curl command line that sends it again as it was, to the proxy it was sent to (its
    own ``Host`` kept): the method (``--head`` for HEAD, which has no body to wait for), the path as it is
    (``--path-as-is``, ``--globoff``), every header in order with its repeats (an empty one as ``Name;``), none of
    curl's own (``User-Agent``, ``Accept``, ``Expect``, ``Content-Type`` switched off where the viewer sent none),
    and the body byte for byte (``--data-raw``, where ``@`` means nothing; a body that is not text through base64)."""
    viewer = exchange.viewer
    host = viewer.headers.get("Host")
    local = viewer.local_address
    address = f"{local[0]}:{local[1]}" if local is not None else (host or "localhost")
    url = f"http://{address}{viewer.uri}" + (f"?{viewer.querystring}" if viewer.querystring else "")
    body = bytes(exchange.request_body or b"")
    words = ["curl", "-i", "--path-as-is", "--globoff"]
    if viewer.method == "HEAD":
        words.append("--head")
    elif viewer.method != "GET" or body:
        words += ["-X", viewer.method]
    sent = {name.lower() for name in viewer.headers}
    for name, value in viewer.headers.items():
        lower = name.lower()
        if lower not in _NOT_CURL or (lower == "host" and value != address):
            words += ["-H", f"{name}: {value}" if value else f"{name};"]
    curls_own = ["user-agent", "accept"] + (["content-type", "expect"] if body else [])
    words += [word for own in curls_own if own not in sent for word in ("-H", f"{_CURL_NAMES[own]}:")]
    prefix = ""
    if body:
        try:
            words += ["--data-raw", body.decode("utf-8")]
        except UnicodeDecodeError:  # bytes a shell word cannot hold: decoded on the way in
            prefix = f"printf %s {base64.b64encode(body).decode()} | base64 -d | "
            words += ["--data-binary", "@-"]
    words.append(url)
    return prefix + " ".join(shlex.quote(word) for word in words)


_CURL_NAMES = {"user-agent": "User-Agent", "accept": "Accept", "content-type": "Content-Type", "expect": "Expect"}


def _error_name(error: ViewerError | AlbError) -> str:
    if isinstance(error, ViewerError):
        return error.x_cache
    return error.error_reason or f"{error.status}"
