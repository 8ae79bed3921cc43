"""How right is ``rxgpt bench``? Its figures against a server that records every write.

``python -m benchmarks.bench_accuracy [--quick] [--json FILE]``, or ``--overload STREAMS``
for the overloaded-worker check alone (one worker, STREAMS streams at once: the run must
be flagged, with its reasons printed).

The ground-truth server (:mod:`rxgpt.bench._truth`) runs in a process of its own and
streams OpenAI chat chunks on absolute deadlines: a role-only chunk at +30 ms, the first
content at +100 ms, then a chunk every K × 10 ms (K tokens per chunk), 64 tokens, a usage
chunk and ``[DONE]`` (the timeline the peers were measured on, see docs/bench.md). It stamps
``perf_counter_ns()`` before every write; the clock is system-wide, so the error of a
measurer is its figure minus the server's, request by request.

Measurers, each on the same server and load (closed loop, C streams):

* ``rxgpt`` — ``rxgpt.bench.arun`` (stamps in the protocol's ``data_received``, before
  parsing), one worker, and ``rxgpt ×2`` with two worker processes;
* ``bare loop`` — the reference loop of the peers' table: aiohttp ``iter_any``, split on
  blank lines, ``json.loads``, a ``perf_counter_ns()`` per event after parsing (how vLLM's
  ``bench serve`` times chunks).

With ``--guidellm BIN`` and ``--aiperf BIN`` (and ``--tokenizer-dir DIR``) guidellm and
AIPerf run in each round too, on the same server and load (their rows: their median and
p99 minus the truth's; neither keeps per-request chunk times to pair). vLLM ``bench
serve`` needs a 3.4 GB virtualenv of its own (see docs/bench.md); its errors measured on the
same kind of timeline are quoted there. ``--only C64`` runs one case.

Each case alternates the measurers over two rounds (``a``, ``b``; one with ``--quick``), so
the drift of a shared machine hits them alike.

Columns: TTFT / E2EL = median and p99 over requests of (measured − true) in ms (TTFT is
compared with the true first *content* write: the role chunk carries no token); ITL and
TPOT = the measured medians beside the truth (chunk gap K×10 ms, per-token gap 10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from rxgpt._serving import LISTEN_BACKLOG
from rxgpt.bench import BenchConfig, arun
from rxgpt.bench._truth import Truth, TruthConfig, TruthRunner, truth_app

ROLE_MS, TTFT_MS, TOKEN_MS, TOKENS = 30.0, 100.0, 10.0, 64


def _serve(conn: Connection, config: TruthConfig) -> None:
    from aiohttp import web

    async def main() -> None:
        log: list[Truth] = []
        runner = TruthRunner(truth_app(config, log), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=LISTEN_BACKLOG).start()
        conn.send(runner.addresses[0][1])
        loop = asyncio.get_running_loop()
        while True:
            ready = asyncio.Event()
            loop.add_reader(conn.fileno(), ready.set)
            await ready.wait()
            loop.remove_reader(conn.fileno())
            command = conn.recv()
            if command == "log":
                conn.send([(t.key, t.arrival_ns, t.writes) for t in log])
                log.clear()
            else:
                break
        await runner.cleanup()

    asyncio.run(main())


@contextlib.contextmanager
def truth_server(config: TruthConfig) -> Iterator[tuple[str, Connection]]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(child, config), daemon=True)
    process.start()
    if not parent.poll(30):
        raise SystemExit("the truth server did not start")
    port = parent.recv()
    try:
        yield f"http://127.0.0.1:{port}/v1", parent
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()


def _truths(conn: Connection) -> dict[str, Truth]:
    conn.send("log")
    out: dict[str, Truth] = {}
    for key, arrival, writes in conn.recv():
        name = key if key not in out else f"{key}#{len(out)}"  # a peer's prompts may repeat
        out[name] = Truth(key, arrival, writes)
    return out


@dataclass
class Row:
    case: str
    measurer: str
    ttft_med: float
    ttft_p99: float
    e2el_med: float
    e2el_p99: float
    itl: float
    token_itl: float | None
    tpot: float
    requests: int
    flagged: bool | None = None
    true_itl: float = 0.0
    true_token_itl: float = 0.0
    true_tpot: float = 0.0


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _row(
    case: str,
    who: str,
    per_request: list[dict[str, Any]],
    truths: dict[str, Truth],
    itl: float,
    token_itl: float | None,
    tpot: float,
    flagged: bool | None,
) -> Row:
    ttft = [r["ttft_ms"] - truths[str(r["index"])].ttfc_ms for r in per_request]
    e2el = [r["e2el_ms"] - truths[str(r["index"])].e2el_ms for r in per_request]
    seen = [truths[str(r["index"])] for r in per_request]
    gaps = [g for t in seen for g in t.gaps_ms()]
    tokens = [sum(k for *_, k in t.writes) for t in seen]
    true_tpot = statistics.median(
        (t.e2el_ms - t.ttfc_ms) / (n - 1) for t, n in zip(seen, tokens, strict=True)
    )
    return Row(
        case,
        who,
        statistics.median(ttft),
        _p99(ttft),
        statistics.median(e2el),
        _p99(e2el),
        itl,
        token_itl,
        tpot,
        len(per_request),
        flagged,
        statistics.median(g for g, _ in gaps),
        statistics.median(g / k for g, k in gaps),
        true_tpot,
    )


async def _rxgpt(
    base_url: str, streams: int, requests: int, workers: int, detailed: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    config = BenchConfig(
        base_url=base_url,
        api_key="sk-truth",
        num_prompts=requests,
        max_concurrency=streams,
        input_len=16,
        output_len=TOKENS,
        workers=workers,
        save_detailed=str(detailed),
    )
    report = await arun(config)
    rows = [json.loads(line) for line in detailed.read_text().splitlines()]
    return report.fields, [r for r in rows if r["ok"]]


async def _bare(base_url: str, streams: int, requests: int) -> list[dict[str, Any]]:
    """The peers' table's reference: iter_any, split on blank lines, json.loads, then stamp."""
    out: list[dict[str, Any]] = []
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(index: int) -> None:
            body = {
                "model": "truth",
                "messages": [{"role": "user", "content": f"{index} hi"}],
                "max_tokens": TOKENS,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            st = time.perf_counter_ns()
            stamps: list[int] = []
            usage = None
            async with session.post(f"{base_url}/chat/completions", json=body) as resp:
                buffer = b""
                async for data in resp.content.iter_any():
                    buffer += data
                    while b"\n\n" in buffer:
                        event, buffer = buffer.split(b"\n\n", 1)
                        payload = event.removeprefix(b"data: ")
                        if payload == b"[DONE]":
                            continue
                        chunk = json.loads(payload)
                        now = time.perf_counter_ns()
                        if chunk.get("usage"):
                            usage = chunk["usage"]["completion_tokens"]
                        choices = chunk.get("choices") or []
                        if choices and choices[0]["delta"].get("content"):
                            stamps.append(now)
            ttft = (stamps[0] - st) / 1e6
            e2el = (stamps[-1] - st) / 1e6
            gaps = [(b - a) / 1e6 for a, b in itertools.pairwise(stamps)]
            out.append(
                {
                    "index": index,
                    "ttft_ms": ttft,
                    "e2el_ms": e2el,
                    "itls": gaps,
                    "tpot": (e2el - ttft) / ((usage or len(stamps)) - 1),
                }
            )

        async def slot() -> None:
            for index in counter:
                await one(index)

        await asyncio.gather(*(slot() for _ in range(streams)))
    return out


#: Where the peers are (``--guidellm BIN``, ``--aiperf BIN``, ``--tokenizer-dir DIR``).
PEERS: dict[str, str] = {}
#: The cases to run (``--only``; empty: all).
ONLY: set[str] = set()


def _guidellm(base_url: str, streams: int, requests: int, out: Path) -> dict[str, Any]:
    """Run guidellm (closed loop, C streams, the same token counts); its metrics block."""
    import os
    import subprocess

    origin = base_url.removesuffix("/v1")
    cmd = [
        PEERS["guidellm"],
        "run",
        "--backend",
        f"kind=openai_http,target={origin},validate_backend=false,model=truth",
        "--profile",
        f"kind=concurrent,streams={streams}",
        "--constraint",
        f"kind=max_requests,count={requests}",
        "--data",
        f"kind=synthetic_text,prompt_tokens=16,output_tokens={TOKENS}",
        "--tokenizer",
        f"kind=hf_auto,model={PEERS['tokenizer']}",
        "--output",
        f"kind=json,path={out}",
        "--disable-console",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"guidellm failed: {done.stderr[-2000:]}")
    metrics: dict[str, Any] = json.loads(out.read_text())["benchmarks"][0]["metrics"]
    return metrics


def _aiperf(base_url: str, streams: int, requests: int, out: Path) -> dict[str, Any]:
    """Run AIPerf (closed loop, C streams, the same token counts); its summary export.

    As bench-peers-measured.md says: with the server's token counts
    (``--use-server-token-count``) and a local tokenizer, ``HF_HUB_OFFLINE`` unset.
    """
    import os
    import subprocess

    cmd = [
        PEERS["aiperf"], "profile", "--model", "truth", "--url", base_url.removesuffix("/v1"),
        "--endpoint-type", "chat", "--streaming", "--concurrency", str(streams),
        "--request-count", str(requests), "--isl", "16", "--osl", str(TOKENS),
        "--tokenizer", PEERS["tokenizer"], "--use-server-token-count",
        "--artifact-dir", str(out), "--ui", "none",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"aiperf failed: {done.stderr[-2000:]}")
    [export] = out.rglob("profile_export_aiperf.json")
    summary: dict[str, Any] = json.loads(export.read_text())
    return summary


def _vllm(base_url: str, streams: int, requests: int, out: Path) -> dict[str, Any]:
    """Run ``vllm bench serve`` (closed loop at C streams, random prompts of 16 tokens,
    64 out); its result JSON (``median_ttft_ms``, ``p99_e2el_ms``...)."""
    import os
    import subprocess

    cmd = [
        PEERS["vllm"], "bench", "serve", "--backend", "openai-chat",
        "--base-url", base_url.removesuffix("/v1"), "--endpoint", "/v1/chat/completions",
        "--model", "truth", "--tokenizer", PEERS["tokenizer"], "--dataset-name", "random",
        "--random-input-len", "16", "--random-output-len", str(TOKENS),
        "--num-prompts", str(requests), "--max-concurrency", str(streams),
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99",
        "--save-result", "--result-dir", str(out), "--result-filename", "r.json",
    ]  # fmt: skip
    env = dict(os.environ, OPENAI_API_KEY="sk-test", HF_HUB_OFFLINE="1")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"vllm bench serve failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads((out / "r.json").read_text())
    return result


@dataclass(frozen=True, slots=True)
class PeerFigures:
    """What a peer tool reports of one run: medians and p99s (ms), ITL, TPOT, requests."""

    ttft_p50: float
    ttft_p99: float
    e2el_p50: float
    e2el_p99: float
    itl: float  # per chunk (NaN: the tool has no such figure)
    tpot: float
    requests: int


def _peer_row(case: str, who: str, peer: PeerFigures, truths: dict[str, Truth]) -> Row:
    """A peer's row: its medians and p99s minus the truth's (no per-request pairing)."""
    seen = list(truths.values())
    ttfc = [t.ttfc_ms for t in seen]
    e2el = [t.e2el_ms for t in seen]
    gaps = [g for t in seen for g in t.gaps_ms()]
    return Row(
        case,
        who,
        peer.ttft_p50 - statistics.median(ttfc),
        peer.ttft_p99 - _p99(ttfc),
        peer.e2el_p50 - statistics.median(e2el),
        peer.e2el_p99 - _p99(e2el),
        peer.itl,
        None,
        peer.tpot,
        peer.requests,
        None,
        statistics.median(g for g, _ in gaps),
        statistics.median(g / k for g, k in gaps),
        statistics.median(
            (t.e2el_ms - t.ttfc_ms) / (sum(k for *_, k in t.writes) - 1) for t in seen
        ),
    )


def _guidellm_figures(metrics: dict[str, Any]) -> PeerFigures:
    """guidellm's metrics block (its "ITL" is vLLM's TPOT; its latency is in seconds)."""

    def stat(name: str, key: str) -> float:
        block = metrics[name]["successful"]
        return float(block["median"] if key == "p50" else block["percentiles"][key])

    lat = "request_latency"
    return PeerFigures(
        stat("time_to_first_token_ms", "p50"),
        stat("time_to_first_token_ms", "p99"),
        stat(lat, "p50") * 1000,
        stat(lat, "p99") * 1000,
        float("nan"),
        stat("inter_token_latency_ms", "p50"),
        int(metrics[lat]["successful"]["count"]),
    )


def _aiperf_figures(summary: dict[str, Any]) -> PeerFigures:
    """AIPerf's summary export (its ITL is (E2EL − TTFT)/(OSL − 1), i.e. a TPOT)."""
    ttft, lat = summary["time_to_first_token"], summary["request_latency"]
    return PeerFigures(
        ttft["p50"],
        ttft["p99"],
        lat["p50"],
        lat["p99"],
        float("nan"),
        float(summary["inter_token_latency"]["p50"]),
        int(lat["count"]),
    )


def _vllm_figures(result: dict[str, Any]) -> PeerFigures:
    """``vllm bench serve``'s result JSON (its ITL is per chunk)."""
    return PeerFigures(
        result["median_ttft_ms"],
        result["p99_ttft_ms"],
        result["median_e2el_ms"],
        result["p99_e2el_ms"],
        float(result["median_itl_ms"]),
        float(result["median_tpot_ms"]),
        int(result["completed"]),
    )


async def _case(
    name: str, k: int, streams: int, requests: int, workers: tuple[int, ...], rounds: int
) -> list[Row]:
    config = TruthConfig(
        tokens=TOKENS, tokens_per_chunk=k, ttft_ms=TTFT_MS, token_ms=TOKEN_MS, role_ms=ROLE_MS
    )
    rows: list[Row] = []
    loop = asyncio.get_running_loop()
    manager = truth_server(config)
    base_url, conn = await loop.run_in_executor(None, manager.__enter__)
    try:
        for round_ in range(rounds):  # alternate the measurers: the machine's drift hits all
            tag = f" {'ab'[round_]}" if rounds > 1 else ""
            for w in workers:
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "d.jsonl"
                    fields, per = await _rxgpt(base_url, streams, requests, w, path)
                truths = await loop.run_in_executor(None, _truths, conn)
                who = ("rxgpt" if w == 1 else f"rxgpt ×{w}") + tag
                rows.append(
                    _row(
                        name,
                        who,
                        per,
                        truths,
                        fields["median_itl_ms"],
                        fields["median_token_itl_ms"],
                        fields["median_tpot_ms"],
                        bool(fields["client_health"]["flagged"]),
                    )
                )
            bare = await _bare(base_url, streams, requests)
            truths = await loop.run_in_executor(None, _truths, conn)
            rows.append(
                _row(
                    name,
                    "bare loop" + tag,
                    bare,
                    truths,
                    statistics.median(g for r in bare for g in r["itls"]),
                    None,
                    statistics.median(r["tpot"] for r in bare),
                    None,
                )
            )
            if "guidellm" in PEERS:
                with tempfile.TemporaryDirectory() as tmp:
                    metrics = await loop.run_in_executor(
                        None, _guidellm, base_url, streams, requests, Path(tmp) / "g.json"
                    )
                truths = await loop.run_in_executor(None, _truths, conn)
                rows.append(_peer_row(name, "guidellm" + tag, _guidellm_figures(metrics), truths))
            if "vllm" in PEERS:
                with tempfile.TemporaryDirectory() as tmp:
                    result = await loop.run_in_executor(
                        None, _vllm, base_url, streams, requests, Path(tmp)
                    )
                truths = await loop.run_in_executor(None, _truths, conn)
                rows.append(_peer_row(name, "vllm" + tag, _vllm_figures(result), truths))
            if "aiperf" in PEERS:
                with tempfile.TemporaryDirectory() as tmp:
                    summary = await loop.run_in_executor(
                        None, _aiperf, base_url, streams, requests, Path(tmp) / "a"
                    )
                truths = await loop.run_in_executor(None, _truths, conn)
                rows.append(_peer_row(name, "aiperf" + tag, _aiperf_figures(summary), truths))
    finally:
        await loop.run_in_executor(None, manager.__exit__, None, None, None)
    return rows


def _fmt(value: float) -> str:
    return "—" if value != value else f"{value:.2f}"


def _table(rows: list[Row]) -> str:
    head = (
        "| case | measurer | TTFT − true med / p99 | E2EL − true med / p99 | ITL med "
        "chunk (true) | ITL med token (true) | TPOT med (true) | requests | flagged |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        token = f"{r.token_itl:.2f}" if r.token_itl is not None else "—"
        flag = "—" if r.flagged is None else ("yes" if r.flagged else "no")
        lines.append(
            f"| {r.case} | {r.measurer} | {r.ttft_med:+.2f} / {r.ttft_p99:+.2f} | "
            f"{r.e2el_med:+.2f} / {r.e2el_p99:+.2f} | {_fmt(r.itl)} ({r.true_itl:.2f}) | "
            f"{token} ({r.true_token_itl:.2f}) | {r.tpot:.2f} ({r.true_tpot:.2f}) | "
            f"{r.requests} | {flag} |"
        )
    return "\n".join(lines)


async def main_async(quick: bool) -> list[Row]:
    scale = 4 if quick else 1
    cases = [
        ("C1", 1, 1, max(40 // scale, 5), (1,)),
        ("C64", 1, 64, 256 // scale, (1, 2)),
        ("C256", 1, 256, 512 // scale, (1, 2)),
        ("K4 C64", 4, 64, 256 // scale, (1, 2)),
    ]
    rounds = 1 if quick else 2
    rows: list[Row] = []
    for name, k, streams, requests, workers in cases:
        if ONLY and name not in ONLY:
            continue
        new = await _case(name, k, streams, requests, workers, rounds)
        rows.extend(new)
        print(_table(new).split("\n", 2)[-1], file=sys.stderr)
    return rows


async def overload(streams: int) -> list[str]:
    """One worker driving ``streams`` streams at once: is the run flagged, and why?"""
    config = TruthConfig(tokens=16, ttft_ms=TTFT_MS, token_ms=20.0, role_ms=ROLE_MS)
    loop = asyncio.get_running_loop()
    manager = truth_server(config)
    base_url, _conn = await loop.run_in_executor(None, manager.__enter__)
    try:
        report = await arun(
            BenchConfig(
                base_url=base_url,
                api_key="sk-truth",
                num_prompts=streams,
                max_concurrency=streams,
                input_len=8,
                output_len=16,
                workers=1,
            )
        )
    finally:
        await loop.run_in_executor(None, manager.__exit__, None, None, None)
    health = report["client_health"]
    return [
        f"{streams} streams, 1 worker: completed {report['completed']}, failed "
        f"{report['failed']}, flagged {health['flagged']}",
        *(f"  - {reason}" for reason in health["reasons"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_accuracy")
    parser.add_argument("--quick", action="store_true", help="fewer requests per case")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument(
        "--overload", type=int, metavar="STREAMS", help="only the overloaded-worker check"
    )
    parser.add_argument("--guidellm", metavar="BIN", help="also run this guidellm executable")
    parser.add_argument("--aiperf", metavar="BIN", help="also run this aiperf executable")
    parser.add_argument("--vllm", metavar="BIN", help="also run this vllm (bench serve)")
    parser.add_argument("--tokenizer-dir", metavar="DIR", help="a local tokenizer for peers")
    parser.add_argument(
        "--only", action="append", metavar="CASE", help="run only this case (C1, C64, ...)"
    )
    args = parser.parse_args(argv)
    for peer in ("guidellm", "aiperf", "vllm"):
        if getattr(args, peer):
            if not args.tokenizer_dir:
                parser.error(f"--{peer} needs --tokenizer-dir (a local Hugging Face tokenizer)")
            PEERS.update({peer: getattr(args, peer), "tokenizer": args.tokenizer_dir})
    if args.only:
        ONLY.update(args.only)
    if args.overload:
        print("\n".join(asyncio.run(overload(args.overload))))
        return 0
    rows = asyncio.run(main_async(args.quick))
    print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
