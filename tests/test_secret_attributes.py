"""No key in any attribute of an error, when a server echoes it back anywhere.

A real loopback server echoes the client's API key under an arbitrary header name, inside
its error body, inside a payload that is not JSON, and inside an in-band error object (a
nested dict). The key must appear in none of: the message, ``HTTPStatusError.headers`` /
``.body`` / ``.error``, ``DecodeError.raw``, ``StreamError.error``, the ``ErrorDelta`` and
its repr, the partial result.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from helpers import Harness, chat, failure, harness_fixture

from rxgpt import DecodeError, Delta, ErrorDelta, HTTPStatusError, Retry, StreamError

KEY = "opaque-echoed-secret-4f9a2c1e7b"
h = harness_fixture()


def everything(value: Any) -> str:
    """Every string reachable from ``value`` (attributes, dicts, lists), joined."""
    seen: list[str] = []

    def walk(v: Any, depth: int = 0) -> None:
        if depth > 6:
            return
        if isinstance(v, str):
            seen.append(v)
        elif isinstance(v, dict):
            for k, inner in v.items():
                walk(k, depth + 1)
                walk(inner, depth + 1)
        elif isinstance(v, list | tuple):
            for inner in v:
                walk(inner, depth + 1)
        elif hasattr(v, "__dict__") or hasattr(v, "__slots__"):
            for name in dir(v):
                if not name.startswith("__"):
                    try:
                        walk(getattr(v, name), depth + 1)
                    except Exception:
                        pass

    walk(value)
    seen.append(repr(value))
    seen.append(str(value))
    return "\n".join(seen)


async def test_an_http_error_echoing_the_key_in_headers_and_body(h: Harness) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        body = {"error": {"message": f"bad key {KEY}", "type": "auth", "nested": {"k": [KEY]}}}
        return web.Response(
            status=401,
            text=json.dumps(body),
            content_type="application/json",
            headers={"X-Echo-Whatever": f"you sent {KEY}", "X-Plain": KEY},
        )

    url, _ = await h.serve(handler)
    error = await failure(chat(h.client(url, api_key=KEY, retry=Retry(attempts=1))))
    assert isinstance(error, HTTPStatusError) and error.status == 401
    assert KEY not in everything(error)
    assert "X-Echo-Whatever" in error.headers


async def test_a_payload_and_an_in_band_error_echoing_the_key(h: Harness) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(f"data: not json, but the key {KEY}\n\n".encode())
        await response.write_eof()
        return response

    url, _ = await h.serve(handler)
    error = await failure(chat(h.client(url, api_key=KEY)))
    assert isinstance(error, DecodeError)
    assert KEY not in everything(error)
    assert KEY not in repr(error.__context__) and KEY not in repr(error.__cause__)


async def test_an_in_band_error_object_echoing_the_key(h: Harness) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        error = {"error": {"message": f"quota for {KEY}", "meta": {"keys": [KEY]}}}
        await response.write(b"data: " + json.dumps(error).encode() + b"\n\n")
        await response.write_eof()
        return response

    url, _ = await h.serve(handler)
    stream = chat(h.client(url, api_key=KEY))
    deltas: list[Delta] = []
    stream.subscribe(deltas.append, lambda _: None)
    error = await failure(stream)
    assert isinstance(error, StreamError)
    assert KEY not in everything(error)
    errors = [d for d in deltas if isinstance(d, ErrorDelta)]
    assert errors and KEY not in everything(errors[0])
