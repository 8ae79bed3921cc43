"""Valid JSON of the wrong shape, from a real loopback server: a typed error, promptly.

A chunk whose ``index`` is a string (or ``null``, or a list), whose ``choices`` is a number
or a dict, whose ``delta`` is a string, whose tool ``arguments`` are a number... must end
``await stream.completion()`` with a :class:`~rxgpt.DecodeError` that names the event and
carries its raw text and the partial result; never a bare TypeError, never a hang (the
stream's own accumulator is never detached). Every wait is bounded by ``failure()``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from helpers import MODEL, Harness, chat, chunk, failure, harness_fixture

from rxgpt import DecodeError

h = harness_fixture()

ROLE = chunk({"role": "assistant", "content": ""})
HELLO = chunk({"content": "Hello"})


def raw_chunk(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def base(**choice: Any) -> dict[str, Any]:
    one = {"index": 0, "delta": {"content": " world"}, "finish_reason": None, **choice}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": MODEL, "choices": [one]}


WRONG: dict[str, bytes] = {
    "index-string": raw_chunk(base(index="0")),
    "index-null": raw_chunk(base(index=None)),
    "index-list": raw_chunk(base(index=[0])),
    "choices-number": raw_chunk({**base(), "choices": 5}),
    "choices-dict": raw_chunk({**base(), "choices": {"0": {"delta": {"content": "x"}}}}),
    "choices-null-item": raw_chunk({**base(), "choices": [None]}),
    "delta-string": raw_chunk(base(delta="x")),
    "finish-number": raw_chunk(base(finish_reason=3)),
    "logprobs-string": raw_chunk(base(logprobs="x")),
    "usage-string": raw_chunk({**base(), "usage": "lots"}),
    "tool-calls-dict": raw_chunk(base(delta={"tool_calls": {"index": 0}})),
    "tool-arguments-number": raw_chunk(
        base(delta={"tool_calls": [{"index": 0, "id": "c", "function": {"arguments": 5}}]})
    ),
}


def handler(bad: bytes) -> Any:
    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(ROLE + HELLO + bad + b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    return answer


@pytest.mark.parametrize("name", sorted(WRONG))
async def test_a_wrong_shape_is_a_decode_error_with_index_raw_and_partial(
    h: Harness, name: str
) -> None:
    url, _ = await h.serve(handler(WRONG[name]))
    stream = chat(h.client(url))
    error = await failure(stream)
    assert isinstance(error, DecodeError), repr(error)
    assert error.index == 2  # the role chunk is 0, "Hello" is 1
    assert json.loads(error.raw) == json.loads(WRONG[name][6:])
    assert error.partial is not None and error.partial.text == "Hello"
    assert error.partial.state == "error"
    await h.settled(within=0.5)


async def test_a_new_choice_index_per_chunk_stops_at_the_cap(h: Harness) -> None:
    """100k choice indices must not become 100k choices in memory: past 128, a DecodeError."""
    chunks = b"".join(raw_chunk(base(index=n)) for n in range(100_000))

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for start in range(0, len(chunks), 64 * 1024):
                await response.write(chunks[start : start + 64 * 1024])
            await response.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass  # the client stopped reading: expected
        return response

    url, _ = await h.serve(answer)
    error = await failure(chat(h.client(url)))
    assert isinstance(error, DecodeError), repr(error)
    assert error.index == 128 and "0..127" in str(error)
    assert error.partial is not None and len(error.partial.choices) == 128
