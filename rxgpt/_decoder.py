"""The whole decoder of one protocol: its framing, payload and delta stages, composed.

:func:`stream_specs` is the one place that says which stages decode a protocol's body;
:func:`~rxgpt.decode_stream` chains them as operators and :class:`StreamDecoder` runs them
as a plain sans-IO object. Neither adds a rule of its own.
"""

from __future__ import annotations

import functools

from ._deltas import Delta
from ._extract import DeltaExtractor, DeltasSpec
from ._framing import NDJSONSpec, SSEFraming, SSESpec
from ._fusion import End, Pipeline, StageSpec
from ._payload import DONE, PayloadSpec
from ._protocols import ProtocolDecoder, decoder_class
from ._sse import _Framer

__all__ = ["StreamDecoder", "stream_specs"]


@functools.lru_cache(maxsize=256)
def stream_specs(
    protocol: str,
    *,
    heartbeats: bool = False,
    max_event_bytes: int | None = None,
    flush_incomplete: bool = False,
    require_done: bool = False,
) -> tuple[StageSpec, ...]:
    """The stages that decode ``protocol``'s body: framing, payload, deltas.

    (Specs are immutable, so streams with the same settings share them.)
    """
    cls = decoder_class(protocol)
    framing: StageSpec
    if cls.framing == "ndjson":
        framing = NDJSONSpec(max_line_bytes=max_event_bytes)
    else:
        framing = SSESpec(heartbeats, max_event_bytes, flush_incomplete)
    done = DONE if cls.has_done_marker else None
    return (framing, PayloadSpec(done), DeltasSpec(protocol, require_done))


class StreamDecoder:
    """Sans-IO decoder of a whole streamed response: ``feed(bytes) -> list[Delta]``.

    ``protocol`` picks the provider decoder and its framing (see :data:`PROTOCOLS`).
    ``heartbeats=True`` turns SSE comments into :class:`~rxgpt.Heartbeat` deltas;
    ``flush_incomplete=True`` accepts a final event whose blank line never came, if its
    data is JSON (for servers that omit it); ``require_done=True`` rejects an OpenAI body
    that ends without ``[DONE]`` even after every finish reason. As in h11, :meth:`feed`
    never loses what it decoded: when a chunk also held something bad, it returns the good
    deltas and sets :attr:`error`; :attr:`done` becomes True at the protocol's end signal.
    Either way the decoder then takes nothing more. :meth:`close` marks the end of the body.
    """

    __slots__ = ("_pipeline", "protocol")

    def __init__(
        self,
        protocol: str = "openai-chat",
        *,
        max_event_bytes: int | None = None,
        heartbeats: bool = False,
        flush_incomplete: bool = False,
        require_done: bool = False,
    ) -> None:
        self.protocol = protocol
        specs = stream_specs(
            protocol,
            heartbeats=heartbeats,
            max_event_bytes=max_event_bytes,
            flush_incomplete=flush_incomplete,
            require_done=require_done,
        )
        self._pipeline = Pipeline.of(specs)

    def feed(self, data: bytes) -> list[Delta]:
        """Decode one chunk of the body; return the deltas it completed."""
        return self._pipeline.feed([data])

    def close(self) -> list[Delta]:
        """The body ended: flush, and set :attr:`error` if the stream may not end here."""
        return self._pipeline.close(End())

    @property
    def error(self) -> Exception | None:
        """The error that ended the stream, once it did."""
        end = self._pipeline.end
        return end.error if end is not None else None

    @property
    def done(self) -> bool:
        """True once the stream ended without error."""
        end = self._pipeline.end
        return end is not None and end.error is None

    @property
    def sse(self) -> _Framer | None:
        """The SSE decoder (``last_event_id``, ``retry``, ``comments``, ``unframed``);
        None for NDJSON."""
        framing = self._pipeline.stages[0]
        return framing.decoder if isinstance(framing, SSEFraming) else None

    @property
    def decoder(self) -> ProtocolDecoder:
        """The protocol decoder."""
        stage = self._pipeline.stages[-1]
        assert isinstance(stage, DeltaExtractor)
        return stage.decoder
