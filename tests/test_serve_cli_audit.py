"""The audit of ``rxgpt serve``: a mistake is one line and exit status 2 before anything is
served, --workers is bounded, and Ctrl+C stops the server and its workers quietly (130)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

import pytest

import rxgpt.mock._cli_args as cli_args
from rxgpt._cli import _Parser
from rxgpt.mock import MockServer
from rxgpt.mock._cli_args import add_serve_arguments, serve_from_args

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
#: Seconds a server process may take to start or to stop before the test fails.
BOUND = 30.0


def parser() -> argparse.ArgumentParser:
    """The parser ``rxgpt serve`` and ``python -m rxgpt.mock`` use."""
    parser = _Parser(prog="rxgpt serve")
    add_serve_arguments(parser)
    return parser


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--host", ""], ["--host", "empty"]),
        (["--host", "a" * 300], ["--host"]),
        (["--host", "a" * 64], ["--host"]),
        (["--host", "a..b"], ["--host"]),
        (["--host", "."], ["--host"]),
        (["--workers", "100000"], ["--workers", "100000"]),
        (["--workers", "257"], ["--workers", "257"]),
        (["--model", "m\udcff"], ["--model", "UTF-8"]),
        (["--itl-ms", "inf"], ["--itl-ms"]),
        (["--tokens-std", "nan"], ["--tokens-std"]),
    ],
)
def test_a_bad_flag_is_refused_by_the_parser(
    argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--host ""`` announced ``http://:PORT``; ``--workers 100000`` forked that many."""
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(word in err for word in words), err


def _no_server(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("the server was started: the mistake went unnoticed")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--fault", "=1"], ["--fault", "'=1'"]),
        (["--fault", " =true"], ["--fault"]),
        (["--fault", "thinking=" + "[" * 100_000], ["--fault", "thinking", "nested"]),
        (["--fault", "drop_after=" + "1" * 5000], ["--fault drop_after", "digits"]),
        (["--fault", "drop_after=" + "1" * 30], ["--fault drop_after", "64 bits"]),
        (["--fault", 'key="\\ud800"'], ["--fault key", "surrogate"]),
        (["--fault", "key=[1, 2"], ["--fault key", "not JSON"]),
    ],
)
def test_a_bad_fault_is_one_line_and_status_2(
    argv: list[str],
    words: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--fault =1`` (no key) was accepted; a value nested 100,000 deep was a RecursionError;
    a 5000-digit number was a message without the flag; one past 64 bits, or a lone
    surrogate, was served (and failed in every request); ``[1, 2`` was taken as text."""
    monkeypatch.setattr(cli_args, "serve", _no_server, raising=False)
    monkeypatch.setattr(cli_args, "run_server", _no_server, raising=False)
    assert serve_from_args(parser().parse_args(argv)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert all(word in err for word in words), err


def test_a_timeline_fifo_nobody_reads_is_one_line_not_a_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opening it waited for a reader without end."""
    fifo = tmp_path / "timeline.fifo"
    os.mkfifo(fifo)
    monkeypatch.setattr(cli_args, "serve", _no_server, raising=False)
    monkeypatch.setattr(cli_args, "run_server", _no_server, raising=False)
    args = parser().parse_args(["--port", "0", "--timeline", str(fifo)])
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(serve_from_args(args)), daemon=True)
    thread.start()
    thread.join(BOUND)
    assert done == [2], "no end" if thread.is_alive() else done
    err = capsys.readouterr().err
    assert (
        err == f"rxgpt serve: cannot write --timeline {fifo}: it is a FIFO that no process reads\n"
    )


def test_a_port_that_cannot_be_bound_is_one_line_and_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """(A host IDNA refuses never gets here: the parser's host type refuses it.)"""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve_from_args(parser().parse_args(["--port", str(port)])) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"rxgpt serve: cannot listen on 127.0.0.1:{port}: ") and err.count("\n") == 1
    ), err


def test_an_ipv6_server_url_has_brackets() -> None:
    assert MockServer(host="::1", port=8000).base_url == "http://[::1]:8000/v1"


@pytest.mark.parametrize("when", ["at-start-up", "while-serving"])
def test_ctrl_c_stops_the_server_and_its_workers_quietly_with_130(
    when: str, tmp_path: Path
) -> None:
    """Ctrl+C reaches every process of the terminal's group: the workers, still importing
    their modules just after the announce line, printed KeyboardInterrupt tracebacks, and
    the server exited 0."""
    timeline = tmp_path / "timeline.jsonl"
    argv = ["serve", "--port", "0", "--workers", "2", "--tokens", "2", "--timeline", str(timeline)]
    process = subprocess.Popen(
        [sys.executable, "-m", "rxgpt", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
        start_new_session=True,  # its own group, as a terminal's job: killpg is Ctrl+C
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match and "2 workers" in line, line
        if when == "while-serving":  # both processes answer (the workers are up)
            _wait_for_both(int(match.group(1)), timeline)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=BOUND)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def _wait_for_both(port: int, timeline: Path) -> None:
    """Send requests until both processes have answered one (their pids in the timeline)."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
    pids: set[int] = set()
    deadline = time.monotonic() + BOUND
    while len(pids) < 2:
        assert time.monotonic() < deadline, "the worker never answered"
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
        text = timeline.read_text() if timeline.exists() else ""
        pids = {json.loads(line)["pid"] for line in text.splitlines() if line.endswith("}")}
