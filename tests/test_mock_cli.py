"""The server's flags (``rxgpt.mock._cli_args``): parsing, mistakes, --workers, --timeline."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rxgpt._cli import _Parser
from rxgpt.mock._cli_args import add_serve_arguments, config_from_args, serve_from_args

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(argv)


def test_flags_make_the_config_and_profile_fills_the_rest() -> None:
    args = parse("--profile", "llama-8b-h100", "--itl-ms", "20", "--max-num-seqs", "4")
    config = config_from_args(args)
    assert config.itl_ms == 20 and config.max_num_seqs == 4
    assert config.prefill_overhead_ms == 30 and config.itl_std_ms == 1.2  # from the profile
    # a flag given wins even at its default value (0 ms: no decode time, no prefill)
    argv = ["--itl-ms", "0", "--prefill-overhead-ms", "0", "--time-factor-under-load", "1"]
    config = config_from_args(parse("--profile", "llama-8b-h100", *argv))
    assert (config.itl_ms, config.prefill_overhead_ms, config.time_factor_under_load) == (0, 0, 1)
    assert config.prefill_per_token_ms == 0.27  # (not given: the profile's)
    args = parse("--tokens", "5", "--tokens-per-chunk", "2", "--fault", "gzip=true")
    config = config_from_args(args)
    assert (config.tokens, config.tokens_per_chunk, config.faults) == (5, 2, {"gzip": True})
    # (--fault takes any key of the mock object: steering and timing ones too)
    args = parse("--fault", "tool_call=true", "--fault", "thinking=3", "--fault", "ttft_ms=5")
    assert config_from_args(args).faults == {"tool_call": True, "thinking": 3, "ttft_ms": 5}


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--itl-ms", "-1"], ["--itl-ms"]),
        (["--max-num-seqs", "0"], ["--max-num-seqs"]),
        (["--time-factor-under-load", "0"], ["--time-factor-under-load"]),
        (["--time-factor-under-load", "2"], ["--time-factor-under-load", "--max-num-seqs"]),
        (["--profile", "nope"], ["--profile"]),
        (["--fault", "bogus=1"], ["--fault", "bogus"]),
        (["--fault", "tool_call=3"], ["--fault", "tool_call"]),
        (["--fault", "itl_ms=1e999"], ["--fault", "itl_ms"]),
        (["--timeline", "/nonexistent/dir/t.jsonl"], ["--timeline"]),
        (["--workers", "0"], ["--workers"]),
    ],
)
def test_a_bad_value_is_one_line_and_exit_2(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = _Parser(prog="rxgpt serve")  # what ``rxgpt serve`` and ``-m rxgpt.mock`` use
    add_serve_arguments(parser)
    try:
        status = serve_from_args(parser.parse_args(argv))
    except SystemExit as exit_:
        status = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert all(word in lines[0] for word in words), lines[0]


def test_workers_share_one_port_and_the_timeline_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    argv = ["--port", "0", "--workers", "2", "--tokens", "3", "--timeline", str(path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxgpt.mock", *argv],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match and "2 workers" in line, line
        url = f"http://127.0.0.1:{match.group(1)}/v1/chat/completions"
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]})
        deadline = time.monotonic() + 20
        answered = 0
        while answered < 8 and time.monotonic() < deadline:
            request = urllib.request.Request(
                url, body.encode(), {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as resp:
                answered += resp.status == 200
        assert answered == 8
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        if proc.stdout is not None:
            proc.stdout.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 8 and all(line["outcome"] == "done" for line in lines)
    assert len({(line["pid"], line["id"]) for line in lines}) == 8  # each request named once


def test_workers_stop_when_the_parent_is_killed() -> None:
    """Killed without a word (SIGKILL), the parent cannot stop its workers: they notice."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxgpt.mock", "--port", "0", "--workers", "2"],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        match = re.search(r"http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert match
        health = f"http://127.0.0.1:{match.group(1)}/health"
        with urllib.request.urlopen(health, timeout=5) as resp:
            assert resp.status == 200
    finally:
        proc.kill()
        proc.wait(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 15
    refused = 0
    while time.monotonic() < deadline and refused < 5:  # five in a row: nobody listens
        try:
            with urllib.request.urlopen(health, timeout=1):
                refused = 0
        except OSError:
            refused += 1
        time.sleep(0.2)
    assert refused == 5, "a worker outlived its killed parent"
