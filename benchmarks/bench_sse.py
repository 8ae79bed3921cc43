"""Benchmark 1 — SSE decoding: bytes in, event data out, rxgpt against its Python peers.

Every peer turns the same list of network reads into the list of event data strings (the
consumer appends ``event.data`` to a list, the least any consumer does) and is checked
against the body's expected events. Peers:

- ``rxgpt SSEDecoder.feed`` (the reference): rxgpt's sans-IO decoder.
- ``httpx-sse decoders``: httpx-sse's ``SSELineDecoder`` + ``SSEDecoder`` fed with text from
  the incremental UTF-8 decoder httpx's ``iter_text`` uses (errors="replace").
- ``httpx-sse iter_sse`` / ``aiter_sse``: the public API over an ``httpx.Response`` whose
  content is the list of reads (no network; httpx or, when only it is installed, httpx2
  aliased as httpx, as httpx2 documents).
- ``openai SSEDecoder.iter_bytes`` / ``aiter_bytes``: openai-python's decoder.
- ``sseclient-py``: ``sseclient.SSEClient`` over an iterator of the reads.
- ``aiohttp-sse-client``: its ``EventSource`` parser reading a real ``aiohttp.StreamReader``
  fed with the reads (limit = aiohttp's default ``read_bufsize``), as a response would be;
  the reconnect that follows the end of the body is cut short.
- ``floor: split``: an incremental ``split(b"\\n\\n")`` framer that only keeps ``data: ``
  frames — no CR handling, no multi-line data, no comments beyond skipping them: the
  cheapest thing that works on these bodies, not a correct SSE decoder.
- ``floor: split+orjson``: the same plus ``orjson.loads`` of every JSON payload (checked
  against the parsed expected data).
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import orjson

from rxgpt._sse import SSEDecoder as RxSSEDecoder

from .bodies import (
    DONE,
    Body,
    big_line_body,
    heartbeat_body,
    multibyte_body,
    openai_chat_body,
    split_events,
    split_fixed,
    split_random,
)
from .common import (
    BenchResult,
    Case,
    Check,
    Peer,
    Target,
    compare_items,
    event_loop,
    fmt_ratio,
    fmt_seconds,
    format_case,
    progress,
    render_table,
    run_case,
)

__all__ = [
    "REFERENCE",
    "SSECaseSpec",
    "SplitFramer",
    "cases",
    "import_httpx",
    "main_cases",
    "run",
    "run_spec",
    "sse_peers",
]

#: Name of the reference peer.
REFERENCE = "rxgpt SSEDecoder.feed"


def import_httpx() -> ModuleType:
    """Import ``httpx``; when only httpx2 is installed, alias it as ``httpx`` first.

    httpx-sse imports ``httpx``; httpx2 provides ``alias_httpx()`` for exactly this.
    """
    try:
        import httpx
    except ImportError:
        import httpx2

        httpx2.alias_httpx()
        import httpx
    return httpx


# --------------------------------------------------------------------------- the peers


def run_rxgpt(reads: list[bytes]) -> list[str]:
    """rxgpt's sans-IO decoder."""
    decoder = RxSSEDecoder()
    out: list[str] = []
    append = out.append
    feed = decoder.feed
    for chunk in reads:
        for event in feed(chunk):
            append(event.data)
    for event in decoder.close():
        append(event.data)
    return out


def run_httpx_sse_decoders(reads: list[bytes]) -> list[str]:
    """httpx-sse's line and event decoders, fed the way ``iter_sse`` feeds them."""
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    lines = SSELineDecoder()
    sse = SSEDecoder()
    out: list[str] = []
    append = out.append
    for chunk in reads:
        text = text_decoder.decode(chunk)
        if text:
            for line in lines.decode(text):
                event = sse.decode(line.rstrip("\n"))
                if event is not None:
                    append(event.data)
    rest = text_decoder.decode(b"", True)
    tail = (lines.decode(rest) if rest else []) + lines.flush()
    for line in tail:
        event = sse.decode(line.rstrip("\n"))
        if event is not None:
            append(event.data)
    return out


def run_httpx_sse_iter(reads: list[bytes]) -> list[str]:
    """httpx-sse's ``EventSource.iter_sse`` over an httpx response built from the reads."""
    httpx = import_httpx()
    from httpx_sse import EventSource

    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(reads)
    )
    return [event.data for event in EventSource(response).iter_sse()]


async def _aiter(reads: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in reads:
        yield chunk


async def _httpx_sse_aiter(reads: list[bytes]) -> list[str]:
    httpx = import_httpx()
    from httpx_sse import EventSource

    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=_aiter(reads)
    )
    return [event.data async for event in EventSource(response).aiter_sse()]


def run_openai_iter_bytes(reads: list[bytes]) -> list[str]:
    """openai-python's ``SSEDecoder.iter_bytes``."""
    from openai._streaming import SSEDecoder

    return [event.data for event in SSEDecoder().iter_bytes(iter(reads))]


async def _openai_aiter_bytes(reads: list[bytes]) -> list[str]:
    from openai._streaming import SSEDecoder

    return [event.data async for event in SSEDecoder().aiter_bytes(_aiter(reads))]


def run_sseclient(reads: list[bytes]) -> list[str]:
    """sseclient-py over an iterator of the reads."""
    from sseclient import SSEClient

    return [event.data for event in SSEClient(iter(reads)).events()]


class _EndOfBody(Exception):
    """Raised from aiohttp-sse-client's ``on_error`` when the body ends (instead of retrying)."""


class _Protocol:
    """The part of aiohttp's response protocol a ``StreamReader`` talks to."""

    connected = True
    _reading_paused = False

    def pause_reading(self) -> None:
        """Flow control is irrelevant here: the whole body is already buffered."""

    def resume_reading(self, resume_parser: bool = True) -> None:
        """See :meth:`pause_reading`."""


@dataclass(slots=True)
class _Response:
    status: int
    content: Any


def _end_of_body() -> None:
    raise _EndOfBody


async def _aiohttp_sse_client(reads: list[bytes]) -> list[str]:
    import aiohttp
    from aiohttp.helpers import DEFAULT_CHUNK_SIZE
    from aiohttp_sse_client.client import EventSource  # type: ignore[import-untyped]

    reader = aiohttp.StreamReader(
        _Protocol(),  # type: ignore[arg-type]
        DEFAULT_CHUNK_SIZE,
        loop=asyncio.get_running_loop(),
    )
    for chunk in reads:
        reader.feed_data(chunk)
    reader.feed_eof()
    source = EventSource("http://127.0.0.1/", session=object(), on_error=_end_of_body)
    source._response = _Response(200, reader)
    out: list[str] = []
    try:
        async for event in source:
            out.append(event.data)
    except _EndOfBody:
        pass
    return out


class SplitFramer:
    """The floor: an incremental ``split(b"\\n\\n")`` framer with no SSE semantics.

    A read without a separator is kept as a fragment and joined once, when the separator
    (possibly straddling two reads) arrives, so a big line costs linear time.
    """

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        """Return the frames (without their ``\\n\\n``) that ``chunk`` completed."""
        pending = self.pending
        if pending:
            if b"\n\n" not in chunk and not (chunk[:1] == b"\n" and pending[-1][-1:] == b"\n"):
                pending.append(chunk)
                return []
            pending.append(chunk)
            chunk = b"".join(pending)
            pending.clear()
        frames = chunk.split(b"\n\n")
        rest = frames.pop()
        if rest:
            pending.append(rest)
        return frames


def run_floor(reads: list[bytes]) -> list[bytes]:
    """The floor framer; keeps the payload of ``data: `` frames."""
    framer = SplitFramer()
    out: list[bytes] = []
    append = out.append
    for chunk in reads:
        for frame in framer.feed(chunk):
            if frame[:6] == b"data: ":
                append(frame[6:])
    return out


def run_floor_orjson(reads: list[bytes]) -> list[Any]:
    """The floor framer plus ``orjson.loads`` of every payload but ``[DONE]``."""
    framer = SplitFramer()
    loads = orjson.loads
    out: list[Any] = []
    append = out.append
    for chunk in reads:
        for frame in framer.feed(chunk):
            if frame[:6] == b"data: ":
                payload = frame[6:]
                append(DONE if payload == b"[DONE]" else loads(payload))
    return out


def _in_loop(
    loop: asyncio.AbstractEventLoop, make: Callable[[list[bytes]], Any]
) -> Callable[[list[bytes]], Any]:
    def run(reads: list[bytes]) -> Any:
        return loop.run_until_complete(make(reads))

    return run


def _expect_data(expected: list[str]) -> Callable[[Any], Check]:
    def check(output: Any) -> Check:
        return compare_items(expected, output)

    return check


def _expect_bytes(expected: list[str]) -> Callable[[Any], Check]:
    def check(output: Any) -> Check:
        return compare_items(expected, [item.decode("utf-8", "replace") for item in output])

    return check


def _expect_json(expected: list[str]) -> Callable[[Any], Check]:
    def check(output: Any) -> Check:
        parsed = [item if item == DONE else orjson.loads(item) for item in expected]
        return compare_items(parsed, output)

    return check


@dataclass(slots=True)
class PeerSpec:
    """A peer of the SSE benchmark: a name, what it runs, how its output is checked."""

    name: str
    run: Callable[[list[bytes]], Any]
    output: str = "data"  # "data" (list of str), "bytes" (payloads) or "json" (parsed)
    note: str = ""


def httpx_flavour() -> str:
    """Which httpx httpx-sse runs on: the real one, or httpx2 aliased as httpx."""
    httpx = import_httpx()
    name = getattr(httpx, "__name__", "httpx")
    version = getattr(httpx, "__version__", "?")
    return f"{name} {version}" + (" (aliased as httpx)" if name != "httpx" else "")


def warm_imports() -> None:
    """Import every peer now, so that no timed run pays for an import."""
    import_httpx()
    import aiohttp_sse_client.client  # type: ignore[import-untyped]
    import httpx_sse
    import openai._streaming
    import sseclient

    del aiohttp_sse_client, httpx_sse, openai, sseclient


def sse_peers(loop: asyncio.AbstractEventLoop) -> list[PeerSpec]:
    """Every peer of the SSE decoding benchmark (async ones run in ``loop``)."""
    warm_imports()
    return [
        PeerSpec(REFERENCE, run_rxgpt),
        PeerSpec("httpx-sse decoders", run_httpx_sse_decoders),
        PeerSpec("httpx-sse iter_sse", run_httpx_sse_iter),
        PeerSpec("httpx-sse aiter_sse", _in_loop(loop, _httpx_sse_aiter)),
        PeerSpec("openai SSEDecoder.iter_bytes", run_openai_iter_bytes),
        PeerSpec("openai SSEDecoder.aiter_bytes", _in_loop(loop, _openai_aiter_bytes)),
        PeerSpec("sseclient-py", run_sseclient),
        PeerSpec("aiohttp-sse-client", _in_loop(loop, _aiohttp_sse_client)),
        PeerSpec("floor: split", run_floor, output="bytes"),
        PeerSpec("floor: split+orjson", run_floor_orjson, output="json"),
    ]


# --------------------------------------------------------------------------- the cases


@dataclass(slots=True)
class SSECaseSpec:
    """One input of the SSE benchmark: a body, how it is cut, and what is counted."""

    name: str
    description: str
    body: Body
    reads: list[bytes]
    unit: str = "events"
    repeats: int = 7
    budget: float = 4.0
    group: str = "main"  # "main" cases are plotted; "growth" cases feed the growth table

    @property
    def units(self) -> int:
        """What the rate counts: events, or comments for a heartbeat body."""
        return self.body.comments if self.unit == "comments" else len(self.body.events)


def cases(quick: bool = False) -> list[SSECaseSpec]:
    """The inputs, full size or tiny (``quick``)."""
    chat = openai_chat_body(400 if quick else 20_000)
    small = openai_chat_body(100 if quick else 2_500)
    heart = heartbeat_body(500 if quick else 50_000)
    multi = multibyte_body(100 if quick else 5_000)
    big_sizes = [16 * 1024, 32 * 1024, 64 * 1024] if quick else [2**20, 2**21, 2**22]
    repeats = 2 if quick else 7
    specs = [
        SSECaseSpec(
            "chat-random-reads",
            f"{len(chat.events):,} OpenAI chat chunk events ({chat.size / len(chat.events):.0f}"
            " B each), random 1–4 KiB reads (seed 42)",
            chat,
            split_random(chat.data, 1024, 4096, seed=42),
            repeats=repeats,
        ),
        SSECaseSpec(
            "chat-event-per-read",
            f"the same {len(chat.events):,} events, one event per read",
            chat,
            split_events(chat.data),
            repeats=repeats,
        ),
        SSECaseSpec(
            "small-reads-8B",
            f"{len(small.events):,} OpenAI chat chunk events in 8-byte reads "
            "(eventsource-parser's small-chunk shape)",
            small,
            split_fixed(small.data, 8),
            repeats=repeats,
        ),
        SSECaseSpec(
            "heartbeats",
            f"{heart.comments:,} keep-alive comments `:\\n\\n`, one per read, then one event "
            "(rate = comments/s)",
            heart,
            split_events(heart.data),
            unit="comments",
            repeats=repeats,
        ),
        SSECaseSpec(
            "multibyte",
            f"{len(multi.events):,} events of mostly 2/3/4-byte UTF-8 text, random 1–64 B reads"
            " (characters split across reads)",
            multi,
            split_random(multi.data, 1, 64, seed=5),
            repeats=repeats,
        ),
    ]
    for size in big_sizes:
        body = big_line_body(size)
        specs.append(
            SSECaseSpec(
                f"big-line-{size // 1024}KiB",
                f"one {_size(size)} `data:` line (a JSON object) in 1 KiB reads, then [DONE]",
                body,
                split_fixed(body.data, 1024),
                repeats=repeats if size == big_sizes[-1] else max(repeats - 2, 2),
                budget=6.0,
                group="main" if size == big_sizes[-1] else "growth",
            )
        )
    return specs


def _size(size: int) -> str:
    return f"{size / 2**20:.3g} MiB" if size >= 2**20 else f"{size / 1024:.3g} KiB"


def _checker(spec: PeerSpec, body: Body) -> Callable[[Any], Check]:
    if spec.output == "bytes":
        return _expect_bytes(body.events)
    if spec.output == "json":
        return _expect_json(body.events)
    return _expect_data(body.events)


def run_spec(spec: SSECaseSpec, loop: asyncio.AbstractEventLoop) -> Case:
    """Run every peer on one input."""
    peers = []
    for peer in sse_peers(loop):

        def run_peer(
            run: Callable[[list[bytes]], Any] = peer.run, reads: list[bytes] = spec.reads
        ) -> Any:
            return run(reads)

        peers.append(
            Peer(
                name=peer.name,
                run=run_peer,
                check=_checker(peer, spec.body),
                note=peer.note,
                budget=spec.budget,
                reference=peer.name == REFERENCE,
            )
        )
    notes = [f"httpx-sse iter_sse/aiter_sse run on {httpx_flavour()}"]
    if spec.name.startswith("big-line"):
        notes.append(
            "aiohttp-sse-client reads lines with aiohttp's StreamReader.readline, which "
            "refuses lines longer than 2 × read_bufsize (512 KiB by default): the error is the "
            "result"
        )
    return run_case(
        "sse",
        spec.name,
        spec.description,
        peers,
        unit=spec.unit,
        units=spec.units,
        nbytes=spec.body.size,
        reads=len(spec.reads),
        repeats=spec.repeats,
        notes=notes,
    )


def _speedup(case: Case | None, peer: str, at_least: float) -> Target | None:
    """rxgpt at least ``at_least`` times faster than ``peer`` on ``case``."""
    if case is None:
        return None
    ratio = case.peer(peer).ratio  # peer time ÷ rxgpt time
    return Target(
        f"sse {case.name}: ≥ {at_least:g}× {peer}",
        f"rxgpt's decoding time ÷ {peer}'s (target: at most 1/{at_least:g})",
        round(1 / at_least, 4),
        1 / ratio if ratio else None,
    )


def _doubling(big: list[Case], name: str) -> float | None:
    times = [case.peer(name).median for case in big]
    ratios = [b / a for a, b in itertools.pairwise(times) if a and b]
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None


def targets(cases: list[Case], big: list[Case]) -> list[Target]:
    """The issue's SSE decoding targets."""
    by_name = {case.name: case for case in cases}
    random_reads = by_name.get("chat-random-reads")
    per_read = by_name.get("chat-event-per-read")
    wanted = [
        _speedup(random_reads, "httpx-sse iter_sse", 2.5),
        _speedup(random_reads, "openai SSEDecoder.iter_bytes", 4),
        _speedup(per_read, "httpx-sse iter_sse", 2),
        _speedup(per_read, "openai SSEDecoder.iter_bytes", 2),
        _speedup(big[-1] if big else None, "sseclient-py", 10),
    ]
    out = [target for target in wanted if target is not None]
    if len(big) > 1:
        out.append(
            Target(
                "sse big line: linear",
                "rxgpt's time ratio per doubling of the line (2 = linear, 4 = quadratic)",
                2.8,
                _doubling(big, REFERENCE),
            )
        )
    return out


def growth_table(big: list[Case]) -> str:
    """Time per peer for the big-line sizes, with the doubling ratio (2 = linear, 4 = quadratic)."""
    sizes = [case.nbytes for case in big]
    names = [peer.name for peer in big[0].peers]
    rows = []
    for name in names:
        times = [case.peer(name).median for case in big]
        row = [name] + [fmt_seconds(t) for t in times]
        ratios = [
            b / a for a, b in itertools.pairwise(times) if a is not None and b is not None and a > 0
        ]
        if ratios:
            mean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            verdict = "linear" if mean < 2.8 else "quadratic" if mean > 3.2 else "superlinear"
            row += [" / ".join(f"{r:.2f}" for r in ratios), verdict]
        else:
            err = big[-1].peer(name).error or "-"
            row += [err.split(":")[0], "-"]
        rows.append(row)
    headers = ["peer"] + [_size(s) for s in sizes] + ["doubling ratio", "growth"]
    return (
        "### sse / big-line growth\n\nMedian time to decode one big `data:` line in 1 KiB "
        "reads at doubling sizes; the doubling ratio is t(2n)/t(n): about 2 for linear "
        "work, about 4 for quadratic.\n\n" + render_table(headers, rows) + "\n"
    )


def run(quick: bool = False) -> BenchResult:
    """Run the SSE decoding benchmark and return its results."""
    start = time.perf_counter()
    result = BenchResult("sse")
    with event_loop() as loop:
        for spec in cases(quick):
            progress(f"[sse] {spec.name}: {len(spec.reads):,} reads, {spec.body.size:,} bytes")
            result.cases.append(run_spec(spec, loop))
    main = [case for case in result.cases if not case.name.startswith("big-line")]
    big = [case for case in result.cases if case.name.startswith("big-line")]
    main.append(big[-1])
    result.tables.extend(format_case(case) for case in main)
    result.tables.append(growth_table(big))
    result.tables.append(_summary(main))
    result.targets.extend(targets(result.cases, big))
    result.extra["plotted_cases"] = [case.name for case in main]
    result.seconds = time.perf_counter() - start
    return result


def _summary(main: list[Case]) -> str:
    """One row per peer, one column per case: time ratio vs rxgpt (above 1 = slower)."""
    names = [peer.name for peer in main[0].peers]
    rows = []
    for name in names:
        row = [name]
        for case in main:
            peer = case.peer(name)
            cell = fmt_ratio(peer.ratio) if peer.ratio is not None else "error"
            if peer.check.startswith("MISMATCH"):
                cell += " (wrong)"
            row.append(cell)
        rows.append(row)
    return (
        "### sse / summary: time ÷ rxgpt's time (above 1 = slower than rxgpt)\n\n"
        + render_table(["peer", *(case.name for case in main)], rows)
        + "\n"
    )


def main_cases(result: BenchResult) -> list[Case]:
    """The plotted cases, in order."""
    plotted = list(result.extra.get("plotted_cases", []))
    by_name = {case.name: case for case in result.cases}
    return [by_name[name] for name in plotted if name in by_name]


def profile_workloads(quick: bool = False) -> Iterator[tuple[str, Callable[[], Any]]]:
    """rxgpt's side of the benchmark, for :mod:`benchmarks.profiling`."""
    chat = openai_chat_body(400 if quick else 20_000)
    reads = split_random(chat.data, 1024, 4096, seed=42)
    yield "rxgpt SSEDecoder.feed, chat-random-reads", lambda: run_rxgpt(reads)
    per_event = split_events(chat.data)
    yield "rxgpt SSEDecoder.feed, chat-event-per-read", lambda: run_rxgpt(per_event)
    heart = split_events(heartbeat_body(500 if quick else 50_000).data)
    yield "rxgpt SSEDecoder.feed, heartbeats", lambda: run_rxgpt(heart)
    small = split_fixed(openai_chat_body(100 if quick else 2_500).data, 8)
    yield "rxgpt SSEDecoder.feed, small-reads-8B", lambda: run_rxgpt(small)
