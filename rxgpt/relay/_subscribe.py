"""Subscribing: a relayed stream read back from Redis, from its start or after any entry.

Strategy: one cursor, one loop, ``XREAD BLOCK t COUNT n STREAMS key <last id>``: XREAD returns
the stored entries first, so catching up and following live are the same call and nothing
falls between them. Every entry's ``seq`` is checked: a duplicate (a retried write) is
skipped, a gap (entries trimmed by ``MAXLEN`` or lost in a Redis crash) ends the stream with
:class:`~rxgpt.StreamInterrupted`. When a blocking read times out, the reader checks the
producer's lease; once it has expired (and one last read finds no end entry), the producer
is taken for dead: :class:`~rxgpt.StreamInterrupted`, at most ``lease + block`` seconds after
the producer's last write. Every wait has a bound.

:class:`EntryReader` yields the raw entries (the SSE handler serves them); on top of it,
:class:`RelayedStream` is the delta stream, with the API of a :class:`~rxgpt.ChatStream`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from redis.exceptions import RedisError

from .._accumulate import add_batch, partial_completion
from .._aio import FlowControl
from .._chat_stream import StreamResult
from .._completion import Accumulator, Completion, CompletionState
from .._deltas import Delta
from .._errors import (
    DecodeError,
    RxgptError,
    StreamCancelled,
    StreamInterrupted,
    StreamTimeout,
    TransportError,
)
from .._fanout import Fanout, ReplayPolicy
from .._fusion import Batched, subscribe_batches
from ._bounds import ANSWER_TIMEOUT, DEFAULT_BLOCK, DEFAULT_START_TIMEOUT
from ._connect import Redis, describe, relay_error
from ._encoding import EndInfo, EntryKind, StartInfo, decode_deltas, decode_end, decode_start
from ._publish import START_ID, lease_key

__all__ = [
    "ENTRY_ID",
    "Entry",
    "EntryReader",
    "RelayedStream",
    "parse_entry",
    "subscribe",
]

#: What a Redis stream entry ID looks like (also a valid SSE id).
ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")

_FROM_START = ("0", "0-0")


@dataclass(slots=True)
class Entry:
    """One entry of a relayed stream, decoded.

    ``data`` is the entry's ``d`` field as stored (JSON text); ``deltas`` the decoded deltas
    of a ``deltas`` entry; ``start`` / ``end`` what a start or end entry says.
    """

    id: str
    seq: int
    kind: EntryKind
    data: bytes
    deltas: list[Delta] = field(default_factory=list)
    start: StartInfo | None = None
    end: EndInfo | None = None


def _field(fields: dict[Any, Any], name: bytes) -> bytes:
    value = fields.get(name)
    if value is None:
        value = fields.get(name.decode())
    if value is None:
        raise DecodeError(f"a relayed entry has no {name.decode()!r} field", raw=repr(fields))
    return value if isinstance(value, bytes) else str(value).encode()


def parse_entry(entry_id: Any, fields: dict[Any, Any]) -> Entry:
    """Decode one raw Redis entry (``XREAD`` / ``XRANGE`` item) of a relayed stream."""
    ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    try:
        seq = int(_field(fields, b"seq"))
    except ValueError:
        raise DecodeError(f"entry {ident} has a bad seq", raw=repr(fields)) from None
    kind = _field(fields, b"type").decode("utf-8", "replace")
    data = _field(fields, b"d")
    if kind == "deltas":
        return Entry(ident, seq, "deltas", data, decode_deltas(data))
    if kind == "start":
        return Entry(ident, seq, "start", data, start=decode_start(data))
    if kind == "end":
        return Entry(ident, seq, "end", data, end=decode_end(data))
    raise DecodeError(f"entry {ident} has an unknown type {kind!r}", raw=repr(fields))


_T = TypeVar("_T")


class EntryReader:
    """The entries of the relayed stream ``key`` after entry ``after`` (None: from the start).

    ``async for entry in reader`` yields :class:`Entry` items and ``None`` after every
    blocking read that timed out (an idle tick, for keep-alives); it stops after the end
    entry. ``start`` is the start entry's information once known (read first when resuming),
    ``end`` the end entry's, ``last_id`` the ID of the last entry yielded (or ``after``).
    A resume after the end entry yields nothing, with ``end`` set.

    Raises :class:`~rxgpt.StreamInterrupted` when the producer died, entries are missing or
    ``after`` is not in the stream; :class:`~rxgpt.StreamTimeout` when no stream starts
    within ``start_timeout``; :class:`~rxgpt.TransportError` when Redis fails, or leaves a
    command unanswered for ``answer_timeout`` seconds beyond its blocking wait (a hung
    Redis ends the reader even through a client without a socket timeout).
    """

    def __init__(
        self,
        client: Redis,
        key: str,
        *,
        after: str | None = None,
        block: float = DEFAULT_BLOCK,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        count: int = 1000,
        flow: FlowControl | None = None,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        if after is not None and after not in _FROM_START and not ENTRY_ID.fullmatch(after):
            raise ValueError(f"not a Redis stream entry ID: {after!r} (expected MS-SEQ)")
        self.client = client
        self.key = key
        self.after = None if after in _FROM_START else after
        self.block = block
        self.start_timeout = start_timeout
        self.count = count
        self.flow = flow
        self.answer_timeout = answer_timeout
        self.start: StartInfo | None = None
        self.end: EndInfo | None = None
        self.last_id = self.after or "0-0"
        self._expect = 0  # the seq of the next entry

    def _where(self) -> str:
        return f"relayed stream {self.key!r} at {describe(self.client)}"

    async def ask(self, answer: Awaitable[_T], wait: float = 0.0) -> _T:
        """Redis's answer to one command that may take ``wait`` seconds by design (a
        blocking read's), within :attr:`answer_timeout` more."""
        bound = wait + self.answer_timeout
        try:
            async with asyncio.timeout(bound):
                return await answer
        except TimeoutError:
            raise TransportError(
                f"Redis did not answer within {bound:g}s while reading the {self._where()} "
                "(hung, or a network that drops packets)"
            ) from None

    def __aiter__(self) -> AsyncIterator[Entry | None]:
        return self._entries()

    async def _entries(self) -> AsyncIterator[Entry | None]:
        try:
            if self.after is not None and not await self._resume():
                return
            async for entry in self._follow():
                yield entry
        except (RedisError, OSError) as error:
            raise relay_error(error, self.client, f"reading {self._where()}") from None

    async def _resume(self) -> bool:
        """Read the start entry and the entry resumed after; False if that was the end."""
        assert self.after is not None
        pipe = self.client.pipeline(transaction=False)
        pipe.xrange(self.key, START_ID, START_ID)
        pipe.xrange(self.key, self.after, self.after)
        first, cursor = await self.ask(pipe.execute())
        if not first:
            raise StreamInterrupted(
                f"cannot resume the {self._where()}: it does not exist (expired, or never written)"
            )
        self.start = parse_entry(*first[0]).start
        if not cursor:
            raise StreamInterrupted(
                f"cannot resume the {self._where()} after entry {self.after}: no such entry "
                "(trimmed by MAXLEN, or not an ID of this stream)"
            )
        entry = parse_entry(*cursor[0])
        self._expect = entry.seq + 1
        if entry.kind == "end":
            self.end = entry.end
            return False
        return True

    async def _follow(self) -> AsyncIterator[Entry | None]:
        began = time.monotonic()
        while True:
            if self.flow is not None:
                await self.flow.wait()
            block = self.block
            if self.start is not None:
                block = min(block, self.start.lease_ms / 2000)
            wait = max(1, int(block * 1000))
            reply = await self.ask(
                self.client.xread({self.key: self.last_id}, count=self.count, block=wait),
                wait / 1000,
            )
            if not reply:
                if not await self._producer_gone(began):
                    yield None
                    continue
                reply = await self._last_read()
            for entry in self._accept(reply):
                yield entry
                if entry.kind == "end":
                    self.end = entry.end
                    return

    def _accept(self, reply: Any) -> list[Entry]:
        """The entries of an XREAD reply, checked against the expected ``seq``."""
        out = []
        for entry_id, fields in reply[0][1]:
            entry = parse_entry(entry_id, fields)
            self.last_id = entry.id
            if entry.seq < self._expect:
                continue  # written twice (a retried pipeline): seen already
            if entry.seq > self._expect:
                raise StreamInterrupted(
                    f"the {self._where()} lacks entries {self._expect} to {entry.seq - 1} "
                    f"(before entry {entry.id}): trimmed by MAXLEN, or lost in a Redis restart"
                )
            if entry.kind == "start":
                self.start = entry.start
            self._expect += 1
            out.append(entry)
        return out

    async def _producer_gone(self, began: float) -> bool:
        """A blocking read timed out: whether the lease expired; raise if nothing started."""
        if self.start is None:
            waited = time.monotonic() - began
            if waited >= self.start_timeout:
                error = StreamTimeout("first_byte", self.start_timeout)
                error.args = (
                    f"no {self._where()} started within {self.start_timeout:g}s "
                    "(first_byte timeout)",
                )
                raise error
            return False
        return not await self.ask(self.client.exists(lease_key(self.key)))

    async def _last_read(self) -> Any:
        """After the lease expired: one last read for an end entry written just before."""
        reply = await self.ask(self.client.xread({self.key: self.last_id}, count=self.count))
        if reply:
            return reply
        assert self.start is not None
        raise StreamInterrupted(
            f"the producer of the {self._where()} stopped writing: its lease expired "
            f"({self.start.lease_ms} ms without renewal) before the end entry, after entry "
            f"{self.last_id}"
        )


class RelayedStream(StreamResult):
    """A relayed stream read from Redis: subscribe, iterate, or await its result.

    The same API as a :class:`~rxgpt.ChatStream`: ``subscribe`` / ``pipe`` / ``observable``
    (the deltas, one batch per entry; replayed to late subscribers with ``replay="all"``),
    ``async for delta in stream`` (backpressured: a slow loop pauses the Redis reads),
    ``await completion()`` (a :class:`~rxgpt.Completion` equal to the producer's when read
    from the start) and ``text()``. The stream reads when started (:meth:`start`, the first
    iteration step or ``completion()``). It ends as the producer's stream did: complete, or
    with the producer's typed error, ``error.partial`` rebuilt from the entries read.
    """

    def __init__(
        self,
        client: Redis,
        key: str,
        *,
        after: str | None = None,
        block: float = DEFAULT_BLOCK,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        replay: ReplayPolicy = "all",
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self.flow = FlowControl()
        self.reader = EntryReader(
            client, key, after=after, block=block, start_timeout=start_timeout, flow=self.flow,
            answer_timeout=answer_timeout,
        )  # fmt: skip
        self._fanout: Fanout[Delta] = Fanout(Batched(self._read, flow=self.flow), replay=replay)
        self._acc: Accumulator | None = None
        self._result: Completion | None = None
        self._error: BaseException | None = None
        self._finished: asyncio.Event = asyncio.Event()
        self._cancelled: StreamCancelled | None = None
        self._delivered = 0  # deltas read (heartbeats included, as the end entry counts)
        subscribe_batches(
            self._fanout.observable, self._accumulate, self._on_error, self._on_completed
        )

    @property
    def key(self) -> str:
        """The Redis key read."""
        return self.reader.key

    @property
    def last_id(self) -> str:
        """The ID of the last entry read: resume after it to get the rest."""
        return self.reader.last_id

    @property
    def observable(self) -> Observable[Delta]:
        """The deltas as an observable."""
        return self._fanout.observable

    def subscribe(
        self,
        on_next: abc.ObserverBase[Delta] | Callable[[Delta], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
    ) -> abc.DisposableBase:
        """Attach a subscriber to the deltas."""
        return self._fanout.subscribe(on_next, on_error, on_completed)

    def pipe(self, *operators: Callable[[Any], Any]) -> Any:
        """``stream.observable.pipe(*operators)``."""
        return self._fanout.pipe(*operators)

    def start(self) -> None:
        """Start reading (idempotent); call from within a running event loop."""
        if not self._fanout.connected:
            self._fanout.connect()

    def cancel(self) -> None:
        """Stop reading now (the producer is not affected); the result is "cancelled"."""
        if self.done:
            self._fanout.dispose()
            return
        error = StreamCancelled(f"reading the relayed stream {self.key!r} was cancelled")
        self._cancelled = error
        self._fanout.dispose(error)

    async def aclose(self) -> None:
        """Stop reading, if still reading."""
        self.cancel()

    async def __aenter__(self) -> RelayedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()

    # -- the source: a task running the reader -------------------------------------------

    def _read(
        self,
        on_batch: Callable[[list[Delta]], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> abc.DisposableBase:
        async def run() -> None:
            try:
                async for entry in self.reader:
                    if entry is None:
                        continue
                    if self._acc is None and self.reader.start is not None:
                        self._acc = self._new_accumulator()
                    if entry.deltas:
                        on_batch(entry.deltas)
            except asyncio.CancelledError:
                raise
            except RxgptError as error:
                on_error(error)
                return
            end = self.reader.end
            if end is not None and end.error is not None:
                on_error(end.error)
            else:
                on_completed()

        task = asyncio.get_running_loop().create_task(run())

        def stop() -> None:
            task.cancel()

        return Disposable(stop)

    def _new_accumulator(self) -> Accumulator:
        start = self.reader.start
        return Accumulator(start.protocol) if start is not None else Accumulator()

    def _accumulate(self, batch: list[Delta]) -> None:
        if self._acc is None:
            self._acc = self._new_accumulator()
        self._delivered += len(batch)
        error = add_batch(self._acc, batch)
        if error is not None:
            self._fanout.dispose(error)

    def _on_completed(self) -> None:
        acc = self._acc or self._new_accumulator()
        end = self.reader.end
        self._result = acc.completion(end.state if end is not None else "complete")
        if self.reader.after is None and end is not None and 0 <= end.deltas != self._delivered:
            self._on_error(
                StreamInterrupted(
                    f"the relayed stream {self.key!r} ended after {self._delivered} deltas, but "
                    f"its end entry counts {end.deltas}: entries are missing"
                )
            )
            return
        self._finished.set()

    def _on_error(self, error: Exception, state: CompletionState | None = None) -> None:
        if self._error is not None:
            return
        acc = self._acc or self._new_accumulator()
        end = self.reader.end
        if state is None and end is not None and end.error is error:
            state = end.state
        if error is self._cancelled:
            state = "cancelled"
        if state is not None and isinstance(error, RxgptError):
            error.partial = acc.completion(state, error)
            self._result = error.partial
        else:
            self._result = partial_completion(acc, error)
        self._error = error
        self._finished.set()

    # -- results ------------------------------------------------------------------------

    def _so_far(self) -> Completion:
        return (self._acc or Accumulator()).completion("truncated")


def subscribe(
    client: Redis,
    key: str,
    *,
    after: str | None = None,
    block: float = DEFAULT_BLOCK,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    replay: ReplayPolicy = "all",
    answer_timeout: float = ANSWER_TIMEOUT,
) -> RelayedStream:
    """Follow the relayed stream ``key``: from its start, or after entry ID ``after``.

    ``block`` bounds one blocking read (and so the lease check's poll interval);
    ``start_timeout`` is how long to wait for a stream that has not started yet;
    ``answer_timeout`` how long beyond its own wait Redis may leave a command unanswered
    before the stream ends with a :class:`~rxgpt.TransportError` (a hung Redis).
    """
    return RelayedStream(
        client, key, after=after, block=block, start_timeout=start_timeout, replay=replay,
        answer_timeout=answer_timeout,
    )  # fmt: skip
