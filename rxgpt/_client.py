"""The high-level client: ``Client.chat(...)`` builds a provider's request and returns a
:class:`~rxgpt.ChatStream` that sends it when started.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from reactivex import Observable

from ._aio import FlowControl
from ._chat_stream import ChatStream
from ._fanout import ReplayPolicy
from ._providers import get_provider
from ._resilience import Progress, Retry, Timeouts
from ._secrets import register_secret
from ._transport import request

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "USE_CLIENT_DEFAULT", "Client"]

#: The client's default bound on one event (or line): memory stays bounded against a
#: hostile server. Pass ``max_event_bytes=None`` for no limit.
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024


class UseClientDefault:
    """The type of :data:`USE_CLIENT_DEFAULT`: "not given", as distinct from None."""

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


#: Marks a per-call argument as not given, so the client's setting applies.
USE_CLIENT_DEFAULT = UseClientDefault()


class Client:
    """A streaming LLM client over aiohttp, for any supported provider.

    ``provider`` picks the API ("openai" by default; also "openai-responses",
    "openai-completions", "anthropic", "gemini", "ollama"): its request shape, auth
    headers, framing and decoder. ``base_url`` and ``api_key`` default to the provider's
    environment variables (``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` for OpenAI,
    ``ANTHROPIC_*``, ``GEMINI_API_KEY``, ``OLLAMA_HOST``), then its public endpoint. Pass
    your own ``session`` to share a connection pool (it is not closed by :meth:`aclose`).
    Use as ``async with rxgpt.Client(...) as client:``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        provider: str = "openai",
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        max_event_bytes: int | None = DEFAULT_MAX_EVENT_BYTES,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
    ) -> None:
        self.provider = get_provider(provider)
        self.timeouts = timeouts if timeouts is not None else Timeouts()
        self.retry = retry if retry is not None else Retry()
        env_url = next(
            (os.environ[v] for v in self.provider.base_url_env if os.environ.get(v)), None
        )
        self.base_url = (base_url or env_url or self.provider.default_base_url).rstrip("/")
        if api_key is None:
            api_key = next(
                (os.environ[v] for v in self.provider.api_key_env if os.environ.get(v)), None
            )
        self._api_key = api_key
        register_secret(self._api_key)
        self._session = session
        self._own_session = session is None
        self._headers = dict(headers or {})
        self.max_event_bytes = max_event_bytes

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"Client(provider={self.provider.name!r}, base_url={self.base_url!r}, api_key=<{key}>)"
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool if the client created it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use, inside the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
                read_bufsize=256 * 1024,
            )
            self._own_session = True
        return self._session

    def chat(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        replay: ReplayPolicy = "all",
        max_event_bytes: int | UseClientDefault | None = USE_CLIENT_DEFAULT,
        heartbeats: bool = False,
        protocol: str | None = None,
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        **params: Any,
    ) -> ChatStream:
        """Prepare a streamed answer to ``messages`` (sent when the stream starts).

        Extra keyword ``params`` go into the request body as given (``temperature``,
        ``tools``, ``stream_options``...). ``replay`` is the late-subscriber policy;
        ``protocol`` overrides the decoder chosen by the provider; ``timeouts`` and
        ``retry`` override the client's for this call.
        """
        req = self.provider.request(self.base_url, self._api_key, model, messages, params)
        headers = {**req.headers, **self._headers}
        limit = (
            self.max_event_bytes
            if isinstance(max_event_bytes, UseClientDefault)
            else max_event_bytes
        )

        def make_source(flow: FlowControl, progress: Progress) -> Observable[bytes]:
            return request(
                req.url,
                json=req.body,
                headers=headers,
                session=self.session(),
                flow=flow,
                progress=progress,
            )

        return ChatStream(
            make_source,
            protocol=protocol or self.provider.protocol,
            replay=replay,
            max_event_bytes=limit,
            heartbeats=heartbeats,
            timeouts=timeouts if timeouts is not None else self.timeouts,
            retry=retry if retry is not None else self.retry,
        )
