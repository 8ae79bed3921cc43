"""Benchmark — the Redis Streams relay: throughput to 1, 100 and 1,000 subscribers, and the
producer's added cost per delta, beside the in-process :class:`rxgpt.Fanout`.

A real ``redis-server`` (Debian's, ``--save '' --appendonly no``) is started on a free
loopback port for the run. The stream is ``deltas`` neutral deltas (a ``ResponseInfo``, a
``RoleDelta``, 4-character ``TextDelta`` fragments, a ``FinishDelta`` and a ``UsageDelta``),
pushed **one delta per read** (the worst case for the relay: one Redis entry per delta) as
fast as the event loop allows (``await asyncio.sleep(0)`` between reads, as network reads
interleave with other tasks). Cases:

- **throughput** to N subscribers (N = 1, 100, 1,000): wall time from the first read to the
  moment the last subscriber has its ``Completion``; the rate is stream deltas per second.
  ``Fanout`` (reference) multicasts in-process to N batch-accumulating subscribers;
  ``relay`` publishes with :func:`rxgpt.relay.publish` and the N subscribers
  (:func:`rxgpt.relay.subscribe`, each with its own XREAD cursor and connection) run in
  worker processes started (and connected, waiting) before the clock starts: 1 process for
  N ≤ 100, 4 processes of 250 for N = 1,000. The check: every subscriber's ``Completion``
  equals the producer's (a digest of its fields), and a subscriber that joins after the end
  gets the same one.
- **producer cost**: process CPU time of the producer (the source, a ``Fanout`` with
  ``replay="all"`` and the accumulator, as in a ``ChatStream``) with and without a relay
  attached, until ``completion`` and ``relay.finished()``: the relay's encoding, redis-py's
  pipelines and the socket calls. Redis's own CPU is another process and is not counted.
  The hot-path cost (the relay's callback, what the producer's other subscribers wait
  for) is timed separately.

Run alone: ``.venv/bin/python -m benchmarks.bench_relay [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reactivex.disposable import Disposable

import rxgpt
from rxgpt import Accumulator, Completion, Delta, Fanout
from rxgpt._fusion import Batched, subscribe_batches

from .common import (
    BenchResult,
    Check,
    Peer,
    Sample,
    fmt_rate,
    format_case,
    progress,
    render_table,
    run_case,
)

__all__ = ["main", "run"]

ROOT = Path(__file__).resolve().parents[1]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
FANOUT = "Fanout (in-process)"
RELAY = "relay, a cursor each"
SHARED = "relay + Fanout per process"


# --------------------------------------------------------------------------- input


def make_deltas(count: int) -> list[Delta]:
    """The stream: info, role, ``count - 4`` text fragments, finish and usage."""
    texts = [rxgpt.TextDelta(0, f"{chr(97 + i % 26)}{i % 1000:03d}") for i in range(count - 4)]
    usage = rxgpt.Usage(input_tokens=10, output_tokens=count - 4, total_tokens=count + 6)
    return [
        rxgpt.ResponseInfo("chatcmpl-bench", "bench-model", 1, {"object": "chat.completion.chunk"}),
        rxgpt.RoleDelta(0, "assistant"),
        *texts,
        rxgpt.FinishDelta(0, "stop", "stop"),
        rxgpt.UsageDelta(usage),
    ]


def source(deltas: list[Delta]) -> Batched[Delta]:
    """A hot-path-like source: one delta per read, the loop free between reads."""

    def subscribe(
        on_batch: Callable[[list[Delta]], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> Any:
        async def push() -> None:
            for delta in deltas:
                on_batch([delta])
                await asyncio.sleep(0)
            on_completed()

        task = asyncio.get_running_loop().create_task(push())

        def stop() -> None:
            task.cancel()

        return Disposable(stop)

    return Batched(subscribe)


def digest(completion: Completion) -> str:
    """A digest of every field of a Completion (equal Completions, equal digests)."""
    fields = dataclasses.asdict(dataclasses.replace(completion, error=None))
    text = json.dumps(fields, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on a free loopback port in a temporary directory; yields its URL."""
    with tempfile.TemporaryDirectory() as directory:
        port = _free_port()
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", directory, "--daemonize", "no"]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


# --------------------------------------------------------------------------- workers


async def _worker(url: str, key: str, count: int, shared: bool) -> None:
    """A subscriber process: ``count`` subscribers of ``key``; prints ready, then results.

    Each subscriber accumulates its own Completion. ``shared``: they all attach to one
    :class:`rxgpt.relay.RelayedStream` (one XREAD cursor for the process, its Fanout
    multicasting in-process); else each has its own stream, cursor and connection.
    """
    import rxgpt.relay as relay

    client = relay.connect(url)
    loop = asyncio.get_running_loop()
    try:
        ends: list[float] = []
        results: list[Any] = []
        streams = [relay.subscribe(client, key, start_timeout=60) for _ in range(count)]
        if shared:
            streams = streams[:1]
        waiting = [loop.create_future() for _ in range(count)]
        for n in range(count):
            stream = streams[0 if shared else n]
            acc = Accumulator()
            future = waiting[n]

            def completed(acc: Accumulator = acc, future: asyncio.Future[Any] = future) -> None:
                ends.append(time.monotonic())
                future.set_result(acc.completion())

            def failed(error: Exception, future: asyncio.Future[Any] = future) -> None:
                ends.append(time.monotonic())
                future.set_result(error)

            subscribe_batches(stream.observable, acc.add_all, failed, completed)
        for stream in streams:
            stream.start()
        await asyncio.sleep(0.3 + count / 500)  # every XREAD issued and blocked
        print("ready", flush=True)
        results = await asyncio.gather(*waiting)
        digests: dict[str, int] = {}
        errors = [repr(r) for r in results if not isinstance(r, Completion)]
        for result in results:
            if isinstance(result, Completion):
                digests[digest(result)] = digests.get(digest(result), 0) + 1
        print(json.dumps({"end": max(ends), "digests": digests, "errors": errors[:3]}), flush=True)
    finally:
        await client.aclose()


class Workers:
    """Subscriber processes for one run: started and ready before the clock starts."""

    def __init__(self, url: str, key: str, processes: int, per_process: int, shared: bool) -> None:
        mode = "shared" if shared else "cursor"
        command = [sys.executable, "-m", "benchmarks.bench_relay", "--worker", url, key, mode]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.processes = [
            subprocess.Popen(
                [*command, str(per_process)], stdout=subprocess.PIPE, cwd=ROOT, env=env, text=True
            )
            for _ in range(processes)
        ]
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                self.kill()
                raise RuntimeError(f"a relay worker failed to start: {line!r}")

    def results(self, timeout: float = 300) -> list[dict[str, Any]]:
        out = []
        for process in self.processes:
            stdout, _ = process.communicate(timeout=timeout)
            out.append(json.loads(stdout.strip().splitlines()[-1]))
        return out

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------- peers


def run_fanout(deltas: list[Delta], subscribers: int) -> Sample:
    """Fanout to ``subscribers`` accumulators; wall time to the last Completion."""

    async def work() -> Sample:
        fanout: Fanout[Delta] = Fanout(source(deltas))
        accs = [Accumulator() for _ in range(subscribers)]
        done = asyncio.Event()
        for acc in accs:
            subscribe_batches(fanout.observable, acc.add_all, lambda e: None, lambda: None)
        subscribe_batches(fanout.observable, lambda b: None, lambda e: None, done.set)
        start = time.perf_counter()
        cpu = time.process_time()
        fanout.connect()
        await done.wait()
        completions = [acc.completion() for acc in accs]
        wall = time.perf_counter() - start
        return Sample(wall, completions, {"cpu_s": time.process_time() - cpu})

    return asyncio.run(work())


def run_relay(
    url: str, deltas: list[Delta], processes: int, per_process: int, shared: bool
) -> Sample:
    """Publish to Redis; subscribers in worker processes; wall time to the last Completion."""
    import rxgpt.relay as relay

    key = f"bench-{time.monotonic_ns()}"
    workers = Workers(url, key, processes, per_process, shared)
    try:

        async def produce() -> tuple[float, float, Completion, str]:
            client = relay.connect(url)
            try:
                fanout: Fanout[Delta] = Fanout(source(deltas), replay="all")
                acc = Accumulator()
                subscribe_batches(fanout.observable, acc.add_all, lambda e: None, lambda: None)
                published = relay.publish(fanout.observable, client, key)
                await asyncio.sleep(0.05)  # the start entry written
                start_wall = time.time()
                start = time.monotonic()
                fanout.connect()
                await published.finished(120)
                late = await relay.subscribe(client, key).completion()
                return start, start_wall, acc.completion(), digest(late)
            finally:
                await client.aclose()

        start, _, completion, late = asyncio.run(produce())
        reports = workers.results()
    finally:
        workers.kill()
    seconds = max(r["end"] for r in reports) - start
    return Sample(seconds, (digest(completion), late, reports))


def check_fanout(expected: str, subscribers: int) -> Callable[[Any], Check]:
    def check(completions: list[Completion]) -> Check:
        bad = sum(digest(c) != expected for c in completions)
        if len(completions) != subscribers or bad:
            return Check(len(completions), f"{bad} of {len(completions)} completions differ")
        return Check(len(completions))

    return check


def check_relay(subscribers: int) -> Callable[[Any], Check]:
    def check(output: tuple[str, str, list[dict[str, Any]]]) -> Check:
        expected, late, reports = output
        digests: dict[str, int] = {}
        errors = [e for r in reports for e in r["errors"]]
        for report in reports:
            for key, count in report["digests"].items():
                digests[key] = digests.get(key, 0) + count
        good = digests.get(expected, 0)
        if errors:
            return Check(good, f"{len(errors)} subscribers failed: {errors[0][:60]}")
        if good != subscribers:
            return Check(good, f"{subscribers - good} of {subscribers} completions differ")
        if late != expected:
            return Check(good, "the late joiner's completion differs")
        return Check(good)

    return check


def run_producer(url: str | None, deltas: list[Delta]) -> Sample:
    """The producer's CPU: Fanout + accumulator, with a relay attached when ``url`` is set."""
    import rxgpt.relay as relay

    async def work() -> Sample:
        client = relay.connect(url) if url else None
        try:
            fanout: Fanout[Delta] = Fanout(source(deltas), replay="all")
            acc = Accumulator()
            done = asyncio.Event()
            subscribe_batches(fanout.observable, acc.add_all, lambda e: None, done.set)
            published = None
            if client is not None:
                published = relay.publish(fanout.observable, client, f"cost-{time.monotonic_ns()}")
                await asyncio.sleep(0.05)
            cpu = time.process_time()
            wall = time.perf_counter()
            fanout.connect()
            await done.wait()
            if published is not None:
                await published.finished(60)
            cpu = time.process_time() - cpu
            trips = published.round_trips if published is not None else 0
            extra = {"wall_s": time.perf_counter() - wall, "round_trips": float(trips)}
            return Sample(cpu, acc.completion(), extra)
        finally:
            if client is not None:
                await client.aclose()

    return asyncio.run(work())


def hot_path_ns(url: str, deltas: list[Delta]) -> float:
    """Nanoseconds the relay's callback adds per read (what other subscribers wait for)."""
    import rxgpt.relay as relay

    async def work() -> float:
        client = relay.connect(url)
        try:
            published = relay.Relay(client, f"hot-{time.monotonic_ns()}")
            published.attach(Batched(lambda *_: Disposable()))
            batches = [[delta] for delta in deltas]
            on_batch = published._on_batch
            times = []
            for _ in range(5):
                start = time.perf_counter_ns()
                for batch in batches:
                    on_batch(batch)
                times.append((time.perf_counter_ns() - start) / len(batches))
                published._pending.clear()
                published._pending_deltas = 0
            await published.aclose()
            return statistics.median(times)
        finally:
            await client.aclose()

    return asyncio.run(work())


# --------------------------------------------------------------------------- the run


def run(quick: bool) -> BenchResult:
    """Every case; ``quick``: 200 deltas, 1 and 10 subscribers, one or two rounds."""
    started = time.perf_counter()
    count = 200 if quick else 2000
    repeats = 2 if quick else 3
    deltas = make_deltas(count)
    result = BenchResult("relay")
    levels = [(1, 1, 1), (10, 1, 10)] if quick else [(1, 1, 1), (100, 1, 100), (1000, 4, 250)]
    with redis_server() as url:
        expected = digest(run_producer(None, deltas).output)
        for subscribers, processes, per_process in levels:
            progress(f"relay: {count} deltas to {subscribers} subscribers")
            peers = [
                Peer(
                    FANOUT,
                    functools_partial(run_fanout, deltas, subscribers),
                    check_fanout(expected, subscribers),
                    reference=True,
                ),
                Peer(
                    RELAY,
                    functools_partial(run_relay, url, deltas, processes, per_process, False),
                    check_relay(subscribers),
                    note=f"one XREAD cursor per subscriber, in {processes} worker process(es)",
                    budget=60.0,
                ),
            ]
            if subscribers > 1:
                peers.append(
                    Peer(
                        SHARED,
                        functools_partial(run_relay, url, deltas, processes, per_process, True),
                        check_relay(subscribers),
                        note=f"one cursor per process ({processes}), Fanout to its subscribers",
                    )
                )
            result.cases.append(
                run_case(
                    "relay",
                    f"to {subscribers} subscribers",
                    f"{count} deltas, one per read, from one producer to {subscribers} "
                    "subscribers; wall time to the last Completion",
                    peers,
                    unit="deltas",
                    units=count,
                    repeats=repeats,
                )
            )
        progress("relay: producer cost")
        cost = run_case(
            "relay",
            "producer cost",
            f"CPU of the producer for {count} deltas (one per read): Fanout + accumulator, "
            "without and with a relay attached",
            [
                Peer("no relay", functools_partial(run_producer, None, deltas), reference=True),
                Peer("with relay", functools_partial(run_producer, url, deltas)),
            ],
            unit="deltas",
            units=count,
            repeats=repeats + 2,
        )
        result.cases.append(cost)
        hot = hot_path_ns(url, deltas)
    base, relayed = cost.peers[0].median, cost.peers[1].median
    added = (relayed - base) / count if base is not None and relayed is not None else None
    trips = cost.peers[1].extra_median("round_trips")
    result.extra = {
        "added_cpu_per_delta_s": added,
        "hot_path_ns_per_read": hot,
        "round_trips": trips,
    }
    for case in result.cases:
        result.tables.append(format_case(case))
    result.tables.append(summary_table(result, count, added, hot, trips))
    result.seconds = time.perf_counter() - started
    return result


def functools_partial(function: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """``function`` with ``args`` bound (a named closure, for readable tracebacks)."""

    def bound() -> Any:
        return function(*args)

    return bound


def summary_table(
    result: BenchResult, count: int, added: float | None, hot: float, trips: float | None
) -> str:
    """The headline figures: deltas/s per subscriber count, and the producer's added cost."""
    rows = []
    for case in result.cases[:-1]:
        subscribers = int(case.name.split()[1])
        rates = {peer.name: case.rate(peer) for peer in case.peers}
        checks = "; ".join(sorted({peer.status for peer in case.peers}))
        rows.append(
            [
                str(subscribers),
                fmt_rate(rates.get(FANOUT)),
                fmt_rate(rates.get(RELAY)),
                fmt_rate(rates.get(SHARED)),
                fmt_rate(max(rates.get(RELAY) or 0, rates.get(SHARED) or 0) * subscribers),
                checks,
            ]
        )
    table = render_table(
        [
            "subscribers",
            "Fanout deltas/s",
            "relay, cursor each",
            "relay + Fanout/process",
            "relay deliveries/s (best)",
            "check",
        ],
        rows,
    )
    cost = "-" if added is None else f"{added * 1e6:.1f} µs"
    return (
        "### relay / summary\n\n"
        + table
        + f"\n\n- producer's added CPU per delta with a relay: {cost} (median, {count} deltas "
        f"one per read, {trips or 0:.0f} Redis round trips); the relay's callback on the hot "
        f"path: {hot:.0f} ns per read\n"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.bench_relay [--quick]`` (``--worker`` is internal)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_relay")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", nargs=4, metavar=("URL", "KEY", "MODE", "COUNT"))
    args = parser.parse_args(argv)
    if args.worker:
        url, key, mode, count = args.worker
        asyncio.run(_worker(url, key, int(count), mode == "shared"))
        return 0
    result = run(args.quick)
    for table in result.tables:
        print(table, flush=True)
    print(f"relay benchmark: {result.seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
