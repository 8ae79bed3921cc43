"""The mock server's engine: one loop of decode steps for every running sequence (vLLM-style).

Strategy (continuous batching, as an inference server does it):

* A request is a :class:`Sequence`: a plan of pre-encoded events, each labelled with the
  decode step that emits it (0: before the first token, e.g. the role chunk, sent at once),
  and the writer of its response.
* ``max_num_seqs`` slots; a sequence that finds none waits in a FIFO queue. A sequence in a
  slot first prefills (:meth:`Timing.prefill_seconds`), then joins its *batch*: the
  sequences that share decode settings (``itl_ms``, ``itl_std_ms``; normally all of them).
* ONE task runs every batch's steps against absolute deadlines (step ``k + 1`` is due at the
  schedule of step ``k`` plus one step time, however late step ``k`` ran, so there is no
  drift). A step writes the next chunk of every sequence of the batch, one write each,
  straight to the transport (no coroutine, no task, no sleep per stream): clients see the
  burst a real server sends. The step time is ``itl_ms`` (with jitter) times the load factor.
* A sequence ends when its plan is exhausted, a fault ends it, or its client goes away; its
  slot goes to the head of the queue at once.

The engine also feeds :class:`~rxgpt.mock._metrics.Metrics` and, when enabled, the
ground-truth :class:`~rxgpt.mock._timeline.TimelineRecorder`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import random
import time
from array import array
from collections.abc import Iterator, Mapping
from collections.abc import Sequence as Seq
from typing import Any, Protocol

from ._faults import FaultOptions
from ._metrics import Metrics
from ._timeline import RequestRecord, TimelineRecorder
from ._timing import Timing, load_factor

__all__ = ["Engine", "Sequence", "Sink"]

_EPSILON = 0.0001  # work due within this many seconds runs in the current pass
_PASS_BUDGET = 0.005  # seconds a pass may spend catching up before the loop gets a turn
_ZERO_STEP_RUN = 256  # steps a sequence runs in a row when steps take 0 ms
_TURN_MARGIN = 0.002  # a handler waits for a step due within this many seconds
_TURNS_AT_ONCE = 16  # waiting handlers let go per turn of the loop (before a timed step)
_SPIN = 0.0015  # how long before a step the loop stops sleeping and only yields
_LATENESS_KEPT = 1 << 20  # the last step latenesses kept for lateness()


class Sink(Protocol):
    """Where a sequence's bytes go (:class:`~rxgpt.mock._faults.BodyWriter` for streams)."""

    def send(self, data: bytes) -> bool:
        """Write now; False when the client has gone away."""

    def send_finish(self) -> bool:
        """End the body's encoding (gzip); False when the client has gone away."""


class _NoSink:
    """The sink of a non-streamed answer: it only takes time."""

    def send(self, data: bytes) -> bool:
        return True

    def send_finish(self) -> bool:
        return True


class Framing(Protocol):
    """The fault events of a wire protocol (see :class:`~rxgpt.mock._faults.Framing`)."""

    def garbage(self, index: int) -> bytes: ...

    def error(self, index: int) -> Seq[bytes]: ...


class Sequence:
    """One request in the engine: its planned events, its writer, its faults and its times.

    ``outcome`` tells the handler what is left to do once the engine lets go of it: ``None``
    (end the body), ``"stall"``, ``"endless"`` or ``"drop"`` (run that fault), ``"gone"``.
    """

    __slots__ = (
        "admitted",
        "arrived",
        "batch",
        "done",
        "finish",
        "first_at",
        "framing",
        "head",
        "index",
        "last_at",
        "outcome",
        "output_tokens",
        "plan",
        "prompt_tokens",
        "ready_at",
        "record",
        "sink",
        "step",
        "timing",
        "triggers",
    )

    def __init__(
        self,
        plan: Iterator[tuple[float, bytes]],
        timing: Timing,
        *,
        prompt_tokens: int,
        output_tokens: int,
        finish: str = "stop",
        sink: Sink | None = None,
        faults: FaultOptions | None = None,
        framing: Framing | None = None,
    ) -> None:
        self.plan = plan
        self.timing = timing
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.finish = finish
        self.sink: Sink = sink or _NoSink()
        self.framing = framing
        self.triggers = _triggers(faults) if faults is not None else {}
        self.head: tuple[float, bytes] | None = next(plan, None)
        self.index = 0
        self.step = 0
        self.outcome: str | None = None
        self.done: asyncio.Future[str | None] | None = None
        self.record: RequestRecord | None = None
        self.batch: _Batch | None = None
        self.ready_at = 0.0
        self.arrived = self.admitted = self.first_at = self.last_at = 0.0

    @classmethod
    def silent(cls, steps: int, timing: Timing, **kwargs: Any) -> Sequence:
        """A sequence that writes nothing: a non-streamed answer of ``steps`` decode steps."""
        return cls(((float(k), b"") for k in range(1, steps + 1)), timing, **kwargs)

    def emit(self, upto: float, scheduled: float) -> bool:
        """Write the events labelled ``<= upto`` in one write; False once the sequence ended."""
        head = self.head
        if head is None:
            return self._end(None)
        if head[0] > upto:
            return True
        if self.triggers:
            return self._emit_checked(upto, scheduled)
        # The hot path: no faults; usually exactly one event.
        plan = self.plan
        data = head[1]
        count = 1
        head = next(plan, None)
        if head is not None and head[0] <= upto:
            parts = [data]
            while head is not None and head[0] <= upto:
                parts.append(head[1])
                head = next(plan, None)
            data = b"".join(parts)
            count = len(parts)
        self.head = head
        self.index += count
        if data:
            if not self.sink.send(data):
                return self._end("gone")
            if self.record is not None:
                # the actual time of this write (loop.time() is time.monotonic())
                self.record.add(self.step, scheduled, time.monotonic(), count, len(data))
        return True if head is not None else self._end(None)

    def _emit_checked(self, upto: float, scheduled: float) -> bool:
        """:meth:`emit` with fault triggers (and the timeline)."""
        head = self.head
        parts: list[bytes] = []
        plan, triggers = self.plan, self.triggers
        ending: str | None = None
        ended = False
        while head is not None and head[0] <= upto:
            data = head[1]
            if triggers:
                fault = triggers.get(self.index)
                if fault is not None:
                    ending = self._fault(fault, parts)
                    if ending != "garbage":
                        ended = True
                        break
                    if self.framing is not None:
                        data = self.framing.garbage(self.index)
                    ending = None
            parts.append(data)
            self.index += 1
            head = next(plan, None)
        self.head = head
        if parts:
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            if data:
                if not self.sink.send(data):
                    return self._end("gone")
                if self.record is not None:
                    # the actual time of this write (loop.time() is time.monotonic())
                    self.record.add(self.step, scheduled, time.monotonic(), len(parts), len(data))
        if ended:
            return self._end(ending)
        if head is None:
            return self._end(_late_interrupt(self.triggers))
        return True

    def _fault(self, fault: str, parts: list[bytes]) -> str | None:
        """Apply the fault before event :attr:`index`: the outcome that ends the sequence."""
        if fault == "error":
            if self.framing is not None:
                parts.extend(self.framing.error(self.index))
            return None
        return fault  # garbage (handled by the caller), drop, stall, endless

    def _end(self, outcome: str | None) -> bool:
        if outcome is None and not self.sink.send_finish():
            outcome = "gone"
        self.outcome = outcome
        self.head = None
        return False


def _triggers(faults: FaultOptions) -> dict[int, str]:
    """Event index -> the fault that fires just before that event is written."""
    triggers: dict[int, str] = {}
    if faults.garbage_at is not None:
        triggers[faults.garbage_at] = "garbage"
    if faults.error_at is not None:
        triggers[faults.error_at] = "error"
    if faults.endless_line:
        triggers[1] = "endless"
    if faults.stall_after is not None:
        triggers[faults.stall_after] = "stall"
        triggers[-1] = "stall"
    if faults.drop_after is not None:
        triggers[faults.drop_after] = "drop"
        triggers[-1] = "drop"
    return triggers


def _late_interrupt(triggers: Mapping[int, str]) -> str | None:
    """A drop or stall whose index was past the last event happens at the end."""
    return triggers.get(-1)


class _Batch:
    """Sequences that share decode steps, and the schedule of their next step."""

    __slots__ = ("cursor", "key", "last_at", "members", "next_at", "timing")

    def __init__(self, key: tuple[float, float], timing: Timing) -> None:
        self.key = key
        self.timing = timing
        self.members: list[Sequence] = []
        self.next_at: float | None = None
        self.last_at: float | None = None
        self.cursor = 0


class Engine:
    """The decode loop of one server process (see the module docstring).

    Args:
        max_num_seqs: slots (``None``: unlimited).
        time_factor_under_load: step time multiplier with ``max_num_seqs`` sequences.
        metrics: what the engine observes.
        recorder: the ground-truth timeline, if any.
        seed: seed of the step-time jitter.
    """

    def __init__(
        self,
        *,
        max_num_seqs: int | None,
        time_factor_under_load: float,
        metrics: Metrics,
        recorder: TimelineRecorder | None = None,
        seed: int = 0,
    ) -> None:
        self.max_num_seqs = max_num_seqs
        self.factor = time_factor_under_load
        self.metrics = metrics
        self.recorder = recorder
        self._rng = random.Random(seed)
        self.running = 0
        self.waiting: collections.deque[Sequence] = collections.deque()
        self._prefilling: list[tuple[float, int, Sequence]] = []
        self._batches: dict[tuple[float, float], _Batch] = {}
        self._ids = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._wake_at: float | None = None
        self._lateness = array("d")
        self._turns: collections.deque[asyncio.Future[bool]] = collections.deque()

    # ----------------------------------------------------------------- public

    def gauges(self) -> tuple[int, int, float]:
        """(running, waiting, slot usage 0..1) for ``/metrics``."""
        usage = self.running / self.max_num_seqs if self.max_num_seqs else 0.0
        return self.running, len(self.waiting), usage

    async def wait_turn(self) -> None:
        """Wait for the next decode step if it is due (request handling yields to steps).

        A real server decodes in its own process; here the handlers share the loop with the
        engine, so a burst of new requests would delay the running streams' steps. A handler
        calls this before its work: when a step (or a prefill's end) is due within
        :data:`_TURN_MARGIN`, it waits. The engine lets waiting handlers go in order
        (:meth:`_let_go`): a few at a time between steps while the next one is further off
        than the margin, so hundreds arriving at once do their work between steps instead
        of in one turn that outlasts a step; a handler let go so finds the next step close
        (those let go before it took the time) waits again, first in line. And every step
        lets the first in line go unconditionally, so a handler never waits for ever when
        no gap comes (steps shorter than the margin, an engine behind its schedule).
        """
        due = self._next_due()
        if due is None or self._task is None:
            return
        loop = asyncio.get_running_loop()
        if due - loop.time() > _TURN_MARGIN:
            return
        turn: asyncio.Future[bool] = loop.create_future()
        self._turns.append(turn)
        while not await turn and self._task is not None:
            due = self._next_step(timed=True)
            if due is None or due - loop.time() > _TURN_MARGIN:
                return
            turn = loop.create_future()
            self._turns.appendleft(turn)

    def lateness(self) -> list[float]:
        """How late (seconds) each recent decode step ran against its schedule."""
        return list(self._lateness)

    async def run(
        self, sequence: Sequence, route: str, *, stream: bool, arrived: float | None = None
    ) -> str | None:
        """Serve ``sequence`` to its end; returns its :attr:`Sequence.outcome`.

        ``arrived``: when its request reached the server (``loop.time()``; default now), so
        that the time its handler spent waiting for turns counts in its queueing and TTFT.
        Cancelling the caller (the client went away) takes the sequence out at once.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        sequence.arrived = now if arrived is None else arrived
        if self.recorder is not None:
            sequence.record = RequestRecord(
                next(self._ids),
                route,
                stream,
                sequence.prompt_tokens,
                sequence.arrived,
                arrived_unix=time.time() - (now - sequence.arrived),
            )
        if not sequence.emit(0, now):  # the events before the first token
            self._finished(sequence, now)
            return sequence.outcome
        done: asyncio.Future[str | None] = loop.create_future()
        sequence.done = done
        self._ensure_task()
        if self.max_num_seqs is None or self.running < self.max_num_seqs:
            self._admit(sequence, now)
        else:
            self.waiting.append(sequence)
        try:
            return await done
        finally:
            # (cancelling the handler cancels the future it awaits: `done` is then cancelled,
            # not pending; an engine that stopped cancelled it too, and has let go of all)
            live = self._task is not None and not self._task.done()
            if live and (not done.done() or done.cancelled()):
                self._discard(sequence)

    async def close(self) -> None:
        """Stop the loop (the server is shutting down)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # a loop that failed already failed its streams (see _stopped)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.recorder is not None:
            self.recorder.close()

    # ----------------------------------------------------------------- scheduling

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            task = asyncio.get_running_loop().create_task(self._loop(), name="rxgpt-engine")
            task.add_done_callback(self._stopped)
            self._task = task

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """The loop ended (cancelled at shutdown, or a bug): no handler waits forever."""
        error = None if task.cancelled() else task.exception()
        pending = [*self.waiting, *(entry[2] for entry in self._prefilling)]
        pending += [member for batch in self._batches.values() for member in batch.members]
        self.waiting.clear()
        self._prefilling.clear()
        self._batches.clear()
        self.running = 0
        for sequence in pending:
            done = sequence.done
            if done is not None and not done.done():
                if error is None:
                    done.cancel()
                else:
                    done.set_exception(RuntimeError(f"the mock engine stopped: {error!r}"))
        for turn in self._turns:
            if not turn.done():
                turn.set_result(True)
        self._turns.clear()

    def _admit(self, sequence: Sequence, now: float) -> None:
        """Give ``sequence`` a slot: its prefill starts ``now``."""
        self.running += 1
        sequence.admitted = now
        if sequence.record is not None:
            sequence.record.admitted = now
        self.metrics.queue.observe(now - sequence.arrived)
        factor = load_factor(self.running, self.max_num_seqs, self.factor)
        ready = now + sequence.timing.prefill_seconds(sequence.prompt_tokens) * factor
        sequence.ready_at = ready
        heapq.heappush(self._prefilling, (ready, id(sequence), sequence))
        self._poke(ready)

    def _poke(self, when: float) -> None:
        """Wake the loop if it sleeps past ``when``."""
        wake = self._wake
        if wake is not None and not wake.done() and (self._wake_at is None or when < self._wake_at):
            wake.set_result(None)

    def _release(self, now: float) -> None:
        """A slot is free: the head of the queue takes it."""
        self.running -= 1
        while self.waiting and (self.max_num_seqs is None or self.running < self.max_num_seqs):
            head = self.waiting.popleft()
            if head.done is not None and not head.done.done():
                self._admit(head, now)

    def _discard(self, sequence: Sequence) -> None:
        """The client went away (the handler was cancelled): take the sequence out of the
        queue, its prefill or its batch, and end it as an abort (its slot freed at once)."""
        sequence.outcome = "gone"
        sequence.head = None
        if sequence.admitted:
            if sequence.batch is not None:
                with contextlib.suppress(ValueError):
                    sequence.batch.members.remove(sequence)
            else:
                with contextlib.suppress(ValueError):
                    self._prefilling.remove((sequence.ready_at, id(sequence), sequence))
                    heapq.heapify(self._prefilling)
        else:
            with contextlib.suppress(ValueError):
                self.waiting.remove(sequence)
        self._finished(sequence, asyncio.get_running_loop().time())

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            let_go = self._let_go(loop.time()) if self._turns else False
            wake = self._next_due()
            now = loop.time()
            spin = self._spin()
            if let_go and (wake is None or wake > now + _EPSILON):
                await asyncio.sleep(0)  # the handlers let go run; then look again
                continue
            if wake is not None and now + _EPSILON < wake <= now + spin:
                # The selector wakes up to 1 ms late (its timeout is rounded up to whole
                # ms): the last stretch before a step is spent yielding, not sleeping.
                await asyncio.sleep(0)
                continue
            if wake is None or wake > now + _EPSILON:
                recorder = self.recorder
                if recorder is not None and recorder.pending:
                    # The pause before the next step writes the timeline's lines.
                    until = None if wake is None else wake - spin - _TURN_MARGIN
                    if recorder.write_pending(until, loop.time):
                        continue  # (the clock moved on: look again)
                future = self._wake = loop.create_future()
                self._wake_at = wake
                handle = None
                if wake is not None:
                    handle = loop.call_at(wake - spin, _resolve, future)
                try:
                    await future
                finally:
                    if handle is not None:
                        handle.cancel()
                    self._wake = None
                continue
            self._run_due(loop.time())
            if self._turns:
                self._let_go(loop.time(), stepped=True)
            await asyncio.sleep(0)  # let the writes go out and new requests in

    def _let_go(self, now: float, stepped: bool = False) -> bool:
        """Let waiting handlers go (see :meth:`wait_turn`); True when some went.

        With no timed step coming (0 ms steps) all go. Else, just after a step
        (``stepped``) the first in line goes whatever comes next; between steps, while the
        next is further off than :data:`_TURN_MARGIN`, :data:`_TURNS_AT_ONCE` go, each to
        look again (waking every waiting handler after each step would cost, at 1,024
        streams, as much as the step's writes).
        """
        timed = self._next_step(timed=True)
        turns = self._turns
        if timed is None:
            count, final = len(turns), True
        elif stepped:
            count, final = 1, True
        elif timed - now > _TURN_MARGIN:
            count, final = _TURNS_AT_ONCE, False
        else:
            return False
        went = False
        while turns and count:
            turn = turns.popleft()
            if not turn.done():  # (a handler whose client went away is cancelled)
                turn.set_result(final)
                count -= 1
                went = True
        return went

    def _spin(self) -> float:
        """How long before a step the loop stops sleeping: :data:`_SPIN`, at most a tenth
        of the shortest step time (so yielding costs at most ~10 % of a CPU)."""
        spin = _SPIN
        for batch in self._batches.values():
            if batch.next_at is not None:
                spin = min(spin, batch.timing.itl_ms * 1e-4)
        return spin

    def _next_due(self) -> float | None:
        """When the engine next has work: a prefill's end or a batch's step."""
        due = self._next_step()
        if self._prefilling:
            ready = self._prefilling[0][0]
            if due is None or ready < due:
                due = ready
        return due

    def _next_step(self, *, timed: bool = False) -> float | None:
        """When the next step of a batch is due (``timed``: of a batch with a schedule,
        steps longer than 0 ms)."""
        due = None
        for batch in self._batches.values():
            at = batch.next_at
            if (
                at is not None
                and (due is None or at < due)
                and (not timed or batch.timing.itl_ms > 0)
            ):
                due = at
        return due

    def _run_due(self, now: float) -> None:
        """Run, in schedule order, what is due: rounds of at most one step per batch.

        A batch that is behind its schedule (always, with 0 ms steps) runs further rounds
        until the pass has taken :data:`_PASS_BUDGET`; then the event loop gets its turn
        (I/O, new requests) and the next pass catches up.
        """
        clock = time.monotonic
        deadline = clock() + _PASS_BUDGET
        prefilling = self._prefilling
        while True:
            limit = now + _EPSILON
            stepped: set[tuple[float, float]] = set()
            while True:
                batch = None
                due = prefilling[0][0] if prefilling else None
                for key, candidate in self._batches.items():
                    at = candidate.next_at
                    if at is not None and key not in stepped and (due is None or at < due):
                        due, batch = at, candidate
                if due is None or due > limit:
                    break
                if batch is None:
                    ready, _, sequence = heapq.heappop(prefilling)
                    self._join(sequence, ready)
                else:
                    stepped.add(batch.key)
                    if batch.timing.itl_ms <= 0:
                        self._free_run(batch, now, deadline)
                    else:
                        self._step(batch, now)
            now = clock()
            if not stepped or now >= deadline:
                return

    def _join(self, sequence: Sequence, ready: float) -> None:
        """Prefill done: the sequence takes part in its batch's next step."""
        key = sequence.timing.batch_key
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(key, sequence.timing)
        if batch.next_at is None:
            batch.next_at = ready
        sequence.batch = batch
        batch.members.append(sequence)

    def _free_run(self, batch: _Batch, now: float, deadline: float) -> None:
        """Steps of 0 ms: no schedule to keep in lockstep, so each sequence in turn runs
        :data:`_ZERO_STEP_RUN` steps in a row (one write each), until ``deadline``.

        Writing a stream's chunks back to back is what keeps the kernel's cost per write
        low (a socket that already holds unread data takes more cheaply than one its reader
        just emptied); the turn moves on to the next sequence at the next pass.
        """
        members = batch.members
        metrics = self.metrics
        clock = time.monotonic
        while members and clock() < deadline:
            sequence = members[batch.cursor % len(members)]
            alive = True
            for _ in range(_ZERO_STEP_RUN):
                step = sequence.step = sequence.step + 1
                if step == 1:
                    self._first_token(sequence, now)
                metrics.steps += 1
                if not sequence.emit(step, now):
                    alive = False
                    break
            if alive:
                batch.cursor += 1
            else:
                members.remove(sequence)
                self._finished(sequence, clock())
        if not members:
            batch.next_at = None
            batch.last_at = None

    def _first_token(self, sequence: Sequence, now: float) -> None:
        """``sequence`` emits its first token now: its TTFT and prefill time are known."""
        sequence.first_at = now
        self.metrics.ttft.observe(now - sequence.arrived)
        self.metrics.prefill.observe(now - sequence.admitted)
        if sequence.record is not None:
            sequence.record.first_token = now

    def _step(self, batch: _Batch, now: float) -> None:
        """One decode step: the next chunk of every sequence of ``batch``."""
        scheduled = batch.next_at
        assert scheduled is not None
        metrics = self.metrics
        lateness = now - scheduled
        metrics.steps += 1
        metrics.lateness.observe(max(lateness, 0.0))
        if len(self._lateness) >= _LATENESS_KEPT:
            del self._lateness[: _LATENESS_KEPT // 2]
        self._lateness.append(lateness)
        members = batch.members
        kept: list[Sequence] = []
        ended: list[Sequence] = []
        followers = 0
        for sequence in members:
            step = sequence.step = sequence.step + 1
            if step == 1:
                self._first_token(sequence, now)
            else:
                followers += 1
            if sequence.emit(step, scheduled):
                kept.append(sequence)
            else:
                ended.append(sequence)
        if followers and batch.last_at is not None:
            metrics.itl.observe(max(now - batch.last_at, 0.0), followers)
        batch.members = kept
        batch.last_at = now
        for sequence in ended:
            self._finished(sequence, now)
        if kept:
            factor = load_factor(self.running, self.max_num_seqs, self.factor)
            batch.next_at = scheduled + batch.timing.step_seconds(self._rng, factor)
        else:
            batch.next_at = None
            batch.last_at = None

    def _finished(self, sequence: Sequence, now: float) -> None:
        """The sequence ended: free its slot, account for it, wake its handler."""
        sequence.last_at = now
        if sequence.admitted:
            self._release(now)
        if sequence.outcome is not None:  # cut short: the tokens of the steps it took
            generated = sequence.step * sequence.timing.tokens_per_chunk
            sequence.output_tokens = min(sequence.output_tokens, generated)
        metrics = self.metrics
        metrics.prompt_tokens += sequence.prompt_tokens
        metrics.generation_tokens += sequence.output_tokens
        reason = sequence.finish if sequence.outcome is None else "abort"
        metrics.finished[reason if reason in metrics.finished else "stop"] += 1
        metrics.e2e.observe(now - sequence.arrived)
        metrics.request_prompt.observe(sequence.prompt_tokens)
        metrics.request_generation.observe(sequence.output_tokens)
        if sequence.first_at:
            metrics.decode.observe(now - sequence.first_at)
            if sequence.output_tokens > 1 and sequence.outcome is None:
                metrics.tpot.observe((now - sequence.first_at) / (sequence.output_tokens - 1))
        self._record_end(sequence, now)
        done = sequence.done
        if done is not None and not done.done():
            done.set_result(sequence.outcome)

    def _record_end(self, sequence: Sequence, now: float) -> None:
        record = sequence.record
        if record is not None and self.recorder is not None and record.finished is None:
            record.finished = now
            record.outcome = sequence.outcome or "done"
            record.output_tokens = sequence.output_tokens
            self.recorder.finished(record)
            # Its line is written when the loop waits for a step (see _loop): wake a loop
            # that sleeps; with no loop, write it now.
            if self._task is None or self._task.done():
                self.recorder.write_pending()
            elif self._wake is not None:
                _resolve(self._wake)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
