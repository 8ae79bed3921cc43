"""Pipeable Rx operators for LLM streams: synchronous, scheduler-free, one per stage.

Each operator is a curried function returning ``Callable[[Observable], Observable]`` for
``source.pipe(...)``, as in ``reactivex.operators``. They are thin wrappers over the
sans-IO cores (:class:`~rxgpt._sse.SSEDecoder`, the protocol decoders,
:class:`~rxgpt._completion.Accumulator`): items are pushed on through synchronously in the
caller's thread, with no scheduler hop per item. They work on any source: a list via
``reactivex.from_iterable``, the aiohttp transport, a recording.

    bytes ─parse_sse─▶ ServerSentEvent ─decode_json─▶ JSON ─extract_deltas─▶ Delta
          ─accumulate─▶ Completion            (decode_stream fuses the first three)
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from typing import Any, TypeVar

from reactivex import Observable, abc

from ._completion import Accumulator, Completion, CompletionState, Snapshot
from ._decoder import DONE, MissingDone, StreamDecoder, error_delta, json_item, parse_json
from ._deltas import Delta, Heartbeat
from ._errors import DecodeError, EventTooLarge, RxgptError, StreamError, StreamInterrupted
from ._json import JSONDecodeError, loads
from ._ndjson import NDJSONDecoder
from ._protocols import get_decoder
from ._sse import Comment, IncompleteEvent, ServerSentEvent, SSEDecoder
from ._transport import end_gracefully

__all__ = [
    "BatchedStream",
    "DeltaStream",
    "accumulate",
    "decode_batches",
    "decode_json",
    "decode_stream",
    "extract_deltas",
    "parse_ndjson",
    "parse_sse",
    "snapshots",
]

_A = TypeVar("_A")
_B = TypeVar("_B")
Operator = Callable[[Observable[_A]], Observable[_B]]


class BatchedStream(Observable[_A]):
    """An observable of items that also exposes them as one list per network read.

    Every rxgpt stage returns one: subscribers get items one by one as usual, while the
    next rxgpt stage (and :func:`accumulate`, :class:`~rxgpt.Fanout`) subscribes to
    ``batches`` instead, so a chain pays one call per read and stage, not per item
    (operator fusion; the items, their order and the errors are the same).
    """

    def __init__(self, batches: Observable[list[_A]]) -> None:
        def subscribe(
            observer: abc.ObserverBase[_A], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(batch: list[_A]) -> None:
                for item in batch:
                    observer.on_next(item)

            return batches.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        super().__init__(subscribe)
        self.batches = batches


#: The name :func:`decode_stream`'s result had first; the same class.
DeltaStream = BatchedStream


def _batches_of(source: Observable[Any]) -> Observable[list[Any]]:
    """``source`` as lists: its own batches when it has them, else one item per list."""
    batches = getattr(source, "batches", None)
    if isinstance(batches, Observable):
        return batches

    def subscribe(
        observer: abc.ObserverBase[list[Any]], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return source.subscribe(
            lambda item: observer.on_next([item]),
            observer.on_error,
            observer.on_completed,
            scheduler=scheduler,
        )

    return Observable(subscribe)


def parse_sse(
    *,
    heartbeats: bool = False,
    max_event_bytes: int | None = None,
    flush_incomplete: bool = False,
) -> Operator[bytes, Any]:
    """Frame raw body chunks into :class:`~rxgpt._sse.ServerSentEvent` items.

    Events are emitted as soon as their blank line arrives; an unterminated final event
    is dropped at completion (WHATWG). With ``heartbeats=True`` comment lines are also
    emitted, as :class:`~rxgpt._sse.Comment`. ``max_event_bytes`` bounds the memory one
    event may take: past it the stream fails with :class:`~rxgpt.EventTooLarge`, after
    the events that were complete. ``flush_incomplete=True`` (for servers that omit the
    last blank line) dispatches a final unterminated event instead of dropping it.
    """

    def _parse_sse(source: Observable[bytes]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[list[Any]], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            decoder = SSEDecoder(max_event_bytes=max_event_bytes)
            feed = decoder.feed_frames if heartbeats else decoder.feed
            stopped = False

            def on_next(chunk: bytes) -> None:
                nonlocal stopped
                if stopped:
                    return
                try:
                    items: list[Any] = feed(chunk)
                except EventTooLarge as exc:
                    stopped = True
                    if exc.events:
                        observer.on_next(list(exc.events))
                    observer.on_error(exc)
                    return
                if items:
                    observer.on_next(items)

            def on_completed() -> None:
                if not stopped:
                    items = decoder.close(flush=flush_incomplete)
                    if items:
                        observer.on_next(list(items))
                    observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return BatchedStream(Observable(subscribe))

    return _parse_sse


def decode_json(*, done: str | None = DONE) -> Operator[Any, Any]:
    """Parse each event's data as JSON; complete at the ``done`` marker (``[DONE]``).

    Data that is not JSON fails the stream with :class:`~rxgpt.DecodeError` (naming the
    event index and the raw text); an ``{"error": {...}}`` object, or an ``event: error``,
    with :class:`~rxgpt.StreamError` carrying the provider's error object. When the source
    completes without the marker the stream fails with :class:`~rxgpt.StreamInterrupted`
    (protocols that end otherwise, like Anthropic's, treat that as a normal end in
    :func:`extract_deltas`); pass ``done=None`` for streams that have no marker.
    :class:`~rxgpt._sse.Comment` items (heartbeats) pass through unchanged.
    """

    def _decode_json(source: Observable[Any]) -> Observable[Any]:
        batches = _batches_of(source)

        def subscribe(
            observer: abc.ObserverBase[list[Any]], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            index = 0
            stopped = False

            def on_next(events: list[Any]) -> None:
                nonlocal index, stopped
                if stopped:
                    return
                # The common read: plain message events, no marker, all JSON objects, no
                # error among them: parsed and screened with C-level map.
                sse = ServerSentEvent
                datas = [e[1] for e in events if e.__class__ is sse and e[0] == "message"]
                if len(datas) == len(events) and done not in datas:
                    try:
                        objs = list(map(loads, datas))
                        screened = not any(map(dict.__contains__, objs, repeat("error")))
                    except JSONDecodeError:  # (includes TypeError: not an object)
                        screened = False
                    if screened:
                        index += len(objs)
                        observer.on_next(objs)
                        return
                out: list[Any] = []
                for event in events:
                    if type(event) is Comment:
                        out.append(event)
                        continue
                    if done is not None and event.data == done:
                        stopped = True
                        if out:
                            observer.on_next(out)
                        end_gracefully(observer)
                        return
                    try:
                        item = json_item(event, index)
                    except RxgptError as exc:
                        stopped = True
                        if isinstance(event, IncompleteEvent) and isinstance(exc, DecodeError):
                            # a last event cut off by the end of the body: truncation
                            exc = MissingDone(f"the body ended inside event {index}")
                            if done is None:
                                exc = StreamInterrupted(f"the body ended inside event {index}")
                        if out:
                            observer.on_next(out)
                        observer.on_error(exc)
                        return
                    index += 1
                    out.append(item)
                if out:
                    observer.on_next(out)

            def on_error(error: Exception) -> None:
                if not stopped:
                    observer.on_error(error)

            def on_completed() -> None:
                if stopped:
                    return
                if done is None:
                    observer.on_completed()
                else:
                    observer.on_error(
                        MissingDone(f"the body ended without data: {done} ({index} events)")
                    )

            return batches.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return BatchedStream(Observable(subscribe))

    return _decode_json


def extract_deltas(protocol: str = "openai-chat") -> Operator[Any, Delta]:
    """Turn parsed stream items of ``protocol`` into neutral :class:`~rxgpt.Delta` items.

    Heartbeats (:class:`~rxgpt._sse.Comment`) become :class:`~rxgpt.Heartbeat` deltas.
    Protocols whose end signal is in the data (Anthropic ``message_stop``...) complete when
    it arrives and fail with :class:`~rxgpt.StreamInterrupted` if the source ends first.
    """
    get_decoder(protocol)  # fail fast on an unknown name

    def _extract_deltas(source: Observable[Any]) -> Observable[Delta]:
        batches = _batches_of(source)

        def subscribe(
            observer: abc.ObserverBase[list[Delta]], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            decoder = get_decoder(protocol)
            feed = decoder.feed
            feed_many = getattr(decoder, "feed_many", None)
            stopped = False

            def on_next(items: list[Any]) -> None:
                nonlocal stopped
                if stopped:
                    return
                out: list[Delta] = []
                try:
                    if (
                        feed_many is not None
                        and not decoder.end_in_band
                        and not [1 for item in items if item.__class__ is Comment]
                    ):
                        feed_many(items, out)
                    else:
                        for item in items:
                            if item.__class__ is Comment:
                                out.append(Heartbeat(item.text))
                                continue
                            feed(item, out)
                            if decoder.end_in_band and decoder.ended:
                                break
                except RxgptError as exc:
                    stopped = True
                    if isinstance(exc, StreamError):
                        out.append(error_delta(exc))
                    if out:
                        observer.on_next(out)
                    observer.on_error(exc)
                    return
                if out:
                    observer.on_next(out)
                if decoder.end_in_band and decoder.ended:
                    stopped = True
                    end_gracefully(observer)

            def on_error(error: Exception) -> None:
                if stopped:
                    return
                if isinstance(error, MissingDone) and decoder.end_in_band:
                    on_completed()
                    return
                if isinstance(error, StreamError):
                    observer.on_next([error_delta(error)])
                observer.on_error(error)

            def on_completed() -> None:
                if stopped:
                    return
                if decoder.end_in_band and not decoder.eof_ok:
                    observer.on_error(
                        StreamInterrupted(f"the {protocol} stream ended before its end signal")
                    )
                else:
                    observer.on_completed()

            return batches.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return BatchedStream(Observable(subscribe))

    return _extract_deltas


def parse_ndjson(*, max_line_bytes: int | None = None) -> Operator[bytes, Any]:
    """Frame raw NDJSON body chunks (Ollama's native API) into parsed JSON values.

    One value per non-blank line; a final line without LF is accepted. A line that is not
    JSON fails the stream with :class:`~rxgpt.DecodeError`, an ``{"error": ...}`` line
    with :class:`~rxgpt.StreamError`. ``max_line_bytes`` bounds memory
    (:class:`~rxgpt.EventTooLarge`).
    """

    def _parse_ndjson(source: Observable[bytes]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            decoder = NDJSONDecoder(max_line_bytes=max_line_bytes)
            index = 0
            stopped = False

            def emit(lines: list[str]) -> bool:
                nonlocal index, stopped
                for line in lines:
                    try:
                        item = parse_json(line, index)
                    except RxgptError as exc:
                        stopped = True
                        observer.on_error(exc)
                        return False
                    index += 1
                    observer.on_next(item)
                return True

            def on_next(chunk: bytes) -> None:
                nonlocal stopped
                if stopped:
                    return
                try:
                    lines = decoder.feed(chunk)
                except EventTooLarge as exc:
                    stopped = True
                    observer.on_error(exc)
                    return
                emit(lines)

            def on_error(error: Exception) -> None:
                if not stopped:
                    observer.on_error(error)

            def on_completed() -> None:
                nonlocal stopped
                if stopped:
                    return
                rest = decoder.close()  # a last line without LF: complete only if it parses
                if rest:
                    try:
                        loads(rest[0])
                    except JSONDecodeError:
                        stopped = True
                        observer.on_error(StreamInterrupted(f"the body ended inside line {index}"))
                        return
                if emit(rest):
                    observer.on_completed()

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _parse_ndjson


def decode_stream(
    protocol: str = "openai-chat",
    *,
    heartbeats: bool = False,
    max_event_bytes: int | None = None,
    flush_incomplete: bool = False,
) -> Operator[bytes, Delta]:
    """``parse_sse() | decode_json() | extract_deltas(protocol)`` fused into one operator.

    Same items and errors as the three stages, at the cost of one stage.
    """
    batched = _stream_decoder(protocol, heartbeats, max_event_bytes, flush_incomplete, True)

    def _decode_stream(source: Observable[bytes]) -> Observable[Delta]:
        return BatchedStream(batched(source))

    return _decode_stream


def decode_batches(
    protocol: str = "openai-chat",
    *,
    heartbeats: bool = False,
    max_event_bytes: int | None = None,
    flush_incomplete: bool = False,
) -> Operator[bytes, list[Delta]]:
    """Like :func:`decode_stream`, but one list of deltas per network read.

    For consumers that can take a batch at once (``Accumulator.add_all``): one push per
    read instead of one per delta. Empty batches are not emitted.
    """
    return _stream_decoder(protocol, heartbeats, max_event_bytes, flush_incomplete, True)


def _stream_decoder(
    protocol: str,
    heartbeats: bool,
    max_event_bytes: int | None,
    flush_incomplete: bool,
    batches: bool,
) -> Operator[bytes, Any]:
    get_decoder(protocol)  # fail fast on an unknown name

    def _decode_stream(source: Observable[bytes]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            decoder = StreamDecoder(
                protocol,
                heartbeats=heartbeats,
                max_event_bytes=max_event_bytes,
                flush_incomplete=flush_incomplete,
            )
            feed = decoder.feed
            stopped = False

            def emit(deltas: list[Delta]) -> None:
                if batches:
                    if deltas:
                        observer.on_next(deltas)
                else:
                    for delta in deltas:
                        observer.on_next(delta)

            def on_next(chunk: bytes) -> None:
                nonlocal stopped
                if stopped:
                    return
                emit(feed(chunk))
                if decoder.error is not None:
                    stopped = True
                    observer.on_error(decoder.error)
                elif decoder.done:
                    stopped = True
                    end_gracefully(observer)

            def on_error(error: Exception) -> None:
                if not stopped:
                    observer.on_error(error)

            def on_completed() -> None:
                if stopped:
                    return
                emit(decoder.close())
                if decoder.error is not None:
                    observer.on_error(decoder.error)
                else:
                    observer.on_completed()

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _decode_stream


def accumulate(
    protocol: str = "openai-chat", *, raise_errors: bool = True
) -> Operator[Delta, Completion]:
    """Fold deltas into exactly one final :class:`~rxgpt.Completion`.

    On completion the result has state "complete". When the source fails, the partial
    result (state "truncated" for :class:`~rxgpt.StreamInterrupted`, else "error") is
    attached to the error as ``error.partial`` and the error is passed on; with
    ``raise_errors=False`` the partial result is emitted instead, then completion.
    """

    def _accumulate(source: Observable[Delta]) -> Observable[Completion]:
        def subscribe(
            observer: abc.ObserverBase[Completion], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            acc = Accumulator(protocol)

            def on_completed() -> None:
                observer.on_next(acc.completion("complete"))
                observer.on_completed()

            def on_error(error: Exception) -> None:
                partial = partial_completion(acc, error)
                if raise_errors:
                    observer.on_error(error)
                else:
                    observer.on_next(partial)
                    observer.on_completed()

            batches = getattr(source, "batches", None)
            if isinstance(batches, Observable):
                # Operator fusion: take the previous stage's per-read batches directly.
                return batches.subscribe(acc.add_all, on_error, on_completed, scheduler=scheduler)
            return source.subscribe(acc.add, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _accumulate


def partial_completion(acc: Accumulator, error: BaseException) -> Completion:
    """Build the partial result for ``error`` and attach it as ``error.partial``."""
    state: CompletionState = "truncated" if isinstance(error, StreamInterrupted) else "error"
    typed = error if isinstance(error, RxgptError) else None
    partial = acc.completion(state, typed)
    if typed is not None and typed.partial is None:
        typed.partial = partial
    return partial


def snapshots(protocol: str = "openai-chat") -> Operator[Delta, Snapshot]:
    """Emit a :class:`~rxgpt.Snapshot` of the running state after every delta.

    Each snapshot costs O(1) to make (the text is joined only when read), so a UI can
    re-render from ``snapshot.text`` without the pipeline re-copying the text per delta.
    """

    def _snapshots(source: Observable[Delta]) -> Observable[Snapshot]:
        def subscribe(
            observer: abc.ObserverBase[Snapshot], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            acc = Accumulator(protocol)
            log: list[Delta] = []

            def on_next(delta: Delta) -> None:
                acc.add(delta)
                log.append(delta)
                observer.on_next(Snapshot(acc, log, delta))

            def on_error(error: Exception) -> None:
                partial_completion(acc, error)
                observer.on_error(error)

            return source.subscribe(on_next, on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _snapshots
