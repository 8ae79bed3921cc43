"""A burst of connects while the server is busy is queued, not dropped (``LISTEN_BACKLOG``).

With aiohttp's default listen queue (128) the kernel drops the SYNs past it, and each such
client connects only when it sends its SYN again, 1 s later: time a benchmark would count as
the server's TTFT. The server here cannot accept while the burst arrives (its loop is held,
or its process stopped), so the count of completed handshakes is the queue's length.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import handshakes_completed, somaxconn

from rxgpt._serving import LISTEN_BACKLOG
from rxgpt.mock import MockServer

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
BURST = 1000  # connects at once: past aiohttp's 128, within the queue rxgpt asks for

needs_a_long_queue = pytest.mark.skipif(
    somaxconn() <= BURST, reason="net.core.somaxconn caps the listen queue below the burst"
)


def test_the_backlog_is_what_vllm_listens_with_or_more() -> None:
    assert LISTEN_BACKLOG >= 2048  # (uvicorn's default, which vLLM's server keeps)


@needs_a_long_queue
async def test_the_mock_server_queues_a_burst_while_its_loop_is_busy() -> None:
    async with MockServer(tokens=2) as server:
        # (synchronous: the server's loop, this test's, does not run meanwhile)
        assert handshakes_completed(server.port, BURST) == BURST


@needs_a_long_queue
def test_rxgpt_serve_queues_a_burst_while_it_is_stopped() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxgpt", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # (printed once it listens)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        proc.send_signal(signal.SIGSTOP)
        try:
            assert handshakes_completed(int(match.group(1)), BURST) == BURST
        finally:
            proc.send_signal(signal.SIGCONT)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait(timeout=15)
            if proc.stdout is not None:
                proc.stdout.close()
