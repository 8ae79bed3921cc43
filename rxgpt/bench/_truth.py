"""A ground-truth server: OpenAI chat streams whose every write time is recorded.

What ``rxgpt bench`` is checked against (tests/test_bench_accuracy.py,
benchmarks/bench_accuracy.py): the measurer's figures minus the server's own are its error.

Each request's timeline is on absolute deadlines from its arrival: an optional role-only
chunk at ``role_ms``, optional reasoning chunks, then content chunks of ``tokens_per_chunk``
tokens, the first at ``ttft_ms`` and then every ``tokens_per_chunk * token_ms``, a finish
chunk, a usage chunk (when asked) and ``[DONE]``. ``time.perf_counter_ns()`` is stamped
just before each write (the clock is system-wide on Linux, so a client in another process
compares directly).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["Truth", "TruthConfig", "TruthRunner", "truth_app"]


class _StampingHandler(RequestHandler):
    """aiohttp's server protocol, noting when each network read arrived (before parsing)."""

    last_read_ns = 0

    def data_received(self, data: bytes) -> None:
        self.last_read_ns = time.perf_counter_ns()
        super().data_received(data)


class _StampingServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _StampingHandler(self, loop=self._loop, **self._kwargs)


class TruthRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections stamp their reads, so a request's
    arrival is when its last bytes came off the socket, not when its handler first ran."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _StampingServer
        return server


@dataclass
class Truth:
    """One request as the server saw it: arrival, and per write (time, kind, tokens)."""

    key: str
    arrival_ns: int
    writes: list[tuple[int, str, int]] = field(default_factory=list)

    def first(self, *kinds: str) -> int:
        """The time of the first write of one of ``kinds``."""
        return next(t for t, kind, _ in self.writes if kind in kinds)

    def last(self, *kinds: str) -> int:
        """The time of the last write of one of ``kinds``."""
        return [t for t, kind, _ in self.writes if kind in kinds][-1]

    @property
    def ttft_ms(self) -> float:
        """True TTFT: arrival to the first output write."""
        return (self.first("content", "reasoning") - self.arrival_ns) / 1e6

    @property
    def ttfc_ms(self) -> float:
        """True TTFC: arrival to the first answer (content) write."""
        return (self.first("content") - self.arrival_ns) / 1e6

    @property
    def e2el_ms(self) -> float:
        """True E2EL: arrival to the last output write."""
        return (self.last("content", "reasoning") - self.arrival_ns) / 1e6

    def gaps_ms(self) -> list[tuple[float, int]]:
        """(gap before a chunk, its tokens) for every output chunk after the first."""
        out = [(t, k) for t, kind, k in self.writes if kind in ("content", "reasoning")]
        return [((b[0] - a[0]) / 1e6, b[1]) for a, b in itertools.pairwise(out)]


@dataclass
class TruthConfig:
    """The timeline of every answer (see the module docstring); ``usage``: send a usage chunk
    when ``stream_options.include_usage`` asks."""

    tokens: int = 32
    tokens_per_chunk: int = 1
    ttft_ms: float = 30.0
    token_ms: float = 5.0
    role_ms: float | None = 5.0
    reasoning_chunks: int = 0
    usage: bool = True


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-truth",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "truth",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def truth_app(config: TruthConfig, log: list[Truth]) -> web.Application:
    """The server's app (``POST /v1/chat/completions``); each request's :class:`Truth` is
    appended to ``log`` (its ``key``: the prompt's first word, rxgpt bench's request index).
    """

    async def chat(request: web.Request) -> web.StreamResponse:
        arrival = time.perf_counter_ns()
        body = await request.json()
        read = getattr(request.protocol, "last_read_ns", 0)
        if 0 < read <= arrival:  # served by a TruthRunner: the bytes' own arrival
            arrival = read
        content = body["messages"][-1]["content"]
        if isinstance(content, list):  # typed parts, as some clients send
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        truth = Truth(str(content).split(" ", 1)[0], arrival)
        log.append(truth)
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or config.tokens
        tokens = min(config.tokens, int(limit))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        perf = time.perf_counter_ns

        async def at(ms: float) -> None:
            wait = (arrival + int(ms * 1e6) - perf()) / 1e9
            if wait > 0:
                await asyncio.sleep(wait)

        async def write(data: bytes, kind: str, k: int) -> None:
            truth.writes.append((perf(), kind, k))
            await resp.write(data)

        if config.role_ms is not None:
            await at(config.role_ms)
            await write(_chunk({"role": "assistant", "content": ""}), "role", 0)
        step = config.tokens_per_chunk * config.token_ms
        due = config.ttft_ms
        for _ in range(config.reasoning_chunks):
            await at(due)
            await write(
                _chunk({"reasoning_content": "hmm " * config.tokens_per_chunk}),
                "reasoning",
                config.tokens_per_chunk,
            )
            due += step
        sent = 0
        while sent < tokens:
            k = min(config.tokens_per_chunk, tokens - sent)
            await at(due)
            await write(_chunk({"content": "word " * k}), "content", k)
            sent += k
            due += step
        await write(_chunk({}, "stop"), "finish", 0)
        if config.usage and (body.get("stream_options") or {}).get("include_usage"):
            out = tokens + config.reasoning_chunks * config.tokens_per_chunk
            usage = {"prompt_tokens": 10, "completion_tokens": out, "total_tokens": out + 10}
            data = {
                "id": "chatcmpl-truth",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "truth",
                "choices": [],
                "usage": usage,
            }
            await write(b"data: " + json.dumps(data).encode() + b"\n\n", "usage", 0)
        await write(b"data: [DONE]\n\n", "done", 0)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app
