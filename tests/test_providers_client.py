"""Client(provider=...) against the embedded server's endpoints, with the vendor SDKs as oracles.

The same request goes through rxgpt and through the provider's own SDK; the result
rxgpt accumulates must equal what the SDK builds from the same server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest

import rxgpt
from rxgpt import Client, ReasoningSignature, Retry, TextDelta, ToolCallArguments
from rxgpt.mock import MockServer

#: A weather tool's parameters: the mock's "weather" call fills them with its fixed values
WEATHER_PARAMETERS: Any = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
}

MESSAGES = [{"role": "user", "content": "Tell me about streams."}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS_ANTHROPIC = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": WEATHER_PARAMETERS,
    }
]
TOOLS_OPENAI = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": WEATHER_PARAMETERS,
        },
    }
]


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer(tokens=24) as running:
        yield running


def client(server: MockServer, provider: str) -> Client:
    base = server.base_url if provider.startswith("openai") else server.url
    return Client(
        base, api_key="sk-test-provider-000000", provider=provider, retry=Retry(attempts=1)
    )


def _strip(value: Any) -> Any:
    """Drop SDK-private parse results before comparing."""
    if isinstance(value, dict):
        return {
            k: _strip(v)
            for k, v in value.items()
            if k not in ("parsed_output", "parsed", "parsed_arguments", "output_text")
        }
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


async def test_anthropic_text_equals_the_sdk_message(server: MockServer) -> None:
    sdk = anthropic.AsyncAnthropic(base_url=server.url, api_key="sk-test-provider-000000")
    async with sdk.messages.stream(
        model="claude-test", max_tokens=100, messages=MESSAGES
    ) as stream:
        expected = await stream.get_final_message()
    await sdk.close()
    async with client(server, "anthropic") as rx:
        completion = await rx.chat(
            model="claude-test", messages=MESSAGES, max_tokens=100
        ).completion()
    assert completion.state == "complete"
    assert completion.text == expected.content[0].text  # type: ignore[union-attr]
    ours = anthropic.types.Message.model_validate(completion.to_anthropic()).model_dump()
    assert _strip(ours) == _strip(expected.model_dump())


async def test_anthropic_thinking_and_tool_use(server: MockServer) -> None:
    params: dict[str, Any] = {
        "max_tokens": 2048,
        "tools": TOOLS_ANTHROPIC,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    sdk = anthropic.AsyncAnthropic(base_url=server.url, api_key="sk-test-provider-000000")
    async with sdk.messages.stream(model="claude-test", messages=WEATHER, **params) as stream:
        expected = await stream.get_final_message()
    await sdk.close()
    async with client(server, "anthropic") as rx:
        stream_ = rx.chat(model="claude-test", messages=WEATHER, **params)
        deltas: list[rxgpt.Delta] = []
        stream_.subscribe(deltas.append)
        completion = await stream_.completion()
    assert completion.finish_reason == "tool_calls"
    assert completion.choices[0].raw_finish_reason == "tool_use"
    assert completion.tool_calls[0].name == "get_weather"
    assert completion.tool_calls[0].parsed_arguments() == {"city": "Paris", "unit": "celsius"}
    assert completion.choices[0].reasoning
    assert any(isinstance(d, ReasoningSignature) for d in deltas)
    assert any(isinstance(d, ToolCallArguments) for d in deltas)
    ours = anthropic.types.Message.model_validate(completion.to_anthropic()).model_dump()
    assert _strip(ours) == _strip(expected.model_dump())


async def test_anthropic_in_band_overload_is_a_retryable_stream_error(server: MockServer) -> None:
    async with client(server, "anthropic") as rx:
        stream = rx.chat(model="claude-test", messages=MESSAGES, mock={"error_at": 5})
        with pytest.raises(rxgpt.StreamError) as info:
            await stream.completion()
    assert info.value.retryable is True
    assert info.value.error_type == "overloaded_error"
    assert info.value.partial is not None and info.value.partial.state == "error"


async def test_responses_equal_the_sdk_response(server: MockServer) -> None:
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-provider-000000")
    async with sdk.responses.stream(model="gpt-test", input=MESSAGES) as stream:  # type: ignore[arg-type]
        expected = await stream.get_final_response()
    await sdk.close()
    async with client(server, "openai-responses") as rx:
        completion = await rx.chat(model="gpt-test", messages=MESSAGES).completion()
    assert completion.state == "complete"
    assert completion.text == expected.output_text
    ours = openai._models.construct_type(
        type_=openai.types.responses.Response, value=completion.to_responses()
    )
    mine, theirs = _strip(ours.model_dump()), _strip(expected.model_dump())  # type: ignore[attr-defined]
    # two requests, each stamped by the server's clock: they may straddle a second
    for key in ("created_at", "completed_at"):
        a, b = mine.pop(key, None), theirs.pop(key, None)
        assert (a is None) == (b is None) and (a is None or abs(a - b) <= 1), key
    assert mine == theirs


async def test_responses_function_call(server: MockServer) -> None:
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER_PARAMETERS}]
    async with client(server, "openai-responses") as rx:
        completion = await rx.chat(model="gpt-test", messages=WEATHER, tools=tools).completion()
    assert completion.finish_reason == "tool_calls"
    call = completion.tool_calls[0]
    assert call.name == "get_weather" and call.id and call.item_id
    assert call.parsed_arguments() == {"city": "Paris", "unit": "celsius"}


async def test_legacy_completions(server: MockServer) -> None:
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-provider-000000")
    expected = await sdk.completions.create(model="gpt-test", prompt="Tell me about streams.")
    await sdk.close()
    async with client(server, "openai-completions") as rx:
        text = await rx.chat(model="gpt-test", messages=[], prompt="Tell me about streams.").text()
    assert text == expected.choices[0].text


async def test_ollama_native_ndjson(server: MockServer) -> None:
    import ollama

    sdk = ollama.AsyncClient(host=server.url)
    expected = await sdk.chat(model="llama-test", messages=MESSAGES, stream=False)
    await sdk._client.aclose()
    async with client(server, "ollama") as rx:
        stream = rx.chat(model="llama-test", messages=MESSAGES)
        texts: list[str] = []
        stream.subscribe(lambda d: texts.append(d.text) if isinstance(d, TextDelta) else None)
        completion = await stream.completion()
    assert completion.text == expected.message.content == "".join(texts)
    assert completion.usage is not None
    assert completion.usage.output_tokens == expected.eval_count
    assert completion.finish_reason == "stop"


async def test_ollama_thinking_and_tool_call(server: MockServer) -> None:
    tools = TOOLS_OPENAI
    async with client(server, "ollama") as rx:
        completion = await rx.chat(
            model="llama-test", messages=WEATHER, tools=tools, think=True
        ).completion()
    assert completion.choices[0].reasoning
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls[0].arguments == '{"city":"Paris","unit":"celsius"}'


async def test_chat_completions_tool_call_matches_openai_sdk(server: MockServer) -> None:
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test-provider-000000")
    async with sdk.chat.completions.stream(
        model="gpt-test",
        messages=WEATHER,
        tools=TOOLS_OPENAI,  # type: ignore[arg-type]
    ) as stream:
        async for _ in stream:
            pass
        expected = stream.current_completion_snapshot
    await sdk.close()
    async with client(server, "openai") as rx:
        completion = await rx.chat(
            model="gpt-test", messages=WEATHER, tools=TOOLS_OPENAI
        ).completion()
    ours = completion.to_openai()["choices"][0]["message"]
    theirs = expected.choices[0].message
    assert ours["tool_calls"][0]["function"]["arguments"] == theirs.tool_calls[0].function.arguments  # type: ignore[index]
    assert ours["content"] == theirs.content
    assert completion.finish_reason == "tool_calls"


def test_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown provider 'nope'"):
        Client(provider="nope")


def test_provider_requests_carry_the_right_auth_and_paths() -> None:
    anthropic_req = rxgpt.PROVIDERS["anthropic"].request(
        "https://api.anthropic.com", "k-1", "m", [{"role": "system", "content": "S"}, *MESSAGES], {}
    )
    assert anthropic_req.url == "https://api.anthropic.com/v1/messages"
    assert anthropic_req.headers == {"anthropic-version": "2023-06-01", "x-api-key": "k-1"}
    assert anthropic_req.body["system"] == "S" and anthropic_req.body["stream"] is True
    assert all(m["role"] != "system" for m in anthropic_req.body["messages"])
    gemini_req = rxgpt.PROVIDERS["gemini"].request(
        "https://g.example", "k-2", "gemini-2.5-flash", MESSAGES, {"generationConfig": {"x": 1}}
    )
    assert gemini_req.url.endswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert gemini_req.headers == {"x-goog-api-key": "k-2"}
    assert gemini_req.body["contents"] == [
        {"role": "user", "parts": [{"text": MESSAGES[0]["content"]}]}
    ]
    assert gemini_req.body["generationConfig"] == {"x": 1}
    ollama_req = rxgpt.PROVIDERS["ollama"].request("http://h:11434", None, "m", MESSAGES, {})
    assert ollama_req.url == "http://h:11434/api/chat" and ollama_req.headers == {}
