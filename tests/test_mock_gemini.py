"""The mock's Gemini routes, Ollama's /api/generate, and every API's error shape for bad routes.

Real servers on 127.0.0.1 (the ``server`` fixture of conftest.py: 12 tokens); rxgpt's own
client streams Gemini from it. Every wait is bounded by pytest's timeout.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

import rxgpt
from rxgpt._providers import get_provider
from rxgpt.mock import MockServer, generate_tokens

QUESTION = "Tell me about streams, please"
BODY = {"contents": [{"role": "user", "parts": [{"text": QUESTION}]}]}
SSE = "/v1beta/models/gemini-test:streamGenerateContent?alt=sse"
TOKENS = 12


def sse_payloads(raw: bytes) -> list[dict[str, Any]]:
    assert raw.endswith(b"\r\n\r\n"), raw[-40:]
    blocks = raw.split(b"\r\n\r\n")[:-1]
    assert all(block.startswith(b"data: ") for block in blocks)
    return [json.loads(block[6:]) for block in blocks]


def text_of(chunks: list[dict[str, Any]], *, thought: bool = False) -> str:
    return "".join(
        part.get("text", "")
        for chunk in chunks
        for part in chunk["candidates"][0]["content"]["parts"]
        if part.get("thought", False) is thought
    )


async def post(
    session: aiohttp.ClientSession, server: MockServer, path: str, body: Any, **kw: Any
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    async with session.post(server.url + path, json=body, **kw) as resp:
        return resp.status, await resp.read(), resp


async def test_sse_stream_has_the_chat_text_crlf_and_finish_on_the_last_chunk(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    status, raw, resp = await post(session, server, SSE, BODY)
    assert status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    chunks = sse_payloads(raw)
    expected = "".join(generate_tokens([{"role": "user", "content": QUESTION}], "gemini-test", 12))
    assert text_of(chunks) == expected
    assert [c["candidates"][0].get("finishReason") for c in chunks][-1] == "STOP"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    usage = [c["usageMetadata"] for c in chunks]
    assert usage[-1]["candidatesTokenCount"] == TOKENS
    assert usage[-1]["totalTokenCount"] == usage[-1]["promptTokenCount"] + TOKENS
    counts = [u.get("candidatesTokenCount", 0) for u in usage]
    assert counts == sorted(counts)  # a cumulative snapshot on every chunk
    assert {c["modelVersion"] for c in chunks} == {"gemini-test"}


async def test_generate_content_is_the_same_text_whole(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    path = "/v1beta/models/gemini-test:generateContent"
    status, raw, _ = await post(session, server, path, BODY)
    assert status == 200
    whole = json.loads(raw)
    _, streamed, _ = await post(session, server, SSE, BODY)
    assert whole["candidates"][0]["content"]["parts"][0]["text"] == text_of(sse_payloads(streamed))
    assert whole["candidates"][0]["finishReason"] == "STOP"


async def test_without_alt_sse_the_stream_is_one_json_array(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    path = "/v1beta/models/gemini-test:streamGenerateContent"
    status, raw, resp = await post(session, server, path, BODY)
    assert status == 200 and resp.headers["Content-Type"].startswith("application/json")
    chunks = json.loads(raw)
    assert isinstance(chunks, list) and len(chunks) == TOKENS + 1
    _, streamed, _ = await post(session, server, SSE, BODY)
    assert text_of(chunks) == text_of(sse_payloads(streamed))


async def test_max_output_tokens_thoughts_and_function_call(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = {**BODY, "generationConfig": {"maxOutputTokens": 3}}
    _, raw, _ = await post(session, server, SSE, body)
    chunks = sse_payloads(raw)
    assert chunks[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 3
    body = {**BODY, "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    _, raw, _ = await post(session, server, SSE, body)
    chunks = sse_payloads(raw)
    assert (
        text_of(chunks, thought=True)
        and chunks[0]["candidates"][0]["content"]["parts"][0]["thought"]
    )
    assert chunks[-1]["usageMetadata"]["thoughtsTokenCount"] == 16
    for budget, thoughts in [(0, 0), (5, 5), (-1, 16)]:  # 0: off, -1: the model's choice
        config = {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": budget}}
        _, raw, _ = await post(session, server, SSE, {**BODY, "generationConfig": config})
        usage = sse_payloads(raw)[-1]["usageMetadata"]
        assert usage.get("thoughtsTokenCount", 0) == thoughts
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}]
    body = {**BODY, "tools": tools, "mock": {"tool_call": True}}
    _, raw, _ = await post(session, server, SSE, body)
    parts = [p for c in sse_payloads(raw) for p in c["candidates"][0]["content"]["parts"]]
    calls = [p["functionCall"] for p in parts if "functionCall" in p]
    assert len(calls) == 1 and calls[0]["name"] == "get_weather"
    assert isinstance(calls[0]["args"], dict)


@pytest.mark.parametrize("candidates", [1, 2])
async def test_usage_counts_each_candidates_thought_once_and_thoughts_so_far(
    server: MockServer, session: aiohttp.ClientSession, candidates: int
) -> None:
    """With ``candidateCount`` and thoughts, each candidate's text and thought count once:
    candidates ``n × text``, thoughts ``n × thought``; while thoughts stream, the count is
    of the thoughts so far, as the text's is."""
    config = {"candidateCount": candidates, "thinkingConfig": {"includeThoughts": True}}
    body = {**BODY, "generationConfig": config}
    _, raw, _ = await post(session, server, "/v1beta/models/gemini-test:generateContent", body)
    whole = json.loads(raw)["usageMetadata"]
    thinking = 16  # (the server's default thinking length)
    assert whole["candidatesTokenCount"] == candidates * TOKENS
    assert whole["thoughtsTokenCount"] == candidates * thinking
    assert whole["totalTokenCount"] == (
        whole["promptTokenCount"] + candidates * (TOKENS + thinking)
    )
    _, raw, _ = await post(session, server, SSE, body)
    chunks = sse_payloads(raw)
    assert chunks[-1]["usageMetadata"] == whole
    thoughts = [
        c["usageMetadata"]["thoughtsTokenCount"]
        for c in chunks
        if c["candidates"][0]["content"]["parts"][0].get("thought")
    ]
    assert thoughts == [candidates * k for k in range(1, thinking + 1)]


@pytest.mark.parametrize("at", [0, 1, 5])
async def test_garbage_in_the_json_array_stream_keeps_the_arrays_framing(
    server: MockServer, session: aiohttp.ClientSession, at: int
) -> None:
    """``garbage_at`` in the array stream (no ``alt=sse``): the element is not JSON, and the
    body is still ``[`` element ``,`` element ... (the first one opens the array)."""
    path = "/v1beta/models/gemini-test:streamGenerateContent"
    _, clean, _ = await post(session, server, path, BODY)
    _, raw, _ = await post(session, server, path, {**BODY, "mock": {"garbage_at": at}})
    elements = raw.removesuffix(b"\r\n]").split(b",\r\n")
    assert elements[0].startswith(b"[") and raw.endswith(b"]")
    assert elements[at].removeprefix(b"[") == b"this is not json"
    good = clean.removesuffix(b"\r\n]").split(b",\r\n")
    assert len(elements) == len(good)
    assert [e for i, e in enumerate(elements) if i != at] == [
        e for i, e in enumerate(good) if i != at
    ]


async def test_proto_field_names_and_gemini_schemas_are_read(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """Google's parser takes ``max_output_tokens`` as well as ``maxOutputTokens``, and a
    ``Schema`` with upper-case types: the mock reads both as the API does."""
    camel = {**BODY, "generationConfig": {"maxOutputTokens": 3, "candidateCount": 2}}
    snake = {**BODY, "generation_config": {"max_output_tokens": 3, "candidate_count": 2}}
    _, raw_camel, _ = await post(session, server, SSE, camel)
    _, raw_snake, _ = await post(session, server, SSE, snake)
    assert sse_payloads(raw_snake) == sse_payloads(raw_camel)
    assert sse_payloads(raw_snake)[-1]["candidates"][1]["finishReason"] == "MAX_TOKENS"
    schema = {
        "type": "OBJECT",
        "properties": {
            "days": {"type": "INTEGER", "minimum": 1, "maximum": 3},
            "unit_name": {"type": "STRING", "enum": ["C", "F"]},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "max_items": 1},
        },
        "required": ["days", "unit_name", "tags"],
    }
    tools = [{"function_declarations": [{"name": "forecast", "parameters": schema}]}]
    config = {"function_calling_config": {"mode": "ANY"}}
    body = {**BODY, "tools": tools, "tool_config": config}
    _, raw, _ = await post(session, server, SSE, body)
    parts = [p for c in sse_payloads(raw) for p in c["candidates"][0]["content"]["parts"]]
    (call,) = [p["functionCall"] for p in parts if "functionCall" in p]
    args = call["args"]
    assert call["name"] == "forecast" and not [p for p in parts if p.get("text")]
    assert isinstance(args["days"], int) and 1 <= args["days"] <= 3
    assert args["unit_name"] in ("C", "F") and len(args["tags"]) == 1
    structured = {**BODY, "generation_config": {"response_schema": schema}}
    _, raw, _ = await post(session, server, SSE, structured)
    value = json.loads(text_of(sse_payloads(raw)))
    assert set(value) == {"days", "unit_name", "tags"} and isinstance(value["days"], int)


async def test_api_key_header_or_query(session: aiohttp.ClientSession) -> None:
    async with MockServer(tokens=2, api_key="g-key") as server:
        status, raw, _ = await post(session, server, SSE, BODY)
        assert status == 403 and json.loads(raw)["error"]["status"] == "PERMISSION_DENIED"
        status, raw, _ = await post(session, server, SSE, BODY, headers={"x-goog-api-key": "no"})
        assert status == 400 and json.loads(raw)["error"]["code"] == 400
        status, _, _ = await post(session, server, SSE, BODY, headers={"x-goog-api-key": "g-key"})
        assert status == 200
        status, _, _ = await post(session, server, SSE + "&key=g-key", BODY)
        assert status == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [({}, "contents"), ({"contents": "x"}, "contents"), ({**BODY, "mock": {"nope": 1}}, "nope")],
)
async def test_bad_bodies_get_gemini_errors(
    server: MockServer, session: aiohttp.ClientSession, body: dict[str, Any], words: str
) -> None:
    status, raw, _ = await post(session, server, SSE, body)
    error = json.loads(raw)["error"]
    assert status == 400 and error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert words in error["message"]


async def test_injected_status_and_in_band_error(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    status, raw, _ = await post(session, server, SSE, {**BODY, "mock": {"status": 429}})
    assert status == 429 and json.loads(raw)["error"]["status"] == "RESOURCE_EXHAUSTED"
    _, raw, _ = await post(session, server, SSE, {**BODY, "mock": {"error_at": 2}})
    assert raw.count(b"data: ") == 2 and b'"status": "INTERNAL"' in raw


async def test_rxgpt_client_streams_gemini_from_the_embedded_server(server: MockServer) -> None:
    provider = get_provider("gemini")
    base_url = provider.base_url_at(server.url)
    async with rxgpt.Client(provider="gemini", base_url=base_url, api_key="k") as client:
        stream = client.chat(model="gemini-test", messages=[{"role": "user", "content": QUESTION}])
        text = await stream.text()
    expected = "".join(generate_tokens([{"role": "user", "content": QUESTION}], "gemini-test", 12))
    assert text == expected


async def test_ollama_generate_streams_response_lines(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = {"model": "llama-test", "prompt": QUESTION}
    status, raw, _ = await post(session, server, "/api/generate", body)
    assert status == 200
    lines = [json.loads(line) for line in raw.splitlines()]
    assert "".join(line["response"] for line in lines) == "".join(
        generate_tokens([{"role": "user", "content": QUESTION}], "llama-test", TOKENS)
    )
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"
    assert all("message" not in line for line in lines)
    status, raw, _ = await post(session, server, "/api/generate", {**body, "stream": False})
    assert json.loads(raw)["response"] == "".join(line["response"] for line in lines)
    status, raw, _ = await post(session, server, "/api/generate", {"model": "m", "prompt": 5})
    assert status == 400 and "prompt" in json.loads(raw)["error"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "check"),
    [
        ("POST", "/v1/nope", {}, lambda b: b["error"]["type"] == "invalid_request_error"),
        ("GET", "/v1/chat/completions", {}, lambda b: "Invalid URL" in b["error"]["message"]),
        ("POST", "/api/nope", {}, lambda b: isinstance(b["error"], str)),
        ("POST", "/v1beta/models/x:nope", {}, lambda b: b["error"]["status"] == "NOT_FOUND"),
        ("POST", "/v1beta/nope", {}, lambda b: b["error"]["code"] in (404, 405)),
        (
            "POST",
            "/v1/nope",
            {"anthropic-version": "2023-06-01"},
            lambda b: b["error"]["type"] == "not_found_error",
        ),
    ],
)
async def test_unknown_routes_get_the_apis_own_error_shape(
    server: MockServer,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    headers: dict[str, str],
    check: Any,
) -> None:
    async with session.request(method, server.url + path, headers=headers, json={}) as resp:
        assert resp.status in (404, 405)
        assert resp.headers["Content-Type"].startswith("application/json")
        assert check(json.loads(await resp.read()))
