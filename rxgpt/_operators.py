"""Pipeable Rx operators for LLM streams: synchronous, scheduler-free, one stage each.

Each operator is a curried function returning ``Callable[[Observable], Observable]`` for
``source.pipe(...)``, as in ``reactivex.operators``, and wraps exactly one sans-IO stage.
Chained directly, rxgpt operators fuse into one subscription that runs their stages per
network read (see :mod:`rxgpt._fusion`); with any other operator in between they behave
the same, item by item. They work on any source: a list via ``reactivex.from_iterable``,
the aiohttp transport, a recording.

    bytes ─parse_sse─▶ ServerSentEvent ─decode_json─▶ JSON ─extract_deltas─▶ Delta
          ─accumulate─▶ Completion            (decode_stream = the first three)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable

from ._accumulate import AccumulateSpec, SnapshotSpec
from ._completion import Completion, Snapshot
from ._decoder import stream_specs
from ._deltas import Delta
from ._extract import DeltasSpec
from ._framing import NDJSONSpec, SSESpec
from ._fusion import Chain, chain
from ._payload import DONE, PayloadSpec
from ._protocols import decoder_class

__all__ = [
    "accumulate",
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


def parse_sse(
    *,
    heartbeats: bool = False,
    max_event_bytes: int | None = None,
    flush_incomplete: bool = False,
) -> Operator[bytes, Any]:
    """Frame raw body chunks into :class:`~rxgpt.ServerSentEvent` items.

    Events are emitted as soon as their blank line arrives; an unterminated final event
    is dropped at completion (WHATWG). With ``heartbeats=True`` comment lines are also
    emitted, as :class:`~rxgpt.Comment`. ``max_event_bytes`` bounds the memory one
    event may take: past it the stream fails with :class:`~rxgpt.EventTooLarge`, after
    the events that were complete. ``flush_incomplete=True`` (for servers that omit the
    last blank line) emits a final unterminated event as an :class:`~rxgpt.IncompleteEvent`.
    """
    spec = SSESpec(heartbeats, max_event_bytes, flush_incomplete)
    return lambda source: chain(source, spec)


def parse_ndjson(*, max_line_bytes: int | None = None) -> Operator[bytes, str]:
    """Frame raw NDJSON body chunks (Ollama's native API) into lines.

    One line per non-blank line, without its line end; a final line without LF comes as
    an :class:`~rxgpt.IncompleteLine` (complete in NDJSON; :func:`decode_json` counts it
    as cut off when it is not JSON). ``max_line_bytes`` bounds memory
    (:class:`~rxgpt.EventTooLarge`).
    """
    spec = NDJSONSpec(max_line_bytes)
    return lambda source: chain(source, spec)


def decode_json(*, done: str | None = DONE) -> Operator[Any, Any]:
    """Parse each event's (or line's) data as JSON; complete at the ``done`` marker.

    Data that is not JSON fails the stream with :class:`~rxgpt.DecodeError` (naming the
    event index and the raw text); an ``{"error": {...}}`` object, or an ``event: error``,
    with :class:`~rxgpt.StreamError` carrying the provider's error object. When the source
    completes without the marker the stream fails with :class:`~rxgpt.MissingDone`
    (:func:`extract_deltas` decides whether its protocol may end there); pass
    ``done=None`` for streams that have no marker. Comments (heartbeats) pass through.
    """
    spec = PayloadSpec(done)
    return lambda source: chain(source, spec)


def extract_deltas(
    protocol: str = "openai-chat", *, require_done: bool = False
) -> Operator[Any, Delta]:
    """Turn parsed payloads of ``protocol`` into neutral :class:`~rxgpt.Delta` items.

    Heartbeats (:class:`~rxgpt.Comment`) become :class:`~rxgpt.Heartbeat` deltas.
    Protocols whose end is an event of their own (Anthropic ``message_stop``...) complete
    when it arrives; at the end of the body a stream that may not end there fails with
    :class:`~rxgpt.StreamInterrupted`. An OpenAI body that ends without ``[DONE]`` after
    every choice's finish reason completes with a :class:`~rxgpt.MissingEndMarker` last
    (``require_done=True``: it fails with :class:`~rxgpt.MissingDone`). An in-band error
    is emitted as an :class:`~rxgpt.ErrorDelta` before the stream fails with
    :class:`~rxgpt.StreamError`.
    """
    decoder_class(protocol)  # fail fast on an unknown name
    spec = DeltasSpec(protocol, require_done)
    return lambda source: chain(source, spec)


def decode_stream(
    protocol: str = "openai-chat",
    *,
    heartbeats: bool = False,
    max_event_bytes: int | None = None,
    flush_incomplete: bool = False,
    require_done: bool = False,
) -> Operator[bytes, Delta]:
    """The framing, payload and delta stages of ``protocol`` in one operator.

    Literally ``parse_sse() | decode_json(done=...) | extract_deltas(protocol)`` (or
    ``parse_ndjson()`` for NDJSON protocols), with the marker the protocol has.
    """
    specs = stream_specs(
        protocol,
        heartbeats=heartbeats,
        max_event_bytes=max_event_bytes,
        flush_incomplete=flush_incomplete,
        require_done=require_done,
    )

    def _decode_stream(source: Observable[bytes]) -> Observable[Delta]:
        result: Chain[Delta] = chain(source, *specs)
        return result

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
    spec = AccumulateSpec(protocol, raise_errors)
    return lambda source: chain(source, spec)


def snapshots(protocol: str = "openai-chat") -> Operator[Delta, Snapshot]:
    """Emit a :class:`~rxgpt.Snapshot` of the running state after every delta.

    Each snapshot costs O(1) to make (the text is joined only when read), so a UI can
    re-render from ``snapshot.text`` without the pipeline re-copying the text per delta.
    """
    spec = SnapshotSpec(protocol)
    return lambda source: chain(source, spec)
