"""A lean load client: many streams read with the fewest wake-ups, for the server's lateness.

The decode-step lateness case measures the *server's* timing (its own timeline), so its
client only has to hold the connections and take the bytes. On a machine of 2 cores the
bare aiohttp byte loop cannot do that cheaply at 2,048 streams: every event arrives in a
read of its own and wakes it (about 9 µs of CPU each, 0.7-0.9 of a core at 100k events/s),
so the client takes the core a server worker needs and the steps run late for want of
it, not for the server's scheduling. This client is what a load generator on another
machine would cost: one thread, one ``epoll``, plain non-blocking sockets, and
``SO_RCVLOWAT`` on each, so the kernel wakes it only once a socket holds ``lowat`` bytes
(several events) or the server closed it (``Connection: close``: the end of each body
always wakes it). About 0.2 of a core for the same run.

It checks what it gets: a stream counts as failed unless its answer is ``200`` and its
chunked body ends with the last chunk before the server closes. Each stream's reads are
kept and parsed once, at its end (no work per read besides the ``recv``): the lateness
runs' streams are short (100 tokens, about 25 kB each).
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Run", "lean_run"]

#: A socket wakes the client once it holds this many bytes (or at its end): about ten
#: events of an OpenAI chat chunk.
DEFAULT_LOWAT = 2048


@dataclass(slots=True)
class Run:
    """One load client's run (this one's, or the bare aiohttp loop's in
    :mod:`benchmarks.bench_server`): events (``\\n\\n``) and body bytes received, wall
    seconds, streams that failed."""

    events: int
    size: int
    seconds: float
    failed: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class _Stream:
    """One connection: sent yet, and the reads that came (parsed once, at its end)."""

    __slots__ = ("ended", "read", "reads", "sent", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent = False
        self.reads: list[bytes] = []
        self.read = 0  # bytes so far (bounded: see lean_run's max_bytes)
        self.ended = False  # the server closed it after its answer (not an error, no limit)

    def result(self) -> tuple[int, int] | None:
        """The answer's events (``\\n\\n``) and body bytes; None unless it is a 200 with a
        whole chunked body (its last chunk came)."""
        raw = b"".join(self.reads)
        head_end = raw.find(b"\r\n\r\n")
        if not raw.startswith(b"HTTP/1.1 200") or head_end < 0:
            return None
        if b"transfer-encoding: chunked" not in raw[:head_end].lower():
            return None
        pieces = []
        at = head_end + 4
        while True:  # the chunked framing: "<hex size>\r\n<data>\r\n", then "0\r\n\r\n"
            line_end = raw.find(b"\r\n", at)
            if line_end < 0:
                return None
            try:
                size = int(raw[at:line_end].split(b";", 1)[0], 16)
            except ValueError:
                return None
            if size < 0:  # (int() takes a sign: "-6" would walk back to its own line for ever)
                return None
            at = line_end + 2
            if size == 0:
                break
            if raw[at + size : at + size + 2] != b"\r\n":
                return None
            pieces.append(raw[at : at + size])
            at += size + 2
        body = b"".join(pieces)
        return body.count(b"\n\n"), len(body)


def lean_run(
    host: str,
    port: int,
    streams: int,
    body: dict[str, Any],
    *,
    path: str = "/v1/chat/completions",
    lowat: int = DEFAULT_LOWAT,
    timeout: float = 600.0,
    max_bytes: int = 1024 * 1024,
) -> Run:
    """POST ``body`` on ``streams`` connections at once and read every answer to its end.

    Returns within ``timeout`` seconds: a stream not over by then counts as failed, as
    does one that sends more than ``max_bytes``. The answers are parsed once every stream
    is over, so that work never competes with the server for the CPU while it streams.
    """
    payload = json.dumps(body).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nAccept: text/event-stream\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + payload
    selector = selectors.EpollSelector()
    open_streams: dict[int, _Stream] = {}
    over: list[_Stream] = []
    failed = 0
    start = time.perf_counter()
    deadline = time.monotonic() + timeout

    def close(stream: _Stream, ended: bool) -> None:
        selector.unregister(stream.sock)
        del open_streams[stream.sock.fileno()]
        stream.sock.close()
        stream.ended = ended
        over.append(stream)

    try:
        for _ in range(streams):
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError:  # (out of files: the process's limit is below `streams`)
                failed += 1
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            try:
                sock.connect((host, port))
            except BlockingIOError:
                pass  # (in progress: writable once connected)
            except OSError:
                sock.close()
                failed += 1
                continue
            open_streams[sock.fileno()] = _Stream(sock)
            selector.register(sock, selectors.EVENT_WRITE)
        while open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(min(left, 1.0)):
                stream = open_streams[key.fd]
                if not stream.sent:
                    if stream.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        close(stream, False)
                        continue
                    stream.sock.sendall(request)  # (small: the socket's buffer is empty)
                    stream.sent = True
                    selector.modify(stream.sock, selectors.EVENT_READ)
                    continue
                while True:
                    try:
                        data = stream.sock.recv(1 << 20)
                    except BlockingIOError:
                        break
                    except OSError:
                        close(stream, False)
                        break
                    if not data:  # the server closed: the answer is over
                        close(stream, True)
                        break
                    stream.reads.append(data)
                    stream.read += len(data)
                    if stream.read > max_bytes:
                        close(stream, False)
                        break
    finally:
        for stream in list(open_streams.values()):
            close(stream, False)
        selector.close()
    seconds = time.perf_counter() - start
    events = size = 0
    for stream in over:
        got = stream.result() if stream.ended else None
        if got is None:
            failed += 1
        else:
            events += got[0]
            size += got[1]
    return Run(events, size, seconds, failed)
