"""Faults and processes: a killed producer, Redis restarted mid-stream (AOF on), producer and
subscribers in separate processes (the scaled-down 1,000-subscribers acceptance)."""

from __future__ import annotations

import asyncio
import pickle
import sys
import time
from pathlib import Path

import pytest
from conftest import RedisProcess, env
from relay_helpers import chat, same

import rxgpt
import rxgpt.relay as relay
from rxgpt.mock import MockServer

HELPERS = str(Path(__file__).with_name("relay_helpers.py"))


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, HELPERS, *args, stdout=asyncio.subprocess.PIPE, env=env()
    )


async def test_a_killed_producer_ends_subscribers_interrupted_within_the_bound(
    redis_process: RedisProcess, tmp_path: Path
) -> None:
    lease, block = 0.6, 0.2
    out = tmp_path / "never.pickle"
    producer = await _spawn(
        "produce", redis_process.url, "killed", "500", "20", str(lease), str(out)
    )
    client = relay.connect(redis_process.url)
    try:
        async with asyncio.timeout(30):
            assert producer.stdout is not None
            assert await producer.stdout.readline() == b"started\n"
            follower = relay.subscribe(client, "killed", block=block)
            seen = 0
            with pytest.raises(rxgpt.StreamInterrupted, match="lease expired") as caught:
                async for _ in follower:
                    seen += 1
                    if seen == 5:
                        producer.kill()  # SIGKILL: no end entry, no more lease renewals
                        await producer.wait()
                        killed = time.monotonic()
            waited = time.monotonic() - killed
    finally:
        if producer.returncode is None:
            producer.kill()
            await producer.wait()
        await client.aclose()
    # documented bound: lease + block after the producer's last write (slack for a busy VM)
    assert waited <= lease + block + 2.0
    partial = caught.value.partial
    assert partial is not None and partial.state == "truncated"
    assert partial.deltas >= 5 and partial.text
    assert not out.exists()


async def test_redis_restarted_mid_stream_with_aof_resumes_or_ends_typed(
    aof_redis_process: RedisProcess,
) -> None:
    client = relay.connect(aof_redis_process.url)
    outcomes: list[object] = []
    try:
        async with (
            MockServer(tokens=300, itl_ms=8) as llm,
            rxgpt.Client(base_url=llm.base_url, api_key="k") as llm_client,
        ):
            stream = chat(llm_client)
            published = relay.publish(stream, client, "restart", lease=2.0)
            followers = [relay.subscribe(client, "restart", block=0.3) for _ in range(5)]
            tasks = [asyncio.create_task(f.completion()) for f in followers]
            stream.start()
            async with asyncio.timeout(40):
                while published.entries < 60:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(1.1)  # past AOF's everysec fsync
                aof_redis_process.kill()
                await asyncio.sleep(0.2)
                aof_redis_process.start()  # same port, same dir: AOF reloaded
                completion = await stream.completion()  # the producer's own stream: unaffected
                try:
                    await published.finished(20)
                except rxgpt.RxgptError as error:
                    outcomes.append(error)
                for result in await asyncio.gather(*tasks, return_exceptions=True):
                    outcomes.append(result)
                try:
                    outcomes.append(await relay.subscribe(client, "restart").completion())
                except rxgpt.RxgptError as error:
                    outcomes.append(error)
    finally:
        await client.aclose()
    assert completion.state == "complete"
    for outcome in outcomes:  # every one resumed to the same result, or ended typed
        if isinstance(outcome, rxgpt.Completion):
            assert outcome == completion
        else:
            assert isinstance(outcome, rxgpt.RxgptError), repr(outcome)
    assert any(isinstance(o, rxgpt.Completion) for o in outcomes)


async def test_producer_and_100_subscribers_in_separate_processes(
    redis_process: RedisProcess, tmp_path: Path
) -> None:
    url = redis_process.url
    followers = [
        await _spawn("follow", url, "shared", "50", str(tmp_path / f"f{n}")) for n in (1, 2)
    ]
    producer = await _spawn("produce", url, "shared", "150", "1", "5", str(tmp_path / "p"))
    try:
        async with asyncio.timeout(50):
            for process in (producer, *followers):
                assert await process.wait() == 0
    finally:
        for process in (producer, *followers):
            if process.returncode is None:
                process.kill()
                await process.wait()
    expected: rxgpt.Completion = pickle.loads((tmp_path / "p").read_bytes())
    assert expected.state == "complete" and expected.deltas > 150
    results = [r for n in (1, 2) for r in pickle.loads((tmp_path / f"f{n}").read_bytes())]
    assert len(results) == 100
    assert all(isinstance(r, rxgpt.Completion) and same(r, expected) for r in results)
    client = relay.connect(url)
    try:  # a subscriber that joins after the end gets it all
        async with asyncio.timeout(10):
            assert same(await relay.subscribe(client, "shared").completion(), expected)
    finally:
        await client.aclose()


async def test_a_hung_redis_ends_a_subscriber_typed_within_the_answer_bound(
    redis_process: RedisProcess,
) -> None:
    """Redis stops answering mid-stream (SIGSTOP: the connection stays open, no reply
    ever comes) and the client has no socket timeout (``connect``'s default): the
    subscriber ends with a TransportError within block + answer_timeout, with what it
    read so far, instead of waiting without end."""
    import signal

    client = relay.connect(redis_process.url)
    process = redis_process.process
    assert process is not None
    try:
        async with (
            asyncio.timeout(30),
            MockServer(tokens=400, itl_ms=5) as server,
            rxgpt.Client(base_url=server.base_url, api_key="k") as llm,
        ):
            stream = chat(llm)
            relay.publish(stream, client, "hung", lease=5.0)
            stream.start()
            follower = relay.subscribe(client, "hung", block=0.1, answer_timeout=0.5)
            seen = 0
            with pytest.raises(rxgpt.TransportError, match="did not answer") as caught:
                async for _ in follower:
                    seen += 1
                    if seen == 6:
                        process.send_signal(signal.SIGSTOP)
                        stopped = time.monotonic()
            waited = time.monotonic() - stopped
            stream.cancel()
    finally:
        process.send_signal(signal.SIGCONT)
        await client.aclose()
    assert waited <= 0.1 + 0.5 + 2.0  # block + answer bound (slack for a busy VM)
    partial = caught.value.partial  # what was read before Redis hung is kept
    assert partial is not None and partial.state == "error" and partial.text
    assert "relayed stream 'hung'" in str(caught.value)
