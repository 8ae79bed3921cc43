"""Benchmark 4 — accumulation at scale: a 1 MB answer and a 200 KB tool-call argument.

The deltas are built before timing (4-character fragments: 250,000 ``TextDelta`` for the
answer, 50,000 ``ToolCallArguments`` after one ``ToolCallStart`` for the tool call). Peers:

- ``rxgpt Accumulator`` (reference): ``acc.add(delta)`` per delta, then ``acc.completion()``.
- ``"".join([d.text for d in deltas])``: the list-comprehension join, the cheapest Python
  can do (the target's baseline); ``append loop + join``: the same as a consumer that sees
  one delta at a time would write it.
- ``openai ChatCompletionStreamState``: ``handle_chunk(chunk)`` per prebuilt
  ``ChatCompletionChunk`` (a pool of 64 chunk objects reused, so the input does not take
  gigabytes), then ``get_final_completion()``. It re-dumps and re-concatenates the whole
  message for every chunk: O(n) per chunk, O(n²) in total.

Every size of the ladder (1/8, 1/4, 1/2, full) runs in alternating rounds. The openai state
is expensive, so it is run once per size, and only while the estimated time of that size
stays under a cap; above it the time is **estimated** (and marked so) by integrating its
measured marginal cost per chunk — the median time of 400 extra chunks after the state was
primed with 0, 1/8, 1/4, 1/2 and all of the content — over the chunks of that size. The marginal
cost table shows the growth directly: flat for linear work, rising for quadratic work.
Memory is the ``tracemalloc`` peak of one untimed run (rxgpt and the joins).
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rxgpt import Accumulator, Delta, TextDelta, ToolCallArguments, ToolCallStart

from .common import (
    BenchResult,
    Case,
    Check,
    Peer,
    Sample,
    Target,
    fmt_ratio,
    fmt_seconds,
    progress,
    render_table,
    run_case,
)

__all__ = ["AccumulateSpec", "run", "specs"]

RXGPT = "rxgpt Accumulator"
JOIN = '"".join([d.text for d in deltas])'
LOOP = "append loop + join"
OPENAI = "openai ChatCompletionStreamState"
_POOL = tuple(f"{chr(97 + i % 26)}{i:03d}" for i in range(64))  # 64 distinct 4-char pieces


@dataclass(slots=True)
class AccumulateSpec:
    """One accumulation workload: ``fragments`` pieces of 4 characters, text or tool call."""

    name: str
    kind: str  # "text" or "tool"
    fragments: int
    repeats: int = 5
    cap: float = 10.0  # seconds: above this estimate the openai state is not run
    marginal_chunks: int = 400  # chunks timed per point of the marginal cost
    marginal_deltas: int = 20_000  # rxgpt deltas timed per point of the marginal cost

    @property
    def size(self) -> int:
        """Characters accumulated at full size."""
        return 4 * self.fragments


def specs(quick: bool = False) -> list[AccumulateSpec]:
    """The two workloads, full size or tiny."""
    if quick:
        return [
            AccumulateSpec("text", "text", 800, repeats=1, cap=0.05, marginal_chunks=20),
            AccumulateSpec("tool-arguments", "tool", 400, repeats=1, cap=0.05, marginal_chunks=20),
        ]
    return [
        AccumulateSpec("text", "text", 250_000),
        AccumulateSpec("tool-arguments", "tool", 50_000),
    ]


# --------------------------------------------------------------------------- inputs


def _pieces(count: int) -> list[str]:
    return [_POOL[i % len(_POOL)] for i in range(count)]


def rx_deltas(kind: str, count: int) -> list[Delta]:
    """The deltas rxgpt accumulates: TextDelta, or ToolCallStart + ToolCallArguments."""
    if kind == "text":
        return [TextDelta(0, piece) for piece in _pieces(count)]
    start: list[Delta] = [ToolCallStart(0, 0, "call_bench", "get_rows")]
    return start + [ToolCallArguments(0, 0, piece) for piece in _pieces(count)]


def _chunk(delta: dict[str, Any]) -> Any:
    from openai.types.chat import ChatCompletionChunk

    return ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1727346171,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
    )


def _openai_first(kind: str, content: str) -> Any:
    if kind == "text":
        return _chunk({"role": "assistant", "content": content})
    call = {
        "index": 0,
        "id": "call_bench",
        "type": "function",
        "function": {"name": "get_rows", "arguments": content},
    }
    return _chunk({"role": "assistant", "tool_calls": [call]})


def _openai_pool(kind: str) -> list[Any]:
    if kind == "text":
        return [_chunk({"content": piece}) for piece in _POOL]
    return [_chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in _POOL]


# --------------------------------------------------------------------------- the peers


def run_rxgpt(kind: str, deltas: list[Delta]) -> str:
    """Fold the deltas with rxgpt's Accumulator and return the accumulated text."""
    acc = Accumulator()
    add = acc.add
    for delta in deltas:
        add(delta)
    choice = acc.completion().choices[0]
    return (choice.text or "") if kind == "text" else choice.tool_calls[0].arguments


def run_join(pieces_of: list[Any], kind: str) -> str:
    """The list-comprehension join over the fragments' text."""
    if kind == "text":
        return "".join([d.text for d in pieces_of])
    return "".join([d.arguments for d in pieces_of])


def run_loop(pieces_of: list[Any], kind: str) -> str:
    """An append loop, one delta at a time, then one join."""
    parts: list[str] = []
    append = parts.append
    if kind == "text":
        for delta in pieces_of:
            append(delta.text)
    else:
        for delta in pieces_of:
            append(delta.arguments)
    return "".join(parts)


def run_openai(kind: str, pool: list[Any], count: int) -> str:
    """openai's ChatCompletionStreamState over ``count`` chunks, then the final completion."""
    from openai.lib.streaming.chat import ChatCompletionStreamState

    state: Any = ChatCompletionStreamState()
    handle = state.handle_chunk
    handle(_openai_first(kind, ""))
    size = len(pool)
    for index in range(count):
        handle(pool[index % size])
    message = state.get_final_completion().choices[0].message
    if kind == "text":
        return str(message.content)
    return str(message.tool_calls[0].function.arguments)


def marginal_costs(spec: AccumulateSpec, pool: list[Any]) -> dict[str, list[tuple[int, float]]]:
    """Seconds per extra chunk after the state holds 0, 1/8, 1/4, 1/2, all of the content.

    Each point is the median of 3 timings (of ``spec.marginal_chunks`` openai chunks, of
    ``spec.marginal_deltas`` rxgpt deltas), each on a freshly primed state.
    """
    from openai.lib.streaming.chat import ChatCompletionStreamState

    points = [0, spec.size // 8, spec.size // 4, spec.size // 2, spec.size]
    rx_pool = rx_deltas(spec.kind, len(_POOL))[-len(_POOL) :]
    out: dict[str, list[tuple[int, float]]] = {RXGPT: [], OPENAI: []}
    for size in points:
        content = "abcd" * (size // 4)
        openai_times: list[float] = []
        rx_times: list[float] = []
        for _ in range(3):
            state: Any = ChatCompletionStreamState()
            state.handle_chunk(_openai_first(spec.kind, content))
            gc.collect()
            start = time.process_time()
            for index in range(spec.marginal_chunks):
                state.handle_chunk(pool[index % len(pool)])
            openai_times.append((time.process_time() - start) / spec.marginal_chunks)
            del state

            acc = Accumulator()
            first = (
                TextDelta(0, content) if spec.kind == "text" else ToolCallArguments(0, 0, content)
            )
            acc.add(first)
            reps = spec.marginal_deltas
            gc.collect()
            start = time.process_time()
            for index in range(reps):
                acc.add(rx_pool[index % len(rx_pool)])
            rx_times.append((time.process_time() - start) / reps)
        out[OPENAI].append((size, statistics.median(openai_times)))
        out[RXGPT].append((size, statistics.median(rx_times)))
    return out


def estimate(points: list[tuple[int, float]], chunks: int) -> float:
    """Seconds for ``chunks`` chunks of 4 characters: the marginal cost integrated (trapezoid).

    ``points`` are (accumulated characters, seconds per chunk); the cost is interpolated
    linearly between them.
    """
    end = 4 * chunks
    total = 0.0
    for (s0, c0), (s1, c1) in itertools.pairwise(points):
        if s0 >= end:
            break
        hi = min(s1, end)
        c_hi = c0 + (c1 - c0) * (hi - s0) / (s1 - s0) if s1 > s0 else c1
        total += (hi - s0) / 4 * (c0 + c_hi) / 2
    return total


# --------------------------------------------------------------------------- running


def _kb(chars: int) -> str:
    return f"{chars / 1000:,.0f} KB" if chars >= 10_000 else f"{chars / 1000:.2g} KB"


def _check(expected: str) -> Callable[[Any], Check]:
    def check(output: Any) -> Check:
        if output != expected:
            return Check(len(output), f"{len(output)} chars, expected {len(expected)}")
        return Check(len(output))

    return check


def _memory(run: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_spec(spec: AccumulateSpec) -> tuple[list[Case], dict[str, Any]]:
    """Run the ladder of one workload; return its cases and the extra tables' data."""
    pool = _openai_pool(spec.kind)
    marginals = marginal_costs(spec, pool)
    cases: list[Case] = []
    memory: dict[str, dict[int, int]] = {RXGPT: {}, JOIN: {}, LOOP: {}}
    estimated: dict[int, float] = {}
    for divisor in (8, 4, 2, 1):
        count = spec.fragments // divisor
        deltas = rx_deltas(spec.kind, count)
        fragments = deltas if spec.kind == "text" else deltas[1:]
        expected = "".join(_pieces(count))
        guess = estimate(marginals[OPENAI], count)
        check = _check(expected)
        kind = spec.kind

        def openai_run(
            count: int = count, guess: float = guess, expected: str = expected, kind: str = kind
        ) -> Any:
            if guess > spec.cap:
                return Sample(guess, expected, {"estimated": 1.0})
            return run_openai(kind, pool, count)

        peers = [
            Peer(RXGPT, functools.partial(run_rxgpt, kind, deltas), check, reference=True),
            Peer(JOIN, functools.partial(run_join, fragments, kind), check),
            Peer(LOOP, functools.partial(run_loop, fragments, kind), check),
            Peer(
                OPENAI,
                openai_run,
                check,
                budget=0.0,
                note="estimated from the marginal costs (not run: above the time cap)"
                if guess > spec.cap
                else "",
            ),
        ]
        progress(f"[accumulate] {spec.name}: {count:,} fragments ({4 * count:,} chars)")
        case = run_case(
            "accumulate",
            f"{spec.name}-{4 * count / 1000:g}KB",
            f"{count:,} fragments of 4 characters ({4 * count:,} characters) of "
            + ("answer text" if spec.kind == "text" else "one tool call's arguments"),
            peers,
            unit="deltas",
            units=count,
            nbytes=4 * count,
            repeats=spec.repeats,
        )
        cases.append(case)
        estimated[count] = guess
        memory[RXGPT][count] = _memory(functools.partial(run_rxgpt, kind, deltas))
        memory[JOIN][count] = _memory(functools.partial(run_join, fragments, kind))
        memory[LOOP][count] = _memory(functools.partial(run_loop, fragments, kind))
        del deltas, fragments
    return cases, {"marginal": marginals, "memory": memory, "estimated": estimated}


def _growth(ratios: list[float], marginal: list[tuple[int, float]] | None) -> str:
    """Linear / superlinear / quadratic from the last two doubling ratios (the asymptotic
    trend shows at the largest sizes), plus how much the marginal cost of one chunk grew
    between an empty state and a full one, when it was measured."""
    tail = ratios[-2:]
    mean = math.exp(sum(math.log(r) for r in tail) / len(tail)) if tail else 0.0
    verdict = "linear" if mean < 2.3 else "quadratic" if mean > 3.4 else "superlinear"
    if marginal and marginal[0][1] > 0:
        growth = marginal[-1][1] / marginal[0][1]
        if growth > 1.25:
            verdict += f"; per-chunk cost ×{growth:.2f} when full (O(n²) term)"
    return verdict


def ladder_table(spec: AccumulateSpec, cases: list[Case], data: dict[str, Any]) -> str:
    """Time per size per peer, doubling ratios and the growth verdict; memory at each size."""
    sizes = [case.units for case in cases]
    rows = []
    for name in (RXGPT, JOIN, LOOP, OPENAI):
        times = [case.peer(name).median for case in cases]
        estimated = [bool(case.peer(name).extra.get("estimated")) for case in cases]
        cells = [
            fmt_seconds(t) + (" (est.)" if est else "")
            for t, est in zip(times, estimated, strict=True)
        ]
        ratios = [b / a for a, b in itertools.pairwise(times) if a and b]
        verdict = _growth(ratios, data["marginal"].get(name))
        full = cases[-1]
        rows.append(
            [
                name,
                *cells,
                " / ".join(f"{r:.2f}" for r in ratios),
                verdict,
                fmt_ratio(full.peer(name).ratio),
                f"{data['memory'][name][sizes[-1]] / 2**20:.2f}" if name in data["memory"] else "-",
                full.peer(name).status,
            ]
        )
    headers = [
        "peer",
        *(f"{s:,} ({_kb(4 * s)})" for s in sizes),
        "doubling ratio",
        "growth",
        "× rxgpt (full)",
        "peak MiB (full)",
        "check",
    ]
    notes = "".join(
        f"\n- {OPENAI} at {s:,}: {c.peer(OPENAI).note}"
        for s, c in zip(sizes, cases, strict=True)
        if c.peer(OPENAI).note
    )
    checks = [
        f"{fmt_seconds(data['estimated'][s])} estimated vs {fmt_seconds(c.peer(OPENAI).median)} "
        f"measured at {s:,}"
        for s, c in zip(sizes, cases, strict=True)
        if not c.peer(OPENAI).extra.get("estimated") and c.peer(OPENAI).median
    ]
    if checks:
        notes += "\n- the estimate where the run was also measured: " + "; ".join(checks)
    return (
        f"### accumulate / {spec.name}: median time per size (doubling ratio ≈ 2 linear, "
        "≈ 4 quadratic)\n\n" + render_table(headers, rows) + "\n" + notes + ("\n" if notes else "")
    )


def marginal_table(spec: AccumulateSpec, data: dict[str, Any]) -> str:
    """µs per extra chunk once the state already holds a given amount of content."""
    marginal = data["marginal"]
    sizes = [size for size, _ in marginal[RXGPT]]
    rows = []
    for name in (RXGPT, OPENAI):
        costs = marginal[name]
        (first_size, first), (last_size, last) = costs[0], costs[-1]
        slope = (last - first) / max(last_size - first_size, 1) * 100_000
        rows.append([name, *(f"{cost * 1e6:.2f}" for _, cost in costs), f"{slope * 1e6:+.2f}"])
    headers = [
        "peer",
        *(f"µs/chunk at {_kb(size)}" for size in sizes),
        "µs/chunk added per 100 KB held",
    ]
    return (
        f"### accumulate / {spec.name}: marginal cost of one more 4-char chunk\n\n"
        "The time of one more chunk once the state already holds the given amount of content. "
        "Flat = O(1) per chunk, linear total; rising with the content held = O(n) per chunk, "
        "quadratic total.\n\n" + render_table(headers, rows) + "\n"
    )


def run(quick: bool = False) -> BenchResult:
    """Run the accumulation benchmark."""
    start = time.perf_counter()
    result = BenchResult("accumulate")
    import openai.lib.streaming.chat  # noqa: F401  (imported before any measurement)

    for spec in specs(quick):
        cases, data = run_spec(spec)
        result.cases.extend(cases)
        result.tables.append(ladder_table(spec, cases, data))
        result.tables.append(marginal_table(spec, data))
        result.extra[spec.name] = {
            "marginal_s_per_chunk": data["marginal"],
            "peak_bytes": data["memory"],
            "openai_estimate_s": data["estimated"],
        }
        full = cases[-1]
        ref, join = full.peer(RXGPT).median, full.peer(JOIN).median
        memory = data["memory"]
        result.targets.append(
            Target(
                f"accumulate {spec.name}: rxgpt ≤ 2× join",
                f"Accumulator time vs the list-comprehension join, {full.units:,} fragments"
                + f" (memory {memory[RXGPT][full.units] / max(memory[JOIN][full.units], 1):.2f}×)",
                2.0,
                ref / join if ref and join else None,
            )
        )
    result.seconds = time.perf_counter() - start
    return result


def profile_workloads(quick: bool = False) -> Iterator[tuple[str, Callable[[], Any]]]:
    """rxgpt's Accumulator on the full-size workloads."""
    for spec in specs(quick):
        deltas = rx_deltas(spec.kind, spec.fragments)
        yield (
            f"{RXGPT}, {spec.name} ({spec.fragments:,} fragments)",
            functools.partial(run_rxgpt, spec.kind, deltas),
        )
