"""The end of the body: may the stream end here, and if not, which error says why.

Stated once for every path: a stream is complete when its protocol's end signal arrived
(the done marker for the protocols that have one, their own end event for the others), or
when the protocol allows the body to end now (Gemini, after every candidate's finish
reason; OpenAI without ``[DONE]``, after every choice's finish reason, as openai-python,
the Vercel AI SDK and LiteLLM accept it, unless ``require_done``); otherwise it was
truncated. An error document sent outside the SSE framing (see
``ProtocolDecoder.unframed_errors``) is the provider's error, and says so.
"""

from __future__ import annotations

from typing import Any

from ._errors import MissingDone, RxgptError, StreamError, StreamInterrupted
from ._fusion import End
from ._json import JSONDecodeError, loads
from ._protocols import ProtocolDecoder

__all__ = ["body_end", "marker_missing"]


def body_end(decoder: ProtocolDecoder, end: End, *, require_done: bool = False) -> Exception | None:
    """The stream's outcome when its payloads ended as ``end`` says: None when complete.

    A :class:`~rxgpt.MissingDone` from the payload stage means the body ended cleanly
    without the marker: complete when every choice had finished (``decoder.eof_ok``),
    unless ``require_done``.
    """
    error = end.error
    if error is not None and not isinstance(error, MissingDone):
        return error
    if decoder.unframed_errors and end.unframed:
        unframed = _unframed_error(end.unframed, end.events)
        if unframed is not None:
            return unframed
    if decoder.has_done_marker:
        if marker_missing(decoder, end) and not end.cut and decoder.eof_ok and not require_done:
            return None  # every choice finished, at an event boundary: only the marker is missing
        return error  # the marker came (or the payload stage was told there is none)
    if decoder.eof_ok:
        return None
    return StreamInterrupted(
        f"the {decoder.protocol} body ended before its end signal{end.message}"
    )


def marker_missing(decoder: ProtocolDecoder, end: End) -> bool:
    """The body ended cleanly without the done marker of a protocol that has one."""
    return decoder.has_done_marker and isinstance(end.error, MissingDone)


def _unframed_error(text: str, index: int | None) -> RxgptError | None:
    """The provider's error when ``text`` is a JSON error document (Gemini's shape)."""
    try:
        obj: Any = loads(text)
    except JSONDecodeError:
        return None
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        obj = obj[0]
    if isinstance(obj, dict) and obj.get("error"):
        return StreamError(obj["error"], index=index)
    return None
