"""The mock's OpenAI chat completions dialect (``POST /v1/chat/completions``), its main use.

Order of a chat stream (``n`` choices):

1. per choice, a role chunk (sent at once);
2. content chunks, round-robin over the choices, token by token (step ``k`` of every choice
   is due at ``ttft_ms + k * itl_ms``);
3. with the tool trigger (see :mod:`rxgpt.mock._dialect`), per choice, a tool call chunk
   (``id``, ``name``, ``arguments: ""``) and argument fragment chunks;
4. per choice, a finish chunk (``delta: {}``, ``finish_reason`` ``stop``, ``length`` or
   ``tool_calls``);
5. with ``stream_options.include_usage``, a usage chunk with ``"choices": []``;
6. ``data: [DONE]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._dialect import (
    JSON_NULL,
    MAX_N,
    OPENAI_FINISH_REASONS,
    Answer,
    Dialect,
    MockConfig,
    OpenAIChunks,
    Prompt,
    Timeline,
    ToolCall,
    as_messages,
    model_of,
    openai_finish,
    openai_stream_flags,
    openai_usage,
    positive_int,
    token_events,
    tool_trigger,
)
from ._text import dumps

__all__ = ["OPENAI_CHAT", "ChatDialect", "ChatEncoder", "chat_usage"]

SYSTEM_FINGERPRINT = "fp_rxgpt"


def chat_usage(answer: Answer) -> dict[str, Any]:
    """OpenAI's chat usage object, summed over the choices."""
    return {
        **openai_usage(answer),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class ChatDialect(Dialect):
    """``POST /v1/chat/completions``."""

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        """Validate a chat completion body (unknown parameters are ignored)."""
        model = model_of(body, config)
        messages = as_messages(body.get("messages"))
        stream, include_usage = openai_stream_flags(body)
        limit = positive_int(body, "max_completion_tokens") or positive_int(body, "max_tokens")
        return Prompt(
            model=model,
            messages=messages,
            stream=stream,
            include_usage=include_usage,
            n=positive_int(body, "n", upper=MAX_N) or 1,
            max_tokens=limit,
            tool=tool_trigger(body.get("tools"), messages),
        )

    def whole(self, prompt: Prompt, answer: Answer) -> dict[str, Any]:
        """The non-streamed ``chat.completion`` object."""
        choices = []
        for index in range(answer.n):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": answer.text(index),
                "refusal": None,
                "annotations": [],
            }
            if answer.tool is not None:
                message["tool_calls"] = [_tool_call(answer.tool, index)]
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": OPENAI_FINISH_REASONS[answer.stop],
                }
            )
        return {
            "id": _chat_id(answer),
            "object": "chat.completion",
            "created": answer.created,
            "model": answer.model,
            "choices": choices,
            "usage": chat_usage(answer),
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> ChatEncoder:
        return ChatEncoder(answer, include_usage=prompt.include_usage, eol=eol)


def _chat_id(answer: Answer) -> str:
    return "chatcmpl-" + answer.digest[:29]


def _tool_call(tool: ToolCall, choice: int) -> dict[str, Any]:
    return {
        "id": tool.id("call_", choice=choice),
        "type": "function",
        "function": {"name": tool.name, "arguments": tool.arguments_json()},
    }


class ChatEncoder(OpenAIChunks):
    """Builds the SSE events of one streamed chat answer, byte for byte in OpenAI's style."""

    def __init__(self, answer: Answer, *, include_usage: bool, eol: bytes) -> None:
        super().__init__(
            answer,
            chunk_id=_chat_id(answer),
            obj=b"chat.completion.chunk",
            include_usage=include_usage,
            eol=eol,
        )
        self.head += (
            b'"model":%s,"service_tier":"default","system_fingerprint":"%s","choices":['
            % (
                dumps(answer.model),
                SYSTEM_FINGERPRINT.encode(),
            )
        )
        self._end = b"]" + (b',"usage":null' if include_usage else b"") + b"}" + eol + eol

    def events(self, timeline: Timeline, *, done: bool) -> Iterator[tuple[float, bytes]]:
        answer = self.answer
        choices = range(answer.n)
        for index in choices:
            yield 0.0, self._choice(index, b'{"role":"assistant","content":"","refusal":null}')
        prefixes = [self.head + b'{"index":%d,"delta":{"content":' % index for index in choices]
        suffix = b'},"logprobs":null,"finish_reason":null}' + self._end
        streams = [answer.iter_tokens(index) for index in choices]
        yield from token_events(timeline, streams, answer.tokens, prefixes, [suffix] * answer.n)
        if answer.tool is not None:
            for index in choices:
                yield from self._tool_events(timeline, answer.tool, index)
        finish = openai_finish(answer)
        for index in choices:
            yield timeline.now, self._choice(index, b"{}", finish)
        usage = self.head + b'],"usage":' + dumps(chat_usage(answer)) + b"}" + self.eol * 2
        for data in self.tail(answer, usage, done):
            yield timeline.now, data

    def _tool_events(
        self, timeline: Timeline, tool: ToolCall, index: int
    ) -> Iterator[tuple[float, bytes]]:
        call = _tool_call(tool, index)
        call["function"]["arguments"] = ""
        yield timeline.now, self._choice(index, dumps({"tool_calls": [{"index": 0, **call}]}))
        prefix = self.head + (
            b'{"index":%d,"delta":{"tool_calls":[{"index":0,"function":{"arguments":' % index
        )
        suffix = b'}}]},"logprobs":null,"finish_reason":null}' + self._end
        for fragment in tool.fragments():
            yield timeline.tick(), prefix + dumps(fragment) + suffix

    def _choice(self, index: int, delta: bytes, finish_reason: bytes = JSON_NULL) -> bytes:
        entry = b'{"index":%d,"delta":%s,"logprobs":null,"finish_reason":%s}' % (
            index,
            delta,
            finish_reason,
        )
        return self.head + entry + self._end


OPENAI_CHAT = ChatDialect()
