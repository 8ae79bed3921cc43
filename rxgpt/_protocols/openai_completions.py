"""OpenAI legacy Completions chunks (``text_completion``) → neutral deltas.

Strategy: like chat, but each choice carries a ``text`` fragment instead of a delta, and
the finish reason rides on the chunk with the last text. Legacy logprobs objects are
kept as they are. The end signal is ``data: [DONE]``, handled by the JSON layer.
"""

from __future__ import annotations

from typing import Any

from .._deltas import (
    Delta,
    FinishDelta,
    LogprobsDelta,
    ResponseInfo,
    RoleDelta,
    TextDelta,
    UsageDelta,
    normalize_finish_reason,
)
from ._base import ProtocolDecoder
from .openai_chat import openai_usage

__all__ = ["OpenAICompletionsDecoder"]


class OpenAICompletionsDecoder(ProtocolDecoder):
    """Sans-IO decoder of parsed legacy completion chunks into deltas."""

    protocol = "openai-completions"
    has_done_marker = True

    __slots__ = ("_finished", "_info", "_seen")

    def __init__(self) -> None:
        super().__init__()
        self._info = False
        # (sets as dicts of None: not tracked by the garbage collector; see openai_chat)
        self._seen: dict[int, None] = {}
        self._finished: dict[int, None] = {}

    @property
    def eof_ok(self) -> bool:
        """Every choice seen has finished: the body may end without ``[DONE]``."""
        return bool(self._seen) and self._seen.keys() <= self._finished.keys()

    def feed_chunk(self, chunk: dict[str, Any], out: list[Delta]) -> None:
        """Append the deltas of one parsed chunk to ``out``."""
        if not self._info and chunk.get("id"):
            self._info = True
            raw = {k: v for k, v in chunk.items() if k not in ("choices", "usage")}
            out.append(
                ResponseInfo(
                    chunk.get("id"), chunk.get("model"), chunk.get("created"), raw, self.protocol
                )
            )
        for choice in chunk.get("choices") or ():
            i = choice.get("index", 0)
            if i not in self._seen:
                self._seen[i] = None
                out.append(RoleDelta(i, "assistant"))
            text = choice.get("text")
            if isinstance(text, str) and text:
                out.append(TextDelta(i, text))
            if choice.get("logprobs") is not None:
                out.append(LogprobsDelta(i, [choice["logprobs"]], None))
            finish = choice.get("finish_reason")
            if finish:
                out.append(FinishDelta(i, normalize_finish_reason(finish), finish))
                self._finished[i] = None
        usage = chunk.get("usage")
        if usage:
            out.append(UsageDelta(openai_usage(usage)))
