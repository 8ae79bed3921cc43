"""The embedded server through more real clients: litellm, langchain-openai, google-genai.

Each client is an oracle written by others: it streams the dialects it speaks to the mock
(litellm: OpenAI chat, legacy completions and Responses, Anthropic, Gemini, Ollama;
langchain-openai: chat completions and Responses; google-genai: Gemini, at its default
API version), its own parser takes every chunk, and
what it builds from them must be what the request asked for: the same answer as unstreamed,
tool arguments valid under the tool's schema (checked with ``jsonschema``), ``n``, ``stop``,
the token cap, logprobs, structured output and reasoning. Real loopback sockets.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest

# litellm fetches its model price list from the internet at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from google import genai
from google.genai import types as genai_types
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from rxgpt.mock import MockServer

litellm.suppress_debug_info = True
# (these clients' pydantic models warn about themselves, deprecations and ReadOnly fields:
# not the server's doing, and the suite turns warnings into errors)
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

TOKENS = 12
MESSAGES: Any = [{"role": "user", "content": "Tell me about streams, please"}]
SCHEMA: Any = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "days", "unit"],
    "additionalProperties": False,
}
TOOLS: Any = [{"type": "function", "function": {"name": "forecast", "parameters": SCHEMA}}]
# (without numeric bounds: litellm moves them into descriptions for Anthropic, which has none)
STRUCTURED: Any = {**SCHEMA, "properties": {**SCHEMA["properties"], "days": {"type": "integer"}}}
JSON_SCHEMA_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {"name": "forecast", "schema": STRUCTURED, "strict": True},
}


@pytest.fixture
async def mock() -> AsyncIterator[MockServer]:
    async with MockServer(tokens=TOKENS) as running:
        yield running


def route(server: MockServer, dialect: str) -> tuple[str, str]:
    """litellm's model name and ``api_base`` for one dialect of the mock."""
    root = server.base_url.removesuffix("/v1")
    return {
        "openai": ("openai/gpt-test", server.base_url),
        # (a model litellm knows: it refuses `thinking` for names it does not)
        "anthropic": ("anthropic/claude-sonnet-4-5", root),
        "gemini": ("gemini/gemini-2.5-flash", root + "/v1beta"),
        "ollama_chat": ("ollama_chat/llama3", root),
        "ollama": ("ollama/llama3", root),
    }[dialect]


async def stream(server: MockServer, dialect: str, **params: Any) -> tuple[list[Any], Any]:
    """A streamed litellm completion: its chunks, and the message litellm builds from them."""
    model, base = route(server, dialect)
    params.setdefault("messages", MESSAGES)
    response = await litellm.acompletion(
        model=model, api_base=base, api_key="k", stream=True, timeout=10, **params
    )
    chunks = [chunk async for chunk in response]
    return chunks, litellm.stream_chunk_builder(chunks, messages=params["messages"])


# --------------------------------------------------------------------------- litellm


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini", "ollama_chat", "ollama"])
async def test_litellm_streams_the_unstreamed_answer(mock: MockServer, dialect: str) -> None:
    chunks, built = await stream(mock, dialect)
    model, base = route(mock, dialect)
    whole = await litellm.acompletion(
        model=model, api_base=base, api_key="k", messages=MESSAGES, timeout=10
    )
    text = built.choices[0].message.content
    assert len(chunks) >= TOKENS // 2  # streamed in pieces, not in one
    assert text and text == whole.choices[0].message.content
    assert built.choices[0].finish_reason == whole.choices[0].finish_reason == "stop"
    assert whole.usage.completion_tokens == TOKENS


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini"])
async def test_litellm_forced_tool_call_is_valid_under_the_schema(
    mock: MockServer, dialect: str
) -> None:
    _, built = await stream(mock, dialect, tools=TOOLS, tool_choice="required")
    message = built.choices[0].message
    assert built.choices[0].finish_reason == "tool_calls"
    (call,) = message.tool_calls
    assert call.function.name == "forecast"
    jsonschema.validate(json.loads(call.function.arguments), SCHEMA)
    assert not message.content  # no text beside a forced call


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini", "ollama_chat"])
async def test_litellm_weather_call_follows_the_schema(mock: MockServer, dialect: str) -> None:
    """The "weather" trigger's fixed arguments do not fit this schema: they are generated."""
    weather = [{"role": "user", "content": "What is the weather in Paris?"}]
    _, built = await stream(mock, dialect, messages=weather, tools=TOOLS)
    (call,) = built.choices[0].message.tool_calls
    jsonschema.validate(json.loads(call.function.arguments), SCHEMA)


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini", "ollama_chat"])
async def test_litellm_stop_and_token_cap(mock: MockServer, dialect: str) -> None:
    _, whole = await stream(mock, dialect)
    text = whole.choices[0].message.content
    stop = text[5:8]  # a sequence that occurs in the answer
    _, stopped = await stream(mock, dialect, stop=[stop])
    assert stopped.choices[0].message.content == text[: text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"
    _, capped = await stream(mock, dialect, max_tokens=3)
    assert capped.choices[0].finish_reason == "length"
    assert capped.usage.completion_tokens == 3
    assert text.startswith(capped.choices[0].message.content)


@pytest.mark.parametrize("dialect", ["openai", "gemini"])
async def test_litellm_two_choices(mock: MockServer, dialect: str) -> None:
    _, built = await stream(mock, dialect, n=2)
    texts = [choice.message.content for choice in built.choices]
    assert [choice.index for choice in built.choices] == [0, 1]
    assert all(texts) and texts[0] != texts[1]
    assert {choice.finish_reason for choice in built.choices} == {"stop"}


async def test_litellm_logprobs_match_the_text(mock: MockServer) -> None:
    chunks, _ = await stream(mock, "openai", logprobs=True, top_logprobs=2)
    content = [c.choices[0] for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == TOKENS
    for choice in content:
        tokens = choice.logprobs.content
        assert "".join(t.token for t in tokens) == choice.delta.content
        assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in tokens)


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini", "ollama_chat"])
async def test_litellm_structured_output_is_valid(mock: MockServer, dialect: str) -> None:
    _, built = await stream(mock, dialect, response_format=JSON_SCHEMA_FORMAT)
    jsonschema.validate(json.loads(built.choices[0].message.content), STRUCTURED)


@pytest.mark.parametrize(
    ("dialect", "params"),
    [
        ("openai", {"reasoning_effort": "low"}),
        ("anthropic", {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}),
        ("gemini", {"reasoning_effort": "low"}),
        ("ollama_chat", {"reasoning_effort": "low"}),
    ],
)
async def test_litellm_reasoning_comes_before_the_text(
    mock: MockServer, dialect: str, params: dict[str, Any]
) -> None:
    chunks, built = await stream(mock, dialect, **params)
    _, plain = await stream(mock, dialect)
    message = built.choices[0].message
    assert message.reasoning_content and message.content == plain.choices[0].message.content
    first = next(i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.content)
    assert any(getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks[:first])
    if dialect == "anthropic":  # a thinking block with its signature
        (block,) = message.thinking_blocks
        assert block["type"] == "thinking" and block["signature"]


async def test_litellm_responses_stream(mock: MockServer) -> None:
    events = [
        event
        async for event in await litellm.aresponses(
            model="openai/gpt-test", api_base=mock.base_url, api_key="k",
            input="Tell me about streams, please", stream=True, timeout=10,
        )
    ]  # fmt: skip
    kinds = [str(getattr(e.type, "value", e.type)) for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if kinds[events.index(e)].endswith("text.delta"))
    final = events[-1].response.output[0].content[0].text
    assert deltas and deltas == final


async def test_litellm_text_completion_stream(mock: MockServer) -> None:
    params: Any = {
        "model": "text-completion-openai/gpt-3.5-turbo-instruct",
        "api_base": mock.base_url, "api_key": "k", "prompt": "Tell me", "timeout": 10,
    }  # fmt: skip
    chunks = [c async for c in await litellm.atext_completion(stream=True, **params)]
    whole = await litellm.atext_completion(**params)
    text = "".join(c.choices[0].text or "" for c in chunks if c.choices)
    assert text and text == whole.choices[0].text


# --------------------------------------------------------------------------- langchain-openai


def chat(server: MockServer, **params: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-test", base_url=server.base_url, api_key="k",  # type: ignore[arg-type]
        max_retries=0, timeout=10, **params,
    )  # fmt: skip


async def summed(model: Any, messages: Any = MESSAGES, **params: Any) -> AIMessageChunk:
    """The chunks of ``model.astream``, added up as langchain adds them."""
    total: AIMessageChunk | None = None
    count = 0
    async for chunk in model.astream(messages, **params):
        total = chunk if total is None else total + chunk
        count += 1
    assert total is not None and count > 1
    return total


async def test_langchain_streams_the_unstreamed_answer_with_usage(mock: MockServer) -> None:
    total = await summed(chat(mock, stream_usage=True))
    whole = await chat(mock).ainvoke(MESSAGES)
    assert total.content and total.content == whole.content
    assert total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == TOKENS
    assert total.response_metadata["finish_reason"] == "stop"


async def test_langchain_tool_call_stop_and_logprobs(mock: MockServer) -> None:
    forced = chat(mock).bind_tools(TOOLS, tool_choice="forecast")
    call = (await summed(forced)).tool_calls
    assert [c["name"] for c in call] == ["forecast"]
    jsonschema.validate(call[0]["args"], SCHEMA)

    text = str((await summed(chat(mock))).content)
    stopped = await summed(chat(mock), stop=[text[5:8]])
    assert stopped.content == text[: text.index(text[5:8])]

    scored = await summed(chat(mock, logprobs=True))
    tokens = scored.response_metadata["logprobs"]["content"]
    assert "".join(t["token"] for t in tokens) == scored.content


class Forecast(BaseModel):
    city: str = Field(pattern=r"^[A-Z][a-z]+(?: [A-Z][a-z]+)*$")  # (strict mode keeps patterns)
    station: str = Field(pattern=r"^[A-Z]{3}-\d{3}$")
    days: int
    unit: str


async def test_langchain_structured_output(mock: MockServer) -> None:
    model = chat(mock).with_structured_output(Forecast, method="json_schema", strict=True)
    last: Any = None
    async for partial in model.astream(MESSAGES):
        last = partial
    assert isinstance(last, Forecast)
    jsonschema.validate(last.model_dump(), Forecast.model_json_schema())


async def test_langchain_responses_api_with_reasoning(mock: MockServer) -> None:
    model = chat(mock, use_responses_api=True, reasoning={"effort": "low", "summary": "auto"})
    total = await summed(model)
    plain = await summed(chat(mock, use_responses_api=True))
    blocks = total.content if isinstance(total.content, list) else []
    kinds = [block.get("type") for block in blocks if isinstance(block, dict)]
    assert "reasoning" in kinds and kinds.index("reasoning") < kinds.index("text")
    assert total.text == plain.text and total.text


# --------------------------------------------------------------------------- google-genai


async def test_google_genai_streams_tools_and_structured_output(mock: MockServer) -> None:
    """Google's own SDK, at its default API version (``/v1/``), as the Gemini oracle."""
    options = genai_types.HttpOptions(base_url=mock.url, timeout=10_000)
    models = genai.Client(api_key="k", http_options=options).aio.models
    whole = await models.generate_content(model="gemini-2.5-flash", contents="Tell me")
    pieces = [
        chunk.text or ""
        async for chunk in await models.generate_content_stream(
            model="gemini-2.5-flash", contents="Tell me"
        )
    ]
    assert len(pieces) > TOKENS // 2 and "".join(pieces) == whole.text
    assert whole.usage_metadata is not None
    assert whole.usage_metadata.candidates_token_count == TOKENS

    def forecast(city: str, days: int) -> str:
        """The weather of ``city`` for ``days`` days."""
        return "sunny"

    calling = genai_types.FunctionCallingConfig(mode=genai_types.FunctionCallingConfigMode.ANY)
    config = genai_types.GenerateContentConfig(
        tools=[forecast],
        automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
        tool_config=genai_types.ToolConfig(function_calling_config=calling),
    )
    called = await models.generate_content(model="gemini-2.5-flash", contents="hi", config=config)
    (call,) = called.function_calls or []
    assert call.name == "forecast" and call.args is not None
    assert isinstance(call.args["city"], str) and isinstance(call.args["days"], int)
    assert called.text is None  # the call alone

    config = genai_types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=STRUCTURED,
        thinking_config=genai_types.ThinkingConfig(include_thoughts=True),
        candidate_count=2,
    )
    shaped = await models.generate_content(model="gemini-2.5-flash", contents="hi", config=config)
    assert shaped.candidates is not None and len(shaped.candidates) == 2
    for candidate in shaped.candidates:
        assert candidate.content is not None and candidate.content.parts
        thought, *answer = candidate.content.parts
        assert thought.thought and answer and not answer[0].thought
        jsonschema.validate(json.loads(answer[0].text or ""), STRUCTURED)


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


async def test_google_genai_enum_output_is_the_bare_value(mock: MockServer) -> None:
    """``text/x.enum``: the text is one of the enum's values itself, not JSON (as Gemini
    answers it), whole and streamed, and google-genai parses it into the enum."""
    options = genai_types.HttpOptions(base_url=mock.url, timeout=10_000)
    models = genai.Client(api_key="k", http_options=options).aio.models
    config = genai_types.GenerateContentConfig(
        response_mime_type="text/x.enum", response_schema=Unit
    )
    whole = await models.generate_content(model="gemini-2.5-flash", contents="Unit?", config=config)
    assert whole.text in {"celsius", "fahrenheit"}
    assert whole.parsed == Unit(whole.text)
    streamed = [
        chunk.text or ""
        async for chunk in await models.generate_content_stream(
            model="gemini-2.5-flash", contents="Unit?", config=config
        )
    ]
    assert "".join(streamed) == whole.text
    json_config = genai_types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=Unit
    )
    as_json = await models.generate_content(
        model="gemini-2.5-flash", contents="Unit?", config=json_config
    )
    assert json.loads(as_json.text or "") in {"celsius", "fahrenheit"}  # (JSON keeps quotes)
