"""The Anthropic ``message`` shape of a :class:`~rxgpt.Completion` (see _shape_common)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ._partial_json import parse_partial
from ._shape_common import first_choice, usage_shape

if TYPE_CHECKING:
    from ._completion import Choice, Completion, ContentPart
    from ._deltas import Usage

__all__ = ["to_anthropic"]

_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "refusal": "refusal",
    "content_filter": "refusal",
    "error": "end_turn",
    "other": "end_turn",
}


def _partial(arguments: str) -> Any:
    """Tool input as the anthropic SDK builds it: complete values only (jiter mode "on")."""
    if not arguments.strip():
        return {}
    try:
        return parse_partial(arguments, {}, trailing_strings=False)
    except ValueError:
        return {}


def _anthropic_block(part: ContentPart) -> dict[str, Any]:
    """One content block, rebuilt from its start payload and what was accumulated into it."""
    block: dict[str, Any] = copy.deepcopy(part.raw) if part.raw else {"type": part.kind}
    kind = block.get("type", part.kind)
    if kind == "text":
        block["text"] = part.text or ""
        if part.annotations:
            block["citations"] = list(block.get("citations") or []) + part.annotations
    elif kind == "thinking":
        block["thinking"] = part.reasoning or ""
        if part.signature is not None:
            block["signature"] = part.signature
    elif part.tool_call is not None and part.tool_call.arguments:
        block["input"] = _partial(part.tool_call.arguments)
    return block


def _anthropic_content(choice: Choice) -> list[dict[str, Any]]:
    """The ``content`` blocks: from the choice's parts, else thinking, text and tool uses."""
    if choice.parts:
        return [_anthropic_block(part) for part in choice.parts]
    blocks: list[dict[str, Any]] = []
    if choice.reasoning is not None:
        blocks.append(
            {
                "type": "thinking",
                "thinking": choice.reasoning,
                "signature": choice.signatures[-1] if choice.signatures else "",
            }
        )
    if choice.text:
        blocks.append({"type": "text", "text": choice.text})
    for call in choice.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": _partial(call.arguments),
            }
        )
    return blocks


def _anthropic_usage(usage: Usage) -> dict[str, Any]:
    """The ``usage`` object rebuilt from the neutral counts."""
    return {
        "input_tokens": usage.input_tokens or 0,
        "output_tokens": usage.output_tokens or 0,
    }


def to_anthropic(c: Completion) -> dict[str, Any]:
    """The Anthropic ``message`` object, for any protocol."""
    native = c.protocol == "anthropic"
    result: dict[str, Any] = {
        "id": c.id,
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if native:
        result.update(copy.deepcopy(c.raw))
    choice = first_choice(c)
    if choice is not None:
        result["content"] = _anthropic_content(choice)
        if native:
            result["stop_reason"] = choice.raw_finish_reason
        elif choice.finish_reason is not None:
            result["stop_reason"] = _ANTHROPIC_STOP.get(choice.finish_reason, "end_turn")
    usage = usage_shape(c, native, _anthropic_usage)
    if usage is not None:
        result["usage"] = usage
    return result
