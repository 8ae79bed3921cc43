"""The lateness benchmark's lean load client (benchmarks/load_client.py) against a real
``rxgpt.mock`` process: it counts what the bare aiohttp loop counts, and a stream that
does not end well (an error status, a dropped or stalled body, no server) is a failure."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# benchmarks/ is not an installed package: make it importable however pytest was started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_server
from benchmarks.load_client import lean_run

BODY: dict[str, Any] = {"model": "m", "messages": bench_server.MESSAGES, "stream": True}


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = bench_server._free_port()
    flags = ("--tokens", "12", "--itl-ms", "2")
    with bench_server._process(bench_server.mock_args(port, *flags)) as server:
        asyncio.run(bench_server._wait_healthy(f"http://127.0.0.1:{port}", server))
        yield port


def _bare(port: int, streams: int, body: dict[str, Any]) -> bench_server.Run:
    return asyncio.run(bench_server.client_run(f"http://127.0.0.1:{port}", streams, body))


@pytest.mark.parametrize("low", [1, 64, 4096])
def test_it_counts_every_event_of_every_stream_as_the_bare_loop_does(port: int, low: int) -> None:
    bare = _bare(port, 30, BODY)
    run = lean_run("127.0.0.1", port, 30, BODY, lowat=low, timeout=30)
    assert bare.failed == 0 and bare.events > 30 * 12
    assert (run.events, run.size, run.failed) == (bare.events, bare.size, 0)


def test_events_cut_across_http_chunks_are_counted_once(port: int) -> None:
    body = {**BODY, "mock": {"chunk_bytes": 1}}  # each "\n\n" is cut in two HTTP chunks
    bare = _bare(port, 1, BODY)  # (the same events, written whole)
    run = lean_run("127.0.0.1", port, 8, body, lowat=1, timeout=30)
    assert (run.events, run.size, run.failed) == (8 * bare.events, 8 * bare.size, 0)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({**BODY, "mock": {"status": 503}}, "/v1/chat/completions"),
        (BODY, "/v1/no-such-route"),
        ({**BODY, "mock": {"drop_after": 3}}, "/v1/chat/completions"),
    ],
    ids=["status-503", "unknown-route", "dropped-body"],
)
def test_a_stream_that_does_not_end_well_is_a_failure(
    port: int, body: dict[str, Any], path: str
) -> None:
    run = lean_run("127.0.0.1", port, 5, body, path=path, lowat=64, timeout=30)
    assert run.failed == 5


def test_a_stalled_stream_fails_at_the_deadline_and_no_later(port: int) -> None:
    body = {**BODY, "mock": {"stall_after": 2}}
    began = time.monotonic()
    run = lean_run("127.0.0.1", port, 3, body, timeout=1.0)
    assert run.failed == 3
    assert time.monotonic() - began < 10  # (bounded: the deadline, not the server, ends it)


def test_a_stream_past_its_byte_bound_is_a_failure(port: int) -> None:
    run = lean_run("127.0.0.1", port, 2, BODY, timeout=30, max_bytes=1000)
    assert (run.failed, run.events) == (2, 0)


def test_streams_past_the_open_file_limit_are_failures_not_a_crash(port: int) -> None:
    import subprocess

    code = (
        "import resource, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from benchmarks.load_client import lean_run\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
        f"run = lean_run('127.0.0.1', {port}, 100, {BODY!r}, timeout=30)\n"
        "print(run.failed, run.events > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    failed, some = done.stdout.split()
    assert 30 < int(failed) < 100 and some == "True"  # (~60 files: the rest failed)


def test_no_server_means_every_stream_failed() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    run = lean_run("127.0.0.1", closed, 4, BODY, timeout=10)
    assert (run.failed, run.events) == (4, 0)


_CHUNKED = b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\n" + _CHUNKED + b"3\r\na\n\n\r\n0\r\n\r\n", (0, 1)),
        (b"HTTP/1.1 200 OK\r\n" + _CHUNKED + b"-6\r\nabc\r\n0\r\n\r\n", (1, 0)),
        (b"HTTP/1.1 200 OK\r\n" + _CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n", (1, 0)),
        (b"HTTP/1.1 200 OK\r\n" + _CHUNKED + b"3\r\nabcdef", (1, 0)),
        (b"HTTP/1.1 200 OK\r\n" + _CHUNKED + b"3\r\nabc\r\n", (1, 0)),
        (b"HTTP/1.1 500 Oops\r\n" + _CHUNKED + b"3\r\na\n\n\r\n0\r\n\r\n", (1, 0)),
    ],
    ids=["whole", "negative-size", "not-hex", "short-chunk", "no-last-chunk", "whole-but-500"],
)
def test_a_broken_chunked_body_is_a_failure_and_parsing_it_ends(
    answer: bytes, expected: tuple[int, int]
) -> None:
    """(failed streams, events) of one answer from a raw server that then closes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def serve() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(answer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        run = lean_run("127.0.0.1", listener.getsockname()[1], 1, BODY, lowat=1, timeout=10)
        thread.join(10)
    assert (run.failed, run.events) == expected
