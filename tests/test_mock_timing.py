"""The mock's timing model at small scale: ITL, batching, slots and queueing, prefill, presets.

Real servers on 127.0.0.1 and bare aiohttp clients. Wall-clock checks are tolerance checks
with generous bounds (medians, a noisy 2-core VM); exact checks use the server's ground-truth
timeline (scheduled times are computed, so they are exact).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rxgpt.mock import MockConfig, MockServer
from rxgpt.mock._timeline import MAX_PENDING, RequestRecord, TimelineRecorder

QUESTION = "Tell me about streams, please"


def chat(content: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": content}],
        "stream": True,
        **extra,
    }


async def arrivals(session: aiohttp.ClientSession, server: MockServer, body: Any) -> list[float]:
    """perf_counter() of each content chunk, read line by line by a bare client."""
    out: list[float] = []
    async with session.post(server.base_url + "/chat/completions", json=body) as resp:
        assert resp.status == 200
        while line := await resp.content.readline():
            if b'"content":"' in line and b'"role"' not in line:
                out.append(time.perf_counter())
    return out


async def stepping(session: aiohttp.ClientSession, server: MockServer) -> asyncio.Future[Any]:
    """A stream started on ``server``, once the engine has run its first decode step."""
    stream = asyncio.ensure_future(arrivals(session, server, chat()))
    async with asyncio.timeout(5):
        while not server.engine.lateness():
            await asyncio.sleep(0.005)
    return stream


def token_chunks(record: RequestRecord) -> list[Any]:
    return [chunk for chunk in record.chunks if chunk.step >= 1]


async def test_chunk_gaps_follow_the_itl(session: aiohttp.ClientSession) -> None:
    async with MockServer(tokens=30, itl_ms=20) as server:
        times = await arrivals(session, server, chat())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 30
    assert 0.015 <= statistics.median(gaps) <= 0.03
    assert times[-1] - times[0] >= 29 * 0.02 - 0.01  # never early


async def test_deadlines_are_absolute_and_the_timeline_shows_them(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(tokens=20, ttft_ms=30, itl_ms=10, timeline=True) as server:
        await arrivals(session, server, chat())
        (record,) = server.timeline
    chunks = token_chunks(record)
    assert [c.step for c in chunks] == list(range(1, 21))
    start = chunks[0].scheduled
    for k, chunk in enumerate(chunks):
        assert chunk.scheduled == pytest.approx(start + k * 0.010, abs=1e-9)  # no drift
        assert chunk.written >= chunk.scheduled - 0.001
    # (arrival is the handler's start: reading and planning the request come before its slot)
    assert record.queued is not None and 0 <= record.queued < 0.05
    assert record.admitted is not None
    assert start - record.admitted == pytest.approx(0.030, abs=0.002)  # the prefill
    assert record.chunks[0].step == 0  # the role chunk went out at once
    assert record.chunks[0].written - record.admitted < 0.02


async def test_continuous_batching_one_grid_and_one_burst_per_step(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(tokens=12, itl_ms=30, timeline=True) as server:

        async def late(delay: float) -> None:
            await asyncio.sleep(delay)
            await arrivals(session, server, chat(f"question {delay}"))

        await asyncio.gather(*(late(i * 0.007) for i in range(6)))
        records = server.timeline
    assert len(records) == 6
    steps: dict[float, list[float]] = {}
    for record in records:
        for chunk in token_chunks(record):
            steps.setdefault(round(chunk.scheduled, 6), []).append(chunk.written)
    schedule = sorted(steps)
    # One grid: every stream's chunks are on the steps of the batch, 30 ms apart.
    for a, b in itertools.pairwise(schedule):
        assert b - a == pytest.approx(0.030, abs=1e-6)
    # Streams that arrived 7 ms apart joined the running batch: many steps serve several.
    assert max(len(w) for w in steps.values()) == 6
    # Every step's chunks left in one burst.
    assert max(max(w) - min(w) for w in steps.values()) < 0.02  # well within a 30 ms step


async def test_queueing_past_max_num_seqs_shows_in_ttft_and_metrics(
    session: aiohttp.ClientSession,
) -> None:
    tokens, itl = 16, 0.025  # an answer holds its slot for 15 steps: 375 ms
    async with MockServer(
        tokens=tokens, itl_ms=itl * 1000, max_num_seqs=2, timeline=True
    ) as server:
        tasks = [asyncio.create_task(arrivals(session, server, chat(f"q{i}"))) for i in range(4)]
        waiting = 'vllm:num_requests_waiting{engine="0",model_name="rxgpt-mock"} 2.0'
        running = 'vllm:num_requests_running{engine="0",model_name="rxgpt-mock"} 2.0'
        during = ""
        async with asyncio.timeout(5):
            while waiting not in during:  # all four arrived: two run, two wait
                await asyncio.sleep(0.01)
                async with session.get(server.url + "/metrics") as resp:
                    during = await resp.text()
        await asyncio.gather(*tasks)
        async with session.get(server.url + "/metrics") as resp:
            after = await resp.text()
        records = sorted(server.timeline, key=lambda r: r.arrived)
    assert running in during
    assert 'vllm:num_requests_waiting{engine="0",model_name="rxgpt-mock"} 0.0' in after
    queued = sorted(r.queued or 0.0 for r in records)
    ttfts = sorted(r.ttft or 0.0 for r in records)
    assert queued[:2] == pytest.approx([0, 0], abs=0.05)
    whole = (tokens - 1) * itl
    assert min(queued[2:]) >= whole - 0.1  # waited for a slot: about a whole answer
    assert min(ttfts[2:]) >= ttfts[1] + whole - 0.1
    assert 'vllm:request_queue_time_seconds_count{engine="0",model_name="rxgpt-mock"} 4' in after


async def test_time_factor_under_load_stretches_steps(session: aiohttp.ClientSession) -> None:
    config = MockConfig(tokens=4, itl_ms=10, max_num_seqs=3, time_factor_under_load=3.0)
    async with MockServer(config, timeline=True) as server:
        await asyncio.gather(*(arrivals(session, server, chat(f"q{i}")) for i in range(3)))
        records = server.timeline
    chunks = token_chunks(records[0])
    gaps = {round(b.scheduled - a.scheduled, 6) for a, b in itertools.pairwise(chunks)}
    assert max(gaps) == pytest.approx(0.030)  # 3 of 3 slots busy: 3x the step time


async def test_prefill_per_token_and_tokens_per_chunk(session: aiohttp.ClientSession) -> None:
    prompt = " ".join(["word"] * 100)
    config = MockConfig(
        tokens=10, prefill_overhead_ms=20, prefill_per_token_ms=0.5, tokens_per_chunk=4
    )
    async with MockServer(config, timeline=True) as server:
        status_raw = await session.post(server.base_url + "/chat/completions", json=chat(prompt))
        raw = await status_raw.read()
        (record,) = server.timeline
    contents = [
        json.loads(line[6:])["choices"][0]["delta"].get("content")
        for line in raw.split(b"\n\n")
        if line.startswith(b"data: {") and b'"content":"' in line and b'"role"' not in line
    ]
    assert len(contents) == 3  # 4 + 4 + 2 tokens
    first = token_chunks(record)[0]
    assert record.admitted is not None
    assert first.scheduled - record.admitted == pytest.approx(0.020 + 0.5e-3 * 100, abs=0.002)


async def test_per_request_timing_in_the_mock_object(session: aiohttp.ClientSession) -> None:
    async with MockServer(tokens=50, itl_ms=0, timeline=True) as server:
        await arrivals(session, server, chat(mock={"itl_ms": 15, "tokens": 5, "ttft_ms": 40}))
        (record,) = server.timeline
        async with session.post(
            server.base_url + "/chat/completions", json=chat(mock={"itl_ms": "x"})
        ) as resp:
            assert resp.status == 400 and "itl_ms" in (await resp.json())["error"]["message"]
    chunks = token_chunks(record)
    assert len([c for c in chunks if c.step <= 5]) == 5
    assert chunks[1].scheduled - chunks[0].scheduled == pytest.approx(0.015)
    assert record.admitted is not None
    assert chunks[0].scheduled - record.admitted == pytest.approx(0.040, abs=0.002)


async def test_non_streamed_answers_take_their_time_and_a_slot(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(tokens=5, ttft_ms=50, itl_ms=10) as server:
        start = time.perf_counter()
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        async with session.post(server.base_url + "/chat/completions", json=body) as resp:
            assert resp.status == 200
        assert time.perf_counter() - start >= 0.05 + 4 * 0.01 - 0.005


async def test_a_client_going_away_frees_its_slot(session: aiohttp.ClientSession) -> None:
    async with MockServer(tokens=1000, itl_ms=10, max_num_seqs=1) as server:
        async with session.post(server.base_url + "/chat/completions", json=chat()) as resp:
            await resp.content.readline()
        # the first stream's client is gone: the second request gets the slot
        body = chat(mock={"tokens": 3})
        async with asyncio.timeout(5):
            times = await arrivals(session, server, body)
        assert len(times) == 3
        assert server.engine.running == 0 and not server.engine.waiting


def test_profiles_fill_defaults_and_explicit_values_win() -> None:
    config = MockConfig(profile="llama-8b-h100")
    assert config.itl_ms == 12 and config.max_num_seqs == 256
    ttft = config.timing().prefill_seconds(256)
    assert 0.06 <= ttft <= 0.12  # the published 60-120 ms at 256 prompt tokens
    assert MockConfig(profile="llama-8b-h100", itl_ms=20).itl_ms == 20
    with pytest.raises(ValueError, match="unknown profile"):
        MockConfig(profile="nope")
    with pytest.raises(ValueError, match="tokens_per_chunk"):
        MockConfig(tokens_per_chunk=0)


async def test_timeline_file_gets_one_json_line_per_request(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "timeline.jsonl"
    async with MockServer(tokens=3, timeline_path=str(path)) as server:
        await arrivals(session, server, chat())
        await arrivals(session, server, chat("other"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2 and {line["pid"] for line in lines} == {os.getpid()}
    assert lines[0]["route"] == "/v1/chat/completions" and lines[0]["outcome"] == "done"
    steps = [row[0] for row in lines[0]["chunks"]]
    assert steps == [0, 1, 2, 3]


async def test_a_finished_requests_line_is_written_in_a_pause_between_steps(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    # Lines are not written in the middle of a step (hundreds of requests ending together
    # would delay the running streams), but while the engine waits for its next step: a
    # short answer's line is in the file while a long one still streams, and equal to the
    # in-memory record's JSON form.
    path = tmp_path / "timeline.jsonl"
    async with MockServer(itl_ms=20, timeline=True, timeline_path=str(path)) as server:
        long = asyncio.ensure_future(arrivals(session, server, chat(max_tokens=60)))
        await arrivals(session, server, chat("short", max_tokens=2))
        for _ in range(100):  # (bounded: 100 x 10 ms, well before the long one's 1.2 s)
            if path.read_text():
                break
            await asyncio.sleep(0.01)
        assert not long.done()
        (line,) = [json.loads(text) for text in path.read_text().splitlines()]
        (short,) = [r for r in server.timeline if r.output_tokens == 2]
        assert line == json.loads(json.dumps(short.as_json()))
        await asyncio.wait_for(long, 10)
    lines = [json.loads(text) for text in path.read_text().splitlines()]
    assert [entry["output_tokens"] for entry in lines] == [2, 60]


def test_pending_lines_wait_for_their_time_and_stay_bounded(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    recorder = TimelineRecorder(str(path), keep=False)
    record = RequestRecord(1, "/v1/chat/completions", True, 5, 100.0)
    record.add(1, 100.5, 100.5, 1, 10)
    recorder.finished(record)
    assert recorder.pending == 1 and path.read_text() == ""
    assert recorder.write_pending(until=0.0, clock=lambda: 1.0) == 0  # no time left
    assert recorder.write_pending(until=2.0, clock=lambda: 1.0) == 1
    assert json.loads(path.read_text())["chunks"] == [[1, 0.5, 0.5, 1, 10]]
    for _ in range(MAX_PENDING):  # a load that never pauses: written at the bound
        recorder.finished(record)
    assert recorder.pending == 0 and len(path.read_text().splitlines()) == 1 + MAX_PENDING
    recorder.finished(record)
    recorder.close()  # what is pending is written at the end
    assert len(path.read_text().splitlines()) == 2 + MAX_PENDING


def test_a_timeline_file_that_fails_stops_the_timeline_not_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = TimelineRecorder("/dev/full", keep=True)  # every write: ENOSPC
    record = RequestRecord(1, "/v1/chat/completions", True, 5, 100.0)
    recorder.finished(record)
    with caplog.at_level("WARNING", logger="rxgpt.mock"):
        assert recorder.write_pending() == 1
    assert "/dev/full failed" in caplog.text
    recorder.finished(record)  # kept in memory, no longer queued for the file
    assert recorder.pending == 0 and len(recorder.requests) == 2
    recorder.close()


async def test_faults_still_work_in_the_engine(session: aiohttp.ClientSession) -> None:
    async with MockServer(tokens=10, itl_ms=5, max_num_seqs=1) as server:
        body = chat(mock={"drop_after": 3})
        async with session.post(server.base_url + "/chat/completions", json=body) as resp:
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
        times = await arrivals(session, server, chat())  # the slot was freed
        assert len(times) == 10


async def test_an_engine_failure_ends_the_streams_instead_of_hanging(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(tokens=5, itl_ms=5) as server:

        def broken(*args: Any) -> None:
            raise ZeroDivisionError("boom")

        server.engine._step = broken  # type: ignore[method-assign,assignment]
        async with asyncio.timeout(5):
            with pytest.raises(aiohttp.ClientPayloadError):
                await arrivals(session, server, chat())


async def test_a_burst_of_handlers_does_not_hold_up_the_next_step(
    session: aiohttp.ClientSession,
) -> None:
    # Handlers that waited for a step all resume in one turn of the loop; if each then ran
    # its work without looking again, ten of them (15 ms each, blocking the loop as a heavy
    # request does) would hold the next step back by about 100 ms. Each looks again, so a
    # step runs late by at most about one handler's work.
    async with MockServer(tokens=40, itl_ms=20) as server:
        engine = server.engine
        stream = await stepping(session, server)

        async def handler() -> None:
            await engine.wait_turn()
            end = time.perf_counter() + 0.015
            while time.perf_counter() < end:
                pass

        before = len(engine.lateness())
        async with asyncio.timeout(5):
            await asyncio.gather(*(handler() for _ in range(10)))
            await stream
        during = engine.lateness()[before:]
    assert len(during) >= 5  # the handlers' 150 ms of work spanned several steps
    assert max(during) < 0.05


async def test_waiting_handlers_are_let_go_a_few_at_a_time_between_timed_steps(
    session: aiohttp.ClientSession,
) -> None:
    # Waking every waiting handler after each step costs, at 1,024 streams, as much as the
    # step's writes. Between steps 16 go, each to look again; none when the next step is
    # within 2 ms; just after a step, the first in line for good; all when no timed step
    # is coming.
    async with MockServer(tokens=40, itl_ms=20) as server:
        engine = server.engine
        stream = await stepping(session, server)
        due = engine._next_step(timed=True)
        assert due is not None
        loop = asyncio.get_running_loop()
        turns: list[asyncio.Future[bool]] = [loop.create_future() for _ in range(40)]
        turns[3].cancel()  # (a handler whose client went away)
        engine._turns.extend(turns)
        assert not engine._let_go(due - 0.001)  # the step is close: nobody goes
        assert engine._let_go(due - 0.010)
        went = [t.result() if t.done() and not t.cancelled() else None for t in turns]
        assert went == [False] * 3 + [None] + [False] * 13 + [None] * 23  # 16, in order
        assert engine._let_go(due - 0.001, stepped=True)
        assert turns[17].result() is True and not turns[18].done()
        engine._batches.clear()  # no timed step coming: all the others go
        assert engine._let_go(due)
        assert all(t.result() is True for t in turns[18:])
        stream.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stream


@pytest.mark.parametrize("itl_ms", [1, 2])
async def test_steps_shorter_than_the_margin_never_keep_new_requests_out(
    session: aiohttp.ClientSession, itl_ms: float
) -> None:
    # With 1-2 ms steps the next step is always within the 2 ms margin (and with many
    # streams the engine may be always behind): handlers still get their turn every step.
    async with MockServer(tokens=3000, itl_ms=itl_ms) as server:
        engine = server.engine
        running = [asyncio.ensure_future(arrivals(session, server, chat())) for _ in range(4)]
        try:
            async with asyncio.timeout(5):
                while engine.running < 4:
                    await asyncio.sleep(0.005)
                for _ in range(10):
                    await asyncio.wait_for(engine.wait_turn(), 1)
                times = await asyncio.wait_for(arrivals(session, server, chat(max_tokens=5)), 3)
            assert len(times) == 5
            assert not any(task.done() for task in running)  # while the others ran
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)


async def test_zero_ms_steps_keep_a_handler_waiting_one_pass_at_most(
    session: aiohttp.ClientSession,
) -> None:
    # With 0 ms steps a step is always due (and short answers that end and arrive keep
    # moving the batch's start): a handler waits for one pass of the engine, never more.
    async with MockServer(tokens=5, itl_ms=0) as server:
        engine = server.engine
        passes = 0
        run_due = engine._run_due

        def counting(now: float) -> None:
            nonlocal passes
            passes += 1
            run_due(now)

        engine._run_due = counting  # type: ignore[method-assign]
        stop = asyncio.Event()

        async def load() -> None:
            while not stop.is_set():
                await arrivals(session, server, chat())

        loads = [asyncio.ensure_future(load()) for _ in range(8)]
        waited: list[int] = []
        try:
            async with asyncio.timeout(10):
                while len(waited) < 50:
                    before = passes
                    await engine.wait_turn()
                    if passes > before:  # it waited (a step was due)
                        waited.append(passes - before)
                    else:
                        await asyncio.sleep(0)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*loads), 10)
    assert max(waited) == 1


async def test_a_handlers_wait_for_its_turn_counts_in_its_queueing_and_ttft(
    session: aiohttp.ClientSession,
) -> None:
    # The time a request's handler waits for turns (steps of other streams go first) is
    # time the request waited in the server: the ground truth's arrival is the handler's
    # start, so its queueing and TTFT include the wait.
    async with MockServer(tokens=3, ttft_ms=10, itl_ms=5, timeline=True) as server:
        engine = server.engine
        wait_turn = engine.wait_turn

        async def slow_turn() -> None:
            await asyncio.sleep(0.1)
            await wait_turn()

        engine.wait_turn = slow_turn  # type: ignore[method-assign]
        sent = time.time()
        await arrivals(session, server, chat())
        (record,) = server.timeline
    assert record.queued is not None and record.queued >= 0.2  # both of its waits
    assert record.ttft is not None and record.ttft >= 0.2 + 0.010
    assert sent <= record.as_json()["arrived_unix"] <= sent + 0.1  # its start, not after
