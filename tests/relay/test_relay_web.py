"""The SSE relay with a real aiohttp client: both formats, Last-Event-ID resume from every
event, statuses, a dead producer, and rxgpt's own EventSource through a cut connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import TIMEOUT, free_port
from relay_helpers import CuttingProxy, chat

import rxgpt
import rxgpt.relay as relay
from rxgpt.mock import MockServer
from rxgpt.relay._connect import Redis


@contextlib.asynccontextmanager
async def serving(app: web.Application, *, cancel: bool = True) -> AsyncIterator[str]:
    runner = web.AppRunner(app, handler_cancellation=cancel, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _relay_chat(client: Redis, key: str, **params: Any) -> rxgpt.Completion:
    async with (
        MockServer(tokens=40, itl_ms=1) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as llm_client,
    ):
        stream = chat(llm_client, **params)
        published = relay.publish(stream, client, key)
        async with asyncio.timeout(TIMEOUT):
            completion = await stream.completion()
            await published.finished()
    return completion


async def _events(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, list[rxgpt.ServerSentEvent], bytes]:
    async with asyncio.timeout(TIMEOUT), session.get(url, headers=headers) as response:
        body = await response.read()
        if response.status == 200:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["Cache-Control"] == "no-cache"
    return response.status, rxgpt.SSEDecoder().feed(body), body


async def test_openai_format_is_chunks_rxgpt_decodes_to_the_same_answer(
    redis_client: Redis,
) -> None:
    completion = await _relay_chat(redis_client, "web", tools=True)
    async with serving(relay.create_app(redis_client)) as base, aiohttp.ClientSession() as s:
        status, events, body = await _events(s, f"{base}/v1/streams/web")
    assert status == 200 and body.startswith(b"retry: 1000\n\n")
    entry_ids = [e[0].decode() for e in await redis_client.xrange("web")]
    assert events[-2].data == "[DONE]" and events[-2].id == entry_ids[-1]
    assert events[-1].event == "done" and '"state":"complete"' in events[-1].data
    chunks = [e for e in events if e.event == "message" and e.data != "[DONE]"]
    assert all(e.id in entry_ids for e in chunks)
    assert all(e.json()["object"] == "chat.completion.chunk" for e in chunks)  # type: ignore[index]
    # rxgpt's own OpenAI decoder reads the relayed chunks back into the same answer
    decoder = rxgpt.StreamDecoder("openai-chat")
    acc = rxgpt.Accumulator()
    acc.add_all(decoder.feed(body.split(b"event: done")[0]))
    again = acc.completion()
    assert again.text == completion.text
    assert again.tool_calls == completion.tool_calls
    assert again.finish_reason == completion.finish_reason == "tool_calls"
    assert again.usage is not None and again.usage.raw == completion.usage.raw  # type: ignore[union-attr]


async def test_rxgpt_format_resumes_after_every_event_id(redis_client: Redis) -> None:
    await _relay_chat(redis_client, "resumable")
    everything = [d async for d in relay.subscribe(redis_client, "resumable")]
    async with serving(relay.create_app(redis_client)) as base, aiohttp.ClientSession() as s:
        url = f"{base}/v1/streams/resumable?format=rxgpt"
        _, events, _ = await _events(s, url)
        assert events[0].event == "start" and events[-1].event == "done"
        deltas = [relay.decode_deltas(e.data) for e in events if e.event == "message"]
        assert [d for batch in deltas for d in batch] == everything
        ids = [e.id for e in events]
        for n, last_id in enumerate(ids[:-1]):
            status, rest, _ = await _events(s, url, {"Last-Event-ID": last_id})
            assert status == 200 and [e.id for e in rest] == ids[n + 1 :]
            assert [e.data for e in rest] == [e.data for e in events[n + 1 :]]
        # the query parameter works too (a reloaded page), the header wins over it
        status, rest, _ = await _events(s, f"{url}&last_event_id={ids[1]}")
        assert [e.id for e in rest] == ids[2:]
        status, rest, _ = await _events(s, f"{url}&last_event_id=1-1", {"Last-Event-ID": ids[2]})
        assert [e.id for e in rest] == ids[3:]
        # after the end: 204, which makes a browser stop reconnecting
        status, _, _ = await _events(s, url, {"Last-Event-ID": ids[-1]})
        assert status == 204


async def test_statuses_before_the_stream(redis_client: Redis) -> None:
    await _relay_chat(redis_client, "exists")
    app = relay.create_app(redis_client, start_timeout=0.3, block=0.1)
    async with serving(app) as base, aiohttp.ClientSession() as s:
        assert (await _events(s, f"{base}/v1/streams/exists?format=xml"))[0] == 400
        bad = {"Last-Event-ID": "drop table"}
        assert (await _events(s, f"{base}/v1/streams/exists", bad))[0] == 400
        gone = {"Last-Event-ID": "1-0"}
        assert (await _events(s, f"{base}/v1/streams/expired", gone))[0] == 204
        assert (await _events(s, f"{base}/v1/streams/exists", {"Last-Event-ID": "3-3"}))[0] == 410
        assert (await _events(s, f"{base}/v1/streams/nobody"))[0] == 404
    down = relay.connect(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)
    try:
        async with serving(relay.create_app(down)) as base, aiohttp.ClientSession() as s:
            status, _, body = await _events(s, f"{base}/v1/streams/any")
        assert status == 503 and b"Redis at redis://127.0.0.1" in body
    finally:
        await down.aclose()


async def test_a_dead_producer_ends_the_sse_stream_typed_with_pings_before(
    redis_client: Redis,
) -> None:
    # a producer that wrote a start entry, one read and a short lease, then died
    start = relay.StartInfo("openai-chat", "dead", 300)
    from rxgpt.relay._encoding import encode_start

    await redis_client.xadd("dead", {"seq": 0, "type": "start", "d": encode_start(start)}, id="0-1")
    batch = relay.encode_deltas([rxgpt.TextDelta(0, "half an answer")])
    await redis_client.xadd("dead", {"seq": 1, "type": "deltas", "d": batch})
    await redis_client.set(relay.lease_key("dead"), "dead", px=600)
    app = relay.create_app(redis_client, block=0.1, ping_interval=0.05)
    async with serving(app) as base, aiohttp.ClientSession() as s:
        status, events, body = await _events(s, f"{base}/v1/streams/dead")
    assert status == 200 and b": ping\n\n" in body
    assert events[0].json()["choices"][0]["delta"]["content"] == "half an answer"  # type: ignore[index]
    assert '"class":"StreamInterrupted"' in events[-2].data
    assert events[-1].event == "done" and '"state":"truncated"' in events[-1].data


async def test_rxgpt_event_source_resumes_through_a_cut_connection(redis_client: Redis) -> None:
    async with (
        MockServer(tokens=120, itl_ms=4) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as llm_client,
        serving(relay.create_app(redis_client, retry_ms=50)) as base,
        CuttingProxy(int(base.rsplit(":", 1)[1]), cut_after=15) as proxy,
        aiohttp.ClientSession() as session,
    ):
        stream = chat(llm_client)
        published = relay.publish(stream, redis_client, "cut")
        stream.start()
        url = f"http://127.0.0.1:{proxy.port}/v1/streams/cut?format=rxgpt"
        source = rxgpt.to_async_iterable(rxgpt.event_source(url, session=session))
        got: list[rxgpt.Delta] = []
        first = asyncio.Event()
        proxy.delivered = first.wait
        async with asyncio.timeout(TIMEOUT):
            async for event in source:
                if event.event == "done":
                    break
                if event.event == "message":
                    got.extend(relay.decode_deltas(event.data))
                    first.set()
            completion = await stream.completion()
            await published.finished()
    assert proxy.cuts == 1 and len(proxy.requests) >= 2
    assert b"last-event-id: " in proxy.requests[1].lower()
    acc = rxgpt.Accumulator()
    acc.add_all(got)
    assert acc.completion() == completion  # every delta once, in order


def test_openai_chunk_merges_a_reads_deltas() -> None:
    chunk = relay.openai_chunk(
        [
            rxgpt.RoleDelta(0, "assistant"),
            rxgpt.TextDelta(0, "Hel"),
            rxgpt.TextDelta(0, "lo"),
            rxgpt.ToolCallStart(1, 0, "call_1", "f"),
            rxgpt.ToolCallArguments(1, 0, '{"a"'),
            rxgpt.ToolCallArguments(1, 0, ": 1}"),
            rxgpt.FinishDelta(0, "stop", "stop"),
        ]
    )
    assert chunk is not None
    first, second = chunk["choices"]
    assert first["delta"] == {"role": "assistant", "content": "Hello"}
    assert first["finish_reason"] == "stop"
    call = second["delta"]["tool_calls"][0]
    assert call == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a": 1}'},
    }
    assert relay.openai_chunk([rxgpt.PartStart(0, 0, "text")]) is None


@pytest.mark.parametrize("fmt", ["openai", "rxgpt"])
async def test_a_client_that_leaves_does_not_break_the_relay(redis_client: Redis, fmt: str) -> None:
    await _relay_chat(redis_client, "leaver")
    async with serving(relay.create_app(redis_client)) as base, aiohttp.ClientSession() as s:
        async with s.get(f"{base}/v1/streams/leaver?format={fmt}") as response:
            await response.content.readline()
        status, events, _ = await _events(s, f"{base}/v1/streams/leaver?format={fmt}")
    assert status == 200 and events[-1].event == "done"


async def test_a_browser_gone_before_the_headers_is_not_logged_as_an_error(
    redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """In an app of one's own (aiohttp does not cancel handlers by default), a client that
    resets the connection right after its request finds the handler writing the headers:
    it returns quietly instead of a 500 logged with a traceback."""
    caplog.set_level(logging.WARNING)
    await _relay_chat(redis_client, "gone")
    async with serving(relay.create_app(redis_client), cancel=False) as base:
        port = int(base.rsplit(":", 1)[1])
        request = b"GET /v1/streams/gone HTTP/1.1\r\nHost: x\r\n\r\n"
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(30)]
        await asyncio.sleep(0.2)  # (accepted)
        for sock in socks:  # (the loop does not run meanwhile: request and reset together)
            sock.sendall(request)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        await asyncio.sleep(1.0)
        async with aiohttp.ClientSession() as session:
            status, events, _ = await _events(session, f"{base}/v1/streams/gone")
        assert status == 200 and events[-1].event == "done"  # (still serving)
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []
