"""The delta stage: parsed payloads → neutral deltas, through one protocol's decoder.

It feeds each read's payloads to the decoder at once, ends at the protocol's end event,
and at the end of the body asks :func:`~rxgpt._body_end.body_end` whether the stream was
complete. An in-band provider error is also reported as an :class:`~rxgpt.ErrorDelta`
before the stream fails with it, so subscribers see it in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._body_end import body_end
from ._deltas import Delta, ErrorDelta
from ._errors import RxgptError, StreamError
from ._fusion import End, StageSpec
from ._protocols import ProtocolDecoder, get_decoder

__all__ = ["DeltaExtractor", "DeltasSpec", "error_delta"]


def error_delta(error: StreamError) -> ErrorDelta:
    """The :class:`~rxgpt.ErrorDelta` that reports an in-band error to subscribers."""
    return ErrorDelta(error.error, error.message, error.retryable)


class DeltaExtractor:
    """Stage: payloads → deltas for ``protocol``; ends at its end event or the body's end."""

    __slots__ = ("_feed_many", "decoder", "end")

    def __init__(self, protocol: str = "openai-chat") -> None:
        self.decoder: ProtocolDecoder = get_decoder(protocol)
        self._feed_many = self.decoder.feed_many
        self.end: End | None = None

    def feed(self, batch: list[Any]) -> list[Delta]:
        """Decode a read's payloads; stop at the protocol's end event or its error."""
        out: list[Delta] = []
        try:
            self._feed_many(batch, out)
        except RxgptError as exc:
            self._fail(exc, out)
            return out
        if self.decoder.ended:
            self.end = End()
        return out

    def close(self, end: End) -> list[Delta]:
        """The payloads ended: complete, truncated, or failed (see ``body_end``)."""
        out: list[Delta] = []
        error = body_end(self.decoder, end)
        if error is None:
            self.end = End(events=end.events)
        else:
            self._fail(error, out)
        return out

    def _fail(self, error: Exception, out: list[Delta]) -> None:
        if isinstance(error, StreamError):
            out.append(error_delta(error))
        self.end = End(error)


@dataclass(frozen=True, slots=True)
class DeltasSpec:
    """:func:`~rxgpt.extract_deltas` in a chain."""

    protocol: str = "openai-chat"

    def build(self, downstream: StageSpec | None) -> DeltaExtractor:
        """A delta stage."""
        return DeltaExtractor(self.protocol)
