"""A :class:`ChatStream`: one streamed answer, shared by every subscriber, awaited for its result.

A :class:`ChatStream` is lazy and hot: subscribers (Rx observers, ``async for`` loops, the
built-in accumulator) attach first, and the request is sent when the stream starts (on
:meth:`ChatStream.start`, the first ``async for`` step, or ``await completion()``).
One HTTP request feeds every subscriber through a :class:`~rxgpt.Fanout`; with the
default ``replay="all"`` a subscriber that arrives later still sees every delta.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from reactivex import Observable, abc

from ._accumulate import add_batch, partial_completion
from ._aio import Driven, FlowControl, ObservableIterator
from ._completion import Accumulator, Completion
from ._decoder import stream_specs
from ._deltas import Delta, TextDelta
from ._errors import StreamCancelled, StreamTooLong
from ._fanout import Fanout, ReplayPolicy
from ._fusion import chain, subscribe_observer
from ._replay import DeltaLog
from ._resilience import Progress, Retry, Timeouts, resilient

__all__ = ["DEFAULT_MAX_DELTAS", "ChatStream", "StreamResult"]

#: The most deltas one stream may carry (heartbeats included): the per-stream memory bound.
#: A stream keeps its deltas for late subscribers (``replay="all"``) and for its result,
#: about 100-200 bytes each, so the default bounds an endless stream at some 100 MB, far
#: above real answers (a 128k-token answer is about 128k deltas).
DEFAULT_MAX_DELTAS = 1_000_000


class StreamResult:
    """What a stream of deltas with a result offers: ``partial``, ``await completion()``,
    ``await text()``, ``async for`` and ``text_deltas()``.

    Shared by :class:`ChatStream` and the relay's ``RelayedStream``. A subclass keeps the
    state (``_result``, ``_error``, ``_finished``, ``_fanout``) and says how to
    :meth:`start`, :meth:`cancel` and build the partial result (:meth:`_so_far`).
    """

    _result: Completion | None
    _error: BaseException | None
    _finished: asyncio.Event | None
    _fanout: Fanout[Delta]

    def start(self) -> None:
        """Start the stream (idempotent)."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Stop the stream now."""
        raise NotImplementedError

    @property
    def done(self) -> bool:
        """True once the stream ended (completed, failed or cancelled)."""
        return self._result is not None or self._error is not None

    def _so_far(self) -> Completion:
        """The partial result while the stream runs."""
        raise NotImplementedError

    def _start_driven(self) -> list[Driven]:
        """Start; return the producers' runs that the awaiter of the result drives in its
        own task (none by default: they run on their own)."""
        self.start()
        return []

    def _left_early(self) -> None:
        """An ``async for`` loop ended before the stream did (nothing by default)."""

    @property
    def partial(self) -> Completion:
        """What has been accumulated so far (the final result once done)."""
        if self._result is not None:
            return self._result
        return self._so_far()

    async def completion(self) -> Completion:
        """Wait for the end of the stream and return the :class:`~rxgpt.Completion`.

        Raises the stream's typed error (with ``error.partial``) if it failed. Cancelling
        the awaiting task cancels the stream.
        """
        driven = self._start_driven()
        try:
            if len(driven) == 1:
                await driven[0].drive()
            elif driven:  # (a source of several requests: they run side by side)
                await asyncio.gather(*(run.drive() for run in driven))
            del driven
            if not self.done:  # (the event is made only when there is a wait)
                if self._finished is None:
                    self._finished = asyncio.Event()
                await self._finished.wait()
        except asyncio.CancelledError:
            self.cancel()
            raise
        error = self._error
        if error is not None:
            # The traceback keeps this frame: without `self` and `error` in it, the raised
            # error makes no reference cycle through the stream (freed without the GC).
            del self
            try:
                raise error
            finally:
                del error
        assert self._result is not None
        return self._result

    async def text(self) -> str:
        """Wait for the end of the stream and return the text of choice 0."""
        return (await self.completion()).text

    def __aiter__(self) -> AsyncIterator[Delta]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Delta]:
        iterator: ObservableIterator[Delta] = ObservableIterator(self._fanout.observable)
        self.start()
        try:
            async for delta in iterator:
                yield delta
        finally:
            await iterator.aclose()
            if not self.done:
                self._left_early()

    async def text_deltas(self) -> AsyncIterator[str]:
        """Iterate only the text fragments of choice 0."""
        async for delta in self:
            if type(delta) is TextDelta and delta.choice == 0 and delta.text:
                yield delta.text


class ChatStream(StreamResult):
    """One streamed chat completion: subscribe, iterate, or await its result.

    - ``stream.subscribe(on_next, ...)`` / ``stream.pipe(op, ...)``: Rx access to the
      :class:`~rxgpt.Delta` items (attach before or after start; see ``replay``).
    - ``async for delta in stream``: backpressured iteration; leaving the loop early or
      cancelling the task cancels the request.
    - ``await stream.completion()`` / ``await stream.text()``: the final result; errors are
      raised with ``error.partial`` holding what arrived before them.

    Memory is bounded per stream: past ``max_deltas`` deltas (None: no bound) the stream
    ends with :class:`~rxgpt.StreamTooLong` and the partial.
    """

    def __init__(
        self,
        make_source: Callable[[FlowControl, Progress], Observable[bytes]],
        *,
        protocol: str = "openai-chat",
        replay: ReplayPolicy = "all",
        max_event_bytes: int | None = None,
        heartbeats: bool = False,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        require_done: bool = False,
        max_deltas: int | None = DEFAULT_MAX_DELTAS,
    ) -> None:
        self.protocol = protocol
        self._max_deltas = max_deltas if max_deltas is not None else -1
        self._received = 0  # deltas so far, heartbeats included
        self._flow = FlowControl()
        self._make_source = make_source
        self._specs = stream_specs(
            protocol,
            heartbeats=heartbeats,
            max_event_bytes=max_event_bytes,
            require_done=require_done,
        )
        # One push per network read: the accumulator takes each read's deltas at once,
        # other subscribers get them one by one.
        deltas = resilient(self._attempt, timeouts=timeouts, retry=retry, flow=self._flow)
        # replay="all" keeps the deltas compactly (no GC-tracked object per event)
        log = DeltaLog() if replay == "all" else replay
        self._fanout: Fanout[Delta] = Fanout(deltas, replay=log)
        self._acc = Accumulator(protocol)
        self._result: Completion | None = None
        self._error: BaseException | None = None
        self._finished: asyncio.Event | None = None
        subscribe_observer(self._fanout.observable, self)

    def _attempt(self, progress: Progress) -> Observable[Delta]:
        """One attempt: a request's body decoded into deltas (``decode_stream``'s chain)."""
        return chain(self._make_source(self._flow, progress), *self._specs)

    # -- Rx access --------------------------------------------------------------------

    @property
    def observable(self) -> Observable[Delta]:
        """The deltas as an observable (each subscription attaches to the one request)."""
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

    @property
    def subscriber_errors(self) -> list[BaseException]:
        """Exceptions raised by subscribers (each subscriber was detached and reported)."""
        return self._fanout.subscriber_errors

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Send the request (idempotent). Call from within a running event loop."""
        if not self._fanout.connected and not self.done:
            self._fanout.connect()

    def _start_driven(self) -> list[Driven]:
        # The first request runs in the task that awaits the result, which waits for the
        # end anyway: no task of its own, no event to wake the awaiter (a retry's later
        # attempts run in tasks of their own). Performance: the task and the wake-up cost
        # ~23k instructions, 1.4 % of a one-token stream's (callgrind, 544 streams).
        driven: list[Driven] = []
        self._flow.drivers = driven
        try:
            self.start()
        finally:
            self._flow.drivers = None
        return driven

    def cancel(self) -> None:
        """Stop now: close the response; the result becomes a "cancelled" partial."""
        if self.done:
            return
        self._flow.abort()  # close the response at once, even from inside a subscriber
        error = StreamCancelled("the stream was cancelled")
        self._result = self._acc.completion("cancelled", error)
        error.partial = self._result
        self._error = error
        self._fanout.dispose(error)
        if self._finished is not None:
            self._finished.set()

    async def aclose(self) -> None:
        """Cancel the stream if it is still running."""
        self.cancel()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()

    def _on_batch(self, batch: list[Delta]) -> None:
        # The stream's own accumulator is never detached like a faulty subscriber: a
        # delta it cannot take ends the stream with a typed error.
        error = add_batch(self._acc, batch)
        self._received += len(batch)
        if error is None and self._received > self._max_deltas >= 0:
            error = StreamTooLong(self._received, self._max_deltas)
        if error is not None:
            self._flow.abort()
            self._fanout.dispose(error)

    def _on_completed(self) -> None:
        self._result = self._acc.completion("complete")
        if self._finished is not None:
            self._finished.set()

    def _on_error(self, error: Exception) -> None:
        if self._error is not None:
            return  # already cancelled
        self._result = partial_completion(self._acc, error)
        self._error = error
        if self._finished is not None:
            self._finished.set()

    # -- results ----------------------------------------------------------------------

    def _so_far(self) -> Completion:
        return self._acc.completion("truncated")

    def _left_early(self) -> None:
        self.cancel()  # leaving the loop early (or cancelling its task) cancels the request
