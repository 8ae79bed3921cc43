"""Redirects never carry credentials to another origin.

aiohttp strips only ``Authorization`` on a cross-host redirect; rxgpt's providers also send
``x-api-key`` (Anthropic), ``x-goog-api-key`` (Gemini) and ``api-key`` (Azure). Two real
loopback servers on two ports (two origins): the first answers 307 to the second, which
records every header it gets and serves the stream. The stream works, and the second
server never sees the key; a redirect within one origin keeps it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.pytest_plugin import AiohttpServer

from rxgpt import Client

FIXTURES = Path(__file__).parent / "fixtures" / "composed"
KEY = "sk-ant-redirect-0123456789abcdef"
CASES = {
    "anthropic": ("anthropic_messages_tools.sse", "claude-sonnet-4-5"),
    "gemini": ("gemini.sse", "gemini-2.5-flash"),
    "openai": ("openai_chat_tools.sse", "gpt-4o-mini"),
}


def answer_with(body: bytes, seen: list[dict[str, str]]) -> Any:
    """A handler that records the request's headers and streams ``body``."""

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        seen.append(dict(request.headers))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(body)
        await response.write_eof()
        return response

    return answer


def stream_server(body: bytes, seen: list[dict[str, str]]) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer_with(body, seen))
    return app


def redirecting(target: str, seen: list[dict[str, str]]) -> web.Application:
    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        seen.append(dict(request.headers))
        raise web.HTTPTemporaryRedirect(target + request.path_qs)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app


def leaked(headers: list[dict[str, str]]) -> list[str]:
    return [f"{k}: {v}" for h in headers for k, v in h.items() if KEY in v]


@pytest.mark.parametrize("provider", sorted(CASES))
async def test_a_cross_origin_redirect_drops_every_credential(
    aiohttp_server: AiohttpServer, provider: str
) -> None:
    name, model = CASES[provider]
    at_target: list[dict[str, str]] = []
    at_origin: list[dict[str, str]] = []
    target = await aiohttp_server(stream_server((FIXTURES / name).read_bytes(), at_target))
    origin = await aiohttp_server(redirecting(str(target.make_url("")).rstrip("/"), at_origin))
    assert origin.port != target.port
    async with Client(
        base_url=str(origin.make_url("/v1")), api_key=KEY, provider=provider
    ) as client:
        stream = client.chat(model=model, messages=[{"role": "user", "content": "hi"}])
        completion = await stream.completion()
    assert completion.state == "complete"
    assert leaked(at_origin), "the first server should have got the key"
    assert len(at_target) == 1
    assert leaked(at_target) == []


async def test_a_same_origin_redirect_keeps_the_credentials(
    aiohttp_server: AiohttpServer,
) -> None:
    seen: list[dict[str, str]] = []
    body = (FIXTURES / "anthropic_messages_tools.sse").read_bytes()

    async def moved(request: web.Request) -> Any:
        await request.read()
        raise web.HTTPPermanentRedirect("/v2/messages")

    app = web.Application()
    app.router.add_post("/v1/messages", moved)
    app.router.add_post("/v2/messages", answer_with(body, seen))
    server = await aiohttp_server(app)
    async with Client(
        base_url=str(server.make_url("")).rstrip("/"), api_key=KEY, provider="anthropic"
    ) as client:
        stream = client.chat(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}]
        )
        assert (await stream.completion()).state == "complete"
    assert len(seen) == 1 and seen[0].get("x-api-key") == KEY
