"""A URL no request can be sent to is a typed InvalidURLError, said once and never retried.

The Client refuses its base URL when it is made (naming where it came from: the argument
or the provider's variable); the transport maps aiohttp's refusals of a URL, and a
redirect's unusable Location, to the same error instead of a retried TransportError.
Real loopback servers answer the redirects.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.pytest_plugin import AiohttpServer
from helpers import MESSAGES, MODEL, TIMEOUT
from hypothesis import given
from hypothesis import strategies as st

from rxgpt import Client, InvalidURLError, Retry, RxgptError, TransportError, request
from rxgpt._cli_types import base_url_problem

BAD = {
    "notaurl": "is not an http:// or https:// URL",
    "ftp://127.0.0.1/v1": "is not an http:// or https:// URL",
    "http:///v1": "names no host",
    "http://127.0.0.1:99999/v1": "port out of range",
    "http://[::1/v1": "is not a URL",
    "http://127.0.0.1 /v1": "holds a space",
    "http://127.0.0.1:0/v1": "names port 0",
}


@pytest.mark.parametrize("url", sorted(BAD))
def test_a_client_refuses_a_base_url_no_request_can_go_to(url: str) -> None:
    with pytest.raises(InvalidURLError) as caught:
        Client(url, api_key="sk-x")
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, RxgptError)
    assert not isinstance(error, TransportError)  # (a TransportError is retried)
    assert str(error).startswith("base_url ") and BAD[url] in str(error)


def test_the_error_names_the_variable_the_base_url_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://alice:pw-env-3@[::1/v1")
    with pytest.raises(InvalidURLError, match=r"^OPENAI_BASE_URL ") as caught:
        Client(api_key="sk-x")
    assert "pw-env-3" not in str(caught.value) + repr(caught.value.args)
    # the argument wins over the variable, as for a good URL
    assert Client("http://127.0.0.1:9/v1", api_key="sk-x").base_url == "http://127.0.0.1:9/v1"


def test_ollama_host_forms_without_a_scheme_are_still_taken() -> None:
    client = Client("localhost:8080", provider="ollama")
    assert client.base_url == "http://localhost:8080"


@given(st.text(max_size=60))
def test_any_base_url_makes_a_client_or_an_invalid_url_error(url: str) -> None:
    """Untrusted text as a base URL: a Client whose URL passes the shared rule, or the
    typed error; never another exception."""
    try:
        client = Client(url, api_key="sk-x")
    except InvalidURLError as error:
        assert str(error)
        return
    assert url == "" or base_url_problem(client.base_url) is None


async def _error_of(source: Any) -> BaseException | None:
    ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    source.subscribe(lambda _: None, ended.set_result, lambda: ended.set_result(None))
    return await asyncio.wait_for(ended, TIMEOUT)


async def test_request_says_its_url_cannot_be_requested() -> None:
    error = await _error_of(request("notaurl"))
    assert isinstance(error, InvalidURLError), repr(error)
    assert "'notaurl' is not an http:// or https:// URL" in str(error)


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:99999/v1/moved", "ftp://127.0.0.1/v1/moved", "http://[::1/v1/moved"],
)
async def test_a_redirect_to_a_url_no_request_can_go_to_fails_at_once(
    aiohttp_server: AiohttpServer, location: str
) -> None:
    """The server points at an unusable URL: one typed error after one request, not a
    TransportError retried to the end of the policy."""
    arrivals: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        arrivals.append(request.path)
        return web.Response(status=307, headers={"Location": location})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", moved)
    server = await aiohttp_server(app)
    async with Client(
        str(server.make_url("/v1")), api_key="sk-x", retry=Retry(attempts=3, backoff=0.01)
    ) as client:
        stream = client.chat(model=MODEL, messages=MESSAGES)
        with pytest.raises(InvalidURLError) as caught:
            await asyncio.wait_for(stream.completion(), TIMEOUT)
    assert caught.value.attempts == 1
    assert arrivals == ["/v1/chat/completions"]
    assert caught.value.partial is not None and caught.value.partial.state == "error"
