"""Publish and subscribe on a real redis-server, with the mock server as the LLM: equal
Completions, late joiners, resume from every entry, typed errors with the partial."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from conftest import TIMEOUT, RedisProcess, free_port
from relay_helpers import chat, same

import rxgpt
import rxgpt.relay as relay
from rxgpt._fusion import subscribe_batches
from rxgpt.mock import MockServer
from rxgpt.relay._connect import Redis


async def _relayed(
    redis_client: Redis, key: str, *, tools: bool = False, mock: dict | None = None, **server
) -> tuple[rxgpt.ChatStream, relay.Relay, rxgpt.Completion | rxgpt.RxgptError]:
    """Relay one mock chat to ``key``; return the stream, the relay and its result."""
    async with (
        MockServer(**{"tokens": 40, **server}) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as client,
    ):
        stream = chat(client, tools=tools, mock=mock)
        published = relay.publish(stream, redis_client, key)
        async with asyncio.timeout(TIMEOUT):
            try:
                result: rxgpt.Completion | rxgpt.RxgptError = await stream.completion()
            except rxgpt.RxgptError as error:
                result = error
            await published.finished()
    return stream, published, result


async def test_subscribers_live_and_late_accumulate_the_producers_completion(
    redis_client: Redis,
) -> None:
    async with (
        MockServer(tokens=60, itl_ms=2) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as client,
    ):
        stream = chat(client)
        reads: list[int] = []
        subscribe_batches(stream.observable, lambda b: reads.append(len(b)), print, print)
        published = relay.publish(stream, redis_client, "answer")
        early = relay.subscribe(redis_client, "answer")  # before the producer starts
        early_task = asyncio.create_task(early.completion())
        async with asyncio.timeout(TIMEOUT):
            completion = await stream.completion()
            await published.finished()
            live = await early_task
            late = await relay.subscribe(redis_client, "answer").completion()
    assert completion.state == "complete" and completion.usage is not None
    assert live == completion and late == completion
    assert len(completion.text) > 100
    # at most one entry and one round trip per network read (plus the start and the end)
    assert published.entries == len(await redis_client.xrange("answer"))
    assert published.round_trips <= len(reads) + 2 and published.entries <= len(reads) + 2
    assert len(reads) > 10 and sum(reads) == completion.deltas


async def test_tool_calls_and_every_delta_survive_the_relay(redis_client: Redis) -> None:
    _, _, completion = await _relayed(redis_client, "tools", tools=True)
    assert isinstance(completion, rxgpt.Completion)
    assert completion.tool_calls and completion.finish_reason == "tool_calls"
    got = relay.subscribe(redis_client, "tools")
    seen = []
    async with asyncio.timeout(TIMEOUT):
        async for delta in got:
            seen.append(delta)
    assert await got.completion() == completion
    assert len(seen) == completion.deltas


async def test_another_protocol_is_carried_in_the_start_entry(redis_client: Redis) -> None:
    async with (
        MockServer(tokens=20) as llm,
        rxgpt.Client(base_url=llm.url, api_key="k", provider="anthropic") as client,
    ):
        stream = client.chat(model="claude-test", messages=[{"role": "user", "content": "hi"}])
        published = relay.publish(stream, redis_client, "claude")
        async with asyncio.timeout(TIMEOUT):
            completion = await stream.completion()
            await published.finished()
            got = await relay.subscribe(redis_client, "claude").completion()
    assert completion.protocol == "anthropic" and got == completion
    assert got.to_anthropic() == completion.to_anthropic()


async def test_resume_after_every_entry_gives_exactly_the_remaining_deltas(
    redis_client: Redis,
) -> None:
    _, _, completion = await _relayed(redis_client, "resume", tokens=30, itl_ms=2)
    assert isinstance(completion, rxgpt.Completion)
    everything = [delta async for delta in relay.subscribe(redis_client, "resume")]
    entries = await redis_client.xrange("resume")
    assert len(entries) > 10
    per_entry = [
        relay.decode_deltas(f[b"d"]) if f[b"type"] == b"deltas" else [] for _, f in entries
    ]
    assert [d for batch in per_entry for d in batch] == everything
    for n, (entry_id, _) in enumerate(entries):
        rest = relay.subscribe(redis_client, "resume", after=entry_id.decode())
        async with asyncio.timeout(TIMEOUT):
            got = [delta async for delta in rest]
            result = await rest.completion()
        assert got == [d for batch in per_entry[n + 1 :] for d in batch]
        assert result.state == "complete"
        assert result.deltas == len(got)


async def test_a_typed_error_reaches_subscribers_with_the_partial_rebuilt(
    redis_client: Redis,
) -> None:
    _, _, error = await _relayed(redis_client, "failing", mock={"error_at": 12})
    assert isinstance(error, rxgpt.StreamError) and error.partial is not None
    assert error.partial.text  # some text arrived before the error
    follower = relay.subscribe(redis_client, "failing")
    with pytest.raises(rxgpt.StreamError) as caught:
        async with asyncio.timeout(TIMEOUT):
            await follower.completion()
    assert str(caught.value) == str(error) and caught.value.error == error.error
    assert caught.value.retryable == error.retryable
    assert caught.value.partial is not None and same(caught.value.partial, error.partial)


async def test_an_interrupted_stream_ends_subscribers_the_same_way(redis_client: Redis) -> None:
    _, _, error = await _relayed(redis_client, "dropped", mock={"drop_after": 8})
    assert isinstance(error, rxgpt.StreamInterrupted)
    with pytest.raises(type(error)) as caught:
        async with asyncio.timeout(TIMEOUT):
            await relay.subscribe(redis_client, "dropped").completion()
    assert caught.value.partial is not None and error.partial is not None
    assert caught.value.partial.state == error.partial.state == "truncated"
    assert same(caught.value.partial, error.partial)


async def test_a_cancelled_producer_ends_subscribers_cancelled(redis_client: Redis) -> None:
    async with (
        MockServer(tokens=200, itl_ms=5) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as client,
    ):
        stream = chat(client)
        published = relay.publish(stream, redis_client, "cancelled")
        stream.start()
        follower = relay.subscribe(redis_client, "cancelled")
        async with asyncio.timeout(TIMEOUT):
            async for _ in follower:
                stream.cancel()  # after the first relayed delta
                break
            await published.finished()
            with pytest.raises(rxgpt.StreamCancelled) as caught:
                await relay.subscribe(redis_client, "cancelled").completion()
    assert caught.value.partial is not None and caught.value.partial.state == "cancelled"


async def test_many_subscribers_at_their_own_pace(redis_client: Redis) -> None:
    async with (
        MockServer(tokens=80) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as client,
    ):
        stream = chat(client)
        published = relay.publish(stream, redis_client, "paced")

        async def slow() -> list[rxgpt.Delta]:
            out = []
            async for delta in relay.subscribe(redis_client, "paced"):
                out.append(delta)
                await asyncio.sleep(0.001)
            return out

        slow_task = asyncio.create_task(slow())
        fast = [relay.subscribe(redis_client, "paced") for _ in range(20)]
        async with asyncio.timeout(TIMEOUT):
            completion = await stream.completion()
            await published.finished()
            assert not slow_task.done()  # the producer finished before its slowest reader
            results = await asyncio.gather(*(f.completion() for f in fast))
            slow_deltas = await slow_task
    assert all(r == completion for r in results)
    assert len(slow_deltas) == completion.deltas


async def test_redis_unreachable_is_a_clear_transport_error() -> None:
    client = relay.connect(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)
    try:
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(rxgpt.TransportError, match="cannot reach Redis at redis://127"):
                await relay.ping(client)
            with pytest.raises(rxgpt.TransportError, match=r"Redis at redis://127.* failed"):
                await relay.subscribe(client, "k").completion()
            published = relay.publish(rxgpt.from_async_iterable(_none()), client, "k")
            with pytest.raises(rxgpt.TransportError, match=r"Redis at redis://127.* failed"):
                await published.finished()
    finally:
        await client.aclose()


async def _none():  # an empty async iterable
    return
    yield


def test_a_bad_redis_url_is_a_transport_error() -> None:
    with pytest.raises(rxgpt.TransportError, match="not a Redis URL"):
        relay.connect("http://nowhere")


async def test_a_key_holding_a_stream_is_refused(redis_client: Redis) -> None:
    await _relayed(redis_client, "taken", tokens=5)
    _, second, _ = await _relayed(redis_client, "taken2", tokens=5)
    assert second.error is None
    async with asyncio.timeout(TIMEOUT):
        again = relay.publish(rxgpt.from_async_iterable(_none()), redis_client, "taken")
        with pytest.raises(rxgpt.RxgptError, match="already holds a relayed stream"):
            await again.finished()
    # the first stream is intact
    assert (await relay.subscribe(redis_client, "taken").completion()).state == "complete"


async def test_a_stream_that_never_starts_times_out(redis_client: Redis) -> None:
    follower = relay.subscribe(redis_client, "nobody", start_timeout=0.3, block=0.1)
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(rxgpt.StreamTimeout, match="no relayed stream 'nobody'"):
            await follower.completion()


async def test_resuming_a_missing_stream_or_entry_is_interrupted(redis_client: Redis) -> None:
    await _relayed(redis_client, "there", tokens=5)
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(rxgpt.StreamInterrupted, match="does not exist"):
            await relay.subscribe(redis_client, "absent", after="1-0").completion()
        with pytest.raises(rxgpt.StreamInterrupted, match="no such entry"):
            await relay.subscribe(redis_client, "there", after="5-5").completion()
    with pytest.raises(ValueError, match="not a Redis stream entry ID"):
        relay.subscribe(redis_client, "there", after="nope")


async def test_a_gap_in_the_entries_is_interrupted_not_hidden(redis_client: Redis) -> None:
    await _relayed(redis_client, "gap", tokens=20, itl_ms=2)
    entries = await redis_client.xrange("gap")
    await redis_client.xdel("gap", entries[3][0])  # as MAXLEN trimming or a lost write would
    with pytest.raises(rxgpt.StreamInterrupted, match="lacks entries 3 to 3") as caught:
        async with asyncio.timeout(TIMEOUT):
            await relay.subscribe(redis_client, "gap").completion()
    assert caught.value.partial is not None and caught.value.partial.state == "truncated"


async def test_a_duplicated_entry_is_delivered_once(redis_client: Redis) -> None:
    _, _, completion = await _relayed(redis_client, "dup", tokens=10, itl_ms=2)
    entries = await redis_client.xrange("dup")
    # a retried pipeline writes an entry twice: move the end after a copy of entry 2
    end_id, end_fields = entries[-1]
    await redis_client.xdel("dup", end_id)
    await redis_client.xadd("dup", entries[2][1])
    await redis_client.xadd("dup", end_fields)
    async with asyncio.timeout(TIMEOUT):
        assert await relay.subscribe(redis_client, "dup").completion() == completion


async def test_bounds_are_set_on_the_key_and_lease(redis_client: Redis) -> None:
    async with (
        MockServer(tokens=250, itl_ms=2) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as client,
    ):
        stream = chat(client)
        published = relay.publish(stream, redis_client, "bounded", ttl=120, lease=2, maxlen=10)
        stream.start()
        async with asyncio.timeout(TIMEOUT):
            while published.entries < 3:
                await asyncio.sleep(0.01)
            lease = await redis_client.pttl(relay.lease_key("bounded"))
            assert 0 < lease <= 2000
            await stream.completion()
            await published.finished()
    ttl = await redis_client.pttl("bounded")
    assert 100_000 < ttl <= 120_000
    assert not await redis_client.exists(relay.lease_key("bounded"))  # released at the end
    assert await redis_client.xlen("bounded") < published.entries  # MAXLEN ~ trimmed


async def test_an_observable_of_plain_deltas_can_be_relayed(redis_client: Redis) -> None:
    import reactivex

    deltas = [rxgpt.TextDelta(0, "a"), rxgpt.TextDelta(0, "b"), rxgpt.FinishDelta(0, "stop")]
    published = relay.publish(reactivex.from_iterable(deltas), redis_client, "plain")
    async with asyncio.timeout(TIMEOUT):
        await published.finished()
        got = await relay.subscribe(redis_client, "plain").completion()
    acc = rxgpt.Accumulator()
    acc.add_all(deltas)
    assert got == acc.completion("complete")


def test_importing_rxgpt_does_not_import_redis() -> None:
    import subprocess
    import sys

    code = "import sys, rxgpt; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_fixture_is_a_real_redis(redis_process: RedisProcess) -> None:
    assert redis_process.process is not None and redis_process.process.poll() is None
    assert dataclasses.is_dataclass(rxgpt.Completion)
