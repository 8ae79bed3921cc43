"""``rxgpt bench``: a streaming benchmark of LLM servers that measures right, and says when
it cannot.

Python API: :func:`run` (``run(BenchConfig(...)) -> Report``) and :func:`arun` in a running
loop; :func:`compare` two report files' fields. The command line (``rxgpt bench``) is a
thin layer over it (:func:`add_bench_arguments`, :func:`bench_from_args`). Definitions of
every metric, the client-health flag and the cross-walk with vLLM, guidellm, genai-perf /
AIPerf and llmperf: docs/bench.md.
"""

from __future__ import annotations

from ._cli_args import add_bench_arguments, bench_from_args
from ._config import BenchConfig, HealthLimits, SLOTarget, Window
from ._report import Report, compare
from ._run import arun, run

__all__ = [
    "BenchConfig",
    "HealthLimits",
    "Report",
    "SLOTarget",
    "Window",
    "add_bench_arguments",
    "arun",
    "bench_from_args",
    "compare",
    "run",
]
