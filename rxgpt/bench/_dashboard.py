"""Live progress while a run lasts: a rich dashboard on a TTY, plain lines otherwise.

The dashboard reads the run's :class:`~rxgpt.bench._shard.Live` counters (in flight, done,
failed, recent TTFT / ITL, tokens/s, event-loop lag) twice a second; its percentiles come
from the last few thousand samples only, so a refresh stays cheap beside the requests it
must not delay. Progress goes to stderr, so the final table on stdout stays clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import IO, Any

from .._secrets import redact
from ._config import BenchConfig
from ._report import Report
from ._run import arun
from ._shard import Live, Target

__all__ = ["progress_line", "run_with_progress"]

_WINDOW_NS = 10_000_000_000  # rolling percentiles over the last 10 s


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def _figures(live: Live, total: int | None) -> dict[str, Any]:
    now = time.perf_counter_ns()
    since = now - _WINDOW_NS
    ttft = [v for t, v in live.ttft if t >= since]
    itl = [v for t, v in live.itl if t >= since]
    recent = now - 2_000_000_000
    tokens = sum(k for t, k in live.token_times if t >= recent) / 2.0
    lag = list(live.lag)
    return {
        "done": live.done,
        "total": total,
        "failed": live.failed,
        "inflight": live.inflight,
        "ttft50": _pct(ttft, 50),
        "ttft99": _pct(ttft, 99),
        "itl50": _pct(itl, 50),
        "itl99": _pct(itl, 99),
        "tok_s": tokens,
        "lag99": _pct(lag, 99),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def progress_line(live: Live, total: int | None) -> str:
    """One plain progress line (what a non-TTY shows every few seconds)."""
    f = _figures(live, total)
    of = f"/{f['total']}" if f["total"] else ""
    return (
        f"rxgpt bench: {f['done']}{of} done, {f['failed']} failed, {f['inflight']} in flight, "
        f"{f['tok_s']:.0f} tok/s, TTFT p50/p99 {_ms(f['ttft50'])}/{_ms(f['ttft99'])} ms, "
        f"ITL p50/p99 {_ms(f['itl50'])}/{_ms(f['itl99'])} ms, loop lag p99 {_ms(f['lag99'])} ms"
    )


def _panel(live: Live, total: int | None, title: str) -> Any:
    from rich.panel import Panel
    from rich.table import Table

    f = _figures(live, total)
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold")
    table.add_column()
    done = f"{f['done']}" + (f" / {f['total']}" if f["total"] else "")
    table.add_row("done", done)
    table.add_row("failed", str(f["failed"]))
    table.add_row("in flight", str(f["inflight"]))
    table.add_row("tokens/s", f"{f['tok_s']:.0f}")
    table.add_row("TTFT p50 / p99", f"{_ms(f['ttft50'])} / {_ms(f['ttft99'])} ms")
    table.add_row("ITL p50 / p99", f"{_ms(f['itl50'])} / {_ms(f['itl99'])} ms")
    lag = f["lag99"]
    style = "red" if lag is not None and lag > 10 else "green"
    table.add_row("client loop lag p99", f"[{style}]{_ms(lag)} ms[/{style}]")
    return Panel(table, title=title, expand=False)


async def run_with_progress(config: BenchConfig, out: IO[str] | None = None) -> Report:
    """:func:`~rxgpt.bench.arun` with live progress on ``out`` (stderr); none when
    ``config.progress`` is off."""
    stream = out or sys.stderr
    live = Live()
    from ._schedule import make_plan

    total = make_plan(config).total
    title = "rxgpt bench"

    def started(target: Target, workers: int) -> None:
        nonlocal title
        where = "the embedded server" if target.embedded else redact(target.base_url)
        title = f"rxgpt bench → {where} ({workers} worker{'s' if workers > 1 else ''})"
        if target.embedded:
            stream.write(
                f"rxgpt bench: no API configured: benchmarking the embedded server at "
                f"{target.base_url} (pass --base-url and --api-key for a real server)\n"
            )

    if not config.progress:
        return await arun(config, live=live, on_start=started)
    task = asyncio.get_running_loop().create_task(arun(config, live=live, on_start=started))
    rich_live = None
    if stream.isatty():
        with contextlib.suppress(ImportError):
            from rich.console import Console
            from rich.live import Live as RichLive

            rich_live = RichLive(
                console=Console(file=stream),
                refresh_per_second=2,
                transient=True,
                auto_refresh=False,
            )
    try:
        if rich_live is not None:
            with rich_live:
                while not task.done():
                    rich_live.update(_panel(live, total, title), refresh=True)
                    await asyncio.wait({task}, timeout=0.5)
        else:
            while not task.done():
                await asyncio.wait({task}, timeout=5.0)
                if not task.done() and live.sent:
                    stream.write(progress_line(live, total) + "\n")
                    stream.flush()
        return await task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
