"""Tests of rxgpt._transport.request: a cold observable of response body chunks.

Every test talks to a real aiohttp server on 127.0.0.1 (rxgpt's MockServer, or a small
custom handler through pytest-aiohttp's ``aiohttp_server`` when the server side has to be
observed precisely). Nothing here mocks aiohttp, and nothing asserts on timings: waits are
bounded by generous timeouts only so that a bug shows as a failure, not a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from reactivex import Observable

import rxgpt
from rxgpt import (
    AuthenticationError,
    HTTPStatusError,
    RateLimitError,
    StreamInterrupted,
    TransportError,
    accumulate,
    decode_stream,
    parse_sse,
    request,
)
from rxgpt.mock import MockServer, generate_tokens

TIMEOUT = 5
TOKENS = 12
MESSAGES = [{"role": "user", "content": "Tell me about transports"}]
MODEL = "gpt-test"


# --------------------------------------------------------------------------- helpers


async def collect(
    source: Observable[Any], timeout: float = TIMEOUT
) -> tuple[list[Any], Exception | None]:
    """Subscribe, wait for the terminal; return (items, error or None)."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[Exception | None] = loop.create_future()
    items: list[Any] = []

    def on_error(error: Exception) -> None:
        if not finished.done():
            finished.set_result(error)

    def on_completed() -> None:
        if not finished.done():
            finished.set_result(None)

    subscription = source.subscribe(items.append, on_error, on_completed)
    try:
        error = await asyncio.wait_for(finished, timeout)
    finally:
        subscription.dispose()
    return items, error


@dataclass
class Recorder:
    """What a custom handler saw."""

    requests: int = 0
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    writes: int = 0
    write_failed: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    first_write: asyncio.Event = field(default_factory=asyncio.Event)


BODY = b"".join(b'data: {"n":%d}\n\n' % i for i in range(200)) + b"data: [DONE]\n\n"


async def start(aiohttp_server: AiohttpServer, handler: Any, path: str = "/stream") -> str:
    app = web.Application()
    app.router.add_route("*", path, handler)
    server = await aiohttp_server(app)
    return str(server.make_url(path))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def echo_server(aiohttp_server: AiohttpServer) -> tuple[str, Recorder]:
    """A server that records each request and streams BODY in a few writes."""
    rec = Recorder()

    async def handler(req: web.Request) -> web.StreamResponse:
        rec.requests += 1
        raw = await req.read()
        rec.bodies.append(json.loads(raw) if raw else None)
        rec.headers.append(dict(req.headers))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        for start_at in range(0, len(BODY), 1000):
            await resp.write(BODY[start_at : start_at + 1000])
        await resp.write_eof()
        return resp

    return await start(aiohttp_server, handler), rec


@pytest.fixture
async def endless_server(aiohttp_server: AiohttpServer) -> tuple[str, Recorder]:
    """A server that writes a small event every few ms, forever, and records how it ends."""
    rec = Recorder()

    async def handler(req: web.Request) -> web.StreamResponse:
        rec.requests += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        try:
            while True:
                await resp.write(b"data: tick\n\n")
                rec.writes += 1
                rec.first_write.set()
                await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            rec.cancelled.set()
            raise
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            rec.write_failed.set()
        finally:
            rec.ended.set()
        return resp

    return await start(aiohttp_server, handler), rec


def free_port() -> int:
    """A port nobody listens on (bound, then closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def transport_tasks() -> set[asyncio.Task[Any]]:
    """Tasks started by rxgpt._transport that have not finished."""
    return {
        task
        for task in asyncio.all_tasks()
        if not task.done() and "request.<locals>" in task.get_coro().__qualname__
    }


async def until(predicate: Any, timeout: float = TIMEOUT) -> None:
    """Let the loop run until ``predicate()`` is true (fails after ``timeout`` seconds).

    Polls in the calling task (no helper task, so ``asyncio.all_tasks()`` stays comparable).
    """
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


# -------------------------------------------------------------- cold, one request per subscription


async def test_each_subscription_sends_one_request(
    echo_server: tuple[str, Recorder], session: aiohttp.ClientSession
) -> None:
    url, rec = echo_server
    source = request(url, json={"hello": "world"}, session=session)
    assert rec.requests == 0  # cold: nothing is sent before a subscription

    first, error1 = await collect(source)
    second, error2 = await collect(source)

    assert error1 is None and error2 is None
    assert rec.requests == 2
    assert b"".join(first) == BODY
    assert b"".join(second) == BODY
    assert all(isinstance(chunk, bytes) and chunk for chunk in first)


async def test_two_concurrent_subscriptions_are_two_requests(
    echo_server: tuple[str, Recorder], session: aiohttp.ClientSession
) -> None:
    url, rec = echo_server
    source = request(url, json={}, session=session)
    (a, ea), (b, eb) = await asyncio.gather(collect(source), collect(source))
    assert ea is None and eb is None
    assert rec.requests == 2
    assert b"".join(a) == b"".join(b) == BODY


async def test_sends_json_body_and_headers(
    echo_server: tuple[str, Recorder], session: aiohttp.ClientSession
) -> None:
    url, rec = echo_server
    payload = {"model": "m", "messages": [{"role": "user", "content": "héllo →"}], "n": 1}
    _, error = await collect(
        request(url, json=payload, headers={"X-Custom": "yes"}, session=session)
    )
    assert error is None
    assert rec.bodies == [payload]
    headers = {k.lower(): v for k, v in rec.headers[0].items()}
    assert headers["x-custom"] == "yes"
    assert headers["content-type"].startswith("application/json")
    assert headers["accept"] == "text/event-stream"


async def test_uses_the_callers_session_and_does_not_close_it(
    echo_server: tuple[str, Recorder], session: aiohttp.ClientSession
) -> None:
    url, rec = echo_server
    items, error = await collect(request(url, json={}, session=session))
    assert error is None and b"".join(items) == BODY
    assert not session.closed
    # the session is still usable, and its pool served the request
    async with session.post(url, json={}) as resp:
        assert await resp.read() == BODY
    assert rec.requests == 2


async def test_works_without_a_session(echo_server: tuple[str, Recorder]) -> None:
    url, rec = echo_server
    items, error = await collect(request(url, json={"a": 1}))
    assert error is None
    assert b"".join(items) == BODY
    assert rec.requests == 1
    # the session the transport made for itself is closed with its task
    await until(lambda: not transport_tasks())


async def test_get_without_body(aiohttp_server: AiohttpServer) -> None:
    seen: list[tuple[str, bytes]] = []

    async def handler(req: web.Request) -> web.Response:
        seen.append((req.method, await req.read()))
        return web.Response(body=b"data: x\n\n", content_type="text/event-stream")

    url = await start(aiohttp_server, handler)
    items, error = await collect(request(url, method="GET"))
    assert error is None
    assert b"".join(items) == b"data: x\n\n"
    assert seen == [("GET", b"")]


# --------------------------------------------------------------------------- disposal


@pytest.mark.parametrize("own_session", [False, True], ids=["callers-session", "own-session"])
async def test_dispose_mid_stream_closes_the_response(
    endless_server: tuple[str, Recorder], own_session: bool
) -> None:
    url, rec = endless_server
    async with contextlib.AsyncExitStack() as stack:
        session = None if own_session else await stack.enter_async_context(aiohttp.ClientSession())
        before = set(asyncio.all_tasks())
        got: list[bytes] = []
        terminal: list[str] = []
        enough = asyncio.Event()

        def on_next(chunk: bytes) -> None:
            got.append(chunk)
            if b"".join(got).count(b"tick") >= 3:
                enough.set()

        subscription = request(url, session=session, method="GET").subscribe(
            on_next, lambda e: terminal.append(f"error {e!r}"), lambda: terminal.append("done")
        )
        await asyncio.wait_for(enough.wait(), TIMEOUT)
        assert not rec.ended.is_set()

        subscription.dispose()
        received = len(got)

        # the server notices at once: its handler is cancelled or its write fails
        await asyncio.wait_for(rec.ended.wait(), TIMEOUT)
        assert rec.cancelled.is_set() or rec.write_failed.is_set()

        # no task of the transport is left behind
        await until(lambda: not transport_tasks())
        await until(lambda: not (set(asyncio.all_tasks()) - before))
        # nothing is pushed after dispose, and no terminal either
        assert len(got) == received
        assert terminal == []
        if session is not None:
            assert not session.closed


async def test_dispose_before_the_answer_sends_nothing_further(
    endless_server: tuple[str, Recorder], session: aiohttp.ClientSession
) -> None:
    """Disposing right after subscribing (same loop step) never starts a request."""
    url, rec = endless_server
    got: list[bytes] = []
    subscription = request(url, session=session, method="GET").subscribe(got.append)
    subscription.dispose()
    await until(lambda: not transport_tasks())
    for _ in range(5):
        await asyncio.sleep(0)
    assert got == []
    assert rec.requests == 0


async def test_take_disposes_the_response(
    endless_server: tuple[str, Recorder], session: aiohttp.ClientSession
) -> None:
    """An operator that unsubscribes from within on_next (take) closes the response too."""
    from reactivex import operators as ops

    url, rec = endless_server
    items, error = await collect(request(url, session=session, method="GET").pipe(ops.take(2)))
    assert error is None and len(items) == 2
    await asyncio.wait_for(rec.ended.wait(), TIMEOUT)
    await until(lambda: not transport_tasks())


# --------------------------------------------------------------------------- HTTP status errors


def _error_handler(status: int, body: bytes, headers: dict[str, str]) -> Any:
    async def handler(req: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers=headers)

    return handler


async def test_401_is_authentication_error_before_any_item(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    body = json.dumps(
        {
            "error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
    ).encode()
    url = await start(
        aiohttp_server, _error_handler(401, body, {"Content-Type": "application/json"})
    )
    items, error = await collect(request(url, json={}, session=session))
    assert items == []
    assert isinstance(error, AuthenticationError)
    assert error.status == 401
    assert error.error_message == "Incorrect API key provided."
    assert error.error_type == "invalid_request_error"
    assert error.error_code == "invalid_api_key"


async def test_429_is_rate_limit_error_with_headers_and_parsed_body(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    body = json.dumps(
        {
            "error": {
                "message": "Rate limit reached for gpt-test. Please try again in 20s.",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Retry-After": "20",
        "x-ratelimit-remaining-requests": "0",
    }
    url = await start(aiohttp_server, _error_handler(429, body, headers))
    items, error = await collect(request(url, json={}, session=session))
    assert items == []
    assert isinstance(error, RateLimitError)
    assert isinstance(error, HTTPStatusError)
    assert error.status == 429
    assert error.headers["Retry-After"] == "20"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.error_message == "Rate limit reached for gpt-test. Please try again in 20s."
    assert error.error_type == "requests"
    assert error.error_code == "rate_limit_exceeded"
    assert "429" in str(error)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, HTTPStatusError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, HTTPStatusError),
        (429, RateLimitError),
        (503, HTTPStatusError),
    ],
)
async def test_status_to_error_class(
    aiohttp_server: AiohttpServer,
    session: aiohttp.ClientSession,
    status: int,
    error_type: type[HTTPStatusError],
) -> None:
    body = b'{"error":{"message":"nope","type":"t","param":null,"code":"c"}}'
    url = await start(
        aiohttp_server, _error_handler(status, body, {"Content-Type": "application/json"})
    )
    items, error = await collect(request(url, json={}, session=session))
    assert items == []
    assert type(error) is error_type
    assert error.status == status
    assert (error.error_message, error.error_type, error.error_code) == ("nope", "t", "c")


async def test_error_headers_are_case_insensitive(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    """HTTP header names are case-insensitive: a server sending ``retry-after`` in lower
    case (as many gateways do) must still be found under ``Retry-After``."""
    body = b'{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}'
    headers = {"content-type": "application/json", "retry-after": "5"}
    url = await start(aiohttp_server, _error_handler(429, body, headers))
    _, error = await collect(request(url, json={}, session=session))
    assert isinstance(error, RateLimitError)
    assert error.headers["Retry-After"] == "5"


async def test_429_from_the_mock_with_retry_after(session: aiohttp.ClientSession) -> None:
    async with MockServer(tokens=TOKENS) as server:
        body = {
            "model": MODEL,
            "messages": MESSAGES,
            "stream": True,
            "mock": {"status": 429, "retry_after": 7},
        }
        items, error = await collect(
            request(server.base_url + "/chat/completions", json=body, session=session)
        )
    assert items == []
    assert isinstance(error, RateLimitError)
    assert error.status == 429
    assert error.headers["Retry-After"] == "7"
    assert error.error_type == "rate_limit_error"
    assert error.error_code == "rate_limit_exceeded"
    assert error.error_message is not None and "Rate limit" in error.error_message


HTML = (
    "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    "<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


async def test_500_with_html_body(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    url = await start(
        aiohttp_server, _error_handler(500, HTML.encode(), {"Content-Type": "text/html"})
    )
    items, error = await collect(request(url, json={}, session=session))
    assert items == []
    assert type(error) is HTTPStatusError
    assert error.status == 500
    assert error.body == HTML
    assert error.error is None
    assert error.error_message is None
    assert "500" in str(error)


async def test_500_with_html_body_sent_in_two_writes(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    """A gateway may stream its error page; ``.body`` must still hold all of it."""
    half = len(HTML) // 2

    async def handler(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=502, headers={"Content-Type": "text/html"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        await resp.write(HTML[:half].encode())
        await asyncio.sleep(0.05)  # not a timing assertion: it only splits the body
        await resp.write(HTML[half:].encode())
        await resp.write_eof()
        return resp

    url = await start(aiohttp_server, handler)
    items, error = await collect(request(url, json={}, session=session))
    assert items == []
    assert type(error) is HTTPStatusError
    assert error.status == 502
    assert error.body == HTML


# --------------------------------------------------------------------------- bodies


async def test_one_mebibyte_line_arrives_intact(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    big = "x" * (1024 * 1024)
    payload = b'data: {"big":"' + big.encode() + b'"}\n\ndata: [DONE]\n\n'

    async def handler(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        for start_at in range(0, len(payload), 100_000):
            await resp.write(payload[start_at : start_at + 100_000])
        await resp.write_eof()
        return resp

    url = await start(aiohttp_server, handler)
    items, error = await collect(request(url, json={}, session=session))
    assert error is None
    assert b"".join(items) == payload

    events, error = await collect(request(url, json={}, session=session).pipe(parse_sse()))
    assert error is None
    assert [e.data for e in events] == ['{"big":"' + big + '"}', "[DONE]"]


async def _mock_stream(session: aiohttp.ClientSession, **mock: Any) -> tuple[list[bytes], Any]:
    async with MockServer(tokens=TOKENS) as server:
        body: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "stream": True}
        if mock:
            body["mock"] = mock
        return await collect(
            request(server.base_url + "/chat/completions", json=body, session=session)
        )


def _normalise(body: bytes) -> bytes:
    return re.sub(rb'"created":\d+', b'"created":0', body)


async def test_gzip_encoded_sse_is_decoded(session: aiohttp.ClientSession) -> None:
    plain, error = await _mock_stream(session)
    assert error is None
    zipped, error = await _mock_stream(session, gzip=True)
    assert error is None
    body = b"".join(zipped)
    with pytest.raises(gzip.BadGzipFile):  # it is not the compressed bytes
        gzip.decompress(body)
    assert _normalise(body) == _normalise(b"".join(plain))
    assert body.endswith(b"data: [DONE]\n\n")


async def test_gzip_through_decode_stream_gives_the_text(session: aiohttp.ClientSession) -> None:
    expected = "".join(generate_tokens(MESSAGES, MODEL, TOKENS))
    async with MockServer(tokens=TOKENS) as server:
        body = {"model": MODEL, "messages": MESSAGES, "stream": True, "mock": {"gzip": True}}
        source = request(server.base_url + "/chat/completions", json=body, session=session)
        results, error = await collect(source.pipe(decode_stream(), accumulate()))
    assert error is None
    assert results[0].text == expected
    assert results[0].state == "complete"


# --------------------------------------------------------------------------- broken connections


async def test_connection_dropped_mid_body_is_stream_interrupted(
    session: aiohttp.ClientSession,
) -> None:
    items, error = await _mock_stream(session, drop_after=4)
    assert isinstance(error, StreamInterrupted)
    assert isinstance(error, TransportError)
    body = b"".join(items)
    # the events before the drop did arrive
    assert body.count(b"\n\n") == 4
    assert b"[DONE]" not in body


async def test_connection_refused_is_transport_error(session: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
    items, error = await collect(request(url, json={}, session=session))
    assert items == []
    assert type(error) is TransportError
    assert "127.0.0.1" in str(error)


async def test_connection_refused_without_a_session() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
    items, error = await collect(request(url, json={}))
    assert items == []
    assert type(error) is TransportError
    await until(lambda: not transport_tasks())


def test_public_api_exports_request() -> None:
    assert rxgpt.request is request


def test_aiohttps_own_connect_timeout_says_the_sessions_bound() -> None:
    from rxgpt._transport import SOCKET_CONNECT_TIMEOUT, map_exception

    error = map_exception(aiohttp.ConnectionTimeoutError(), "http://127.0.0.1:9/v1")
    assert isinstance(error, rxgpt.StreamTimeout) and error.phase == "connect"
    assert error.seconds == SOCKET_CONNECT_TIMEOUT and "after 30s" in str(error)
    mine = map_exception(aiohttp.ConnectionTimeoutError(), "u", sock_connect=2.5)
    assert isinstance(mine, rxgpt.StreamTimeout) and mine.seconds == 2.5
