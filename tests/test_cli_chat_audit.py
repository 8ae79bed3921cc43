"""``rxgpt chat`` under an audit: each way a user's input, files, environment or terminal
can go wrong ends in one line on stderr and an exit status, never a traceback.

Most cases call :func:`rxgpt._cli.main` in-process (against the embedded server, or
refused before any request); Ctrl+C and a closed stdout need a real process.
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
from helpers import PROVIDER_ENV

import rxgpt
from rxgpt import _cli
from rxgpt._cli import main
from rxgpt._errors import TransportError
from rxgpt.mock import MockServer

PROMPT = "Explain server-sent events in one paragraph."
#: The embedded server's notice on stderr, which is not an error line.
NOTICE = "rxgpt: no API configured"
#: The most seconds a subprocess of these tests may take.
BOUND = 30.0
#: The exit statuses of a Ctrl+C: 130, or killed by SIGINT (what Python does when a
#: KeyboardInterrupt went through a nested interpreter call; a shell shows 130 for both).
INTERRUPTED = (130, -signal.SIGINT)


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


def error_lines(err: str) -> list[str]:
    """The lines of ``err`` other than the embedded server's notice."""
    return [line for line in err.splitlines() if not line.startswith(NOTICE)]


def one_line(err: str, *words: str) -> str:
    """The single error line of ``err``, which holds each of ``words``."""
    assert "Traceback" not in err and "subscriber raised" not in err, err
    lines = error_lines(err)
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def refused(
    capsys: pytest.CaptureFixture[str], args: list[str], *words: str, status: int = 2
) -> str:
    """Run ``main(args)``, which must exit with ``status`` and one line holding ``words``."""
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == status
    captured = capsys.readouterr()
    assert captured.out == ""
    return one_line(captured.err, *words)


# 1. the prompt of `rxgpt chat -`


def test_a_prompt_from_a_closed_stdin_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", None)  # what Python makes of `<&-`
    refused(capsys, ["chat", "-"], "'-'", "stdin", "closed")


def stdin_of(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    """Make stdin a text stream over ``data``, as Python opens a pipe (surrogateescape)."""
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape")
    monkeypatch.setattr(sys, "stdin", stream)


def test_a_prompt_from_stdin_that_is_not_utf8_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin_of(monkeypatch, b"caf\xe9 au lait")
    refused(capsys, ["chat", "-"], "stdin", "UTF-8", "byte 3")


def test_a_prompt_from_stdin_is_read_up_to_a_bound(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_cli, "_MAX_INPUT_BYTES", 1 << 20)
    stdin_of(monkeypatch, b"x" * ((1 << 20) + 1))
    refused(capsys, ["chat", "-"], "stdin", "longer than 1 MiB")


def test_a_prompt_from_stdin_is_the_text_a_terminal_would_give(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bytes are read and decoded as text-mode stdin did: UTF-8, newlines as ``\\n``."""
    stdin_of(monkeypatch, "café\r\nau lait\n".encode())
    assert main(["chat", "-", "--json", "--max-tokens", "5"]) == 0
    piped = json.loads(capsys.readouterr().out)
    assert main(["chat", "café\nau lait\n", "--json", "--max-tokens", "5"]) == 0
    given = json.loads(capsys.readouterr().out)
    assert piped["choices"][0]["message"] == given["choices"][0]["message"]


# 2. --log


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_log_that_fails_to_write_is_one_line_after_the_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["chat", PROMPT, "--log", "/dev/full", "--max-tokens", "5"]) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert len(out) == 2 and "state complete" in out[1]  # the answer stays printed
    one_line(captured.err, "--log", "/dev/full", "No space left on device")


def test_a_log_in_a_missing_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "missing" / "x.jsonl")
    refused(capsys, ["chat", PROMPT, "--log", path], "--log", path, status=2)


def test_a_log_onto_the_tools_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text("[]")
    refused(capsys, ["chat", PROMPT, "--tools", str(tools), "--log", str(tools)], "--log")
    assert tools.read_text() == "[]"


# 3. stdout


def test_a_closed_stdout_is_one_line_before_any_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # what Python makes of `>&-`
    with pytest.raises(SystemExit) as exited:
        main(["chat", PROMPT])
    assert exited.value.code == 1
    line = one_line(capsys.readouterr().err, "stdout is closed")
    assert NOTICE not in line


def test_a_closed_stdout_in_a_real_process() -> None:
    done = subprocess.run(
        ["sh", "-c", 'exec "$0" -m rxgpt chat hi >&-', sys.executable],
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert done.returncode == 1
    one_line(done.stderr, "stdout is closed")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("mode", [[], ["--json"]])
def test_a_stdout_that_fails_to_write_is_one_line(
    mode: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with open("/dev/full", "w", encoding="utf-8") as full:
        monkeypatch.setattr(sys, "stdout", full)
        assert main(["chat", PROMPT, "--max-tokens", "5", *mode]) == 1
        monkeypatch.undo()
    one_line(capsys.readouterr().err, "cannot write to stdout", "No space left on device")


def test_a_closed_stderr_loses_the_messages_not_the_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stderr", None)  # what Python makes of `2>&-`
    try:
        assert main(["chat", PROMPT, "--max-tokens", "5"]) == 0
    finally:
        if sys.stderr is not None:
            sys.stderr.close()  # the /dev/null main() put in its place
    assert "state complete" in capsys.readouterr().out


# 4. --base-url and the provider's variables


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", ["--base-url is empty"]),
        ("   ", ["--base-url is empty"]),
        ("notaurl", ["'notaurl'", "http:// or https://"]),
        ("ftp://x", ["'ftp://x'", "http:// or https://"]),
        ("http://", ["names no host"]),
        ("http://[::1", ["is not a URL"]),
        ("http://a b/v1", ["a space"]),
        ("http://127.0.0.1:99999/v1", ["is not a URL", "port"]),
        ("http://host:abc/v1", ["is not a URL", "port"]),
        ("http://host:0/v1", ["port 0"]),
    ],
)
def test_an_empty_or_malformed_base_url_is_a_usage_error(
    url: str, words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["chat", PROMPT, "--base-url", url, "--api-key", "sk-test-000000000000"]
    line = refused(capsys, args, "--base-url", *words)
    assert "Error" not in line  # no exception's repr


def test_a_base_url_with_a_password_is_refused_without_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["chat", PROMPT, "--base-url", "ftp://user:hunter2hunter2@host/v1"]
    line = refused(capsys, args, "--base-url")
    assert "hunter2hunter2" not in line


@pytest.mark.parametrize(
    ("provider", "name", "value"),
    [
        ("openai", "OPENAI_BASE_URL", "garbage"),
        ("anthropic", "ANTHROPIC_BASE_URL", "ftp://x"),
        ("ollama", "OLLAMA_HOST", "http://[::1"),
    ],
)
def test_a_malformed_base_url_variable_is_named(
    provider: str,
    name: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(name, value)
    refused(capsys, ["chat", PROMPT, "--provider", provider], name)


# 5. an unresolvable host


def test_an_unresolvable_host_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    """``.invalid`` never resolves (RFC 2606); without a network the lookup fails too."""
    args = ["chat", PROMPT, "--base-url", "http://nonexistent.invalid/v1", "--api-key", "k"]
    assert main([*args, "--retries", "0", "--connect-timeout", "10"]) == 1
    line = one_line(capsys.readouterr().err, "nonexistent.invalid could not be resolved")
    assert "unknown error" not in line


async def test_a_resolver_failure_is_worded_for_library_users_too() -> None:
    """getaddrinfo()'s codes are negative: the transport names the host, not "error -2"."""
    async with rxgpt.Client("http://api.example.invalid/v1", api_key="k") as client:
        stream = client.chat(model="m", messages=[], retry=rxgpt.Retry(attempts=1))
        with pytest.raises(TransportError) as caught:
            async with asyncio.timeout(30):
                await stream.completion()
    assert str(caught.value) == (
        "cannot connect to http://api.example.invalid/v1/chat/completions: "
        "the host api.example.invalid could not be resolved"
    )


# 6. attempts


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A listening socket that never answers: the kernel accepts, nothing is sent."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server


def test_a_connect_timeout_after_retries_says_how_many_attempts(
    silent_server: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{silent_server.getsockname()[1]}/v1"
    args = ["chat", PROMPT, "--base-url", url, "--api-key", "k"]
    assert main([*args, "--connect-timeout", "0.2", "--retries", "1"]) == 1
    one_line(capsys.readouterr().err, "StreamTimeout", "--connect-timeout", "2 attempts over")


# 7. Ctrl+C


def test_ctrl_c_while_the_command_line_is_read_exits_130(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "_parser", interrupted)  # (it imports mock, relay, bench)
    assert main(["chat", PROMPT]) == 130


async def _until(condition: str, check: object, bound: float = BOUND) -> None:
    """Wait, polling, until ``check()`` is true (at most ``bound`` seconds)."""
    assert callable(check)
    deadline = time.monotonic() + bound
    while not check():
        assert time.monotonic() < deadline, f"never {condition}"
        await asyncio.sleep(0.02)


def _wchan(pid: int) -> str:
    """What the process ``pid`` sleeps in (Linux), or '' when it cannot be known."""
    try:
        with open(f"/proc/{pid}/wchan", encoding="ascii") as file:
            return file.read()
    except OSError:
        return ""


@pytest.mark.parametrize(
    "moment", ["reading stdin", "waiting for headers", "streaming", "after start-up"]
)
async def test_ctrl_c_at_any_moment_exits_130_quietly(
    moment: str, silent_server: socket.socket
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_ENV}
    args = ["chat", PROMPT]
    async with MockServer(itl_ms=200) as slow:  # 64 tokens: 13 s of streaming
        if moment == "reading stdin":
            args = ["chat", "-"]
        elif moment == "waiting for headers":
            port = silent_server.getsockname()[1]
            args += ["--base-url", f"http://127.0.0.1:{port}/v1", "--api-key", "k"]
        elif moment == "streaming":
            args += ["--base-url", slow.base_url, "--api-key", "k"]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rxgpt",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None and process.stderr is not None
        try:
            if moment == "reading stdin":
                if not os.path.exists(f"/proc/{process.pid}/wchan"):
                    pytest.skip("needs Linux's /proc/PID/wchan")
                await _until("read stdin", lambda: "pipe" in _wchan(process.pid))
            elif moment == "waiting for headers":
                silent_server.settimeout(BOUND)
                connection, _ = await asyncio.to_thread(silent_server.accept)
                connection.close()
            elif moment == "streaming":
                await asyncio.wait_for(process.stdout.read(8), BOUND)
            else:
                await asyncio.wait_for(process.stderr.readline(), BOUND)
            process.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(process.communicate(), BOUND)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode in INTERRUPTED, err.decode()
    for noise in (b"Traceback", b"Exception ignored", b"subscriber raised"):
        assert noise not in err, err.decode()


# 8. flags that contradict each other


@pytest.mark.parametrize(
    "flag",
    [
        ["--model", "m"],
        ["--system", "s"],
        ["--log", "x.jsonl"],
        ["--tools", "t.json"],
        ["--max-tokens", "5"],
        ["--base-url", "http://h/v1"],
        ["--connect-timeout", "3"],
        ["--require-done"],
    ],
)
def test_request_flags_do_not_apply_to_a_followed_relay(
    flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["chat", "--from-relay", "redis://127.0.0.1:1/0", "--relay-key", "k", *flag]
    refused(capsys, args, "--from-relay", flag[0])


def test_a_followed_relay_takes_json() -> None:
    args = _cli._parser().parse_args(
        ["chat", "--from-relay", "redis://127.0.0.1:1/0", "--relay-key", "k", "--json"]
    )
    assert _cli._chat_usage_error(args) is None


# 9. files and environment variables


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["cannot read", "directory"]),
        (b"\xff[]", ["not UTF-8 text", "byte 0"]),
        (b"[" * 5000 + b"]" * 5000, ["not JSON"]),
        (b"[NaN]", ["not JSON"]),
        (b"[1, 2]", ["a JSON list of tools"]),
        (b"{}", ["a JSON list of tools"]),
        (b" " * (1 << 20) + b"[]", ["more than the 1048576 read"]),
    ],
)
def test_a_bad_tools_file_is_one_line(
    content: bytes | None,
    words: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_cli, "_MAX_INPUT_BYTES", 1 << 20)
    path = tmp_path
    if content is not None:
        path = tmp_path / "tools.json"
        path.write_bytes(content)
    refused(capsys, ["chat", PROMPT, "--tools", str(path)], "--tools", str(path), *words, status=2)


@pytest.mark.parametrize(
    ("provider", "source", "key", "what"),
    [
        ("openai", "--api-key", "sk-test-0000000000\n", "a newline"),
        ("openai", "OPENAI_API_KEY", "sk-tést-0000000000", "not ASCII"),
        ("anthropic", "ANTHROPIC_API_KEY", "sk-ant 0000000000", "a space"),
        ("gemini", "GOOGLE_API_KEY", "AIza\x7f0000000000", "a control character"),
    ],
)
def test_an_api_key_no_header_can_carry_is_one_line_without_it(
    provider: str,
    source: str,
    key: str,
    what: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["chat", PROMPT, "--provider", provider, "--base-url", "http://127.0.0.1:9/v1"]
    if source == "--api-key":
        args += ["--api-key", key]
    else:
        monkeypatch.setenv(source, key)
    line = refused(capsys, args, source, what)
    assert key.strip() not in line and "0000000000" not in line


@pytest.mark.parametrize("flag", ["--tools", "--log"])
def test_a_fifo_nobody_feeds_is_one_line_not_a_wait(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opening a FIFO blocks until its other end opens: the files are opened without
    waiting (the test ends: main() runs in a thread joined with a bound)."""
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    status: list[int | str | None] = []

    def run() -> None:
        try:
            status.append(main(["chat", PROMPT, flag, str(fifo)]))
        except SystemExit as end:
            status.append(end.code)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert status == [2], "no end" if thread.is_alive() else status
    line = one_line(capsys.readouterr().err, flag)
    assert str(fifo) in line
