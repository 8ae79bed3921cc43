"""The result of a run: :class:`Report`, its vLLM-named fields, table, JSON, CSV and compare.

``Report.fields`` is one flat dict. Fields vLLM's ``bench serve`` writes carry vLLM's names
and definitions (``duration``, ``completed``, ``failed``, ``request_throughput``,
``output_throughput``, ``total_token_throughput``, ``request_goodput``,
``max_output_tokens_per_s``, ``max_concurrent_requests``, and ``mean_/median_/std_/pXX_`` +
``ttft``/``tpot``/``itl``/``e2el`` + ``_ms``), so dashboards that read vLLM's JSON read this
one unchanged; rxgpt's own fields follow the same pattern (``median_ttfc_ms``,
``p99_token_itl_ms``, ``output_token_goodput``, ``client_health``...).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .._files import loads, read_text
from .._secrets import redact, redact_value
from ._config import BenchConfig
from ._health import Health
from ._metrics import LATENCY_METRICS, Aggregate
from ._stats import Histogram, percentile_key

__all__ = ["Report", "build_report", "compare", "load_report", "write_csv"]

#: The largest report file ``compare`` reads (a day-long run's report is a few MB).
MAX_REPORT_BYTES = 64 * 2**20

#: The metrics in the final table, with their titles.
_TABLE_METRICS = (
    ("ttft", "Time to First Token"),
    ("ttfc", "Time to First Answer Chunk (TTFC)"),
    ("tpot", "Time per Output Token (excl. 1st token)"),
    ("itl", "Inter-token Latency (per chunk)"),
    ("token_itl", "Inter-token Latency (per token)"),
    ("e2el", "End-to-end Latency"),
)


@dataclass
class Report:
    """What one run measured: ``fields`` (flat, JSON-ready), the histograms behind them,
    the time series, each worker's health, and for sweeps the ``steps``."""

    fields: dict[str, Any]
    histograms: dict[str, Histogram] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    health: list[Health] = field(default_factory=list)
    steps: list[Report] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """Whether the client may have distorted the figures (see ``client_health``)."""
        return bool(self.fields.get("client_health", {}).get("flagged"))

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def to_json(self) -> dict[str, Any]:
        """The ``--output-json`` document."""
        out = dict(self.fields)
        if self.series:
            out["series"] = {k: [list(p) for p in v] for k, v in self.series.items()}
        if self.steps:
            out["steps"] = [s.fields for s in self.steps]
        return out

    def write_json(self, path: str) -> None:
        """Write :meth:`to_json` to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=2, default=_jsonable)
            f.write("\n")

    def table(self, percentiles: Sequence[float] | None = None) -> str:
        """The final table, laid out as vLLM's "Serving Benchmark Result"."""
        f = self.fields
        pcts = list(percentiles or f.get("percentiles") or ())
        lines = ["{s:{c}^60}".format(s=" Serving Benchmark Result (rxgpt) ", c="=")]

        def row(name: str, value: Any, fmt: str = ".2f") -> None:
            if value is None:
                text = "-"
            elif isinstance(value, float):
                text = format(value, fmt)
            else:
                text = str(value)
            lines.append(f"{name:<44}{text:>16}")

        row("Successful requests:", f.get("completed"))
        row("Failed requests:", f.get("failed"))
        if f.get("max_concurrency") is not None:
            row("Maximum request concurrency:", f.get("max_concurrency"))
        if f.get("request_rate") not in (None, "inf"):
            row("Request rate configured (RPS):", f.get("request_rate"))
        row("Benchmark duration (s):", f.get("duration"))
        row("Total input tokens:", f.get("total_input_tokens"))
        row("Total generated tokens:", f.get("total_output_tokens"))
        row("Request throughput (req/s):", f.get("request_throughput"))
        if f.get("request_goodput") is not None:
            row("Request goodput (req/s):", f.get("request_goodput"))
            row("Output token goodput (tok/s):", f.get("output_token_goodput"))
        row("Output token throughput (tok/s):", f.get("output_throughput"))
        row("Peak output token throughput (tok/s):", f.get("peak_output_tokens_per_s"), ".0f")
        row("Peak concurrent requests:", f.get("max_concurrent_requests"))
        row("Total token throughput (tok/s):", f.get("total_token_throughput"))
        for metric, title in _TABLE_METRICS:
            if f.get(f"mean_{metric}_ms") is None:
                continue
            lines.append("{s:{c}^60}".format(s=f" {title} ", c="-"))
            row(f"Mean {metric.upper()} (ms):", f.get(f"mean_{metric}_ms"))
            row(f"Median {metric.upper()} (ms):", f.get(f"median_{metric}_ms"))
            for p in pcts:
                key = percentile_key(p)
                if key == "50":
                    continue
                row(f"P{key} {metric.upper()} (ms):", f.get(f"p{key}_{metric}_ms"))
        lines.append("{s:{c}^60}".format(s=" Client ", c="-"))
        row("Median client wait (ms):", f.get("median_client_wait_ms"))
        row("P99 dispatch lateness (ms):", f.get("p99_dispatch_lateness_ms"))
        health = f.get("client_health", {})
        row("Client workers:", f.get("workers"))
        row("Max event-loop lag p99 (ms):", health.get("loop_lag_p99_ms"))
        row("Max client CPU (fraction of a core):", health.get("cpu_fraction"))
        failures = f.get("failures") or {}
        if failures:
            lines.append("{s:{c}^60}".format(s=" Failures ", c="-"))
            for kind, count in sorted(failures.items()):
                row(f"{kind}:", count)
        lines.append("=" * 60)
        if health.get("flagged"):
            lines.append("CLIENT HEALTH FLAG: these figures may be distorted by the client:")
            lines.extend(f"  - {reason}" for reason in health.get("reasons", ()))
        else:
            lines.append("Client health: OK (the client kept up; figures are the server's)")
        return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    return value


def build_report(
    config: BenchConfig,
    agg: Aggregate,
    health: list[Health],
    *,
    dispatch_start_ns: int,
    end_ns: int,
    model: str,
    base_url: str,
    workers: int,
    excluded: int,
    date: str,
    version: str,
    embedded: bool,
) -> Report:
    """The report of a finished run from its (merged) aggregate and each worker's health."""
    trimmed = config.warmup.amount > 0 or config.cooldown.amount > 0
    if trimmed and agg.first_sent_ns and agg.last_end_ns > agg.first_sent_ns:
        duration = (agg.last_end_ns - agg.first_sent_ns) / 1e9  # the measured window
    else:
        duration = max(end_ns - dispatch_start_ns, 1) / 1e9  # vLLM's: dispatch to all done
    f: dict[str, Any] = {
        "date": date,
        "backend": config.provider,
        "label": config.label,
        "model_id": model,
        "tokenizer_id": None,
        "base_url": redact(base_url),
        "embedded_server": embedded,
        "dataset": config.dataset,
        "num_prompts": config.prompt_count,
        "request_rate": config.request_rate if math.isfinite(config.request_rate) else "inf",
        "burstiness": config.burstiness if math.isfinite(config.burstiness) else "inf",
        "max_concurrency": config.max_concurrency,
        "duration_limit": config.duration,
        "seed": config.seed,
        "warmup": str(config.warmup),
        "cooldown": str(config.cooldown),
        "excluded_requests": excluded,
        **{k: v for k, v in config.metadata.items()},
        **_rates(config, agg, duration),
        "percentiles": list(config.percentiles),
        "workers": workers,
        "rxgpt_version": version,
    }
    f.update(_latencies(config, agg))
    flagged = any(h.flagged for h in health)

    def worst(name: str) -> float | None:
        values = [v for h in health if (v := getattr(h, name)) is not None]
        return max(values) if values else None

    f["client_health"] = {
        "flagged": flagged,
        "reasons": [r for h in health for r in h.reasons],
        "loop_lag_p99_ms": worst("loop_lag_p99_ms"),
        "cpu_fraction": worst("cpu_fraction"),
        "dispatch_lateness_p99_ms": worst("dispatch_lateness_p99_ms"),
        "parse_delay_p99_ms": worst("parse_delay_p99_ms"),
        "coalesced_fraction": agg.coalesced / agg.chunks if agg.chunks else 0.0,
        "workers": [h.to_json() for h in health],
    }
    # (no secret in a file: a URL's user-info or ?key=, a key pasted into a label or metadata)
    fields = {k: _round(v) for k, v in redact_value(f).items()}
    t0 = agg.t0_ns
    series = {
        "output_tokens_per_s": [(float(s), float(v)) for s, v in sorted(agg.tokens_per_s.items())],
        "completed_per_s": [(float(s), float(v)) for s, v in sorted(agg.done_per_s.items())],
        "in_flight": [(t, float(n)) for t, n in agg.inflight_series()],
    }
    del t0
    hist = {name: agg.hist[name] for name in ("ttft", "ttfc", "tpot", "itl", "token_itl", "e2el")}
    return Report(fields, hist, series, health)


def _rates(config: BenchConfig, agg: Aggregate, duration: float) -> dict[str, Any]:
    """The report's counts, totals and rates (vLLM's names)."""
    return {
        "duration": duration,
        "completed": agg.completed,
        "failed": agg.failed,
        "failures": dict(agg.failures),
        "total_input_tokens": agg.input_tokens,
        "total_output_tokens": agg.output_tokens,
        "request_throughput": agg.completed / duration,
        "request_goodput": agg.good / duration if config.goodput else None,
        "output_token_goodput": agg.good_tokens / duration if config.goodput else None,
        "goodput_slos_ms": dict(config.goodput) or None,
        "goodput_pass_rate": {
            k: (v / agg.completed if agg.completed else None) for k, v in agg.slo_pass.items()
        }
        or None,
        "output_throughput": agg.output_tokens / duration,
        "total_token_throughput": (agg.input_tokens + agg.output_tokens) / duration,
        "max_output_tokens_per_s": float(max(agg.chunks_per_s.values(), default=0)),
        "peak_output_tokens_per_s": float(max(agg.tokens_per_s.values(), default=0)),
        "max_concurrent_requests": agg.max_concurrent,
        "output_tokens_from_usage": agg.completed - agg.usage_missing,
        "token_split": dict(agg.token_split),
        "chunks": agg.chunks,
        "network_reads": agg.reads,
        "coalesced_chunks": agg.coalesced,
    }


def _latencies(config: BenchConfig, agg: Aggregate) -> dict[str, Any]:
    """The report's latency summaries (``mean_ttft_ms``, ``p99_itl_ms``...) and mean lengths."""
    out: dict[str, Any] = {}
    for metric in LATENCY_METRICS:
        out.update(agg.hist[metric].summary(config.percentiles).fields(metric))
    out["mean_input_len"] = agg.input_hist.mean
    out["mean_output_len"] = agg.output_hist.mean
    return out


def metric_fields(config: BenchConfig) -> list[str]:
    """The numeric fields of a report of ``config``'s run (what ``--slo-search`` may name)."""
    agg = Aggregate(config.goodput)
    fields = {**_rates(config, agg, 1.0), **_latencies(config, agg)}
    return [
        k
        for k, v in fields.items()
        if not isinstance(v, dict | list | bool) and not k.startswith("goodput_")
    ]


def load_report(path: str) -> dict[str, Any]:
    """A report JSON file written by ``--output-json`` (or vLLM's own result file)."""
    data = loads(read_text(path, MAX_REPORT_BYTES), path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a benchmark report (a JSON object)")
    return data


def _number(value: Any) -> float | None:
    """A report field as a float, or None (not a number, or beyond a float's range)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def compare(a: Mapping[str, Any], b: Mapping[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """The numeric fields both reports share, side by side with the change from A to B."""
    numbers = {
        k: (va, vb)
        for k in a
        if (va := _number(a[k])) is not None and (vb := _number(b.get(k))) is not None
    }
    keys = list(numbers)
    width = max((len(k) for k in keys), default=10)
    lines = [f"{'field':<{width}}  {names[0]:>14}  {names[1]:>14}  {'change':>10}"]
    for key in keys:
        va, vb = numbers[key]
        change = "" if va == vb else ("n/a" if va == 0 else f"{(vb - va) / abs(va):+.1%}")
        lines.append(f"{key:<{width}}  {va:>14.4g}  {vb:>14.4g}  {change:>10}")
    for label, report in zip(names, (a, b), strict=True):
        health = report.get("client_health")
        if isinstance(health, dict) and health.get("flagged"):
            reasons = health.get("reasons")
            said = "; ".join(map(str, reasons)) if isinstance(reasons, list) else ""
            lines.append(f"{label} is flagged: {said}")
    return "\n".join(lines)


def write_csv(reports: Sequence[Report], out: IO[str] | None = None) -> str:
    """One CSV row per report (a run, or each step of a sweep): the scalar fields."""
    rows = [{k: v for k, v in r.fields.items() if not isinstance(v, dict | list)} for r in reports]
    names: list[str] = []
    for row in rows:
        names.extend(k for k in row if k not in names)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    writer.writerows(rows)
    text = buffer.getvalue()
    if out is not None:
        out.write(text)
    return text
