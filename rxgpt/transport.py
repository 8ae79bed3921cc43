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
from collections.abc import Mapping
from typing import Any

import aiohttp
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._json import dumps, loads
from .aio import FlowControl, current_flow
from .errors import (
    AuthenticationError,
    HTTPStatusError,
    RateLimitError,
    RxgptError,
    StreamInterrupted,
    TransportError,
)

__all__ = ["error_from_response", "request"]

_MAX_ERROR_BODY = 64 * 1024


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
) -> Observable[bytes]:
    """A cold observable: each subscription sends one request and emits the body's chunks.

    ``session`` is the caller's :class:`aiohttp.ClientSession` (one is created and closed
    per subscription otherwise). ``flow`` lets a consumer pause socket reads (see
    :mod:`rxgpt.aio`). Subscribe from within a running event loop.
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
        response: list[aiohttp.ClientResponse] = []
        closed = False

        async def run() -> None:
            own = session is None
            client = session or aiohttp.ClientSession()
            try:
                async with client.request(method, url, data=body, headers=send_headers) as resp:
                    response.append(resp)
                    if closed:
                        resp.close()
                        return
                    if resp.status >= 300:
                        raw = await resp.content.read(_MAX_ERROR_BODY)
                        observer.on_error(error_from_response(resp.status, resp.headers, raw, url))
                        return
                    content = resp.content
                    on_next = observer.on_next
                    while True:
                        if gate is not None:
                            await gate.wait()
                        chunk = await content.readany()
                        if not chunk:
                            break
                        on_next(chunk)
                observer.on_completed()
            except asyncio.CancelledError:
                raise
            except RxgptError as error:
                observer.on_error(error)
            except aiohttp.ClientPayloadError as error:
                observer.on_error(StreamInterrupted(f"the connection broke mid-body: {error}"))
            except (aiohttp.ServerDisconnectedError, ConnectionResetError) as error:
                observer.on_error(StreamInterrupted(f"the server disconnected: {error!r}"))
            except (aiohttp.ClientError, OSError) as error:
                observer.on_error(TransportError(f"request to {url} failed: {error!r}"))
            except Exception as error:  # an operator downstream raised: end the stream
                observer.on_error(error)
            finally:
                if own:
                    await client.close()

        task = loop.create_task(run())

        def dispose() -> None:
            nonlocal closed
            closed = True
            for resp in response:
                resp.close()
            task.cancel()

        return Disposable(dispose)

    return Observable(subscribe)
