"""Whole runs of rxgpt.bench against real loopback servers: load modes, trimming, failures,
goodput, workers, the client-health flag."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from rxgpt.bench import BenchConfig, Window, arun
from rxgpt.bench._truth import Truth, TruthConfig, TruthRunner, truth_app
from rxgpt.mock import MockConfig, MockServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def truth() -> AsyncIterator[tuple[str, list[Truth]]]:
    log: list[Truth] = []
    runner = TruthRunner(
        truth_app(TruthConfig(tokens=4, ttft_ms=2, token_ms=1), log), access_log=None
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", log
    finally:
        await runner.cleanup()


def _config(base_url: str, **kw: object) -> BenchConfig:
    base: dict[str, object] = {
        "base_url": base_url,
        "api_key": "sk-test",
        "input_len": 8,
        "output_len": 4,
        "workers": 1,
    }
    base.update(kw)
    return BenchConfig(**base)  # type: ignore[arg-type]


async def test_open_loop_rate_is_achieved_within_2_percent(
    truth: tuple[str, list[Truth]], tmp_path: Path
) -> None:
    base_url, log = truth
    detailed = tmp_path / "r.jsonl"
    report = await arun(
        _config(base_url, num_prompts=1000, request_rate=250.0, save_detailed=str(detailed))
    )
    assert report["completed"] == 1000
    rows = [json.loads(line) for line in detailed.read_text().splitlines()]
    sent = sorted(r["sent_s"] for r in rows)  # seconds since the schedule's start
    achieved = len(sent) / sent[-1]  # requests sent over the time it took to send them
    assert len(log) == 1000
    if abs(achieved - 250.0) / 250.0 >= 0.02:
        # a starved machine: then the client must say that it could not keep the schedule
        assert report.flagged, achieved
        assert any("scheduled time" in r for r in report["client_health"]["reasons"])
    lateness = sorted(r["sent_s"] - r["scheduled_s"] for r in rows)
    assert lateness[len(lateness) // 2] < 0.01 or report.flagged


async def test_closed_loop_keeps_the_concurrency(truth: tuple[str, list[Truth]]) -> None:
    base_url, _ = truth
    report = await arun(_config(base_url, num_prompts=40, max_concurrency=4))
    assert report["completed"] == 40 and report["max_concurrent_requests"] == 4
    assert report["max_concurrency"] == 4


@pytest.mark.usefixtures("unfrozen")
async def test_a_run_freezes_the_collector_only_for_itself(truth: tuple[str, list[Truth]]) -> None:
    # rxgpt bench freezes what exists before a run (as vLLM does) and unfreezes after it;
    # a program that froze its own heap first keeps its freeze.
    base_url, _ = truth
    assert gc.get_freeze_count() == 0
    await arun(_config(base_url, num_prompts=4, max_concurrency=2))
    assert gc.get_freeze_count() == 0
    gc.freeze()
    frozen = gc.get_freeze_count()
    await arun(_config(base_url, num_prompts=4, max_concurrency=2))
    assert gc.get_freeze_count() >= frozen > 0


async def test_warmup_and_cooldown_are_excluded(truth: tuple[str, list[Truth]]) -> None:
    base_url, log = truth
    report = await arun(
        _config(base_url, num_prompts=30, max_concurrency=3, warmup=Window(5), cooldown=Window(5))
    )
    assert len(log) == 30
    assert report["completed"] == 20 and report["excluded_requests"] == 10
    assert report["duration"] > 0


async def test_failures_are_counted_by_rxgpt_error_type() -> None:
    async with MockServer(MockConfig(tokens=4, faults={"status": 503})) as server:
        report = await arun(_config(server.base_url, num_prompts=5, max_concurrency=2))
    assert report["failed"] == 5 and report["completed"] == 0
    assert report["failures"] == {"HTTP 503": 5}
    async with MockServer(MockConfig(tokens=8, faults={"drop_after": 2})) as server:
        report = await arun(_config(server.base_url, num_prompts=3, max_concurrency=1))
    assert report["failed"] == 3
    assert set(report["failures"]) <= {"StreamInterrupted", "MissingDone"}


async def test_unreachable_server_is_a_transport_error() -> None:
    report = await arun(_config("http://127.0.0.1:9/v1", num_prompts=2, max_concurrency=1))
    assert report["failures"] == {"TransportError": 2}


async def test_goodput_in_requests_and_tokens(truth: tuple[str, list[Truth]]) -> None:
    base_url, _ = truth
    report = await arun(
        _config(
            base_url, num_prompts=10, max_concurrency=2, goodput={"ttft": 10_000, "e2el": 0.001}
        )
    )
    assert report["request_goodput"] == 0 and report["output_token_goodput"] == 0
    assert report["goodput_pass_rate"] == {"ttft": 1.0, "e2el": 0.0}
    report = await arun(
        _config(base_url, num_prompts=10, max_concurrency=2, goodput={"ttft": 10_000})
    )
    assert report["request_goodput"] == pytest.approx(report["request_throughput"])
    assert report["output_token_goodput"] == pytest.approx(report["output_throughput"])


async def test_vllm_field_names_are_present(truth: tuple[str, list[Truth]]) -> None:
    base_url, _ = truth
    report = await arun(_config(base_url, num_prompts=6, max_concurrency=2))
    for name in (
        "duration",
        "completed",
        "failed",
        "total_input_tokens",
        "total_output_tokens",
        "request_throughput",
        "request_goodput",
        "output_throughput",
        "total_token_throughput",
        "max_output_tokens_per_s",
        "max_concurrent_requests",
        "mean_ttft_ms",
        "median_ttft_ms",
        "std_ttft_ms",
        "p99_ttft_ms",
        "mean_tpot_ms",
        "p99_itl_ms",
        "mean_e2el_ms",
        "median_ttfc_ms",
        "p99_token_itl_ms",
        "p99.9_e2el_ms",
        "mean_client_queue_time_ms",
        "client_health",
    ):
        assert name in report.fields, name
    assert report["total_input_tokens"] == 6 * 10  # the server's usage wins over the estimate
    json.dumps(report.to_json())


async def test_a_blocked_event_loop_is_flagged(truth: tuple[str, list[Truth]]) -> None:
    base_url, _ = truth
    loop = asyncio.get_running_loop()
    stop = False

    def hog() -> None:
        time.sleep(0.03)  # a client too busy to read in time
        if not stop:
            loop.call_later(0.005, hog)

    loop.call_soon(hog)
    try:
        report = await arun(_config(base_url, num_prompts=20, max_concurrency=2))
    finally:
        stop = True
    assert report.flagged
    assert any("event-loop lag" in r for r in report["client_health"]["reasons"])
    assert "CLIENT HEALTH FLAG" in report.table()


async def test_two_workers_share_one_schedule(
    truth: tuple[str, list[Truth]], tmp_path: Path
) -> None:
    base_url, log = truth
    detailed = tmp_path / "w.jsonl"
    report = await arun(
        _config(
            base_url, num_prompts=40, request_rate=200.0, workers=2, save_detailed=str(detailed)
        )
    )
    assert report["completed"] == 40 and report["workers"] == 2
    rows = [json.loads(line) for line in detailed.read_text().splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(40))
    assert {r["worker"] for r in rows} == {0, 1}
    assert len(report["client_health"]["workers"]) == 2
    assert len(log) == 40


@pytest.mark.parametrize(
    "provider",
    ["openai", "openai-completions", "openai-responses", "anthropic", "gemini", "ollama"],
)
async def test_every_provider_rxgpt_speaks(provider: str) -> None:
    from rxgpt import PROVIDERS

    async with MockServer(MockConfig(tokens=6)) as server:
        base_url = PROVIDERS[provider].base_url_at(server.url)
        report = await arun(
            _config(base_url, provider=provider, num_prompts=3, max_concurrency=1, output_len=5)
        )
    assert report["completed"] == 3, report["failures"]
    assert report["total_output_tokens"] == 15  # max_tokens reached each server, usage read
    assert report["output_tokens_from_usage"] == 3


async def test_duration_run_with_ramp_up_and_cooldown_seconds(
    truth: tuple[str, list[Truth]],
) -> None:
    base_url, log = truth
    report = await arun(
        _config(
            base_url, duration=0.6, request_rate=100.0, ramp_up=0.2, cooldown=Window(0.2, "seconds")
        )
    )
    sent = len(log)
    assert 35 <= sent <= 65  # 100/s for 0.6 s, less the ramp's 10
    assert report["completed"] + report["failed"] + report["excluded_requests"] == sent
    assert report["excluded_requests"] >= 10  # the last 0.2 s


async def test_closed_loop_duration_run_with_warmup_seconds(
    truth: tuple[str, list[Truth]], tmp_path: Path
) -> None:
    base_url, log = truth
    detailed = tmp_path / "w.jsonl"
    report = await arun(
        _config(
            base_url,
            duration=0.4,
            max_concurrency=2,
            warmup=Window(0.1, "seconds"),
            save_detailed=str(detailed),
        )
    )
    rows = [json.loads(line) for line in detailed.read_text().splitlines()]
    early = sum(1 for r in rows if r["scheduled_s"] < 0.1)
    assert report["excluded_requests"] == early  # exactly those due in the first 0.1 s
    assert len(rows) == len(log) > early
    assert report["completed"] + report["failed"] == len(rows) - early


async def test_slo_search_over_rate(truth: tuple[str, list[Truth]]) -> None:
    from rxgpt.bench._config import parse_slo_targets
    from rxgpt.bench._sweep import slo_search, steps_table

    base_url, _ = truth
    config = _config(base_url, num_prompts=8)
    easy = await slo_search(config, parse_slo_targets("p99_ttft_ms<=60000"), steps=2)
    search = easy["slo_search"]
    assert search["met"] and search["best"] == easy.steps[1]["request_throughput"]
    impossible = await slo_search(config, parse_slo_targets("p99_ttft_ms<=0.0001"), steps=2)
    assert not impossible["slo_search"]["met"] and len(impossible.steps) == 1
    assert "No request rate meets" in steps_table(impossible)


async def test_slo_search_bisects_concurrency(truth: tuple[str, list[Truth]]) -> None:
    from rxgpt.bench._config import parse_slo_targets
    from rxgpt.bench._sweep import slo_search

    base_url, _ = truth
    config = _config(base_url, num_prompts=12, max_concurrency=8)
    report = await slo_search(
        config, parse_slo_targets("max_concurrent_requests<=4"), over="concurrency", steps=6
    )
    assert report["slo_search"]["best"] == 4
    tried = [s["step"] for s in report.steps]
    assert tried[:2] == ["synchronous", "concurrency 8"] and "concurrency 4" in tried
