"""EventSource-style streams for generic SSE servers: reconnect and resume by event ID.

Strategy: the browser's EventSource processing model (WHATWG HTML §9.2.3), as an
observable of :class:`~rxgpt._sse.ServerSentEvent`. One task per subscription connects,
decodes with :class:`~rxgpt._sse.SSEDecoder`, and when the body ends or the connection
drops, waits the reconnection time (the server's last ``retry:``, else ``retry_ms``) and
connects again, sending ``Last-Event-ID`` so the server can resume after the last event
it committed. A non-2xx answer (or a body that is not ``text/event-stream``) fails the
stream without reconnecting; ``204 No Content`` ends it. LLM APIs (POST streams without
ids) do not need this: it is for MCP / A2A style resumable streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._errors import DecodeError, RxgptError, TransportError
from ._json import dumps
from ._sse import ServerSentEvent, SSEDecoder
from ._transport import error_from_response, map_exception

__all__ = ["event_source"]


def event_source(
    url: str,
    *,
    method: str = "GET",
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
    last_event_id: str = "",
    retry_ms: int = 3000,
    max_reconnects: int | None = 10,
    max_event_bytes: int | None = None,
) -> Observable[ServerSentEvent]:
    """An observable of a server's events that reconnects (opt-in resumable streams).

    ``last_event_id`` seeds the ID sent on the first request; later requests send the ID
    committed by the stream. ``retry_ms`` is the reconnection time until the server sets
    one with ``retry:``. After ``max_reconnects`` reconnections in a row without a single
    event the stream fails with the last error (None: never give up).
    """
    body = dumps(json).encode() if json is not None else None

    def subscribe(
        observer: abc.ObserverBase[ServerSentEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        task = asyncio.get_running_loop().create_task(
            _run(
                observer,
                url,
                method,
                body,
                dict(headers or {}),
                session,
                last_event_id,
                retry_ms,
                max_reconnects,
                max_event_bytes,
            )
        )

        def dispose() -> None:
            task.cancel()

        return Disposable(dispose)

    return Observable(subscribe)


async def _run(
    observer: abc.ObserverBase[ServerSentEvent],
    url: str,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    session: aiohttp.ClientSession | None,
    last_event_id: str,
    retry_ms: int,
    max_reconnects: int | None,
    max_event_bytes: int | None,
) -> None:
    own = session is None
    client = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
    failures = 0
    try:
        while True:
            decoder = SSEDecoder(max_event_bytes=max_event_bytes, last_event_id=last_event_id)
            events_before = 0
            error: RxgptError | None = None
            send = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **headers}
            if body is not None:
                send.setdefault("Content-Type", "application/json")
            if last_event_id:
                send["Last-Event-ID"] = last_event_id
            try:
                async with client.request(method, url, data=body, headers=send) as resp:
                    if resp.status == 204:
                        observer.on_completed()
                        return
                    if resp.status != 200:
                        raw = await resp.content.read(64 * 1024)
                        observer.on_error(error_from_response(resp.status, resp.headers, raw, url))
                        return
                    if resp.content_type.lower() != "text/event-stream":
                        observer.on_error(
                            DecodeError(
                                f"expected text/event-stream from {url}, got {resp.content_type}"
                            )
                        )
                        return
                    async for chunk in resp.content.iter_any():
                        for event in decoder.feed(chunk):
                            events_before += 1
                            observer.on_next(event)
            except asyncio.CancelledError:
                raise
            except RxgptError as exc:
                if not isinstance(exc, TransportError):
                    observer.on_error(exc)
                    return
                error = exc
            except (aiohttp.ClientError, OSError) as exc:
                error = map_exception(exc, url)
            decoder.close()  # an unterminated event (and its id) is dropped
            last_event_id = decoder.last_event_id
            failures = 0 if events_before else failures + 1
            if max_reconnects is not None and failures > max_reconnects:
                observer.on_error(
                    error or TransportError(f"{url}: gave up after {failures - 1} reconnections")
                )
                return
            delay = decoder.retry if decoder.retry is not None else retry_ms
            retry_ms = delay
            await asyncio.sleep(delay / 1000)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a consumer raised
        observer.on_error(exc)
    finally:
        if own:
            await client.close()
