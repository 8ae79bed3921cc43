"""The shared test harness: loopback servers, a client session on an observable connector,
and the leak check run after each test (no task left behind, no acquired connection).

Imported by the test modules as ``from helpers import ...`` (pytest puts ``tests/`` on
``sys.path`` because ``tests`` is not a package and holds ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import errno
import json
import select
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from rxgpt import ChatStream, Client, Delta, Retry, RxgptError, TextDelta
from rxgpt._providers import PROVIDERS
from rxgpt.mock import MockServer

TIMEOUT = 5.0  # a bug fails instead of hanging
#: Every environment variable a provider reads (base URLs and keys), from its own table.
PROVIDER_ENV = tuple(
    sorted({name for p in PROVIDERS.values() for name in (*p.base_url_env, *p.api_key_env)})
)
MODEL = "gpt-test"
MESSAGES = [{"role": "user", "content": "Explain backpressure in one paragraph"}]
ONE = Retry(attempts=1)
DONE = b"data: [DONE]\n\n"
CHAT_PATH = "/v1/chat/completions"
MESSAGES_PATH = "/v1/messages"

Handler = Callable[[web.Request], Awaitable[Any]]


# --------------------------------------------------------------------------- what a server saw


@dataclass
class Seen:
    """What a server saw: each request's arrival (loop clock and wall clock) and client
    port, how many requests ended and how many of those were cancelled."""

    arrivals: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    peers: list[int] = field(default_factory=list)
    ended: int = 0
    cancelled: int = 0

    def arrived(self, peer: int = -1) -> None:
        self.arrivals.append(asyncio.get_running_loop().time())
        self.wall.append(time.time())
        self.peers.append(peer)

    @property
    def requests(self) -> int:
        return len(self.arrivals)

    @property
    def connections(self) -> int:
        """Distinct TCP connections (client ports) the requests came on."""
        return len(set(self.peers))

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]

    async def wait_requests(self, count: int = 1, within: float = TIMEOUT) -> None:
        async with asyncio.timeout(within):
            while self.requests < count:
                await asyncio.sleep(0.005)

    async def wait_ended(self, count: int = 1, within: float = TIMEOUT) -> None:
        async with asyncio.timeout(within):
            while self.ended < count:
                await asyncio.sleep(0.005)


def _track(seen: Seen) -> Any:
    @web.middleware
    async def track(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.arrived(peer[1] if peer else -1)
        try:
            return await handler(request)
        except asyncio.CancelledError:
            seen.cancelled += 1
            raise
        finally:
            seen.ended += 1

    return track


def _server_side(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    name = code.co_filename if code is not None else ""
    return "/aiohttp/web_" in name or "/rxgpt/mock/" in name or task.get_name() == "raw-server"


# --------------------------------------------------------------------------- the harness


class Harness:
    """Servers, a client session on an observable connector, and the leak check.

    ``key`` and ``retry`` are the defaults of :meth:`client`; ``base`` is appended to a
    server's URL by :meth:`serve` and :meth:`raw`; ``paths`` are the routes of
    :meth:`serve`; ``limit`` (settable until the session is first used) is the
    connector's connection limit; ``settle_within`` bounds :meth:`settled`.
    """

    def __init__(
        self,
        make_server: AiohttpServer,
        *,
        key: str = "sk-test-0123456789abcdef",
        retry: Retry = ONE,
        base: str = "/v1",
        paths: tuple[str, ...] = (CHAT_PATH,),
        limit: int = 10,
        settle_within: float = 2.0,
    ) -> None:
        self._make_server = make_server
        self._baseline = set(asyncio.all_tasks())
        self._mocks: list[MockServer] = []
        self._raw: list[asyncio.Server] = []
        self._session: aiohttp.ClientSession | None = None
        self.key = key
        self.retry = retry
        self.base = base
        self.paths = paths
        self.limit = limit
        self.settle_within = settle_within

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.limit)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    @property
    def connector(self) -> aiohttp.TCPConnector:
        connector = self.session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        return connector

    @property
    def pooled(self) -> int:
        """Idle connections kept for reuse."""
        return sum(len(conns) for conns in self.connector._conns.values())

    async def mock(self, **config: Any) -> tuple[MockServer, Seen]:
        seen = Seen()
        server = MockServer(**config)
        server.app.middlewares.append(_track(seen))
        await server.start()
        self._mocks.append(server)
        return server, seen

    async def start(self, app: web.Application) -> TestServer:
        """Serve ``app`` on 127.0.0.1 (closed by the aiohttp_server fixture)."""
        server: TestServer = await self._make_server(app)
        return server

    async def serve(self, handler: Handler) -> tuple[str, Seen]:
        """Serve ``handler`` at ``paths``; returns the base URL (server URL + ``base``)."""
        seen = Seen()
        app = web.Application(middlewares=[_track(seen)])
        for path in self.paths:
            app.router.add_post(path, handler)
        server = await self.start(app)
        return str(server.make_url(self.base)), seen

    async def raw_server(
        self, handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]
    ) -> int:
        """A raw TCP server (its connection tasks are named "raw-server"); returns its port."""

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            asyncio.get_running_loop().create_task(handle(reader, writer), name="raw-server")

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self._raw.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def raw(self, answer: bytes | list[bytes], *, close: bool = True) -> tuple[str, Seen]:
        """A raw TCP server that reads the request and writes ``answer`` as is.

        A list is written piece by piece, a moment apart (separate network reads).
        Returns the base URL (server URL + ``base``).
        """
        pieces = answer if isinstance(answer, list) else [answer]
        seen = Seen()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            seen.arrived(peer[1] if peer else -1)
            try:
                await reader.readuntil(b"\r\n\r\n")
                for n, piece in enumerate(pieces):
                    if n:
                        await asyncio.sleep(0.05)
                    writer.write(piece)
                    await writer.drain()
                if not close:
                    await reader.read()  # until the client goes away
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                seen.ended += 1

        port = await self.raw_server(handle)
        return f"http://127.0.0.1:{port}{self.base}", seen

    def client(self, base_url: str, **kwargs: Any) -> Client:
        kwargs.setdefault("api_key", self.key)
        kwargs.setdefault("retry", self.retry)
        return Client(base_url, session=self.session, **kwargs)

    def leaks(self) -> tuple[set[asyncio.Task[Any]], int]:
        current = asyncio.current_task()
        tasks = {
            task
            for task in asyncio.all_tasks()
            if task is not current
            and task not in self._baseline
            and not task.done()
            and not _server_side(task)
        }
        acquired = len(self.connector._acquired) if self._session is not None else 0
        return tasks, acquired

    async def settled(self, within: float | None = None) -> None:
        """No client task left and no acquired connection, within ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.settle_within if within is None else within)
        while True:
            tasks, acquired = self.leaks()
            if not tasks and not acquired:
                return
            if loop.time() >= deadline:
                raise AssertionError(f"leaked tasks {tasks}; acquired connections: {acquired}")
            await asyncio.sleep(0.005)

    async def finish(self) -> None:
        try:
            await self.settled()
        finally:
            if self._session is not None:
                await self._session.close()
            for server in self._mocks:
                await server.close()
            for raw in self._raw:
                raw.close()
                await raw.wait_closed()


def harness_fixture(cls: type[Harness] = Harness, **config: Any) -> Any:
    """The ``h`` fixture of a test module: a ``cls(aiohttp_server, **config)`` whose
    leak check runs after the test."""

    @pytest.fixture(name="h")
    async def fixture(aiohttp_server: AiohttpServer) -> AsyncIterator[Harness]:
        harness = cls(aiohttp_server, **config)
        yield harness
        await harness.finish()

    return fixture


# --------------------------------------------------------------------------- streams and servers


def chat(client: Client, **params: Any) -> ChatStream:
    return client.chat(model=MODEL, messages=MESSAGES, **params)


def text_of(deltas: list[Delta]) -> str:
    return "".join(d.text for d in deltas if isinstance(d, TextDelta) and d.choice == 0)


class Recorder:
    """A subscriber keeping its deltas and terminal; ``wait_texts`` waits for content."""

    def __init__(self, stream: ChatStream) -> None:
        self.items: list[Delta] = []
        self.errors: list[Exception] = []
        self.completed = 0
        stream.subscribe(self.items.append, self.errors.append, self._done)

    def _done(self) -> None:
        self.completed += 1

    def count(self, kind: type) -> int:
        return sum(isinstance(d, kind) for d in self.items)

    async def wait_texts(self, count: int) -> None:
        async with asyncio.timeout(TIMEOUT):
            while sum(isinstance(d, TextDelta) and bool(d.text) for d in self.items) < count:
                await asyncio.sleep(0.005)


async def failure(stream: ChatStream) -> RxgptError:
    """The stream's error; anything but an RxgptError (or a hang) fails the test."""
    try:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    except RxgptError as error:
        return error
    raise AssertionError("the stream did not fail")


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


ROLE = chunk({"role": "assistant", "content": ""})
FINISH = chunk({}, "stop")


def full_stream(words: list[str]) -> bytes:
    """A complete Chat Completions stream of ``words``: role, contents, stop, [DONE]."""
    return ROLE + b"".join(chunk({"content": w}) for w in words) + FINISH + DONE


async def prepared(request: web.Request, content_type: str = "text/event-stream") -> Any:
    """Read the request, then answer 200 with headers only (the body is up to the caller)."""
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    return response


async def write_sse(request: web.Request, *parts: bytes) -> web.StreamResponse:
    response: web.StreamResponse = await prepared(request)
    for part in parts:
        await response.write(part)
    await response.write_eof()
    return response


async def never_answers(request: web.Request) -> web.StreamResponse:
    """Accepts the request and never sends the response headers."""
    await request.read()
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def headers_only(request: web.Request) -> web.StreamResponse:
    """Answers 200 with headers, then never sends a body byte."""
    await prepared(request)
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- listen queue


def handshakes_completed(port: int, count: int, wait: float = 0.5) -> int:
    """Start ``count`` TCP connects to 127.0.0.1:``port`` at once and return how many the
    kernel completed within ``wait`` seconds, without letting an event loop run (call it
    while the server cannot accept: its loop blocked by this call, or its process stopped).

    Past the server's listen queue the kernel drops the SYNs; a client sends its SYN again
    only after 1 s, so ``wait`` < 1 s counts exactly the connections the queue took.
    """
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        poller = select.poll()
        for sock in socks:
            sock.setblocking(False)
            assert sock.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
            poller.register(sock, select.POLLOUT)
        pending = {sock.fileno(): sock for sock in socks}
        done = 0
        deadline = time.monotonic() + wait
        while pending and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                sock = pending.pop(fd)
                poller.unregister(fd)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    done += 1
        return done
    finally:
        for sock in socks:
            sock.close()


def somaxconn() -> int:
    """The kernel's cap on a listen queue (``net.core.somaxconn``; 4096 if unreadable)."""
    try:
        with open("/proc/sys/net/core/somaxconn") as file:
            return int(file.read())
    except (OSError, ValueError):
        return 4096
