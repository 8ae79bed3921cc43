"""The fused sans-IO core: response body bytes → neutral deltas in one call per chunk.

:class:`StreamDecoder` chains the framing (SSE, or NDJSON for Ollama), JSON decoding
(with the ``[DONE]`` marker and in-band ``{"error": ...}`` objects) and a protocol
decoder without any intermediate observable, so the client pays one Python call per
network read and a few per event. The composable operators in :mod:`rxgpt.operators` do
the same work stage by stage and give the same deltas and errors.

Errors follow h11's style: :meth:`StreamDecoder.feed` never loses what it decoded; when
the chunk also held something bad, it returns the good deltas and sets :attr:`error`
(the decoder then accepts nothing more). Check ``error`` after every call.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

from ._deltas import Delta, ErrorDelta, Heartbeat
from ._errors import DecodeError, EventTooLarge, RxgptError, StreamError, StreamInterrupted
from ._json import JSONDecodeError, loads
from ._ndjson import NDJSONDecoder
from ._protocols import DONE_MARKER_PROTOCOLS, NDJSON_PROTOCOLS, get_decoder
from ._sse import Comment, ServerSentEvent, SSEDecoder

__all__ = ["DONE", "MissingDone", "StreamDecoder", "error_delta", "json_item", "parse_json"]

#: The data of the event that ends an OpenAI-style stream.
DONE = "[DONE]"

#: Protocols that may send an error document outside the SSE framing (python-genai's
#: decoder handles the same case).
UNFRAMED_ERROR_PROTOCOLS = frozenset({"gemini"})
_MAX_UNFRAMED = 64 * 1024


def _is_json(text: str) -> bool:
    try:
        loads(text)
    except JSONDecodeError:
        return False
    return True


class MissingDone(StreamInterrupted):
    """The body ended cleanly but without the ``data: [DONE]`` marker."""


def parse_json(text: str, index: int, event: str = "message") -> Any:
    """Parse one payload; raise the typed error for bad JSON or an in-band error object."""
    try:
        obj = loads(text)
    except JSONDecodeError:
        raise DecodeError("payload is not valid JSON", raw=text, index=index) from None
    if type(obj) is dict:
        error = obj.get("error")
        if error or event == "error":
            raise StreamError(error if error else obj, index=index)
    return obj


def json_item(event: ServerSentEvent, index: int) -> Any:
    """Parse one SSE event's data (see :func:`parse_json`)."""
    return parse_json(event.data, index, event.event)


def error_delta(error: StreamError) -> ErrorDelta:
    """The :class:`~rxgpt.ErrorDelta` that reports an in-band error to subscribers."""
    return ErrorDelta(error.error, error.message, error.retryable)


class StreamDecoder:
    """Sans-IO decoder of a whole streamed response: ``feed(bytes) -> list[Delta]``.

    ``protocol`` picks the provider decoder (see :data:`rxgpt._protocols.PROTOCOLS`) and
    the framing (NDJSON for "ollama", SSE otherwise). ``heartbeats=True`` turns SSE
    comments into :class:`~rxgpt.Heartbeat` deltas. ``flush_incomplete=True`` accepts a
    final event whose blank line never came if its data is JSON (or the marker): for
    servers that omit it; by default such an event is dropped, as the SSE rules say.
    ``done`` becomes True when the protocol's end signal arrived; :meth:`close` (at the
    end of the body) sets ``error`` to :class:`~rxgpt.StreamInterrupted` if the stream
    may not end there.
    """

    __slots__ = (
        "_feed_many",
        "_flush_incomplete",
        "_heartbeats",
        "_index",
        "_marker",
        "_ndjson",
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
        flush_incomplete: bool = False,
    ) -> None:
        self.protocol = protocol
        self._flush_incomplete = flush_incomplete
        self._proto = get_decoder(protocol)
        self._proto_feed = self._proto.feed
        self._feed_many = getattr(self._proto, "feed_many", None)
        self._sse = SSEDecoder(max_event_bytes=max_event_bytes)
        if protocol in UNFRAMED_ERROR_PROTOCOLS:
            self._sse.unknown_lines = []
        self._ndjson: NDJSONDecoder | None = None
        if protocol in NDJSON_PROTOCOLS:
            self._ndjson = NDJSONDecoder(max_line_bytes=max_event_bytes)
        self._heartbeats = heartbeats
        self._marker = DONE if protocol in DONE_MARKER_PROTOCOLS else None
        self._index = 0
        self.done = False
        self.error: RxgptError | None = None

    @property
    def sse(self) -> SSEDecoder:
        """The underlying SSE decoder (``last_event_id``, ``retry``, ``comments``)."""
        return self._sse

    @property
    def decoder(self) -> Any:
        """The protocol decoder."""
        return self._proto

    def feed(self, data: bytes) -> list[Delta]:
        """Decode one chunk of the body; return the deltas it completed."""
        out: list[Delta] = []
        if self.done or self.error is not None:
            return out
        if self._ndjson is not None:
            try:
                lines = self._ndjson.feed(data)
            except EventTooLarge as exc:
                self.error = exc
                return out
            self._lines(lines, out)
            return out
        try:
            events = self._sse.feed_data(data, comments=self._heartbeats)
        except EventTooLarge as exc:
            self._events(exc.events, out)
            if self.error is None and not self.done:
                self.error = exc
            return out
        self._events(events, out)
        if self._sse.unknown_lines:
            self._unframed(self._sse.unknown_lines, out)
        return out

    def _unframed(self, lines: list[str], out: list[Delta]) -> None:
        """Gemini sends some errors as pretty-printed JSON outside the SSE framing."""
        text = "\n".join(lines)
        if len(text) > _MAX_UNFRAMED:
            lines.clear()  # not an error document: do not keep it
            return
        try:
            obj = loads(text)
        except JSONDecodeError:
            return  # not complete yet: wait for more lines
        lines.clear()
        if isinstance(obj, list) and obj and isinstance(obj[0], dict):
            obj = obj[0]
        if isinstance(obj, dict) and obj.get("error") and self.error is None and not self.done:
            exc = StreamError(obj["error"], index=self._index)
            out.append(error_delta(exc))
            self.error = exc

    def _events(self, events: list[Any], out: list[Delta]) -> None:
        if self._feed_many is not None and events and self._marker not in events:
            # The common read: only plain data events, all JSON objects, no error among
            # them. Parsed and screened with C-level map; any surprise takes the loop.
            try:
                objs = list(map(loads, events))
                screened = not any(map(dict.__contains__, objs, repeat("error")))
            except JSONDecodeError:  # (includes TypeError: a non-str event or payload)
                screened = False
            if screened:
                self._index += len(objs)
                self._feed_batch(objs, out)
                return
        self._events_loop(events, out)

    def _events_loop(self, events: list[Any], out: list[Delta]) -> None:
        # The general loop (comments, named events, the marker, errors): the parsed
        # payloads go to the protocol decoder as one batch.
        marker = self._marker
        index = self._index
        batch: list[Any] = []
        append = batch.append
        stop: RxgptError | None = None
        for event in events:
            if event.__class__ is str:  # a plain data event (SSEDecoder.feed_data)
                data = event
                kind = "message"
            elif event.__class__ is Comment:
                self._feed_batch(batch, out)  # keep heartbeats in order
                batch = []
                append = batch.append
                out.append(Heartbeat(event[0]))
                continue
            else:
                kind, data = event[0], event[1]
            if data == marker:
                self._feed_batch(batch, out)
                self.done = True
                self._index = index
                return
            try:
                append(parse_json(data, index, kind))
            except RxgptError as exc:
                stop = exc
                break
            index += 1
        self._index = index
        self._feed_batch(batch, out)
        if stop is not None and self.error is None and not self.done:
            if isinstance(stop, StreamError):
                out.append(error_delta(stop))
            self.error = stop

    def _feed_batch(self, batch: list[Any], out: list[Delta]) -> None:
        """Give parsed payloads to the protocol decoder; stop at its end signal."""
        if not batch or self.done or self.error is not None:
            return
        proto = self._proto
        try:
            if not proto.end_in_band and self._feed_many is not None:
                self._feed_many(batch, out)
                return
            for obj in batch:
                self._proto_feed(obj, out)
                if proto.end_in_band and proto.ended:
                    self.done = True
                    return
        except StreamError as exc:
            out.append(error_delta(exc))
            self.error = exc
        except RxgptError as exc:
            self.error = exc

    def _lines(self, lines: list[str], out: list[Delta]) -> None:
        proto_feed = self._proto_feed
        for line in lines:
            try:
                proto_feed(parse_json(line, self._index), out)
            except StreamError as exc:
                out.append(error_delta(exc))
                self.error = exc
                return
            except RxgptError as exc:
                self.error = exc
                return
            self._index += 1
            if self._proto.ended:
                self.done = True
                return

    def close(self) -> list[Delta]:
        """The body ended: flush, and set ``error`` if the stream may not end here."""
        out: list[Delta] = []
        if self.done or self.error is not None:
            return out
        if self._ndjson is not None:
            rest = self._ndjson.close()
            if rest:
                try:
                    loads(rest[0])
                except JSONDecodeError:
                    rest = []  # a line cut off by the end of the body: truncation below
                self._lines(rest, out)
                if self.done or self.error is not None:
                    return out
        elif self._flush_incomplete:
            # For servers that omit the last blank line (seen with llama.cpp, and in
            # recordings): take the final event if it is the marker or valid JSON; a
            # line cut off mid-way is not, and the stream counts as truncated.
            tail = [
                event
                for event in self._sse.close(flush=True)
                if event.data == self._marker or _is_json(event.data)
            ]
            self._events(tail, out)
            if self.done or self.error is not None:
                return out
        else:
            self._sse.close()
        if self._marker is not None:
            self.error = MissingDone(
                f"the body ended without data: {self._marker} ({self._index} events decoded)"
            )
        elif self._proto.end_in_band and not self._proto.eof_ok:
            self.error = StreamInterrupted(
                f"the {self.protocol} body ended before its end signal "
                f"({self._index} events decoded)"
            )
        else:
            self.done = True
        return out
