"""The schedule generator: rate, exponential gaps, burstiness, ramp-up, closed-loop slots."""

from __future__ import annotations

import math
import statistics

import pytest

from rxgpt.bench import BenchConfig
from rxgpt.bench._schedule import arrival_offsets, make_plan, slot_offsets


def _ks_exponential(gaps: list[float], rate: float) -> float:
    """The Kolmogorov–Smirnov statistic of ``gaps`` against Exp(rate)."""
    xs = sorted(gaps)
    n = len(xs)
    d = 0.0
    for i, x in enumerate(xs):
        cdf = 1.0 - math.exp(-rate * x)
        d = max(d, cdf - i / n, (i + 1) / n - cdf)
    return d


@pytest.mark.parametrize("rate", [5.0, 50.0, 400.0])
def test_poisson_rate_matches_within_2_percent_over_1000_requests(rate: float) -> None:
    offsets = arrival_offsets(rate, 1.0, seed=0, count=1000)
    assert len(offsets) == 1000
    achieved = len(offsets) / offsets[-1]
    assert abs(achieved - rate) / rate < 0.02
    unscaled = arrival_offsets(rate, 1.0, seed=0, count=1000, rescale=False)
    assert abs(1000 / unscaled[-1] - rate) / rate < 0.1  # the draw itself, before rescaling


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_gaps_are_exponential(seed: int) -> None:
    rate = 20.0
    offsets = arrival_offsets(rate, 1.0, seed=seed, count=1000)
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    fitted = len(gaps) / sum(gaps)
    d = _ks_exponential(gaps, fitted)
    assert d < 1.36 / math.sqrt(len(gaps))  # KS at the 5 % level
    # ... and it would reject gaps that are not exponential
    assert _ks_exponential([1 / rate] * 1000, rate) > 1.36 / math.sqrt(1000)
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps)
    assert 0.9 < cv < 1.1  # an exponential's coefficient of variation is 1


def test_burstiness_shapes_the_gaps() -> None:
    def cv(b: float) -> float:
        offsets = arrival_offsets(10.0, b, seed=3, count=2000)
        gaps = [y - x for x, y in zip([0.0, *offsets], offsets, strict=False)]
        return statistics.pstdev(gaps) / statistics.fmean(gaps)

    assert cv(0.25) > 1.5  # gamma shape k: cv = 1/sqrt(k) = 2
    assert cv(4.0) < 0.6
    assert cv(math.inf) < 1e-9  # constant spacing


def test_schedule_is_the_same_for_the_same_seed() -> None:
    assert arrival_offsets(7.0, 1.0, 5, count=50) == arrival_offsets(7.0, 1.0, 5, count=50)
    assert arrival_offsets(7.0, 1.0, 5, count=50) != arrival_offsets(7.0, 1.0, 6, count=50)


def test_duration_bounded_schedule_and_ramp_up() -> None:
    offsets = arrival_offsets(100.0, 1.0, 0, duration=10.0)
    assert all(t < 10.0 for t in offsets)
    assert 900 < len(offsets) < 1100
    ramped = arrival_offsets(100.0, math.inf, 0, duration=10.0, ramp_up=4.0)
    early = sum(1 for t in ramped if t < 2.0)  # ∫0..2 of 100·t/4 dt = 50
    late = sum(1 for t in ramped if 8.0 <= t < 10.0)  # full rate: 200
    assert 45 <= early <= 55 and 195 <= late <= 205


def test_plans() -> None:
    assert make_plan(BenchConfig(num_prompts=5)).kind == "burst"
    closed = make_plan(BenchConfig(num_prompts=5, max_concurrency=2, ramp_up=1.0))
    assert closed.kind == "closed" and closed.slots == (0.0, 0.5)
    capped = make_plan(BenchConfig(num_prompts=5, request_rate=10, max_concurrency=2))
    assert capped.kind == "open" and capped.concurrency == 2 and len(capped.offsets) == 5
    assert slot_offsets(3, 0) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="duration"):
        make_plan(BenchConfig(duration=5))
