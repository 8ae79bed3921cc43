"""The delta stage: parsed payloads → neutral deltas, through one protocol's decoder.

It feeds each read's payloads to the decoder at once, ends at the protocol's end event,
and at the end of the body asks :func:`~rxgpt._body_end.body_end` whether the stream was
complete. An in-band provider error is also reported as an :class:`~rxgpt.ErrorDelta`
before the stream fails with it, so subscribers see it in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._body_end import body_end, marker_missing
from ._deltas import Delta, ErrorDelta, MissingEndMarker
from ._errors import DecodeError, RxgptError, StreamError
from ._fusion import End, StageSpec
from ._json import dumps
from ._protocols import ProtocolDecoder, get_decoder
from ._protocols._base import ShapeError

__all__ = ["DeltaExtractor", "DeltasSpec", "error_delta"]


def error_delta(error: StreamError) -> ErrorDelta:
    """The :class:`~rxgpt.ErrorDelta` that reports an in-band error to subscribers."""
    return ErrorDelta(error.error, error.message, error.retryable)


class DeltaExtractor:
    """Stage: payloads → deltas for ``protocol``; ends at its end event or the body's end."""

    __slots__ = ("_feed_many", "decoder", "end", "fed", "require_done")

    def __init__(self, protocol: str = "openai-chat", *, require_done: bool = False) -> None:
        self.decoder: ProtocolDecoder = get_decoder(protocol)
        #: A body that ends without the done marker fails, even after every finish reason.
        self.require_done = require_done
        self._feed_many = self.decoder.feed_many
        self.end: End | None = None
        #: Payloads fed so far (heartbeats included): the index of a bad payload.
        self.fed = 0

    def feed(self, batch: list[Any]) -> list[Delta]:
        """Decode a read's payloads; stop at the protocol's end event or its error."""
        out: list[Delta] = []
        try:
            self._feed_many(batch, out)
        except ShapeError as exc:
            self._fail(self._shape_error(batch, exc), out)
            return out
        except RxgptError as exc:
            self._fail(exc, out)
            return out
        self.fed += len(batch)
        if self.decoder.ended:
            self.end = End()
        return out

    def _shape_error(self, batch: list[Any], exc: ShapeError) -> DecodeError:
        """The typed error for a payload of valid JSON but the wrong shape."""
        position = next((n for n, item in enumerate(batch) if item is exc.item), 0)
        cause = exc.__cause__
        what = f"{type(cause).__name__}: {cause}" if cause is not None else "bad shape"
        return DecodeError(
            f"unexpected shape of a {self.decoder.protocol} payload ({what})",
            raw=dumps(exc.item),
            index=self.fed + position,
        )

    def close(self, end: End) -> list[Delta]:
        """The payloads ended: complete, truncated, or failed (see ``body_end``)."""
        out: list[Delta] = []
        error = body_end(self.decoder, end, require_done=self.require_done)
        if error is None:
            if marker_missing(self.decoder, end):  # accepted without the marker: say so
                out.append(MissingEndMarker())
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
    require_done: bool = False

    def build(self, downstream: StageSpec | None) -> DeltaExtractor:
        """A delta stage."""
        return DeltaExtractor(self.protocol, require_done=self.require_done)
