"""The embedded server for offline runs, in a process of its own.

``rxgpt bench`` with no base URL and no key benchmarks :class:`rxgpt.mock.MockServer`. It
runs in a separate process so that the server's work does not share the client's event
loop (which would make the client measure its own contention).

Child processes (this server, ``--workers``) are started by :func:`start_child`
(:func:`rxgpt._children.start`, named here for the bench modules that import it): Ctrl+C
reaches the parent alone, which stops them, and no child prints a traceback because it was
interrupted in its start-up or its run.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from multiprocessing.connection import Connection

from .._children import start as start_child
from .._errors import TransportError
from .._serving import say_accept_failures

__all__ = ["EmbeddedServer", "start_child"]

#: Seconds the server may take to start.
START_TIMEOUT = 30.0


def _serve(conn: Connection, tokens: int, ttft_ms: float, itl_ms: float) -> None:
    from ..mock import MockConfig, MockServer

    async def main() -> None:
        config = MockConfig(tokens=tokens, ttft_ms=ttft_ms, itl_ms=itl_ms)
        loop = asyncio.get_running_loop()
        say_accept_failures(loop, "rxgpt bench: the embedded server")  # (its own process)
        async with MockServer(config, shutdown_timeout=0.2) as server:
            conn.send(server.url)
            stop = asyncio.Event()
            loop.add_reader(conn.fileno(), stop.set)  # the parent wrote, or went away
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


class EmbeddedServer:
    """The mock server in a child process: :meth:`start` it, :meth:`wait` for its origin
    (``http://127.0.0.1:PORT``), then :meth:`stop` (or :meth:`kill`, on an interruption).

    (Made before it starts: a Ctrl+C raised as the start ends finds it held by its caller,
    which kills it.)
    """

    def __init__(self, tokens: int, ttft_ms: float, itl_ms: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve,
            args=(child, tokens, ttft_ms, itl_ms),
            name="rxgpt-bench-server",
            daemon=True,
        )
        self._child = child

    def start(self) -> None:
        """Start the server process (:func:`start_child`: Ctrl+C reaches only this one)."""
        try:
            start_child(self._process)
        finally:
            self._child.close()

    @property
    def pid(self) -> int | None:
        """The server process's id."""
        return self._process.pid

    def wait(self, timeout: float = START_TIMEOUT) -> str:
        """The server's origin once it listens (blocking; TransportError if it does not)."""
        try:
            if not self._conn.poll(timeout):
                raise TransportError(f"the embedded server did not start within {timeout:g} s")
            return str(self._conn.recv())
        except (EOFError, OSError):
            raise TransportError("the embedded server exited before it started") from None

    def stop(self) -> None:
        """Ask the server to shut down, and wait (5 s) before it is killed (blocking)."""
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(5)
        self.kill()

    def kill(self) -> None:
        """End the server process now (SIGTERM, then SIGKILL after 5 s)."""
        self._child.close()
        if self._process.pid is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
        self._conn.close()
