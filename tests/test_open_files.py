"""Out of open files: the commands raise their own soft limit, and say it in one line when
they cannot; the library's error names the limit (``rxgpt._ulimit``, ``say_accept_failures``).

Each process here starts with a low open-file limit (``preexec_fn``), as on the many systems
whose soft limit is 1,024: a stream is a socket, a socket an open file.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from rxgpt.mock import MockServer

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SOFT = 64  # open files a process starts with here
HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
STREAMS = 200  # concurrent streams: past SOFT
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}

needs_room = pytest.mark.skipif(
    HARD != resource.RLIM_INFINITY and HARD < 4 * STREAMS,
    reason="the hard open-file limit leaves no room to raise the soft one",
)


def _limit(soft: int, hard: int | None = None) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, HARD if hard is None else hard))

    return apply


@contextmanager
def _serve(limit: Callable[[], None], *flags: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxgpt", "serve", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=limit,
    )
    try:
        assert proc.stdout is not None
        match = re.search(r"(http://127\.0\.0\.1:\d+)", proc.stdout.readline())
        assert match
        yield match.group(1), proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


async def _streams(url: str, count: int, *, close: bool = False) -> list[str]:
    """``count`` concurrent streams; each one's outcome ("ok" or the exception's class).
    ``close``: each on a connection of its own, closed after it (none kept alive)."""
    connector = aiohttp.TCPConnector(limit=0, force_close=close)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> str:
            try:
                async with session.post(url + "/v1/chat/completions", json=BODY) as resp:
                    body = await resp.read()
                    return "ok" if resp.status == 200 and b"[DONE]" in body else str(resp.status)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                return type(error).__name__

        return await asyncio.gather(*(one() for _ in range(count)))


@needs_room
async def test_rxgpt_serve_raises_its_soft_limit_and_serves_every_stream() -> None:
    with _serve(_limit(SOFT), "--tokens", "20", "--itl-ms", "20") as (url, _):
        outcomes = await _streams(url, STREAMS)
    assert outcomes == ["ok"] * STREAMS


async def test_rxgpt_serve_out_of_files_says_one_line_and_serves_again() -> None:
    """At its hard limit the server cannot take more connections: one line on stderr
    (asyncio's own logging: a traceback per try, thousands a second), the connections wait
    in the listen queue, and are served once files are free again."""
    with _serve(_limit(SOFT, SOFT), "--tokens", "10", "--itl-ms", "30") as (url, proc):
        # (each answer lasts 0.3 s and its connection closes: files come back)
        outcomes = await _streams(url, 3 * SOFT, close=True)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert outcomes == ["ok"] * (3 * SOFT)
    lines = err.splitlines()
    assert 1 <= len(lines) <= 3, err[:2000]  # (one line at most every 10 s)
    assert all(line.startswith("rxgpt serve: cannot accept connections: ") for line in lines)
    assert f"may have {SOFT} files open" in lines[0] and "ulimit -n" in lines[0]
    assert "Traceback" not in err


@needs_room
def test_rxgpt_bench_raises_its_soft_limit_for_itself_and_its_embedded_server() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rxgpt", "bench", "--num-prompts", str(STREAMS),
         "--max-concurrency", str(STREAMS), "--output-len", "8"],
        capture_output=True, text=True, env=ENV, preexec_fn=_limit(SOFT), timeout=50,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(rf"Successful requests:\s+{STREAMS}\b", done.stdout), done.stdout[-3000:]
    assert "Traceback" not in done.stderr


_CLIENT = """
import asyncio, resource, sys
import rxgpt
resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
MESSAGES = [{"role": "user", "content": "x"}]

async def main():
    async with rxgpt.Client(sys.argv[1], "k", retry=rxgpt.Retry(attempts=1)) as client:
        async def one():
            try:
                await client.chat(model="m", messages=MESSAGES).completion()
            except rxgpt.TransportError as error:
                return str(error)
        for message in await asyncio.gather(*(one() for _ in range(120))):
            if message:
                print(message)
                return
asyncio.run(main())
"""


async def test_the_clients_error_says_the_open_file_limit_and_what_to_do() -> None:
    async with MockServer(tokens=50, itl_ms=10) as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CLIENT, server.base_url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV,
        )  # fmt: skip
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    message = out.decode().strip()
    assert process.returncode == 0, err.decode()[-2000:]
    assert message.startswith("cannot connect to http://127.0.0.1:"), message
    assert "too many open files (this process may have 48 files open" in message
    assert "ulimit -n" in message
