"""Tests of rxgpt.aio: to_async_iterable / ObservableIterator / from_async_iterable / FlowControl.

The backpressure tests run the real transport against a local aiohttp server that writes
as fast as it can, and check with counts (never timings) that a slow consumer keeps the
client-side buffer bounded and makes the server's writes stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import reactivex
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from rxgpt import (
    Client,
    FlowControl,
    ObservableIterator,
    from_async_iterable,
    parse_sse,
    request,
    to_async_iterable,
)

TIMEOUT = 5


# --------------------------------------------------------------------------- helpers


def recording_source(
    items: list[Any], *, complete: bool = False
) -> tuple[Observable[Any], dict[str, Any]]:
    """A source that pushes ``items`` synchronously, then stays open (or completes).

    ``state["disposed"]`` is an Event set when the subscription is disposed.
    """
    state: dict[str, Any] = {"subscribed": 0, "disposed": asyncio.Event(), "observer": None}

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        state["subscribed"] += 1
        state["observer"] = observer
        for item in items:
            observer.on_next(item)
        if complete:
            observer.on_completed()
        return Disposable(state["disposed"].set)

    return reactivex.create(subscribe), state


async def until(predicate: Any, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- to_async_iterable


async def test_async_for_yields_all_items_then_stops() -> None:
    items = [item async for item in to_async_iterable(reactivex.from_iterable(range(100)))]
    assert items == list(range(100))


async def test_async_for_over_a_large_synchronous_source() -> None:
    """A synchronous source that pushes more than maxsize at once still loses nothing."""
    n = 10_000
    got = [item async for item in to_async_iterable(reactivex.from_iterable(range(n)), maxsize=8)]
    assert got == list(range(n))


async def test_async_for_over_an_empty_source() -> None:
    assert [item async for item in to_async_iterable(reactivex.empty())] == []


async def test_source_error_is_raised_from_the_loop() -> None:
    source = reactivex.concat(reactivex.from_iterable([1, 2]), reactivex.throw(KeyError("boom")))
    got: list[int] = []
    with pytest.raises(KeyError, match="boom"):
        async for item in to_async_iterable(source):
            got.append(item)
    assert got == [1, 2]


async def test_items_pushed_later_from_the_loop_arrive() -> None:
    source, state = recording_source([])

    async def producer() -> None:
        await until(lambda: state["observer"] is not None)
        for i in range(5):
            state["observer"].on_next(i)
            await asyncio.sleep(0)
        state["observer"].on_completed()

    task = asyncio.create_task(producer())
    got = [item async for item in to_async_iterable(source)]
    await task
    assert got == [0, 1, 2, 3, 4]


async def test_breaking_early_disposes_the_subscription() -> None:
    source, state = recording_source([1, 2, 3])
    async for item in to_async_iterable(source):
        assert item == 1
        break
    # the generator is finalized once the loop drops it; its finally disposes
    await asyncio.wait_for(state["disposed"].wait(), TIMEOUT)


async def test_aclose_of_the_generator_disposes_at_once() -> None:
    source, state = recording_source([1, 2, 3])
    agen = to_async_iterable(source)
    assert await agen.__anext__() == 1
    await agen.aclose()  # type: ignore[attr-defined]
    assert state["disposed"].is_set()


async def test_cancelling_the_consuming_task_disposes_the_subscription() -> None:
    source, state = recording_source(["first"])
    got: list[str] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for item in to_async_iterable(source):
            got.append(item)
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), TIMEOUT)
    assert not state["disposed"].is_set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state["disposed"].is_set()
    assert got == ["first"]


async def test_the_source_is_subscribed_once_per_iteration() -> None:
    source, state = recording_source([1], complete=True)
    assert [x async for x in to_async_iterable(source)] == [1]
    assert [x async for x in to_async_iterable(source)] == [1]
    assert state["subscribed"] == 2


# --------------------------------------------------------------------------- ObservableIterator


async def test_observable_iterator_subscribes_at_construction() -> None:
    source, state = recording_source([1, 2], complete=True)
    iterator = ObservableIterator(source)
    assert state["subscribed"] == 1
    assert [x async for x in iterator] == [1, 2]
    # iterating past the end keeps raising StopAsyncIteration
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


async def test_observable_iterator_error_and_aclose() -> None:
    iterator = ObservableIterator(
        reactivex.concat(reactivex.just(1), reactivex.throw(ValueError("bad")))
    )
    assert await iterator.__anext__() == 1
    with pytest.raises(ValueError, match="bad"):
        await iterator.__anext__()

    source, state = recording_source([1, 2, 3])
    iterator2 = ObservableIterator(source)
    assert await iterator2.__anext__() == 1
    await iterator2.aclose()
    assert state["disposed"].is_set()
    await iterator2.aclose()  # idempotent


async def test_observable_iterator_cancelled_while_waiting_disposes() -> None:
    source, state = recording_source([])
    iterator = ObservableIterator(source)
    task = asyncio.create_task(iterator.__anext__())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state["disposed"].is_set()


async def test_observable_iterator_rejects_bad_maxsize() -> None:
    with pytest.raises(ValueError):
        ObservableIterator(reactivex.empty(), maxsize=0)


async def test_observable_iterator_pauses_and_resumes_its_flow() -> None:
    source, state = recording_source([])
    iterator = ObservableIterator(source, maxsize=4)
    observer = state["observer"]
    for i in range(3):
        observer.on_next(i)
    assert not iterator.flow.paused
    observer.on_next(3)  # the buffer reached maxsize
    assert iterator.flow.paused
    assert await iterator.__anext__() == 0  # 3 left > low water (2)
    assert iterator.flow.paused
    assert await iterator.__anext__() == 1  # 2 left: resume
    assert not iterator.flow.paused
    await iterator.aclose()


# --------------------------------------------------------------------------- FlowControl


async def test_flow_control_gate() -> None:
    flow = FlowControl()
    assert not flow.paused
    await asyncio.wait_for(flow.wait(), TIMEOUT)  # open: returns at once

    a, b = object(), object()
    flow.pause(a)
    flow.pause(b)
    waiter = asyncio.create_task(flow.wait())
    await asyncio.sleep(0)
    flow.resume(a)
    await asyncio.sleep(0)
    assert flow.paused and not waiter.done()  # b still holds it
    flow.resume(b)
    await asyncio.wait_for(waiter, TIMEOUT)
    assert not flow.paused
    flow.resume(b)  # resuming twice is harmless
    assert not flow.paused


# --------------------------------------------------------------------------- from_async_iterable


async def test_from_async_iterable_pushes_the_items_then_completes() -> None:
    async def gen() -> AsyncIterator[int]:
        for i in range(5):
            await asyncio.sleep(0)
            yield i

    done = asyncio.Event()
    got: list[int] = []
    errors: list[Exception] = []
    from_async_iterable(gen()).subscribe(got.append, errors.append, done.set)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert got == [0, 1, 2, 3, 4] and errors == []


async def test_from_async_iterable_error_goes_to_on_error() -> None:
    async def gen() -> AsyncIterator[int]:
        yield 1
        raise LookupError("generator failed")

    failed = asyncio.Event()
    got: list[int] = []
    errors: list[Exception] = []

    def on_error(error: Exception) -> None:
        errors.append(error)
        failed.set()

    from_async_iterable(gen()).subscribe(got.append, on_error)
    await asyncio.wait_for(failed.wait(), TIMEOUT)
    assert got == [1]
    assert isinstance(errors[0], LookupError)


async def test_disposing_cancels_the_generator_and_runs_its_finally() -> None:
    finalized = asyncio.Event()
    started = asyncio.Event()

    async def gen() -> AsyncIterator[int]:
        try:
            for i in range(3):
                yield i
            started.set()
            await asyncio.Event().wait()  # forever
            yield 99
        finally:
            finalized.set()

    got: list[int] = []
    completed: list[bool] = []
    subscription = from_async_iterable(gen()).subscribe(
        got.append, None, lambda: completed.append(True)
    )
    await asyncio.wait_for(started.wait(), TIMEOUT)
    assert got == [0, 1, 2]
    subscription.dispose()
    await asyncio.wait_for(finalized.wait(), TIMEOUT)
    assert completed == []


async def test_round_trip_async_iterable_to_observable_and_back() -> None:
    async def gen() -> AsyncIterator[str]:
        for word in ["a", "b", "c"]:
            await asyncio.sleep(0)
            yield word

    source = from_async_iterable(gen()).pipe(ops.map(str.upper))
    assert [x async for x in to_async_iterable(source)] == ["A", "B", "C"]


async def test_leaving_async_for_early_cancels_the_upstream_generator() -> None:
    finalized = asyncio.Event()

    async def gen() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                await asyncio.sleep(0)
                yield i
                i += 1
        finally:
            finalized.set()

    async for item in to_async_iterable(from_async_iterable(gen())):
        if item == 3:
            break
    await asyncio.wait_for(finalized.wait(), TIMEOUT)


# --------------------------------------------------------------------------- backpressure


EVENT = b"data: " + b"x" * 4000 + b"\n\n"
EVENTS = 20_000
TOTAL = EVENTS * len(EVENT)  # 80 MB: far more than every socket buffer on the way


@dataclass
class FirehoseState:
    written: int = 0
    done: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def firehose(aiohttp_server: AiohttpServer) -> tuple[str, FirehoseState]:
    """A server that writes EVENTS events as fast as TCP lets it, counting the bytes."""
    state = FirehoseState()

    async def handler(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        try:
            for _ in range(EVENTS):
                await resp.write(EVENT)  # blocks (drain) while the client does not read
                state.written += len(EVENT)
            await resp.write_eof()
            state.done = True
        finally:
            state.ended.set()
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/")), state


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def wait_for_plateau(state: FirehoseState) -> int:
    """Let the loop run until the server's byte count stops growing; return it."""
    last, same = -1, 0
    async with asyncio.timeout(TIMEOUT):
        while same < 3:
            await asyncio.sleep(0.02)
            if state.written == last:
                same += 1
            else:
                last, same = state.written, 0
    return last


@dataclass
class InFlight:
    """Counts items pushed into the bridge and taken out by the consumer."""

    pushed: int = 0
    consumed: int = 0
    max_in_flight: int = 0
    per_chunk: int = 0
    max_per_chunk: int = 0

    def on_push(self, _: Any) -> None:
        self.pushed += 1
        self.per_chunk += 1
        self.max_per_chunk = max(self.max_per_chunk, self.per_chunk)
        self.max_in_flight = max(self.max_in_flight, self.pushed - self.consumed)

    def on_chunk(self, _: Any) -> None:
        self.per_chunk = 0


MAXSIZE = 8


async def test_slow_consumer_bounds_the_buffer_and_blocks_the_server(
    firehose: tuple[str, FirehoseState], session: aiohttp.ClientSession
) -> None:
    url, server = firehose
    counts = InFlight()
    # a user's operator in between: the gate is passed explicitly to both ends
    flow = FlowControl()
    source = request(url, method="GET", session=session, flow=flow).pipe(
        ops.do_action(counts.on_push)
    )
    iterator = ObservableIterator(source, maxsize=MAXSIZE, flow=flow)
    received = 0
    max_buffer = 0
    was_paused = False

    first = await asyncio.wait_for(iterator.__anext__(), TIMEOUT)
    counts.consumed += 1
    received += len(first)

    # the consumer now "sleeps": the loop runs, the server writes until TCP pushes back
    written_while_asleep = await wait_for_plateau(server)
    assert not server.done
    assert written_while_asleep < TOTAL // 4
    assert iterator.flow.paused
    assert len(iterator._buffer) <= MAXSIZE

    # a slow consumer, sleeping between items, reads the whole body
    async with asyncio.timeout(30):
        async for chunk in iterator:
            counts.consumed += 1
            received += len(chunk)
            max_buffer = max(max_buffer, len(iterator._buffer))
            was_paused = was_paused or iterator.flow.paused
            await asyncio.sleep(0.001)

    assert received == TOTAL
    assert server.done and server.written == TOTAL
    assert was_paused
    assert max_buffer <= MAXSIZE
    assert counts.max_in_flight <= MAXSIZE
    assert counts.pushed > 10 * MAXSIZE  # many reads: the bound was actually exercised


async def test_slow_consumer_of_parsed_events_stays_bounded(
    firehose: tuple[str, FirehoseState], session: aiohttp.ClientSession
) -> None:
    """With a decoding stage, the bound is maxsize + the events one network read holds."""
    url, server = firehose
    counts = InFlight()
    flow = FlowControl()
    source = request(url, method="GET", session=session, flow=flow).pipe(
        ops.do_action(counts.on_chunk), parse_sse(), ops.do_action(counts.on_push)
    )
    iterator = ObservableIterator(source, maxsize=MAXSIZE, flow=flow)

    first = await asyncio.wait_for(iterator.__anext__(), TIMEOUT)
    counts.consumed += 1
    assert first.data == "x" * 4000
    written_while_asleep = await wait_for_plateau(server)
    assert written_while_asleep < TOTAL // 4
    assert iterator.flow.paused

    events = 1
    async with asyncio.timeout(30):
        async for event in iterator:
            counts.consumed += 1
            events += 1
            if events % 64 == 0:
                await asyncio.sleep(0.001)
            assert event.data == "x" * 4000

    assert events == EVENTS
    assert server.done
    assert counts.max_in_flight <= MAXSIZE + counts.max_per_chunk
    assert counts.max_in_flight < EVENTS // 20


async def test_breaking_out_of_a_backpressured_stream_closes_it(
    firehose: tuple[str, FirehoseState], session: aiohttp.ClientSession
) -> None:
    url, server = firehose
    iterator = ObservableIterator(request(url, method="GET", session=session), maxsize=MAXSIZE)
    n = 0
    async for _chunk in iterator:
        n += 1
        if n == 3:
            break
    await iterator.aclose()
    await asyncio.wait_for(server.ended.wait(), TIMEOUT)
    assert not server.done
    assert server.written < TOTAL


async def test_the_flow_is_found_through_rxgpt_operators_without_passing_it(
    firehose: tuple[str, FirehoseState], session: aiohttp.ClientSession
) -> None:
    """``request(...).pipe(parse_sse())`` carries the transport's gate as ``.flow``."""
    url, server = firehose
    source = request(url, method="GET", session=session).pipe(parse_sse())
    iterator = ObservableIterator(source, maxsize=MAXSIZE)
    assert iterator.flow is source.flow  # type: ignore[attr-defined]
    first = await asyncio.wait_for(iterator.__anext__(), TIMEOUT)
    assert first.data == "x" * 4000
    assert await wait_for_plateau(server) < TOTAL // 4
    assert iterator.flow.paused
    assert len(iterator._buffer) < MAXSIZE + 64
    await iterator.aclose()
    await asyncio.wait_for(server.ended.wait(), TIMEOUT)


CHAT_EVENTS = 60_000


@pytest.fixture
async def chat_firehose(aiohttp_server: AiohttpServer) -> tuple[str, FirehoseState]:
    """An OpenAI-style server that writes CHAT_EVENTS text chunks as fast as TCP lets it."""
    state = FirehoseState()
    event = (
        b'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
        b'"delta":{"content":"' + b"x" * 1000 + b'"},"finish_reason":null}]}\n\n'
    )
    role = b'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'

    async def handler(req: web.Request) -> web.StreamResponse:
        await req.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(req)
        try:
            await resp.write(role)
            for _ in range(CHAT_EVENTS):
                await resp.write(event)
                state.written += len(event)
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            state.done = True
        finally:
            state.ended.set()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/v1")), state


@pytest.mark.parametrize("bridge", ["ObservableIterator", "to_async_iterable"])
async def test_a_slow_consumer_of_chat_stream_observable_pauses_the_socket(
    chat_firehose: tuple[str, FirehoseState], bridge: str
) -> None:
    """``ObservableIterator(stream.observable, maxsize=64)`` / ``to_async_iterable(...)``:
    the bound holds by pausing socket reads, not by buffering the whole answer."""
    url, server = chat_firehose
    async with Client(base_url=url, api_key="sk-test-flow-0123456789") as client:
        stream = client.chat(model="m", messages=[{"role": "user", "content": "hi"}])
        if bridge == "ObservableIterator":
            iterator: Any = ObservableIterator(stream.observable, maxsize=64)
            buffered = lambda: len(iterator._buffer)  # noqa: E731
        else:
            iterator = to_async_iterable(stream.observable, maxsize=64)
            buffered = None
        stream.start()
        first = await asyncio.wait_for(iterator.__anext__(), TIMEOUT)
        assert first is not None
        written = await wait_for_plateau(server)
        assert written < CHAT_EVENTS * 1000 // 4, "the server was not held back"
        assert not server.done
        if buffered is not None:
            assert buffered() < 64 + 2 * 256  # maxsize + what a read or two holds
        count = 1
        async with asyncio.timeout(60):
            async for _delta in iterator:
                count += 1
        assert server.done
        assert count >= CHAT_EVENTS
        assert (
            await asyncio.wait_for(stream.completion(), TIMEOUT)
        ).text == "x" * 1000 * CHAT_EVENTS
