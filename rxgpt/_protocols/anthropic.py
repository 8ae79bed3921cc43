"""Anthropic Messages stream events → neutral deltas.

Strategy: a dispatch table keyed by the event ``type``. Content blocks are content parts
(``part`` = the block index on the wire) and every block start is kept verbatim
(:class:`PartStart`) so the exact message can be rebuilt; ``tool_use`` blocks are tool
calls numbered densely in order of appearance, with ``content_block_stop`` as their end.
Usage is cumulative: ``message_delta`` values replace those of ``message_start`` field
by field. ``ping`` is a heartbeat; ``message_stop`` is the end signal. Unknown event
types are ignored, as Anthropic's versioning policy asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from .._deltas import (
    AnnotationDelta,
    Delta,
    FinishDelta,
    Heartbeat,
    PartStart,
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
from .._errors import StreamError
from .._json import dumps
from ._base import ProtocolDecoder

__all__ = ["AnthropicDecoder", "anthropic_usage"]

_TOOL_BLOCKS = {"tool_use": "function", "server_tool_use": "server_tool_use"}


def anthropic_usage(raw: dict[str, Any]) -> Usage:
    """Normalise Anthropic's usage: input counts cache reads and writes too."""
    base = raw.get("input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens")
    cache_read = raw.get("cache_read_input_tokens")
    output = raw.get("output_tokens")
    details = raw.get("output_tokens_details") or {}
    total_input = base + (cache_write or 0) + (cache_read or 0)
    return Usage(
        input_tokens=total_input,
        output_tokens=output,
        total_tokens=total_input + (output or 0),
        cached_input_tokens=cache_read,
        reasoning_tokens=details.get("reasoning_tokens") if isinstance(details, dict) else None,
        cache_write_tokens=cache_write,
        raw=raw,
    )


_Handler = Callable[["AnthropicDecoder", dict[str, Any], list[Delta]], None]


class AnthropicDecoder(ProtocolDecoder):
    """Sans-IO decoder of parsed Anthropic stream events into deltas."""

    protocol = "anthropic"

    __slots__ = ("_tools", "_usage")

    def __init__(self) -> None:
        super().__init__()
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # block index → tool-call index

    def feed_chunk(self, event: dict[str, Any], out: list[Delta]) -> None:
        """Append the deltas of one parsed event to ``out``."""
        handler = self._HANDLERS.get(event.get("type", ""))
        if handler is not None:
            handler(self, event, out)

    def _message_start(self, event: dict[str, Any], out: list[Delta]) -> None:
        message = event.get("message") or {}
        raw = {k: v for k, v in message.items() if k not in ("content", "usage")}
        out.append(ResponseInfo(message.get("id"), message.get("model"), None, raw, self.protocol))
        out.append(RoleDelta(0, message.get("role") or "assistant"))
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage = dict(usage)
            out.append(UsageDelta(anthropic_usage(dict(self._usage))))

    def _block_start(self, event: dict[str, Any], out: list[Delta]) -> None:
        part = event.get("index", 0)
        block = event.get("content_block") or {}
        kind = block.get("type", "")
        out.append(PartStart(0, part, kind, block))
        if kind == "text":
            if block.get("text"):
                out.append(TextDelta(0, block["text"], part))
        elif kind == "thinking":
            if block.get("thinking"):
                out.append(ReasoningDelta(0, block["thinking"], False, part))
            if block.get("signature"):
                out.append(ReasoningSignature(0, block["signature"], "signature", part))
        elif kind == "redacted_thinking":
            out.append(ReasoningSignature(0, block.get("data") or "", "redacted", part))
        elif kind in _TOOL_BLOCKS:
            index = self._tools[part] = len(self._tools)
            out.append(
                ToolCallStart(
                    0,
                    index,
                    block.get("id"),
                    block.get("name") or "",
                    _TOOL_BLOCKS[kind],
                    None,
                    part,
                )
            )
            if block.get("input"):
                out.append(ToolCallArguments(0, index, dumps(block["input"])))

    def _block_delta(self, event: dict[str, Any], out: list[Delta]) -> None:
        part = event.get("index", 0)
        delta = event.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            out.append(TextDelta(0, delta.get("text", ""), part))
        elif kind == "input_json_delta":
            fragment = delta.get("partial_json")
            index = self._tools.get(part)
            if fragment and index is not None:
                out.append(ToolCallArguments(0, index, fragment))
        elif kind == "thinking_delta":
            out.append(ReasoningDelta(0, delta.get("thinking", ""), False, part))
        elif kind == "signature_delta":
            out.append(ReasoningSignature(0, delta.get("signature", ""), "signature", part))
        elif kind == "citations_delta":
            out.append(AnnotationDelta(0, "citation", delta.get("citation"), part))

    def _block_stop(self, event: dict[str, Any], out: list[Delta]) -> None:
        index = self._tools.get(event.get("index", 0))
        if index is not None:
            out.append(ToolCallEnd(0, index))

    def _message_delta(self, event: dict[str, Any], out: list[Delta]) -> None:
        delta = event.get("delta") or {}
        usage = event.get("usage")
        if isinstance(usage, dict):
            # Cumulative totals: replace field by field; absent or null fields keep theirs.
            self._usage["output_tokens"] = usage.get("output_tokens")
            for key, value in usage.items():
                if value is not None:
                    self._usage[key] = value
            out.append(UsageDelta(anthropic_usage(dict(self._usage))))
        extra = {k: v for k, v in delta.items() if k != "stop_reason"}
        if extra:
            out.append(ResponseInfo(raw=extra))
        stop = delta.get("stop_reason")
        if stop:
            tools = self._tools and stop == "tool_use"
            reason = "tool_calls" if tools else normalize_finish_reason(stop)
            out.append(FinishDelta(0, reason, stop))

    def _message_stop(self, event: dict[str, Any], out: list[Delta]) -> None:
        self.ended = True

    def _ping(self, event: dict[str, Any], out: list[Delta]) -> None:
        out.append(Heartbeat("ping"))

    def _error(self, event: dict[str, Any], out: list[Delta]) -> None:
        raise StreamError(event.get("error") or event)

    #: The handler of each event type (functions, not bound methods: no reference
    #: cycle from a decoder to itself, so an ended stream is freed at once).
    _HANDLERS: ClassVar[dict[str, _Handler]] = {
        "message_start": _message_start,
        "content_block_start": _block_start,
        "content_block_delta": _block_delta,
        "content_block_stop": _block_stop,
        "message_delta": _message_delta,
        "message_stop": _message_stop,
        "ping": _ping,
        "error": _error,
    }
