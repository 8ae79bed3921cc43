"""Benchmark 2 — the whole pipeline: body bytes → final answer text, in µs per event.

All peers consume the same random 1–4 KiB reads of the 20,000-chunk OpenAI body and must
produce the same answer text (checked). Peers:

- ``floor``: ``split(b"\\n\\n")`` framing + ``orjson.loads`` + ``choices[0]["delta"].get(
  "content")`` appended to a list, joined at the end. No SSE semantics, no error handling.
- ``rxgpt sans-IO``: the cores called directly in a plain loop: ``StreamDecoder.feed`` and
  ``Accumulator.add`` (``+ 3 consumers`` also feeds the list logger and the counter inline).
- ``rx staged``: ``reactivex.from_iterable(reads).pipe(parse_sse(), decode_json(),
  extract_deltas(), accumulate())``; ``rx fused``: ``decode_stream()`` instead of the three.
  ``1 sub`` subscribes once to the completion; ``Fanout 3 subs`` multicasts the deltas with
  :class:`rxgpt.Fanout` to a list-append logger, an :class:`rxgpt.Accumulator` and a counter.
- ``openai AsyncStream``: ``AsyncOpenAI.chat.completions.create(stream=True)`` iterated to the
  end, collecting ``delta.content`` (SSE decoder + ``json.loads`` + a ``ChatCompletionChunk``
  per event); ``openai .stream()``: ``chat.completions.stream()`` (the same plus
  ``ChatCompletionStreamState.handle_chunk`` and its events) and ``get_final_completion()``.
  Both get the same reads from an ``httpx2.MockTransport`` (no socket), one request per run.

Targets (from the issues): the reactive layer with fan-out to 3 subscribers costs at most
1.25× the sans-IO cores, the whole pipeline at most 1.5× the floor, per event, and the
staged chain at most 1.25× the fused operator (one set of rules: they are one pipeline).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import orjson
import reactivex

from rxgpt import (
    Accumulator,
    Delta,
    Fanout,
    StreamDecoder,
    accumulate,
    decode_json,
    decode_stream,
    extract_deltas,
    parse_sse,
)

from .bench_sse import SplitFramer
from .bodies import Body, openai_chat_body, split_random
from .common import (
    BenchResult,
    Case,
    Check,
    Peer,
    Target,
    event_loop,
    fmt_ratio,
    fmt_seconds,
    progress,
    render_table,
    run_case,
)

__all__ = [
    "FLOOR",
    "REFERENCE",
    "SANS_IO",
    "make_peers",
    "run",
    "run_floor",
    "run_rx_fanout",
    "run_rx_single",
    "run_sans_io",
]

FLOOR = "floor: split+orjson+content"
SANS_IO = "rxgpt sans-IO: StreamDecoder+Accumulator"
SANS_IO_3 = "rxgpt sans-IO + 3 consumers inline"
REFERENCE = "rx staged, 1 sub"
RX_FUSED_1 = "rx fused, 1 sub"
RX_STAGED_3 = "rx staged, Fanout 3 subs"
RX_FUSED_3 = "rx fused, Fanout 3 subs"
OPENAI_CREATE = "openai AsyncStream (create stream=True)"
OPENAI_STREAM = "openai .stream() (ChatCompletionStreamState)"


# --------------------------------------------------------------------------- the peers


def run_floor(reads: list[bytes]) -> str:
    """The floor: split framing, orjson, content of choice 0, join."""
    framer = SplitFramer()
    loads = orjson.loads
    out: list[str] = []
    append = out.append
    for chunk in reads:
        for frame in framer.feed(chunk):
            if frame[:6] != b"data: ":
                continue
            payload = frame[6:]
            if payload == b"[DONE]":
                return "".join(out)
            choices = loads(payload)["choices"]
            if choices:
                content = choices[0]["delta"].get("content")
                if content:
                    append(content)
    return "".join(out)


def run_sans_io(reads: list[bytes]) -> str:
    """rxgpt's sans-IO cores in a plain loop."""
    decoder = StreamDecoder()
    acc = Accumulator()
    add = acc.add
    feed = decoder.feed
    for chunk in reads:
        for delta in feed(chunk):
            add(delta)
        if decoder.done:
            break
    decoder.close()
    if decoder.error is not None:
        raise decoder.error
    return acc.completion().text


def run_sans_io_3(reads: list[bytes]) -> tuple[str, int, int]:
    """The sans-IO cores feeding the same 3 consumers as the Fanout variant, inline."""
    decoder = StreamDecoder()
    acc = Accumulator()
    add = acc.add
    log: list[Delta] = []
    log_append = log.append
    count = 0
    feed = decoder.feed
    for chunk in reads:
        for delta in feed(chunk):
            log_append(delta)
            add(delta)
            count += 1
        if decoder.done:
            break
    decoder.close()
    return acc.completion().text, len(log), count


def _stages(fused: bool) -> list[Callable[[Any], Any]]:
    if fused:
        return [decode_stream()]
    return [parse_sse(), decode_json(), extract_deltas()]


def run_rx_single(reads: list[bytes], fused: bool) -> str:
    """The Rx pipeline ending in ``accumulate()``, one subscriber."""
    results: list[Any] = []
    errors: list[Exception] = []
    source: Any = reactivex.from_iterable(reads)
    source.pipe(*_stages(fused), accumulate()).subscribe(results.append, errors.append)
    if errors:
        raise errors[0]
    return str(results[0].text)


def run_rx_fanout(reads: list[bytes], fused: bool) -> tuple[str, int, int]:
    """The Rx pipeline multicast by :class:`rxgpt.Fanout` to logger, accumulator, counter."""
    source: Any = reactivex.from_iterable(reads)
    deltas = source.pipe(*_stages(fused))
    fanout: Fanout[Delta] = Fanout(deltas)
    log: list[Delta] = []
    acc = Accumulator()
    count = 0

    def counter(_delta: Delta) -> None:
        nonlocal count
        count += 1

    errors: list[Exception] = []
    fanout.subscribe(log.append, errors.append)
    fanout.subscribe(acc.add)
    fanout.subscribe(counter)
    fanout.connect()
    if errors:
        raise errors[0]
    return acc.completion().text, len(log), count


class OpenAIPeers:
    """openai-python's stream classes on the benchmark's reads, through httpx2.MockTransport."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import httpx2
        import openai

        self.loop = loop
        self.reads: list[bytes] = []

        async def content() -> AsyncIterator[bytes]:
            for chunk in self.reads:
                yield chunk

        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, content=content()
            )

        self.http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
        self.client = openai.AsyncOpenAI(
            base_url="http://bench.invalid/v1",
            api_key="sk-bench",
            http_client=self.http,
            max_retries=0,
        )
        self.messages: list[Any] = [{"role": "user", "content": "benchmark"}]

    def close(self) -> None:
        """Close the client."""
        self.loop.run_until_complete(self.client.close())

    async def _create(self) -> tuple[str, int]:
        stream = await self.client.chat.completions.create(
            model="gpt-4o", messages=self.messages, stream=True
        )
        parts: list[str] = []
        chunks = 0
        async for chunk in stream:
            chunks += 1
            if chunk.choices:
                content = chunk.choices[0].delta.content
                if content:
                    parts.append(content)
        return "".join(parts), chunks

    async def _stream(self) -> tuple[str, int]:
        events = 0
        async with self.client.chat.completions.stream(
            model="gpt-4o", messages=self.messages
        ) as stream:
            async for _event in stream:
                events += 1
            completion = await stream.get_final_completion()
        return completion.choices[0].message.content or "", events

    def create(self, reads: list[bytes]) -> tuple[str, int]:
        """``create(stream=True)`` iterated to the end: (text, chunks)."""
        self.reads = reads
        return self.loop.run_until_complete(self._create())

    def stream(self, reads: list[bytes]) -> tuple[str, int]:
        """``.stream()`` iterated to the end, then the final completion: (text, events)."""
        self.reads = reads
        return self.loop.run_until_complete(self._stream())


# --------------------------------------------------------------------------- checks


def _check_text(body: Body) -> Callable[[Any], Check]:
    def check(output: Any) -> Check:
        text = output[0] if isinstance(output, tuple) else output
        if text != body.text:
            return Check(len(text), f"text differs ({len(text)} chars, expected {len(body.text)})")
        if isinstance(output, tuple) and len(output) == 3 and output[1] != output[2]:
            return Check(output[1], f"logger saw {output[1]} deltas, counter {output[2]}")
        return Check(len(body.events))

    return check


def make_peers(
    body: Body, reads: list[bytes], openai_peers: OpenAIPeers | None, *, budget: float
) -> list[Peer]:
    """The peers of the pipeline benchmark on ``reads``."""
    check = _check_text(body)
    peers = [
        Peer(FLOOR, lambda: run_floor(reads), check),
        Peer(SANS_IO, lambda: run_sans_io(reads), check),
        Peer(SANS_IO_3, lambda: run_sans_io_3(reads), check),
        Peer(REFERENCE, lambda: run_rx_single(reads, False), check, reference=True),
        Peer(RX_FUSED_1, lambda: run_rx_single(reads, True), check),
        Peer(RX_STAGED_3, lambda: run_rx_fanout(reads, False), check),
        Peer(RX_FUSED_3, lambda: run_rx_fanout(reads, True), check),
    ]
    if openai_peers is not None:
        peers += [
            Peer(OPENAI_CREATE, lambda: openai_peers.create(reads), check, budget=budget),
            Peer(OPENAI_STREAM, lambda: openai_peers.stream(reads), check, budget=budget),
        ]
    return peers


# --------------------------------------------------------------------------- running


def pipeline_table(case: Case) -> str:
    """µs per event per peer, with its ratio to the floor, the sans-IO cores and rxgpt."""
    floor = case.peer(FLOOR).median
    cores = case.peer(SANS_IO).median
    ref = case.peer(REFERENCE).median
    rows = []
    for peer in case.peers:
        median = peer.median
        rows.append(
            [
                peer.name + (" (ref)" if peer.reference else ""),
                str(len(peer.times)),
                f"{median / case.units * 1e6:.2f}" if median else "-",
                f"{peer.best / case.units * 1e6:.2f}" if peer.best else "-",
                fmt_seconds(median),
                fmt_ratio(median / floor) if median and floor else "-",
                fmt_ratio(median / cores) if median and cores else "-",
                fmt_ratio(median / ref) if median and ref else "-",
                peer.status,
            ]
        )
    headers = [
        "peer",
        "n",
        "µs/event",
        "best µs/event",
        "median",
        "× floor",
        "× sans-IO",
        "× rx staged",
        "check",
    ]
    return (
        f"### pipeline / {case.name}\n\n{case.description}\n\n" + render_table(headers, rows) + "\n"
    )


def targets(case: Case) -> list[Target]:
    """The issue's pipeline targets, evaluated for every rx variant they apply to."""
    floor = case.peer(FLOOR).median
    cores = case.peer(SANS_IO).median
    out = []
    for name in (RX_STAGED_3, RX_FUSED_3):
        median = case.peer(name).median
        out.append(
            Target(
                f"pipeline: {name} ≤ 1.25× sans-IO",
                "reactive layer (operators + Fanout to 3 subscribers) over the sans-IO cores",
                1.25,
                median / cores if median and cores else None,
            )
        )
    for name in (REFERENCE, RX_FUSED_1):
        median = case.peer(name).median
        out.append(
            Target(
                f"pipeline: {name} ≤ 1.5× floor",
                "whole pipeline (orjson) per event over the split+orjson floor",
                1.5,
                median / floor if median and floor else None,
            )
        )
    staged, fused = case.peer(REFERENCE).median, case.peer(RX_FUSED_1).median
    out.append(
        Target(
            f"pipeline: {REFERENCE} ≤ 1.25× {RX_FUSED_1}",
            "the three staged operators over decode_stream(), per event",
            1.25,
            staged / fused if staged and fused else None,
        )
    )
    return out


def run(quick: bool = False) -> BenchResult:
    """Run the pipeline benchmark."""
    start = time.perf_counter()
    result = BenchResult("pipeline")
    body = openai_chat_body(400 if quick else 20_000)
    reads = split_random(body.data, 1024, 4096, seed=42)
    progress(f"[pipeline] {len(body.events):,} events, {len(reads):,} reads")
    with event_loop() as loop:
        openai_peers = OpenAIPeers(loop)
        try:
            case = run_case(
                "pipeline",
                "chat-random-reads",
                f"{len(body.events):,} OpenAI chat chunk events ({body.size:,} bytes), random "
                "1–4 KiB reads (seed 42): bytes → final answer text",
                make_peers(body, reads, openai_peers, budget=2.0 if quick else 8.0),
                unit="events",
                units=len(body.events),
                nbytes=body.size,
                reads=len(reads),
                repeats=2 if quick else 7,
            )
        finally:
            openai_peers.close()
    result.cases.append(case)
    result.tables.append(pipeline_table(case))
    result.targets.extend(targets(case))
    result.seconds = time.perf_counter() - start
    return result


def profile_workloads(quick: bool = False) -> Iterator[tuple[str, Callable[[], Any]]]:
    """rxgpt's side of the benchmark, for :mod:`benchmarks.profiling`."""
    body = openai_chat_body(400 if quick else 20_000)
    reads = split_random(body.data, 1024, 4096, seed=42)
    yield SANS_IO, lambda: run_sans_io(reads)
    yield REFERENCE, lambda: run_rx_single(reads, False)
    yield RX_FUSED_1, lambda: run_rx_single(reads, True)
    yield RX_STAGED_3, lambda: run_rx_fanout(reads, False)
    yield RX_FUSED_3, lambda: run_rx_fanout(reads, True)
