"""Sans-IO Server-Sent Events decoder: bytes in, events out, exactly as WHATWG HTML §9.2 says.

Strategy: decode each chunk once with an incremental UTF-8 decoder (split characters and a
split BOM are handled by the codec, bad bytes become U+FFFD), normalise CR and CRLF to LF
with ``str.replace`` (a CR at the end of a chunk ends its line at once and arms a one-shot
"swallow the next LF" flag), then let ``str.split`` find the events: every ``"\\n\\n"`` ends
one. Blocks of the common shape ``data: ...`` (one line) are dispatched straight from the
slice; any other block goes through the general per-line algorithm. Only the unfinished last
line is kept between chunks, as a list of fragments joined once when its end arrives, so a
4 MiB line fed in 1 KiB chunks costs linear time. No I/O, no asyncio: feed bytes, get events.
"""

from __future__ import annotations

import codecs
from typing import Any, NamedTuple

from ._errors import EventTooLarge

__all__ = ["Comment", "IncompleteEvent", "SSEDecoder", "ServerSentEvent"]


class ServerSentEvent(NamedTuple):
    """One dispatched event.

    ``event`` is the type ("message" unless the block set one), ``data`` the data lines
    joined with LF, ``id`` the last event ID in force when the event was dispatched (it
    persists across events, WHATWG sense) and ``retry`` the reconnection time set by a
    ``retry:`` field in this event's own block (else None). Immutable and cheap to build.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None

    def json(self) -> object:
        """Parse ``data`` as JSON."""
        from ._json import loads

        return loads(self.data)


class IncompleteEvent(ServerSentEvent):
    """An event flushed at the end of the stream although its blank line never came.

    Only produced on request (``close(flush=True)``); it may have been cut off mid-way.
    """

    __slots__ = ()


class Comment(NamedTuple):
    """A comment line (``: text``): a heartbeat that proves the connection is alive."""

    text: str


_tuple_new = tuple.__new__  # builds a ServerSentEvent without NamedTuple's Python __new__
_Out = list[Any]  # what the internals append to: events, comments, bare data strings

#: A line still waiting for its end may exceed ``max_event_bytes`` by this much: room for
#: its field name, so that the limit means the same (the size of an event's data) however
#: the stream is chunked.
_LINE_SLACK = 16


def _size(text: str) -> int:
    """UTF-8 size of ``text`` in bytes (O(1) for ASCII text).

    A text of at most ``limit >> 2`` characters is at most ``limit`` bytes, so hot paths
    only call this for longer ones.
    """
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class SSEDecoder:
    """Incremental SSE decoder.

    Feed it the response body in whatever pieces the network delivers; :meth:`feed` returns
    the events those bytes completed, in order, as soon as their blank line arrived.
    :meth:`feed_frames` does the same and also returns comment lines as :class:`Comment`
    (heartbeats), in arrival order. :meth:`close` marks the end of the stream: an event
    without its blank line is discarded, as the specification requires.

    ``max_event_bytes`` bounds memory: when the line still waiting for its end, or the
    event being built, grows past it, :class:`~rxgpt._errors.EventTooLarge` is raised
    (its ``events`` holds the events completed earlier in the same call).
    ``last_event_id`` seeds the last event ID, for a decoder built on reconnection.
    """

    __slots__ = (
        "_block_retry",
        "_data",
        "_data_size",
        "_decode",
        "_event",
        "_failed",
        "_flush_incomplete",
        "_id_buf",
        "_limit",
        "_plain",
        "_skip_lf",
        "_special",
        "_start",
        "_tail",
        "_tail_size",
        "comments",
        "last_event_id",
        "retry",
        "unknown_lines",
    )

    def __init__(
        self,
        *,
        max_event_bytes: int | None = None,
        last_event_id: str = "",
        flush_incomplete: bool = False,
    ) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        self._start = True  # no text decoded yet: a leading BOM is still to be stripped
        self._special = True  # _start, _skip_lf or _failed is set: see _prelude
        self._skip_lf = False  # the last chunk ended in CR: drop one LF that starts the next
        self._tail: list[str] = []  # fragments of the unfinished last line
        self._tail_size = 0
        self._data: list[str] = []  # data buffer, one entry per data line
        self._data_size = 0
        self._event = ""  # event type buffer
        self._id_buf = last_event_id  # last event ID buffer
        self._block_retry: int | None = None
        self._limit = max_event_bytes
        self._flush_incomplete = flush_incomplete
        self._failed = False
        self._plain = False  # feed_data: one-line data events as bare strings
        #: The last event ID string: committed at every blank line, even if nothing fires.
        self.last_event_id = last_event_id
        #: The last reconnection time accepted from a ``retry:`` field, in milliseconds.
        self.retry: int | None = None
        #: How many comment lines (heartbeats) have been seen.
        self.comments = 0
        #: Set to a list to collect the lines the algorithm ignores (unknown field names,
        #: unframed text): for providers that send errors outside the SSE framing.
        self.unknown_lines: list[str] | None = None

    # -- public API -------------------------------------------------------------------

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode ``data`` and return the events it completed (comments dropped)."""
        return self._feed(data, None)

    def feed_frames(self, data: bytes) -> list[ServerSentEvent | Comment]:
        """Like :meth:`feed`, but comment lines are returned too, as :class:`Comment`."""
        frames: list[ServerSentEvent | Comment] = []
        return self._feed(data, frames)

    def feed_data(
        self, data: bytes, *, comments: bool = False
    ) -> list[str | ServerSentEvent | Comment]:
        """Like :meth:`feed` (or :meth:`feed_frames`), for pipelines that need only data.

        The common event, a one-line ``data:`` without ``event:`` / ``id:`` / ``retry:``,
        comes back as its data string alone (no event object is built); any other event
        as a :class:`ServerSentEvent`. ``last_event_id`` is kept as usual.
        """
        self._plain = True
        try:
            frames: list[Any] = []
            result: list[str | ServerSentEvent | Comment] = self._feed(
                data, frames if comments else None
            )
            return result
        finally:
            self._plain = False

    def close(self, *, flush: bool = False) -> list[ServerSentEvent]:
        """Mark the end of the stream; the unterminated event is discarded.

        With ``flush=True`` (or ``flush_incomplete=True`` at construction), for servers
        that omit the final blank line, a last event whose blank line never came is
        dispatched instead.
        """
        out: list[ServerSentEvent | Comment] = []
        if self._failed:
            return []
        rest = self._decode(b"", True)
        if flush or self._flush_incomplete:
            if rest:
                self._tail.append(rest)
            if self._tail:
                self._lines("".join(self._tail).replace("\r\n", "\n").split("\n"), out, None)
            self._tail = []
            if self._data:
                self._dispatch(out)
                out = [IncompleteEvent(*event) for event in out]
        self._tail = []
        self._data = []
        self._event = ""
        self._block_retry = None
        self._failed = self._special = True
        return out  # type: ignore[return-value]

    # -- internals --------------------------------------------------------------------

    def _prelude(self, text: str) -> str:
        """The rare states, checked through one flag: failed, a BOM to strip, an LF to skip."""
        if self._failed:
            raise RuntimeError("SSEDecoder was closed or failed; create a new one")
        if not text:
            return text
        if self._start:
            self._start = False
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    self._special = self._skip_lf
                    return text
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        self._special = False
        return text

    def _feed(self, data: bytes, frames: _Out | None) -> _Out:
        text = self._decode(data)
        if self._special:
            text = self._prelude(text)
        if not text:
            return frames if frames is not None else []
        if "\r" in text:
            if text[-1] == "\r":
                self._skip_lf = self._special = True
            text = text.replace("\r\n", "\n").replace("\r", "\n")

        out: list[Any] = frames if frames is not None else []
        if "\n" not in text:
            # Still inside one line: keep the fragment, join it once when the line ends.
            self._tail.append(text)
            if self._limit is not None:
                self._tail_size += _size(text)
                if self._tail_size > self._limit + _LINE_SLACK:
                    self._fail(self._tail_size, out)
            return out
        if self._data or self._event or self._block_retry is not None:
            # The text continues an event begun in an earlier chunk: finish it first.
            if self._tail:
                self._tail.append(text)
                text = "".join(self._tail)
                self._tail = []
                self._tail_size = 0
            end = text.find("\n\n")
            if end < 0:
                return self._blocks(text, out, frames)
            self._lines(text[:end].split("\n"), out, frames)
            self._dispatch(out)
            text = "\n\n" + text[end + 2 :]
        elif self._tail:
            # Join the unfinished line from earlier chunks with this text, once.
            text = "".join(["\n\n", *self._tail, text])
            self._tail = []
            self._tail_size = 0
        else:
            text = "\n\n" + text
        # From here every event starts fresh. Split where a one-line `data: ` event can
        # begin, so the common event costs one slice (its value) and one tuple. (The
        # text now starts with "\n\n", so an event at its very start splits too.)
        parts = text.split("\n\ndata: ")
        if len(parts) == 1:
            return self._blocks(text[2:], out, frames)
        head = parts[0]
        if head:
            # What precedes the first split, with the LFs the split took from the text:
            # "\n\n" + P + "\n\n" when P is not empty; blank lines at the very start of
            # the text otherwise (one LF taken when head is "\n", two when it is "\n\n").
            self._blocks(head[2:] + "\n\n" if len(head) >= 2 else "\n", out, frames)
        last = parts.pop()
        if len(parts) > 1:  # complete events (each one dispatches: the id is committed)
            limit = self._limit
            plain = self._plain
            last_id = self._id_buf
            mids = parts[1:]
            _new = _tuple_new
            append = out.append
            for part in mids:
                if "\n" not in part:
                    if limit is not None and len(part) > limit >> 2 and _size(part) > limit:
                        self._fail(_size(part), out)
                    append(
                        part if plain else _new(ServerSentEvent, ("message", part, last_id, None))
                    )
                else:
                    self._blocks("data: " + part + "\n\n", out, frames)
                    last_id = self._id_buf
            if mids:
                self.last_event_id = last_id
        if last[-2:] == "\n\n" and "\n" not in last[:-2]:
            # The text ends with a complete one-line event (one event per read: common).
            value = last[:-2]
            limit = self._limit
            if limit is not None and len(value) > limit >> 2 and _size(value) > limit:
                self._fail(_size(value), out)
            self.last_event_id = self._id_buf
            out.append(
                value
                if self._plain
                else _tuple_new(ServerSentEvent, ("message", value, self._id_buf, None))
            )
            return out
        return self._blocks("data: " + last, out, frames)

    def _blocks(
        self,
        text: str,
        out: _Out,
        frames: _Out | None,
    ) -> _Out:
        """Decode LF-only ``text`` that starts at a line boundary; keep its unfinished line."""
        blocks = text.split("\n\n")
        last = blocks.pop()
        limit = self._limit
        if blocks:
            if self._data or self._event or self._block_retry is not None:
                # The first block continues an event begun in an earlier chunk.
                self._lines(blocks[0].split("\n"), out, frames)
                self._dispatch(out)
                blocks = blocks[1:]
            # Every block now starts a fresh event. Fast path: a one-line `data: ` event
            # is dispatched straight from the slice; anything else takes the general path.
            append = out.append
            plain = self._plain
            _new = _tuple_new
            last_id = self._id_buf
            for block in blocks:
                if block.startswith("data: ") and "\n" not in block:
                    value = block[6:]
                    if limit is not None and len(value) > limit >> 2 and _size(value) > limit:
                        self._fail(_size(value), out)
                    append(
                        value if plain else _new(ServerSentEvent, ("message", value, last_id, None))
                    )
                else:
                    self._lines(block.split("\n"), out, frames)
                    self._dispatch(out)
                    last_id = self._id_buf
            self.last_event_id = last_id
        if last:
            lines = last.split("\n")
            tail = lines.pop()
            if lines:
                self._lines(lines, out, frames)
            if tail:
                self._tail.append(tail)
                if limit is not None:
                    self._tail_size = _size(tail)
                    if self._tail_size > limit + _LINE_SLACK:
                        self._fail(self._tail_size, out)
        return out

    def _lines(
        self,
        lines: list[str],
        out: _Out,
        frames: _Out | None,
    ) -> None:
        """Run the per-line algorithm (WHATWG §9.2.6) over complete lines."""
        for line in lines:
            if not line:
                self._dispatch(out)
                continue
            colon = line.find(":")
            if colon == 0:
                self.comments += 1
                if frames is not None:
                    frames.append(Comment(line[2:] if line[1:2] == " " else line[1:]))
                continue
            if colon < 0:
                name, value = line, ""
            else:
                name = line[:colon]
                value = line[colon + 1 :]
                if value[:1] == " ":
                    value = value[1:]
            if name == "data":
                self._data.append(value)
                if self._limit is not None:
                    # the size of the event's data: the lines joined with LF
                    self._data_size += _size(value) + (1 if len(self._data) > 1 else 0)
                    if self._data_size > self._limit:
                        self._fail(self._data_size, out)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._id_buf = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self.retry = self._block_retry = int(value)
            elif self.unknown_lines is not None:
                # any other field name is ignored; kept only when asked (see unknown_lines)
                self.unknown_lines.append(line)

    def _dispatch(self, out: _Out) -> None:
        """Handle a blank line: commit the id, fire the event if it has data, reset."""
        self.last_event_id = self._id_buf
        if self._data:
            data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
            out.append(
                _tuple_new(
                    ServerSentEvent,
                    (self._event or "message", data, self._id_buf, self._block_retry),
                )
            )
            self._data = []
            self._data_size = 0
        self._event = ""
        self._block_retry = None

    def _fail(self, size: int, out: _Out) -> None:
        self._failed = self._special = True
        self._tail = []
        self._data = []
        error = EventTooLarge(size, self._limit or 0)
        error.events = list(out)
        raise error
