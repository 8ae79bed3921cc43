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
from collections.abc import Callable
from typing import Any

from .._cli_types import (
    MAX_SECONDS,
    MAX_WORKERS,
    api_key_problem,
    base_url,
    fail,
    integer,
    milliseconds,
    number,
    say,
    utf8_text,
    workers,
)
from .._errors import RxgptError
from .._files import check_directory, check_writable, json_problem
from .._providers import PROVIDERS
from .._secrets import SENSITIVE_HEADERS, redact, register_secret
from .._ulimit import raise_open_files
from ._config import (
    DATASETS,
    MAX_CONCURRENCY,
    MAX_OUTPUT_TOKENS,
    MAX_PROMPT_TOKENS,
    MAX_REQUESTS,
    MAX_WORKLOAD_TOKENS,
    BenchConfig,
    SLOTarget,
    Window,
    parse_goodput,
    parse_percentiles,
    parse_slo_targets,
    parse_window,
)
from ._stats import DEFAULT_PERCENTILES

__all__ = ["add_bench_arguments", "bench_from_args", "config_from_args"]

#: A duration in seconds, more than 0 (``5`` or ``5s``).
_seconds = number(0, MAX_SECONDS, unit="seconds", low_open=True, suffix="s")
#: A duration in seconds, 0 or more (``--ramp-up``).
_seconds_or_zero = number(0, MAX_SECONDS, unit="seconds", suffix="s")
#: The flags' bounds (see the reasons in ``_config``).
_prompt_tokens = integer(1, MAX_PROMPT_TOKENS)
_prefix_tokens = integer(0, MAX_PROMPT_TOKENS)
_output_tokens = integer(1, MAX_OUTPUT_TOKENS)
_requests = integer(1, MAX_REQUESTS)
_concurrency = integer(1, MAX_CONCURRENCY)
_seed = integer(-(2**63), 2**63 - 1)
#: --sweep-size: the steps of a sweep (each a whole run).
_sweep_steps = integer(2, 100)
#: --slo-search-steps: bisection steps (64 halve any interval below a float's precision).
_bisections = integer(1, 64)
#: The most a request rate or burstiness may be, other than inf.
_MAX_RATE = 1e9


def _rate(text: str) -> float:
    """A rate or a gamma shape: more than 0, at most 1e9, or ``inf``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate (a number, or inf)") from None
    if not (value > 0 and (value <= _MAX_RATE or value == math.inf)):
        raise argparse.ArgumentTypeError(f"{text!r}: a rate is more than 0, at most 1e9, or inf")
    return value


#: --range-ratio: from 0 up to (not including) 1.
_ratio = number(0, 1, high_open=True)


def _window(text: str) -> Window:
    """--warmup / --cooldown: ``N`` requests or ``Ns`` / ``Nms``."""
    try:
        return parse_window(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _percentiles(text: str) -> tuple[float, ...]:
    try:
        return parse_percentiles(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _line(text: str) -> str:
    """Text for an HTTP header: UTF-8, no line break (which would end the header)."""
    utf8_text(text)
    if "\r" in text or "\n" in text or "\0" in text:
        raise argparse.ArgumentTypeError("holds a line break or NUL, which no header can carry")
    return text


def _api_key(text: str) -> str:
    """--api-key: what an HTTP header can carry (the refusal never shows the key)."""
    problem = api_key_problem(utf8_text(text))
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _pair(sep: str) -> Callable[[str], tuple[str, str]]:
    """A ``KEY<sep>VALUE`` argument (--header NAME:VALUE, --metadata KEY=VALUE)."""

    def parse(text: str) -> tuple[str, str]:
        utf8_text(text)
        key, found, value = text.partition(sep)
        if not found or not key.strip():
            raise argparse.ArgumentTypeError(f"expects KEY{sep}VALUE, got {redact(text)!r}")
        return key.strip(), value.strip()

    parse.__name__ = "pair"
    return parse


_metadata = _pair("=")


def _header(text: str) -> tuple[str, str]:
    name, value = _pair(":")(_line(text))
    if not all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name):
        raise argparse.ArgumentTypeError(f"{name[:40]!r} is not a header name")
    return name, value


def _extra_body(text: str) -> dict[str, Any]:
    """--extra-body: a JSON object a request body can carry."""
    utf8_text(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"is not JSON: {error}") from None
    except (RecursionError, ValueError):
        raise argparse.ArgumentTypeError("is JSON no request can carry") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    problem = json_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"cannot be sent: {problem}")
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
    target.add_argument(
        "--base-url", type=base_url, help="API base URL (default: the embedded server)"
    )
    target.add_argument(
        "--api-key", type=_api_key, help="API key (default: the provider's env variable)"
    )
    target.add_argument("--provider", default="openai", choices=sorted(PROVIDERS))
    target.add_argument(
        "--model", type=utf8_text, help="model name (default: the provider's / rxgpt-mock)"
    )
    target.add_argument("--header", type=_header, action="append", default=[], metavar="NAME:VALUE")
    target.add_argument(
        "--extra-body", type=_extra_body, metavar="JSON", help="extra request body fields"
    )
    target.add_argument(
        "--timeout", type=_seconds, default=600.0, help="per request, s (default 600)"
    )

    work = parser.add_argument_group(
        "workload",
        f"(a prompt holds at most {MAX_PROMPT_TOKENS} tokens, --input-len + --prefix-len; "
        f"a run builds at most {MAX_WORKLOAD_TOKENS} prompt tokens in all)",
    )
    work.add_argument("--dataset", "--dataset-name", default="random", choices=DATASETS)
    work.add_argument("--dataset-path", help="a ShareGPT JSON or a JSONL file of prompts")
    work.add_argument("--input-len", "--random-input-len", type=_prompt_tokens, default=256)
    work.add_argument(
        "--output-len",
        "--random-output-len",
        type=_output_tokens,
        default=128,
        help=f"default 128, at most {MAX_OUTPUT_TOKENS}",
    )
    work.add_argument(
        "--range-ratio", "--random-range-ratio", type=_ratio, default=0.0, help="0 to <1"
    )
    work.add_argument("--prefix-len", "--random-prefix-len", type=_prefix_tokens, default=0)
    work.add_argument("--max-tokens", type=_output_tokens, help="cap every answer")
    work.add_argument("--ignore-eos", action="store_true", help="send ignore_eos (vLLM)")
    work.add_argument(
        "--continuous-usage",
        action="store_true",
        help="ask for usage in every chunk (vLLM continuous_usage_stats): exact per-token ITL",
    )

    load = parser.add_argument_group("load")
    load.add_argument(
        "--num-prompts", type=_requests, help=f"requests (default 200, at most {MAX_REQUESTS})"
    )
    load.add_argument("--duration", type=_seconds, help="send for this many seconds instead")
    load.add_argument("--request-rate", type=_rate, default=math.inf, help="req/s (inf)")
    load.add_argument("--burstiness", type=_rate, default=1.0, help="gamma shape (1: Poisson)")
    load.add_argument(
        "--max-concurrency",
        type=_concurrency,
        help=f"cap; closed loop at inf (at most {MAX_CONCURRENCY})",
    )
    load.add_argument("--ramp-up", type=_seconds_or_zero, default=0.0, help="seconds to full load")
    load.add_argument(
        "--warmup", type=_window, default=Window(), help="excluded: N requests, or Ns seconds"
    )
    load.add_argument(
        "--cooldown", type=_window, default=Window(), help="excluded: N requests, or Ns seconds"
    )
    load.add_argument("--seed", type=_seed, default=0)
    load.add_argument(
        "--workers",
        type=workers,
        help=f"client processes (default: auto; at most {MAX_WORKERS}: 4 per CPU)",
    )

    stats = parser.add_argument_group("statistics")
    stats.add_argument(
        "--percentiles",
        "--metric-percentiles",
        type=_percentiles,
        default=DEFAULT_PERCENTILES,
        help=f"comma-separated (default {','.join(f'{p:g}' for p in DEFAULT_PERCENTILES)})",
    )
    stats.add_argument("--goodput", nargs="+", default=[], metavar="METRIC:MS")

    search = parser.add_argument_group("sweeps")
    search.add_argument("--sweep", action="store_true", help="synchronous → throughput → rates")
    search.add_argument("--sweep-size", type=_sweep_steps, default=6, help="2 to 100 (6)")
    search.add_argument("--slo-search", metavar="TARGETS", help="e.g. p99_ttft_ms<=200")
    search.add_argument("--slo-search-over", choices=("rate", "concurrency"), default="rate")
    search.add_argument("--slo-search-steps", type=_bisections, default=6, help="1 to 64 (6)")

    out = parser.add_argument_group("output")
    out.add_argument("--output-json", "--result-filename", metavar="FILE")
    out.add_argument("--save-detailed", metavar="FILE.jsonl", help="per-request records")
    out.add_argument("--csv", metavar="FILE")
    out.add_argument("--plot", metavar="DIR", help="write PNG plots into DIR")
    out.add_argument("--label", type=utf8_text)
    out.add_argument("--metadata", type=_metadata, nargs="*", default=[], metavar="KEY=VALUE")
    out.add_argument("--no-progress", action="store_true", help="no live dashboard")
    out.add_argument("--fail-on-flag", action="store_true", help="exit 3 if client-flagged")

    mock = parser.add_argument_group("embedded server (no --base-url and no key)")
    mock.add_argument("--mock-ttft-ms", type=milliseconds, default=50.0)
    mock.add_argument("--mock-itl-ms", type=milliseconds, default=10.0)


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """The :class:`BenchConfig` the options describe (ValueError for a mistake)."""
    headers = dict(args.header)
    register_secret(args.api_key)  # (then no message or file shows it)
    for name, value in headers.items():
        if name.lower() in SENSITIVE_HEADERS:
            register_secret(value.removeprefix("Bearer ").strip())
    return BenchConfig(
        base_url=args.base_url,
        api_key=args.api_key,
        provider=args.provider,
        model=args.model,
        headers=headers,
        extra_body=args.extra_body or {},
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
        warmup=args.warmup,
        cooldown=args.cooldown,
        seed=args.seed,
        percentiles=args.percentiles,
        goodput=parse_goodput(args.goodput),
        continuous_usage=args.continuous_usage,
        timeout=args.timeout,
        workers=args.workers,
        save_detailed=args.save_detailed,
        label=args.label,
        metadata=dict(args.metadata),
        progress=not args.no_progress,
        mock_ttft_ms=args.mock_ttft_ms,
        mock_itl_ms=args.mock_itl_ms,
    )


def _compare(paths: list[str]) -> int:
    from ._report import compare, load_report

    if len(paths) != 3:
        return fail("rxgpt bench", "compare expects two report files: compare A.json B.json", 2)
    try:
        a, b = load_report(paths[1]), load_report(paths[2])
    except ValueError as error:
        return fail("rxgpt bench compare", str(error), 2)
    return _print(compare(a, b, (paths[1], paths[2])))


def _print(text: str) -> int:
    """Print ``text`` on stdout: 0; the closed-pipe status when stdout is closed; 1 (one
    line on stderr) when it cannot be written (a full disk)."""
    from .._cli import _stdout_failed

    # What stdout's encoding cannot carry (a file name of bytes that are not UTF-8, a
    # "\udcff" escape in a report's JSON, any non-ASCII under PYTHONIOENCODING=ascii) is
    # shown as a backslash escape.
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    text = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
    try:
        print(text)
        sys.stdout.flush()
    except OSError as error:
        return _stdout_failed(error, "bench")
    return 0


def _outputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The output files asked for, each with its flag."""
    flags = [
        ("--output-json", args.output_json),
        ("--csv", args.csv),
        ("--save-detailed", args.save_detailed),
    ]
    return [(flag, path) for flag, path in flags if path]


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before the run, an output that could not be written after it (ValueError)."""
    for flag, path in _outputs(args):
        check_writable(path, flag)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError as error:
            need = "--plot needs matplotlib (pip install 'rxgpt[plot]')"
            raise ValueError(f"{need}: {error}") from None
        check_directory(args.plot, "--plot")


def _check_targets(text: str, config: BenchConfig) -> tuple[SLOTarget, ...]:
    """--slo-search's targets, each naming a numeric field of the report (ValueError)."""
    from ._sweep import check_targets

    targets = parse_slo_targets(text)
    check_targets(targets, config)
    return targets


def _write_outputs(args: argparse.Namespace, report: Any) -> str | None:
    """Write --output-json, --csv and --plot; what failed (naming its flag and file), or
    None."""
    from ._report import write_csv

    def write_csv_file(path: str) -> None:
        with open(path, "w", encoding="utf-8", newline="") as f:
            write_csv(report.steps or [report], f)

    def write_plot_files(path: str) -> None:
        from ._plots import write_plots

        for written in write_plots(report, path):
            say(f"rxgpt bench: wrote {written}")

    writers: list[tuple[str, str | None, Callable[[str], None]]] = [
        ("--output-json", args.output_json, report.write_json),
        ("--csv", args.csv, write_csv_file),
        ("--plot", args.plot, write_plot_files),
    ]
    for flag, path, write in writers:
        if not path:
            continue
        try:
            write(path)
        except ImportError as error:  # (a matplotlib that imports, but not all of it)
            return f"{flag} needs matplotlib (pip install 'rxgpt[plot]'): {error}"
        except OSError as error:  # (error.filename is None for ENOSPC in a write)
            return f"cannot write {flag} {error.filename or path}: {error.strerror or error}"
    return None


def bench_from_args(args: argparse.Namespace) -> int:
    """Run ``rxgpt bench`` as the parsed options say; return the exit status."""
    try:
        return _bench(args)
    except KeyboardInterrupt:  # Ctrl+C: quietly, as every rxgpt command
        return 130


def _bench(args: argparse.Namespace) -> int:
    if args.compare:
        if args.compare[0] != "compare":
            return fail(
                "rxgpt bench",
                f"unexpected argument {redact(args.compare[0])!r} "
                "(did you mean: rxgpt bench compare A.json B.json?)",
                2,
            )
        return _compare(args.compare)
    try:
        config = config_from_args(args)
        targets = _check_targets(args.slo_search, config) if args.slo_search else None
        _check_outputs(args)
    except ValueError as error:
        return fail("rxgpt bench", redact(str(error)), 2)
    from ._dashboard import run_with_progress

    raise_open_files()  # (each stream is an open file, here and in the embedded server)
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
        return fail("rxgpt bench", redact(str(error)), 2)
    except RxgptError as error:
        return fail("rxgpt bench", f"{type(error).__name__}: {redact(str(error))}", 1)
    except OSError as error:  # (a file of --save-detailed, processes or sockets it ran out of)
        where = f" {error.filename}" if error.filename else ""
        return fail("rxgpt bench", redact(f"{where} {error.strerror or error}".strip()), 1)
    if report.steps:
        from ._sweep import steps_table

        status = _print(steps_table(report))
    else:
        status = _print(report.table())
    failed = _write_outputs(args, report)
    if failed is not None:
        return fail("rxgpt bench", redact(failed), 2)
    if status:
        return status
    runs = report.steps or [report]
    if all(run.fields.get("completed", 0) == 0 for run in runs):
        failures: dict[str, int] = {}
        for run in runs:
            for kind, n in (run.fields.get("failures") or {}).items():
                failures[kind] = failures.get(kind, 0) + n
        why = ", ".join(f"{kind}: {n}" for kind, n in sorted(failures.items())) or "no answer"
        target = runs[0].fields.get("base_url")
        return fail("rxgpt bench", f"no request succeeded against {target} ({why})", 1)
    if args.fail_on_flag and report.flagged:
        return 3
    return 0
