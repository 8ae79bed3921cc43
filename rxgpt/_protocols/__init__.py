"""One decoder per provider protocol, each turning parsed payloads into neutral deltas.

Every decoder is a :class:`ProtocolDecoder`: its class attributes state the protocol's
facts (framing, done marker, unframed errors), ``feed(item, out)`` appends the deltas of
one payload to ``out``, ``ended`` says its end event arrived and ``eof_ok`` whether the
body may end now.
"""

from __future__ import annotations

from ._base import Framing, ProtocolDecoder
from .anthropic import AnthropicDecoder
from .gemini import GeminiDecoder
from .ollama import OllamaDecoder
from .openai_chat import OpenAIChatDecoder
from .openai_completions import OpenAICompletionsDecoder
from .openai_responses import OpenAIResponsesDecoder

__all__ = [
    "PROTOCOLS",
    "AnthropicDecoder",
    "Framing",
    "GeminiDecoder",
    "OllamaDecoder",
    "OpenAIChatDecoder",
    "OpenAICompletionsDecoder",
    "OpenAIResponsesDecoder",
    "ProtocolDecoder",
    "decoder_class",
    "get_decoder",
]

#: Protocol name → decoder class.
PROTOCOLS: dict[str, type[ProtocolDecoder]] = {
    cls.protocol: cls
    for cls in (
        OpenAIChatDecoder,
        OpenAICompletionsDecoder,
        OpenAIResponsesDecoder,
        AnthropicDecoder,
        GeminiDecoder,
        OllamaDecoder,
    )
}


def decoder_class(protocol: str) -> type[ProtocolDecoder]:
    """The decoder class of ``protocol``; ValueError names the known ones otherwise."""
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise ValueError(f"unknown protocol {protocol!r}; known: {known}") from None


def get_decoder(protocol: str) -> ProtocolDecoder:
    """A new decoder for ``protocol``."""
    return decoder_class(protocol)()
