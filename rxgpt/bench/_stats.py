"""Bounded-memory statistics: a streaming histogram plus exact moments, and their summaries.

:class:`Histogram` records durations (in milliseconds, stored as integer microseconds) into an
HdrHistogram when the ``hist`` extra is installed (``hdrhistogram``), else into a log-bucketed
dict of the same accuracy (3 significant digits). Memory stays bounded whatever the run's
length; count, sum, sum of squares, min and max are kept exactly beside it, so the mean and
standard deviation are exact and only percentiles carry the histogram's 0.1 % resolution.
Histograms merge (:meth:`Histogram.merge`) and travel between processes as plain data
(:meth:`Histogram.to_state` / :meth:`Histogram.from_state`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_PERCENTILES", "Histogram", "Summary", "percentile_key"]

#: The percentiles every metric reports unless told otherwise.
DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)

_HIGHEST_US = 24 * 3600 * 1_000_000  # one day, in microseconds
_LOG_STEP = math.log1p(0.001)  # the fallback's bucket width: 0.1 % relative

_Hdr: Any = None
try:  # the ``hist`` extra
    from hdrh import histogram as _hdrh  # type: ignore[import-untyped]

    _Hdr = _hdrh.HdrHistogram
except ImportError:  # pragma: no cover - exercised only without the extra
    pass


def percentile_key(p: float) -> str:
    """The percentile's name as vLLM writes it: 99 → ``"99"``, 99.9 → ``"99.9"``."""
    return str(int(p)) if float(p).is_integer() else str(p)


class _LogBuckets:
    """HdrHistogram's job without the dependency: counts per 0.1 %-wide log bucket."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def record(self, value_us: int, count: int) -> None:
        key = 0 if value_us <= 0 else 1 + int(math.log(value_us) / _LOG_STEP)
        self.counts[key] = self.counts.get(key, 0) + count

    @staticmethod
    def _value(key: int) -> float:
        if key == 0:
            return 0.0
        return math.exp((key - 0.5) * _LOG_STEP)  # the bucket's middle

    def at_percentile(self, p: float, total: int) -> float:
        target = max(1, math.ceil(total * p / 100.0))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= target:
                return self._value(key)
        return self._value(max(self.counts)) if self.counts else 0.0

    def items(self) -> Iterable[tuple[float, int]]:
        for key in sorted(self.counts):
            yield self._value(key), self.counts[key]

    def merge(self, other: _LogBuckets) -> None:
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count


class Histogram:
    """The distribution of one metric (values in ms), in bounded memory, mergeable.

    ``record(ms, count)`` adds ``count`` observations of ``ms`` (a weight: per-token ITL
    records a chunk's per-token gap once per token). Values below 1 µs count as 0.
    """

    __slots__ = ("_buckets", "_cache", "_hdr", "_zero", "count", "max", "min", "sum", "sumsq")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.sumsq = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._hdr: Any = _Hdr(1, _HIGHEST_US, 3) if _Hdr is not None else None
        self._buckets = _LogBuckets() if _Hdr is None else None
        self._zero = 0  # observations below 1 µs (HdrHistogram's lowest value is 1)
        self._cache: tuple[tuple[int, int], list[int], list[float]] | None = None

    def record(self, ms: float, count: int = 1) -> None:
        """Add ``count`` observations of the value ``ms`` (milliseconds, ≥ 0)."""
        if count <= 0 or ms != ms:  # NaN is never recorded
            return
        ms = max(ms, 0.0)
        self.count += count
        self.sum += ms * count
        self.sumsq += ms * ms * count
        self.min = min(ms, self.min)
        self.max = max(ms, self.max)
        us = min(int(ms * 1000.0 + 0.5), _HIGHEST_US)
        if self._hdr is not None:
            if us >= 1:
                self._hdr.record_value(us, count)
            else:
                self._zero += count
        else:
            assert self._buckets is not None
            self._buckets.record(us, count)

    def extend(self, values: Iterable[float]) -> None:
        """Record each of ``values`` once."""
        self.record_many(list(values))

    def record_many(self, values: Sequence[float], weights: Sequence[int] | None = None) -> None:
        """Record ``values`` (ms), each ``weights[i]`` times (default once): one request's
        gaps at a time, several times cheaper than :meth:`record` per value."""
        if not values:
            return
        if weights is None:
            n = len(values)
            total = math.fsum(values)
            squares = math.fsum(v * v for v in values)
            pairs: Iterable[tuple[float, int]] = ((v, 1) for v in values)
        else:
            n = sum(weights)
            total = math.fsum(v * w for v, w in zip(values, weights, strict=True))
            squares = math.fsum(v * v * w for v, w in zip(values, weights, strict=True))
            pairs = zip(values, weights, strict=True)
        if n <= 0:
            return
        low, high = min(values), max(values)
        if low != low or high != high:  # a NaN among them: the slow path skips it
            for v, w in zip(values, weights or [1] * len(values), strict=True):
                self.record(v, w)
            return
        self.count += n
        self.sum += total
        self.sumsq += squares
        self.min = min(max(low, 0.0), self.min)
        self.max = max(max(high, 0.0), self.max)
        hdr = self._hdr
        if hdr is None:
            assert self._buckets is not None
            for v, w in pairs:
                self._buckets.record(min(int(v * 1000.0 + 0.5), _HIGHEST_US), w)
            return
        # HdrHistogram's own index arithmetic (record_value's), inlined for a batch
        mask = hdr.sub_bucket_mask
        unit = hdr.unit_magnitude
        half_mag = hdr.sub_bucket_half_count_magnitude
        half = hdr.sub_bucket_half_count
        shift = unit + half_mag + 1
        counts = hdr.counts
        zero = 0
        if weights is None:
            for v in values:
                us = int(v * 1000.0 + 0.5)
                if us < 1:
                    zero += 1
                    continue
                if us > _HIGHEST_US:
                    us = _HIGHEST_US
                bucket = (us | mask).bit_length() - shift
                counts[((bucket + 1) << half_mag) + (us >> (bucket + unit)) - half] += 1
        else:
            for v, w in pairs:
                us = int(v * 1000.0 + 0.5)
                if us < 1:
                    zero += w
                    continue
                if us > _HIGHEST_US:
                    us = _HIGHEST_US
                bucket = (us | mask).bit_length() - shift
                counts[((bucket + 1) << half_mag) + (us >> (bucket + unit)) - half] += w
        self._zero += zero
        if n > zero:
            hdr.total_count += n - zero
            hdr.min_value = min(hdr.min_value, max(int(low * 1000.0 + 0.5), 1))
            hdr.max_value = max(hdr.max_value, min(int(high * 1000.0 + 0.5), _HIGHEST_US))

    @property
    def mean(self) -> float | None:
        """The exact mean, or None when empty."""
        return self.sum / self.count if self.count else None

    @property
    def std(self) -> float | None:
        """The exact (population) standard deviation, as numpy's and vLLM's ``std``."""
        if not self.count:
            return None
        mean = self.sum / self.count
        return math.sqrt(max(self.sumsq / self.count - mean * mean, 0.0))

    def percentile(self, p: float) -> float | None:
        """The value at percentile ``p`` (0–100), to 0.1 %; None when empty."""
        if not self.count:
            return None
        if p <= 0:
            return float(self.min)
        if p >= 100:
            return float(self.max)
        if self._hdr is not None:
            zeros = self._zero
            target = math.ceil(self.count * p / 100.0)
            if target <= zeros:
                return 0.0
            cumulative, middles = self._cdf()
            if not cumulative:
                return float(self.max)
            i = bisect.bisect_left(cumulative, target - zeros)
            value = middles[min(i, len(middles) - 1)]
        else:
            assert self._buckets is not None
            value = self._buckets.at_percentile(p, self.count) / 1000.0
        return float(min(max(value, self.min), self.max))

    def _cdf(self) -> tuple[list[int], list[float]]:
        """Cumulative counts and bucket middles (ms) of the recorded HDR buckets, cached
        until the next record: every percentile of a summary from one pass."""
        hdr = self._hdr
        key = (hdr.total_count, self.count)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        cumulative: list[int] = []
        middles: list[float] = []
        total = 0
        counts = hdr.counts
        for index in range(hdr.counts_len):
            c = counts[index]
            if c:
                total += c
                cumulative.append(total)
                low = hdr.get_value_from_index(index)
                high = hdr.get_highest_equivalent_value(low)
                middles.append((low + high) / 2000.0)
        self._cache = (key, cumulative, middles)
        return cumulative, middles

    def buckets(self) -> list[tuple[float, int]]:
        """(value in ms, count) pairs in value order: for plots."""
        if self._hdr is not None:
            out = [(0.0, self._zero)] if self._zero else []
            for item in self._hdr.get_recorded_iterator():
                out.append((item.value_iterated_to / 1000.0, item.count_at_value_iterated_to))
            return out
        assert self._buckets is not None
        return [(v / 1000.0, c) for v, c in self._buckets.items()]

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s observations to this histogram."""
        if not other.count:
            return
        self.count += other.count
        self.sum += other.sum
        self.sumsq += other.sumsq
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        if self._hdr is not None and other._hdr is not None:
            self._hdr.add(other._hdr)
            self._zero += other._zero
        elif self._buckets is not None and other._buckets is not None:
            self._buckets.merge(other._buckets)
        else:  # pragma: no cover - both sides use the same backend in one install
            raise TypeError("cannot merge histograms of different backends")

    def to_state(self) -> dict[str, Any]:
        """Plain data (picklable, JSON-ready) that :meth:`from_state` rebuilds."""
        state: dict[str, Any] = {
            "count": self.count,
            "sum": self.sum,
            "sumsq": self.sumsq,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }
        if self._hdr is not None:
            state["hdr"] = self._hdr.encode().decode() if self._hdr.get_total_count() else ""
            state["zero"] = self._zero
        else:
            assert self._buckets is not None
            state["buckets"] = dict(self._buckets.counts)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Histogram:
        """The histogram that :meth:`to_state` described."""
        hist = cls()
        hist.count = int(state["count"])
        hist.sum = float(state["sum"])
        hist.sumsq = float(state["sumsq"])
        hist.min = math.inf if state["min"] is None else float(state["min"])
        hist.max = -math.inf if state["max"] is None else float(state["max"])
        if hist._hdr is not None:
            if state.get("hdr"):
                hist._hdr.decode_and_add(state["hdr"])
            hist._zero = int(state.get("zero", 0))
        else:
            assert hist._buckets is not None
            hist._buckets.counts = {int(k): int(v) for k, v in state["buckets"].items()}
        return hist

    def summary(self, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> Summary:
        """The statistics of this histogram."""
        median = self.percentile(50.0)
        return Summary(
            count=self.count,
            mean=self.mean,
            std=self.std,
            median=median,
            min=self.min if self.count else None,
            max=self.max if self.count else None,
            percentiles={percentile_key(p): self.percentile(p) for p in percentiles},
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """One metric's statistics (ms): count, mean, std, median, min, max, percentiles."""

    count: int
    mean: float | None
    std: float | None
    median: float | None
    min: float | None
    max: float | None
    percentiles: dict[str, float | None]

    def fields(self, metric: str) -> dict[str, float | None]:
        """vLLM's field names for ``metric``: ``mean_ttft_ms``, ``p99_ttft_ms``..."""
        out: dict[str, float | None] = {
            f"mean_{metric}_ms": self.mean,
            f"median_{metric}_ms": self.median,
            f"std_{metric}_ms": self.std,
        }
        for key, value in self.percentiles.items():
            out[f"p{key}_{metric}_ms"] = value
        return out
