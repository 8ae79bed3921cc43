"""The high-level client: ``Client.chat(...)`` builds a provider's request and returns a
:class:`~rxgpt.ChatStream` that sends it when started.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
from reactivex import Observable

from ._aio import FlowControl
from ._chat_stream import DEFAULT_MAX_DELTAS, ChatStream
from ._errors import ClientClosedError, InvalidURLError, MissingAPIKeyError
from ._fanout import ReplayPolicy
from ._providers import get_provider
from ._resilience import Progress, Retry, Timeouts
from ._secrets import redact, register_secret
from ._transport import SOCKET_CONNECT_TIMEOUT, ConnectionSlots, request
from ._urls import base_url_problem

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "DEFAULT_POOL_LIMIT", "USE_CLIENT_DEFAULT", "Client"]

#: The client's default bound on one event (or line): memory stays bounded against a
#: hostile server. Pass ``max_event_bytes=None`` for no limit.
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
#: The most connections a Client's own pool opens at once (each stream holds one). More
#: streams wait for a free connection; that wait is not part of the connect deadline. The
#: process's open-file limit (``ulimit -n``) must allow as many sockets.
DEFAULT_POOL_LIMIT = 4096


class UseClientDefault:
    """The type of :data:`USE_CLIENT_DEFAULT`: "not given", as distinct from None."""

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


#: Marks a per-call argument as not given, so the client's setting applies.
USE_CLIENT_DEFAULT = UseClientDefault()

_T = TypeVar("_T")


def _or_default(value: _T | UseClientDefault, default: _T) -> _T:
    """``value``, or ``default`` when it was not given (:data:`USE_CLIENT_DEFAULT`)."""
    return default if isinstance(value, UseClientDefault) else value


def env_setting(names: tuple[str, ...]) -> tuple[str, str] | None:
    """The first of the environment variables ``names`` that is set and not empty, as
    ``(name, value)`` (None: none is)."""
    name = next((name for name in names if os.environ.get(name)), None)
    return None if name is None else (name, os.environ[name])


def _from_env(names: tuple[str, ...]) -> str | None:
    """The value of :func:`env_setting` (None: no variable is set)."""
    setting = env_setting(names)
    return None if setting is None else setting[1]


class Client:
    """A streaming LLM client over aiohttp, for any supported provider.

    ``provider`` picks the API ("openai" by default; also "openai-responses",
    "openai-completions", "anthropic", "gemini", "ollama"): its request shape, auth
    headers, framing and decoder. ``base_url`` and ``api_key`` default to the provider's
    environment variables (``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` for OpenAI,
    ``ANTHROPIC_*``, ``GEMINI_API_KEY``, ``OLLAMA_HOST``), then its public endpoint.

    ``timeouts`` and ``retry`` apply to every call unless the call overrides them;
    omitted, they are ``Timeouts()`` and ``Retry()``; ``None`` means no deadlines, or no
    retries (one attempt). A body that ends without ``data: [DONE]`` after every choice's
    finish reason is complete (``completion.end_marker`` is False), as in openai-python;
    ``require_done=True`` makes it a :class:`~rxgpt.MissingDone` error.

    Memory stays bounded against a hostile server by default: an event may hold at most
    ``max_event_bytes`` (16 MiB), a stream at most ``max_deltas`` deltas (1,000,000; then
    :class:`~rxgpt.StreamTooLong`), a choice number stays below 128 and a choice's tool
    calls below 1,024 (then :class:`~rxgpt.DecodeError`).

    The client's own pool opens at most ``pool_limit`` connections (4,096; 0: no limit),
    one per open stream; more streams wait for a free one, and that wait is not part of
    the ``connect`` deadline (it ends when a stream ahead ends, each bounded by its own
    deadlines). A ``session`` of your own keeps its connector's limit (aiohttp's default
    is 100); give it ``trace_configs=[rxgpt.pool_tracing()]`` for the same deadlines.

    Use as ``async with rxgpt.Client(...) as client:`` (or call :meth:`aclose`). The
    connection pool is created on first use, inside the running loop. Once closed, the
    client raises :class:`~rxgpt.ClientClosedError` when used again. Pass your own
    ``session`` to share a connection pool: closing the client does not close it.

    Raises:
        InvalidURLError: the base URL (argument or variable) is no URL a request can be
            sent to: not ``http://`` or ``https://``, no host, a bad port, a space.
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
        timeouts: Timeouts | UseClientDefault | None = USE_CLIENT_DEFAULT,
        retry: Retry | UseClientDefault | None = USE_CLIENT_DEFAULT,
        require_done: bool = False,
        max_deltas: int | None = DEFAULT_MAX_DELTAS,
        pool_limit: int = DEFAULT_POOL_LIMIT,
    ) -> None:
        self.provider = get_provider(provider)
        #: The per-stream bound on deltas (see :class:`~rxgpt.ChatStream`); None: none.
        self.max_deltas = max_deltas
        #: The most connections of the client's own pool (0: no limit).
        self.pool_limit = pool_limit
        #: Every call fails on a body without ``data: [DONE]``, unless the call says.
        self.require_done = require_done
        #: The deadlines of every call (None: none), unless a call gives its own.
        self.timeouts: Timeouts | None = _or_default(timeouts, Timeouts())
        #: The retry policy of every call (None: one attempt), unless a call gives its own.
        self.retry: Retry | None = _or_default(retry, Retry())
        given = ("base_url", base_url) if base_url else env_setting(self.provider.base_url_env)
        #: The API's base URL: the argument, else the provider's variable, else its default.
        self.base_url = self.provider.default_base_url
        if given is not None:
            url = self.provider.normalize_url(given[1])
            problem = base_url_problem(url)
            if problem is not None:  # (refused now: every request to it would fail)
                raise InvalidURLError(f"{given[0]} {given[1]!r} {problem}")
            self.base_url = url.rstrip("/")
        if api_key is None:
            api_key = _from_env(self.provider.api_key_env)
        self._api_key = api_key
        register_secret(self._api_key)
        self._session = session
        self._own_session = session is None
        self._slots: ConnectionSlots | None = None
        self._closed = False
        self._headers = dict(headers or {})
        self.max_event_bytes = max_event_bytes

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"Client(provider={self.provider.name!r}, base_url={redact(self.base_url)!r}, "
            f"api_key=<{key}>)"
        )

    async def __aenter__(self) -> Client:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (the client can no longer be used)."""
        return self._closed

    def _check_open(self) -> None:
        """Raise :class:`~rxgpt.ClientClosedError` if the client was closed."""
        if self._closed:
            raise ClientClosedError(
                f"{self!r} is closed (aclose() or the end of its `async with` block); "
                "create a new Client to send more requests"
            )

    async def aclose(self) -> None:
        """Close the client for good, and its connection pool if the client created it.

        A ``session`` passed by the caller stays open. Calling it again does nothing.
        """
        self._closed = True
        session, self._session = self._session, None
        if self._own_session and session is not None:
            await session.close()

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use, inside the running loop).

        Raises:
            ClientClosedError: the client was closed.
        """
        self._check_open()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_limit),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=SOCKET_CONNECT_TIMEOUT),
                read_bufsize=256 * 1024,
            )
            self._own_session = True
            # The pool's bound, kept by rxgpt so that a wait for a connection is not
            # part of the connect deadline (the connector's limit is never reached). It
            # costs nothing when a connection is free, unlike aiohttp's tracing.
            if self.pool_limit > 0:
                self._slots = ConnectionSlots(self.pool_limit)
        return self._session

    def _check_key(self) -> None:
        """A hosted API at its public address needs a key: say so before any request."""
        provider = self.provider
        if provider.hosted and not self._api_key and self.base_url == provider.default_base_url:
            names = " or ".join(provider.api_key_env)
            raise MissingAPIKeyError(
                f"no API key for {provider.name} at {self.base_url}: set {names}, or pass "
                "api_key (a server of your own: pass its base_url)"
            )

    def chat(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        replay: ReplayPolicy = "all",
        max_event_bytes: int | UseClientDefault | None = USE_CLIENT_DEFAULT,
        heartbeats: bool = False,
        protocol: str | None = None,
        timeouts: Timeouts | UseClientDefault | None = USE_CLIENT_DEFAULT,
        retry: Retry | UseClientDefault | None = USE_CLIENT_DEFAULT,
        require_done: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        **params: Any,
    ) -> ChatStream:
        """Prepare a streamed answer to ``messages`` (sent when the stream starts).

        Extra keyword ``params`` go into the request body as given (``temperature``,
        ``tools``, ``stream_options``...). ``replay`` is the late-subscriber policy;
        ``protocol`` overrides the decoder chosen by the provider. ``max_event_bytes``,
        ``timeouts``, ``retry`` and ``require_done`` default to the client's; an explicit
        ``None`` turns the first three off for this call (no size limit, no deadlines, a
        single attempt).

        Raises:
            ClientClosedError: the client was closed (also raised by the stream if the
                client is closed before the stream starts).
            MissingAPIKeyError: a hosted API at its public address, and no key.
        """
        self._check_open()
        self._check_key()
        req = self.provider.request(self.base_url, self._api_key, model, messages, params)

        make_source = _Source(self, req.url, req.body, {**req.headers, **self._headers})
        return ChatStream(
            make_source,
            protocol=protocol or self.provider.protocol,
            replay=replay,
            max_event_bytes=_or_default(max_event_bytes, self.max_event_bytes),
            heartbeats=heartbeats,
            timeouts=_or_default(timeouts, self.timeouts),
            retry=_or_default(retry, self.retry),
            require_done=_or_default(require_done, self.require_done),
            max_deltas=self.max_deltas,
        )


class _Source:
    """How a :class:`Client`'s stream makes each attempt's body source: one request.

    (A slotted object rather than a closure: fewer objects per open stream.)
    """

    __slots__ = ("body", "client", "headers", "url")

    def __init__(self, client: Client, url: str, body: Any, headers: dict[str, str]) -> None:
        self.client = client
        self.url = url
        self.body = body
        self.headers = headers

    def __call__(self, flow: FlowControl, progress: Progress) -> Observable[bytes]:
        client = self.client
        return request(
            self.url,
            json=self.body,
            headers=self.headers,
            session=client.session(),
            flow=flow,
            progress=progress,
            slots=client._slots,  # set only for the client's own session
        )
