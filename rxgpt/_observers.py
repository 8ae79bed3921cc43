"""Ready-made subscribers for a delta stream: a JSON-lines logger, a text printer, metrics.

Each is a plain Rx observer (``on_next`` / ``on_error`` / ``on_completed``), so it can be
given to ``stream.subscribe(...)`` or ``Fanout.subscribe(...)`` next to your own.
"""

from __future__ import annotations

import json
import time
from typing import IO, Any

from reactivex import Observer

from ._deltas import Delta, Heartbeat, TextDelta, UsageDelta, delta_to_dict
from ._secrets import redact

__all__ = ["DeltaLogger", "StreamMetrics", "TextPrinter"]


class DeltaLogger(Observer[Delta]):
    """Write every delta as one JSON line (with a monotonic timestamp ``t``) to ``file``.

    The end of the stream is logged too (``{"type": "end", "state": ...}``); API keys are
    redacted from error messages.
    """

    def __init__(self, file: IO[str]) -> None:
        super().__init__()
        self._file = file
        self._t0 = time.perf_counter()

    def _write(self, record: dict[str, Any]) -> None:
        record["t"] = round(time.perf_counter() - self._t0, 6)
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    def _on_next_core(self, value: Delta) -> None:
        self._write(delta_to_dict(value))

    def _on_error_core(self, error: Exception) -> None:
        self._write({"type": "end", "state": "error", "error": redact(str(error))})
        self._file.flush()

    def _on_completed_core(self) -> None:
        self._write({"type": "end", "state": "complete"})
        self._file.flush()


class TextPrinter(Observer[Delta]):
    """Print the text of one choice to ``file`` as it arrives (flushed per fragment)."""

    def __init__(self, file: IO[str], choice: int = 0) -> None:
        super().__init__()
        self._file = file
        self._choice = choice
        self._printed = False  # some text is on the line: end it at the end of the stream

    def _on_next_core(self, value: Delta) -> None:
        if type(value) is TextDelta and value.choice == self._choice and value.text:
            self._file.write(value.text)
            self._file.flush()
            self._printed = True

    def _on_error_core(self, error: Exception) -> None:
        if self._printed:  # no stray blank line before an error message
            self._file.write("\n")
            self._file.flush()

    def _on_completed_core(self) -> None:
        self._file.write("\n")
        self._file.flush()


class StreamMetrics(Observer[Delta]):
    """Measure a stream: time to first token, deltas, output tokens and tokens per second.

    Times are taken with ``time.perf_counter()`` from ``start`` (defaults to creation).
    """

    def __init__(self, start: float | None = None) -> None:
        super().__init__()
        self.start = time.perf_counter() if start is None else start
        self.first_token: float | None = None
        self.end: float | None = None
        self.deltas = 0
        self.text_deltas = 0
        self.heartbeats = 0
        self.output_tokens: int | None = None

    def _on_next_core(self, value: Delta) -> None:
        cls = type(value)
        if cls is Heartbeat:
            self.heartbeats += 1
            return
        self.deltas += 1
        if cls is TextDelta:
            assert isinstance(value, TextDelta)
            if value.text:
                self.text_deltas += 1
                if self.first_token is None:
                    self.first_token = time.perf_counter()
        elif cls is UsageDelta:
            assert isinstance(value, UsageDelta)
            self.output_tokens = value.usage.output_tokens

    def _on_error_core(self, error: Exception) -> None:
        self.end = time.perf_counter()

    def _on_completed_core(self) -> None:
        self.end = time.perf_counter()

    @property
    def ttft(self) -> float | None:
        """Seconds from start to the first text token."""
        return None if self.first_token is None else self.first_token - self.start

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens (usage, else text deltas) per second after the first token."""
        if self.first_token is None or self.end is None:
            return None
        tokens = self.output_tokens if self.output_tokens is not None else self.text_deltas
        elapsed = self.end - self.first_token
        return tokens / elapsed if elapsed > 0 else None
