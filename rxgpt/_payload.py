"""The payload stage: frames → JSON values, with the done marker and the in-band error screen.

What every provider's payloads share, stated once: a frame whose data is the done marker
(``[DONE]``) ends the stream; data that is not JSON is a :class:`~rxgpt.DecodeError`
naming the event's index and its text; a JSON object with a truthy ``"error"`` member (or
any payload of an ``event: error``) is the provider reporting a failure, a
:class:`~rxgpt.StreamError`; a last frame whose terminator never came and that is not JSON
was cut off by the end of the body (truncation); comments (heartbeats) pass through.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any

from ._errors import DecodeError, MissingDone, RxgptError, StreamError, StreamInterrupted
from ._fusion import End, StageSpec
from ._json import JSONDecodeError, loads
from ._ndjson import IncompleteLine
from ._sse import Comment, IncompleteEvent

__all__ = ["DONE", "PayloadDecoder", "PayloadSpec", "parse_payload"]

#: The data of the event that ends an OpenAI-style stream.
DONE = "[DONE]"

_contains = dict.__contains__


def parse_payload(data: str, index: int, event: str = "message") -> Any:
    """Parse one payload; raise the typed error for bad JSON or an in-band error object."""
    try:
        obj = loads(data)
    except JSONDecodeError:
        raise DecodeError("payload is not valid JSON", raw=data, index=index) from None
    if type(obj) is dict:
        error = obj.get("error")
        if error or event == "error":
            raise StreamError(error if error else obj, index=index)
    elif event == "error":
        raise StreamError(obj, index=index)
    return obj


class PayloadDecoder:
    """Stage: frames (data strings, events, lines, comments) → parsed JSON values.

    ``done`` is the marker that ends the stream (None: the stream has none). ``index`` is
    the number of payloads decoded so far: the event index in error messages. At the end
    of the body without the marker the stage ends with :class:`~rxgpt.MissingDone`.
    """

    __slots__ = ("end", "index", "marker")

    def __init__(self, done: str | None = DONE) -> None:
        self.marker = done
        self.index = 0
        self.end: End | None = None

    def feed(self, batch: list[Any]) -> list[Any]:
        """Parse a read's frames; stop at the marker or the first bad payload."""
        marker = self.marker
        if marker is not None and marker in batch:  # the end: parse what came before it
            before = batch.index(marker)
            out = self.feed(batch[:before]) if before else []
            if self.end is None:  # (no bad payload before the marker)
                self.end = End(marker=True, events=self.index)
            return out
        # The common read: plain data strings, all JSON objects, no error among them,
        # parsed and screened with C-level map. Anything else raises here (TypeError for
        # an event object or a non-object) and takes the general loop.
        try:
            objs = list(map(loads, batch))
            if not any(map(_contains, objs, repeat("error"))):
                self.index += len(objs)
                return objs
        except JSONDecodeError:
            pass
        return self._general(batch)

    def _general(self, batch: list[Any]) -> list[Any]:
        out: list[Any] = []
        for frame in batch:
            cls = frame.__class__
            if cls is Comment:
                out.append(frame)
                continue
            if cls is str or cls is IncompleteLine:
                kind, data = "message", frame
            else:
                kind, data = frame[0], frame[1]
            if data == self.marker:
                self.end = End(marker=True, events=self.index)
                return out
            try:
                out.append(parse_payload(data, self.index, kind))
            except RxgptError as exc:
                error: Exception = exc
                if isinstance(exc, DecodeError) and (
                    cls is IncompleteEvent or cls is IncompleteLine
                ):
                    error = self._truncated()  # a last frame cut off by the end of the body
                self.end = End(error, events=self.index)
                return out
            self.index += 1
        return out

    def _truncated(self) -> StreamInterrupted:
        return StreamInterrupted(f"the body ended inside event {self.index}")

    def close(self, end: End) -> list[Any]:
        """The frames ended: without the marker, that is :class:`~rxgpt.MissingDone`."""
        events = self.index
        end = end._replace(events=events)
        if end.error is None and self.marker is not None:
            missing = MissingDone(f"the body ended without data: {self.marker}{end.message}")
            end = end._replace(error=missing)
        self.end = end
        return []


@dataclass(frozen=True, slots=True)
class PayloadSpec:
    """:func:`~rxgpt.decode_json` in a chain."""

    done: str | None = DONE

    def build(self, downstream: StageSpec | None) -> PayloadDecoder:
        """A payload stage."""
        return PayloadDecoder(self.done)
