"""Instructions per event, counted by valgrind's callgrind: a measure machine noise leaves alone.

``python -m benchmarks.instructions [WORKLOAD ...] [--tree DIR]`` runs each workload of the
pipeline benchmark (the same body and reads) five times in a fresh interpreter under
``valgrind --tool=callgrind`` and prints the instructions per event, minus those of an
interpreter that only prepares the input. Counts are repeatable to a few parts in ten
thousand for the same code, so a change of 1 % is visible where CPU times on a shared VM
move by 10 %. ``--tree`` measures another checkout (say, the commit before a change) with
the same interpreter. Needs Debian's ``valgrind``; nothing in ``make test`` uses it.

Workloads: floor (split + orjson + content), sans-io (StreamDecoder + Accumulator.add),
staged (parse_sse | decode_json | extract_deltas | accumulate), fused (decode_stream |
accumulate), fanout3 (decode_stream, Fanout to three subscribers), sse-event-per-read and
sse-random-reads (SSEDecoder.feed alone), chatstream-event-per-read and -random-reads (a
whole ChatStream over an in-memory source: deadlines, retry, Fanout with replay,
accumulator) and bytes-loop-event-per-read (a loop summing chunk sizes).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["WORKLOADS", "count", "main"]

REPEAT = 5

_SCRIPT = """
import sys
sys.path.insert(0, ".")
from benchmarks.bodies import openai_chat_body, split_events, split_random
from benchmarks.bench_pipeline import run_floor, run_rx_fanout, run_rx_single, run_sans_io
from rxgpt import SSEDecoder

body = openai_chat_body()
reads = split_random(body.data, 1024, 4096, seed=42)
events = split_events(body.data)
run_floor(reads)


def sse(chunks):
    decoder = SSEDecoder()
    for chunk in chunks:
        decoder.feed(chunk)


def chat_stream(chunks):
    # A whole ChatStream (deadlines, retry policy, Fanout with replay, accumulator) over an
    # in-memory source that delivers one read per chunk, as the transport does.
    import asyncio

    from rxgpt import ChatStream
    from rxgpt._fusion import Batched

    def make_source(flow, progress):
        def subscribe(on_batch, on_error, on_completed):
            progress("connected")
            progress("first_byte")
            for chunk in chunks:
                on_batch([chunk])
            on_completed()
            from rxgpt._disposable import NOTHING
            return NOTHING

        return Batched(subscribe, flow=flow)

    async def main():
        return await ChatStream(make_source).text()

    return asyncio.run(main())


def bytes_loop(chunks):
    # The in-memory part of a bare byte loop (what aiohttp costs both sides is not here).
    size = 0
    for chunk in chunks:
        size += len(chunk)
    return size


WORKLOADS = {
    "none": lambda: None,
    "floor": lambda: run_floor(reads),
    "sans-io": lambda: run_sans_io(reads),
    "staged": lambda: run_rx_single(reads, False),
    "fused": lambda: run_rx_single(reads, True),
    "fanout3": lambda: run_rx_fanout(reads, True),
    "sse-event-per-read": lambda: sse(events),
    "sse-random-reads": lambda: sse(reads),
    "chatstream-event-per-read": lambda: chat_stream(events),
    "chatstream-random-reads": lambda: chat_stream(reads),
    "bytes-loop-event-per-read": lambda: bytes_loop(events),
}
for _ in range(REPEAT):
    WORKLOADS[sys.argv[1]]()
"""

WORKLOADS = (
    "floor",
    "sans-io",
    "staged",
    "fused",
    "fanout3",
    "sse-event-per-read",
    "sse-random-reads",
    "chatstream-event-per-read",
    "chatstream-random-reads",
    "bytes-loop-event-per-read",
)
EVENTS = 20_001


def count(workload: str, tree: Path) -> int:
    """Instructions callgrind counts for ``workload`` run in ``tree`` (the whole process)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(_SCRIPT.replace("REPEAT", str(REPEAT)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONHASHSEED"] = "0"  # the same string hashes, so the same dict probes, every run
    try:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                script.name,
                workload,
            ],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
    finally:
        os.unlink(script.name)
    found = re.search(r"Collected : ([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count from callgrind: {done.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    """Print instructions per event for each workload."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--tree", type=Path, default=Path.cwd(), help="checkout to measure")
    args = parser.parse_args(argv)
    subprocess.run([sys.executable, "-c", "import rxgpt"], cwd=args.tree, check=True)
    base = count("none", args.tree)
    for workload in args.workloads:
        per_event = (count(workload, args.tree) - base) / (REPEAT * EVENTS)
        print(f"{workload:20s} {per_event:8.0f} instructions/event", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
