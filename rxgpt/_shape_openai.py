"""The OpenAI ``chat.completion`` shape of a :class:`~rxgpt.Completion` (see _shape_common)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._completion import Choice, Completion, ToolCall

__all__ = ["to_openai"]

_OPENAI_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "stop",
    "error": "stop",
    "other": "stop",
}


def _openai_usage(c: Completion) -> dict[str, Any] | None:
    """The ``usage`` object: as sent by an OpenAI protocol, else rebuilt from the counts."""
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
    """One entry of ``message.tool_calls``."""
    # Empty arguments from other protocols (a tool without parameters) become "{}".
    arguments = call.arguments if native or call.arguments.strip() else "{}"
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _openai_choice(choice: Choice, native: bool) -> dict[str, Any]:
    """One entry of ``choices``: the message, its logprobs and finish reason."""
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
    finish = choice.raw_finish_reason if native else _OPENAI_FINISH.get(choice.finish_reason or "")
    return {
        "index": choice.index,
        "message": message,
        "logprobs": choice.logprobs,
        "finish_reason": finish,
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
    result["choices"] = [_openai_choice(choice, native) for choice in c.choices]
    result["usage"] = _openai_usage(c)
    return result
