"""Tests of rxgpt.Fanout: one source subscription, many subscribers, explicit late policy.

Synchronous sources (``reactivex.from_iterable``, ``reactivex.create``, a ``Subject``) cover
the semantics; the real aiohttp transport against a local server covers the one-request
guarantee and the disconnect on ``dispose()``.
"""

from __future__ import annotations

import asyncio
import logging
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
from reactivex.subject import Subject

from rxgpt import Fanout, LateSubscriberError, request

TIMEOUT = 5


# --------------------------------------------------------------------------- helpers


class Recorder:
    """A subscriber that records everything it receives."""

    def __init__(self, fanout: Fanout[Any] | None = None) -> None:
        self.items: list[Any] = []
        self.errors: list[Exception] = []
        self.completed = 0
        self.subscription: abc.DisposableBase | None = None
        if fanout is not None:
            self.subscription = fanout.subscribe(self.on_next, self.on_error, self.on_completed)

    def on_next(self, item: Any) -> None:
        self.items.append(item)

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)

    def on_completed(self) -> None:
        self.completed += 1

    @property
    def terminals(self) -> int:
        return len(self.errors) + self.completed


class Boom(Exception):
    pass


class Raiser(Recorder):
    """Raises on the item ``at`` (after recording it)."""

    def __init__(self, fanout: Fanout[Any], at: Any) -> None:
        self.at = at
        super().__init__(fanout)

    def on_next(self, item: Any) -> None:
        super().on_next(item)
        if item == self.at:
            raise Boom(f"subscriber failed on {item!r}")


def counting_source(items: list[Any]) -> tuple[Observable[Any], dict[str, int]]:
    """A synchronous cold source that counts its subscriptions and disposals."""
    counts = {"subscribed": 0, "disposed": 0}

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        counts["subscribed"] += 1
        for item in items:
            observer.on_next(item)
        observer.on_completed()

        def dispose() -> None:
            counts["disposed"] += 1

        return Disposable(dispose)

    return reactivex.create(subscribe), counts


def open_source() -> tuple[Observable[Any], dict[str, Any]]:
    """A source that never ends by itself; its observer is exposed to push by hand."""
    state: dict[str, Any] = {"subscribed": 0, "disposed": 0, "observer": None}

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        state["subscribed"] += 1
        state["observer"] = observer

        def dispose() -> None:
            state["disposed"] += 1

        return Disposable(dispose)

    return reactivex.create(subscribe), state


ITEMS = list(range(50))


# -------------------------------------------------------------------- every subscriber, every item


def test_subscribers_before_connect_get_every_item_in_order() -> None:
    fanout: Fanout[int] = Fanout(reactivex.from_iterable(ITEMS))
    subscribers = [Recorder(fanout) for _ in range(4)]
    assert fanout.subscriber_count == 4
    assert all(s.items == [] for s in subscribers)  # nothing before connect

    fanout.connect()

    for s in subscribers:
        assert s.items == ITEMS
        assert s.completed == 1 and s.errors == []
    assert fanout.subscriber_errors == []
    assert fanout.subscriber_count == 0


def test_source_is_subscribed_exactly_once() -> None:
    source, counts = counting_source(ITEMS)
    fanout: Fanout[int] = Fanout(source, replay="all")
    subscribers = [Recorder(fanout) for _ in range(3)]
    assert counts["subscribed"] == 0  # subscribing does not connect

    connection = fanout.connect()
    assert fanout.connect() is connection  # idempotent
    late = Recorder(fanout)
    fanout.pipe(ops.map(lambda x: x * 2)).subscribe(lambda _: None)

    assert counts["subscribed"] == 1
    for s in [*subscribers, late]:
        assert s.items == ITEMS and s.completed == 1


def test_observable_view_and_pipe() -> None:
    fanout: Fanout[int] = Fanout(reactivex.from_iterable([1, 2, 3]))
    doubled: list[int] = []
    plain: list[int] = []
    fanout.pipe(ops.map(lambda x: x * 10)).subscribe(doubled.append)
    fanout.observable.subscribe(plain.append)
    fanout.connect()
    assert doubled == [10, 20, 30]
    assert plain == [1, 2, 3]


def test_invalid_replay_policy() -> None:
    for bad in (-1, "some", 1.5):
        with pytest.raises(ValueError):
            Fanout(reactivex.empty(), replay=bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- late subscribers


def test_late_subscriber_without_replay_is_an_error() -> None:
    subject: Subject[int] = Subject()
    fanout: Fanout[int] = Fanout(subject)
    early = Recorder(fanout)
    fanout.connect()
    subject.on_next(1)

    with pytest.raises(LateSubscriberError):
        fanout.subscribe(lambda _: None)
    # with an error handler, the error is delivered to it instead
    errors: list[Exception] = []
    fanout.subscribe(lambda _: None, errors.append)
    assert len(errors) == 1 and isinstance(errors[0], LateSubscriberError)

    subject.on_next(2)
    subject.on_completed()
    assert early.items == [1, 2] and early.completed == 1


def test_late_subscriber_without_replay_after_completion_is_an_error() -> None:
    fanout: Fanout[int] = Fanout(reactivex.from_iterable([1, 2]))
    fanout.connect()
    with pytest.raises(LateSubscriberError):
        fanout.subscribe(lambda _: None)


def test_replay_n_gives_the_last_n_then_live() -> None:
    subject: Subject[int] = Subject()
    fanout: Fanout[int] = Fanout(subject, replay=2)
    early = Recorder(fanout)
    fanout.connect()
    for i in range(1, 6):
        subject.on_next(i)

    late = Recorder(fanout)
    assert late.items == [4, 5]
    subject.on_next(6)
    subject.on_completed()

    assert late.items == [4, 5, 6] and late.completed == 1
    assert early.items == [1, 2, 3, 4, 5, 6] and early.completed == 1

    after_end = Recorder(fanout)
    assert after_end.items == [5, 6] and after_end.completed == 1


def test_replay_all_gives_everything_also_after_completion() -> None:
    subject: Subject[int] = Subject()
    fanout: Fanout[int] = Fanout(subject, replay="all")
    fanout.connect()
    subject.on_next(1)
    subject.on_next(2)
    middle = Recorder(fanout)
    assert middle.items == [1, 2] and middle.terminals == 0
    subject.on_next(3)
    subject.on_completed()

    late = Recorder(fanout)
    assert late.items == [1, 2, 3]
    assert late.completed == 1 and late.errors == []
    assert middle.items == [1, 2, 3] and middle.completed == 1


def test_replay_all_after_error_gives_items_then_the_error() -> None:
    error = ValueError("source failed")
    fanout: Fanout[int] = Fanout(
        reactivex.concat(reactivex.from_iterable([1, 2]), reactivex.throw(error)), replay="all"
    )
    fanout.connect()
    late = Recorder(fanout)
    assert late.items == [1, 2]
    assert late.errors == [error] and late.completed == 0


# ------------------------------------------------------------------------ a subscriber that raises


@pytest.mark.parametrize("kind", ["from_iterable", "subject"])
def test_raising_subscriber_is_detached_and_reported(kind: str) -> None:
    reported: list[tuple[BaseException, Any]] = []
    subject: Subject[int] = Subject()
    source = reactivex.from_iterable(ITEMS) if kind == "from_iterable" else subject
    fanout: Fanout[int] = Fanout(
        source, on_subscriber_error=lambda exc, obs: reported.append((exc, obs))
    )
    before = Recorder(fanout)
    bad = Raiser(fanout, at=10)
    after = Recorder(fanout)

    fanout.connect()
    if kind == "subject":
        for item in ITEMS:
            subject.on_next(item)  # the raising subscriber must not raise into the source
        subject.on_completed()

    # the others, before AND after it, got every item (including the one it failed on)
    assert before.items == ITEMS and before.completed == 1 and before.errors == []
    assert after.items == ITEMS and after.completed == 1 and after.errors == []
    # it was detached: nothing after the failing item, no terminal
    assert bad.items == list(range(11))
    assert bad.terminals == 0
    # and reported, once
    assert len(reported) == 1
    assert isinstance(reported[0][0], Boom)
    assert fanout.subscriber_errors == [reported[0][0]]


def test_raising_subscriber_is_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    fanout: Fanout[int] = Fanout(reactivex.from_iterable([1, 2, 3]))
    good = Recorder(fanout)
    Raiser(fanout, at=1)
    with caplog.at_level(logging.ERROR, logger="rxgpt"):
        fanout.connect()
    assert good.items == [1, 2, 3] and good.completed == 1
    assert len(fanout.subscriber_errors) == 1
    assert any("subscriber" in r.getMessage() for r in caplog.records)


def test_single_raising_subscriber_does_not_stop_the_source() -> None:
    subject: Subject[int] = Subject()
    fanout: Fanout[int] = Fanout(subject, replay="all", on_subscriber_error=lambda e, o: None)
    Raiser(fanout, at=1)
    fanout.connect()
    subject.on_next(1)  # must not raise here
    subject.on_next(2)
    subject.on_completed()
    late = Recorder(fanout)
    assert late.items == [1, 2] and late.completed == 1
    assert len(fanout.subscriber_errors) == 1


def test_broken_reporter_does_not_break_the_stream() -> None:
    def reporter(error: BaseException, observer: Any) -> None:
        raise RuntimeError("the reporter is broken too")

    fanout: Fanout[int] = Fanout(reactivex.from_iterable([1, 2, 3]), on_subscriber_error=reporter)
    Raiser(fanout, at=2)
    good = Recorder(fanout)
    fanout.connect()
    assert good.items == [1, 2, 3] and good.completed == 1


def test_subscriber_raising_in_on_completed_is_reported() -> None:
    reported: list[BaseException] = []
    fanout: Fanout[int] = Fanout(
        reactivex.from_iterable([1]), on_subscriber_error=lambda e, o: reported.append(e)
    )
    first = Recorder(fanout)

    def bad_completed() -> None:
        raise Boom("in on_completed")

    fanout.subscribe(lambda _: None, None, bad_completed)
    last = Recorder(fanout)
    fanout.connect()
    assert first.completed == 1 and last.completed == 1
    assert len(reported) == 1 and isinstance(reported[0], Boom)


def test_late_replay_subscriber_that_raises_is_reported() -> None:
    """A subscriber failing on a replayed item is detached and reported like a live one."""
    reported: list[BaseException] = []
    subject: Subject[int] = Subject()
    fanout: Fanout[int] = Fanout(
        subject, replay="all", on_subscriber_error=lambda e, o: reported.append(e)
    )
    fanout.connect()
    subject.on_next(1)
    subject.on_next(2)
    bad = Raiser(fanout, at=1)  # fails during the replay
    subject.on_next(3)
    subject.on_completed()
    assert bad.items == [1]
    assert len(reported) == 1 and isinstance(reported[0], Boom)
    assert fanout.subscriber_errors == reported
    # its own exception is not handed back to it as if the stream had failed
    assert bad.errors == []


def test_late_replay_subscriber_without_on_error_that_raises_does_not_raise() -> None:
    """subscribe() must not raise the subscriber's own exception at the caller."""
    subject: Subject[int] = Subject()
    fanout: Fanout[int] = Fanout(subject, replay="all", on_subscriber_error=lambda e, o: None)
    fanout.connect()
    subject.on_next(1)

    def bad(item: int) -> None:
        raise Boom("replayed item")

    fanout.subscribe(bad)  # raises Boom out of subscribe() today
    assert len(fanout.subscriber_errors) == 1


# --------------------------------------------------------------------------- errors and disposal


def test_error_reaches_every_subscriber() -> None:
    error = RuntimeError("stream failed")
    fanout: Fanout[int] = Fanout(
        reactivex.concat(reactivex.from_iterable([1, 2, 3]), reactivex.throw(error))
    )
    subscribers = [Recorder(fanout) for _ in range(3)]
    fanout.connect()
    for s in subscribers:
        assert s.items == [1, 2, 3]
        assert s.errors == [error] and s.completed == 0
    assert fanout.subscriber_errors == []


def test_error_reaches_subscribers_after_one_that_raises_in_on_error() -> None:
    error = RuntimeError("stream failed")
    reported: list[BaseException] = []
    fanout: Fanout[int] = Fanout(
        reactivex.throw(error), on_subscriber_error=lambda e, o: reported.append(e)
    )
    first = Recorder(fanout)

    def bad_on_error(exc: Exception) -> None:
        raise Boom("in on_error")

    fanout.subscribe(lambda _: None, bad_on_error)
    last = Recorder(fanout)
    fanout.connect()
    assert first.errors == [error] and last.errors == [error]
    assert len(reported) == 1 and isinstance(reported[0], Boom)


def test_dispose_stops_the_source_and_detaches_everyone() -> None:
    source, state = open_source()
    fanout: Fanout[int] = Fanout(source)
    a, b = Recorder(fanout), Recorder(fanout)
    fanout.connect()
    state["observer"].on_next(1)
    assert a.items == b.items == [1]

    fanout.dispose()
    assert state["disposed"] == 1
    assert fanout.subscriber_count == 0
    state["observer"].on_next(2)  # a misbehaving source pushing after dispose reaches nobody
    assert a.items == b.items == [1]


def test_one_subscriber_detaching_does_not_stop_the_source() -> None:
    source, state = open_source()
    fanout: Fanout[int] = Fanout(source)
    a, b = Recorder(fanout), Recorder(fanout)
    fanout.connect()
    state["observer"].on_next(1)
    assert a.subscription is not None
    a.subscription.dispose()
    assert state["disposed"] == 0
    state["observer"].on_next(2)
    state["observer"].on_completed()
    assert a.items == [1] and a.terminals == 0
    assert b.items == [1, 2] and b.completed == 1
    assert state["subscribed"] == 1


# ------------------------------------------------------------------------- with the real transport


@dataclass
class ServerState:
    requests: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    write_failed: bool = False


BODY = b"".join(b'data: {"n":%d}\n\n' % i for i in range(300)) + b"data: [DONE]\n\n"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def server(aiohttp_server: AiohttpServer) -> tuple[str, ServerState]:
    state = ServerState()

    async def finite(req: web.Request) -> web.StreamResponse:
        state.requests += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        for i in range(0, len(BODY), 500):
            await resp.write(BODY[i : i + 500])
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    async def endless(req: web.Request) -> web.StreamResponse:
        state.requests += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        try:
            while True:
                await resp.write(b"data: tick\n\n")
                await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            state.cancelled = True
            raise
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            state.write_failed = True
        finally:
            state.ended.set()
        return resp

    app = web.Application()
    app.router.add_get("/finite", finite)
    app.router.add_get("/endless", endless)
    running = await aiohttp_server(app)
    return str(running.make_url("/")), state


async def test_transport_fanout_every_subscriber_gets_every_chunk_from_one_request(
    server: tuple[str, ServerState], session: aiohttp.ClientSession
) -> None:
    base, state = server
    fanout: Fanout[bytes] = Fanout(request(base + "finite", method="GET", session=session))
    subscribers = [Recorder(fanout) for _ in range(3)]
    done = asyncio.Event()
    fanout.subscribe(None, lambda e: done.set(), done.set)

    fanout.connect()
    await asyncio.wait_for(done.wait(), TIMEOUT)

    assert state.requests == 1
    for s in subscribers:
        assert s.errors == [] and s.completed == 1
        assert s.items == subscribers[0].items
        assert b"".join(s.items) == BODY


async def test_transport_fanout_with_a_raising_subscriber(
    server: tuple[str, ServerState], session: aiohttp.ClientSession
) -> None:
    base, state = server
    fanout: Fanout[bytes] = Fanout(
        request(base + "finite", method="GET", session=session),
        on_subscriber_error=lambda e, o: None,
    )
    first = Recorder(fanout)

    def bad(chunk: bytes) -> None:
        raise Boom("bad subscriber")

    fanout.subscribe(bad)
    last = Recorder(fanout)
    done = asyncio.Event()
    fanout.subscribe(None, lambda e: done.set(), done.set)
    fanout.connect()
    await asyncio.wait_for(done.wait(), TIMEOUT)

    assert state.requests == 1
    assert b"".join(first.items) == BODY and first.completed == 1
    assert b"".join(last.items) == BODY and last.completed == 1
    assert len(fanout.subscriber_errors) == 1


async def test_transport_fanout_dispose_closes_the_connection(
    server: tuple[str, ServerState], session: aiohttp.ClientSession
) -> None:
    base, state = server
    fanout: Fanout[bytes] = Fanout(request(base + "endless", method="GET", session=session))
    got = asyncio.Event()
    a = Recorder(fanout)
    fanout.subscribe(lambda _: got.set())
    fanout.connect()
    await asyncio.wait_for(got.wait(), TIMEOUT)
    assert not state.ended.is_set()

    fanout.dispose()
    await asyncio.wait_for(state.ended.wait(), TIMEOUT)
    assert state.cancelled or state.write_failed
    received = len(a.items)
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert len(a.items) == received
    assert state.requests == 1
