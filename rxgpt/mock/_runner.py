"""Running the mock server: in the caller's event loop, or blocking for ``rxgpt serve``.

:class:`MockServer` serves :func:`~rxgpt.mock._app.create_app` in the running event loop (tests,
benchmarks); :func:`run_server` blocks serving it until interrupted (``rxgpt serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.process
import os
import signal
from types import TracebackType
from typing import Any

from aiohttp import web

from .._children import start as start_child
from .._cli_types import http_url
from .._collector import for_a_server
from .._serving import say_accept_failures, start_site
from ._app import create_app
from ._dialect import ENGINE_KEY, MockConfig
from ._engine import Engine
from ._timeline import RequestRecord

__all__ = ["MockServer", "run_server"]


class MockServer:
    """The mock server on a real loopback socket, as an async context manager.

    Example::

        async with MockServer(tokens=16, itl_ms=5) as server:
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test")

    Args:
        config: the server settings (default :class:`MockConfig()`).
        host: the address to listen on.
        port: the port; 0 (the default) picks a free ephemeral port.
        shutdown_timeout: seconds that closing waits for streams still in flight.
        reuse_port: bind with ``SO_REUSEPORT`` (several processes serving one port).
        **overrides: :class:`MockConfig` fields replacing those of ``config``.
    """

    def __init__(
        self,
        config: MockConfig | None = None,
        /,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        shutdown_timeout: float = 1.0,
        reuse_port: bool = False,
        **overrides: Any,
    ) -> None:
        base = config or MockConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.app = create_app(self.config)
        self.host = host
        self.port = port
        self._shutdown_timeout = shutdown_timeout
        self._reuse_port = reuse_port
        self._runner: web.AppRunner | None = None

    @property
    def engine(self) -> Engine:
        """The decode engine (its ``running``, ``waiting``, ``metrics``, ``lateness()``)."""
        return self.app[ENGINE_KEY]

    @property
    def timeline(self) -> list[RequestRecord]:
        """The ground truth of every finished request (needs ``timeline=True``)."""
        recorder = self.engine.recorder
        if recorder is None:
            raise RuntimeError("the timeline is off: start the server with timeline=True")
        return recorder.requests

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (the real port once started; an IPv6 address in brackets)."""
        return http_url(self.host, self.port)

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``: the ``base_url`` for OpenAI clients."""
        return self.url + "/v1"

    async def start(self) -> None:
        """Bind the socket and start serving."""
        if self._runner is not None:
            raise RuntimeError("MockServer is already running")
        runner = web.AppRunner(
            self.app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        try:
            await start_site(runner, self.host, self.port, reuse_port=self._reuse_port)
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def close(self) -> None:
        """Stop serving and release the socket (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def serve_forever(
    host: str,
    port: int,
    config: MockConfig | None,
    *,
    workers: int = 1,
    announce: bool = True,
    reuse_port: bool = False,
    freeze_gc: bool = False,
    parent: int | None = None,
) -> None:
    """Serve until cancelled or sent SIGTERM, after printing the URL on one line.

    ``workers > 1`` starts ``workers - 1`` more processes serving the same port
    (``SO_REUSEPORT``: the kernel spreads connections over them); each has its own engine.
    ``freeze_gc`` (for a process that is only the server: ``rxgpt serve`` and its workers)
    moves what start-up made (modules, the app) out of the collector's reach with
    ``gc.freeze()``, as vLLM does, so a full collection walks only the requests' objects
    (measured: 28-35 ms pauses of the engine at 512 streams, without it), and makes full
    collections ten times rarer (20-30 ms pauses at 1,024 streams, without it; see
    :func:`rxgpt._collector.for_a_server`). ``parent`` (a worker's): the process that
    started it; the worker stops when that one is gone, even killed without a word.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals on Windows
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    unsay = say_accept_failures(loop, "rxgpt serve")
    orphaned = None if parent is None else loop.create_task(_stop_when_orphaned(parent, stop))
    children: list[multiprocessing.process.BaseProcess] = []
    async with MockServer(
        config, host=host, port=port, reuse_port=reuse_port or workers > 1
    ) as server:
        context = multiprocessing.get_context("spawn")
        try:
            for _ in range(workers - 1):
                child = context.Process(
                    target=_worker,
                    args=(host, server.port, server.config, freeze_gc, os.getpid()),
                    daemon=True,
                )
                # (Ctrl+C reaches this process only; it stops the children recorded)
                start_child(child, children.append)
            if freeze_gc:
                for_a_server()
            if announce:
                extra = f", {workers} workers" if workers > 1 else ""
                print(
                    f"rxgpt mock server listening on {server.url} "
                    f"(OpenAI base URL {server.base_url}{extra}); press Ctrl+C to stop",
                    flush=True,
                )
            await stop.wait()
        finally:
            if orphaned is not None:
                orphaned.cancel()
            for process in children:
                process.terminate()
            for process in children:
                process.join(5)
            unsay()


async def _stop_when_orphaned(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``parent`` is no longer this process's parent (it died)."""
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    stop.set()


def _worker(host: str, port: int, config: MockConfig, freeze_gc: bool, parent: int) -> None:
    """One more worker process (``--workers``): the same server on the same port."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_forever(
                host, port, config, announce=False, reuse_port=True, freeze_gc=freeze_gc,
                parent=parent,
            )
        )  # fmt: skip


def run_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    config: MockConfig | None = None,
    *,
    workers: int = 1,
    freeze_gc: bool = False,
) -> None:
    """Serve the mock until interrupted (Ctrl+C or SIGTERM); blocking, for ``rxgpt serve``.

    ``freeze_gc``: see :func:`serve_forever` (``rxgpt serve`` sets it: the process is only
    the server; a program of yours calling this keeps its collector as it is by default).
    """
    with contextlib.suppress(KeyboardInterrupt):
        serve(host, port, config, workers=workers, freeze_gc=freeze_gc)


def serve(
    host: str, port: int, config: MockConfig | None, *, workers: int = 1, freeze_gc: bool = False
) -> None:
    """:func:`run_server`, with Ctrl+C raised as :class:`KeyboardInterrupt` once the server
    and its workers are stopped (``rxgpt serve`` exits 130 then)."""
    asyncio.run(serve_forever(host, port, config, workers=workers, freeze_gc=freeze_gc))
