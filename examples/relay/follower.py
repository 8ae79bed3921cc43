"""Print a relayed answer live from another process (the follower of the example).

    python examples/relay/follower.py --redis redis://127.0.0.1:6379/0 --key demo

Start it before, during or after the producer: it reads the Redis Stream from its start
(or after ``--after ENTRY_ID``), follows it live, and ends as the producer's stream did.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import rxgpt
import rxgpt.relay


async def main(args: argparse.Namespace) -> int:
    client = rxgpt.relay.connect(args.redis)
    try:
        await rxgpt.relay.ping(client)
        stream = rxgpt.relay.subscribe(client, args.key, after=args.after)
        async for text in stream.text_deltas():
            print(text, end="", flush=True)
        completion = await stream.completion()
        print(f"\n[{completion.state}, {completion.deltas} deltas, last entry {stream.last_id}]")
        return 0
    except rxgpt.RxgptError as error:
        print(f"\nfollower: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--key", default="demo")
    parser.add_argument("--after", default=None, help="resume after this entry ID")
    sys.exit(asyncio.run(main(parser.parse_args())))
