"""One decoder per provider protocol, each turning parsed stream items into neutral deltas.

Every decoder is a sans-IO class with ``feed(item, out)`` (append the deltas of one parsed
item to ``out``), a ``protocol`` name, ``end_in_band`` (whether the protocol's end signal is
an item the decoder sees, like Anthropic's ``message_stop``, rather than ``data: [DONE]``)
and ``ended`` (that end signal has arrived).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..deltas import Delta
from .openai_chat import OpenAIChatDecoder

__all__ = ["PROTOCOLS", "ProtocolDecoder", "get_decoder"]


class ProtocolDecoder(Protocol):
    """What every protocol decoder provides."""

    protocol: str
    end_in_band: bool
    ended: bool

    def feed(self, item: Any, out: list[Delta]) -> None: ...


#: Protocol name → decoder class.
PROTOCOLS: dict[str, type[ProtocolDecoder]] = {
    "openai-chat": OpenAIChatDecoder,
}

#: Protocols whose stream ends with ``data: [DONE]``.
DONE_MARKER_PROTOCOLS = {"openai-chat", "openai-completions"}


def get_decoder(protocol: str) -> ProtocolDecoder:
    """A new decoder for ``protocol``; ValueError names the known ones otherwise."""
    try:
        cls = PROTOCOLS[protocol]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise ValueError(f"unknown protocol {protocol!r}; known: {known}") from None
    return cls()
