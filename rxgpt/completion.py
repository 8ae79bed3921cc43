"""Accumulating deltas into the final message: :class:`Accumulator` and :class:`Completion`.

Strategy: per choice, text-like channels are lists of fragments (append is O(1), the join
happens once, when a result is asked for); tool calls keep their argument fragments the
same way. Usage replaces, never adds. Nothing is re-copied per delta, so a 1 MB answer
costs what ``"".join`` over its fragments costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._json import loads
from .deltas import (
    Delta,
    FinishDelta,
    Heartbeat,
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
)

if TYPE_CHECKING:
    from .errors import RxgptError

__all__ = ["Accumulator", "Choice", "Completion", "CompletionState", "Snapshot", "ToolCall"]

#: How a stream ended: its end signal arrived ("complete"), the body stopped without it
#: ("truncated"), a failure ("error") or the consumer gave up ("cancelled").
CompletionState = Literal["complete", "truncated", "error", "cancelled"]


@dataclass(slots=True)
class ToolCall:
    """One tool call of a choice; ``arguments`` is the raw JSON text as streamed."""

    index: int
    id: str | None
    name: str
    arguments: str
    type: str = "function"

    def parsed_arguments(self) -> Any:
        """The arguments parsed as JSON (``{}`` when empty); raises on invalid JSON."""
        return loads(self.arguments) if self.arguments.strip() else {}


@dataclass(slots=True)
class Choice:
    """One answer of the model.

    ``text`` and ``refusal`` are None when the stream never carried that channel (as in
    OpenAI's ``message.content``), else the concatenated fragments.
    """

    index: int
    text: str | None = None
    refusal: str | None = None
    role: str = "assistant"
    reasoning: str | None = None
    signatures: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


@dataclass(slots=True)
class Completion:
    """The final (or partial) result of one streamed response."""

    state: CompletionState
    choices: list[Choice]
    usage: Usage | None = None
    id: str | None = None
    model: str | None = None
    created: int | None = None
    protocol: str = "openai-chat"
    error: RxgptError | None = None
    deltas: int = 0
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The text of choice 0 ("" if there is none)."""
        return (self.choices[0].text or "") if self.choices else ""

    @property
    def finish_reason(self) -> str | None:
        """The neutral finish reason of choice 0."""
        return self.choices[0].finish_reason if self.choices else None

    def to_openai(self) -> dict[str, Any]:
        """The ``chat.completion`` object the non-streaming OpenAI API would have returned."""
        result: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }
        if self.protocol.startswith("openai-chat"):
            result.update(self.raw)
        result["object"] = "chat.completion"
        choices = []
        for choice in self.choices:
            message: dict[str, Any] = {
                "role": choice.role,
                "content": choice.text,
                "refusal": choice.refusal,
            }
            if choice.reasoning is not None:
                message["reasoning_content"] = choice.reasoning
            if choice.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": call.type,
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in choice.tool_calls
                ]
            choices.append(
                {
                    "index": choice.index,
                    "message": message,
                    "logprobs": choice.logprobs,
                    "finish_reason": choice.raw_finish_reason
                    if self.protocol.startswith("openai-chat")
                    else _OPENAI_FINISH.get(choice.finish_reason or "", choice.finish_reason),
                }
            )
        result["choices"] = choices
        result["usage"] = self._openai_usage()
        return result

    def _openai_usage(self) -> dict[str, Any] | None:
        usage = self.usage
        if usage is None:
            return None
        if self.protocol.startswith("openai-chat") and usage.raw is not None:
            return usage.raw
        prompt = usage.input_tokens or 0
        completion = usage.output_tokens or 0
        out: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": usage.total_tokens
            if usage.total_tokens is not None
            else prompt + completion,
        }
        if usage.cached_input_tokens is not None:
            out["prompt_tokens_details"] = {"cached_tokens": usage.cached_input_tokens}
        if usage.reasoning_tokens is not None:
            out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
        return out


_OPENAI_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "error": "stop",
    "other": "stop",
}


class _ToolState:
    __slots__ = ("args", "done", "id", "index", "name", "type")

    def __init__(self, index: int, call_id: str | None, name: str, kind: str) -> None:
        self.index = index
        self.id = call_id
        self.name = name
        self.type = kind
        self.args: list[str] = []
        self.done = False


class _ChoiceState:
    __slots__ = (
        "finish",
        "index",
        "logprobs",
        "raw_finish",
        "reasoning",
        "refusal",
        "role",
        "signatures",
        "text",
        "tools",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.text: list[str] | None = None
        self.refusal: list[str] | None = None
        self.reasoning: list[str] | None = None
        self.signatures: list[str] = []
        self.tools: dict[int, _ToolState] = {}
        self.finish: str | None = None
        self.raw_finish: str | None = None
        self.logprobs: dict[str, Any] | None = None

    def build(self) -> Choice:
        tools = [
            ToolCall(t.index, t.id, t.name, "".join(t.args), t.type)
            for t in sorted(self.tools.values(), key=lambda t: t.index)
        ]
        logprobs = None
        if self.logprobs is not None:
            logprobs = {
                "content": list(self.logprobs["content"])
                if self.logprobs["content"] is not None
                else None,
                "refusal": list(self.logprobs["refusal"])
                if self.logprobs["refusal"] is not None
                else None,
            }
        return Choice(
            index=self.index,
            text="".join(self.text) if self.text is not None else None,
            refusal="".join(self.refusal) if self.refusal is not None else None,
            role=self.role,
            reasoning="".join(self.reasoning) if self.reasoning is not None else None,
            signatures=list(self.signatures),
            tool_calls=tools,
            finish_reason=self.finish,
            raw_finish_reason=self.raw_finish,
            logprobs=logprobs,
        )


class Accumulator:
    """Sans-IO accumulator: :meth:`add` deltas, then :meth:`completion` builds the result.

    Every :meth:`add` is O(1): fragments are appended and joined only when a result is
    built. ``count`` is the number of deltas added.
    """

    __slots__ = ("_choices", "_info", "_protocol", "count", "usage")

    def __init__(self, protocol: str = "openai-chat") -> None:
        self._protocol = protocol
        self._choices: dict[int, _ChoiceState] = {}
        self._info: dict[str, Any] = {}
        self.usage: Usage | None = None
        self.count = 0

    def _choice(self, index: int) -> _ChoiceState:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState(index)
        return state

    def add(self, delta: Delta) -> None:
        """Fold one delta into the state."""
        self.count += 1
        cls = type(delta)
        if cls is TextDelta:
            assert isinstance(delta, TextDelta)
            c = self._choice(delta.choice)
            if c.text is None:
                c.text = [delta.text]
            else:
                c.text.append(delta.text)
        elif cls is ToolCallArguments:
            assert isinstance(delta, ToolCallArguments)
            tool = self._choice(delta.choice).tools.get(delta.index)
            if tool is None:
                tool = self._choice(delta.choice).tools[delta.index] = _ToolState(
                    delta.index, None, "", "function"
                )
            tool.args.append(delta.arguments)
        else:
            self._add_other(delta)

    def add_all(self, deltas: list[Delta]) -> None:
        """Fold a batch of deltas."""
        for delta in deltas:
            self.add(delta)

    def _add_other(self, delta: Delta) -> None:
        if isinstance(delta, RefusalDelta):
            c = self._choice(delta.choice)
            if c.refusal is None:
                c.refusal = [delta.text]
            else:
                c.refusal.append(delta.text)
        elif isinstance(delta, ReasoningDelta):
            c = self._choice(delta.choice)
            if c.reasoning is None:
                c.reasoning = [delta.text]
            else:
                c.reasoning.append(delta.text)
        elif isinstance(delta, RoleDelta):
            self._choice(delta.choice).role = delta.role
        elif isinstance(delta, ToolCallStart):
            tools = self._choice(delta.choice).tools
            tool = tools.get(delta.index)
            if tool is None:
                tools[delta.index] = _ToolState(delta.index, delta.id, delta.name, delta.type)
            else:  # never overwrite a known id or name with an empty one
                tool.id = tool.id or delta.id
                tool.name = tool.name or delta.name
        elif isinstance(delta, ToolCallEnd):
            tool = self._choice(delta.choice).tools.get(delta.index)
            if tool is not None:
                tool.done = True
        elif isinstance(delta, LogprobsDelta):
            self._logprobs(delta)
        elif isinstance(delta, FinishDelta):
            c = self._choice(delta.choice)
            c.finish = delta.reason
            c.raw_finish = delta.raw_reason
        elif isinstance(delta, UsageDelta):
            self.usage = delta.usage
        elif isinstance(delta, ResponseInfo):
            if delta.protocol:
                self._protocol = delta.protocol
            if delta.raw:
                self._info.update(delta.raw)
            for key in ("id", "model", "created"):
                value = getattr(delta, key)
                if value is not None:
                    self._info[key] = value
        elif isinstance(delta, ReasoningSignature):
            self._choice(delta.choice).signatures.append(delta.value)
        elif isinstance(delta, Heartbeat):
            self.count -= 1  # not content

    def _logprobs(self, delta: LogprobsDelta) -> None:
        # Same rule as openai-python: the first logprobs object seen is taken as is,
        # later ones extend its lists.
        c = self._choice(delta.choice)
        if c.logprobs is None:
            c.logprobs = {
                "content": list(delta.content) if delta.content is not None else None,
                "refusal": list(delta.refusal) if delta.refusal is not None else None,
            }
            return
        for key, value in (("content", delta.content), ("refusal", delta.refusal)):
            if value:
                if c.logprobs[key] is None:
                    c.logprobs[key] = []
                c.logprobs[key].extend(value)

    def text(self, choice: int = 0) -> str:
        """The text of ``choice`` so far."""
        c = self._choices.get(choice)
        if c is None or c.text is None:
            return ""
        if len(c.text) > 1:
            c.text[:] = ["".join(c.text)]
        return c.text[0]

    def completion(
        self, state: CompletionState = "complete", error: RxgptError | None = None
    ) -> Completion:
        """Build the :class:`Completion` from everything added so far."""
        info = self._info
        return Completion(
            state=state,
            choices=[self._choices[i].build() for i in sorted(self._choices)],
            usage=self.usage,
            id=info.get("id"),
            model=info.get("model"),
            created=info.get("created"),
            protocol=self._protocol,
            error=error,
            deltas=self.count,
            raw={k: v for k, v in info.items()},
        )


class Snapshot:
    """The running state after one delta: ``delta`` just applied, ``count`` applied so far.

    Building one is O(1); :attr:`text` and :meth:`completion` are computed on demand. The
    newest snapshot reads the live accumulator; an older one replays the delta log.
    """

    __slots__ = ("_acc", "_log", "count", "delta")

    def __init__(self, acc: Accumulator, log: list[Delta], delta: Delta) -> None:
        self._acc = acc
        self._log = log
        self.delta = delta
        self.count = len(log)

    def _accumulator(self) -> Accumulator:
        if self.count == len(self._log):
            return self._acc
        acc = Accumulator(self._acc._protocol)
        acc.add_all(self._log[: self.count])
        return acc

    @property
    def text(self) -> str:
        """Text of choice 0 at this point of the stream."""
        return self._accumulator().text(0)

    def completion(self) -> Completion:
        """The partial :class:`Completion` at this point of the stream."""
        return self._accumulator().completion("truncated")
