"""Operator fusion: rxgpt's stages, chained, run as one subscription with one call per read.

Every rxgpt operator wraps one sans-IO *stage* (framing, payload, delta extraction,
accumulation): an object with ``feed(batch) -> batch`` and ``close(end) -> batch`` that
takes the items of one network read as a list and returns the next stage's list. Applying
an rxgpt operator to the result of another does not nest two subscriptions: it extends one
:class:`Chain`, whose subscription runs a :class:`Pipeline` of the stages over its root
source. So ``parse_sse() | decode_json() | extract_deltas(p)`` *is* the fused decoder, and
``decode_stream(p)`` is literally that chain.

Between chains and the other rxgpt observables (the transport, retries, ``Fanout``) the
batches travel through one private protocol, :class:`Batched` and its
``subscribe_batches``: a stage after them takes each read's list directly. A user's own
operator in between sees items one by one, as usual, and the next chain starts anew.

How the input of a stage ended is an explicit value, :class:`End`, passed to ``close``:
the error, whether the done marker arrived, and the text the framing found outside its
frames. When a stage stops by itself (its end signal, or an error) it sets ``end``; the
pipeline then closes the later stages with it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

from reactivex import Observable, abc

if TYPE_CHECKING:
    from ._aio import FlowControl

__all__ = [
    "ENDED",
    "BatchObserver",
    "Batched",
    "Callbacks",
    "Chain",
    "End",
    "Pipeline",
    "Stage",
    "StageSpec",
    "chain",
    "subscribe_batches",
    "subscribe_observer",
]

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class End(NamedTuple):
    """How a stage's input ended: told to its ``close``, and set as its own ``end``."""

    #: Why the input failed; None for a clean end.
    error: Exception | None = None
    #: The payload stage saw the done marker (``data: [DONE]``).
    marker: bool = False
    #: Text the framing found outside its frames (see ``SSEDecoder.unframed``).
    unframed: str = ""
    #: How many payloads (events, lines) were decoded, when known.
    events: int | None = None
    #: The body ended inside a frame, which the framing discarded (not a clean end).
    cut: bool = False

    @property
    def message(self) -> str:
        """`` (N events decoded)`` when the count is known, for error messages."""
        return f" ({self.events} events decoded)" if self.events is not None else ""


class Stage(Protocol):
    """One sans-IO stage: the items of one read in, the next stage's items out."""

    #: Set when the stage stopped by itself (its end signal or an error): it takes no more.
    end: End | None

    def feed(self, batch: list[Any]) -> list[Any]:
        """Take one read's items; return what they completed (never loses them on error)."""
        ...

    def close(self, end: End) -> list[Any]:
        """The input ended as ``end`` says: return the last items and set ``self.end``."""
        ...


class StageSpec(Protocol):
    """What an operator contributes to a chain: how to build its stage per subscription."""

    def build(self, downstream: StageSpec | None) -> Stage:
        """A new stage; ``downstream`` is the spec of the stage after it, if any."""
        ...


#: The most items that go through the stages after the first one at once.
#: Performance: a read can hold hundreds of events (a fast server, a slow consumer); parsed
#: all at once, their JSON containers and deltas would all be alive together, and CPython's
#: cyclic garbage collector, which runs every 700 tracked allocations, would find them
#: alive and promote them towards the old generation, whose collections walk the whole
#: heap. In slices of this size, each slice's deltas passed on before the next is decoded
#: (in a chain), they die young. (Measured: 512 streams of 200 events each in one
#: read, the slices cut the collections of the old generation from 4 to 0 per run.)
SLICE = 64


class SliceSink(Protocol):
    """Where a :class:`Pipeline` passes the early slices of a long read."""

    def _slice(self, out: list[Any], /) -> None: ...


class Pipeline:
    """Stages composed: each read's batch goes through them all in one call.

    What the first stage makes of a read goes on through the others in slices of at most
    :data:`SLICE` items (the same result, with less garbage alive at once).
    """

    __slots__ = ("_rest", "end", "stages")

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        self._rest = self.stages[1:]  # (the stages after the first, as _after_first runs them)
        #: How the last stage ended, once it did: the pipeline then takes nothing more.
        self.end: End | None = None

    @classmethod
    def of(cls, specs: Sequence[StageSpec]) -> Pipeline:
        """Build each spec's stage, telling it which stage comes next."""
        nexts: list[StageSpec | None] = [*specs[1:], None]
        return cls([spec.build(nxt) for spec, nxt in zip(specs, nexts, strict=True)])

    def feed(self, batch: list[Any], emit: SliceSink | None = None) -> list[Any]:
        """Run one read's items through every stage.

        With ``emit``, when the read makes several slices, the output of each but the last
        is passed to ``emit._slice`` as soon as it is made (and dies young); the rest is
        returned. (An object, not a callable: no bound method is made per read.)
        """
        if self.end is not None:
            return []
        first = self.stages[0]
        batch = first.feed(batch)
        if first.end is not None:
            return self._finish(batch, 1, first.end)
        if len(batch) <= SLICE:
            return self._after_first(batch)
        out: list[Any] = []
        for start in range(0, len(batch), SLICE):
            if out and emit is not None:
                emit._slice(out)
                out = []
            out += self._after_first(batch[start : start + SLICE])
            if self.end is not None:
                break  # a later stage ended: nothing after its end is read
        return out

    def _after_first(self, batch: list[Any]) -> list[Any]:
        """Run items the first stage made through the other stages."""
        for stage in self._rest:
            if not batch:
                return batch
            batch = stage.feed(batch)
            if stage.end is not None:  # (once a stream: the stages up to it are done)
                done = next(n for n, s in enumerate(self.stages, 1) if s is stage)
                return self._finish(batch, done, stage.end)
        return batch

    def close(self, end: End) -> list[Any]:
        """The source ended as ``end`` says: close every stage in order."""
        if self.end is not None:
            return []
        return self._finish([], 0, end)

    def _finish(self, batch: list[Any], start: int, end: End) -> list[Any]:
        """Feed ``batch`` on from stage ``start`` and close each later stage with ``end``."""
        for stage in self.stages[start:]:
            if batch:
                batch = stage.feed(batch)
            if stage.end is None:
                batch = batch + stage.close(end) if batch else stage.close(end)
            assert stage.end is not None
            end = stage.end
        self.end = end
        return batch


BatchSubscribe = Callable[
    [Callable[[list[_T]], None], Callable[[Exception], None], Callable[[], None]],
    abc.DisposableBase,
]


class BatchObserver(Protocol[_T]):
    """What takes a :class:`Batched` source's lists: three methods (private protocol).

    rxgpt's own stages (a chain's run, a retry run's attempt, a fan-out, the iterator
    bridge) implement it, so a source holds one reference to its subscriber rather than
    three bound methods (fewer objects per open stream for the garbage collector).
    """

    def _on_batch(self, batch: list[_T], /) -> None: ...

    def _on_error(self, error: Exception, /) -> None: ...

    def _on_completed(self) -> None: ...


class Callbacks(Generic[_T]):
    """Three callables as a :class:`BatchObserver`."""

    __slots__ = ("_on_batch", "_on_completed", "_on_error")

    def __init__(
        self,
        on_batch: Callable[[list[_T]], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> None:
        self._on_batch = on_batch
        self._on_error = on_error
        self._on_completed = on_completed


class _Ended:
    """The subscriber of an ended subscription: takes everything, does nothing."""

    __slots__ = ()

    def _on_batch(self, batch: list[Any], /) -> None:
        pass

    def _on_error(self, error: Exception, /) -> None:
        pass

    def _on_completed(self) -> None:
        pass


#: What an ended subscription calls instead of its subscriber (so it keeps no reference to
#: it: no cycle is left for the garbage collector once a stream ended).
ENDED: BatchObserver[Any] = _Ended()


class Batched(Observable[_T], Generic[_T]):
    """An observable whose items also come as one list per network read (private protocol).

    Rx subscribers get the items one by one; :meth:`subscribe_observer` (or
    :meth:`subscribe_batches`) hands each read's list over at once, for the next rxgpt
    stage, ``Fanout`` and the accumulator. ``flow`` is the :class:`~rxgpt.FlowControl`
    that pauses the socket reads behind it, if any; ``items`` replaces the default
    item-wise subscription (a loop over each list). Made from a ``subscribe`` function of
    three callbacks, or subclassed with :meth:`subscribe_observer` overridden.
    """

    def __init__(
        self,
        subscribe: BatchSubscribe[_T] | None = None,
        *,
        flow: FlowControl | None = None,
        items: Callable[[abc.ObserverBase[_T], abc.SchedulerBase | None], abc.DisposableBase]
        | None = None,
    ) -> None:
        # Performance: Observable.__init__ is skipped, as it only stores the subscribe
        # function and makes an RLock, which a stream's several observables would each
        # pay for (and the garbage collector track); `lock` is made when an operator asks.
        # No bound method of the object itself is stored either (see _subscribe_core): a
        # stream's objects hold no reference cycle once it ended, so they are freed at
        # once rather than left to the cyclic garbage collector.
        self._subscribe = None
        self._items = items
        self._batches = subscribe
        self.flow = flow

    @functools.cached_property
    def lock(self) -> threading.RLock:  # type: ignore[override]
        """The lock some reactivex operators take on their source (made on first use)."""
        return threading.RLock()

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        """The item-wise subscription: ``items``, else each read's list item by item."""
        if self._items is not None:
            return self._items(observer, scheduler)
        on_next = observer.on_next

        def on_batch(batch: list[_T]) -> None:
            for item in batch:
                on_next(item)

        return self.subscribe_batches(on_batch, observer.on_error, observer.on_completed)

    def subscribe_batches(
        self,
        on_batch: Callable[[list[_T]], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> abc.DisposableBase:
        """Subscribe to the items as one list per read (lists are never empty)."""
        if self._batches is not None:
            return self._batches(on_batch, on_error, on_completed)
        return self.subscribe_observer(Callbacks(on_batch, on_error, on_completed))

    def subscribe_observer(self, observer: BatchObserver[_T]) -> abc.DisposableBase:
        """:meth:`subscribe_batches` with the three callbacks as one object's methods."""
        assert self._batches is not None, "a Batched made without subscribe overrides this"
        return self._batches(observer._on_batch, observer._on_error, observer._on_completed)


def subscribe_batches(
    source: Observable[Any],
    on_batch: Callable[[list[Any]], None],
    on_error: Callable[[Exception], None],
    on_completed: Callable[[], None],
) -> abc.DisposableBase:
    """Subscribe to ``source`` in batches: its own when it has them, else one item a list."""
    if isinstance(source, Batched):
        return source.subscribe_batches(on_batch, on_error, on_completed)
    return source.subscribe(lambda item: on_batch([item]), on_error, on_completed)


def subscribe_observer(source: Observable[Any], observer: BatchObserver[Any]) -> abc.DisposableBase:
    """:func:`subscribe_batches` for a :class:`BatchObserver`."""
    if isinstance(source, Batched):
        return source.subscribe_observer(observer)
    on_batch = observer._on_batch
    return source.subscribe(
        lambda item: on_batch([item]), observer._on_error, observer._on_completed
    )


class Chain(Batched[_T]):
    """A root source and the specs of the rxgpt stages applied to it, run as one pipeline."""

    def __init__(self, source: Observable[Any], specs: tuple[StageSpec, ...]) -> None:
        self.source = source
        self.specs = specs
        super().__init__(flow=source.flow if isinstance(source, Batched) else None)

    def subscribe_observer(self, observer: BatchObserver[_T]) -> abc.DisposableBase:
        """Run the pipeline over the source's batches (one subscription to the source)."""
        run = _ChainRun(Pipeline.of(self.specs), observer)
        run.attach(subscribe_observer(self.source, run))
        return run


class _ChainRun(abc.DisposableBase):
    """One subscription of a :class:`Chain`: its pipeline between the source and the
    subscriber, and the source's disposable (disposing it stops the source).

    (A slotted object rather than closures: fewer objects for the garbage collector to
    track per open stream.)
    """

    __slots__ = ("disposed", "observer", "pipeline", "upstream")

    def __init__(self, pipeline: Pipeline, observer: BatchObserver[Any]) -> None:
        self.pipeline = pipeline
        self.observer = observer
        self.upstream: abc.DisposableBase | None = None
        self.disposed = False

    def attach(self, upstream: abc.DisposableBase) -> None:
        """The source's subscription: disposed at once if this one already was."""
        if self.disposed:
            upstream.dispose()
        else:
            self.upstream = upstream

    def dispose(self) -> None:
        """Stop the source; nothing more reaches the subscriber."""
        self._stop()
        self.observer = ENDED

    def _stop(self) -> None:
        self.disposed = True
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.dispose()

    def _finish(self, batch: list[Any]) -> None:
        observer = self.observer
        if batch:
            observer._on_batch(batch)
        self.observer = ENDED  # no reference to the subscriber once ended: no cycle left
        end = self.pipeline.end
        assert end is not None
        if end.error is not None:
            observer._on_error(end.error)
        else:
            observer._on_completed()

    def _on_batch(self, batch: list[Any]) -> None:
        pipeline = self.pipeline
        if pipeline.end is not None:
            return
        out = pipeline.feed(batch, self)
        if pipeline.end is None:
            if out:
                self.observer._on_batch(out)
            return
        # The stream ended here (its end signal, or an error): stop the source while it
        # is still delivering, which the transport takes as a normal end (drain).
        self._stop()
        self._finish(out)

    def _slice(self, out: list[Any]) -> None:
        """One slice of a long read, passed on before the next is decoded."""
        self.observer._on_batch(out)

    def _on_error(self, error: Exception) -> None:
        self.upstream = None
        if self.pipeline.end is None:
            self._finish(self.pipeline.close(End(error)))

    def _on_completed(self) -> None:
        self.upstream = None
        if self.pipeline.end is None:
            self._finish(self.pipeline.close(End()))


def chain(source: Observable[Any], *specs: StageSpec) -> Chain[Any]:
    """``source`` with more stages: the same chain extended when it is one."""
    if isinstance(source, Chain):
        return Chain(source.source, (*source.specs, *specs))
    return Chain(source, specs)
