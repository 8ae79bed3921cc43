"""Sans-IO Server-Sent Events decoder: bytes in, events out, exactly as WHATWG HTML §9.2 says.

Strategy: decode each chunk once with an incremental UTF-8 decoder (split characters and a
split BOM are handled by the codec, bad bytes become U+FFFD), normalise CR and CRLF to LF
with ``str.replace`` (a CR at the end of a chunk ends its line at once and arms a one-shot
"swallow the next LF" flag), then let ``str.split`` find the events: every ``"\\n\\n"`` ends
one. Events of the common shape (one ``data: ...`` line) are dispatched straight from the
slice that ``split("\\n\\ndata: ")`` gives; any other block goes through the per-line
algorithm. Only the unfinished last line is kept between chunks, as a list of fragments
joined once when its end arrives, so a 4 MiB line fed in 1 KiB chunks costs linear time.
No I/O, no asyncio: feed bytes, get events.
"""

from __future__ import annotations

from codecs import utf_8_decode
from typing import Any, ClassVar, NamedTuple

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


_new = tuple.__new__  # builds a ServerSentEvent without NamedTuple's Python-level __new__

#: A line still waiting for its end may exceed ``max_event_bytes`` by this much: room for
#: its field name, so that the limit means the same (the size of an event's data) however
#: the stream is chunked.
_LINE_SLACK = 16

#: At most this much text outside the framing (lines with unknown field names) is kept for
#: :attr:`SSEDecoder.unframed` (Gemini sends some errors that way); the rest is dropped.
_MAX_UNFRAMED = 64 * 1024


def _size(text: str) -> int:
    """UTF-8 size of ``text`` in bytes (O(1) for ASCII text)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _split_at_events(text: str) -> tuple[str, list[str], str]:
    """Split ``text``, which starts at an event boundary, where a one-line ``data:`` event
    can begin: what comes before the first (the head), the parts after each ``data: ``,
    and the rest after the last blank line (an event still arriving, kept for the next
    chunk); all up to that blank line is whole."""
    if text[-2:] == "\n\n":  # the read ended at an event boundary (the common case)
        parts = text[:-2].split("\n\ndata: ")
        rest = ""
    else:
        parts = text.split("\n\ndata: ")
        last = parts.pop()
        # (str.rfind searches byte by byte: ask the fast forward search first)
        end = last.rfind("\n\n") if "\n\n" in last else -1
        if not parts:  # no `data:` block begins here: `last` is the whole text
            parts = [last[:end]]
            rest = last[end + 2 :]
        elif end >= 0:
            parts.append(last[:end])
            rest = last[end + 2 :]
        else:
            rest = "data: " + last
    return parts[0], parts[1:], rest


class _Framer:
    """The WHATWG event-stream state machine; its subclasses choose what an event is.

    A documented state machine (HTML §9.2.6, "Interpreting an event stream"): its state is
    the unfinished line (``_tail``), the event being built (data lines, type, retry), the
    last event ID buffer, and the rare flags (a BOM still to strip, an LF to swallow after
    a chunk that ended in CR, failed). ``_lines`` is the per-line algorithm itself.
    """

    #: Emit a one-line ``message`` event as its data string alone (see ``_SSEDataDecoder``).
    _PLAIN: ClassVar[bool] = False

    __slots__ = (
        "_data",
        "_data_size",
        "_event",
        "_failed",
        "_flush_incomplete",
        "_id_buf",
        "_limit",
        "_pending",
        "_plain",
        "_retry_buf",
        "_skip_lf",
        "_start",
        "_tail",
        "_tail_size",
        "_unframed_size",
        "comments",
        "cut",
        "last_event_id",
        "retry",
        "unframed",
    )

    def __init__(
        self,
        *,
        max_event_bytes: int | None = None,
        last_event_id: str = "",
        flush_incomplete: bool = False,
    ) -> None:
        self._pending = b""  # the bytes of a UTF-8 sequence cut by the end of a chunk
        self._start = True  # no text decoded yet: a leading BOM is still to be stripped
        self._skip_lf = False  # the last chunk ended in CR: drop one LF that starts the next
        self._failed = False
        self._tail: list[str] = []  # fragments of the unfinished last line
        self._tail_size = 0
        self._data: list[str] = []  # data buffer, one entry per data line
        self._data_size = 0
        self._event = ""  # event type buffer
        self._id_buf = last_event_id  # last event ID buffer
        self._retry_buf: int | None = None  # this block's retry: field
        self._limit = max_event_bytes
        self._plain = self._PLAIN  # (an instance slot: read once per chunk, the fastest)
        self._flush_incomplete = flush_incomplete
        self._unframed_size = 0
        #: The last event ID string: committed at every blank line, even if nothing fires.
        self.last_event_id = last_event_id
        #: The last reconnection time accepted from a ``retry:`` field, in milliseconds.
        self.retry: int | None = None
        #: How many comment lines (heartbeats) have been seen.
        self.comments = 0
        #: Lines the algorithm ignores (unknown field names: text outside the framing), in
        #: order, up to 64 KiB: an error document some servers send instead of events.
        self.unframed: list[str] = []
        #: Set by :meth:`close`: the body ended inside an event, which was discarded.
        self.cut = False

    def close(self, *, flush: bool = False) -> list[ServerSentEvent]:
        """Mark the end of the stream; the unterminated event is discarded.

        With ``flush=True`` (or ``flush_incomplete=True`` at construction), for servers
        that omit the final blank line, a last event whose blank line never came is
        dispatched instead, as an :class:`IncompleteEvent`.
        """
        if self._failed:
            return []
        self._failed = True
        out: list[Any] = []
        self._tail.append(utf_8_decode(self._pending, "replace", True)[0])
        self._pending = b""
        if flush or self._flush_incomplete:
            tail = "".join(self._tail)
            if tail:
                self._lines(tail.replace("\r\n", "\n").split("\n"), out, False)
            if self._data:
                self._dispatch(out)
                out = [IncompleteEvent(*event) for event in out]
        else:
            self.cut = bool(self._data) or any(self._tail)
        self._tail = []
        self._data = []
        return out

    # -- internals --------------------------------------------------------------------

    def _feed(self, data: bytes, comments: bool = False) -> list[Any]:
        if self._failed:
            raise RuntimeError("SSEDecoder was closed or failed; create a new one")
        # UTF-8 decoding with the C codec directly (an incremental decoder object costs a
        # Python call per read); a sequence cut by the end of the chunk waits for the next.
        if self._pending:
            data = self._pending + data
        text, used = utf_8_decode(data, "replace", False)
        self._pending = data[used:] if used != len(data) else b""
        if self._start or self._skip_lf:
            text = self._prelude(text)
        out: list[Any] = []
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            if text:  # still inside one line: keep the fragment, join it once at its end
                self._grow_tail(text, out)
            return out
        if self._tail:
            self._tail.append(text)
            text = "".join(self._tail)
            self._tail = []
            self._tail_size = 0
        in_event = (
            self._data
            or self._event
            or self._retry_buf is not None
            or (self._id_buf != self.last_event_id)
        )
        if not in_event and text[-2:] == "\n\n" and text.startswith("data: "):
            # The commonest read: whole events from an event boundary, the first a `data:`
            # block. The same parts as below, without copying the text to prefix it.
            parts = text[6:-2].split("\n\ndata: ")
            head = rest = ""
        else:
            if in_event:
                after = self._finish_event(text, out, comments)
                if after is None:
                    return out
                text = after
            else:
                text = "\n\n" + text
            head, parts, rest = _split_at_events(text)
        if len(head) > 2:  # blocks before the first `data:` block (head starts with \n\n)
            self._blocks(head[2:], out, comments)
        # The fast path, the only one: a part without a line break is a one-line
        # `data:` event, which costs one slice and one tuple (its data string alone for
        # the data-only decoder). A chunk so big that one of its events could pass the
        # size limit takes the per-line path, where the limit is checked.
        limit = self._limit
        big = limit is not None and len(text) > limit >> 2
        plain = self._plain
        last_id = self._id_buf
        for part in parts:
            if big or "\n" in part:
                self._blocks("data: " + part, out, comments)
                last_id = self._id_buf
            elif plain:
                out.append(part)
            else:
                out.append(_new(ServerSentEvent, ("message", part, last_id, None)))
        self.last_event_id = last_id
        if rest:
            self._rest(rest, out, comments)
        return out

    def _finish_event(self, text: str, out: list[Any], comments: bool) -> str | None:
        """Finish the event an earlier chunk began: its lines run to the first blank line.

        Returns the text after that blank line (from the boundary, ``"\n\n"`` included),
        or None when the event goes on past this text.
        """
        text = "\n" + text  # the LF that ended the line before, so "\n\n" finds a blank line
        end = text.find("\n\n")
        if end < 0:
            self._rest(text[1:], out, comments)
            return None
        if end:
            self._lines(text[1:end].split("\n"), out, comments)
        self._dispatch(out)
        return text[end:]

    def _prelude(self, text: str) -> str:
        """The rare states at a chunk's start: a BOM to strip, an LF to skip."""
        if self._start and text:
            self._start = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        return text

    def _blocks(self, text: str, out: list[Any], comments: bool) -> None:
        """Run the per-line algorithm over whole blocks, each ended by a blank line."""
        for block in text.split("\n\n"):
            self._lines(block.split("\n"), out, comments)
            self._dispatch(out)

    def _rest(self, text: str, out: list[Any], comments: bool) -> None:
        """The text after the last blank line: whole lines of an event, then the tail."""
        if "\n" not in text:  # only the start of an event's first line (the common case)
            self._grow_tail(text, out)
            return
        lines = text.split("\n")
        tail = lines.pop()
        if lines:
            self._lines(lines, out, comments)
        if tail:
            self._grow_tail(tail, out)

    def _lines(self, lines: list[str], out: list[Any], comments: bool) -> None:
        """Run the per-line algorithm (WHATWG §9.2.6) over complete lines."""
        for line in lines:
            if not line:
                self._dispatch(out)
                continue
            colon = line.find(":")
            if colon == 0:
                self.comments += 1
                if comments:
                    out.append(Comment(line[2:] if line[1:2] == " " else line[1:]))
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
                if self._limit is not None:  # the size of the data: lines joined with LF
                    self._data_size += _size(value) + (len(self._data) > 1)
                    self._check(self._data_size, out)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._id_buf = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self.retry = self._retry_buf = int(value)
            elif self._unframed_size + len(line) <= _MAX_UNFRAMED:
                self._unframed_size += len(line) + 1
                self.unframed.append(line)  # any other field name is ignored (see unframed)

    def _dispatch(self, out: list[Any]) -> None:
        """Handle a blank line: commit the id, fire the event if it has data, reset."""
        self.last_event_id = self._id_buf
        if self._data:
            data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
            event = self._event or "message"
            out.append(_new(ServerSentEvent, (event, data, self._id_buf, self._retry_buf)))
            self._data = []
            self._data_size = 0
        self._event = ""
        self._retry_buf = None

    def _grow_tail(self, fragment: str, out: list[Any]) -> None:
        self._tail.append(fragment)
        if self._limit is not None:
            self._tail_size += _size(fragment)
            self._check(self._tail_size, out, _LINE_SLACK)

    def _check(self, size: int, out: list[Any], slack: int = 0) -> None:
        """The size limit, checked in one place: fail when ``size`` passes it."""
        limit = self._limit
        if limit is not None and size > limit + slack:
            self._failed = True
            self._tail = []
            self._data = []
            error = EventTooLarge(size, limit)
            error.events = list(out)
            raise error


class SSEDecoder(_Framer):
    """Incremental SSE decoder.

    Feed it the response body in whatever pieces the network delivers; :meth:`feed` returns
    the events those bytes completed, in order, as soon as their blank line arrived.
    :meth:`feed_frames` does the same and also returns comment lines as :class:`Comment`
    (heartbeats), in arrival order. :meth:`close` marks the end of the stream: an event
    without its blank line is discarded, as the specification requires.

    ``max_event_bytes`` bounds memory: when the line still waiting for its end, or the
    event being built, grows past it, :class:`~rxgpt.EventTooLarge` is raised (its
    ``events`` holds the events completed earlier in the same call; the decoder then
    accepts nothing more). ``last_event_id`` seeds the last event ID, for a decoder built
    on reconnection.
    """

    __slots__ = ()

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode ``data`` and return the events it completed (comments dropped)."""
        return self._feed(data, False)

    def feed_frames(self, data: bytes) -> list[ServerSentEvent | Comment]:
        """Like :meth:`feed`, but comment lines are returned too, as :class:`Comment`."""
        return self._feed(data, True)


class _SSEDataDecoder(_Framer):
    """The SSE decoder for a consumer that reads only the data (rxgpt's payload stage).

    The common event (one ``data:`` line, no ``event:`` / ``id:`` / ``retry:``) comes out
    as its data string alone, with no event object built; any other as a
    :class:`ServerSentEvent`. Ids are kept as usual.
    """

    _PLAIN = True
    __slots__ = ()

    def feed(self, data: bytes, comments: bool = False) -> list[str | ServerSentEvent | Comment]:
        """Decode ``data``: data strings, events, and with ``comments`` comment lines."""
        return self._feed(data, comments)
