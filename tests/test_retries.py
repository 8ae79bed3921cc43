"""Retries (rxgpt.Retry): only before the first content delta, bounded, honouring the server.

Requests are counted server-side (an aiohttp middleware on the MockServer or on a custom
app). Delays are checked only as behaviour bounds: a retry never starts before the delay
the server asked for (``retry-after-ms``, ``retry-after`` in seconds or as an HTTP date)
and not much later. After every test the harness checks that no task is left behind and
that the connector holds no acquired connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from helpers import (
    CHAT_PATH,
    MESSAGES,
    MESSAGES_PATH,
    MODEL,
    ROLE,
    TIMEOUT,
    Harness,
    Recorder,
    chat,
    full_stream,
    harness_fixture,
    write_sse,
)

from rxgpt import (
    AuthenticationError,
    ChatStream,
    Client,
    ErrorDelta,
    HTTPStatusError,
    RateLimitError,
    ResponseInfo,
    Retry,
    RoleDelta,
    RxgptError,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    TextDelta,
    Timeouts,
    TransportError,
)
from rxgpt._resilience import retry_after
from rxgpt.mock import generate_tokens

SLACK = 0.5  # how much later than asked a retry may start
EPS = 0.005
KEY = "sk-test-retries-0123456789abcdef"
TOKENS = 8
WORDS = generate_tokens(MESSAGES, MODEL, TOKENS)
TEXT = "".join(WORDS)
FAST = Retry(attempts=3, backoff=0.01, jitter=0)
FULL = full_stream(WORDS)

h = harness_fixture(key=KEY, retry=FAST, base="", paths=(CHAT_PATH, MESSAGES_PATH))


def failing_then_ok(
    failures: int, status: int, headers: dict[str, str], error: dict[str, Any] | None = None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The first ``failures`` requests get ``status`` with ``headers``; then a full stream."""
    count = [0]
    body = {"error": error or {"message": "try later", "type": "server_error", "code": None}}

    async def handler(request: web.Request) -> web.StreamResponse:
        count[0] += 1
        if count[0] <= failures:
            await request.read()
            return web.json_response(body, status=status, headers=headers)
        return await write_sse(request, FULL)

    return handler


async def fail(stream: ChatStream, kind: type[RxgptError] = RxgptError) -> Any:
    with pytest.raises(kind) as info:
        await asyncio.wait_for(stream.completion(), TIMEOUT)
    return info.value


# --------------------------------------------------------------------------- success after failures


def _unstamped(items: list[Any]) -> list[Any]:
    """The deltas with ResponseInfo's creation time left out."""
    out = []
    for item in items:
        if isinstance(item, ResponseInfo):
            raw = {k: v for k, v in item.raw.items() if k != "created"}
            item = dataclasses.replace(item, created=None, raw=raw)
        out.append(item)
    return out


async def test_fail_first_two_then_the_third_attempt_succeeds_without_duplicates(
    h: Harness,
) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=3, backoff=0.01))
    clean = Recorder(reference := chat(client))
    await asyncio.wait_for(reference.completion(), TIMEOUT)
    seen.arrivals.clear()

    stream = chat(client, mock={"fail_first": 2, "key": "dup", "status": 500})
    got = Recorder(stream)
    result = await asyncio.wait_for(stream.completion(), TIMEOUT)

    assert seen.requests == 3
    assert result.state == "complete"
    assert result.text == TEXT
    assert got.count(ResponseInfo) == 1
    assert got.count(RoleDelta) == 1
    # what a subscriber sees is a clean run's deltas (the server stamps `created` with the
    # clock, so the two runs may differ there when a second boundary falls between them)
    assert _unstamped(got.items) == _unstamped(clean.items)
    assert got.completed == 1 and got.errors == []
    assert result.deltas == len(clean.items)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
async def test_retried_statuses(h: Harness, status: int) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)
    stream = chat(client, mock={"fail_first": 1, "key": f"s{status}", "status": status})
    assert await asyncio.wait_for(stream.text(), TIMEOUT) == TEXT
    assert seen.requests == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, HTTPStatusError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, HTTPStatusError),
        (422, HTTPStatusError),
    ],
)
async def test_client_errors_are_not_retried(
    h: Harness, status: int, kind: type[HTTPStatusError]
) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=5, backoff=0.01))
    error = await fail(chat(client, mock={"status": status}), HTTPStatusError)
    assert type(error) is kind
    assert error.status == status
    assert error.attempts == 1
    assert seen.requests == 1


# --------------------------------------------------------------------------- bounds


async def test_attempts_bound_counts_the_first_try(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=3, backoff=0.01))
    error = await fail(chat(client, mock={"status": 503}), HTTPStatusError)
    assert error.status == 503
    assert error.attempts == 3
    assert seen.requests == 3
    assert error.partial is not None and error.partial.text == ""


async def test_attempts_one_means_no_retry(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=1))
    error = await fail(chat(client, mock={"status": 500}), HTTPStatusError)
    assert error.attempts == 1 and seen.requests == 1


async def test_max_elapsed_bounds_the_total_time_of_retries(h: Harness) -> None:
    """Every 0.15 s a 500, max_elapsed=0.4: tries at 0, 0.15, 0.3; a 4th would start at 0.45."""
    server, seen = await h.mock(tokens=TOKENS)
    retry = Retry(attempts=10, backoff=0.15, multiplier=1, jitter=0, max_elapsed=0.4)
    client = h.client(server.base_url, retry=retry)
    start = asyncio.get_running_loop().time()
    error = await fail(chat(client, mock={"status": 500}), HTTPStatusError)
    elapsed = asyncio.get_running_loop().time() - start

    assert seen.requests == 3
    assert error.attempts == 3
    assert elapsed < 0.4
    assert all(gap >= 0.15 - EPS for gap in seen.gaps)


async def test_no_retry_when_retry_after_exceeds_max_elapsed(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=5, max_elapsed=0.2))
    start = asyncio.get_running_loop().time()
    error = await fail(chat(client, mock={"status": 429, "retry_after": 0.3}), RateLimitError)
    assert asyncio.get_running_loop().time() - start < 0.2
    assert seen.requests == 1 and error.attempts == 1


async def test_backoff_grows_exponentially_with_jitter(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    retry = Retry(attempts=4, backoff=0.1, multiplier=2, jitter=0.25, max_backoff=0.25)
    client = h.client(server.base_url, retry=retry)
    await fail(chat(client, mock={"status": 500}), HTTPStatusError)
    assert seen.requests == 4
    # delays: 0.1, 0.2, then 0.4 capped at 0.25; each minus up to 25 % of jitter
    for gap, base in zip(seen.gaps, (0.1, 0.2, 0.25), strict=True):
        assert base * 0.75 - EPS <= gap < base + 0.15, (gap, base)


def test_delay_has_jitter_within_its_bounds() -> None:
    retry = Retry(backoff=1.0, multiplier=3, jitter=0.5, max_backoff=5.0)
    error = StreamInterrupted("cut")
    for attempt, base in ((1, 1.0), (2, 3.0), (3, 5.0), (9, 5.0)):
        delays = [retry.delay(attempt, error) for _ in range(200)]
        assert all(base * 0.5 <= d <= base for d in delays)
        assert len(set(delays)) > 100  # random, not a constant
    exact = Retry(backoff=0.2, multiplier=2, jitter=0)
    assert [exact.delay(n, error) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]


# --------------------------------------------------------------------------- server hints


async def test_retry_after_seconds_is_honoured(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)
    stream = chat(client, mock={"fail_first": 1, "key": "ra", "status": 429, "retry_after": 0.3})
    assert await asyncio.wait_for(stream.text(), TIMEOUT) == TEXT
    assert seen.requests == 2
    assert 0.3 - EPS <= seen.gaps[0] < 0.3 + SLACK


async def test_retry_after_ms_wins_over_retry_after(h: Harness) -> None:
    handler = failing_then_ok(1, 429, {"retry-after-ms": "300", "retry-after": "30"})
    url, seen = await h.serve(handler)
    client = h.client(url + "/v1")
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
    assert seen.requests == 2
    assert 0.3 - EPS <= seen.gaps[0] < 0.3 + SLACK


async def test_retry_after_as_an_http_date_is_honoured(h: Harness) -> None:
    when = math.ceil(time.time() + 0.25)  # HTTP dates have whole seconds
    date = email.utils.formatdate(when, usegmt=True)
    url, seen = await h.serve(failing_then_ok(1, 503, {"Retry-After": date}))
    client = h.client(url + "/v1")
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
    assert seen.requests == 2
    assert when - 0.02 <= seen.wall[1] < when + SLACK


async def test_retry_after_beyond_max_retry_after_falls_back_to_backoff(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=2, backoff=0.01, max_retry_after=1))
    stream = chat(client, mock={"fail_first": 1, "key": "far", "status": 429, "retry_after": 100})
    assert await asyncio.wait_for(stream.text(), TIMEOUT) == TEXT
    assert seen.requests == 2 and seen.gaps[0] < 0.3


async def test_x_should_retry_false_on_a_500_stops(h: Harness) -> None:
    url, seen = await h.serve(failing_then_ok(5, 500, {"x-should-retry": "false"}))
    client = h.client(url + "/v1", retry=Retry(attempts=5, backoff=0.01))
    error = await fail(chat(client), HTTPStatusError)
    assert error.status == 500
    assert error.headers.get("x-should-retry") == "false"
    assert seen.requests == 1 and error.attempts == 1


async def test_x_should_retry_true_on_a_400_retries(h: Harness) -> None:
    error = {"message": "bad", "type": "invalid_request_error", "code": None}
    url, seen = await h.serve(failing_then_ok(1, 400, {"X-Should-Retry": "true"}, error))
    client = h.client(url + "/v1")
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
    assert seen.requests == 2


async def test_insufficient_quota_is_never_retried(h: Harness) -> None:
    quota = {
        "message": "You exceeded your current quota.",
        "type": "insufficient_quota",
        "code": "insufficient_quota",
    }
    url, seen = await h.serve(failing_then_ok(5, 429, {"retry-after": "0"}, quota))
    client = h.client(url + "/v1", retry=Retry(attempts=5, backoff=0.01))
    error = await fail(chat(client), RateLimitError)
    assert error.status == 429
    assert error.error_code == "insufficient_quota"
    assert seen.requests == 1 and error.attempts == 1


async def test_insufficient_quota_is_not_retried_even_when_the_server_says_retry(
    h: Harness,
) -> None:
    """ "never retry insufficient_quota": an x-should-retry: true must not override it."""
    quota = {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}
    url, seen = await h.serve(failing_then_ok(5, 429, {"x-should-retry": "true"}, quota))
    client = h.client(url + "/v1", retry=Retry(attempts=3, backoff=0.01))
    error = await fail(chat(client), RateLimitError)
    assert error.error_code == "insufficient_quota"
    assert seen.requests == 1, f"insufficient_quota was retried ({seen.requests} requests)"


def test_retry_after_parsing() -> None:
    assert retry_after({"Retry-After-Ms": "250"}) == 0.25
    assert retry_after({"retry-after-ms": "soon", "retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "1.5"}) == 1.5
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after({"retry-after": past}) == 0.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    value = retry_after({"retry-after": future})
    assert value is not None and 28 <= value <= 30
    assert retry_after({"retry-after": "not a date"}) is None
    assert retry_after({}) is None


def test_should_retry_table() -> None:
    retry = Retry()

    def status(code: int, **headers: str) -> HTTPStatusError:
        return HTTPStatusError(code, headers=headers)

    assert retry.should_retry(status(500))
    assert retry.should_retry(status(599))
    assert not retry.should_retry(status(400))
    assert not retry.should_retry(status(503, **{"X-Should-Retry": "False"}))
    assert retry.should_retry(status(418, **{"x-should-retry": " TRUE "}))
    assert retry.should_retry(StreamTimeout("first_byte", 1))
    assert retry.should_retry(StreamTimeout("idle", 1))
    assert not retry.should_retry(StreamTimeout("total", 1))
    assert retry.should_retry(StreamInterrupted("cut"))
    assert retry.should_retry(TransportError("refused"))
    assert retry.should_retry(StreamError({"type": "overloaded_error", "message": "busy"}))
    assert not retry.should_retry(
        StreamError({"type": "rate_limit_error", "code": "insufficient_quota", "message": "$"})
    )
    assert not retry.should_retry(StreamError({"type": "invalid_request_error"}))
    assert not retry.should_retry(ValueError("a bug"))


# --------------------------------------------------------------------------- connection errors


async def test_connection_closed_without_an_answer_is_retried(h: Harness) -> None:
    connections = [0]

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        await reader.read(1)  # the request started; close without a status line
        writer.close()

    port = await h.raw_server(hang_up)
    client = h.client(f"http://127.0.0.1:{port}/v1")
    error = await fail(chat(client), TransportError)
    assert isinstance(error, StreamInterrupted)
    assert error.attempts == 3
    assert connections[0] == 3


async def test_connection_refused_is_retried_and_typed(h: Harness) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    retry = Retry(attempts=3, backoff=0.05, multiplier=1, jitter=0)
    client = h.client(f"http://127.0.0.1:{port}/v1", retry=retry)
    start = asyncio.get_running_loop().time()
    error = await fail(chat(client), TransportError)
    assert type(error) is TransportError
    assert error.attempts == 3
    assert asyncio.get_running_loop().time() - start >= 2 * 0.05 - EPS
    assert f"127.0.0.1:{port}" in str(error)


# --------------------------------------------------------------------------- after content


@pytest.mark.parametrize("failure", ["drop-after-role", "empty-body"])
async def test_a_body_broken_before_content_is_retried_on_a_single_connection(
    h: Harness, failure: str
) -> None:
    """StreamInterrupted before any content: retried; the broken connections do not
    hold the only connection slot."""
    count = [0]

    async def handler(request: web.Request) -> web.StreamResponse:
        count[0] += 1
        if count[0] == 3:
            return await write_sse(request, FULL)
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if failure == "empty-body":
            await response.write_eof()
            return response
        await response.write(ROLE)
        await asyncio.sleep(0.01)
        assert request.transport is not None
        request.transport.close()  # abort: the chunked body never ends
        return response

    url, seen = await h.serve(handler)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        client = Client(url + "/v1", api_key=KEY, session=session, retry=FAST)
        stream = chat(client)
        got = Recorder(stream)
        result = await asyncio.wait_for(stream.completion(), TIMEOUT)
        assert result.text == TEXT
        assert seen.requests == 3
        assert got.count(RoleDelta) == 1
        assert got.count(ResponseInfo) == 1


async def test_no_silent_retry_once_content_arrived(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=5, backoff=0.01))
    stream = chat(client, mock={"drop_after": 4})  # role + 3 tokens, then the socket closes
    got = Recorder(stream)
    error = await fail(stream, StreamInterrupted)

    assert seen.requests == 1
    assert error.attempts == 1
    assert error.partial is not None
    assert error.partial.text == "".join(WORDS[:3])
    assert error.partial.state == "truncated"
    assert "".join(d.text for d in got.items if isinstance(d, TextDelta)) == "".join(WORDS[:3])
    assert got.errors == [error]


async def test_in_band_error_after_content_is_final(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=5, backoff=0.01))
    error = await fail(chat(client, mock={"error_at": 3}), StreamError)
    assert error.retryable  # a server_error: retryable in kind, but content had arrived
    assert seen.requests == 1 and error.attempts == 1
    assert error.partial is not None and error.partial.text == "".join(WORDS[:2])


async def test_in_band_overloaded_before_content_is_retried_anthropic(h: Harness) -> None:
    """Anthropic's overloaded_error as the first event: retried up to the attempts bound."""
    server, seen = await h.mock(tokens=TOKENS)
    client = Client(server.url, api_key=KEY, provider="anthropic", session=h.session, retry=FAST)
    stream = chat(client, mock={"error_at": 0})
    error = await fail(stream, StreamError)
    assert error.error_type == "overloaded_error"
    assert error.retryable
    assert seen.requests == 3, "an in-band overloaded error before any content was not retried"
    assert error.attempts == 3


async def test_in_band_overloaded_after_metadata_is_retried_without_duplicates(
    h: Harness,
) -> None:
    """message_start (metadata), then overloaded_error; the second attempt streams fine."""
    start = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
        b'"type":"message","role":"assistant","model":"claude-test","content":[],'
        b'"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
    )
    overloaded = (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"Overloaded"}}\n\n'
    )
    body = start + b"".join(
        [
            b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
            b'"content_block":{"type":"text","text":""}}\n\n',
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"Hello"}}\n\n',
            b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
            b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":'
            b'"end_turn","stop_sequence":null},"usage":{"output_tokens":1}}\n\n',
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
        ]
    )
    count = [0]

    async def handler(request: web.Request) -> web.StreamResponse:
        count[0] += 1
        return await write_sse(request, start + overloaded if count[0] == 1 else body)

    url, seen = await h.serve(handler)
    client = Client(url, api_key=KEY, provider="anthropic", session=h.session, retry=FAST)
    stream = chat(client)
    got = Recorder(stream)
    result = await asyncio.wait_for(stream.completion(), TIMEOUT)

    assert seen.requests == 2
    assert result.text == "Hello"
    # one message_start reached subscribers (message_delta adds a metadata-only update)
    starts = [d for d in got.items if isinstance(d, ResponseInfo) and d.id is not None]
    assert [d.id for d in starts] == ["msg_1"]
    assert got.count(RoleDelta) == 1
    assert got.count(ErrorDelta) == 0  # the retried attempt's error is not shown


async def test_openai_in_band_server_error_before_content_is_retried(h: Harness) -> None:
    error = b'data: {"error":{"message":"overloaded","type":"server_error","code":null}}\n\n'
    count = [0]

    async def handler(request: web.Request) -> web.StreamResponse:
        count[0] += 1
        return await write_sse(request, ROLE + error if count[0] == 1 else FULL)

    url, seen = await h.serve(handler)
    client = h.client(url + "/v1")
    stream = chat(client)
    got = Recorder(stream)
    result = await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert seen.requests == 2
    assert result.text == TEXT
    assert got.count(RoleDelta) == 1
    assert got.count(ResponseInfo) == 1


async def test_in_band_insufficient_quota_is_not_retried(h: Harness) -> None:
    quota = (
        b'data: {"error":{"message":"quota","type":"rate_limit_error",'
        b'"code":"insufficient_quota"}}\n\n'
    )

    async def handler(request: web.Request) -> web.StreamResponse:
        return await write_sse(request, quota)

    url, seen = await h.serve(handler)
    client = h.client(url + "/v1", retry=Retry(attempts=4, backoff=0.01))
    error = await fail(chat(client), StreamError)
    assert not error.retryable
    assert seen.requests == 1 and error.attempts == 1


# --------------------------------------------------------------------------- per call, logs, cancel


async def test_per_call_retry_overrides_the_clients(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=1))
    error = await fail(chat(client, mock={"status": 502}, retry=FAST), HTTPStatusError)
    assert seen.requests == 3 and error.attempts == 3

    seen.arrivals.clear()
    generous = h.client(server.base_url, retry=Retry(attempts=4, backoff=0.01))
    error = await fail(chat(generous, mock={"status": 502}, retry=Retry(attempts=1)))
    assert seen.requests == 1 and error.attempts == 1


async def test_each_retry_is_logged(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    server, _ = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url)
    caplog.set_level(logging.INFO, logger="rxgpt")
    await fail(chat(client, mock={"status": 503}), HTTPStatusError)
    retries = [r for r in caplog.records if r.name == "rxgpt" and "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert "attempt 1 failed" in retries[0].getMessage()
    assert "HTTP 503" in retries[1].getMessage()


async def test_cancel_during_the_backoff_sends_no_more_requests(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=Retry(attempts=3))
    stream = chat(client, mock={"status": 429, "retry_after": 0.3})
    task = asyncio.create_task(stream.completion())
    await seen.wait_requests(1)
    await asyncio.sleep(0.05)  # the 429 arrived; the retry waits 0.3 s
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.4)
    assert seen.requests == 1
    assert stream.partial.state == "cancelled"
    await h.settled(within=0.1)


async def test_timeout_retries_respect_the_timeouts_of_each_attempt(h: Harness) -> None:
    """first_byte applies to every attempt, and the error says which phase ended it."""

    async def headers_only(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    url, seen = await h.serve(headers_only)
    client = h.client(url + "/v1", timeouts=Timeouts(first_byte=0.1, idle=None))
    error = await fail(chat(client), StreamTimeout)
    assert error.phase == "first_byte"
    assert seen.requests == 3 and error.attempts == 3
    assert all(gap >= 0.1 - EPS for gap in seen.gaps)
