"""Sans-IO NDJSON framing: bytes in, complete lines out (Ollama's native streams).

Strategy: split each chunk on LF with ``bytes.split``; only the unfinished last line is
kept, as fragments joined once when its end arrives. A CR before the LF is dropped and
blank lines are skipped. Lines are decoded as UTF-8 (bad bytes → U+FFFD) only when
complete, so a character split across reads is safe. ``max_line_bytes`` bounds memory.
"""

from __future__ import annotations

from ._errors import EventTooLarge

__all__ = ["IncompleteLine", "NDJSONDecoder"]


class IncompleteLine(str):
    """The last line of a body that ended without its LF (complete in NDJSON, or cut off)."""

    __slots__ = ()


class NDJSONDecoder:
    """Incremental NDJSON line splitter: ``feed(bytes) -> list[str]`` of complete lines."""

    __slots__ = ("_limit", "_tail", "_tail_size")

    def __init__(self, *, max_line_bytes: int | None = None) -> None:
        self._tail: list[bytes] = []
        self._tail_size = 0
        self._limit = max_line_bytes

    def feed(self, data: bytes) -> list[str]:
        """Return the lines that ``data`` completed (without their line ends)."""
        if b"\n" not in data:
            if data:
                self._tail.append(data)
                self._tail_size += len(data)
                if self._limit is not None and self._tail_size > self._limit:
                    raise EventTooLarge(self._tail_size, self._limit)
            return []
        if self._tail:
            self._tail.append(data)
            data = b"".join(self._tail)
            self._tail = []
            self._tail_size = 0
        lines = data.split(b"\n")
        rest = lines.pop()
        if rest:
            self._tail.append(rest)
            self._tail_size = len(rest)
            if self._limit is not None and self._tail_size > self._limit:
                raise EventTooLarge(self._tail_size, self._limit)
        out = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip():
                if self._limit is not None and len(line) > self._limit:
                    raise EventTooLarge(len(line), self._limit)
                out.append(line.decode("utf-8", "replace"))
        return out

    def close(self) -> list[str]:
        """End of stream: a final line without LF, as an :class:`IncompleteLine`."""
        rest = b"".join(self._tail).rstrip(b"\r")
        self._tail = []
        return [IncompleteLine(rest.decode("utf-8", "replace"))] if rest.strip() else []
