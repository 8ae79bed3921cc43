"""The mock's OpenAI chat completions dialect (``POST /v1/chat/completions``), its main use.

Order of a chat stream (``n`` choices):

1. per choice, a role chunk (sent at once, before the prefill ends);
2. with ``reasoning_effort`` (or ``mock.thinking``), ``reasoning_content`` chunks
   (DeepSeek-style);
3. content chunks, round-robin over the choices, one per decode step (``tokens_per_chunk``
   tokens each; with ``logprobs``, each carries its ``logprobs.content`` entry);
4. with a tool call (see :func:`rxgpt.mock._dialect.make_answer`), per choice, a tool call
   chunk (``id``, ``name``, ``arguments: ""``) and argument fragment chunks;
4. per choice, a finish chunk (``delta: {}``, ``finish_reason`` ``stop``, ``length`` or
   ``tool_calls``);
5. with ``stream_options.include_usage``, a usage chunk with ``"choices": []``
   (``continuous_usage_stats``: also the usage so far on every chunk, as vLLM does);
6. ``data: [DONE]``.

``stop``, ``response_format`` (``json_object`` / ``json_schema``: the text is JSON valid
under the schema), ``seed``, ``max_tokens`` / ``max_completion_tokens`` and ``n`` shape the
answer (see :func:`rxgpt.mock._dialect.make_answer`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._dialect import (
    JSON_NULL,
    MAX_N,
    OPENAI_FINISH_REASONS,
    Answer,
    BadRequest,
    Dialect,
    MockConfig,
    OpenAIChunks,
    Prompt,
    StepClock,
    ToolCall,
    alternative_tokens,
    as_messages,
    check_boolean,
    check_choice,
    first_tool_name,
    length_floor,
    logprob_of,
    model_of,
    openai_finish,
    openai_stream_flags,
    openai_usage,
    parse_tool_choice,
    positive_int,
    reasons,
    response_schema,
    stop_sequences,
    token_events,
    tool_schemas,
    tool_trigger,
)
from ._text import dumps

__all__ = ["OPENAI_CHAT", "ChatDialect", "ChatEncoder", "chat_usage"]

SYSTEM_FINGERPRINT = "fp_rxgpt"
#: The message roles and ``reasoning_effort`` values the API takes.
_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def chat_usage(answer: Answer) -> dict[str, Any]:
    """OpenAI's chat usage object, summed over the choices."""
    return {
        **openai_usage(answer),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": answer.thinking * answer.n,
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
        for index, message in enumerate(messages):
            role, name = message.get("role"), f"messages[{index}].role"
            if role is None:
                raise BadRequest(f"Missing required parameter: '{name}'.", name)
            check_choice(role, name, _ROLES)
        stream, include_usage = openai_stream_flags(body)
        check_boolean(body, "logprobs")
        check_choice(body.get("reasoning_effort"), "reasoning_effort", _EFFORTS)
        tool_choice = body.get("tool_choice")
        if isinstance(tool_choice, str):
            check_choice(tool_choice, "tool_choice", ("none", "auto", "required"))
        limit = positive_int(body, "max_completion_tokens") or positive_int(body, "max_tokens")
        options = body.get("stream_options")
        continuous = isinstance(options, dict) and options.get("continuous_usage_stats") is True
        logprobs = None
        if body.get("logprobs") is True:
            top = body.get("top_logprobs") or 0
            if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
                raise BadRequest(
                    "Invalid 'top_logprobs': expected an integer 0..20.", "top_logprobs"
                )
            logprobs = top
        effort = body.get("reasoning_effort")
        seed = body.get("seed")
        least, ignore_eos = length_floor(body, limit)
        return Prompt(
            model=model,
            messages=messages,
            stream=stream,
            include_usage=include_usage or continuous,
            n=positive_int(body, "n", upper=MAX_N) or 1,
            max_tokens=limit,
            tool=tool_trigger(body.get("tools"), messages),
            thinking=config.thinking_tokens if reasons(effort) else 0,
            first_tool=first_tool_name(body.get("tools")),
            tools=tool_schemas(body.get("tools")),
            tool_choice=parse_tool_choice(body.get("tool_choice")),
            stop=stop_sequences(body.get("stop")),
            logprobs=logprobs,
            response_schema=response_schema(body.get("response_format")),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            continuous_usage=continuous,
            min_tokens=least,
            ignore_eos=ignore_eos,
        )

    def whole(self, prompt: Prompt, answer: Answer) -> dict[str, Any]:
        """The non-streamed ``chat.completion`` object."""
        choices = []
        for index in range(answer.n):
            text = answer.text(index)
            message: dict[str, Any] = {
                "role": "assistant",
                "content": text if text or answer.tool is None else None,
                "refusal": None,
                "annotations": [],
            }
            if answer.thinking:
                message["reasoning_content"] = answer.thinking_text()
            if answer.tool is not None:
                message["tool_calls"] = [_tool_call(answer.tool, index)]
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": (
                        None
                        if prompt.logprobs is None
                        else {
                            "content": [
                                _logprob(token, prompt.logprobs)
                                for token in answer.iter_tokens(index)
                            ],
                            "refusal": None,
                        }
                    ),
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
        return ChatEncoder(
            answer,
            include_usage=prompt.include_usage,
            eol=eol,
            logprobs=prompt.logprobs,
            continuous_usage=prompt.continuous_usage,
        )


def _logprob(token: str, top: int) -> dict[str, Any]:
    """OpenAI's logprobs entry of one token, with ``top`` alternatives (the token first)."""
    return {
        "token": token,
        "logprob": logprob_of(token),
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": alt, "logprob": value, "bytes": list(alt.encode())}
            for alt, value in alternative_tokens(token, top)
        ],
    }


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

    def __init__(
        self,
        answer: Answer,
        *,
        include_usage: bool,
        eol: bytes,
        logprobs: int | None = None,
        continuous_usage: bool = False,
    ) -> None:
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
        self._logprobs = logprobs
        self._continuous = continuous_usage
        self._end = b"]" + (b',"usage":null' if include_usage else b"") + b"}" + eol + eol

    def events(self, clock: StepClock, *, done: bool) -> Iterator[tuple[float, bytes]]:
        if not self._continuous:
            return self._events(clock, done=done)
        return self._with_usage(self._events(clock, done=done), clock)

    def _with_usage(
        self, events: Iterator[tuple[float, bytes]], clock: StepClock
    ) -> Iterator[tuple[float, bytes]]:
        """vLLM's ``continuous_usage_stats``: the usage so far on every chunk."""
        answer = self.answer
        marker = b',"usage":null}' + self.eol * 2
        prompt = answer.prompt_tokens
        total = answer.output_tokens
        for due, data in events:
            if data.endswith(marker):
                done = min(int(due) * clock.group * answer.n, total)
                usage = (
                    b'"usage":{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d}}'
                    % (
                        prompt,
                        prompt + done,
                        done,
                    )
                )
                data = data[: -len(marker) + 1] + usage + self.eol * 2
            yield due, data

    def _events(self, clock: StepClock, *, done: bool) -> Iterator[tuple[float, bytes]]:
        answer = self.answer
        choices = range(answer.n)
        # (a forced call has no text: its content is null, as the API sends it)
        role = b'{"role":"assistant","content":%s,"refusal":null}' % (
            b"null" if answer.tool is not None and not answer.tokens else b'""'
        )
        for index in choices:
            yield 0.0, self._choice(index, role)
        if answer.thinking:
            prefixes = [
                self.head + b'{"index":%d,"delta":{"reasoning_content":' % index
                for index in choices
            ]
            suffix = b'},"logprobs":null,"finish_reason":null}' + self._end
            streams = [answer.iter_thinking() for _ in choices]
            yield from token_events(clock, streams, answer.thinking, prefixes, [suffix] * answer.n)
        streams = [answer.iter_tokens(index) for index in choices]
        if self._logprobs is not None:
            yield from self._logprob_events(clock, streams)
        else:
            prefixes = [self.head + b'{"index":%d,"delta":{"content":' % index for index in choices]
            suffix = b'},"logprobs":null,"finish_reason":null}' + self._end
            yield from token_events(clock, streams, answer.tokens, prefixes, [suffix] * answer.n)
        if answer.tool is not None:
            for index in choices:
                yield from self._tool_events(clock, answer.tool, index)
        finish = openai_finish(answer)
        for index in choices:
            yield clock.now, self._choice(index, b"{}", finish)
        usage = self.head + b'],"usage":' + dumps(chat_usage(answer)) + b"}" + self.eol * 2
        for data in self.tail(answer, usage, done):
            yield clock.now, data

    def _logprob_events(
        self, clock: StepClock, streams: list[Iterator[str]]
    ) -> Iterator[tuple[float, bytes]]:
        top = self._logprobs or 0
        for groups in zip(*(clock.groups(stream) for stream in streams), strict=True):
            due = clock.tick()
            for index, tokens in enumerate(groups):  # (one entry per token of the chunk)
                entry = {
                    "index": index,
                    "delta": {"content": "".join(tokens)},
                    "logprobs": {"content": [_logprob(t, top) for t in tokens], "refusal": None},
                    "finish_reason": None,
                }
                yield due, self.head + dumps(entry) + self._end

    def _tool_events(
        self, clock: StepClock, tool: ToolCall, index: int
    ) -> Iterator[tuple[float, bytes]]:
        call = _tool_call(tool, index)
        call["function"]["arguments"] = ""
        yield clock.now, self._choice(index, dumps({"tool_calls": [{"index": 0, **call}]}))
        prefix = self.head + (
            b'{"index":%d,"delta":{"tool_calls":[{"index":0,"function":{"arguments":' % index
        )
        suffix = b'}}]},"logprobs":null,"finish_reason":null}' + self._end
        for fragment in clock.chunks(tool.fragments()):
            yield clock.tick(), prefix + dumps(fragment) + suffix

    def _choice(self, index: int, delta: bytes, finish_reason: bytes = JSON_NULL) -> bytes:
        entry = b'{"index":%d,"delta":%s,"logprobs":null,"finish_reason":%s}' % (
            index,
            delta,
            finish_reason,
        )
        return self.head + entry + self._end


OPENAI_CHAT = ChatDialect()
