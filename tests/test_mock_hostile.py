"""The embedded server under hostile requests: whatever JSON a client sends to any route (a
lone UTF-16 surrogate, integers past a float's range, ``NaN``, schemas that refer to
themselves, values of every wrong type), the answer is a 2xx or 4xx in the API's own error
shape, never a 500 or a handler's traceback, and it ends within a bound."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxgpt.mock import MockServer

MESSAGES = [{"role": "user", "content": "hello there"}]

#: A valid body of each answering route (the server's root URL + path).
ROUTES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "m", "messages": MESSAGES},
    "/v1/completions": {"model": "m", "prompt": "hello there"},
    "/v1/responses": {"model": "m", "input": "hello there"},
    "/v1/messages": {"model": "m", "max_tokens": 64, "messages": MESSAGES},
    "/v1/messages/count_tokens": {"model": "m", "messages": MESSAGES},
    "/v1beta/models/m:streamGenerateContent?alt=sse": {
        "contents": [{"role": "user", "parts": [{"text": "hello there"}]}]
    },
    "/v1beta/models/m:generateContent": {
        "contents": [{"role": "user", "parts": [{"text": "hello there"}]}]
    },
    "/v1beta/models/m:countTokens": {
        "contents": [{"role": "user", "parts": [{"text": "hello there"}]}]
    },
    "/api/chat": {"model": "m", "messages": MESSAGES},
    "/api/generate": {"model": "m", "prompt": "hello there"},
}

#: The request fields the dialects read (the mutations replace or add them).
FIELDS = [
    "model", "messages", "stream", "max_tokens", "max_completion_tokens", "n", "stop",
    "logprobs", "top_logprobs", "response_format", "tools", "tool_choice", "seed",
    "stream_options", "reasoning_effort", "min_tokens", "ignore_eos", "prompt", "echo",
    "input", "instructions", "text", "reasoning", "max_output_tokens", "system",
    "stop_sequences", "thinking", "output_config", "contents", "generationConfig",
    "toolConfig", "systemInstruction", "tools", "options", "format", "think", "keep_alive",
]  # fmt: skip

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([0, 1, 2, -1, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "required", "none", "auto", "#"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KINDS = ["object", "array", "string", "integer", "number", "boolean", "null"]
NUMBERS = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, 1e-300, 1e300, 0]),
)
SCHEMAS = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(KINDS) | VALUES,
            "minimum": NUMBERS,
            "maximum": NUMBERS,
            "exclusiveMinimum": NUMBERS,
            "multipleOf": NUMBERS,
            "minLength": NUMBERS,
            "maxItems": NUMBERS,
            "enum": st.lists(VALUES, max_size=3),
            "format": st.sampled_from(["date-time", "uuid", "email"]) | VALUES,
            "$ref": st.sampled_from(["#", "#/$defs/a", "#/nope", "http://x/"]),
        },
    ),
    lambda inner: st.fixed_dictionaries(
        {},
        optional={
            "type": st.just("object"),
            "properties": st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3),
            "required": st.lists(st.text(max_size=6), max_size=2),
            "items": inner,
            "anyOf": st.lists(inner, max_size=3),
            "oneOf": st.lists(inner, max_size=3),
            "allOf": st.lists(inner, max_size=3),
            "$ref": st.sampled_from(["#", "#/$defs/a"]),
            "$defs": st.fixed_dictionaries({"a": inner}),
        },
    ),
    max_leaves=10,
)
TOOLS = st.fixed_dictionaries(
    {
        "tools": st.tuples(st.text(min_size=1, max_size=10), SCHEMAS).map(
            lambda t: [
                {"type": "function", "function": {"name": t[0], "parameters": t[1]}},
                {"name": t[0], "input_schema": t[1]},  # (Anthropic's shape)
            ]
        ),
        "tool_choice": st.sampled_from(["required", "auto", {"type": "any"}]),
    }
)
FORMATS = SCHEMAS.map(
    lambda schema: {
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        "format": schema,  # (Ollama's)
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema},
    }
)
MOCK_KEYS = [
    "tokens", "itl_ms", "ttft_ms", "tokens_per_chunk", "thinking", "retry_after",
    "keepalive_ms", "chunk_bytes", "tool_call", "garbage_at", "error_at", "no_done",
    "line_endings", "tokens_std",
]  # fmt: skip
MOCKS = st.dictionaries(
    st.sampled_from(MOCK_KEYS),
    st.sampled_from([10**400, -(10**400), 1e308 * 10, -1, "x", [], True, 0]),
    max_size=3,
).map(lambda mock: {"mock": mock})
MUTATIONS = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), VALUES, min_size=1, max_size=3),
    TOOLS,
    FORMATS,
    MOCKS,
    st.builds(lambda v: {"messages": [{"role": "user", "content": v}]}, VALUES),
)


class _Errors(logging.Handler):
    """The server's logged errors (aiohttp logs a handler's exception at ERROR)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_errors() -> Iterator[_Errors]:
    handler = _Errors()
    logger = logging.getLogger("aiohttp")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
async def small_server() -> Any:
    async with MockServer(tokens=4) as running:
        yield running


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(route=st.sampled_from(sorted(ROUTES)), mutation=MUTATIONS, stream=st.booleans())
async def test_any_json_to_any_route_gets_an_answer_or_the_apis_4xx(
    small_server: MockServer,
    session: aiohttp.ClientSession,
    server_errors: _Errors,
    route: str,
    mutation: dict[str, Any],
    stream: bool,
) -> None:
    server_errors.records.clear()  # (the fixture outlives each example)
    body = {**ROUTES[route], "stream": stream, **mutation}
    data = json.dumps(body)  # (NaN and Infinity as Python writes them; surrogates escaped)
    async with asyncio.timeout(20):
        async with session.post(
            small_server.url + route, data=data, headers={"Content-Type": "application/json"}
        ) as resp:
            raw = await resp.read()
    assert not server_errors.records, server_errors.records[0].getMessage()
    assert resp.status < 500, (resp.status, raw[:300])
    if resp.status >= 400:
        error = json.loads(raw)["error"]  # every API's envelope has "error"
        message = error if isinstance(error, str) else error["message"]
        assert isinstance(message, str) and message


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize(
    "mutation",
    [
        {"messages": [{"role": "user", "content": "\ud800"}], "prompt": "\ud800"},
        {"model": "a\udfffb"},
        {"input": "\ud800", "contents": [{"role": "user", "parts": [{"text": "\ud800"}]}]},
    ],
    ids=["content", "model", "input"],
)
async def test_a_lone_surrogate_is_a_400_on_every_route(
    small_server: MockServer,
    session: aiohttp.ClientSession,
    server_errors: _Errors,
    route: str,
    mutation: dict[str, Any],
) -> None:
    data = json.dumps({**ROUTES[route], **mutation})
    assert "\\ud" in data or "\\udfff" in data
    async with asyncio.timeout(10):
        async with session.post(
            small_server.url + route, data=data, headers={"Content-Type": "application/json"}
        ) as resp:
            raw = await resp.read()
    assert resp.status == 400, raw[:300]
    assert b"surrogate" in raw
    assert not server_errors.records


SELF_REFERRING = [
    {"anyOf": [{"$ref": "#"}]},
    {"oneOf": [{"$ref": "#"}, {"type": "string"}]},
    {"allOf": [{"$ref": "#"}]},
    {"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"},
    {"type": "number", "minimum": 0, "maximum": 1e10, "multipleOf": 1e-300},
]


@pytest.mark.parametrize("schema", SELF_REFERRING)
@pytest.mark.parametrize("where", ["response_format", "tools", "anthropic tools"])
async def test_schemas_without_an_end_or_a_countable_step_still_get_an_answer(
    small_server: MockServer,
    session: aiohttp.ClientSession,
    server_errors: _Errors,
    schema: dict[str, Any],
    where: str,
) -> None:
    """A schema that is only its own alternative, or a ``multipleOf`` far below its range,
    gets an answer (the value may not be valid: none, or none countable, is), not a 500."""
    if where == "response_format":
        json_schema = {"name": "x", "schema": schema}
        route = "/v1/chat/completions"
        extra = {"response_format": {"type": "json_schema", "json_schema": json_schema}}
    elif where == "tools":
        tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
        route, extra = "/v1/chat/completions", {"tools": [tool], "tool_choice": "required"}
    else:
        tool = {"name": "f", "input_schema": schema}
        route, extra = "/v1/messages", {"tools": [tool], "tool_choice": {"type": "any"}}
    async with asyncio.timeout(10):
        async with session.post(small_server.url + route, json={**ROUTES[route], **extra}) as resp:
            raw = await resp.read()
    assert resp.status == 200, raw[:300]
    assert not server_errors.records


@pytest.mark.parametrize(
    "mock",
    [
        {"tokens": 10**400},
        {"itl_ms": 10**400},
        {"status": 429, "retry_after": 10**400},
        {"status": 429, "retry_after": float("inf")},
        {"stall_after": 1, "keepalive_ms": 10**400},
        {"keepalive_ms": float("inf")},
        {"ttft_ms": float("nan")},
    ],
)
async def test_mock_numbers_a_float_cannot_hold_are_a_400(
    small_server: MockServer,
    session: aiohttp.ClientSession,
    server_errors: _Errors,
    mock: dict[str, Any],
) -> None:
    body = {**ROUTES["/v1/chat/completions"], "stream": True, "mock": mock}
    async with asyncio.timeout(10):
        async with session.post(
            small_server.base_url + "/chat/completions",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        ) as resp:
            raw = await resp.read()
    assert resp.status == 400, raw[:300]
    error = json.loads(raw)["error"]
    assert error["param"] == "mock" and "must be a number" in error["message"]
    assert not server_errors.records


async def test_mock_thinking_stops_at_the_context_length(
    small_server: MockServer, session: aiohttp.ClientSession
) -> None:
    from rxgpt.mock._dialect import CONTEXT_LENGTH

    body = {**ROUTES["/v1/chat/completions"], "mock": {"thinking": 10**9}}
    async with asyncio.timeout(30):
        async with session.post(small_server.base_url + "/chat/completions", json=body) as resp:
            answer = await resp.json()
    details = answer["usage"]["completion_tokens_details"]
    assert details["reasoning_tokens"] == CONTEXT_LENGTH


CHAT = ROUTES["/v1/chat/completions"]
OPENAI_400S = [
    ("/v1/chat/completions", {"stream_options": {"include_usage": True}}, "stream_options"),
    ("/v1/completions", {"stream_options": {"include_usage": True}}, "stream_options"),
    ("/v1/chat/completions", {"temperature": "hot"}, "temperature"),
    ("/v1/chat/completions", {"temperature": 5}, "temperature"),
    ("/v1/completions", {"top_p": -0.5}, "top_p"),
    ("/v1/chat/completions", {"frequency_penalty": 3}, "frequency_penalty"),
    ("/v1/chat/completions", {"messages": [{"role": "bogus", "content": "x"}]},
     "messages[0].role"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}, {"content": "y"}]},
     "messages[1].role"),
    ("/v1/chat/completions", {"tool_choice": "bogus"}, "tool_choice"),
    ("/v1/chat/completions", {"logprobs": "yes"}, "logprobs"),
    ("/v1/chat/completions", {"reasoning_effort": "ultra"}, "reasoning_effort"),
]  # fmt: skip


@pytest.mark.parametrize(("route", "extra", "param"), OPENAI_400S)
async def test_openai_parameters_out_of_the_apis_range_are_its_400(
    small_server: MockServer,
    session: aiohttp.ClientSession,
    route: str,
    extra: dict[str, Any],
    param: str,
) -> None:
    """Values the API refuses (types, ranges, roles, enums; ``stream_options`` without
    ``stream``) get its 400, naming the parameter, as the SDK shows it."""
    import openai

    body = {**ROUTES[route], **extra}
    async with asyncio.timeout(10):
        async with session.post(small_server.url + route, json=body) as resp:
            raw = await resp.read()
    assert resp.status == 400, raw[:300]
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert param.split("[")[0] in error["message"] or "Supported values" in error["message"]
    sdk = openai.AsyncOpenAI(base_url=small_server.base_url, api_key="x", max_retries=0)
    try:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.post(route.removeprefix("/v1"), body=body, cast_to=object)
    finally:
        await sdk.close()
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (
            {"messages": [{"role": "system", "content": "be brief"}, *MESSAGES]},
            "top-level `system`",
        ),
        ({"messages": [{"role": "bogus", "content": "x"}]}, "messages.0.role"),
        ({"stop_sequences": "stop"}, "stop_sequences"),
        ({"system": 5}, "system"),
        ({"thinking": {"type": "bogus"}}, "thinking"),
    ],
)
async def test_anthropic_requests_the_api_refuses_are_its_400(
    small_server: MockServer, extra: dict[str, Any], words: str
) -> None:
    import anthropic

    claude = anthropic.AsyncAnthropic(base_url=small_server.url, api_key="x", max_retries=0)
    body = {**ROUTES["/v1/messages"], **extra}
    try:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await claude.messages.create(**body)
    finally:
        await claude.close()
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error" and words in error["message"]


async def test_ollama_needs_a_model_and_takes_a_json_number_for_an_int_option(
    small_server: MockServer, session: aiohttp.ClientSession
) -> None:
    for route in ("/api/chat", "/api/generate"):
        body = {k: v for k, v in ROUTES[route].items() if k != "model"}
        for sent in (body, {k: v for k, v in body.items() if k not in ("messages", "prompt")}):
            async with session.post(small_server.url + route, json=sent) as resp:
                assert resp.status == 400 and await resp.json() == {"error": "model is required"}
    body = {**ROUTES["/api/chat"], "stream": False, "options": {"num_predict": 2.0}}
    async with session.post(small_server.url + "/api/chat", json=body) as resp:
        answer = await resp.json()
    assert resp.status == 200 and answer["eval_count"] == 2 and answer["done_reason"] == "length"
