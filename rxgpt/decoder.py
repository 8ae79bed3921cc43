"""The fused sans-IO core: response body bytes → neutral deltas in one call per chunk.

:class:`StreamDecoder` chains the SSE decoder, JSON decoding (with the ``[DONE]`` marker
and in-band ``{"error": ...}`` objects) and a protocol decoder without any intermediate
observable, so the client pays one Python call per network read and a few per event.
The composable operators in :mod:`rxgpt.operators` do the same work stage by stage.

Errors follow h11's style: :meth:`StreamDecoder.feed` never loses what it decoded; when
the chunk also held something bad, it returns the good deltas and sets :attr:`error`
(the decoder then accepts nothing more). Check ``error`` after every call.
"""

from __future__ import annotations

from typing import Any

from ._json import JSONDecodeError, loads
from .deltas import Delta, Heartbeat
from .errors import DecodeError, EventTooLarge, RxgptError, StreamError, StreamInterrupted
from .protocols import DONE_MARKER_PROTOCOLS, get_decoder
from .sse import Comment, ServerSentEvent, SSEDecoder

__all__ = ["DONE", "StreamDecoder", "json_item"]

#: The data of the event that ends an OpenAI-style stream.
DONE = "[DONE]"


class MissingDone(StreamInterrupted):
    """The body ended cleanly but without the ``data: [DONE]`` marker."""


def json_item(event: ServerSentEvent, index: int) -> Any:
    """Parse one event's data; raise the typed error for bad JSON or an in-band error."""
    data = event.data
    try:
        obj = loads(data)
    except JSONDecodeError:
        raise DecodeError("event data is not valid JSON", raw=data, index=index) from None
    if type(obj) is dict:
        error = obj.get("error")
        if error or event.event == "error":
            raise StreamError(error if error else obj, index=index)
    return obj


class StreamDecoder:
    """Sans-IO decoder of a whole streamed response: ``feed(bytes) -> list[Delta]``.

    ``protocol`` picks the provider decoder (see :data:`rxgpt.protocols.PROTOCOLS`).
    ``heartbeats=True`` turns SSE comments into :class:`~rxgpt.Heartbeat` deltas.
    ``done`` becomes True when the protocol's end signal arrived; :meth:`close` (at the
    end of the body) sets ``error`` to :class:`~rxgpt.StreamInterrupted` if it did not.
    """

    __slots__ = (
        "_feed_events",
        "_index",
        "_marker",
        "_proto",
        "_proto_feed",
        "_sse",
        "done",
        "error",
        "protocol",
    )

    def __init__(
        self,
        protocol: str = "openai-chat",
        *,
        max_event_bytes: int | None = None,
        heartbeats: bool = False,
    ) -> None:
        self.protocol = protocol
        self._proto = get_decoder(protocol)
        self._proto_feed = self._proto.feed
        self._sse = SSEDecoder(max_event_bytes=max_event_bytes)
        self._feed_events = self._sse.feed_frames if heartbeats else self._sse.feed
        self._marker = DONE if protocol in DONE_MARKER_PROTOCOLS else None
        self._index = 0
        self.done = False
        self.error: RxgptError | None = None

    @property
    def sse(self) -> SSEDecoder:
        """The underlying SSE decoder (``last_event_id``, ``retry``, ``comments``)."""
        return self._sse

    def feed(self, data: bytes) -> list[Delta]:
        """Decode one chunk of the body; return the deltas it completed."""
        out: list[Delta] = []
        if self.done or self.error is not None:
            return out
        try:
            events = self._feed_events(data)
        except EventTooLarge as exc:
            self._events(exc.events, out)
            if self.error is None and not self.done:
                self.error = exc
            return out
        self._events(events, out)
        return out

    def _events(self, events: list[Any], out: list[Delta]) -> None:
        marker = self._marker
        proto_feed = self._proto_feed
        for event in events:
            if type(event) is Comment:
                out.append(Heartbeat(event.text))
                continue
            if event.data == marker:
                self.done = True
                return
            try:
                proto_feed(json_item(event, self._index), out)
            except RxgptError as exc:
                self.error = exc
                return
            self._index += 1
            if self._proto.ended:
                self.done = True
                return

    def close(self) -> list[Delta]:
        """The body ended: flush, and set ``error`` if the end signal never came."""
        if self.done or self.error is not None:
            return []
        self._sse.close()
        if self._marker is not None:
            self.error = MissingDone(
                f"the body ended without data: {self._marker} ({self._index} events decoded)"
            )
        elif self._proto.end_in_band and not self._proto.ended:
            self.error = StreamInterrupted(
                f"the {self.protocol} body ended before its end signal "
                f"({self._index} events decoded)"
            )
        else:
            self.done = True
        return []
