"""The inspector page in a real headless Chromium (Debian's, driven by Playwright): the list updates live, one
exchange shows its triggers and what they changed, a broken rule is shown at its field, and the HAR download is HAR
1.2. Each test leaves screenshots of what it saw in its tmp folder."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

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
