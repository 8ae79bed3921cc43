"""The aiohttp transport: a cold observable of response body chunks.

Strategy: every subscription starts one task on the running loop that sends one request
and pushes each network read (``iter_any``: whatever arrived, no line-length limit)
straight to the observer, synchronously. A non-2xx answer fails the stream with a typed
:class:`~rxgpt.HTTPStatusError` before any item. Disposing the subscription closes the
response at once and cancels the task. aiohttp exceptions are mapped to rxgpt's typed
errors here, at one boundary, for the request and for the body alike.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._aio import FlowControl, current_flow
from ._errors import (
    AuthenticationError,
    DecodeError,
    HTTPStatusError,
    RateLimitError,
    RxgptError,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    TransportError,
)
from ._json import dumps, loads

__all__ = ["error_from_response", "map_exception", "request"]

_MAX_ERROR_BODY = 64 * 1024

#: Set by decoding operators while they end the stream because its end signal arrived:
#: a disposal that happens then is a normal end (drain the body, reuse the connection),
#: any other one an abort (close the connection at once).
ending_gracefully: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "rxgpt_ending_gracefully", default=False
)


def end_gracefully(observer: Any) -> None:
    """``observer.on_completed()``, marked as the normal end of the stream."""
    token = ending_gracefully.set(True)
    try:
        observer.on_completed()
    finally:
        ending_gracefully.reset(token)


#: Streams are long: rxgpt's own deadlines (rxgpt.Timeouts) apply, not aiohttp's 300 s.
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30)


def _status_error_class(status: int) -> type[HTTPStatusError]:
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return RateLimitError
    return HTTPStatusError


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, url: str = ""
) -> HTTPStatusError:
    """Build the typed error for a non-2xx answer, parsing the provider's error body."""
    text = body.decode("utf-8", "replace")
    error: dict[str, Any] | None = None
    try:
        parsed = loads(body) if body else None
    except Exception:
        parsed = None
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict):
            error = inner
        elif isinstance(inner, str):
            error = {"message": inner}
        elif "message" in parsed:
            error = parsed
    elif isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        inner = parsed[0].get("error")  # Gemini wraps its error in a list sometimes
        if isinstance(inner, dict):
            error = inner
    return _status_error_class(status)(
        status, headers=dict(headers), error=error, body=text, url=url
    )


def request(
    url: str,
    *,
    method: str = "POST",
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
    flow: FlowControl | None = None,
    progress: Callable[[str], None] | None = None,
    drain_bytes: int = 64 * 1024,
    drain_timeout: float = 1.0,
) -> Observable[bytes]:
    """A cold observable: each subscription sends one request and emits the body's chunks.

    ``session`` is the caller's :class:`aiohttp.ClientSession` (one is created and closed
    per subscription otherwise). ``flow`` lets a consumer pause socket reads (see
    :mod:`rxgpt.aio`); ``progress`` is told "connected" (headers in) and "first_byte".
    Disposing from another task (cancellation, timeout) closes the connection at once;
    when the consumer stops synchronously while handling a chunk (it saw the end marker),
    the rest of the body is drained, at most ``drain_bytes`` within ``drain_timeout``
    seconds, so the connection can go back to the pool. Subscribe on a running loop.
    """
    body = dumps(json).encode() if json is not None else None
    send_headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if body is not None:
        send_headers["Content-Type"] = "application/json"
    send_headers.update(headers or {})

    def subscribe(
        observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        loop = asyncio.get_running_loop()
        gate = flow or current_flow.get()
        state = _Subscription()

        async def run() -> None:
            own = session is None
            client = session or aiohttp.ClientSession(timeout=_NO_TIMEOUT)
            try:
                async with client.request(method, url, data=body, headers=send_headers) as resp:
                    state.response = resp
                    if state.closed:
                        resp.close()
                        return
                    state.headers = True
                    if progress is not None:
                        progress("connected")
                    if resp.status >= 300:
                        raw = await _read_bounded(resp)
                        observer.on_error(error_from_response(resp.status, resp.headers, raw, url))
                        return
                    error = await _check_content_type(resp, url)
                    if error is not None:
                        observer.on_error(error)
                        return
                    await _pump(resp, observer, gate, progress, state)
                    if state.graceful:
                        await _drain(resp, drain_bytes, drain_timeout)
                        return
                    if state.closed:
                        return
                observer.on_completed()
            except asyncio.CancelledError:
                raise
            except _ConsumerError as wrapped:
                if not state.closed:
                    observer.on_error(wrapped.error)
            except RxgptError as error:
                observer.on_error(error)
            except Exception as error:
                if not state.closed:
                    observer.on_error(map_exception(error, url, mid_body=state.headers))
            finally:
                if own:
                    await client.close()

        task = loop.create_task(run())

        def dispose() -> None:
            if state.closed:
                return
            state.closed = True
            if state.in_on_next and ending_gracefully.get():
                state.graceful = True  # the decoder saw the end signal: drain, then reuse
                return
            if state.response is not None:
                state.response.close()
            task.cancel()

        return Disposable(dispose)

    return Observable(subscribe)


class _ConsumerError(Exception):
    """An exception raised by the observer itself, carried out of the read loop."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


class _Subscription:
    __slots__ = ("closed", "graceful", "headers", "in_on_next", "response")

    def __init__(self) -> None:
        self.response: aiohttp.ClientResponse | None = None
        self.headers = False
        self.closed = False
        self.graceful = False
        self.in_on_next = False


async def _pump(
    resp: aiohttp.ClientResponse,
    observer: abc.ObserverBase[bytes],
    gate: FlowControl | None,
    progress: Callable[[str], None] | None,
    state: _Subscription,
) -> None:
    """Push every network read to the observer until EOF or disposal."""
    content = resp.content
    on_next = observer.on_next
    chunk = await content.readany()
    if chunk and progress is not None:
        progress("first_byte")
    while chunk:
        state.in_on_next = True
        try:
            on_next(chunk)
        except Exception as error:  # a consumer raised: end the stream with its error
            raise _ConsumerError(error) from error
        finally:
            state.in_on_next = False
        if state.closed:
            return
        if gate is not None:
            await gate.wait()
        chunk = await content.readany()


async def _drain(resp: aiohttp.ClientResponse, limit: int, timeout: float) -> None:
    """Read what is left of the body (bounded) so the connection can be reused."""
    try:
        async with asyncio.timeout(timeout):
            left = limit
            while left > 0:
                chunk = await resp.content.readany()
                if not chunk:
                    resp.release()
                    return
                left -= len(chunk)
    except (TimeoutError, aiohttp.ClientError, OSError):
        pass
    resp.close()


_NOT_STREAMS = ("text/html", "application/json", "application/problem+json")


async def _check_content_type(resp: aiohttp.ClientResponse, url: str) -> RxgptError | None:
    """A 2xx answer that is an HTML page or a JSON document instead of a stream."""
    media = resp.content_type.lower()
    if media not in _NOT_STREAMS:
        return None  # event streams, NDJSON, and unlabelled bodies are decoded
    raw = await _read_bounded(resp)
    text = raw.decode("utf-8", "replace")
    if media != "text/html":
        try:
            parsed = loads(raw)
        except Exception:
            parsed = None
        if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
            parsed = parsed[0]
        if isinstance(parsed, dict) and parsed.get("error"):
            return StreamError(parsed["error"])
    return DecodeError(
        f"expected a stream from {url}, got {media} with status {resp.status}", raw=text
    )


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int = _MAX_ERROR_BODY) -> bytes:
    """Read a (non-stream) body until its end or ``limit`` bytes, whichever comes first."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.readany()
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)[:limit]


def map_exception(error: BaseException, url: str, *, mid_body: bool = False) -> RxgptError:
    """The typed rxgpt error for an aiohttp or socket exception.

    ``mid_body``: the response headers had arrived, so a failure now (broken framing, a
    reset) interrupted the body.
    """
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return StreamTimeout("connect", 0)
    if isinstance(error, aiohttp.ClientPayloadError):
        return StreamInterrupted(f"the connection broke mid-body: {error}")
    if isinstance(error, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return StreamInterrupted(f"the server disconnected: {error!r}")
    if mid_body and isinstance(error, aiohttp.ClientError | OSError):
        return StreamInterrupted(f"the body from {url} broke off: {error!r}")
    return TransportError(f"request to {url} failed: {error!r}")
