"""Serve relayed answers to browsers, with this directory's viewer page at ``/``.

    python examples/relay/serve.py --redis redis://127.0.0.1:6379/0 --port 8080
    # then open http://127.0.0.1:8080/?key=demo

The same as ``rxgpt relay --redis URL --port 8080 --page examples/relay/page.html``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from aiohttp import web

import rxgpt.relay

PAGE = Path(__file__).with_name("page.html")


async def main(args: argparse.Namespace) -> None:
    client = rxgpt.relay.connect(args.redis)
    await rxgpt.relay.ping(client)
    runner = web.AppRunner(rxgpt.relay.create_app(client, page=PAGE), handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    print(f"open http://{args.host}:{args.port}/?key=demo (Ctrl+C to stop)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    try:
        asyncio.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
