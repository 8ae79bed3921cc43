"""Deadlines of a stream (rxgpt.Timeouts): connect, first_byte, idle and total.

Each phase is provoked by a real loopback server built for it (a server that accepts and
never answers headers, one that answers headers and never sends a byte, one that sends
keep-alives forever, the MockServer at a slow pace...). The only timing assertions are the
behaviour bounds of the feature: a deadline fires no earlier than its bound and not much
later (``bound <= t < bound + SLACK``). After every test the harness checks that no task
is left behind and that the connector holds no acquired connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from helpers import (
    CHAT_PATH,
    DONE,
    FINISH,
    MESSAGES,
    MESSAGES_PATH,
    MODEL,
    ROLE,
    TIMEOUT,
    Harness,
    chat,
    chunk,
    harness_fixture,
    headers_only,
    never_answers,
)
from helpers import prepared as sse_response

from rxgpt import (
    ChatStream,
    Client,
    Delta,
    Heartbeat,
    Retry,
    StreamTimeout,
    TextDelta,
    Timeouts,
    TransportError,
)
from rxgpt.mock import generate_tokens

SLACK = 0.5  # how much later than its bound a deadline may fire
EPS = 0.002  # the idle timer re-arms lazily with 1 ms granularity; clocks differ by µs
KEY = "sk-test-timeouts-0123456789abcdef"
WORDS = generate_tokens(MESSAGES, MODEL, 40)

h = harness_fixture(key=KEY, paths=(CHAT_PATH, MESSAGES_PATH))


def now() -> float:
    return asyncio.get_running_loop().time()


# --------------------------------------------------------------------------- handlers


async def keepalives_forever(request: web.Request) -> web.StreamResponse:
    """Bytes keep arriving (comments every 30 ms) but never any content."""
    response = await sse_response(request)
    while True:
        await response.write(b": keep-alive\n\n")
        await asyncio.sleep(0.03)


async def role_then_keepalives(request: web.Request) -> web.StreamResponse:
    """The role chunk (metadata, not content), then only keep-alives."""
    response = await sse_response(request)
    await response.write(ROLE)
    while True:
        await asyncio.sleep(0.03)
        await response.write(b": keep-alive\n\n")


async def tokens_then_keepalives(request: web.Request) -> web.StreamResponse:
    """Three content tokens, then keep-alive comments forever."""
    response = await sse_response(request)
    await response.write(ROLE)
    for word in WORDS[:3]:
        await response.write(chunk({"content": word}))
    while True:
        await asyncio.sleep(0.03)
        await response.write(b": keep-alive\n\n")


def slow_headers(delay: float) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Headers after ``delay`` seconds, then a complete stream at once."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        await asyncio.sleep(delay)
        response = await sse_response(request)
        for part in (ROLE, chunk({"content": "late"}), FINISH, DONE):
            await response.write(part)
        await response.write_eof()
        return response

    return handler


def paced(first: float, gap: float, count: int) -> Callable[[web.Request], Awaitable[Any]]:
    """Headers at once, the first byte after ``first`` s, then a token every ``gap`` s."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await sse_response(request)
        await asyncio.sleep(first)
        await response.write(ROLE)
        for word in WORDS[:count]:
            await asyncio.sleep(gap)
            await response.write(chunk({"content": word}))
        await response.write(FINISH + DONE)
        await response.write_eof()
        return response

    return handler


async def expect_timeout(stream: ChatStream) -> tuple[StreamTimeout, float]:
    """Await the stream's error; return it and the seconds it took from the start."""
    start = now()
    with pytest.raises(StreamTimeout) as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    return info.value, now() - start


def assert_within(elapsed: float, bound: float) -> None:
    assert bound - EPS <= elapsed < bound + SLACK, (elapsed, bound)


# --------------------------------------------------------------------------- connect


async def test_connect_timeout_fires_within_its_bound_and_closes_the_request(h: Harness) -> None:
    url, seen = await h.serve(never_answers)
    client = h.client(url, timeouts=Timeouts(connect=0.3, idle=None))
    error, elapsed = await expect_timeout(chat(client))

    assert error.phase == "connect"
    assert error.seconds == 0.3
    assert "connect timeout after 0.3s" in str(error)
    assert isinstance(error, TransportError)
    assert_within(elapsed, 0.3)
    assert error.partial is not None
    assert error.partial.text == "" and error.partial.state == "error"
    assert error.attempts == 1
    await seen.wait_ended(within=0.5)  # the server saw the client go away at once
    assert seen.requests == 1
    await h.settled(within=0.2)


async def test_connect_deadline_ends_with_the_headers(h: Harness) -> None:
    """Headers at 0.15 s, connect=0.3: the connect phase is over, no later deadline."""
    url, _ = await h.serve(slow_headers(0.15))
    client = h.client(url, timeouts=Timeouts(connect=0.3, idle=None))
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == "late"


async def test_slow_headers_beyond_connect_deadline(h: Harness) -> None:
    url, seen = await h.serve(slow_headers(1.0))
    client = h.client(url, timeouts=Timeouts(connect=0.2, idle=None))
    error, elapsed = await expect_timeout(chat(client))
    assert error.phase == "connect"
    assert_within(elapsed, 0.2)
    await seen.wait_ended(within=0.5)


# --------------------------------------------------------------------------- first byte


async def test_first_byte_timeout_fires_within_its_bound(h: Harness) -> None:
    url, seen = await h.serve(headers_only)
    client = h.client(url, timeouts=Timeouts(connect=1.0, first_byte=0.25, idle=None))
    error, elapsed = await expect_timeout(chat(client))

    assert error.phase == "first_byte"
    assert error.seconds == 0.25
    assert_within(elapsed, 0.25)
    assert error.partial is not None and error.partial.text == ""
    await seen.wait_ended(within=0.5)
    await h.settled(within=0.2)


async def test_first_byte_deadline_does_not_apply_after_the_first_byte(h: Harness) -> None:
    """first_byte=0.2; the first byte at once, then a token every 0.08 s for 0.4 s."""
    url, _ = await h.serve(paced(0.0, 0.08, 5))
    client = h.client(url, timeouts=Timeouts(first_byte=0.2, idle=None))
    result = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    assert result.state == "complete"
    assert result.text == "".join(WORDS[:5])


async def test_connect_deadline_does_not_cover_the_wait_for_the_first_byte(h: Harness) -> None:
    """connect=0.2 and no first_byte limit: a body starting at 0.35 s is fine."""
    url, _ = await h.serve(paced(0.35, 0.0, 2))
    client = h.client(url, timeouts=Timeouts(connect=0.2, idle=None))
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == "".join(WORDS[:2])


async def _consume(stream: ChatStream, how: str) -> BaseException:
    if how == "rx":
        got: list[BaseException] = []
        ended = asyncio.Event()

        def on_error(error: Exception) -> None:
            got.append(error)
            ended.set()

        stream.subscribe(None, on_error, ended.set)
        stream.start()
        await asyncio.wait_for(ended.wait(), TIMEOUT)
        assert len(got) == 1, "the Rx subscriber completed instead of failing"
        return got[0]
    with pytest.raises(StreamTimeout) as info:
        async with asyncio.timeout(TIMEOUT):
            if how == "async for":
                async for _ in stream:
                    pass
            elif how == "completion":
                await stream.completion()
            else:
                await stream.text()
    return info.value


@pytest.mark.parametrize("how", ["async for", "completion", "text", "rx"])
async def test_timeout_reaches_every_kind_of_consumer(h: Harness, how: str) -> None:
    url, seen = await h.serve(headers_only)
    client = h.client(url, timeouts=Timeouts(first_byte=0.2, idle=None))
    stream = chat(client)
    start = now()
    error = await _consume(stream, how)
    assert isinstance(error, StreamTimeout)
    assert error.phase == "first_byte"
    assert_within(now() - start, 0.2)
    assert error.partial is stream.partial
    assert stream.done
    await seen.wait_ended(within=0.5)


# --------------------------------------------------------------------------- idle


@pytest.mark.parametrize("heartbeats", [False, True])
async def test_idle_fires_although_keepalive_bytes_keep_arriving(
    h: Harness, heartbeats: bool
) -> None:
    url, seen = await h.serve(keepalives_forever)
    client = h.client(url, timeouts=Timeouts(idle=0.3))
    stream = chat(client, heartbeats=heartbeats)
    beats: list[Delta] = []
    stream.subscribe(beats.append)
    error, elapsed = await expect_timeout(stream)

    assert error.phase == "idle"
    assert error.seconds == 0.3
    assert_within(elapsed, 0.3)
    if heartbeats:  # the keep-alives did arrive (and were reported), yet idle fired
        assert len(beats) >= 3
        assert all(isinstance(d, Heartbeat) for d in beats)
    else:
        assert beats == []
    await seen.wait_ended(within=0.5)
    await h.settled(within=0.2)


async def test_metadata_without_content_does_not_reset_idle(h: Harness) -> None:
    url, _ = await h.serve(role_then_keepalives)
    client = h.client(url, timeouts=Timeouts(idle=0.3))
    error, elapsed = await expect_timeout(chat(client, heartbeats=True))
    assert error.phase == "idle"
    assert_within(elapsed, 0.3)
    assert error.partial is not None and error.partial.text == ""


async def test_idle_after_content_counts_from_the_last_content_delta(h: Harness) -> None:
    url, seen = await h.serve(tokens_then_keepalives)
    client = h.client(url, timeouts=Timeouts(idle=0.3), retry=Retry(attempts=3, backoff=0.01))
    stream = chat(client, heartbeats=True)
    last_content = [0.0]

    def on_next(delta: Delta) -> None:
        if isinstance(delta, TextDelta) and delta.text:
            last_content[0] = now()

    stream.subscribe(on_next)
    with pytest.raises(StreamTimeout) as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    quiet = now() - last_content[0]

    error = info.value
    assert error.phase == "idle"
    assert_within(quiet, 0.3)
    # content had arrived: no silent retry, the partial holds the three tokens
    assert seen.requests == 1
    assert error.attempts == 1
    assert error.partial is not None
    assert error.partial.text == "".join(WORDS[:3])
    assert error.partial.state == "error"
    assert error.partial.error is error
    await seen.wait_ended(within=0.5)


async def test_steady_tokens_keep_idle_from_firing(h: Harness) -> None:
    """A token every 0.08 s for 0.48 s under idle=0.2: content resets the idle clock."""
    url, _ = await h.serve(paced(0.0, 0.08, 6))
    client = h.client(url, timeouts=Timeouts(idle=0.2))
    result = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    assert result.state == "complete"
    assert result.text == "".join(WORDS[:6])


async def test_anthropic_pings_do_not_reset_idle(h: Harness) -> None:
    server, seen = await h.mock(tokens=12)
    client = Client(
        server.url,
        api_key=KEY,
        provider="anthropic",
        session=h.session,
        timeouts=Timeouts(idle=0.3),
        retry=Retry(attempts=1),
    )
    stream = chat(client, mock={"stall_after": 5, "keepalive_ms": 30})
    deltas: list[Delta] = []
    stream.subscribe(deltas.append)
    error, elapsed = await expect_timeout(stream)

    assert error.phase == "idle"
    assert elapsed >= 0.3 - EPS
    pings = [d for d in deltas if isinstance(d, Heartbeat)]
    assert len(pings) >= 4  # the mock's own ping plus the stall's every 30 ms
    assert error.partial is not None
    assert error.partial.text == "".join(WORDS[:2])  # events: start, block, ping, 2 tokens
    await seen.wait_ended(within=0.5)


# --------------------------------------------------------------------------- total


async def test_total_fires_while_content_is_still_flowing(h: Harness) -> None:
    server, seen = await h.mock(tokens=40, itl_ms=50)
    client = h.client(
        server.base_url,
        timeouts=Timeouts(idle=0.2, total=0.5),
        retry=Retry(attempts=3, backoff=0.01),
    )
    stream = chat(client)
    error, elapsed = await expect_timeout(stream)

    assert error.phase == "total"
    assert error.seconds == 0.5
    assert_within(elapsed, 0.5)
    assert seen.requests == 1  # a total timeout is never retried
    assert error.partial is not None
    text = error.partial.text
    assert len(text.split()) >= 3 and "".join(WORDS).startswith(text)
    assert text != "".join(WORDS)
    await seen.wait_ended(within=0.5)
    await h.settled(within=0.2)


async def test_total_bounds_the_retries_too(h: Harness) -> None:
    """first_byte=0.2 is retried; total=0.5 ends the whole thing, attempts included."""
    url, seen = await h.serve(headers_only)
    client = h.client(
        url,
        timeouts=Timeouts(first_byte=0.2, idle=None, total=0.5),
        retry=Retry(attempts=10, backoff=0.01, jitter=0),
    )
    stream = chat(client)
    start = now()
    with pytest.raises(StreamTimeout) as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    elapsed = now() - start

    # attempts at 0, ~0.21 and ~0.42 s; the third is cut by the total deadline at 0.5 s
    assert info.value.phase == "total"
    assert_within(elapsed, 0.5)
    assert seen.requests == 3
    assert info.value.attempts == 3
    await seen.wait_ended(3, within=0.5)


async def test_first_byte_timeout_before_content_is_retried(h: Harness) -> None:
    url, seen = await h.serve(headers_only)
    client = h.client(
        url,
        timeouts=Timeouts(first_byte=0.15, idle=None),
        retry=Retry(attempts=2, backoff=0.05, jitter=0),
    )
    error, elapsed = await expect_timeout(chat(client))
    assert error.phase == "first_byte"
    assert seen.requests == 2
    assert error.attempts == 2
    assert_within(elapsed, 0.15 + 0.05 + 0.15)
    assert seen.arrivals[1] - seen.arrivals[0] >= 0.15 + 0.05 - EPS


# --------------------------------------------------------------------------- per call


async def test_per_call_timeouts_override_the_clients(h: Harness) -> None:
    url, _ = await h.serve(headers_only)
    client = h.client(url, timeouts=Timeouts(first_byte=30, idle=None))
    error, elapsed = await expect_timeout(
        chat(client, timeouts=Timeouts(first_byte=0.2, idle=None))
    )
    assert error.phase == "first_byte" and error.seconds == 0.2
    assert_within(elapsed, 0.2)


async def test_client_timeouts_apply_without_a_per_call_value(h: Harness) -> None:
    url, _ = await h.serve(headers_only)
    client = h.client(url, timeouts=Timeouts(first_byte=0.2, idle=None))
    error, elapsed = await expect_timeout(chat(client))
    assert error.phase == "first_byte" and error.seconds == 0.2
    assert_within(elapsed, 0.2)


async def test_per_call_timeouts_without_limits_disable_the_clients(h: Harness) -> None:
    """The client's 0.2 s idle would fire mid-stream; the call's Timeouts has none."""
    url, _ = await h.serve(paced(0.0, 0.3, 2))
    client = h.client(url, timeouts=Timeouts(idle=0.2))
    stream = chat(client, timeouts=Timeouts(connect=None, idle=None))
    assert await asyncio.wait_for(stream.text(), TIMEOUT) == "".join(WORDS[:2])


def test_timeouts_defaults() -> None:
    assert Timeouts() == Timeouts(connect=10.0, first_byte=None, idle=300.0, total=None)
    with pytest.raises(AttributeError):
        Timeouts().idle = 1  # type: ignore[misc]
