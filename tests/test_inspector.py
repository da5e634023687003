"""The inspector page in a real headless Chromium (Debian's, driven by Playwright): the list updates live, one
exchange shows its triggers and what they changed, a broken rule is shown at its field, and the HAR download is HAR
1.2. Each test leaves screenshots of what it saw in its tmp folder."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import edgeproxy_process, stop_cleanly
from tests.inspector.harness import Inspected, InspectedFactory

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FOUND = os.path.exists(CHROMIUM)
# As root, in a closed network: no sandbox, and none of the background connections Chromium would try.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCHEMA = json.loads((Path(__file__).parent.parent / "fixtures" / "har" / "har-1.2.schema.json").read_text())
PASS = (
    "def handler(event, context):\n    cf = event['Records'][0]['cf']\n    return cf.get('response', cf['request'])\n"
)
ADD_HEADER = (
    "def handler(event, context):\n"
    "    response = event['Records'][0]['cf']['response']\n"
    "    if event['Records'][0]['cf']['request']['uri'] == '/broken':\n"
    "        response['headers']['x-bad'] = [{'key': 'X-Bad', 'value': 'a\\r\\nb'}]\n"
    "    else:\n"
    "        response['headers']['x-added'] = [{'key': 'X-Added', 'value': 'yes'}]\n"
    "    return response\n"
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_FOUND:
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def _proxy(inspected: InspectedFactory, tmp_path: Path) -> Inspected:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>hello</h1>")
    (tmp_path / "pass.py").write_text(PASS)
    (tmp_path / "add.py").write_text(ADD_HEADER)
    passing, adding = f"{tmp_path / 'pass.py'}:handler", f"{tmp_path / 'add.py'}:handler"
    return await inspected(
        origin=str(tmp_path / "site"),
        viewer_request=passing,
        origin_request=passing,
        origin_response=adding,
        viewer_response=passing,
    )


async def _page(browser: Browser, setup: Inspected) -> Page:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800},
        accept_downloads=True,
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = await context.new_page()
    await page.goto(str(setup.admin))
    await expect(page.locator("#live")).to_have_text("live")
    return page


def _json_of(path: Path) -> Any:
    return json.loads(path.read_text())


async def _get(setup: Inspected, path: str) -> int:
    async with setup.proxy.client.get(path) as response:
        await response.read()
        return response.status


async def test_a_request_appears_in_the_list_live(
    browser: Browser, inspected: InspectedFactory, tmp_path: Path
) -> None:
    setup = await _proxy(inspected, tmp_path)
    page = await _page(browser, setup)
    assert await _get(setup, "/index.html?from=test") == 200
    row = page.locator("#list tbody tr", has_text="/index.html?from=test")
    await expect(row).to_have_count(1)  # no reload: it came over the stream
    await expect(row.locator("td.status")).to_have_text("200")
    await expect(row.locator("td.x-cache")).to_have_text("Miss")
    await page.screenshot(path=tmp_path / "list.png")
    await page.fill("#filter-path", "nothing-like-it")
    await expect(page.locator("#list tbody tr")).to_have_count(0)


async def test_an_exchange_shows_its_four_triggers_and_the_header_a_handler_added(
    browser: Browser, inspected: InspectedFactory, tmp_path: Path
) -> None:
    setup = await _proxy(inspected, tmp_path)
    page = await _page(browser, setup)
    await _get(setup, "/index.html")
    await page.locator("#list tbody tr", has_text="/index.html").click()
    triggers = page.locator(".trigger")
    await expect(triggers).to_have_count(4)
    for trigger in ("viewer-request", "origin-request", "origin-response", "viewer-response"):
        await expect(page.locator(f".trigger[data-trigger={trigger}] .head .ms")).to_contain_text("took")
        await expect(page.locator(f".waterfall .track[data-stage={trigger}] .bar")).to_have_count(1)
    added = page.locator(".trigger[data-trigger=origin-response] .json div.added[data-path=\"headers['x-added']\"]")
    await expect(added.first).to_be_visible()
    await expect(page.locator(".trigger[data-trigger=origin-response] .changes li.added")).to_have_text(
        '+ header x-added: ["yes"]'
    )
    await expect(page.locator(".trigger[data-trigger=viewer-request] .note")).to_have_text(
        "returned the request unchanged"
    )
    origin = page.locator(".origin-exchange .message")
    await expect(origin.first.locator(".line")).to_contain_text("GET http")  # the origin request as sent
    await expect(origin.first.locator(".line")).to_contain_text("/index.html")
    await expect(origin.last.locator(".line")).to_contain_text("200 (headers after")  # as received
    await expect(origin.last.locator(".body-preview")).to_have_text("<h1>hello</h1>")
    viewer_response = page.locator(".viewer-response .message")
    await expect(viewer_response.locator(".line")).to_have_text("200 OK")
    await expect(viewer_response.locator("table.headers")).to_contain_text("X-Added")  # what the viewer got
    await page.screenshot(path=tmp_path / "exchange.png")
    await page.locator(".trigger[data-trigger=origin-response]").screenshot(path=tmp_path / "origin-response.png")
    await page.click("button.curl")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("curl -i ")
    assert copied.endswith(f"{setup.proxy.url.port}/index.html")


async def test_a_502_shows_the_broken_rule_at_its_field(
    browser: Browser, inspected: InspectedFactory, tmp_path: Path
) -> None:
    setup = await _proxy(inspected, tmp_path)
    page = await _page(browser, setup)
    assert await _get(setup, "/broken") == 502
    row = page.locator("#list tbody tr.failed", has_text="/broken")
    await expect(row.locator("td.status")).to_have_text("502")
    await row.click()
    origin_response = page.locator(".trigger[data-trigger=origin-response]")
    await expect(origin_response.locator(".error-box strong")).to_have_text("502 LambdaValidationError")
    await expect(origin_response.locator(".error-box .field")).to_have_text(
        "the rule broken at response.headers['x-bad'][0].value"
    )
    broken = origin_response.locator(".json div.rule")
    await expect(broken.first).to_contain_text('"X-Bad"')
    await expect(origin_response.locator(".json .rule-note")).to_contain_text("contains '\\r' (a control character)")
    not_reached = page.locator(".waterfall .skipped[data-stage=viewer-response]")
    await expect(not_reached).to_have_text(
        "skipped: not reached: the request ended at origin-response (502 LambdaValidationError)"
    )
    await page.screenshot(path=tmp_path / "broken.png")
    await origin_response.screenshot(path=tmp_path / "broken-trigger.png")


async def test_the_har_download_is_har_1_2(browser: Browser, inspected: InspectedFactory, tmp_path: Path) -> None:
    setup = await _proxy(inspected, tmp_path)
    page = await _page(browser, setup)
    await _get(setup, "/index.html")
    await page.locator("#list tbody tr", has_text="/index.html").click()
    async with page.expect_download() as downloading:
        await page.click(".detail a.har")
    download = await downloading.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    document = _json_of(saved)
    jsonschema.validate(document, SCHEMA)
    [entry] = document["log"]["entries"]
    assert entry["response"]["content"]["text"] == "<h1>hello</h1>"
    assert [item["trigger"] for item in entry["_invocations"]] == [
        "viewer-request",
        "origin-request",
        "origin-response",
        "viewer-response",
    ]
    async with page.expect_download() as downloading:
        await page.click("#download-ring")
    ring = _json_of(await (await downloading.value).path())
    jsonschema.validate(ring, SCHEMA)
    assert len(ring["log"]["entries"]) == 1


async def test_a_cache_hit_shows_origin_request_and_origin_response_skipped(
    browser: Browser, inspected: InspectedFactory, tmp_path: Path
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "cached.html").write_text("<p>cached</p>")
    (tmp_path / "pass.py").write_text(PASS)
    passing = f"{tmp_path / 'pass.py'}:handler"
    setup = await inspected(
        origin=str(tmp_path / "site"),
        cache_policy="CachingOptimized",
        **{trigger: passing for trigger in ("viewer_request", "origin_request", "origin_response", "viewer_response")},
    )
    page = await _page(browser, setup)
    assert await _get(setup, "/cached.html") == 200  # a miss, stored
    assert await _get(setup, "/cached.html") == 200  # the hit
    rows = page.locator("#list tbody tr", has_text="/cached.html")
    await expect(rows).to_have_count(2)
    hit = rows.first  # newest first
    await expect(hit.locator("td.x-cache")).to_have_text("Hit")
    await expect(rows.last.locator("td.x-cache")).to_have_text("Miss")
    await hit.click()
    for stage in ("origin-request", "origin", "origin-response"):
        await expect(page.locator(f".waterfall .skipped[data-stage={stage}]")).to_have_text("skipped: cache hit")
    for trigger in ("viewer-request", "viewer-response"):
        await expect(page.locator(f".waterfall .track[data-stage={trigger}] .bar")).to_have_count(1)
    await expect(page.locator(".trigger")).to_have_count(2)
    await expect(page.locator(".waterfall .track[data-stage=cache-lookup] .bar")).to_have_count(1)
    await page.screenshot(path=tmp_path / "hit.png")


ALB_TARGET = (
    "def handler(event, context):\n"
    "    return {'statusCode': 201, 'statusDescription': '201 Created', 'isBase64Encoded': False,\n"
    "            'headers': {'content-type': 'text/plain', 'x-target': 'yes'}, 'body': 'made ' + event['path']}\n"
)


async def test_alb_mode_shows_the_event_and_the_target_s_result(
    browser: Browser, inspected: InspectedFactory, tmp_path: Path
) -> None:
    (tmp_path / "target.py").write_text(ALB_TARGET)
    setup = await inspected(alb_target=f"{tmp_path / 'target.py'}:handler")
    page = await _page(browser, setup)
    assert await _get(setup, "/things?x=1") == 201
    row = page.locator("#list tbody tr", has_text="/things")
    await expect(row.locator("td.status")).to_have_text("201")
    await expect(row.locator("td.x-cache")).to_have_text("(ALB)")
    await row.click()
    target = page.locator(".trigger[data-trigger=alb]")
    await expect(target.locator(".head .name")).to_have_text("ALB target")
    await expect(target.locator(".json").first).to_contain_text('"httpMethod": "GET"')
    await expect(target.locator(".json").last).to_contain_text('"statusCode": 201')
    await expect(page.locator(".waterfall .track[data-stage=target] .bar")).to_have_count(1)
    await page.screenshot(path=tmp_path / "alb.png")


@pytest.mark.parametrize("mode", ["serve", "alb"])
async def test_serve_and_alb_print_the_inspector_s_url_and_keep_the_ring_size_given(mode: str, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a").write_text("a")
    (tmp_path / "pass.py").write_text(PASS)
    (tmp_path / "target.py").write_text(ALB_TARGET)
    if mode == "serve":
        command = ["serve", "--origin", "site", "--viewer-request", "pass.py:handler"]
    else:
        command = ["alb", "--target", "target.py:handler"]
    with edgeproxy_process([*command, "--admin-port", "0", "--inspector-ring", "3"], tmp_path) as process:
        assert process.stdout is not None
        proxy = process.stdout.readline().strip().rsplit(" ", 1)[1]
        inspector_line = process.stdout.readline().strip()
        assert inspector_line.startswith("edgeproxy inspector on http://127.0.0.1:"), inspector_line
        inspector = inspector_line.rsplit(" ", 1)[1]
        async with aiohttp.ClientSession() as client:
            async with client.get(inspector + "/") as page:
                assert page.status == 200
                assert page.content_type == "text/html"
                assert "inspector.js" in await page.text()
            async with client.get(inspector + "/api/stream") as stream:  # a page watching: the ring records
                assert (await stream.content.readline()).decode().startswith("event: list")
                for number in range(5):
                    async with client.get(f"{proxy}/a?n={number}") as response:
                        await response.read()
                async with client.get(inspector + "/api/exchanges") as listing:
                    kept = await listing.json()
            assert [row["path"] for row in kept["exchanges"]] == ["/a?n=4", "/a?n=3", "/a?n=2"]
        stop_cleanly(process, timeout=15)


def test_serve_without_an_admin_port_says_how_to_get_the_inspector(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    with edgeproxy_process(["serve", "--origin", "site"], tmp_path) as process:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("edgeproxy listening on http://127.0.0.1:")
        assert process.stdout.readline().strip() == (
            "edgeproxy inspector: off (--admin-port PORT serves it, and the admin API)"
        )
        stop_cleanly(process, timeout=15)


CRASH = (
    "def handler(event, context):\n    return helper(event)\n\n\n"
    "def helper(event):\n    raise KeyError('no-such-key')\n"
)


async def test_a_crash_shows_the_handler_s_traceback(
    browser: Browser, inspected: InspectedFactory, tmp_path: Path
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "crash.py").write_text(CRASH)
    setup = await inspected(origin=str(tmp_path / "site"), viewer_request=f"{tmp_path / 'crash.py'}:handler")
    page = await _page(browser, setup)
    assert await _get(setup, "/x") == 503
    await page.locator("#list tbody tr.failed", has_text="/x").click()
    viewer_request = page.locator(".trigger[data-trigger=viewer-request]")
    await expect(viewer_request.locator(".error-box strong")).to_have_text("503 LambdaExecutionError")
    traceback = viewer_request.locator(".error-box pre.traceback")
    await expect(traceback).to_contain_text("Traceback (most recent call last):")
    await expect(traceback).to_contain_text("in helper")
    await expect(traceback).to_contain_text("KeyError: 'no-such-key'")
    await page.screenshot(path=tmp_path / "crash.png")


async def test_an_open_exchange_that_leaves_the_ring_says_so(
    browser: Browser, inspected: InspectedFactory, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    setup = await inspected(ring_size=3, origin=str(tmp_path))
    page = await _page(browser, setup)
    assert await _get(setup, "/a.txt?first") == 200
    await page.locator("#list tbody tr", has_text="/a.txt?first").click()
    await expect(page.locator(".detail h2")).to_contain_text("GET /a.txt?first")
    await expect(page.locator(".detail .actions a.har")).to_have_attribute("href", re.compile(r"/har$"))
    await expect(page.locator(".evicted-note")).to_have_count(0)
    for n in range(3):
        assert await _get(setup, f"/a.txt?n={n}") == 200
    await expect(page.locator(".evicted-note")).to_contain_text("has left the ring")
    await expect(page.locator(".detail h2")).to_contain_text("GET /a.txt?first")  # what was shown stays
    assert await page.locator(".detail .actions a.har").get_attribute("href") is None
    await page.screenshot(path=tmp_path / "evicted.png")
