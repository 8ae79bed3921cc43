"""The plot of the SSE decoding benchmark: events/s per peer, one panel per case.

Heartbeats are counted in comments/s and the big-line case in MB/s.

Rendered with matplotlib's Agg backend (no display needed) into a PNG, by default
``docs/performance.png``. Linear x axis from zero, so bar lengths compare honestly.
"""

from __future__ import annotations

from pathlib import Path

from .common import Case

__all__ = ["DEFAULT_PATH", "plot_sse"]

#: Where ``python -m benchmarks`` writes the plot unless told otherwise.
#: Where a run draws its plot: the untracked results folder (``make bench-update`` draws
#: the committed docs/performance.png instead).
DEFAULT_PATH = Path(__file__).resolve().parent / "results" / "performance.png"


def plot_sse(cases: list[Case], path: Path, *, title: str = "") -> Path:
    """Draw units/s per peer for each case (rxgpt highlighted); return the written path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    def short(value: float, _pos: object = None) -> str:
        if value >= 1e6:
            return f"{value / 1e6:.1f}M"
        if value >= 1e3:
            return f"{value / 1e3:.0f}k"
        return f"{value:.0f}" if value >= 10 else f"{value:.1f}"

    columns = 2
    rows = (len(cases) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(13, 3.1 * rows), squeeze=False)
    for index, case in enumerate(cases):
        ax = axes[index // columns][index % columns]
        names = [peer.name for peer in case.peers]
        # A case with a handful of huge events (the big line) is plotted in MB/s.
        by_bytes = case.units < 10 and case.nbytes > 0
        unit = "MB" if by_bytes else case.unit
        rates = [
            (case.nbytes / peer.median / 1e6 if peer.median else 0.0)
            if by_bytes
            else case.rate(peer) or 0.0
            for peer in case.peers
        ]
        colors = [
            "#d62728"
            if peer.reference
            else "#7f7f7f"
            if peer.name.startswith("floor")
            else "#1f77b4"
            for peer in case.peers
        ]
        positions = list(range(len(names)))[::-1]
        ax.barh(positions, rates, color=colors)
        ax.set_yticks(positions)
        ax.set_yticklabels(
            [
                name
                + (" (wrong)" if peer.check.startswith("MISMATCH") else "")
                + (" (failed)" if peer.error else "")
                for name, peer in zip(names, case.peers, strict=True)
            ],
            fontsize=7,
        )
        ax.set_xlim(0, max([*rates, 1.0]) * 1.15)
        ax.xaxis.set_major_formatter(FuncFormatter(short))
        ax.set_title(f"{case.name} — {unit}/s (higher is better)", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        for pos, rate in zip(positions, rates, strict=True):
            label = " " + (short(rate) if rate > 0 else "failed")
            ax.text(rate, pos, label, va="center", fontsize=6)
    for index in range(len(cases), rows * columns):
        axes[index // columns][index % columns].axis("off")
    fig.suptitle(title or "SSE decoding throughput (median, process CPU time)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
