"""Running the mock server: in the caller's event loop, or blocking for ``rxgpt serve``.

:class:`MockServer` serves :func:`~rxgpt.mock._app.create_app` in the running event loop (tests,
benchmarks); :func:`run_server` blocks serving it until interrupted (``rxgpt serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from types import TracebackType
from typing import Any

from aiohttp import web

from ._app import create_app
from ._dialect import MockConfig

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
        **overrides: Any,
    ) -> None:
        base = config or MockConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.app = create_app(self.config)
        self.host = host
        self.port = port
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (the real port once started)."""
        return f"http://{self.host}:{self.port}"

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
            await web.TCPSite(runner, self.host, self.port).start()
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


async def serve_forever(host: str, port: int, config: MockConfig | None) -> None:
    """Serve until cancelled or sent SIGTERM, after printing the URL on one line."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals on Windows
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with MockServer(config, host=host, port=port) as server:
        print(
            f"rxgpt mock server listening on {server.url} "
            f"(OpenAI base URL {server.base_url}); press Ctrl+C to stop",
            flush=True,
        )
        await stop.wait()


def run_server(host: str = "127.0.0.1", port: int = 8000, config: MockConfig | None = None) -> None:
    """Serve the mock until interrupted (Ctrl+C or SIGTERM); blocking, for ``rxgpt serve``."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(host, port, config))
