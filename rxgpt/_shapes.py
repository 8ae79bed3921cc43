"""Provider-shaped views of a :class:`~rxgpt.Completion`: OpenAI chat, Anthropic, Responses.

Each builder takes the neutral result and rebuilds the object the provider's
non-streaming API (and its SDK's stream accumulator) would give: the accumulated text,
reasoning and tool-call arguments go into the provider's structure; identifiers and other
metadata come from the start payloads kept in ``Completion.raw`` and ``ContentPart.raw``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._completion import Choice, Completion, ContentPart, ToolCall

__all__ = ["to_anthropic", "to_openai", "to_responses"]

_OPENAI_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "stop",
    "error": "stop",
    "other": "stop",
}
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
    from ._partial_json import parse_partial

    if not arguments.strip():
        return {}
    try:
        return parse_partial(arguments, {}, trailing_strings=False)
    except ValueError:
        return {}


# -- OpenAI chat.completion -----------------------------------------------------------


def _openai_usage(c: Completion) -> dict[str, Any] | None:
    usage = c.usage
    if usage is None:
        return None
    if c.protocol in ("openai-chat", "openai-completions") and usage.raw is not None:
        return usage.raw
    prompt = usage.input_tokens or 0
    completion = usage.output_tokens or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.total_tokens
        if usage.total_tokens is not None
        else prompt + completion,
    }
    if usage.cached_input_tokens is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_input_tokens}
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def _openai_tool(call: ToolCall, native: bool) -> dict[str, Any]:
    # Empty arguments from other protocols (a tool without parameters) become "{}".
    arguments = call.arguments if native or call.arguments.strip() else "{}"
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def to_openai(c: Completion) -> dict[str, Any]:
    """The ``chat.completion`` object, for any protocol."""
    native = c.protocol == "openai-chat"
    result: dict[str, Any] = {
        "id": c.id or "",
        "object": "chat.completion",
        "created": c.created if c.created is not None else 0,
        "model": c.model or "",
        "system_fingerprint": None,
    }
    if native:
        result.update(c.raw)
        result["object"] = "chat.completion"
    choices = []
    for choice in c.choices:
        message: dict[str, Any] = {
            "role": choice.role,
            "content": choice.text,
            "refusal": choice.refusal,
        }
        if choice.reasoning is not None:
            message["reasoning_content"] = choice.reasoning
        calls = [call for call in choice.tool_calls if call.type == "function"]
        if calls:
            message["tool_calls"] = [_openai_tool(call, native) for call in calls]
        if native:
            finish = choice.raw_finish_reason
        else:
            finish = _OPENAI_FINISH.get(choice.finish_reason or "")
        choices.append(
            {
                "index": choice.index,
                "message": message,
                "logprobs": choice.logprobs,
                "finish_reason": finish,
            }
        )
    result["choices"] = choices
    result["usage"] = _openai_usage(c)
    return result


# -- Anthropic message ----------------------------------------------------------------


def _anthropic_block(part: ContentPart) -> dict[str, Any]:
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
    choice = c.choices[0] if c.choices else None
    if choice is not None:
        result["content"] = _anthropic_content(choice)
        if native:
            result["stop_reason"] = choice.raw_finish_reason
        elif choice.finish_reason is not None:
            result["stop_reason"] = _ANTHROPIC_STOP.get(choice.finish_reason, "end_turn")
    usage = c.usage
    if usage is not None and native and usage.raw is not None:
        result["usage"] = copy.deepcopy(usage.raw)
    elif usage is not None:
        result["usage"] = {
            "input_tokens": usage.input_tokens or 0,
            "output_tokens": usage.output_tokens or 0,
        }
    return result


# -- OpenAI Responses response --------------------------------------------------------


def _responses_items(parts: list[ContentPart]) -> list[dict[str, Any]]:
    """Output items from content parts numbered ``output_index * 64 + sub_index``."""
    from ._protocols.openai_responses import PART_STRIDE

    items: dict[int, dict[str, Any]] = {}
    subs: dict[int, list[ContentPart]] = {}
    for part in parts:
        index, sub = divmod(part.part, PART_STRIDE)
        if sub == 0 and part.raw:
            items[index] = copy.deepcopy(part.raw)
        subs.setdefault(index, []).append(part)
    output = []
    for index in sorted(set(items) | set(subs)):
        item = items.get(index) or {"type": "message", "role": "assistant", "content": []}
        members = subs.get(index, [])
        kind = item.get("type")
        if kind == "message":
            content = item.setdefault("content", [])
            for member in members:
                if member.text is None:
                    continue
                sub = member.part % PART_STRIDE
                while len(content) <= sub:
                    content.append(
                        {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
                    )
                content[sub]["text"] = member.text
        elif kind == "reasoning":
            summary = item.setdefault("summary", [])
            for member in members:
                if member.reasoning is None:
                    continue
                sub = member.part % PART_STRIDE
                while len(summary) <= sub:
                    summary.append({"type": "summary_text", "text": ""})
                summary[sub]["text"] = member.reasoning
        for member in members:
            call = member.tool_call
            if call is not None and kind in ("function_call", "custom_tool_call"):
                item["arguments" if kind == "function_call" else "input"] = call.arguments
        output.append(item)
    return output


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
    choice = c.choices[0] if c.choices else None
    if choice is not None:
        if choice.parts and native:
            result["output"] = _responses_items(choice.parts)
        else:
            output: list[dict[str, Any]] = []
            if choice.text is not None:
                output.append(
                    {
                        "type": "message",
                        "role": "assistant",
                        "status": "completed",
                        "content": [
                            {
                                "type": "output_text",
                                "annotations": [],
                                "logprobs": [],
                                "text": choice.text,
                            }
                        ],
                    }
                )
            for call in choice.tool_calls:
                output.append(
                    {
                        "type": "function_call",
                        "id": call.item_id,
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.arguments,
                        "status": "completed",
                    }
                )
            result["output"] = output
    usage = c.usage
    if usage is not None and native and usage.raw is not None:
        result["usage"] = copy.deepcopy(usage.raw)
    elif usage is not None:
        result["usage"] = {
            "input_tokens": usage.input_tokens or 0,
            "input_tokens_details": {"cached_tokens": usage.cached_input_tokens or 0},
            "output_tokens": usage.output_tokens or 0,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
            "total_tokens": usage.total_tokens
            if usage.total_tokens is not None
            else (usage.input_tokens or 0) + (usage.output_tokens or 0),
        }
    return result
