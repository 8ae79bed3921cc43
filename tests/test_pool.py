"""A wait for a pooled connection is not a connect timeout.

More streams than the pool has connections: the later ones wait for a free connection,
and their ``connect`` deadline starts only when they have one. Without the pool's tracing
(a session of your own without ``pool_tracing()``) the wait counts, as aiohttp has it.
Real loopback server; every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from helpers import DONE as DONE_EVENT
from helpers import FINISH, ROLE, chunk, prepared

import rxgpt
from rxgpt import Client, Retry, StreamTimeout, Timeouts
from rxgpt._client import DEFAULT_POOL_LIMIT

POOL = 2
HOLD = 2.0  # the first POOL streams last this long; the later ones answer at once
CONNECT = 1.2  # below every wait for a free connection (HOLD), far above a stall of the loop
STREAMS = 6
BOUND = 20.0


async def slow_answer(request: web.Request) -> web.StreamResponse:
    """Stream ``n`` (its message says ``n``) holds its connection if it is one of the first."""
    held = int((await request.json())["messages"][0]["content"]) < POOL
    response: web.StreamResponse = await prepared(request)
    await response.write(ROLE + chunk({"content": "a"}))
    if held:
        await asyncio.sleep(HOLD)
    await response.write(chunk({"content": "b"}) + FINISH + DONE_EVENT)
    await response.write_eof()
    return response


async def run_all(client: Client) -> list[BaseException | str]:
    streams = [
        client.chat(model="m", messages=[{"role": "user", "content": str(n)}])
        for n in range(STREAMS)
    ]
    async with asyncio.timeout(BOUND):
        return await asyncio.gather(*(s.text() for s in streams), return_exceptions=True)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", slow_answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/v1"))
    await server.close()


async def test_streams_waiting_for_the_pool_do_not_time_out_connecting(url: str) -> None:
    timeouts = Timeouts(connect=CONNECT, idle=5)
    async with Client(url, "k", pool_limit=POOL, timeouts=timeouts, retry=Retry(attempts=1)) as c:
        results = await run_all(c)
    assert results == ["ab"] * STREAMS  # the later ones waited HOLD, far past CONNECT


async def test_a_session_without_pool_tracing_counts_the_wait(url: str) -> None:
    timeouts = Timeouts(connect=CONNECT, idle=5)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL)) as session:
        client = Client(url, "k", session=session, timeouts=timeouts, retry=Retry(attempts=1))
        results = await run_all(client)
        assert results[:POOL] == ["ab"] * POOL
        late = [r for r in results if isinstance(r, StreamTimeout)]
        assert len(late) == STREAMS - POOL and all(r.phase == "connect" for r in late)

    # the same session, given the tracing, waits for the pool as the Client's own does
    traced = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=POOL), trace_configs=[rxgpt.pool_tracing()]
    )
    async with traced as session:
        client = Client(url, "k", session=session, timeouts=timeouts, retry=Retry(attempts=1))
        assert await run_all(client) == ["ab"] * STREAMS


async def test_the_default_pool_is_large() -> None:
    client = Client("http://127.0.0.1:9/v1", "k")
    try:
        session = client.session()
        connector = session.connector
        assert connector is not None and connector.limit == DEFAULT_POOL_LIMIT >= 2048
        assert connector.limit_per_host == 0
    finally:
        await client.aclose()


async def test_a_stream_cancelled_while_waiting_for_the_pool_gives_no_slot_away(url: str) -> None:
    timeouts = Timeouts(connect=CONNECT, idle=5)
    async with Client(url, "k", pool_limit=1, timeouts=timeouts, retry=Retry(attempts=1)) as c:
        first = c.chat(model="m", messages=[{"role": "user", "content": "1"}])
        waiting = c.chat(model="m", messages=[{"role": "user", "content": "2"}])
        first.start()
        waiting.start()
        await asyncio.sleep(0.1)  # `waiting` is queued behind `first`
        waiting.cancel()
        async with asyncio.timeout(BOUND):
            assert await first.text() == "ab"
            # the slot `first` held goes to the next stream, not to the cancelled one
            after = c.chat(model="m", messages=[{"role": "user", "content": "3"}])
            assert await after.text() == "ab"
        assert c._slots is not None and c._slots.free == 1 and not c._slots.waiters
