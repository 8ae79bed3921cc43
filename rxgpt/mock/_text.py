"""Deterministic answer text for the mock server, and the JSON encoding it needs.

Strategy: the answer to a request is a pure function of its ``messages`` and ``model`` (and
the choice index when ``n > 1``). A :class:`random.Random` is seeded from the SHA-256 of the
canonical JSON of those values and picks words from a fixed vocabulary, with punctuation now
and then. Each token is one word with its leading space (``"Hello"``, ``" world"``, ``","``),
so a shorter answer is always a prefix of a longer one for the same request. The vocabulary
holds a few non-ASCII words (2, 3 and 4 byte UTF-8) so clients get exercised on characters
split across network reads.

Token texts come from a small finite set, so their JSON encodings are cached once and reused:
the streaming hot path then only concatenates bytes.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "NON_ASCII_WORDS",
    "VOCABULARY",
    "completion_id",
    "content_texts",
    "count_prompt_tokens",
    "derived_id",
    "dumps",
    "encode_token",
    "generate_tokens",
    "iter_tokens",
    "request_digest",
]

dumps: Callable[[Any], bytes]
"""Serialise to compact UTF-8 JSON bytes (no spaces, non-ASCII kept as is)."""


def _json_dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


try:
    import orjson

    def dumps(obj: Any) -> bytes:
        try:
            return orjson.dumps(obj)
        except orjson.JSONEncodeError:  # (an integer past 64 bits: a client's, echoed)
            return _json_dumps(obj)

except ImportError:  # pragma: no cover - exercised only without orjson
    dumps = _json_dumps


NON_ASCII_WORDS: tuple[str, ...] = ("café", "naïve", "résumé", "→", "日本", "über", "🚀")
"""Words whose UTF-8 encoding takes 2, 3 or 4 bytes per character."""

VOCABULARY: tuple[str, ...] = (
    "the", "a", "of", "and", "to", "in", "is", "it", "that", "for", "on", "with", "as",
    "stream", "token", "server", "client", "event", "data", "model", "answer", "reply",
    "message", "network", "buffer", "socket", "byte", "line", "chunk", "frame", "request",
    "response", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "river", "mountain",
    "garden", "window", "morning", "evening", "simple", "careful", "bright", "quiet",
    "gentle", "rapid", "steady", "reactive", "async", "loop", "await", "future", "signal",
    "value", "result", "error", "retry", "timeout", "delta", "choice", "usage", "prompt",
    "reads", "writes", "sends", "returns", "builds", "flows", "moves", "waits", "starts",
    "stops", "keeps", "makes", "takes", "gives", "finds", "shows", "tells", "helps",
    "every", "each", "some", "many", "few", "more", "less", "very", "often", "never",
    "always", "here", "there", "now", "then", "soon", "later", "before", "after", "while",
    "because", "although", "however", "Hello", "world", "Python", "JSON", "HTTP", "UTF-8",
    *NON_ASCII_WORDS,
)  # fmt: skip
"""The words answers are made of (plain English plus :data:`NON_ASCII_WORDS`)."""

_PUNCTUATION = (",", ",", ",", ".", ".", ";", ":", "!", "?")
_SENTENCE_END = frozenset(".!?")
_PUNCTUATION_RATE = 0.12
_TOKEN_JSON: dict[str, bytes] = {}


def _canonical(messages: Any, model: str) -> bytes:
    """The canonical JSON of the values that decide an answer (sorted keys, no spaces)."""
    text = json.dumps(
        {"messages": messages, "model": model},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return text.encode()


def _seed(messages: Any, model: str, choice: int) -> int:
    digest = hashlib.sha256(_canonical(messages, model) + b"#%d" % choice).digest()
    return int.from_bytes(digest[:16], "big")


def request_digest(messages: Any, model: str) -> str:
    """The SHA-256 hex digest of the values that decide an answer (ids derive from it)."""
    return hashlib.sha256(_canonical(messages, model)).hexdigest()


def completion_id(messages: Any, model: str) -> str:
    """A deterministic ``chatcmpl-<hex>`` id for a request."""
    return "chatcmpl-" + request_digest(messages, model)[:29]


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def derived_id(
    prefix: str, digest: str, *, salt: str = "", length: int = 24, hex_: bool = False
) -> str:
    """A deterministic id: ``prefix`` + ``length`` base-62 (or hex) characters of a hash.

    ``digest`` is a request's :func:`request_digest`; ``salt`` tells apart several ids of
    one request (the message, a tool call, a choice). At most 43 base-62 or 64 hex characters.
    """
    hashed = hashlib.sha256(f"{digest}#{salt}".encode()).digest()
    if hex_:
        return prefix + hashed.hex()[:length]
    number = int.from_bytes(hashed, "big")
    chars = []
    for _ in range(length):
        number, rest = divmod(number, 62)
        chars.append(_BASE62[rest])
    return prefix + "".join(chars)


def _capitalised(word: str) -> str:
    return word[:1].upper() + word[1:]


_SPACED = tuple(" " + word for word in VOCABULARY)
_SPACED_CAPITALISED = tuple(" " + _capitalised(word) for word in VOCABULARY)


def _index(fraction: float, size: int) -> int:
    """Map ``fraction`` in [0, 1) to an index below ``size`` (guarding float rounding)."""
    return min(int(fraction * size), size - 1)


def iter_tokens(messages: Any, model: str, count: int, choice: int = 0) -> Iterator[str]:
    """Yield the first ``count`` tokens of the answer for ``messages`` and ``model``, lazily.

    One ``random()`` draw per token decides between a punctuation mark (not twice in a row)
    and a word; the first word and the word after ``.``/``!``/``?`` are capitalised.

    Args:
        messages: the request's ``messages`` value (any JSON value).
        model: the requested model name.
        count: how many tokens to yield.
        choice: the choice index; each choice of an ``n > 1`` request has its own text.
    """
    if count <= 0:
        return
    draw = random.Random(_seed(messages, model, choice)).random
    size, rate, marks = len(VOCABULARY), _PUNCTUATION_RATE, _PUNCTUATION
    yield _capitalised(VOCABULARY[_index(draw(), size)])
    may_punctuate, words = True, _SPACED
    for _ in range(count - 1):
        r = draw()
        if may_punctuate and r < rate:
            mark = marks[_index(r / rate, len(marks))]
            may_punctuate = False
            words = _SPACED_CAPITALISED if mark in _SENTENCE_END else _SPACED
            yield mark
            continue
        low = rate if may_punctuate else 0.0
        yield words[_index((r - low) / (1.0 - low), size)]
        may_punctuate, words = True, _SPACED


def generate_tokens(messages: Any, model: str, count: int, choice: int = 0) -> list[str]:
    """Return the first ``count`` tokens of the answer for ``messages`` and ``model``.

    The same arguments always give the same tokens, fewer tokens are always a prefix of more
    tokens, and the concatenation of the tokens is the answer text (see :func:`iter_tokens`).
    """
    return list(iter_tokens(messages, model, count, choice))


def encode_token(token: str) -> bytes:
    """The JSON string literal of ``token`` (cached: tokens come from a finite set)."""
    encoded = _TOKEN_JSON.get(token)
    if encoded is None:
        encoded = _TOKEN_JSON[token] = dumps(token)
    return encoded


def content_texts(content: Any) -> Iterable[str]:
    """The text parts of one message's ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield part["text"]


def count_prompt_tokens(messages: Sequence[Any]) -> int:
    """Count whitespace-separated words over all message contents (at least 1)."""
    words = 0
    for message in messages:
        if isinstance(message, Mapping):
            words += sum(len(text.split()) for text in content_texts(message.get("content")))
    return max(words, 1)
