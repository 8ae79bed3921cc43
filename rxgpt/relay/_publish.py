"""Publishing: one stream of deltas written to one Redis Stream key, off the producer's hot path.

Strategy: the relay subscribes to the source in batches (one list per network read, see
``rxgpt._fusion``). Its callback only appends the read's list to a queue and wakes a writer
task, so the producer's own subscribers never wait for Redis. The writer takes everything
queued, encodes it as one entry and sends it in one pipelined round trip of ``XADD ...
NOMKSTREAM MAXLEN ~ N``: one entry per read while Redis keeps up; when it is slower than the
reads, the reads queued meanwhile share an entry (up to 1,000 deltas) and a round trip, so
a busy Redis gets fewer, larger writes instead of a growing queue. Every third of the
lease (in the pipeline of a write, or alone while no delta comes) the writer renews the
producer's lease (``SET KEY:lease ID PX ms``) and the key's TTL. The
start entry is written with the explicit ID ``0-1``, which Redis refuses on a key that
already holds a stream, so two producers can never interleave on one key. The queue is
bounded (``max_pending`` deltas): a relay that falls that far behind fails, typed, and stops
renewing its lease, so its subscribers end with :class:`~rxgpt.StreamInterrupted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from typing import Any

from reactivex import Observable, abc
from redis.exceptions import RedisError, ResponseError

from .._chat_stream import ChatStream
from .._completion import CompletionState
from .._deltas import Delta, Usage, UsageDelta
from .._errors import RxgptError, StreamCancelled, StreamInterrupted, TransportError
from .._fusion import subscribe_batches
from ._bounds import DEFAULT_LEASE, DEFAULT_MAX_PENDING, DEFAULT_MAXLEN, DEFAULT_TTL
from ._connect import Redis, describe, relay_error
from ._encoding import (
    EndInfo,
    StartInfo,
    decode_error,
    decode_start,
    encode_deltas,
    encode_end,
    encode_error,
    encode_start,
)

__all__ = ["Relay", "lease_key", "publish"]

#: The ID of every start entry (explicit, so a second producer on the key is refused).
START_ID = "0-1"


def lease_key(key: str) -> str:
    """The Redis key of the producer's lease for the stream at ``key``."""
    return key + ":lease"


class Relay:
    """Writes one stream of deltas to the Redis Stream ``key``: start, reads, end.

    Create it, then :meth:`attach` a source (a :class:`~rxgpt.ChatStream`, or any observable
    of deltas); or call :func:`publish`. ``await relay.finished()`` waits until the end entry
    is written. Options:

    - ``protocol``: written in the start entry, so readers accumulate as the producer does
      (default: the ChatStream's, else "openai-chat");
    - ``maxlen``: ``MAXLEN ~`` bound of the key; ``ttl``: seconds the key lives after its
      last write; ``lease``: seconds without renewal after which readers consider the
      producer dead (they notice within ``lease`` plus their poll interval);
    - ``max_pending``: deltas that may wait for Redis before the relay fails.
    """

    def __init__(
        self,
        client: Redis,
        key: str,
        *,
        protocol: str | None = None,
        maxlen: int = DEFAULT_MAXLEN,
        ttl: float = DEFAULT_TTL,
        lease: float = DEFAULT_LEASE,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if not key:
            raise ValueError("the relay key must not be empty")
        if lease <= 0 or ttl < lease or maxlen < 1 or max_pending < 1:
            raise ValueError("need lease > 0, ttl >= lease, maxlen >= 1 and max_pending >= 1")
        self.client = client
        self.key = key
        self.protocol = protocol
        self.maxlen = maxlen
        self.ttl_ms = int(ttl * 1000)
        self.lease_ms = max(1, int(lease * 1000))
        self.max_pending = max_pending
        #: The most deltas one entry holds (reads queued while Redis was busy are merged).
        self.max_entry_deltas = 1000
        #: This producer's id, written in the start entry and the lease.
        self.producer = uuid.uuid4().hex
        #: The ID of the last entry written ("" before the first).
        self.last_id = ""
        #: Entries written so far (the start entry included).
        self.entries = 0
        #: Deltas received from the source so far.
        self.deltas = 0
        #: Network round trips to Redis so far.
        self.round_trips = 0
        #: Why the relay stopped writing before the end, if it did.
        self.error: RxgptError | None = None
        self._pending: deque[list[Delta] | EndInfo] = deque()
        self._pending_deltas = 0
        self._usage: Usage | None = None
        self._ended = False  # the source ended (the end is queued)
        self._renewed = 0.0  # when the last renewal of the lease was sent (monotonic)
        self._wake: asyncio.Event | None = None
        self._started: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscription: abc.DisposableBase | None = None

    # -- attaching --------------------------------------------------------------------

    def attach(self, source: ChatStream | Observable[Delta]) -> Relay:
        """Subscribe to ``source`` and start the writer task (in the running loop)."""
        if self._wake is not None:
            raise RuntimeError("this relay is already attached to a source")
        if isinstance(source, ChatStream):
            self.protocol = self.protocol or source.protocol
            source = source.observable
        self.protocol = self.protocol or "openai-chat"
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._started = asyncio.Event()
        self._subscription = subscribe_batches(
            source, self._on_batch, self._on_error, self._on_completed
        )  # (a source that pushes at once only fills the queue: the writer starts next)
        self._task = loop.create_task(self._run())
        return self

    @property
    def done(self) -> bool:
        """True once the end entry is written, or the relay failed."""
        return self._task is not None and self._task.done()

    async def started(self, timeout: float | None = 10.0) -> None:
        """Wait until the start entry is written (the key is this producer's).

        Raises the relay's typed error if it failed to start (Redis unreachable, the key
        holds another stream), before the source need be started.
        """
        if self._task is None or self._started is None:
            raise RuntimeError("attach() the relay to a source first")
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait(
                    [self._task, asyncio.ensure_future(self._started.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
        except TimeoutError:
            raise TransportError(
                f"the relay to {describe(self.client)} key {self.key!r} could not write its "
                f"start entry within {timeout:g}s"
            ) from None
        if self.error is not None:
            raise self.error
        if not self._started.is_set() and self._task.done():
            self._task.result()  # a bug: raise it

    async def finished(self, timeout: float | None = 10.0) -> str:
        """Wait until the end entry is written; return its ID.

        Raises the relay's typed error if it failed (Redis unreachable or too slow, a delta
        that is not JSON), and a :class:`~rxgpt.TransportError` after ``timeout`` seconds
        (None: no bound) if the source has not ended or Redis has not taken the writes.
        """
        if self._task is None:
            raise RuntimeError("attach() the relay to a source first")
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._task)
        except TimeoutError:
            raise TransportError(
                f"the relay to {describe(self.client)} key {self.key!r} did not finish "
                f"writing within {timeout:g}s ({len(self._pending)} reads still queued)"
            ) from None
        if self.error is not None:
            raise self.error
        return self.last_id

    async def aclose(self, timeout: float = 2.0) -> None:
        """Stop: end the stream as cancelled if the source has not ended, then stop writing."""
        if self._subscription is not None:
            self._subscription.dispose()
        if self._task is None:
            return
        if not self._ended:
            self._on_error(StreamCancelled("the producer closed the relay before the end"))
        with contextlib.suppress(RxgptError):
            await self.finished(timeout)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def __aenter__(self) -> Relay:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the source's callbacks (the hot path: queue and wake, nothing more) ----------

    def _on_batch(self, batch: list[Delta]) -> None:
        if self._ended or self.error is not None:
            return
        self._pending.append(batch)
        self.deltas += len(batch)
        self._pending_deltas += len(batch)
        if self._pending_deltas > self.max_pending:
            self._fail(
                TransportError(
                    f"the relay to {describe(self.client)} key {self.key!r} fell behind: "
                    f"{self._pending_deltas} deltas waiting for Redis (max_pending "
                    f"{self.max_pending}); it stopped"
                )
            )
            return
        assert self._wake is not None
        self._wake.set()

    def _on_error(self, error: Exception) -> None:
        if self._ended:
            return
        partial = error.partial if isinstance(error, RxgptError) else None
        state: CompletionState
        if partial is not None:
            state = partial.state
        elif isinstance(error, StreamCancelled):
            state = "cancelled"
        else:
            state = "truncated" if isinstance(error, StreamInterrupted) else "error"
        typed = error if isinstance(error, RxgptError) else decode_error(encode_error(error))
        self._end(EndInfo(state, self.deltas, None, typed))

    def _on_completed(self) -> None:
        if not self._ended:
            self._end(EndInfo("complete", self.deltas))

    def _end(self, info: EndInfo) -> None:
        self._ended = True
        self._pending.append(info)
        if self._wake is not None:
            self._wake.set()

    def _fail(self, error: RxgptError) -> None:
        self.error = error
        self._pending.clear()
        if self._subscription is not None:
            self._subscription.dispose()
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    # -- the writer task ----------------------------------------------------------------

    async def _run(self) -> None:
        if self.error is not None:  # failed while the source pushed at once
            return
        try:
            await self._start()
            renew_every = self.lease_ms / 3000
            assert self._wake is not None
            while True:
                if not self._pending:
                    self._wake.clear()
                    wait = renew_every - (time.monotonic() - self._renewed)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max(wait, 0)):
                            await self._wake.wait()
                renew = time.monotonic() - self._renewed >= renew_every
                if await self._write(renew):
                    return
        except asyncio.CancelledError:
            if self.error is None:
                raise
        except (RedisError, OSError, RxgptError) as error:
            self._fail(relay_error(error, self.client, f"relaying to key {self.key!r}"))

    async def _start(self) -> None:
        """Write the start entry (refused if the key holds a stream), TTL and lease."""
        assert self.protocol is not None
        start = encode_start(StartInfo(self.protocol, self.producer, self.lease_ms))
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.key, {"seq": 0, "type": "start", "d": start}, id=START_ID)
        pipe.pexpire(self.key, self.ttl_ms)
        pipe.set(lease_key(self.key), self.producer, px=self.lease_ms)
        sent = time.monotonic()
        results = await pipe.execute(raise_on_error=False)
        self._renewed = sent
        self.round_trips += 1
        for result in results[1:]:
            if isinstance(result, Exception):
                raise result
        if isinstance(results[0], ResponseError):
            mine = await self.client.xrange(self.key, START_ID, START_ID)
            if not mine or _producer_of(mine[0][1] or {}) != self.producer:  # not a retried write
                raise RxgptError(
                    f"the Redis key {self.key!r} at {describe(self.client)} already holds a "
                    "relayed stream (another producer's, or a finished answer's): relay "
                    "each answer to a new key"
                )
        elif isinstance(results[0], Exception):
            raise results[0]
        self.last_id = START_ID
        self.entries = 1
        assert self._started is not None
        self._started.set()

    async def _write(self, renew: bool) -> bool:
        """Send what is queued (and the renewals when due) in one round trip; True at the end."""
        items = list(self._pending)
        self._pending.clear()
        self._pending_deltas = 0
        if not items and not renew:
            return False
        pipe = self.client.pipeline(transaction=False)
        entries: list[dict[Any, Any]] = []
        merged: list[Delta] = []  # the reads queued since the last write: one entry
        end = False
        for item in items:
            if isinstance(item, EndInfo):
                if merged:
                    entries.append(self._deltas_entry(merged, len(entries)))
                    merged = []
                info = EndInfo(item.state, item.deltas, self._usage, item.error)
                entries.append({"seq": self.entries + len(entries), "type": "end"})
                entries[-1]["d"] = encode_end(info)
                end = True
            else:
                merged.extend(item)
                if len(merged) >= self.max_entry_deltas:
                    entries.append(self._deltas_entry(merged, len(entries)))
                    merged = []
        if merged:
            entries.append(self._deltas_entry(merged, len(entries)))
        for fields in entries:
            pipe.xadd(self.key, fields, maxlen=self.maxlen, approximate=True, nomkstream=True)
        xadds = len(entries)
        if renew or end:  # the TTL and the lease: every third of the lease, and at the end
            pipe.pexpire(self.key, self.ttl_ms)
            if end:
                pipe.delete(lease_key(self.key))
            else:
                pipe.set(lease_key(self.key), self.producer, px=self.lease_ms)
        sent = time.monotonic()
        results = await pipe.execute()
        if renew:
            self._renewed = sent
        self.round_trips += 1
        for result in results[:xadds]:
            if result is None:
                raise TransportError(
                    f"the relayed stream {self.key!r} vanished from {describe(self.client)} "
                    "(expired, deleted, or lost in a Redis restart without persistence)"
                )
            self.last_id = result.decode() if isinstance(result, bytes) else str(result)
        self.entries += xadds
        return end

    def _deltas_entry(self, batch: list[Delta], offset: int) -> dict[Any, Any]:
        """The fields of a deltas entry (noting the usage it carries, for the end entry)."""
        for delta in batch:
            if delta.__class__ is UsageDelta:
                self._usage = delta.usage
        return {"seq": self.entries + offset, "type": "deltas", "d": encode_deltas(batch)}


def _producer_of(fields: dict[Any, Any]) -> str | None:
    """The producer id in a start entry's fields (None if it is not a start entry)."""
    data = fields.get(b"d", fields.get("d"))
    try:
        return decode_start(data).producer if data is not None else None
    except RxgptError:
        return None


def publish(
    source: ChatStream | Observable[Delta],
    client: Redis,
    key: str,
    **options: Any,
) -> Relay:
    """Relay ``source`` to the Redis Stream ``key`` (see :class:`Relay` for ``options``).

    Call it before the stream starts (or with a ChatStream, whose replay hands the relay the
    deltas it missed); ``await relay.finished()`` when the stream has ended.
    """
    return Relay(client, key, **options).attach(source)
