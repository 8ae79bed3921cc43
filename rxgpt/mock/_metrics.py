"""The mock server's ``GET /metrics``: Prometheus text format with vLLM's metric names.

A benchmark scrapes the mock as it scrapes vLLM: the same names (``vllm:num_requests_running``,
``vllm:time_to_first_token_seconds``, ...), label sets (``engine``, ``model_name``) and histogram
buckets as vLLM's V1 engine, plus a few ``rxgpt:`` series for what only a simulator knows (how
late its decode steps ran against their schedule). Observations are plain float additions in
the engine's loop; the text is rendered only when scraped.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence

__all__ = ["Histogram", "Metrics"]

_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
_ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
_REQUEST_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
_TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
_LATENESS_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0)
FINISH_REASONS = ("stop", "length", "abort")


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{value:.1f}"


class Histogram:
    """A Prometheus histogram: cumulative buckets, ``_sum`` and ``_count``."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        """Record ``value`` (``times`` times: one decode step of several sequences)."""
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.sum += value * times
        self.count += times

    def lines(self, name: str, labels: str) -> Iterable[str]:
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            yield f'{name}_bucket{{{labels},le="{_number(bound)}"}} {running}'
        yield f'{name}_bucket{{{labels},le="+Inf"}} {self.count}'
        yield f"{name}_sum{{{labels}}} {self.sum!r}"
        yield f"{name}_count{{{labels}}} {self.count}"


class Metrics:
    """The counters, gauges and histograms of one server process."""

    def __init__(self, model: str, gauges: Callable[[], tuple[int, int, float]]) -> None:
        """``gauges()`` gives (running, waiting, KV-cache usage 0..1) at scrape time."""
        self._labels = f'engine="0",model_name="{model}"'
        self._gauges = gauges
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.finished = dict.fromkeys(FINISH_REASONS, 0)
        self.steps = 0
        self.ttft = Histogram(_TTFT_BUCKETS)
        self.itl = Histogram(_ITL_BUCKETS)
        self.tpot = Histogram(_ITL_BUCKETS)
        self.e2e = Histogram(_REQUEST_BUCKETS)
        self.queue = Histogram(_REQUEST_BUCKETS)
        self.prefill = Histogram(_REQUEST_BUCKETS)
        self.decode = Histogram(_REQUEST_BUCKETS)
        self.request_prompt = Histogram(_TOKEN_BUCKETS)
        self.request_generation = Histogram(_TOKEN_BUCKETS)
        self.lateness = Histogram(_LATENESS_BUCKETS)

    def render(self) -> str:
        """The exposition text (``text/plain; version=0.0.4``)."""
        labels = self._labels
        running, waiting, usage = self._gauges()
        out: list[str] = []

        def metric(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        def sample(name: str, kind: str, text: str, value: float) -> None:
            metric(name, kind, text)
            out.append(f"{name}{{{labels}}} {_number(value)}")

        sample(
            "vllm:num_requests_running", "gauge", "Requests in model execution batches.", running
        )
        sample("vllm:num_requests_waiting", "gauge", "Requests waiting to be processed.", waiting)
        sample("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage (1 means 100 %).", usage)
        sample("vllm:num_preemptions_total", "counter", "Cumulative preemptions.", 0)
        sample(
            "vllm:prompt_tokens_total", "counter", "Prefill tokens processed.", self.prompt_tokens
        )
        sample(
            "vllm:generation_tokens_total",
            "counter",
            "Generation tokens processed.",
            self.generation_tokens,
        )
        metric("vllm:request_success_total", "counter", "Successfully processed requests.")
        for reason, count in self.finished.items():
            out.append(
                f'vllm:request_success_total{{{labels},finished_reason="{reason}"}} {count}.0'
            )
        histograms = (
            ("vllm:time_to_first_token_seconds", "Time to first token in seconds.", self.ttft),
            ("vllm:inter_token_latency_seconds", "Inter-token latency in seconds.", self.itl),
            ("vllm:time_per_output_token_seconds", "Time per output token (mean).", self.tpot),
            ("vllm:e2e_request_latency_seconds", "End to end request latency.", self.e2e),
            ("vllm:request_queue_time_seconds", "Time spent in the WAITING phase.", self.queue),
            ("vllm:request_prefill_time_seconds", "Time spent in the PREFILL phase.", self.prefill),
            ("vllm:request_decode_time_seconds", "Time spent in the DECODE phase.", self.decode),
            ("vllm:request_prompt_tokens", "Prefill tokens per request.", self.request_prompt),
            (
                "vllm:request_generation_tokens",
                "Generation tokens per request.",
                self.request_generation,
            ),
            (
                "rxgpt:step_lateness_seconds",
                "How late decode steps ran against their schedule.",
                self.lateness,
            ),
        )
        for name, text, histogram in histograms:
            metric(name, "histogram", text)
            out.extend(histogram.lines(name, labels))
        sample("rxgpt:engine_steps_total", "counter", "Decode steps run.", self.steps)
        return "\n".join(out) + "\n"
