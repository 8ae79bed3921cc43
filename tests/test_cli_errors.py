"""A user's mistake on the command line: one clear line on stderr, a non-zero exit, no traceback.

Each case runs ``python -m rxgpt`` in a subprocess with a bound on its time, against
real loopback sockets where a server is involved.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import rxgpt


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxgpt", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["serve", "--port", "80000"], ["--port", "80000"]),
        (["serve", "--tokens", "-1"], ["--tokens", "negative"]),
        (["serve", "--fault", "bogus=1"], ["--fault", "bogus"]),
        (["serve", "--fault", "status=abc"], ["--fault", "status"]),
        (["chat", "hi", "--log", "/nonexistent/d/x.jsonl"], ["--log", "/nonexistent/d/x.jsonl"]),
        (["frobnicate"], ["frobnicate"]),
        (["--bogus"], ["unrecognized", "--bogus"]),
        (["chat", "hi", "--bogus"], ["unrecognized", "--bogus"]),
        ([], ["a command is needed", "chat, serve, bench or relay"]),
    ],
)
def test_a_mistake_is_one_line_and_an_exit_code(args: list[str], words: list[str]) -> None:
    done = run(*args)
    one_line_error(done, *words)
    assert done.stdout == ""


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--port", str(port))
    one_line_error(done, "cannot listen", str(port))


def test_connection_refused_says_so_in_plain_words() -> None:
    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    done = run("chat", "hi", "--base-url", url, "--api-key", "sk-test-refused-0123456789")
    one_line_error(done, f"cannot connect to {url}", "connection refused")
    assert done.stdout == ""


def test_version() -> None:
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"rxgpt {rxgpt.__version__}"


def test_the_prompt_can_come_from_stdin() -> None:
    """``rxgpt chat -`` against the embedded server: the answer to the piped prompt."""
    import json

    piped = run("chat", "-", "--json", stdin="Explain server-sent events.")
    given = run("chat", "Explain server-sent events.", "--json")
    other = run("chat", "Something else entirely.", "--json")
    assert piped.returncode == given.returncode == other.returncode == 0, piped.stderr

    def text(done: subprocess.CompletedProcess[str]) -> str:
        return str(json.loads(done.stdout)["choices"][0]["message"]["content"])

    assert text(piped) == text(given) != text(other)  # the embedded server is deterministic


def test_the_embedded_server_is_announced_with_how_to_use_a_real_api() -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    done = subprocess.run(
        [sys.executable, "-m", "rxgpt", "chat", "hi"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    notice = done.stderr.strip().splitlines()
    assert len(notice) == 1 and "embedded server at http://127.0.0.1:" in notice[0]
    assert "OPENAI_BASE_URL" in notice[0] and "OPENAI_API_KEY" in notice[0]
    assert "state complete" in done.stdout


def test_output_piped_into_head_ends_quietly_with_the_closed_pipe_status() -> None:
    """``rxgpt chat ... | head -c 20``: no "subscriber raised", no traceback, status 141."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rxgpt", "chat", "hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.read(20)  # what `head -c 20` takes, then it closes the pipe
    process.stdout.close()
    try:
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert len(first) == 20
    assert status == 141, stderr
    assert "Traceback" not in stderr and "subscriber raised" not in stderr
