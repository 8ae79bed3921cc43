"""``rxgpt bench`` through its argparse layer: offline default, outputs, compare, mistakes,
sweep and SLO search (all against the embedded server, started in its own process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rxgpt._cli import main

pytestmark = pytest.mark.timeout(120)

_QUICK = [
    "--input-len",
    "8",
    "--output-len",
    "6",
    "--mock-ttft-ms",
    "5",
    "--mock-itl-ms",
    "1",
    "--no-progress",
]


def _bench(argv: list[str]) -> int:
    """``rxgpt bench ARGV`` as the command runs it (a usage mistake: SystemExit's status)."""
    try:
        return main(["bench", *argv])
    except SystemExit as exit:
        return int(exit.code or 0)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_offline_run_writes_every_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.json"
    rc = _bench(
        [
            *_QUICK,
            "--num-prompts",
            "12",
            "--max-concurrency",
            "3",
            "--goodput",
            "ttft:5000",
            "tpot:1000",
            "--output-json",
            str(out),
            "--csv",
            str(tmp_path / "a.csv"),
            "--save-detailed",
            str(tmp_path / "a.jsonl"),
            "--plot",
            str(tmp_path / "plots"),
            "--metadata",
            "run=one",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Serving Benchmark Result" in captured.out
    assert "embedded server" in captured.err
    report = json.loads(out.read_text())
    assert report["completed"] == 12 and report["embedded_server"] is True
    assert report["run"] == "one" and report["request_goodput"] > 0
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 12
    assert (tmp_path / "a.csv").read_text().startswith("date,")
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"latency.png", "timeline.png"}

    assert _bench(["compare", str(out), str(out)]) == 0
    assert "median_ttft_ms" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--goodput", "speed:3"], "--goodput expects METRIC:MS"),
        (["--warmup", "1.5"], "a number of requests is whole"),
        (["--dataset", "jsonl"], "needs a dataset path"),
        (["--slo-search", "p99<"], "--slo-search expects"),
        (["nonsense"], "unexpected argument 'nonsense'"),
        (["compare", "only-one.json"], "compare expects two report files"),
        (["--duration", "1"], "needs a finite --request-rate or a --max-concurrency"),
        (["--dataset", "sharegpt", "--dataset-path", "/no/such.json"], "cannot read dataset"),
        (["--dataset-path", "prompts.jsonl"], "a dataset path is read for --dataset sharegpt"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _bench([*_QUICK, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_sweep_and_slo_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = _bench(
        [
            *_QUICK,
            "--num-prompts",
            "6",
            "--sweep",
            "--sweep-size",
            "3",
            "--output-json",
            str(tmp_path / "s.json"),
            "--plot",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "synchronous" in out and "throughput" in out and "rate " in out
    steps = json.loads((tmp_path / "s.json").read_text())["steps"]
    assert [s["step"] for s in steps][:2] == ["synchronous", "throughput"] and len(steps) == 3
    assert (tmp_path / "sweep.png").exists()
    rc = _bench(
        [
            *_QUICK,
            "--num-prompts",
            "6",
            "--slo-search",
            "p99_ttft_ms<=100000",
            "--slo-search-over",
            "concurrency",
            "--max-concurrency",
            "4",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "Highest concurrency meeting p99_ttft_ms<=100000: 4" in out
