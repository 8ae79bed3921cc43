"""The mock's Ollama dialect: native chat (``POST /api/chat``), and its model and version routes.

NDJSON, streamed unless ``"stream": false``: one line per thinking token (``think`` true or a
level), one per text token, one with the whole ``tool_calls``, and a last ``done: true`` line
with ``done_reason`` (``stop`` or ``length`` when ``options.num_predict`` cut the text), counts
and durations (nanoseconds; the measured total, a quarter of it as prompt eval). In-band error:
an ``{"error": …}`` line, then the body ends. ``GET /api/tags`` lists the configured model,
``GET /api/version`` a version (:mod:`rxgpt.mock._models`). An empty prompt (no ``messages``)
loads the model, as Ollama answers it. Tool and thinking triggers: see :mod:`rxgpt.mock._dialect`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ._dialect import (
    Answer,
    BadRequest,
    Dialect,
    MockConfig,
    Prompt,
    StepClock,
    StreamEncoder,
    ToolCall,
    as_messages,
    first_tool_name,
    model_of,
    response_schema,
    stop_sequences,
    stream_flag,
    token_events,
    tool_schemas,
    tool_trigger,
)
from ._faults import json_response
from ._text import dumps
from ._timing import finite_number

__all__ = [
    "OLLAMA_CHAT",
    "OLLAMA_GENERATE",
    "OLLAMA_VERSION",
    "OllamaDialect",
    "OllamaEncoder",
]

OLLAMA_VERSION = "0.12.0"
_OLLAMA_MIDSTREAM_ERROR = b'{"error":"an error was encountered while running the model"}'


class OllamaDialect(Dialect):
    """``POST /api/chat`` (Ollama's native chat, NDJSON), or ``/api/generate`` (``generate``)."""

    request_id_header = None

    def __init__(self, *, generate: bool = False) -> None:
        self.generate = generate

    def _conversation(self, body: Mapping[str, Any]) -> list[Any]:
        if not self.generate:
            return as_messages(body.get("messages"))
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise BadRequest("Invalid 'prompt': expected a string.", "prompt")
        system = body.get("system")
        messages: list[Any] = [{"role": "user", "content": prompt}]
        if isinstance(system, str) and system:
            messages.insert(0, {"role": "system", "content": system})
        return messages

    def immediate(self, body: Any, config: MockConfig) -> Mapping[str, Any] | None:
        """An empty prompt (no ``messages``) loads the model, or unloads it with ``keep_alive``
        0: Ollama answers at once with one object, ``done_reason`` ``load`` / ``unload``."""
        if not isinstance(body, dict) or not body.get("model"):
            return None  # (parse says what is wrong)
        empty = body.get("prompt") if self.generate else body.get("messages")
        if empty not in (None, "", []):
            return None
        answer: dict[str, Any] = {
            "model": model_of(body, config),
            "created_at": _rfc3339(time.time()),
        }
        if self.generate:
            answer["response"] = ""
        else:
            answer["message"] = {"role": "assistant", "content": ""}
        unload = body.get("keep_alive") in (0, "0", "0s", "0m")
        return {**answer, "done": True, "done_reason": "unload" if unload else "load"}

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        model = model_of(body, config)
        if not body.get("model"):  # (Ollama names no default model)
            raise BadRequest("model is required", "model")
        messages = self._conversation(body)
        options = body.get("options")
        if options is not None and not isinstance(options, dict):
            raise BadRequest("Invalid 'options': expected an object.", "options")
        limit = (options or {}).get("num_predict")
        if limit is not None:
            if not finite_number(limit):
                raise BadRequest("Invalid 'options.num_predict': expected a number.", "options")
            limit = int(limit)  # (as Ollama reads a JSON number into an int option)
        think = body.get("think")
        thinking = think is True or think in ("low", "medium", "high")
        return Prompt(
            model=model,
            messages=messages,
            stream=stream_flag(body, default=True),
            max_tokens=limit if limit is not None and limit >= 1 else None,
            tool=None if self.generate else tool_trigger(body.get("tools"), messages),
            thinking=config.thinking_tokens if thinking else 0,
            first_tool=None if self.generate else first_tool_name(body.get("tools")),
            tools={} if self.generate else tool_schemas(body.get("tools")),
            stop=stop_sequences((options or {}).get("stop")),
            response_schema=_format_schema(body.get("format")),
            seed=_seed((options or {}).get("seed")),
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
        if self.generate:
            whole: dict[str, Any] = {
                "model": answer.model,
                "created_at": _rfc3339(time.time()),
                "response": answer.text(),
            }
            if answer.thinking:
                whole["thinking"] = answer.thinking_text()
            return {**whole, "done": True, **_ollama_final(answer)}
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
        return OllamaEncoder(answer, eol, generate=self.generate)


def _format_schema(value: Any) -> Mapping[str, Any] | None:
    """Ollama's ``format``: ``"json"`` or a JSON schema (structured output)."""
    if value == "json":
        return response_schema({"type": "json_object"})
    if isinstance(value, dict):
        return value
    return None


def _seed(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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
    cacheable = False  # the last line carries measured durations

    def __init__(self, answer: Answer, eol: bytes, *, generate: bool = False) -> None:
        super().__init__(eol)
        self._answer = answer
        self._generate = generate
        opening = b'"response":' if generate else b'"message":{"role":"assistant","content":'
        self._head = b'{"model":%s,"created_at":"%s",%s' % (
            dumps(answer.model),
            _rfc3339(time.time()).encode(),
            opening,
        )
        self._close = b"" if generate else b"}"

    def garbage(self, index: int) -> bytes:
        return b"this is not json" + self.eol

    @property
    def keepalive(self) -> bytes | None:
        return None

    @property
    def endless(self) -> bytes:
        return b'{"x":"'

    def error(self, index: int) -> Sequence[bytes]:
        return (_OLLAMA_MIDSTREAM_ERROR + self.eol,)

    def events(self, clock: StepClock, *, done: bool) -> Iterator[tuple[float, bytes]]:
        answer, head = self._answer, self._head
        more = self._close + b',"done":false}' + self.eol
        if answer.thinking:
            streams = [answer.iter_thinking()]
            yield from token_events(
                clock, streams, answer.thinking, [head + b'"","thinking":'], [more]
            )
        yield from token_events(clock, [answer.iter_tokens(0)], answer.tokens, [head], [more])
        if answer.tool is not None:
            calls = dumps(_ollama_calls(answer.tool))
            yield clock.tick(), head + b'"","tool_calls":' + calls + more
        if done:
            yield clock.now, self._last_line()

    def _last_line(self) -> bytes:
        final = dumps({"done": True, **_ollama_final(self._answer)})
        return self._head + b'""' + self._close + b"," + final[1:] + self.eol


OLLAMA_CHAT = OllamaDialect()
OLLAMA_GENERATE = OllamaDialect(generate=True)
