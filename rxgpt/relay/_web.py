"""The browser relay: ``GET /v1/streams/{key}`` serves a relayed stream as resumable SSE.

Every SSE event carries ``id: <Redis entry ID>``, so an ``EventSource`` that reconnects sends
``Last-Event-ID`` and the handler goes on exactly after the last entry it delivered (the
header wins over a ``?last_event_id=`` query parameter, for pages that reload). The events,
chosen by ``?format=``:

- ``openai`` (the default): each deltas entry is one ``chat.completion.chunk`` JSON object,
  the entry's deltas merged per choice (text concatenated, tool call fragments per call), so
  existing front-end code reads it; an entry with nothing to show is an id-only event (it
  moves the browser's cursor without firing). The end is ``data: [DONE]`` (or ``data:
  {"error": {...}}``), then ``event: done`` with the end entry's JSON;
- ``rxgpt``: each entry's stored JSON as is: ``event: start``, then one event per read (a
  list of encoded deltas, see :mod:`rxgpt.relay._encoding`), then ``event: done``.

The handler sends ``retry:`` once, ``: ping`` comments while the stream is idle, and ends
after ``event: done`` (the page should then call ``close()``: a browser reconnects after a
clean end too, and gets 204, which makes it stop). A stream that fails to be read (its
producer died, Redis failed) also ends with ``event: done``, carrying the typed error.
Statuses before the stream: 400 for a bad ``format`` or ID, 204 when resuming after the end
or on a stream that no longer exists, 404 when no stream starts within ``start_timeout``,
410 when the resume ID was trimmed away, 503 when Redis is unreachable.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from .._completion import Completion, CompletionState
from .._deltas import (
    Delta,
    FinishDelta,
    LogprobsDelta,
    ReasoningDelta,
    RefusalDelta,
    ResponseInfo,
    RoleDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallStart,
    UsageDelta,
)
from .._errors import RxgptError, StreamInterrupted, StreamTimeout
from .._files import read_text
from .._json import dumps
from .._shape_openai import _OPENAI_FINISH, _openai_usage
from ._bounds import DEFAULT_BLOCK, DEFAULT_START_TIMEOUT
from ._connect import Redis, relay_error
from ._encoding import EndInfo, encode_end, encode_error
from ._subscribe import (
    ENTRY_ID,
    Entry,
    EntryReader,
    parse_entry,
)

__all__ = ["FORMATS", "STREAM_ROUTE", "ChunkShaper", "create_app", "openai_chunk", "stream_handler"]

#: The route of the SSE handler.
STREAM_ROUTE = "/v1/streams/{key}"
#: The event formats of ``?format=``.
FORMATS = ("openai", "rxgpt")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------- OpenAI chunks


class ChunkShaper:
    """Deltas → ``chat.completion.chunk`` objects; remembers the response's id and model."""

    __slots__ = ("created", "id", "model", "protocol")

    def __init__(self, protocol: str = "openai-chat") -> None:
        self.protocol = protocol
        self.id = ""
        self.model = ""
        self.created = 0

    def chunk(self, deltas: list[Delta]) -> dict[str, Any] | None:
        """One chunk holding ``deltas`` merged per choice (None: nothing a chunk shows)."""
        choices: dict[int, dict[str, Any]] = {}
        usage: dict[str, Any] | None = None

        def choice(index: int) -> dict[str, Any]:
            entry = choices.get(index)
            if entry is None:
                entry = choices[index] = {
                    "index": index,
                    "delta": {},
                    "logprobs": None,
                    "finish_reason": None,
                }
            return entry

        for delta in deltas:
            cls = delta.__class__
            if cls is TextDelta:
                _append(choice(delta.choice)["delta"], "content", delta.text)  # type: ignore[attr-defined]
            elif cls is ToolCallArguments:
                call = _call(choice(delta.choice)["delta"], delta.index)  # type: ignore[attr-defined]
                call["function"]["arguments"] += delta.arguments  # type: ignore[attr-defined]
            elif cls is ToolCallStart:
                assert isinstance(delta, ToolCallStart)
                call = _call(choice(delta.choice)["delta"], delta.index)
                call.update({"id": delta.id, "type": delta.type})
                call["function"]["name"] = delta.name
            elif cls is RoleDelta:
                assert isinstance(delta, RoleDelta)
                choice(delta.choice)["delta"]["role"] = delta.role
            elif cls is RefusalDelta:
                assert isinstance(delta, RefusalDelta)
                _append(choice(delta.choice)["delta"], "refusal", delta.text)
            elif cls is ReasoningDelta:
                assert isinstance(delta, ReasoningDelta)
                _append(choice(delta.choice)["delta"], "reasoning_content", delta.text)
            elif cls is FinishDelta:
                assert isinstance(delta, FinishDelta)
                native = self.protocol == "openai-chat" and delta.raw_reason is not None
                reason = delta.raw_reason if native else _OPENAI_FINISH.get(delta.reason, "stop")
                choice(delta.choice)["finish_reason"] = reason
            elif cls is LogprobsDelta:
                assert isinstance(delta, LogprobsDelta)
                entry = choice(delta.choice)
                logprobs = entry["logprobs"] or {"content": None, "refusal": None}
                for name in ("content", "refusal"):
                    value = getattr(delta, name)
                    if value is not None:
                        logprobs[name] = (logprobs[name] or []) + list(value)
                entry["logprobs"] = logprobs
            elif cls is UsageDelta:
                assert isinstance(delta, UsageDelta)
                usage = _openai_usage(
                    Completion("complete", [], delta.usage, protocol=self.protocol)
                )
            elif cls is ResponseInfo:
                assert isinstance(delta, ResponseInfo)
                self.id = delta.id or self.id
                self.model = delta.model or self.model
                self.created = delta.created if delta.created is not None else self.created
        if not choices and usage is None:
            return None
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choices[i] for i in sorted(choices)],
        }
        if usage is not None:
            chunk["usage"] = usage
        return chunk


def _append(delta: dict[str, Any], name: str, text: str) -> None:
    delta[name] = delta.get(name, "") + text


def _call(delta: dict[str, Any], index: int) -> dict[str, Any]:
    calls: list[dict[str, Any]] = delta.setdefault("tool_calls", [])
    for call in calls:
        if call["index"] == index:
            return call
    call = {"index": index, "function": {"arguments": ""}}
    calls.append(call)
    return call


def openai_chunk(deltas: list[Delta], protocol: str = "openai-chat") -> dict[str, Any] | None:
    """The ``chat.completion.chunk`` holding ``deltas`` (see :class:`ChunkShaper`)."""
    return ChunkShaper(protocol).chunk(deltas)


# --------------------------------------------------------------------------- SSE


def _event(
    data: str | bytes | None = None, *, id: str | None = None, event: str | None = None
) -> bytes:
    """One SSE event; ``data`` must be one line (compact JSON is)."""
    out = b""
    if id is not None:
        out += b"id: " + id.encode() + b"\n"
    if event is not None:
        out += b"event: " + event.encode() + b"\n"
    if data is not None:
        out += b"data: " + (data if isinstance(data, bytes) else data.encode()) + b"\n"
    return out + b"\n"


def _failure_end(error: RxgptError, deltas: int) -> str:
    state: CompletionState = "truncated" if isinstance(error, StreamInterrupted) else "error"
    return encode_end(EndInfo(state, deltas, None, error))


class _Session:
    """One SSE response: the reader's entries → events in the chosen format."""

    def __init__(self, reader: EntryReader, fmt: str) -> None:
        self.reader = reader
        self.openai = fmt == "openai"
        self.shaper = ChunkShaper()
        self.deltas = 0

    async def prime(self, client: Redis) -> None:
        """When resuming in OpenAI format: the response id and model from the first reads."""
        if not self.openai or self.reader.after is None:
            return
        try:
            first = await self.reader.ask(client.xrange(self.reader.key, "0-1", "+", count=3))
        except (RedisError, OSError) as error:
            raise relay_error(error, client, "resuming a relayed stream") from None
        for entry_id, fields in first or []:
            entry = parse_entry(entry_id, fields or {})
            if entry.start is not None:
                self.shaper.protocol = entry.start.protocol
            self.shaper.chunk(entry.deltas)

    def events(self, entry: Entry) -> bytes:
        """The SSE bytes of one entry."""
        if entry.kind == "start":
            assert entry.start is not None
            self.shaper.protocol = entry.start.protocol
            return (
                _event(id=entry.id)
                if self.openai
                else _event(entry.data, id=entry.id, event="start")
            )
        if entry.kind == "deltas":
            self.deltas += len(entry.deltas)
            if not self.openai:
                return _event(entry.data, id=entry.id)
            chunk = self.shaper.chunk(entry.deltas)
            return _event(dumps(chunk) if chunk is not None else None, id=entry.id)
        if not self.openai:
            return _event(entry.data, id=entry.id, event="done")
        assert entry.end is not None
        error = entry.end.error
        last = "[DONE]" if error is None else dumps({"error": encode_error(error)})
        return _event(last, id=entry.id) + _event(entry.data, event="done")

    def failure(self, error: RxgptError) -> bytes:
        """The events that end a stream that could not be read to its end."""
        head = _event(dumps({"error": encode_error(error)})) if self.openai else b""
        return head + _event(_failure_end(error, self.deltas), event="done")


def _status(error: RxgptError, resuming: bool) -> web.Response:
    """The answer when reading fails before the first event."""
    message = str(error) + "\n"
    if isinstance(error, StreamTimeout):
        return web.Response(status=404, text=message)
    if isinstance(error, StreamInterrupted) and resuming:
        gone = "does not exist" in message
        return web.Response(status=204) if gone else web.Response(status=410, text=message)
    if isinstance(error, StreamInterrupted):
        return web.Response(status=502, text=message)
    return web.Response(status=503, text=message)


def stream_handler(
    client: Redis,
    *,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    block: float = DEFAULT_BLOCK,
    ping_interval: float = 15.0,
    retry_ms: int = 1000,
) -> Handler:
    """The aiohttp handler of :data:`STREAM_ROUTE` (``{key}`` is the Redis key)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        fmt = request.query.get("format", "openai")
        if fmt not in FORMATS:
            return web.Response(status=400, text=f"format must be one of {', '.join(FORMATS)}\n")
        after = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        if after is not None and not ENTRY_ID.fullmatch(after):
            return web.Response(status=400, text=f"not a stream entry ID: {after[:40]!r}\n")
        reader = EntryReader(client, key, after=after, block=block, start_timeout=start_timeout)
        session = _Session(reader, fmt)
        entries: AsyncIterator[Entry | None] = aiter(reader)
        async with contextlib.aclosing(entries):  # type: ignore[type-var]
            try:
                first = await _first(entries)
                if first is not None:
                    await session.prime(client)
            except RxgptError as error:
                return _status(error, after is not None)
            if first is None:
                return web.Response(status=204)  # resumed after the end
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream; charset=utf-8",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            try:
                await response.prepare(request)
                await response.write(b"retry: %d\n\n" % retry_ms)
            except ConnectionResetError:  # gone before the first event: nothing to log
                return response
            await _pump(response, session, first, entries, ping_interval)
            return response

    return handle


async def _first(entries: AsyncIterator[Entry | None]) -> Entry | None:
    """The first entry (None if there is none: a resume after the end)."""
    async for entry in entries:
        if entry is not None:
            return entry
    return None


async def _pump(
    response: web.StreamResponse,
    session: _Session,
    first: Entry,
    entries: AsyncIterator[Entry | None],
    ping_interval: float,
) -> None:
    """Write the events until the end entry, a failure, or the client goes away."""
    try:
        await response.write(session.events(first))
        if first.kind == "end":
            return
        written = time.monotonic()
        try:
            async for entry in entries:
                if entry is None:
                    if time.monotonic() - written >= ping_interval:
                        await response.write(b": ping\n\n")
                        written = time.monotonic()
                    continue
                await response.write(session.events(entry))
                written = time.monotonic()
        except RxgptError as error:
            await response.write(session.failure(error))
    except (ConnectionResetError, RuntimeError):
        return  # the client went away (a browser reconnects with Last-Event-ID)


#: The largest page :func:`create_app` serves at ``/`` (a viewer is a few kB).
MAX_PAGE_BYTES = 16 * 2**20


def read_page(path: str | Path) -> str:
    """The HTML of the page file ``path``: a regular file of UTF-8 text, at most
    :data:`MAX_PAGE_BYTES` (ValueError naming the file otherwise)."""
    return read_text(str(path), MAX_PAGE_BYTES, "the page")


def create_app(
    client: Redis,
    *,
    page: str | Path | None = None,
    **options: Any,
) -> web.Application:
    """An aiohttp application serving :data:`STREAM_ROUTE` (and ``page`` at ``GET /``).

    ``options`` go to :func:`stream_handler`. ``page`` is an HTML file served at ``/`` (the
    example's viewer, ``examples/relay/page.html``).
    """
    app = web.Application()
    app.router.add_get(STREAM_ROUTE, stream_handler(client, **options))
    if page is not None:
        html = read_page(page)

        async def index(request: web.Request) -> web.Response:
            return web.Response(text=html, content_type="text/html")

        app.router.add_get("/", index)
    return app
