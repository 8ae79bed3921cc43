"""The Client's lifecycle and its per-call overrides, against the embedded MockServer.

- A closed client (``aclose()`` or the end of ``async with``) raises ClientClosedError
  when used again; one never opened works on first use; a caller's session stays open.
- ``timeouts=None`` / ``retry=None`` (per call or on the client) turn deadlines / retries
  off, while omitting them keeps the client's (``Timeouts()`` / ``Retry()`` by default).

Every wait is bounded; the harness checks after each test that no task is left behind.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from helpers import MESSAGES, MODEL, TIMEOUT, Harness, chat, failure, harness_fixture

from rxgpt import (
    Client,
    HTTPStatusError,
    Retry,
    RxgptError,
    StreamCancelled,
    StreamTimeout,
    Timeouts,
)
from rxgpt._errors import ClientClosedError
from rxgpt.mock import MockServer, generate_tokens

KEY = "sk-test-lifecycle-0123456789abcdef"
TOKENS = 12
TEXT = "".join(generate_tokens(MESSAGES, MODEL, TOKENS))
FAST = Retry(attempts=3, backoff=0.01, jitter=0)
UNAVAILABLE = {"status": 503}
STALL = {"stall_after": 3}  # role + 2 tokens, then silence until the client goes away
IDLE = Timeouts(idle=0.3)
BOUND = 1.5  # the test's own bound on a stream that has no deadline

h = harness_fixture(key=KEY, retry=FAST)


def own_client(server: MockServer, **kwargs: Any) -> Client:
    """A client on its own (lazily created) connection pool."""
    return Client(server.base_url, api_key=KEY, **kwargs)


# --------------------------------------------------------------------------- closed clients


async def test_a_client_left_by_async_with_raises_client_closed_error(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    async with own_client(server) as client:
        assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
        pool = client.session()
    assert client.closed
    assert pool.closed  # the pool the client created is closed with it

    with pytest.raises(ClientClosedError, match="closed") as caught:
        chat(client)
    assert isinstance(caught.value, RxgptError)
    assert isinstance(caught.value, RuntimeError)
    with pytest.raises(ClientClosedError, match="closed"):
        client.session()
    with pytest.raises(ClientClosedError, match="closed"):
        async with client:
            pass
    assert seen.requests == 1  # no new session, no new request


async def test_aclose_closes_for_good_and_twice_is_harmless(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = own_client(server)
    await client.aclose()
    await client.aclose()
    with pytest.raises(ClientClosedError, match="closed"):
        chat(client)
    assert seen.requests == 0


async def test_a_stream_started_after_its_client_closed_fails_with_client_closed_error(
    h: Harness,
) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = own_client(server)
    stream = chat(client)  # prepared while open, started once closed
    await client.aclose()
    error = await failure(stream)
    assert isinstance(error, ClientClosedError)
    assert "closed" in str(error)
    assert seen.requests == 0


async def test_a_client_never_opened_works_on_first_use(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = own_client(server)  # no async with: the session is made on first use
    assert not client.closed
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
    assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
    await client.aclose()
    assert seen.requests == 2


def test_a_client_made_outside_any_loop_works_inside_one() -> None:
    client = Client("http://127.0.0.1:9/v1", api_key=KEY)  # no running loop here

    async def use() -> str:
        async with MockServer(tokens=TOKENS) as server:
            client.base_url = server.base_url
            async with client:
                return await asyncio.wait_for(chat(client).text(), TIMEOUT)

    assert asyncio.run(use()) == TEXT
    assert client.closed


async def test_the_callers_session_stays_open_after_aclose(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    async with aiohttp.ClientSession() as session:
        async with Client(server.base_url, api_key=KEY, session=session) as client:
            assert await asyncio.wait_for(chat(client).text(), TIMEOUT) == TEXT
        assert not session.closed  # not the client's to close
        with pytest.raises(ClientClosedError, match="closed"):
            chat(client)  # ... but the client itself is closed
        with pytest.raises(ClientClosedError, match="closed"):
            client.session()
        # the session still works, for another client
        async with Client(server.base_url, api_key=KEY, session=session) as other:
            assert await asyncio.wait_for(chat(other).text(), TIMEOUT) == TEXT
        assert not session.closed
    assert seen.requests == 2


# --------------------------------------------------------------------------- defaults


def test_omitted_timeouts_and_retry_are_the_defaults_and_none_is_none() -> None:
    client = Client("http://127.0.0.1:9/v1", api_key=KEY)
    assert client.timeouts == Timeouts()
    assert client.retry == Retry()
    bare = Client("http://127.0.0.1:9/v1", api_key=KEY, timeouts=None, retry=None)
    assert bare.timeouts is None
    assert bare.retry is None


# --------------------------------------------------------------------------- retry=None


async def test_retry_none_per_call_makes_one_attempt_while_the_client_retries(
    h: Harness,
) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=FAST)

    error = await failure(chat(client, mock=UNAVAILABLE))
    assert isinstance(error, HTTPStatusError) and error.status == 503
    assert error.attempts == 3  # the client's default retries
    assert seen.requests == 3

    error = await failure(chat(client, retry=None, mock=UNAVAILABLE))
    assert isinstance(error, HTTPStatusError) and error.status == 503
    assert error.attempts == 1  # None: no retry for this call
    assert seen.requests == 4


async def test_retry_none_on_the_client_is_one_attempt_unless_a_call_asks(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, retry=None)

    error = await failure(chat(client, mock=UNAVAILABLE))
    assert error.attempts == 1
    assert seen.requests == 1

    error = await failure(chat(client, retry=FAST, mock=UNAVAILABLE))
    assert error.attempts == 3
    assert seen.requests == 4


# --------------------------------------------------------------------------- timeouts=None


async def still_running_at_the_bound(client: Client, **params: Any) -> None:
    """A stalled stream outlives the test's own bound, then is cancelled by the test."""
    async with chat(client, mock=STALL, **params) as stream:
        task = asyncio.ensure_future(stream.completion())
        done, _ = await asyncio.wait({task}, timeout=BOUND)
        assert not done, "the stream ended, though it had no deadline"
        assert not stream.done
        assert stream.partial.text == "".join(generate_tokens(MESSAGES, MODEL, TOKENS)[:2])
    with pytest.raises(StreamCancelled):  # leaving `async with` cancelled it
        await asyncio.wait_for(task, TIMEOUT)


async def test_timeouts_none_per_call_turns_the_clients_idle_deadline_off(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, timeouts=IDLE, retry=None)

    error = await failure(chat(client, mock=STALL))
    assert isinstance(error, StreamTimeout)
    assert error.phase == "idle"
    assert error.seconds == IDLE.idle

    await still_running_at_the_bound(client, timeouts=None)
    await seen.wait_ended(2)
    assert seen.requests == 2


async def test_timeouts_none_on_the_client_means_no_deadline(h: Harness) -> None:
    server, seen = await h.mock(tokens=TOKENS)
    client = h.client(server.base_url, timeouts=None, retry=None)
    await still_running_at_the_bound(client)

    error = await failure(chat(client, timeouts=IDLE, mock=STALL))  # a call can ask for one
    assert isinstance(error, StreamTimeout)
    assert error.phase == "idle"
    await seen.wait_ended(2)
