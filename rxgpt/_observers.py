"""Ready-made subscribers for a delta stream: a JSON-lines logger, a text printer, metrics.

Each is a plain Rx observer (``on_next`` / ``on_error`` / ``on_completed``), so it can be
given to ``stream.subscribe(...)`` or ``Fanout.subscribe(...)`` next to your own.
"""

from __future__ import annotations

import json
import time
from typing import IO, Any

from reactivex import Observer

from ._deltas import (
    Delta,
    Heartbeat,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    UsageDelta,
    delta_to_dict,
)
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
    """Print the text of one choice to ``file`` as it arrives (flushed per fragment).

    Tool calls are shown too, each on its own line as ``→ name(arguments)``, with the
    arguments streamed as they arrive.
    """

    def __init__(self, file: IO[str], choice: int = 0) -> None:
        super().__init__()
        self._file = file
        self._choice = choice
        self._printed = False  # something is on the line: end it at the end of the stream
        self._line_ended = False  # the last thing written was a whole line (a tool call)
        self._calls: dict[int, bool] = {}  # open tool call → some arguments were printed

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()
        self._line_ended = text.endswith("\n")
        self._printed = not self._line_ended

    def _on_next_core(self, value: Delta) -> None:
        if isinstance(value, TextDelta):
            if value.choice == self._choice and value.text:
                self._write(value.text)
        elif isinstance(value, (ToolCallStart, ToolCallArguments, ToolCallEnd)):
            self._tool_call(value)

    def _tool_call(self, value: ToolCallStart | ToolCallArguments | ToolCallEnd) -> None:
        if value.choice != self._choice:
            return
        if isinstance(value, ToolCallStart):
            self._write(("\n" if self._printed else "") + f"→ {value.name}(")
            self._calls[value.index] = False
        elif isinstance(value, ToolCallArguments):
            if value.index in self._calls and value.arguments:
                self._calls[value.index] = True
                self._write(value.arguments)
        elif value.index in self._calls:
            streamed = self._calls.pop(value.index)
            self._write((value.arguments or "" if not streamed else "") + ")\n")

    def _on_error_core(self, error: Exception) -> None:
        if self._printed:  # no stray blank line before an error message
            self._file.write("\n")
            self._file.flush()

    def _on_completed_core(self) -> None:
        if not self._line_ended:
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
        #: Deltas that carried output: text, reasoning, refusal or a tool call.
        self.output_deltas = 0
        self.heartbeats = 0
        self.output_tokens: int | None = None

    def _on_next_core(self, value: Delta) -> None:
        cls = type(value)
        if cls is Heartbeat:
            self.heartbeats += 1
            return
        self.deltas += 1
        if isinstance(value, (TextDelta, ReasoningDelta, RefusalDelta)):
            if value.text:
                self.text_deltas += cls is TextDelta
                self._output()
        elif isinstance(value, ToolCallStart) or (
            isinstance(value, ToolCallArguments) and value.arguments
        ):
            self._output()
        elif cls is UsageDelta:
            assert isinstance(value, UsageDelta)
            self.output_tokens = value.usage.output_tokens

    def _output(self) -> None:
        self.output_deltas += 1
        if self.first_token is None:
            self.first_token = time.perf_counter()

    def _on_error_core(self, error: Exception) -> None:
        self.end = time.perf_counter()

    def _on_completed_core(self) -> None:
        self.end = time.perf_counter()

    @property
    def ttft(self) -> float | None:
        """Seconds from start to the first output token (text, reasoning or a tool call)."""
        return None if self.first_token is None else self.first_token - self.start

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens (usage, else output deltas) per second after the first token."""
        if self.first_token is None or self.end is None:
            return None
        tokens = self.output_tokens if self.output_tokens is not None else self.output_deltas
        elapsed = self.end - self.first_token
        return tokens / elapsed if elapsed > 0 else None
