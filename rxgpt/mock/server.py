"""An embedded OpenAI-compatible streaming server, for tests, benchmarks and ``rxgpt chat``.

Routes: ``POST /v1/chat/completions`` (streamed or not), ``GET /v1/models``, ``GET /health``.
Answers are deterministic (see :mod:`rxgpt.mock.text`) and can carry injected faults (see
:mod:`rxgpt.mock.faults`).

Strategy: a streamed answer is planned as a sequence of ``(due, event bytes)`` pairs, where
``due`` is the time in seconds after the start of the request at which the event may go out.
Everything constant in a chunk (the ``id``/``created``/``model`` header, the per-choice
prefix, the suffix and the line ends) is encoded once per request, and token texts have cached
JSON encodings, so a content chunk costs one bytes concatenation. The pump writes ONE event
per ``response.write`` (as real LLM servers do) and sleeps only when an event is not due yet,
against absolute deadlines (``loop.time()``), so delays do not drift and zero delays never
sleep. Order of a stream (``n`` choices):

1. per choice, a role chunk (sent at once);
2. content chunks, round-robin over the choices, token by token (step ``k`` of every choice
   is due at ``ttft_ms + k * itl_ms``);
3. per choice, a finish chunk (``delta: {}``, ``finish_reason``);
4. with ``stream_options.include_usage``, a usage chunk with ``"choices": []``;
5. ``data: [DONE]``.

API keys are compared, never logged or echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from .faults import BodyWriter, FaultOptions, error_body, injected_error, json_response
from .text import completion_id, count_prompt_tokens, dumps, encode_token, iter_tokens

__all__ = ["MockConfig", "MockServer", "create_app", "run_server"]

SYSTEM_FINGERPRINT = "fp_rxgpt"
MODELS_CREATED = 1_700_000_000  # fixed, so /v1/models is byte-stable
MAX_N = 128  # OpenAI's limit on ``n``
MAX_BODY_BYTES = 64 * 1024 * 1024  # large prompts for benchmarks (aiohttp's default is 1 MiB)
_ENDLESS_BLOCK = b"a" * 16384
_STALL_POLL_S = 0.25  # how often a stall without keep-alives checks that the client is there
_SERVER_ERROR_EVENT = dumps(
    error_body("The server had an error while processing your request.", "server_error", code=None)
)


@dataclass
class MockConfig:
    """Server-wide settings of the mock.

    Attributes:
        tokens: completion tokens per answer (per choice), before ``max_tokens`` caps it.
        ttft_ms: delay before the first content token (time to first token).
        itl_ms: delay between consecutive tokens (inter-token latency).
        model: the model listed by ``/v1/models`` and used when a request names none.
        api_key: when set, requests must send ``Authorization: Bearer <api_key>`` (else 401).
        faults: default fault options (see :mod:`rxgpt.mock.faults`); a request's ``"mock"``
            object overrides them key by key.
    """

    tokens: int = 64
    ttft_ms: float = 0
    itl_ms: float = 0
    model: str = "rxgpt-mock"
    api_key: str | None = field(default=None, repr=False)
    faults: dict[str, Any] = field(default_factory=dict)


CONFIG_KEY = web.AppKey("rxgpt_mock_config", MockConfig)
COUNTERS_KEY = web.AppKey("rxgpt_mock_counters", dict[str, int])


class BadRequest(Exception):
    """A request the server answers with 400 (``param`` names the offending field)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _bad_request(exc: BadRequest) -> web.Response:
    body = error_body(exc.message, "invalid_request_error", param=exc.param)
    return json_response(400, body)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat completion request that shape the answer."""

    model: str
    messages: list[Any]
    stream: bool
    include_usage: bool
    n: int
    max_tokens: int | None


def _positive_int(body: Mapping[str, Any], name: str, *, upper: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"Invalid '{name}': expected an integer >= 1.", name)
    if upper is not None and value > upper:
        raise BadRequest(f"Invalid '{name}': expected at most {upper}.", name)
    return value


def parse_chat_request(body: Any, config: MockConfig) -> ChatRequest:
    """Validate a chat completion body (unknown parameters are ignored).

    Raises:
        BadRequest: not an object, no usable ``messages``, or an ill-typed known field.
    """
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("Missing required parameter: 'messages'.", "messages")
    if not all(isinstance(message, dict) for message in messages):
        raise BadRequest("Invalid 'messages': expected a list of objects.", "messages")
    model = body.get("model", config.model)
    if not isinstance(model, str):
        raise BadRequest("Invalid 'model': expected a string.", "model")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    limit = _positive_int(body, "max_completion_tokens") or _positive_int(body, "max_tokens")
    return ChatRequest(
        model=model,
        messages=messages,
        stream=body.get("stream") is True,
        include_usage=include_usage,
        n=_positive_int(body, "n", upper=MAX_N) or 1,
        max_tokens=limit,
    )


def parse_faults(body: Any, config: MockConfig) -> FaultOptions:
    """Merge ``config.faults`` with the request's ``mock`` object and validate the result."""
    options = body.get("mock") if isinstance(body, dict) else None
    if options is not None and not isinstance(options, dict):
        raise BadRequest("Invalid 'mock': expected an object.", "mock")
    try:
        return FaultOptions.parse({**config.faults, **(options or {})})
    except ValueError as exc:
        raise BadRequest(str(exc), "mock") from None


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to a request: ``n`` choices of ``tokens`` tokens each, made lazily.

    Tokens are generated while they are streamed, so a long answer's first event is not
    held back by generating the whole text first.
    """

    id: str
    created: int
    model: str
    messages: list[Any]
    n: int
    tokens: int
    finish_reason: str
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return self.n * self.tokens

    def iter_tokens(self, choice: int) -> Iterator[str]:
        """The tokens of choice ``choice``."""
        return iter_tokens(self.messages, self.model, self.tokens, choice)

    def text(self, choice: int) -> str:
        """The whole text of choice ``choice``."""
        return "".join(self.iter_tokens(choice))

    def usage(self) -> dict[str, Any]:
        """OpenAI's usage object, summed over the choices."""
        completion = self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def make_answer(chat: ChatRequest, config: MockConfig) -> Answer:
    """Generate the deterministic answer to ``chat``."""
    count = max(config.tokens, 0)
    finish_reason = "stop"
    if chat.max_tokens is not None and chat.max_tokens < count:
        count, finish_reason = chat.max_tokens, "length"
    return Answer(
        id=completion_id(chat.messages, chat.model),
        created=int(time.time()),
        model=chat.model,
        messages=chat.messages,
        n=chat.n,
        tokens=count,
        finish_reason=finish_reason,
        prompt_tokens=count_prompt_tokens(chat.messages),
    )


def completion_body(answer: Answer) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` object for ``answer``."""
    choices: list[dict[str, Any]] = [
        {
            "index": index,
            "message": {
                "role": "assistant",
                "content": answer.text(index),
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": answer.finish_reason,
        }
        for index in range(answer.n)
    ]
    return {
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": choices,
        "usage": answer.usage(),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


# --------------------------------------------------------------------------- stream encoding


class ChunkEncoder:
    """Builds the SSE events of one streamed answer, byte for byte in OpenAI's style."""

    def __init__(self, answer: Answer, *, include_usage: bool, eol: bytes) -> None:
        self._answer = answer
        self._eol = eol
        self._head = (
            b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,'
            b'"service_tier":"default","system_fingerprint":"%s","choices":['
            % (answer.id.encode(), answer.created, dumps(answer.model), SYSTEM_FINGERPRINT.encode())
        )
        self._end = b"]" + (b',"usage":null' if include_usage else b"") + b"}" + eol + eol
        self.content_suffix = b'},"logprobs":null,"finish_reason":null}' + self._end

    def role(self, index: int) -> bytes:
        """The first chunk of choice ``index``."""
        delta = b'{"role":"assistant","content":"","refusal":null}'
        return self._choice(index, delta, b"null")

    def content_prefix(self, index: int) -> bytes:
        """A content chunk of choice ``index`` is ``prefix + token JSON + content_suffix``."""
        return self._head + b'{"index":%d,"delta":{"content":' % index

    def finish(self, index: int) -> bytes:
        """The last chunk of choice ``index``: empty delta and the finish reason."""
        return self._choice(index, b"{}", b'"%s"' % self._answer.finish_reason.encode())

    def usage(self) -> bytes:
        """The usage chunk (``"choices": []``)."""
        return self._head + b'],"usage":' + dumps(self._answer.usage()) + b"}" + self._eol * 2

    def done(self) -> bytes:
        """The ``[DONE]`` sentinel."""
        return b"data: [DONE]" + self._eol * 2

    def _choice(self, index: int, delta: bytes, finish_reason: bytes) -> bytes:
        entry = b'{"index":%d,"delta":%s,"logprobs":null,"finish_reason":%s}' % (
            index,
            delta,
            finish_reason,
        )
        return self._head + entry + self._end


def plan_stream(
    answer: Answer, encoder: ChunkEncoder, config: MockConfig, *, include_usage: bool, done: bool
) -> Iterator[tuple[float, bytes]]:
    """Yield ``(due seconds after the request started, event bytes)`` for a whole stream."""
    ttft, itl = config.ttft_ms / 1000, config.itl_ms / 1000
    choices = range(answer.n)
    for index in choices:
        yield 0.0, encoder.role(index)
    suffix = encoder.content_suffix
    if answer.n == 1:
        prefix = encoder.content_prefix(0)
        for step, token in enumerate(answer.iter_tokens(0)):
            yield ttft + step * itl, prefix + encode_token(token) + suffix
    else:
        prefixes = [encoder.content_prefix(index) for index in choices]
        steps = zip(*(answer.iter_tokens(index) for index in choices), strict=True)
        for step, tokens in enumerate(steps):
            due = ttft + step * itl
            for prefix, token in zip(prefixes, tokens, strict=True):
                yield due, prefix + encode_token(token) + suffix
    last_due = ttft + max(answer.tokens - 1, 0) * itl
    for index in choices:
        yield last_due, encoder.finish(index)
    if include_usage:
        yield last_due, encoder.usage()
    if done:
        yield last_due, encoder.done()


# --------------------------------------------------------------------------- stream pump


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


async def _abort(request: web.Request, response: web.StreamResponse, out: BodyWriter) -> None:
    """Close the connection without ending the chunked body (the client sees it broken)."""
    await out.flush()
    response.force_close()
    if request.transport is not None:
        request.transport.close()


async def _stall(request: web.Request, out: BodyWriter, faults: FaultOptions) -> None:
    """Send nothing more (but keep-alive comments) until the client goes away."""
    await out.flush()
    interval = faults.keepalive_ms / 1000 if faults.keepalive_ms else _STALL_POLL_S
    comment = b": keep-alive" + faults.eol + faults.eol
    loop = asyncio.get_running_loop()
    deadline = loop.time()
    while _connected(request):
        deadline += interval
        await asyncio.sleep(max(deadline - loop.time(), 0))
        if faults.keepalive_ms:
            await out.write(comment)
            await out.flush()


async def _endless(out: BodyWriter) -> None:
    """Send one line that never ends; stops when a write fails (the client went away)."""
    await out.write(b'data: {"x":"')
    while True:
        await out.write(_ENDLESS_BLOCK)


def _triggers(faults: FaultOptions) -> dict[int, str]:
    """Map event index -> the fault that fires just before that event is written."""
    triggers: dict[int, str] = {}
    if faults.garbage_at is not None:
        triggers[faults.garbage_at] = "garbage"
    if faults.error_at is not None:
        triggers[faults.error_at] = "error"
    if faults.endless_line:
        triggers[1] = "endless"
    if faults.stall_after is not None:
        triggers[faults.stall_after] = "stall"
    if faults.drop_after is not None:
        triggers[faults.drop_after] = "drop"
    return triggers


async def pump(
    request: web.Request,
    response: web.StreamResponse,
    plan: Iterator[tuple[float, bytes]],
    faults: FaultOptions,
    start: float,
) -> None:
    """Write the planned events on time, applying the faults; one event per write.

    ``start`` is the ``loop.time()`` that the plan's due times count from.
    """
    out = BodyWriter(response, faults)
    write, eol = out.write, faults.eol
    triggers = _triggers(faults)
    loop = asyncio.get_running_loop()
    for index, (due, data) in enumerate(plan):
        if due > 0.0:
            delay = start + due - loop.time()
            if delay > 0.0:
                await asyncio.sleep(delay)
        fault = triggers.get(index) if triggers else None
        if fault is not None:
            if fault == "garbage":
                data = b"data: this is not json" + eol + eol
            elif fault == "error":
                await write(b"data: " + _SERVER_ERROR_EVENT + eol + eol)
                break
            else:
                await _interrupt(fault, request, response, out, faults)
                return
        await write(data)
    else:
        if (fault := _late_interrupt(faults)) is not None:
            await _interrupt(fault, request, response, out, faults)
            return
    await out.finish()


def _late_interrupt(faults: FaultOptions) -> str | None:
    """A drop or stall whose index was past the last event happens at the end."""
    if faults.drop_after is not None:
        return "drop"
    if faults.stall_after is not None:
        return "stall"
    return None


async def _interrupt(
    fault: str,
    request: web.Request,
    response: web.StreamResponse,
    out: BodyWriter,
    faults: FaultOptions,
) -> None:
    """Apply a fault that ends the normal flow: endless line, drop or stall."""
    if fault == "endless":
        await _endless(out)
    elif fault == "drop":
        await _abort(request, response, out)
    else:
        await _stall(request, out, faults)


# --------------------------------------------------------------------------- handlers


def _unauthorized(request: web.Request, config: MockConfig) -> web.Response | None:
    """401 unless the request carries the configured API key (never echoed)."""
    if config.api_key is None:
        return None
    header = request.headers.get("Authorization", "")
    if header == f"Bearer {config.api_key}":
        return None
    message = (
        "Incorrect API key provided."
        if header
        else "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
    )
    body = error_body(message, "invalid_request_error", code="invalid_api_key")
    return json_response(401, body)


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ) from None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``."""
    start = asyncio.get_running_loop().time()
    config = request.app[CONFIG_KEY]
    denied = _unauthorized(request, config)
    if denied is not None:
        return denied
    try:
        body = await _read_json(request)
        chat = parse_chat_request(body, config)
        faults = parse_faults(body, config)
    except BadRequest as exc:
        return _bad_request(exc)
    if faults.fails(request.app[COUNTERS_KEY]):
        return injected_error(faults)
    answer = make_answer(chat, config)
    if chat.stream:
        return await _stream(request, chat, answer, faults, start)
    await _wait_whole_answer(answer, config)
    return json_response(200, completion_body(answer))


async def _wait_whole_answer(answer: Answer, config: MockConfig) -> None:
    """A non-streamed answer arrives when its last token would have."""
    delay = (config.ttft_ms + max(answer.tokens - 1, 0) * config.itl_ms) / 1000
    if delay > 0:
        await asyncio.sleep(delay)


async def _stream(
    request: web.Request,
    chat: ChatRequest,
    answer: Answer,
    faults: FaultOptions,
    start: float,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Request-Id": "req_" + answer.id.removeprefix("chatcmpl-"),
        }
    )
    if faults.gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.enable_chunked_encoding()
    await response.prepare(request)
    encoder = ChunkEncoder(answer, include_usage=chat.include_usage, eol=faults.eol)
    config = request.app[CONFIG_KEY]
    plan = plan_stream(
        answer, encoder, config, include_usage=chat.include_usage, done=not faults.no_done
    )
    with contextlib.suppress(ConnectionError):
        await pump(request, response, plan, faults, start)
    return response


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models``."""
    config = request.app[CONFIG_KEY]
    denied = _unauthorized(request, config)
    if denied is not None:
        return denied
    model = {"id": config.model, "object": "model", "created": MODELS_CREATED, "owned_by": "rxgpt"}
    return json_response(200, {"object": "list", "data": [model]})


async def health(request: web.Request) -> web.Response:
    """``GET /health``: liveness probe."""
    return web.Response(text="ok")


def create_app(config: MockConfig | None = None) -> web.Application:
    """Build the mock server's aiohttp application.

    Run it with handler cancellation on (as :class:`MockServer` and pytest-aiohttp's
    ``aiohttp_server`` do) so that a client going away ends a stalled stream at once.

    Raises:
        ValueError: ``config.faults`` holds an unknown or ill-typed fault option.
    """
    config = config or MockConfig()
    FaultOptions.parse(config.faults)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[CONFIG_KEY] = config
    app[COUNTERS_KEY] = {}
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/health", health)
    return app


# --------------------------------------------------------------------------- running it


class MockServer:
    """The mock server on a real loopback socket, as an async context manager.

    Example::

        async with MockServer(tokens=16, itl_ms=5) as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test")

    Args:
        config: the server settings (default :class:`MockConfig()`).
        host: the address to listen on.
        port: the port; 0 (the default) picks a free ephemeral port.
        shutdown_timeout: seconds that closing waits for streams still in flight.
        **overrides: :class:`MockConfig` fields replacing those of ``config``.
    """

    def __init__(
        self,
        config: MockConfig | None = None,
        /,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        shutdown_timeout: float = 1.0,
        **overrides: Any,
    ) -> None:
        base = config or MockConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.app = create_app(self.config)
        self.host = host
        self.port = port
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (the real port once started)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``: the ``base_url`` for OpenAI clients."""
        return self.url + "/v1"

    async def start(self) -> None:
        """Bind the socket and start serving."""
        if self._runner is not None:
            raise RuntimeError("MockServer is already running")
        runner = web.AppRunner(
            self.app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def close(self) -> None:
        """Stop serving and release the socket (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve_forever(host: str, port: int, config: MockConfig | None) -> None:
    """Serve until cancelled or sent SIGTERM, after printing the URL on one line."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals on Windows
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with MockServer(config, host=host, port=port) as server:
        print(
            f"rxgpt mock server listening on {server.url} "
            f"(OpenAI base URL {server.base_url}); press Ctrl+C to stop",
            flush=True,
        )
        await stop.wait()


def run_server(host: str = "127.0.0.1", port: int = 8000, config: MockConfig | None = None) -> None:
    """Serve the mock until interrupted (Ctrl+C or SIGTERM); blocking, for ``rxgpt serve``."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(host, port, config))
