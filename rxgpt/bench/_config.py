"""What one benchmark run does: :class:`BenchConfig`, and the small value types it holds.

A config is plain, frozen and picklable (it travels to ``--workers`` processes as is). The
parsers here (:func:`parse_window`, :func:`parse_goodput`, :func:`parse_slo_targets`) are the
one place the CLI's textual forms are read; they raise ValueError with a message fit for
one line on stderr.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._cli_types import MAX_COUNT, MAX_MILLISECONDS, MAX_SECONDS, MAX_WORKERS, _show
from ._stats import DEFAULT_PERCENTILES

__all__ = [
    "DATASETS",
    "GOODPUT_METRICS",
    "MAX_CONCURRENCY",
    "MAX_OUTPUT_TOKENS",
    "MAX_PROMPT_TOKENS",
    "MAX_REQUESTS",
    "MAX_WORKLOAD_TOKENS",
    "BenchConfig",
    "HealthLimits",
    "SLOTarget",
    "Window",
    "parse_goodput",
    "parse_percentiles",
    "parse_slo_targets",
    "parse_window",
    "percentiles_problem",
]

#: The workloads ``dataset`` may name.
DATASETS = ("random", "sharegpt", "jsonl", "shared-prefix", "sample")
#: The per-request metrics ``--goodput`` may set a limit on (milliseconds), as vLLM's.
GOODPUT_METRICS = ("ttft", "tpot", "e2el", "ttfc", "itl")

# The bounds of a run. Each is far above what a benchmark of one server needs and low enough
# that a mistyped number is refused before it asks the machine for what it does not have.

#: The most tokens one prompt holds (``input_len`` + ``prefix_len``): the longest context
#: windows are 1-2 million tokens; a prompt longer than that no server takes.
MAX_PROMPT_TOKENS = 2_000_000
#: The most output tokens one request asks for (``output_len``, ``max_tokens``), as long.
MAX_OUTPUT_TOKENS = 2_000_000
#: The most prompt tokens a run builds in all (its prompts are built up front, at most
#: 10,000 and then reused in turn): 2**24 tokens is ~100 MB of text and a few seconds of
#: building (10,000 prompts of 1,600 tokens), where a mistyped length would have asked
#: for gigabytes and minutes with Ctrl+C unanswered.
MAX_WORKLOAD_TOKENS = 2**24
#: The most requests one run sends (``num_prompts``, or ``duration`` x ``request_rate``):
#: the schedule is drawn up front, a float per request (a million is ~30 MB, a second).
MAX_REQUESTS = 1_000_000
#: The most requests in flight at once: one server address cannot have more TCP
#: connections from one client address than there are ports.
MAX_CONCURRENCY = 65_535
#: The most percentiles ``--percentiles`` lists (each adds a field per metric).
MAX_PERCENTILES = 32
#: :data:`MAX_SECONDS` in words, for messages.
_LONGEST = f"{_show(MAX_SECONDS / (365 * 86400))} years"


@dataclass(frozen=True, slots=True)
class Window:
    """A warm-up or cool-down: ``amount`` requests, or ``amount`` seconds."""

    amount: float = 0.0
    unit: Literal["requests", "seconds"] = "requests"

    def __str__(self) -> str:
        if self.unit == "seconds":
            return f"{self.amount:g}s"
        return f"{int(self.amount)}"


def parse_window(text: str) -> Window:
    """``"10"`` → 10 requests; ``"5s"`` → 5 seconds (also ``"500ms"``)."""
    raw = text.strip().lower()
    try:
        if raw.endswith("ms"):
            return _window(float(raw[:-2]) / 1000.0, "seconds", text)
        if raw.endswith("s"):
            return _window(float(raw[:-1]), "seconds", text)
        value = float(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of requests (10) or seconds (5s)") from None
    if not value.is_integer():
        raise ValueError(f"{text!r}: a number of requests is whole (or add 's' for seconds)")
    return _window(value, "requests", text)


def _window(value: float, unit: Literal["requests", "seconds"], text: str) -> Window:
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"{text!r} is not a non-negative amount")
    high = MAX_SECONDS if unit == "seconds" else MAX_COUNT
    if value > high:
        raise ValueError(f"{text!r} is more than {_show(high)} {unit}, the most it takes")
    return Window(value, unit)


def percentiles_problem(percentiles: tuple[float, ...]) -> str | None:
    """What is wrong with a list of percentiles (None: nothing): the one rule for
    ``--percentiles`` and :class:`BenchConfig`."""
    if not percentiles:
        return "no percentile given (e.g. 50,90,99)"
    if len(percentiles) > MAX_PERCENTILES:
        return f"{len(percentiles)} percentiles, more than {MAX_PERCENTILES}"
    for p in percentiles:
        if not 0 < p < 100:  # (NaN fails this too)
            return f"{p:g} is not a percentile (more than 0, less than 100)"
    return None


def parse_percentiles(text: str) -> tuple[float, ...]:
    """``"50,90,99.9"`` → ``(50.0, 90.0, 99.9)`` (see :func:`percentiles_problem`)."""
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            out.append(float(part))
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a number") from None
    problem = percentiles_problem(tuple(out))
    if problem is not None:
        raise ValueError(problem)
    return tuple(out)


def parse_goodput(items: list[str] | str) -> dict[str, float]:
    """``["ttft:200", "tpot:50"]`` (or one string with spaces) → ``{"ttft": 200.0, ...}`` ms."""
    parts = items.split() if isinstance(items, str) else [p for i in items for p in i.split()]
    out: dict[str, float] = {}
    for part in parts:
        name, sep, value = part.partition(":")
        if not sep or name not in GOODPUT_METRICS:
            known = ", ".join(GOODPUT_METRICS)
            raise ValueError(f"--goodput expects METRIC:MS (METRIC: {known}), got {part!r}")
        try:
            limit = float(value)
        except ValueError:
            raise ValueError(f"--goodput {part!r}: {value!r} is not a number of ms") from None
        if not 0 <= limit <= MAX_MILLISECONDS:
            raise ValueError(
                f"--goodput {part!r}: a limit is a number of ms from 0 to {_show(MAX_MILLISECONDS)}"
            )
        out[name] = limit
    return out


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_TARGET = re.compile(r"^\s*([a-z0-9_.]+)\s*(<=|>=|<|>)\s*([0-9.eE+-]+)\s*$")


@dataclass(frozen=True, slots=True)
class SLOTarget:
    """One target of ``--slo-search``: a report field (``p99_ttft_ms``), a comparison, a bound."""

    field: str
    op: str
    bound: float

    def holds(self, fields: Mapping[str, Any]) -> bool:
        """Whether a run's report ``fields`` meet this target (a missing value does not)."""
        value = fields.get(self.field)
        if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
            return False
        return _OPS[self.op](float(value), self.bound)

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.bound:g}"


def parse_slo_targets(text: str) -> tuple[SLOTarget, ...]:
    """``"p99_ttft_ms<=200,p99_itl_ms<=50"`` → targets (any report field, any of < <= > >=)."""
    targets = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = _TARGET.match(part)
        if match is None:
            raise ValueError(
                f"--slo-search expects FIELD<=VALUE[,FIELD<=VALUE...] (e.g. p99_ttft_ms<=200), "
                f"got {part!r}"
            )
        name, op, bound = match.groups()
        try:
            targets.append(SLOTarget(name, op, float(bound)))
        except ValueError:
            raise ValueError(f"--slo-search {part!r}: {bound!r} is not a number") from None
    if not targets:
        raise ValueError("--slo-search needs at least one target, e.g. p99_ttft_ms<=200")
    return tuple(targets)


@dataclass(frozen=True, slots=True)
class HealthLimits:
    """When a run's client is said to have distorted its figures (see ``_health``).

    ``loop_lag_p99_ms``: the event loop woke a ticker this much late (p99); every timestamp
    may be late by as much. ``cpu_fraction``: the client used this fraction of one core.
    ``dispatch_lateness_p99_ms``: requests left this much after their scheduled time (open
    loop). ``coalesced_fraction``: this fraction of chunks shared a network read with the one
    before while the loop lagged (``coalesced_lag_ms`` p99).
    """

    loop_lag_p99_ms: float = 10.0
    cpu_fraction: float = 0.85
    dispatch_lateness_p99_ms: float = 10.0
    coalesced_fraction: float = 0.10
    coalesced_lag_ms: float = 1.0


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """One benchmark run: target, workload, load, statistics and outputs.

    Target: ``base_url`` and ``api_key`` (both None: the embedded server is started, see
    ``mock_*``), ``provider`` (any of :data:`rxgpt.PROVIDERS`), ``model``, extra ``headers``
    and ``extra_body`` fields.

    Workload (see ``_workload``): ``dataset`` one of :data:`DATASETS`, ``dataset_path`` for
    ``sharegpt`` / ``jsonl``, ``input_len`` / ``output_len`` tokens with ``range_ratio``
    (uniform ±ratio), ``prefix_len`` shared-prefix tokens; ``max_tokens`` (None: each prompt's
    output length) and ``ignore_eos`` (vLLM's extension; sent only when True).

    Load (see ``_schedule``): ``num_prompts`` or ``duration`` seconds; ``request_rate``
    requests/s (``inf``: all at once) with ``burstiness`` (gamma shape: 1 = Poisson, ``inf`` =
    constant gaps) drawn up front from ``seed``; ``max_concurrency`` (a cap; with an infinite
    rate, a closed loop); ``ramp_up`` seconds; ``warmup`` / ``cooldown`` windows excluded from
    the statistics.

    Measurement: ``percentiles``, ``goodput`` limits (ms per :data:`GOODPUT_METRICS`),
    ``continuous_usage`` (ask for per-chunk usage, vLLM's ``continuous_usage_stats``),
    ``timeout`` seconds per request, ``workers`` processes (None: automatic), ``health``.
    Outputs: ``save_detailed`` (per-request JSONL), ``label`` and ``metadata`` (copied into
    the report). ``progress`` shows live progress (a dashboard on a TTY).
    """

    base_url: str | None = None
    api_key: str | None = None
    provider: str = "openai"
    model: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    dataset: str = "random"
    dataset_path: str | None = None
    input_len: int = 256
    output_len: int = 128
    range_ratio: float = 0.0
    prefix_len: int = 0
    max_tokens: int | None = None
    ignore_eos: bool = False

    num_prompts: int | None = None
    duration: float | None = None
    request_rate: float = math.inf
    burstiness: float = 1.0
    max_concurrency: int | None = None
    ramp_up: float = 0.0
    warmup: Window = Window()
    cooldown: Window = Window()
    seed: int = 0

    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
    goodput: Mapping[str, float] = field(default_factory=dict)
    continuous_usage: bool = False
    timeout: float | None = 600.0
    workers: int | None = None
    health: HealthLimits = HealthLimits()

    save_detailed: str | None = None
    label: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    progress: bool = False

    mock_ttft_ms: float = 50.0
    mock_itl_ms: float = 10.0

    #: When neither ``num_prompts`` nor ``duration`` is given.
    DEFAULT_NUM_PROMPTS = 200

    def __post_init__(self) -> None:
        problems = []
        if self.dataset not in DATASETS:
            problems.append(f"dataset {self.dataset!r} is not one of {', '.join(DATASETS)}")
        if self.dataset in ("sharegpt", "jsonl") and not self.dataset_path:
            problems.append(f"dataset {self.dataset!r} needs a dataset path")
        if self.dataset_path and self.dataset not in ("sharegpt", "jsonl"):
            problems.append(
                f"a dataset path is read for --dataset sharegpt or jsonl, not {self.dataset!r}"
            )
        if self.num_prompts is not None and not 1 <= self.num_prompts <= MAX_REQUESTS:
            problems.append(f"num_prompts must be from 1 to {MAX_REQUESTS}")
        if self.duration is not None and not 0 < self.duration <= MAX_SECONDS:
            problems.append(
                f"duration must be more than 0 and at most {_show(MAX_SECONDS)} seconds"
            )
        if not self.request_rate > 0:
            problems.append("request_rate must be more than 0 (inf: all at once)")
        elif math.isfinite(self.request_rate):
            problems.extend(self._schedule_problems())
        elif self.max_concurrency is None and (self.prompt_count or 0) > MAX_CONCURRENCY:
            problems.append(
                f"{self.prompt_count} requests (--num-prompts) at once (an infinite "
                f"--request-rate, no --max-concurrency) are more than the {MAX_CONCURRENCY} "
                "connections a client can open to one server: give --max-concurrency or a "
                "--request-rate"
            )
        if not self.burstiness > 0:
            problems.append("burstiness must be more than 0 (1: Poisson)")
        if self.max_concurrency is not None and not 1 <= self.max_concurrency <= MAX_CONCURRENCY:
            problems.append(f"max_concurrency must be from 1 to {MAX_CONCURRENCY}")
        if not 0 <= self.ramp_up <= MAX_SECONDS:
            problems.append(f"ramp_up must not be negative (nor more than {_LONGEST})")
        if self.input_len < 1 or self.output_len < 1:
            problems.append("input_len and output_len must be at least 1")
        if self.input_len + max(self.prefix_len, 0) > MAX_PROMPT_TOKENS:
            problems.append(
                f"input_len + prefix_len (--input-len, --prefix-len) is "
                f"{self.input_len + self.prefix_len} tokens, more than the {MAX_PROMPT_TOKENS} "
                "a prompt may hold"
            )
        for name in ("output_len", "max_tokens"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MAX_OUTPUT_TOKENS:
                problems.append(f"{name} must be from 1 to {MAX_OUTPUT_TOKENS} tokens")
        if not 0 <= self.range_ratio < 1:
            problems.append("range_ratio must be in [0, 1)")
        if self.prefix_len < 0:
            problems.append("prefix_len must not be negative")
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            problems.append(f"workers must be from 1 to {MAX_WORKERS} (4 per CPU)")
        if self.timeout is not None and not 0 < self.timeout <= MAX_SECONDS:
            problems.append(f"timeout must be more than 0 seconds (and at most {_LONGEST})")
        for name in ("mock_ttft_ms", "mock_itl_ms"):
            if not 0 <= getattr(self, name) <= MAX_MILLISECONDS:  # (NaN fails this too)
                problems.append(f"{name} must be from 0 to {_show(MAX_MILLISECONDS)} ms")
        problems.extend(self._window_problems())
        percentiles = percentiles_problem(tuple(self.percentiles))
        if percentiles is not None:
            problems.append(f"percentiles: {percentiles}")
        for name in self.goodput:
            if name not in GOODPUT_METRICS:
                problems.append(f"goodput metric {name!r} is not one of {GOODPUT_METRICS}")
        if problems:
            raise ValueError("; ".join(problems))

    def _window_problems(self) -> list[str]:
        """What is wrong with --warmup / --cooldown in requests (seconds fit any run)."""
        count = self.prompt_count
        warm, cool = self.warmup, self.cooldown
        if count is None:
            if cool.unit == "requests" and cool.amount:
                return [
                    "a --cooldown in requests needs a count-bounded run; with --duration give "
                    "it in seconds (e.g. --cooldown 5s)"
                ]
            return []
        excluded = sum(int(w.amount) for w in (warm, cool) if w.unit == "requests")
        if excluded >= count:
            return [
                f"--warmup {warm} and --cooldown {cool} exclude all {count} requests "
                "(--num-prompts) from the statistics"
            ]
        return []

    def _schedule_problems(self) -> list[str]:
        """What is wrong with a finite rate's schedule: too long, or too many requests."""
        rate = self.request_rate
        count = self.prompt_count
        if count is not None and count / rate > MAX_SECONDS:
            return [
                f"--request-rate {rate:g} would send {count} requests over {count / rate:g} s, "
                f"more than {_LONGEST}"
            ]
        if count is None and self.duration is not None:
            expected = rate * max(self.duration - self.ramp_up / 2, 0.0)
            if expected > MAX_REQUESTS:
                return [
                    f"--duration {self.duration:g} at --request-rate {rate:g} is about "
                    f"{expected:.0f} requests, more than the {MAX_REQUESTS} a run sends"
                ]
        return []

    @property
    def embedded(self) -> bool:
        """Whether the run talks to the embedded server (no base URL and no key given)."""
        return self.base_url is None and self.api_key is None

    @property
    def prompt_count(self) -> int | None:
        """How many requests a count-bounded run sends (None: bounded by ``duration``)."""
        if self.num_prompts is not None:
            return self.num_prompts
        return None if self.duration is not None else self.DEFAULT_NUM_PROMPTS
