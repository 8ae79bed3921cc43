"""A resumable stream relay on Redis Streams: one LLM answer, followed from anywhere.

The producer relays a :class:`~rxgpt.ChatStream` (or any observable of deltas) to one Redis
Stream key, one entry per network read (:func:`publish`); any process reads it back, from
the start or after any entry ID, as a delta stream with the ChatStream API that ends as the
producer's did (:func:`subscribe`); browsers follow it as SSE whose event IDs are the entry
IDs, so ``EventSource`` resumes exactly where it was cut (:func:`create_app`). See
docs/relay.md. Needs the ``redis`` extra (``pip install rxgpt[redis]``): its names are loaded
on first use, so importing this package (the CLI does, to build its parser) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._bounds import (
    DEFAULT_BLOCK,
    DEFAULT_LEASE,
    DEFAULT_MAX_PENDING,
    DEFAULT_MAXLEN,
    DEFAULT_START_TIMEOUT,
    DEFAULT_TTL,
)

if TYPE_CHECKING:
    from ._connect import connect, ping
    from ._encoding import (
        ENCODING_VERSION,
        EndInfo,
        StartInfo,
        decode_delta,
        decode_deltas,
        decode_error,
        encode_delta,
        encode_deltas,
        encode_error,
    )
    from ._publish import Relay, lease_key, publish
    from ._subscribe import Entry, EntryReader, RelayedStream, parse_entry, subscribe
    from ._web import STREAM_ROUTE, ChunkShaper, create_app, openai_chunk, stream_handler

#: Public name → the private module that defines it (imported on first use).
_LAZY = {
    "connect": "_connect",
    "ping": "_connect",
    "ENCODING_VERSION": "_encoding",
    "EndInfo": "_encoding",
    "StartInfo": "_encoding",
    "decode_delta": "_encoding",
    "decode_deltas": "_encoding",
    "decode_error": "_encoding",
    "encode_delta": "_encoding",
    "encode_deltas": "_encoding",
    "encode_error": "_encoding",
    "Relay": "_publish",
    "lease_key": "_publish",
    "publish": "_publish",
    "Entry": "_subscribe",
    "EntryReader": "_subscribe",
    "RelayedStream": "_subscribe",
    "parse_entry": "_subscribe",
    "subscribe": "_subscribe",
    "STREAM_ROUTE": "_web",
    "ChunkShaper": "_web",
    "create_app": "_web",
    "openai_chunk": "_web",
    "stream_handler": "_web",
}

__all__ = [
    "DEFAULT_BLOCK",
    "DEFAULT_LEASE",
    "DEFAULT_MAXLEN",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_TTL",
    "ENCODING_VERSION",
    "STREAM_ROUTE",
    "ChunkShaper",
    "EndInfo",
    "Entry",
    "EntryReader",
    "Relay",
    "RelayedStream",
    "StartInfo",
    "connect",
    "create_app",
    "decode_delta",
    "decode_deltas",
    "decode_error",
    "encode_delta",
    "encode_deltas",
    "encode_error",
    "lease_key",
    "openai_chunk",
    "parse_entry",
    "ping",
    "publish",
    "stream_handler",
    "subscribe",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (these modules import redis)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("redis"):
            raise
        raise ImportError(
            f"rxgpt.relay.{name} needs redis-py: pip install 'rxgpt[redis]'"
        ) from error
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
