"""PNG plots of a report (matplotlib, the ``plot`` extra): latency distributions, tokens/s
and requests in flight over time, and for sweeps the latency-throughput curves."""

from __future__ import annotations

import os
from typing import Any

from ._report import Report
from ._stats import Histogram

__all__ = ["write_plots"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _distribution(ax: Any, hist: Histogram, title: str) -> None:
    pairs = hist.buckets()
    if not pairs:
        ax.set_title(f"{title} (no data)")
        return
    low = hist.percentile(0.1) or 0.0
    high = hist.percentile(99.9) or 1.0
    if high <= low:
        high = low + 1.0
    bins = 60
    width = (high - low) / bins
    counts = [0] * bins
    for value, count in pairs:
        if low <= value <= high:
            counts[min(int((value - low) / width), bins - 1)] += count
    ax.bar([low + (i + 0.5) * width for i in range(bins)], counts, width=width, color="#3b6ea8")
    for p, style in ((50, "-"), (99, "--")):
        mark = hist.percentile(p)
        if mark is not None:
            ax.axvline(
                mark, color="#c0392b", linestyle=style, linewidth=1, label=f"p{p} {mark:.1f}"
            )
    ax.set_title(title)
    ax.set_xlabel("ms")
    ax.legend(fontsize=7)


def write_plots(report: Report, directory: str) -> list[str]:
    """Write the plots of ``report`` into ``directory``; return their paths."""
    plt = _pyplot()
    os.makedirs(directory, exist_ok=True)
    paths: list[str] = []
    if report.steps:
        paths.append(_sweep_plot(plt, report, directory))
        return paths
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    titles = {
        "ttft": "TTFT",
        "ttfc": "TTFC (first answer chunk)",
        "tpot": "TPOT",
        "itl": "ITL per chunk",
        "token_itl": "ITL per token",
        "e2el": "E2E latency",
    }
    for ax, (name, title) in zip(axes.flat, titles.items(), strict=False):
        _distribution(ax, report.histograms.get(name, Histogram()), title)
    flag = " — CLIENT FLAGGED" if report.flagged else ""
    fig.suptitle(f"rxgpt bench: latency distributions{flag}")
    fig.tight_layout()
    path = os.path.join(directory, "latency.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)

    fig, ax = plt.subplots(figsize=(10, 4))
    tokens = report.series.get("output_tokens_per_s", [])
    ax.plot(
        [t + 0.5 for t, _ in tokens], [v for _, v in tokens], color="#3b6ea8", label="output tok/s"
    )
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("output tokens/s")
    twin = ax.twinx()
    inflight = report.series.get("in_flight", [])
    twin.step(
        [t for t, _ in inflight],
        [v for _, v in inflight],
        where="post",
        color="#e67e22",
        label="in flight",
    )
    twin.set_ylabel("requests in flight")
    fig.legend(loc="upper right", fontsize=8)
    ax.set_title("Throughput and requests in flight over time")
    fig.tight_layout()
    path = os.path.join(directory, "timeline.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def _sweep_plot(plt: Any, report: Report, directory: str) -> str:
    steps = sorted(report.steps, key=lambda s: float(s.fields.get("request_throughput") or 0))
    x = [float(s.fields.get("request_throughput") or 0) for s in steps]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, metric, title in zip(
        axes, ("ttft", "itl", "e2el"), ("TTFT", "ITL", "E2E latency"), strict=True
    ):
        for stat, style in (("median", "-o"), ("p99", "--s")):
            ys = [s.fields.get(f"{stat}_{metric}_ms") for s in steps]
            ax.plot(x, [y if y is not None else float("nan") for y in ys], style, label=stat)
        ax.set_xlabel("achieved requests/s")
        ax.set_ylabel("ms")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("rxgpt bench sweep: latency against load")
    fig.tight_layout()
    path = os.path.join(directory, "sweep.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
