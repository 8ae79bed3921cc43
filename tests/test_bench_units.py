"""rxgpt.bench's pure parts: statistics, token splitting, config parsing, workloads, reports."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxgpt import TextDelta
from rxgpt.bench import BenchConfig, HealthLimits
from rxgpt.bench._client import EventDecoder
from rxgpt.bench._config import parse_goodput, parse_slo_targets, parse_window
from rxgpt.bench._health import assess
from rxgpt.bench._metrics import Aggregate, split_tokens
from rxgpt.bench._report import compare, write_csv
from rxgpt.bench._stats import Histogram, percentile_key
from rxgpt.bench._workload import build_prompts, estimate_tokens


@given(st.lists(st.floats(min_value=0.001, max_value=100_000), min_size=1, max_size=300))
def test_histogram_percentiles_within_a_tenth_of_a_percent(values: list[float]) -> None:
    hist = Histogram()
    hist.extend(values)
    assert hist.count == len(values)
    assert math.isclose(hist.mean or 0, statistics.fmean(values), rel_tol=1e-9)
    ordered = sorted(values)
    for p in (50, 90, 99):
        rank = ordered[max(0, math.ceil(len(values) * p / 100) - 1)]
        got = hist.percentile(p)
        assert got is not None
        assert abs(got - rank) <= rank * 0.002 + 0.001


def test_histogram_weights_merge_and_state() -> None:
    a, b = Histogram(), Histogram()
    a.record(10.0, 4)
    b.record(40.0, 1)
    b.record(0.0, 2)
    a.merge(b)
    assert a.count == 7 and a.percentile(50) == pytest.approx(10.0, rel=1e-3)
    again = Histogram.from_state(json.loads(json.dumps(a.to_state())))
    assert again.count == 7 and again.max == 40.0 and again.percentile(10) == 0.0
    assert again.percentile(99) == pytest.approx(40.0, rel=1e-3)
    assert Histogram().summary().mean is None
    assert percentile_key(99.0) == "99" and percentile_key(99.9) == "99.9"


def test_token_split_rules() -> None:
    assert split_tokens(8, [-1] * 8, [1] * 8) == ([1] * 8, "one per chunk")
    assert split_tokens(None, [-1] * 3, [1] * 3) == ([1, 1, 1], "one per chunk")
    assert split_tokens(32, [-1] * 8, [5] * 8) == ([4] * 8, "even split")
    assert split_tokens(30, [-1] * 8, [5] * 8) == ([4] * 7 + [2], "even split")
    assert split_tokens(10, [2, 3, 5], [1, 1, 1]) == ([2, 3, 5], "usage per chunk")
    tokens, how = split_tokens(3, [-1] * 4, [10, 0, 10, 20])
    assert how == "by text length" and sum(tokens) == 3


def test_parsers() -> None:
    assert parse_window("10").unit == "requests"
    assert parse_window("5s").amount == 5 and parse_window("500ms").amount == 0.5
    with pytest.raises(ValueError):
        parse_window("1.5")
    assert parse_goodput(["ttft:200 tpot:50", "e2el:3000"]) == {
        "ttft": 200.0,
        "tpot": 50.0,
        "e2el": 3000.0,
    }
    with pytest.raises(ValueError, match="METRIC:MS"):
        parse_goodput(["speed:3"])
    targets = parse_slo_targets("p99_ttft_ms<=200, p99_itl_ms<50")
    assert [str(t) for t in targets] == ["p99_ttft_ms<=200", "p99_itl_ms<50"]
    assert targets[0].holds({"p99_ttft_ms": 150.0}) and not targets[0].holds({})
    with pytest.raises(ValueError):
        parse_slo_targets("p99_ttft_ms=200")
    with pytest.raises(ValueError, match="burstiness"):
        BenchConfig(burstiness=0)
    with pytest.raises(ValueError, match="dataset path"):
        BenchConfig(dataset="jsonl")


def test_workloads(tmp_path: Path) -> None:
    config = BenchConfig(input_len=50, output_len=20, range_ratio=0.5, seed=1)
    prompts = build_prompts(config, 40)
    assert prompts == build_prompts(config, 40)
    assert all(25 <= p.input_tokens <= 75 and 10 <= p.output_tokens <= 30 for p in prompts)
    assert all(abs(estimate_tokens(p.text) - p.input_tokens) <= 1 for p in prompts)
    shared = build_prompts(BenchConfig(dataset="shared-prefix", prefix_len=30, input_len=10), 3)
    heads = {p.text.split(" ")[:30].__str__() for p in shared}
    assert len(heads) == 1 and all(p.input_tokens == 40 for p in shared)
    sample = build_prompts(BenchConfig(dataset="sample", max_tokens=7), 60)
    assert len(sample) == 60 and all(p.output_tokens == 7 for p in sample)
    lines = tmp_path / "p.jsonl"
    lines.write_text(
        '"hello there"\n{"prompt": "hi", "output_tokens": 3}\n'
        '{"messages": [{"role": "user", "content": "yo"}]}\n'
    )
    got = build_prompts(BenchConfig(dataset="jsonl", dataset_path=str(lines)), 3)
    assert sorted(p.output_tokens for p in got) == [3, 128, 128]
    lines.write_text("{not json\n")
    with pytest.raises(ValueError, match=":1: not JSON"):
        build_prompts(BenchConfig(dataset="jsonl", dataset_path=str(lines)), 1)
    with pytest.raises(ValueError, match="cannot read"):
        build_prompts(BenchConfig(dataset="sharegpt", dataset_path=str(tmp_path / "no")), 1)


@given(st.integers(min_value=1, max_value=50))
def test_event_decoder_groups_deltas_by_event_at_any_chunking(cut: int) -> None:
    body = (
        b'data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"ab"}}]}\n\n'
        b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"cd"}}]}\n\n'
        b"data: [DONE]\n\n"
    )
    decoder = EventDecoder("openai-chat")
    events = []
    for i in range(0, len(body), cut):
        events.extend(e for e in decoder.feed(body[i : i + cut]) if e)
    texts = [[d.text for d in e if isinstance(d, TextDelta)] for e in events]
    assert ["ab"] in texts and ["cd"] in texts
    assert decoder.ended and decoder.error is None


def test_health_flags_name_their_reason() -> None:
    lag = Histogram()
    lag.extend([0.1] * 50 + [30.0] * 5)
    quiet = Histogram()
    quiet.extend([0.1] * 100)
    bad = assess(0, lag, 0.97, quiet, quiet, 100, 40, 10, HealthLimits(), open_loop=True)
    assert bad.flagged
    text = " ".join(bad.reasons)
    assert "event-loop lag" in text and "CPU" in text and "shared a network read" in text
    good = assess(1, quiet, 0.2, quiet, quiet, 100, 0, 10, HealthLimits(), open_loop=True)
    assert not good.flagged and good.reasons == []


def test_aggregate_roundtrip_and_compare() -> None:
    agg = Aggregate({"ttft": 100})
    agg.hist["ttft"].record(50.0)
    agg.completed = 3
    agg.tokens_per_s = {0: 10, 1: 12}
    again = Aggregate.from_state(json.loads(json.dumps(agg.to_state())))
    assert again.completed == 3 and again.tokens_per_s == {0: 10, 1: 12}
    assert again.hist["ttft"].count == 1
    a = {"median_ttft_ms": 10.0, "completed": 5}
    text = compare(a, {"median_ttft_ms": 12.0, "completed": 5})
    assert "+20.0%" in text and "median_ttft_ms" in text
    from rxgpt.bench import Report

    csv_text = write_csv([Report({"a": 1, "b": {"x": 1}}), Report({"a": 2, "c": 3})])
    assert csv_text.splitlines()[0] == "a,c"


def test_progress_line_and_dashboard_panel() -> None:
    import io
    import time as _time

    from rich.console import Console

    from rxgpt.bench._dashboard import _panel, progress_line
    from rxgpt.bench._shard import Live

    live = Live()
    now = _time.perf_counter_ns()
    live.done, live.failed, live.inflight = 7, 1, 3
    live.ttft.extend((now, v) for v in (10.0, 20.0, 30.0))
    live.itl.extend((now, v) for v in (5.0, 6.0))
    live.token_times.extend((now, 4) for _ in range(10))
    live.lag.extend([0.2, 0.3])
    line = progress_line(live, 20)
    assert "7/20 done, 1 failed, 3 in flight, 20 tok/s" in line and "TTFT p50/p99 20.0/30.0" in line
    out = io.StringIO()
    Console(file=out, width=80).print(_panel(live, 20, "rxgpt bench"))
    assert "7 / 20" in out.getvalue() and "ITL p50 / p99" in out.getvalue()


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=5_000_000), st.integers(1, 5)), max_size=200
    )
)
def test_record_many_equals_record_one_by_one(pairs: list[tuple[float, int]]) -> None:
    one, many = Histogram(), Histogram()
    for value, weight in pairs:
        one.record(value, weight)
    many.record_many([v for v, _ in pairs], [w for _, w in pairs])
    assert one.count == many.count
    assert math.isclose(one.sum, many.sum, rel_tol=1e-9, abs_tol=1e-9)
    for p in (1, 50, 90, 99.9):
        assert one.percentile(p) == many.percentile(p)
    assert one.to_state()["min"] == many.to_state()["min"]


def test_per_chunk_usage_gives_each_chunks_tokens() -> None:
    from rxgpt.bench._client import PreparedRequest, RequestRecord, _Chunks
    from rxgpt.bench._metrics import finalize

    def chunk(text: str, used: int) -> bytes:
        body = {
            "id": "x",
            "choices": [{"index": 0, "delta": {"content": text}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": used, "total_tokens": used + 3},
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    record = RequestRecord(0, 0, PreparedRequest("u", {}, b"", 3, 12))
    record.sent_ns = 1
    chunks = _Chunks(record)
    decoder = EventDecoder("openai-chat")
    for i, (text, used) in enumerate([("aaaa", 4), ("bb", 6), ("cccccc", 12)]):
        for deltas in decoder.feed(chunk(text, used)):
            chunks.event((i + 1) * 40_000_000, i, deltas)
    assert record.chunk_tokens == [4, 2, 6]
    result = finalize(record)
    assert result.token_split == "usage per chunk" and result.output_tokens == 12
    assert result.token_itl == [(20.0, 2), (40.0 / 6, 6)]
    assert result.itl == [40.0, 40.0]


async def test_the_bench_client_fails_a_bad_http_chunk_at_once() -> None:
    """A chunk size that is not hex mid-body: the request fails as interrupted when it
    happens, not as a timeout when the per-request deadline (600 s by default) ends."""
    import asyncio

    from rxgpt import StreamInterrupted
    from rxgpt.bench._client import PreparedRequest, RequestRecord, measure, open_session

    event = b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read(2)  # the request's body ("{}")
        writer.write(head + b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"zz\r\nnot a chunk")
        await writer.drain()
        await reader.read()  # (open until the client leaves: only the framing is broken)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    prepared = PreparedRequest(url, {"Content-Type": "application/json"}, b"{}", 3, 12)
    try:
        async with open_session() as session:
            record = await asyncio.wait_for(
                measure(session, prepared, RequestRecord(0, 0, prepared), "openai-chat", 30),
                5,
            )
    finally:
        server.close()
    assert isinstance(record.error, StreamInterrupted), record.error
    assert "HTTP framing" in str(record.error)
    assert len(record.chunk_ns) == 1  # the event before the break was measured
