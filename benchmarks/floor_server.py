"""A minimal pre-encoded streaming server: the floor a client is measured against.

``python -m benchmarks.floor_server --port P [--itl-ms X]`` answers
``POST /v1/chat/completions`` with an OpenAI Chat Completions stream of ``max_tokens``
tokens (role chunk, one chunk per token, finish chunk, ``[DONE]``), every chunk encoded
once at start-up and sent with one ``write`` each. With ``--itl-ms`` one ticker steps every
running stream at once at absolute deadlines (no drift, no task sleeping per stream), as an
inference server's decode step does. ``GET /health`` answers 200 once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web

from rxgpt._serving import LISTEN_BACKLOG

_ID = "chatcmpl-floor"


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    payload = {
        "id": _ID,
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "floor",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


ROLE = _chunk({"role": "assistant", "content": ""})
TOKEN = _chunk({"content": " tok"})
FINISH = _chunk({}, "stop")
DONE = b"data: [DONE]\n\n"
HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


class Ticker:
    """One decode step every ``itl`` seconds for every running stream, at absolute times."""

    def __init__(self, itl: float) -> None:
        self.itl = itl
        self.step: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += self.itl
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            step, self.step = self.step, loop.create_future()
            step.set_result(None)


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    tokens = int(body.get("max_tokens") or 16)
    response = web.StreamResponse(headers=HEADERS)
    await response.prepare(request)
    ticker: Ticker | None = request.app.get("ticker")
    await response.write(ROLE)
    for _ in range(tokens):
        if ticker is not None:
            await ticker.step
        await response.write(TOKEN)
    await response.write(FINISH + DONE)
    await response.write_eof()
    return response


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app(itl_ms: float) -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)

    async def start_ticker(app: web.Application) -> None:
        if itl_ms > 0:
            app["ticker"] = Ticker(itl_ms / 1000)

    app.on_startup.append(start_ticker)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--itl-ms", type=float, default=0.0)
    args = parser.parse_args()
    web.run_app(
        make_app(args.itl_ms),
        host="127.0.0.1",
        port=args.port,
        print=None,
        backlog=LISTEN_BACKLOG,  # (as rxgpt serve: no SYN dropped at a burst of connects)
        access_log=None,
    )


if __name__ == "__main__":
    main()
