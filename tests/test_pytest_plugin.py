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
