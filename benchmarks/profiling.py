"""cProfile summaries of rxgpt's own workloads: where its time goes, by function.

``python -m benchmarks --profile [--only NAME]`` runs, for each selected benchmark, the
rxgpt side of it under :mod:`cProfile` and prints the functions with the most *own* time
(``tottime``) and their share of the total. cProfile adds a cost per Python call, so the
shares are indicative (calls look more expensive than they are), the absolute times are not
benchmark results. Time spent waiting in ``epoll`` (idle) and in the harness's
``gc.collect()`` is left out of the table and of the total.
"""

from __future__ import annotations

import cProfile
import os
import pstats
from collections.abc import Callable, Iterator
from typing import Any

from .common import render_table

__all__ = ["profile_call", "profiles"]


def _where(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name  # a builtin, e.g. "<method 'split' of 'str' objects>"
    parts = filename.replace(os.sep, "/").split("/")
    for anchor in ("rxgpt", "site-packages", "benchmarks", "lib"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + (anchor != "rxgpt" and anchor != "benchmarks") :]
            break
    return f"{'/'.join(parts[-2:])}:{line}({name})"


def profile_call(fn: Callable[[], Any], *, top: int = 12, repeat: int = 3) -> str:
    """Profile ``repeat`` calls of ``fn``; a table of the ``top`` functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeat):
        fn()
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = {
        key: value
        for key, value in stats.stats.items()  # type: ignore[attr-defined]
        # the harness's own collections are not the workload's, and waiting in epoll is idle
        if "gc.collect" not in key[2] and "of 'select." not in key[2]
    }
    total = sum(entry[2] for entry in raw.values()) or 1.0
    ranked = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    rows = [
        [
            _where(key),
            f"{calls / repeat:,.0f}",
            f"{own * 1e3 / repeat:.1f}",
            f"{own / total * 100:.1f} %",
            f"{cumulative * 1e3 / repeat:.1f}",
        ]
        for key, (_, calls, own, cumulative, _callers) in ranked
    ]
    header = f"total {total * 1e3 / repeat:.1f} ms per run under cProfile (mean of {repeat})\n\n"
    return header + render_table(
        ["function", "calls/run", "own ms/run", "share", "cumulative ms/run"], rows
    )


def profiles(names: list[str], quick: bool) -> Iterator[tuple[str, str]]:
    """(title, table) for the rxgpt workloads of the benchmarks ``names``."""
    from . import bench_accumulate, bench_e2e, bench_pipeline, bench_sse

    modules = {
        "sse": bench_sse,
        "pipeline": bench_pipeline,
        "e2e": bench_e2e,
        "accumulate": bench_accumulate,
    }
    for name in names:
        for title, workload in modules[name].profile_workloads(quick):
            yield f"{name} / {title}", profile_call(workload)
