"""How rxgpt's own HTTP servers listen: the mock server and the relay's browser endpoint.

Two things aiohttp's ``TCPSite`` gets wrong for a server that thousands of clients reach
at once: the listen queue (:data:`LISTEN_BACKLOG`), and what asyncio does when the process
is out of file descriptors (:class:`_ListeningSocket`).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from ._cli_types import say
from ._ulimit import open_files_hint

__all__ = ["LISTEN_BACKLOG", "say_accept_failures", "start_site"]

#: The listen queue: connections the kernel completes before the server accepts them.
#: aiohttp's default, 128, overflows when thousands of clients connect at once while the
#: event loop is busy (a benchmark's start against a loaded server, browsers reconnecting
#: after a restart): the kernel drops the SYNs past it, and each such client connects only
#: when it sends its SYN again, 1 s later (then 3 s, 7 s...), time a benchmark would count
#: as TTFT. vLLM's server (uvicorn) listens with 2048; the kernel caps the figure at
#: ``net.core.somaxconn`` (4096 on Linux since 5.4).
LISTEN_BACKLOG: Final = 4096

#: accept()'s failures for want of a file descriptor (asyncio's list).
_OUT_OF_FILES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _ListeningSocket(socket.socket):
    """A listening socket whose ``accept()`` ends asyncio's accept loop after a failure
    for want of files.

    CPython gh-151615 (3.11 here): out of file descriptors, asyncio's accept loop logs the
    failure, stops watching the socket and schedules a retry in 1 s, then goes on trying
    ``backlog`` more times in the same turn, each try logging and scheduling one more
    retry. The retries pile up by thousands (each re-arms the socket, whose next failure
    adds thousands more), the loop crawls (measured: SIGTERM took 9.7 s to stop the server,
    0.2 s now) and, once the socket is closed, each one fails with a traceback. Raising
    ``BlockingIOError`` (asyncio's "nothing more to accept") on the try after a failure
    leaves one retry per failure, as the fix upstream does.
    """

    _failed = False

    def accept(self) -> tuple[socket.socket, Any]:
        if self._failed:
            self._failed = False
            raise BlockingIOError(errno.EAGAIN, "the accept loop stops after a failure")
        try:
            return super().accept()
        except OSError as error:
            self._failed = error.errno in _OUT_OF_FILES
            raise


async def start_site(
    runner: web.AppRunner, host: str, port: int, *, reuse_port: bool = False
) -> None:
    """Listen on every address of ``host`` at ``port`` (port 0: one free port for all of
    them), with :data:`LISTEN_BACKLOG`, for ``runner`` (set up)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = _ListeningSocket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:  # (as asyncio: an IPv6 socket takes IPv6 alone)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # (the port the first address was given)
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
        for listening in sockets:
            await web.SockSite(runner, listening, backlog=LISTEN_BACKLOG).start()
    except BaseException:
        for listening in sockets:
            listening.close()
        raise


_ACCEPT_FAILED = "socket.accept() out of system resource"  # (asyncio's own words)
_ACCEPT_SAID_EVERY = 10.0  # seconds between two lines about it


def say_accept_failures(loop: asyncio.AbstractEventLoop, prog: str) -> Callable[[], None]:
    """Make ``loop`` say a failed ``accept()`` (out of file descriptors) in one line on
    stderr, at most every 10 s, instead of asyncio's traceback; other errors go where they
    went. Returns the function that undoes it.

    For a process that is rxgpt's server (``rxgpt serve``, the bench's embedded server, the
    relay command), not for :class:`~rxgpt.mock.MockServer` in a host's loop.
    """
    previous = loop.get_exception_handler()
    said = [float("-inf")]

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_FAILED:
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = loop.time()
        if now - said[0] < _ACCEPT_SAID_EVERY:
            return
        said[0] = now
        error = context.get("exception")
        code = error.errno if isinstance(error, OSError) else None
        reason = os.strerror(code).lower() if code else "out of system resources"
        message = f"cannot accept connections: {reason}{open_files_hint(code)}"
        say(f"{prog}: {message}; new connections wait in the listen queue")

    loop.set_exception_handler(handle)
    return lambda: loop.set_exception_handler(previous)
