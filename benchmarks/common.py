"""The timing harness: alternating repeats, medians, ratios, plain-text tables and JSON.

Method (the same for every benchmark):

- Every peer of a case runs on the same input, in the same process, in **alternating
  rounds**: round 1 runs peer A, B, C..., round 2 runs A, B, C... again, and so on, so slow
  drifts of the machine (thermal, other processes, the noisy 2-vCPU VM) hit every peer alike.
- ``gc.collect()`` runs before every timed repeat; the garbage collector stays enabled
  during the repeat, as it is in real programs. What existed before the case started
  (modules, the input bytes) is frozen with ``gc.freeze()`` for the duration of the case, so
  neither those collections nor the ones a run triggers rescan it — the same for every peer.
- A repeat is timed around the whole run with ``time.process_time()`` (the CPU time of
  this process: the code under test is single-threaded and CPU-bound, and on a shared
  2-vCPU machine wall time also counts the time other processes held the CPU; the wall
  time is kept beside it), unless the run returns a :class:`Sample`, which carries its own
  measurement (the end-to-end benchmark measures CPU around the streaming only).
- The **median** over the repeats is the reported value, with the **best** beside it.
  Ratios are ``peer median / reference median`` (reference = rxgpt): above 1 the peer is
  slower than rxgpt.
- A peer that is very slow stops being repeated once its timed runs add up to its time
  ``budget`` (it keeps at least one sample); the sample count is shown (column ``n``).
- The output of each peer's first run is checked against what a correct decoder must
  produce (counts and data); the check result is part of every row, and a mismatch is
  reported, never hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rxgpt._collector import frozen

__all__ = [
    "SCHEMA_VERSION",
    "BenchResult",
    "Case",
    "Check",
    "Peer",
    "PeerResult",
    "Sample",
    "Target",
    "compare_items",
    "event_loop",
    "format_case",
    "format_targets",
    "machine_info",
    "progress",
    "render_table",
    "run_case",
]

#: Version of the JSON layout written by ``python -m benchmarks --json``.
SCHEMA_VERSION = 1


@contextlib.contextmanager
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private event loop for async peers; async generators are finalised before closing."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def progress(message: str) -> None:
    """Print a progress line on stderr (stdout is kept for the tables or the JSON)."""
    print(message, file=sys.stderr, flush=True)


@dataclass(slots=True)
class Sample:
    """What a run returns when it measures itself instead of being timed as a whole.

    ``seconds`` is the value the harness records (CPU seconds, an extrapolated time...),
    ``output`` is passed to the peer's check, and ``extra`` holds other per-repeat numbers
    (wall time, bytes...) whose medians are reported too.
    """

    seconds: float
    output: Any = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Check:
    """The verdict on one peer's output: how many units it produced, and what was wrong."""

    count: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the output matched the expectation."""
        return self.problem is None


@dataclass(slots=True)
class Peer:
    """One contender of a case.

    ``run`` performs one complete repeat and returns its output (or a :class:`Sample`);
    ``check`` judges the output of the first repeat (outside the timing); ``budget`` is the
    total of timed seconds after which the peer is not repeated any more.
    """

    name: str
    run: Callable[[], Any]
    check: Callable[[Any], Check] | None = None
    note: str = ""
    budget: float = 30.0
    reference: bool = False


@dataclass(slots=True)
class PeerResult:
    """The measurements of one peer in one case."""

    name: str
    times: list[float]
    note: str = ""
    count: int | None = None
    check: str = "n/a"
    error: str | None = None
    ratio: float | None = None
    extra: dict[str, list[float]] = field(default_factory=dict)
    reference: bool = False
    failures: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """What the check column shows: the error, or the check and any later failures."""
        if self.error:
            return self.error
        if self.failures:
            return f"{self.check}; {len(self.failures)} later run(s) failed: {self.failures[0]}"
        return self.check

    @property
    def median(self) -> float | None:
        """Median of the timed repeats (None when the peer failed)."""
        return statistics.median(self.times) if self.times else None

    @property
    def best(self) -> float | None:
        """Fastest timed repeat (None when the peer failed)."""
        return min(self.times) if self.times else None

    def extra_median(self, key: str) -> float | None:
        """Median of one of the ``extra`` per-repeat numbers."""
        values = self.extra.get(key)
        return statistics.median(values) if values else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times in seconds)."""
        return {
            "name": self.name,
            "note": self.note,
            "reference": self.reference,
            "repeats": len(self.times),
            "median_s": self.median,
            "best_s": self.best,
            "times_s": self.times,
            "ratio_vs_reference": self.ratio,
            "count": self.count,
            "check": self.check,
            "error": self.error,
            "failures": self.failures,
            "extra_median": {key: self.extra_median(key) for key in self.extra},
        }


@dataclass(slots=True)
class Case:
    """One input of one benchmark, with the results of every peer on it."""

    bench: str
    name: str
    description: str
    unit: str
    units: int
    nbytes: int
    reads: int
    peers: list[PeerResult]
    notes: list[str] = field(default_factory=list)

    def peer(self, name: str) -> PeerResult:
        """The result of the peer called ``name``."""
        for result in self.peers:
            if result.name == name:
                return result
        raise KeyError(name)

    @property
    def reference(self) -> PeerResult | None:
        """The reference peer's result (rxgpt), if any."""
        for result in self.peers:
            if result.reference:
                return result
        return None

    def rate(self, result: PeerResult) -> float | None:
        """Units per second at the peer's median time."""
        median = result.median
        return self.units / median if median else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "bench": self.bench,
            "name": self.name,
            "description": self.description,
            "unit": self.unit,
            "units": self.units,
            "bytes": self.nbytes,
            "reads": self.reads,
            "notes": self.notes,
            "peers": [
                {**result.to_json(), "units_per_s": self.rate(result)} for result in self.peers
            ],
        }


@dataclass(slots=True)
class Target:
    """A target of the issue: ``measured`` must not exceed ``limit``, both in ``unit`` (a
    ratio, "×", unless the target is an amount such as milliseconds, " ms")."""

    name: str
    description: str
    limit: float
    measured: float | None
    detail: str = ""
    unit: str = "×"

    @property
    def met(self) -> bool:
        """True when the measured ratio is at most the limit."""
        return self.measured is not None and self.measured <= self.limit

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "description": self.description,
            "limit": self.limit,
            "measured": self.measured,
            "met": self.met,
            "detail": self.detail,
            "unit": self.unit,
        }


@dataclass(slots=True)
class BenchResult:
    """Everything one benchmark produced: cases, targets and its rendered tables."""

    name: str
    cases: list[Case] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "seconds": self.seconds,
            "cases": [case.to_json() for case in self.cases],
            "targets": [target.to_json() for target in self.targets],
            "extra": self.extra,
        }


# --------------------------------------------------------------------------- checking


def compare_items(expected: Sequence[Any], got: Sequence[Any]) -> Check:
    """Compare a peer's decoded items with the expected ones: count, then every item.

    The problem names the first differing index, with both values shortened.
    """
    if len(got) != len(expected):
        return Check(len(got), f"{len(got)} items, expected {len(expected)}")
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        if want != have:
            return Check(
                len(got), f"item {index} differs: {_short(have)} instead of {_short(want)}"
            )
    return Check(len(got))


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# --------------------------------------------------------------------------- running


def run_case(
    bench: str,
    name: str,
    description: str,
    peers: Sequence[Peer],
    *,
    unit: str,
    units: int,
    nbytes: int = 0,
    reads: int = 0,
    repeats: int = 5,
    notes: Sequence[str] = (),
    clock: str = "cpu",
) -> Case:
    """Run ``peers`` in ``repeats`` alternating rounds and collect their results.

    ``clock="cpu"`` (the default) records the process CPU time of each run
    (``time.process_time()``), which other processes on a shared machine cannot inflate
    the way they inflate wall time; ``"wall"`` records ``time.perf_counter()``. The other
    clock is kept in ``extra`` (``wall_s`` or ``cpu_s``).

    A peer whose first run raises is reported with its error and dropped from later
    rounds; one that raises later keeps its earlier runs and the failure is reported beside
    them. The check runs on each peer's first output, outside the timing.
    """
    results = [
        PeerResult(name=peer.name, times=[], note=peer.note, reference=peer.reference)
        for peer in peers
    ]
    active = [True] * len(peers)
    with frozen():  # what exists now (modules, inputs) is not rescanned by any collection
        _rounds(peers, results, active, repeats, clock)
    reference = next((r for r in results if r.reference and r.median), None)
    if reference is not None and reference.median:
        for result in results:
            if result.median is not None:
                result.ratio = result.median / reference.median
    return Case(
        bench=bench,
        name=name,
        description=description,
        unit=unit,
        units=units,
        nbytes=nbytes,
        reads=reads,
        peers=results,
        notes=list(notes),
    )


def _rounds(
    peers: Sequence[Peer],
    results: list[PeerResult],
    active: list[bool],
    repeats: int,
    clock: str,
) -> None:
    """The alternating rounds of :func:`run_case`."""
    for round_index in range(max(repeats, 1)):
        for index, peer in enumerate(peers):
            result = results[index]
            if not active[index]:
                continue
            if round_index > 0 and sum(result.times) >= peer.budget:
                active[index] = False
                continue
            gc.collect()
            wall = time.perf_counter()
            cpu = time.process_time()
            try:
                output = peer.run()
            except Exception as exc:  # a peer that cannot decode this input is a result
                active[index] = False
                message = f"{type(exc).__name__}: {_short(str(exc), 70)}"
                if result.times:  # it worked before: keep those runs, report the failure
                    result.failures.append(message)
                else:
                    result.error = message
                    result.check = "error"
                continue
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - wall
            if isinstance(output, Sample):
                result.times.append(output.seconds)
                for key, value in output.extra.items():
                    result.extra.setdefault(key, []).append(value)
                output = output.output
            else:
                result.times.append(cpu if clock == "cpu" else wall)
                result.extra.setdefault("wall_s" if clock == "cpu" else "cpu_s", []).append(
                    wall if clock == "cpu" else cpu
                )
            if round_index == 0 and peer.check is not None:
                verdict = peer.check(output)
                result.count = verdict.count
                result.check = "ok" if verdict.ok else f"MISMATCH: {verdict.problem}"
            del output


# --------------------------------------------------------------------------- rendering


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """A plain-text (Markdown pipe) table: the first ``left`` columns left-aligned, the rest
    right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ":" + "-" * (w + 1) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def fmt_seconds(value: float | None) -> str:
    """Seconds in a readable unit (ms below 10 s)."""
    if value is None:
        return "-"
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms" if value < 1 else f"{value * 1e3:.0f} ms"
    return f"{value * 1e6:.0f} µs"


def fmt_rate(value: float | None) -> str:
    """A rate with a k/M suffix."""
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.1f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio such as ``3.42×``."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}×"
    if value >= 10:
        return f"{value:.1f}×"
    return f"{value:.2f}×"


def format_case(case: Case) -> str:
    """The standard table of a case: time, rate, MB/s, ratio vs rxgpt, check."""
    header = f"### {case.bench} / {case.name}\n\n{case.description}\n"
    rows = []
    for result in case.peers:
        median = result.median
        mbps = case.nbytes / median / 1e6 if median and case.nbytes else None
        rows.append(
            [
                result.name + (" (ref)" if result.reference else ""),
                str(len(result.times)),
                fmt_seconds(median),
                fmt_seconds(result.best),
                fmt_rate(case.rate(result)),
                f"{mbps:.1f}" if mbps is not None else "-",
                fmt_ratio(result.ratio),
                result.status,
            ]
        )
    table = render_table(
        ["peer", "n", "median", "best", f"{case.unit}/s", "MB/s", "× rxgpt time", "check"],
        rows,
    )
    notes = "".join(f"\n- {note}" for note in _peer_notes(case) + case.notes)
    return header + "\n" + table + ("\n" + notes if notes else "") + "\n"


def _peer_notes(case: Case) -> list[str]:
    return [f"{r.name}: {r.note}" for r in case.peers if r.note]


def format_targets(targets: Sequence[Target]) -> str:
    """The summary table of the issue's targets (lower is better)."""
    rows = [
        [
            t.name,
            t.description,
            f"≤ {t.limit:g}{t.unit}",
            "-" if t.measured is None else f"{t.measured:.3g}{t.unit}",
            "met" if t.met else "MISSED",
        ]
        for t in targets
    ]
    return render_table(["target", "what", "limit", "measured", "verdict"], rows, left=2)


# --------------------------------------------------------------------------- environment


_PACKAGES = (
    "rxgpt",
    "reactivex",
    "aiohttp",
    "orjson",
    "openai",
    "httpx2",
    "httpx",
    "httpx-sse",
    "sseclient-py",
    "aiohttp-sse-client",
    "pydantic",
)


def machine_info() -> dict[str, Any]:
    """Where and with what the numbers were measured."""
    versions: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "packages": versions,
    }
