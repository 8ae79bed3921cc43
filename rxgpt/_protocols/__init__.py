"""One decoder per provider protocol, each turning parsed stream items into neutral deltas.

Every decoder is a sans-IO class with ``feed(item, out)`` (append the deltas of one parsed
item to ``out``), a ``protocol`` name, ``end_in_band`` (whether the protocol's end signal
is an item the decoder sees, like Anthropic's ``message_stop``, rather than the
``data: [DONE]`` marker), ``ended`` (that end signal arrived: stop reading) and ``eof_ok``
(the body may end now without loss: Gemini has no end signal but a finish reason).
"""

from __future__ import annotations

from typing import Any, Protocol

from .._deltas import Delta
from .anthropic import AnthropicDecoder
from .gemini import GeminiDecoder
from .ollama import OllamaDecoder
from .openai_chat import OpenAIChatDecoder
from .openai_completions import OpenAICompletionsDecoder
from .openai_responses import OpenAIResponsesDecoder

__all__ = [
    "DONE_MARKER_PROTOCOLS",
    "NDJSON_PROTOCOLS",
    "PROTOCOLS",
    "AnthropicDecoder",
    "GeminiDecoder",
    "OllamaDecoder",
    "OpenAIChatDecoder",
    "OpenAICompletionsDecoder",
    "OpenAIResponsesDecoder",
    "ProtocolDecoder",
    "get_decoder",
]


class ProtocolDecoder(Protocol):
    """What every protocol decoder provides."""

    protocol: str
    end_in_band: bool

    @property
    def ended(self) -> bool: ...

    @property
    def eof_ok(self) -> bool: ...

    def feed(self, item: Any, out: list[Delta]) -> None: ...


#: Protocol name → decoder class.
PROTOCOLS: dict[str, type[ProtocolDecoder]] = {
    "openai-chat": OpenAIChatDecoder,
    "openai-completions": OpenAICompletionsDecoder,
    "openai-responses": OpenAIResponsesDecoder,
    "anthropic": AnthropicDecoder,
    "gemini": GeminiDecoder,
    "ollama": OllamaDecoder,
}

#: Protocols whose stream ends with ``data: [DONE]``.
DONE_MARKER_PROTOCOLS = frozenset({"openai-chat", "openai-completions"})

#: Protocols framed as NDJSON rather than SSE.
NDJSON_PROTOCOLS = frozenset({"ollama"})


def get_decoder(protocol: str) -> ProtocolDecoder:
    """A new decoder for ``protocol``; ValueError names the known ones otherwise."""
    try:
        cls = PROTOCOLS[protocol]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise ValueError(f"unknown protocol {protocol!r}; known: {known}") from None
    return cls()
