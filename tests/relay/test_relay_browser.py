"""A real headless Chromium opens the example page; the connection is cut mid-answer (mid
event, by a proxy); EventSource reconnects with Last-Event-ID and the page's final text is
the full answer, each token once."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from aiohttp import web
from conftest import ROOT, TIMEOUT
from relay_helpers import CuttingProxy, chat

import rxgpt
import rxgpt.relay as relay
from rxgpt.mock import MockServer
from rxgpt.relay._connect import Redis

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGE = ROOT / "examples" / "relay" / "page.html"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")


async def test_the_example_page_survives_a_cut_and_shows_every_token_once(
    redis_client: Redis,
) -> None:
    app = relay.create_app(redis_client, page=PAGE, retry_ms=200)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with (
            MockServer(tokens=150, itl_ms=8) as llm,
            rxgpt.Client(base_url=llm.base_url, api_key="k") as client,
            CuttingProxy(runner.addresses[0][1], cut_after=25) as proxy,
            playwright_api.async_playwright() as playwright,
        ):
            stream = chat(client)
            published = relay.publish(stream, redis_client, "browser")
            stream.start()
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page()
                proxy.delivered = lambda: page.wait_for_function(
                    "window.log.some((entry) => entry[0] === 'message')", timeout=TIMEOUT * 1000
                )
                await page.goto(f"http://127.0.0.1:{proxy.port}/?key=browser")
                await page.wait_for_function(
                    "document.body.dataset.state === 'done'", timeout=TIMEOUT * 2000
                )
                text = await page.evaluate("document.getElementById('answer').textContent")
                log = await page.evaluate("window.log")
            finally:
                await browser.close()
            async with asyncio.timeout(TIMEOUT):
                completion = await stream.completion()
                await published.finished()
    finally:
        await runner.cleanup()
    assert proxy.cuts == 1
    sse = [r for r in proxy.requests if b"/v1/streams/" in r]
    assert len(sse) == 2  # the first connection, cut; the reconnect, to the end
    assert b"last-event-id: " in sse[1].lower() and b"last-event-id" not in sse[0].lower()
    assert any(kind == "error" and state == 0 for kind, _, _, state in log)  # CONNECTING
    ids = [event_id for kind, _, event_id, _ in log if kind == "message"]
    assert len(ids) == len(set(ids[:-1])) + 1  # no event twice ([DONE] shares the end's id)
    assert text == completion.text and len(text) > 200
