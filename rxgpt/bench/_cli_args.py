"""``rxgpt bench`` on the command line: :func:`add_bench_arguments` and :func:`bench_from_args`.

The lead's ``rxgpt/_cli.py`` adds a ``bench`` subcommand whose parser goes through
:func:`add_bench_arguments` and whose namespace goes to :func:`bench_from_args` (the exit
status). ``rxgpt bench compare A.json B.json`` prints the differences of two reports.
Mistakes are one line on stderr and exit status 2; a run with no successful request exits
1; ``--fail-on-flag`` makes a flagged run exit 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from typing import Any

from .._cli_types import positive as _positive
from .._errors import RxgptError
from .._providers import PROVIDERS
from ._config import (
    DATASETS,
    BenchConfig,
    parse_goodput,
    parse_slo_targets,
    parse_window,
)

__all__ = ["add_bench_arguments", "bench_from_args", "config_from_args"]


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate (a number, or inf)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a rate is more than 0")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative number of seconds")
    return value


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``rxgpt bench``'s options (and the ``compare A.json B.json`` form) to ``parser``."""
    parser.add_argument(
        "compare",
        nargs="*",
        metavar="compare A.json B.json",
        help="print the differences between two --output-json reports",
    )
    target = parser.add_argument_group("target")
    target.add_argument("--base-url", help="API base URL (default: the embedded server)")
    target.add_argument("--api-key", help="API key (default: the provider's env variable)")
    target.add_argument("--provider", default="openai", choices=sorted(PROVIDERS))
    target.add_argument("--model", help="model name (default: the provider's / rxgpt-mock)")
    target.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    target.add_argument("--extra-body", metavar="JSON", help="extra request body fields")
    target.add_argument("--timeout", type=_seconds, default=600.0, help="per request, s")

    work = parser.add_argument_group("workload")
    work.add_argument("--dataset", "--dataset-name", default="random", choices=DATASETS)
    work.add_argument("--dataset-path", help="a ShareGPT JSON or a JSONL file of prompts")
    work.add_argument("--input-len", "--random-input-len", type=_positive, default=256)
    work.add_argument("--output-len", "--random-output-len", type=_positive, default=128)
    work.add_argument("--range-ratio", "--random-range-ratio", type=float, default=0.0)
    work.add_argument("--prefix-len", "--random-prefix-len", type=int, default=0)
    work.add_argument("--max-tokens", type=_positive, help="cap every answer")
    work.add_argument("--ignore-eos", action="store_true", help="send ignore_eos (vLLM)")
    work.add_argument(
        "--continuous-usage",
        action="store_true",
        help="ask for usage in every chunk (vLLM continuous_usage_stats): exact per-token ITL",
    )

    load = parser.add_argument_group("load")
    load.add_argument("--num-prompts", type=_positive, help="requests (default 200)")
    load.add_argument("--duration", type=_seconds, help="send for this many seconds instead")
    load.add_argument("--request-rate", type=_rate, default=math.inf, help="req/s (inf)")
    load.add_argument("--burstiness", type=_rate, default=1.0, help="gamma shape (1: Poisson)")
    load.add_argument("--max-concurrency", type=_positive, help="cap; closed loop at inf")
    load.add_argument("--ramp-up", type=_seconds, default=0.0, help="seconds to full load")
    load.add_argument("--warmup", default="0", help="excluded: N requests, or Ns seconds")
    load.add_argument("--cooldown", default="0", help="excluded: N requests, or Ns seconds")
    load.add_argument("--seed", type=int, default=0)
    load.add_argument("--workers", type=_positive, help="client processes (default: auto)")

    stats = parser.add_argument_group("statistics")
    stats.add_argument(
        "--percentiles",
        "--metric-percentiles",
        default="50,90,95,99,99.9",
        help="comma-separated (default 50,90,95,99,99.9)",
    )
    stats.add_argument("--goodput", nargs="+", default=[], metavar="METRIC:MS")

    search = parser.add_argument_group("sweeps")
    search.add_argument("--sweep", action="store_true", help="synchronous → throughput → rates")
    search.add_argument("--sweep-size", type=_positive, default=6)
    search.add_argument("--slo-search", metavar="TARGETS", help="e.g. p99_ttft_ms<=200")
    search.add_argument("--slo-search-over", choices=("rate", "concurrency"), default="rate")
    search.add_argument("--slo-search-steps", type=_positive, default=6)

    out = parser.add_argument_group("output")
    out.add_argument("--output-json", "--result-filename", metavar="FILE")
    out.add_argument("--save-detailed", metavar="FILE.jsonl", help="per-request records")
    out.add_argument("--csv", metavar="FILE")
    out.add_argument("--plot", metavar="DIR", help="write PNG plots into DIR")
    out.add_argument("--label")
    out.add_argument("--metadata", nargs="*", default=[], metavar="KEY=VALUE")
    out.add_argument("--no-progress", action="store_true", help="no live dashboard")
    out.add_argument("--fail-on-flag", action="store_true", help="exit 3 if client-flagged")

    mock = parser.add_argument_group("embedded server (no --base-url and no key)")
    mock.add_argument("--mock-ttft-ms", type=float, default=50.0)
    mock.add_argument("--mock-itl-ms", type=float, default=10.0)


def _pairs(items: list[str], sep: str, what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, found, value = item.partition(sep)
        if not found or not key.strip():
            raise ValueError(f"{what} expects KEY{sep}VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """The :class:`BenchConfig` the options describe (ValueError for a mistake)."""
    extra: dict[str, Any] = {}
    if args.extra_body:
        try:
            extra = json.loads(args.extra_body)
        except json.JSONDecodeError as error:
            raise ValueError(f"--extra-body is not JSON: {error}") from None
        if not isinstance(extra, dict):
            raise ValueError("--extra-body must be a JSON object")
    try:
        percentiles = tuple(float(p) for p in args.percentiles.split(",") if p.strip())
    except ValueError:
        raise ValueError(f"--percentiles {args.percentiles!r}: not numbers") from None
    return BenchConfig(
        base_url=args.base_url,
        api_key=args.api_key,
        provider=args.provider,
        model=args.model,
        headers=_pairs(args.header, ":", "--header"),
        extra_body=extra,
        dataset=args.dataset,
        dataset_path=args.dataset_path,
        input_len=args.input_len,
        output_len=args.output_len,
        range_ratio=args.range_ratio,
        prefix_len=args.prefix_len,
        max_tokens=args.max_tokens,
        ignore_eos=args.ignore_eos,
        num_prompts=args.num_prompts,
        duration=args.duration,
        request_rate=args.request_rate,
        burstiness=args.burstiness,
        max_concurrency=args.max_concurrency,
        ramp_up=args.ramp_up,
        warmup=parse_window(args.warmup),
        cooldown=parse_window(args.cooldown),
        seed=args.seed,
        percentiles=percentiles,
        goodput=parse_goodput(args.goodput),
        continuous_usage=args.continuous_usage,
        timeout=args.timeout,
        workers=args.workers,
        save_detailed=args.save_detailed,
        label=args.label,
        metadata=_pairs(args.metadata, "=", "--metadata"),
        progress=not args.no_progress,
        mock_ttft_ms=args.mock_ttft_ms,
        mock_itl_ms=args.mock_itl_ms,
    )


def _compare(paths: list[str]) -> int:
    from ._report import compare, load_report

    if len(paths) != 3:
        sys.stderr.write("rxgpt bench: compare expects two report files: compare A.json B.json\n")
        return 2
    try:
        a, b = load_report(paths[1]), load_report(paths[2])
    except ValueError as error:
        sys.stderr.write(f"rxgpt bench compare: {error}\n")
        return 2
    print(compare(a, b, (paths[1], paths[2])))
    return 0


def bench_from_args(args: argparse.Namespace) -> int:
    """Run ``rxgpt bench`` as the parsed options say; return the exit status."""
    if args.compare:
        if args.compare[0] != "compare":
            sys.stderr.write(
                f"rxgpt bench: unexpected argument {args.compare[0]!r} "
                "(did you mean: rxgpt bench compare A.json B.json?)\n"
            )
            return 2
        return _compare(args.compare)
    try:
        config = config_from_args(args)
        targets = parse_slo_targets(args.slo_search) if args.slo_search else None
    except ValueError as error:
        sys.stderr.write(f"rxgpt bench: {error}\n")
        return 2
    from ._dashboard import run_with_progress
    from ._report import write_csv

    try:
        if targets is not None:
            from ._sweep import slo_search

            report = asyncio.run(
                slo_search(config, targets, over=args.slo_search_over, steps=args.slo_search_steps)
            )
        elif args.sweep:
            from ._sweep import sweep

            report = asyncio.run(sweep(config, size=args.sweep_size))
        else:
            report = asyncio.run(run_with_progress(config))
    except ValueError as error:
        sys.stderr.write(f"rxgpt bench: {error}\n")
        return 2
    except RxgptError as error:
        sys.stderr.write(f"rxgpt bench: {type(error).__name__}: {error}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("rxgpt bench: interrupted\n")
        return 130
    if report.steps:
        from ._sweep import steps_table

        print(steps_table(report))
    else:
        print(report.table())
    try:
        if args.output_json:
            report.write_json(args.output_json)
        if args.csv:
            with open(args.csv, "w", encoding="utf-8", newline="") as f:
                write_csv(report.steps or [report], f)
        if args.plot:
            from ._plots import write_plots

            for path in write_plots(report, args.plot):
                sys.stderr.write(f"rxgpt bench: wrote {path}\n")
    except OSError as error:
        sys.stderr.write(f"rxgpt bench: cannot write output: {error.strerror or error}\n")
        return 2
    except ImportError as error:
        sys.stderr.write(f"rxgpt bench: --plot needs matplotlib (rxgpt[plot]): {error}\n")
        return 2
    if report.fields.get("completed", 0) == 0 and not report.steps:
        return 1
    if args.fail_on_flag and report.flagged:
        return 3
    return 0
