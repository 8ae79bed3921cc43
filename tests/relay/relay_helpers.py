"""Helpers of the relay tests: a chat against the mock server, and Completion comparison.

Also run as a script, for the cross-process tests::

    python tests/relay/relay_helpers.py produce URL KEY TOKENS ITL_MS LEASE RESULT_FILE
    python tests/relay/relay_helpers.py follow URL KEY SUBSCRIBERS RESULT_FILE

``produce`` relays a mock chat and pickles its Completion to RESULT_FILE (printing
``started`` once the first delta is relayed); ``follow`` reads the key with SUBSCRIBERS
concurrent subscribers and pickles their Completions (or errors) to RESULT_FILE.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pickle
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import rxgpt
import rxgpt.relay as relay
from rxgpt.mock import MockServer

MESSAGES = [{"role": "user", "content": "Explain backpressure in one paragraph"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def chat(
    client: rxgpt.Client, *, tools: bool = False, mock: dict[str, Any] | None = None
) -> rxgpt.ChatStream:
    """A streamed mock chat with usage (and the tool trigger with ``tools``)."""
    params: dict[str, Any] = {"stream_options": {"include_usage": True}}
    if tools:
        params["tools"] = TOOLS
    if mock:
        params["mock"] = mock
    return client.chat(
        model="gpt-test",
        messages=WEATHER if tools else MESSAGES,
        retry=rxgpt.Retry(attempts=1),
        **params,
    )


def same(a: rxgpt.Completion, b: rxgpt.Completion) -> bool:
    """Equal Completions, errors compared by class and message (exceptions compare by id)."""
    if (type(a.error), str(a.error)) != (type(b.error), str(b.error)):
        return False
    return dataclasses.replace(a, error=None) == dataclasses.replace(b, error=None)


async def produce(url: str, key: str, tokens: int, itl_ms: float, lease: float, out: str) -> None:
    client = relay.connect(url)
    try:
        async with (
            MockServer(tokens=tokens, itl_ms=itl_ms) as server,
            rxgpt.Client(base_url=server.base_url, api_key="k") as llm,
        ):
            stream = chat(llm)
            published = relay.publish(stream, client, key, lease=lease)
            stream.subscribe(lambda _: None)
            stream.start()
            while published.entries < 2:
                await asyncio.sleep(0.005)
            print("started", flush=True)
            completion = await stream.completion()
            await published.finished()
        Path(out).write_bytes(pickle.dumps(completion))
    finally:
        await client.aclose()


async def follow(url: str, key: str, subscribers: int, out: str) -> None:
    client = relay.connect(url)
    try:

        async def one() -> Any:
            try:
                return await relay.subscribe(client, key, start_timeout=20).completion()
            except rxgpt.RxgptError as error:
                return error

        async with asyncio.timeout(60):
            results = await asyncio.gather(*(one() for _ in range(subscribers)))
        Path(out).write_bytes(pickle.dumps(results))
    finally:
        await client.aclose()


if __name__ == "__main__":
    mode, *argv = sys.argv[1:]
    if mode == "produce":
        url, key, tokens, itl, lease, out = argv
        asyncio.run(produce(url, key, int(tokens), float(itl), float(lease), out))
    else:
        url, key, count, out = argv
        asyncio.run(follow(url, key, int(count), out))


class CuttingProxy:
    """A loopback TCP proxy that cuts the first SSE response mid-event, after ``cut_after``
    events (half of the next event already sent, then a reset), and relays the rest.

    ``requests`` keeps the head of every request the clients sent (to see Last-Event-ID).
    ``delivered``, if set, is awaited (at most 30 s) between the writes and the reset: a
    reset makes the peer's kernel drop what its reader has not yet read, so a test that needs
    the events before the cut to have reached the client says when they have.
    """

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.delivered: Callable[[], Awaitable[object]] | None = None
        self.requests: list[bytes] = []
        self.cuts = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        watching = False  # this connection carries an SSE response that may be cut

        async def client_to_server() -> None:
            nonlocal watching
            while data := await reader.read(65536):
                if data[:4] in (b"GET ", b"POST"):
                    self.requests.append(data.split(b"\r\n\r\n")[0])
                    watching = b"/v1/streams/" in data.split(b"\r\n")[0]
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        pump = asyncio.create_task(client_to_server())
        events = 0
        try:
            while data := await up_reader.read(65536):
                if watching and self.cuts == 0:
                    start = 0
                    while events < self.cut_after:
                        end = data.find(b"\n\n", start)
                        if end < 0:
                            break
                        events += 1
                        start = end + 2
                    if events >= self.cut_after:
                        writer.write(data[: start + max(1, (len(data) - start) // 2)])
                        await writer.drain()
                        if self.delivered is not None:
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(self.delivered(), 30)
                        self.cuts += 1
                        writer.transport.abort()  # a network cut, mid-event
                        return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            pump.cancel()
            up_writer.close()
            writer.close()
            self._tasks.discard(task)
