"""Tests of rxgpt.mock: the embedded OpenAI-compatible server, over real loopback sockets."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer

from rxgpt.mock import (
    FaultOptions,
    MockConfig,
    MockServer,
    count_prompt_tokens,
    create_app,
    generate_tokens,
)
from rxgpt.mock._faults import BodyWriter
from rxgpt.mock._text import NON_ASCII_WORDS

TOKENS = 12
MESSAGES = [{"role": "user", "content": "Tell me about streams, please"}]
ROLE_DELTA = {"role": "assistant", "content": "", "refusal": None}
CHUNK_KEYS = [
    "id",
    "object",
    "created",
    "model",
    "service_tier",
    "system_fingerprint",
    "choices",
]


# --------------------------------------------------------------------------- helpers


# ``server`` (a MockServer of 12 tokens) and ``session`` come from conftest.py.


def chat(content: str = "Tell me about streams, please", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": content}], **extra}


def url(server: MockServer) -> str:
    return server.base_url + "/chat/completions"


async def post_raw(
    session: aiohttp.ClientSession, server: MockServer, body: dict[str, Any]
) -> tuple[int, bytes]:
    async with session.post(url(server), json=body) as resp:
        return resp.status, await resp.read()


async def stream_payloads(
    session: aiohttp.ClientSession, server: MockServer, **extra: Any
) -> list[str]:
    status, raw = await post_raw(session, server, chat(stream=True, **extra))
    assert status == 200
    return payloads(raw)


def payloads(raw: bytes, eol: bytes = b"\n") -> list[str]:
    """The data of each event of a body framed with ``eol`` (events are one data line)."""
    assert raw.endswith(eol + eol)
    blocks = raw.decode().split((eol + eol).decode())[:-1]
    assert all(block.startswith("data: ") for block in blocks), blocks
    return [block.removeprefix("data: ") for block in blocks]


def chunks(data: list[str]) -> list[dict[str, Any]]:
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


def texts(parsed: list[dict[str, Any]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in parsed:
        for choice in chunk["choices"]:
            out[choice["index"]] = out.get(choice["index"], "") + (
                choice["delta"].get("content") or ""
            )
    return out


async def complete(session: aiohttp.ClientSession, server: MockServer, **extra: Any) -> Any:
    async with session.post(url(server), json=chat(**extra)) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        return await resp.json()


def normalise_created(raw: bytes) -> bytes:
    return re.sub(rb'"created":\d+', b'"created":0', raw)


# --------------------------------------------------------------------------- text generator


def test_generate_tokens_is_deterministic_and_prefix_stable() -> None:
    first = generate_tokens(MESSAGES, "m", 40)
    assert first == generate_tokens(MESSAGES, "m", 40)
    assert generate_tokens(MESSAGES, "m", 15) == first[:15]
    assert first != generate_tokens(MESSAGES, "other-model", 40)
    assert first != generate_tokens(MESSAGES, "m", 40, choice=1)
    assert first[0] == first[0][:1].upper() + first[0][1:]
    assert first[0][0] != " " and all(t.startswith(" ") or t in ",.;:!?" for t in first[1:])
    assert generate_tokens(MESSAGES, "m", 0) == []


def test_generated_text_has_punctuation_and_multibyte_words() -> None:
    answers = [generate_tokens([{"content": str(i)}], "m", 64) for i in range(30)]
    words = [token for tokens in answers for token in tokens]
    assert {",", ".", "!", "?"} <= set(words)
    after_stop = [b for tokens in answers for a, b in itertools.pairwise(tokens) if a in ".!?"]
    assert after_stop and all(b == " " + b[1:2].upper() + b[2:] for b in after_stop)
    assert not any(a in ",.;:!?" and b in ",.;:!?" for a, b in itertools.pairwise(words))
    non_ascii = {w.strip() for w in words} & set(NON_ASCII_WORDS)
    assert len(non_ascii) >= 3
    assert any(len(w.encode()) >= 4 for w in non_ascii)  # a 4-byte character shows up


def test_count_prompt_tokens() -> None:
    messages = [
        {"role": "system", "content": "be  brief"},
        {"role": "user", "content": [{"type": "text", "text": "one two three"}, {"x": 1}]},
        {"role": "assistant", "content": None},
    ]
    assert count_prompt_tokens(messages) == 5
    assert count_prompt_tokens([{"role": "user", "content": ""}]) == 1


# --------------------------------------------------------------------------- chat completions


async def test_same_messages_same_text_different_messages_different_text(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    one = await complete(session, server)
    two = await complete(session, server)
    other = await complete(session, server, messages=[{"role": "user", "content": "Other"}])
    text = one["choices"][0]["message"]["content"]
    assert text == two["choices"][0]["message"]["content"]
    assert text == "".join(generate_tokens(chat()["messages"], "gpt-test", TOKENS))
    assert text != other["choices"][0]["message"]["content"]
    assert one["id"] == two["id"] != other["id"]


async def test_non_streamed_shape(server: MockServer, session: aiohttp.ClientSession) -> None:
    body = await complete(session, server)
    assert list(body) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "service_tier",
        "system_fingerprint",
    ]
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-test"
    assert body["system_fingerprint"] == "fp_rxgpt"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["refusal"] is None
    assert choice["message"]["annotations"] == []
    assert body["usage"]["prompt_tokens"] == 5
    assert body["usage"]["completion_tokens"] == TOKENS
    assert body["usage"]["total_tokens"] == TOKENS + 5


async def test_streamed_text_equals_non_streamed_text(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    whole = await complete(session, server)
    streamed = texts(chunks(await stream_payloads(session, server)))
    assert streamed == {0: whole["choices"][0]["message"]["content"]}


async def test_stream_headers_and_byte_format(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    async with session.post(url(server), json=chat(stream=True)) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert resp.headers["Cache-Control"] == "no-cache"
        raw = await resp.read()
    assert raw.startswith(b'data: {"id":"chatcmpl-')
    assert raw.endswith(b"}\n\ndata: [DONE]\n\n")
    assert b": " not in raw.replace(b"data: ", b"") and b", " not in raw.split(b"\n\n")[0]
    assert raw.count(b"\n\n") == 1 + TOKENS + 1 + 1


async def test_stream_chunk_order_and_shape_with_usage(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    parsed = chunks(await stream_payloads(session, server, stream_options={"include_usage": True}))
    assert len(parsed) == 1 + TOKENS + 1 + 1
    role, content, finish, usage = parsed[0], parsed[1:-2], parsed[-2], parsed[-1]
    for chunk in parsed:
        assert list(chunk) == [*CHUNK_KEYS, "usage"]
        assert chunk["id"] == parsed[0]["id"] and chunk["id"].startswith("chatcmpl-")
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "gpt-test"
        assert chunk["service_tier"] == "default"
        assert chunk["system_fingerprint"] == "fp_rxgpt"
        assert isinstance(chunk["created"], int)
    assert all(chunk["usage"] is None for chunk in parsed[:-1])
    assert role["choices"] == [
        {"index": 0, "delta": ROLE_DELTA, "logprobs": None, "finish_reason": None}
    ]
    tokens = generate_tokens(chat()["messages"], "gpt-test", TOKENS)
    assert [c["choices"][0]["delta"] for c in content] == [{"content": t} for t in tokens]
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    assert finish["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    ]
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": TOKENS,
        "total_tokens": TOKENS + 5,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


async def test_stream_without_include_usage_has_no_usage(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    parsed = chunks(await stream_payloads(session, server))
    assert all(list(chunk) == CHUNK_KEYS for chunk in parsed)
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_cuts_with_length(
    server: MockServer, session: aiohttp.ClientSession, param: str
) -> None:
    full = texts(chunks(await stream_payloads(session, server)))[0]
    parsed = chunks(
        await stream_payloads(session, server, stream_options={"include_usage": True}, **{param: 4})
    )
    assert len(parsed) == 1 + 4 + 1 + 1
    assert parsed[-2]["choices"][0]["finish_reason"] == "length"
    assert parsed[-1]["usage"]["completion_tokens"] == 4
    cut = texts(parsed)[0]
    assert full.startswith(cut) and len(cut) < len(full)
    body = await complete(session, server, **{param: 4})
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == cut


async def test_max_tokens_above_answer_length_is_stop(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = await complete(session, server, max_tokens=TOKENS)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == TOKENS


async def test_n2_interleaves_choices_round_robin(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    parsed = chunks(
        await stream_payloads(session, server, n=2, stream_options={"include_usage": True})
    )
    indexes = [chunk["choices"][0]["index"] for chunk in parsed[:-1]]
    assert indexes == [0, 1] + [0, 1] * TOKENS + [0, 1]
    assert [c["choices"][0]["delta"] for c in parsed[:2]] == [ROLE_DELTA, ROLE_DELTA]
    assert [c["choices"][0]["finish_reason"] for c in parsed[-3:-1]] == ["stop", "stop"]
    assert parsed[-1]["usage"]["completion_tokens"] == 2 * TOKENS
    by_choice = texts(parsed)
    single = texts(chunks(await stream_payloads(session, server)))
    assert by_choice[0] == single[0]
    assert by_choice[1] != by_choice[0]
    body = await complete(session, server, n=2)
    assert [c["message"]["content"] for c in body["choices"]] == [by_choice[0], by_choice[1]]
    assert [c["index"] for c in body["choices"]] == [0, 1]


async def test_model_defaults_to_config_and_unknown_params_are_ignored(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = {"messages": MESSAGES, "temperature": 0.2, "tools": [], "whatever": {"x": 1}}
    async with session.post(url(server), json=body) as resp:
        assert resp.status == 200
        assert (await resp.json())["model"] == "rxgpt-mock"


async def test_timing_ttft_and_itl(session: aiohttp.ClientSession) -> None:
    async with MockServer(tokens=5, ttft_ms=120, itl_ms=30) as server:
        start = time.perf_counter()
        arrivals: list[float] = []
        role_at = -1.0
        async with session.post(url(server), json=chat(stream=True)) as resp:
            while line := await resp.content.readline():
                if b'"delta":{"role":"assistant"' in line:
                    role_at = time.perf_counter() - start
                if b'"delta":{"content":"' in line:
                    arrivals.append(time.perf_counter() - start)
    assert 0 <= role_at < 0.1  # the role chunk does not wait for the first token
    assert len(arrivals) == 5
    assert 0.11 <= arrivals[0] < 0.6
    assert 0.11 + 4 * 0.03 - 0.01 <= arrivals[-1] < 1.0
    assert arrivals[-1] - arrivals[0] >= 4 * 0.03 - 0.01


# --------------------------------------------------------------------------- other routes, errors


async def test_models_and_health(server: MockServer, session: aiohttp.ClientSession) -> None:
    async with session.get(server.base_url + "/models") as resp:
        assert resp.status == 200
        assert await resp.json() == {
            "object": "list",
            "data": [
                {
                    "id": "rxgpt-mock",
                    "object": "model",
                    "created": 1_700_000_000,
                    "owned_by": "rxgpt",
                }
            ],
        }
    async with session.get(server.url + "/health") as resp:
        assert resp.status == 200
        assert await resp.text() == "ok"


async def test_api_key_required_when_configured(session: aiohttp.ClientSession) -> None:
    async with MockServer(api_key="sk-secret-123") as server:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with session.post(url(server), json=chat(), headers=headers) as resp:
                assert resp.status == 401
                raw = await resp.read()
                error = json.loads(raw)["error"]
                assert error["type"] == "invalid_request_error"
                assert error["code"] == "invalid_api_key"
                assert error["param"] is None
                assert b"sk-secret" not in raw
        for scheme in ("Bearer", "bearer", "BEARER"):  # (auth schemes know no case)
            good = {"Authorization": f"{scheme} sk-secret-123"}
            async with session.post(url(server), json=chat(), headers=good) as resp:
                assert resp.status == 200
        async with session.get(server.base_url + "/models") as resp:
            assert resp.status == 401


@pytest.mark.parametrize(
    ("data", "param"),
    [
        (b"{not json", None),
        (b'{"model": "m"}', "messages"),
        (b'{"messages": []}', "messages"),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "x"}], "n": 0}', "n"),
        (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": "3"}', "max_tokens"),
        (b'{"messages": [{"role": "user", "content": "x"}], "mock": {"drop_aftr": 1}}', "mock"),
        (b'{"messages": [{"role": "user", "content": "x"}], "mock": {"gzip": 1}}', "mock"),
        (b"[" * 100_000 + b"]" * 100_000, None),  # nested past the parser's depth
    ],
)
async def test_bad_requests_get_400(
    server: MockServer, session: aiohttp.ClientSession, data: bytes, param: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    async with session.post(url(server), data=data, headers=headers) as resp:
        assert resp.status == 400
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        error = (await resp.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


async def test_app_with_pytest_aiohttp_fixtures(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient
) -> None:
    client: Any = await aiohttp_client(await aiohttp_server(create_app(MockConfig(tokens=3))))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    parsed = chunks(payloads(await resp.read()))
    assert len(parsed) == 1 + 3 + 1


# --------------------------------------------------------------------------- the real openai SDK


async def test_openai_sdk_streaming_and_non_streaming(server: MockServer) -> None:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "Tell me about streams, please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces: list[str] = []
        finish: list[str | None] = []
        usage = None
        async for chunk in stream:
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
                finish.append(choice.finish_reason)
            usage = chunk.usage or usage
        result = await client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "Tell me about streams, please"}],
        )
    finally:
        await client.close()
    expected = "".join(generate_tokens(chat()["messages"], "gpt-test", TOKENS))
    assert "".join(pieces) == expected
    assert finish[-1] == "stop"
    assert usage is not None and usage.completion_tokens == TOKENS
    assert result.choices[0].message.content == expected
    assert result.usage is not None and result.usage.total_tokens == TOKENS + 5


async def test_openai_sdk_sees_in_band_error(server: MockServer) -> None:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_body={"mock": {"error_at": 3}},
        )
        seen = 0
        with pytest.raises(openai.APIError, match="server had an error"):
            async for _ in stream:
                seen += 1
    finally:
        await client.close()
    assert seen == 3


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("status", "type_", "code"),
    [
        (429, "rate_limit_error", "rate_limit_exceeded"),
        (401, "invalid_request_error", "invalid_api_key"),
        (500, "server_error", None),
        (503, "server_error", None),
        (404, "invalid_request_error", None),
        (422, "invalid_request_error", None),
    ],
)
async def test_fault_status(
    server: MockServer, session: aiohttp.ClientSession, status: int, type_: str, code: str | None
) -> None:
    body = chat(stream=True, mock={"status": status, "retry_after": 2})
    async with session.post(url(server), json=body) as resp:
        assert resp.status == status
        assert resp.headers["Retry-After"] == "2"
        error = (await resp.json())["error"]
    assert (error["type"], error["code"], error["param"]) == (type_, code, None)


async def test_fault_status_without_retry_after_has_no_header(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    async with session.post(url(server), json=chat(mock={"status": 500})) as resp:
        assert resp.status == 500
        assert "Retry-After" not in resp.headers


async def test_fault_fail_first_counts_per_key(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    fail_a = {"fail_first": 2, "key": "a", "status": 429}
    statuses = [(await post_raw(session, server, chat(mock=fail_a)))[0] for _ in range(3)]
    assert statuses == [429, 429, 200]
    fail_b = {"fail_first": 1, "key": "b"}
    statuses = [(await post_raw(session, server, chat(mock=fail_b)))[0] for _ in range(2)]
    assert statuses == [500, 200]


async def test_server_wide_faults_are_overridden_per_request(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(tokens=3, faults={"status": 503}) as server:
        assert (await post_raw(session, server, chat()))[0] == 503
        status, raw = await post_raw(session, server, chat(stream=True, mock={"status": None}))
        assert status == 200 and raw.endswith(b"data: [DONE]\n\n")


async def test_server_wide_defaults_take_every_mock_key(
    session: aiohttp.ClientSession,
) -> None:
    """``faults`` (``--fault``) holds defaults of any ``mock`` key: timing (``tokens``),
    steering (``tool_call``, ``thinking``) and faults, each overridden per request."""
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    defaults = {"tokens": 3, "tool_call": True, "thinking": 2}
    async with MockServer(tokens=12, faults=defaults) as server:
        answer = await complete(session, server, tools=[tool])
        message = answer["choices"][0]["message"]
        assert message["tool_calls"][0]["function"]["name"] == "lookup"
        assert answer["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2
        answer = await complete(session, server, mock={"tool_call": False, "thinking": 0})
        assert answer["usage"]["completion_tokens"] == 3
        assert "tool_calls" not in answer["choices"][0]["message"]
    for bad in ({"tool_call": 3}, {"thinking": -1}, {"tokens": "many"}):
        with pytest.raises(ValueError, match="mock option"):
            MockServer(faults=bad)


@pytest.mark.parametrize("drop_after", [0, 3, 100])
async def test_fault_drop_after_breaks_the_body(
    server: MockServer, session: aiohttp.ClientSession, drop_after: int
) -> None:
    received = b""
    body = chat(stream=True, mock={"drop_after": drop_after})
    async with session.post(url(server), json=body) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for data in resp.content.iter_any():
                received += data
    assert received.count(b"\n\n") == min(drop_after, 1 + TOKENS + 1 + 1)


async def test_fault_garbage_at(server: MockServer, session: aiohttp.ClientSession) -> None:
    data = await stream_payloads(session, server, mock={"garbage_at": 2})
    assert len(data) == 1 + TOKENS + 1 + 1
    assert data[2] == "this is not json"
    assert json.loads(data[1])["choices"][0]["delta"]["content"]
    assert data[-1] == "[DONE]"


async def test_fault_error_at_ends_stream_without_done(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    data = await stream_payloads(session, server, mock={"error_at": 4})
    assert len(data) == 5
    assert json.loads(data[-1]) == {
        "error": {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert all("chat.completion.chunk" in item for item in data[:-1])


async def test_fault_no_done(server: MockServer, session: aiohttp.ClientSession) -> None:
    data = await stream_payloads(session, server, mock={"no_done": True})
    assert len(data) == 1 + TOKENS + 1
    assert json.loads(data[-1])["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(("name", "eol"), [("crlf", b"\r\n"), ("cr", b"\r")])
async def test_fault_line_endings(
    server: MockServer, session: aiohttp.ClientSession, name: str, eol: bytes
) -> None:
    status, raw = await post_raw(session, server, chat(stream=True, mock={"line_endings": name}))
    assert status == 200
    data = payloads(raw, eol)
    assert len(data) == 1 + TOKENS + 1 + 1
    assert data[-1] == "[DONE]"
    bare = raw.replace(eol, b"")
    assert b"\n" not in bare and b"\r" not in bare
    _, plain = await post_raw(session, server, chat(stream=True))
    assert normalise_created(raw.replace(eol, b"\n")) == normalise_created(plain)


async def test_fault_chunk_bytes_gives_the_same_bytes(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    _, chunked = await post_raw(session, server, chat(stream=True, mock={"chunk_bytes": 7}))
    _, plain = await post_raw(session, server, chat(stream=True))
    assert normalise_created(chunked) == normalise_created(plain)


class RecordingResponse:
    """Stands in for a StreamResponse: records each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.writes.append(data)


async def test_body_writer_writes_exactly_chunk_bytes() -> None:
    response = RecordingResponse()
    out = BodyWriter(response, FaultOptions(chunk_bytes=7))  # type: ignore[arg-type]
    for event in (b"data: caf\xc3\xa9\r\n\r\n", b"data: [DONE]\r\n\r\n"):
        await out.write(event)
    await out.finish()
    assert [len(w) for w in response.writes] == [7, 7, 7, 7, 3]
    assert b"".join(response.writes) == b"data: caf\xc3\xa9\r\n\r\ndata: [DONE]\r\n\r\n"


async def test_body_writer_gzip_flushes_every_write() -> None:
    response = RecordingResponse()
    out = BodyWriter(response, FaultOptions(gzip=True))  # type: ignore[arg-type]
    await out.write(b"data: one\n\n")
    decompressor = __import__("zlib").decompressobj(wbits=31)
    assert decompressor.decompress(b"".join(response.writes)) == b"data: one\n\n"
    await out.write(b"data: two\n\n")
    await out.finish()
    assert gzip.decompress(b"".join(response.writes)) == b"data: one\n\ndata: two\n\n"


async def test_fault_gzip_decodes_to_the_same_events(server: MockServer) -> None:
    body = chat(stream=True, mock={"gzip": True})
    async with (
        aiohttp.ClientSession(auto_decompress=False) as raw_session,
        raw_session.post(url(server), json=body) as resp,
    ):
        assert resp.headers["Content-Encoding"] == "gzip"
        compressed = await resp.read()
    assert compressed[:2] == b"\x1f\x8b"
    async with aiohttp.ClientSession() as session:
        _, decoded = await post_raw(session, server, body)
        _, plain = await post_raw(session, server, chat(stream=True))
    assert normalise_created(gzip.decompress(compressed)) == normalise_created(plain)
    assert normalise_created(decoded) == normalise_created(plain)


async def test_fault_gzip_still_streams(server: MockServer, session: aiohttp.ClientSession) -> None:
    body = chat(stream=True, mock={"gzip": True, "stall_after": 2})
    async with session.post(url(server), json=body) as resp:
        first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2)
        second = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2)
    assert b'"role":"assistant"' in first
    assert b'"content":"' in second


async def test_fault_stall_after_with_keepalive(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = chat(stream=True, mock={"stall_after": 3, "keepalive_ms": 20})
    async with session.post(url(server), json=body) as resp:
        events = [await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2) for _ in range(6)]
    assert all(e.startswith(b'data: {"id"') for e in events[:3])
    assert events[3:] == [b": keep-alive\n\n"] * 3


async def test_fault_stall_after_sends_nothing_more(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = chat(stream=True, mock={"stall_after": 2})
    async with session.post(url(server), json=body) as resp:
        for _ in range(2):
            await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(resp.content.read(1), 0.3)


async def test_fault_endless_line(server: MockServer, session: aiohttp.ClientSession) -> None:
    body = chat(stream=True, mock={"endless_line": True})
    async with session.post(url(server), json=body) as resp:
        first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 2)
        line = bytearray()
        while len(line) < 1_000_000:
            data = await asyncio.wait_for(resp.content.read(65536), 2)
            assert data, "the body ended"
            line += data
    assert b'"role":"assistant"' in first
    assert line.startswith(b'data: {"x":"aaaa')
    assert line[12:] == b"a" * (len(line) - 12)


# --------------------------------------------------------------------------- MockServer, run_server


async def test_mock_server_urls_and_overrides() -> None:
    server = MockServer(MockConfig(tokens=5), model="custom")
    assert server.config == MockConfig(tokens=5, model="custom")
    async with server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.base_url == server.url + "/v1"
        with pytest.raises(RuntimeError):
            await server.start()
    await server.close()


@pytest.mark.parametrize("freeze", [False, True])
def test_run_server_prints_url_and_stops_on_sigint(freeze: bool) -> None:
    # ``rxgpt serve`` (freeze_gc=True) freezes what start-up made; a program calling
    # run_server keeps its collector as it is unless it asks.
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    # (Ctrl+C as a terminal delivers it: a test run started in the background by a shell
    # inherits SIGINT ignored, and Python then keeps ignoring it)
    code = (
        "import gc, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from rxgpt.mock import run_server; "
        f"run_server(port=0, freeze_gc={freeze}); print('frozen', gc.get_freeze_count())"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        health = asyncio.run(_get_text(f"http://127.0.0.1:{match.group(1)}/health"))
        assert health == "ok"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        frozen = int(proc.stdout.read().split()[-1])
        assert (frozen > 10_000) if freeze else (frozen == 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def _get_text(address: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(address) as resp:
        return await resp.text()


def test_invalid_server_wide_faults_fail_fast() -> None:
    with pytest.raises(ValueError, match="drop_aftr"):
        create_app(MockConfig(faults={"drop_aftr": 1}))
    with pytest.raises(ValueError, match="line_endings"):
        MockServer(faults={"line_endings": "crcr"})


_COLLECTOR_PROBE = """
import asyncio, gc, sys
from rxgpt.mock._runner import serve_forever

async def main(freeze_gc):
    before = gc.get_threshold()
    task = asyncio.ensure_future(
        serve_forever("127.0.0.1", 0, None, announce=False, freeze_gc=freeze_gc)
    )
    await asyncio.sleep(0.5)
    print(before[2], gc.get_threshold()[2], gc.get_freeze_count() > 0)
    task.cancel()

asyncio.run(main(sys.argv[1] == "1"))
"""


@pytest.mark.parametrize("freeze_gc", [True, False])
def test_a_server_process_freezes_its_start_up_and_collects_in_full_rarely(
    freeze_gc: bool,
) -> None:
    # rxgpt serve (freeze_gc): a full collection in the middle of a run walks every open
    # request's objects (20-30 ms at 1,024 streams): start-up is frozen and full
    # collections come 10 times rarer. A program of the user's keeps its collector as is.
    out = subprocess.run(
        [sys.executable, "-c", _COLLECTOR_PROBE, "1" if freeze_gc else "0"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    default, after, frozen = out.stdout.split()
    if freeze_gc:
        assert (default, after, frozen) == ("10", "100", "True")
    else:
        assert (after, frozen) == (default, "False")


async def test_integers_past_64_bits_are_answered(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """Valid JSON that the fast encoder cannot write back (a 40-digit number, which Responses
    echoes, or a schema's bound) gets its answer, not a 500."""
    schema = {"type": "integer", "minimum": 10**40, "maximum": 10**40}
    text = {"format": {"type": "json_schema", "name": "n", "schema": schema}}
    body = {"model": "m", "input": "x", "max_output_tokens": 10**40, "text": text}
    async with session.post(server.base_url + "/responses", json=body) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["max_output_tokens"] == 10**40
    assert json.loads(answer["output"][0]["content"][0]["text"]) == 10**40


async def test_a_client_gone_before_its_headers_is_not_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that sends its request and resets the connection at once (it gave up) finds
    the handler about to write the headers: nothing to answer, and no 500 with a traceback
    in the server's log (aiohttp's "Error handling request")."""
    caplog.set_level(logging.WARNING)
    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    )
    request = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    async with MockServer(tokens=3) as server:
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(20)]
        await asyncio.sleep(0.2)  # (accepted)
        for sock in socks:  # (the loop does not run meanwhile: request and reset arrive together)
            sock.sendall(request)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        await asyncio.sleep(0.5)
        async with (
            aiohttp.ClientSession() as session,
            session.post(server.base_url + "/chat/completions", data=body) as resp,
        ):
            assert resp.status == 200 and b"[DONE]" in await resp.read()  # (still serving)
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []
