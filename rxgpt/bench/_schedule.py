"""When each request is due: the whole schedule drawn up front, before the first send.

Open loop (a finite ``request_rate`` R): gaps between arrivals are Gamma(shape=B,
scale=1/(R·B)) for ``burstiness`` B (B = 1: a Poisson process, exponential gaps; B < 1
burstier; B = ∞ evenly spaced), from ``random.Random(seed)``, so the same seed gives the
same schedule in every process. As vLLM does, a count-bounded schedule is rescaled so the
last arrival lands exactly at N/R, which removes the seed-to-seed spread of the achieved
rate. ``ramp_up`` T raises the rate linearly from 0 to R over T seconds (arrival times are
the unit-rate process mapped through the inverse of the cumulative rate).

Closed loop (infinite rate with ``max_concurrency`` C): C slots, each sending its next
request when its last one ended; with ``ramp_up`` the slots open one by one over T.
Infinite rate and no cap sends every request at t = 0 (vLLM's default, "throughput").
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from ._config import MAX_REQUESTS, BenchConfig

__all__ = ["MAX_SCHEDULED", "Plan", "arrival_offsets", "make_plan", "slot_offsets"]

#: The most arrivals a duration-bounded open-loop schedule holds: the config refuses a
#: duration x rate that expects more than :data:`MAX_REQUESTS`; a draw may hold more than
#: it expects (a bursty gamma process), and this bound (10 times as many) is what ends it.
MAX_SCHEDULED = 10 * MAX_REQUESTS


def _unit_gaps(rng: random.Random, burstiness: float) -> float:
    """One gap of a rate-1 renewal process with the given gamma shape."""
    if math.isinf(burstiness):
        return 1.0
    return rng.gammavariate(burstiness, 1.0 / burstiness)


def _ramped(u: float, rate: float, ramp_up: float) -> float:
    """The time at which the cumulative arrivals of a linear ramp to ``rate`` reach ``u``."""
    if ramp_up <= 0:
        return u / rate
    reach = rate * ramp_up / 2.0  # arrivals expected during the ramp
    if u <= reach:
        return math.sqrt(2.0 * ramp_up * u / rate)
    return ramp_up + (u - reach) / rate


def arrival_offsets(
    rate: float,
    burstiness: float,
    seed: int,
    *,
    count: int | None = None,
    duration: float | None = None,
    ramp_up: float = 0.0,
    rescale: bool = True,
) -> list[float]:
    """Arrival times (seconds from the start) of ``count`` requests, or of all before ``duration``.

    The first request is due at its first gap, as in vLLM. ``rescale`` (count-bounded
    schedules without ramp-up) stretches the schedule so the last arrival is at count/rate.
    """
    if count is None and duration is None:
        raise ValueError("a schedule needs a count or a duration")
    rng = random.Random(seed)
    out: list[float] = []
    u = 0.0
    limit = count if count is not None else MAX_SCHEDULED
    while len(out) < limit:
        u += _unit_gaps(rng, burstiness)
        t = _ramped(u, rate, ramp_up)
        if duration is not None and t >= duration:
            break
        out.append(t)
    if count is not None and rescale and ramp_up <= 0 and out and out[-1] > 0:
        factor = (count / rate) / out[-1]
        out = [t * factor for t in out]
    return out


def slot_offsets(concurrency: int, ramp_up: float) -> list[float]:
    """When each closed-loop slot opens: all at once, or evenly over ``ramp_up`` seconds."""
    if ramp_up <= 0 or concurrency <= 1:
        return [0.0] * concurrency
    return [ramp_up * k / concurrency for k in range(concurrency)]


@dataclass(frozen=True, slots=True)
class Plan:
    """The load of one run, drawn up front.

    ``kind``: ``"open"`` (``offsets`` give each request's due time; ``concurrency``, if set,
    caps requests in flight), ``"closed"`` (``concurrency`` slots open at ``slots``), or
    ``"burst"`` (everything at t = 0). ``count`` requests in all, or as many as fit in
    ``duration`` seconds when count is None.
    """

    kind: Literal["open", "closed", "burst"]
    count: int | None
    duration: float | None
    offsets: tuple[float, ...] = ()
    concurrency: int | None = None
    slots: tuple[float, ...] = ()

    @property
    def total(self) -> int | None:
        """How many requests are due in all (None: as many as fit in the duration)."""
        if self.kind == "open":
            return len(self.offsets)
        return self.count


def make_plan(config: BenchConfig) -> Plan:
    """The schedule ``config`` asks for."""
    count = config.prompt_count
    if math.isfinite(config.request_rate):
        offsets = arrival_offsets(
            config.request_rate,
            config.burstiness,
            config.seed,
            count=count,
            duration=config.duration if count is None else None,
            ramp_up=config.ramp_up,
        )
        return Plan("open", count, config.duration, tuple(offsets), config.max_concurrency)
    if config.max_concurrency is not None:
        slots = slot_offsets(config.max_concurrency, config.ramp_up)
        return Plan("closed", count, config.duration, (), config.max_concurrency, tuple(slots))
    if count is None:
        raise ValueError(
            "a --duration run needs a finite --request-rate or a --max-concurrency "
            "(an infinite rate with no cap sends a fixed number of requests at once)"
        )
    if config.ramp_up > 0:
        offsets = [config.ramp_up * i / count for i in range(count)]
        return Plan("open", count, None, tuple(offsets), None)
    return Plan("burst", count, None, (0.0,) * count, None)
