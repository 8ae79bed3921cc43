"""Request parameters the mock honours, checked with the vendors' own SDKs as oracles.

Every stream is parsed by the real client (openai, anthropic, ollama), so every chunk must be
acceptable to it; the values are checked against what the parameter asks for.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import ollama
import openai
import pytest

from rxgpt.mock import MockServer
from rxgpt.mock._dialect import CONTEXT_LENGTH

MESSAGES: Any = [{"role": "user", "content": "Tell me about streams, please"}]
SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "when": {"type": "string", "format": "date"},
        "detail": {"anyOf": [{"$ref": "#/$defs/detail"}, {"type": "null"}]},
    },
    "required": ["city", "days", "unit", "tags", "when", "detail"],
    "additionalProperties": False,
    "$defs": {
        "detail": {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}, "score": {"type": "number"}},
            "required": ["ok", "score"],
            "additionalProperties": False,
        }
    },
}
TOOLS: Any = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
    {
        "type": "function",
        "function": {"name": "forecast", "strict": True, "parameters": SCHEMA},
    },
]


def valid(value: Any, schema: Any = SCHEMA, root: Any = SCHEMA) -> bool:
    """A small JSON Schema check (the subset used above)."""
    if "$ref" in schema:
        return valid(value, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root)
    if "anyOf" in schema:
        return any(valid(value, option, root) for option in schema["anyOf"])
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return (
            isinstance(value, dict)
            and set(schema.get("required", [])) <= set(value)
            and set(value) <= set(props)
            and all(valid(value[k], props[k], root) for k in value)
        )
    if kind == "array":
        return (
            isinstance(value, list)
            and len(value) >= schema.get("minItems", 0)
            and all(valid(item, schema["items"], root) for item in value)
        )
    if kind == "integer":
        return isinstance(value, int) and schema.get("minimum", value) <= value <= schema.get(
            "maximum", value
        )
    if kind == "number":
        return isinstance(value, int | float)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    return isinstance(value, str)


@pytest.fixture
async def oai(server: MockServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    yield client
    await client.close()


async def post_raw(server: MockServer, body: Any) -> bytes:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.base_url + "/chat/completions", json=body) as resp,
    ):
        return await resp.read()


async def collect(oai: openai.AsyncOpenAI, **params: Any) -> list[Any]:
    stream = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, **params
    )
    return [chunk async for chunk in stream]


def text(chunks: list[Any], index: int = 0) -> str:
    return "".join(
        c.choices[0].delta.content or ""
        for c in chunks
        if c.choices and c.choices[0].index == index
    )


async def test_role_only_first_chunk_and_usage_tail(oai: openai.AsyncOpenAI) -> None:
    chunks = await collect(oai, stream_options={"include_usage": True})
    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and not first.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12


async def test_continuous_usage_stats_on_every_chunk(server: MockServer) -> None:
    body = {
        "model": "m",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
    }
    raw = await post_raw(server, body)
    chunks = [json.loads(b[6:]) for b in raw.split(b"\n\n") if b.startswith(b"data: {")]
    usages = [c["usage"] for c in chunks]
    assert all(u is not None for u in usages)
    counts = [u["completion_tokens"] for u in usages]
    assert counts == sorted(counts) and counts[-1] == 12 and counts[0] == 0
    assert all(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] for u in usages)


async def test_stop_cuts_before_the_sequence(oai: openai.AsyncOpenAI) -> None:
    full = text(await collect(oai))
    stop = full.split()[3]
    chunks = await collect(oai, stop=[stop, "zzz-never"])
    cut = text(chunks)
    assert cut == full[: full.index(stop)] and stop not in cut
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_max_completion_tokens_finishes_with_length(oai: openai.AsyncOpenAI) -> None:
    chunks = await collect(oai, max_completion_tokens=3)
    assert chunks[-1].choices[0].finish_reason == "length"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 3


async def test_ignore_eos_runs_to_the_cap_as_vllm(oai: openai.AsyncOpenAI) -> None:
    """vLLM's ``ignore_eos`` (benchmarks send it for fixed output lengths): exactly the cap,
    finish ``length``, on chat and legacy completions, streamed or not, reasoning counted."""
    eos: Any = {"ignore_eos": True}
    chunks = await collect(
        oai, max_completion_tokens=40, stream_options={"include_usage": True}, extra_body=eos
    )
    assert chunks[-1].usage.completion_tokens == 40  # (the server's own length is 12)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 40
    whole = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, max_tokens=40, extra_body=eos
    )
    assert whole.choices[0].message.content == text(chunks)
    assert whole.usage is not None and whole.usage.completion_tokens == 40
    reasoned = await oai.chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        max_tokens=40,
        reasoning_effort="low",
        extra_body=eos,
    )
    assert reasoned.usage is not None and reasoned.usage.completion_tokens == 40
    legacy = await oai.completions.create(
        model="gpt-test", prompt="Tell me", max_tokens=33, extra_body=eos
    )
    assert legacy.usage is not None and legacy.usage.completion_tokens == 33
    assert legacy.choices[0].finish_reason == "length"
    plain = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, max_tokens=40, extra_body={"ignore_eos": False}
    )
    assert plain.usage is not None and plain.usage.completion_tokens == 12


async def test_min_tokens_lengthens_and_holds_stop_sequences_back(
    oai: openai.AsyncOpenAI,
) -> None:
    """vLLM's ``min_tokens``: at least that many tokens, and no stop sequence before them."""
    longer = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, max_tokens=50, extra_body={"min_tokens": 30}
    )
    assert longer.usage is not None and longer.usage.completion_tokens == 30
    assert longer.choices[0].finish_reason == "stop"
    words = text(await collect(oai, max_tokens=50, extra_body={"min_tokens": 30})).split(" ")
    stop = words[2]  # (a word early in the text: without min_tokens it cuts there)
    early = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stop=[stop], max_tokens=50
    )
    assert early.usage is not None and early.usage.completion_tokens < 5
    held = await oai.chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,
        stop=[stop],
        max_tokens=50,
        extra_body={"min_tokens": 8},
    )
    content = held.choices[0].message.content or ""
    assert held.usage is not None and held.usage.completion_tokens >= 8
    assert content == " ".join(words)[: len(content)]
    # (a length forced past the context is refused at once, not generated: a hostile cap)
    for cap, huge in ((10**12, {"ignore_eos": True}), (None, {"min_tokens": 10**12})):
        with pytest.raises(openai.BadRequestError, match="maximum context length"):
            await oai.chat.completions.create(
                model="gpt-test", messages=MESSAGES, max_tokens=cap, extra_body=huge
            )
    # (nor does an answer pass the context: a longer mock.tokens ends there, with `length`)
    whole = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, extra_body={"mock": {"tokens": 10**12}}
    )
    assert whole.usage is not None and whole.usage.completion_tokens == CONTEXT_LENGTH
    assert whole.choices[0].finish_reason == "length"
    for wrong in ({"min_tokens": 51}, {"min_tokens": -1}, {"min_tokens": "5"}, {"ignore_eos": 1}):
        with pytest.raises(openai.BadRequestError, match=r"min_tokens|ignore_eos"):
            await oai.chat.completions.create(
                model="gpt-test", messages=MESSAGES, max_tokens=50, extra_body=wrong
            )


async def test_responses_effort_alone_reasons_hidden() -> None:
    """As the API: ``reasoning.effort`` without a summary gives a reasoning item with an empty
    summary, its tokens in the usage, and their decode steps before the first text delta."""
    async with (
        MockServer(tokens=4, itl_ms=5, thinking_tokens=10, timeline=True) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client,
    ):
        whole = await client.responses.create(
            model="o-test", input="Tell me", reasoning={"effort": "low"}
        )
        assert [item.type for item in whole.output] == ["reasoning", "message"]
        assert whole.output[0].type == "reasoning" and whole.output[0].summary == []
        assert whole.usage is not None
        assert whole.usage.output_tokens_details.reasoning_tokens == 10
        assert whole.usage.output_tokens == 14
        stream = await client.responses.create(
            model="o-test", input="Tell me", reasoning={"effort": "low"}, stream=True
        )
        seen = [event async for event in stream]
        steps = [chunk.step for chunk in server.timeline[-1].chunks]
        plain = []
        async with aiohttp.ClientSession() as session:
            for effort in ("none", "minimal"):
                body = {"model": "o-test", "input": "Tell me", "reasoning": {"effort": effort}}
                async with session.post(server.base_url + "/responses", json=body) as resp:
                    plain.append([item["type"] for item in (await resp.json())["output"]])
    assert plain == [["message"], ["message"]]
    assert not [event.type for event in seen if "reasoning_summary" in event.type]
    # (the server's ground truth: the item at once, ten silent steps, the item's end with
    # the message's start at step 10, then one text delta per step from step 11)
    assert steps == [0, 10, 11, 12, 13, 14]
    final = seen[-1].response
    assert final.output[0].summary == [] and final.output_text == whole.output_text


async def test_the_token_cap_counts_the_reasoning(oai: openai.AsyncOpenAI) -> None:
    capped = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, reasoning_effort="high", max_completion_tokens=3
    )
    assert capped.usage is not None and capped.usage.completion_tokens == 3
    assert capped.choices[0].finish_reason == "length"
    assert not capped.choices[0].message.content  # the reasoning took the whole cap
    response = await oai.responses.create(
        model="gpt-test", input="Tell me", reasoning={"summary": "auto"}, max_output_tokens=3
    )
    assert response.usage is not None and response.usage.output_tokens == 3
    assert response.status == "incomplete"


async def test_n_and_seed(oai: openai.AsyncOpenAI) -> None:
    chunks = await collect(oai, n=2)
    assert text(chunks, 0) != text(chunks, 1)
    again = text(await collect(oai, seed=7))
    assert again == text(await collect(oai, seed=7)) != text(await collect(oai, seed=8))


async def test_logprobs_with_top_logprobs(oai: openai.AsyncOpenAI) -> None:
    chunks = await collect(oai, logprobs=True, top_logprobs=3)
    entries = [
        entry
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for entry in c.choices[0].logprobs.content
    ]
    assert len(entries) == 12
    assert "".join(e.token for e in entries) == text(chunks)
    assert all(len(e.top_logprobs) == 3 and e.logprob <= 0 for e in entries)
    whole = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, logprobs=True, top_logprobs=2
    )
    assert whole.choices[0].logprobs is not None
    assert len(whole.choices[0].logprobs.content or []) == 12


async def test_logprobs_per_token_up_to_twenty(oai: openai.AsyncOpenAI) -> None:
    """Twenty alternatives when asked (probabilities adding up to at most 1), and one entry
    per token when a chunk carries several: streamed as whole."""
    extra = {"mock": {"tokens_per_chunk": 3, "tokens": 8}}
    chunks = await collect(oai, logprobs=True, top_logprobs=20, extra_body=extra)
    streamed = [
        entry
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for entry in c.choices[0].logprobs.content or []
    ]
    whole = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, logprobs=True, top_logprobs=20, extra_body=extra
    )
    assert whole.choices[0].logprobs is not None
    assert [e.model_dump() for e in streamed] == [
        e.model_dump() for e in whole.choices[0].logprobs.content or []
    ]
    assert len(streamed) == 8 and len([c for c in chunks if c.choices and text([c])]) == 3
    for entry in streamed:
        assert len(entry.top_logprobs) == 20 and entry.top_logprobs[0].token == entry.token
        assert sum(math.exp(alt.logprob) for alt in entry.top_logprobs) <= 1


@pytest.mark.parametrize("kind", ["json_object", "json_schema"])
async def test_response_format_is_valid_json(oai: openai.AsyncOpenAI, kind: str) -> None:
    fmt: Any = {"type": "json_object"}
    if kind == "json_schema":
        fmt = {
            "type": "json_schema",
            "json_schema": {"name": "f", "schema": SCHEMA, "strict": True},
        }
    value = json.loads(text(await collect(oai, response_format=fmt)))
    assert isinstance(value, dict)
    if kind == "json_schema":
        assert valid(value)
    whole = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, response_format=fmt
    )
    assert json.loads(whole.choices[0].message.content or "") == value


async def test_reasoning_content_deltas(server: MockServer) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True, "reasoning_effort": "high"}
    raw = await post_raw(server, body)
    chunks = [json.loads(b[6:]) for b in raw.split(b"\n\n") if b.startswith(b"data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = [i for i, d in enumerate(deltas) if d.get("reasoning_content")]
    content = [i for i, d in enumerate(deltas) if d.get("content")]
    assert len(reasoning) == 16 and max(reasoning) < min(content)


async def test_tool_choice_required_generates_schema_arguments(oai: openai.AsyncOpenAI) -> None:
    choice: Any = {"type": "function", "function": {"name": "forecast"}}
    chunks = await collect(oai, tools=TOOLS, tool_choice=choice)
    calls = [
        call
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for call in c.choices[0].delta.tool_calls
    ]
    assert calls[0].function.name == "forecast"
    arguments = json.loads("".join(call.function.arguments or "" for call in calls))
    assert valid(arguments)
    assert text(chunks) == ""  # no text beside a forced call
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    chunks = await collect(oai, tools=TOOLS, tool_choice="required")
    names = [
        call.function.name
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for call in c.choices[0].delta.tool_calls
        if call.function and call.function.name
    ]
    assert names == ["lookup"]
    # "none" never calls, even when the last message asks about the weather
    weather: Any = [{"role": "user", "content": "What is the weather?"}]
    stream = await oai.chat.completions.create(
        model="gpt-test", messages=weather, stream=True, tools=TOOLS, tool_choice="none"
    )
    seen = [c async for c in stream]
    assert seen and all(not (c.choices and c.choices[0].delta.tool_calls) for c in seen)


async def test_a_forced_call_is_whole_under_a_cap_and_must_name_a_tool_given(
    oai: openai.AsyncOpenAI,
) -> None:
    """As the API: a forced call comes whatever the token cap, its message content is null,
    and forcing a tool that was not offered (or any tool, with none offered) is a 400."""
    choice: Any = {"type": "function", "function": {"name": "forecast"}}
    chunks = await collect(oai, tools=TOOLS, tool_choice=choice, max_tokens=2)
    assert chunks[0].choices[0].delta.content is None
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    async with oai.chat.completions.stream(
        model="gpt-test", messages=MESSAGES, tools=TOOLS, tool_choice="required", max_tokens=2
    ) as stream:
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert message.content is None and message.tool_calls
    whole = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, tools=TOOLS, tool_choice=choice
    )
    assert whole.choices[0].message.content is None
    for wrong in [
        {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        {"tool_choice": "required"},
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            await oai.chat.completions.create(model="gpt-test", messages=MESSAGES, **wrong)
        assert "tool_choice" in caught.value.message


async def test_mock_object_steers_the_tool_call(oai: openai.AsyncOpenAI) -> None:
    extra = {"mock": {"tool_call": "forecast"}}
    whole = await oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, tools=TOOLS, extra_body=extra
    )
    calls = whole.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["forecast"]  # type: ignore[union-attr]
    assert valid(json.loads(calls[0].function.arguments))  # type: ignore[union-attr]
    assert whole.choices[0].finish_reason == "tool_calls"
    never = await oai.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
        extra_body={"mock": {"tool_call": False}},
    )
    assert not never.choices[0].message.tool_calls


async def test_anthropic_forced_tool_and_thinking_via_mock(server: MockServer) -> None:
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="test", max_retries=0)
    tool: Any = {"name": "forecast", "input_schema": SCHEMA}
    async with client.messages.stream(
        model="claude-test",
        max_tokens=1024,
        messages=MESSAGES,
        tools=[tool],
        tool_choice={"type": "tool", "name": "forecast"},
    ) as stream:
        message = await stream.get_final_message()
    blocks = [b for b in message.content if b.type == "tool_use"]
    assert len(blocks) == 1 and valid(blocks[0].input)
    assert message.stop_reason == "tool_use"
    # the call alone, at index 0, as the API sends it (no empty text block before it)
    assert [b.type for b in message.content] == ["tool_use"]
    whole = await client.messages.create(
        model="claude-test", max_tokens=1024, messages=MESSAGES, tools=[tool],
        tool_choice={"type": "any"},
    )  # fmt: skip
    assert [b.type for b in whole.content] == ["tool_use"]
    # a cap the thinking takes whole: the thinking block alone, cut by max_tokens
    cut = await client.messages.create(
        model="claude-test", max_tokens=4, messages=MESSAGES, extra_body={"mock": {"thinking": 8}}
    )
    assert [b.type for b in cut.content] == ["thinking"] and cut.stop_reason == "max_tokens"
    # the API's rules for thinking: a budget of 1024 or more, below max_tokens, no forced tool
    for max_tokens, budget, choice in [(2048, 500, None), (1000, 1024, None), (4096, 1024, "any")]:
        with pytest.raises(anthropic.BadRequestError):
            await client.messages.create(
                model="claude-test", max_tokens=max_tokens, messages=MESSAGES, tools=[tool],
                thinking={"type": "enabled", "budget_tokens": budget},
                **({"tool_choice": {"type": choice}} if choice else {}),
            )  # fmt: skip
    await client.close()


async def test_ollama_client_accepts_generate_and_format(server: MockServer) -> None:
    client = ollama.AsyncClient(host=server.url)
    parts = [part async for part in await client.generate(model="m", prompt="hi", stream=True)]
    assert parts[-1].done and "".join(p.response or "" for p in parts)
    whole = await client.chat(model="m", messages=MESSAGES, format=SCHEMA)
    assert valid(json.loads(whole.message.content or ""))
    await client.close()  # type: ignore[no-untyped-call]


async def test_responses_reasoning_items_and_structured_output(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.responses.create(
        model="gpt-test",
        input="Tell me about streams, please",
        reasoning={"effort": "low", "summary": "auto"},
        stream=True,
    )
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert "response.reasoning_summary_text.delta" in kinds
    assert kinds.index("response.reasoning_summary_text.delta") < kinds.index(
        "response.output_text.delta"
    )
    final = events[-1].response  # type: ignore[union-attr]
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 16
    fmt: Any = {"format": {"type": "json_schema", "name": "f", "schema": SCHEMA, "strict": True}}
    whole = await oai.responses.create(model="gpt-test", input="hi", text=fmt)
    assert valid(json.loads(whole.output_text))
    forced = await oai.responses.create(
        model="gpt-test",
        input="hi",
        tools=[{"type": "function", "name": "forecast", "parameters": SCHEMA, "strict": True}],
        tool_choice="required",
    )
    assert [item.type for item in forced.output] == ["function_call"]
    call = forced.output[0]
    assert call.type == "function_call" and valid(json.loads(call.arguments))


async def test_gemini_structured_output_and_forced_call(server: MockServer) -> None:
    path = "/v1beta/models/g:generateContent"
    contents = [{"role": "user", "parts": [{"text": "hi"}]}]
    config = {"responseMimeType": "application/json", "responseSchema": SCHEMA}
    async with aiohttp.ClientSession() as session:
        body = {"contents": contents, "generationConfig": config}
        async with session.post(server.url + path, json=body) as resp:
            whole = await resp.json()
        tools = [{"functionDeclarations": [{"name": "forecast", "parameters": SCHEMA}]}]
        body = {
            "contents": contents,
            "tools": tools,
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        }
        async with session.post(server.url + path, json=body) as resp:
            called = await resp.json()
    assert valid(json.loads(whole["candidates"][0]["content"]["parts"][0]["text"]))
    parts = called["candidates"][0]["content"]["parts"]
    assert [p["functionCall"]["name"] for p in parts if "functionCall" in p] == ["forecast"]
    assert valid(next(p["functionCall"]["args"] for p in parts if "functionCall" in p))


async def test_completions_logprobs_stop_and_seed(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.completions.create(
        model="gpt-test", prompt="Tell me about streams", stream=True, logprobs=2
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    tokens = [
        t
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.tokens or []
    ]
    assert "".join(tokens) == text and len(tokens) == 12
    assert chunks[-1].choices[0].finish_reason == "stop"
    whole = await oai.completions.create(
        model="gpt-test", prompt="Tell me about streams", logprobs=1
    )
    assert whole.choices[0].text == text and whole.choices[0].logprobs is not None
    stop = text.split()[2]
    cut = await oai.completions.create(model="gpt-test", prompt="Tell me about streams", stop=stop)
    assert cut.choices[0].text == text[: text.index(stop)]
    seeded = await oai.completions.create(model="gpt-test", prompt="Tell me about streams", seed=3)
    assert seeded.choices[0].text != text
