"""Smoke tests of the benchmark suite (benchmarks/): every benchmark on a tiny input.

Only structure is asserted — every peer produced a result, its output passed the check,
the counts agree — never a timing: the numbers of a tiny run on a shared machine mean
nothing. The whole file takes a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# benchmarks/ is not an installed package: make it importable however pytest was started.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks import bench_accumulate, bench_e2e, bench_pipeline, bench_sse  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402
from benchmarks.bodies import (  # noqa: E402
    Body,
    big_line_body,
    heartbeat_body,
    multibyte_body,
    openai_chat_body,
    split_events,
    split_fixed,
    split_random,
)
from benchmarks.common import Case, event_loop, format_case, run_case  # noqa: E402
from rxgpt._collector import frozen  # noqa: E402


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    with event_loop() as private:
        yield private


def assert_all_ok(case: Case, units: int | None = None) -> None:
    """Every peer ran, passed its check and (when given) produced ``units`` items."""
    assert case.peers
    for peer in case.peers:
        assert peer.error is None, (peer.name, peer.error)
        assert peer.times and all(t >= 0 for t in peer.times), peer.name
        assert peer.check == "ok", (peer.name, peer.check)
        if units is not None:
            assert peer.count == units, (peer.name, peer.count, units)
    reference = case.reference
    assert reference is not None and reference.ratio == pytest.approx(1.0)


# --------------------------------------------------------------------------- bodies


def test_bodies_are_deterministic_and_consistent() -> None:
    body = openai_chat_body(20)
    assert body.data == openai_chat_body(20).data
    assert len(body.events) == 21 and body.events[-1] == "[DONE]"
    assert body.data.count(b"\n\n") == len(body.events)
    for reads in (
        split_random(body.data, 1, 7, seed=3),
        split_fixed(body.data, 8),
        split_events(body.data),
    ):
        assert b"".join(reads) == body.data
    assert len(split_events(body.data)) == len(body.events)
    assert heartbeat_body(5).comments == 5
    assert len(big_line_body(1000).events) == 2
    assert multibyte_body(3).events[-1] == "[DONE]"


# --------------------------------------------------------------------------- sse


@pytest.mark.parametrize(
    "body, cut, unit",
    [
        (openai_chat_body(30), lambda d: split_random(d, 16, 200, seed=1), "events"),
        (openai_chat_body(10), lambda d: split_fixed(d, 8), "events"),
        (openai_chat_body(10), split_events, "events"),
        (heartbeat_body(20), split_events, "comments"),
        (multibyte_body(10), lambda d: split_random(d, 1, 64, seed=5), "events"),
        (big_line_body(8 * 1024), lambda d: split_fixed(d, 1024), "events"),
    ],
    ids=["random-reads", "8-byte-reads", "event-per-read", "heartbeats", "multibyte", "big"],
)
def test_sse_every_peer_decodes_the_same_events(
    loop: asyncio.AbstractEventLoop,
    body: Body,
    cut: Callable[[bytes], list[bytes]],
    unit: str,
) -> None:
    spec = bench_sse.SSECaseSpec("tiny", "tiny", body, cut(body.data), unit=unit, repeats=1)
    case = bench_sse.run_spec(spec, loop)
    assert {peer.name for peer in case.peers} == {peer.name for peer in bench_sse.sse_peers(loop)}
    assert_all_ok(case, len(body.events))
    assert "× rxgpt time" in format_case(case)


def test_sse_check_reports_a_wrong_decoder() -> None:
    body = openai_chat_body(8)
    reads = split_events(body.data)
    wrong = bench_sse._expect_data(body.events)(bench_sse.run_rxgpt(reads)[:-1])
    assert not wrong.ok and "expected" in (wrong.problem or "")


def test_sse_growth_table_marks_big_line_growth(loop: asyncio.AbstractEventLoop) -> None:
    cases = []
    for size in (2048, 4096):
        body = big_line_body(size)
        spec = bench_sse.SSECaseSpec("big", "big", body, split_fixed(body.data, 512), repeats=1)
        cases.append(bench_sse.run_spec(spec, loop))
    table = bench_sse.growth_table(cases)
    assert bench_sse.REFERENCE in table and "doubling ratio" in table


# --------------------------------------------------------------------------- pipeline


def test_pipeline_every_peer_gets_the_same_answer(loop: asyncio.AbstractEventLoop) -> None:
    body = openai_chat_body(40)
    reads = split_random(body.data, 64, 512, seed=2)
    peers = bench_pipeline.OpenAIPeers(loop)
    try:
        case = run_case(
            "pipeline",
            "tiny",
            "tiny",
            bench_pipeline.make_peers(body, reads, peers, budget=1.0),
            unit="events",
            units=len(body.events),
            repeats=1,
        )
    finally:
        peers.close()
    assert len(case.peers) == 9
    assert_all_ok(case, len(body.events))
    assert len(bench_pipeline.targets(case)) == 5
    assert "µs/event" in bench_pipeline.pipeline_table(case)


# --------------------------------------------------------------------------- e2e


def test_e2e_clients_against_a_server_process(loop: asyncio.AbstractEventLoop) -> None:
    config = bench_e2e.E2EConfig(streams=3, tokens=6, repeats=1)
    with bench_e2e.mock_server(config.tokens) as server:
        case, memory, per_read = bench_e2e.run_config(config, loop, server)
    assert server.process.returncode is not None  # stopped
    assert_all_ok(case, config.events)
    assert set(memory) == {peer.name for peer in case.peers}
    assert all(value > 0 for value in memory.values())
    assert set(per_read) == {bench_e2e.RXGPT, bench_e2e.BARE, bench_e2e.FLOOR}
    assert all(value > 0 for value in per_read.values())
    assert "CPU s /100k events" in bench_e2e.e2e_table([case], [memory], [per_read])
    assert len(bench_e2e.targets([case])) == 2


# --------------------------------------------------------------------------- accumulate


def test_accumulate_ladder_with_measured_and_estimated_sizes() -> None:
    # The ladder collects garbage before each timing; the test suite's own heap (every
    # module, hypothesis' data) would make each collection cost tenths of a second.
    with frozen():
        _accumulate_ladder()


def _accumulate_ladder() -> None:
    spec = bench_accumulate.AccumulateSpec(
        "text", "text", 64, repeats=1, cap=0.0, marginal_chunks=3, marginal_deltas=500
    )
    cases, data = bench_accumulate.run_spec(spec)
    assert [case.units for case in cases] == [8, 16, 32, 64]
    for case in cases:
        assert_all_ok(case)
        openai = case.peer(bench_accumulate.OPENAI)
        assert openai.extra.get("estimated")  # cap 0: every size is estimated, and said so
    assert "(est.)" in bench_accumulate.ladder_table(spec, cases, data)
    tools = bench_accumulate.AccumulateSpec(
        "tools", "tool", 16, repeats=1, cap=10.0, marginal_chunks=3, marginal_deltas=500
    )
    tool_cases, _ = bench_accumulate.run_spec(tools)
    for case in tool_cases:
        assert_all_ok(case)
        assert not case.peer(bench_accumulate.OPENAI).extra.get("estimated")


def test_estimate_integrates_marginal_costs() -> None:
    flat = [(0, 1.0), (400, 1.0)]
    assert bench_accumulate.estimate(flat, 100) == pytest.approx(100.0)
    rising = [(0, 0.0), (400, 2.0)]
    assert bench_accumulate.estimate(rising, 100) == pytest.approx(100.0)
    assert bench_accumulate.estimate(rising, 50) == pytest.approx(25.0)


# --------------------------------------------------------------------------- the CLI


def test_cli_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = [bench_accumulate.AccumulateSpec("text", "text", 32, repeats=1, marginal_chunks=2)]
    monkeypatch.setattr(bench_accumulate, "specs", lambda quick=False: tiny)
    with frozen():  # (the ladder's collections would walk the whole suite's heap)
        assert main(["--quick", "--only", "accumulate", "--json", "--no-plot"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["schema"] == 1 and document["quick"] is True
    bench = document["benchmarks"]["accumulate"]
    assert len(bench["cases"]) == 4
    assert all(peer["check"] == "ok" for case in bench["cases"] for peer in case["peers"])
    assert document["targets"][0]["name"].startswith("accumulate")
    assert "## Targets" in captured.err


def test_the_scale_benchmark_measures_both_clients_on_the_floor_server() -> None:
    from benchmarks import bench_scale

    with bench_scale.floor_server() as url:
        runs = bench_scale._rounds(url, 4, 10, 1)
        paced = bench_scale._rounds(url, 2, 5, 1, stamp=True)
    for name in ("rxgpt Client", "bare aiohttp"):
        [run] = runs[name]
        assert run.events == 4 * (10 + bench_scale.EXTRA_EVENTS)
        assert run.cpu > 0 and run.wall > 0
        assert all(gap >= 0 for gap in paced[name][0].gaps)
    for name in ("rxgpt Client", "bare aiohttp"):  # one gap between each token, both ways
        assert len(paced[name][0].gaps) == 2 * (5 - 1)


def test_the_setup_breakdown_runs_each_layer_of_the_client() -> None:
    from benchmarks import bench_scale

    with bench_scale.floor_server() as url:
        runs = bench_scale._rounds(url, 3, 2, 1, runners=bench_scale.LAYERS)
    assert set(runs) == {"rxgpt request()", "rxgpt request() + decoding"}
    for [run] in runs.values():
        assert run.events == 3 * (2 + bench_scale.EXTRA_EVENTS) and run.cpu > 0


def test_a_target_in_milliseconds_is_shown_in_milliseconds() -> None:
    from benchmarks.common import Target, format_targets

    table = format_targets(
        [Target("late", "ms behind", 2.0, 0.5, unit=" ms"), Target("ratio", "x", 1.2, 1.5)]
    )
    assert "≤ 2 ms" in table and "0.5 ms" in table and "met" in table
    assert "≤ 1.2×" in table and "1.5×" in table and "MISSED" in table


def test_the_server_benchmark_counts_the_cpu_of_every_worker_process() -> None:
    import subprocess

    from benchmarks import bench_server

    spin = "import time; end = time.monotonic() + 30\nwhile time.monotonic() < end: pass"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {spin!r}]); time.sleep(30)"  # noqa: E501
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while len(bench_server.family(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = bench_server.family(parent.pid)
        assert len(pids) == 2 and pids[0] == parent.pid
        before = bench_server.family_cpu(pids)
        time.sleep(0.5)  # the child spins: its CPU counts for the family
        assert bench_server.family_cpu(pids) - before > 0.1
    finally:
        for pid in bench_server.family(parent.pid)[1:]:
            os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.wait(10)
