"""pytest_plugin.py: the edgeproxy fixture as a user's test suite sees it (pytester, in a separate process)."""

from __future__ import annotations

import pytest

USER_TESTS = """
import pytest
from aiohttp import web

from edgeproxy import EdgeProxyFactory


def origin() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="hello " + request.path)

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


def frame_options(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-frame-options"] = [{"value": "DENY"}]
    return response


@pytest.mark.asyncio
async def test_adds_frame_options(edgeproxy: EdgeProxyFactory) -> None:
    proxy = await edgeproxy(origin=origin(), viewer_response=frame_options)
    async with proxy.client.get("/page") as response:
        assert response.status == 200
        assert await response.text() == "hello /page"
        assert response.headers["X-Frame-Options"] == "DENY"
    [invocation] = proxy.invocations_for(response)
    assert invocation.trigger == "viewer-response"
    assert invocation.error is None


def target(event, context):
    return {"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": event["path"]}


@pytest.mark.asyncio
async def test_alb_mode(edgeproxy: EdgeProxyFactory) -> None:
    proxy = await edgeproxy(alb_target=target, multi_value_headers=True)
    async with proxy.client.get("/p%20q") as response:
        assert await response.text() == "/p%20q"
        assert sorted(response.headers.getall("Set-Cookie")) == ["a=1", "b=2"]
    assert [invocation.trigger for invocation in proxy.invocations] == ["alb"]
"""

BROKEN_TESTS = """
import pytest
from aiohttp import web

from edgeproxy import EdgeProxyFactory


async def hi(request: web.Request) -> web.Response:
    return web.Response(text="hi")


def origin() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hi)
    return app


def adds_via(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["via"] = [{"value": "1.1 mine"}]
    return response


def lookup(table):
    return table["missing-key"]


def crashes(event, context):
    return lookup({})


@pytest.mark.asyncio
async def test_rule_broken(edgeproxy: EdgeProxyFactory) -> None:
    proxy = await edgeproxy(origin=origin(), viewer_response=adds_via)
    async with proxy.client.get("/") as response:
        assert response.status == 200


@pytest.mark.asyncio
async def test_handler_crash(edgeproxy: EdgeProxyFactory) -> None:
    proxy = await edgeproxy(origin=origin(), origin_request=crashes)
    async with proxy.client.get("/") as response:
        assert response.status == 200
"""


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_user_test_using_the_fixture_passes(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess(f"--asyncio-mode={mode}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, warnings=0)


def test_user_test_that_breaks_a_rule_fails_naming_trigger_and_rule(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=BROKEN_TESTS)
    result = pytester.runpytest_subprocess("--asyncio-mode=strict", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, warnings=0)
    output = result.stdout.str()
    assert "edgeproxy handler errors" in output
    assert "viewer-response test_broken.adds_via: 502 LambdaValidationError" in output
    assert "response.headers: added read-only header 'via'" in output
    # the crash shows the handler's own frames, not edgeproxy's
    assert "origin-request test_broken.crashes: 503 LambdaExecutionError" in output
    assert 'return table["missing-key"]' in output
    assert "KeyError: 'missing-key'" in output
    assert "edgeproxy/runtime.py" not in output.split("edgeproxy handler errors")[-1]


RECORDING_TESTS = """
import os
import pytest
from aiohttp import web

from edgeproxy import EdgeProxyFactory

HITS = []


def origin() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        HITS.append(request.path)
        return web.Response(text="live " + os.environ.get("ORIGIN_VERSION", "1") + " " + request.path)

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


@pytest.mark.asyncio
async def test_recorded(edgeproxy: EdgeProxyFactory) -> None:
    proxy = await edgeproxy(origin=origin(), recording=True, record_mode=os.environ.get("MODE", "once"))
    async with proxy.client.get(os.environ.get("PAGE", "/page")) as response:
        print("ANSWER", response.status, await response.text(), "HITS", len(HITS), "MODE", proxy.recording.mode)
"""


def recording_run(pytester: pytest.Pytester, *options: str, **environment: str) -> pytest.RunResult:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        return pytester.runpytest_subprocess("--asyncio-mode=strict", "-p", "no:cacheprovider", "-s", *options)


def answer(result: pytest.RunResult) -> str:
    return next(line for line in result.outlines if "ANSWER " in line).split("ANSWER ", 1)[1]


def test_recording_true_records_once_next_to_the_test_then_replays(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rec=RECORDING_TESTS)
    first = recording_run(pytester)
    first.assert_outcomes(passed=1)
    assert answer(first) == "200 live 1 /page HITS 1 MODE all"
    har = pytester.path / "recordings" / "test_rec" / "test_recorded.har"
    assert har.is_file()
    second = recording_run(pytester, ORIGIN_VERSION="2")
    second.assert_outcomes(passed=1)
    assert answer(second) == "200 live 1 /page HITS 0 MODE none"  # from the recording: the origin was not asked


def test_the_command_line_record_mode_overrides_every_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rec=RECORDING_TESTS)
    recording_run(pytester).assert_outcomes(passed=1)
    rerecorded = recording_run(pytester, "--edgeproxy-record-mode=all", ORIGIN_VERSION="2", MODE="none")
    rerecorded.assert_outcomes(passed=1)
    assert answer(rerecorded) == "200 live 2 /page HITS 1 MODE all"
    episodes = recording_run(pytester, "--edgeproxy-record-mode=new_episodes", PAGE="/other")
    episodes.assert_outcomes(passed=1)
    assert answer(episodes) == "200 live 1 /other HITS 1 MODE new_episodes"


def test_in_mode_none_a_request_not_recorded_fails_the_test_naming_the_nearest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rec=RECORDING_TESTS)
    recording_run(pytester).assert_outcomes(passed=1)
    missed = recording_run(pytester, "--edgeproxy-record-mode=none", PAGE="/page?x=1")
    missed.assert_outcomes(failed=1)
    output = missed.stdout.str()
    assert answer(missed).startswith("502 ")
    assert "1 origin request(s) not in the recording:" in output
    assert "/page?x=1 matches no recorded origin request (on method, host, path, query); nearest recorded:" in output
    assert "/page: query '' != 'x=1'" in output
