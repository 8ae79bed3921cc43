"""OpenAI Chat Completions chunks (``chat.completion.chunk``) → neutral deltas.

Strategy: one pass over each chunk dict with ``dict.get``; the common chunk (one choice, a
``content`` fragment) takes a short path, anything else (role, refusal, tool calls,
reasoning, the first empty content) the general one. Tool-call fragments are keyed by
(choice, wire index); a fragment that brings a new ``id`` at an index that is already open
starts a new call (servers that put every parallel call at index 0), and fragments without
an ``index`` (Mistral) are numbered in order of appearance. OpenAI sends no per-call end,
so :class:`ToolCallEnd` is synthesised for every open call when its choice finishes.
The end signal of this protocol is ``data: [DONE]``, handled by the JSON layer.
"""

from __future__ import annotations

from typing import Any

from .._delta_types import MAX_CHOICES
from .._deltas import (
    AnnotationDelta,
    Delta,
    FinishDelta,
    LogprobsDelta,
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
    normalize_finish_reason,
)
from ._base import SHAPE_ERRORS, ProtocolDecoder, ShapeError

__all__ = ["OpenAIChatDecoder", "openai_usage"]

_DROP_TOP = ("choices", "usage", "obfuscation")


def openai_usage(raw: dict[str, Any]) -> Usage:
    """Normalise an OpenAI-style ``usage`` object."""
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens")
    if cached is None:
        cached = raw.get("prompt_cache_hit_tokens")
    return Usage(
        input_tokens=raw.get("prompt_tokens"),
        output_tokens=raw.get("completion_tokens"),
        total_tokens=raw.get("total_tokens"),
        cached_input_tokens=cached,
        reasoning_tokens=completion_details.get("reasoning_tokens"),
        cache_write_tokens=prompt_details.get("cache_write_tokens"),
        cost=raw.get("cost"),
        raw=raw,
    )


class _Calls:
    """Tool-call bookkeeping of one choice: wire index → neutral index, open calls."""

    __slots__ = ("by_wire", "ids", "next_index", "open")

    def __init__(self) -> None:
        self.by_wire: dict[int, int] = {}
        self.ids: dict[int, str | None] = {}
        self.open: list[int] = []
        self.next_index = 0


class OpenAIChatDecoder(ProtocolDecoder):
    """Sans-IO decoder of parsed Chat Completions chunks into deltas.

    Call :meth:`feed` with each parsed chunk (a dict) and a list to append deltas to.
    ``ended`` is always False: this protocol ends with ``[DONE]``, outside the JSON;
    ``eof_ok`` says every choice seen has its finish reason (a body may then end without
    the marker, see :func:`~rxgpt._body_end.body_end`).
    """

    protocol = "openai-chat"
    has_done_marker = True

    __slots__ = (
        "_calls",
        "_content_seen",
        "_fingerprint",
        "_finished",
        "_info",
        "_refusal_seen",
        "_refused",
        "_roles",
        "_seen",
    )

    def __init__(self) -> None:
        super().__init__()
        self._info = False
        self._fingerprint: object = None
        self._roles: dict[int, str] = {}
        # Sets of choice numbers, kept as dicts of None: a dict of ints is not tracked by the
        # garbage collector, a set always is (five fewer tracked objects per open stream).
        self._content_seen: dict[int, None] = {}
        self._refusal_seen: dict[int, None] = {}
        self._refused: dict[int, None] = {}  # choices with a non-empty refusal
        self._calls: dict[int, _Calls] = {}
        self._seen: dict[int, None] = {}  # every valid choice index met
        self._finished: dict[Any, None] = {}  # the choices with a finish reason

    @property
    def eof_ok(self) -> bool:
        """Every choice seen has finished: the body may end without ``[DONE]``."""
        return bool(self._seen) and self._seen.keys() <= self._finished.keys()

    def feed_chunk(self, chunk: dict[str, Any], out: list[Delta]) -> None:
        """Append the deltas of one parsed chunk to ``out`` (see :meth:`feed_many`)."""
        self._chunk(chunk, chunk.get("choices"), out)

    def feed_many(self, chunks: list[Any], out: list[Delta]) -> None:
        """Decode a read's chunks: the common chunk (one text fragment) is handled inline.

        Raises :class:`ShapeError` for a chunk of the wrong shape (see the base class).
        """
        append = out.append
        info = self._info
        # Performance: the common chunk's TextDelta is built with object.__new__ and three
        # slot stores, which costs about half of calling the dataclass (its __init__ is a
        # Python function); the result is the same object as TextDelta(index, content).
        new, text_delta = object.__new__, TextDelta
        seen = self._seen
        chunk = None
        try:
            for chunk in chunks:
                if info and chunk.__class__ is dict:
                    choices = chunk.get("choices")
                    if choices and len(choices) == 1:
                        ch = choices[0]
                        delta = ch.get("delta")
                        # (`a is b is None`: both are None)
                        if (
                            delta
                            and len(delta) == 1
                            and ch.get("finish_reason") is ch.get("logprobs") is None
                            and len(ch) <= 4
                        ):
                            content = delta.get("content")
                            index = ch.get("index", 0)
                            if (
                                content
                                and content.__class__ is str
                                and index.__class__ is int
                                and index in seen  # a valid choice met before
                                and not chunk.get("usage")
                            ):
                                text = new(text_delta)
                                text.choice = index
                                text.text = content
                                text.part = 0
                                append(text)
                                continue
                self.feed(chunk, out)
                info = self._info
        except SHAPE_ERRORS as exc:
            raise ShapeError(chunk) from exc

    def _chunk(self, chunk: dict[str, Any], choices: Any, out: list[Delta]) -> None:
        """Any chunk: metadata, every choice's delta and extras, finish, usage."""
        if not self._info or chunk.get("system_fingerprint") != self._fingerprint:
            self._response_info(chunk, out)
        if choices:
            seen = self._seen
            for ch in choices:
                i = ch.get("index", 0)
                if i.__class__ is int and 0 <= i < MAX_CHOICES:
                    seen[i] = None  # (any other index fails check_delta with its deltas)
                delta = ch.get("delta")
                if delta:
                    self._delta(i, delta, out)
                logprobs = ch.get("logprobs")
                if logprobs is not None:
                    out.append(LogprobsDelta(i, logprobs.get("content"), logprobs.get("refusal")))
                if "content_filter_results" in ch or "content_filter_offsets" in ch:
                    self._choice_extras(i, ch, out)
                finish = ch.get("finish_reason")
                if finish:
                    self._finish(i, finish, out)
        usage = chunk.get("usage")
        if usage:
            out.append(UsageDelta(openai_usage(usage)))
        elif "x_groq" in chunk:
            usage = (chunk["x_groq"] or {}).get("usage")
            if usage:
                out.append(UsageDelta(openai_usage(usage)))

    def _response_info(self, chunk: dict[str, Any], out: list[Delta]) -> None:
        if not chunk.get("id"):
            # Azure's prompt-filter chunk (and its late annotation chunks) have no ids.
            results = chunk.get("prompt_filter_results") or chunk.get("prompt_annotations")
            if results:
                out.append(AnnotationDelta(None, "prompt_filter", results))
            return
        fingerprint = chunk.get("system_fingerprint")
        if self._info and fingerprint is None:
            return
        self._fingerprint = fingerprint
        raw = {k: v for k, v in chunk.items() if k not in _DROP_TOP}
        if not self._info:
            self._info = True
            out.append(
                ResponseInfo(
                    chunk.get("id"), chunk.get("model"), chunk.get("created"), raw, self.protocol
                )
            )
        else:
            out.append(ResponseInfo(None, None, None, {"system_fingerprint": self._fingerprint}))

    def _delta(self, i: int, delta: dict[str, Any], out: list[Delta]) -> None:
        """One choice's delta: role, content, refusal, reasoning and tool calls, in order."""
        role = delta.get("role")
        if role and self._roles.get(i) != role:
            self._roles[i] = role
            out.append(RoleDelta(i, role))
        content = delta.get("content")
        if content is not None:
            self._content(i, content, out)
        refusal = delta.get("refusal")
        if refusal is not None:
            self._refusal(i, refusal, out)
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and type(reasoning) is str:
            out.append(ReasoningDelta(i, reasoning))
        details = delta.get("reasoning_details")
        if details:
            self._reasoning_details(i, details, out)
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            self._tool_calls(i, tool_calls, out)
        function_call = delta.get("function_call")
        if function_call:
            self._tool_calls(i, [{"index": 0, "type": "function", "function": function_call}], out)

    def _content(self, i: int, content: Any, out: list[Delta]) -> None:
        """A delta's ``content``: text, typed parts, or the first empty string of a choice."""
        if content:
            if content.__class__ is str:
                out.append(TextDelta(i, content))
            elif content.__class__ is list:
                self._content_parts(i, content, out)
        elif content == "" and i not in self._content_seen:
            self._content_seen[i] = None
            out.append(TextDelta(i, ""))

    def _refusal(self, i: int, refusal: Any, out: list[Delta]) -> None:
        """A delta's ``refusal``: a fragment, or the first empty string of a choice."""
        if refusal:
            self._refused[i] = None
            out.append(RefusalDelta(i, refusal))
        elif refusal == "" and i not in self._refusal_seen:
            self._refusal_seen[i] = None
            out.append(RefusalDelta(i, ""))

    def _reasoning_details(self, i: int, details: Any, out: list[Delta]) -> None:
        """OpenRouter's ``reasoning_details``: opaque entries (encrypted, summary) kept."""
        for detail in details:
            if isinstance(detail, dict) and detail.get("type") != "reasoning.text":
                value = detail.get("data") or detail.get("signature") or detail.get("summary")
                if isinstance(value, str):
                    out.append(ReasoningSignature(i, value, str(detail.get("type"))))

    def _choice_extras(self, i: int, ch: dict[str, Any], out: list[Delta]) -> None:
        """Azure content-filter results and offsets (also on annotation-only chunks)."""
        results = ch.get("content_filter_results")
        offsets = ch.get("content_filter_offsets")
        if results or offsets:
            payload: dict[str, Any] = {"content_filter_results": results}
            if offsets:
                payload["content_filter_offsets"] = offsets
            out.append(AnnotationDelta(i, "content_filter", payload))

    def _content_parts(self, i: int, parts: list[Any], out: list[Delta]) -> None:
        """Mistral's typed content parts: text, and thinking made of text parts."""
        for part in parts:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" and part.get("text"):
                out.append(TextDelta(i, part["text"]))
            elif kind == "thinking":
                for inner in part.get("thinking") or []:
                    if isinstance(inner, dict) and inner.get("text"):
                        out.append(ReasoningDelta(i, inner["text"]))

    def _tool_calls(self, i: int, fragments: list[dict[str, Any]], out: list[Delta]) -> None:
        """Tool-call fragments of choice ``i``: new calls start, arguments are passed on."""
        calls = self._calls.get(i)
        if calls is None:
            calls = self._calls[i] = _Calls()
        for frag in fragments:
            wire = frag.get("index")
            call_id = frag.get("id")
            function = frag.get("function") or frag.get("custom") or {}
            index = self._continued_call(calls, wire, call_id)
            if index is None:
                index = self._start_call(i, calls, wire, call_id, frag, function, out)
            arguments = function.get("arguments")
            if arguments is None:
                arguments = function.get("input")
            if arguments:
                out.append(ToolCallArguments(i, index, arguments))

    @staticmethod
    def _continued_call(calls: _Calls, wire: Any, call_id: Any) -> int | None:
        """The open call a fragment continues (taking a late id), None if it starts one."""
        index = calls.by_wire.get(wire) if wire is not None else None
        if wire is None and call_id is None and calls.open:
            index = calls.open[-1]  # index-less continuation fragment
        if index is None or (call_id and calls.ids.get(index) not in (None, call_id)):
            return None  # new, or a new id at an open index: a new call
        if call_id and calls.ids.get(index) is None:
            calls.ids[index] = call_id
        return index

    @staticmethod
    def _start_call(
        i: int,
        calls: _Calls,
        wire: Any,
        call_id: Any,
        frag: dict[str, Any],
        function: Any,
        out: list[Delta],
    ) -> int:
        """Open the next call of choice ``i`` for a fragment; returns its neutral index."""
        index = calls.next_index
        calls.next_index += 1
        if wire is not None:
            calls.by_wire[wire] = index
        calls.ids[index] = call_id
        calls.open.append(index)
        out.append(
            ToolCallStart(
                i,
                index,
                call_id,
                function.get("name") or "",
                frag.get("type") or "function",
            )
        )
        return index

    def _finish(self, i: int, raw: str, out: list[Delta]) -> None:
        calls = self._calls.get(i)
        if calls is not None:
            for index in calls.open:
                out.append(ToolCallEnd(i, index))
            calls.open.clear()
        reason = normalize_finish_reason(raw)
        if reason == "stop" and i in self._refused:
            reason = "refusal"
        out.append(FinishDelta(i, reason, raw))
        self._finished[i] = None
