"""What every dialect (wire protocol) of the mock server shares: settings, requests, answers, flow.

Each wire protocol is a :class:`Dialect`: it parses its request body into a neutral
:class:`Prompt`, shapes errors in its own envelope, renders a whole answer, and makes a
:class:`StreamEncoder` that plans the streamed answer as ``(due, event bytes)`` pairs. The flow
around them (API key, JSON body, fault options, injected statuses, waiting for a whole answer,
preparing the streamed response and pumping it with faults) is :func:`serve`, the same for all.
API keys are compared, never logged or echoed.

Strategy: ``due`` is the time in seconds after the start of the request at which the event may
go out. Everything constant in a chunk (the ``id``/``created``/``model`` header, the per-choice
prefix, the suffix and the line ends) is encoded once per request, and token texts have cached
JSON encodings, so a content chunk costs one bytes concatenation. The pump
(:func:`rxgpt.mock._faults.pump`) writes ONE event per ``response.write`` (as real LLM servers
do) and sleeps only when an event is not due yet, against absolute deadlines (``loop.time()``),
so delays do not drift and zero delays never sleep.

The answer (:class:`Answer`) is protocol-neutral: optional thinking tokens, the text tokens of
each choice (from :mod:`rxgpt.mock._text`, so the same conversation gives the same text on
every endpoint, streamed or not), and an optional tool call. Its ``stop`` is ``"stop"``,
``"length"`` (the request's token cap cut the text) or ``"tool"``; each dialect maps it to its
own finish reason.

Triggers (the same on every endpoint that supports them):

* tool call: the request offers ``tools`` and its LAST message is a user message whose text
  contains the word "weather" (any case). The call is to the first tool, with the arguments
  :data:`TOOL_ARGUMENTS`, after the text, unless the token cap cut the text. A tool result
  as the last message (a ``tool`` message, a ``tool_result`` block, a
  ``function_call_output`` item) therefore gets a plain text answer.
* thinking: asked per protocol (Anthropic ``thinking``, Ollama ``think``); the thinking text is
  :attr:`MockConfig.thinking_tokens` tokens from the same generator with another seed, sent
  before the text, and does not count against the token cap.

The last section holds what OpenAI's chat and legacy completions dialects share (their
``data:`` chunks, usage and finish reasons).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from aiohttp import web

from ._faults import FaultOptions, error_body, json_response, pump, status_error
from ._text import (
    content_texts,
    count_prompt_tokens,
    derived_id,
    dumps,
    encode_token,
    iter_tokens,
    request_digest,
)

__all__ = [
    "CONFIG_KEY",
    "COUNTERS_KEY",
    "JSON_NULL",
    "MAX_N",
    "OPENAI_FINISH_REASONS",
    "SERVER_ERROR_MESSAGE",
    "TOOL_ARGUMENTS",
    "Answer",
    "BadRequest",
    "Dialect",
    "MockConfig",
    "OpenAIChunks",
    "Prompt",
    "SseEncoder",
    "Stop",
    "StreamEncoder",
    "Timeline",
    "ToolCall",
    "as_messages",
    "handler",
    "make_answer",
    "model_of",
    "openai_finish",
    "openai_stream_flags",
    "openai_usage",
    "positive_int",
    "serve",
    "token_events",
    "tool_trigger",
]

TOOL_ARGUMENTS: Mapping[str, Any] = {"city": "Paris", "unit": "celsius"}
"""The arguments of every mock tool call (a deterministic object)."""
_TOOL_FRAGMENT_CHARS = 7  # streamed tool arguments come in fragments of this many characters
_THINKING_CHOICE = -1  # the seed "choice" of the thinking text (answers use 0, 1, ...)
_WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)
SERVER_ERROR_MESSAGE = "The server had an error while processing your request."
"""The message of the in-band (mid-stream) server errors of OpenAI's streams."""
_SERVER_ERROR_EVENT = dumps(error_body(SERVER_ERROR_MESSAGE, "server_error", code=None))

Stop = Literal["stop", "length", "tool"]


@dataclass
class MockConfig:
    """Server-wide settings of the mock.

    Attributes:
        tokens: completion tokens per answer (per choice), before ``max_tokens`` caps it.
        ttft_ms: delay before the first content token (time to first token).
        itl_ms: delay between consecutive tokens (inter-token latency).
        model: the model listed by ``/v1/models`` and used when a request names none.
        api_key: when set, requests must send ``Authorization: Bearer <api_key>`` (else 401;
            ``/v1/messages`` also takes ``x-api-key``).
        faults: default fault options (see :mod:`rxgpt.mock._faults`); a request's ``"mock"``
            object overrides them key by key.
        thinking_tokens: tokens of the thinking text, when a request asks for thinking.
    """

    tokens: int = 64
    ttft_ms: float = 0
    itl_ms: float = 0
    model: str = "rxgpt-mock"
    api_key: str | None = field(default=None, repr=False)
    faults: dict[str, Any] = field(default_factory=dict)
    thinking_tokens: int = 16


CONFIG_KEY = web.AppKey("rxgpt_mock_config", MockConfig)
COUNTERS_KEY = web.AppKey("rxgpt_mock_counters", dict[str, int])


class BadRequest(Exception):
    """A request the server answers with 400 (``param`` names the offending field)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Prompt:
    """A parsed request, whatever its protocol: what shapes the answer.

    Attributes:
        model: the requested model (or the configured one).
        messages: the conversation that the answer is a function of (chat-style messages;
            for several legacy prompts, the list of their conversations).
        stream: whether to stream the answer.
        max_tokens: the cap on text tokens per choice, if any.
        n: choices per conversation.
        include_usage: OpenAI ``stream_options.include_usage``.
        tool: the name of the tool to call (when the tool trigger fired), else ``None``.
        thinking: thinking tokens to send before the text (0: none).
        prompts: legacy completions with several prompts: one conversation per prompt.
        body: the request body, for fields a protocol echoes back.
    """

    model: str
    messages: list[Any]
    stream: bool
    max_tokens: int | None = None
    n: int = 1
    include_usage: bool = False
    tool: str | None = None
    thinking: int = 0
    prompts: tuple[list[Any], ...] = ()
    body: Mapping[str, Any] = field(default_factory=dict)


def positive_int(body: Mapping[str, Any], name: str, *, upper: int | None = None) -> int | None:
    """``body[name]`` as an int >= 1 (``None`` when absent).

    Raises:
        BadRequest: the value is not an integer in range.
    """
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"Invalid '{name}': expected an integer >= 1.", name)
    if upper is not None and value > upper:
        raise BadRequest(f"Invalid '{name}': expected at most {upper}.", name)
    return value


def model_of(body: Any, config: MockConfig) -> str:
    """The requested model, or the configured one (raises :class:`BadRequest`)."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = body.get("model", config.model)
    if not isinstance(model, str):
        raise BadRequest("Invalid 'model': expected a string.", "model")
    return model


def as_messages(value: Any, name: str = "messages") -> list[Any]:
    """A non-empty list of objects (raises :class:`BadRequest` naming ``name``)."""
    if not isinstance(value, list) or not value:
        raise BadRequest(f"Missing required parameter: '{name}'.", name)
    if not all(isinstance(message, dict) for message in value):
        raise BadRequest(f"Invalid '{name}': expected a list of objects.", name)
    return value


def tool_trigger(tools: Any, messages: Sequence[Any]) -> str | None:
    """The first tool's name when the tool trigger fires (see the module docstring)."""
    if not isinstance(tools, list) or not tools or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, Mapping) or last.get("role") != "user":
        return None
    if not any(_WEATHER.search(text) for text in content_texts(last.get("content"))):
        return None
    first = tools[0]
    if not isinstance(first, Mapping):
        return None
    function = first.get("function")
    name = first.get("name") or (function.get("name") if isinstance(function, Mapping) else None)
    return name if isinstance(name, str) and name else None


def parse_faults(body: Any, config: MockConfig) -> FaultOptions:
    """Merge ``config.faults`` with the request's ``mock`` object and validate the result."""
    options = body.get("mock") if isinstance(body, dict) else None
    if options is not None and not isinstance(options, dict):
        raise BadRequest("Invalid 'mock': expected an object.", "mock")
    try:
        return FaultOptions.parse({**config.faults, **(options or {})})
    except ValueError as exc:
        raise BadRequest(str(exc), "mock") from None


async def read_json(request: web.Request) -> Any:
    """The request's JSON body (raises :class:`BadRequest`)."""
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The API expects a JSON payload.)"
        ) from None


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The mock's tool call: to ``name``, with :data:`TOOL_ARGUMENTS`."""

    name: str
    digest: str

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(TOOL_ARGUMENTS)

    def arguments_json(self, *, spaced: bool = False) -> str:
        """The arguments as JSON text: compact (OpenAI) or with spaces (Anthropic)."""
        separators = (", ", ": ") if spaced else (",", ":")
        return json.dumps(TOOL_ARGUMENTS, separators=separators)

    def fragments(self, *, spaced: bool = False) -> list[str]:
        """The arguments JSON cut in the fragments that a stream sends one by one."""
        text = self.arguments_json(spaced=spaced)
        size = _TOOL_FRAGMENT_CHARS
        return [text[i : i + size] for i in range(0, len(text), size)]

    @property
    def tokens(self) -> int:
        """Output tokens the call costs (one per fragment)."""
        return len(self.fragments())

    def id(self, prefix: str, length: int = 24, choice: int = 0) -> str:
        """A deterministic call id (``call_…``, ``toolu_…``)."""
        return derived_id(prefix, self.digest, salt=f"tool#{choice}", length=length)


@dataclass(frozen=True, slots=True)
class Answer:
    """The neutral answer to a :class:`Prompt`; tokens are generated lazily while streamed.

    ``sources[i]`` is ``(conversation, seed choice)`` of output choice ``i``; ``started_ns``
    is the ``perf_counter_ns()`` when the answer began (for measured durations).
    """

    digest: str
    created: int
    model: str
    sources: tuple[tuple[Any, int], ...]
    tokens: int
    stop: Stop
    prompt_tokens: int
    thinking: int = 0
    tool: ToolCall | None = None
    started_ns: int = field(default_factory=time.perf_counter_ns)

    @property
    def n(self) -> int:
        """The number of output choices."""
        return len(self.sources)

    @property
    def steps(self) -> int:
        """Token events of one choice: thinking, text and tool fragments."""
        return self.thinking + self.tokens + (self.tool.tokens if self.tool else 0)

    @property
    def output_tokens(self) -> int:
        """Output tokens summed over the choices."""
        return self.n * self.steps

    def iter_tokens(self, choice: int) -> Iterator[str]:
        """The text tokens of choice ``choice``."""
        messages, seed = self.sources[choice]
        return iter_tokens(messages, self.model, self.tokens, seed)

    def text(self, choice: int = 0) -> str:
        """The whole text of choice ``choice``."""
        return "".join(self.iter_tokens(choice))

    def iter_thinking(self) -> Iterator[str]:
        """The thinking tokens (of the first conversation)."""
        return iter_tokens(self.sources[0][0], self.model, self.thinking, _THINKING_CHOICE)

    def thinking_text(self) -> str:
        return "".join(self.iter_thinking())

    def make_id(self, prefix: str, length: int = 24, *, salt: str = "", hex_: bool = False) -> str:
        """A deterministic id for this request (same conversation, same id)."""
        return derived_id(prefix, self.digest, salt=salt, length=length, hex_=hex_)


def make_answer(prompt: Prompt, config: MockConfig) -> Answer:
    """Generate the deterministic answer to ``prompt``."""
    count = max(config.tokens, 0)
    stop: Stop = "stop"
    if prompt.max_tokens is not None and prompt.max_tokens < count:
        count, stop = prompt.max_tokens, "length"
    digest = request_digest(prompt.messages, prompt.model)
    tool = None
    if prompt.tool is not None and stop == "stop":
        tool, stop = ToolCall(prompt.tool, digest), "tool"
    conversations = prompt.prompts or (prompt.messages,)
    return Answer(
        digest=digest,
        created=int(time.time()),
        model=prompt.model,
        sources=tuple((conv, choice) for conv in conversations for choice in range(prompt.n)),
        tokens=count,
        stop=stop,
        prompt_tokens=sum(count_prompt_tokens(conv) for conv in conversations),
        thinking=max(prompt.thinking, 0),
        tool=tool,
    )


# --------------------------------------------------------------------------- stream encoding


class Timeline:
    """Due times of a stream's events, in seconds after the request started.

    Token ``k`` (counted over thinking, text and tool fragments) is due at
    ``ttft + k * itl``; a structural event (a block start, a finish chunk) is due with the
    token before it (:attr:`now`, 0 before the first token), so it never waits on its own.
    """

    __slots__ = ("_itl", "_step", "_ttft", "now")

    def __init__(self, config: MockConfig) -> None:
        self._ttft, self._itl = config.ttft_ms / 1000, config.itl_ms / 1000
        self._step = 0
        self.now = 0.0

    def tick(self) -> float:
        """The due time of the next token."""
        self.now = due = self._ttft + self._step * self._itl
        self._step += 1
        return due


def token_events(
    timeline: Timeline,
    streams: Sequence[Iterable[str]],
    count: int,
    prefixes: Sequence[bytes],
    suffixes: Sequence[bytes],
    last_suffixes: Sequence[bytes] | None = None,
) -> Iterator[tuple[float, bytes]]:
    """Token events, round-robin over ``streams`` (one per choice, ``count`` tokens each).

    Event of stream ``i`` = ``prefixes[i] + token JSON + suffixes[i]``; the last token of each
    stream takes ``last_suffixes[i]`` instead when given (legacy completions put the finish
    reason there). Step ``k`` of every stream is due at the same time.
    """
    last = count - 1
    ends = last_suffixes or suffixes
    if len(streams) == 1:
        prefix, suffix, end = prefixes[0], suffixes[0], ends[0]
        for step, token in enumerate(streams[0]):
            yield timeline.tick(), prefix + encode_token(token) + (end if step == last else suffix)
        return
    for step, tokens in enumerate(zip(*streams, strict=True)):
        due = timeline.tick()
        tails = ends if step == last else suffixes
        for prefix, token, suffix in zip(prefixes, tokens, tails, strict=True):
            yield due, prefix + encode_token(token) + suffix


class StreamEncoder(ABC):
    """Plans one streamed answer in a wire protocol; also its :class:`~._faults.Framing`."""

    content_type: ClassVar[str] = "text/event-stream; charset=utf-8"

    def __init__(self, eol: bytes) -> None:
        self.eol = eol

    @abstractmethod
    def events(self, timeline: Timeline, *, done: bool) -> Iterator[tuple[float, bytes]]:
        """``(due, event bytes)`` for the whole stream; ``done=False`` omits the end signal."""

    @property
    @abstractmethod
    def garbage(self) -> bytes: ...

    @property
    @abstractmethod
    def keepalive(self) -> bytes | None: ...

    @property
    @abstractmethod
    def endless(self) -> bytes: ...

    @abstractmethod
    def error(self, index: int) -> Sequence[bytes]: ...


class SseEncoder(StreamEncoder):
    """Server-sent events; faults in OpenAI's style unless a subclass says otherwise."""

    @property
    def garbage(self) -> bytes:
        return b"data: this is not json" + self.eol * 2

    @property
    def keepalive(self) -> bytes | None:
        return b": keep-alive" + self.eol * 2

    @property
    def endless(self) -> bytes:
        return b'data: {"x":"'

    def error(self, index: int) -> Sequence[bytes]:
        return (self.data(_SERVER_ERROR_EVENT),)

    def data(self, payload: bytes) -> bytes:
        """An unnamed event."""
        return b"data: " + payload + self.eol * 2

    def event(self, name: str, payload: bytes) -> bytes:
        """A named event (``event:`` line, then ``data:``)."""
        return self.event_prefix(name) + payload + self.eol * 2

    def event_prefix(self, name: str) -> bytes:
        """A named event up to its data: ``event: NAME`` + eol + ``data: ``."""
        return b"event: " + name.encode() + self.eol + b"data: "


# --------------------------------------------------------------------------- dialects, flow


class Dialect(ABC):
    """One wire protocol: parsing, errors, whole answers and stream encoders.

    Errors and the API key check default to OpenAI's (``Authorization: Bearer``, the
    ``{"error": {message, type, param, code}}`` envelope); other vendors override them.
    """

    request_id_header: ClassVar[str | None] = "X-Request-Id"

    @abstractmethod
    def parse(self, body: Any, config: MockConfig) -> Prompt:
        """Validate a request body (raises :class:`BadRequest`)."""

    @abstractmethod
    def whole(self, prompt: Prompt, answer: Answer) -> Mapping[str, Any]:
        """The non-streamed answer body."""

    @abstractmethod
    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> StreamEncoder:
        """The encoder of the streamed answer."""

    def error(
        self, status: int, message: str, *, kind: str, param: str | None = None
    ) -> web.Response:
        """An error answer in the protocol's envelope (``kind``: the error type)."""
        return json_response(status, error_body(message, kind, param=param))

    def status_error(self, status: int) -> web.Response:
        """The protocol's usual error answer for HTTP ``status``."""
        return status_error(status)

    def injected_error(self, faults: FaultOptions) -> web.Response:
        """The answer to a request that the ``status`` / ``fail_first`` options fail."""
        response = self.status_error(faults.status or 500)
        if faults.retry_after is not None:
            response.headers["Retry-After"] = f"{faults.retry_after:g}"
        return response

    def credentials(self, request: web.Request) -> list[str]:
        """The API keys the request presents (``Authorization: Bearer``)."""
        header = request.headers.get("Authorization", "")
        return [header.removeprefix("Bearer ")] if header.startswith("Bearer ") else []

    def unauthorized(self, request: web.Request, config: MockConfig) -> web.Response | None:
        """401 unless the request carries the configured API key (never echoed)."""
        if config.api_key is None:
            return None
        presented = self.credentials(request)
        return None if config.api_key in presented else self.unauthorized_error(bool(presented))

    def unauthorized_error(self, presented: bool) -> web.Response:
        """The 401 answer (``presented``: a key was sent, but the wrong one)."""
        message = (
            "Incorrect API key provided."
            if presented
            else "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
        )
        body = error_body(message, "invalid_request_error", code="invalid_api_key")
        return json_response(401, body)

    def request_id(self, answer: Answer) -> str:
        return "req_" + answer.digest[:29]


def handler(dialect: Dialect) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler serving ``dialect`` through :func:`serve`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve(request, dialect)

    return handle


async def serve(request: web.Request, dialect: Dialect) -> web.StreamResponse:
    """The flow of every answering endpoint: key, body, faults, then whole or streamed."""
    start = asyncio.get_running_loop().time()
    config = request.app[CONFIG_KEY]
    denied = dialect.unauthorized(request, config)
    if denied is not None:
        return denied
    try:
        body = await read_json(request)
        prompt = dialect.parse(body, config)
        faults = parse_faults(body, config)
    except BadRequest as exc:
        return dialect.error(400, exc.message, kind="invalid_request_error", param=exc.param)
    if faults.fails(request.app[COUNTERS_KEY]):
        return dialect.injected_error(faults)
    answer = make_answer(prompt, config)
    if not prompt.stream:
        await _wait_whole_answer(answer, config)
        return json_response(200, dialect.whole(prompt, answer))
    encoder = dialect.encoder(prompt, answer, faults.eol)
    response = web.StreamResponse(
        headers={"Content-Type": encoder.content_type, "Cache-Control": "no-cache"}
    )
    if dialect.request_id_header is not None:
        response.headers[dialect.request_id_header] = dialect.request_id(answer)
    if faults.gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.enable_chunked_encoding()
    await response.prepare(request)
    plan = encoder.events(Timeline(config), done=not faults.no_done)
    with contextlib.suppress(ConnectionError):
        await pump(request, response, plan, faults, start, encoder)
    return response


async def _wait_whole_answer(answer: Answer, config: MockConfig) -> None:
    """A non-streamed answer arrives when its last token would have."""
    delay = (config.ttft_ms + max(answer.steps - 1, 0) * config.itl_ms) / 1000
    if delay > 0:
        await asyncio.sleep(delay)


# --------------------------------------------------------------------------- OpenAI shared

MAX_N = 128  # OpenAI's limit on ``n``
OPENAI_FINISH_REASONS: Mapping[Stop, str] = {
    "stop": "stop",
    "length": "length",
    "tool": "tool_calls",
}
"""OpenAI's ``finish_reason`` for each :data:`Stop`."""
JSON_NULL = b"null"


def openai_finish(answer: Answer) -> bytes:
    """The JSON of the answer's finish reason."""
    return b'"%s"' % OPENAI_FINISH_REASONS[answer.stop].encode()


def openai_stream_flags(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """``(stream, stream_options.include_usage)`` of an OpenAI chat or completions body."""
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return body.get("stream") is True, include_usage


def openai_usage(answer: Answer) -> dict[str, int]:
    """OpenAI's basic usage object (prompt, completion and total tokens), over the choices."""
    completion = answer.output_tokens
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + completion,
    }


class OpenAIChunks(SseEncoder):
    """``data:`` chunks that share an ``id``/``object``/``created`` head, then ``[DONE]``."""

    def __init__(
        self, answer: Answer, *, chunk_id: str, obj: bytes, include_usage: bool, eol: bytes
    ) -> None:
        super().__init__(eol)
        self.answer = answer
        self.include_usage = include_usage
        self.head = b'data: {"id":"%s","object":"%s","created":%d,' % (
            chunk_id.encode(),
            obj,
            answer.created,
        )

    def tail(self, answer: Answer, usage: bytes, done: bool) -> Iterator[bytes]:
        """The usage chunk (``include_usage``) and ``[DONE]`` (``done``)."""
        if self.include_usage:
            yield usage
        if done:
            yield b"data: [DONE]" + self.eol * 2
