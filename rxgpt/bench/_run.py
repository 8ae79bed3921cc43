"""A whole run: resolve the target, draw the schedule, run the shards, build the report.

:func:`run` (blocking) and :func:`arun` (in a running loop) are the Python API that
``rxgpt bench`` is a thin layer over. With neither ``base_url`` nor ``api_key`` (nor the
provider's environment variables) the embedded server is started in a process of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import IO

from .._client import _from_env
from .._providers import get_provider
from ._config import BenchConfig
from ._embedded import EmbeddedServer
from ._metrics import Aggregate
from ._report import Report, build_report
from ._schedule import Plan, make_plan
from ._shard import Live, Target, prepare, prompt_pool, run_shard

__all__ = ["STREAMS_PER_WORKER", "arun", "auto_workers", "run"]

#: Streams one process times faithfully at the p99 (see docs/bench.md, "client health").
STREAMS_PER_WORKER = 256
#: The embedded server's model name.
EMBEDDED_MODEL = "rxgpt-mock"
#: Seconds between drawing t0 and the first send, so every process is ready.
START_DELAY = 0.05


def auto_workers(config: BenchConfig, plan: Plan) -> int:
    """Processes for the load: one per :data:`STREAMS_PER_WORKER` expected streams,
    at most one fewer than the CPUs (at least 1, at most 32)."""
    if config.workers is not None:
        return config.workers
    if plan.concurrency is not None:
        streams = plan.concurrency
    elif plan.kind == "burst":
        streams = plan.count or 1
    else:
        # open loop: the rate times a guess of how long a request lasts (30 ms a token)
        streams = int(config.request_rate * config.output_len * 0.03) + 1
    cap = max(1, min(32, (os.cpu_count() or 2) - 1))
    return max(1, min(cap, math.ceil(streams / STREAMS_PER_WORKER)))


@contextlib.asynccontextmanager
async def _target(config: BenchConfig, max_output: int) -> AsyncIterator[Target]:
    provider = get_provider(config.provider)
    base_url = config.base_url or _from_env(provider.base_url_env)
    api_key = config.api_key or _from_env(provider.api_key_env)
    if base_url is not None or api_key is not None:
        yield Target(
            (base_url or provider.default_base_url).rstrip("/"),
            api_key,
            config.model or provider.default_model,
        )
        return
    loop = asyncio.get_running_loop()
    server: EmbeddedServer | None = None
    done = False
    try:
        server = EmbeddedServer(max_output, config.mock_ttft_ms, config.mock_itl_ms)
        server.start()  # (a Ctrl+C raised as it starts finds ``server``: killed below)
        origin = await loop.run_in_executor(None, server.wait)
        yield Target(
            provider.base_url_at(origin),
            "sk-embedded",
            config.model or EMBEDDED_MODEL,
            embedded=True,
        )
        done = True
    finally:
        if server is None:
            pass
        elif done:
            await loop.run_in_executor(None, server.stop)
        else:  # interrupted (Ctrl+C cancels the run) or failed: no waiting
            server.kill()


async def arun(
    config: BenchConfig,
    *,
    live: Live | None = None,
    on_start: Callable[[Target, int], None] | None = None,
) -> Report:
    """Run the benchmark ``config`` describes, in the running event loop; return its report.

    ``live`` receives progress (a dashboard reads it); ``on_start(target, workers)`` is
    called once the target is known. Raises ValueError (a config or dataset mistake) or
    rxgpt's :class:`~rxgpt.TransportError` (the embedded server could not start); a
    request's own failure is counted in the report, never raised.
    """
    from .. import __version__

    plan = make_plan(config)
    prompts = prompt_pool(config, plan)
    max_output = max(p.output_tokens for p in prompts)
    workers = auto_workers(config, plan)
    date = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    async with _target(config, max_output) as target:
        if on_start is not None:
            on_start(target, workers)
        prepared = prepare(config, target, prompts)
        detailed: IO[str] | None = None
        if config.save_detailed and workers == 1:
            detailed = open(config.save_detailed, "w", encoding="utf-8")  # noqa: SIM115
        try:
            if workers == 1:
                t0 = time.perf_counter_ns() + int(START_DELAY * 1e9)
                shard = await run_shard(config, plan, prepared, t0, live=live, detailed=detailed)
                agg, healths, excluded = shard.aggregate, [shard.health], shard.excluded
                start, end = shard.dispatch_start_ns, shard.end_ns
            else:
                from ._workers import run_workers

                merged = await run_workers(config, plan, target, workers, live)
                agg, healths, excluded, start, end = merged
        finally:
            if detailed is not None:
                detailed.close()
    return build_report(
        config,
        agg,
        healths,
        dispatch_start_ns=start,
        end_ns=end,
        model=target.model,
        base_url=target.base_url,
        workers=workers,
        excluded=excluded,
        date=date,
        version=__version__,
        embedded=target.embedded,
    )


def run(config: BenchConfig) -> Report:
    """Run the benchmark ``config`` describes and return its :class:`Report` (blocking).

    Example::

        from rxgpt.bench import BenchConfig, run
        report = run(BenchConfig(num_prompts=100, max_concurrency=16))
        print(report["median_ttft_ms"], report.flagged)
    """
    return asyncio.run(arun(config))


_ = Aggregate  # re-exported type of the merged aggregate (workers)
