"""A clean end without ``data: [DONE]``: complete after every finish reason, else truncated.

Many OpenAI-compatible servers omit the marker, and openai-python accepts their streams
(it is the oracle here). rxgpt completes them too, with ``end_marker=False`` and a
:class:`~rxgpt.MissingEndMarker` last; ``require_done=True`` restores the error. A body
cut before a choice's finish reason, or inside an event, stays a
:class:`~rxgpt.StreamInterrupted` with the partial. Every server is a real loopback one.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from aiohttp import web
from helpers import (
    FINISH,
    MODEL,
    ROLE,
    TIMEOUT,
    Harness,
    chat,
    chunk,
    failure,
    harness_fixture,
    write_sse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxgpt import (
    Client,
    MissingDone,
    MissingEndMarker,
    StreamDecoder,
    StreamInterrupted,
    TextDelta,
    Usage,
)

h = harness_fixture(paths=("/v1/chat/completions", "/v1/completions"))

WORDS = ["The", " marker", " is", " optional", "."]
TEXT = "".join(WORDS)
USAGE = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"'
    + MODEL.encode()
    + b'","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}\n\n'
)
NO_DONE = ROLE + b"".join(chunk({"content": w}) for w in WORDS) + FINISH + USAGE


def answering(body: bytes) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await write_sse(request, body)

    return handler


def choice_chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def sdk_text(url: str, body: bytes) -> tuple[str, list[str | None]]:
    """What openai-python makes of the stream: choice 0's text and every finish reason."""
    client = openai.AsyncOpenAI(base_url=url, api_key="sk-test", max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text: list[str] = []
        finishes: list[str | None] = []
        async with asyncio.timeout(TIMEOUT):
            async for c in stream:
                for ch in c.choices:
                    if ch.index == 0 and ch.delta.content:
                        text.append(ch.delta.content)
                    if ch.finish_reason:
                        finishes.append(ch.finish_reason)
        return "".join(text), finishes
    finally:
        await client.close()


async def test_every_finish_reason_then_a_clean_end_is_complete_without_the_marker(
    h: Harness,
) -> None:
    url, _ = await h.serve(answering(NO_DONE))
    stream = chat(h.client(url))
    seen: list[Any] = []
    stream.subscribe(seen.append)
    result = await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert result.state == "complete"
    assert result.end_marker is False
    assert result.text == TEXT
    assert result.finish_reason == "stop"
    assert result.usage == Usage(3, 5, 8, raw=result.usage.raw if result.usage else None)
    assert isinstance(seen[-1], MissingEndMarker)  # subscribers are told, last
    assert result.deltas == sum(1 for d in seen if not isinstance(d, MissingEndMarker))
    # the oracle agrees that this stream is whole
    assert await sdk_text(url, NO_DONE) == (TEXT, ["stop"])


async def test_with_the_marker_end_marker_is_true(h: Harness) -> None:
    url, _ = await h.serve(answering(NO_DONE + b"data: [DONE]\n\n"))
    result = await asyncio.wait_for(chat(h.client(url)).completion(), TIMEOUT)
    assert result.state == "complete" and result.end_marker is True and result.text == TEXT


@pytest.mark.parametrize("where", ["client", "call"])
async def test_require_done_restores_the_error_with_the_partial(h: Harness, where: str) -> None:
    url, _ = await h.serve(answering(NO_DONE))
    if where == "client":
        stream = chat(h.client(url, require_done=True))
    else:
        stream = chat(h.client(url), require_done=True)
    error = await failure(stream)
    assert isinstance(error, MissingDone)
    assert error.partial is not None
    assert error.partial.state == "truncated"
    assert error.partial.text == TEXT
    assert error.partial.end_marker is True  # nothing was accepted without it


async def test_a_body_cut_before_the_finish_reason_stays_interrupted(h: Harness) -> None:
    body = ROLE + b"".join(chunk({"content": w}) for w in WORDS)  # no finish, no [DONE]
    url, _ = await h.serve(answering(body))
    error = await failure(chat(h.client(url)))
    assert isinstance(error, StreamInterrupted)
    assert error.partial is not None
    assert error.partial.state == "truncated" and error.partial.text == TEXT


async def test_a_body_cut_inside_an_event_after_the_finish_is_interrupted(h: Harness) -> None:
    # The usage chunk is cut in its JSON: the body did not end at an event boundary.
    body = NO_DONE[: len(NO_DONE) - len(USAGE) // 2]
    url, _ = await h.serve(answering(body))
    error = await failure(chat(h.client(url)))
    assert isinstance(error, StreamInterrupted)
    assert error.partial is not None and error.partial.text == TEXT


async def test_with_two_choices_both_must_finish(h: Harness) -> None:
    both = (
        choice_chunk(0, {"role": "assistant", "content": "a"})
        + choice_chunk(1, {"role": "assistant", "content": "b"})
        + choice_chunk(0, {}, "stop")
    )
    url, _ = await h.serve(answering(both))
    error = await failure(chat(h.client(url)))
    assert isinstance(error, StreamInterrupted)
    assert error.partial is not None and [c.text for c in error.partial.choices] == ["a", "b"]

    url, _ = await h.serve(answering(both + choice_chunk(1, {}, "length")))
    result = await asyncio.wait_for(chat(h.client(url)).completion(), TIMEOUT)
    assert result.state == "complete" and not result.end_marker
    assert [c.finish_reason for c in result.choices] == ["stop", "length"]


async def test_a_choice_first_met_in_a_plain_text_chunk_counts(h: Harness) -> None:
    # choice 1 never sends a role: its first chunk is the common one-fragment chunk
    body = (
        choice_chunk(0, {"role": "assistant", "content": "a"})
        + choice_chunk(1, {"content": "b"})
        + choice_chunk(0, {}, "stop")
    )
    url, _ = await h.serve(answering(body))
    error = await failure(chat(h.client(url)))
    assert isinstance(error, StreamInterrupted)  # choice 1 never finished


async def test_a_body_with_no_choice_at_all_is_interrupted(h: Harness) -> None:
    url, _ = await h.serve(answering(USAGE))
    error = await failure(chat(h.client(url)))
    assert isinstance(error, MissingDone)


async def test_legacy_completions_follow_the_same_rule(h: Harness) -> None:
    def legacy(text: str, finish: str | None) -> bytes:
        payload = {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": MODEL,
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
        }
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    body = legacy("Hello", None) + legacy(" there", "stop")
    url, _ = await h.serve(answering(body))
    client = h.client(url, provider="openai-completions")
    result = await asyncio.wait_for(
        client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}]).completion(),
        TIMEOUT,
    )
    assert result.state == "complete" and not result.end_marker and result.text == "Hello there"

    url, _ = await h.serve(answering(legacy("Hello", None)))
    client = h.client(url, provider="openai-completions")
    error = await failure(client.chat(model=MODEL, messages=[{"role": "user", "content": "x"}]))
    assert isinstance(error, StreamInterrupted)


async def test_the_embedded_servers_no_done_fault_is_complete(h: Harness) -> None:
    server, _ = await h.mock(tokens=6)
    client = Client(server.base_url, api_key="sk-test", session=h.session)
    full = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    result = await asyncio.wait_for(chat(client, mock={"no_done": True}).completion(), TIMEOUT)
    assert result.state == "complete" and not result.end_marker and full.end_marker
    assert result.text == full.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(1, len(NO_DONE) - 1), max_size=8), strict=st.booleans())
def test_the_sans_io_decoder_agrees_at_any_chunking(cuts: list[int], strict: bool) -> None:
    points = sorted(set(cuts))
    pieces = [NO_DONE[a:b] for a, b in zip([0, *points], [*points, len(NO_DONE)], strict=True)]
    decoder = StreamDecoder(require_done=strict)
    deltas = [d for piece in pieces for d in decoder.feed(piece)]
    deltas += decoder.close()
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == TEXT
    if strict:
        assert isinstance(decoder.error, MissingDone)
        assert not any(isinstance(d, MissingEndMarker) for d in deltas)
    else:
        assert decoder.error is None and decoder.done
        assert isinstance(deltas[-1], MissingEndMarker)
