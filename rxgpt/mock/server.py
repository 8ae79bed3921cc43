"""The embedded mock server: routes, the OpenAI chat and legacy completions endpoints, running.

Routes (all answers deterministic, see :mod:`rxgpt.mock.text`; faults, see
:mod:`rxgpt.mock.faults`; the flow shared by all endpoints, see :mod:`rxgpt.mock.core`):

* ``POST /v1/chat/completions``: OpenAI chat completions, streamed or not;
* ``POST /v1/completions``: OpenAI legacy completions (``text_completion`` chunks);
* ``POST /v1/responses``: OpenAI Responses API (see :mod:`rxgpt.mock.providers`);
* ``POST /v1/messages``: Anthropic Messages API (see :mod:`rxgpt.mock.providers`);
* ``POST /api/chat``, ``GET /api/tags``, ``GET /api/version``: Ollama's native API;
* ``GET /v1/models``, ``GET /health``.

Strategy: a streamed answer is planned as a sequence of ``(due, event bytes)`` pairs, where
``due`` is the time in seconds after the start of the request at which the event may go out.
Everything constant in a chunk (the ``id``/``created``/``model`` header, the per-choice
prefix, the suffix and the line ends) is encoded once per request, and token texts have cached
JSON encodings, so a content chunk costs one bytes concatenation. The pump writes ONE event
per ``response.write`` (as real LLM servers do) and sleeps only when an event is not due yet,
against absolute deadlines (``loop.time()``), so delays do not drift and zero delays never
sleep. Order of a chat stream (``n`` choices):

1. per choice, a role chunk (sent at once);
2. content chunks, round-robin over the choices, token by token (step ``k`` of every choice
   is due at ``ttft_ms + k * itl_ms``);
3. with the tool trigger (see :mod:`rxgpt.mock.core`), per choice, a tool call chunk
   (``id``, ``name``, ``arguments: ""``) and argument fragment chunks;
4. per choice, a finish chunk (``delta: {}``, ``finish_reason`` ``stop``, ``length`` or
   ``tool_calls``);
5. with ``stream_options.include_usage``, a usage chunk with ``"choices": []``;
6. ``data: [DONE]``.

Legacy completions stream ``text_completion`` chunks (``choices[].text``), the finish reason on
the chunk with the last text of each choice, then the usage chunk and ``[DONE]``; a list
``prompt`` gets one choice per prompt (times ``n``), each the text its prompt gets alone.

API keys are compared, never logged or echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from .core import (
    CONFIG_KEY,
    COUNTERS_KEY,
    MAX_BODY_BYTES,
    Answer,
    BadRequest,
    Dialect,
    MockConfig,
    Prompt,
    SseEncoder,
    Timeline,
    ToolCall,
    as_messages,
    handler,
    model_of,
    positive_int,
    token_events,
    tool_trigger,
)
from .faults import FaultOptions, json_response
from .providers import (
    ANTHROPIC_MESSAGES,
    OLLAMA_CHAT,
    OPENAI_RESPONSES,
    ollama_tags,
    ollama_version,
)
from .text import dumps

__all__ = ["MockConfig", "MockServer", "create_app", "run_server"]

SYSTEM_FINGERPRINT = "fp_rxgpt"
MODELS_CREATED = 1_700_000_000  # fixed, so /v1/models is byte-stable
MAX_N = 128  # OpenAI's limit on ``n``
_FINISH_REASONS = {"stop": "stop", "length": "length", "tool": "tool_calls"}
_NULL = b"null"


def _finish(answer: Answer) -> bytes:
    """The JSON of the answer's finish reason."""
    return b'"%s"' % _FINISH_REASONS[answer.stop].encode()


# --------------------------------------------------------------------------- OpenAI shared


def _stream_flags(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """``(stream, stream_options.include_usage)`` of an OpenAI chat or completions body."""
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return body.get("stream") is True, include_usage


def _usage(answer: Answer) -> dict[str, int]:
    completion = answer.output_tokens
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + completion,
    }


def chat_usage(answer: Answer) -> dict[str, Any]:
    """OpenAI's chat usage object, summed over the choices."""
    return {
        **_usage(answer),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
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


# --------------------------------------------------------------------------- chat completions


class ChatDialect(Dialect):
    """``POST /v1/chat/completions``."""

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        """Validate a chat completion body (unknown parameters are ignored)."""
        model = model_of(body, config)
        messages = as_messages(body.get("messages"))
        stream, include_usage = _stream_flags(body)
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
                    "finish_reason": _FINISH_REASONS[answer.stop],
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
        finish = _finish(answer)
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

    def _choice(self, index: int, delta: bytes, finish_reason: bytes = _NULL) -> bytes:
        entry = b'{"index":%d,"delta":%s,"logprobs":null,"finish_reason":%s}' % (
            index,
            delta,
            finish_reason,
        )
        return self.head + entry + self._end


# --------------------------------------------------------------------------- legacy completions


class CompletionsDialect(Dialect):
    """``POST /v1/completions`` (legacy): ``prompt`` is a string or a list of strings."""

    def parse(self, body: Any, config: MockConfig) -> Prompt:
        model = model_of(body, config)
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompt = [prompt]
        if (
            not isinstance(prompt, list)
            or not prompt
            or not all(isinstance(p, str) for p in prompt)
        ):
            raise BadRequest("Invalid 'prompt': expected a string or a list of strings.", "prompt")
        conversations = tuple([{"role": "user", "content": text}] for text in prompt)
        stream, include_usage = _stream_flags(body)
        return Prompt(
            model=model,
            messages=conversations[0] if len(conversations) == 1 else list(conversations),
            stream=stream,
            include_usage=include_usage,
            n=positive_int(body, "n", upper=MAX_N) or 1,
            max_tokens=positive_int(body, "max_tokens"),
            prompts=conversations if len(conversations) > 1 else (),
        )

    def whole(self, prompt: Prompt, answer: Answer) -> dict[str, Any]:
        finish = _FINISH_REASONS[answer.stop]
        return {
            "id": _text_id(answer),
            "object": "text_completion",
            "created": answer.created,
            "model": answer.model,
            "choices": [
                {"text": answer.text(i), "index": i, "logprobs": None, "finish_reason": finish}
                for i in range(answer.n)
            ],
            "usage": _usage(answer),
        }

    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> TextEncoder:
        return TextEncoder(answer, include_usage=prompt.include_usage, eol=eol)


def _text_id(answer: Answer) -> str:
    return answer.make_id("cmpl-", 29)


class TextEncoder(OpenAIChunks):
    """``text_completion`` chunks; the finish reason rides on each choice's last text."""

    def __init__(self, answer: Answer, *, include_usage: bool, eol: bytes) -> None:
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

    def events(self, timeline: Timeline, *, done: bool) -> Iterator[tuple[float, bytes]]:
        answer = self.answer
        choices = range(answer.n)
        prefix = self.head + b'"choices":[{"text":'
        finish = _finish(answer)
        ends = [self._suffix(index, finish) for index in choices]
        if answer.tokens == 0:
            for end in ends:
                yield 0.0, prefix + b'""' + end
        else:
            suffixes = [self._suffix(index, _NULL) for index in choices]
            streams = [answer.iter_tokens(index) for index in choices]
            yield from token_events(
                timeline, streams, answer.tokens, [prefix] * answer.n, suffixes, ends
            )
        usage = self.head + self._model + b',"usage":' + dumps(_usage(answer))
        for data in self.tail(answer, usage + b',"choices":[]}' + self.eol * 2, done):
            yield timeline.now, data


# --------------------------------------------------------------------------- other routes


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models``."""
    config = request.app[CONFIG_KEY]
    denied = CHAT.unauthorized(request, config)
    if denied is not None:
        return denied
    model = {"id": config.model, "object": "model", "created": MODELS_CREATED, "owned_by": "rxgpt"}
    return json_response(200, {"object": "list", "data": [model]})


async def health(request: web.Request) -> web.Response:
    """``GET /health``: liveness probe."""
    return web.Response(text="ok")


CHAT = ChatDialect()
COMPLETIONS = CompletionsDialect()


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
    app.router.add_post("/v1/chat/completions", handler(CHAT))
    app.router.add_post("/v1/completions", handler(COMPLETIONS))
    app.router.add_post("/v1/responses", handler(OPENAI_RESPONSES))
    app.router.add_post("/v1/messages", handler(ANTHROPIC_MESSAGES))
    app.router.add_post("/api/chat", handler(OLLAMA_CHAT))
    app.router.add_get("/api/tags", ollama_tags)
    app.router.add_get("/api/version", ollama_version)
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
