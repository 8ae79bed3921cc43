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

from ._stats import DEFAULT_PERCENTILES

__all__ = [
    "DATASETS",
    "GOODPUT_METRICS",
    "BenchConfig",
    "HealthLimits",
    "SLOTarget",
    "Window",
    "parse_goodput",
    "parse_slo_targets",
    "parse_window",
]

#: The workloads ``dataset`` may name.
DATASETS = ("random", "sharegpt", "jsonl", "shared-prefix", "sample")
#: The per-request metrics ``--goodput`` may set a limit on (milliseconds), as vLLM's.
GOODPUT_METRICS = ("ttft", "tpot", "e2el", "ttfc", "itl")


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
    return Window(value, unit)


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
        if limit < 0:
            raise ValueError(f"--goodput {part!r}: a limit is not negative")
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
        if self.num_prompts is not None and self.num_prompts < 1:
            problems.append("num_prompts must be at least 1")
        if self.duration is not None and not self.duration > 0:
            problems.append("duration must be more than 0 seconds")
        if not self.request_rate > 0:
            problems.append("request_rate must be more than 0 (inf: all at once)")
        if not self.burstiness > 0:
            problems.append("burstiness must be more than 0 (1: Poisson)")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            problems.append("max_concurrency must be at least 1")
        if self.ramp_up < 0:
            problems.append("ramp_up must not be negative")
        if self.input_len < 1 or self.output_len < 1:
            problems.append("input_len and output_len must be at least 1")
        if not 0 <= self.range_ratio < 1:
            problems.append("range_ratio must be in [0, 1)")
        if self.prefix_len < 0:
            problems.append("prefix_len must not be negative")
        if self.workers is not None and self.workers < 1:
            problems.append("workers must be at least 1")
        if self.timeout is not None and not self.timeout > 0:
            problems.append("timeout must be more than 0 seconds")
        for p in self.percentiles:
            if not 0 < p < 100:
                problems.append(f"percentile {p:g} is not between 0 and 100")
        for name in self.goodput:
            if name not in GOODPUT_METRICS:
                problems.append(f"goodput metric {name!r} is not one of {GOODPUT_METRICS}")
        if problems:
            raise ValueError("; ".join(problems))

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
