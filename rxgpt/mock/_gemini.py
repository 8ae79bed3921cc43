"""The mock's Google Gemini dialect (``POST /v1beta/models/{model}:...``).

Methods: ``:streamGenerateContent?alt=sse`` (``data:`` SSE with CRLF line ends, no end
signal: the last chunk carries ``finishReason``), ``:streamGenerateContent`` without
``alt=sse`` (one JSON array streamed element by element, as Gemini does) and
``:generateContent`` (one JSON object), ``:countTokens`` (``totalTokens``: the prompt tokens
an answer's usage reports). Every chunk is a whole ``GenerateContentResponse``:
the parts of this step only, and the cumulative ``usageMetadata``.

The body: ``contents`` (``role`` ``user`` / ``model``, text ``parts``), ``systemInstruction``
(a leading system message), ``generationConfig`` (``maxOutputTokens`` -> ``MAX_TOKENS``,
``candidateCount``, ``thinkingConfig.includeThoughts`` -> ``thought: true`` parts before the
text), ``tools[].functionDeclarations`` (a tool call is one whole ``functionCall`` part, the
finish reason stays ``STOP``). Keys: ``x-goog-api-key`` or ``?key=``. Errors:
``{"error": {"code", "message", "status"}}`` with the gRPC status name; the in-band error is
the unframed, pretty-printed JSON error object Gemini is seen to send mid-stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from aiohttp import web

from ._dialect import (
    MAX_N,
    Answer,
    BadRequest,
    Dialect,
    MockConfig,
    Prompt,
    SseEncoder,
    StepClock,
    counted,
    model_of,
    positive_int,
    response_schema,
    serve,
    stop_sequences,
    tool_schemas,
    tool_trigger,
)
from ._faults import LINE_ENDINGS, FaultOptions, json_response
from ._text import dumps

__all__ = [
    "GEMINI_ARRAY",
    "GEMINI_SSE",
    "GEMINI_WHOLE",
    "MODEL_KEY",
    "GeminiArrayEncoder",
    "GeminiDialect",
    "GeminiEncoder",
    "gemini_error",
    "gemini_route",
]

MODEL_KEY = web.RequestKey("rxgpt_gemini_model", str)  # the model named by the URL
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool": "STOP"}
_STATUS_NAMES: Mapping[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_STATUS_MESSAGES: Mapping[int, str] = {
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}


def gemini_error(status: int, message: str) -> web.Response:
    """Gemini's error answer: ``{"error": {"code", "message", "status"}}``."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }
    return web.Response(
        status=status,
        text=json.dumps(body, indent=2) + "\n",
        content_type="application/json",
        charset="UTF-8",
    )


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conversation of a Gemini body as chat messages (the text is a function of it)."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction")
    if system is not None:
        messages.append({"role": "system", "content": _text(system, "systemInstruction")})
    for content in contents:
        if not isinstance(content, dict):
            raise BadRequest("Invalid JSON payload received. 'contents' must hold objects.")
        role = "assistant" if content.get("role") == "model" else content.get("role", "user")
        messages.append({"role": role, "content": _text(content, "contents")})
    return messages


def _text(content: Any, name: str) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        raise BadRequest(f"* GenerateContentRequest.{name}.parts: must be a list of parts")
    texts = [part.get("text") for part in parts if isinstance(part, dict)]
    return "".join(text for text in texts if isinstance(text, str))


def _json_name(name: str) -> str:
    """A field's proto name (``max_output_tokens``) as its JSON name (``maxOutputTokens``)."""
    head, *words = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in words)


def _message(value: Any) -> Any:
    """A request message (an object) with its fields under their JSON names.

    Gemini parses requests with protobuf's JSON mapping, which accepts a field's proto
    name too (``generation_config``, ``max_output_tokens``): clients such as litellm send
    those. The one place the mock reads either spelling; anything else is returned as is.
    """
    if not isinstance(value, dict):
        return value
    return {_json_name(key) if "_" in key else key: item for key, item in value.items()}


def _schema(schema: Any) -> Any:
    """Gemini's ``Schema`` (OpenAPI-style, ``"type": "OBJECT"``, either field spelling) as
    JSON Schema; the property names under ``properties`` are the caller's, kept as sent."""
    if isinstance(schema, list):
        return [_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = _message(schema)
    for key, value in out.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _schema(sub) for name, sub in value.items()}
        else:
            out[key] = _schema(value)
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
    return out


def _tool_choice(config: Any) -> tuple[str, str | None]:
    """``toolConfig.functionCallingConfig`` (``mode`` AUTO / ANY / NONE) as a tool choice."""
    calling = (
        _message(_message(config).get("functionCallingConfig"))
        if isinstance(config, dict)
        else None
    )
    if not isinstance(calling, dict):
        return "auto", None
    mode = str(calling.get("mode", "AUTO")).upper()
    allowed = calling.get("allowedFunctionNames")
    named = allowed[0] if isinstance(allowed, list) and allowed else None
    if mode == "ANY":
        return "required", named if isinstance(named, str) else None
    return ("none", None) if mode == "NONE" else ("auto", None)


def _tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The function declarations offered, as chat-style ``tools`` entries."""
    out: list[dict[str, Any]] = []
    tools = body.get("tools")
    if not isinstance(tools, list):
        return out
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        declarations = _message(tool).get("functionDeclarations")
        for declaration in declarations if isinstance(declarations, list) else []:
            declaration = _message(declaration)
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                schema = declaration.get("parametersJsonSchema")
                if not isinstance(schema, dict):
                    schema = _schema(declaration.get("parameters", {}))
                function = {"name": declaration["name"], "parameters": schema}
                out.append({"type": "function", "function": function})
    return out


class GeminiDialect(Dialect):
    """One Gemini method: ``mode`` ``"sse"``, ``"array"`` (a streamed JSON array) or
    ``"whole"`` (``generateContent``)."""

    request_id_header = None
    content_types: ClassVar[Mapping[str, str]] = {
        "sse": "text/event-stream",
        "array": "application/json; charset=UTF-8",
    }

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        raise NotImplementedError("Gemini requests are parsed with parse_request")

    def parse_request(self, request: web.Request, body: Any, config: MockConfig) -> Prompt:
        if not isinstance(body, dict):
            raise BadRequest("Invalid JSON payload received. Expected an object.")
        model = request.get(MODEL_KEY) or model_of({}, config)
        body = _message(body)
        messages = _messages(body)
        generation = _message(body.get("generationConfig")) or {}
        if not isinstance(generation, dict):
            raise BadRequest("Invalid JSON payload received. 'generationConfig' is not an object.")
        try:
            limit = positive_int(generation, "maxOutputTokens")
            n = positive_int(generation, "candidateCount", upper=MAX_N) or 1
        except BadRequest as exc:
            raise BadRequest(f"* GenerateContentRequest.generation_config: {exc.message}") from None
        thinking = _message(generation.get("thinkingConfig")) or {}
        include = isinstance(thinking, dict) and thinking.get("includeThoughts") is True
        budget = thinking.get("thinkingBudget") if isinstance(thinking, dict) else None
        thoughts = config.thinking_tokens
        if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 0:
            thoughts = min(thoughts, budget)  # (0 turns thinking off; -1: the model decides)
        tools = _tools(body)
        schema = generation.get("responseJsonSchema", generation.get("responseSchema"))
        structured = None
        if isinstance(schema, dict):
            structured = schema if "responseJsonSchema" in generation else _schema(schema)
        elif generation.get("responseMimeType") == "application/json":
            structured = response_schema({"type": "json_object"})
        seed = generation.get("seed")
        return Prompt(
            model=model,
            messages=messages,
            stream=self.mode != "whole",
            max_tokens=limit,
            n=n,
            tool=tool_trigger(tools, messages),
            thinking=thoughts if include else 0,
            body=body,
            first_tool=tools[0]["function"]["name"] if tools else None,
            tools=tool_schemas(tools),
            tool_choice=_tool_choice(body.get("toolConfig")),
            stop=stop_sequences(generation.get("stopSequences")),
            response_schema=structured,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            enum_text=generation.get("responseMimeType") == "text/x.enum",
        )

    def parse_counted(self, request: web.Request, body: Any, config: MockConfig) -> Prompt:
        """``:countTokens``: ``contents``, or a whole ``generateContentRequest``."""
        if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
            body = body["generateContentRequest"]
        return self.parse_request(request, body, config)

    def credentials(self, request: web.Request) -> list[str]:
        keys = [request.headers.get("x-goog-api-key"), request.query.get("key")]
        return [key for key in keys if key is not None] + super().credentials(request)

    def error(
        self, status: int, message: str, *, kind: str, param: str | None = None
    ) -> web.Response:
        return gemini_error(status, message)

    def status_error(self, status: int) -> web.Response:
        message = _STATUS_MESSAGES.get(status, f"Injected error: HTTP {status} (rxgpt mock).")
        return gemini_error(status, message)

    def unauthorized_error(self, presented: bool) -> web.Response:
        if presented:
            return gemini_error(400, "API key not valid. Please pass a valid API key.")
        return gemini_error(
            403,
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to call "
            "this API.",
        )

    def eol(self, faults: FaultOptions) -> bytes:
        return LINE_ENDINGS[faults.line_endings or "crlf"]

    def whole(self, prompt: Prompt, answer: Answer) -> dict[str, Any]:
        candidates = []
        for index in range(answer.n):
            parts: list[dict[str, Any]] = []
            if answer.thinking:
                parts.append({"text": answer.thinking_text(), "thought": True})
            if answer.has_text:
                parts.append({"text": answer.text(index)})
            if answer.tool is not None:
                parts.append({"functionCall": _call(answer)})
            candidates.append(
                {
                    "content": {"parts": parts, "role": "model"},
                    "finishReason": _FINISH[answer.stop],
                    "index": index,
                }
            )
        return {
            "candidates": candidates,
            "usageMetadata": _usage(answer, _candidate_tokens(answer), _thought_tokens(answer)),
            "modelVersion": answer.model,
            "responseId": _response_id(answer),
        }

    def whole_response(self, prompt: Prompt, answer: Answer) -> web.Response:
        return json_response(200, self.whole(prompt, answer))

    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> GeminiEncoder:
        if self.mode == "array":
            return GeminiArrayEncoder(answer, eol)
        return GeminiEncoder(answer, eol)


def _response_id(answer: Answer) -> str:
    return answer.make_id("", 22, salt="gemini")


def _call(answer: Answer) -> dict[str, Any]:
    assert answer.tool is not None
    return {"name": answer.tool.name, "args": answer.tool.arguments}


def _thought_tokens(answer: Answer) -> int:
    """Thinking tokens over the candidates (each candidate carries its thought)."""
    return answer.thinking * answer.n


def _candidate_tokens(answer: Answer) -> int:
    """Output tokens over the candidates, their thoughts not included."""
    return answer.output_tokens - _thought_tokens(answer)


def _usage(answer: Answer, candidates: int, thoughts: int) -> dict[str, Any]:
    """``usageMetadata`` with ``candidates`` and ``thoughts`` tokens so far."""
    usage: dict[str, Any] = {"promptTokenCount": answer.prompt_tokens}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = answer.prompt_tokens + candidates + thoughts
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": answer.prompt_tokens}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


class GeminiEncoder(SseEncoder):
    """Gemini chunks: SSE ``data:`` events, or the elements of one streamed JSON array."""

    content_type: ClassVar[str] = "text/event-stream"
    _array: ClassVar[bool] = False

    def __init__(self, answer: Answer, eol: bytes) -> None:
        super().__init__(eol)
        self._answer = answer
        self._tail = b',"modelVersion":%s,"responseId":"%s"}' % (
            dumps(answer.model),
            _response_id(answer).encode(),
        )
        self._first = True

    def garbage(self, index: int) -> bytes:
        # (in place of event `index`, framed as it was: the array's first element opens it)
        if self._array:
            return (b"[" if index == 0 else b"," + self.eol) + b"this is not json"
        return self._frame(b"this is not json")

    def error(self, index: int) -> Sequence[bytes]:
        body = {
            "error": {
                "code": 500,
                "message": _STATUS_MESSAGES[500],
                "status": "INTERNAL",
            }
        }
        text = json.dumps(body, indent=2).replace("\n", self.eol.decode())
        return ((text + self.eol.decode()).encode(),)

    def _frame(self, payload: bytes) -> bytes:
        if not self._array:
            return b"data: " + payload + self.eol * 2
        if self._first:
            self._first = False
            return b"[" + payload
        return b"," + self.eol + payload

    def _chunk(
        self, parts: Sequence[bytes], candidates: int, finish: bool, thoughts: int | None = None
    ) -> bytes:
        """One chunk: ``parts[i]`` (the parts JSON of candidate i), usage so far (the
        thoughts all out unless ``thoughts`` says)."""
        answer = self._answer
        entries = []
        for index, part in enumerate(parts):
            reason = b',"finishReason":"%s"' % _FINISH[answer.stop].encode() if finish else b""
            entries.append(
                b'{"content":{"parts":[%s],"role":"model"}%s,"index":%d}' % (part, reason, index)
            )
        if thoughts is None:
            thoughts = _thought_tokens(answer)
        usage = dumps(_usage(answer, candidates, thoughts))
        return self._frame(
            b'{"candidates":[' + b",".join(entries) + b'],"usageMetadata":' + usage + self._tail
        )

    def events(self, clock: StepClock, *, done: bool) -> Iterator[tuple[float, bytes]]:
        answer = self._answer
        choices = range(answer.n)
        if answer.thinking:
            thought = 0
            for piece in clock.chunks(answer.iter_thinking()):
                thought = min(thought + clock.group, answer.thinking)
                part = b'{"text":%s,"thought":true}' % dumps(piece)
                chunk = self._chunk([part] * answer.n, 0, False, thought * answer.n)
                yield clock.tick(), chunk
        streams = [clock.chunks(answer.iter_tokens(index)) for index in choices]
        produced = 0
        group = clock.group
        for pieces in zip(*streams, strict=True):
            produced = min(produced + group, answer.tokens)
            parts = [b'{"text":%s}' % dumps(piece) for piece in pieces]
            yield clock.tick(), self._chunk(parts, produced * answer.n, False)
        text_tokens = _candidate_tokens(answer)
        if answer.tool is not None:
            call = b'{"functionCall":%s}' % dumps(_call(answer))
            yield clock.tick(), self._chunk([call] * answer.n, text_tokens, False)
        if done:
            yield clock.now, self._chunk([b'{"text":""}'] * answer.n, text_tokens, True)
            if self._array:
                yield clock.now, self.eol + b"]"


class GeminiArrayEncoder(GeminiEncoder):
    """``streamGenerateContent`` without ``alt=sse``: one JSON array, element by element."""

    content_type: ClassVar[str] = "application/json; charset=UTF-8"
    _array: ClassVar[bool] = True

    @property
    def keepalive(self) -> bytes | None:
        return None


GEMINI_SSE = GeminiDialect("sse")
GEMINI_ARRAY = GeminiDialect("array")
GEMINI_WHOLE = GeminiDialect("whole")

_METHODS = {"streamGenerateContent", "generateContent", "countTokens"}


async def gemini_route(request: web.Request) -> web.StreamResponse:
    """``POST /v1beta/models/{model}:{method}`` (or ``/v1/``): dispatch to the method's
    dialect."""
    target = request.match_info["target"]
    model, sep, method = target.rpartition(":")
    if not sep or not model or method not in _METHODS:
        return gemini_error(404, f"Method not found: models/{target}")
    request[MODEL_KEY] = model
    if method == "countTokens":
        return await counted(request, GEMINI_WHOLE, _token_count)
    if method == "generateContent":
        dialect = GEMINI_WHOLE
    else:
        dialect = GEMINI_SSE if request.query.get("alt") == "sse" else GEMINI_ARRAY
    return await serve(request, dialect)


def _token_count(tokens: int) -> dict[str, Any]:
    """``:countTokens``' answer."""
    return {
        "totalTokens": tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}],
    }
