"""An ended stream leaves no reference cycle: its objects are freed at once, by reference
counting, and never wait for (or feed) CPython's cyclic garbage collector.

With thousands of streams a cycle per stream means every stream's objects survive until
a collection finds them, get promoted, and make the old generation's collections walk
them all. Checked for every provider's stream from the embedded server (real loopback
sockets), for a failed stream and a cancelled one, with the collector off while they
run: what ``gc.collect()`` then finds unreachable must hold no rxgpt object of the
client side. The one cycle allowed is an error's own: ``error.partial`` is a Completion
whose ``error`` is that error (both public, so a failed stream leaves those two).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator, Iterator

import pytest

from rxgpt import Client, HTTPStatusError, Retry, StreamCancelled
from rxgpt.mock import MockServer

BOUND = 10.0
STREAMS = 5
PROVIDERS = ["openai", "openai-responses", "openai-completions", "anthropic", "gemini", "ollama"]


def _client_side(obj: object) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("rxgpt.") and not module.startswith("rxgpt.mock")


@pytest.fixture
def collector_off() -> Iterator[list[str]]:
    """The collector off; yields the list that receives the rxgpt garbage found after."""
    found: list[str] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


#: What a failed stream's error and its partial Completion hold (see the docstring).
ERROR_AND_PARTIAL = frozenset({"Completion", "Choice", "HTTPStatusError", "StreamCancelled"})


def _rxgpt_garbage(allowed: frozenset[str] = frozenset()) -> list[str]:
    gc.collect()
    names = {type(obj).__qualname__ for obj in gc.garbage if _client_side(obj)}
    gc.garbage.clear()
    return sorted(names - allowed)


def _client(server: MockServer, provider: str) -> Client:
    base = server.base_url if provider.startswith("openai") else server.url
    return Client(base, "sk-test", provider=provider, retry=Retry(attempts=1))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_completed_stream_leaves_no_cycle(provider: str, collector_off: list[str]) -> None:
    async with MockServer(tokens=6) as server, _client(server, provider) as client:
        async with asyncio.timeout(BOUND):
            for _ in range(STREAMS):
                stream = client.chat(model="m", messages=[{"role": "user", "content": "hi"}])
                seen: list[object] = []
                stream.subscribe(seen.append)
                assert (await stream.completion()).text
                assert seen
        del stream
        assert _rxgpt_garbage() == []


async def test_failed_and_cancelled_streams_leave_no_cycle(collector_off: list[str]) -> None:
    async with MockServer(tokens=50, itl_ms=5) as server, _client(server, "openai") as client:
        async with asyncio.timeout(BOUND):
            for _ in range(STREAMS):
                bad = client.chat(model="m", messages=[{"role": "user", "content": "hi"}],
                                  mock={"status": 400})  # fmt: skip
                with pytest.raises(HTTPStatusError):
                    await bad.completion()
                del bad
                slow = client.chat(model="m", messages=[{"role": "user", "content": "hi"}])
                deltas = slow.__aiter__()
                assert isinstance(deltas, AsyncGenerator)
                assert await anext(deltas)
                await deltas.aclose()  # leaving the loop cancels the stream
                assert isinstance(slow.partial.error, StreamCancelled)
                del slow
        assert _rxgpt_garbage(ERROR_AND_PARTIAL) == []
