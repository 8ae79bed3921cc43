"""Tests of the transport's pushed reads: while a body flows, aiohttp hands each read to the
observer from ``data_received`` (no wake of the transfer's task per read); the task reads
again itself whenever the consumer pauses, sees the end or raises.

Real aiohttp servers on 127.0.0.1; the servers space their writes so that the reads after
the first arrive while the transfer is waiting, which is when reads are pushed.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from helpers import TIMEOUT, Harness, harness_fixture, prepared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rxgpt
from rxgpt import FlowControl, StreamInterrupted, request
from rxgpt._transport import _PUSHED

h = harness_fixture()

CHAT = "/chat/completions"
GAP = 0.01  # between a server's writes: each lands while the transfer waits


def spaced(parts: list[bytes], *, gap: float = GAP, then: str = "end") -> Any:
    """A handler writing ``parts`` ``gap`` seconds apart, then ending the body (``then``
    "end"), or breaking the connection ("break")."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        for part in parts:
            await response.write(part)
            await asyncio.sleep(gap)
        if then == "break":
            assert request.transport is not None
            request.transport.abort()
            return response
        await response.write_eof()
        return response

    return handler


class Sink:
    """An observer of a request: the chunks, the task each came in, its end."""

    def __init__(self, on_chunk: Callable[[Sink, bytes], None] | None = None) -> None:
        self.chunks: list[bytes] = []
        self.tasks: list[asyncio.Task[Any] | None] = []
        self.done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.on_chunk = on_chunk
        self.disposable: Any = None

    def on_next(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.tasks.append(asyncio.current_task())
        if self.on_chunk is not None:
            self.on_chunk(self, chunk)

    def on_error(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_result(error)

    def on_completed(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def subscribe(self, source: Any) -> Sink:
        self.disposable = source.subscribe(self.on_next, self.on_error, self.on_completed)
        return self

    async def end(self) -> BaseException | None:
        return await asyncio.wait_for(self.done, TIMEOUT)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


PARTS = [b"data: %d\n\n" % i for i in range(8)]


async def test_a_flowing_bodys_reads_are_delivered_outside_the_task(h: Harness) -> None:
    url, _ = await h.serve(spaced(PARTS))
    sink = Sink().subscribe(request(url + CHAT, session=h.session))
    assert await sink.end() is None
    assert sink.body == b"".join(PARTS)
    assert sink.tasks[0] is not None  # the first read: the task's own
    assert len(sink.tasks) > 2 and all(task is None for task in sink.tasks[2:])
    assert not _PUSHED  # nothing left registered


async def test_many_small_http_chunks_do_not_stall_a_pushed_body(h: Harness) -> None:
    """aiohttp counts HTTP chunk boundaries for ``iter_chunks`` and pauses the socket past
    ``read_bufsize // 16`` of them unread: the pushed reads, which aiohttp never sees read,
    must not count as unread."""
    count = 12_000  # (the session's default read_bufsize, 64 KiB: a pause past 4,096)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        await response.write(b"data: first\n\n")
        await asyncio.sleep(GAP)
        for _ in range(count):
            await response.write(b"x")  # one HTTP chunk each
        await response.write_eof()
        return response

    url, _ = await h.serve(handler)
    sink = Sink().subscribe(request(url + CHAT, session=h.session))
    assert await sink.end() is None
    assert sink.body == b"data: first\n\n" + b"x" * count


async def test_a_gzip_body_is_pushed_whole(h: Harness) -> None:
    import zlib

    compressor = zlib.compressobj(wbits=31)
    body = b"".join(PARTS) * 50
    pieces = [compressor.compress(body[i : i + 100]) for i in range(0, len(body), 100)]
    pieces.append(compressor.flush())

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
        )
        await response.prepare(request)
        for piece in pieces:
            if piece:
                await response.write(piece)
                await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    url, _ = await h.serve(handler)
    sink = Sink().subscribe(request(url + CHAT, session=h.session))
    assert await sink.end() is None
    assert sink.body == body


async def test_a_consumer_that_raises_on_a_pushed_read_ends_the_stream_with_its_error(
    h: Harness,
) -> None:
    url, seen = await h.serve(spaced(PARTS * 4))
    boom = ValueError("the consumer broke")

    def raise_at_third(sink: Sink, chunk: bytes) -> None:
        if len(sink.chunks) == 3:
            raise boom

    sink = Sink(raise_at_third).subscribe(request(url + CHAT, session=h.session))
    assert await sink.end() is boom
    assert sink.tasks[2] is None  # (it raised in data_received)
    assert len(sink.chunks) == 3  # nothing delivered after it
    await seen.wait_ended()  # the connection was closed: the server's handler ended early
    assert seen.cancelled == 1
    assert not _PUSHED


async def test_an_abort_on_a_pushed_read_closes_the_connection(h: Harness) -> None:
    url, seen = await h.serve(spaced(PARTS * 4))
    flow = FlowControl()

    def abort_at_third(sink: Sink, chunk: bytes) -> None:
        if len(sink.chunks) == 3:
            flow.abort()
            sink.disposable.dispose()

    sink = Sink(abort_at_third).subscribe(request(url + CHAT, session=h.session, flow=flow))
    await seen.wait_ended()
    assert seen.cancelled == 1  # closed, not drained
    assert len(sink.chunks) == 3 and not sink.done.done()  # disposed: no terminal
    await h.settled()
    assert h.pooled == 0 and not _PUSHED


async def test_the_end_seen_on_a_pushed_read_drains_and_reuses_the_connection(
    h: Harness,
) -> None:
    url, seen = await h.serve(spaced(PARTS))

    def stop_at_third(sink: Sink, chunk: bytes) -> None:
        if len(sink.chunks) == 3:
            sink.disposable.dispose()  # (the consumer saw the end: a graceful stop)

    first = Sink(stop_at_third).subscribe(request(url + CHAT, session=h.session))
    await seen.wait_ended()
    assert len(first.chunks) == 3 and seen.cancelled == 0  # the rest was drained
    await h.settled()
    assert h.pooled == 1
    second = Sink().subscribe(request(url + CHAT, session=h.session))
    assert await second.end() is None
    assert second.body == b"".join(PARTS)
    assert seen.connections == 1  # the drained connection served the second request


async def test_a_body_that_breaks_while_pushed_fails_after_what_arrived(h: Harness) -> None:
    url, _ = await h.serve(spaced(PARTS, then="break"))
    sink = Sink().subscribe(request(url + CHAT, session=h.session))
    error = await sink.end()
    assert isinstance(error, StreamInterrupted)
    assert sink.body == b"".join(PARTS)  # every read before the break was delivered
    assert not _PUSHED


async def test_pushed_reads_run_in_the_subscribers_context_on_a_reused_connection(
    h: Harness,
) -> None:
    """The socket's reader callback runs in the context of the request that opened the
    connection; deliveries run in the transfer's, as they would in its task."""
    url, seen = await h.serve(spaced(PARTS))
    var: contextvars.ContextVar[str] = contextvars.ContextVar("request_name")
    seen_names: dict[str, list[str]] = {"a": [], "b": []}

    async def one(name: str) -> None:
        var.set(name)

        def note(sink: Sink, chunk: bytes) -> None:
            seen_names[name].append(var.get())

        sink = Sink(note).subscribe(request(url + CHAT, session=h.session))
        assert await sink.end() is None

    await asyncio.create_task(one("a"))
    await asyncio.create_task(one("b"))
    assert seen.connections == 1
    assert seen_names["a"] and set(seen_names["a"]) == {"a"}
    assert seen_names["b"] and set(seen_names["b"]) == {"b"}


async def test_the_client_streams_over_pushed_reads_after_a_pause(h: Harness) -> None:
    """A consumer slower than the body (``async for`` with a small buffer) pauses the flow
    on a pushed read: the rest buffers in aiohttp, and nothing is lost or reordered."""
    words = [f" w{i}" for i in range(300)]

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        for i, word in enumerate(words):
            payload = b'{"choices":[{"index":0,"delta":{"content":"%s"}}]}' % word.encode()
            await response.write(b"data: " + payload + b"\n\n")
            if i % 50 == 0:
                await asyncio.sleep(GAP)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    url, _ = await h.serve(handler)
    client = h.client(url)
    stream = client.chat(model="m", messages=[{"role": "user", "content": "hi"}])
    texts: list[str] = []
    deltas = rxgpt.to_async_iterable(stream.observable, maxsize=4)  # (its gate: the reads')
    stream.start()
    async with asyncio.timeout(TIMEOUT):
        async for delta in deltas:
            if isinstance(delta, rxgpt.TextDelta):
                texts.append(delta.text)
                await asyncio.sleep(0)  # slower than the reads
    assert "".join(texts) == "".join(words)
    assert not _PUSHED


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=40),
    pauses=st.sets(st.integers(min_value=0, max_value=60), max_size=8),
    gaps=st.lists(st.booleans(), min_size=40, max_size=40),
)
async def test_any_writes_and_pauses_deliver_the_whole_body_in_order(
    h: Harness, sizes: list[int], pauses: set[int], gaps: list[bool]
) -> None:
    """Writes of any size, spaced or not, and a consumer pausing the flow on any reads for a
    moment: the chunks are the body, in order, whole."""
    body = bytes(i % 251 for i in range(sum(sizes)))

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        start = 0
        for size, gap in zip(sizes, gaps, strict=False):
            await response.write(body[start : start + size])
            start += size
            if gap:
                await asyncio.sleep(0.002)
        await response.write_eof()
        return response

    url, _ = await h.serve(handler)
    flow = FlowControl()
    loop = asyncio.get_running_loop()

    early: list[int] = []  # reads delivered while the flow was paused

    def maybe_pause(sink: Sink, chunk: bytes) -> None:
        if flow.paused:
            early.append(len(sink.chunks))
        if len(sink.chunks) - 1 in pauses:
            flow.pause(sink)
            loop.call_later(0.003, flow.resume, sink)

    sink = Sink(maybe_pause).subscribe(request(url + CHAT, session=h.session, flow=flow))
    assert await sink.end() is None
    assert sink.body == body
    assert not early
    assert not _PUSHED


async def test_a_driven_stream_over_pushed_reads(h: Harness) -> None:
    """``await completion()`` drives the transfer in the caller's task; its reads are
    pushed as well, and the result is whole."""
    words = [f" w{i}" for i in range(20)]
    parts = [
        b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % w.encode() for w in words
    ]
    url, _ = await h.serve(spaced([*parts, b"data: [DONE]\n\n"], gap=0.002))
    client = h.client(url)
    stream = client.chat(model="m", messages=[{"role": "user", "content": "hi"}])
    completion = await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert completion.text == "".join(words)


@pytest.mark.parametrize("read_bufsize", [2**10, 2**16])
async def test_a_big_fast_body_pushed_with_a_small_read_buffer(read_bufsize: int) -> None:
    """A body many times aiohttp's buffer, written faster than one read: whole, in order."""
    body = bytes(range(256)) * 4096  # 1 MiB

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        await response.write(b"x")
        await asyncio.sleep(GAP)
        for start in range(0, len(body), 16 * 1024):
            await response.write(body[start : start + 16 * 1024])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(read_bufsize=read_bufsize) as session:
            sink = Sink().subscribe(request(f"http://127.0.0.1:{port}/", session=session))
            assert await sink.end() is None
            assert sink.body == b"x" + body
    finally:
        await runner.cleanup()


async def test_a_body_that_inflates_a_lot_in_one_read_is_delivered_in_bounded_pieces(
    h: Harness,
) -> None:
    """One socket read of many small HTTP chunks of gzip, each inflating to about 100 KB
    (32 MiB in all): what aiohttp inflates goes to the observer piece by piece, never
    gathered whole."""
    import tracemalloc
    import zlib

    inflated = 32 * 1024 * 1024
    compressor = zlib.compressobj(wbits=31)
    compressed = compressor.compress(b"a" * inflated) + compressor.flush()
    assert len(compressed) < 64 * 1024  # (one read)
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(piece), piece)
        for piece in (compressed[i : i + 100] for i in range(0, len(compressed), 100))
    )
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    first = body.index(b"\r\n", body.index(b"\r\n") + 2) + 2  # the first HTTP chunk
    url, _ = await h.raw([head + body[:first], body[first:] + b"0\r\n\r\n"])
    sizes: list[int] = []
    largest = 0

    def count(sink: Sink, chunk: bytes) -> None:
        nonlocal largest
        sizes.append(len(chunk))
        largest = max(largest, tracemalloc.get_traced_memory()[0])
        sink.chunks.clear()  # (a consumer that keeps nothing)

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        sink = Sink(count).subscribe(request(url + CHAT, session=h.session))
        assert await sink.end() is None
    finally:
        tracemalloc.stop()
    assert sum(sizes) == inflated
    assert largest - base < 8 * 1024 * 1024


async def test_the_http_chunks_of_one_socket_read_are_delivered_once(h: Harness) -> None:
    """A server that writes one HTTP chunk per event, faster than the client reads: the
    events one socket read brings reach the observer in one delivery (as ``readany`` joins
    what is buffered), not one per HTTP chunk."""
    events = [b"data: %d\n\n" % i for i in range(200)]
    chunked = [b"%x\r\n%s\r\n" % (len(event), event) for event in events]
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    url, _ = await h.raw([head + chunked[0], b"".join(chunked[1:]) + b"0\r\n\r\n"])
    sink = Sink().subscribe(request(url + CHAT, session=h.session))
    assert await sink.end() is None
    assert sink.body == b"".join(events)
    assert len(sink.chunks) <= 3  # the first read, then the rest in one read (or two)


async def test_a_bad_http_chunk_mid_body_fails_the_stream_at_once(h: Harness) -> None:
    """A chunk size that is not hex, mid-body: aiohttp closes the connection but tells only
    its message queue, so the body's reader would wait for the idle deadline (300 s by
    default). It fails now, typed, with what arrived before it."""
    words = [f" w{i}" for i in range(6)]
    events = [
        b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % w.encode() for w in words
    ]
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunks = [b"%x\r\n%s\r\n" % (len(event), event) for event in events]
    url, _ = await h.raw([head + chunks[0], b"".join(chunks[1:]) + b"zz\r\nnot a chunk"])
    stream = h.client(url).chat(model="m", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(StreamInterrupted, match="HTTP framing") as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert info.value.partial is not None
    assert info.value.partial.text == "".join(words)


@pytest.mark.parametrize(("tail", "says"), [(b"zz\r\n", "HTTP framing"), (b"", "mid-body")])
async def test_a_body_that_breaks_while_the_consumer_pauses_keeps_what_came(
    h: Harness, tail: bytes, says: str
) -> None:
    """A broken chunk or a cut connection while the task reads (the consumer paused the
    flow): the reads before it, then the typed error, as soon as the flow resumes (aiohttp's
    ``readany`` raises at once, dropping what it buffered)."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    first, second = b"data: 1\n\n", b"data: 2\n\n"
    url, _ = await h.raw(
        [head + b"%x\r\n%s\r\n" % (len(first), first), b"9\r\n%s\r\n" % second + tail]
    )
    flow = FlowControl()
    loop = asyncio.get_running_loop()

    def pause_once(sink: Sink, chunk: bytes) -> None:
        if len(sink.chunks) == 1:
            flow.pause(sink)
            loop.call_later(0.2, flow.resume, sink)  # (the second piece comes at 0.05 s)

    sink = Sink(pause_once).subscribe(request(url + CHAT, session=h.session, flow=flow))
    error = await sink.end()
    assert isinstance(error, StreamInterrupted) and says in str(error)
    assert sink.body == first + second


async def test_a_bad_http_chunk_in_the_first_read_of_the_body(h: Harness) -> None:
    """The body's first read brings an event and a broken chunk at once: aiohttp returns the
    event (it was woken before the break), and the break must still end the stream, not
    leave it waiting for reads that will never be pushed."""
    event = b'data: {"choices":[{"index":0,"delta":{"content":"only"}}]}\n\n'
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    url, _ = await h.raw([head, b"%x\r\n%s\r\nzz\r\n" % (len(event), event)])
    stream = h.client(url).chat(model="m", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(StreamInterrupted, match="HTTP framing") as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert info.value.partial is not None and info.value.partial.text == "only"


def _openai_event(text: str) -> bytes:
    return b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % text.encode()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    count=st.integers(min_value=1, max_value=40),
    framing=st.sampled_from(["chunked", "length", "eof"]),
    gzipped=st.booleans(),
    cut=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)),
    bad_chunk=st.booleans(),
    sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30),
    joins=st.lists(st.booleans(), min_size=30, max_size=30),  # a gap after a piece
    slow=st.booleans(),
)
async def test_any_body_framing_and_break_through_the_client(
    h: Harness,
    count: int,
    framing: str,
    gzipped: bool,
    cut: float | None,
    bad_chunk: bool,
    sizes: list[int],
    joins: list[bool],
    slow: bool,
) -> None:
    """Chunked, sized or read-to-close bodies, gzipped or not, split anyhow, whole or broken
    off (a cut, a chunk size that is not hex): the stream ends within the deadline, whole
    when the body is, else with a typed error whose partial text is what the complete
    events before the break said (a gzipped one: a prefix of it)."""
    import zlib

    words = [f" w{i}" for i in range(count)]
    body = b"".join(_openai_event(word) for word in words) + b"data: [DONE]\n\n"
    data = body
    if gzipped:
        compressor = zlib.compressobj(wbits=31)
        data = compressor.compress(body) + compressor.flush()
    sent = data if cut is None else data[: int(cut * len(data))]
    pieces, start = [], 0
    for size in sizes * (1 + len(sent) // max(1, sum(sizes))):
        if start >= len(sent):
            break
        pieces.append(sent[start : start + size])
        start += size
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    head += b"Content-Encoding: gzip\r\n" if gzipped else b""
    if framing == "chunked":
        head += b"Transfer-Encoding: chunked\r\n\r\n"
        wire = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]
        wire.append(b"zz\r\n" if cut is not None and bad_chunk else b"" if cut else b"0\r\n\r\n")
    elif framing == "length":
        head += b"Content-Length: %d\r\n\r\n" % len(data)
        wire = pieces
    else:
        head += b"Connection: close\r\n\r\n"
        wire = pieces
    gaps = joins * (1 + len(wire) // len(joins))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            for piece, gap in zip(wire, gaps, strict=False):
                writer.write(piece)
                if gap:  # (else the next piece may share the socket read)
                    await writer.drain()
                    await asyncio.sleep(0.002)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    port = await h.raw_server(handle)
    url = f"http://127.0.0.1:{port}/v1"
    broken = len(sent) < len(data)
    stream = h.client(url).chat(model="m", messages=[{"role": "user", "content": "hi"}])
    texts: list[str] = []
    if slow:  # a consumer that pauses the reads now and then
        deltas = rxgpt.to_async_iterable(stream.observable, maxsize=2)
        stream.start()

    async def consume() -> str:
        if not slow:
            return (await stream.completion()).text
        async for delta in deltas:
            if isinstance(delta, rxgpt.TextDelta):
                texts.append(delta.text)
                await asyncio.sleep(0)
        return "".join(texts)

    try:
        text = await asyncio.wait_for(consume(), TIMEOUT)
    except rxgpt.RxgptError as error:
        assert broken, error
        partial = error.partial if isinstance(error, StreamInterrupted) else None
        got = partial.text if partial is not None else "".join(texts)
        assert "".join(words).startswith(got)
        if not gzipped and isinstance(error, StreamInterrupted) and partial is not None:
            events = sent.count(b"\n\n")  # the complete events before the break
            assert got == "".join(words[: min(events, count)])
    else:
        assert text == "".join(words)  # (a break after [DONE] changes nothing)
