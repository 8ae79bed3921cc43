"""EventSource-style reconnection for generic SSE servers (rxgpt.event_source).

A scripted aiohttp server answers each connection with its own behaviour (events with
ids, ``retry:``, a dropped connection, 204, 500, a wrong content type) and records the
``Last-Event-ID`` each request carried and when it arrived. Checked: the id sent is the
last COMMITTED one (an id in a block whose blank line never came is not), ``retry:``
sets the reconnection delay (a behaviour bound: no earlier than asked, not much later),
204 completes, errors fail without reconnecting, ``max_reconnects`` bounds the attempts,
and disposing stops everything. No task or acquired connection is left behind.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from helpers import Harness, harness_fixture

from rxgpt import (
    DecodeError,
    HTTPStatusError,
    ServerSentEvent,
    StreamInterrupted,
    TransportError,
    event_source,
)

TIMEOUT = 5.0
SLACK = 0.5
EPS = 0.005

Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------- server and harness


@dataclass
class Script:
    """Connection ``n`` is answered by ``behaviours[n]`` (the last one repeats)."""

    behaviours: list[Behaviour]
    last_ids: list[str | None] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    closed_at: list[float] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.arrivals)

    @property
    def gaps(self) -> list[float]:
        """From the end of each connection to the arrival of the next request."""
        return [b - a for a, b in zip(self.closed_at, self.arrivals[1:], strict=False)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        self.arrivals.append(loop.time())
        self.last_ids.append(request.headers.get("Last-Event-ID"))
        self.headers.append(dict(request.headers))
        self.bodies.append(await request.read())
        behaviour = self.behaviours[min(len(self.arrivals), len(self.behaviours)) - 1]
        try:
            return await behaviour(request)
        finally:
            self.closed_at.append(loop.time())

    async def wait_requests(self, count: int, within: float = TIMEOUT) -> None:
        async with asyncio.timeout(within):
            while self.requests < count:
                await asyncio.sleep(0.005)


def sse(*blocks: bytes, drop: bool = True, content_type: str = "text/event-stream") -> Behaviour:
    """Send ``blocks`` (raw bytes), then drop the connection or end the body cleanly."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        for block in blocks:
            await response.write(block)
        if drop:  # close the socket without ending the chunked body
            await asyncio.sleep(0.01)
            response.force_close()
            assert request.transport is not None
            request.transport.close()
        else:
            await response.write_eof()
        return response

    return behaviour


def status(code: int, body: bytes = b"", content_type: str = "application/json") -> Behaviour:
    async def behaviour(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, body=body or None, content_type=content_type)

    return behaviour


def forever(*blocks: bytes) -> Behaviour:
    """Send ``blocks``, then keep the connection open until the client goes away."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for block in blocks:
            await response.write(block)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    return behaviour


class ScriptHarness(Harness):
    """The shared harness whose ``serve`` answers /events from a :class:`Script`."""

    async def serve(self, *behaviours: Behaviour) -> tuple[str, Script]:  # type: ignore[override]
        script = Script(list(behaviours))
        app = web.Application()
        app.router.add_route("*", "/events", script.handle)
        server = await self.start(app)
        return str(server.make_url("/events")), script


h = harness_fixture(ScriptHarness, settle_within=1.0)


class Events:
    """An observer collecting events and the terminal."""

    def __init__(self) -> None:
        self.items: list[ServerSentEvent] = []
        self.errors: list[Exception] = []
        self.completed = 0
        self.ended = asyncio.Event()

    def on_next(self, event: ServerSentEvent) -> None:
        self.items.append(event)

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)
        self.ended.set()

    def on_completed(self) -> None:
        self.completed += 1
        self.ended.set()

    @property
    def data(self) -> list[str]:
        return [event.data for event in self.items]

    async def wait(self, within: float = TIMEOUT) -> None:
        await asyncio.wait_for(self.ended.wait(), within)

    async def wait_items(self, count: int, within: float = TIMEOUT) -> None:
        async with asyncio.timeout(within):
            while len(self.items) < count:
                await asyncio.sleep(0.005)


def subscribe(url: str, session: aiohttp.ClientSession, **options: Any) -> tuple[Events, Any]:
    events = Events()
    subscription = event_source(url, session=session, **options).subscribe(
        events.on_next, events.on_error, events.on_completed
    )
    return events, subscription


# --------------------------------------------------------------------------- resuming


async def test_reconnects_after_retry_with_the_last_committed_id(h: Harness) -> None:
    first = sse(
        b"retry: 100\n\n",
        b"id: 1\ndata: a\n\n",
        b"id: 2\ndata: b\n\n",
        b"id: 3\ndata: c\n",  # never terminated: neither event c nor id 3 is committed
    )
    second = sse(b"id: 4\ndata: d\n\n", drop=False)  # a clean end also reconnects
    url, script = await h.serve(first, second, status(204))
    events, _ = subscribe(url, h.session)
    await events.wait()

    assert events.errors == []
    assert events.completed == 1  # 204 ends the stream
    assert events.data == ["a", "b", "d"]
    assert [e.id for e in events.items] == ["1", "2", "4"]
    assert script.last_ids == [None, "2", "4"]
    assert script.requests == 3
    # retry: 100 (from the first connection) applies to both reconnections
    for gap in script.gaps:
        assert 0.1 - EPS <= gap < 0.1 + SLACK, script.gaps
    await h.settled(within=0.2)


async def test_an_id_in_a_block_without_data_is_committed(h: Harness) -> None:
    url, script = await h.serve(
        sse(b"retry: 10\n\n", b"id: 1\ndata: a\n\n", b"id: 9\n\n"), status(204)
    )
    events, _ = subscribe(url, h.session)
    await events.wait()
    assert events.data == ["a"]  # a block without data fires nothing...
    assert script.last_ids == [None, "9"]  # ...but its id is committed at the blank line


async def test_the_initial_last_event_id_is_sent_then_replaced(h: Harness) -> None:
    url, script = await h.serve(sse(b"retry: 10\nid: 43\ndata: x\n\n"), status(204))
    events, _ = subscribe(url, h.session, last_event_id="42")
    await events.wait()
    assert script.last_ids == ["42", "43"]
    assert events.data == ["x"]


async def test_an_empty_id_clears_the_last_event_id(h: Harness) -> None:
    url, script = await h.serve(
        sse(b"retry: 10\n\n", b"id: 5\ndata: x\n\n", b"id\ndata: y\n\n"), status(204)
    )
    events, _ = subscribe(url, h.session)
    await events.wait()
    assert events.data == ["x", "y"]
    assert script.last_ids == [None, None]  # an empty id: the header is not sent at all


async def test_an_id_with_nul_is_ignored(h: Harness) -> None:
    url, script = await h.serve(
        sse(b"retry: 10\n\n", b"id: 7\ndata: x\n\n", b"id: 8\x009\ndata: y\n\n"), status(204)
    )
    events, _ = subscribe(url, h.session)
    await events.wait()
    assert events.data == ["x", "y"]
    assert script.last_ids == [None, "7"]


async def test_retry_ms_applies_until_the_server_sets_one(h: Harness) -> None:
    url, script = await h.serve(
        sse(b"data: x\n\n"),
        sse(b"retry: 50\ndata: y\n\n"),
        sse(b"retry: not-a-number\ndata: z\n\n"),
        status(204),
    )
    events, _ = subscribe(url, h.session, retry_ms=250)
    await events.wait()
    assert events.data == ["x", "y", "z"]
    first, second, third = script.gaps
    assert 0.25 - EPS <= first < 0.25 + SLACK
    assert 0.05 - EPS <= second < 0.05 + SLACK
    assert 0.05 - EPS <= third < 0.05 + SLACK  # an invalid retry: keeps the last valid one


async def test_the_request_body_and_headers_are_resent(h: Harness) -> None:
    url, script = await h.serve(sse(b"retry: 10\nid: 1\ndata: x\n\n"), status(204))
    events, _ = subscribe(
        url,
        h.session,
        method="POST",
        json={"session": "abc"},
        headers={"X-Trace": "t-1"},
    )
    await events.wait()
    assert script.requests == 2
    assert [json.loads(body) for body in script.bodies] == [{"session": "abc"}] * 2
    assert [headers.get("X-Trace") for headers in script.headers] == ["t-1", "t-1"]
    assert all(headers.get("Accept") == "text/event-stream" for headers in script.headers)
    assert all(headers.get("Content-Type") == "application/json" for headers in script.headers)
    assert all("Cache-Control" not in headers for headers in script.headers)


async def test_a_get_asks_for_no_cached_answer(h: Harness) -> None:
    url, script = await h.serve(sse(b"retry: 10\nid: 1\ndata: x\n\n"), status(204))
    events, _ = subscribe(url, h.session)
    await events.wait()
    assert script.requests == 2
    assert [headers.get("Cache-Control") for headers in script.headers] == ["no-cache"] * 2
    assert [headers.get("Last-Event-ID") for headers in script.headers] == [None, "1"]


# --------------------------------------------------------------------------- ending


async def test_204_completes_without_events(h: Harness) -> None:
    url, script = await h.serve(status(204))
    events, _ = subscribe(url, h.session)
    await events.wait()
    assert events.completed == 1 and events.items == [] and events.errors == []
    await asyncio.sleep(0.1)
    assert script.requests == 1


async def test_a_500_fails_without_reconnecting(h: Harness) -> None:
    body = json.dumps({"error": {"message": "boom", "type": "server_error"}}).encode()
    url, script = await h.serve(sse(b"retry: 10\nid: 1\ndata: x\n\n"), status(500, body))
    events, _ = subscribe(url, h.session)
    await events.wait()
    assert events.data == ["x"]
    assert len(events.errors) == 1
    error = events.errors[0]
    assert isinstance(error, HTTPStatusError)
    assert error.status == 500 and error.error_message == "boom"
    await asyncio.sleep(0.15)
    assert script.requests == 2  # no third attempt after the 500
    await h.settled(within=0.2)


@pytest.mark.parametrize("content_type", ["application/json", "text/html", "text/plain"])
async def test_a_wrong_content_type_fails_without_reconnecting(
    h: Harness, content_type: str
) -> None:
    url, script = await h.serve(sse(b"data: x\n\n", content_type=content_type, drop=False))
    events, _ = subscribe(url, h.session, retry_ms=10)
    await events.wait()
    assert events.items == []
    assert len(events.errors) == 1
    assert isinstance(events.errors[0], DecodeError)
    assert content_type in str(events.errors[0])
    await asyncio.sleep(0.1)
    assert script.requests == 1


async def test_event_stream_with_a_charset_is_accepted(h: Harness) -> None:
    url, _ = await h.serve(
        sse(b"retry: 10\ndata: x\n\n", content_type="text/event-stream; charset=utf-8"),
        status(204),
    )
    events, _ = subscribe(url, h.session)
    await events.wait()
    assert events.data == ["x"] and events.completed == 1


@pytest.mark.parametrize("max_reconnects", [0, 2])
async def test_max_reconnects_bounds_reconnections_without_events(
    h: Harness, max_reconnects: int
) -> None:
    url, script = await h.serve(sse())  # every connection drops at once, without an event
    events, _ = subscribe(url, h.session, retry_ms=20, max_reconnects=max_reconnects)
    await events.wait()
    assert script.requests == max_reconnects + 1
    assert events.completed == 0 and len(events.errors) == 1
    assert isinstance(events.errors[0], TransportError)
    await asyncio.sleep(0.1)
    assert script.requests == max_reconnects + 1
    await h.settled(within=0.2)


async def test_clean_empty_bodies_count_as_failed_reconnections(h: Harness) -> None:
    url, script = await h.serve(sse(drop=False))
    events, _ = subscribe(url, h.session, retry_ms=10, max_reconnects=1)
    await events.wait()
    assert script.requests == 2
    assert len(events.errors) == 1 and isinstance(events.errors[0], TransportError)


async def test_a_connection_with_events_resets_the_reconnection_count(h: Harness) -> None:
    """max_reconnects=1: empty, events, empty, events... never gives up; then 204."""
    empty = sse()
    url, script = await h.serve(
        empty,
        sse(b"data: 1\n\n"),
        empty,
        sse(b"data: 2\n\n"),
        empty,
        status(204),
    )
    events, _ = subscribe(url, h.session, retry_ms=10, max_reconnects=1)
    await events.wait()
    assert events.errors == []
    assert events.data == ["1", "2"]
    assert script.requests == 6


async def test_dropped_connections_are_reported_as_interruptions(h: Harness) -> None:
    url, _ = await h.serve(sse(b"data: partial-event-without-end"))
    events, _ = subscribe(url, h.session, retry_ms=10, max_reconnects=0)
    await events.wait()
    assert events.items == []
    assert isinstance(events.errors[0], StreamInterrupted)


# --------------------------------------------------------------------------- disposing


async def test_disposing_while_connected_closes_the_response_and_stops(h: Harness) -> None:
    url, script = await h.serve(sse(b"retry: 10\ndata: x\n\n"), forever(b"data: y\n\n"))
    events, subscription = subscribe(url, h.session)
    await events.wait_items(2)
    subscription.dispose()
    await h.settled(within=0.2)
    await asyncio.sleep(0.1)
    assert script.requests == 2
    assert len(script.closed_at) == 2  # the server saw the second connection end
    assert events.errors == [] and events.completed == 0
    assert events.data == ["x", "y"]


async def test_disposing_during_the_reconnection_wait_sends_nothing_more(h: Harness) -> None:
    url, script = await h.serve(sse(b"retry: 300\ndata: x\n\n"))
    events, subscription = subscribe(url, h.session)
    await events.wait_items(1)
    await asyncio.sleep(0.05)  # the connection dropped; the next one waits 0.3 s
    subscription.dispose()
    await h.settled(within=0.1)
    await asyncio.sleep(0.4)
    assert script.requests == 1


async def test_max_event_bytes_fails_the_stream_without_reconnecting(h: Harness) -> None:
    url, script = await h.serve(forever(b"data: " + b"x" * 200_000))
    events, _ = subscribe(url, h.session, max_event_bytes=64 * 1024, retry_ms=10)
    await events.wait()
    assert len(events.errors) == 1
    assert type(events.errors[0]).__name__ == "EventTooLarge"
    await h.settled(within=0.3)
    await asyncio.sleep(0.05)
    assert script.requests == 1


async def test_a_consumer_that_raises_ends_the_stream_without_reconnecting(h: Harness) -> None:
    """The consumer's own exception reaches on_error; it is no connection error to retry."""
    url, script = await h.serve(sse(b"id: 1\ndata: a\n\n", b"id: 2\ndata: b\n\n"), status(204))
    errors: list[Exception] = []
    ended = asyncio.Event()

    class Boom(Exception):
        pass

    def on_next(event: Any) -> None:
        raise Boom(event.data)

    def on_error(error: Exception) -> None:
        errors.append(error)
        ended.set()

    event_source(url, session=h.session, retry_ms=10).subscribe(on_next, on_error, ended.set)
    await asyncio.wait_for(ended.wait(), TIMEOUT)
    await asyncio.sleep(0.1)  # a reconnection would come within retry_ms
    assert len(errors) == 1 and isinstance(errors[0], Boom) and str(errors[0]) == "a"
    assert script.requests == 1


async def test_event_source_bounds_an_endless_line_by_default(h: Harness) -> None:
    """The same 16 MiB event bound as Client: an endless line fails, it never grows."""

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        piece = b"data: " + b"x" * (1024 * 1024)
        try:
            for _ in range(40):  # 40 MiB at most, in one line
                await response.write(piece)
                piece = b"x" * (1024 * 1024)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    app = web.Application()
    app.router.add_get("/", endless)
    server = await h.start(app)
    events, _ = subscribe(str(server.make_url("/")), h.session, retry_ms=10)
    await events.wait(within=20)
    assert len(events.errors) == 1
    assert type(events.errors[0]).__name__ == "EventTooLarge"
    assert events.errors[0].limit == 16 * 1024 * 1024  # type: ignore[attr-defined]
