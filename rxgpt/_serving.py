"""How rxgpt's own HTTP servers listen: the mock server and the relay's browser endpoint."""

from __future__ import annotations

from typing import Final

from aiohttp import web

__all__ = ["LISTEN_BACKLOG", "start_site"]

#: The listen queue: connections the kernel completes before the server accepts them.
#: aiohttp's default, 128, overflows when thousands of clients connect at once while the
#: event loop is busy (a benchmark's start against a loaded server, browsers reconnecting
#: after a restart): the kernel drops the SYNs past it, and each such client connects only
#: when it sends its SYN again, 1 s later (then 3 s, 7 s...), time a benchmark would count
#: as TTFT. vLLM's server (uvicorn) listens with 2048; the kernel caps the figure at
#: ``net.core.somaxconn`` (4096 on Linux since 5.4).
LISTEN_BACKLOG: Final = 4096


async def start_site(
    runner: web.AppRunner, host: str, port: int, *, reuse_port: bool = False
) -> None:
    """Listen on ``host:port`` with :data:`LISTEN_BACKLOG` (``runner`` set up)."""
    site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG, reuse_port=reuse_port or None)
    await site.start()
