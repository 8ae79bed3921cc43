"""OpenAI Responses API stream events → neutral deltas.

Strategy: a dispatch table keyed by the event ``type``. Each output item is a content
part (``part`` = ``output_index``); its ``output_item.added`` and ``.done`` payloads are
kept verbatim (:class:`PartStart`). Function calls are tool calls numbered densely; the
``.done`` event's full ``arguments`` is authoritative. ``sequence_number`` must grow by
one per event: a gap or repeat is reported as a ``sequence_gap`` annotation (or raised
with ``strict=True``). ``response.completed`` / ``.incomplete`` end the stream;
``response.failed`` fails it with :class:`~rxgpt.StreamError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from .._deltas import (
    AnnotationDelta,
    Delta,
    FinishDelta,
    LogprobsDelta,
    PartStart,
    ReasoningDelta,
    ReasoningSignature,
    RefusalDelta,
    ResponseInfo,
    RoleDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageDelta,
)
from .._errors import DecodeError, StreamError
from ._base import ProtocolDecoder

__all__ = ["OpenAIResponsesDecoder", "responses_usage"]

_TOOL_ITEMS = {"function_call": "function", "custom_tool_call": "custom"}

#: Parts of a choice are numbered ``output_index * PART_STRIDE + sub_index``: an output
#: item is a part, and its content parts (or reasoning summary parts) are sub-parts.
PART_STRIDE = 64


def _part(event: dict[str, Any], sub: str | None = None) -> int:
    index = event.get("output_index", 0) * PART_STRIDE
    if sub is not None:
        index += min(int(event.get(sub) or 0), PART_STRIDE - 1)
    return int(index)


def responses_usage(raw: dict[str, Any]) -> Usage:
    """Normalise a Responses ``usage`` object."""
    input_details = raw.get("input_tokens_details") or {}
    output_details = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=raw.get("input_tokens"),
        output_tokens=raw.get("output_tokens"),
        total_tokens=raw.get("total_tokens"),
        cached_input_tokens=input_details.get("cached_tokens"),
        reasoning_tokens=output_details.get("reasoning_tokens"),
        raw=raw,
    )


def _response_raw(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k not in ("output", "usage")}


_Handler = Callable[["OpenAIResponsesDecoder", dict[str, Any], list[Delta]], None]


class OpenAIResponsesDecoder(ProtocolDecoder):
    """Sans-IO decoder of parsed Responses API events into deltas."""

    protocol = "openai-responses"

    __slots__ = (
        "_ended_tools",
        "_info",
        "_next_seq",
        "_refused",
        "_tools",
        "gaps",
        "strict",
    )

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        super().__init__()
        #: (expected, received) sequence numbers of every gap or repeat seen.
        self.gaps: list[tuple[int, int]] = []
        self._next_seq: int | None = None
        self._info = False
        self._tools: dict[int, int] = {}  # output_index → tool-call index
        self._ended_tools: set[int] = set()
        self._refused = False

    def feed_chunk(self, event: dict[str, Any], out: list[Delta]) -> None:
        """Append the deltas of one parsed event to ``out``."""
        seq = event.get("sequence_number")
        if type(seq) is int:
            self._check_sequence(seq, out)
        handler = self._HANDLERS.get(event.get("type", ""))
        if handler is not None:
            handler(self, event, out)

    def _check_sequence(self, seq: int, out: list[Delta]) -> None:
        expected = self._next_seq
        self._next_seq = seq + 1
        if expected is not None and seq != expected:
            self.gaps.append((expected, seq))
            if self.strict:
                raise DecodeError(
                    f"sequence_number gap: expected {expected}, got {seq}", raw=str(seq)
                )
            out.append(AnnotationDelta(None, "sequence_gap", {"expected": expected, "got": seq}))

    def _lifecycle(self, event: dict[str, Any], out: list[Delta]) -> None:
        response = event.get("response") or {}
        raw = _response_raw(response)
        if not self._info:
            self._info = True
            out.append(
                ResponseInfo(
                    response.get("id"),
                    response.get("model"),
                    response.get("created_at"),
                    raw,
                    self.protocol,
                )
            )
            out.append(RoleDelta(0, "assistant"))
        else:
            out.append(ResponseInfo(raw=raw))

    def _item_added(self, event: dict[str, Any], out: list[Delta]) -> None:
        part = _part(event)
        item = event.get("item") or {}
        kind = item.get("type", "")
        out.append(PartStart(0, part, kind, item))
        if kind in _TOOL_ITEMS:
            index = self._tools[part] = len(self._tools)
            out.append(
                ToolCallStart(
                    0,
                    index,
                    item.get("call_id"),
                    item.get("name") or "",
                    _TOOL_ITEMS[kind],
                    item.get("id"),
                    part,
                )
            )
            initial = item.get("arguments") if kind == "function_call" else item.get("input")
            if initial:
                out.append(ToolCallArguments(0, index, initial))

    def _item_done(self, event: dict[str, Any], out: list[Delta]) -> None:
        part = _part(event)
        item = event.get("item") or {}
        kind = item.get("type", "")
        out.append(PartStart(0, part, kind, item))
        index = self._tools.get(part)
        if index is not None and index not in self._ended_tools:
            self._ended_tools.add(index)
            final = item.get("arguments") if kind == "function_call" else item.get("input")
            out.append(ToolCallEnd(0, index, final if isinstance(final, str) else None))
        if kind == "reasoning" and item.get("encrypted_content"):
            out.append(ReasoningSignature(0, item["encrypted_content"], "encrypted", part))

    def _content_part(self, event: dict[str, Any], out: list[Delta]) -> None:
        content = event.get("part") or {}
        if content.get("type") == "output_text" and content.get("text"):
            out.append(TextDelta(0, content["text"], _part(event, "content_index")))

    def _text(self, event: dict[str, Any], out: list[Delta]) -> None:
        out.append(TextDelta(0, event.get("delta", ""), _part(event, "content_index")))
        logprobs = event.get("logprobs")
        if logprobs:
            out.append(LogprobsDelta(0, logprobs, None))

    def _refusal(self, event: dict[str, Any], out: list[Delta]) -> None:
        if event.get("delta"):
            self._refused = True
        out.append(RefusalDelta(0, event.get("delta", "")))

    def _arguments(self, event: dict[str, Any], out: list[Delta]) -> None:
        index = self._tools.get(_part(event))
        fragment = event.get("delta")
        if index is not None and fragment:
            out.append(ToolCallArguments(0, index, fragment))

    def _arguments_done(self, event: dict[str, Any], out: list[Delta]) -> None:
        index = self._tools.get(_part(event))
        if index is not None and index not in self._ended_tools:
            self._ended_tools.add(index)
            final = event.get("arguments")
            if final is None:
                final = event.get("input")
            out.append(ToolCallEnd(0, index, final if isinstance(final, str) else None))

    def _summary(self, event: dict[str, Any], out: list[Delta]) -> None:
        out.append(ReasoningDelta(0, event.get("delta", ""), True, _part(event, "summary_index")))

    def _reasoning(self, event: dict[str, Any], out: list[Delta]) -> None:
        out.append(ReasoningDelta(0, event.get("delta", ""), False, _part(event, "content_index")))

    def _annotation(self, event: dict[str, Any], out: list[Delta]) -> None:
        out.append(
            AnnotationDelta(0, "annotation", event.get("annotation"), _part(event, "content_index"))
        )

    def _completed(self, event: dict[str, Any], out: list[Delta]) -> None:
        response = event.get("response") or {}
        out.append(ResponseInfo(raw=_response_raw(response)))
        usage = response.get("usage")
        if isinstance(usage, dict):
            out.append(UsageDelta(responses_usage(usage)))
        status = response.get("status") or event.get("type", "").rsplit(".", 1)[-1]
        if status == "incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason") or "incomplete"
            neutral = {"max_output_tokens": "length", "content_filter": "content_filter"}
            out.append(FinishDelta(0, neutral.get(reason, "other"), reason))
        else:
            reason = "tool_calls" if self._tools else "refusal" if self._refused else "stop"
            out.append(FinishDelta(0, reason, status))
        self.ended = True

    def _failed(self, event: dict[str, Any], out: list[Delta]) -> None:
        response = event.get("response") or {}
        out.append(ResponseInfo(raw=_response_raw(response)))
        raise StreamError(response.get("error") or {"message": "the response failed"})

    def _error(self, event: dict[str, Any], out: list[Delta]) -> None:
        # An error event without its `event: error` line (flat or nested shape).
        raise StreamError(event.get("error") or event)

    #: The handler of each event type (functions, not bound methods: no reference
    #: cycle from a decoder to itself, so an ended stream is freed at once).
    _HANDLERS: ClassVar[dict[str, _Handler]] = {
        "response.created": _lifecycle,
        "response.in_progress": _lifecycle,
        "response.queued": _lifecycle,
        "response.output_item.added": _item_added,
        "response.output_item.done": _item_done,
        "response.content_part.added": _content_part,
        "response.output_text.delta": _text,
        "response.refusal.delta": _refusal,
        "response.function_call_arguments.delta": _arguments,
        "response.custom_tool_call_input.delta": _arguments,
        "response.function_call_arguments.done": _arguments_done,
        "response.custom_tool_call_input.done": _arguments_done,
        "response.reasoning_summary_text.delta": _summary,
        "response.reasoning_text.delta": _reasoning,
        "response.output_text.annotation.added": _annotation,
        "response.completed": _completed,
        "response.incomplete": _completed,
        "response.failed": _failed,
        "error": _error,
    }
