"""Hostile or broken servers: each gives its typed error or is decoded correctly.

An endless line and gigantic events (memory bounded by ``max_event_bytes``, measured with
tracemalloc), binary garbage, broken HTTP, HTML or JSON documents with a 200, gzip and
deflate bodies, wrong or missing content types, empty bodies and bodies without their end
signal on every protocol. Raw TCP servers are used where aiohttp would "fix" the answer
(a missing Content-Type, a garbage status line, broken chunked framing). After every test
the harness checks that no task is left behind and no connection stays acquired.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from helpers import (
    MESSAGES,
    MODEL,
    ROLE,
    TIMEOUT,
    Harness,
    chat,
    chunk,
    failure,
    full_stream,
    harness_fixture,
    prepared,
    write_sse,
)

import rxgpt
from rxgpt import (
    Client,
    DecodeError,
    EventTooLarge,
    Retry,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    StreamTooLong,
    TransportError,
)
from rxgpt.mock import generate_tokens

KEY = "sk-test-hostile-0123456789abcdef"
TOKENS = 12
WORDS = generate_tokens(MESSAGES, MODEL, TOKENS)
TEXT = "".join(WORDS)
MiB = 1024 * 1024
FULL = full_stream(WORDS)

h = harness_fixture(key=KEY)


def body_handler(
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    piece: int | None = None,
    status: int = 200,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Answer with ``body`` (in writes of ``piece`` bytes), then end it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(
            status=status, headers=headers or {"Content-Type": "text/event-stream"}
        )
        await response.prepare(request)
        size = piece or len(body) or 1
        for start in range(0, len(body), size):
            await response.write(body[start : start + size])
        await response.write_eof()
        return response

    return handler


def http_answer(body: bytes, headers: dict[str, str]) -> bytes:
    lines = [b"HTTP/1.1 200 OK"] + [f"{k}: {v}".encode() for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --------------------------------------------------------------------------- size limits


async def test_endless_line_stays_within_bounded_memory_and_closes(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, max_event_bytes=MiB)
    stream = chat(client, mock={"endless_line": True})
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(EventTooLarge) as info:
            await asyncio.wait_for(stream.completion(), TIMEOUT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    error = info.value
    assert error.limit == MiB
    assert MiB < error.size < 2 * MiB
    assert "max_event_bytes" in str(error)
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB while reading an endless line"
    assert error.partial is not None and error.partial.text == ""
    assert error.partial.state == "error"
    await seen.wait_ended(within=1.5)  # the endless writer saw the connection close
    await h.settled(within=1.5)
    assert h.pooled == 0


async def test_endless_ndjson_line_is_bounded_too(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = Client(
        server.url,
        provider="ollama",
        session=h.session,
        retry=Retry(attempts=1),
        max_event_bytes=256 * 1024,
    )
    error = await failure(chat(client, mock={"endless_line": True}))
    assert isinstance(error, EventTooLarge)
    assert error.limit == 256 * 1024
    await seen.wait_ended(within=1.5)


def giant_event(size: int) -> bytes:
    return (
        chunk({"role": "assistant", "content": "x" * size})
        + chunk({}, "stop")
        + (b"data: [DONE]\n\n")
    )


async def test_a_gigantic_event_over_the_limit_fails(h: Harness) -> None:
    url, seen = await h.serve(body_handler(giant_event(8 * MiB), piece=256 * 1024))
    client = h.client(url, max_event_bytes=MiB)
    error = await failure(chat(client))
    assert isinstance(error, EventTooLarge)
    assert error.limit == MiB and error.size > MiB
    await seen.wait_ended(within=1.5)
    await h.settled(within=1.5)


async def test_a_gigantic_event_without_a_limit_is_decoded_intact(h: Harness) -> None:
    url, _ = await h.serve(body_handler(giant_event(8 * MiB), piece=256 * 1024))
    client = h.client(url)
    result = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    assert result.state == "complete"
    assert len(result.text) == 8 * MiB
    assert result.text == "x" * (8 * MiB)


async def test_the_limit_is_per_event_not_per_stream(h: Harness) -> None:
    """2 MiB in 1 KiB events under a 64 KiB limit: fine."""
    piece = "y" * 1024
    body = chunk({"role": "assistant", "content": ""})
    body += chunk({"content": piece}) * 2048 + chunk({}, "stop") + b"data: [DONE]\n\n"
    url, _ = await h.serve(body_handler(body, piece=64 * 1024))
    client = h.client(url, max_event_bytes=64 * 1024)
    result = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    assert result.state == "complete"
    assert len(result.text) == 2 * MiB


async def test_many_data_lines_adding_up_past_the_limit_fail(h: Harness) -> None:
    """One event of 100 ``data:`` lines of 16 KiB each: 1.6 MiB > 1 MiB."""
    line = b"data: " + b"z" * 16384 + b"\n"
    url, _ = await h.serve(body_handler(line * 100 + b"\n", piece=32 * 1024))
    client = h.client(url, max_event_bytes=MiB)
    error = await failure(chat(client))
    assert isinstance(error, EventTooLarge)
    assert error.limit == MiB


# --------------------------------------------------------------------------- garbage


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("content_type", ["text/event-stream", "application/octet-stream"])
async def test_binary_garbage_gives_a_typed_error(h: Harness, seed: int, content_type: str) -> None:
    noise = random.Random(seed).randbytes(64 * 1024) + b"\x00\xff\xfe\xc3\x28\x00"
    url, _ = await h.serve(body_handler(noise, headers={"Content-Type": content_type}, piece=4096))
    client = h.client(url)
    error = await failure(chat(client))
    assert isinstance(error, StreamInterrupted | DecodeError), repr(error)
    assert error.partial is not None and error.partial.text == ""


async def test_garbage_in_a_data_field_is_a_decode_error_with_its_raw_text(h: Harness) -> None:
    noise = bytes(b for b in random.Random(7).randbytes(300) if b not in b"\r\n")
    body = chunk({"role": "assistant", "content": ""}) + b"data: " + noise + b"\n\n"
    url, _ = await h.serve(body_handler(body))
    error = await failure(chat(h.client(url)))
    assert isinstance(error, DecodeError)
    assert error.index == 1
    assert "\ufffd" in error.raw  # invalid UTF-8, replaced, not raised


async def test_invalid_utf8_inside_content_is_replaced(h: Harness) -> None:
    bad = chunk({"content": "caf@"}).replace(b"caf@", b"caf\xe9")
    body = chunk({"role": "assistant", "content": ""}) + bad + chunk({}, "stop")
    url, _ = await h.serve(body_handler(body + b"data: [DONE]\n\n"))
    result = await asyncio.wait_for(chat(h.client(url)).completion(), TIMEOUT)
    assert result.text == "caf\ufffd"


async def test_a_nul_byte_in_a_json_payload_is_a_decode_error(h: Harness) -> None:
    bad = chunk({"content": "a@b"}).replace(b"a@b", b"a\x00b")
    url, _ = await h.serve(body_handler(chunk({"role": "assistant"}) + bad))
    error = await failure(chat(h.client(url)))
    assert isinstance(error, DecodeError) and error.index == 1


async def test_a_garbage_status_line_is_a_transport_error(h: Harness) -> None:
    url, _ = await h.raw(b"\x00\x01garbage\xff\xfe not http at all\r\n\r\n" * 3)
    error = await failure(chat(h.client(url)))
    assert isinstance(error, TransportError), repr(error)


async def test_broken_chunked_framing_is_stream_interrupted(h: Harness) -> None:
    first = chunk({"role": "assistant", "content": ""}) + chunk({"content": WORDS[0]})
    body = f"{len(first):x}\r\n".encode() + first + b"\r\n"
    answer = http_answer(
        body, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
    )
    # Broken framing in a later read: aiohttp (3.14) stops delivering but never fails the
    # read, so the idle deadline is what ends the stream: a typed error, not a hang.
    url, _ = await h.raw([answer, b"zz-not-a-size\r\n"], close=False)
    client = h.client(url, timeouts=rxgpt.Timeouts(connect=2, idle=0.5))
    error = await failure(chat(client))
    assert isinstance(error, StreamInterrupted | StreamTimeout), repr(error)
    assert error.partial is not None and error.partial.text == WORDS[0]
    assert error.partial.state in ("truncated", "error")


async def test_a_body_shorter_than_its_content_length_is_stream_interrupted(h: Harness) -> None:
    answer = http_answer(
        FULL[:300], {"Content-Type": "text/event-stream", "Content-Length": "5000"}
    )
    url, _ = await h.raw(answer)
    error = await failure(chat(h.client(url)))
    assert isinstance(error, StreamInterrupted), repr(error)
    assert error.partial is not None and error.partial.state == "truncated"


# --------------------------------------------------------------------------- documents with a 200


async def test_an_html_page_with_200_is_a_decode_error(h: Harness) -> None:
    page = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"
    url, _ = await h.serve(body_handler(page, headers={"Content-Type": "text/html"}))
    error = await failure(chat(h.client(url)))
    assert type(error) is DecodeError
    assert "text/html" in str(error)
    assert "502 Bad Gateway" in error.raw
    assert error.partial is not None and error.partial.state == "error"


async def test_a_json_error_document_with_200_is_a_stream_error(h: Harness) -> None:
    doc = {"error": {"message": "model overloaded", "type": "server_error", "code": None}}
    headers = {"Content-Type": "application/json; charset=utf-8"}
    url, _ = await h.serve(body_handler(json.dumps(doc).encode(), headers=headers))
    error = await failure(chat(h.client(url)))
    assert type(error) is StreamError
    assert error.error_type == "server_error"
    assert "model overloaded" in str(error)


async def test_a_non_streamed_json_answer_with_200_is_a_decode_error(h: Harness) -> None:
    doc = {"id": "chatcmpl-1", "object": "chat.completion", "choices": []}
    headers = {"Content-Type": "application/json"}
    url, _ = await h.serve(body_handler(json.dumps(doc).encode(), headers=headers))
    error = await failure(chat(h.client(url)))
    assert type(error) is DecodeError
    assert "application/json" in str(error)


# ------------------------------------------------------------------- encodings, content types


async def test_gzip_sse_is_decoded(h: Harness) -> None:
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
    url, _ = await h.serve(body_handler(gzip.compress(FULL), headers=headers, piece=7))
    result = await asyncio.wait_for(chat(h.client(url)).completion(), TIMEOUT)
    assert result.state == "complete" and result.text == TEXT


async def test_deflate_sse_is_decoded(h: Harness) -> None:
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": "deflate"}
    url, _ = await h.serve(body_handler(zlib.compress(FULL), headers=headers, piece=11))
    assert await asyncio.wait_for(chat(h.client(url)).text(), TIMEOUT) == TEXT


async def test_streamed_gzip_from_the_mock_in_tiny_writes_is_decoded(h: Harness) -> None:
    server, _ = await h.mock(tokens=TOKENS)
    stream = chat(h.client(server.base_url), mock={"gzip": True, "chunk_bytes": 1})
    assert await asyncio.wait_for(stream.text(), TIMEOUT) == TEXT


async def test_a_corrupt_gzip_body_is_a_typed_error(h: Harness) -> None:
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
    corrupt = gzip.compress(FULL)[:20] + b"\x00" * 200
    url, _ = await h.serve(body_handler(corrupt, headers=headers))
    error = await failure(chat(h.client(url)))
    assert isinstance(error, StreamInterrupted | DecodeError), repr(error)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/event-stream;charset=UTF-8",
        "TEXT/EVENT-STREAM",
        "application/octet-stream",
        "application/x-ndjson",
    ],
)
async def test_wrong_content_types_are_still_decoded(h: Harness, content_type: str) -> None:
    url, _ = await h.serve(body_handler(FULL, headers={"Content-Type": content_type}, piece=50))
    result = await asyncio.wait_for(chat(h.client(url)).completion(), TIMEOUT)
    assert result.state == "complete" and result.text == TEXT


async def test_a_missing_content_type_is_decoded(h: Harness) -> None:
    answer = http_answer(FULL, {"Content-Length": str(len(FULL)), "Connection": "close"})
    url, _ = await h.raw(answer)
    result = await asyncio.wait_for(chat(h.client(url)).completion(), TIMEOUT)
    assert result.state == "complete" and result.text == TEXT


async def test_a_close_delimited_body_is_decoded(h: Harness) -> None:
    """HTTP/1.0 style: no length, no chunking; the body ends when the server closes."""
    answer = http_answer(FULL, {"Content-Type": "text/event-stream", "Connection": "close"})
    url, _ = await h.raw(answer)
    assert await asyncio.wait_for(chat(h.client(url)).text(), TIMEOUT) == TEXT


# --------------------------------------------------------------------------- missing end signal


async def test_an_empty_200_body_is_truncated(h: Harness) -> None:
    url, _ = await h.serve(body_handler(b""))
    error = await failure(chat(h.client(url)))
    assert isinstance(error, StreamInterrupted)
    assert error.partial is not None
    assert error.partial.state == "truncated" and error.partial.text == ""


async def test_an_empty_body_with_content_length_zero_is_truncated(h: Harness) -> None:
    url, _ = await h.raw(
        http_answer(b"", {"Content-Type": "text/event-stream", "Content-Length": "0"})
    )
    error = await failure(chat(h.client(url)))
    assert isinstance(error, StreamInterrupted)


PROVIDERS = [
    pytest.param("openai", "/v1", id="openai"),
    pytest.param("openai-responses", "/v1", id="responses"),
    pytest.param("openai-completions", "/v1", id="completions"),
    pytest.param("anthropic", "", id="anthropic"),
    pytest.param("ollama", "", id="ollama"),
]


@pytest.mark.parametrize(("provider", "suffix"), PROVIDERS)
async def test_no_end_signal_is_stream_interrupted_on_every_protocol(
    h: Harness, provider: str, suffix: str
) -> None:
    # Strict mode: without it an OpenAI body missing only [DONE] is complete (see
    # test_missing_done.py); the other protocols' end events are never optional.
    server, _ = await h.mock(tokens=TOKENS)
    client = Client(
        server.url + suffix,
        api_key=KEY,
        provider=provider,
        session=h.session,
        retry=Retry(attempts=1),
        require_done=True,
    )
    complete = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    assert complete.state == "complete" and complete.text

    error = await failure(chat(client, mock={"no_done": True}))
    assert isinstance(error, StreamInterrupted), repr(error)
    assert error.partial is not None
    assert error.partial.state == "truncated"
    assert error.partial.text == complete.text  # everything but the end signal arrived


@pytest.mark.parametrize(("provider", "suffix"), PROVIDERS)
async def test_a_drop_mid_body_is_stream_interrupted_on_every_protocol(
    h: Harness, provider: str, suffix: str
) -> None:
    server, _ = await h.mock(tokens=TOKENS)
    client = Client(
        server.url + suffix,
        api_key=KEY,
        provider=provider,
        session=h.session,
        retry=Retry(attempts=3, backoff=0.01),
    )
    complete = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    error = await failure(chat(client, mock={"drop_after": 6}))
    assert isinstance(error, StreamInterrupted), repr(error)
    assert error.partial is not None
    assert error.partial.state == "truncated"
    assert error.partial.text and complete.text.startswith(error.partial.text)
    assert error.partial.text != complete.text
    assert error.attempts == 1


# --------------------------------------------------------------------------- endless streams


async def test_an_endless_stream_ends_at_max_deltas_with_the_partial(h: Harness) -> None:
    # A server that never stops sending content: the per-stream bound ends it, typed.
    async def endless(request: web.Request) -> web.StreamResponse:
        response = await prepared(request)
        await response.write(ROLE)
        piece = chunk({"content": "x"}) * 50
        for _ in range(10_000):  # far past the bound; the client hangs up first
            await response.write(piece)
        raise AssertionError("the client kept reading past max_deltas")

    url, seen = await h.serve(endless)
    client = h.client(url, max_deltas=2_000)
    late: list[Any] = []
    stream = chat(client)
    error = await failure(stream)
    assert isinstance(error, StreamTooLong)
    assert error.limit == 2_000 and error.count > 2_000
    assert error.partial is not None and error.partial.state == "error"
    assert error.partial.text == "x" * len(error.partial.text) and len(error.partial.text) >= 1_900
    stream.subscribe(late.append, late.append)  # a late subscriber gets the replay and the end
    assert late and late[-1] is error
    await seen.wait_ended(1, within=TIMEOUT)


async def test_max_deltas_none_is_no_bound(h: Harness) -> None:
    words = ["w"] * 3_000

    async def answer(request: web.Request) -> web.StreamResponse:
        return await write_sse(request, full_stream(words))

    url, _ = await h.serve(answer)
    result = await asyncio.wait_for(chat(h.client(url, max_deltas=None)).completion(), TIMEOUT)
    assert result.text == "w" * 3_000
    error = await failure(chat(h.client(url, max_deltas=1_000)))
    assert isinstance(error, StreamTooLong) and error.partial is not None
