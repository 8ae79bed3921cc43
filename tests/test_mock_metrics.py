"""``GET /metrics``: Prometheus text with vLLM's names, consistent with what was served."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from rxgpt.mock import MockServer

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-+0-9.eE]+|\+Inf|NaN)$")
LABELS = '{engine="0",model_name="rxgpt-mock"}'


def parse(text: str) -> dict[str, float]:
    """``name{labels}`` -> value; every line is a comment or a valid sample."""
    out: dict[str, float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE.match(line)
        assert match, line
        out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    assert types["vllm:time_to_first_token_seconds"] == "histogram"
    assert types["vllm:num_requests_running"] == "gauge"
    assert types["vllm:generation_tokens_total"] == "counter"
    return out


async def test_metrics_count_what_was_served(session: aiohttp.ClientSession) -> None:
    async with MockServer(tokens=7, itl_ms=2, ttft_ms=5) as server:
        for i in range(3):
            body = {
                "model": "m",
                "messages": [{"role": "user", "content": f"one two three {i}"}],
                "stream": i != 2,
            }
            async with session.post(server.base_url + "/chat/completions", json=body) as resp:
                await resp.read()
        async with session.get(server.url + "/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            metrics = parse(await resp.text())
    assert metrics["vllm:num_requests_running" + LABELS] == 0
    assert metrics["vllm:num_requests_waiting" + LABELS] == 0
    assert metrics["vllm:generation_tokens_total" + LABELS] == 3 * 7
    assert metrics["vllm:prompt_tokens_total" + LABELS] == 3 * 4
    success = 'vllm:request_success_total{engine="0",model_name="rxgpt-mock",finished_reason='
    assert metrics[success + '"stop"}'] == 3
    ttft = "vllm:time_to_first_token_seconds"
    assert metrics[ttft + "_count" + LABELS] == 3
    assert metrics[ttft + '_bucket{engine="0",model_name="rxgpt-mock",le="+Inf"}'] == 3
    assert metrics[ttft + '_bucket{engine="0",model_name="rxgpt-mock",le="0.001"}'] == 0
    assert 3 * 0.004 <= metrics[ttft + "_sum" + LABELS] < 3
    itl = "vllm:inter_token_latency_seconds"
    assert metrics[itl + "_count" + LABELS] == 3 * 6  # one gap per chunk after the first
    buckets = [v for k, v in metrics.items() if k.startswith(ttft + "_bucket")]
    assert buckets == sorted(buckets)  # cumulative
    assert metrics["rxgpt:engine_steps_total" + LABELS] >= 7


async def test_an_abandoned_stream_counts_as_abort(session: aiohttp.ClientSession) -> None:
    async with MockServer(tokens=1000, itl_ms=5) as server:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
        async with session.post(server.base_url + "/chat/completions", json=body) as resp:
            await resp.content.readline()
        for _ in range(100):  # the server notices the closed connection within a few steps
            async with session.get(server.url + "/metrics") as resp:
                metrics = parse(await resp.text())
            if metrics[
                'vllm:request_success_total{engine="0",model_name="rxgpt-mock",'
                'finished_reason="abort"}'
            ]:
                break
            await asyncio.sleep(0.02)
        assert metrics["vllm:num_requests_running" + LABELS] == 0


async def until(server: MockServer, session: aiohttp.ClientSession, ok: object) -> dict[str, float]:
    """Scrape /metrics until ``ok(metrics)`` (bounded: five seconds or so)."""
    for _ in range(250):
        async with session.get(server.url + "/metrics") as resp:
            metrics = parse(await resp.text())
        if ok(metrics):  # type: ignore[operator]
            return metrics
        await asyncio.sleep(0.02)
    gauges = {k: v for k, v in metrics.items() if "num_requests" in k or "abort" in k}
    raise AssertionError(f"not reached: {gauges}")


async def test_clients_that_leave_before_any_write_free_their_slot_at_once(
    session: aiohttp.ClientSession,
) -> None:
    """Gone in a long prefill, in a non-streamed answer, or while queued: each request
    leaves at once (its slot to the next), counted as an abort with the tokens it got."""
    abort = 'vllm:request_success_total{engine="0",model_name="rxgpt-mock",finished_reason="abort"}'
    running, waiting = "vllm:num_requests_running" + LABELS, "vllm:num_requests_waiting" + LABELS
    async with MockServer(tokens=200, itl_ms=10, max_num_seqs=1) as server:
        url = server.base_url + "/chat/completions"

        async def ask(mock: dict[str, object], stream: bool = True) -> None:
            body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "stream": stream, "mock": mock}  # fmt: skip
            async with aiohttp.ClientSession() as own, own.post(url, json=body) as resp:
                await resp.read()

        for mock, stream in [({"ttft_ms": 5000}, True), ({}, False)]:
            holder = asyncio.create_task(ask(mock, stream))
            await until(server, session, lambda m: m[running] == 1)
            queued = [asyncio.create_task(ask({})) for _ in range(2)]
            await until(server, session, lambda m: m[waiting] == 2)
            for task in (*queued, holder):  # the queued ones leave first, then the holder
                task.cancel()
            metrics = await until(server, session, lambda m: m[running] + m[waiting] == 0)
        assert metrics[abort] == 6
        # counted: the tokens of the steps taken (none in the prefill), not the 200 planned
        assert metrics["vllm:generation_tokens_total" + LABELS] < 100
