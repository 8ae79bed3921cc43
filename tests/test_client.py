"""Tests of rxgpt.Client / ChatStream against the embedded MockServer (real loopback sockets).

The server side is observed through an aiohttp middleware added to the MockServer's app
(request count, bodies, headers, when each handler ended) or through small custom
handlers on pytest-aiohttp's ``aiohttp_server``. No timing assertions: waits are bounded
by generous timeouts only so that a bug fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletion
from pytest_aiohttp import AiohttpServer

from rxgpt import (
    AuthenticationError,
    ChatStream,
    Client,
    Completion,
    DecodeError,
    Delta,
    EventTooLarge,
    FinishDelta,
    Heartbeat,
    HTTPStatusError,
    RateLimitError,
    Retry,
    RoleDelta,
    RxgptError,
    StreamCancelled,
    StreamError,
    StreamInterrupted,
    TextDelta,
)
from rxgpt.mock import MockServer, generate_tokens

# the fault tests check what ONE request gives: no retry (the fixture's client has none
# either; this keeps them explicit should the fixture change)
ONE_ATTEMPT: dict[str, Any] = {"retry": Retry(attempts=1)}

TIMEOUT = 5
TOKENS = 16
MODEL = "gpt-test"
MESSAGES = [{"role": "user", "content": "Explain backpressure in one paragraph"}]
WORDS = generate_tokens(MESSAGES, MODEL, TOKENS)
TEXT = "".join(WORDS)


# --------------------------------------------------------------------------- fixtures


@dataclass
class Tracker:
    """What the server saw: one entry per request to /v1/chat/completions."""

    requests: int = 0
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    ended: int = 0
    cancelled: int = 0
    ended_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_ended(self, count: int = 1) -> None:
        async with asyncio.timeout(TIMEOUT):
            while self.ended < count:
                self.ended_event.clear()
                await self.ended_event.wait()


@pytest.fixture
async def mock() -> AsyncIterator[tuple[MockServer, Tracker]]:
    tracker = Tracker()
    server = MockServer(tokens=TOKENS)

    @web.middleware
    async def track(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.endswith("/chat/completions"):
            tracker.requests += 1
            tracker.headers.append(dict(request.headers))
            tracker.bodies.append(json.loads(await request.read()))
        try:
            return await handler(request)
        except asyncio.CancelledError:
            tracker.cancelled += 1
            raise
        finally:
            tracker.ended += 1
            tracker.ended_event.set()

    server.app.middlewares.append(track)
    async with server:
        yield server, tracker


@pytest.fixture
async def client(mock: tuple[MockServer, Tracker]) -> AsyncIterator[Client]:
    # no retries here: these tests are about what one request gives (retries: test_faults)
    async with Client(
        mock[0].base_url, api_key="sk-test-0123456789abcdef", retry=Retry(attempts=1)
    ) as running:
        yield running


def chat(client: Client, **params: Any) -> ChatStream:
    return client.chat(model=MODEL, messages=MESSAGES, **params)


async def non_streaming(server: MockServer, **extra: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.base_url + "/chat/completions",
            json={"model": MODEL, "messages": MESSAGES, "stream": False, **extra},
        ) as resp,
    ):
        assert resp.status == 200
        result: dict[str, Any] = await resp.json()
        return result


class Deltas:
    """A subscriber recording deltas, its terminal, and an event per text-delta count."""

    def __init__(self) -> None:
        self.items: list[Delta] = []
        self.errors: list[Exception] = []
        self.completed = 0
        self.texts = 0
        self._waiting: list[tuple[int, asyncio.Event]] = []

    def on_next(self, delta: Delta) -> None:
        self.items.append(delta)
        if isinstance(delta, TextDelta):
            self.texts += 1
            for count, event in self._waiting:
                if self.texts >= count:
                    event.set()

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)

    def on_completed(self) -> None:
        self.completed += 1

    def attach(self, stream: ChatStream) -> Deltas:
        stream.subscribe(self.on_next, self.on_error, self.on_completed)
        return self

    async def wait_texts(self, count: int) -> None:
        event = asyncio.Event()
        if self.texts >= count:
            return
        self._waiting.append((count, event))
        await asyncio.wait_for(event.wait(), TIMEOUT)


def text_of(deltas: list[Delta]) -> str:
    return "".join(d.text for d in deltas if isinstance(d, TextDelta) and d.choice == 0)


# --------------------------------------------------------------------------- results


async def test_completion_matches_the_non_streaming_answer(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    server, tracker = mock
    result = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    assert tracker.requests == 1
    assert tracker.bodies[0]["stream"] is True
    reference = await non_streaming(server)

    assert isinstance(result, Completion)
    assert result.state == "complete"
    assert result.error is None
    assert result.text == TEXT
    assert result.text == reference["choices"][0]["message"]["content"]
    assert result.finish_reason == "stop"
    assert result.id == reference["id"]
    assert result.model == MODEL

    validated = ChatCompletion.model_validate(result.to_openai())
    assert validated.choices[0].message.content == TEXT
    assert validated.choices[0].message.role == "assistant"
    assert validated.choices[0].finish_reason == "stop"
    assert validated.object == "chat.completion"


async def test_completion_with_usage_matches_the_non_streaming_usage(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    server, _ = mock
    result = await asyncio.wait_for(
        chat(client, stream_options={"include_usage": True}).completion(), TIMEOUT
    )
    reference = await non_streaming(server)
    as_openai = result.to_openai()
    ChatCompletion.model_validate(as_openai)
    assert as_openai["usage"] == reference["usage"]
    assert result.usage is not None and result.usage.output_tokens == TOKENS


async def test_text(client: Client) -> None:
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT


async def test_async_for_yields_the_deltas(client: Client) -> None:
    stream = chat(client)
    deltas: list[Delta] = []
    async with asyncio.timeout(TIMEOUT):
        async for delta in stream:
            deltas.append(delta)
    assert text_of(deltas) == TEXT
    assert any(isinstance(d, RoleDelta) for d in deltas)
    finishes = [d for d in deltas if isinstance(d, FinishDelta)]
    assert len(finishes) == 1 and finishes[0].reason == "stop"
    # the handle knows the result too, without a second request
    assert (await stream.completion()).text == TEXT


async def test_text_deltas(client: Client) -> None:
    async with asyncio.timeout(TIMEOUT):
        parts = [part async for part in chat(client).text_deltas()]
    assert "".join(parts) == TEXT
    # the role chunk carries ``"content": ""``; every token is one fragment
    assert [part for part in parts if part] == WORDS


async def test_the_stream_is_lazy(mock: tuple[MockServer, Tracker], client: Client) -> None:
    _, tracker = mock
    stream = chat(client)
    for _ in range(5):
        await asyncio.sleep(0)
    assert tracker.requests == 0
    await asyncio.wait_for(stream.completion(), TIMEOUT)
    await asyncio.wait_for(stream.completion(), TIMEOUT)  # awaiting again: same result
    assert tracker.requests == 1


# --------------------------------------------------------------------------- the request


@dataclass
class Recorded:
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


SMALL_STREAM = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.fixture
async def recorder(aiohttp_server: AiohttpServer) -> tuple[str, Recorded]:
    recorded = Recorded()

    async def handler(request: web.Request) -> web.Response:
        recorded.bodies.append(await request.json())
        recorded.headers.append(dict(request.headers))
        return web.Response(body=SMALL_STREAM, content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/v1")), recorded


async def test_the_request_headers(recorder: tuple[str, Recorded]) -> None:
    base_url, recorded = recorder
    key = "sk-test-0123456789abcdef"
    async with Client(base_url, api_key=key, retry=Retry(attempts=1)) as client:
        assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == "hi"
    own_type = {"Content-Type": "application/json; charset=utf-8"}  # a client's own wins
    async with Client(base_url, api_key=key, headers=own_type) as client:
        assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == "hi"
    sent, custom = ({k.lower(): v for k, v in h.items()} for h in recorded.headers)
    assert sent["content-type"] == "application/json"
    assert sent["accept"] == "text/event-stream"
    assert sent["authorization"] == f"Bearer {key}"
    assert "cache-control" not in sent  # (asked only with a GET, as EventSource does)
    assert custom["content-type"] == own_type["Content-Type"]
    assert recorded.bodies[0] == recorded.bodies[1] and recorded.bodies[0]["model"] == MODEL


async def test_extra_params_go_into_the_body_as_given(recorder: tuple[str, Recorded]) -> None:
    base_url, recorded = recorder
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    params: dict[str, Any] = {
        "temperature": 0.25,
        "top_p": 1,
        "max_completion_tokens": 50,
        "stream_options": {"include_usage": True},
        "tools": tools,
        "tool_choice": "auto",
        "response_format": {"type": "text"},
        "user": "user-ü→",
        "seed": None,
    }
    async with Client(base_url, api_key="sk-test-extra-params-0000") as client:
        text = await asyncio.wait_for(chat(client, **params).text(), TIMEOUT)
    assert text == "hi"
    assert recorded.bodies == [{"model": MODEL, "messages": MESSAGES, **params, "stream": True}]


async def test_stream_param_is_forced_true(recorder: tuple[str, Recorded]) -> None:
    base_url, recorded = recorder
    async with Client(base_url, api_key="sk-test-stream-forced-0000") as client:
        await asyncio.wait_for(chat(client, stream=False).completion(), TIMEOUT)
    assert recorded.bodies[0]["stream"] is True


async def test_defaults_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, mock: tuple[MockServer, Tracker]
) -> None:
    server, tracker = mock
    key = "sk-env-key-0123456789abcdef"
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    async with Client() as client:
        assert client.base_url == server.base_url
        assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
    headers = {k.lower(): v for k, v in tracker.headers[0].items()}
    assert headers["authorization"] == f"Bearer {key}"
    assert headers["content-type"].startswith("application/json")


async def test_the_mock_checks_the_key_sent_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "sk-env-checked-0123456789abcdef"
    async with MockServer(tokens=TOKENS, api_key=key) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")  # trailing slash is fine
        monkeypatch.setenv("OPENAI_API_KEY", key)
        async with Client() as client:
            assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
        async with Client(api_key="sk-wrong-0123456789abcdef") as client:
            with pytest.raises(AuthenticationError):
                await asyncio.wait_for(chat(client).text(), TIMEOUT)


# --------------------------------------------------------------------------- secrets


SECRETS = ["sk-proj-Secr3tKeyABCDEFGHIJKLMNOP", "my-private-gateway-token-42"]


def echo_key_handler() -> Callable[[web.Request], Awaitable[web.Response]]:
    """A 401 whose body echoes the key it got (some gateways do)."""

    async def handler(request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        body = {
            "error": {
                "message": f"Incorrect API key provided: {key}. Header was 'Bearer {key}'.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        return web.json_response(body, status=401)

    return handler


@pytest.mark.parametrize("key", SECRETS)
async def test_api_key_not_in_repr_nor_in_error_messages(
    aiohttp_server: AiohttpServer, key: str
) -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", echo_key_handler())
    server = await aiohttp_server(app)
    async with Client(str(server.make_url("/v1")), api_key=key) as client:
        assert key not in repr(client)
        assert key not in str(client)
        stream = chat(client)
        with pytest.raises(AuthenticationError) as info:
            await asyncio.wait_for(stream.completion(), TIMEOUT)
    error = info.value
    assert error.status == 401
    assert error.error_code == "invalid_api_key"
    for shown in (str(error), repr(error), error.message, error.body):
        assert key not in shown
    assert key not in str(stream.partial)


@pytest.mark.parametrize("key", SECRETS)
async def test_api_key_not_in_the_parsed_provider_error(
    aiohttp_server: AiohttpServer, key: str
) -> None:
    """``error.error_message`` / ``error.error`` are what apps log and show: no key there."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", echo_key_handler())
    server = await aiohttp_server(app)
    async with Client(str(server.make_url("/v1")), api_key=key) as client:
        with pytest.raises(AuthenticationError) as info:
            await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    error = info.value
    assert error.error_message is not None
    assert "Incorrect API key provided" in error.error_message
    assert key not in error.error_message
    assert key not in json.dumps(error.error)


# ---------------------------------------------------------------------- fan-out through the handle


async def test_three_subscribers_and_completion_share_one_request(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client)
    log: list[Delta] = []
    count = [0]
    ui: list[Delta] = []
    stream.subscribe(log.append)
    stream.subscribe(lambda _: count.__setitem__(0, count[0] + 1))
    stream.subscribe(ui.append)

    result = await asyncio.wait_for(stream.completion(), TIMEOUT)

    assert tracker.requests == 1
    assert result.text == TEXT
    assert log == ui
    assert count[0] == len(log)
    assert text_of(log) == TEXT
    assert result.deltas == len(log)
    assert stream.subscriber_errors == []


async def test_a_raising_subscriber_does_not_break_the_others(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client)
    before = Deltas().attach(stream)

    def bad(delta: Delta) -> None:
        if isinstance(delta, TextDelta):
            raise ValueError("UI crashed")

    stream.subscribe(bad)
    after = Deltas().attach(stream)

    result = await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert result.state == "complete" and result.text == TEXT
    assert before.items == after.items and text_of(after.items) == TEXT
    assert before.completed == after.completed == 1
    assert len(stream.subscriber_errors) == 1
    assert isinstance(stream.subscriber_errors[0], ValueError)
    assert tracker.requests == 1


async def test_late_subscriber_after_completion_gets_every_delta(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client)
    early = Deltas().attach(stream)
    await asyncio.wait_for(stream.completion(), TIMEOUT)

    late = Deltas().attach(stream)
    assert late.items == early.items
    assert late.completed == 1 and late.errors == []

    iterated = []
    async with asyncio.timeout(TIMEOUT):
        async for delta in stream:  # an async for after the end replays too
            iterated.append(delta)
    assert iterated == early.items
    assert tracker.requests == 1


async def test_async_for_and_completion_together(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client)

    async def iterate() -> list[Delta]:
        return [delta async for delta in stream]

    deltas, result = await asyncio.wait_for(asyncio.gather(iterate(), stream.completion()), TIMEOUT)
    assert text_of(deltas) == result.text == TEXT
    assert tracker.requests == 1


# --------------------------------------------------------------------------- cancellation


STALL = {"stall_after": 5}  # role + 4 tokens, then silence until the client goes away


async def test_cancelling_the_task_awaiting_completion_closes_the_response(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client, mock=STALL)
    seen = Deltas().attach(stream)
    task = asyncio.create_task(stream.completion())
    await seen.wait_texts(4)
    assert tracker.ended == 0

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await tracker.wait_ended()  # the server saw the disconnect
    assert stream.done
    assert stream.partial.state == "cancelled"
    assert stream.partial.text == "".join(WORDS[:4])
    with pytest.raises(StreamCancelled):
        await stream.completion()


async def test_cancelling_the_task_iterating_closes_the_response(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client, mock=STALL)
    got: list[Delta] = []
    four = asyncio.Event()

    async def iterate() -> None:
        async for delta in stream:
            got.append(delta)
            if text_of(got) == "".join(WORDS[:4]):
                four.set()

    task = asyncio.create_task(iterate())
    await asyncio.wait_for(four.wait(), TIMEOUT)
    assert tracker.ended == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await tracker.wait_ended()
    assert stream.partial.state == "cancelled"
    assert stream.partial.text == "".join(WORDS[:4])


async def test_breaking_out_of_async_for_closes_the_response(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client, mock=STALL)
    async with asyncio.timeout(TIMEOUT):
        async for delta in stream:
            if isinstance(delta, TextDelta):
                break
    await tracker.wait_ended()
    assert stream.partial.state == "cancelled"


async def test_stream_cancel_and_async_with(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    async with chat(client, mock=STALL) as stream:
        seen = Deltas().attach(stream)
        stream.start()
        await seen.wait_texts(2)
    await tracker.wait_ended()
    assert stream.partial.state == "cancelled"


async def test_no_leaked_connection_after_a_cancelled_stream(
    mock: tuple[MockServer, Tracker],
) -> None:
    server, tracker = mock
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(server.base_url, api_key="sk-test-limit-one-000000", session=session)
        stream = chat(client, mock=STALL)
        seen = Deltas().attach(stream)
        task = asyncio.create_task(stream.completion())
        await seen.wait_texts(4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        # the single connection slot is free again
        assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
        assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
        await client.aclose()
        assert not session.closed  # the caller's session is not the client's to close
    assert tracker.requests == 3


async def test_other_consumers_end_when_one_consumer_cancels(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    """Cancelling the stream must end every consumer, not leave some waiting forever."""
    _, tracker = mock
    stream = chat(client, mock=STALL)
    watcher = Deltas().attach(stream)
    second: list[Delta] = []

    async def iterate(into: list[Delta]) -> None:
        async for delta in stream:
            into.append(delta)

    first_task = asyncio.create_task(iterate([]))
    second_task = asyncio.create_task(iterate(second))
    await watcher.wait_texts(4)

    first_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first_task
    await tracker.wait_ended()

    # the other async-for ends (by error or by stopping) instead of hanging forever
    done, _ = await asyncio.wait({second_task}, timeout=TIMEOUT)
    second_task.cancel()
    assert done, "the second `async for` over the cancelled stream never ended"
    assert text_of(second) == "".join(WORDS[:4])


async def test_subscribers_get_a_terminal_when_the_stream_is_cancelled(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    """on_error or on_completed fires exactly once on every path, cancel included."""
    _, tracker = mock
    stream = chat(client, mock=STALL)
    watcher = Deltas().attach(stream)
    stream.start()
    await watcher.wait_texts(4)
    stream.cancel()
    await tracker.wait_ended()
    assert stream.partial.state == "cancelled"
    assert watcher.completed + len(watcher.errors) == 1


async def test_cancel_before_start_sends_no_request(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client)
    stream.cancel()
    with pytest.raises(StreamCancelled):
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    for _ in range(10):
        await asyncio.sleep(0.01)
    assert tracker.requests == 0
    assert stream.partial.state == "cancelled"


# --------------------------------------------------------------------------- faults


FAULTS = [
    pytest.param({"garbage_at": 3}, DecodeError, "".join(WORDS[:2]), "error", id="garbage_at"),
    pytest.param({"error_at": 4}, StreamError, "".join(WORDS[:3]), "error", id="error_at"),
    # (without [DONE] a stream is complete after its finish reason: strict mode here)
    pytest.param({"no_done": True}, StreamInterrupted, TEXT, "truncated", id="no_done"),
    pytest.param(
        {"drop_after": 6}, StreamInterrupted, "".join(WORDS[:5]), "truncated", id="drop_after"
    ),
    pytest.param({"status": 401}, AuthenticationError, "", "error", id="401"),
    pytest.param({"status": 429, "retry_after": 3}, RateLimitError, "", "error", id="429"),
    pytest.param({"status": 500}, HTTPStatusError, "", "error", id="500"),
]


@pytest.mark.parametrize(("fault", "error_type", "partial_text", "state"), FAULTS)
async def test_faults_give_typed_errors_with_partial_from_completion(
    client: Client,
    fault: dict[str, Any],
    error_type: type[RxgptError],
    partial_text: str,
    state: str,
) -> None:
    stream = chat(client, mock=fault, require_done="no_done" in fault, **ONE_ATTEMPT)
    with pytest.raises(RxgptError) as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    error = info.value
    assert type(error) is error_type or (
        error_type is StreamInterrupted and isinstance(error, StreamInterrupted)
    )
    assert error.partial is not None
    assert error.partial.text == partial_text
    assert error.partial.state == state
    assert stream.partial is error.partial
    assert stream.done
    if isinstance(error, HTTPStatusError):
        assert error.status == fault["status"]
        if isinstance(error, RateLimitError):
            assert error.headers["Retry-After"] == "3"


@pytest.mark.parametrize(("fault", "error_type", "partial_text", "state"), FAULTS)
async def test_faults_give_typed_errors_from_async_for(
    client: Client,
    fault: dict[str, Any],
    error_type: type[RxgptError],
    partial_text: str,
    state: str,
) -> None:
    stream = chat(client, mock=fault, require_done="no_done" in fault, **ONE_ATTEMPT)
    got: list[Delta] = []
    with pytest.raises(error_type) as info:
        async with asyncio.timeout(TIMEOUT):
            async for delta in stream:
                got.append(delta)
    assert text_of(got) == partial_text
    assert info.value.partial is not None
    assert info.value.partial.text == partial_text
    assert info.value.partial.state == state


async def test_error_partial_matches_what_a_subscriber_saw(client: Client) -> None:
    stream = chat(client, mock={"garbage_at": 6})
    seen = Deltas().attach(stream)
    with pytest.raises(DecodeError) as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert seen.errors == [info.value]
    assert text_of(seen.items) == info.value.partial.text == "".join(WORDS[:5])  # type: ignore[union-attr]
    assert info.value.index == 6
    assert "not json" in info.value.raw


async def test_endless_line_with_max_event_bytes_fails_and_closes_the_response(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client, max_event_bytes=64 * 1024, mock={"endless_line": True})
    with pytest.raises(EventTooLarge) as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert info.value.limit == 64 * 1024
    assert info.value.partial is not None and info.value.partial.text == ""
    await tracker.wait_ended()  # the endless writer noticed the client went away


async def test_keepalive_comments_while_stalled_are_heartbeats(
    mock: tuple[MockServer, Tracker], client: Client
) -> None:
    _, tracker = mock
    stream = chat(client, heartbeats=True, mock={"stall_after": 3, "keepalive_ms": 10})
    beats = asyncio.Event()
    deltas: list[Delta] = []

    def on_next(delta: Delta) -> None:
        deltas.append(delta)
        if sum(isinstance(d, Heartbeat) for d in deltas) >= 2:
            beats.set()

    stream.subscribe(on_next)
    stream.start()
    await asyncio.wait_for(beats.wait(), TIMEOUT)
    stream.cancel()
    await tracker.wait_ended()
    assert text_of(deltas) == "".join(WORDS[:2])
    assert stream.partial.text == "".join(WORDS[:2])


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param({"line_endings": "crlf"}, id="crlf"),
        pytest.param({"line_endings": "cr"}, id="cr"),
        pytest.param({"chunk_bytes": 7}, id="chunk_bytes=7"),
        pytest.param({"gzip": True}, id="gzip"),
        pytest.param({"gzip": True, "chunk_bytes": 7, "line_endings": "crlf"}, id="all"),
    ],
)
async def test_framing_variants_give_the_same_text(client: Client, framing: dict[str, Any]) -> None:
    default = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    varied = await asyncio.wait_for(chat(client, mock=framing).completion(), TIMEOUT)
    assert varied.state == "complete"
    assert varied.text == default.text == TEXT
    assert varied.finish_reason == default.finish_reason


# --------------------------------------------------------------------------- interop


async def test_openai_sdk_and_rxgpt_agree(mock: tuple[MockServer, Tracker], client: Client) -> None:
    server, _ = mock
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-openai-sdk") as sdk:
        reference = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    result = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    assert result.text == reference.choices[0].message.content
