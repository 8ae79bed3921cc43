"""Google Gemini ``streamGenerateContent?alt=sse`` chunks → neutral deltas.

Strategy: every chunk is a whole ``GenerateContentResponse`` whose parts are this
chunk's delta. Text parts become text (``thought: true`` ones reasoning summaries);
function calls arrive whole, with an arguments *object*: each becomes a tool call whose
arguments are serialised once, compactly, with an id synthesised when Gemini gives none.
``thoughtSignature`` values are kept verbatim. ``usageMetadata`` is a cumulative snapshot.
There is no end marker: the stream may end once every candidate has a ``finishReason``
(a turn that ends in function calls still says ``STOP``: it becomes "tool_calls").
"""

from __future__ import annotations

from typing import Any

from .._deltas import (
    AnnotationDelta,
    Delta,
    FinishDelta,
    ReasoningDelta,
    ReasoningSignature,
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

__all__ = ["GeminiDecoder", "gemini_usage"]

_INFO_KEYS = ("responseId", "modelVersion", "createTime")


def gemini_usage(raw: dict[str, Any]) -> Usage:
    """Normalise ``usageMetadata``: output counts thoughts too."""
    candidates = raw.get("candidatesTokenCount")
    thoughts = raw.get("thoughtsTokenCount")
    output = None
    if candidates is not None or thoughts is not None:
        output = (candidates or 0) + (thoughts or 0)
    return Usage(
        input_tokens=raw.get("promptTokenCount"),
        output_tokens=output,
        total_tokens=raw.get("totalTokenCount"),
        cached_input_tokens=raw.get("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
        raw=raw,
    )


class GeminiDecoder(ProtocolDecoder):
    """Sans-IO decoder of parsed Gemini stream chunks into deltas."""

    protocol = "gemini"
    unframed_errors = True

    __slots__ = ("_calls", "_finished", "_info", "_open", "_roles")

    def __init__(self) -> None:
        super().__init__()
        self._info = False
        self._calls: dict[int, int] = {}  # candidate → number of calls so far
        self._roles: set[int] = set()
        self._open: set[int] = set()  # candidates seen without a finish reason yet
        self._finished = False

    @property
    def eof_ok(self) -> bool:
        """The body may end now: every candidate has finished (or the prompt was blocked)."""
        return self._finished and not self._open

    def feed_chunk(self, chunk: dict[str, Any], out: list[Delta]) -> None:
        """Append the deltas of one parsed chunk to ``out``."""
        if not self._info and (chunk.get("responseId") or chunk.get("modelVersion")):
            self._info = True
            raw = {k: v for k, v in chunk.items() if k in _INFO_KEYS}
            out.append(
                ResponseInfo(
                    chunk.get("responseId"), chunk.get("modelVersion"), None, raw, self.protocol
                )
            )
        for candidate in chunk.get("candidates") or ():
            self._candidate(candidate, out)
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict):
            out.append(UsageDelta(gemini_usage(usage)))
        feedback = chunk.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            out.append(AnnotationDelta(None, "prompt_feedback", feedback))
            out.append(FinishDelta(0, "content_filter", feedback["blockReason"]))
            self._finished = True

    def _candidate(self, candidate: dict[str, Any], out: list[Delta]) -> None:
        i = candidate.get("index", 0)
        content = candidate.get("content") or {}
        if i not in self._roles:
            self._roles.add(i)
            self._open.add(i)
            out.append(RoleDelta(i, "assistant"))
        for part in content.get("parts") or ():
            self._part(i, part, out)
        for key in ("citationMetadata", "groundingMetadata", "safetyRatings"):
            if candidate.get(key):
                out.append(AnnotationDelta(i, key, candidate[key]))
        finish = candidate.get("finishReason")
        if finish:
            calls = self._calls.get(i, 0)
            reason = "tool_calls" if calls and finish == "STOP" else normalize_finish_reason(finish)
            out.append(FinishDelta(i, reason, finish))
            self._open.discard(i)
            self._finished = True

    def _part(self, i: int, part: dict[str, Any], out: list[Delta]) -> None:
        text = part.get("text")
        if isinstance(text, str) and text:
            if part.get("thought"):
                out.append(ReasoningDelta(i, text, True))
            else:
                out.append(TextDelta(i, text))
        call = part.get("functionCall")
        if isinstance(call, dict):
            index = self._calls.get(i, 0)
            self._calls[i] = index + 1
            call_id = call.get("id") or f"call_{i}_{index}"
            out.append(ToolCallStart(i, index, call_id, call.get("name") or ""))
            args = call.get("args")
            if args is not None:
                out.append(ToolCallArguments(i, index, dumps(args)))
            out.append(ToolCallEnd(i, index))
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature:
            out.append(ReasoningSignature(i, signature, "thought_signature"))
        for key in ("executableCode", "codeExecutionResult", "inlineData"):
            if key in part:
                out.append(AnnotationDelta(i, key, part[key]))
