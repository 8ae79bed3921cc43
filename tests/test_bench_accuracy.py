"""rxgpt bench against a server that records every write: the issue's small-scale bounds.

At one stream: TTFT, TTFC and E2EL medians within ±1 ms of the truth, TPOT and ITL within
±0.5 ms; with 4 tokens per chunk the per-token ITL is the true per-token gap and the
per-chunk ITL the chunk gap; a role-only first chunk does not move TTFT or TTFC. The server
runs in the test's event loop (real loopback socket), so these are tolerance checks on
medians, as robust as a shared 2-core VM allows.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from rxgpt.bench import BenchConfig, arun
from rxgpt.bench._truth import Truth, TruthConfig, TruthRunner, truth_app

pytestmark = pytest.mark.timeout(60)


async def _serve(config: TruthConfig) -> AsyncIterator[tuple[str, list[Truth]]]:
    log: list[Truth] = []
    runner = TruthRunner(truth_app(config, log), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", log
    finally:
        await runner.cleanup()


async def _bench(
    tmp_path: Path, truth: TruthConfig, **overrides: object
) -> tuple[dict[str, object], list[dict[str, object]], list[Truth]]:
    gen = _serve(truth)
    base_url, log = await gen.__anext__()
    detailed = tmp_path / "requests.jsonl"
    try:
        settings: dict[str, object] = {
            "base_url": base_url,
            "api_key": "sk-test",
            "num_prompts": 12,
            "max_concurrency": 1,
            "input_len": 16,
            "output_len": truth.tokens,
            "workers": 1,
            "save_detailed": str(detailed),
        }
        settings.update(overrides)
        report = await arun(BenchConfig(**settings))  # type: ignore[arg-type]
    finally:
        await gen.aclose()
    rows = [json.loads(line) for line in detailed.read_text().splitlines()]
    return report.fields, rows, log


def _paired(rows: list[dict[str, object]], log: list[Truth], name: str, truth_of: str) -> float:
    """The median of (measured − true) over requests, matched by the prompt's first word."""
    by_key = {t.key: t for t in log}
    diffs = []
    for row in rows:
        truth = by_key[str(row["index"])]
        diffs.append(float(row[name]) - getattr(truth, truth_of))  # type: ignore[arg-type]
    return statistics.median(diffs)


async def test_one_stream_ttft_ttfc_e2el_within_1ms(tmp_path: Path) -> None:
    fields, rows, log = await _bench(tmp_path, TruthConfig(tokens=24, ttft_ms=30, token_ms=5))
    assert fields["completed"] == 12 and fields["failed"] == 0
    for name, truth in (("ttft_ms", "ttft_ms"), ("ttfc_ms", "ttfc_ms"), ("e2el_ms", "e2el_ms")):
        assert abs(_paired(rows, log, name, truth)) < 1.0, name
    true_ttft = statistics.median(t.ttft_ms for t in log)
    assert abs(float(fields["median_ttft_ms"]) - true_ttft) < 1.0  # type: ignore[arg-type]


async def test_one_stream_tpot_and_itl_within_half_ms(tmp_path: Path) -> None:
    fields, _rows, log = await _bench(tmp_path, TruthConfig(tokens=24, ttft_ms=20, token_ms=6))
    gaps = [g for t in log for g, _ in t.gaps_ms()]
    true_tpot = statistics.median(
        (t.e2el_ms - t.ttft_ms) / (sum(k for *_, k in t.writes) - 1) for t in log
    )
    assert abs(float(fields["median_itl_ms"]) - statistics.median(gaps)) < 0.5  # type: ignore[arg-type]
    assert abs(float(fields["median_tpot_ms"]) - true_tpot) < 0.5  # type: ignore[arg-type]
    assert abs(float(fields["median_token_itl_ms"]) - 6.0) < 0.5  # type: ignore[arg-type]


async def test_multi_token_chunks_per_token_itl_is_the_true_token_gap(tmp_path: Path) -> None:
    truth = TruthConfig(tokens=32, tokens_per_chunk=4, ttft_ms=20, token_ms=5)
    fields, _rows, log = await _bench(tmp_path, truth, num_prompts=8)
    per_token = statistics.median(g / k for t in log for g, k in t.gaps_ms())
    per_chunk = statistics.median(g for t in log for g, _ in t.gaps_ms())
    assert abs(per_chunk - 20.0) < 1.0  # the truth itself: 4 tokens every 20 ms
    assert abs(float(fields["median_token_itl_ms"]) - per_token) < 0.5  # type: ignore[arg-type]
    assert abs(float(fields["median_itl_ms"]) - per_chunk) < 0.5  # type: ignore[arg-type]
    assert fields["token_split"] == {"even split": 8}
    assert fields["total_output_tokens"] == 8 * 32


async def test_role_only_first_chunk_moves_neither_ttft_nor_ttfc(tmp_path: Path) -> None:
    truth = TruthConfig(tokens=8, ttft_ms=40, token_ms=5, role_ms=2)
    fields, rows, log = await _bench(tmp_path, truth, num_prompts=6)
    assert abs(_paired(rows, log, "ttfc_ms", "ttfc_ms")) < 1.0
    assert float(fields["median_ttft_ms"]) > 38  # type: ignore[arg-type]  # not the 2 ms role chunk


async def test_reasoning_counts_for_ttft_not_for_ttfc(tmp_path: Path) -> None:
    truth = TruthConfig(tokens=8, ttft_ms=20, token_ms=10, reasoning_chunks=3)
    fields, rows, log = await _bench(tmp_path, truth, num_prompts=6)
    assert abs(_paired(rows, log, "ttft_ms", "ttft_ms")) < 1.0
    assert abs(_paired(rows, log, "ttfc_ms", "ttfc_ms")) < 1.0
    assert float(fields["median_ttfc_ms"]) - float(fields["median_ttft_ms"]) > 25  # type: ignore[arg-type]


async def test_without_usage_tokens_are_counted_from_chunks(tmp_path: Path) -> None:
    truth = TruthConfig(tokens=10, ttft_ms=5, token_ms=1, usage=False)
    fields, _rows, _log = await _bench(tmp_path, truth, num_prompts=4)
    assert fields["output_tokens_from_usage"] == 0
    assert fields["total_output_tokens"] == 40


async def test_an_event_split_over_reads_is_stamped_with_its_last_byte(tmp_path: Path) -> None:
    def event(text: str) -> bytes:
        body = {"id": "x", "choices": [{"index": 0, "delta": {"content": text}}]}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    one, two, three = event("a"), event("b"), event("c")

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(one + two[:10])
        await asyncio.sleep(0.04)
        await resp.write(two[10:] + three)
        await asyncio.sleep(0.04)
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    detailed = tmp_path / "d.jsonl"
    try:
        base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        config = BenchConfig(
            base_url=base_url,
            api_key="k",
            num_prompts=3,
            max_concurrency=1,
            workers=1,
            save_detailed=str(detailed),
        )
        await arun(config)
    finally:
        await runner.cleanup()
    for line in detailed.read_text().splitlines():
        gaps = json.loads(line)["itls_ms"]
        assert len(gaps) == 2
        assert 35 < gaps[0] < 80 and gaps[1] < 1.0  # "b" completed with "c", 40 ms after "a"
