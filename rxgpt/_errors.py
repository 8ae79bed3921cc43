"""Typed errors raised by rxgpt.

Every error a stream can end with is an :class:`RxgptError`. Errors raised while a
response body was being read carry ``partial``: the :class:`~rxgpt.Completion`
accumulated from what arrived before the failure (filled in by the accumulator).

Exception tree::

    RxgptError
    ├── HTTPStatusError            non-2xx answer (status, headers, provider error)
    │   ├── AuthenticationError    401 / 403
    │   └── RateLimitError         429
    ├── TransportError             the connection could not be made or broke
    │   ├── StreamTimeout          connect / first_byte / idle / total deadline passed
    │   └── StreamInterrupted      the body ended before the protocol's end signal
    │       └── MissingDone        ... cleanly, but without its ``data: [DONE]`` marker
    ├── StreamCancelled            the consumer cancelled the stream
    ├── DecodeError                a frame or JSON payload could not be decoded
    │   ├── EventTooLarge          an event or line grew past ``max_event_bytes``
    │   ├── StreamTooLong          a stream carried more than ``max_deltas`` deltas
    │   └── PartialJSONError       text that can never become JSON (``parse_partial``)
    ├── StreamError                the provider reported an error inside the stream
    ├── LateSubscriberError        a subscriber came after Fanout.connect() with no replay
    ├── ClientClosedError          a closed Client was used again
    ├── CredentialsConflictError   credentials in the URL and an Authorization header
    ├── InvalidURLError            a URL that cannot be requested (not http(s), no host...)
    └── MissingAPIKeyError         a hosted API was to be called without a key
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ._secrets import SENSITIVE_HEADERS, redact, redact_value

if TYPE_CHECKING:
    from ._completion import Completion

__all__ = [
    "AuthenticationError",
    "ClientClosedError",
    "CredentialsConflictError",
    "DecodeError",
    "EventTooLarge",
    "HTTPStatusError",
    "InvalidURLError",
    "LateSubscriberError",
    "MissingAPIKeyError",
    "MissingDone",
    "RateLimitError",
    "RxgptError",
    "StreamCancelled",
    "StreamError",
    "StreamInterrupted",
    "StreamTimeout",
    "StreamTooLong",
    "TransportError",
]


class RxgptError(Exception):
    """Base class of every error rxgpt raises on purpose."""

    #: The :class:`~rxgpt.Completion` accumulated before the failure, when known.
    partial: Completion | None
    #: How many attempts (requests) were made before giving up.
    attempts: int = 1

    def __init__(self, message: str, *, partial: Completion | None = None) -> None:
        super().__init__(redact(message))
        self.partial = partial

    @property
    def message(self) -> str:
        """The error message (secrets redacted)."""
        return str(self.args[0]) if self.args else ""


class HTTPStatusError(RxgptError):
    """The server answered with a non-2xx status before any stream item.

    ``error`` is the provider's parsed error object (``{"message", "type", "code", ...}``)
    when the body was JSON, ``body`` the first bytes of the raw body as text.
    """

    def __init__(
        self,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        error: Mapping[str, Any] | None = None,
        body: str = "",
        url: str = "",
        partial: Completion | None = None,
    ) -> None:
        self.status = status
        self.headers: dict[str, str] = {
            k: ("***" if k.lower() in SENSITIVE_HEADERS else redact(v))
            for k, v in (headers or {}).items()
        }
        self.error: dict[str, Any] | None = redact_value(error) if error is not None else None
        self.body = redact(body)
        self.url = redact(url)
        detail = ""
        if self.error:
            parts = [str(self.error.get(k)) for k in ("type", "code") if self.error.get(k)]
            msg = self.error.get("message")
            detail = f": {msg}" if msg else ""
            if parts:
                detail += f" ({', '.join(parts)})"
        elif body:
            snippet = body.strip().replace("\n", " ")
            detail = f": {snippet[:200]!r}"
        where = f" from {self.url}" if self.url else ""
        super().__init__(f"HTTP {status}{where}{detail}", partial=partial)

    @property
    def error_message(self) -> str | None:
        """The provider's human-readable error message, if it sent one."""
        if self.error and isinstance(self.error.get("message"), str):
            return str(self.error["message"])
        return None

    @property
    def error_type(self) -> str | None:
        """The provider's error type (``invalid_request_error``, ``rate_limit_error``...)."""
        value = self.error.get("type") if self.error else None
        return str(value) if value is not None else None

    @property
    def error_code(self) -> str | None:
        """The provider's error code (``invalid_api_key``, ``insufficient_quota``...)."""
        value = self.error.get("code") if self.error else None
        return str(value) if value is not None else None


class AuthenticationError(HTTPStatusError):
    """401 or 403: the API key is missing, wrong or lacks permission."""


class RateLimitError(HTTPStatusError):
    """429: too many requests, or the quota is used up (see ``error_code``)."""


class TransportError(RxgptError):
    """The connection failed or broke while talking to the server."""


class StreamTimeout(TransportError):
    """A deadline passed. ``phase`` is "connect", "first_byte", "idle" or "total"."""

    def __init__(self, phase: str, seconds: float, *, partial: Completion | None = None) -> None:
        self.phase = phase
        self.seconds = seconds
        super().__init__(f"{phase} timeout after {seconds:g}s", partial=partial)


class StreamInterrupted(TransportError):
    """The body ended (or the connection dropped) before the protocol's end signal."""


class MissingDone(StreamInterrupted):
    """The body ended cleanly, at an event boundary, but without the ``data: [DONE]`` marker.

    :func:`~rxgpt.decode_json` says so when it was told to expect a marker; a protocol
    without one (Anthropic, Gemini...) then decides in :func:`~rxgpt.extract_deltas`
    whether the stream may end there.
    """


class StreamCancelled(RxgptError):
    """The stream was cancelled (by ``cancel()``, a cancelled task or a left loop)."""


class DecodeError(RxgptError):
    """A frame or its JSON payload could not be decoded.

    ``index`` is the 0-based number of the event (or line) in the stream, ``raw`` its
    text (truncated to 1000 characters in the message, complete in the attribute).
    """

    def __init__(
        self,
        message: str,
        *,
        raw: str = "",
        index: int | None = None,
        partial: Completion | None = None,
    ) -> None:
        self.raw = redact(raw)
        self.index = index
        where = f" at event {index}" if index is not None else ""
        shown = raw if len(raw) <= 200 else raw[:200] + f"... ({len(raw)} chars)"
        super().__init__(f"{message}{where}: {shown!r}", partial=partial)


class EventTooLarge(DecodeError):
    """An event, or a line still waiting for its end, exceeded ``max_event_bytes``."""

    def __init__(self, size: int, limit: int, *, partial: Completion | None = None) -> None:
        self.size = size
        self.limit = limit
        RxgptError.__init__(
            self,
            f"event exceeds max_event_bytes: at least {size} bytes > limit of {limit}",
            partial=partial,
        )
        self.raw = ""
        self.index = None
        #: events completed in the same ``feed`` call before the overflow
        self.events: list[Any] = []


class StreamTooLong(DecodeError):
    """A stream carried more than ``max_deltas`` deltas: the per-stream memory bound.

    A :class:`~rxgpt.ChatStream` keeps every delta for late subscribers and the result;
    against an endless stream this bound ends it, typed, with the partial.
    """

    def __init__(self, count: int, limit: int, *, partial: Completion | None = None) -> None:
        self.count = count
        self.limit = limit
        RxgptError.__init__(
            self,
            f"the stream exceeds max_deltas: {count} deltas > limit of {limit}",
            partial=partial,
        )
        self.raw = ""
        self.index = None


class StreamError(RxgptError):
    """The provider reported an error inside a 200 stream (``{"error": {...}}``).

    ``error`` is the provider's error object as sent; ``retryable`` says whether the
    error is of a kind that is worth retrying (overloaded, server error, rate limit).
    """

    _RETRYABLE: ClassVar[frozenset[str]] = frozenset(
        {
            "overloaded_error",
            "server_error",
            "api_error",
            "rate_limit_error",
            "rate_limit_exceeded",
            "internal_error",
            "timeout",
            "service_unavailable",
            "UNAVAILABLE",
            "RESOURCE_EXHAUSTED",
            "INTERNAL",
        }
    )

    def __init__(
        self,
        error: Any,
        *,
        partial: Completion | None = None,
        index: int | None = None,
    ) -> None:
        error = redact_value(error)
        self.error = error
        self.index = index
        if isinstance(error, Mapping):
            msg = error.get("message") or error.get("error") or "provider error"
            kind = error.get("type")
            if kind in (None, "error"):  # Responses' flat shape; Gemini's gRPC status
                status = error.get("status")
                kind = status if isinstance(status, str) else error.get("code") or kind
        else:
            msg, kind = str(error), None
        self.error_type = str(kind) if kind is not None else None
        code = error.get("code") if isinstance(error, Mapping) else None
        self.retryable = bool(
            (self.error_type in self._RETRYABLE or code in self._RETRYABLE)
            and code != "insufficient_quota"
        )
        where = f" at event {index}" if index is not None else ""
        suffix = f" ({self.error_type})" if self.error_type else ""
        super().__init__(f"stream error{where}: {msg}{suffix}", partial=partial)


class LateSubscriberError(RxgptError, RuntimeError):
    """A subscriber arrived after :meth:`Fanout.connect` and no replay policy was set."""


class ClientClosedError(RxgptError, RuntimeError):
    """A :class:`~rxgpt.Client` was used after :meth:`~rxgpt.Client.aclose`."""


class MissingAPIKeyError(RxgptError, ValueError):
    """A hosted API (OpenAI, Anthropic, Gemini) was to be called without an API key.

    Raised by :meth:`~rxgpt.Client.chat` before any request; the message names the
    provider's environment variable.
    """


class CredentialsConflictError(RxgptError, ValueError):
    """A request would carry two credentials: a URL's ``user:password@`` and an
    ``Authorization`` header (an API key sent as a bearer token, or a header of yours).

    HTTP has one ``Authorization`` header, so neither may silently win: raised by
    :func:`~rxgpt.request` before anything is sent, and never retried. Keep one: the
    URL's user-info (Basic auth, say for a proxy in front of the server, with no API
    key), or the key.
    """


class InvalidURLError(RxgptError, ValueError):
    """A URL that no request can be sent to: not ``http://`` or ``https://``, no host, a
    port out of range, a space or a control character in it.

    Raised by :class:`~rxgpt.Client` for its base URL (the argument or the provider's
    environment variable, named in the message), and by :func:`~rxgpt.request` for its
    URL or a redirect's ``Location``; never retried (no attempt could succeed).
    """
