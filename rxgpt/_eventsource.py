"""EventSource-style streams for generic SSE servers: reconnect and resume by event ID.

Strategy: the browser's EventSource processing model (WHATWG HTML §9.2.3), as an
observable of :class:`~rxgpt.ServerSentEvent`, over rxgpt's transport (so its status and
content-type rules, flow control and drain apply). Each connection is one subscription to
:func:`~rxgpt.request`, decoded by one :class:`~rxgpt.SSEDecoder` that is seeded with the
last event ID; when the body ends or the connection drops, the stream waits the
reconnection time (the server's last ``retry:``, else ``retry_ms``) and connects again,
sending ``Last-Event-ID`` so the server can resume after the last event it committed. A
non-2xx answer, a body that is not ``text/event-stream``, an oversized event or an
exception raised by the consumer fail the stream without reconnecting; ``204 No Content``
ends it. LLM APIs (POST streams without ids) do not need this: it is for MCP / A2A style
resumable streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from ._client import DEFAULT_MAX_EVENT_BYTES
from ._errors import TransportError
from ._sse import ServerSentEvent, SSEDecoder
from ._transport import request

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
    max_event_bytes: int | None = DEFAULT_MAX_EVENT_BYTES,
) -> Observable[ServerSentEvent]:
    """An observable of a server's events that reconnects (opt-in resumable streams).

    ``last_event_id`` seeds the ID sent on the first request; later requests send the ID
    committed by the stream. ``retry_ms`` is the reconnection time until the server sets
    one with ``retry:``. After ``max_reconnects`` reconnections in a row without a single
    event the stream fails with the last error (None: never give up). ``max_event_bytes``
    bounds one event (16 MiB by default; None for no limit).
    """

    def subscribe(
        observer: abc.ObserverBase[ServerSentEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = _Reconnecting(
            observer,
            url,
            method,
            json,
            dict(headers or {}),
            session,
            retry_ms,
            max_reconnects,
            max_event_bytes,
        )
        run.connect(last_event_id)
        return Disposable(run.dispose)

    return Observable(subscribe)


class _Reconnecting:
    """One subscription: a connection at a time, and the wait between them."""

    def __init__(
        self,
        observer: abc.ObserverBase[ServerSentEvent],
        url: str,
        method: str,
        json: Any,
        headers: dict[str, str],
        session: aiohttp.ClientSession | None,
        retry_ms: int,
        max_reconnects: int | None,
        max_event_bytes: int | None,
    ) -> None:
        self.observer = observer
        self.url = url
        self.method = method
        self.json = json
        self.headers = headers
        self.session = session
        self.retry_ms = retry_ms
        self.max_reconnects = max_reconnects
        self.max_event_bytes = max_event_bytes
        self.connection = SerialDisposable()
        self.timer: asyncio.TimerHandle | None = None
        self.failures = 0  # connections in a row that gave no event
        self.stopped = False

    def connect(self, last_event_id: str) -> None:
        """Open one connection, decoding its body with a decoder seeded with the id."""
        self.timer = None
        decoder = SSEDecoder(max_event_bytes=self.max_event_bytes, last_event_id=last_event_id)
        headers = dict(self.headers)
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        seen = [0]
        no_content = [False]

        def on_batch(chunks: list[bytes]) -> None:
            for chunk in chunks:
                events = decoder.feed(chunk)
                seen[0] += len(events)
                for event in events:
                    self.observer.on_next(event)  # a consumer's exception fails the stream

        def progress(kind: str) -> None:
            no_content[0] = no_content[0] or kind == "no_content"

        def ended(error: Exception | None) -> None:
            if no_content[0]:
                self._stop(None)
            elif error is not None and not isinstance(error, TransportError):
                self._stop(error)  # a status, a content type, a decode or a consumer error
            else:
                self._reconnect(decoder, seen[0], error)

        source = request(
            self.url,
            method=self.method,
            json=self.json,
            headers=headers,
            session=self.session,
            progress=progress,
            media_type="text/event-stream",
        )
        self.connection.disposable = source.subscribe_batches(on_batch, ended, lambda: ended(None))

    def _reconnect(self, decoder: SSEDecoder, events: int, error: Exception | None) -> None:
        decoder.close()  # an unterminated event (and its id) is dropped
        self.failures = 0 if events else self.failures + 1
        if self.max_reconnects is not None and self.failures > self.max_reconnects:
            gave_up = TransportError(f"{self.url}: gave up after {self.failures - 1} reconnections")
            self._stop(error or gave_up)
            return
        if decoder.retry is not None:
            self.retry_ms = decoder.retry
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.retry_ms / 1000, self.connect, decoder.last_event_id)

    def _stop(self, error: Exception | None) -> None:
        if self.stopped:
            return
        self.stopped = True
        if error is None:
            self.observer.on_completed()
        else:
            self.observer.on_error(error)

    def dispose(self) -> None:
        """Close the connection, or cancel the wait for the next one."""
        self.stopped = True
        if self.timer is not None:
            self.timer.cancel()
        self.connection.dispose()
