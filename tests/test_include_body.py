"""Functional: the Include Body option (reference §1.5, checklist 34-36), over real sockets.

The event's ``request.body`` is base64 of the body truncated at 40 KB (viewer-request) or 1 MB (origin-request),
KB = 1024 bytes as everywhere in edgeproxy. With ``action: read-only`` the origin gets the full original body
whatever the handler did; with ``replace`` it gets the handler's body (text or base64) with its own
Content-Length. Sizes are tested at 0, just under, at and just over each limit, with text and binary bodies.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from edgeproxy import config
from edgeproxy.config import Trigger
from tests.conftest import (
    RECORD_EVENTS,
    HandlerWriter,
    Origin,
    ProxyFactory,
    SnippetWriter,
    assert_cloudfront_error,
    recorded_events,
)

KB = 1024
LIMITS: dict[Trigger, int] = {"viewer-request": 40 * KB, "origin-request": 1024 * KB}
TRIGGERS_WITH_BODY: tuple[Trigger, ...] = ("viewer-request", "origin-request")


def payload(kind: str, size: int) -> bytes:
    if kind == "binary":
        return (bytes(range(256)) * (size // 256 + 1))[:size]
    return ("héllo wörld, " * (size // 10 + 1)).encode()[:size]  # may end inside a multi-byte character


def sizes() -> list[Any]:
    return [
        pytest.param(trigger, size, kind, id=f"{trigger}-{size}-{kind}")
        for trigger, limit in LIMITS.items()
        for size in (0, limit - 1, limit, limit + 1)
        for kind in ("text", "binary")
    ]


def event_body(recorder: str, index: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = recorded_events(recorder)[index]["Records"][0]["cf"]["request"]["body"]  # type: ignore[index]
    return body


@pytest.mark.parametrize(("trigger", "size", "kind"), sizes())
async def test_event_body_is_base64_truncated_at_the_trigger_limit(
    trigger: Trigger, size: int, kind: str, origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    data = payload(kind, size)
    recorder = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(origin=origin.url, functions={trigger: recorder}, include_body=True)
    response = await client.post("/upload", data=io.BytesIO(data), headers={"Content-Type": "application/octet-stream"})
    assert response.status == 200
    limit = LIMITS[trigger]
    assert event_body(recorder) == {
        "inputTruncated": size > limit,
        "action": "read-only",
        "encoding": "base64",
        "data": base64.b64encode(data[:limit]).decode(),
    }
    assert origin.last.body == data  # the full original body, truncated or not
    assert origin.last.header("Content-Length") == [str(size)]


@pytest.mark.parametrize(("trigger", "size", "kind"), sizes())
async def test_read_only_body_edits_are_ignored(
    trigger: Trigger, size: int, kind: str, origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter
) -> None:
    """Checklist 36: data and encoding changed, action left read-only -> the origin gets the original body."""
    data = payload(kind, size)
    edit = snippet("request['body'].update(data='edited', encoding='text', inputTruncated=False)")
    client = await proxy(origin=origin.url, functions={trigger: edit}, include_body=True)
    response = await client.post("/upload", data=io.BytesIO(data))
    assert response.status == 200
    assert origin.last.body == data
    assert origin.last.header("Content-Length") == [str(size)]


def replacement_sizes() -> list[Any]:
    return [
        pytest.param(trigger, size, encoding, id=f"{trigger}-{size}-{encoding}")
        for trigger, limit in LIMITS.items()
        for size in (0, 3, limit, limit + 1)
        for encoding in ("text", "base64")
    ]


@pytest.mark.parametrize(("trigger", "size", "encoding"), replacement_sizes())
async def test_replace_sends_the_handlers_body_with_its_length(
    trigger: Trigger,
    size: int,
    encoding: str,
    origin: Origin,
    proxy: ProxyFactory,
    snippet: SnippetWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Checklist 35; replacements are measured in bytes (after base64 decoding) against the trigger's limit."""
    new = payload("text" if encoding == "text" else "binary", size)
    if encoding == "text":
        new = new.decode("utf-8", errors="ignore").encode()
        new += b"x" * (size - len(new))  # same size, valid UTF-8
        data = new.decode()
    else:
        data = base64.b64encode(new).decode()
    replace = snippet(f"request['body'].update(action='replace', encoding={encoding!r}, data={data!r})")
    client = await proxy(origin=origin.url, functions={trigger: replace}, include_body=True)
    response = await client.post("/upload", data=b"original=body&is=longer", headers={"Content-Type": "text/plain"})
    limit = LIMITS[trigger]
    assert response.status == 200
    if size > limit:  # "the body is truncated at 40 KB" (1 MB at origin-request): Restrictions on Lambda@Edge
        assert f"{replace} at {trigger}: request.body replacement is {size} bytes; CloudFront truncates" in caplog.text
    assert origin.last.body == new[:limit]
    assert origin.last.header("Content-Length") == [str(min(size, limit))]
    assert origin.last.header("Content-Type") == ["text/plain"]


async def test_replace_with_text_form_data(origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter) -> None:
    replace = snippet("request['body'].update(action='replace', encoding='text', data='a=1')")
    client = await proxy(origin=origin.url, functions={"viewer-request": replace}, include_body=True)
    response = await client.post("/form", data={"original": "value"})
    assert response.status == 200
    assert origin.last.body == b"a=1"
    assert origin.last.header("Content-Length") == ["3"]


async def test_replace_with_invalid_base64_is_502(
    origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, caplog: pytest.LogCaptureFixture
) -> None:
    replace = snippet("request['body'].update(action='replace', encoding='base64', data='!!!')")
    client = await proxy(origin=origin.url, functions={"origin-request": replace}, include_body=True)
    response = await client.post("/upload", data=b"original")
    assert_cloudfront_error(
        response, caplog, 502, "LambdaValidationError", f"{replace} at origin-request: request.body.data is not valid"
    )


def with_body_at(tmp_path: Path, origin_url: str, functions: Mapping[Trigger, Any]) -> config.Distribution:
    return config.from_mapping(
        {
            "origins": {"app": {"url": origin_url}},
            "default_behavior": {
                "origin": "app",
                "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
                "functions": functions,
            },
        },
        source="test",
        base_dir=tmp_path,
    )


async def test_each_trigger_truncates_the_original_body_at_its_own_limit(
    origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter, tmp_path: Path
) -> None:
    """Checklist 34: a 50 KB body is cut at 40 KB for viewer-request; origin-request sees all of it."""
    recorder = write_handler("recorder", RECORD_EVENTS)
    functions = {trigger: {"handler": recorder, "include_body": True} for trigger in TRIGGERS_WITH_BODY}
    client = await proxy(with_body_at(tmp_path, origin.url, functions))
    data = payload("binary", 50 * KB)
    assert (await client.put("/upload", data=data)).status == 200
    viewer, at_origin = event_body(recorder, 0), event_body(recorder, 1)
    assert (viewer["inputTruncated"], base64.b64decode(viewer["data"])) == (True, data[: 40 * KB])
    assert (at_origin["inputTruncated"], base64.b64decode(at_origin["data"])) == (False, data)
    assert origin.last.body == data


async def test_origin_request_sees_the_body_viewer_request_replaced(
    origin: Origin, proxy: ProxyFactory, snippet: SnippetWriter, write_handler: HandlerWriter, tmp_path: Path
) -> None:
    replace = snippet("request['body'].update(action='replace', encoding='text', data='replaced')")
    recorder = write_handler("recorder", RECORD_EVENTS)
    functions: dict[Trigger, Any] = {
        "viewer-request": {"handler": replace, "include_body": True},
        "origin-request": {"handler": recorder, "include_body": True},
    }
    client = await proxy(with_body_at(tmp_path, origin.url, functions))
    assert (await client.post("/upload", data=b"original")).status == 200
    assert event_body(recorder) == {
        "inputTruncated": False,
        "action": "read-only",
        "encoding": "base64",
        "data": base64.b64encode(b"replaced").decode(),
    }
    assert origin.last.body == b"replaced"


@pytest.mark.parametrize("include_body_at", [(), ("viewer-request",), ("origin-request",)])
async def test_body_is_only_in_events_of_associations_that_include_it(
    include_body_at: tuple[Trigger, ...],
    origin: Origin,
    proxy: ProxyFactory,
    write_handler: HandlerWriter,
    tmp_path: Path,
) -> None:
    recorder = write_handler("recorder", RECORD_EVENTS)
    functions = {
        trigger: {"handler": recorder, "include_body": trigger in include_body_at} for trigger in TRIGGERS_WITH_BODY
    }
    client = await proxy(with_body_at(tmp_path, origin.url, functions))
    assert (await client.post("/upload", data=b"payload")).status == 200
    requests = [event["Records"][0]["cf"]["request"] for event in recorded_events(recorder)]  # type: ignore[index]
    assert ["body" in request for request in requests] == [t in include_body_at for t in TRIGGERS_WITH_BODY]
    assert origin.last.body == b"payload"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_no_body_field_for_methods_without_a_body(
    method: str, origin: Origin, proxy: ProxyFactory, write_handler: HandlerWriter
) -> None:
    """§1.3: ``body`` is present only when the association includes it and the method can carry a body."""
    recorder = write_handler("recorder", RECORD_EVENTS)
    client = await proxy(origin=origin.url, functions=dict.fromkeys(TRIGGERS_WITH_BODY, recorder), include_body=True)
    assert (await client.request(method, "/x")).status == 200
    assert [("body" in event["Records"][0]["cf"]["request"]) for event in recorded_events(recorder)] == [False] * 2  # type: ignore[index]
