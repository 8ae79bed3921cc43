"""The mock's Anthropic Messages dialect (``POST /v1/messages``).

``system`` is a leading system message. SSE with named events: ``message_start``, per content
block ``content_block_start`` / ``content_block_delta``… / ``content_block_stop`` (a ``ping``
right after the first start), ``message_delta`` (``stop_reason`` ``end_turn``, ``max_tokens``
or ``tool_use``) and ``message_stop``. Blocks: ``thinking`` (``thinking_delta`` per token, then
a ``signature_delta``) when ``thinking.type`` is ``enabled`` or ``adaptive``, then ``text``,
then ``tool_use`` (``input_json_delta`` fragments, the first ``""``). Keep-alives are ``ping``
events; the in-band error is ``overloaded_error``. Keys come in ``x-api-key`` (or Bearer).
Tool and thinking triggers: see :mod:`rxgpt.mock._dialect`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from aiohttp import web

from ._dialect import (
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
    response_schema,
    stop_sequences,
    stream_flag,
    token_events,
    tool_schemas,
    tool_trigger,
)
from ._faults import json_response
from ._text import derived_id, dumps

__all__ = ["ANTHROPIC_MESSAGES", "AnthropicDialect", "AnthropicEncoder"]

_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool": "tool_use"}


def _stop_reason(answer: Answer) -> str:
    return "stop_sequence" if answer.stop_sequence else _ANTHROPIC_STOP[answer.stop]


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


def _output_format(body: Any) -> Any:
    """Structured outputs: ``output_config.format``, or the beta's ``output_format``
    (``{"type": "json_schema", "schema": ...}``; litellm sends the latter)."""
    config = body.get("output_config")
    if isinstance(config, dict) and config.get("format") is not None:
        return config["format"]
    return body.get("output_format")


def _check_messages(body: Mapping[str, Any], messages: list[Any]) -> None:
    """The Messages API's own checks of roles, ``system``, ``stop_sequences`` and
    ``thinking`` (raises :class:`BadRequest` in its words)."""
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "system":
            raise BadRequest(
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            raise BadRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise BadRequest("system: Input should be a valid string or a list of text blocks")
    stops = body.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) for s in stops)
    ):
        raise BadRequest("stop_sequences: Input should be a valid list of strings")
    thinking = body.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind not in ("enabled", "disabled", "adaptive"):
            raise BadRequest(
                "thinking: Input tag found using 'type' does not match any of the expected "
                "tags: 'enabled', 'disabled', 'adaptive'"
            )


class AnthropicDialect(Dialect):
    """``POST /v1/messages``."""

    request_id_header = "request-id"

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        return self._parse(body, config, counting=False)

    def parse_counted(self, request: web.Request, body: Any, config: MockConfig) -> Prompt:
        """``POST /v1/messages/count_tokens``: a Messages body without ``max_tokens``."""
        return self._parse(body, config, counting=True)

    def _parse(self, body: Any, config: MockConfig, *, counting: bool) -> Prompt:
        model = model_of(body, config)
        messages = as_messages(body.get("messages"))
        _check_messages(body, messages)
        system = body.get("system")
        conversation = (
            messages if system is None else [{"role": "system", "content": system}, *messages]
        )
        thinking = body.get("thinking")
        count = 0
        cap = positive_int(body, "max_tokens")
        if cap is None and not counting:  # (required by the API; the SDK always sends it)
            raise BadRequest("max_tokens: Field required", "max_tokens")
        tool_choice = parse_tool_choice(body.get("tool_choice"))
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            budget = positive_int(thinking, "budget_tokens")
            if thinking.get("type") == "enabled":  # (the API's own rules for a budget)
                if budget is None or budget < 1024:
                    raise BadRequest("thinking.enabled.budget_tokens: must be at least 1024")
                if cap is not None and budget >= cap:
                    raise BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
            if tool_choice[0] == "required":
                raise BadRequest("Thinking may not be enabled when tool_choice forces tool use.")
            count = min(config.thinking_tokens, budget or config.thinking_tokens)
        return Prompt(
            model=model,
            messages=conversation,
            stream=stream_flag(body),
            max_tokens=cap,
            tool=tool_trigger(body.get("tools"), messages),
            thinking=count,
            first_tool=first_tool_name(body.get("tools")),
            tools=tool_schemas(body.get("tools")),
            tool_choice=tool_choice,
            stop=stop_sequences(body.get("stop_sequences")),
            response_schema=response_schema(_output_format(body)),
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
        default = "invalid_request_error" if status < 500 else "api_error"
        kind, message = _ANTHROPIC_ERRORS.get(
            status, (default, f"Injected error: HTTP {status} (rxgpt mock).")
        )
        return self.error(status, message, kind=kind)

    def unauthorized_error(self, presented: bool) -> web.Response:
        if presented:
            return self.status_error(401)  # ("invalid x-api-key")
        return self.error(401, "x-api-key header is required", kind="authentication_error")

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
        if answer.has_text:
            content.append({"type": "text", "text": answer.text()})
        if answer.tool is not None:
            content.append(_tool_use(answer.tool, answer.tool.arguments))
        return _message(answer, content, _stop_reason(answer), answer.output_tokens)

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
        "stop_sequence": answer.stop_sequence if stop_reason else None,
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

    def garbage(self, index: int) -> bytes:
        # (named as a delta: an unnamed event, or one of an unknown name, the SDK skips unread)
        return self.event("content_block_delta", b"this is not json")

    def error(self, index: int) -> Sequence[bytes]:
        return (self.event("error", _OVERLOADED),)

    def events(self, clock: StepClock, *, done: bool) -> Iterator[tuple[float, bytes]]:
        answer = self._answer
        start = {"type": "message_start", "message": _message(answer, [], None, 1)}
        yield 0.0, self.event("message_start", dumps(start))
        index = 0
        if answer.thinking:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            signature = {"type": "signature_delta", "signature": _signature(answer)}
            yield from self._block(
                clock,
                index,
                block,
                b"thinking",
                answer.iter_thinking(),
                answer.thinking,
                signature,
            )
            index += 1
        if answer.has_text:
            text = {"type": "text", "text": ""}
            tokens = answer.iter_tokens(0)
            yield from self._block(clock, index, text, b"text", tokens, answer.tokens)
            index += 1
        if answer.tool is not None:
            fragments = ["", *answer.tool.fragments(spaced=True)]
            block = _tool_use(answer.tool, {})
            yield from self._block(clock, index, block, b"partial_json", fragments, len(fragments))
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(answer), "stop_sequence": answer.stop_sequence},
            "usage": {"output_tokens": answer.output_tokens},
        }
        yield clock.now, self.event("message_delta", dumps(delta))
        if done:
            yield clock.now, self.event("message_stop", b'{"type":"message_stop"}')

    def _block(
        self,
        clock: StepClock,
        index: int,
        block: Mapping[str, Any],
        field: bytes,
        pieces: Iterable[str],
        count: int,
        last_delta: Mapping[str, Any] | None = None,
    ) -> Iterator[tuple[float, bytes]]:
        """One content block: start (and the ping after the first), deltas, stop."""
        start = {"type": "content_block_start", "index": index, "content_block": block}
        yield clock.now, self.event("content_block_start", dumps(start))
        if index == 0:
            yield clock.now, self._ping
        kind = {b"text": b"text_delta", b"thinking": b"thinking_delta"}.get(
            field, b"input_json_delta"
        )
        prefix = self.event_prefix("content_block_delta") + (
            b'{"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":'
            % (index, kind, field)
        )
        suffix = b"}}" + self.eol * 2
        yield from token_events(clock, [pieces], count, [prefix], [suffix])
        if last_delta is not None:
            delta = {"type": "content_block_delta", "index": index, "delta": last_delta}
            yield clock.now, self.event("content_block_delta", dumps(delta))
        stop = b'{"type":"content_block_stop","index":%d}' % index
        yield clock.now, self.event("content_block_stop", stop)


ANTHROPIC_MESSAGES = AnthropicDialect()
