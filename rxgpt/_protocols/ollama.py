"""Ollama native ``/api/chat`` (and ``/api/generate``) NDJSON lines → neutral deltas.

Strategy: one parsed JSON object per line. ``message.content`` (``response`` for
``/api/generate``) is text, ``message.thinking`` reasoning, ``message.tool_calls`` whole
calls whose arguments object is serialised once. The ``"done": true`` line is the end
signal: it carries the finish reason, the token counts and the durations (nanoseconds),
reported as usage and a ``metrics`` annotation (in seconds).
"""

from __future__ import annotations

from typing import Any

from .._deltas import (
    AnnotationDelta,
    Delta,
    FinishDelta,
    LogprobsDelta,
    ReasoningDelta,
    ResponseInfo,
    RoleDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageDelta,
    normalize_finish_reason,
)
from .._json import dumps
from ._base import ProtocolDecoder

__all__ = ["OllamaDecoder"]

_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


class OllamaDecoder(ProtocolDecoder):
    """Sans-IO decoder of parsed Ollama NDJSON lines into deltas."""

    protocol = "ollama"
    framing = "ndjson"

    __slots__ = ("_calls", "_info", "_role")

    def __init__(self) -> None:
        super().__init__()
        self._info = False
        self._role: str | None = None
        self._calls = 0

    def feed_chunk(self, line: dict[str, Any], out: list[Delta]) -> None:
        """Append the deltas of one parsed line to ``out``."""
        if not self._info:
            self._info = True
            raw = {k: v for k, v in line.items() if k in ("model", "created_at")}
            out.append(ResponseInfo(None, line.get("model"), None, raw, self.protocol))
        message = line.get("message")
        if isinstance(message, dict):
            self._message(message, out)
        else:  # /api/generate
            if line.get("thinking"):
                out.append(ReasoningDelta(0, line["thinking"]))
            if line.get("response"):
                out.append(TextDelta(0, line["response"]))
        if line.get("logprobs"):
            out.append(LogprobsDelta(0, line["logprobs"], None))
        if line.get("done"):
            self._done(line, out)

    def _message(self, message: dict[str, Any], out: list[Delta]) -> None:
        role = message.get("role")
        if role and role != self._role:
            self._role = role
            out.append(RoleDelta(0, role))
        if message.get("thinking"):
            out.append(ReasoningDelta(0, message["thinking"]))
        if message.get("content"):
            out.append(TextDelta(0, message["content"]))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            index = self._calls
            self._calls += 1
            call_id = call.get("id") or f"call_{index}"
            out.append(ToolCallStart(0, index, call_id, function.get("name") or ""))
            args = function.get("arguments")
            if args is not None:
                text = args if isinstance(args, str) else dumps(args)
                out.append(ToolCallArguments(0, index, text))
            out.append(ToolCallEnd(0, index))

    def _done(self, line: dict[str, Any], out: list[Delta]) -> None:
        prompt = line.get("prompt_eval_count")
        output = line.get("eval_count")
        raw = {k: line[k] for k in ("prompt_eval_count", "eval_count", *_DURATIONS) if k in line}
        if prompt is not None or output is not None:
            out.append(
                UsageDelta(
                    Usage(
                        input_tokens=prompt,
                        output_tokens=output,
                        total_tokens=(prompt or 0) + (output or 0),
                        raw=raw,
                    )
                )
            )
        metrics = {k.replace("_duration", "_s"): line[k] / 1e9 for k in _DURATIONS if k in line}
        if metrics:
            out.append(AnnotationDelta(None, "metrics", metrics))
        raw_reason = line.get("done_reason") or "stop"
        reason = normalize_finish_reason(raw_reason)
        if self._calls and raw_reason == "stop":
            reason = "tool_calls"
        out.append(FinishDelta(0, reason, raw_reason))
        self.ended = True
