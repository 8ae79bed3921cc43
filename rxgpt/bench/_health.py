"""Measuring the measurer: was the client itself fast enough to time the server right?

:class:`HealthMonitor` runs beside the requests of one process: a ticker that asks the event
loop to wake it every ``interval`` and records how late it woke (loop lag: every chunk
timestamp can be late by as much), and the process's CPU time over the run. The request
records add dispatch lateness (how late requests left against their schedule), the parse
delay (from a read's stamp to its decoding: the error a tool that stamps after parsing would
make) and read coalescing (output chunks that arrived in the same network read as the chunk
before: a client that reads late sees gaps collapse to zero and the next one swell).

:func:`assess` turns one process's figures into a :class:`Health` with the reasons, if any,
for which the run is **flagged**: its figures may have been distorted by the client.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from ._config import HealthLimits
from ._stats import Histogram

__all__ = ["Health", "HealthMonitor", "assess"]


class HealthMonitor:
    """Event-loop lag and CPU of this process while a run lasts (``async with``)."""

    def __init__(
        self, interval: float = 0.005, recent: collections.deque[float] | None = None
    ) -> None:
        self.interval = interval
        #: The latest lags (ms), for a live dashboard.
        self.recent = recent if recent is not None else collections.deque(maxlen=400)
        self.lag = Histogram()
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = 0.0
        self._wall0 = 0.0
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval
        while True:
            due = loop.time() + interval
            await asyncio.sleep(interval)
            lag = max(loop.time() - due, 0.0) * 1000.0
            self.lag.record(lag)
            self.recent.append(lag)

    async def __aenter__(self) -> HealthMonitor:
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.cpu_seconds = time.process_time() - self._cpu0
        self.wall_seconds = time.perf_counter() - self._wall0

    @property
    def cpu_fraction(self) -> float:
        """CPU time over wall time: the fraction of one core the process used."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


@dataclass(slots=True)
class Health:
    """One process's client health, and whether (and why) it flags the run."""

    worker: int
    loop_lag_p50_ms: float | None
    loop_lag_p99_ms: float | None
    loop_lag_max_ms: float | None
    cpu_fraction: float
    dispatch_lateness_p99_ms: float | None
    parse_delay_p99_ms: float | None
    coalesced_fraction: float
    streams: int
    flagged: bool = False
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the report's ``client_health.workers`` entries."""
        return {
            "worker": self.worker,
            "flagged": self.flagged,
            "reasons": list(self.reasons),
            "loop_lag_p50_ms": self.loop_lag_p50_ms,
            "loop_lag_p99_ms": self.loop_lag_p99_ms,
            "loop_lag_max_ms": self.loop_lag_max_ms,
            "cpu_fraction": round(self.cpu_fraction, 4),
            "dispatch_lateness_p99_ms": self.dispatch_lateness_p99_ms,
            "parse_delay_p99_ms": self.parse_delay_p99_ms,
            "coalesced_fraction": round(self.coalesced_fraction, 4),
            "max_streams": self.streams,
        }


def assess(
    worker: int,
    lag: Histogram,
    cpu_fraction: float,
    lateness: Histogram,
    parse_delay: Histogram,
    chunks: int,
    coalesced: int,
    streams: int,
    limits: HealthLimits,
    open_loop: bool,
) -> Health:
    """Judge one process's figures against ``limits`` (see :class:`HealthLimits`)."""
    lag_p99 = lag.percentile(99)
    late_p99 = lateness.percentile(99)
    gaps = max(chunks, 1)
    health = Health(
        worker=worker,
        loop_lag_p50_ms=lag.percentile(50),
        loop_lag_p99_ms=lag_p99,
        loop_lag_max_ms=lag.max if lag.count else None,
        cpu_fraction=cpu_fraction,
        dispatch_lateness_p99_ms=late_p99,
        parse_delay_p99_ms=parse_delay.percentile(99),
        coalesced_fraction=coalesced / gaps,
        streams=streams,
    )
    reasons = health.reasons
    if lag_p99 is not None and lag_p99 > limits.loop_lag_p99_ms:
        reasons.append(
            f"worker {worker}: event-loop lag p99 {lag_p99:.1f} ms > {limits.loop_lag_p99_ms:g} ms"
            " (chunk timestamps may be late by as much)"
        )
    if cpu_fraction > limits.cpu_fraction:
        reasons.append(
            f"worker {worker}: client CPU {cpu_fraction:.0%} of a core > "
            f"{limits.cpu_fraction:.0%} (the client may be the bottleneck; add --workers)"
        )
    if open_loop and late_p99 is not None and late_p99 > limits.dispatch_lateness_p99_ms:
        reasons.append(
            f"worker {worker}: requests left up to {late_p99:.1f} ms (p99) after their "
            f"scheduled time > {limits.dispatch_lateness_p99_ms:g} ms (the offered load "
            "was lower than asked)"
        )
    if (
        health.coalesced_fraction > limits.coalesced_fraction
        and lag_p99 is not None
        and lag_p99 > limits.coalesced_lag_ms
    ):
        reasons.append(
            f"worker {worker}: {health.coalesced_fraction:.0%} of chunks shared a network read "
            f"with the chunk before while the loop lagged (p99 {lag_p99:.1f} ms): chunk gaps "
            "are blurred"
        )
    health.flagged = bool(reasons)
    return health
