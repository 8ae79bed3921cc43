"""Start a chat and relay it to Redis while printing it (the producer of the example).

    python examples/relay/producer.py --redis redis://127.0.0.1:6379/0 --key demo "Explain SSE"

With no ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` set it asks rxgpt's embedded mock server,
slowed down to a few tokens per second so the answer can be watched from elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

import rxgpt
import rxgpt.relay
from rxgpt.mock import MockServer


@contextlib.asynccontextmanager
async def llm(tokens: int, itl_ms: float) -> AsyncIterator[tuple[str | None, str | None, str]]:
    """(base URL, API key, model): the configured API, else the embedded mock server."""
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        yield None, None, os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        return
    async with MockServer(tokens=tokens, itl_ms=itl_ms, ttft_ms=100) as server:
        yield server.base_url, "sk-embedded", "rxgpt-mock"


async def main(args: argparse.Namespace) -> int:
    client = rxgpt.relay.connect(args.redis)
    try:
        await rxgpt.relay.ping(client)  # a clear TransportError when Redis is unreachable
        async with (
            llm(args.tokens, args.itl_ms) as (base_url, api_key, model),
            rxgpt.Client(base_url=base_url, api_key=api_key) as llm_client,
        ):
            stream = llm_client.chat(
                model=model,
                messages=[{"role": "user", "content": args.prompt}],
                stream_options={"include_usage": True},
            )
            relay = rxgpt.relay.publish(stream, client, args.key, lease=args.lease)
            stream.subscribe(rxgpt.TextPrinter(sys.stdout))
            completion = await stream.completion()
            last_id = await relay.finished()
        print(f"relayed {completion.deltas} deltas to key {args.key!r} (end entry {last_id})")
        return 0
    except rxgpt.RxgptError as error:
        print(f"producer: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="Explain server-sent events")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--key", default="demo", help="the Redis key (one per answer)")
    parser.add_argument("--tokens", type=int, default=200, help="mock answer length")
    parser.add_argument("--itl-ms", type=float, default=50.0, help="mock inter-token latency")
    parser.add_argument("--lease", type=float, default=5.0, help="producer lease, seconds")
    sys.exit(asyncio.run(main(parser.parse_args())))
