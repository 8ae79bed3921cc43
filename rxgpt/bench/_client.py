"""The measuring request loop: one streamed request, every network read timestamped.

Strategy (the hot path, nothing reactive in it):

* :class:`StampingConnector` makes aiohttp connections whose protocol stamps each
  ``data_received`` with ``time.perf_counter_ns()`` *before* anything else runs, and notes
  how many body bytes the response held after that read. The reader later splits what
  ``readany()`` returns at those offsets, so every piece of the body carries the time its
  bytes arrived, however late the reading task woke (the gap is kept as "parse delay").
* :class:`EventDecoder` runs rxgpt's own decoder stages (:func:`rxgpt._decoder.stream_specs`:
  framing, then payload and deltas) split in two, so the deltas of each event stay grouped:
  one event is one chunk.
* :func:`measure` sends one request (the bytes prepared up front) on a shared session and
  fills a :class:`RequestRecord`: when it was due, dispatched, let through the concurrency
  cap, written (an aiohttp trace hook on the body write), and per output chunk its arrival
  time, kind and size. Failures are rxgpt's typed errors (:mod:`rxgpt._errors`), mapped at
  the same boundary as rxgpt's transport does.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.streams import StreamReader

from .._decoder import stream_specs
from .._deltas import (
    Delta,
    FinishDelta,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallStart,
    UsageDelta,
)
from .._errors import DecodeError, RxgptError, StreamInterrupted, StreamTimeout
from .._fusion import End, Pipeline
from .._transport import (
    SOCKET_CONNECT_TIMEOUT,
    _read_bounded,
    error_from_response,
    map_exception,
    tell_broken_framing,
)

__all__ = [
    "EventDecoder",
    "PreparedRequest",
    "RequestRecord",
    "StampingConnector",
    "measure",
    "open_session",
]

_perf_ns = time.perf_counter_ns

#: aiohttp's default read buffer (64 KiB) throttles long answers (vllm-project/vllm#39963).
READ_BUFSIZE = 4 * 1024 * 1024


class _StampingHandler(ResponseHandler):
    """aiohttp's response protocol, stamping each network read before it is parsed.

    ``reads`` holds ``(perf_counter_ns, payload, body bytes fed after this read)`` for the
    reads since the reader last took them; ``payload`` tells responses on a reused
    connection apart.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.reads: list[tuple[int, object, int]] = []

    def data_received(self, data: bytes) -> None:
        stamp = _perf_ns()
        before = self._payload
        super().data_received(data)
        payload = self._payload or before
        if isinstance(payload, StreamReader):
            tell_broken_framing(self, payload)  # (else a bad chunk waits for the timeout)
        if payload is not None:
            reads = self.reads
            if len(reads) > 4096:  # nobody reads this connection's stamps: stay bounded
                del reads[:2048]
            reads.append((stamp, payload, payload.total_bytes))


class StampingConnector(aiohttp.TCPConnector):
    """A TCP connector whose connections timestamp every read (see :class:`_StampingHandler`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        factory = functools.partial(_StampingHandler, loop=self._loop)
        self._factory = cast("functools.partial[ResponseHandler]", factory)


def _trace() -> aiohttp.TraceConfig:
    """Stamp ``ctx.sent_ns`` when the request's bytes are written (headers, then body)."""

    async def sent(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: object) -> None:
        record = ctx.trace_request_ctx
        if isinstance(record, RequestRecord):
            record.sent_ns = _perf_ns()

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(sent)
    trace.on_request_chunk_sent.append(sent)
    return trace


def open_session(limit: int = 0) -> aiohttp.ClientSession:
    """The one session a benchmark process shares: stamping connections, no aiohttp timeout."""
    connector = StampingConnector(limit=limit, limit_per_host=0, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=SOCKET_CONNECT_TIMEOUT),
        trace_configs=[_trace()],
        read_bufsize=READ_BUFSIZE,
    )


class EventDecoder:
    """rxgpt's decoder of ``protocol``, returning the deltas of each event separately."""

    __slots__ = ("_framing", "_rest")

    def __init__(self, protocol: str, max_event_bytes: int | None = 16 * 1024 * 1024) -> None:
        framing, payload, deltas = stream_specs(protocol, max_event_bytes=max_event_bytes)
        self._framing = Pipeline([framing.build(payload)])
        self._rest = Pipeline([payload.build(deltas), deltas.build(None)])

    def feed(self, data: bytes) -> list[list[Delta]]:
        """The deltas of each event that ``data`` completed."""
        rest = self._rest
        out = [rest.feed([event]) for event in self._framing.feed([data])]
        end = self._framing.end
        if end is not None and rest.end is None:
            out.append(rest.close(end))
        return out

    def close(self) -> list[list[Delta]]:
        """The body ended: flush both halves."""
        out = [self._rest.feed([event]) for event in self._framing.close(End())]
        end = self._framing.end
        if self._rest.end is None:
            out.append(self._rest.close(end if end is not None else End()))
        return out

    @property
    def ended(self) -> bool:
        """Whether the stream reached its end signal (or failed)."""
        return self._rest.end is not None

    @property
    def error(self) -> Exception | None:
        """The error that ended the stream, if any."""
        end = self._rest.end
        return end.error if end is not None else None


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One request, ready to send: URL, headers, encoded body, its estimated prompt tokens."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    input_tokens: int
    max_tokens: int


class RequestRecord:
    """What one request measured (times are ``perf_counter_ns``; 0 = never happened).

    ``scheduled_ns``: when it was due; ``dispatched_ns``: when the dispatcher reached it;
    ``acquired_ns``: when the concurrency cap let it through; ``sent_ns``: when its bytes
    were written; ``end_ns``: when the stream ended. Per output chunk (an event carrying
    content, reasoning, refusal or tool-call tokens): ``chunk_ns`` its arrival,
    ``chunk_tokens`` its tokens when per-chunk usage said so (else -1), ``chunk_chars`` its
    text length, ``chunk_answer`` whether it is answer rather than reasoning. ``reads`` and
    ``coalesced`` (output chunks that shared a read with the output chunk before) describe
    the network reads; ``parse_delay_ns`` is the largest gap between a read's stamp and its
    decoding.
    """

    __slots__ = (
        "acquired_ns",
        "chunk_answer",
        "chunk_chars",
        "chunk_ns",
        "chunk_tokens",
        "coalesced",
        "dispatched_ns",
        "end_ns",
        "error",
        "finish_reason",
        "headers_ns",
        "index",
        "input_tokens",
        "max_tokens",
        "parse_delay_ns",
        "reads",
        "scheduled_ns",
        "sent_ns",
        "status",
        "usage_input",
        "usage_output",
        "worker",
    )

    def __init__(self, index: int, scheduled_ns: int, prepared: PreparedRequest) -> None:
        self.index = index
        self.worker = 0
        self.scheduled_ns = scheduled_ns
        self.dispatched_ns = 0
        self.acquired_ns = 0
        self.sent_ns = 0
        self.headers_ns = 0
        self.end_ns = 0
        self.status = 0
        self.chunk_ns: list[int] = []
        self.chunk_tokens: list[int] = []
        self.chunk_chars: list[int] = []
        self.chunk_answer: list[bool] = []
        self.usage_input: int | None = None
        self.usage_output: int | None = None
        self.input_tokens = prepared.input_tokens
        self.max_tokens = prepared.max_tokens
        self.finish_reason: str | None = None
        self.error: RxgptError | None = None
        self.reads = 0
        self.coalesced = 0
        self.parse_delay_ns = 0


_OUTPUT = (TextDelta, ReasoningDelta, RefusalDelta, ToolCallStart, ToolCallArguments)


class _Chunks:
    """Folds each event's deltas into a record: output chunks, usage, finish reason."""

    __slots__ = ("last_read", "last_usage", "record")

    def __init__(self, record: RequestRecord) -> None:
        self.record = record
        self.last_usage = 0
        self.last_read = -1

    def event(self, stamp: int, read: int, deltas: list[Delta]) -> None:
        chars = 0
        output = False
        answer = False
        tokens = -1
        for delta in deltas:
            cls = delta.__class__
            if cls is TextDelta or cls is RefusalDelta:
                size = len(delta.text)  # type: ignore[attr-defined]
                if size:  # an empty content (beside a role) carries no token
                    output = answer = True
                    chars += size
            elif cls is ReasoningDelta:
                size = len(delta.text)  # type: ignore[attr-defined]
                if size:
                    output = True
                    chars += size
            elif cls is ToolCallArguments:
                size = len(delta.arguments)  # type: ignore[attr-defined]
                if size:
                    output = answer = True
                    chars += size
            elif cls is ToolCallStart:
                output = answer = True
                chars += len(delta.name)  # type: ignore[attr-defined]
            elif cls is UsageDelta:
                usage = delta.usage  # type: ignore[attr-defined]
                record = self.record
                if usage.output_tokens is not None:
                    # usage in an output chunk: per-chunk usage (continuous_usage_stats)
                    tokens = usage.output_tokens - self.last_usage
                    self.last_usage = usage.output_tokens
                    record.usage_output = usage.output_tokens
                if usage.input_tokens is not None:
                    record.usage_input = usage.input_tokens
            elif cls is FinishDelta:
                self.record.finish_reason = delta.reason  # type: ignore[attr-defined]
        if not output:
            return
        record = self.record
        if read == self.last_read:
            record.coalesced += 1
        self.last_read = read
        record.chunk_ns.append(stamp)
        record.chunk_tokens.append(tokens if tokens >= 0 else -1)
        record.chunk_chars.append(chars)
        record.chunk_answer.append(answer)


async def _stream(
    resp: aiohttp.ClientResponse, decoder: EventDecoder, record: RequestRecord
) -> None:
    """Read the body, each piece stamped with its read's time, into ``record``."""
    chunks = _Chunks(record)
    content = resp.content
    connection = resp.connection
    protocol = connection.protocol if connection is not None else None
    reads = protocol.reads if isinstance(protocol, _StampingHandler) else None
    if reads is not None:  # stamps of earlier responses on this connection are not ours
        reads[:] = [r for r in reads if r[1] is content]
    consumed = 0
    number = 0
    while True:
        data = await content.readany()
        now = _perf_ns()
        if not data:
            break
        end = consumed + len(data)
        pieces: list[tuple[int, int, int]] = []  # (stamp, start, stop) within data
        if reads and len(reads) == 1 and reads[0][1] is content and reads[0][2] == end:
            pieces.append((reads[0][0], 0, len(data)))  # one read, all of it: the usual case
            reads.clear()
        elif reads:
            taken = 0
            start = consumed
            for stamp, payload, total in reads:
                if payload is not content:
                    taken += 1
                    continue
                if total <= start:
                    taken += 1
                    continue
                stop = min(total, end)
                pieces.append((stamp, start - consumed, stop - consumed))
                start = stop
                if total <= end:
                    taken += 1
                if stop >= end:
                    break
            del reads[:taken]
            if start < end:
                pieces.append((now, start - consumed, end - consumed))
        else:
            pieces.append((now, 0, len(data)))
        consumed = end
        for stamp, lo, hi in pieces:
            number += 1
            record.reads += 1
            delay = now - stamp
            if delay > record.parse_delay_ns:
                record.parse_delay_ns = delay
            if decoder.ended:
                continue
            piece = data if lo == 0 and hi == len(data) else data[lo:hi]
            for deltas in decoder.feed(piece):
                chunks.event(stamp, number, deltas)
            if decoder.ended and not record.end_ns:
                record.end_ns = stamp
    if not decoder.ended:
        for deltas in decoder.close():
            chunks.event(_perf_ns(), number + 1, deltas)
    if not record.end_ns:
        record.end_ns = _perf_ns()
    error = decoder.error
    if error is not None:
        record.error = error if isinstance(error, RxgptError) else DecodeError(str(error), raw="")


async def measure(
    session: aiohttp.ClientSession,
    prepared: PreparedRequest,
    record: RequestRecord,
    protocol: str,
    timeout: float | None,
) -> RequestRecord:
    """Send ``prepared`` and measure its stream into ``record`` (which is returned).

    Never raises for the request's own failures: they land in ``record.error`` as rxgpt's
    typed errors (a total ``timeout`` is a :class:`~rxgpt.StreamTimeout` of phase "total").
    """
    decoder = EventDecoder(protocol)
    headers_seen = False
    try:
        async with (
            asyncio.timeout(timeout),
            session.post(
                prepared.url,
                data=prepared.body,
                headers=dict(prepared.headers),
                trace_request_ctx=record,
            ) as resp,
        ):
            record.headers_ns = _perf_ns()
            headers_seen = True
            record.status = resp.status
            if resp.status >= 300:
                raw = await _read_bounded(resp)
                record.error = error_from_response(resp.status, resp.headers, raw, prepared.url)
            else:
                await _stream(resp, decoder, record)
    except TimeoutError:
        record.error = StreamTimeout("total", timeout or 0.0)
    except RxgptError as error:
        record.error = error
    except (aiohttp.ClientError, OSError) as error:
        record.error = map_exception(error, prepared.url, mid_body=headers_seen)
    except ValueError as error:  # a malformed URL, an unencodable header
        record.error = StreamInterrupted(f"request to {prepared.url} failed: {error!r}")
    if not record.end_ns:
        record.end_ns = _perf_ns()
    return record
