"""Tests of the mock server's other APIs: Anthropic Messages, OpenAI Responses and legacy
completions, Ollama's native chat, and tool calls on chat completions.

Each API is checked twice: through the vendor's real client (``anthropic``, ``openai``,
``ollama``), and on the wire with aiohttp (event names and order, sequence numbers, NDJSON
lines, and every stream fault in the protocol's own framing). Real loopback sockets.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import anthropic
import ollama
import openai
import pytest

from rxgpt.mock import MockServer, generate_tokens

#: A weather tool's parameters: the mock's "weather" call fills them with its fixed values
WEATHER_PARAMETERS: Any = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
}

TOKENS = 12
THINKING = 16  # MockConfig.thinking_tokens default
QUESTION = "Tell me about streams, please"
WEATHER = "What is the weather in Paris today?"
MESSAGES = [{"role": "user", "content": QUESTION}]
ARGUMENTS = {"city": "Paris", "unit": "celsius"}
WEATHER_TOOL_ANTHROPIC: Any = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": WEATHER_PARAMETERS,
}
WEATHER_TOOL_OPENAI: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": WEATHER_PARAMETERS,
    },
}
WEATHER_TOOL_RESPONSES: Any = {
    "type": "function",
    "name": "get_weather",
    "parameters": WEATHER_PARAMETERS,
    "strict": False,
}


def expected(messages: list[Any], model: str, count: int = TOKENS, choice: int = 0) -> str:
    return "".join(generate_tokens(messages, model, count, choice))


def user(content: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


# --------------------------------------------------------------------------- fixtures, helpers


# ``server`` (a MockServer of 12 tokens) and ``session`` come from conftest.py.


@pytest.fixture
async def claude(server: MockServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def oai(server: MockServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def llama(server: MockServer) -> AsyncIterator[ollama.AsyncClient]:
    client = ollama.AsyncClient(host=server.url)
    yield client
    await client.close()  # type: ignore[no-untyped-call]


# Streaming request per endpoint, its framing, and how many events a plain stream has.
ENDPOINTS: dict[str, tuple[str, dict[str, Any], int]] = {
    "anthropic": (
        "/v1/messages",
        {"model": "claude-test", "max_tokens": 1024, "messages": MESSAGES, "stream": True},
        3 + TOKENS + 3,  # message_start, block start, ping, deltas, block stop, delta, stop
    ),
    "responses": (
        "/v1/responses",
        {"model": "gpt-test", "input": QUESTION, "stream": True},
        4 + TOKENS + 4,  # created, in_progress, item/part added, deltas, 3 dones, completed
    ),
    "completions": (
        "/v1/completions",
        {"model": "gpt-test", "prompt": QUESTION, "stream": True},
        TOKENS + 1,  # text chunks, [DONE]
    ),
    "ollama": (
        "/api/chat",
        {"model": "llama-test", "messages": MESSAGES},
        TOKENS + 1,  # token lines, done line
    ),
}
NAMES = list(ENDPOINTS)
END_SIGNAL = {
    "anthropic": b'event: message_stop\ndata: {"type":"message_stop"}',
    "responses": b"event: response.completed\n",
    "completions": b"data: [DONE]",
    "ollama": b'"done":true,',
}
IN_BAND_ERROR = {
    "anthropic": [
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"Overloaded"}}'
    ],
    "responses": [b"event: error\n", b"event: response.failed\n"],
    "completions": [
        b'data: {"error":{"message":"The server had an error while processing your request.",'
        b'"type":"server_error","param":null,"code":null}}'
    ],
    "ollama": [b'{"error":"an error was encountered while running the model"}'],
}


def split_events(raw: bytes, name: str, eol: bytes = b"\n") -> list[bytes]:
    """The events of a body: SSE blocks, or NDJSON lines (without their terminators)."""
    separator = eol if name == "ollama" else eol * 2
    assert raw.endswith(separator), raw[-80:]
    return raw.split(separator)[:-1]


def sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, data JSON)`` of each named SSE event."""
    out = []
    for block in split_events(raw, "sse"):
        head, data = block.split(b"\n")
        assert head.startswith(b"event: ") and data.startswith(b"data: "), block
        out.append((head.removeprefix(b"event: ").decode(), json.loads(data[6:])))
    return out


def ndjson(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in split_events(raw, "ollama")]


def normalise(raw: bytes) -> bytes:
    """Blank the parts that change between two requests (timestamps, durations)."""
    raw = re.sub(rb'"(created|created_at|completed_at)":("[^"]*"|\d+)', rb'"\1":0', raw)
    return re.sub(rb'"(total|load|prompt_eval|eval)_duration":\d+', rb'"\1_duration":0', raw)


async def post(
    session: aiohttp.ClientSession, server: MockServer, path: str, body: dict[str, Any]
) -> tuple[int, bytes]:
    async with session.post(server.url + path, json=body) as resp:
        return resp.status, await resp.read()


async def stream_raw(
    session: aiohttp.ClientSession, server: MockServer, name: str, **mock: Any
) -> bytes:
    path, body, _ = ENDPOINTS[name]
    status, raw = await post(session, server, path, {**body, "mock": mock} if mock else body)
    assert status == 200, raw
    return raw


# --------------------------------------------------------------------------- the same text


async def test_every_endpoint_gives_the_chat_text_for_the_same_conversation(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    model = "same-model"
    text = expected(MESSAGES, model)
    requests: list[tuple[str, dict[str, Any], Any]] = [
        ("/v1/chat/completions", {"messages": MESSAGES}, lambda b: b["choices"][0]["message"]),
        ("/v1/completions", {"prompt": QUESTION}, lambda b: b["choices"][0]),
        ("/v1/responses", {"input": QUESTION}, lambda b: b["output"][0]["content"][0]),
        ("/v1/messages", {"messages": MESSAGES, "max_tokens": 64}, lambda b: b["content"][0]),
        ("/api/chat", {"messages": MESSAGES, "stream": False}, lambda b: b["message"]),
    ]
    found = {}
    for path, body, pick in requests:
        status, raw = await post(session, server, path, {"model": model, **body})
        assert status == 200, raw
        part = pick(json.loads(raw))
        found[path] = part.get("content", part.get("text"))
    assert found == dict.fromkeys(found, text)


# --------------------------------------------------------------------------- Anthropic SDK


async def test_anthropic_sdk_create_and_stream_agree(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(
        model="claude-test", max_tokens=1024, messages=[{"role": "user", "content": QUESTION}]
    )
    async with claude.messages.stream(
        model="claude-test", max_tokens=1024, messages=[{"role": "user", "content": QUESTION}]
    ) as stream:
        deltas = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    text = expected(MESSAGES, "claude-test")
    assert message.content[0].type == "text" and message.content[0].text == text
    assert final.content[0].type == "text" and final.content[0].text == text
    assert "".join(deltas) == text and len(deltas) == TOKENS
    assert message.id == final.id and message.id.startswith("msg_01") and len(message.id) == 28
    assert (message.stop_reason, final.stop_reason) == ("end_turn", "end_turn")
    assert message.model == final.model == "claude-test"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, TOKENS)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, TOKENS)


async def test_anthropic_sdk_system_prompt_is_a_leading_system_message(
    claude: anthropic.AsyncAnthropic,
) -> None:
    message = await claude.messages.create(
        model="claude-test",
        max_tokens=1024,
        system="Be brief.",
        messages=[{"role": "user", "content": QUESTION}],
    )
    conversation = [{"role": "system", "content": "Be brief."}, *MESSAGES]
    assert message.content[0].type == "text"
    assert message.content[0].text == expected(conversation, "claude-test")
    assert message.usage.input_tokens == 7


async def test_anthropic_sdk_tool_use(claude: anthropic.AsyncAnthropic) -> None:
    args: dict[str, Any] = {
        "model": "claude-test",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": WEATHER}],
        "tools": [WEATHER_TOOL_ANTHROPIC, {**WEATHER_TOOL_ANTHROPIC, "name": "other"}],
    }
    whole = await claude.messages.create(**args)
    async with claude.messages.stream(**args) as stream:
        json_parts = [e.partial_json async for e in stream if e.type == "input_json"]
        final = await stream.get_final_message()
    for message in (whole, final):
        assert [block.type for block in message.content] == ["text", "tool_use"]
        text, call = cast(list[Any], message.content)
        assert text.type == "text" and text.text == expected(user(WEATHER), "claude-test")
        assert call.type == "tool_use"
        assert call.name == "get_weather"
        assert call.input == ARGUMENTS
        assert call.id.startswith("toolu_01") and len(call.id) == 30
        assert message.stop_reason == "tool_use"
    assert whole.content[1].id == final.content[1].id  # type: ignore[union-attr]
    assert "".join(json_parts) == '{"city": "Paris", "unit": "celsius"}'
    assert json_parts[0] == ""


async def test_anthropic_sdk_tool_result_gets_a_text_answer(
    claude: anthropic.AsyncAnthropic,
) -> None:
    message = await claude.messages.create(
        model="claude-test",
        max_tokens=1024,
        tools=[WEATHER_TOOL_ANTHROPIC],
        messages=[
            {"role": "user", "content": WEATHER},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"}],
            },
        ],
    )
    assert [block.type for block in message.content] == ["text"]
    assert message.stop_reason == "end_turn"


async def test_anthropic_sdk_thinking(claude: anthropic.AsyncAnthropic) -> None:
    args: dict[str, Any] = {
        "model": "claude-test",
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [{"role": "user", "content": QUESTION}],
    }
    whole = await claude.messages.create(**args)
    async with claude.messages.stream(**args) as stream:
        thoughts = [e.thinking async for e in stream if e.type == "thinking"]
        final = await stream.get_final_message()
    thinking_text = expected(MESSAGES, "claude-test", THINKING, choice=-1)
    for message in (whole, final):
        assert [block.type for block in message.content] == ["thinking", "text"]
        thinking, text = cast(list[Any], message.content)
        assert thinking.type == "thinking" and thinking.thinking == thinking_text
        assert len(thinking.signature) == 128
        assert text.type == "text" and text.text == expected(MESSAGES, "claude-test")
        assert message.usage.output_tokens == THINKING + TOKENS
    assert whole.content[0].signature == final.content[0].signature  # type: ignore[union-attr]
    assert len(thoughts) == THINKING


async def test_anthropic_sdk_max_tokens(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="claude-test", max_tokens=4, messages=[{"role": "user", "content": QUESTION}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    assert final.content[0].type == "text"
    assert final.content[0].text == expected(MESSAGES, "claude-test", 4)
    assert final.usage.output_tokens == 4


async def test_anthropic_sdk_raises_on_in_band_error(claude: anthropic.AsyncAnthropic) -> None:
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error") as caught:
        async with claude.messages.stream(
            model="claude-test",
            max_tokens=1024,
            messages=[{"role": "user", "content": QUESTION}],
            extra_body={"mock": {"error_at": 5}},
        ) as stream:
            async for event in stream:
                seen.append(event.type)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    # events 0-4: message_start, block start, ping (the SDK skips it), 2 text deltas
    text_delta = ["content_block_delta", "text"]  # the raw event, then the SDK's own
    assert seen == ["message_start", "content_block_start", *text_delta, *text_delta]


async def test_anthropic_sdk_injected_overloaded_status(
    claude: anthropic.AsyncAnthropic,
) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        await claude.messages.create(
            model="claude-test",
            max_tokens=1024,
            messages=[{"role": "user", "content": QUESTION}],
            extra_body={"mock": {"status": 529, "retry_after": 3}},
        )
    assert caught.value.status_code == 529
    assert caught.value.response.headers["retry-after"] == "3"
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


@pytest.mark.parametrize(
    ("status", "kind"), [(409, "invalid_request_error"), (422, "invalid_request_error"),
                         (502, "api_error"), (413, "request_too_large")]
)  # fmt: skip
async def test_anthropic_injected_statuses_have_anthropics_error_types(
    session: aiohttp.ClientSession, server: MockServer, status: int, kind: str
) -> None:
    """A status without a message of its own: a client error is an invalid request, a
    server's an API error (Anthropic's types)."""
    body: Any = {"model": "claude-test", "max_tokens": 10, "messages": MESSAGES}
    async with session.post(
        server.url + "/v1/messages", json={**body, "mock": {"status": status}}
    ) as resp:
        assert resp.status == status
        error = (await resp.json())["error"]
    assert error["type"] == kind


async def test_anthropic_api_key_checked(session: aiohttp.ClientSession) -> None:
    body: Any = {"model": "claude-test", "max_tokens": 10, "messages": MESSAGES}
    async with MockServer(tokens=3, api_key="sk-ant-secret") as server:
        bad = anthropic.AsyncAnthropic(base_url=server.url, api_key="wrong", max_retries=0)
        good = anthropic.AsyncAnthropic(base_url=server.url, api_key="sk-ant-secret", max_retries=0)
        try:
            with pytest.raises(anthropic.AuthenticationError):
                await bad.messages.create(**body)
            message = await good.messages.create(**body)
        finally:
            await bad.close()
            await good.close()
        assert message.usage.output_tokens == 3
        for headers, said in (
            ({}, "x-api-key header is required"),  # (the API's words for each case)
            ({"x-api-key": "wrong"}, "invalid x-api-key"),
        ):
            async with session.post(server.url + "/v1/messages", json=body, headers=headers) as r:
                assert r.status == 401
                raw = await r.read()
            error = json.loads(raw)
            assert error["type"] == "error"
            assert error["error"] == {"type": "authentication_error", "message": said}
            assert error["request_id"].startswith("req_011C")
            assert b"sk-ant-secret" not in raw
        bearer = {"Authorization": "Bearer sk-ant-secret"}
        async with session.post(server.url + "/v1/messages", json=body, headers=bearer) as r:
            assert r.status == 200


# --------------------------------------------------------------------------- Anthropic wire


async def test_anthropic_wire_events(server: MockServer, session: aiohttp.ClientSession) -> None:
    async with session.post(server.url + "/v1/messages", json=ENDPOINTS["anthropic"][1]) as r:
        assert r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert r.headers["request-id"].startswith("req_011C")
        raw = await r.read()
    events = sse(raw)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * TOKENS,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    message = events[0][1]["message"]
    assert message["id"].startswith("msg_01")
    assert (message["type"], message["role"], message["model"]) == (
        "message",
        "assistant",
        "claude-test",
    )
    assert (message["content"], message["stop_reason"], message["stop_sequence"]) == (
        [],
        None,
        None,
    )
    usage = message["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (5, 1)
    assert usage["cache_creation_input_tokens"] == usage["cache_read_input_tokens"] == 0
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert raw.count(b'data: {"type": "ping"}') == 1
    tokens = generate_tokens(MESSAGES, "claude-test", TOKENS)
    assert [data["delta"] for _, data in events[3:-3]] == [
        {"type": "text_delta", "text": token} for token in tokens
    ]
    assert events[-3][1] == {"type": "content_block_stop", "index": 0}
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": TOKENS},
    }


async def test_anthropic_wire_thinking_and_tool_blocks(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = {
        **ENDPOINTS["anthropic"][1],
        "messages": user(WEATHER),
        "tools": [WEATHER_TOOL_ANTHROPIC],
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "mock": {"thinking": 3},
    }
    events = sse((await post(session, server, "/v1/messages", body))[1])
    blocks = [(d["index"], d["content_block"]) for n, d in events if n == "content_block_start"]
    assert [block["type"] for _, block in blocks] == ["thinking", "text", "tool_use"]
    assert [index for index, _ in blocks] == [0, 1, 2]
    deltas = [(d["index"], d["delta"]["type"]) for n, d in events if n == "content_block_delta"]
    assert deltas == (
        [(0, "thinking_delta")] * 3
        + [(0, "signature_delta")]
        + [(1, "text_delta")] * TOKENS
        + [(2, "input_json_delta")] * 7
    )
    assert [d["index"] for n, d in events if n == "content_block_stop"] == [0, 1, 2]
    assert blocks[2][1]["input"] == {} and blocks[2][1]["name"] == "get_weather"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-2][1]["usage"] == {"output_tokens": 3 + TOKENS + 5}
    assert [name for name, _ in events[:3]] == ["message_start", "content_block_start", "ping"]


async def test_anthropic_timing_counts_thinking_tokens() -> None:
    body = {
        **ENDPOINTS["anthropic"][1],
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "mock": {"thinking": 2},
    }
    async with (
        MockServer(tokens=3, ttft_ms=100, itl_ms=25) as server,
        aiohttp.ClientSession() as session,
    ):
        loop = asyncio.get_running_loop()
        start = loop.time()
        arrivals: list[tuple[bytes, float]] = []
        async with session.post(server.url + "/v1/messages", json=body) as resp:
            while event := await resp.content.readuntil(b"\n\n"):
                arrivals.append((event.split(b"\n")[0], loop.time() - start))
                if event.startswith(b"event: message_stop"):
                    break
    at = {name: when for name, when in reversed(arrivals)}  # first arrival of each name
    deltas = [when for name, when in arrivals if name == b"event: content_block_delta"]
    # Relative to message_start, so that a pause of the test process (a GC pass) before the
    # request does not count.
    first = at[b"event: message_start"]
    assert first < 0.6
    assert len(deltas) == 2 + 1 + 3  # thinking, signature, text
    assert 0.095 <= deltas[0] - first < 0.6  # message_start did not wait for the first token
    assert deltas[-1] - first >= 0.1 + 4 * 0.025 - 0.01  # 5 tokens after it, thinking included


# --------------------------------------------------------------------------- OpenAI Responses


async def test_responses_sdk_raw_stream(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.responses.create(model="gpt-test", input=QUESTION, stream=True)
    events = [event async for event in stream]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * TOKENS,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    text = expected(user(QUESTION), "gpt-test")
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == text
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.status == "completed"
    assert completed.response.output_text == text
    assert completed.response.id.startswith("resp_") and len(completed.response.id) == 53
    usage = completed.response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (5, TOKENS, TOKENS + 5)
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


async def test_responses_sdk_stream_helper_matches_create(oai: openai.AsyncOpenAI) -> None:
    whole = await oai.responses.create(model="gpt-test", input=QUESTION, instructions="Be brief.")
    async with oai.responses.stream(
        model="gpt-test", input=QUESTION, instructions="Be brief."
    ) as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    conversation = [{"role": "system", "content": "Be brief."}, *user(QUESTION)]
    text = expected(conversation, "gpt-test")
    assert whole.output_text == final.output_text == "".join(deltas) == text
    assert whole.id == final.id
    assert whole.status == final.status == "completed"
    assert whole.instructions == "Be brief."


async def test_responses_sdk_message_list_input(oai: openai.AsyncOpenAI) -> None:
    whole = await oai.responses.create(
        model="gpt-test", input=[{"role": "user", "content": QUESTION}]
    )
    assert whole.output_text == expected(user(QUESTION), "gpt-test")


async def test_responses_sdk_function_call(oai: openai.AsyncOpenAI) -> None:
    async with oai.responses.stream(
        model="gpt-test", input=WEATHER, tools=[WEATHER_TOOL_RESPONSES]
    ) as stream:
        fragments = [
            e.delta async for e in stream if e.type == "response.function_call_arguments.delta"
        ]
        final = await stream.get_final_response()
    whole = await oai.responses.create(
        model="gpt-test", input=WEATHER, tools=[WEATHER_TOOL_RESPONSES]
    )
    for response in (final, whole):
        assert [item.type for item in response.output] == ["message", "function_call"]
        call = response.output[1]
        assert call.type == "function_call"
        assert call.name == "get_weather"
        assert json.loads(call.arguments) == ARGUMENTS
        assert call.call_id.startswith("call_") and call.id and call.id.startswith("fc_")
        assert response.output_text == expected(user(WEATHER), "gpt-test")
    assert "".join(fragments) == '{"city":"Paris","unit":"celsius"}' and len(fragments) == 5
    assert final.output[1].call_id == whole.output[1].call_id  # type: ignore[union-attr]


async def test_responses_sdk_raises_on_in_band_error(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.responses.create(
        model="gpt-test", input=QUESTION, stream=True, extra_body={"mock": {"error_at": 6}}
    )
    seen: list[int] = []
    with pytest.raises(openai.APIError, match="server had an error"):
        async for event in stream:
            seen.append(event.sequence_number)
    assert seen == [0, 1, 2, 3, 4, 5]


async def test_responses_wire_incomplete_on_max_output_tokens(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = {**ENDPOINTS["responses"][1], "max_output_tokens": 3}
    events = sse((await post(session, server, "/v1/responses", body))[1])
    assert [data["sequence_number"] for _, data in events] == list(range(4 + 3 + 4))
    assert all(data["type"] == name for name, data in events)
    name, last = events[-1]
    assert name == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["max_output_tokens"] == 3
    assert last["response"]["usage"]["output_tokens"] == 3
    assert last["response"]["output"][0]["status"] == "incomplete"
    assert last["response"]["output"][0]["content"][0]["text"] == expected(
        user(QUESTION), "gpt-test", 3
    )
    status, raw = await post(session, server, "/v1/responses", {**body, "stream": False})
    assert status == 200
    assert json.loads(raw)["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_responses_wire_function_call_events(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = {**ENDPOINTS["responses"][1], "input": WEATHER, "tools": [WEATHER_TOOL_RESPONSES]}
    events = sse((await post(session, server, "/v1/responses", body))[1])
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert [name for name, _ in events[4 + TOKENS + 3 :]] == [
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * 5,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = events[4 + TOKENS + 3][1]
    assert added["output_index"] == 1
    assert added["item"]["type"] == "function_call" and added["item"]["arguments"] == ""
    done = events[-3][1]
    assert done["arguments"] == '{"city":"Paris","unit":"celsius"}'
    assert done["item_id"] == added["item"]["id"]
    output = events[-1][1]["response"]["output"]
    assert [item["type"] for item in output] == ["message", "function_call"]
    assert output[1]["status"] == "completed"


# --------------------------------------------------------------------------- legacy completions


async def test_completions_sdk_stream_and_whole(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.completions.create(
        model="gpt-test", prompt=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    whole = await oai.completions.create(model="gpt-test", prompt=QUESTION)
    text = expected(user(QUESTION), "gpt-test")
    pieces = [choice.text for chunk in chunks for choice in chunk.choices]
    finishes = [choice.finish_reason for chunk in chunks for choice in chunk.choices]
    assert "".join(pieces) == whole.choices[0].text == text
    assert finishes == [None] * (TOKENS - 1) + ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == TOKENS
    assert all(chunk.object == "text_completion" for chunk in chunks)
    assert chunks[0].id == whole.id and whole.id.startswith("cmpl-") and len(whole.id) == 34
    assert whole.usage is not None and whole.usage.total_tokens == TOKENS + 5


async def test_completions_list_prompt_gives_one_choice_per_prompt(
    oai: openai.AsyncOpenAI,
) -> None:
    whole = await oai.completions.create(model="gpt-test", prompt=["one", "two words"], n=2)
    texts = [(choice.index, choice.text) for choice in whole.choices]
    assert texts == [
        (0, expected(user("one"), "gpt-test")),
        (1, expected(user("one"), "gpt-test", choice=1)),
        (2, expected(user("two words"), "gpt-test")),
        (3, expected(user("two words"), "gpt-test", choice=1)),
    ]
    assert whole.usage is not None
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (3, 4 * TOKENS)


async def test_completions_token_id_prompts_count_one_token_per_id(
    oai: openai.AsyncOpenAI,
) -> None:
    """A prompt of token ids (or a list of them), as the API takes it: one prompt per list,
    its ids its tokens (the answer continues their text, the ids space-separated)."""
    one = await oai.completions.create(model="gpt-test", prompt=[101, 7, 0])
    assert one.usage is not None and one.usage.prompt_tokens == 3
    assert one.choices[0].text == expected(user("101 7 0"), "gpt-test")
    two = await oai.completions.create(model="gpt-test", prompt=[[5, 6], [7]])
    assert [choice.text for choice in two.choices] == [
        expected(user("5 6"), "gpt-test"),
        expected(user("7"), "gpt-test"),
    ]
    assert two.usage is not None and two.usage.prompt_tokens == 3
    for bad in ([1, "a"], [[1], []], [-1], [True]):
        with pytest.raises(openai.BadRequestError, match="token ids"):
            await oai.completions.create(model="gpt-test", prompt=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [False, True])
async def test_completions_echo_sends_the_prompt_back_first(
    oai: openai.AsyncOpenAI, stream: bool
) -> None:
    """``echo``: each choice's text starts with its prompt (its logprobs' offsets after
    it); the usage is that of the answer alone."""
    prompts = ["one", "two words"]
    kwargs: Any = {"model": "gpt-test", "prompt": prompts, "echo": True, "logprobs": 1}
    if stream:
        chunks = [c async for c in await oai.completions.create(**kwargs, stream=True)]
        texts: dict[int, str] = {}
        offsets: dict[int, list[int]] = {}
        for chunk in chunks:
            for choice in chunk.choices:
                texts[choice.index] = texts.get(choice.index, "") + choice.text
                if choice.logprobs is not None:
                    offsets.setdefault(choice.index, []).extend(choice.logprobs.text_offset or [])
        assert chunks[0].choices[0].text == "one"  # (the prompt, before any token)
    else:
        whole = await oai.completions.create(**kwargs)
        texts = {choice.index: choice.text for choice in whole.choices}
        offsets = {c.index: list(c.logprobs.text_offset or []) for c in whole.choices if c.logprobs}
        assert whole.usage is not None and whole.usage.completion_tokens == 2 * TOKENS
    for index, prompt in enumerate(prompts):
        answer = expected(user(prompt), "gpt-test")
        assert texts[index] == prompt + answer
        assert offsets[index][0] == len(prompt)
    with pytest.raises(openai.BadRequestError, match="echo"):
        await oai.completions.create(model="gpt-test", prompt="x", echo="yes")  # type: ignore[arg-type]


async def test_completions_wire_finish_on_last_text_and_length(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = {
        **ENDPOINTS["completions"][1],
        "max_tokens": 3,
        "stream_options": {"include_usage": True},
    }
    raw = (await post(session, server, "/v1/completions", body))[1]
    blocks = split_events(raw, "completions")
    assert blocks[-1] == b"data: [DONE]"
    chunks = [json.loads(block.removeprefix(b"data: ")) for block in blocks[:-1]]
    assert [list(chunk) for chunk in chunks[:-1]] == [
        ["id", "object", "created", "choices", "model", "usage"]
    ] * 3
    assert [chunk["choices"][0] for chunk in chunks[:-1]] == [
        {"text": token, "index": 0, "logprobs": None, "finish_reason": finish}
        for token, finish in zip(
            generate_tokens(user(QUESTION), "gpt-test", 3), [None, None, "length"], strict=True
        )
    ]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


# --------------------------------------------------------------------------- chat tool calls


async def test_chat_sdk_tool_calls(oai: openai.AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": WEATHER}]
    stream = await oai.chat.completions.create(
        model="gpt-test", messages=messages, tools=[WEATHER_TOOL_OPENAI], stream=True
    )
    content, arguments, finish = "", "", None
    ids, names = [], []
    async for chunk in stream:
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for call in delta.tool_calls or []:
            assert call.index == 0
            if call.id:
                ids.append(call.id)
            if call.function and call.function.name:
                names.append(call.function.name)
            arguments += (call.function.arguments or "") if call.function else ""
        finish = chunk.choices[0].finish_reason or finish
    whole = await oai.chat.completions.create(
        model="gpt-test", messages=messages, tools=[WEATHER_TOOL_OPENAI]
    )
    assert content == expected(user(WEATHER), "gpt-test")
    assert json.loads(arguments) == ARGUMENTS
    assert names == ["get_weather"] and len(ids) == 1 and ids[0].startswith("call_")
    assert finish == "tool_calls"
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == content
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].id == ids[0] and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == ARGUMENTS
    assert whole.usage is not None and whole.usage.completion_tokens == TOKENS + 5


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": QUESTION}],  # no "weather"
        [{"role": "user", "content": "What about weatherproof jackets?"}],  # not the word
        [
            {"role": "user", "content": WEATHER},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        ],
    ],
)
async def test_chat_tool_trigger_needs_the_word_in_the_last_user_message(
    oai: openai.AsyncOpenAI, messages: Any
) -> None:
    whole = await oai.chat.completions.create(
        model="gpt-test", messages=messages, tools=[WEATHER_TOOL_OPENAI]
    )
    assert whole.choices[0].finish_reason == "stop"
    assert whole.choices[0].message.tool_calls is None


async def test_chat_tool_call_cut_by_max_tokens_is_length(oai: openai.AsyncOpenAI) -> None:
    whole = await oai.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": WEATHER}],
        tools=[WEATHER_TOOL_OPENAI],
        max_tokens=3,
    )
    assert whole.choices[0].finish_reason == "length"
    assert whole.choices[0].message.tool_calls is None


# --------------------------------------------------------------------------- Ollama


async def test_ollama_client_stream_and_whole(llama: ollama.AsyncClient) -> None:
    parts = [
        part async for part in await llama.chat(model="llama-test", messages=MESSAGES, stream=True)
    ]
    whole = await llama.chat(model="llama-test", messages=MESSAGES)
    text = expected(MESSAGES, "llama-test")
    assert "".join(part.message.content or "" for part in parts) == text
    assert whole.message.content == text and whole.message.role == "assistant"
    assert [part.done for part in parts] == [False] * TOKENS + [True]
    last = parts[-1]
    assert (last.done_reason, last.eval_count, last.prompt_eval_count) == ("stop", TOKENS, 5)
    assert last.message.content == ""
    assert (whole.done, whole.done_reason, whole.eval_count) == (True, "stop", TOKENS)
    for final in (last, whole):
        assert final.total_duration is not None and final.eval_duration is not None
        assert final.prompt_eval_duration is not None and final.load_duration == 0
        assert final.eval_duration > 0
        assert final.total_duration == final.eval_duration + final.prompt_eval_duration
    assert all(part.model == "llama-test" for part in parts)


async def test_ollama_client_thinking(llama: ollama.AsyncClient) -> None:
    parts = [
        p
        async for p in await llama.chat(
            model="llama-test", messages=MESSAGES, think=True, stream=True
        )
    ]
    whole = await llama.chat(model="llama-test", messages=MESSAGES, think=True)
    thinking_text = expected(MESSAGES, "llama-test", THINKING, choice=-1)
    thoughts = [part.message.thinking for part in parts[:THINKING]]
    assert "".join(t or "" for t in thoughts) == thinking_text == whole.message.thinking
    assert all(part.message.content == "" for part in parts[:THINKING])
    assert all(part.message.thinking is None for part in parts[THINKING:])
    assert "".join(p.message.content or "" for p in parts) == expected(MESSAGES, "llama-test")
    assert parts[-1].eval_count == THINKING + TOKENS


async def test_ollama_client_tool_calls(llama: ollama.AsyncClient) -> None:
    messages = user(WEATHER)
    tools: Any = [WEATHER_TOOL_OPENAI]
    parts = [
        p
        async for p in await llama.chat(
            model="llama-test", messages=messages, tools=tools, stream=True
        )
    ]
    whole = await llama.chat(model="llama-test", messages=messages, tools=tools)
    with_calls = [p for p in parts if p.message.tool_calls]
    assert len(with_calls) == 1 and with_calls[0] is parts[-2]
    for message in (with_calls[0].message, whole.message):
        assert message.tool_calls is not None and len(message.tool_calls) == 1
        call = message.tool_calls[0]
        assert call.function.name == "get_weather"
        assert call.function.arguments == ARGUMENTS
    assert whole.message.content == expected(messages, "llama-test")
    assert parts[-1].done_reason == whole.done_reason == "stop"


async def test_ollama_client_num_predict(llama: ollama.AsyncClient) -> None:
    whole = await llama.chat(model="llama-test", messages=MESSAGES, options={"num_predict": 3})
    assert (whole.done_reason, whole.eval_count) == ("length", 3)
    assert whole.message.content == expected(MESSAGES, "llama-test", 3)


async def test_ollama_client_raises_on_mid_stream_error() -> None:
    # the ollama client sends no extra body fields, so the fault is a server default
    async with MockServer(tokens=TOKENS, faults={"error_at": 4}) as server:
        client = ollama.AsyncClient(host=server.url)
        seen: list[str] = []
        try:
            with pytest.raises(ollama.ResponseError, match="error was encountered while running"):
                async for part in await client.chat(
                    model="llama-test", messages=MESSAGES, stream=True
                ):
                    seen.append(part.message.content or "")
        finally:
            await client.close()  # type: ignore[no-untyped-call]
    assert seen == generate_tokens(MESSAGES, "llama-test", 4)


async def test_ollama_client_list_and_version(
    llama: ollama.AsyncClient, server: MockServer, session: aiohttp.ClientSession
) -> None:
    listed = await llama.list()
    assert [model.model for model in listed.models] == ["rxgpt-mock"]
    assert listed.models[0].details is not None and listed.models[0].details.format == "gguf"
    async with session.get(server.url + "/api/version") as resp:
        assert await resp.json() == {"version": "0.12.0"}


async def test_ollama_wire_lines(server: MockServer, session: aiohttp.ClientSession) -> None:
    async with session.post(server.url + "/api/chat", json=ENDPOINTS["ollama"][1]) as resp:
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        raw = await resp.read()
    lines = ndjson(raw)
    assert len(lines) == TOKENS + 1
    tokens = generate_tokens(MESSAGES, "llama-test", TOKENS)
    for line, token in zip(lines, tokens, strict=False):
        assert list(line) == ["model", "created_at", "message", "done"]
        assert line["message"] == {"role": "assistant", "content": token}
        assert line["done"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", lines[0]["created_at"])
    last = lines[-1]
    assert list(last) == [
        "model",
        "created_at",
        "message",
        "done",
        "done_reason",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ]
    assert (last["done"], last["done_reason"], last["eval_count"]) == (True, "stop", TOKENS)
    assert last["message"] == {"role": "assistant", "content": ""}


async def test_ollama_stream_false_is_one_object(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = {**ENDPOINTS["ollama"][1], "stream": False}
    async with session.post(server.url + "/api/chat", json=body) as resp:
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        whole = await resp.json()
    assert whole["done"] is True and whole["message"]["content"] == expected(MESSAGES, "llama-test")


# --------------------------------------------------------------------------- faults, each endpoint


@pytest.mark.parametrize("name", NAMES)
async def test_fault_status_in_the_protocols_envelope(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    path, body, _ = ENDPOINTS[name]
    mock = {"status": 429, "retry_after": 1.5}
    async with session.post(server.url + path, json={**body, "mock": mock}) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1.5"
        error = await resp.json()
    if name == "anthropic":
        assert error["type"] == "error"
        assert error["error"]["type"] == "rate_limit_error"
        assert error["request_id"].startswith("req_011C")
    elif name == "ollama":
        assert error == {"error": "too many requests"}
    else:
        assert error["error"]["type"] == "rate_limit_error"
        assert error["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("name", NAMES)
async def test_fault_fail_first(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    path, body, _ = ENDPOINTS[name]
    mock = {"fail_first": 1, "key": name}
    statuses = [(await post(session, server, path, {**body, "mock": mock}))[0] for _ in range(2)]
    assert statuses == [500, 200]


MISSING = {
    "anthropic": ("Missing required parameter: 'messages'.", "messages"),
    "responses": ("Missing required parameter: 'input'.", "input"),
    "completions": ("Missing required parameter: 'prompt'.", "prompt"),
    # (Ollama answers a request without messages at once, as a "load": see the test of it)
    "ollama": ("Invalid 'messages': expected a list of objects.", "messages"),
}
MISSING_BODIES = {"ollama": {"model": "m", "messages": [1]}}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ["missing", "mock typo"])
async def test_bad_request_in_the_protocols_envelope(
    server: MockServer, session: aiohttp.ClientSession, name: str, case: str
) -> None:
    path, body, _ = ENDPOINTS[name]
    if case == "missing":
        body = MISSING_BODIES.get(name, {"model": "m"})
        message, param = MISSING[name]
    else:
        body = {**body, "mock": {"drop_aftr": 1}}
        message, param = "unknown mock option(s): drop_aftr", "mock"
    status, raw = await post(session, server, path, body)
    assert status == 400
    error = json.loads(raw)
    if name == "anthropic":
        assert error["type"] == "error"
        assert error["error"] == {"type": "invalid_request_error", "message": message}
    elif name == "ollama":
        assert error == {"error": message}
    else:
        assert error["error"] == {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": None,
        }


@pytest.mark.parametrize("name", NAMES)
async def test_api_key_required_on_every_endpoint(
    session: aiohttp.ClientSession, name: str
) -> None:
    path, body, _ = ENDPOINTS[name]
    async with MockServer(tokens=2, api_key="k-123") as server:
        status, raw = await post(session, server, path, body)
        assert status == 401 and b"k-123" not in raw
        headers = {"Authorization": "Bearer k-123"}
        async with session.post(server.url + path, json=body, headers=headers) as resp:
            assert resp.status == 200
        if name == "ollama":
            async with session.get(server.url + "/api/tags") as resp:
                assert resp.status == 401


@pytest.mark.parametrize("name", NAMES)
async def test_plain_stream_event_count_and_end_signal(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    events = split_events(await stream_raw(session, server, name), name)
    assert len(events) == ENDPOINTS[name][2]
    assert END_SIGNAL[name] in events[-1]
    assert sum(END_SIGNAL[name] in event for event in events) == 1


@pytest.mark.parametrize("name", NAMES)
async def test_fault_no_done_omits_the_end_signal(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    plain = split_events(await stream_raw(session, server, name), name)
    events = split_events(await stream_raw(session, server, name, no_done=True), name)
    assert len(events) == ENDPOINTS[name][2] - 1
    assert not any(END_SIGNAL[name] in event for event in events)
    assert [normalise(e) for e in events] == [normalise(e) for e in plain[:-1]]


@pytest.mark.parametrize("name", NAMES)
async def test_fault_error_at_ends_with_the_protocols_error(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    plain = split_events(await stream_raw(session, server, name), name)
    events = split_events(await stream_raw(session, server, name, error_at=4), name)
    errors = IN_BAND_ERROR[name]
    assert [normalise(e) for e in events[:4]] == [normalise(e) for e in plain[:4]]
    assert len(events) == 4 + len(errors)
    for event, marker in zip(events[4:], errors, strict=True):
        assert event.startswith(marker)
    if name == "responses":
        error, failed = (json.loads(event.split(b"data: ", 1)[1]) for event in events[4:])
        assert error["sequence_number"] == 4 and failed["sequence_number"] == 5
        assert error["error"]["type"] == "server_error"
        assert failed["response"]["status"] == "failed"
        assert failed["response"]["error"]["code"] == "server_error"


@pytest.mark.parametrize("name", NAMES)
async def test_fault_garbage_at(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    events = split_events(await stream_raw(session, server, name, garbage_at=2), name)
    assert len(events) == ENDPOINTS[name][2]
    garbage = {
        "ollama": b"this is not json",
        "anthropic": b"event: content_block_delta\ndata: this is not json",
    }.get(name, b"data: this is not json")
    assert events[2] == garbage
    assert END_SIGNAL[name] in events[-1]


async def test_garbage_at_fails_each_vendors_parser(
    claude: anthropic.AsyncAnthropic, oai: openai.AsyncOpenAI
) -> None:
    """The injected garbage is an event each SDK reads, so each SDK fails on it."""
    garbage: Any = {"mock": {"garbage_at": 3}}
    with pytest.raises(json.JSONDecodeError):
        async with claude.messages.stream(
            model="claude-test", max_tokens=64, messages=MESSAGES, extra_body=garbage
        ) as stream:
            await stream.get_final_message()
    with pytest.raises(json.JSONDecodeError):
        chat = await oai.chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True, extra_body=garbage
        )
        [chunk async for chunk in chat]
    with pytest.raises(json.JSONDecodeError):
        responses = await oai.responses.create(
            model="gpt-test", input=QUESTION, stream=True, extra_body=garbage
        )
        [event async for event in responses]


@pytest.mark.parametrize("name", NAMES)
async def test_fault_drop_after(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    path, body, _ = ENDPOINTS[name]
    received = b""
    async with session.post(server.url + path, json={**body, "mock": {"drop_after": 3}}) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for data in resp.content.iter_any():
                received += data
    assert len(split_events(received, name)) == 3


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("ending", "eol"), [("crlf", b"\r\n"), ("cr", b"\r")])
async def test_fault_line_endings(
    server: MockServer, session: aiohttp.ClientSession, name: str, ending: str, eol: bytes
) -> None:
    raw = await stream_raw(session, server, name, line_endings=ending)
    assert len(split_events(raw, name, eol)) == ENDPOINTS[name][2]
    bare = raw.replace(eol, b"")
    assert b"\n" not in bare and b"\r" not in bare
    plain = await stream_raw(session, server, name)
    assert normalise(raw.replace(eol, b"\n")) == normalise(plain)


@pytest.mark.parametrize("name", NAMES)
async def test_fault_chunk_bytes_gives_the_same_bytes(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    chunked = await stream_raw(session, server, name, chunk_bytes=5)
    plain = await stream_raw(session, server, name)
    assert normalise(chunked) == normalise(plain)


@pytest.mark.parametrize("name", NAMES)
async def test_fault_gzip(server: MockServer, name: str) -> None:
    path, body, _ = ENDPOINTS[name]
    async with (
        aiohttp.ClientSession(auto_decompress=False) as raw_session,
        raw_session.post(server.url + path, json={**body, "mock": {"gzip": True}}) as resp,
    ):
        assert resp.headers["Content-Encoding"] == "gzip"
        compressed = await resp.read()
    assert compressed[:2] == b"\x1f\x8b"
    async with aiohttp.ClientSession() as session:
        plain = await stream_raw(session, server, name)
    assert normalise(gzip.decompress(compressed)) == normalise(plain)


KEEPALIVES = {
    "anthropic": b'event: ping\ndata: {"type": "ping"}\n\n',
    "responses": b": keep-alive\n\n",
    "completions": b": keep-alive\n\n",
}


@pytest.mark.parametrize("name", NAMES)
async def test_fault_stall_after_with_keepalive(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    path, body, _ = ENDPOINTS[name]
    mock = {"stall_after": 2, "keepalive_ms": 20}
    separator = b"\n" if name == "ollama" else b"\n\n"
    async with session.post(server.url + path, json={**body, "mock": mock}) as resp:
        first = [await asyncio.wait_for(resp.content.readuntil(separator), 2) for _ in range(2)]
        if name == "ollama":  # NDJSON has no keep-alive: nothing more comes
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(resp.content.read(1), 0.15)
        else:
            pings = [await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2) for _ in range(3)]
            assert pings == [KEEPALIVES[name]] * 3
    assert all(not event.startswith(b":") for event in first)


async def test_anthropic_requires_max_tokens(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    path, body, _ = ENDPOINTS["anthropic"]
    status, raw = await post(
        session, server, path, {k: v for k, v in body.items() if k != "max_tokens"}
    )
    assert status == 400
    assert json.loads(raw)["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }


@pytest.mark.parametrize("name", NAMES)
async def test_stream_must_be_a_boolean(
    server: MockServer, session: aiohttp.ClientSession, name: str
) -> None:
    path, body, _ = ENDPOINTS[name]
    status, raw = await post(session, server, path, {**body, "stream": "yes"})
    assert status == 400 and b"'stream'" in raw and b"boolean" in raw
    status, _ = await post(session, server, path, {**body, "stream": None})  # null: the default
    assert status == 200
