"""The secret registry: API keys rxgpt was given, and the redaction of secrets from text.

Every message, repr, log line and recording rxgpt writes passes through :func:`redact`: keys
registered with :func:`register_secret` (the client registers its own) and anything shaped
like a key or a bearer token become ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SENSITIVE_HEADERS", "redact", "redact_value", "register_secret"]

#: Header names whose values are credentials (compared lower-case).
SENSITIVE_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "set-cookie"}
)

_SECRET_PATTERNS = [
    re.compile(r"(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]{8,}"),
    re.compile(r"((?:Bearer|bearer)\s+)[^\s'\"]+"),
    re.compile(
        r"((?:x-api-key|api[_-]?key|x-goog-api-key)['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+", re.I
    ),
    # a credential in a query string (Gemini's ?key=, ?token=, ?access_token=, ...)
    re.compile(
        r"([?&;](?:key|api[_-]?key|token|access[_-]?token|auth|password|secret|sig)=)[^&#\s'\"]+",
        re.I,
    ),
]
_registered_secrets: set[str] = set()
_TOKEN = re.compile(r"\S*")


def _redact_user_info(text: str) -> str:
    """``text`` with every URL's user-info (``https://user:password@host``,
    ``redis://:password@host``) replaced by ``***``: from ``://`` to the URL's last ``@``,
    since a password may hold ``@``, ``/`` or quotes (redacting more is the safe mistake).

    (A scan, not a regular expression: a pattern for this backtracks over every long run
    of letters or every ``://`` without an ``@``, quadratic on a hostile error body.)
    """
    parts: list[str] = []
    kept = search = 0  # text[:kept] is in parts; the next "://" is looked for from search
    while (found := text.find("://", search)) >= 0:
        start = found + 3
        end = _TOKEN.match(text, start).end()  # type: ignore[union-attr]  # (\S* matches)
        at = text.rfind("@", start, end)
        if at > start:
            parts += (text[kept:start], "***")
            kept = at
        search = max(end, start)
    return "".join(parts) + text[kept:] if parts else text


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` (an API key) so :func:`redact` removes it wherever it appears."""
    if secret and len(secret) >= 6:
        _registered_secrets.add(secret)


def redact(text: str) -> str:
    """Return ``text`` with API keys and bearer tokens replaced by ``***``."""
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return _redact_user_info(text) if "://" in text else text


def redact_value(value: Any) -> Any:
    """:func:`redact` applied to every string inside ``value`` (dicts, lists)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value
