"""The aiohttp transport: a cold observable of response body chunks.

Strategy: every subscription starts one task on the running loop that sends one request
and pushes each network read (whatever arrived, no line-length limit) straight to the
observer, synchronously: from aiohttp's ``data_received`` while the body flows (see
:class:`_PushedReader`), from the task around that. A non-2xx answer fails the stream with a typed
:class:`~rxgpt.HTTPStatusError` before any item. Disposing the subscription closes the
response at once and cancels the task. aiohttp exceptions are mapped to rxgpt's typed
errors here, at one boundary, for the request and for the body alike.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
from collections import deque
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any, Literal

import aiohttp
import yarl
from aiohttp.client_proto import ResponseHandler
from aiohttp.streams import StreamReader
from reactivex import abc

from ._aio import FlowControl
from ._errors import (
    AuthenticationError,
    CredentialsConflictError,
    DecodeError,
    HTTPStatusError,
    InvalidURLError,
    RateLimitError,
    RxgptError,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    TransportError,
)
from ._fusion import ENDED, Batched, BatchObserver
from ._json import dumps, loads
from ._secrets import SENSITIVE_HEADERS, redact
from ._ulimit import open_files_hint
from ._urls import base_url_problem

__all__ = [
    "ConnectionSlots",
    "error_from_response",
    "map_exception",
    "pool_tracing",
    "request",
    "tell_broken_framing",
]

_MAX_ERROR_BODY = 64 * 1024

#: Seconds aiohttp may take to open a socket in the sessions rxgpt creates (a bound under
#: rxgpt's own connect deadline, for when that deadline is off).
SOCKET_CONNECT_TIMEOUT = 30.0

#: Streams are long: rxgpt's own deadlines (rxgpt.Timeouts) apply, not aiohttp's 300 s.
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=SOCKET_CONNECT_TIMEOUT)
_JSON = "application/json"  # the type of every body rxgpt sends


def _status_error_class(status: int) -> type[HTTPStatusError]:
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return RateLimitError
    return HTTPStatusError


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, url: str = ""
) -> HTTPStatusError:
    """Build the typed error for a non-2xx answer, parsing the provider's error body."""
    text = body.decode("utf-8", "replace")
    error: dict[str, Any] | None = None
    try:
        parsed = loads(body) if body else None
    except Exception:
        parsed = None
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict):
            error = inner
        elif isinstance(inner, str):
            error = {"message": inner}
        elif "message" in parsed:
            error = parsed
    elif isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        inner = parsed[0].get("error")  # Gemini wraps its error in a list sometimes
        if isinstance(inner, dict):
            error = inner
    return _status_error_class(status)(
        status, headers=dict(headers), error=error, body=text, url=url
    )


def request(
    url: str,
    *,
    method: str = "POST",
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
    flow: FlowControl | None = None,
    progress: Callable[[str], None] | None = None,
    drain_bytes: int = 64 * 1024,
    drain_timeout: float = 1.0,
    media_type: str | None = None,
    slots: ConnectionSlots | None = None,
) -> Batched[bytes]:
    """A cold observable: each subscription sends one request and emits the body's chunks.

    ``session`` is the caller's :class:`aiohttp.ClientSession` (one is created and closed
    per subscription otherwise). ``flow`` is the gate a consumer closes to pause socket
    reads (one is made when not given; it is the observable's ``flow``, which
    :func:`~rxgpt.to_async_iterable` finds, also through rxgpt operators); ``progress`` is
    told "connected" (headers in) and "first_byte". A disposal while a chunk is being
    delivered (the consumer saw the end: a decoder's end signal, a ``take_while``) ends
    the stream normally: the rest of the body is drained, at most ``drain_bytes`` within
    ``drain_timeout`` seconds, so the connection can go back to the pool. A disposal at
    any other time (a timeout, a task cancelled), or after ``flow.abort()`` (a
    cancellation), closes the connection at once. Subscribe on
    a running loop. ``media_type`` (e.g. ``"text/event-stream"``) makes any other content
    type of a 2xx answer an error; by default only HTML pages and JSON documents are.
    A 204 answer (no content) completes at once, after ``progress("no_content")``.
    ``slots`` (a :class:`~rxgpt.Client`'s) bounds the requests in flight; a request that
    waits for one tells ``progress`` "queued", then "dequeued".

    A URL no request can be sent to (not ``http://`` or ``https://``, no host, a bad
    port), or a redirect's unusable ``Location``, ends the subscription with
    :class:`~rxgpt.InvalidURLError`.

    Raises:
        CredentialsConflictError: ``url`` holds ``user:password@`` and ``headers`` an
            ``Authorization`` header (before anything is sent).
    """
    if headers and "@" in url:  # (user-info is rare: no call for the common request)
        conflict = _credentials_conflict(url, headers)
        if conflict is not None:
            raise conflict
    body = dumps(json).encode() if json is not None else None
    # (the body's Content-Type travels with its payload, see _open: a header fewer that
    # aiohttp copies twice per request; a Content-Type in ``headers`` still wins)
    send_headers = {"Accept": "text/event-stream"}
    if method == "GET":
        send_headers["Cache-Control"] = "no-cache"  # as EventSource asks (no POST is cached)
    if headers:
        send_headers.update(headers)
    gate = flow if flow is not None else FlowControl()
    return _Request(
        url, method, body, send_headers, session, gate, progress,
        drain_bytes, drain_timeout, media_type, slots,
    )  # fmt: skip


def _credentials_conflict(url: str, headers: Mapping[str, str]) -> CredentialsConflictError | None:
    """Two credentials for one request: the URL's user-info and an ``Authorization`` header
    (aiohttp refuses to send it; no attempt could succeed). ``url`` holds an "@"."""
    if not any(name.lower() == "authorization" for name in headers):
        return None
    try:
        parsed = yarl.URL(url)
    except ValueError:
        return None  # (not a URL: aiohttp's own error says so)
    if parsed.raw_user is None and parsed.raw_password is None:
        return None  # (an "@" in the path or the query)
    return CredentialsConflictError(
        f"{redact(url)} carries credentials (user:password@) and the request an "
        "Authorization header (an API key, or a header of yours): keep one of them"
    )


class ConnectionSlots:
    """At most ``limit`` requests in flight at once; the others wait their turn (FIFO).

    A :class:`~rxgpt.Client` bounds its own pool with it: the wait for a slot is told to
    the request's ``progress`` ("queued", "dequeued"), so it is not part of the connect
    deadline, and it costs nothing when a slot is free.
    """

    __slots__ = ("free", "waiters")

    def __init__(self, limit: int) -> None:
        self.free = limit
        self.waiters: deque[asyncio.Future[None]] = deque()

    def take(self) -> bool:
        """Take a free slot at once, if there is one and nobody waits ahead."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Wait for a slot handed over by :meth:`give_back` (FIFO)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back()  # the slot was handed over just as we were cancelled
            else:
                self.waiters.remove(waiter)
            raise

    def give_back(self) -> None:
        """Free a slot: hand it to the first waiter, if any."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class _Request(Batched[bytes]):
    """The observable :func:`request` returns: what it sends, for each subscription (a
    :class:`_Transfer`).

    (Objects rather than closures: an open stream holds a few objects for the garbage
    collector to track instead of a dozen closure cells and functions.)
    """

    flow: FlowControl  # (always given here)

    def __init__(
        self,
        url: str,
        method: str,
        body: bytes | None,
        headers: dict[str, str],
        session: aiohttp.ClientSession | None,
        flow: FlowControl,
        progress: Callable[[str], None] | None,
        drain_bytes: int,
        drain_timeout: float,
        media_type: str | None,
        slots: ConnectionSlots | None,
    ) -> None:
        super().__init__(flow=flow)
        self.url = url
        self.method = method
        self.body = body
        self.headers = headers
        self.session = session
        self.progress = progress
        self.drain_bytes = drain_bytes
        self.drain_timeout = drain_timeout
        self.media_type = media_type
        self.slots = slots

    def subscribe_observer(self, observer: BatchObserver[bytes]) -> abc.DisposableBase:
        """Start one transfer in a task of its own, or hand it to the consumer that drives
        it in its task (``flow.drivers``); its disposal stops it."""
        transfer = _Transfer(self, observer)
        drivers = self.flow.drivers
        if drivers is not None:
            drivers.append(transfer)
        else:
            transfer.task = asyncio.get_running_loop().create_task(transfer.run())
        return transfer


#: How a transfer's delivery ended (see _Transfer._deliver).
_Outcome = Literal["ended", "rest", "told"]

#: Drains handed off by driven transfers (the loop keeps only weak references to tasks).
_DRAINS: set[asyncio.Task[None]] = set()


class _Transfer(abc.DisposableBase):
    """One subscription of :func:`request`: how it stands, and the task that runs it (its
    own, or the consumer's when driven: see :meth:`drive`)."""

    __slots__ = (
        "closed", "context", "driven", "failure", "graceful", "headers", "in_on_next",
        "interrupted", "observer", "protocol", "reads", "request", "response", "task",
    )  # fmt: skip

    def __init__(self, request: _Request, observer: BatchObserver[bytes]) -> None:
        self.request = request
        self.observer = observer
        self.task: asyncio.Task[None] | None = None
        self.response: aiohttp.ClientResponse | None = None
        self.headers = False  # the response headers arrived
        self.closed = False  # disposed
        self.graceful = False  # disposed while delivering: drain, then reuse
        self.in_on_next = False
        self.driven = False  # run in the consumer's task (see drive)
        self.interrupted = False  # driven, and cancelled by dispose()
        # (set by _watch: the observer's exception raised in data_received, the context
        # deliveries run in, the connection's protocol, the pieces of this socket read)
        self.failure: _ConsumerError | None
        self.context: contextvars.Context
        self.protocol: ResponseHandler | None
        self.reads: list[bytes]

    def dispose(self) -> None:
        """Stop: drain when the consumer saw the end while a read is delivered, else close."""
        if self.closed:
            return
        self.closed = True
        if self.in_on_next and not self.request.flow.aborted:
            self.graceful = True  # the consumer saw the end: drain, then reuse
            return
        if self.response is not None:
            self.response.close()
        task = self.task
        if task is None:
            return
        if not self.driven:
            task.cancel()
        elif task is not asyncio.current_task():
            self.interrupted = True  # (drive takes this cancel back)
            task.cancel()
        # (else the transfer's own calls disposed it: it sees `closed` when they return,
        # and a cancel of the consumer's task would outlive the transfer)

    async def drive(self) -> None:
        """Run in the calling task: a consumer that only waits for the end (``await
        completion()``) spares a task and a wake-up. A cancel made by :meth:`dispose` is
        taken back, not raised; any other cancel of the task is raised."""
        task = self.task = asyncio.current_task()
        assert task is not None
        self.driven = True
        try:
            await self.run()
        except asyncio.CancelledError:
            if not self.interrupted or task.uncancel() > 0:
                raise
            return
        if self.interrupted:  # (delivered, and taken, inside run: a wait for a slot)
            task.uncancel()

    async def run(self) -> None:
        """Send the request and push the body's reads; every failure becomes a typed error."""
        spec = self.request
        slots = spec.slots
        if slots is not None and not slots.take():
            try:
                if spec.progress is not None:
                    spec.progress("queued")
                await slots.wait()
            except asyncio.CancelledError:
                if self.closed:
                    return  # disposed while waiting: nothing was sent
                raise  # (driven: the consumer's task was cancelled)
            if spec.progress is not None:
                spec.progress("dequeued")
        own = spec.session is None
        client = spec.session or aiohttp.ClientSession(timeout=_NO_TIMEOUT)
        rest: aiohttp.ClientResponse | None = None
        try:
            rest = await self._exchange(client)
        except asyncio.CancelledError:
            raise
        except _ConsumerError as wrapped:
            if not self.closed:
                self.observer._on_error(wrapped.error)
        except RxgptError as error:
            self.observer._on_error(error)
        except Exception as error:
            if not self.closed:
                self.observer._on_error(
                    map_exception(
                        error,
                        spec.url,
                        mid_body=self.headers,
                        sock_connect=client.timeout.sock_connect,
                    )
                )
        finally:
            self.observer = ENDED  # no reference to the subscriber: no cycle left for the GC
            self.task = None
            if rest is None:
                await self._end(client if own else None)
        if rest is not None:  # driven: the consumer has its result; drain in a task
            drain = asyncio.get_running_loop().create_task(self._drain_rest(rest, client, own))
            _DRAINS.add(drain)
            drain.add_done_callback(_DRAINS.discard)

    async def _end(self, own_session: aiohttp.ClientSession | None) -> None:
        """The transfer is over: close a session of its own, give its slot back."""
        if own_session is not None:
            await own_session.close()
        if self.request.slots is not None:
            self.request.slots.give_back()

    async def _drain_rest(
        self, resp: aiohttp.ClientResponse, client: aiohttp.ClientSession, own: bool
    ) -> None:
        """What a driven transfer left: the rest of the body, then the end (see _exchange)."""
        try:
            await _drain(resp, self.request.drain_bytes, self.request.drain_timeout)
            await resp.wait_for_close()
        except Exception:  # (say, the session closed first: the connection is not reused)
            resp.close()
        except asyncio.CancelledError:  # (the loop ends: close now, or the pool keeps it)
            resp.close()
            raise
        finally:
            await self._end(client if own else None)

    async def _exchange(self, client: aiohttp.ClientSession) -> aiohttp.ClientResponse | None:
        """The request and its answer. Returns the response when a driven transfer leaves
        the rest of its body to drain (the consumer saw the end, the body's end has not
        come yet: the drain is not the consumer's to wait for)."""
        spec = self.request
        progress = spec.progress
        opened = await _open(client, spec.method, spec.url, spec.body, spec.headers, progress)
        outcome: _Outcome = "told"
        try:  # (as `async with opened`, but for a response handed off)
            outcome = await self._deliver(opened)
        finally:
            if outcome != "rest":
                opened.release()
                await opened.wait_for_close()
        if outcome == "rest":
            return opened
        if outcome == "ended":
            self.observer._on_completed()
        return None

    async def _deliver(self, resp: aiohttp.ClientResponse) -> _Outcome:
        """Tell the observer the answer: "ended" (the body ended: complete it once the
        response is released), "rest" (see :meth:`_exchange`) or "told" (nothing more)."""
        spec = self.request
        progress = spec.progress
        self.response = resp
        if self.closed:
            resp.close()
            return "told"
        self.headers = True
        if progress is not None:
            progress("connected")
        if resp.status >= 300:
            raw = await _read_bounded(resp)
            self.observer._on_error(error_from_response(resp.status, resp.headers, raw, spec.url))
            return "told"
        if resp.status == 204:
            if progress is not None:
                progress("no_content")
            self.observer._on_completed()
            return "told"
        if not _is_stream(resp, spec.media_type):
            self.observer._on_error(await _not_a_stream(resp, spec.url))
            return "told"
        await self._pump(resp)
        if self.graceful:
            if self.driven and not resp.content.is_eof():
                return "rest"  # (_drain would wait: the consumer's task does not)
            await _drain(resp, spec.drain_bytes, spec.drain_timeout)
            return "told"
        return "told" if self.closed else "ended"

    async def _pump(self, resp: aiohttp.ClientResponse) -> None:
        """Push every network read to the observer until EOF or disposal: read by the task
        at first and after a pause, handed over by aiohttp while the body flows."""
        content = resp.content
        gate = self.request.flow
        watched = self._watch(resp)
        try:
            chunk = await self._read(content)
            if chunk and self.request.progress is not None:
                self.request.progress("first_byte")
            while chunk:
                self._push(chunk)
                if self.closed:
                    return
                if watched and not gate.paused and await self._pushed(resp):
                    return
                if gate.paused:  # (checked here: no coroutine per read when open)
                    await gate.wait()
                chunk = await self._read(content)
        finally:
            if watched:
                assert self.protocol is not None
                del self.protocol.data_received
                self.protocol = None

    async def _read(self, content: StreamReader) -> bytes:
        """The task's read: what is buffered, or the next read. When the body broke, what
        came before the break is delivered first (aiohttp's ``readany`` raises at once,
        dropping what it buffered), then the break is raised."""
        try:
            return await content.readany()
        except Exception:
            buffered = content._buffer
            if buffered:
                offset, content._buffer_offset = content._buffer_offset, 0
                chunk = b"".join(buffered)[offset:]
                buffered.clear()
                content._size = 0
                self._push(chunk)
            raise

    def _watch(self, resp: aiohttp.ClientResponse) -> bool:
        """Make the connection's ``data_received`` :meth:`_received` for as long as the body
        is read (False for a connection of another kind): the way reads are pushed, and
        how a broken HTTP framing reaches the body (see :func:`tell_broken_framing`)."""
        connection = resp.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is None or "data_received" in vars(protocol):
            return False
        self.failure = None
        self.context = contextvars.copy_context()
        self.protocol = protocol
        self.reads = []
        protocol.data_received = self._received  # type: ignore[method-assign]
        tell_broken_framing(protocol, resp.content)  # (in the read that brought the headers)
        return True

    def _push(self, chunk: bytes) -> None:
        """Deliver one read; an exception the observer raises comes out as _ConsumerError."""
        self.in_on_next = True
        try:
            self.observer._on_batch([chunk])
        except Exception as error:  # a consumer raised: end the stream with its error
            raise _ConsumerError(error) from error
        finally:
            self.in_on_next = False

    async def _pushed(self, resp: aiohttp.ClientResponse) -> bool:
        """Let aiohttp hand the body's reads to the observer from ``data_received`` until
        the body ends or breaks, or the task has to read again. True when the stream is over.

        Performance: a read that wakes the task costs a future, a loop callback and a
        coroutine resume; without them a one-event read through the Client runs 1,181
        bytecodes instead of 1,674 (a bare aiohttp loop: 893).
        Meanwhile the body's reader is a :class:`_PushedReader`, which collects what each
        HTTP chunk brings, and the connection's ``data_received`` (:meth:`_received`, see
        :meth:`_watch`) delivers what one socket read brought as one batch (as ``readany`` joins
        what is buffered). The reader is a plain ``StreamReader`` again, buffering as
        aiohttp does, as soon as the consumer pauses, sees the end or raises (see
        :meth:`_deliver_reads`), so the task's own reads (``readany``, ``_drain``) are
        unchanged. Deliveries run in a copy of the task's context, as they would in the task.
        """
        content = resp.content
        if (
            content.__class__ is not StreamReader
            or content._buffer
            or content.is_eof()
            or content.exception() is not None
        ):
            return False  # (a read or an error to take first, or a reader of another kind)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        content._eof_waiter = waiter  # (the future aiohttp's feed_eof and set_exception end)
        key = id(content)
        _PUSHED[key] = self
        content.__class__ = _PushedReader
        broken: Exception | None = None
        try:
            await waiter
        except Exception as error:  # the body broke: raised once what came is delivered
            broken = error
        finally:
            content.__class__ = StreamReader
            del _PUSHED[key]
            if content._eof_waiter is waiter:
                content._eof_waiter = None
        if self.failure is not None:
            raise self.failure
        reads, self.reads = self.reads, []
        if reads and not self.closed:  # (fed outside a socket read: at the connection's end)
            self._push(b"".join(reads))
        if broken is not None:
            raise broken
        return self.closed or (content.is_eof() and not content._buffer)

    def _received(self, data: bytes) -> None:
        """The connection's ``data_received`` while the body is read (see :meth:`_watch`):
        aiohttp's own, then what it fed a pushed body delivered at once, then the framing
        check (:func:`tell_broken_framing`)."""
        protocol = self.protocol
        assert protocol is not None
        try:
            type(protocol).data_received(protocol, data)
        finally:
            if self.reads:
                self._flush()
        if protocol.exception() is not None:  # (the check's own first test: no call per read)
            assert self.response is not None
            tell_broken_framing(protocol, self.response.content)

    def _flush(self) -> None:
        """Deliver the reads collected, in the task's context."""
        self.context.run(self._deliver_reads)

    def _deliver_reads(self) -> None:
        """Deliver what one socket read brought; never raises (it runs in ``data_received``).
        Wakes the task (and hands the reader back to aiohttp's buffering) when the observer
        raised, saw the end, or paused the flow."""
        reads, self.reads = self.reads, []
        if self.closed:
            return  # (disposed from outside: the connection is closed, the task cancelled)
        try:
            self._push(reads[0] if len(reads) == 1 else b"".join(reads))
        except _ConsumerError as error:
            self.failure = error
        if self.failure is not None or self.closed or self.request.flow.paused:
            response = self.response
            assert response is not None
            reader = response.content
            reader.__class__ = StreamReader  # later reads buffer
            waiter = reader._eof_waiter
            reader._eof_waiter = None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


def tell_broken_framing(protocol: ResponseHandler, reader: StreamReader) -> None:
    """After a socket read: if aiohttp failed to parse the body's HTTP framing (a chunk
    size that is not hex, say), fail the body's reader as a broken connection would.

    aiohttp closes the connection but tells only the protocol's message queue, so a reader
    of the body would wait for a deadline (rxgpt's idle one: 300 s by default). For every
    aiohttp client of rxgpt (the transport, ``rxgpt bench``'s client): call it from the
    connection's ``data_received`` once aiohttp's own has run.
    """
    error = protocol.exception()
    if error is not None and not reader.is_eof() and reader.exception() is None:
        reason = " ".join(str(getattr(error, "message", error)).split())  # (one line)
        reader.set_exception(
            aiohttp.ClientPayloadError(f"the body's HTTP framing is broken: {reason}")
        )


#: The transfers whose bodies are pushed now, by id of their reader (see _Transfer._pushed).
_PUSHED: dict[int, _Transfer] = {}


class _PushedReader(StreamReader):
    """A response body's ``StreamReader`` while its reads are pushed: what each HTTP chunk
    brings goes to its transfer's ``reads`` instead of the buffer (same layout: the class of
    a live reader is switched to this and back, see :meth:`_Transfer._pushed`)."""

    __slots__ = ()

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        if data:
            transfer = _PUSHED[id(self)]
            reads = transfer.reads
            reads.append(data)
            if len(data) > _SMALL or len(reads) >= _MAX_PIECES:
                transfer._flush()  # (bounded: what gzip inflates goes at once, for one)
        return False


#: A socket read's pieces (HTTP chunks) of at most this size are joined before delivery,
#: at most this many: an event per chunk costs one delivery per read, not one per event.
_SMALL = 4096
_MAX_PIECES = 256


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10


def pool_tracing() -> aiohttp.TraceConfig:
    """Tracing that tells a request's ``progress`` when it waits for a pooled connection.

    ``progress("queued")`` when every connection of the pool is busy, ``progress("dequeued")``
    when one is free: the wait is not part of the connect deadline. For a session of your
    own (a :class:`~rxgpt.Client`'s own session bounds its pool without it).
    """

    async def queued(session: object, ctx: SimpleNamespace, params: object) -> None:
        if callable(ctx.trace_request_ctx):
            ctx.trace_request_ctx("queued")

    async def dequeued(session: object, ctx: SimpleNamespace, params: object) -> None:
        if callable(ctx.trace_request_ctx):
            ctx.trace_request_ctx("dequeued")

    trace = aiohttp.TraceConfig()
    trace.on_connection_queued_start.append(queued)
    trace.on_connection_queued_end.append(dequeued)
    return trace


async def _open(
    client: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    progress: Callable[[str], None] | None = None,
) -> aiohttp.ClientResponse:
    """Send the request, following redirects; credentials never leave their origin.

    aiohttp drops only ``Authorization`` on a redirect to another host; rxgpt's providers
    also authenticate with ``x-api-key``, ``x-goog-api-key`` and ``api-key``. So redirects
    are followed here: to the same origin as sent, to another origin without any
    credential header (see ``SENSITIVE_HEADERS``). 307 and 308 keep the method and body;
    303, and 301/302 after a POST, become a GET without a body (as browsers and httpx do).
    """
    for _ in range(_MAX_REDIRECTS + 1):
        resp = await client.request(
            method,
            url,
            data=aiohttp.BytesPayload(body, content_type=_JSON) if body is not None else None,
            headers=headers,
            allow_redirects=False,
            trace_request_ctx=progress,  # the pool reports its waits (see pool_tracing)
        )
        location = resp.headers.get("Location")
        if resp.status not in _REDIRECTS or not location:
            return resp
        resp.release()
        try:
            target = resp.url.join(yarl.URL(location))
        except ValueError:
            problem = base_url_problem(location) or "is not a URL"
            raise InvalidURLError(f"the redirect's Location {location!r} {problem}") from None
        if target.origin() != resp.url.origin():
            headers = {k: v for k, v in headers.items() if k.lower() not in SENSITIVE_HEADERS}
        if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        url = str(target)
        if "@" in url:  # (a Location with user:password@, and the Authorization kept)
            conflict = _credentials_conflict(url, headers)
            if conflict is not None:
                raise conflict
    raise TransportError(f"more than {_MAX_REDIRECTS} redirects from {redact(url)}")


class _ConsumerError(Exception):
    """An exception raised by the observer itself, carried out of the read loop."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


async def _drain(resp: aiohttp.ClientResponse, limit: int, timeout: float) -> None:
    """Read what is left of the body (bounded) so the connection can be reused."""
    content = resp.content
    if content.is_eof():
        # The commonest end: the body's end came with its last event. What is left is
        # buffered already: no wait, so no deadline (an asyncio timeout costs a timer).
        if len(content.read_nowait(limit)) < limit and content.at_eof():
            resp.release()
        else:
            resp.close()
        return
    try:
        async with asyncio.timeout(timeout):
            left = limit
            while left > 0:
                chunk = await resp.content.readany()
                if not chunk:
                    resp.release()
                    return
                left -= len(chunk)
    except (TimeoutError, aiohttp.ClientError, OSError):
        pass
    resp.close()


_EVENT_STREAM = "text/event-stream"
_NOT_STREAMS = ("text/html", "application/json", "application/problem+json")


def _is_stream(resp: aiohttp.ClientResponse, required: str | None) -> bool:
    """Whether a 2xx answer is a stream: not an HTML page nor a JSON document (and of the
    ``required`` type, if one is): event streams, NDJSON and unlabelled bodies are."""
    if required is None and resp.headers.get("Content-Type", "").startswith(_EVENT_STREAM):
        return True  # (the commonest answer, told without parsing the header)
    media = resp.content_type.lower()
    return media not in _NOT_STREAMS and (required is None or media == required)


async def _not_a_stream(resp: aiohttp.ClientResponse, url: str) -> RxgptError:
    """The typed error for a 2xx answer that is not a stream (its error, if it has one)."""
    media = resp.content_type.lower()
    raw = await _read_bounded(resp)
    text = raw.decode("utf-8", "replace")
    if media != "text/html":
        try:
            parsed = loads(raw)
        except Exception:
            parsed = None
        if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
            parsed = parsed[0]
        if isinstance(parsed, dict) and parsed.get("error"):
            return StreamError(parsed["error"])
    return DecodeError(
        f"expected a stream from {url}, got {media} with status {resp.status}", raw=text
    )


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int = _MAX_ERROR_BODY) -> bytes:
    """Read a (non-stream) body until its end or ``limit`` bytes, whichever comes first."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.readany()
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)[:limit]


def map_exception(
    error: BaseException,
    url: str,
    *,
    mid_body: bool = False,
    sock_connect: float | None = SOCKET_CONNECT_TIMEOUT,
) -> RxgptError:
    """The typed rxgpt error for an aiohttp or socket exception.

    ``mid_body``: the response headers had arrived, so a failure now (broken framing, a
    reset) interrupted the body. ``sock_connect``: the session's socket-connect bound, the
    deadline of aiohttp's own connect timeout.
    """
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return StreamTimeout("connect", sock_connect or 0)
    if isinstance(error, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        # (the URL that failed: the request's, or a redirect's Location)
        target = str(error.url) if isinstance(error, aiohttp.InvalidURL) else str(error)
        problem = base_url_problem(target) or "is not a URL a request can be sent to"
        return InvalidURLError(f"{target!r} {problem}")
    if isinstance(error, aiohttp.ClientConnectorError) and not mid_body:
        if isinstance(error.os_error, socket.gaierror):
            # getaddrinfo()'s codes are negative: os.strerror() would say "unknown error -2"
            return TransportError(
                f"cannot connect to {url}: the host {error.host} could not be resolved"
            )
        code = error.os_error.errno
        reason = (os.strerror(code) if code else str(error.os_error)).lower()
        return TransportError(f"cannot connect to {url}: {reason}{open_files_hint(code)}")
    if isinstance(error, aiohttp.ClientPayloadError):
        return StreamInterrupted(f"the connection broke mid-body: {error}")
    if isinstance(error, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return StreamInterrupted(f"the server disconnected: {error!r}")
    if mid_body and isinstance(error, aiohttp.ClientError | OSError):
        return StreamInterrupted(f"the body from {url} broke off: {error!r}")
    return TransportError(f"request to {url} failed: {error!r}")
