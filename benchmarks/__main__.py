"""``python -m benchmarks`` (``make bench``): run the suite, print the tables, draw the plot.

Options:
    --only NAME     run one benchmark (repeatable): sse, pipeline, e2e, accumulate
    --quick         tiny inputs and one or two rounds (a smoke run, numbers meaningless)
    --json          print one JSON document on stdout (the tables go to stderr)
    --save FILE     also write the JSON document to FILE
    --report FILE   also write the Markdown report (all tables and targets) to FILE
    --plot FILE     where to draw the SSE plot (default docs/performance.png; on unless
                    --quick); --no-plot to skip it
    --profile       instead of benchmarking, print cProfile summaries of rxgpt's workloads
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .common import SCHEMA_VERSION, BenchResult, format_targets, machine_info, progress

__all__ = ["BENCHMARKS", "create_parser", "main"]


def _runner(module: str) -> Callable[[bool], BenchResult]:
    """The ``run(quick)`` of ``benchmarks.<module>``, imported only when it runs."""

    def run(quick: bool) -> BenchResult:
        result: BenchResult = importlib.import_module(f".{module}", __package__).run(quick)
        return result

    return run


#: Benchmark name → runner, in the order they run.
BENCHMARKS: dict[str, Callable[[bool], BenchResult]] = {
    "sse": _runner("bench_sse"),
    "pipeline": _runner("bench_pipeline"),
    "e2e": _runner("bench_e2e"),
    "accumulate": _runner("bench_accumulate"),
    "scale": _runner("bench_scale"),
    "relay": _runner("bench_relay"),
    "server": _runner("bench_server"),
}


def create_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="rxgpt against its peers, alternating repeats on the same bytes.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="tiny inputs (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--save", metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument(
        "--report",
        metavar="FILE",
        help="also write the Markdown report to FILE (make bench: benchmarks/results/...)",
    )
    plot = parser.add_mutually_exclusive_group()
    plot.add_argument(
        "--plot",
        metavar="FILE",
        help="draw the SSE plot here (default benchmarks/results/performance.png, on unless "
        "--quick)",
    )
    plot.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print cProfile summaries of rxgpt's workloads instead of benchmarking",
    )
    return parser


def _warm_imports() -> None:
    """Import every peer before anything is measured (imports are not benchmark results)."""
    import aiohttp_sse_client.client  # type: ignore[import-untyped]
    import httpx_sse
    import openai
    import openai.lib.streaming.chat
    import reactivex
    import sseclient

    import rxgpt

    from .bench_sse import import_httpx

    import_httpx()
    del aiohttp_sse_client, httpx_sse, openai, reactivex, rxgpt, sseclient


def _header(info: dict[str, Any], quick: bool) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in info["packages"].items())
    mode = " — QUICK MODE: tiny inputs, numbers are not meaningful" if quick else ""
    return (
        f"# rxgpt benchmarks{mode}\n\n"
        f"{info['date']} · Python {info['python']} ({info['implementation']}) · "
        f"{info['cpu']} × {info['cpus']} · {info['platform']}\n\n{packages}\n\n"
        "Times are process CPU time (median of alternating repeats, best beside it); "
        "ratios are peer ÷ rxgpt (above 1 = slower than rxgpt). See docs/performance.md.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; return the exit status."""
    args = create_parser().parse_args(argv)
    names = args.only or list(BENCHMARKS)
    out = sys.stderr if args.json else sys.stdout
    _warm_imports()

    if args.profile:
        from .profiling import profiles

        for title, table in profiles(names, args.quick):
            print(f"### profile: {title}\n\n{table}\n", file=out, flush=True)
        return 0

    info = machine_info()
    report: list[str] = []

    def emit(text: str) -> None:
        report.append(text)
        print(text, file=out, flush=True)

    emit(_header(info, args.quick))
    results: list[BenchResult] = []
    start = time.perf_counter()
    for name in names:
        progress(f"== {name}")
        result = BENCHMARKS[name](args.quick)
        results.append(result)
        for table in result.tables:
            emit(table)
        progress(f"== {name} done in {result.seconds:.1f} s")
    targets = [target for result in results for target in result.targets]
    if targets:
        emit("## Targets\n\n" + format_targets(targets) + "\n")
    total = time.perf_counter() - start
    emit(f"Total time: {total:.0f} s\n")
    if args.report:
        Path(args.report).write_text("\n".join(report), encoding="utf-8")
        progress(f"report written to {args.report}")

    plot_path: Path | None = None
    sse = next((r for r in results if r.name == "sse"), None)
    if sse is not None and not args.no_plot and (args.plot or not args.quick):
        from .bench_sse import main_cases
        from .plot import DEFAULT_PATH, plot_sse

        plot_path = plot_sse(main_cases(sse), Path(args.plot) if args.plot else DEFAULT_PATH)
        progress(f"plot written to {plot_path}")

    document = {
        "schema": SCHEMA_VERSION,
        "machine": info,
        "quick": args.quick,
        "seconds": total,
        "plot": str(plot_path) if plot_path else None,
        "benchmarks": {result.name: result.to_json() for result in results},
        "targets": [target.to_json() for target in targets],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if args.save:
        Path(args.save).write_text(text + "\n", encoding="utf-8")
        progress(f"JSON written to {args.save}")
    if args.json:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
