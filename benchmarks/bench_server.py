"""Capacity of the embedded server: events/s against a minimal server, and step lateness.

``python -m benchmarks.bench_server [--quick] [--json]``. Each server runs in its own process
(``python -m rxgpt.mock``); the client is this process, with one connection per stream: a
bare aiohttp byte loop that counts events (``\\n\\n``) and bytes, nothing else, or for
the lateness targets the lean reader of :mod:`benchmarks.load_client`.

1. **Throughput** (``--itl-ms 0``): N streams of T tokens each, all at once; events/s the
   server sustains, against a *minimal pre-encoded aiohttp server* (the same event bytes,
   captured from the mock, written one ``await resp.write(event)`` each), in alternating
   rounds. Ratio = mock / minimal (target >= 0.95 at 64, 512 and 2,048 streams), by the
   client's wall clock and by the server process's own CPU time (``/proc``: events per CPU
   second, which the 2-core machine's other load disturbs less). When the client, not the
   server, is the limit, the wall-clock rates come out equal.
2. **Lateness** (``--itl-ms 20``): N streams; the server's own ground-truth timeline
   (``--timeline FILE``) gives, per decode step, how late its first write (the step start)
   and its last write (the end of the burst) ran against the schedule; p50 / p99 over the
   steps of the steady part of the run (targets p99 <= 2 ms at 256 streams, <= 5 ms at 512,
   and with ``--workers 2`` <= 5 ms at 2,048). The server is measured, so its client
   should cost this 2-core machine what a client on another machine would: the lean reader
   (about 0.2 of a core at 2,048 streams; a stream that does not end well counts as a
   missed target). The bare aiohttp loop, woken by every event, takes 0.7-0.9 of a core
   there, and its rows show what that does to the steps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from rxgpt._ulimit import raise_open_files

from .common import BenchResult, Target, render_table
from .load_client import Run, lean_run

__all__ = ["main", "run"]

MESSAGES = [{"role": "user", "content": "Tell me about streams, please"}]
_MINIMAL_SERVER = r"""
import asyncio, sys
from aiohttp import web
from rxgpt._serving import LISTEN_BACKLOG

EVENTS = [bytes.fromhex(line) for line in sys.stdin.read().split()]

async def handle(request):
    await request.read()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for event in EVENTS:
        await resp.write(event)
    return resp

app = web.Application()
app.router.add_post("/v1/chat/completions", handle)
app.router.add_get("/health", lambda r: web.Response(text="ok"))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
            backlog=LISTEN_BACKLOG)  # (as rxgpt serve listens)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/health") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the server at {url} did not come up within {timeout} s")


@contextlib.contextmanager
def _process(args: Sequence[str], stdin: bytes | None = None) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if stdin is not None and process.stdin is not None:
            process.stdin.write(stdin)
            process.stdin.close()
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """``pid`` and every process descended from it (a server and its ``--workers``)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
    found = [pid]
    grew = True  # (until no process is left whose parent was found: a child's pid may be
    # below its parent's, so one pass in pid order is not enough)
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in found and child not in found:
                found.append(child)
                grew = True
    return found


def family_cpu(pids: Sequence[int]) -> float:
    """CPU seconds of ``pids`` so far (a process that ended counts 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += cpu_seconds(pid)
    return total


def mock_args(port: int, *flags: str) -> list[str]:
    return [sys.executable, "-m", "rxgpt.mock", "--port", str(port), *flags]


async def client_run(url: str, streams: int, body: dict[str, Any]) -> Run:
    """``streams`` concurrent streams from a bare aiohttp byte loop (counts ``\\n\\n``)."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=600)
    events = size = failed = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> None:
            nonlocal events, size, failed
            try:
                async with session.post(url + "/v1/chat/completions", json=body) as resp:
                    tail = b""
                    async for data in resp.content.iter_any():
                        joined = tail + data
                        events += joined.count(b"\n\n")
                        tail = joined[-1:]
                        size += len(data)
            except (aiohttp.ClientError, OSError):
                failed += 1

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(streams)))
        seconds = time.perf_counter() - start
    return Run(events, size, seconds, failed)


async def _capture(url: str, body: dict[str, Any]) -> list[bytes]:
    """The events of one stream of the mock (for the minimal server to replay)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/chat/completions", json=body) as resp,
    ):
        raw = await resp.read()
    return [block + b"\n\n" for block in raw.split(b"\n\n")[:-1]]


def throughput(streams: int, tokens: int, rounds: int) -> dict[str, Any]:
    """Events/s of the mock and of the minimal server, alternating rounds (medians)."""
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    mock_port, minimal_port = _free_port(), _free_port()
    mock_url, minimal_url = f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{minimal_port}"
    with _process(mock_args(mock_port, "--tokens", str(tokens), "--itl-ms", "0")) as mock:
        asyncio.run(_wait_healthy(mock_url, mock))
        events = asyncio.run(_capture(mock_url, body))
        stdin = "\n".join(event.hex() for event in events).encode()
        minimal_cmd = [sys.executable, "-c", _MINIMAL_SERVER, str(minimal_port)]
        with _process(minimal_cmd, stdin=stdin) as minimal:
            asyncio.run(_wait_healthy(minimal_url, minimal))
            rates: dict[str, list[float]] = {"mock": [], "minimal": []}
            capacity: dict[str, list[float]] = {"mock": [], "minimal": []}
            failed = 0
            for _ in range(rounds):
                for name, url, pid in (
                    ("mock", mock_url, mock.pid),
                    ("minimal", minimal_url, minimal.pid),
                ):
                    cpu = cpu_seconds(pid)
                    result = asyncio.run(client_run(url, streams, body))
                    cpu = cpu_seconds(pid) - cpu
                    expected = streams * len(events)
                    failed += result.failed + (result.events != expected)
                    rates[name].append(result.rate)
                    capacity[name].append(result.events / cpu if cpu > 0 else 0.0)
    mock_rate, minimal_rate = statistics.median(rates["mock"]), statistics.median(rates["minimal"])
    mock_cap = statistics.median(capacity["mock"])
    minimal_cap = statistics.median(capacity["minimal"])
    return {
        "streams": streams,
        "tokens": tokens,
        "events_per_stream": len(events),
        "mock": mock_rate,
        "minimal": minimal_rate,
        "ratio": mock_rate / minimal_rate if minimal_rate else 0.0,
        "mock_per_cpu": mock_cap,
        "minimal_per_cpu": minimal_cap,
        "cpu_ratio": mock_cap / minimal_cap if minimal_cap else 0.0,
        "failed": failed,
    }


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(round(q * (len(ordered) - 1)), len(ordered) - 1)
    return ordered[index]


#: The lateness case's load clients: the lean one (what a client on another machine would
#: cost this one) and the bare aiohttp byte loop.
LEAN, AIOHTTP = "lean epoll", "bare aiohttp"


def lateness(
    streams: int, tokens: int, itl_ms: float, workers: int = 1, client: str = LEAN
) -> dict[str, Any]:
    """Step lateness (start and end of each burst) from the server's timeline, the streams
    read by ``client`` (:data:`LEAN` or :data:`AIOHTTP`)."""
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "timeline.jsonl"
        flags = ["--tokens", str(tokens), "--itl-ms", str(itl_ms), "--timeline", str(path)]
        flags += ["--workers", str(workers)]
        with _process(mock_args(port, *flags)) as server:
            asyncio.run(_wait_healthy(url, server))
            if workers > 1:
                time.sleep(1.0)  # let the other workers bind the port
            # the CPU the server's processes and this client used over the run, in cores:
            # on a machine of few cores, near their count means the run was CPU-bound
            servers = family(server.pid)
            server_cpu, client_cpu = family_cpu(servers), time.process_time()
            if client == LEAN:
                result = lean_run("127.0.0.1", port, streams, body)
            else:
                result = asyncio.run(client_run(url, streams, body))
            server_cpu = family_cpu(servers) - server_cpu
            client_cpu = time.process_time() - client_cpu
            time.sleep(0.3)
        records = [json.loads(line) for line in path.read_text().splitlines()]
    writes: list[tuple[float, float]] = []  # (absolute schedule, lateness) of every write
    for record in records:
        arrived = record["arrived_monotonic"]
        for step, scheduled, written, _, _ in record["chunks"]:
            if step >= 1:
                writes.append((arrived + scheduled, written - scheduled))
    # One decode step = the writes scheduled at the same instant (steps are >= 1 ms apart;
    # with several workers, steps of different workers that coincide count as one).
    writes.sort()
    steps: list[list[float]] = []
    starts_at: list[float] = []
    last = float("-inf")
    for at, late in writes:
        if at - last > 0.001 or not steps:
            steps.append([])
            starts_at.append(at)
        steps[-1].append(late)
        last = at
    # "settled": the steps after every stream has its slot (the ramp-up of the connections
    # and of the handlers' turns excluded), as a steady load sees them
    ramp = (
        max(
            (record["arrived_monotonic"] + (record["queued"] or 0.0) for record in records),
            default=0.0,
        )
        + 0.1
    )
    settled = [min(v) * 1000 for v, at in zip(steps, starts_at, strict=True) if at >= ramp]
    # the steady part: steps that served at least half of the streams (of one worker)
    widest = max((len(v) for v in steps), default=0)
    steady = [v for v in steps if len(v) >= widest / 2]
    starts = [min(v) * 1000 for v in steady]
    ends = [max(v) * 1000 for v in steady]
    each = [x * 1000 for v in steady for x in v]
    return {
        "streams": streams,
        "workers": workers,
        "client": client,
        "itl_ms": itl_ms,
        "steps": len(steady),
        "start_p50": _percentile(starts, 0.5),
        "start_p99": _percentile(starts, 0.99),
        "end_p50": _percentile(ends, 0.5),
        "end_p99": _percentile(ends, 0.99),
        "write_p99": _percentile(each, 0.99),
        "settled_steps": len(settled),
        "settled_start_p50": _percentile(settled, 0.5),
        "settled_start_p99": _percentile(settled, 0.99),
        "failed": result.failed,
        "server_cores": server_cpu / result.seconds if result.seconds > 0 else 0.0,
        "client_cores": client_cpu / result.seconds if result.seconds > 0 else 0.0,
        "processes": len(servers),
    }


def run(quick: bool = False) -> BenchResult:
    """Both measurements; a :class:`BenchResult` for ``python -m benchmarks``."""
    began = time.perf_counter()
    raise_open_files()  # (a socket per stream: 2,048 and more, as rxgpt bench does)
    result = BenchResult("server")
    sizes = [(8, 50)] if quick else [(64, 2000), (512, 400), (2048, 100)]
    rounds = 1 if quick else 3
    rows = []
    for streams, tokens in sizes:
        print(f"throughput: {streams} streams x {tokens} tokens", file=sys.stderr, flush=True)
        data = throughput(streams, tokens, rounds)
        result.extra.setdefault("throughput", []).append(data)
        rows.append(
            [
                str(streams),
                str(streams * data["events_per_stream"]),
                f"{data['mock']:,.0f}",
                f"{data['minimal']:,.0f}",
                f"{data['ratio']:.2f}",
                f"{data['mock_per_cpu']:,.0f}",
                f"{data['minimal_per_cpu']:,.0f}",
                f"{data['cpu_ratio']:.2f}",
                str(data["failed"]),
            ]
        )
        result.targets.append(
            Target(
                f"server events/s at {streams} streams",
                "minimal server's events/s / mock's (target <= 1/0.95)",
                1 / 0.95,
                (1 / data["ratio"]) if data["ratio"] else None,
                f"mock {data['mock']:,.0f}/s, minimal {data['minimal']:,.0f}/s",
            )
        )
    result.tables.append(
        "### server / throughput\n\n"
        "(--itl-ms 0, one write per event; ev/s = client wall clock, ev/CPU-s = events per "
        "CPU second of the server process)\n\n"
        + render_table(
            [
                "streams",
                "events/run",
                "mock ev/s",
                "minimal ev/s",
                "mock/minimal",
                "mock ev/CPU-s",
                "minimal ev/CPU-s",
                "CPU ratio",
                "failed",
            ],
            rows,
        )
        + "\n"
    )
    # (streams, tokens, workers, target ms: None for a reference row, client)
    cases: list[tuple[int, int, int, float | None, str]] = (
        [(16, 20, 1, 2.0, LEAN), (16, 20, 1, None, AIOHTTP)]
        if quick
        else [
            (256, 100, 1, 2.0, LEAN),
            (512, 100, 1, 5.0, LEAN),
            (1024, 100, 1, 5.0, LEAN),
            (2048, 100, 2, 5.0, LEAN),
            # the same runs read by the bare aiohttp loop: what its CPU does to the steps
            (256, 100, 1, None, AIOHTTP),
            (2048, 100, 2, None, AIOHTTP),
        ]
    )
    rows = []
    for streams, tokens, workers, limit, client in cases:
        print(
            f"lateness: {streams} streams, {workers} worker(s), {client} client",
            file=sys.stderr,
            flush=True,
        )
        data = lateness(streams, tokens, 20.0, workers, client)
        result.extra.setdefault("lateness", []).append(data)
        rows.append(
            [
                str(streams),
                str(workers),
                client,
                str(data["steps"]),
                f"{data['start_p50']:.2f}",
                f"{data['start_p99']:.2f}",
                f"{data['end_p50']:.2f}",
                f"{data['end_p99']:.2f}",
                f"{data['settled_start_p50']:.2f}",
                f"{data['settled_start_p99']:.2f}",
                f"{data['server_cores']:.2f}",
                f"{data['client_cores']:.2f}",
                str(data["failed"]),
            ]
        )
        if limit is None:
            continue
        result.targets.append(
            Target(
                f"step lateness p99 at {streams} streams, {workers} worker(s)",
                f"ms behind schedule, step start (target <= {limit:g} ms), {client} client",
                limit,
                data["start_p99"] if not data["failed"] else float("inf"),
                f"end of burst p99 {data['end_p99']:.2f} ms; after the ramp-up: start p99 "
                f"{data['settled_start_p99']:.2f} ms; CPU in use: server "
                f"{data['server_cores']:.2f} + client {data['client_cores']:.2f} of "
                f"{os.cpu_count()} cores; failed streams {data['failed']}",
                " ms",
            )
        )
    result.tables.append(
        "### server / decode-step lateness\n\n"
        "(--itl-ms 20; ms behind schedule; start = first write of a step, end = last write of "
        "its burst)\n\n"
        + render_table(
            [
                "streams",
                "workers",
                "client",
                "steps",
                "start p50",
                "start p99",
                "end p50",
                "end p99",
                "settled start p50",
                "settled start p99",
                "server cores",
                "client cores",
                "failed",
            ],
            rows,
        )
        + f"\n\nserver cores, client cores: CPU seconds per second of the run (the server's "
        f"processes together; this client), on a machine of {os.cpu_count()} cores: where "
        "they add up to about that, the run is CPU-bound and steps run late for want of a "
        "core, not for the server's scheduling. client: the lean epoll reader "
        "(benchmarks/load_client.py: woken once a socket holds a few events, as cheap as a "
        "client on another machine would be to this one) or the bare aiohttp byte loop "
        "(woken by every event); the targets are the lean client's.\n"
    )
    result.seconds = time.perf_counter() - began
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_server")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    args = parser.parse_args(argv)
    result = run(args.quick)
    for table in result.tables:
        print(table + "\n")
    for target in result.targets:
        state = "met" if target.met else "MISSED"
        measured = "n/a" if target.measured is None else f"{target.measured:.3f}"
        print(f"- {target.name}: {measured} (limit {target.limit:.3f}) {state}; {target.detail}")
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
