"""API keys never show: not in reprs, error messages, logs, DeltaLogger output or recordings.

Servers here are hostile on purpose: they echo the key they received in error bodies,
in-band errors, response headers and the stream itself. Two keys are used: one shaped
like an OpenAI project key (caught by the patterns too) and an opaque gateway token
(only known because the Client registered it).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import reactivex
from aiohttp import web
from helpers import (
    CHAT_PATH,
    MESSAGES,
    MESSAGES_PATH,
    MODEL,
    ONE,
    TIMEOUT,
    Handler,
    Harness,
    chat,
    failure,
    full_stream,
    harness_fixture,
    write_sse,
)
from hypothesis import given
from hypothesis import strategies as st

from rxgpt import (
    AuthenticationError,
    Client,
    CredentialsConflictError,
    DecodeError,
    Delta,
    ErrorDelta,
    HTTPStatusError,
    RateLimitError,
    Retry,
    RxgptError,
    StreamError,
    StreamTimeout,
    Timeouts,
    TransportError,
    decode_stream,
    request,
)
from rxgpt._observers import DeltaLogger
from rxgpt._recording import record, replay, write_request
from rxgpt._secrets import redact

PROJECT_KEY = "sk-proj-" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd"
GATEWAY_KEY = "gw7Tok" + "QzXy9876543210LmNoPqRsTuVwXyZaBcDeFgHiJk"
KEYS = [pytest.param(PROJECT_KEY, id="sk-proj"), pytest.param(GATEWAY_KEY, id="opaque")]


# --------------------------------------------------------------------------- helpers


class KeyHarness(Harness):
    """The shared harness; ``serve`` and ``raw`` return the server's URL, and ``client``
    takes the key to present (adding /v1 for OpenAI)."""

    async def serve(self, handler: Handler) -> str:  # type: ignore[override]
        """Serve ``handler`` for OpenAI and Anthropic paths; returns the server's URL."""
        url, _ = await super().serve(handler)
        return url

    async def raw(self, answer: bytes) -> str:  # type: ignore[override]
        url, _ = await super().raw(answer)
        return url

    def client(self, url: str, key: str, **kwargs: Any) -> Client:  # type: ignore[override]
        provider = kwargs.get("provider", "openai")
        base = url + "/v1" if provider == "openai" else url
        return super().client(base, api_key=key, **kwargs)


h = harness_fixture(KeyHarness, base="", paths=(CHAT_PATH, MESSAGES_PATH))


def presented_key(request: web.Request) -> str:
    bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return request.headers.get("x-api-key") or bearer


def assert_clean(key: str, *texts: object) -> None:
    for text in texts:
        shown = text if isinstance(text, str) else repr(text)
        assert key not in shown, f"the API key leaked into: {shown[:300]!r}"
        assert key[-20:] not in shown, f"part of the API key leaked into: {shown[:300]!r}"


def assert_error_clean(key: str, error: BaseException) -> None:
    assert_clean(key, str(error), repr(error), error.args)
    if isinstance(error, RxgptError):
        assert_clean(key, error.message, repr(error.partial))
    if isinstance(error, HTTPStatusError):
        assert_clean(key, error.body, error.url, json.dumps(error.error))
        for name, value in error.headers.items():
            if name.lower() in ("authorization", "x-api-key", "set-cookie"):
                assert value == "***"
    if isinstance(error, StreamError):
        assert_clean(key, json.dumps(error.error))


# --------------------------------------------------------------------------- echoing servers


async def echo_401(request: web.Request) -> web.Response:
    key = presented_key(request)
    body = {
        "error": {
            "message": f"Incorrect API key provided: {key}. You sent 'Bearer {key}'.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "param": f"x-api-key: {key}",
        }
    }
    return web.json_response(
        body, status=401, headers={"Authorization": f"Bearer {key}", "x-api-key": key}
    )


async def echo_429(request: web.Request) -> web.Response:
    key = presented_key(request)
    body = {"error": {"message": f"Rate limit for key {key}", "type": "rate_limit_error"}}
    return web.json_response(body, status=429, headers={"retry-after-ms": "10"})


async def echo_in_band(request: web.Request) -> web.StreamResponse:
    key = presented_key(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    error = {"error": {"message": f"key {key} was revoked", "type": "server_error"}}
    await response.write(b"data: " + json.dumps(error).encode() + b"\n\n")
    await response.write_eof()
    return response


async def echo_garbage(request: web.Request) -> web.StreamResponse:
    key = presented_key(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(f"data: not json, auth was Bearer {key} ({key})\n\n".encode())
    await response.write_eof()
    return response


async def echo_html(request: web.Request) -> web.Response:
    key = presented_key(request)
    page = f"<html><body>Proxy error for api_key={key}; token {key}</body></html>"
    return web.Response(text=page, content_type="text/html")


async def headers_only(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


HANDLERS = [
    pytest.param(echo_401, AuthenticationError, id="401-echo"),
    pytest.param(echo_429, RateLimitError, id="429-echo"),
    pytest.param(echo_in_band, StreamError, id="in-band-echo"),
    pytest.param(echo_garbage, DecodeError, id="garbage-echo"),
    pytest.param(echo_html, DecodeError, id="html-echo"),
    pytest.param(headers_only, StreamTimeout, id="timeout"),
]


# --------------------------------------------------------------------------- reprs and errors


@pytest.mark.parametrize("key", KEYS)
def test_the_key_is_not_in_the_clients_repr(key: str) -> None:
    client = Client("http://127.0.0.1:9/v1", api_key=key)
    assert_clean(key, repr(client), str(client), f"{client!r}")
    assert "api_key=<set>" in repr(client)
    anthropic = Client("http://127.0.0.1:9", api_key=key, provider="anthropic")
    assert_clean(key, repr(anthropic))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(("handler", "kind"), HANDLERS)
@pytest.mark.parametrize("key", KEYS)
async def test_errors_never_show_the_key(
    h: Harness,
    key: str,
    handler: Callable[[web.Request], Awaitable[Any]],
    kind: type[RxgptError],
    provider: str,
) -> None:
    url = await h.serve(handler)
    client = h.client(url, key, provider=provider, timeouts=Timeouts(first_byte=0.1, idle=None))
    stream = chat(client)
    seen: list[Delta] = []
    stream.subscribe(seen.append, lambda _: None)
    error = await failure(stream)
    assert isinstance(error, kind), repr(error)
    assert_error_clean(key, error)
    assert_clean(key, repr(stream.partial), repr(seen))
    assert_clean(key, *[json.dumps(d.error) for d in seen if isinstance(d, ErrorDelta)])


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("key", KEYS)
async def test_transport_errors_quoting_the_request_headers_hide_the_key(
    h: Harness, key: str, provider: str
) -> None:
    """A broken body makes aiohttp raise an error whose repr holds the request headers."""
    first = b'data: {"choices":[]}\n\n'
    body = f"{len(first):x}\r\n".encode() + first + b"\r\nzz-not-a-size\r\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked"
    url = await h.raw(head + b"\r\n\r\n" + body)
    client = h.client(url, key, provider=provider)
    error = await failure(chat(client))
    assert isinstance(error, TransportError), repr(error)
    assert_error_clean(key, error)


@pytest.mark.parametrize("key", KEYS)
async def test_connection_errors_with_the_key_in_the_url_hide_it(h: Harness, key: str) -> None:
    client = Client(f"http://127.0.0.1:9/v1?key={key}", api_key=key, session=h.session, retry=ONE)
    error = await failure(chat(client))
    assert isinstance(error, TransportError)
    assert_error_clean(key, error)
    assert "127.0.0.1:9" in str(error)


def test_redact_covers_the_shapes_keys_travel_in() -> None:
    Client("http://127.0.0.1:9", api_key=GATEWAY_KEY)  # registers the opaque key
    texts = [
        f"Authorization: Bearer {PROJECT_KEY}",
        f"{{'x-api-key': '{PROJECT_KEY}'}}",
        f'"api_key": "{PROJECT_KEY}"',
        f"x-goog-api-key={PROJECT_KEY}",
        f"plain {GATEWAY_KEY} inside",
        f"url?key={GATEWAY_KEY}&x=1",
    ]
    for text in texts:
        cleaned = redact(text)
        assert PROJECT_KEY not in cleaned and GATEWAY_KEY not in cleaned, cleaned
        assert "***" in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "http://alice:pw-unregistered-1@127.0.0.1:9/v1",
        "redis://:pw-unregistered-1@127.0.0.1:6379/0",
        "https://gw.example/v1beta/models/m:streamGenerateContent?alt=sse&key=pw-unregistered-1",
        "http://127.0.0.1:9/v1?api_key=pw-unregistered-1#x",
        "rediss://user:pw-unregistered-1@host/1 and ?token=pw-unregistered-1&x=1",
        "redis://:pw-unregistered-1@@/x@host:6379/0",
        "'http://u:pw-unregistered-1'\"x@host/v1'",
    ],
)
def test_redact_hides_credentials_in_urls_it_was_never_told_about(text: str) -> None:
    cleaned = redact(text)
    assert "pw-unregistered-1" not in cleaned and "***" in cleaned
    assert "127.0.0.1" in cleaned or "example" in cleaned or "host" in cleaned


def test_redact_leaves_urls_without_credentials_and_mail_addresses_alone() -> None:
    for text in ["http://127.0.0.1:8000/v1?alt=sse", "write to a@b.example", "redis://h:1/0"]:
        assert redact(text) == text


def test_the_chat_command_never_prints_a_password_from_the_base_url() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rxgpt",
            "chat",
            "hi",
            "--retries",
            "0",
            "--base-url",
            "http://alice:pw-unregistered-2@127.0.0.1:9/v1?key=pw-unregistered-3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and done.stderr.strip()
    assert "pw-unregistered" not in done.stderr + done.stdout, done.stderr


# --------------------------------------------------------------------------- logs


@pytest.mark.parametrize("key", KEYS)
async def test_delta_logger_output_of_a_failing_stream_has_no_key(h: Harness, key: str) -> None:
    url = await h.serve(echo_in_band)
    client = h.client(url, key)
    stream = chat(client)
    out = io.StringIO()
    stream.subscribe(DeltaLogger(out))
    error = await failure(stream)
    assert isinstance(error, StreamError)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[-1]["type"] == "end" and lines[-1]["state"] == "error"
    assert any(line["type"] == "ErrorDelta" for line in lines)
    assert "revoked" in out.getvalue()  # the message is there, only the key is masked
    assert_clean(key, out.getvalue())

    rejected = chat(h.client(await h.serve(echo_401), key))
    out401 = io.StringIO()
    rejected.subscribe(DeltaLogger(out401))
    await failure(rejected)
    assert "Incorrect API key" in out401.getvalue()
    assert_clean(key, out401.getvalue())


@pytest.mark.parametrize("key", KEYS)
async def test_debug_logs_of_a_retried_stream_have_no_key(
    h: Harness, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    count = [0]

    async def handler(request: web.Request) -> web.StreamResponse:
        count[0] += 1
        if count[0] < 3:
            return await echo_429(request)
        return await echo_in_band(request)

    url = await h.serve(handler)
    client = h.client(url, key, retry=Retry(attempts=3, backoff=0.01))
    caplog.set_level(logging.DEBUG)
    stream = chat(client)

    def broken_handler(error: Exception) -> None:  # the fan-out logs what it raises
        raise RuntimeError(f"this subscriber failed on {error!r}")

    stream.subscribe(lambda _: None, broken_handler)
    error = await failure(stream)
    assert isinstance(error, StreamError)
    assert count[0] == 3
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert any(r.exc_info for r in caplog.records)  # the subscriber's traceback is logged
    assert_clean(key, caplog.text)
    for log in caplog.records:
        assert_clean(key, log.getMessage(), repr(log.args))


# --------------------------------------------------------------------------- recordings


async def _record_stream(
    h: Harness, url: str, key: str, recording: Path, provider: str = "openai"
) -> None:
    client = h.client(url, key, provider=provider)
    params = {"user": f"{key}", "metadata": {"api_key": key}}
    req = client.provider.request(client.base_url, key, MODEL, MESSAGES, params)
    write_request(
        recording.with_suffix(".request.json"), url=req.url, headers=req.headers, body=req.body
    )
    done = asyncio.Event()
    with recording.open("wb") as file:
        source = request(req.url, json=req.body, headers=req.headers, session=h.session)
        source.pipe(record(file), decode_stream(client.provider.protocol)).subscribe(
            None, lambda _: done.set(), done.set
        )
        await asyncio.wait_for(done.wait(), TIMEOUT)


def echo_stream(split: int | None = None) -> Callable[[web.Request], Awaitable[Any]]:
    """A stream whose events quote the key (``split``: the key arrives in two reads)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        key = presented_key(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        content = {"role": "assistant", "content": f"echo of {key} and Bearer {key}"}
        event = b"data: " + json.dumps({"choices": [{"index": 0, "delta": content}]}).encode()
        event += b"\n\n: debug key=" + key.encode() + b"\n\ndata: [DONE]\n\n"
        cut = [len(event)] if split is None else [event.index(key.encode()) + split, len(event)]
        start = 0
        for end in cut:
            await response.write(event[start:end])
            await asyncio.sleep(0.05)  # separate network reads
            start = end
        await response.write_eof()
        return response

    return handler


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("key", KEYS)
async def test_recordings_and_request_files_have_no_key(
    h: Harness, key: str, provider: str, tmp_path: Path
) -> None:
    url = await h.serve(echo_stream())
    recording = tmp_path / "stream.sse"
    await _record_stream(h, url, key, recording, provider)

    saved = json.loads(recording.with_suffix(".request.json").read_text())
    lowered = {k.lower(): v for k, v in saved["headers"].items()}
    masked = "authorization" if provider == "openai" else "x-api-key"
    assert lowered[masked] == "***"
    assert saved["body"]["model"] == MODEL
    for path in (recording, recording.with_suffix(".request.json")):
        assert_clean(key, path.read_bytes().decode("utf-8", "replace"))
    assert recording.stat().st_size > 50  # something was recorded


async def test_a_redacted_recording_still_replays(h: Harness, tmp_path: Path) -> None:
    url = await h.serve(echo_stream())
    recording = tmp_path / "stream.sse"
    await _record_stream(h, url, PROJECT_KEY, recording)
    deltas: list[Delta] = []
    done = asyncio.Event()
    replay(recording, chunk_size=5).pipe(decode_stream()).subscribe(
        deltas.append, lambda _: done.set(), done.set
    )
    await asyncio.wait_for(done.wait(), TIMEOUT)
    text = "".join(getattr(d, "text", "") for d in deltas)
    assert text.startswith("echo of ")
    assert PROJECT_KEY not in text and "***" in text


async def test_a_key_split_across_network_reads_is_not_recorded(h: Harness, tmp_path: Path) -> None:
    """The server writes the key in two pieces ("...sk-pr" / "oj-..."), 50 ms apart."""
    key = PROJECT_KEY
    url = await h.serve(echo_stream(split=5))
    recording = tmp_path / "split.sse"
    await _record_stream(h, url, key, recording)
    assert_clean(key, recording.read_bytes().decode("utf-8", "replace"))


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("cut", [5, 20])
def test_record_redacts_a_key_split_between_two_chunks(key: str, cut: int) -> None:
    Client("http://127.0.0.1:9", api_key=key)  # registers the key
    data = f"data: token {key} end\n\n".encode()
    at = data.index(key.encode()) + cut
    file = io.BytesIO()
    passed: list[bytes] = []
    reactivex.from_iterable([data[:at], data[at:]]).pipe(record(file)).subscribe(passed.append)
    assert b"".join(passed) == data  # the pipeline itself gets the bytes untouched
    assert_clean(key, file.getvalue().decode())


@pytest.mark.parametrize("piece", ["a", "a://", "http://x", "a://@", "sk-", "?key=", "Bearer "])
def test_redact_is_linear_on_hostile_text(piece: str) -> None:
    """A 1 MiB error body of one piece repeated: a backtracking pattern took minutes on
    such text (quadratic); the scan ends well inside the test's timeout."""
    text = piece * ((1 << 20) // len(piece))
    assert len(redact(text)) <= len(text) + 3 * len(text) // len(piece)


@given(
    st.text(st.characters(blacklist_categories=["Zs", "Zl", "Zp", "Cc"]), max_size=30),
    st.text(min_size=0, max_size=40),
    st.text(min_size=0, max_size=40),
)
def test_redact_hides_any_password_in_any_url(password: str, before: str, after: str) -> None:
    password = "pw-" + password  # (a password holds no white space: a URL cannot)
    url = f"redis://user:{password}@127.0.0.1:6379/0"
    cleaned = redact(f"{before} {url} {after}")
    assert password not in cleaned or password in before or password in after


# --------------------------------------------------------------------------- credentials in the URL


def _with_user_info(url: str, password: str) -> str:
    return url.replace("http://", f"http://alice:{password}@", 1)


def test_a_password_in_the_base_url_is_not_in_the_clients_repr() -> None:
    client = Client("http://alice:pw-in-repr-1@127.0.0.1:9/v1", api_key=GATEWAY_KEY)
    assert "pw-in-repr-1" not in repr(client)
    assert "127.0.0.1:9/v1" in repr(client)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_credentials_in_the_url_and_an_authorization_header_fail_before_sending(
    h: Harness, provider: str
) -> None:
    """HTTP has one Authorization header: a URL's user-info and an API key sent as a
    bearer token (or a header of the caller's) cannot both go. One typed error, no
    attempt on the wire, no retry, no password in it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await write_sse(request, full_stream(["x"]))

    server, seen = await Harness.serve(h, handler)
    url = _with_user_info(server if provider == "anthropic" else server + "/v1", "pw-clash-7")
    headers = {"authorization": "Bearer " + GATEWAY_KEY} if provider == "anthropic" else None
    client = Client(
        url, api_key=GATEWAY_KEY, provider=provider, session=h.session, headers=headers,
        retry=Retry(attempts=3, backoff=0.01),
    )  # fmt: skip
    error = await failure(chat(client))
    assert isinstance(error, CredentialsConflictError) and isinstance(error, ValueError)
    assert error.attempts == 1
    assert error.partial is not None and error.partial.state == "error"
    assert "Authorization" in str(error) and "user:password@" in str(error)
    assert_error_clean("pw-clash-7", error)
    assert seen.requests == 0


async def test_request_refuses_both_credentials_at_once() -> None:
    with pytest.raises(CredentialsConflictError, match="keep one of them") as caught:
        request("http://bob:pw-clash-8@127.0.0.1:9/v1", headers={"AUTHORIZATION": "Basic eA=="})
    assert "pw-clash-8" not in str(caught.value)
    # an "@" that is not user-info, or no Authorization header: nothing to refuse
    request("http://127.0.0.1:9/v1/chat?who=a@b", headers={"Authorization": "Bearer x"})
    request("http://bob:pw@127.0.0.1:9/v1", headers={"X-Api-Key": "k"})


async def test_credentials_in_the_url_without_an_api_key_are_sent_as_basic_auth(
    h: Harness,
) -> None:
    """A server behind a proxy that asks for Basic auth, and no API key: the URL's
    user-info is the credential (as aiohttp and httpx send it)."""
    presented: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        presented.append(request.headers.get("Authorization", ""))
        return await write_sse(request, full_stream(["hello"]))

    server, _ = await Harness.serve(h, handler)
    client = Client(_with_user_info(server + "/v1", "pw-basic-9"), api_key="", session=h.session)
    result = await asyncio.wait_for(chat(client).completion(), TIMEOUT)
    assert result.text == "hello"
    assert presented == ["Basic " + base64.b64encode(b"alice:pw-basic-9").decode()]


def test_the_chat_command_says_in_one_line_that_two_credentials_clash() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "rxgpt", "chat", "hi", "--api-key", "sk-clash",
         "--base-url", "http://alice:pw-clash-10@127.0.0.1:9/v1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "CredentialsConflictError" in lines[0] and "Traceback" not in done.stderr
    assert "pw-clash-10" not in done.stderr + done.stdout


async def test_a_redirect_to_a_url_with_credentials_while_the_key_is_kept_is_refused(
    h: Harness,
) -> None:
    """A same-origin redirect keeps the API key (Authorization); a Location that also
    holds user:password@ would make two credentials: one typed error, not retried, the
    redirect's target never requested, no password in it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/moved"):
            return await write_sse(request, full_stream(["x"]))
        target = request.url.with_user("alice").with_password("pw-hop-11").with_path("/moved")
        raise web.HTTPTemporaryRedirect(str(target))

    server, seen = await Harness.serve(h, handler)
    client = Client(
        server + "/v1", api_key=GATEWAY_KEY, session=h.session,
        retry=Retry(attempts=3, backoff=0.01),
    )  # fmt: skip
    error = await failure(chat(client))
    assert isinstance(error, CredentialsConflictError), repr(error)
    assert error.attempts == 1
    assert seen.requests == 1
    assert_error_clean("pw-hop-11", error)
