"""The embedded server for offline runs, in a process of its own.

``rxgpt bench`` with no base URL and no key benchmarks :class:`rxgpt.mock.MockServer`. It
runs in a separate process so that the server's work does not share the client's event
loop (which would make the client measure its own contention).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import Iterator
from multiprocessing.connection import Connection

from .._errors import TransportError

__all__ = ["embedded_server"]


def _serve(conn: Connection, tokens: int, ttft_ms: float, itl_ms: float) -> None:
    from ..mock import MockConfig, MockServer

    async def main() -> None:
        config = MockConfig(tokens=tokens, ttft_ms=ttft_ms, itl_ms=itl_ms)
        async with MockServer(config, shutdown_timeout=0.2) as server:
            conn.send(server.url)
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            loop.add_reader(conn.fileno(), stop.set)  # the parent wrote, or went away
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@contextlib.contextmanager
def embedded_server(tokens: int, ttft_ms: float, itl_ms: float) -> Iterator[str]:
    """Run the mock server in a child process; yield its origin (``http://127.0.0.1:PORT``)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(
        target=_serve, args=(child, tokens, ttft_ms, itl_ms), name="rxgpt-bench-server"
    )
    process.daemon = True
    process.start()
    child.close()
    try:
        if not parent.poll(30):
            raise TransportError("the embedded server did not start within 30 s")
        try:
            url = parent.recv()
        except EOFError:
            raise TransportError("the embedded server exited before it started") from None
        yield str(url)
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        parent.close()
        process.join(5)
        if process.is_alive():
            process.terminate()
            process.join(5)
