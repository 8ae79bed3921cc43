"""``--workers N``: client processes that share one schedule and merge their histograms.

Every worker rebuilds the same plan and prompts from the config (both are deterministic in
the seed), so only the config crosses the process boundary. Each prepares its requests and
says it is ready; the parent then picks one start time ``t0`` on the shared monotonic
clock and sends it to all, so their requests keep the one schedule's timing. While the run
lasts each worker sends progress; at the end its aggregate (histograms as plain data) and
its health, which the parent merges. With ``save_detailed``, worker ``k`` writes
``FILE.k`` and the parent joins them into ``FILE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from .._errors import RxgptError
from .._secrets import redact
from ._config import BenchConfig
from ._embedded import start_child
from ._health import Health
from ._metrics import Aggregate
from ._schedule import Plan, make_plan
from ._shard import Live, Target, prepare, prompt_pool, run_shard

__all__ = ["run_workers"]

#: Seconds a worker may take to start and prepare its requests.
READY_TIMEOUT = 120.0
#: Seconds between a worker's progress messages.
PROGRESS_EVERY = 0.5


def _worker(conn: Connection, config: BenchConfig, target: Target, shard: int, shards: int) -> None:
    try:
        plan = make_plan(config)
        prepared = prepare(config, target, prompt_pool(config, plan))
        conn.send(("ready", os.getpid()))
        kind, t0 = conn.recv()
        if kind != "start":
            return
        asyncio.run(_worker_run(conn, config, plan, prepared, int(t0), shard, shards))
    except (RxgptError, ValueError, OSError) as error:  # to the parent, which raises it
        with contextlib.suppress(OSError):
            conn.send(("error", redact(f"{type(error).__name__}: {error}".splitlines()[0])))
    except Exception:  # a bug: the parent shows the whole traceback
        with contextlib.suppress(OSError):
            conn.send(("error", redact(traceback.format_exc().rstrip())))
    finally:
        conn.close()


async def _worker_run(
    conn: Connection,
    config: BenchConfig,
    plan: Plan,
    prepared: list[Any],
    t0: int,
    shard: int,
    shards: int,
) -> None:
    live = Live()
    detailed = None
    if config.save_detailed:
        detailed = open(f"{config.save_detailed}.{shard}", "w", encoding="utf-8")  # noqa: SIM115

    async def report() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            conn.send(("progress", _drain(live)))

    ticker = asyncio.get_running_loop().create_task(report())
    try:
        result = await run_shard(
            config, plan, prepared, t0, shard=shard, shards=shards, live=live, detailed=detailed
        )
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        if detailed is not None:
            detailed.close()
    conn.send(("progress", _drain(live)))
    conn.send(("result", result.to_state()))


def _drain(live: Live) -> dict[str, Any]:
    """The live counts, and the samples since the last call (which are then dropped)."""
    snap = live.snapshot()
    live.ttft.clear()
    live.itl.clear()
    live.token_times.clear()
    live.lag.clear()
    return snap


def _health(data: dict[str, Any]) -> Health:
    return Health(
        worker=data["worker"],
        loop_lag_p50_ms=data["loop_lag_p50_ms"],
        loop_lag_p99_ms=data["loop_lag_p99_ms"],
        loop_lag_max_ms=data["loop_lag_max_ms"],
        cpu_fraction=data["cpu_fraction"],
        dispatch_lateness_p99_ms=data["dispatch_lateness_p99_ms"],
        parse_delay_p99_ms=data["parse_delay_p99_ms"],
        coalesced_fraction=data["coalesced_fraction"],
        streams=data["max_streams"],
        flagged=data["flagged"],
        reasons=list(data["reasons"]),
    )


class _Progress:
    """The parent's view of every worker's latest progress, summed into one :class:`Live`."""

    def __init__(self, live: Live | None, shards: int) -> None:
        self.live = live
        self.latest: list[dict[str, Any]] = [{} for _ in range(shards)]

    def update(self, shard: int, snap: dict[str, Any]) -> None:
        self.latest[shard] = snap
        live = self.live
        if live is None:
            return
        for name in ("sent", "done", "failed", "inflight", "tokens"):
            setattr(live, name, sum(s.get(name, 0) for s in self.latest))
        live.max_inflight = max(live.max_inflight, live.inflight)
        live.ttft.extend(tuple(x) for x in snap["ttft"])
        live.itl.extend(tuple(x) for x in snap["itl"])
        live.token_times.extend(tuple(x) for x in snap["token_times"])
        live.lag.extend(snap["lag"])


def _receive(conn: Connection, timeout: float) -> tuple[str, Any]:
    deadline = time.monotonic() + timeout
    # (in steps of at most an hour: a poll's timeout is an int of milliseconds)
    while not conn.poll(min(max(deadline - time.monotonic(), 0.0), 3600.0)):
        if time.monotonic() >= deadline:
            raise RxgptError(f"a bench worker sent nothing for {timeout:g} s")
    try:
        message: tuple[str, Any] = conn.recv()
    except (EOFError, OSError):
        raise RxgptError("a bench worker exited without its result") from None
    return message


async def run_workers(
    config: BenchConfig, plan: Plan, target: Target, shards: int, live: Live | None
) -> tuple[Aggregate, list[Health], int, int, int]:
    """Run ``config`` over ``shards`` processes; (merged aggregate, healths, excluded, start,
    end)."""
    ctx = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    conns: list[Connection] = []
    processes = []
    progress = _Progress(live, shards)
    finished = False
    try:
        for shard in range(shards):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_worker,
                args=(child, config, target, shard, shards),
                name=f"rxgpt-bench-worker-{shard}",
                daemon=True,
            )
            # (recorded before it starts: a Ctrl+C raised as start_child restores the signal
            # mask finds it in ``processes``, and it is stopped below)
            conns.append(parent)
            processes.append(process)
            try:
                start_child(process)
            finally:
                child.close()
        for conn in conns:
            kind, payload = await loop.run_in_executor(None, _receive, conn, READY_TIMEOUT)
            if kind != "ready":
                raise RxgptError(f"a bench worker failed to start: {payload}")
        t0 = time.perf_counter_ns() + 200_000_000  # every worker has it well before then
        for conn in conns:
            conn.send(("start", t0))
        silence = (config.timeout or 3600.0) + 60.0

        async def collect(shard: int, conn: Connection) -> dict[str, Any]:
            while True:
                kind, payload = await loop.run_in_executor(None, _receive, conn, silence)
                if kind == "progress":
                    progress.update(shard, payload)
                elif kind == "result":
                    return dict(payload)
                else:
                    raise RxgptError(f"bench worker {shard} failed: {payload}")

        states = await asyncio.gather(*(collect(k, c) for k, c in enumerate(conns)))
        finished = True
    finally:
        # Interrupted (Ctrl+C cancels this) or failed: the workers are ended at once. Each
        # ends before its pipe closes, so a thread still waiting on that pipe wakes (EOF).
        for process in processes:
            if process.pid is None:  # (never started)
                continue
            process.join(10 if finished else 0)
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()
    agg = Aggregate.from_state(states[0]["aggregate"])
    for state in states[1:]:
        agg.merge(Aggregate.from_state(state["aggregate"]))
    agg.t0_ns = t0
    healths = [_health(s["health"]) for s in states]
    excluded = sum(int(s["excluded"]) for s in states)
    end = max(int(s["end_ns"]) for s in states)
    if config.save_detailed:
        _join(config.save_detailed, shards)
    return agg, healths, excluded, t0, end


def _join(path: str, shards: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for shard in range(shards):
            part = f"{path}.{shard}"
            with contextlib.suppress(FileNotFoundError), open(part, encoding="utf-8") as f:
                for line in f:
                    out.write(line)
            with contextlib.suppress(FileNotFoundError):
                os.remove(part)
