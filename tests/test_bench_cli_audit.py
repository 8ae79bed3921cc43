"""``rxgpt bench``'s command line under an audit: every mistake is one line on stderr naming
the flag (and the file) with an exit status, never a traceback; nothing unbounded; no
secret in any output; Ctrl+C and a closed stdout end quietly.

Most cases call ``rxgpt._cli.main`` in-process; a subprocess only where a real process is
the point (Ctrl+C to the process group, a closed stdout).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rxgpt._cli import main
from rxgpt.bench import BenchConfig
from rxgpt.bench._dashboard import run_with_progress
from rxgpt.bench._embedded import EmbeddedServer

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
_SMALL = ["--num-prompts", "4", "--output-len", "4", "--no-progress"]
#: What no error output may hold.
_TRACEBACK = "Traceback"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def _bench(*argv: str) -> int:
    """``rxgpt bench ARGV`` in-process: its exit status (argparse's SystemExit included)."""
    try:
        return main(["bench", *argv])
    except SystemExit as exit:
        return int(exit.code or 0)


def _one_line(err: str, *words: str) -> None:
    assert _TRACEBACK not in err
    assert err.count("\n") == 1, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        # numbers and text no request body can carry (were tracebacks)
        (["--extra-body", '{"x": 99999999999999999999999}'], ["--extra-body", "64 bits"]),
        (["--extra-body", '{"x": "\\ud800"}'], ["--extra-body", "surrogate"]),
        (["--extra-body", '{"x": NaN}'], ["--extra-body"]),
        (["--extra-body", '{"a": ' + "[" * 300 + "]" * 300 + "}"], ["--extra-body", "nested"]),
        (["--extra-body", '{"a": "\udcff"}'], ["--extra-body", "UTF-8"]),
        (["--model", "m\udcff"], ["--model", "UTF-8"]),
        (["--label", "\udcff"], ["--label", "UTF-8"]),
        (["--header", "X-A:\udcff"], ["--header", "UTF-8"]),
        (["--header", "X-A: a\nb"], ["--header", "line break"]),
        (["--metadata", "a=\udcff"], ["--metadata", "UTF-8"]),
        (["--api-key", "sk-\udcff"], ["--api-key", "UTF-8"]),
        # the embedded server's timings (a traceback in the child; infinities accepted)
        (["--mock-ttft-ms", "-5"], ["--mock-ttft-ms"]),
        (["--mock-ttft-ms", "1e308"], ["--mock-ttft-ms"]),
        (["--mock-ttft-ms", "nan"], ["--mock-ttft-ms"]),
        (["--mock-itl-ms", "inf"], ["--mock-itl-ms"]),
        # values whose message did not name the flag
        (["--warmup", "abc"], ["--warmup"]),
        (["--cooldown", "-1"], ["--cooldown"]),
        (["--timeout", "0"], ["--timeout"]),
        (["--duration", "0"], ["--duration"]),
        (["--range-ratio", "2"], ["--range-ratio"]),
        (["--prefix-len", "-1"], ["--prefix-len"]),
        (["--percentiles", "200"], ["--percentiles"]),
        (["--percentiles", "0"], ["--percentiles"]),
        (["--slo-search", "bogus<=3"], ["--slo-search", "'bogus'", "request_throughput"]),
        (["--base-url", "notaurl"], ["--base-url", "notaurl"]),
        (["--base-url", "http://user:pw1234@:99999/v1"], ["--base-url"]),
        # bounds (were gigabytes of prompts, or as many processes as asked)
        (["--workers", "100000"], ["--workers"]),
        (["--input-len", "5000000"], ["--input-len"]),
        (["--prefix-len", "5000000"], ["--prefix-len"]),
        (["--num-prompts", "100000000"], ["--num-prompts"]),
        (["--input-len", "1999999", "--prefix-len", "2"], ["--input-len", "--prefix-len"]),
        (["--input-len", "20000", "--num-prompts", "1000"], ["--num-prompts", "--input-len"]),
        (["--duration", "1e9", "--request-rate", "1e6"], ["--duration", "--request-rate"]),
        (["--request-rate", "1e-9"], ["--request-rate"]),
        (["--max-concurrency", "10000000"], ["--max-concurrency"]),
        (["--num-prompts", "70000"], ["--num-prompts", "--max-concurrency"]),
        (["--sweep", "--sweep-size", "1000000"], ["--sweep-size"]),
        # windows that leave nothing to measure, or cannot be placed (found after the start)
        (["--num-prompts", "4", "--warmup", "3", "--cooldown", "1"], ["--warmup", "all 4"]),
        (["--duration", "1", "--max-concurrency", "2", "--cooldown", "3"], ["--cooldown"]),
    ],
)
def test_a_mistake_is_one_line_naming_the_flag(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _bench("--output-len", "4", "--no-progress", *argv) == 2
    err = capsys.readouterr().err
    _one_line(err, *words)
    assert "pw1234" not in err


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\xff\xfe{}", ["not UTF-8"]),
        (b'"\\ud800"\n', ["line 1", "surrogate"]),
        (b'{"prompt": "x", "output_tokens": 99999999999999999999999}\n', [":1:"]),
        (b'{"prompt": "x", "messages": [{"role": "user", "content": 1e999999}]}\n', ["line 1"]),
        (b'{"messages": [{"role": "user", "n": 123456789012345678901234567890}]}\n', ["64"]),
        (b"[" * 100_000 + b"\n", ["nested"]),
        (b"{not json\n", ["not JSON"]),
    ],
)
def test_a_bad_dataset_file_is_one_line_naming_it(
    content: bytes, words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(content)
    assert _bench(*_SMALL, "--dataset", "jsonl", "--dataset-path", str(path)) == 2
    _one_line(capsys.readouterr().err, str(path), *words)


def test_a_dataset_that_is_no_file_is_refused_without_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # (opening it would wait for a writer forever)
    for path in (fifo, tmp_path):
        assert _bench(*_SMALL, "--dataset", "sharegpt", "--dataset-path", str(path)) == 2
        _one_line(capsys.readouterr().err, str(path))


@pytest.mark.parametrize(
    ("flag", "where"),
    [
        ("--output-json", "missing/a.json"),
        ("--csv", "missing/a.csv"),
        ("--save-detailed", "missing/a.jsonl"),
        ("--output-json", "."),
        ("--plot", "file"),
    ],
)
def test_an_unwritable_output_is_refused_before_the_run(
    flag: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    path = str(tmp_path / where)
    assert _bench(*_SMALL, flag, path) == 2
    err = capsys.readouterr().err
    _one_line(err, flag, path)
    assert "embedded server" not in err  # (refused before the server started)


def test_an_unwritable_detailed_file_with_workers_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "missing" / "d.jsonl")
    assert _bench(*_SMALL, "--workers", "2", "--save-detailed", path) == 2
    _one_line(capsys.readouterr().err, "--save-detailed", path)


def test_the_output_files_are_untouched_by_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check opens without truncating: a refused run leaves an earlier report whole."""
    old = tmp_path / "old.json"
    old.write_text('{"completed": 1}')
    assert _bench(*_SMALL, "--output-json", str(old), "--csv", str(tmp_path / "x" / "c")) == 2
    assert old.read_text() == '{"completed": 1}'
    assert not (tmp_path / "x").exists()
    capsys.readouterr()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["a directory"]),
        ("{not json", ["not JSON"]),
        ("[" * 100_000, ["nested"]),
        ('{"a": 1' + "0" * 5000 + "}", ["4300"]),
        ("[1, 2]", ["not a benchmark report"]),
    ],
)
def test_compare_mistakes_are_one_line_naming_the_file(
    content: str | None, words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.json"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    assert _bench("compare", str(path), str(path)) == 2
    _one_line(capsys.readouterr().err, "rxgpt bench compare:", str(path), *words)


def test_compare_refuses_a_huge_file_and_a_fifo_without_reading_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:
        f.truncate(2**30)  # (sparse: no disk used)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (huge, fifo):
        assert _bench("compare", str(path), str(path)) == 2
        _one_line(capsys.readouterr().err, str(path))


def test_compare_takes_numbers_no_float_holds_and_odd_health(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.json"
    health = {"flagged": True, "reasons": 5}
    path.write_text(json.dumps({"big": 10**400, "completed": 3, "client_health": health}))
    assert _bench("compare", str(path), str(path)) == 0
    captured = capsys.readouterr()
    assert "completed" in captured.out and "big" not in captured.out
    assert captured.err == ""


def test_compare_prints_names_and_fields_that_are_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(A file name's non-UTF-8 bytes, a lone surrogate escaped in the JSON: a strict stdout,
    as in an en_US.UTF-8 locale, raised UnicodeEncodeError.)"""
    path = tmp_path / "r\udcff.json"
    path.write_text('{"completed\\ud800": 3}')
    strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", strict)
    assert _bench("compare", str(path), str(path)) == 0
    strict.flush()
    out = strict.buffer.getvalue().decode()  # type: ignore[attr-defined]
    assert "completed" in out and "r\\udcff.json" in out
    assert capsys.readouterr().err == ""


_SECRETS = ("hunter2pw", "AIzaSecret123", "sk-verysecretkey123456", "tok-secret-987654")


def test_secrets_are_in_no_output_and_a_failed_run_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every request fails (nothing listens): exit 1 with a line naming the URL, redacted;
    the report, CSV and per-request file hold no key, password or token."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://user:hunter2pw@127.0.0.1:{port}/v1?key=AIzaSecret123"
    rc = _bench(
        *_SMALL,
        "--base-url",
        url,
        "--api-key",
        "sk-verysecretkey123456",
        "--header",
        "Authorization: Bearer tok-secret-987654",
        "--output-json",
        str(tmp_path / "a.json"),
        "--csv",
        str(tmp_path / "a.csv"),
        "--save-detailed",
        str(tmp_path / "a.jsonl"),
    )
    captured = capsys.readouterr()
    assert rc == 1
    _one_line(captured.err, "no request succeeded", f"127.0.0.1:{port}/v1")
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["base_url"] == f"http://***@127.0.0.1:{port}/v1?key=***"
    texts = [captured.out, captured.err, *(p.read_text() for p in tmp_path.iterdir())]
    for text in texts:
        for secret in _SECRETS:
            assert secret not in text


def test_a_sweep_with_no_success_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """(Its third step asked for a rate of 0 requests/s: 'request_rate must be more than 0'.)"""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    assert _bench(*_SMALL, "--base-url", url, "--sweep", "--sweep-size", "3") == 1
    _one_line(capsys.readouterr().err, "no request succeeded", url)


def test_workers_wait_for_a_timeout_of_years(capsys: pytest.CaptureFixture[str]) -> None:
    """The parent's wait on a worker was one poll of the whole timeout: OverflowError."""
    rc = _bench(*_SMALL, "--mock-ttft-ms", "1", "--timeout", "3e9", "--workers", "2")
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Successful requests:" in captured.out


class _Terminal(io.StringIO):
    """A stream that says it is a terminal (so the live dashboard draws on it)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_the_dashboard_shows_the_url_redacted(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}/v1?key=AIzaSecret123"
    config = BenchConfig(
        base_url=url, api_key="k", num_prompts=2, workers=1, timeout=1.5, progress=True
    )
    out = _Terminal()
    report = asyncio.run(run_with_progress(config, out=out))
    assert report["failed"] == 2
    text = out.getvalue()
    assert f"127.0.0.1:{silent_port}/v1?key=***" in text
    assert "AIzaSecret123" not in text


def test_the_embedded_server_ignores_a_ctrl_c_in_its_start_up(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Ctrl+C reaches the parent alone: the child, interrupted while it imports, started
    anyway and printed nothing (it was a KeyboardInterrupt traceback)."""
    server = EmbeddedServer(4, 1.0, 1.0)
    server.start()
    try:
        assert server.pid is not None
        os.kill(server.pid, signal.SIGINT)
        assert server.wait(30).startswith("http://127.0.0.1:")
    finally:
        server.stop()
    assert _TRACEBACK not in capfd.readouterr().err


def _rxgpt(*argv: str, **kw: object) -> subprocess.Popen[str]:
    """``python -m rxgpt ARGV`` in a process group of its own, SIGINT at its default (a
    background shell would have it ignored), and no provider environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "rxgpt", *argv],
        cwd=ROOT,
        env=env,
        text=True,
        stderr=subprocess.PIPE,
        process_group=0,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kw,  # type: ignore[arg-type]
    )


def test_ctrl_c_during_a_run_with_workers_exits_130_quietly() -> None:
    process = _rxgpt(
        "bench",
        "--num-prompts",
        "400",
        "--output-len",
        "50",
        "--max-concurrency",
        "4",
        "--workers",
        "2",
        "--no-progress",
        stdout=subprocess.DEVNULL,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # the run has begun: the server is up
        assert "embedded server" in line
        time.sleep(0.3)  # the workers are starting, or running
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl+C does
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130, err
    assert err == "", err


@pytest.mark.parametrize("what", ["run", "compare"])
def test_a_closed_stdout_ends_quietly_with_the_closed_pipe_status(
    what: str, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    report.write_text('{"completed": 3}')
    argv = ["compare", str(report), str(report)] if what == "compare" else _SMALL
    process = _rxgpt("bench", *argv, stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()  # as `| head -1` does once it has its line
    try:
        _, err = process.communicate(timeout=45)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 141, err
    assert _TRACEBACK not in err


def _last_line(err: str, *words: str) -> None:
    """The run's own notices, then one line with ``words``: no traceback."""
    assert _TRACEBACK not in err
    _one_line(err.splitlines(keepends=True)[-1], *words)


def _compare_pair(tmp_path: Path, name: str = "r.json") -> list[str]:
    report = tmp_path / name
    report.write_text('{"completed": 3}')
    return ["compare", str(report), str(report)]


def test_a_stdout_that_cannot_be_written_is_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _compare_pair(tmp_path)
    with open("/dev/full", "w", encoding="utf-8") as full:  # (`>/dev/full`: ENOSPC)
        monkeypatch.setattr(sys, "stdout", full)
        status = _bench(*argv)
        monkeypatch.undo()
    assert status == 1
    _one_line(capsys.readouterr().err, "rxgpt bench", "stdout", "No space left")


def test_a_stdout_encoding_without_the_file_names_characters_escapes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _compare_pair(tmp_path, "résumé.json")
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")  # (PYTHONIOENCODING=ascii)
    monkeypatch.setattr(sys, "stdout", out)
    status = _bench(*argv)
    out.flush()
    text = out.buffer.getvalue().decode("ascii")  # type: ignore[attr-defined]
    monkeypatch.undo()
    assert status == 0, capsys.readouterr().err
    assert "r\\xe9sum\\xe9.json" in text
    assert _TRACEBACK not in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--output-json", "--csv"])
def test_a_full_disk_while_writing_an_output_names_its_flag(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _bench(*_SMALL, flag, "/dev/full") == 2  # (the open succeeds, the write fails)
    _last_line(capsys.readouterr().err, f"cannot write {flag} /dev/full", "No space left")


def test_a_matplotlib_that_fails_to_import_while_plotting_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rxgpt.bench import _plots

    def broken(report: object, directory: str) -> list[str]:
        raise ImportError("cannot import name 'pyplot' from 'matplotlib'")

    monkeypatch.setattr(_plots, "write_plots", broken)
    assert _bench(*_SMALL, "--plot", str(tmp_path / "plots")) == 2
    _last_line(capsys.readouterr().err, "--plot needs matplotlib", "pyplot")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--api-key", "sk-has a-space"], ["--api-key", "a space"]),
        (["--api-key", "sk-caf\u00e9"], ["--api-key", "not ASCII"]),
        (["--api-key", "sk-\x07bell"], ["--api-key", "control character"]),
        (["--base-url", "http://localhost:0/v1"], ["--base-url", "port 0"]),
        (["--workers", "100000"], ["--workers", "the most it takes"]),
        (["--range-ratio", "2"], ["--range-ratio", "at least 0 and less than 1"]),
        (["--warmup", "3000000000"], ["--warmup", "more than 2147483647 requests"]),
        (["--timeout", "0s"], ["--timeout", "more than 0"]),
    ],
)
def test_the_shared_types_refuse_with_one_line_naming_the_flag(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _bench(*argv, *_SMALL) == 2
    err = capsys.readouterr().err
    _one_line(err, *words)
    if argv[0] == "--api-key":
        assert argv[1] not in err


def test_bench_keeps_no_bound_of_its_own_for_workers_or_urls() -> None:
    from rxgpt.bench import _cli_args, _config

    assert not hasattr(_config, "max_workers")  # (rxgpt._cli_types.MAX_WORKERS)
    assert not hasattr(_cli_args, "_base_url")  # (rxgpt._cli_types.base_url)


def test_a_goodput_limit_is_bounded_as_every_millisecond_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rxgpt._cli_types import MAX_MILLISECONDS

    assert _bench("--goodput", f"ttft:{MAX_MILLISECONDS * 2:.0f}", *_SMALL) == 2
    _one_line(capsys.readouterr().err, "--goodput", "86400000")


def test_the_bounds_of_a_run_are_each_stated_once() -> None:
    from rxgpt.bench import _config, _schedule, _shard, _workload

    assert not hasattr(_config, "MAX_MOCK_MS")  # (rxgpt._cli_types.MAX_MILLISECONDS)
    assert _config._LONGEST == "100 years"  # (derived from MAX_SECONDS)
    assert _schedule.MAX_SCHEDULED == 10 * _config.MAX_REQUESTS
    assert _workload.MAX_WORKLOAD_CHARS == 8 * _config.MAX_WORKLOAD_TOKENS
    assert _shard.POOL * 10 == _workload.MAX_PROMPTS


@pytest.mark.parametrize("percentiles", [(), (0.0,), (float("nan"),), tuple(range(1, 40))])
def test_a_config_refuses_percentiles_by_the_flags_rule(percentiles: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="percentile"):
        BenchConfig(percentiles=percentiles)


def test_the_default_percentiles_are_the_statistics_defaults() -> None:
    import argparse

    from rxgpt.bench._cli_args import add_bench_arguments
    from rxgpt.bench._stats import DEFAULT_PERCENTILES

    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    assert parser.parse_args([]).percentiles is DEFAULT_PERCENTILES


def test_a_jsonl_output_length_above_the_bound_names_the_entry_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"prompt": "hi"}\n{"prompt": "hi", "max_tokens": 3000000}\n')
    status = _bench("--dataset", "jsonl", "--dataset-path", str(data), *_SMALL)
    assert status == 2
    _one_line(capsys.readouterr().err, f"{data}:2", "max_tokens 3000000", "2000000")


def test_a_bug_in_a_worker_reaches_the_parent_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import multiprocessing

    from rxgpt.bench import _workers
    from rxgpt.bench._shard import Target

    def bug(config: object) -> None:
        raise TypeError("a programming error\nsecond line")

    monkeypatch.setattr(_workers, "make_plan", bug)
    parent, child = multiprocessing.Pipe()
    _workers._worker(child, BenchConfig(), Target("http://127.0.0.1:9/v1", "k", "m"), 0, 1)
    assert parent.poll(5)
    kind, message = parent.recv()
    assert kind == "error"
    assert "Traceback" in message and "def bug" not in message and "in bug" in message
    assert "second line" in message


def _interrupted_start(
    monkeypatch: pytest.MonkeyPatch, module: object, started: list[object]
) -> None:
    """Make ``module.start_child`` start its child, then take a Ctrl+C at once (as one
    that arrived while SIGINT was blocked is raised when the mask is restored)."""
    real = module.start_child  # type: ignore[attr-defined]

    def start(process: object) -> None:
        real(process)
        started.append(process)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(module, "start_child", start)


def _not_alive(process: object) -> bool:
    alive = process.is_alive()  # type: ignore[attr-defined]
    if alive:  # (the old code left it: end it here)
        process.kill()  # type: ignore[attr-defined]
        process.join(5)  # type: ignore[attr-defined]
    return not alive


def test_a_ctrl_c_as_a_worker_starts_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from rxgpt.bench import _workers
    from rxgpt.bench._schedule import make_plan
    from rxgpt.bench._shard import Target

    started: list[object] = []
    _interrupted_start(monkeypatch, _workers, started)
    config = BenchConfig(num_prompts=2, output_len=2)
    target = Target("http://127.0.0.1:9/v1", "k", "m")
    loop = asyncio.new_event_loop()  # (no asyncio SIGINT handler: KeyboardInterrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(
                _workers.run_workers(config, make_plan(config), target, 2, None)
            )
    finally:
        loop.close()
    assert len(started) == 1 and _not_alive(started[0])


def test_a_ctrl_c_as_the_embedded_server_starts_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rxgpt.bench import _embedded, _run

    started: list[object] = []
    _interrupted_start(monkeypatch, _embedded, started)

    async def enter() -> None:
        async with _run._target(BenchConfig(), 4):
            pass

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(enter())
    finally:
        loop.close()
    assert len(started) == 1 and _not_alive(started[0])
