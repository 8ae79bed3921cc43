"""One process's share of a run: dispatch its requests on schedule, measure, fold the results.

:func:`run_shard` is what a single-process run and every ``--workers`` process execute.
Shard ``k`` of ``n`` takes the requests whose global index is ``k`` modulo ``n`` (open loop:
from the one schedule drawn up front; closed loop: its share of the slots), all timed
against one start ``t0_ns`` on the shared monotonic clock (``perf_counter_ns`` is
system-wide on Linux).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import aiohttp

from .._collector import frozen
from .._json import dumps
from .._providers import get_provider
from ._client import PreparedRequest, RequestRecord, measure, open_session
from ._config import BenchConfig
from ._health import Health, HealthMonitor, assess
from ._metrics import Aggregate, RequestResult, finalize
from ._schedule import Plan
from ._stats import Histogram
from ._workload import MAX_PROMPTS, POOL, BenchPrompt, build_prompts

__all__ = ["Live", "ShardResult", "Target", "prepare", "run_shard"]

_perf_ns = time.perf_counter_ns


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: the base URL, key and model resolved for this run."""

    base_url: str
    api_key: str | None
    model: str
    embedded: bool = False


def prepare(
    config: BenchConfig, target: Target, prompts: list[BenchPrompt]
) -> list[PreparedRequest]:
    """Each prompt as the provider's request, its JSON body encoded once, up front."""
    provider = get_provider(config.provider)
    out = []
    for prompt in prompts:
        params: dict[str, Any] = provider.usage_params()
        if config.continuous_usage and "stream_options" in params:
            params["stream_options"]["continuous_usage_stats"] = True
        params.update(provider.limit_params(prompt.output_tokens))
        if config.ignore_eos:
            params["ignore_eos"] = True
        params.update(config.extra_body)
        request = provider.request(
            target.base_url, target.api_key, target.model, list(prompt.messages), params
        )
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            **request.headers,
            **config.headers,
        }
        out.append(
            PreparedRequest(
                request.url,
                headers,
                dumps(request.body).encode(),
                prompt.input_tokens,
                prompt.output_tokens,
            )
        )
    return out


class Live:
    """What a dashboard shows while a run lasts: counts and recent latencies of this process."""

    def __init__(self) -> None:
        self.sent = 0
        self.done = 0
        self.failed = 0
        self.inflight = 0
        self.max_inflight = 0
        self.tokens = 0
        self.ttft: collections.deque[tuple[int, float]] = collections.deque(maxlen=4096)
        self.itl: collections.deque[tuple[int, float]] = collections.deque(maxlen=8192)
        self.token_times: collections.deque[tuple[int, int]] = collections.deque(maxlen=8192)
        self.lag: collections.deque[float] = collections.deque(maxlen=400)
        self.cpu_fraction = 0.0

    def snapshot(self) -> dict[str, Any]:
        """Plain data for a parent process (recent samples only)."""
        return {
            "sent": self.sent,
            "done": self.done,
            "failed": self.failed,
            "inflight": self.inflight,
            "tokens": self.tokens,
            "ttft": list(self.ttft)[-512:],
            "itl": list(self.itl)[-1024:],
            "token_times": list(self.token_times)[-1024:],
            "lag": list(self.lag)[-400:],
        }


class _Trimmer:
    """Excludes warm-up and cool-down requests from the statistics (not from the series).

    Requests are decided once it is known whether they fall in the cool-down window: at
    once when the window's place is known up front, else when the run ends (those still
    undecided wait in a buffer bounded by the cool-down's length).
    """

    def __init__(self, config: BenchConfig, plan: Plan, t0_ns: int, agg: Aggregate) -> None:
        self.agg = agg
        self.t0 = t0_ns
        warm, cool = config.warmup, config.cooldown
        self.warm_requests = int(warm.amount) if warm.unit == "requests" else 0
        self.warm_ns = int(warm.amount * 1e9) if warm.unit == "seconds" else 0
        total = plan.total
        self.cool_from_index: int | None = None
        if cool.unit == "requests" and cool.amount:
            if total is None:
                raise ValueError(
                    "a cool-down in requests needs a count-bounded run; with --duration give "
                    "it in seconds (e.g. --cooldown 5s)"
                )
            self.cool_from_index = total - int(cool.amount)
        self.cool_ns = int(cool.amount * 1e9) if cool.unit == "seconds" else 0
        self.window_end: int | None = None
        if self.cool_ns:
            if plan.kind == "open" and plan.offsets:
                self.window_end = t0_ns + int(plan.offsets[-1] * 1e9)
            elif plan.duration is not None:
                self.window_end = t0_ns + int(plan.duration * 1e9)
        self.pending: collections.deque[RequestResult] = collections.deque()
        self.latest_scheduled = 0
        self.excluded = 0

    def _measured(self, result: RequestResult, window_end: int | None) -> bool:
        if result.index < self.warm_requests:
            return False
        if self.warm_ns and result.scheduled_ns < self.t0 + self.warm_ns:
            return False
        if self.cool_from_index is not None and result.index >= self.cool_from_index:
            return False
        return not (
            self.cool_ns
            and window_end is not None
            and result.scheduled_ns > window_end - self.cool_ns
        )

    def push(self, result: RequestResult) -> None:
        self.agg.note(result)
        if self.cool_ns and self.window_end is None:
            self.pending.append(result)
            self.latest_scheduled = max(self.latest_scheduled, result.scheduled_ns)
            horizon = self.latest_scheduled - self.cool_ns
            while self.pending and self.pending[0].scheduled_ns < horizon:
                self._decide(self.pending.popleft(), None)
            return
        self._decide(result, self.window_end)

    def _decide(self, result: RequestResult, window_end: int | None) -> None:
        if self._measured(result, window_end):
            self.agg.add(result)
        else:
            self.excluded += 1

    def finish(self, last_scheduled: int) -> None:
        while self.pending:
            self._decide(self.pending.popleft(), last_scheduled)


@dataclass(slots=True)
class ShardResult:
    """What one process measured: its aggregate, health, and how its run went."""

    worker: int
    aggregate: Aggregate
    health: Health
    excluded: int
    dispatch_start_ns: int
    end_ns: int
    lag: Histogram

    def to_state(self) -> dict[str, Any]:
        """Plain data for the parent process."""
        return {
            "worker": self.worker,
            "aggregate": self.aggregate.to_state(),
            "health": self.health.to_json(),
            "excluded": self.excluded,
            "dispatch_start_ns": self.dispatch_start_ns,
            "end_ns": self.end_ns,
            "lag": self.lag.to_state(),
        }


async def run_shard(
    config: BenchConfig,
    plan: Plan,
    prepared: list[PreparedRequest],
    t0_ns: int,
    *,
    shard: int = 0,
    shards: int = 1,
    live: Live | None = None,
    detailed: IO[str] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> ShardResult:
    """Send shard ``shard`` of ``shards``'s requests of ``plan``, timed from ``t0_ns``."""
    protocol = get_provider(config.provider).protocol
    agg = Aggregate(config.goodput)
    agg.t0_ns = t0_ns
    trimmer = _Trimmer(config, plan, t0_ns, agg)
    live = live or Live()
    lateness = Histogram()
    timeout = config.timeout
    pool = len(prepared)
    own = session is None
    client = session or open_session()

    def done(record: RequestRecord) -> None:
        live.inflight -= 1
        result = finalize(record)
        live.done += 1
        if not result.ok:
            live.failed += 1
        else:
            live.tokens += result.output_tokens
            now = record.end_ns
            if result.ttft is not None:
                live.ttft.append((now, result.ttft))
            for t, gap in zip(result.chunk_ns[1:], result.itl, strict=False):
                live.itl.append((t, gap))
            for t, k in zip(result.chunk_ns, result.chunk_tokens, strict=False):
                live.token_times.append((t, k))
        lateness.record(result.dispatch_lateness)
        trimmer.push(result)
        if detailed is not None:
            detailed.write(json.dumps(result.to_json(t0_ns)) + "\n")

    async def one(record: RequestRecord, gate: asyncio.Semaphore | None) -> None:
        if gate is not None:
            await gate.acquire()
        record.acquired_ns = _perf_ns()
        live.sent += 1
        live.inflight += 1
        live.max_inflight = max(live.max_inflight, live.inflight)
        try:
            await measure(client, prepared[record.index % pool], record, protocol, timeout)
        finally:
            if gate is not None:
                gate.release()
        done(record)

    monitor = HealthMonitor(recent=live.lag)
    end_by = t0_ns + int(plan.duration * 1e9) if plan.duration is not None else None
    try:
        with frozen():  # as vLLM does: fewer, shorter collector pauses in the run
            async with monitor:
                delay = (t0_ns - _perf_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
                if plan.kind == "closed":
                    last_scheduled = await _closed_loop(
                        plan, t0_ns, shard, shards, end_by, prepared, one
                    )
                else:
                    last_scheduled = await _open_loop(plan, t0_ns, shard, shards, prepared, one)
    finally:
        if own:
            await client.close()
    end_ns = _perf_ns()
    trimmer.finish(last_scheduled)
    agg.max_inflight = live.max_inflight
    health = assess(
        shard,
        monitor.lag,
        monitor.cpu_fraction,
        lateness,
        agg.parse_delay,
        agg.chunks,
        agg.coalesced,
        live.max_inflight,
        config.health,
        open_loop=plan.kind != "closed",
    )
    return ShardResult(shard, agg, health, trimmer.excluded, t0_ns, end_ns, monitor.lag)


def _share(total: int | None, shard: int, shards: int) -> int:
    """Shard ``shard``'s part of ``total`` slots (at least 1)."""
    if total is None:
        return 0
    return max(1, total // shards + (1 if shard < total % shards else 0))


async def _open_loop(
    plan: Plan,
    t0_ns: int,
    shard: int,
    shards: int,
    prepared: list[PreparedRequest],
    one: Callable[[RequestRecord, asyncio.Semaphore | None], Any],
) -> int:
    """Open loop: send this shard's requests at their scheduled offsets, at most
    ``concurrency`` (its share) at once; return when all have ended."""
    pool = len(prepared)
    gate = asyncio.Semaphore(_share(plan.concurrency, shard, shards)) if plan.concurrency else None
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    offsets = plan.offsets
    last_scheduled = 0
    for index in range(shard, len(offsets), shards):
        due = t0_ns + int(offsets[index] * 1e9)
        wait = (due - _perf_ns()) / 1e9
        if wait > 0:
            await asyncio.sleep(wait)
        record = RequestRecord(index, due, prepared[index % pool])
        record.worker = shard
        record.dispatched_ns = _perf_ns()
        last_scheduled = due
        task = loop.create_task(one(record, gate))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    return last_scheduled


async def _closed_loop(
    plan: Plan,
    t0_ns: int,
    shard: int,
    shards: int,
    end_by: int | None,
    prepared: list[PreparedRequest],
    one: Callable[[RequestRecord, asyncio.Semaphore | None], Any],
) -> int:
    """Closed loop: each of this shard's slots sends its next request when its last ended."""
    count = plan.count
    pool = len(prepared)
    state = {"next": shard, "last": 0}
    slots = [plan.slots[k] for k in range(shard, len(plan.slots), shards)] or [0.0]

    async def slot(opens_at: float) -> None:
        wait = (t0_ns + int(opens_at * 1e9) - _perf_ns()) / 1e9
        if wait > 0:
            await asyncio.sleep(wait)
        while True:
            index = state["next"]
            now = _perf_ns()
            if count is not None and index >= count:
                return
            if end_by is not None and now >= end_by:
                return
            state["next"] = index + shards
            record = RequestRecord(index, now, prepared[index % pool])
            record.worker = shard
            record.dispatched_ns = now
            state["last"] = now
            await one(record, None)

    await asyncio.gather(*(slot(at) for at in slots))
    return state["last"]


def prompt_pool(config: BenchConfig, plan: Plan) -> list[BenchPrompt]:
    """The prompts a run prepares: one per request, or :data:`POOL` reused in turn."""
    total = plan.total
    return build_prompts(config, min(total, MAX_PROMPTS) if total is not None else POOL)
