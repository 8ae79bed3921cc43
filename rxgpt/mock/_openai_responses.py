"""The mock's OpenAI Responses dialect (``POST /v1/responses``).

``input`` is a string (one user message, like a legacy ``prompt``) or a list of items;
``instructions`` is a leading system message. SSE with named events, ``sequence_number`` 0, 1,
…: ``response.created``, ``response.in_progress``, ``response.output_item.added`` (message),
``response.content_part.added``, ``response.output_text.delta`` per token,
``response.output_text.done``, ``response.content_part.done``, ``response.output_item.done``,
then for a tool call ``response.output_item.added`` (function_call),
``response.function_call_arguments.delta`` per fragment, ``….done``, ``output_item.done``,
and last ``response.completed`` (or ``response.incomplete`` with
``incomplete_details.reason: "max_output_tokens"`` when ``max_output_tokens`` cut the text).
Reasoning first: a ``reasoning`` item, its summary streamed when ``reasoning.summary`` asks
for one, hidden (empty summary; its steps pass unwritten) for an ``effort`` alone.
In-band error: ``error`` (nested ``error`` object) then ``response.failed``. Tool trigger: see
:mod:`rxgpt.mock._dialect`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ._dialect import (
    SERVER_ERROR_MESSAGE,
    Answer,
    BadRequest,
    Dialect,
    MockConfig,
    Prompt,
    SseEncoder,
    StepClock,
    ToolCall,
    as_messages,
    first_tool_name,
    model_of,
    parse_tool_choice,
    positive_int,
    reasons,
    response_schema,
    stream_flag,
    tool_schemas,
    tool_trigger,
)
from ._text import dumps, encode_token

__all__ = ["OPENAI_RESPONSES", "ResponsesDialect", "ResponsesEncoder"]


class ResponsesDialect(Dialect):
    """``POST /v1/responses``: ``input`` (a string or a list of items), ``instructions``."""

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        model = model_of(body, config)
        given = body.get("input")
        messages = (
            [{"role": "user", "content": given}]
            if isinstance(given, str)
            else as_messages(given, "input")
        )
        text = body.get("text")
        text_format = text.get("format") if isinstance(text, dict) else None
        instructions = body.get("instructions")
        if instructions is not None:
            if not isinstance(instructions, str):
                raise BadRequest("Invalid 'instructions': expected a string.", "instructions")
            messages = [{"role": "system", "content": instructions}, *messages]
        return Prompt(
            model=model,
            messages=messages,
            stream=stream_flag(body),
            max_tokens=positive_int(body, "max_output_tokens"),
            tool=tool_trigger(body.get("tools"), messages),
            body=body,
            first_tool=first_tool_name(body.get("tools")),
            tools=tool_schemas(body.get("tools")),
            tool_choice=parse_tool_choice(body.get("tool_choice")),
            response_schema=response_schema(text_format),
            thinking=config.thinking_tokens if _reasoning(body.get("reasoning")) else 0,
        )

    def whole(self, prompt: Prompt, answer: Answer) -> dict[str, Any]:
        return _ResponseShapes(prompt, answer).final()

    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> ResponsesEncoder:
        return ResponsesEncoder(prompt, answer, eol)


def _summarised(reasoning: Any) -> bool:
    """Whether ``reasoning`` asks for a reasoning summary (streamed as reasoning items)."""
    return isinstance(reasoning, dict) and reasoning.get("summary") not in (None, "none")


def _reasoning(reasoning: Any) -> bool:
    """Whether ``reasoning`` asks for reasoning: a summary, or an effort alone (then the
    reasoning is hidden, as the API's is: an item with an empty summary, and its tokens)."""
    return _summarised(reasoning) or (
        isinstance(reasoning, dict) and reasons(reasoning.get("effort"))
    )


class _ResponseShapes:
    """The ids, items and ``response`` objects of one Responses answer."""

    def __init__(self, prompt: Prompt, answer: Answer) -> None:
        self.prompt, self.answer = prompt, answer
        self.id = answer.make_id("resp_", 48, hex_=True)
        self.message_id = answer.make_id("msg_", 48, salt="message", hex_=True)
        self.call_item_id = answer.make_id("fc_", 48, salt="function_call", hex_=True)
        self.reasoning_id = answer.make_id("rs_", 48, salt="reasoning", hex_=True)
        self.item_status = "incomplete" if answer.stop == "length" else "completed"
        self.summarised = _summarised(prompt.body.get("reasoning"))
        # Output items: the reasoning (its summary when asked), the message (unless a forced tool
        # call leaves no text), the function call.
        self.has_message = answer.tokens > 0 or answer.tool is None
        self.message_index = 1 if answer.thinking else 0
        self.call_index = self.message_index + (1 if self.has_message else 0)

    def reasoning(self, text: str | None) -> dict[str, Any]:
        """The reasoning item (``text``: its summary so far; none when it is hidden)."""
        shown = text is not None and self.summarised
        summary = [{"type": "summary_text", "text": text}] if shown else []
        return {"id": self.reasoning_id, "type": "reasoning", "summary": summary}

    @staticmethod
    def part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

    def message(self, text: str | None, status: str) -> dict[str, Any]:
        content = [] if text is None else [self.part(text)]
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def call(self, tool: ToolCall, arguments: str, status: str) -> dict[str, Any]:
        return {
            "id": self.call_item_id,
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": tool.id("call_"),
            "name": tool.name,
        }

    def output(self, text: str) -> list[dict[str, Any]]:
        output = []
        if self.answer.thinking:
            output.append(self.reasoning(self.answer.thinking_text()))
        if self.has_message:
            output.append(self.message(text, self.item_status))
        tool = self.answer.tool
        if tool is not None:
            output.append(self.call(tool, tool.arguments_json(), "completed"))
        return output

    def response(
        self,
        status: str,
        output: list[dict[str, Any]] | None = None,
        *,
        error: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``response`` object; with ``output``, a finished one (with usage)."""
        answer, body = self.answer, self.prompt.body
        finished = output is not None
        usage = None
        if finished:
            usage = {
                "input_tokens": answer.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": answer.output_tokens,
                "output_tokens_details": {"reasoning_tokens": answer.thinking},
                "total_tokens": answer.prompt_tokens + answer.output_tokens,
            }
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": answer.created,
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": answer.model,
            "output": output or [],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "service_tier": "default",
            "store": True,
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    def final(self, text: str | None = None) -> dict[str, Any]:
        """The finished ``response`` object (``text``: the message text, when known)."""
        text = self.answer.text() if text is None else text
        status = "incomplete" if self.answer.stop == "length" else "completed"
        return self.response(status, self.output(text))


class ResponsesEncoder(SseEncoder):
    """Responses API events; ``sequence_number`` counts every event from 0."""

    def __init__(self, prompt: Prompt, answer: Answer, eol: bytes) -> None:
        super().__init__(eol)
        self._shapes = _ResponseShapes(prompt, answer)
        self._sequence = itertools.count()

    def _event(self, name: str, **fields: Any) -> bytes:
        payload = {"type": name, "sequence_number": next(self._sequence), **fields}
        return self.event(name, dumps(payload))

    def _deltas(
        self, clock: StepClock, name: str, head: bytes, pieces: Iterable[str], tail: bytes
    ) -> Iterator[tuple[float, bytes]]:
        """Delta events: ``…"sequence_number":N`` + ``head`` + piece JSON + ``tail``."""
        prefix = self.event_prefix(name) + b'{"type":"%s","sequence_number":' % name.encode()
        suffix = tail + b"}" + self.eol * 2
        sequence = self._sequence
        encode = encode_token if clock.group == 1 else dumps
        for piece in clock.chunks(pieces):
            yield (
                clock.tick(),
                b"%s%d%s%s%s"
                % (
                    prefix,
                    next(sequence),
                    head,
                    encode(piece),
                    suffix,
                ),
            )

    def events(self, clock: StepClock, *, done: bool) -> Iterator[tuple[float, bytes]]:
        shapes, answer, event = self._shapes, self._shapes.answer, self._event
        yield 0.0, event("response.created", response=shapes.response("in_progress"))
        yield 0.0, event("response.in_progress", response=shapes.response("in_progress"))
        if answer.thinking:
            yield from self._reasoning_events(clock)
        text = ""
        if shapes.has_message:
            text = yield from self._message_events(clock)
        if answer.tool is not None:
            yield from self._call_events(clock, answer.tool)
        if done:
            final = shapes.final(text)
            yield clock.now, event(f"response.{final['status']}", response=final)

    def _reasoning_events(self, clock: StepClock) -> Iterator[tuple[float, bytes]]:
        """A reasoning item with one summary part, streamed token by token (hidden without a
        summary asked for: the item, empty, then its steps pass with nothing written)."""
        shapes, event, answer = self._shapes, self._event, self._shapes.answer
        ids = {"item_id": shapes.reasoning_id, "output_index": 0}
        empty = {"type": "summary_text", "text": ""}
        now = clock.now
        yield now, event("response.output_item.added", output_index=0, item=shapes.reasoning(None))
        if not shapes.summarised:  # hidden: its tokens take their decode steps, unseen
            for _ in range(clock.count(answer.thinking)):
                clock.tick()
            item = shapes.reasoning(None)
            yield clock.now, event("response.output_item.done", output_index=0, item=item)
            return
        yield (
            now,
            event("response.reasoning_summary_part.added", **ids, summary_index=0, part=empty),
        )
        head = b',"item_id":"%s","output_index":0,"summary_index":0,"delta":' % (
            shapes.reasoning_id.encode()
        )
        name = "response.reasoning_summary_text.delta"
        yield from self._deltas(clock, name, head, answer.iter_thinking(), b"")
        text = answer.thinking_text()
        part = {"type": "summary_text", "text": text}
        now = clock.now
        yield now, event("response.reasoning_summary_text.done", **ids, summary_index=0, text=text)
        yield now, event("response.reasoning_summary_part.done", **ids, summary_index=0, part=part)
        yield now, event("response.output_item.done", output_index=0, item=shapes.reasoning(text))

    def _message_events(self, clock: StepClock) -> Generator[tuple[float, bytes], None, str]:
        """The message item, streamed token by token; returns its text."""
        shapes, event, answer = self._shapes, self._event, self._shapes.answer
        index = shapes.message_index
        item = {"item_id": shapes.message_id, "output_index": index, "content_index": 0}
        now = clock.now
        added = shapes.message(None, "in_progress")
        yield now, event("response.output_item.added", output_index=index, item=added)
        yield now, event("response.content_part.added", **item, part=shapes.part(""))
        pieces: list[str] = []
        tokens = _collecting(answer.iter_tokens(0), pieces)
        head = b',"item_id":"%s","output_index":%d,"content_index":0,"delta":' % (
            shapes.message_id.encode(),
            index,
        )
        name = "response.output_text.delta"
        yield from self._deltas(clock, name, head, tokens, b',"logprobs":[]')
        text = "".join(pieces)
        now = clock.now
        yield now, event("response.output_text.done", **item, text=text, logprobs=[])
        yield now, event("response.content_part.done", **item, part=shapes.part(text))
        message = shapes.message(text, shapes.item_status)
        yield now, event("response.output_item.done", output_index=index, item=message)
        return text

    def _call_events(self, clock: StepClock, tool: ToolCall) -> Iterator[tuple[float, bytes]]:
        shapes, event = self._shapes, self._event
        index = shapes.call_index
        item = shapes.call(tool, "", "in_progress")
        yield clock.now, event("response.output_item.added", output_index=index, item=item)
        head = b',"item_id":"%s","output_index":%d,"delta":' % (
            shapes.call_item_id.encode(),
            index,
        )
        name = "response.function_call_arguments.delta"
        yield from self._deltas(clock, name, head, tool.fragments(), b"")
        arguments = tool.arguments_json()
        now = clock.now
        yield (
            now,
            event(
                "response.function_call_arguments.done",
                item_id=shapes.call_item_id,
                output_index=index,
                arguments=arguments,
            ),
        )
        done_item = shapes.call(tool, arguments, "completed")
        yield now, event("response.output_item.done", output_index=index, item=done_item)

    def error(self, index: int) -> Sequence[bytes]:
        """``error`` (the nested shape of recorded streams), then ``response.failed``."""
        error = {"type": "server_error", "code": "server_error", "message": SERVER_ERROR_MESSAGE}
        failed = self._shapes.response(
            "failed", error={"code": "server_error", "message": SERVER_ERROR_MESSAGE}
        )
        return (
            self.event(
                "error",
                dumps(
                    {"type": "error", "sequence_number": index, "error": {**error, "param": None}}
                ),
            ),
            self.event(
                "response.failed",
                dumps(
                    {"type": "response.failed", "sequence_number": index + 1, "response": failed}
                ),
            ),
        )


def _collecting(tokens: Iterable[str], into: list[str]) -> Iterator[str]:
    """Pass ``tokens`` through, keeping them in ``into``."""
    append = into.append
    for token in tokens:
        append(token)
        yield token


OPENAI_RESPONSES = ResponsesDialect()
