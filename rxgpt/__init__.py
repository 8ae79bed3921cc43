"""rxgpt: consume streamed LLM responses as ReactiveX pipelines in asyncio.

    aiohttp transport → parse_sse → decode_json → extract_deltas → fan-out → accumulate

The public API is re-exported here; see ``docs/`` for the concepts and the operators.
"""

from __future__ import annotations

from ._aio import FlowControl, ObservableIterator, from_async_iterable, to_async_iterable
from ._chat_stream import ChatStream
from ._client import Client
from ._completion import (
    Accumulator,
    Choice,
    Completion,
    CompletionState,
    ContentPart,
    Snapshot,
    ToolCall,
)
from ._decoder import StreamDecoder
from ._deltas import (
    FINISH_REASONS,
    AnnotationDelta,
    Delta,
    ErrorDelta,
    FinishDelta,
    Heartbeat,
    LogprobsDelta,
    MissingEndMarker,
    PartStart,
    ReasoningDelta,
    ReasoningSignature,
    RefusalDelta,
    ResponseInfo,
    RoleDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageDelta,
)
from ._errors import (
    AuthenticationError,
    ClientClosedError,
    CredentialsConflictError,
    DecodeError,
    EventTooLarge,
    HTTPStatusError,
    InvalidURLError,
    LateSubscriberError,
    MissingAPIKeyError,
    MissingDone,
    RateLimitError,
    RxgptError,
    StreamCancelled,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    StreamTooLong,
    TransportError,
)
from ._eventsource import event_source
from ._fanout import Fanout, ReplayPolicy
from ._ndjson import IncompleteLine
from ._observers import DeltaLogger, StreamMetrics, TextPrinter
from ._operators import (
    accumulate,
    decode_json,
    decode_stream,
    extract_deltas,
    parse_ndjson,
    parse_sse,
    snapshots,
)
from ._partial_json import PartialJSON, PartialJSONError, parse_partial
from ._protocols import PROTOCOLS
from ._providers import PROVIDERS, Provider
from ._recording import record, replay
from ._resilience import Retry, Timeouts
from ._sse import Comment, IncompleteEvent, ServerSentEvent, SSEDecoder
from ._transport import pool_tracing, request

__version__ = "0.1.0"

__all__ = [
    "FINISH_REASONS",
    "PROTOCOLS",
    "PROVIDERS",
    "Accumulator",
    "AnnotationDelta",
    "AuthenticationError",
    "ChatStream",
    "Choice",
    "Client",
    "ClientClosedError",
    "Comment",
    "Completion",
    "CompletionState",
    "ContentPart",
    "CredentialsConflictError",
    "DecodeError",
    "Delta",
    "DeltaLogger",
    "ErrorDelta",
    "EventTooLarge",
    "Fanout",
    "FinishDelta",
    "FlowControl",
    "HTTPStatusError",
    "Heartbeat",
    "IncompleteEvent",
    "IncompleteLine",
    "InvalidURLError",
    "LateSubscriberError",
    "LogprobsDelta",
    "MissingAPIKeyError",
    "MissingDone",
    "MissingEndMarker",
    "ObservableIterator",
    "PartStart",
    "PartialJSON",
    "PartialJSONError",
    "Provider",
    "RateLimitError",
    "ReasoningDelta",
    "ReasoningSignature",
    "RefusalDelta",
    "ReplayPolicy",
    "ResponseInfo",
    "Retry",
    "RoleDelta",
    "RxgptError",
    "SSEDecoder",
    "ServerSentEvent",
    "Snapshot",
    "StreamCancelled",
    "StreamDecoder",
    "StreamError",
    "StreamInterrupted",
    "StreamMetrics",
    "StreamTimeout",
    "StreamTooLong",
    "TextDelta",
    "TextPrinter",
    "Timeouts",
    "ToolCall",
    "ToolCallArguments",
    "ToolCallEnd",
    "ToolCallStart",
    "TransportError",
    "Usage",
    "UsageDelta",
    "accumulate",
    "decode_json",
    "decode_stream",
    "event_source",
    "extract_deltas",
    "from_async_iterable",
    "parse_ndjson",
    "parse_partial",
    "parse_sse",
    "pool_tracing",
    "record",
    "replay",
    "request",
    "snapshots",
    "to_async_iterable",
]
