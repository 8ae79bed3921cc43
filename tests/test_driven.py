"""``await stream.completion()`` runs the stream's first request in the awaiting task.

No task of its own and no event to wake the awaiter (see ``ChatStream._start_driven``), but
every stop is still the stream's: a deadline or a disposal ends the request without leaving
the awaiting task cancelled; a cancel of that task still cancels the stream; a retry's later
attempts run on their own; a drain after the end is not the awaiter's to wait for. Real
loopback servers; every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import reactivex
from aiohttp import web
from helpers import DONE, TIMEOUT, Harness, chat, chunk, full_stream, harness_fixture, prepared
from reactivex import Observable

import rxgpt
from rxgpt import (
    ChatStream,
    Client,
    Delta,
    FlowControl,
    Retry,
    StreamCancelled,
    StreamTimeout,
    TextDelta,
    Timeouts,
)
from rxgpt._resilience import Progress

h = harness_fixture()

WORDS = ["Hello", " there"]
TEXT = "".join(WORDS)
FULL = full_stream(WORDS)


async def full(request: web.Request) -> web.StreamResponse:
    return await _answer(request, FULL)


async def stalls(request: web.Request) -> web.StreamResponse:
    """The first text, then silence for longer than any test waits."""
    response = await prepared(request)
    await response.write(chunk({"role": "assistant", "content": "Hel"}))
    await asyncio.sleep(TIMEOUT)
    return response


async def test_the_request_runs_in_the_task_that_awaits_the_result(h: Harness) -> None:
    url, _ = await h.serve(full)
    stream = chat(h.client(url))
    tasks: set[asyncio.Task[object] | None] = set()

    def on_delta(delta: Delta) -> None:
        tasks.add(asyncio.current_task())

    stream.subscribe(on_delta)
    result = await asyncio.wait_for(_completion_and_task(stream), TIMEOUT)
    completion, awaiting = result
    assert completion.text == TEXT
    assert tasks == {awaiting}


async def test_a_started_stream_runs_on_its_own(h: Harness) -> None:
    url, _ = await h.serve(full)
    stream = chat(h.client(url))
    tasks: set[asyncio.Task[object] | None] = set()
    stream.subscribe(lambda delta: tasks.add(asyncio.current_task()))
    stream.start()  # (started before it is awaited: its request has a task of its own)
    completion, awaiting = await asyncio.wait_for(_completion_and_task(stream), TIMEOUT)
    assert completion.text == TEXT
    assert len(tasks) == 1 and awaiting not in tasks


async def test_a_deadline_leaves_the_awaiting_task_uncancelled(h: Harness) -> None:
    url, _ = await h.serve(stalls)
    stream = chat(h.client(url, timeouts=Timeouts(idle=0.2)))
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(StreamTimeout) as info:
            await stream.completion()
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        await asyncio.sleep(0.01)  # no cancel left over for the task's next wait
    assert info.value.phase == "idle" and info.value.partial.text == "Hel"


async def test_cancelling_the_awaiting_task_cancels_the_stream(h: Harness) -> None:
    url, seen = await h.serve(stalls)
    stream = chat(h.client(url))
    arrived = asyncio.Event()
    stream.subscribe(lambda delta: arrived.set() if isinstance(delta, TextDelta) else None)
    waiting = asyncio.get_running_loop().create_task(stream.completion())
    async with asyncio.timeout(TIMEOUT):
        await arrived.wait()  # the client has the first text
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await seen.wait_ended(1, within=TIMEOUT)
    assert isinstance(stream._error, StreamCancelled) and stream.partial.text == "Hel"
    assert seen.cancelled == 1  # the server saw the request go away


async def test_a_timeout_of_the_callers_own_cancels_the_stream_and_leaves_no_cancel(
    h: Harness,
) -> None:
    url, seen = await h.serve(stalls)
    stream = chat(h.client(url))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):  # the caller's own deadline, around the driven run
            await stream.completion()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # no cancel left over
    assert isinstance(stream._error, StreamCancelled) and stream.partial.text == "Hel"
    await seen.wait_ended(1, within=TIMEOUT)


async def test_a_source_of_two_requests_runs_them_side_by_side(h: Harness) -> None:
    # A ChatStream of your own whose source merges two requests: both are handed to the
    # awaiting task; they must still run at once (the first answers only once the second
    # has arrived).
    second_arrived = asyncio.Event()

    async def first(request: web.Request) -> web.StreamResponse:
        async with asyncio.timeout(TIMEOUT / 2):
            await second_arrived.wait()
        return await _answer(request, FULL)

    async def second(request: web.Request) -> web.StreamResponse:
        second_arrived.set()
        return await _answer(request, b"")

    url_first, _ = await h.serve(first)
    url_second, _ = await h.serve(second)

    def make_source(flow: FlowControl, progress: Progress) -> Observable[bytes]:
        return reactivex.merge(
            *(
                rxgpt.request(f"{url}/chat/completions", json={}, session=h.session, flow=flow)
                for url in (url_first, url_second)
            )
        )

    stream = ChatStream(make_source)
    completion = await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert completion.text == TEXT


async def test_a_retry_after_a_driven_attempt(h: Harness) -> None:
    answers = [b"", FULL]  # the first attempt ends before any content: retried

    async def handler(request: web.Request) -> web.StreamResponse:
        return await _answer(request, answers.pop(0))

    url, seen = await h.serve(handler)
    stream = chat(h.client(url, retry=Retry(attempts=2, backoff=0.01)))
    completion = await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert completion.text == TEXT and len(seen.arrivals) == 2


async def test_a_stream_waiting_for_the_pool_is_cancelled_with_its_task(h: Harness) -> None:
    release = asyncio.Event()
    url, _ = await h.serve(held_until(release))
    async with Client(url, "k", pool_limit=1, retry=Retry(attempts=1)) as client:
        first = chat(client)
        first.start()
        waiting = asyncio.get_running_loop().create_task(chat(client).completion())
        async with asyncio.timeout(TIMEOUT):
            while not (client._slots and client._slots.waiters):
                await asyncio.sleep(0.005)
            waiting.cancel()  # queued behind `first`, driven by its task
            with pytest.raises(asyncio.CancelledError):
                await waiting
            release.set()
            assert await first.text() == "a"
            await _slot_back(client)  # (given back as `first`'s transfer ends)
        assert client._slots.free == 1 and not client._slots.waiters


async def test_the_total_deadline_while_waiting_for_the_pool(h: Harness) -> None:
    release = asyncio.Event()
    url, _ = await h.serve(held_until(release))
    timeouts = Timeouts(total=0.2)
    async with Client(url, "k", pool_limit=1, retry=Retry(attempts=1)) as client:
        first = chat(client)
        first.start()
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(StreamTimeout) as info:
                await chat(client, timeouts=timeouts).completion()
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0
            await asyncio.sleep(0.01)  # no cancel left over
            release.set()
            assert await first.text() == "a"
            await _slot_back(client)
        assert info.value.phase == "total"
        assert client._slots is not None and client._slots.free == 1


async def _slot_back(client: Client) -> None:
    """Wait (within the caller's deadline) until the client's one pool slot is free again."""
    while client._slots is not None and client._slots.free != 1:
        await asyncio.sleep(0)


def held_until(release: asyncio.Event) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler that holds its answer (and its connection) until ``release`` is set."""

    async def held(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        await response.write(chunk({"role": "assistant", "content": "a"}))
        await release.wait()
        await response.write(chunk({}, finish="stop") + DONE)
        return response

    return held


async def _completion_and_task(stream: object) -> tuple[object, asyncio.Task[object] | None]:
    completion = await stream.completion()  # type: ignore[attr-defined]
    return completion, asyncio.current_task()


async def _answer(request: web.Request, body: bytes) -> web.StreamResponse:
    response = await prepared(request)
    if body:
        await response.write(body)
    return response


async def test_a_drain_cut_short_by_the_loops_end_closes_its_connection(h: Harness) -> None:
    """The end was seen before the body's end came, so the connection drains in a task of
    its own; when that task is cancelled (``asyncio.run`` ending, a loop shutting down), the
    connection is closed, not left for the garbage collector to warn about."""
    import gc
    import warnings

    from rxgpt import _transport

    async def late_end(request: web.Request) -> web.StreamResponse:
        response = await _answer(request, FULL)  # [DONE] now; the body's end much later
        await asyncio.sleep(3 * TIMEOUT)  # (past the settling bound below)
        return response

    url, _ = await h.serve(late_end)
    result = await asyncio.wait_for(chat(h.client(url)).completion(), TIMEOUT)
    assert result.text == TEXT
    drains = list(_transport._DRAINS)
    assert len(drains) == 1  # the rest of the body drains on its own
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        drains[0].cancel()
        await asyncio.wait({drains[0]}, timeout=TIMEOUT)
        del drains
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
    await h.settled(TIMEOUT)  # no connection left acquired: it was closed
