"""A relayed stream leaves no reference cycle, on the producer's side (``relay.publish``
over a ChatStream) nor on a subscriber's (``relay.subscribe``): what they held is freed by
reference counting when they end, never left for the cyclic garbage collector (see
tests/test_no_cycles.py). Real redis-server and the mock server; collector off meanwhile.
"""

from __future__ import annotations

import asyncio
import gc

from conftest import TIMEOUT
from relay_helpers import chat

import rxgpt
import rxgpt.relay as relay
from rxgpt.mock import MockServer
from rxgpt.relay._connect import Redis


def _client_side_garbage() -> list[str]:
    gc.collect()
    names = {
        f"{type(obj).__module__}.{type(obj).__qualname__}"
        for obj in gc.garbage
        if (type(obj).__module__ or "").startswith("rxgpt.")
        and not type(obj).__module__.startswith("rxgpt.mock")
    }
    gc.garbage.clear()
    return sorted(names)


async def test_publishing_and_subscribing_leave_no_cycle(redis_client: Redis) -> None:
    async with (
        MockServer(tokens=20) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as client,
    ):
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            async with asyncio.timeout(TIMEOUT):
                for n in range(3):
                    stream = chat(client)
                    published = relay.publish(stream, redis_client, f"answer-{n}")
                    completion = await stream.completion()
                    await published.finished()
                    relayed = await relay.subscribe(redis_client, f"answer-{n}").completion()
                    assert relayed == completion
                    del stream, published
            assert _client_side_garbage() == []
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
