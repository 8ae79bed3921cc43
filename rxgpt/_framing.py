"""The framing stages: body chunks → frames (SSE events, NDJSON lines), for the pipeline.

Each wraps its sans-IO decoder (:class:`~rxgpt.SSEDecoder`, the NDJSON line splitter) as a
stage: a read's chunks in, the frames they completed out; an oversized frame ends the
stage with :class:`~rxgpt.EventTooLarge` after the frames before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from ._errors import EventTooLarge
from ._fusion import End, StageSpec
from ._ndjson import NDJSONDecoder
from ._payload import PayloadSpec
from ._sse import SSEDecoder, _SSEDataDecoder

__all__ = ["NDJSONFraming", "NDJSONSpec", "SSEFraming", "SSESpec"]


class SSEFraming:
    """Stage: chunks → :class:`~rxgpt.ServerSentEvent` (and :class:`~rxgpt.Comment`)."""

    __slots__ = ("_feed", "_flush", "decoder", "end")

    def __init__(
        self,
        *,
        heartbeats: bool = False,
        max_event_bytes: int | None = None,
        flush_incomplete: bool = False,
        plain: bool = False,
    ) -> None:
        self.end: End | None = None
        self._flush = flush_incomplete
        # (the decoders' common _feed, bound once: one Python call per read, not two)
        if plain:  # the next stage reads only the data: skip the event objects
            data = _SSEDataDecoder(max_event_bytes=max_event_bytes)
            self.decoder: SSEDecoder | _SSEDataDecoder = data
        else:
            self.decoder = SSEDecoder(max_event_bytes=max_event_bytes)
        self._feed: Any = (
            partial(self.decoder._feed, comments=True) if heartbeats else (self.decoder._feed)
        )

    def feed(self, batch: list[Any]) -> list[Any]:
        """Decode a read's chunks (one, unless a source batched them)."""
        try:
            if len(batch) == 1:
                out: list[Any] = self._feed(batch[0])
                return out
            return [frame for chunk in batch for frame in self._feed(chunk)]
        except EventTooLarge as exc:
            self.end = End(exc)
            return exc.events

    def close(self, end: End) -> list[Any]:
        """The body ended: flush the last event on request; pass on the unframed text."""
        frames = self.decoder.close(flush=self._flush and end.error is None)
        decoder = self.decoder
        self.end = end._replace(unframed="\n".join(decoder.unframed), cut=decoder.cut)
        return list(frames)


class NDJSONFraming:
    """Stage: chunks → lines (the last one, without its LF, as an ``IncompleteLine``)."""

    __slots__ = ("decoder", "end")

    def __init__(self, *, max_line_bytes: int | None = None) -> None:
        self.decoder = NDJSONDecoder(max_line_bytes=max_line_bytes)
        self.end: End | None = None

    def feed(self, batch: list[Any]) -> list[Any]:
        """Split a read's chunks into the lines they completed."""
        try:
            if len(batch) == 1:
                return self.decoder.feed(batch[0])
            return [line for chunk in batch for line in self.decoder.feed(chunk)]
        except EventTooLarge as exc:
            self.end = End(exc)
            return []

    def close(self, end: End) -> list[Any]:
        """The body ended: the last line without LF, when the body ended cleanly."""
        lines = self.decoder.close()
        self.end = end
        return list(lines) if end.error is None else []


@dataclass(frozen=True, slots=True)
class SSESpec:
    """:func:`~rxgpt.parse_sse` in a chain."""

    heartbeats: bool = False
    max_event_bytes: int | None = None
    flush_incomplete: bool = False

    def build(self, downstream: StageSpec | None) -> SSEFraming:
        """An SSE framing stage; bare data strings when the payload stage comes next."""
        return SSEFraming(
            heartbeats=self.heartbeats,
            max_event_bytes=self.max_event_bytes,
            flush_incomplete=self.flush_incomplete,
            plain=isinstance(downstream, PayloadSpec),
        )


@dataclass(frozen=True, slots=True)
class NDJSONSpec:
    """:func:`~rxgpt.parse_ndjson` in a chain."""

    max_line_bytes: int | None = None

    def build(self, downstream: StageSpec | None) -> NDJSONFraming:
        """An NDJSON framing stage."""
        return NDJSONFraming(max_line_bytes=self.max_line_bytes)
