"""Silence after the headers ends the stream: ``idle`` covers the first byte and error bodies.

With only ``connect`` and ``idle`` set (``first_byte=None``, as by default), a 200 SSE
answer that sends no body byte, a 500 HTML page cut short and a 200 HTML page cut short
all end in :class:`~rxgpt.StreamTimeout` within the idle bound, from a real loopback
server that then stays silent. Every wait in a test is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from helpers import Harness, chat, failure, harness_fixture, headers_only

from rxgpt import Retry, StreamTimeout, Timeouts

h = harness_fixture()

IDLE = 0.3


def cut_short(
    status: int, content_type: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Headers and the start of a body, then silence."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"<html><body><h1>Something went wr")
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    return handler


CASES = {
    "200 SSE without a body byte": headers_only,
    "500 HTML page cut short": cut_short(500, "text/html"),
    "200 HTML page cut short": cut_short(200, "text/html"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_silence_after_the_headers_ends_in_a_timeout_within_idle(
    h: Harness, case: str
) -> None:
    url, _ = await h.serve(CASES[case])
    client = h.client(url, timeouts=Timeouts(connect=2.0, idle=IDLE), retry=Retry(attempts=1))
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await failure(chat(client))
    took = loop.time() - started
    assert isinstance(error, StreamTimeout), repr(error)
    assert error.phase == "idle" and error.seconds == IDLE
    assert took < IDLE + 1.0
    await h.settled(within=1.0)
