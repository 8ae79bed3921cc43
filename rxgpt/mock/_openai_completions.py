"""The mock's OpenAI legacy completions dialect (``POST /v1/completions``).

Legacy completions stream ``text_completion`` chunks (``choices[].text``), the finish reason on
the chunk with the last text of each choice, then the usage chunk and ``[DONE]``; a list
``prompt`` gets one choice per prompt (times ``n``), each the text its prompt gets alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
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
    alternative_tokens,
    length_floor,
    logprob_of,
    model_of,
    openai_finish,
    openai_stream_flags,
    openai_usage,
    positive_int,
    stop_sequences,
    token_events,
)
from ._text import dumps

__all__ = ["OPENAI_COMPLETIONS", "CompletionsDialect", "TextEncoder"]


def _prompt_texts(prompt: Any) -> list[str]:
    """``prompt`` as texts: a string, strings, a list of token ids or lists of them (a
    token id prompt reads as its ids, space-separated: one counted token each).

    Raises:
        BadRequest: anything else.
    """
    if isinstance(prompt, str):
        return [prompt]
    if prompt is None:
        raise BadRequest("Missing required parameter: 'prompt'.", "prompt")
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return prompt
        if _token_ids(prompt):
            return [" ".join(map(str, prompt))]
        if all(isinstance(p, list) and p and _token_ids(p) for p in prompt):
            return [" ".join(map(str, ids)) for ids in prompt]
    raise BadRequest(
        "Invalid 'prompt': expected a string, a list of strings, a list of token ids "
        "(integers >= 0) or a list of such lists.",
        "prompt",
    )


def _token_ids(values: list[Any]) -> bool:
    return all(v.__class__ is int and v >= 0 for v in values)


def _echo(prompt: Prompt, answer: Answer, index: int) -> str:
    """The prompt that choice ``index`` continues, when ``echo`` asks for it back ("")."""
    if prompt.body.get("echo") is not True:
        return ""
    conversation, _seed = answer.sources[index]
    return str(conversation[0]["content"])


class CompletionsDialect(Dialect):
    """``POST /v1/completions`` (legacy): ``prompt`` is text(s) or token ids; ``echo``."""

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        model = model_of(body, config)
        texts = _prompt_texts(body.get("prompt"))
        echo = body.get("echo")
        if echo is not None and not isinstance(echo, bool):
            raise BadRequest("Invalid 'echo': expected a boolean.", "echo")
        conversations = tuple([{"role": "user", "content": text}] for text in texts)
        stream, include_usage = openai_stream_flags(body)
        logprobs = body.get("logprobs")
        if logprobs is not None and (
            isinstance(logprobs, bool) or not isinstance(logprobs, int) or not 0 <= logprobs <= 5
        ):
            raise BadRequest("Invalid 'logprobs': expected an integer 0..5.", "logprobs")
        seed = body.get("seed")
        limit = positive_int(body, "max_tokens")
        least, ignore_eos = length_floor(body, limit)
        return Prompt(
            model=model,
            messages=conversations[0] if len(conversations) == 1 else list(conversations),
            stream=stream,
            include_usage=include_usage,
            n=positive_int(body, "n", upper=MAX_N) or 1,
            max_tokens=limit,
            min_tokens=least,
            ignore_eos=ignore_eos,
            prompts=conversations if len(conversations) > 1 else (),
            stop=stop_sequences(body.get("stop")),
            logprobs=logprobs,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            body=body,
        )

    def whole(self, prompt: Prompt, answer: Answer) -> dict[str, Any]:
        finish = OPENAI_FINISH_REASONS[answer.stop]
        echoes = [_echo(prompt, answer, i) for i in range(answer.n)]
        return {
            "id": _text_id(answer),
            "object": "text_completion",
            "created": answer.created,
            "model": answer.model,
            "choices": [
                {
                    "text": echoes[i] + answer.text(i),
                    "index": i,
                    "logprobs": _logprobs(
                        list(answer.iter_tokens(i)), prompt.logprobs, len(echoes[i])
                    ),
                    "finish_reason": finish,
                }
                for i in range(answer.n)
            ],
            "usage": openai_usage(answer),
        }

    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> TextEncoder:
        return TextEncoder(
            answer,
            include_usage=prompt.include_usage,
            eol=eol,
            logprobs=prompt.logprobs,
            echoes=[_echo(prompt, answer, index) for index in range(answer.n)],
        )


def _logprobs(tokens: list[str], top: int | None, offset: int = 0) -> dict[str, Any] | None:
    """Legacy completions' ``logprobs`` object for ``tokens`` (``top`` alternatives each)."""
    if top is None:
        return None
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return {
        "tokens": tokens,
        "token_logprobs": [logprob_of(token) for token in tokens],
        "top_logprobs": [dict(alternative_tokens(token, top)) for token in tokens],
        "text_offset": offsets,
    }


def _text_id(answer: Answer) -> str:
    return answer.make_id("cmpl-", 29)


class TextEncoder(OpenAIChunks):
    """``text_completion`` chunks; the finish reason rides on each choice's last text."""

    def __init__(
        self,
        answer: Answer,
        *,
        include_usage: bool,
        eol: bytes,
        logprobs: int | None = None,
        echoes: Sequence[str] = (),
    ) -> None:
        self._logprobs = logprobs
        self._echoes = list(echoes) if any(echoes) else []
        super().__init__(
            answer,
            chunk_id=_text_id(answer),
            obj=b"text_completion",
            include_usage=include_usage,
            eol=eol,
        )
        self._model = b'"model":' + dumps(answer.model)
        self._end = self._model + (b',"usage":null' if include_usage else b"") + b"}" + eol * 2

    def _suffix(self, index: int, finish_reason: bytes) -> bytes:
        entry = b',"index":%d,"logprobs":null,"finish_reason":%s}],' % (index, finish_reason)
        return entry + self._end

    def events(self, clock: StepClock, *, done: bool) -> Iterator[tuple[float, bytes]]:
        answer = self.answer
        choices = range(answer.n)
        prefix = self.head + b'"choices":[{"text":'
        finish = openai_finish(answer)
        ends = [self._suffix(index, finish) for index in choices]
        for index, echo in enumerate(self._echoes):  # (the prompt back first, as it was sent)
            yield 0.0, prefix + dumps(echo) + self._suffix(index, JSON_NULL)
        if answer.tokens == 0:
            for end in ends:
                yield 0.0, prefix + b'""' + end
        elif self._logprobs is not None:
            yield from self._logprob_events(clock, finish)
        else:
            suffixes = [self._suffix(index, JSON_NULL) for index in choices]
            streams = [answer.iter_tokens(index) for index in choices]
            yield from token_events(
                clock, streams, answer.tokens, [prefix] * answer.n, suffixes, ends
            )
        usage = self.head + self._model + b',"usage":' + dumps(openai_usage(answer))
        for data in self.tail(answer, usage + b',"choices":[]}' + self.eol * 2, done):
            yield clock.now, data

    def _logprob_events(self, clock: StepClock, finish: bytes) -> Iterator[tuple[float, bytes]]:
        """Text chunks that carry their ``logprobs`` (slower: one JSON encoding each)."""
        answer = self.answer
        streams = [clock.groups(answer.iter_tokens(index)) for index in range(answer.n)]
        last = clock.count(answer.tokens) - 1
        reason = json.loads(finish)
        offsets = [len(echo) for echo in self._echoes] or [0] * answer.n
        for step, tokens in enumerate(zip(*streams, strict=True)):
            due = clock.tick()
            for index, group in enumerate(tokens):  # (one entry per token of the chunk)
                text = "".join(group)
                choice = {
                    "text": text,
                    "index": index,
                    "logprobs": _logprobs(group, self._logprobs, offsets[index]),
                    "finish_reason": reason if step == last else None,
                }
                offsets[index] += len(text)
                entry = dumps({"choices": [choice]})[1:-1]  # "choices":[...]
                yield due, self.head + entry + b"," + self._end


OPENAI_COMPLETIONS = CompletionsDialect()
