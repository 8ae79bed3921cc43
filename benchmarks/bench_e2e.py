"""Benchmark 3 — end to end: N concurrent streams from a real server, client CPU per event.

The server is rxgpt's embedded mock (``python -m rxgpt._cli serve``) in a **separate
process**, so the client's CPU is measured alone: no delays (``--itl-ms 0``), one event per
``write``, answers of ``tokens`` tokens (role chunk, one chunk per token, finish chunk,
``[DONE]``: tokens + 3 events per stream). For each concurrency N the three clients run in
alternating rounds:

- ``rxgpt Client``: ``client.chat(...)`` then ``await stream.completion()`` for each stream.
- ``openai AsyncOpenAI``: ``chat.completions.create(stream=True)`` iterated to the end,
  collecting ``delta.content`` (httpx2 transport, the SDK's default connection limits).
- ``bare aiohttp``: ``session.post(...)`` and ``resp.content.iter_any()`` counting bytes
  only — the floor of any aiohttp-based client.
- ``aiohttp + floor parse``: the same reads framed by ``split(b"\n\n")``, parsed with
  ``orjson.loads`` and the content of choice 0 collected — the cheapest client that gets the
  answer (context for the "within 1.3× of the byte counter" target).

The rxgpt and the two aiohttp clients share one session configuration: ``TCPConnector(limit=0)``
(so N streams really are concurrent; aiohttp's default is 100 connections) and rxgpt's
``read_bufsize`` of 256 KiB. Every client (session, SDK object) is created before the
measurement and closed after it; what is measured is ``time.process_time()`` (CPU of this
process, all threads) and ``time.perf_counter()`` around issuing the N requests and
consuming them to the end — connection set-up included for every peer alike.

Memory is measured in a separate, untimed pass per peer and N: ``tracemalloc`` peak of the
Python allocations made during the run, divided by N ("peak traced memory per open
stream"). tracemalloc slows the run, so the timed rounds run without it. Another untimed
pass counts the network reads of the aiohttp-based clients (events per read).

With no delays, a slower client finds more events per read; the **paced** levels
(:func:`paced_configs`) space the events so every client reads about one event at a time,
as with a real model. openai's client gets the aiohttp sessions' timeouts (no total, 30 s to
connect): its default 5 s connect timeout failed bursts of 256 connections on a busy VM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp.client_proto import ResponseHandler

import rxgpt
from rxgpt.mock import generate_tokens

from .bench_sse import SplitFramer
from .common import (
    BenchResult,
    Case,
    Check,
    Peer,
    Sample,
    Target,
    event_loop,
    fmt_ratio,
    fmt_seconds,
    progress,
    render_table,
    run_case,
)

__all__ = ["E2EConfig", "MockServerProcess", "configs", "mock_server", "run", "run_config"]

MODEL = "rxgpt-mock"
MESSAGES: Any = [{"role": "user", "content": "Benchmark the stream, please."}]
RXGPT = "rxgpt Client"
OPENAI = "openai AsyncOpenAI"
BARE = "bare aiohttp (bytes only)"
FLOOR = "aiohttp + floor parse"
_READ_BUFSIZE = 256 * 1024


@dataclass(slots=True)
class E2EConfig:
    """One concurrency level: ``streams`` concurrent answers of ``tokens`` tokens."""

    streams: int
    tokens: int
    repeats: int = 3
    itl_ms: float = 0.0  # > 0: a paced server (one event per read for a client that keeps up)

    @property
    def name(self) -> str:
        """The case name: ``N=32`` or ``N=32 paced``."""
        return f"N={self.streams}" + (" paced" if self.itl_ms else "")

    @property
    def events_per_stream(self) -> int:
        """SSE events per stream: role, one per token, finish, ``[DONE]``."""
        return self.tokens + 3

    @property
    def events(self) -> int:
        """SSE events over all streams."""
        return self.streams * self.events_per_stream


def configs(quick: bool = False) -> list[E2EConfig]:
    """The concurrency levels: 1, 32, 256 streams (quick: 1 and 8, short answers)."""
    if quick:
        return [E2EConfig(1, 40, repeats=1), E2EConfig(8, 20, repeats=1)]
    return [E2EConfig(1, 4000), E2EConfig(32, 500), E2EConfig(256, 100)]


def paced_configs(quick: bool = False) -> list[E2EConfig]:
    """The same levels with a paced server: ≈ 1,000 events/s per stream, ≤ 20,000 in total.

    asyncio cannot sleep less than about 1 ms, so N = 1 gets a shorter answer to keep the run
    short. These runs show the CPU per event when every read carries one event, the regime
    of real LLM streams (tens of ms between tokens); openai is not run here (it cannot keep
    up with the unpaced server, so pacing would not change what it sees).
    """
    if quick:
        return [E2EConfig(2, 10, repeats=1, itl_ms=1.0)]
    return [
        E2EConfig(1, 1000, itl_ms=1.0),
        E2EConfig(32, 500, itl_ms=1.6),
        E2EConfig(256, 100, itl_ms=12.8),
    ]


# --------------------------------------------------------------------------- the server


@dataclass(slots=True)
class MockServerProcess:
    """A running ``rxgpt serve`` child process."""

    process: subprocess.Popen[bytes]
    base_url: str

    def cpu_seconds(self) -> float | None:
        """CPU seconds (user + system) the server has used so far (Linux /proc), else None."""
        try:
            with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mock_server(
    tokens: int, *, itl_ms: float = 0.0, timeout: float = 30.0
) -> Iterator[MockServerProcess]:
    """Start ``python -m rxgpt._cli serve`` on a free port; wait for ``/health``; stop it after.

    ``itl_ms`` spaces the events of each stream (0: no delay at all).
    """
    port = _free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rxgpt",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--tokens",
                str(tokens),
                "--itl-ms",
                str(itl_ms),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        server = MockServerProcess(process, f"http://127.0.0.1:{port}/v1")
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(
                        f"the mock server exited with {process.returncode}: "
                        + log.read().decode(errors="replace")[-500:]
                    )
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/health", timeout=1
                    ) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the mock server did not answer /health in time")
                time.sleep(0.05)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------- the clients


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        read_bufsize=_READ_BUFSIZE,
    )


@dataclass(slots=True)
class Outcome:
    """What one run produced: per-stream results plus the measurement."""

    cpu: float
    wall: float
    results: list[Any]
    server_cpu: float | None = None


Measured = Callable[[Callable[[], Awaitable[list[Any]]]], Awaitable[Outcome]]


async def _measure(
    work: Callable[[], Awaitable[list[Any]]], server: MockServerProcess | None
) -> Outcome:
    gc.collect()
    server_cpu = server.cpu_seconds() if server is not None else None
    wall = time.perf_counter()
    cpu = time.process_time()
    results = await work()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    server_after = server.cpu_seconds() if server is not None else None
    spent = server_after - server_cpu if server_cpu is not None and server_after else None
    return Outcome(cpu, wall, results, spent)


async def run_rxgpt(
    base_url: str, config: E2EConfig, server: MockServerProcess | None = None
) -> Outcome:
    """N concurrent ``await stream.completion()`` with rxgpt's Client."""
    session = _session()
    client = rxgpt.Client(base_url=base_url, api_key="sk-bench", session=session)

    async def work() -> list[Any]:
        streams = [
            client.chat(model=MODEL, messages=MESSAGES, max_tokens=config.tokens)
            for _ in range(config.streams)
        ]
        completions = await asyncio.gather(*(stream.completion() for stream in streams))
        return [(c.text, c.state) for c in completions]

    try:
        return await _measure(work, server)
    finally:
        await session.close()


async def run_openai(
    base_url: str, config: E2EConfig, server: MockServerProcess | None = None
) -> Outcome:
    """N concurrent ``create(stream=True)`` iterated to the end with the openai SDK."""
    import openai

    client = openai.AsyncOpenAI(
        base_url=base_url,
        api_key="sk-bench",
        max_retries=0,
        # the aiohttp sessions' settings: no total timeout, 30 s to connect (the SDK's default
        # 5 s connect timeout fails a burst of 256 connections on a busy 2-vCPU machine)
        timeout=openai.Timeout(None, connect=30.0),
    )

    async def one() -> tuple[str, int]:
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=config.tokens, stream=True
        )
        parts: list[str] = []
        chunks = 0
        async for chunk in stream:
            chunks += 1
            if chunk.choices:
                content = chunk.choices[0].delta.content
                if content:
                    parts.append(content)
        return "".join(parts), chunks

    async def work() -> list[Any]:
        return list(await asyncio.gather(*(one() for _ in range(config.streams))))

    try:
        return await _measure(work, server)
    finally:
        await client.close()


async def run_bare(
    base_url: str, config: E2EConfig, server: MockServerProcess | None = None
) -> Outcome:
    """N concurrent aiohttp requests whose body is only counted (bytes)."""
    session = _session()
    url = base_url + "/chat/completions"
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": config.tokens, "stream": True}

    async def one() -> int:
        total = 0
        async with session.post(url, json=body) as response:
            async for chunk in response.content.iter_any():
                total += len(chunk)
        return total

    async def work() -> list[Any]:
        return list(await asyncio.gather(*(one() for _ in range(config.streams))))

    try:
        return await _measure(work, server)
    finally:
        await session.close()


async def run_floor(
    base_url: str, config: E2EConfig, server: MockServerProcess | None = None
) -> Outcome:
    """N concurrent aiohttp requests parsed by the floor: split + orjson + content."""
    session = _session()
    url = base_url + "/chat/completions"
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": config.tokens, "stream": True}
    loads = orjson.loads

    async def one() -> tuple[str, int]:
        framer = SplitFramer()
        parts: list[str] = []
        events = 0
        async with session.post(url, json=body) as response:
            async for chunk in response.content.iter_any():
                for frame in framer.feed(chunk):
                    events += 1
                    payload = frame[6:]
                    if payload == b"[DONE]":
                        break
                    choices = loads(payload)["choices"]
                    if choices:
                        content = choices[0]["delta"].get("content")
                        if content:
                            parts.append(content)
        return "".join(parts), events

    async def work() -> list[Any]:
        return list(await asyncio.gather(*(one() for _ in range(config.streams))))

    try:
        return await _measure(work, server)
    finally:
        await session.close()


_RUNNERS: dict[str, Callable[[str, E2EConfig, MockServerProcess | None], Awaitable[Outcome]]] = {
    RXGPT: run_rxgpt,
    OPENAI: run_openai,
    BARE: run_bare,
    FLOOR: run_floor,
}


async def _probe(base_url: str, config: E2EConfig) -> bytes:
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": config.tokens, "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + "/chat/completions", json=body) as response,
    ):
        return await response.read()


# --------------------------------------------------------------------------- checks


def _checker(name: str, config: E2EConfig, text: str, body_bytes: int) -> Callable[[Any], Check]:
    def check(results: Any) -> Check:
        if len(results) != config.streams:
            return Check(len(results), f"{len(results)} streams, expected {config.streams}")
        events = config.events
        for index, item in enumerate(results):
            if name == RXGPT and item != (text, "complete"):
                return Check(events, f"stream {index}: state {item[1]}, {len(item[0])} chars")
            if name == OPENAI and item != (text, config.tokens + 2):
                return Check(events, f"stream {index}: {item[1]} chunks, {len(item[0])} chars")
            if name == BARE and item != body_bytes:
                return Check(events, f"stream {index}: {item} bytes, expected {body_bytes}")
            if name == FLOOR and item != (text, config.events_per_stream):
                return Check(events, f"stream {index}: {item[1]} events, {len(item[0])} chars")
        return Check(events)

    return check


# --------------------------------------------------------------------------- running


def run_config(
    config: E2EConfig,
    loop: asyncio.AbstractEventLoop,
    server: MockServerProcess,
    *,
    clients: tuple[str, ...] = (RXGPT, OPENAI, BARE, FLOOR),
    memory: bool = True,
) -> tuple[Case, dict[str, float], dict[str, float]]:
    """Run the clients at one concurrency level.

    Returns the case, the peak traced memory per stream of each client and, for the
    aiohttp-based clients, the events per network read (both from separate untimed runs).
    """
    probe = loop.run_until_complete(_probe(server.base_url, config))
    events_in_probe = probe.count(b"\n\n")
    if events_in_probe != config.events_per_stream:
        raise RuntimeError(
            f"the server sent {events_in_probe} events per stream, expected "
            f"{config.events_per_stream}"
        )
    text = "".join(generate_tokens(MESSAGES, MODEL, config.tokens))

    peers = []
    for name in clients:
        runner = _RUNNERS[name]

        def run_peer(
            runner: Callable[..., Awaitable[Outcome]] = runner,
        ) -> Sample:
            outcome = loop.run_until_complete(runner(server.base_url, config, server))
            extra = {"wall_s": outcome.wall}
            if outcome.server_cpu is not None:
                extra["server_cpu_s"] = outcome.server_cpu
            return Sample(outcome.cpu, outcome.results, extra)

        peers.append(
            Peer(
                name,
                run_peer,
                _checker(name, config, text, len(probe)),
                reference=name == RXGPT,
                budget=60.0,
            )
        )
    pacing = f"{config.itl_ms:g} ms between events" if config.itl_ms else "no delays"
    case = run_case(
        "e2e",
        config.name,
        f"{config.streams} concurrent stream(s) × {config.events_per_stream:,} events "
        f"({config.events:,} events, {len(probe) * config.streams:,} bytes), server in a "
        f"separate process, {pacing}, one event per write",
        peers,
        unit="events",
        units=config.events,
        nbytes=len(probe) * config.streams,
        repeats=config.repeats,
    )
    peak: dict[str, float] = {}
    for name in clients if memory else ():
        runner = _RUNNERS[name]
        gc.collect()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            loop.run_until_complete(runner(server.base_url, config, None))
            _, traced = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        peak[name] = traced / config.streams
    per_read = {
        name: config.events / reads
        for name in clients
        if name != OPENAI and (reads := count_reads(loop, _RUNNERS[name], server.base_url, config))
    }
    return case, peak, per_read


def count_reads(
    loop: asyncio.AbstractEventLoop,
    runner: Callable[[str, E2EConfig, MockServerProcess | None], Awaitable[Outcome]],
    base_url: str,
    config: E2EConfig,
) -> int:
    """Network reads an aiohttp-based client made in one (untimed) run.

    The connection's ``data_received`` (aiohttp's ``ResponseHandler``: one call per socket
    read, whether the body is then read by ``iter_any()`` or pushed to rxgpt's transport) is
    wrapped with a counter for the duration of the run. With a server that never waits, a
    slower client finds more events per read, and per-read costs dominate a fast client's
    CPU per event: this is the context for the CPU columns.
    """
    original = ResponseHandler.data_received
    count = 0

    def data_received(self: ResponseHandler, data: bytes) -> None:
        nonlocal count
        if data:
            count += 1
        original(self, data)

    ResponseHandler.data_received = data_received  # type: ignore[method-assign]
    try:
        loop.run_until_complete(runner(base_url, config, None))
    finally:
        ResponseHandler.data_received = original  # type: ignore[method-assign]
    return count


def e2e_table(
    cases: list[Case], memory: list[dict[str, float]], per_read: list[dict[str, float]]
) -> str:
    """CPU per 100k events, events/s, memory per stream, ratios, for every N."""
    rows = []
    for case, mem, reads in zip(cases, memory, per_read, strict=True):
        ref = case.reference
        bare = case.peer(BARE).median
        for peer in case.peers:
            cpu = peer.median
            wall = peer.extra_median("wall_s")
            server = peer.extra_median("server_cpu_s")
            rows.append(
                [
                    f"{case.name} · {peer.name}",
                    str(len(peer.times)),
                    f"{cpu / case.units * 1e5:.2f}" if cpu else "-",
                    f"{cpu / case.units * 1e6:.1f}" if cpu else "-",
                    fmt_seconds(wall),
                    f"{case.units / wall / 1e3:.1f} k" if wall else "-",
                    f"{server / wall * 100:.0f} %" if server is not None and wall else "-",
                    f"{mem[peer.name] / 1024:.1f}" if peer.name in mem else "-",
                    f"{reads[peer.name]:.2f}" if peer.name in reads else "-",
                    fmt_ratio(cpu / ref.median) if cpu and ref and ref.median else "-",
                    fmt_ratio(cpu / bare) if cpu and bare else "-",
                    peer.status,
                ]
            )
    headers = [
        "N · client",
        "n",
        "CPU s /100k events",
        "CPU µs/event",
        "wall",
        "events/s",
        "server CPU",
        "peak KiB/stream",
        "events/read",
        "CPU × rxgpt",
        "CPU × bare",
        "check",
    ]
    return (
        "### e2e / concurrent streams from a separate server process\n\n"
        "Client CPU = `time.process_time()` around issuing and consuming the N streams "
        "(median of the repeats); events/s = events ÷ wall time of the same span; server CPU = "
        "the server process's CPU over that span ÷ wall (near 100 % means the server, not the "
        "client, set the pace); memory = tracemalloc peak of the Python allocations during a "
        "separate untimed run, ÷ N; events/read = events ÷ network reads of another untimed "
        "run (aiohttp-based clients; the server never waits, so a slower client finds more "
        "events per read and pays the per-read cost less often).\n\n"
        + render_table(headers, rows)
        + "\n"
    )


def targets(cases: list[Case]) -> list[Target]:
    """rxgpt ≤ 1/10 of AsyncOpenAI's CPU per event, and ≤ 1.3× the bare aiohttp counter."""
    out = []
    for case in cases:
        if "paced" in case.name:
            continue  # the targets are defined on the server without delays
        ref = case.peer(RXGPT).median
        openai_cpu = case.peer(OPENAI).median
        bare = case.peer(BARE).median
        out.append(
            Target(
                f"e2e {case.name}: rxgpt ≤ 0.1× openai CPU",
                "client CPU per event, rxgpt Client vs AsyncOpenAI",
                0.1,
                ref / openai_cpu if ref and openai_cpu else None,
            )
        )
        floor = case.peer(FLOOR).median
        context = f" (the floor parser: {floor / bare:.2f}×)" if floor and bare else ""
        out.append(
            Target(
                f"e2e {case.name}: rxgpt ≤ 1.3× bare aiohttp CPU",
                "client CPU per event, rxgpt Client vs aiohttp byte counter" + context,
                1.3,
                ref / bare if ref and bare else None,
            )
        )
    return out


def run(quick: bool = False) -> BenchResult:
    """Run the end-to-end benchmark (starts and stops its own server process)."""
    start = time.perf_counter()
    result = BenchResult("e2e")
    levels = configs(quick)
    memory: list[dict[str, float]] = []
    per_read: list[dict[str, float]] = []
    import openai  # noqa: F401  (imported before any measurement)

    with event_loop() as loop:
        with mock_server(max(c.tokens for c in levels)) as server:
            for config in levels:
                progress(f"[e2e] {config.name}: {config.events:,} events, {config.repeats} rounds")
                case, mem, reads = run_config(config, loop, server)
                result.cases.append(case)
                memory.append(mem)
                per_read.append(reads)
        for config in paced_configs(quick):
            progress(f"[e2e] {config.name}: {config.events:,} events, {config.repeats} rounds")
            with mock_server(config.tokens, itl_ms=config.itl_ms) as server:
                case, mem, reads = run_config(
                    config, loop, server, clients=(RXGPT, BARE, FLOOR), memory=False
                )
            result.cases.append(case)
            memory.append(mem)
            per_read.append(reads)
    result.extra["memory_per_stream_bytes"] = {
        case.name: mem for case, mem in zip(result.cases, memory, strict=True)
    }
    result.extra["events_per_read"] = {
        case.name: reads for case, reads in zip(result.cases, per_read, strict=True)
    }
    result.tables.append(e2e_table(result.cases, memory, per_read))
    result.targets.extend(targets(result.cases))
    result.seconds = time.perf_counter() - start
    return result


def profile_workloads(quick: bool = False) -> Iterator[tuple[str, Callable[[], Any]]]:
    """rxgpt's Client and the bare aiohttp counter at the middle concurrency level.

    (Paced runs are not profiled: cProfile's overhead changes how the events coalesce.)
    """
    config = configs(quick)[-1 if quick else 1]
    with mock_server(config.tokens) as server, event_loop() as loop:
        yield (
            f"{RXGPT}, N={config.streams}",
            lambda: loop.run_until_complete(run_rxgpt(server.base_url, config)),
        )
        yield (
            f"{BARE}, N={config.streams}",
            lambda: loop.run_until_complete(run_bare(server.base_url, config)),
        )
