"""The OpenAI Responses ``response`` shape of a :class:`~rxgpt.Completion`.

See _shape_common. A Responses choice's parts are numbered as its decoder numbers them,
``output_index * PART_STRIDE + sub_index``: an output item and its content (or reasoning
summary) parts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._protocols.openai_responses import PART_STRIDE
from ._shape_common import first_choice, usage_shape

if TYPE_CHECKING:
    from ._completion import Choice, Completion, ContentPart, ToolCall
    from ._deltas import Usage

__all__ = ["to_responses"]


def _output_text(text: str = "") -> dict[str, Any]:
    """An ``output_text`` content part of a message item."""
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _summary_text(text: str = "") -> dict[str, Any]:
    """A ``summary_text`` part of a reasoning item."""
    return {"type": "summary_text", "text": text}


def _set_text(
    entries: list[dict[str, Any]], sub: int, text: str, blank: Callable[[], dict[str, Any]]
) -> None:
    """Set the text of sub-part ``sub``, padding ``entries`` with ``blank()`` up to it."""
    while len(entries) <= sub:
        entries.append(blank())
    entries[sub]["text"] = text


def _fill_message(item: dict[str, Any], members: list[ContentPart]) -> None:
    """Put the accumulated text of each content part into a ``message`` item."""
    content = item.setdefault("content", [])
    for member in members:
        if member.text is not None:
            _set_text(content, member.part % PART_STRIDE, member.text, _output_text)


def _fill_reasoning(item: dict[str, Any], members: list[ContentPart]) -> None:
    """Put the accumulated summary text of each summary part into a ``reasoning`` item."""
    summary = item.setdefault("summary", [])
    for member in members:
        if member.reasoning is not None:
            _set_text(summary, member.part % PART_STRIDE, member.reasoning, _summary_text)


def _fill_tool(item: dict[str, Any], members: list[ContentPart], key: str) -> None:
    """Put the accumulated arguments (``key``) into a function or custom tool call item."""
    for member in members:
        call = member.tool_call
        if call is not None:
            item[key] = call.arguments


def _group_items(
    parts: list[ContentPart],
) -> tuple[dict[int, dict[str, Any]], dict[int, list[ContentPart]]]:
    """Start payloads (copied) and parts, by output index."""
    items: dict[int, dict[str, Any]] = {}
    members: dict[int, list[ContentPart]] = {}
    for part in parts:
        index, sub = divmod(part.part, PART_STRIDE)
        if sub == 0 and part.raw:
            items[index] = copy.deepcopy(part.raw)
        members.setdefault(index, []).append(part)
    return items, members


def _responses_items(parts: list[ContentPart]) -> list[dict[str, Any]]:
    """Output items from content parts numbered ``output_index * PART_STRIDE + sub_index``."""
    items, members = _group_items(parts)
    output = []
    for index in sorted(members):  # every item with a start payload has a part
        item = items.get(index) or {"type": "message", "role": "assistant", "content": []}
        kind = item.get("type")
        if kind == "message":
            _fill_message(item, members[index])
        elif kind == "reasoning":
            _fill_reasoning(item, members[index])
        elif kind in ("function_call", "custom_tool_call"):
            _fill_tool(item, members[index], "arguments" if kind == "function_call" else "input")
        output.append(item)
    return output


def _message_item(text: str) -> dict[str, Any]:
    """A completed assistant ``message`` item holding ``text``."""
    return {
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [_output_text(text)],
    }


def _function_call_item(call: ToolCall) -> dict[str, Any]:
    """A completed ``function_call`` item."""
    return {
        "type": "function_call",
        "id": call.item_id,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": "completed",
    }


def _responses_output(choice: Choice, native: bool) -> list[dict[str, Any]]:
    """The ``output`` items: from a native choice's parts, else its text and tool calls."""
    if choice.parts and native:
        return _responses_items(choice.parts)
    output: list[dict[str, Any]] = []
    if choice.text is not None:
        output.append(_message_item(choice.text))
    output.extend(_function_call_item(call) for call in choice.tool_calls)
    return output


def _responses_usage(usage: Usage) -> dict[str, Any]:
    """The ``usage`` object rebuilt from the neutral counts."""
    return {
        "input_tokens": usage.input_tokens or 0,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens or 0},
        "output_tokens": usage.output_tokens or 0,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.total_tokens
        if usage.total_tokens is not None
        else (usage.input_tokens or 0) + (usage.output_tokens or 0),
    }


def to_responses(c: Completion) -> dict[str, Any]:
    """The OpenAI Responses ``response`` object, for any protocol."""
    native = c.protocol == "openai-responses"
    result: dict[str, Any] = {
        "id": c.id,
        "object": "response",
        "created_at": c.created if c.created is not None else 0,
        "model": c.model,
        "status": "completed" if c.state == "complete" else "incomplete",
        "output": [],
    }
    if native:
        result.update(copy.deepcopy(c.raw))
    choice = first_choice(c)
    if choice is not None:
        result["output"] = _responses_output(choice, native)
    usage = usage_shape(c, native, _responses_usage)
    if usage is not None:
        result["usage"] = usage
    return result
