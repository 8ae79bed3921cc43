"""What every protocol decoder is: the facts of its protocol, and payloads in, deltas out."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from .._delta_types import check_delta
from .._deltas import Delta, Heartbeat
from .._sse import Comment

__all__ = ["SHAPE_ERRORS", "Framing", "ProtocolDecoder", "ShapeError"]

#: What a decoder's code raises on valid JSON of the wrong shape (a list for an object,
#: a string for an index...): caught at the loop over a read's payloads, never further.
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


class ShapeError(Exception):
    """A payload of the wrong shape broke the decoder; ``item`` is that payload."""

    def __init__(self, item: Any) -> None:
        super().__init__("unexpected payload shape")
        self.item = item


#: How a protocol frames its payloads in the body.
Framing = Literal["sse", "ndjson"]


class ProtocolDecoder:
    """Sans-IO decoder of one provider's parsed payloads into neutral deltas.

    The class attributes are the protocol's facts, each stated here once: ``framing``,
    ``has_done_marker`` (the stream ends with ``data: [DONE]``, outside the JSON) and
    ``unframed_errors`` (errors may come as a JSON document outside the SSE framing).
    ``ended`` becomes True when the protocol's own end event arrived (``message_stop``,
    ``response.completed``, ``done: true``): nothing after it is read. ``eof_ok`` says
    whether the body may end now without loss.
    """

    protocol: ClassVar[str]
    framing: ClassVar[Framing] = "sse"
    has_done_marker: ClassVar[bool] = False
    unframed_errors: ClassVar[bool] = False

    __slots__ = ("ended",)

    def __init__(self) -> None:
        self.ended = False

    @property
    def eof_ok(self) -> bool:
        """The body may end now: the end event arrived (see subclasses for others)."""
        return self.ended

    def feed(self, item: Any, out: list[Delta]) -> None:
        """Append the deltas of one payload: a JSON object, or a heartbeat comment.

        Each delta is checked against the delta model: a payload whose values have the
        wrong types raises TypeError here (a :class:`ShapeError` from :meth:`feed_many`).
        """
        cls = item.__class__
        if cls is dict:
            start = len(out)
            try:
                self.feed_chunk(item, out)
                for n in range(start, len(out)):  # the payload's values are untrusted
                    check_delta(out[n])
            except SHAPE_ERRORS:
                del out[start:]  # a payload gives all its deltas or none
                raise
        elif cls is Comment:
            out.append(Heartbeat(item.text))

    def feed_many(self, items: list[Any], out: list[Delta]) -> None:
        """:meth:`feed` for a read's payloads; stops at the end event.

        Raises :class:`ShapeError` (from the original error) for a payload of the wrong
        shape, with the deltas of the payloads before it already in ``out``.
        """
        feed = self.feed
        item = None
        try:
            for item in items:
                feed(item, out)
                if self.ended:
                    return
        except SHAPE_ERRORS as exc:
            raise ShapeError(item) from exc

    def feed_chunk(self, chunk: dict[str, Any], out: list[Delta]) -> None:
        """Append the deltas of one JSON object (each protocol's own rules)."""
        raise NotImplementedError
