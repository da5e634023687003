"""exchange.py: one Exchange per viewer request, filled in as it goes, and the observers told about it."""

from __future__ import annotations

import logging

import orjson
import pytest
from pytest_aiohttp import AiohttpClient

from edgeproxy import config
from edgeproxy.errors import LambdaValidationError
from edgeproxy.exchange import AS_GIVEN, Exchange, Invocation, Observer, Observers, XCache
from edgeproxy.server import Options, create_app
from edgeproxy.serving import OBSERVERS
from edgeproxy.triggers import TRIGGERS
from tests.conftest import BINARY, PASS_THROUGH, HandlerWriter, Origin


class Notes(Observer):
    """Writes down what it is told, in order."""

    def __init__(self, *, bodies: bool = False) -> None:
        self.wants_bodies = bodies
        self.told: list[tuple[str, object]] = []
        self.done: list[Exchange] = []

    def trigger_done(self, exchange: Exchange, invocation: Invocation) -> None:
        self.told.append(("trigger", invocation.trigger))

    def origin_done(self, exchange: Exchange) -> None:
        assert exchange.origin_response is not None
        self.told.append(("origin", exchange.origin_response.status))

    def exchange_done(self, exchange: Exchange) -> None:
        self.told.append(("done", exchange.status))
        self.done.append(exchange)


async def test_observers_are_told_each_step_and_see_the_whole_exchange(
    aiohttp_client: AiohttpClient, origin: Origin, write_handler: HandlerWriter
) -> None:
    ref = write_handler("pass", PASS_THROUGH)
    notes = Notes()
    distribution = config.from_flags(origin.url, dict.fromkeys(TRIGGERS, ref))
    client = await aiohttp_client(create_app(distribution, Options(observers=(notes,))))
    response = await client.get("/cookies?a=1")
    assert response.status == 200
    assert notes.told == [
        ("trigger", "viewer-request"),
        ("trigger", "origin-request"),
        ("origin", 200),
        ("trigger", "origin-response"),
        ("trigger", "viewer-response"),
        ("done", 200),
    ]
    [exchange] = notes.done
    assert exchange.id == response.headers["X-Amz-Cf-Id"]
    assert (exchange.mode, exchange.behavior, exchange.x_cache) == ("cloudfront", "*", XCache.MISS)
    assert (exchange.viewer.method, exchange.viewer.uri, exchange.viewer.querystring) == ("GET", "/cookies", "a=1")
    assert [invocation.trigger for invocation in exchange.invocations] == list(TRIGGERS)
    assert all(invocation.event is not None and invocation.error is None for invocation in exchange.invocations)
    assert exchange.skipped == {}
    assert exchange.origin_request is not None
    assert exchange.origin_request.headers["User-Agent"] == "Amazon CloudFront"
    assert exchange.origin_response is not None
    assert exchange.origin_response.headers.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
    assert exchange.finished is not None
    assert exchange.started <= exchange.finished
    assert exchange.request_body is None  # no observer asked for bodies


async def test_bodies_are_captured_for_an_observer_that_wants_them(
    aiohttp_client: AiohttpClient, origin: Origin
) -> None:
    notes = Notes(bodies=True)
    distribution = config.from_flags(origin.url, {})
    client = await aiohttp_client(create_app(distribution, Options(observers=(notes,))))
    assert await (await client.post("/bytes", data=b"\x00upload")).read() == BINARY
    [exchange] = notes.done
    captured = [bytes(body or b"-") for body in (exchange.request_body, exchange.origin_body, exchange.viewer_body)]
    assert captured == [b"\x00upload", BINARY, BINARY]


async def test_skipped_stages_and_errors_are_data_on_the_exchange(
    aiohttp_client: AiohttpClient, origin: Origin, write_handler: HandlerWriter
) -> None:
    generated = write_handler(
        "gen", "def handler(event, context):\n    return {'status': '200', 'body': 'made at the edge'}\n"
    )
    broken = write_handler("broken", "def handler(event, context):\n    return 'oops'\n")
    notes = Notes()
    distribution = config.from_flags(origin.url, {"viewer-request": generated})
    client = await aiohttp_client(create_app(distribution, Options(observers=(notes,))))
    assert await (await client.get("/x")).text() == "made at the edge"
    [exchange] = notes.done
    assert exchange.x_cache == XCache.LAMBDA_GENERATED
    assert exchange.skipped == dict.fromkeys(
        ("origin-request", "origin", "origin-response", "viewer-response"), "viewer-request generated a response"
    )
    assert exchange.origin_request is None

    distribution = config.from_flags(origin.url, {"origin-request": broken})
    client = await aiohttp_client(create_app(distribution, Options(observers=(notes,))))
    assert (await client.get("/status/404")).status == 502
    exchange = notes.done[-1]
    assert isinstance(exchange.error, LambdaValidationError)
    assert (exchange.status, exchange.x_cache, exchange.outcome) == (502, XCache.LAMBDA_VALIDATION_ERROR, None)
    [invocation] = exchange.invocations
    assert invocation.error is exchange.error
    assert invocation.result == "oops"
    assert exchange.skipped == {"viewer-request": "no function is associated"}


async def test_observers_attach_and_detach_while_running_and_cannot_break_a_request(
    aiohttp_client: AiohttpClient, origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Observer):
        def exchange_done(self, exchange: Exchange) -> None:
            raise RuntimeError("observer bug")

    app = create_app(config.from_flags(origin.url, {}))
    client = await aiohttp_client(app)
    observers: Observers = app[OBSERVERS]
    assert not observers
    notes = Notes()
    broken = Broken()
    observers.attach(broken)
    observers.attach(notes)
    with caplog.at_level(logging.ERROR, logger="edgeproxy"):
        assert (await client.get("/a")).status == 200
    assert "observer bug" in caplog.text
    assert len(notes.done) == 1  # told despite the broken observer before it
    observers.detach(notes)
    observers.detach(broken)
    assert (await client.get("/b")).status == 200
    assert len(notes.done) == 1
    assert not observers


def test_each_method_is_called_only_on_the_observers_that_override_it() -> None:
    class OnlyDone(Observer):
        def __init__(self) -> None:
            self.done = 0

        def exchange_done(self, exchange: Exchange) -> None:
            self.done += 1

    only_done, notes = OnlyDone(), Notes()
    observers = Observers(only_done, notes)
    assert observers._trigger_done == (notes.trigger_done,)  # OnlyDone's inherited no-ops are never called
    assert observers._origin_done == (notes.origin_done,)
    assert observers._exchange_done == (only_done.exchange_done, notes.exchange_done)
    observers.detach(notes)
    assert not observers._trigger_done
    assert list(observers._exchange_done) == [only_done.exchange_done]


RESPONSE_EVENT = {"Records": [{"cf": {"request": {"uri": "/a"}, "response": {"status": "200", "headers": {}}}}]}


def test_an_event_kept_as_the_json_sent_is_parsed_once_when_read() -> None:
    event = {"Records": [{"cf": {"request": {"uri": "/a", "headers": {}}}}]}
    invocation = Invocation("id", "viewer-request", "fn.py:handler", orjson.dumps(event), None, 0.1, None)
    assert invocation.event == event
    assert invocation.event is invocation.event  # parsed once, then the same object
    unchanged = Invocation("id", "origin-response", "fn.py:handler", orjson.dumps(RESPONSE_EVENT), AS_GIVEN, 0.1, None)
    assert unchanged.result == RESPONSE_EVENT["Records"][0]["cf"]["response"]  # an unchanged result: the event's own


def test_x_cache_header_words() -> None:
    assert XCache.REFRESH_HIT.header == "RefreshHit from cloudfront"
    assert [word.value for word in XCache] == [
        "Hit",
        "Miss",
        "RefreshHit",
        "Error",
        "Redirect",
        "LambdaGeneratedResponse",
        "LambdaValidationError",
        "LambdaExecutionError",
        "LambdaLimitExceeded",
    ]
