"""Bridges between Rx observables and asyncio: async iteration with backpressure, and back.

Strategy: Rx pushes synchronously and has no backpressure, so the bridge works with the
producer instead: :class:`FlowControl` is a gate the transport awaits before each socket
read, passed as an explicit object (the observables rxgpt builds carry theirs as
``flow``). :func:`to_async_iterable` buffers pushed items in a deque; when the buffer
reaches ``maxsize`` it closes the gate (socket reads pause, the kernel buffers fill, TCP
pushes back on the server) and it reopens it once the consumer has drained half of it.
Leaving the ``async for`` early, or cancelling the consuming task, disposes the
subscription, which closes the HTTP response.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Generic, Protocol, TypeVar

from reactivex import Observable, abc

from ._disposable import NOTHING, Disposer
from ._fusion import Batched, subscribe_observer

__all__ = ["FlowControl", "ObservableIterator", "from_async_iterable", "to_async_iterable"]

_T = TypeVar("_T")


class FlowControl:
    """A gate producers await before reading more: closed while any consumer is full.

    It also carries the consumer's intent when it stops: after :meth:`abort` (a
    cancellation) the producer closes its connection at once instead of draining it; and,
    while a consumer that waits for the end starts the stream, where producers hand over
    their runs for it to drive (:attr:`drivers`).
    """

    __slots__ = ("_open", "_paused_by", "aborted", "drivers", "paused")

    def __init__(self) -> None:
        #: A list while a consumer that will drive the transfer in its own task starts the
        #: stream (see ``ChatStream.completion``): a producer subscribed meanwhile adds its
        #: :class:`Driven` run here instead of starting a task of its own.
        self.drivers: list[Driven] | None = None
        # Made on first use: most streams are never paused (fewer objects per stream).
        self._open: asyncio.Event | None = None
        self._paused_by: set[int] | None = None
        #: The consumer cancelled: the next stop is an abort, not a normal end.
        self.aborted = False
        #: True while some consumer asked the producer to wait (a plain attribute: the
        #: producer checks it after every read).
        self.paused = False

    def abort(self) -> None:
        """Mark the stream as cancelled (the producer then closes at once) and open up."""
        self.aborted = True
        self._paused_by = None
        self._reopen()

    def pause(self, consumer: object) -> None:
        """Close the gate on behalf of ``consumer``."""
        if self._paused_by is None:
            self._paused_by = set()
        self._paused_by.add(id(consumer))
        self.paused = True
        if self._open is not None:
            self._open.clear()

    def resume(self, consumer: object) -> None:
        """Withdraw ``consumer``'s pause; the gate opens when no consumer holds it."""
        if self._paused_by is not None:
            self._paused_by.discard(id(consumer))
            if self._paused_by:
                return
        self._reopen()

    def _reopen(self) -> None:
        self.paused = False
        if self._open is not None:
            self._open.set()

    async def wait(self) -> None:
        """Return when the gate is open (at once in the common case)."""
        if self.paused:
            if self._open is None:
                self._open = asyncio.Event()
            await self._open.wait()


class Driven(Protocol):
    """A producer's run that a consumer drives in its own task (see FlowControl.drivers)."""

    async def drive(self) -> None:
        """Run in the calling task until the consumer has what it waits for."""


_END = object()


class ObservableIterator(Generic[_T]):
    """An async iterator over an observable, subscribed at construction.

    Items pushed by the source are buffered; when the buffer holds ``maxsize`` items the
    producer is paused through ``flow`` and resumed once half of it was consumed. ``flow``
    defaults to the source's own (rxgpt's transport, the operators over it and
    ``ChatStream.observable`` carry the gate of the socket reads behind them); for any
    other source pass the :class:`FlowControl` its producer waits on. The source's error
    is raised from ``__anext__``. :meth:`aclose` disposes the subscription.
    """

    def __init__(
        self, source: Observable[_T], *, maxsize: int = 1024, flow: FlowControl | None = None
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        if flow is None:
            flow = source.flow if isinstance(source, Batched) else None
        self.flow = flow if flow is not None else FlowControl()
        self._buffer: deque[Any] = deque()
        self._wakeup = asyncio.Event()
        self._failure: Exception | None = None
        self._maxsize = maxsize
        self._low_water = max(1, maxsize // 2)
        self._closed = False
        self._subscription: abc.DisposableBase = NOTHING
        subscription = subscribe_observer(source, self)
        if not (self._buffer and self._buffer[-1] is _END):  # (not ended while subscribing)
            self._subscription = subscription

    def _on_batch(self, batch: list[_T]) -> None:
        self._buffer.extend(batch)
        if len(self._buffer) >= self._maxsize:
            self.flow.pause(self)
        self._wakeup.set()

    def _on_error(self, error: Exception) -> None:
        self._failure = error
        self._on_completed()

    def _on_completed(self) -> None:
        self._subscription = NOTHING  # the source ended: no cycle through its subscriber
        self._buffer.append(_END)
        self._wakeup.set()

    def __aiter__(self) -> ObservableIterator[_T]:
        return self

    async def __anext__(self) -> _T:
        buffer = self._buffer
        while not buffer:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            try:
                await self._wakeup.wait()
            except BaseException:
                await self.aclose()
                raise
        item = buffer.popleft()
        if item is _END:
            buffer.appendleft(_END)
            await self.aclose()
            failure = self._failure
            if failure is not None:
                del self  # (the traceback keeps this frame: no cycle through it)
                try:
                    raise failure
                finally:
                    del failure
            raise StopAsyncIteration
        if self.flow.paused and len(buffer) <= self._low_water:
            self.flow.resume(self)
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop: dispose the subscription (closing the source) and reopen the gate."""
        if not self._closed:
            self._closed = True
            self.flow.resume(self)
            subscription, self._subscription = self._subscription, NOTHING
            subscription.dispose()


async def to_async_iterable(
    source: Observable[_T], *, maxsize: int = 1024, flow: FlowControl | None = None
) -> AsyncIterator[_T]:
    """Iterate ``source`` with ``async for``, buffering at most about ``maxsize`` items.

    When the buffer is full the producer is paused through ``flow`` (by default the
    source's own: see :class:`ObservableIterator`). Errors of the source are raised from the
    iteration. Leaving the loop early or cancelling the task disposes the subscription.
    """
    iterator = ObservableIterator(source, maxsize=maxsize, flow=flow)
    try:
        async for item in iterator:
            yield item
    finally:
        await iterator.aclose()


def from_async_iterable(iterable: AsyncIterable[_T]) -> Observable[_T]:
    """An observable that iterates ``iterable`` in a task on the running loop.

    Each subscription starts its own iteration; disposing it cancels the task (which
    closes an async generator). Subscribe from within a running event loop.
    """

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        async def run() -> None:
            try:
                async for item in iterable:
                    observer.on_next(item)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                observer.on_error(error)
            else:
                observer.on_completed()

        task = asyncio.get_running_loop().create_task(run())

        def dispose() -> None:
            task.cancel()

        return Disposer(dispose)

    return Observable(subscribe)
