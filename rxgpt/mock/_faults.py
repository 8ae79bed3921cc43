"""Fault injection for the mock server: options, error answers, the body writer, interrupts.

A request can ask for a fault with a ``"mock": {...}`` object in its JSON body; the server's
``MockConfig.faults`` gives defaults that the request overrides key by key. The options, which
apply to every streaming endpoint, each in its own wire format (see :class:`Framing`):

==================  ======================================================================
``status``          answer with this HTTP status and the protocol's error body
``retry_after``     seconds, sent as a ``Retry-After`` header with ``status``
``fail_first``      only the first N requests carrying ``key`` fail (``status``, default 500)
``key``             the counter that ``fail_first`` uses (default ``""``)
``drop_after``      abort the connection after N events (the chunked body never ends)
``stall_after``     stop sending after N events, until the client goes away
``keepalive_ms``    while stalled, send a keep-alive every M ms (SSE ``: keep-alive``,
                    Anthropic ``event: ping``; NDJSON has none and stays silent)
``garbage_at``      event N (0-based) is ``data: this is not json`` (NDJSON: that line;
                    Anthropic: under ``event: content_block_delta``, which its SDK reads)
``error_at``        event N is the protocol's in-band error, and the stream ends
``no_done``         end without the protocol's end signal (``data: [DONE]``,
                    ``message_stop``, ``response.completed``, the ``done:true`` line)
``line_endings``    ``"lf"`` (default), ``"crlf"`` or ``"cr"`` in the framing
``chunk_bytes``     write the body in writes of exactly N bytes (events split anywhere)
``gzip``            ``Content-Encoding: gzip``, flushed after each write so it still streams
``endless_line``    after the first event, an endless ``data: {"x":"aaaa…`` line
==================  ======================================================================

The engine (:mod:`rxgpt.mock._engine`) fires the event-indexed faults as it writes; the
interrupts that outlive the engine (a stall, an endless line, a drop) are
:func:`run_interrupt`, run by the request's handler. Events are counted from 0 over
everything the stream would send (for chat: role, content,
finish and usage chunks and ``[DONE]``); keep-alives do not count. When ``drop_after`` or
``stall_after`` is past the last event, the fault happens after the last event instead.
Unknown keys and ill-typed values are rejected with a 400, so a typo in a test shows.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiohttp import web

from ._text import dumps
from ._timing import finite_number

__all__ = [
    "LINE_ENDINGS",
    "BodyWriter",
    "FaultOptions",
    "Framing",
    "error_body",
    "json_response",
    "run_interrupt",
    "status_error",
]

LineEnding = Literal["lf", "crlf", "cr"]

LINE_ENDINGS: Mapping[str, bytes] = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}
"""The SSE line terminator for each ``line_endings`` value."""

_INT_OPTIONS = ("fail_first", "drop_after", "stall_after", "garbage_at", "error_at")
_BOOL_OPTIONS = ("no_done", "gzip", "endless_line")
_KNOWN = frozenset(
    (
        *_INT_OPTIONS,
        *_BOOL_OPTIONS,
        "status",
        "retry_after",
        "key",
        "keepalive_ms",
        "line_endings",
        "chunk_bytes",
    )
)

# (type, code, message) of the error body for an injected status (others: see status_error).
_STATUS_ERRORS: Mapping[int, tuple[str, str | None, str]] = {
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    429: (
        "rate_limit_error",
        "rate_limit_exceeded",
        "Rate limit reached for requests (rxgpt mock). Please try again later.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(condition: bool, name: str, expected: str) -> None:
    if not condition:
        raise ValueError(f"mock option {name!r} must be {expected}")


@dataclass(frozen=True, slots=True)
class FaultOptions:
    """The faults asked for by one request (see the module docstring for each option)."""

    status: int | None = None
    retry_after: float | None = None
    fail_first: int | None = None
    key: str = ""
    drop_after: int | None = None
    stall_after: int | None = None
    keepalive_ms: float | None = None
    garbage_at: int | None = None
    error_at: int | None = None
    no_done: bool = False
    line_endings: LineEnding | None = None
    chunk_bytes: int | None = None
    gzip: bool = False
    endless_line: bool = False

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> FaultOptions:
        """Validate a ``mock`` object.

        Raises:
            ValueError: an unknown key or a value of the wrong type or range.
        """
        unknown = sorted(set(options) - _KNOWN)
        if unknown:
            raise ValueError(f"unknown mock option(s): {', '.join(unknown)}")
        for name in _INT_OPTIONS:
            value = options.get(name)
            _check(value is None or (_is_int(value) and value >= 0), name, "an int >= 0")
        for name in _BOOL_OPTIONS:
            _check(isinstance(options.get(name, False), bool), name, "a boolean")
        _check_other(options)
        return cls(**options)

    @property
    def eol(self) -> bytes:
        """The line terminator to frame events with."""
        return LINE_ENDINGS[self.line_endings or "lf"]

    def fails(self, counters: dict[str, int]) -> bool:
        """Whether this request gets an error status (counts ``fail_first`` requests)."""
        if self.fail_first is None:
            return self.status is not None
        seen = counters[self.key] = counters.get(self.key, 0) + 1
        return seen <= self.fail_first


def _check_other(options: Mapping[str, Any]) -> None:
    status = options.get("status")
    _check(status is None or (_is_int(status) and 400 <= status <= 599), "status", "400..599")
    retry = options.get("retry_after")
    _check(retry is None or (finite_number(retry) and retry >= 0), "retry_after", "a number >= 0")
    _check(isinstance(options.get("key", ""), str), "key", "a string")
    keepalive = options.get("keepalive_ms")
    _check(
        keepalive is None or (finite_number(keepalive) and keepalive > 0),
        "keepalive_ms",
        "a number > 0",
    )
    ending = options.get("line_endings")
    _check(
        ending is None or (isinstance(ending, str) and ending in LINE_ENDINGS),
        "line_endings",
        "lf, crlf or cr",
    )
    size = options.get("chunk_bytes")
    _check(size is None or (_is_int(size) and size >= 1), "chunk_bytes", "an int >= 1")


def error_body(
    message: str, type_: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An OpenAI error envelope: ``{"error": {message, type, param, code}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> web.Response:
    """A compact JSON answer with OpenAI's content type (``application/json; charset=utf-8``)."""
    return web.Response(
        status=status,
        body=dumps(body),
        headers={**(headers or {}), "Content-Type": "application/json; charset=utf-8"},
    )


def status_error(status: int) -> web.Response:
    """OpenAI's error answer for HTTP ``status`` (an injected ``status`` fault)."""
    # (OpenAI's types: a client error is an invalid request, a server's a server error)
    default = "invalid_request_error" if status < 500 else "server_error"
    type_, code, message = _STATUS_ERRORS.get(
        status, (default, None, f"Injected error: HTTP {status} (rxgpt mock).")
    )
    return json_response(status, error_body(message, type_, code=code))


class BodyWriter:
    """Writes a streamed body, optionally gzip-compressed and cut in fixed-size writes.

    Without ``gzip`` and ``chunk_bytes``, :attr:`write` is the response's own ``write``, so
    the hot path pays nothing. With ``chunk_bytes``, bytes that do not fill a whole write
    wait for the next call or for :meth:`flush`.

    Given the connection's ``transport``, :meth:`send` writes without awaiting: it frames
    each piece as one HTTP/1.1 chunk itself (the response must use chunked encoding and be
    prepared), so one engine step can write to thousands of streams without a coroutine each.
    Both paths put the same bytes on the wire.
    """

    def __init__(
        self,
        response: web.StreamResponse,
        faults: FaultOptions,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self._response = response
        self._transport = transport
        self._size = faults.chunk_bytes
        self._pending = bytearray()
        self._zlib = zlib.compressobj(wbits=31) if faults.gzip else None
        self._plain = not (faults.gzip or self._size)
        self.write: Callable[[bytes], Awaitable[None]] = (
            self._transformed_write if faults.gzip or self._size else response.write
        )

    def _pieces(self, data: bytes, *, last: bool = False) -> list[bytes]:
        """The HTTP chunks that ``data`` becomes (compressed, cut); ``last`` ends gzip."""
        if self._zlib is not None:
            data = self._zlib.compress(data) + self._zlib.flush(
                zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
            )
            if last:
                self._zlib = None
        size = self._size
        if size is None:
            return [data] if data else []
        pending = self._pending
        pending += data
        pieces = []
        while len(pending) >= size:
            pieces.append(bytes(pending[:size]))
            del pending[:size]
        if last and pending:
            pieces.append(bytes(pending))
            pending.clear()
        return pieces

    def send(self, data: bytes) -> bool:
        """Write ``data`` now, without awaiting; False when the client has gone away."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        if self._plain:
            transport.write(b"%x\r\n%s\r\n" % (len(data), data))
            return True
        for piece in self._pieces(data):
            transport.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        return True

    def send_finish(self) -> bool:
        """:meth:`finish` without awaiting (through :meth:`send`'s framing)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        if not self._plain:
            for piece in self._pieces(b"", last=True):
                transport.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        return True

    async def _transformed_write(self, data: bytes) -> None:
        for piece in self._pieces(data):
            await self._response.write(piece)

    async def flush(self) -> None:
        """Write what is held back by ``chunk_bytes`` (a last, shorter write)."""
        if self._pending:
            piece = bytes(self._pending)
            self._pending.clear()
            await self._response.write(piece)

    async def finish(self) -> None:
        """End the gzip stream and flush everything (call before ending the body)."""
        for piece in self._pieces(b"", last=True):
            await self._response.write(piece)


# --------------------------------------------------------------------------- stream pump

_STALL_POLL_S = 0.25  # how often a stall without keep-alives checks that the client is there
_ENDLESS_BLOCK = b"a" * 16384


class Framing(Protocol):
    """What the pump needs from a wire protocol to inject faults (bytes framed with its eol)."""

    def garbage(self, index: int) -> bytes:
        """The event that replaces event ``index`` (``garbage_at``): not valid JSON."""

    @property
    def keepalive(self) -> bytes | None:
        """What a stall sends every ``keepalive_ms`` (``None``: the protocol has nothing)."""

    @property
    def endless(self) -> bytes:
        """The start of the line that ``endless_line`` never ends."""

    def error(self, index: int) -> Sequence[bytes]:
        """The in-band error event(s) that replace event ``index`` and end the stream."""


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


async def _abort(request: web.Request, response: web.StreamResponse, out: BodyWriter) -> None:
    """Close the connection without ending the chunked body (the client sees it broken)."""
    await out.flush()
    response.force_close()
    if request.transport is not None:
        request.transport.close()


async def _stall(
    request: web.Request, out: BodyWriter, faults: FaultOptions, framing: Framing
) -> None:
    """Send nothing more (but keep-alives) until the client goes away."""
    await out.flush()
    keepalive, interval = None, _STALL_POLL_S
    if faults.keepalive_ms and framing.keepalive is not None:
        keepalive, interval = framing.keepalive, faults.keepalive_ms / 1000
    loop = asyncio.get_running_loop()
    deadline = loop.time()
    while _connected(request):
        deadline += interval
        await asyncio.sleep(max(deadline - loop.time(), 0))
        if keepalive is not None:
            await out.write(keepalive)
            await out.flush()


async def _endless(out: BodyWriter, framing: Framing) -> None:
    """Send one line that never ends; stops when a write fails (the client went away)."""
    await out.write(framing.endless)
    while True:
        await out.write(_ENDLESS_BLOCK)


async def run_interrupt(
    fault: str,
    request: web.Request,
    response: web.StreamResponse,
    out: BodyWriter,
    faults: FaultOptions,
    framing: Framing,
) -> None:
    """Apply a fault that ends the normal flow: ``"endless"`` line, ``"drop"`` or ``"stall"``."""
    if fault == "endless":
        await _endless(out, framing)
    elif fault == "drop":
        await _abort(request, response, out)
    else:
        await _stall(request, out, faults, framing)
