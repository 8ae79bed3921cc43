"""The audit of ``rxgpt relay`` and ``rxgpt chat --relay`` / ``--from-relay``: every mistake on
the command line and every misbehaving "Redis" is one line on stderr and an exit status,
never a traceback, a wait without end, or the URL's password."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, RedisProcess, env

import rxgpt.relay._cli as cli_module
import rxgpt.relay._connect as connect_module
from rxgpt._cli import main
from rxgpt.mock import MockServer

#: Seconds one in-process command may take before the test calls it a hang.
BOUND = 30.0
#: The PING bound in these tests (the real one is seconds: the tests need not wait it).
SHORT_PING = 0.5
SECRET = "hunter2"


def run(argv: list[str]) -> int:
    """``rxgpt ARGV`` in-process, in a thread: its exit status, or a failure if it hangs."""
    status: list[object] = []

    def target() -> None:
        try:
            status.append(main(argv))
        except SystemExit as exit_:
            status.append(exit_.code)
        except BaseException as error:  # (reported by the test, as the traceback it was)
            status.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert not thread.is_alive(), f"rxgpt {' '.join(argv)} did not end within {BOUND:g}s"
    if isinstance(status[0], BaseException):
        raise status[0]
    return status[0]  # type: ignore[return-value]


def one_line(err: str) -> str:
    """The single line of ``err`` (asserting there is one and no traceback)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("rxgpt: no API configured")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(autouse=True)
def _embedded_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """``rxgpt chat PROMPT`` talks to its embedded server (no API configured)."""
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@contextlib.contextmanager
def fake_redis(mode: str) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that is no Redis; yields its port.

    ``silent``: accepts and never answers; ``close``: closes each connection at once;
    ``http``: answers as an HTTP server does; ``hung``: answers the connection's set-up and
    PING, then nothing (a Redis that hangs once the command has started).
    """
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    port: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        if mode == "hung":
            await answer_until_hung(reader, writer)
        elif mode == "close":
            writer.close()
        elif mode == "http":
            await reader.read(100)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            writer.close()
        # silent: the connection stays open, unanswered, until the server stops

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        await stop.wait()
        server.close()
        for writer in writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await server.wait_closed()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(BOUND)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(BOUND)
        loop.close()


async def answer_until_hung(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer CLIENT (redis-py's set-up) and PING as Redis does; then read on, answering
    nothing."""
    while True:
        header = await reader.readline()
        if not header.startswith(b"*"):
            return
        words = []
        for _ in range(int(header[1:])):
            size = int((await reader.readline())[1:])
            words.append((await reader.readexactly(size + 2))[:-2].upper())
        if words[0] == b"PING":
            writer.write(b"+PONG\r\n")
        elif words[0] == b"CLIENT":
            writer.write(b"+OK\r\n")


def commands(url: str) -> list[list[str]]:
    """The three commands that talk to Redis at ``url``."""
    return [
        ["relay", "--redis", url, "--port", "0"],
        ["chat", "hi", "--relay", url, "--relay-key", "k"],
        ["chat", "--from-relay", url, "--relay-key", "k"],
    ]


@pytest.mark.parametrize("which", [0, 1, 2], ids=["relay", "chat-relay", "chat-from-relay"])
@pytest.mark.parametrize("mode", ["silent", "close", "http"])
def test_a_server_that_is_not_redis_is_one_line_and_status_1(
    mode: str, which: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server that accepts and never answers made all three wait forever at PING."""
    monkeypatch.setattr(connect_module, "PING_TIMEOUT", SHORT_PING)
    with fake_redis(mode) as port:
        argv = commands(f"redis://:{SECRET}@127.0.0.1:{port}/0")[which]
        assert run(argv) == 1
    line = one_line(capsys.readouterr().err)
    assert f"cannot reach Redis at redis://127.0.0.1:{port}/0" in line and SECRET not in line
    if mode == "silent":
        assert f"no answer within {SHORT_PING:g}s" in line


@pytest.mark.parametrize("which", [1, 2], ids=["chat-relay", "chat-from-relay"])
def test_a_redis_that_hangs_after_ping_is_one_line_and_status_1(
    which: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``chat --from-relay`` waited without end on a Redis that stopped answering (a read
    had no timeout): now no answer within READ_TIMEOUT fails, without retrying."""
    monkeypatch.setattr(cli_module, "READ_TIMEOUT", 2.5, raising=False)  # (> 1 s reads)
    with fake_redis("hung") as port:
        assert run(commands(f"redis://:{SECRET}@127.0.0.1:{port}/0")[which]) == 1
    line = one_line(capsys.readouterr().err)
    assert f"redis://127.0.0.1:{port}/0" in line and SECRET not in line


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("notaurl", ["not a Redis URL", "scheme"]),
        (f"redis://:{SECRET}@127.0.0.1:1/abc", ["abc is not a database number"]),
        (f"redis://:{SECRET}@127.0.0.1:1/1/2", ["1/2 is not a database number"]),
        (f"redis://:{SECRET}@[::1", ["not a Redis URL", "IPv6"]),
        (f"redis://:hun@{SECRET}@127.0.0.1:1/x", ["not a Redis URL"]),  # ('@' in the password)
        (f"redis://:h'u\"n{SECRET}@127.0.0.1:1/x", ["not a Redis URL"]),  # (quotes in it)
        (f"redis://:{SECRET}@127.0.0.1:1/0?foo=bar", ["not a Redis URL", "foo"]),
        (f"redis://:{SECRET}@127.0.0.1:99999/0", ["not a Redis URL", "ort"]),
        (f"ftp://:{SECRET}@127.0.0.1:1/0", ["not a Redis URL"]),
    ],
)
@pytest.mark.parametrize("which", [0, 1, 2], ids=["relay", "chat-relay", "chat-from-relay"])
def test_a_bad_redis_url_is_one_line_without_the_password(
    url: str, words: list[str], which: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--from-relay notaurl`` was a traceback (connect outside the error handling);
    ``/abc`` silently meant database 0; ``?foo=bar`` was a TypeError traceback."""
    assert run(commands(url)[which]) == 1
    line = one_line(capsys.readouterr().err)
    assert all(word in line for word in words), line
    assert SECRET not in line


@pytest.mark.parametrize("which", [0, 1, 2], ids=["relay", "chat-relay", "chat-from-relay"])
def test_a_refused_password_is_not_printed(
    which: int, redis_process: RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_connection(("127.0.0.1", redis_process.port), timeout=5) as sock:
        sock.sendall(b"CONFIG SET requirepass right-one\r\n")
        assert sock.recv(64).startswith(b"+OK")
    url = f"redis://:{SECRET}@127.0.0.1:{redis_process.port}/0"
    assert run(commands(url)[which]) == 1
    line = one_line(capsys.readouterr().err)
    assert "cannot reach Redis" in line and SECRET not in line


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["chat", "hi", "--relay-ttl", "inf"], ["--relay-ttl", "inf"]),
        (["chat", "hi", "--relay-ttl", "0"], ["--relay-ttl"]),
        (["chat", "hi", "--relay-ttl", "0.0001"], ["--relay-ttl"]),
        (["chat", "hi", "--relay-lease", "1e300", "--relay-ttl", "1e301"], ["--relay-lease"]),
        (["chat", "hi", "--relay-lease", "nan"], ["--relay-lease"]),
        (["chat", "hi", "--relay-ttl", "0.5"], ["--relay-ttl 0.5", "--relay-lease 5"]),
        (["relay", "--start-timeout", "inf"], ["--start-timeout"]),
        (["relay", "--host", ""], ["--host", "empty"]),
        (["relay", "--host", "a" * 300], ["--host"]),
        (["relay", "--host", "a" * 64], ["--host"]),
        (["relay", "--host", "a..b"], ["--host"]),
    ],
)
def test_a_bad_relay_flag_is_one_line_and_status_2(
    argv: list[str],
    words: list[str],
    redis_process: RedisProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--relay-ttl inf`` was an OverflowError, ``--relay-lease 1e300`` a TypeError from
    redis-py, ``--relay-ttl 0.5`` (under the lease) a ValueError; --start-timeout inf was
    taken; an empty --host announced ``http://:PORT``; one IDNA refuses was a traceback."""
    url = redis_process.url
    if argv[0] == "chat":
        argv = [*argv, "--relay", url, "--relay-key", "k"]
    else:
        argv = [*argv, "--redis", url, "--port", "0"]
    assert run(argv) == 2
    line = one_line(capsys.readouterr().err)
    assert all(word in line for word in words), line


def test_an_unknown_relay_option_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    """``rxgpt relay --bogus`` said that --redis was missing."""
    assert run(["relay", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in one_line(capsys.readouterr().err)
    assert run(["relay"]) == 2
    assert "required: --redis" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("kind", ["not-utf8", "directory", "missing", "fifo", "device"])
def test_a_page_that_cannot_be_served_is_one_line_and_status_2(
    kind: str, tmp_path: Path, redis_process: RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-UTF-8 page was a UnicodeDecodeError traceback; a FIFO or /dev/zero was read
    without end; the status was 1, as a failure of the run, not 2 for a mistake in argv."""
    page = tmp_path / "page.html"
    if kind == "not-utf8":
        page.write_bytes(b"\xff\xfe<html>")
    elif kind == "directory":
        page = tmp_path
    elif kind == "fifo":
        os.mkfifo(page)
    elif kind == "device":
        page = Path("/dev/zero")
    assert run(["relay", "--redis", redis_process.url, "--port", "0", "--page", str(page)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("rxgpt relay: ") and str(page) in line


def test_ctrl_c_stops_the_relay_quietly_with_status_130(redis_process: RedisProcess) -> None:
    """Ctrl+C (SIGINT to the process group, as a terminal sends it): exit 130, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rxgpt", "relay", "--redis", redis_process.url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(b"rxgpt relay: serving")
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=BOUND)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130 and b"Traceback" not in err, err.decode()


def test_an_ipv6_address_is_announced_in_brackets() -> None:
    from rxgpt._cli_types import http_url as _url

    assert _url("::1", 8080) == "http://[::1]:8080"
    assert _url("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    assert MockServer(host="::1", port=1).url == "http://[::1]:1"


def test_the_ping_bound_is_a_named_constant_of_seconds() -> None:
    """The bound is seconds: long enough for a restarting Redis, short enough to wait."""
    assert 1 <= connect_module.PING_TIMEOUT <= 30
