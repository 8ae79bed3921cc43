"""A real ``redis-server`` per test, on a free loopback port, in the test's tmp dir.

``redis_server`` starts one without persistence; ``aof_redis_server`` one with AOF on (for
the restart test). Each waits for PING with a bound, and is killed after the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import rxgpt.relay as relay
from rxgpt.relay._connect import Redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
TIMEOUT = 10.0  # a bug fails instead of hanging
ROOT = Path(__file__).resolve().parents[2]

sys.path.insert(0, str(Path(__file__).parent))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """One redis-server in the foreground: start, kill, restart on the same port and dir."""

    def __init__(self, directory: Path, *, aof: bool) -> None:
        self.directory = directory
        self.aof = aof
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if not Path(REDIS_SERVER).exists():
            pytest.fail(f"{REDIS_SERVER} not found: install Debian's redis-server package")
        for _ in range(5):  # the free port can be taken between probe and bind: retry
            port = self.port or free_port()
            args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            args += ["--dir", str(self.directory), "--daemonize", "no"]
            args += ["--appendonly", "yes" if self.aof else "no", "--loglevel", "warning"]
            log = open(self.directory / f"redis-{port}.log", "ab")  # noqa: SIM115
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            if self._wait_ready(port):
                self.port = port
                return
            self.stop()
        raise RuntimeError(f"redis-server did not start (see logs in {self.directory})")

    def _wait_ready(self, port: int) -> bool:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def kill(self) -> None:
        """SIGKILL: a crash (what AOF did not write yet is lost)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(TIMEOUT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path, aof=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aof_redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path, aof=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_client(redis_process: RedisProcess) -> AsyncIterator[Redis]:
    client = relay.connect(redis_process.url)
    try:
        yield client
    finally:
        await client.aclose()


def env() -> dict[str, str]:
    """The environment of a child Python process (this checkout's rxgpt importable)."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}
