"""Ground truth: what the mock server actually did, per request and per chunk.

With ``MockConfig(timeline=True)`` (or a ``timeline_path``, ``rxgpt serve --timeline FILE``)
the engine keeps one :class:`RequestRecord` per request: when it arrived, got a slot and
finished, and for every write the decode step, when the write was scheduled and when it
happened. A benchmark checks what it measured against it (TTFT, chunk gaps, queueing).

The JSONL file gets one line per finished request (:meth:`RequestRecord.as_json`): times in
seconds relative to ``arrived`` (whose wall-clock time is ``arrived_unix``, and whose
``time.monotonic()`` is ``arrived_monotonic``: the same clock in every worker), and ``chunks`` as
``[step, scheduled, written, events, bytes]`` rows (step 0: the events sent before the first
token, such as the role chunk).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from .._json import dumps

__all__ = ["Chunk", "RequestRecord", "TimelineRecorder"]

logger = logging.getLogger("rxgpt.mock")

#: The timeline's times are written rounded to this many digits (microseconds).
_DIGITS = 6


@dataclass(frozen=True, slots=True)
class Chunk:
    """One write: the decode ``step``, its ``scheduled`` and ``written`` loop times."""

    step: int
    scheduled: float
    written: float
    events: int
    size: int


@dataclass(slots=True)
class RequestRecord:
    """The life of one request in the engine (times are ``loop.time()`` values)."""

    id: int
    route: str
    stream: bool
    prompt_tokens: int
    arrived: float
    arrived_unix: float = field(default_factory=time.time)
    admitted: float | None = None
    first_token: float | None = None
    finished: float | None = None
    outcome: str = "running"
    output_tokens: int = 0
    writes: list[float] = field(default_factory=list)

    def add(self, step: int, scheduled: float, written: float, events: int, size: int) -> None:
        """Record one write (flat floats: cheap in the engine's hot loop)."""
        self.writes.extend((step, scheduled, written, events, size))

    @property
    def chunks(self) -> list[Chunk]:
        """Every write, in order."""
        w = self.writes
        return [
            Chunk(int(w[i]), w[i + 1], w[i + 2], int(w[i + 3]), int(w[i + 4]))
            for i in range(0, len(w), 5)
        ]

    @property
    def ttft(self) -> float | None:
        """Seconds from arrival to the first token's write."""
        return None if self.first_token is None else self.first_token - self.arrived

    @property
    def queued(self) -> float | None:
        """Seconds from arrival (the handler's start) to a slot: turns, reading the request,
        the queue."""
        return None if self.admitted is None else self.admitted - self.arrived

    def as_json(self) -> dict[str, Any]:
        """The JSONL form (times relative to arrival, rounded to microseconds)."""
        start = self.arrived
        w = self.writes

        def rel(value: float | None) -> float | None:
            return None if value is None else round(value - start, _DIGITS)

        # Performance: the rows are built column by column with map and zip (C loops, no
        # Python call per value): about a quarter of the time of a comprehension calling
        # rel() twice per row, and the line is written while the server is under load.
        # The values are rel()'s: round(value - start, _DIGITS); steps, events and sizes
        # are ints as add() got them.
        shift = (-start).__add__
        scheduled = map(round, map(shift, w[1::5]), repeat(_DIGITS))
        written = map(round, map(shift, w[2::5]), repeat(_DIGITS))
        chunks = list(map(list, zip(w[0::5], scheduled, written, w[3::5], w[4::5], strict=True)))

        return {
            "id": self.id,
            "pid": os.getpid(),  # (with --workers: each process numbers its own requests)
            "route": self.route,
            "stream": self.stream,
            "arrived_unix": round(self.arrived_unix, _DIGITS),
            "arrived_monotonic": self.arrived,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "queued": rel(self.admitted),
            "ttft": rel(self.first_token),
            "finished": rel(self.finished),
            "outcome": self.outcome,
            "chunks": chunks,  # (from the flat floats: no Chunk object per write)
        }


#: Finished requests whose lines may wait for a pause between decode steps; past this
#: many, they are written at once (memory stays bounded under a load that never pauses).
MAX_PENDING = 1024


class TimelineRecorder:
    """Keeps finished :class:`RequestRecord` objects and appends them to a JSONL file.

    A line is not written when its request finishes, in the middle of a decode step, but
    by :meth:`write_pending`, which the engine calls when it waits for its next step (so
    serialising hundreds of records that end together never delays the streams still
    running), and at :meth:`close`. Each call writes whole lines in one ``write``.
    """

    def __init__(self, path: str | None = None, *, keep: bool = True) -> None:
        self.path = path
        self.keep = keep
        self.requests: list[RequestRecord] = []
        self._pending: list[RequestRecord] = []
        self._fd: int | None = None
        if path is not None:
            # O_APPEND: several worker processes can share one file, whole lines per write.
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    @property
    def pending(self) -> int:
        """Finished requests whose lines are not written yet."""
        return len(self._pending)

    def finished(self, record: RequestRecord) -> None:
        """Store a finished request (its line is written by :meth:`write_pending`)."""
        if self.keep:
            self.requests.append(record)
        if self._fd is not None:
            self._pending.append(record)
            if len(self._pending) >= MAX_PENDING:
                self.write_pending()

    def write_pending(
        self, until: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> int:
        """Write the pending lines, oldest first; returns how many were taken.

        With ``until`` (a ``clock()`` time), stop once the clock has passed it: the engine
        gives the time of its next step. A file that fails (a full disk) is logged once and
        written no more; the in-memory timeline goes on.
        """
        pending, fd = self._pending, self._fd
        if fd is None or not pending:
            return 0
        lines = []
        for record in pending:
            if until is not None and clock() >= until:
                break
            lines.append(dumps(record.as_json()) + "\n")
        del pending[: len(lines)]
        data = "".join(lines).encode()
        try:
            while data:  # (one write, unless the kernel takes less)
                data = data[os.write(fd, data) :]
        except OSError as error:  # a full disk stops the timeline, never the server
            logger.warning("rxgpt serve: the timeline file %s failed (%s); not written any more",
                           self.path, error.strerror or error)  # fmt: skip
            self._pending.clear()
            self._fd = None
            os.close(fd)
        return len(lines)

    def close(self) -> None:
        """Write what is pending and close the file (idempotent)."""
        self.write_pending()
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
