"""rxgpt: consume streamed LLM responses as ReactiveX pipelines in asyncio.

    aiohttp transport → parse_sse → decode_json → extract_deltas → fan-out → accumulate

The public API is re-exported here; see ``docs/`` for the concepts and the operators.

Each name is imported from its module when it is first used (``from rxgpt import Client``
or ``rxgpt.Client``), so ``import rxgpt`` itself costs nothing: the ``rxgpt`` command can
then catch a Ctrl+C while its modules load (:mod:`rxgpt.__main__`). The names are listed
three times, as in pydantic's root: ``__all__``, the imports type checkers read, and
:data:`_MODULES` for the first use; ``tests/test_public_api.py`` checks that they agree.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (what type checkers and IDEs read; at run time, see __getattr__)
    from collections.abc import Callable

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

#: The module that defines each public name.
_MODULES: dict[str, str] = {
    "FlowControl": "._aio",
    "ObservableIterator": "._aio",
    "from_async_iterable": "._aio",
    "to_async_iterable": "._aio",
    "ChatStream": "._chat_stream",
    "Client": "._client",
    "Accumulator": "._completion",
    "Choice": "._completion",
    "Completion": "._completion",
    "CompletionState": "._completion",
    "ContentPart": "._completion",
    "Snapshot": "._completion",
    "ToolCall": "._completion",
    "StreamDecoder": "._decoder",
    "FINISH_REASONS": "._deltas",
    "AnnotationDelta": "._deltas",
    "Delta": "._deltas",
    "ErrorDelta": "._deltas",
    "FinishDelta": "._deltas",
    "Heartbeat": "._deltas",
    "LogprobsDelta": "._deltas",
    "MissingEndMarker": "._deltas",
    "PartStart": "._deltas",
    "ReasoningDelta": "._deltas",
    "ReasoningSignature": "._deltas",
    "RefusalDelta": "._deltas",
    "ResponseInfo": "._deltas",
    "RoleDelta": "._deltas",
    "TextDelta": "._deltas",
    "ToolCallArguments": "._deltas",
    "ToolCallEnd": "._deltas",
    "ToolCallStart": "._deltas",
    "Usage": "._deltas",
    "UsageDelta": "._deltas",
    "AuthenticationError": "._errors",
    "ClientClosedError": "._errors",
    "CredentialsConflictError": "._errors",
    "DecodeError": "._errors",
    "EventTooLarge": "._errors",
    "HTTPStatusError": "._errors",
    "InvalidURLError": "._errors",
    "LateSubscriberError": "._errors",
    "MissingAPIKeyError": "._errors",
    "MissingDone": "._errors",
    "RateLimitError": "._errors",
    "RxgptError": "._errors",
    "StreamCancelled": "._errors",
    "StreamError": "._errors",
    "StreamInterrupted": "._errors",
    "StreamTimeout": "._errors",
    "StreamTooLong": "._errors",
    "TransportError": "._errors",
    "event_source": "._eventsource",
    "Fanout": "._fanout",
    "ReplayPolicy": "._fanout",
    "IncompleteLine": "._ndjson",
    "DeltaLogger": "._observers",
    "StreamMetrics": "._observers",
    "TextPrinter": "._observers",
    "accumulate": "._operators",
    "decode_json": "._operators",
    "decode_stream": "._operators",
    "extract_deltas": "._operators",
    "parse_ndjson": "._operators",
    "parse_sse": "._operators",
    "snapshots": "._operators",
    "PartialJSON": "._partial_json",
    "PartialJSONError": "._partial_json",
    "parse_partial": "._partial_json",
    "PROTOCOLS": "._protocols",
    "PROVIDERS": "._providers",
    "Provider": "._providers",
    "record": "._recording",
    "replay": "._recording",
    "Retry": "._resilience",
    "Timeouts": "._resilience",
    "Comment": "._sse",
    "IncompleteEvent": "._sse",
    "ServerSentEvent": "._sse",
    "SSEDecoder": "._sse",
    "pool_tracing": "._transport",
    "request": "._transport",
}


def _lazy(
    package: str, modules: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module ``__getattr__`` and ``__dir__`` (PEP 562): a public name is
    imported from its module in ``modules`` on first use, then a plain global of
    ``namespace``. (Here, not in a module of its own, so that ``import rxgpt`` loads
    nothing; ``rxgpt.mock`` uses it too.)
    """

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *modules})

    return __getattr__, __dir__


__getattr__, __dir__ = _lazy(__name__, _MODULES, globals())
