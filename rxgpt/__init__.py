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
from ._decoder import DONE, StreamDecoder
from ._deltas import (
    FINISH_REASONS,
    AnnotationDelta,
    Delta,
    ErrorDelta,
    FinishDelta,
    Heartbeat,
    LogprobsDelta,
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
    DecodeError,
    EventTooLarge,
    HTTPStatusError,
    RateLimitError,
    RxgptError,
    StreamCancelled,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    TransportError,
)
from ._eventsource import event_source
from ._fanout import Fanout, LateSubscriberError
from ._json import BACKEND as JSON_BACKEND
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
from ._providers import PROVIDERS, Provider
from ._resilience import Retry, Timeouts
from ._sse import Comment, ServerSentEvent, SSEDecoder
from ._transport import request

__version__ = "0.1.0"

__all__ = [
    "DONE",
    "FINISH_REASONS",
    "JSON_BACKEND",
    "PROVIDERS",
    "Accumulator",
    "AnnotationDelta",
    "AuthenticationError",
    "ChatStream",
    "Choice",
    "Client",
    "Comment",
    "Completion",
    "CompletionState",
    "ContentPart",
    "DecodeError",
    "Delta",
    "ErrorDelta",
    "EventTooLarge",
    "Fanout",
    "FinishDelta",
    "FlowControl",
    "HTTPStatusError",
    "Heartbeat",
    "LateSubscriberError",
    "LogprobsDelta",
    "ObservableIterator",
    "PartStart",
    "PartialJSON",
    "PartialJSONError",
    "Provider",
    "RateLimitError",
    "ReasoningDelta",
    "ReasoningSignature",
    "RefusalDelta",
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
    "StreamTimeout",
    "TextDelta",
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
    "request",
    "snapshots",
    "to_async_iterable",
]
