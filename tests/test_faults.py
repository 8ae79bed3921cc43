"""Bad days: every failure ends in a typed error with its partial, leaks nothing, never hangs.

Goes beyond tests/test_client.py: after each failure scenario the client task is gone,
the connector holds no acquired connection, and (with a connection limit of 1) the next
request still goes through; cancellation in every phase (connect, first byte, mid-body,
retry backoff) from any task closes the response at once; after ``[DONE]`` a bounded
drain returns the connection to the pool (counted server-side by peer port); subscribers
that raise are isolated and reported.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from helpers import (
    MESSAGES,
    MODEL,
    TIMEOUT,
    Harness,
    Recorder,
    Seen,
    chat,
    full_stream,
    harness_fixture,
    headers_only,
    never_answers,
    prepared,
    text_of,
)
from reactivex import Observer
from reactivex import operators as ops

from rxgpt import (
    AuthenticationError,
    ChatStream,
    Client,
    DecodeError,
    Delta,
    EventTooLarge,
    FinishDelta,
    HTTPStatusError,
    RateLimitError,
    Retry,
    RxgptError,
    StreamCancelled,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    TextDelta,
    Timeouts,
    decode_stream,
    request,
)
from rxgpt.mock import generate_tokens

KEY = "sk-test-faults-0123456789abcdef"
TOKENS = 16
WORDS = generate_tokens(MESSAGES, MODEL, TOKENS)
TEXT = "".join(WORDS)
FULL = full_stream(WORDS)

h = harness_fixture(key=KEY)


# --------------------------------------------------------------------------- failures leak nothing


FAILURES = [
    pytest.param({"status": 500}, HTTPStatusError, "", id="500"),
    pytest.param({"status": 401}, AuthenticationError, "", id="401"),
    pytest.param({"status": 429, "retry_after": 1}, RateLimitError, "", id="429"),
    pytest.param({"garbage_at": 3}, DecodeError, "".join(WORDS[:2]), id="garbage"),
    pytest.param({"error_at": 4}, StreamError, "".join(WORDS[:3]), id="in-band-error"),
    pytest.param({"no_done": True}, StreamInterrupted, TEXT, id="no-done"),
    pytest.param({"drop_after": 6}, StreamInterrupted, "".join(WORDS[:5]), id="drop"),
    pytest.param(
        {"stall_after": 4, "keepalive_ms": 20}, StreamTimeout, "".join(WORDS[:3]), id="idle"
    ),
    pytest.param({"endless_line": True}, EventTooLarge, "", id="endless-line"),
    pytest.param(
        {"drop_after": 6, "gzip": True, "chunk_bytes": 5},
        StreamInterrupted,
        "".join(WORDS[:5]),
        id="drop-gzip",
    ),
]


@pytest.mark.parametrize(("fault", "kind", "partial"), FAILURES)
async def test_failure_leaks_nothing_and_the_single_connection_slot_is_free(
    h: Harness, fault: dict[str, Any], kind: type[RxgptError], partial: str
) -> None:
    h.limit = 1
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(
        server.base_url,
        timeouts=Timeouts(idle=0.2),
        max_event_bytes=64 * 1024,
        require_done="no_done" in fault,  # (else a stream without [DONE] is complete)
    )
    stream = chat(client, mock=fault)
    with pytest.raises(RxgptError) as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    error = info.value

    assert isinstance(error, kind), repr(error)
    assert error.partial is not None
    assert error.partial.text == partial
    assert error.partial.error is error
    assert stream.partial is error.partial
    await seen.wait_ended(1, within=1.5)  # the server's handler is over: response closed
    await h.settled(within=1.5)

    # the one connection slot is free: the next request goes through
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
    assert seen.requests == 2
    await h.settled(within=0.5)


@pytest.mark.parametrize(
    ("handler", "kind"),
    [
        pytest.param(never_answers, StreamTimeout, id="connect"),
        pytest.param(headers_only, StreamTimeout, id="first-byte"),
    ],
)
async def test_timeouts_before_the_body_leave_the_slot_free(
    h: Harness, handler: Callable[[web.Request], Awaitable[Any]], kind: type[RxgptError]
) -> None:
    h.limit = 1
    url, seen = await h.serve(handler)
    client = h.client(url, timeouts=Timeouts(connect=0.2, first_byte=0.2, idle=None))
    with pytest.raises(kind):
        await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    await seen.wait_ended(1, within=0.5)
    await h.settled(within=0.2)
    server, _ = await h.mock(tokens=TOKENS)
    other = h.client(server.base_url)
    assert await asyncio.wait_for(chat(other).text(), TIMEOUT) == TEXT


# --------------------------------------------------------------------------- cancellation


PHASES = ["connect", "first_byte", "mid-body", "backoff"]


async def _start_in_phase(h: Harness, phase: str) -> tuple[ChatStream, Seen, Client]:
    """A started stream waiting in ``phase``; the client to use for the next request."""
    server, mock_seen = await h.mock(tokens=TOKENS)
    good = h.client(server.base_url)
    if phase in ("connect", "first_byte"):
        url, seen = await h.serve(never_answers if phase == "connect" else headers_only)
        stream = chat(h.client(url))
        stream.start()
        await seen.wait_requests(1)
        await asyncio.sleep(0.05)
        return stream, seen, good
    if phase == "mid-body":
        stream = chat(good, mock={"stall_after": 5})
        seen_items = Recorder(stream)
        stream.start()
        await seen_items.wait_texts(4)
        return stream, mock_seen, good
    client = h.client(server.base_url, retry=Retry(attempts=3))
    stream = chat(client, mock={"status": 503, "retry_after": 5})
    stream.start()
    await mock_seen.wait_ended(1)
    return stream, mock_seen, good


@pytest.mark.parametrize("phase", PHASES)
async def test_cancelling_from_another_task_frees_the_only_connection(
    h: Harness, phase: str
) -> None:
    h.limit = 1
    stream, seen, good = await _start_in_phase(h, phase)
    waiter = asyncio.create_task(stream.completion())
    await asyncio.sleep(0.01)
    requests_before = seen.requests

    async def canceller() -> None:
        stream.cancel()

    await asyncio.create_task(canceller())  # cancelled by a task that is not the consumer
    with pytest.raises(StreamCancelled) as info:
        await asyncio.wait_for(waiter, TIMEOUT)
    assert info.value.partial is not None
    assert info.value.partial.state == "cancelled"
    await seen.wait_ended(requests_before, within=0.3)
    await h.settled(within=0.1)  # closed at once, not after a drain

    # limit=1: the cancelled stream does not block the next request
    assert await asyncio.wait_for(chat(good).text(), 2.0) == TEXT
    if phase == "backoff":
        await asyncio.sleep(0.05)
        assert seen.requests == requests_before + 1  # no retry after the cancel


@pytest.mark.parametrize("phase", PHASES)
async def test_cancelling_the_awaiting_task_frees_the_only_connection(
    h: Harness, phase: str
) -> None:
    h.limit = 1
    stream, seen, good = await _start_in_phase(h, phase)
    waiter = asyncio.create_task(stream.completion())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert stream.done and stream.partial.state == "cancelled"
    await seen.wait_ended(seen.requests, within=0.3)  # the server saw the response close
    await h.settled(within=0.1)
    assert await asyncio.wait_for(chat(good).text(), 2.0) == TEXT


async def test_every_consumer_ends_when_another_task_cancels(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)
    stream = chat(client, mock={"stall_after": 5})
    rx = Recorder(stream)
    got: list[Delta] = []

    async def iterate() -> None:
        async for delta in stream:
            got.append(delta)

    iterating = asyncio.create_task(iterate())
    awaiting = asyncio.create_task(stream.text())
    await rx.wait_texts(4)
    asyncio.get_running_loop().call_soon(stream.cancel)  # from a plain callback, even
    results = await asyncio.wait_for(
        asyncio.gather(iterating, awaiting, return_exceptions=True), TIMEOUT
    )
    assert all(isinstance(r, StreamCancelled) for r in results), results
    assert len(rx.errors) == 1 and isinstance(rx.errors[0], StreamCancelled)
    assert text_of(got) == text_of(rx.items) == "".join(WORDS[:4])
    await seen.wait_ended(1, within=0.3)


async def test_cancel_from_inside_a_subscriber_closes_the_response_at_once(h: Harness) -> None:
    """ "Stop after three tokens" from on_next: a cancel, not the end of the stream.

    The server is still generating (200 tokens, 20 ms apart): the response must be
    closed at once, not drained for up to a second while the model keeps generating, and
    with a connection limit of 1 the next request must not wait for that drain.
    """
    h.limit = 1
    server, seen = await h.mock(tokens=200, itl_ms=20)
    client = h.client(server.base_url)
    stream = chat(client)
    texts = [0]
    cancelled_at = [0.0]

    def stop_after_three(delta: Delta) -> None:
        if isinstance(delta, TextDelta) and delta.text:
            texts[0] += 1
            if texts[0] == 3:
                cancelled_at[0] = asyncio.get_running_loop().time()
                stream.cancel()

    stream.subscribe(stop_after_three, lambda _: None)
    with pytest.raises(StreamCancelled):
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert stream.partial.state == "cancelled"
    assert stream.partial.text == "".join(generate_tokens(MESSAGES, MODEL, 200)[:3])

    await seen.wait_ended(1, within=2.0)
    closed_after = asyncio.get_running_loop().time() - cancelled_at[0]
    assert closed_after < 0.3, f"the response was closed {closed_after:.2f} s after cancel()"
    await h.settled(within=0.1)


async def test_take_after_the_operators_ends_the_response_within_the_drain_bound(
    h: Harness,
) -> None:
    """An Rx ``take(3)`` after the operators stops the stream from inside on_next.

    That is a normal end, not an abort: the rest of the body is drained, bounded by the
    transport's drain (64 KiB, 1 s); the server is still generating here, so after the
    bound the response is closed. Nothing fails and nothing leaks.
    """
    server, seen = await h.mock(tokens=200, itl_ms=20)
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    source = request(server.base_url + "/chat/completions", json=body, session=h.session)
    done = asyncio.Event()
    taken: list[Delta] = []
    errors: list[Exception] = []
    source.pipe(decode_stream(), ops.take(3)).subscribe(taken.append, errors.append, done.set)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert len(taken) == 3 and errors == []
    await seen.wait_ended(1, within=3.0)
    closed_after = loop.time() - start
    assert closed_after < 1.5, f"the response was closed {closed_after:.2f} s after take(3)"
    await h.settled(within=0.5)


@pytest.mark.parametrize("stop", ["take_while", "first"])
async def test_a_users_own_stop_after_the_operators_drains_and_reuses_the_connection(
    h: Harness, stop: str
) -> None:
    """``take_while(not finish)`` / ``first()`` after ``decode_stream()``: drained, reused.

    With one connection allowed, a second request after the stop must come on the same
    TCP connection (server-side: one client port), so the first response was not aborted.
    """
    h.limit = 1
    server, seen = await h.mock(tokens=5)
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    url = server.base_url + "/chat/completions"
    for _ in range(2):
        source = request(url, json=body, session=h.session)
        operator = (
            ops.take_while(lambda d: not isinstance(d, FinishDelta))
            if stop == "take_while"
            else ops.first()
        )
        done = asyncio.Event()
        got: list[Delta] = []
        errors: list[Exception] = []
        source.pipe(decode_stream(), operator).subscribe(got.append, errors.append, done.set)
        await asyncio.wait_for(done.wait(), TIMEOUT)
        assert got and errors == []
        await seen.wait_ended(seen.requests, within=2.0)
    assert seen.requests == 2
    assert seen.connections == 1
    await h.settled(within=0.5)


async def test_disposing_the_transport_subscription_closes_the_response_at_once(
    h: Harness,
) -> None:
    server, seen = await h.mock(tokens=TOKENS, itl_ms=20)
    deltas: list[Delta] = []
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    source = request(server.base_url + "/chat/completions", json=body, session=h.session)
    subscription = source.pipe(decode_stream()).subscribe(deltas.append)
    async with asyncio.timeout(TIMEOUT):
        while len(text_of(deltas)) < len("".join(WORDS[:3])):
            await asyncio.sleep(0.005)
    subscription.dispose()
    count = len(deltas)
    await seen.wait_ended(1, within=0.3)
    await h.settled(within=0.1)
    await asyncio.sleep(0.05)
    assert len(deltas) == count  # nothing after the dispose
    assert h.pooled == 0  # aborted, not returned half-read to the pool


async def test_a_stream_without_a_session_closes_its_own(h: Harness) -> None:
    """rxgpt.request() without a session creates one per subscription and closes it."""
    server, _ = await h.mock(tokens=TOKENS)
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    cases: list[tuple[dict[str, Any], type]] = [
        ({}, str),
        ({"status": 500}, HTTPStatusError),
        ({"drop_after": 3}, StreamInterrupted),
    ]
    for fault, expected in cases:
        done = asyncio.Event()
        terminal: list[Any] = []

        def finish(value: Any, terminal: list[Any] = terminal, done: asyncio.Event = done) -> None:
            terminal.append(value)
            done.set()

        source = request(server.base_url + "/chat/completions", json={**body, "mock": fault})
        source.pipe(decode_stream()).subscribe(None, finish, lambda f=finish: f("completed"))
        await asyncio.wait_for(done.wait(), TIMEOUT)
        assert len(terminal) == 1 and isinstance(terminal[0], expected), terminal
    await h.settled(within=0.5)


# --------------------------------------------------------------------------- drain and pool


async def test_completed_streams_reuse_one_pooled_connection(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)
    for _ in range(3):
        assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
        await h.settled(within=0.5)
    assert seen.requests == 3
    assert seen.connections == 1
    assert h.pooled == 1


@pytest.mark.parametrize("framing", [{"gzip": True}, {"chunk_bytes": 3}, {"line_endings": "cr"}])
async def test_reuse_after_framing_variants(h: Harness, framing: dict[str, Any]) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)
    for _ in range(2):
        assert await asyncio.wait_for(chat(client, mock=framing).text(), TIMEOUT) == TEXT
        await h.settled(within=0.5)
    assert seen.connections == 1


async def test_trailing_bytes_after_done_are_drained_and_the_connection_reused(
    h: Harness,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        await response.write(FULL)
        await asyncio.sleep(0.05)
        await response.write(b": trailing comment after the end marker\n\n")
        await response.write_eof()
        return response

    url, seen = await h.serve(handler)
    client = h.client(url)
    for _ in range(2):
        result = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
        assert result.state == "complete" and result.text == TEXT
        await h.settled(within=0.5)
    assert seen.connections == 1


async def test_a_body_that_never_ends_after_done_is_drained_with_a_bound(h: Harness) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        await response.write(FULL)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    url, seen = await h.serve(handler)
    client = h.client(url)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    assert loop.time() - start < 0.5  # the result does not wait for the drain
    assert result.state == "complete" and result.text == TEXT
    await seen.wait_ended(1, within=1.5)  # drain_timeout (1 s), then closed
    await h.settled(within=0.2)
    assert h.pooled == 0


async def test_a_huge_tail_after_done_is_not_read_to_the_end(h: Harness) -> None:
    tail = b": " + b"x" * (4 * 1024 * 1024) + b"\n\n"

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        await response.write(FULL)
        try:
            await response.write(tail)
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    url, seen = await h.serve(handler)
    client = h.client(url)
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
    await seen.wait_ended(1, within=1.5)
    await h.settled(within=1.5)
    assert h.pooled == 0  # more than drain_bytes: closed instead of reused
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
    assert seen.connections == 2


# --------------------------------------------------------------------------- subscribers


async def test_a_subscriber_raising_on_next_is_isolated_and_reported(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)
    stream = chat(client, mock={"drop_after": 6})
    before = Recorder(stream)
    calls = [0]

    def bad(delta: Delta) -> None:
        calls[0] += 1
        if isinstance(delta, TextDelta) and delta.text:
            raise ValueError("the UI crashed")

    stream.subscribe(bad)
    after = Recorder(stream)
    with caplog.at_level(logging.ERROR, logger="rxgpt"), pytest.raises(StreamInterrupted) as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)

    assert text_of(before.items) == text_of(after.items) == "".join(WORDS[:5])
    assert before.errors == after.errors == [info.value]
    assert len(stream.subscriber_errors) == 1
    assert isinstance(stream.subscriber_errors[0], ValueError)
    first_content = next(
        i for i, d in enumerate(before.items) if isinstance(d, TextDelta) and d.text
    )
    assert calls[0] == first_content + 1  # detached at the delta it raised on
    reports = [r for r in caplog.records if r.name == "rxgpt" and r.levelno == logging.ERROR]
    assert len(reports) == 1 and "the UI crashed" in reports[0].getMessage()


async def test_a_subscriber_raising_in_on_error_or_on_completed_is_isolated(h: Harness) -> None:
    server, _ = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)

    def boom(*_: Any) -> None:
        raise RuntimeError("terminal handler crashed")

    failing = chat(client, mock={"garbage_at": 3})
    failing.subscribe(None, boom)
    second = Recorder(failing)
    with pytest.raises(DecodeError) as info:
        await asyncio.wait_for(failing.completion(), TIMEOUT)
    assert second.errors == [info.value]
    assert [type(e) for e in failing.subscriber_errors] == [RuntimeError]

    ok = chat(client)
    ok.subscribe(None, None, boom)
    third = Recorder(ok)
    assert await asyncio.wait_for(ok.text(), TIMEOUT) == TEXT
    assert third.completed == 1
    assert [type(e) for e in ok.subscriber_errors] == [RuntimeError]


async def test_a_raising_observer_does_not_disturb_an_async_for_consumer(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)
    stream = chat(client)

    class Exploding(Observer[Delta]):
        def __init__(self) -> None:
            super().__init__()
            self.seen = 0

        def _on_next_core(self, value: Delta) -> None:
            self.seen += 1
            raise KeyError("observer bug")

    exploding = Exploding()
    stream.subscribe(exploding)
    got: list[Delta] = []
    async with asyncio.timeout(TIMEOUT):
        async for delta in stream:
            got.append(delta)
    assert text_of(got) == TEXT
    assert exploding.seen == 1
    assert [type(e) for e in stream.subscriber_errors] == [KeyError]
    assert seen.requests == 1


async def test_every_consumer_gets_the_same_error_object(h: Harness) -> None:
    server, _ = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)
    stream = chat(client, mock={"drop_after": 6})
    rx = Recorder(stream)
    got: list[Delta] = []

    async def iterate() -> None:
        async for delta in stream:
            got.append(delta)

    results = await asyncio.wait_for(
        asyncio.gather(iterate(), stream.completion(), stream.text(), return_exceptions=True),
        TIMEOUT,
    )
    error = rx.errors[0]
    assert isinstance(error, StreamInterrupted)
    assert all(r is error for r in results)
    assert text_of(got) == error.partial.text == "".join(WORDS[:5])  # type: ignore[union-attr]
    # a consumer arriving after the end gets the same error too
    with pytest.raises(StreamInterrupted) as late:
        await stream.completion()
    assert late.value is error
