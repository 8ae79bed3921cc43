"""The neutral delta model: what every provider's stream is decoded into.

A stream of any provider becomes a sequence of small typed records. Those bound to one
answer of the model carry ``choice`` (the choice index, 0 unless ``n > 1``); the others
(:class:`ResponseInfo`, :class:`UsageDelta`, :class:`Heartbeat`) belong to the whole
response. Dispatch on the class (``isinstance`` or ``match``). The records are slotted
dataclasses: cheap to build (one per event on the hot path) and compared by value. Treat
them as immutable.

Finish reasons are mapped to one neutral set, :data:`FINISH_REASONS`, and the provider's
raw value is kept beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "FINISH_REASONS",
    "AnnotationDelta",
    "Delta",
    "ErrorDelta",
    "FinishDelta",
    "Heartbeat",
    "LogprobsDelta",
    "MissingEndMarker",
    "PartStart",
    "ReasoningDelta",
    "ReasoningSignature",
    "RefusalDelta",
    "ResponseInfo",
    "RoleDelta",
    "TextDelta",
    "ToolCallArguments",
    "ToolCallEnd",
    "ToolCallStart",
    "Usage",
    "UsageDelta",
    "delta_to_dict",
    "normalize_finish_reason",
]

#: The neutral finish reasons every provider's value is mapped to.
FINISH_REASONS: Final = (
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "refusal",
    "error",
    "other",
)

_FINISH_MAP: dict[str, str] = {
    # OpenAI chat / completions and compatible servers
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
    "eos": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    # Anthropic
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "other",
    "refusal": "refusal",
    "model_context_window_exceeded": "length",
    # Gemini
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "insufficient_system_resource": "error",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    # Responses API
    "completed": "stop",
    "max_output_tokens": "length",
    "incomplete": "other",
    "failed": "error",
}


def normalize_finish_reason(raw: str) -> str:
    """Map a provider's finish reason to the neutral set (unknown values → "other")."""
    return _FINISH_MAP.get(raw, "other")


@dataclass(slots=True)
class Usage:
    """Token counts, normalised; ``raw`` is the provider's usage object as it was sent."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost: float | None = None
    raw: dict[str, Any] | None = None


class Delta:
    """Base class of every delta."""

    __slots__ = ()


@dataclass(slots=True)
class ResponseInfo(Delta):
    """Response-level metadata (id, model, creation time) as soon as the provider sent it.

    ``raw`` keeps the provider's top-level fields (without the per-choice parts), so a
    final object can be rebuilt exactly.
    """

    id: str | None = None
    model: str | None = None
    created: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None


@dataclass(slots=True)
class RoleDelta(Delta):
    """The author role of a choice's message ("assistant")."""

    choice: int
    role: str


@dataclass(slots=True)
class PartStart(Delta):
    """A content part begins (an Anthropic content block, a Responses output item).

    ``part`` numbers the parts of a choice in wire order, ``kind`` is the provider's type
    ("text", "thinking", "tool_use", "message", "function_call"...), ``raw`` its start
    payload as sent: what a provider-shaped result is rebuilt from.
    """

    choice: int
    part: int
    kind: str
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TextDelta(Delta):
    """A fragment of the answer's text (``part``: the content part it belongs to)."""

    choice: int
    text: str
    part: int = 0


@dataclass(slots=True)
class RefusalDelta(Delta):
    """A fragment of a refusal message (OpenAI's separate refusal channel)."""

    choice: int
    text: str


@dataclass(slots=True)
class ReasoningDelta(Delta):
    """A fragment of the model's reasoning text (``summary`` for reasoning summaries)."""

    choice: int
    text: str
    summary: bool = False
    part: int = 0


@dataclass(slots=True)
class ReasoningSignature(Delta):
    """An opaque reasoning token (thinking signature, encrypted content), kept verbatim."""

    choice: int
    value: str
    kind: str = "signature"
    part: int = 0


@dataclass(slots=True)
class ToolCallStart(Delta):
    """A tool call begins: ``index`` numbers the calls of one choice (0, 1, ...).

    ``id`` is the id to answer the call with; ``item_id`` the provider's id of the item
    that carries it, when different (Responses ``fc_...``); ``part`` its content part.
    """

    choice: int
    index: int
    id: str | None
    name: str
    type: str = "function"
    item_id: str | None = None
    part: int = -1


@dataclass(slots=True)
class ToolCallArguments(Delta):
    """A fragment of a tool call's JSON arguments text."""

    choice: int
    index: int
    arguments: str


@dataclass(slots=True)
class ToolCallEnd(Delta):
    """A tool call's arguments are complete; ``arguments``, when given, is authoritative."""

    choice: int
    index: int
    arguments: str | None = None


@dataclass(slots=True)
class LogprobsDelta(Delta):
    """Token log-probabilities for the content and refusal tokens of this chunk."""

    choice: int
    content: list[Any] | None = None
    refusal: list[Any] | None = None


@dataclass(slots=True)
class FinishDelta(Delta):
    """The choice is finished: ``reason`` is neutral, ``raw_reason`` the provider's."""

    choice: int
    reason: str
    raw_reason: str | None = None


@dataclass(slots=True)
class UsageDelta(Delta):
    """Token usage so far (a snapshot: it replaces earlier usage, never adds to it)."""

    usage: Usage


@dataclass(slots=True)
class AnnotationDelta(Delta):
    """Extra information about the answer: content-filter results, citations, grounding.

    ``choice`` is None for annotations of the whole request (Azure prompt filter).
    """

    choice: int | None
    kind: str
    payload: Any = None
    part: int = 0


@dataclass(slots=True)
class ErrorDelta(Delta):
    """The provider reported an error in the stream (the stream then fails with it).

    ``error`` is the provider's error object as sent; ``retryable`` says whether it is of
    a kind worth retrying (overloaded, server error, rate limit).
    """

    error: Any
    message: str = ""
    retryable: bool = False


@dataclass(slots=True)
class Heartbeat(Delta):
    """A keep-alive (SSE comment, Anthropic ping): the connection lives, no progress."""

    comment: str = ""


@dataclass(slots=True)
class MissingEndMarker(Delta):
    """The body ended cleanly after every choice's finish reason, without ``data: [DONE]``.

    Many OpenAI-compatible servers omit the marker, and openai-python, the Vercel AI SDK
    and LiteLLM accept such a stream: so does rxgpt (the last delta of the stream; the
    result says ``end_marker=False``). ``require_done=True`` makes it a
    :class:`~rxgpt.MissingDone` error instead.
    """

    marker: str = "[DONE]"


def delta_to_dict(delta: Delta) -> dict[str, Any]:
    """A JSON-ready dict of ``delta``: ``{"type": "TextDelta", "choice": 0, "text": ...}``."""
    out: dict[str, Any] = {"type": type(delta).__name__}
    for name in getattr(delta, "__dataclass_fields__", {}):
        value = getattr(delta, name)
        if isinstance(value, Usage):
            value = {
                k: getattr(value, k)
                for k in value.__dataclass_fields__
                if k != "raw" and getattr(value, k) is not None
            }
        out[name] = value
    return out
