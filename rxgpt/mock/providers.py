"""The mock's other vendors' APIs: OpenAI Responses, Anthropic Messages and Ollama's native chat.

Each answers deterministically from the same generator as the chat endpoint: a conversation
gets the same text everywhere, streamed or not (a Responses string ``input``, like a legacy
``prompt``, is one user message; Anthropic's ``system`` and Responses' ``instructions`` are a
leading system message). Tool and thinking triggers: see :mod:`rxgpt.mock.core`.

``POST /v1/responses`` (OpenAI Responses, SSE with named events, ``sequence_number`` 0, 1, …):
``response.created``, ``response.in_progress``, ``response.output_item.added`` (message),
``response.content_part.added``, ``response.output_text.delta`` per token,
``response.output_text.done``, ``response.content_part.done``, ``response.output_item.done``,
then for a tool call ``response.output_item.added`` (function_call),
``response.function_call_arguments.delta`` per fragment, ``….done``, ``output_item.done``,
and last ``response.completed`` (or ``response.incomplete`` with
``incomplete_details.reason: "max_output_tokens"`` when ``max_output_tokens`` cut the text).
In-band error: ``error`` (nested ``error`` object) then ``response.failed``.

``POST /v1/messages`` (Anthropic, SSE with named events): ``message_start``, per content block
``content_block_start`` / ``content_block_delta``… / ``content_block_stop`` (a ``ping`` right
after the first start), ``message_delta`` (``stop_reason`` ``end_turn``, ``max_tokens`` or
``tool_use``) and ``message_stop``. Blocks: ``thinking`` (``thinking_delta`` per token, then a
``signature_delta``) when ``thinking.type`` is ``enabled`` or ``adaptive``, then ``text``, then
``tool_use`` (``input_json_delta`` fragments, the first ``""``). Keep-alives are ``ping``
events; the in-band error is ``overloaded_error``. Keys come in ``x-api-key`` (or Bearer).

``POST /api/chat`` (Ollama, NDJSON, streamed unless ``"stream": false``): one line per thinking
token (``think`` true or a level), one per text token, one with the whole ``tool_calls``, and a
last ``done: true`` line with ``done_reason`` (``stop`` or ``length`` when
``options.num_predict`` cut the text), counts and durations (nanoseconds; the measured total,
a quarter of it as prompt eval). In-band error: an ``{"error": …}`` line, then the body ends.
``GET /api/tags`` lists the configured model, ``GET /api/version`` a version.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .core import (
    CONFIG_KEY,
    Answer,
    BadRequest,
    Dialect,
    MockConfig,
    Prompt,
    SseEncoder,
    StreamEncoder,
    Timeline,
    ToolCall,
    as_messages,
    model_of,
    positive_int,
    token_events,
    tool_trigger,
)
from .faults import json_response
from .text import derived_id, dumps, encode_token

__all__ = [
    "ANTHROPIC_MESSAGES",
    "OLLAMA_CHAT",
    "OPENAI_RESPONSES",
    "AnthropicDialect",
    "OllamaDialect",
    "ResponsesDialect",
    "ollama_tags",
    "ollama_version",
]

OLLAMA_VERSION = "0.12.0"
_SERVER_ERROR = "The server had an error while processing your request."


# --------------------------------------------------------------------------- OpenAI Responses


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
        instructions = body.get("instructions")
        if instructions is not None:
            if not isinstance(instructions, str):
                raise BadRequest("Invalid 'instructions': expected a string.", "instructions")
            messages = [{"role": "system", "content": instructions}, *messages]
        return Prompt(
            model=model,
            messages=messages,
            stream=body.get("stream") is True,
            max_tokens=positive_int(body, "max_output_tokens"),
            tool=tool_trigger(body.get("tools"), messages),
            body=body,
        )

    def whole(self, prompt: Prompt, answer: Answer) -> dict[str, Any]:
        return _ResponseShapes(prompt, answer).final()

    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> ResponsesEncoder:
        return ResponsesEncoder(prompt, answer, eol)


class _ResponseShapes:
    """The ids, items and ``response`` objects of one Responses answer."""

    def __init__(self, prompt: Prompt, answer: Answer) -> None:
        self.prompt, self.answer = prompt, answer
        self.id = answer.make_id("resp_", 48, hex_=True)
        self.message_id = answer.make_id("msg_", 48, salt="message", hex_=True)
        self.call_item_id = answer.make_id("fc_", 48, salt="function_call", hex_=True)
        self.item_status = "incomplete" if answer.stop == "length" else "completed"

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
        output = [self.message(text, self.item_status)]
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
                "output_tokens_details": {"reasoning_tokens": 0},
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
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": True,
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
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
        self, timeline: Timeline, name: str, head: bytes, pieces: Iterable[str], tail: bytes
    ) -> Iterator[tuple[float, bytes]]:
        """Delta events: ``…"sequence_number":N`` + ``head`` + piece JSON + ``tail``."""
        prefix = self.event_prefix(name) + b'{"type":"%s","sequence_number":' % name.encode()
        suffix = tail + b"}" + self.eol * 2
        sequence = self._sequence
        for piece in pieces:
            yield (
                timeline.tick(),
                b"%s%d%s%s%s"
                % (
                    prefix,
                    next(sequence),
                    head,
                    encode_token(piece),
                    suffix,
                ),
            )

    def events(self, timeline: Timeline, *, done: bool) -> Iterator[tuple[float, bytes]]:
        shapes, answer, event = self._shapes, self._shapes.answer, self._event
        yield 0.0, event("response.created", response=shapes.response("in_progress"))
        yield 0.0, event("response.in_progress", response=shapes.response("in_progress"))
        item = {"item_id": shapes.message_id, "output_index": 0, "content_index": 0}
        yield (
            0.0,
            event(
                "response.output_item.added",
                output_index=0,
                item=shapes.message(None, "in_progress"),
            ),
        )
        yield 0.0, event("response.content_part.added", **item, part=shapes.part(""))
        pieces: list[str] = []
        tokens = _collecting(answer.iter_tokens(0), pieces)
        head = b',"item_id":"%s","output_index":0,"content_index":0,"delta":' % (
            shapes.message_id.encode()
        )
        name = "response.output_text.delta"
        yield from self._deltas(timeline, name, head, tokens, b',"logprobs":[]')
        text = "".join(pieces)
        now = timeline.now
        yield now, event("response.output_text.done", **item, text=text, logprobs=[])
        yield now, event("response.content_part.done", **item, part=shapes.part(text))
        message = shapes.message(text, shapes.item_status)
        yield now, event("response.output_item.done", output_index=0, item=message)
        if answer.tool is not None:
            yield from self._call_events(timeline, answer.tool)
        if done:
            final = shapes.final(text)
            yield timeline.now, event(f"response.{final['status']}", response=final)

    def _call_events(self, timeline: Timeline, tool: ToolCall) -> Iterator[tuple[float, bytes]]:
        shapes, event = self._shapes, self._event
        item = shapes.call(tool, "", "in_progress")
        yield timeline.now, event("response.output_item.added", output_index=1, item=item)
        head = b',"item_id":"%s","output_index":1,"delta":' % shapes.call_item_id.encode()
        name = "response.function_call_arguments.delta"
        yield from self._deltas(timeline, name, head, tool.fragments(), b"")
        arguments = tool.arguments_json()
        now = timeline.now
        yield (
            now,
            event(
                "response.function_call_arguments.done",
                item_id=shapes.call_item_id,
                output_index=1,
                arguments=arguments,
            ),
        )
        done_item = shapes.call(tool, arguments, "completed")
        yield now, event("response.output_item.done", output_index=1, item=done_item)

    def error(self, index: int) -> Sequence[bytes]:
        """``error`` (the nested shape of recorded streams), then ``response.failed``."""
        error = {"type": "server_error", "code": "server_error", "message": _SERVER_ERROR}
        failed = self._shapes.response(
            "failed", error={"code": "server_error", "message": _SERVER_ERROR}
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


# --------------------------------------------------------------------------- Anthropic Messages

_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"}
_ANTHROPIC_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (rxgpt mock)."),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed your organization's rate limit. Please try again later.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}
_OVERLOADED = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'


class AnthropicDialect(Dialect):
    """``POST /v1/messages``."""

    request_id_header = "request-id"

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        model = model_of(body, config)
        messages = as_messages(body.get("messages"))
        system = body.get("system")
        conversation = (
            messages if system is None else [{"role": "system", "content": system}, *messages]
        )
        thinking = body.get("thinking")
        count = 0
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            budget = positive_int(thinking, "budget_tokens")
            count = min(config.thinking_tokens, budget or config.thinking_tokens)
        return Prompt(
            model=model,
            messages=conversation,
            stream=body.get("stream") is True,
            max_tokens=positive_int(body, "max_tokens"),
            tool=tool_trigger(body.get("tools"), messages),
            thinking=count,
        )

    def credentials(self, request: web.Request) -> list[str]:
        key = request.headers.get("x-api-key")
        return ([] if key is None else [key]) + super().credentials(request)

    def error(
        self, status: int, message: str, *, kind: str, param: str | None = None
    ) -> web.Response:
        request_id = derived_id("req_011C", hashlib.sha256(message.encode()).hexdigest(), length=20)
        body = {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }
        return json_response(status, body)

    def status_error(self, status: int) -> web.Response:
        kind, message = _ANTHROPIC_ERRORS.get(
            status, ("api_error", f"Injected error: HTTP {status} (rxgpt mock).")
        )
        return self.error(status, message, kind=kind)

    def unauthorized_error(self, presented: bool) -> web.Response:
        return self.status_error(401)

    def request_id(self, answer: Answer) -> str:
        return answer.make_id("req_011C", 20, salt="request")

    def whole(self, prompt: Prompt, answer: Answer) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if answer.thinking:
            content.append(
                {
                    "type": "thinking",
                    "thinking": answer.thinking_text(),
                    "signature": _signature(answer),
                }
            )
        content.append({"type": "text", "text": answer.text()})
        if answer.tool is not None:
            content.append(_tool_use(answer.tool, answer.tool.arguments))
        return _message(answer, content, _ANTHROPIC_STOP[answer.stop], answer.output_tokens)

    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> AnthropicEncoder:
        return AnthropicEncoder(answer, eol)


def _message(
    answer: Answer, content: list[dict[str, Any]], stop_reason: str | None, output_tokens: int
) -> dict[str, Any]:
    return {
        "id": answer.make_id("msg_01", 22, salt="message"),
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": answer.prompt_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }


def _tool_use(tool: ToolCall, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": tool.id("toolu_01", 22),
        "name": tool.name,
        "input": arguments,
    }


def _signature(answer: Answer) -> str:
    digest = hashlib.sha256(f"{answer.digest}#signature".encode()).digest()
    return base64.b64encode(digest * 3).decode()


class AnthropicEncoder(SseEncoder):
    """Anthropic Messages events."""

    def __init__(self, answer: Answer, eol: bytes) -> None:
        super().__init__(eol)
        self._answer = answer
        self._ping = self.event("ping", b'{"type": "ping"}')

    @property
    def keepalive(self) -> bytes | None:
        return self._ping

    def error(self, index: int) -> Sequence[bytes]:
        return (self.event("error", _OVERLOADED),)

    def events(self, timeline: Timeline, *, done: bool) -> Iterator[tuple[float, bytes]]:
        answer = self._answer
        start = {"type": "message_start", "message": _message(answer, [], None, 1)}
        yield 0.0, self.event("message_start", dumps(start))
        index = 0
        if answer.thinking:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            signature = {"type": "signature_delta", "signature": _signature(answer)}
            yield from self._block(
                timeline,
                index,
                block,
                b"thinking",
                answer.iter_thinking(),
                answer.thinking,
                signature,
            )
            index += 1
        text = {"type": "text", "text": ""}
        yield from self._block(timeline, index, text, b"text", answer.iter_tokens(0), answer.tokens)
        if answer.tool is not None:
            fragments = ["", *answer.tool.fragments(spaced=True)]
            block = _tool_use(answer.tool, {})
            yield from self._block(
                timeline, index + 1, block, b"partial_json", fragments, len(fragments)
            )
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _ANTHROPIC_STOP[answer.stop], "stop_sequence": None},
            "usage": {"output_tokens": answer.output_tokens},
        }
        yield timeline.now, self.event("message_delta", dumps(delta))
        if done:
            yield timeline.now, self.event("message_stop", b'{"type":"message_stop"}')

    def _block(
        self,
        timeline: Timeline,
        index: int,
        block: Mapping[str, Any],
        field: bytes,
        pieces: Iterable[str],
        count: int,
        last_delta: Mapping[str, Any] | None = None,
    ) -> Iterator[tuple[float, bytes]]:
        """One content block: start (and the ping after the first), deltas, stop."""
        start = {"type": "content_block_start", "index": index, "content_block": block}
        yield timeline.now, self.event("content_block_start", dumps(start))
        if index == 0:
            yield timeline.now, self._ping
        kind = {b"text": b"text_delta", b"thinking": b"thinking_delta"}.get(
            field, b"input_json_delta"
        )
        prefix = self.event_prefix("content_block_delta") + (
            b'{"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":'
            % (index, kind, field)
        )
        suffix = b"}}" + self.eol * 2
        yield from token_events(timeline, [pieces], count, [prefix], [suffix])
        if last_delta is not None:
            delta = {"type": "content_block_delta", "index": index, "delta": last_delta}
            yield timeline.now, self.event("content_block_delta", dumps(delta))
        stop = b'{"type":"content_block_stop","index":%d}' % index
        yield timeline.now, self.event("content_block_stop", stop)


# --------------------------------------------------------------------------- Ollama

_OLLAMA_MIDSTREAM_ERROR = b'{"error":"an error was encountered while running the model"}'


class OllamaDialect(Dialect):
    """``POST /api/chat``: Ollama's native chat (NDJSON)."""

    request_id_header = None

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        model = model_of(body, config)
        messages = as_messages(body.get("messages"))
        options = body.get("options")
        if options is not None and not isinstance(options, dict):
            raise BadRequest("Invalid 'options': expected an object.", "options")
        limit = (options or {}).get("num_predict")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise BadRequest("Invalid 'options.num_predict': expected an integer.", "options")
        think = body.get("think")
        thinking = think is True or think in ("low", "medium", "high")
        return Prompt(
            model=model,
            messages=messages,
            stream=body.get("stream", True) is not False,
            max_tokens=limit if limit is not None and limit >= 1 else None,
            tool=tool_trigger(body.get("tools"), messages),
            thinking=config.thinking_tokens if thinking else 0,
        )

    def error(
        self, status: int, message: str, *, kind: str, param: str | None = None
    ) -> web.Response:
        return json_response(status, {"error": message})

    def status_error(self, status: int) -> web.Response:
        messages = {
            429: "too many requests",
            500: "an error was encountered while running the model",
        }
        return self.error(status, messages.get(status, f"injected error: HTTP {status}"), kind="")

    def unauthorized_error(self, presented: bool) -> web.Response:
        return self.error(401, "unauthorized", kind="")

    def whole(self, prompt: Prompt, answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text()}
        if answer.thinking:
            message["thinking"] = answer.thinking_text()
        if answer.tool is not None:
            message["tool_calls"] = _ollama_calls(answer.tool)
        return {
            "model": answer.model,
            "created_at": _rfc3339(time.time()),
            "message": message,
            "done": True,
            **_ollama_final(answer),
        }

    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> OllamaEncoder:
        return OllamaEncoder(answer, eol)


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ollama_calls(tool: ToolCall) -> list[dict[str, Any]]:
    function = {"index": 0, "name": tool.name, "arguments": tool.arguments}
    return [{"id": tool.id("call_", 8), "function": function}]


def _ollama_final(answer: Answer) -> dict[str, Any]:
    """``done_reason``, counts and durations (ns) of the last line."""
    total = max(time.perf_counter_ns() - answer.started_ns, 4)
    prompt_eval = total // 4
    return {
        "done_reason": "length" if answer.stop == "length" else "stop",
        "total_duration": total,
        "load_duration": 0,
        "prompt_eval_count": answer.prompt_tokens,
        "prompt_eval_duration": prompt_eval,
        "eval_count": answer.output_tokens,
        "eval_duration": total - prompt_eval,
    }


class OllamaEncoder(StreamEncoder):
    """Ollama NDJSON lines (``line_endings`` sets the line terminator)."""

    content_type = "application/x-ndjson"

    def __init__(self, answer: Answer, eol: bytes) -> None:
        super().__init__(eol)
        self._answer = answer
        self._head = b'{"model":%s,"created_at":"%s","message":{"role":"assistant","content":' % (
            dumps(answer.model),
            _rfc3339(time.time()).encode(),
        )

    @property
    def garbage(self) -> bytes:
        return b"this is not json" + self.eol

    @property
    def keepalive(self) -> bytes | None:
        return None

    @property
    def endless(self) -> bytes:
        return b'{"x":"'

    def error(self, index: int) -> Sequence[bytes]:
        return (_OLLAMA_MIDSTREAM_ERROR + self.eol,)

    def events(self, timeline: Timeline, *, done: bool) -> Iterator[tuple[float, bytes]]:
        answer, head = self._answer, self._head
        more = b'},"done":false}' + self.eol
        if answer.thinking:
            streams = [answer.iter_thinking()]
            yield from token_events(
                timeline, streams, answer.thinking, [head + b'"","thinking":'], [more]
            )
        yield from token_events(timeline, [answer.iter_tokens(0)], answer.tokens, [head], [more])
        if answer.tool is not None:
            calls = dumps(_ollama_calls(answer.tool))
            yield timeline.tick(), head + b'"","tool_calls":' + calls + more
        if done:
            yield timeline.now, self._last_line()

    def _last_line(self) -> bytes:
        final = dumps({"done": True, **_ollama_final(self._answer)})
        return self._head + b'""},' + final[1:] + self.eol


async def ollama_tags(request: web.Request) -> web.Response:
    """``GET /api/tags``: the configured model."""
    config = request.app[CONFIG_KEY]
    denied = OLLAMA_CHAT.unauthorized(request, config)
    if denied is not None:
        return denied
    details = {
        "parent_model": "",
        "format": "gguf",
        "family": "rxgpt",
        "families": ["rxgpt"],
        "parameter_size": "0B",
        "quantization_level": "none",
    }
    model = {
        "name": config.model,
        "model": config.model,
        "modified_at": "2025-01-01T00:00:00Z",
        "size": 0,
        "digest": hashlib.sha256(config.model.encode()).hexdigest(),
        "details": details,
    }
    return json_response(200, {"models": [model]})


async def ollama_version(request: web.Request) -> web.Response:
    """``GET /api/version``."""
    return json_response(200, {"version": OLLAMA_VERSION})


OPENAI_RESPONSES = ResponsesDialect()
ANTHROPIC_MESSAGES = AnthropicDialect()
OLLAMA_CHAT = OllamaDialect()
