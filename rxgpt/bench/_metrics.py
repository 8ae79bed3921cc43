"""Per-request metrics from a :class:`~rxgpt.bench._client.RequestRecord`, and their totals.

Definitions (all from the time the request's bytes were written, unless "from scheduled"):

* **TTFT**: the first chunk carrying output tokens (content, reasoning, refusal or tool
  call); a role-only chunk carries none. **TTFC**: the first answer chunk (not reasoning).
* **E2EL**: the last output chunk (a trailing usage chunk does not extend it; vLLM's).
* **Output tokens**: the stream's usage, else the number of output chunks (each ≥ 1 token).
* **TPOT**: (E2EL − TTFT) / (output tokens − 1), requests with more than one token (vLLM's).
* **ITL**: the gaps between consecutive output chunks, pooled over requests (vLLM's).
* **Token ITL**: each gap divided by the tokens of the chunk that ends it, counted once per
  token, so a 4-token chunk 40 ms after the last gives four 10 ms values. A chunk's tokens
  come from per-chunk usage when the server sent it; else one per chunk when the usage total
  equals the chunk count; else the total split evenly (the last chunk taking the remainder)
  when that fits; else in proportion to each chunk's text length.
* **Client queue time**: from the scheduled time to the concurrency cap letting it through
  (vLLM's ``client_queue_time``); **client wait**: scheduled to written; **dispatch
  lateness**: scheduled to the dispatcher reaching it; **TTFT / E2EL from scheduled**: the
  same ends, timed from the scheduled start, so a late client cannot hide server delay
  (no coordinated omission).
* A request **failed** with its rxgpt error type, or ``"no output"`` when a 2xx stream
  carried no output chunk (vLLM counts that as a failure too).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import HTTPStatusError, RxgptError, StreamTimeout
from ._client import RequestRecord
from ._stats import Histogram

__all__ = [
    "LATENCY_METRICS",
    "Aggregate",
    "RequestResult",
    "error_kind",
    "finalize",
    "split_tokens",
]

#: Every latency metric kept as a histogram (ms), in report order.
LATENCY_METRICS = (
    "ttft",
    "ttfc",
    "tpot",
    "itl",
    "token_itl",
    "e2el",
    "client_queue_time",
    "e2el_including_client_queue",
    "client_wait",
    "dispatch_lateness",
    "ttft_from_scheduled",
    "e2el_from_scheduled",
)

_MS = 1e-6
#: Width of the in-flight sweep's buckets.
_INFLIGHT_NS = 10_000_000


def error_kind(error: RxgptError | None) -> str:
    """A failure's class for the report: ``"HTTP 503"``, ``"timeout (total)"``, a type name."""
    if error is None:
        return "no output"
    if isinstance(error, HTTPStatusError):
        return f"HTTP {error.status}"
    if isinstance(error, StreamTimeout):
        return f"timeout ({error.phase})"
    return type(error).__name__


def split_tokens(
    total: int | None, per_chunk: Sequence[int], chars: Sequence[int]
) -> tuple[list[int], str]:
    """Each chunk's tokens, and how they were found (see the module docstring)."""
    n = len(per_chunk)
    if n == 0:
        return [], "none"
    if all(t >= 0 for t in per_chunk) and sum(per_chunk) > 0:
        return list(per_chunk), "usage per chunk"
    if total is None or total == n:
        return [1] * n, "one per chunk"
    if total < n:
        return _by_length(total, chars), "by text length"
    k = math.ceil(total / n)
    if (n - 1) * k < total <= n * k:
        return [k] * (n - 1) + [total - (n - 1) * k], "even split"
    return _by_length(total, chars), "by text length"


def _by_length(total: int, chars: Sequence[int]) -> list[int]:
    """``total`` shared in proportion to ``chars`` (largest remainders), at least 1 each
    while there are tokens enough."""
    n = len(chars)
    weights = [max(c, 1) for c in chars]
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    out = [int(r) for r in raw]
    left = total - sum(out)
    order = sorted(range(n), key=lambda i: raw[i] - out[i], reverse=True)
    for i in order[:left]:
        out[i] += 1
    return out


@dataclass(slots=True)
class RequestResult:
    """One request's metrics (ms; None where not applicable)."""

    index: int
    ok: bool
    error: str | None
    scheduled_ns: int
    sent_ns: int
    end_ns: int
    input_tokens: int
    output_tokens: int
    output_tokens_source: str
    token_split: str
    ttft: float | None = None
    ttfc: float | None = None
    e2el: float | None = None
    tpot: float | None = None
    client_queue_time: float = 0.0
    client_wait: float | None = None
    dispatch_lateness: float = 0.0
    ttft_from_scheduled: float | None = None
    e2el_from_scheduled: float | None = None
    itl: list[float] = field(default_factory=list)
    token_itl: list[tuple[float, int]] = field(default_factory=list)
    chunk_ns: list[int] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    reads: int = 0
    chunks: int = 0
    coalesced: int = 0
    parse_delay: float = 0.0
    worker: int = 0
    max_itl: float = 0.0

    def to_json(self, t0_ns: int) -> dict[str, Any]:
        """One line of ``--save-detailed``: the metrics, times relative to the run start."""
        return {
            "index": self.index,
            "worker": self.worker,
            "ok": self.ok,
            "error": self.error,
            "scheduled_s": (self.scheduled_ns - t0_ns) / 1e9,
            "sent_s": (self.sent_ns - t0_ns) / 1e9 if self.sent_ns else None,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "output_tokens_source": self.output_tokens_source,
            "token_split": self.token_split,
            "ttft_ms": self.ttft,
            "ttfc_ms": self.ttfc,
            "tpot_ms": self.tpot,
            "e2el_ms": self.e2el,
            "client_queue_time_ms": self.client_queue_time,
            "client_wait_ms": self.client_wait,
            "dispatch_lateness_ms": self.dispatch_lateness,
            "ttft_from_scheduled_ms": self.ttft_from_scheduled,
            "e2el_from_scheduled_ms": self.e2el_from_scheduled,
            "itls_ms": [round(v, 4) for v in self.itl],
            "chunk_tokens": self.chunk_tokens,
            "reads": self.reads,
            "coalesced_chunks": self.coalesced,
        }


def finalize(record: RequestRecord) -> RequestResult:
    """The metrics of one finished request."""
    chunk_ns = record.chunk_ns
    ok = record.error is None and bool(chunk_ns) and record.sent_ns > 0
    tokens, split = split_tokens(record.usage_output, record.chunk_tokens, record.chunk_chars)
    if record.usage_output is not None:
        output, source = record.usage_output, "usage"
    else:
        output, source = sum(tokens) if tokens else 0, "chunks"
    lateness = max(record.dispatched_ns - record.scheduled_ns, 0) * _MS
    queue = max(record.acquired_ns - record.scheduled_ns, 0) * _MS
    result = RequestResult(
        index=record.index,
        ok=ok,
        error=None if ok else error_kind(record.error),
        scheduled_ns=record.scheduled_ns,
        sent_ns=record.sent_ns,
        end_ns=record.end_ns,
        input_tokens=record.usage_input if record.usage_input is not None else record.input_tokens,
        output_tokens=output,
        output_tokens_source=source,
        token_split=split,
        client_queue_time=queue,
        dispatch_lateness=lateness,
        client_wait=(record.sent_ns - record.scheduled_ns) * _MS if record.sent_ns else None,
        chunk_ns=chunk_ns,
        chunk_tokens=tokens,
        reads=record.reads,
        chunks=len(chunk_ns),
        coalesced=record.coalesced,
        parse_delay=record.parse_delay_ns * _MS,
        worker=record.worker,
    )
    if not ok:
        return result
    sent = record.sent_ns
    first, last = chunk_ns[0], chunk_ns[-1]
    result.ttft = (first - sent) * _MS
    answer = next((t for t, a in zip(chunk_ns, record.chunk_answer, strict=True) if a), None)
    result.ttfc = (answer - sent) * _MS if answer is not None else None
    result.e2el = (last - sent) * _MS
    if output > 1:
        result.tpot = (result.e2el - result.ttft) / (output - 1)
    result.ttft_from_scheduled = (first - record.scheduled_ns) * _MS
    result.e2el_from_scheduled = (last - record.scheduled_ns) * _MS
    itl = [(b - a) * _MS for a, b in itertools.pairwise(chunk_ns)]
    result.itl = itl
    result.max_itl = max(itl) if itl else 0.0
    per_token: list[tuple[float, int]] = []
    pending = 0.0
    for gap, k in zip(itl, tokens[1:], strict=True):
        pending += gap
        if k > 0:
            per_token.append((pending / k, k))
            pending = 0.0
    result.token_itl = per_token
    return result


class Aggregate:
    """The running totals of a run (or one worker's share): histograms, counts, series.

    ``add(result)`` folds in a measured request; ``note(result)`` counts only its time
    series (warm-up and cool-down requests still load the server). :meth:`merge` adds
    another worker's aggregate; :meth:`to_state` / :meth:`from_state` carry it between
    processes.
    """

    def __init__(self, goodput: Mapping[str, float] | None = None) -> None:
        self.goodput = dict(goodput or {})
        self.hist: dict[str, Histogram] = {name: Histogram() for name in LATENCY_METRICS}
        self.input_hist = Histogram()
        self.output_hist = Histogram()
        self.completed = 0
        self.failed = 0
        self.failures: dict[str, int] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.good = 0
        self.good_tokens = 0
        self.slo_pass: dict[str, int] = dict.fromkeys(self.goodput, 0)
        self.usage_missing = 0
        self.token_split: dict[str, int] = {}
        self.chunks = 0
        self.reads = 0
        self.coalesced = 0
        self.parse_delay = Histogram()
        self.first_sent_ns = 0
        self.last_end_ns = 0
        # time series, all requests (1 s buckets) and the in-flight sweep (10 ms buckets)
        self.tokens_per_s: dict[int, int] = {}
        self.chunks_per_s: dict[int, int] = {}
        self.done_per_s: dict[int, int] = {}
        self.inflight_delta: dict[int, int] = {}
        self.t0_ns = 0
        #: The exact peak of requests in flight in each process, summed over processes.
        self.max_inflight = 0
        self.processes = 1

    # ------------------------------------------------------------------ folding in
    def note(self, result: RequestResult) -> None:
        """Count ``result`` in the time series (every request, measured or not)."""
        t0 = self.t0_ns
        for t, k in zip(result.chunk_ns, result.chunk_tokens, strict=False):
            second = (t - t0) // 1_000_000_000
            self.tokens_per_s[second] = self.tokens_per_s.get(second, 0) + k
            self.chunks_per_s[second] = self.chunks_per_s.get(second, 0) + 1
        if result.sent_ns:
            start = (result.sent_ns - t0) // _INFLIGHT_NS
            stop = (max(result.end_ns, result.sent_ns) - t0) // _INFLIGHT_NS
            self.inflight_delta[start] = self.inflight_delta.get(start, 0) + 1
            self.inflight_delta[stop] = self.inflight_delta.get(stop, 0) - 1
        second = (result.end_ns - t0) // 1_000_000_000
        self.done_per_s[second] = self.done_per_s.get(second, 0) + 1

    def add(self, result: RequestResult) -> None:
        """Fold a measured request into the statistics."""
        if result.sent_ns and (not self.first_sent_ns or result.sent_ns < self.first_sent_ns):
            self.first_sent_ns = result.sent_ns
        self.last_end_ns = max(self.last_end_ns, result.end_ns)
        if not result.ok:
            self.failed += 1
            assert result.error is not None
            self.failures[result.error] = self.failures.get(result.error, 0) + 1
            return
        self.completed += 1
        self.input_tokens += result.input_tokens
        self.output_tokens += result.output_tokens
        self.input_hist.record(result.input_tokens)
        self.output_hist.record(result.output_tokens)
        if result.output_tokens_source != "usage":
            self.usage_missing += 1
        self.token_split[result.token_split] = self.token_split.get(result.token_split, 0) + 1
        self.chunks += result.chunks
        self.reads += result.reads
        self.coalesced += result.coalesced
        self.parse_delay.record(result.parse_delay)
        hist = self.hist
        for name in (
            "ttft",
            "ttfc",
            "tpot",
            "e2el",
            "ttft_from_scheduled",
            "e2el_from_scheduled",
            "client_wait",
        ):
            value = getattr(result, name)
            if value is not None:
                hist[name].record(value)
        hist["client_queue_time"].record(result.client_queue_time)
        hist["dispatch_lateness"].record(result.dispatch_lateness)
        if result.e2el is not None:
            hist["e2el_including_client_queue"].record(result.e2el + result.client_queue_time)
        hist["itl"].record_many(result.itl)
        if result.token_split == "one per chunk" and len(result.token_itl) == len(result.itl):
            hist["token_itl"].record_many(result.itl)
        elif result.token_itl:
            gaps, weights = zip(*result.token_itl, strict=True)
            hist["token_itl"].record_many(gaps, weights)
        if self.goodput:
            self._goodput(result)

    def _goodput(self, result: RequestResult) -> None:
        values = {
            "ttft": result.ttft,
            "ttfc": result.ttfc,
            "tpot": result.tpot if result.tpot is not None else 0.0,  # 1 token: TPOT 0 (vLLM)
            "e2el": result.e2el,
            "itl": result.max_itl,
        }
        good = True
        for name, limit in self.goodput.items():
            value = values[name]
            if value is not None and value <= limit:
                self.slo_pass[name] += 1
            else:
                good = False
        if good:
            self.good += 1
            self.good_tokens += result.output_tokens

    # ------------------------------------------------------------------ merging
    def merge(self, other: Aggregate) -> None:
        """Add another worker's aggregate (the same goodput limits)."""
        for name, hist in other.hist.items():
            self.hist[name].merge(hist)
        self.input_hist.merge(other.input_hist)
        self.output_hist.merge(other.output_hist)
        self.parse_delay.merge(other.parse_delay)
        for attr in self._SUMS:
            setattr(self, attr, getattr(self, attr) + getattr(other, attr))
        for name in self._MAPS:
            mine: dict[Any, int] = getattr(self, name)
            for key, value in getattr(other, name).items():
                mine[key] = mine.get(key, 0) + value
        if other.first_sent_ns and (
            not self.first_sent_ns or other.first_sent_ns < self.first_sent_ns
        ):
            self.first_sent_ns = other.first_sent_ns
        self.last_end_ns = max(self.last_end_ns, other.last_end_ns)

    #: The counters that add up across workers.
    _SUMS = (
        "completed",
        "failed",
        "input_tokens",
        "output_tokens",
        "good",
        "good_tokens",
        "usage_missing",
        "chunks",
        "reads",
        "coalesced",
        "max_inflight",
        "processes",
    )
    #: Every scalar field handed between processes.
    _COUNTS = (*_SUMS, "first_sent_ns", "last_end_ns", "t0_ns")
    _MAPS = (
        "failures",
        "slo_pass",
        "token_split",
        "tokens_per_s",
        "chunks_per_s",
        "done_per_s",
        "inflight_delta",
    )

    def to_state(self) -> dict[str, Any]:
        """Plain data for another process (see :meth:`from_state`)."""
        state: dict[str, Any] = {name: getattr(self, name) for name in self._COUNTS}
        state.update({name: dict(getattr(self, name)) for name in self._MAPS})
        state["goodput"] = self.goodput
        state["hist"] = {name: h.to_state() for name, h in self.hist.items()}
        state["input_hist"] = self.input_hist.to_state()
        state["output_hist"] = self.output_hist.to_state()
        state["parse_delay"] = self.parse_delay.to_state()
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Aggregate:
        """The aggregate :meth:`to_state` described."""
        agg = cls(state["goodput"])
        for name in cls._COUNTS:
            setattr(agg, name, state[name])
        for name in cls._MAPS:
            setattr(agg, name, {_key(k): v for k, v in state[name].items()})
        agg.hist = {name: Histogram.from_state(h) for name, h in state["hist"].items()}
        agg.input_hist = Histogram.from_state(state["input_hist"])
        agg.output_hist = Histogram.from_state(state["output_hist"])
        agg.parse_delay = Histogram.from_state(state["parse_delay"])
        return agg

    # ------------------------------------------------------------------ series
    def inflight_series(self) -> list[tuple[float, int]]:
        """(seconds from the start, requests in flight) at each 10 ms step with a change."""
        level = 0
        out = []
        for key in sorted(self.inflight_delta):
            level += self.inflight_delta[key]
            out.append((key * _INFLIGHT_NS / 1e9, level))
        return out

    @property
    def max_concurrent(self) -> int:
        """The most requests in flight at once: exact in one process; over several, the
        lower of the summed per-process peaks and the 10 ms-bucket sweep."""
        if self.processes <= 1 and self.max_inflight:
            return self.max_inflight
        swept = max((level for _, level in self.inflight_series()), default=0)
        return min(swept, self.max_inflight) if self.max_inflight else swept


def _key(key: Any) -> Any:
    """JSON turns int keys into strings; the time series' keys are ints."""
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    return key
