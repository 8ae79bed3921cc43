"""``--sweep`` and ``--slo-search``: several runs, one row per step.

:func:`sweep` follows guidellm's method: a synchronous run (one request at a time), a
throughput run (everything at once, or the ``max_concurrency`` cap), then ``size − 2``
open-loop rates spaced evenly between the two measured request rates.

:func:`slo_search` finds the highest request rate (or concurrency) whose run meets every
target (``p99_ttft_ms<=200,p99_itl_ms<=50``: any report field), by bisection on measured
points: the synchronous run must pass and the throughput run bounds the search from above;
each step halves the interval between the best passing and the lowest failing value.

Both start the embedded server once, when it is used, for all of their steps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from ._config import MAX_CONCURRENCY, BenchConfig, SLOTarget
from ._report import Report, metric_fields
from ._run import _target, arun
from ._schedule import Plan, make_plan
from ._shard import prompt_pool
from ._stats import percentile_key

__all__ = ["check_targets", "slo_search", "steps_table", "sweep"]


def _step(config: BenchConfig, name: str, **changes: object) -> BenchConfig:
    metadata = {**config.metadata, "step": name}
    return dataclasses.replace(config, metadata=metadata, **changes)  # type: ignore[arg-type]


async def _measure(config: BenchConfig, name: str, **changes: object) -> Report:
    report = await arun(_step(config, name, **changes))
    report.fields["step"] = name
    return report


def _resolved(config: BenchConfig, base_url: str, api_key: str | None, model: str) -> BenchConfig:
    return dataclasses.replace(
        config, base_url=base_url, api_key=api_key or "none", model=model, progress=False
    )


async def sweep(config: BenchConfig, size: int = 6) -> Report:
    """Synchronous, throughput, then ``size − 2`` rates in between; the report's ``steps``."""
    max_output = max(p.output_tokens for p in prompt_pool(config, _count_plan(config)))
    async with _target(config, max_output) as target:
        base = _resolved(config, target.base_url, target.api_key, target.model)
        steps = [
            await _measure(base, "synchronous", request_rate=math.inf, max_concurrency=1),
            await _measure(base, "throughput", request_rate=math.inf),
        ]
        low = float(steps[0]["request_throughput"])
        high = float(steps[1]["request_throughput"])
        count = max(size - 2, 0) if high > 0 else 0  # (no rate between nothing and nothing)
        for k in range(1, count + 1):
            rate = low + (high - low) * k / (count + 1)
            steps.append(await _measure(base, f"rate {rate:.2f}", request_rate=rate))
    fields = {"sweep": [s.fields["step"] for s in steps], "steps": len(steps)}
    return Report(dict(fields), steps=steps)


def _count_plan(config: BenchConfig) -> Plan:
    return make_plan(dataclasses.replace(config, request_rate=math.inf, max_concurrency=1))


def check_targets(targets: Sequence[SLOTarget], config: BenchConfig) -> None:
    """Refuse (ValueError) a target naming no numeric field of ``config``'s reports."""
    known = metric_fields(config)
    for target in targets:
        if target.field in known:
            continue
        latency = [k.removeprefix("mean_") for k in known if k.startswith("mean_")]
        pcts = ", ".join(percentile_key(p) for p in config.percentiles)
        others = ", ".join(k for k in known if not k.endswith("_ms"))
        raise ValueError(
            f"--slo-search: {target.field!r} is not a field of the report: the latency fields "
            f"are mean_, median_, std_ or pNN_ (NN one of --percentiles: {pcts}) before "
            f"{', '.join(latency)}; the others are {others}"
        )


def _holds(report: Report, targets: Sequence[SLOTarget]) -> bool:
    ok = all(t.holds(report.fields) for t in targets) and report.fields.get("completed", 0) > 0
    report.fields["meets_slo"] = ok
    return ok


async def slo_search(
    config: BenchConfig,
    targets: Sequence[SLOTarget],
    *,
    over: str = "rate",
    steps: int = 6,
) -> Report:
    """The highest rate (``over="rate"``) or concurrency meeting ``targets``, by bisection."""
    if over not in ("rate", "concurrency"):
        raise ValueError(f"--slo-search-over is rate or concurrency, not {over!r}")
    check_targets(targets, config)
    max_output = max(p.output_tokens for p in prompt_pool(config, _count_plan(config)))
    async with _target(config, max_output) as target:
        base = _resolved(config, target.base_url, target.api_key, target.model)
        runs: list[Report] = []
        sync = await _measure(base, "synchronous", request_rate=math.inf, max_concurrency=1)
        runs.append(sync)
        best: float | None = None
        if _holds(sync, targets):
            if over == "rate":
                top = await _measure(base, "throughput", request_rate=math.inf)
                lo, hi = float(sync["request_throughput"]), float(top["request_throughput"])
            else:
                cap = config.max_concurrency or min(config.prompt_count or 256, MAX_CONCURRENCY)
                top = await _measure(
                    base, f"concurrency {cap}", request_rate=math.inf, max_concurrency=cap
                )
                lo, hi = 1.0, float(cap)
            runs.append(top)
            best = lo
            if _holds(top, targets):
                best = hi
            else:
                for _ in range(steps):
                    if over == "rate":
                        mid = (lo + hi) / 2
                        if hi - lo < max(0.01 * hi, 1e-3):
                            break
                        report = await _measure(base, f"rate {mid:.3f}", request_rate=mid)
                    else:
                        mid = float(int((lo + hi) // 2))
                        if mid <= lo:
                            break
                        report = await _measure(
                            base,
                            f"concurrency {int(mid)}",
                            request_rate=math.inf,
                            max_concurrency=int(mid),
                        )
                    runs.append(report)
                    if _holds(report, targets):
                        lo = best = mid
                    else:
                        hi = mid
    fields = {
        "slo_search": {
            "targets": [str(t) for t in targets],
            "over": over,
            "best": best,
            "met": best is not None,
        },
        "steps": len(runs),
    }
    return Report(fields, steps=runs)


def _num(f: dict[str, object], name: str, width: int, fmt: str = ".1f") -> str:
    value = f.get(name)
    return f"{value:>{width}{fmt}}" if isinstance(value, int | float) else f"{'-':>{width}}"


def steps_table(report: Report) -> str:
    """One line per step: rate, throughput, TTFT and ITL medians and p99s, health."""
    head = (
        f"{'step':<18}{'req/s':>9}{'tok/s':>10}{'TTFT p50':>10}{'TTFT p99':>10}"
        f"{'ITL p50':>9}{'ITL p99':>9}{'fail':>6}  health"
    )
    lines = [head, "-" * len(head)]
    for step in report.steps:
        f = step.fields
        mark = "FLAGGED" if step.flagged else "ok"
        if "meets_slo" in f:
            mark += ", meets SLO" if f["meets_slo"] else ", misses SLO"
        cells = [
            _num(f, "request_throughput", 9, ".2f"),
            _num(f, "output_throughput", 10),
            _num(f, "median_ttft_ms", 10),
            _num(f, "p99_ttft_ms", 10),
            _num(f, "median_itl_ms", 9),
            _num(f, "p99_itl_ms", 9),
        ]
        lines.append(f"{f.get('step')!s:<18}{''.join(cells)}{f.get('failed', 0):>6}  {mark}")
    search = report.fields.get("slo_search")
    if isinstance(search, dict):
        what = "request rate" if search["over"] == "rate" else "concurrency"
        if search["met"]:
            lines.append(
                f"Highest {what} meeting {', '.join(search['targets'])}: {search['best']:g}"
            )
        else:
            lines.append(f"No {what} meets {', '.join(search['targets'])} (not even one at a time)")
    return "\n".join(lines)
