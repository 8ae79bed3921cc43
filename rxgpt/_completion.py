"""Accumulating deltas into the final message: :class:`Accumulator` and :class:`Completion`.

Strategy: per choice, text-like channels are lists of fragments (append is O(1), the join
happens once, when a result is asked for); tool calls keep their argument fragments the
same way. Usage replaces, never adds. Nothing is re-copied per delta, so a 1 MB answer
costs what ``"".join`` over its fragments costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._deltas import (
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
from ._json import loads
from ._partial_json import PartialJSON

if TYPE_CHECKING:
    from ._errors import RxgptError

__all__ = [
    "Accumulator",
    "Choice",
    "Completion",
    "CompletionState",
    "ContentPart",
    "Snapshot",
    "ToolCall",
]

#: How a stream ended: its end signal arrived ("complete"), the body stopped without it
#: ("truncated"), a failure ("error") or the consumer gave up ("cancelled").
CompletionState = Literal["complete", "truncated", "error", "cancelled"]


@dataclass(slots=True)
class ToolCall:
    """One tool call of a choice; ``arguments`` is the raw JSON text as streamed.

    Protocols that send arguments as objects (Gemini, Ollama) have them serialised once,
    compactly. ``item_id`` is the provider's item id when it differs from ``id``.
    """

    index: int
    id: str | None
    name: str
    arguments: str
    type: str = "function"
    item_id: str | None = None

    def parsed_arguments(self) -> Any:
        """The arguments parsed as JSON (``{}`` when empty); raises on invalid JSON."""
        return loads(self.arguments) if self.arguments.strip() else {}

    def partial_arguments(self) -> Any:
        """The arguments parsed tolerantly: what is there so far, even if cut off.

        Raises :class:`~rxgpt._partial_json.PartialJSONError` (a ValueError) if the text
        can never become valid JSON.
        """
        from ._partial_json import parse_partial

        return parse_partial(self.arguments, {}) if self.arguments.strip() else {}


@dataclass(slots=True)
class ContentPart:
    """One content part of a choice, in wire order (Anthropic block, Responses item).

    ``raw`` is the provider's start payload; ``text`` / ``reasoning`` / ``signature`` what
    was accumulated into it; ``tool_call`` the call it carries, if any.
    """

    part: int
    kind: str
    raw: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    reasoning: str | None = None
    signature: str | None = None
    annotations: list[Any] = field(default_factory=list)
    tool_call: ToolCall | None = None


@dataclass(slots=True)
class Choice:
    """One answer of the model.

    ``text`` and ``refusal`` are None when the stream never carried that channel (as in
    OpenAI's ``message.content``), else the concatenated fragments. ``reasoning`` is the
    raw reasoning text, ``reasoning_summary`` the summarised one; ``signatures`` the opaque
    reasoning tokens, verbatim and in order (needed to replay the turn).
    """

    index: int
    text: str | None = None
    refusal: str | None = None
    role: str = "assistant"
    reasoning: str | None = None
    reasoning_summary: str | None = None
    signatures: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    parts: list[ContentPart] = field(default_factory=list)


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
    annotations: list[dict[str, Any]] = field(default_factory=list)
    #: False when the body ended without its ``data: [DONE]`` marker, after every choice
    #: had finished (accepted: see :class:`~rxgpt.MissingEndMarker`).
    end_marker: bool = True

    @property
    def text(self) -> str:
        """The text of choice 0 ("" if there is none)."""
        return (self.choices[0].text or "") if self.choices else ""

    @property
    def finish_reason(self) -> str | None:
        """The neutral finish reason of choice 0."""
        return self.choices[0].finish_reason if self.choices else None

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls of choice 0."""
        return self.choices[0].tool_calls if self.choices else []

    def to_openai(self) -> dict[str, Any]:
        """The ``chat.completion`` object the non-streaming OpenAI API would have returned."""
        from ._shape_openai import to_openai

        return to_openai(self)

    def to_anthropic(self) -> dict[str, Any]:
        """The Anthropic ``message`` object (as the anthropic SDK accumulates it)."""
        from ._shape_anthropic import to_anthropic

        return to_anthropic(self)

    def to_responses(self) -> dict[str, Any]:
        """The OpenAI Responses ``response`` object (as openai-python's helper builds it)."""
        from ._shape_responses import to_responses

        return to_responses(self)


def _runs(fragments: Sequence[str], runs: Sequence[tuple[int, int]]) -> dict[int, str]:
    """Join ``fragments`` per part: ``runs`` lists (part, first fragment) boundaries."""
    pieces: dict[int, list[str]] = {}
    for n, (part, start) in enumerate(runs):
        stop = runs[n + 1][1] if n + 1 < len(runs) else len(fragments)
        pieces.setdefault(part, []).extend(fragments[start:stop])
    return {part: "".join(texts) for part, texts in pieces.items()}


def _index(state: _ToolState) -> int:
    """The sort key of a choice's tool calls."""
    return state.index


class _ToolState:
    __slots__ = (
        "args",
        "fed",
        "final",
        "id",
        "index",
        "item_id",
        "name",
        "parser",
        "part",
        "type",
    )

    def __init__(self, index: int, call_id: str | None, name: str, kind: str) -> None:
        self.index = index
        self.id = call_id
        self.name = name
        self.type = kind
        self.item_id: str | None = None
        self.part = -1
        self.args: list[str] = []
        self.final: str | None = None
        self.parser: PartialJSON | None = None  # made on first partial read
        self.fed = 0  # fragments already given to the parser

    def partial(self) -> Any:
        """The arguments parsed so far; feeds the parser only the new fragments."""
        if self.parser is None:
            self.parser = PartialJSON()
        parser = self.parser
        for fragment in self.args[self.fed :]:
            parser.feed(fragment)
        self.fed = len(self.args)
        return parser.value({})

    def build(self) -> ToolCall:
        arguments = self.final if self.final is not None else "".join(self.args)
        return ToolCall(self.index, self.id, self.name, arguments, self.type, self.item_id)


class _ChoiceState:
    __slots__ = (
        "annotations",
        "finish",
        "index",
        "logprobs",
        "order",
        "raw_finish",
        "reasoning",
        "reasoning_runs",
        "refusal",
        "role",
        "signatures",
        "starts",
        "text",
        "text_part",
        "text_runs",
        "tools",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.text: list[str] | None = None
        self.text_runs: list[tuple[int, int]] = []
        self.text_part = -1  # the part of the last text fragment
        self.refusal: list[str] | None = None
        # (lists made on first use, as `text`: most choices have none of these, and each
        # list is an object the garbage collector tracks for as long as the stream is open)
        self.reasoning: list[str] | None = None
        self.reasoning_runs: list[tuple[int, int]] | None = None  # (part * 2 + summary, start)
        self.signatures: list[tuple[int, str]] | None = None
        self.tools: dict[int, _ToolState] = {}
        self.finish: str | None = None
        self.raw_finish: str | None = None
        self.logprobs: dict[str, Any] | None = None
        self.annotations: list[dict[str, Any]] | None = None
        self.starts: dict[int, tuple[str, dict[str, Any]]] = {}  # PartStart by part
        self.order: dict[int, None] = {}  # parts in order of first appearance

    def add_text(self, delta: TextDelta) -> None:
        if self.text is None:
            self.text = []
        if delta.part != self.text_part:
            self.text_part = delta.part
            self.text_runs.append((delta.part, len(self.text)))
            self.order.setdefault(delta.part)
        self.text.append(delta.text)

    def add_reasoning(self, delta: ReasoningDelta) -> None:
        key = delta.part * 2 + (1 if delta.summary else 0)
        reasoning, runs = self.reasoning, self.reasoning_runs
        if reasoning is None or runs is None:
            reasoning = self.reasoning = []
            runs = self.reasoning_runs = []
        if not runs or runs[-1][0] != key:
            runs.append((key, len(reasoning)))
            self.order.setdefault(delta.part)
        reasoning.append(delta.text)

    def build(self) -> Choice:
        # (each channel's work only when it was sent: most choices are text alone)
        tools = [t.build() for t in sorted(self.tools.values(), key=_index)] if self.tools else []
        logprobs = None
        if self.logprobs is not None:
            logprobs = {
                key: list(value) if value is not None else None
                for key, value in self.logprobs.items()
            }
        reasoning = summary = None
        if self.reasoning:
            by_kind = _runs(self.reasoning, self.reasoning_runs or ())
            raw_reasoning = [text for key, text in by_kind.items() if not key % 2]
            summaries = [text for key, text in by_kind.items() if key % 2]
            reasoning = "".join(raw_reasoning) if raw_reasoning else None
            summary = "".join(summaries) if summaries else None
        return Choice(
            index=self.index,
            text="".join(self.text) if self.text is not None else None,
            refusal="".join(self.refusal) if self.refusal is not None else None,
            role=self.role,
            reasoning=reasoning,
            reasoning_summary=summary,
            signatures=[value for _, value in self.signatures] if self.signatures else [],
            tool_calls=tools,
            finish_reason=self.finish,
            raw_finish_reason=self.raw_finish,
            logprobs=logprobs,
            annotations=list(self.annotations or ()),
            parts=self._parts(tools),
        )

    def _parts(self, tools: list[ToolCall]) -> list[ContentPart]:
        """The choice's content parts in wire order ([] for one undivided message)."""
        undivided = len(self.order) <= 1 and (
            not self.tools or all(t.part < 0 for t in self.tools.values())
        )
        if not self.starts and undivided:
            return []  # one undivided message (OpenAI chat): no parts to describe
        texts = _runs(self.text or [], self.text_runs)
        reasoning = _runs(self.reasoning or (), self.reasoning_runs or ())
        signatures = dict(self.signatures or ())  # the last signature of a part wins
        tool_by_part = self._tool_parts(tools)
        order = dict.fromkeys([*self.starts, *self.order, *tool_by_part])
        return [self._part(part, texts, reasoning, signatures, tool_by_part) for part in order]

    def _tool_parts(self, tools: list[ToolCall]) -> dict[int, ToolCall]:
        """The built tool calls (``tools``, in index order) that are content parts, by part."""
        states = sorted(self.tools.values(), key=_index)
        return {
            state.part: call for state, call in zip(states, tools, strict=True) if state.part >= 0
        }

    def _part(
        self,
        part: int,
        texts: dict[int, str],
        reasoning: dict[int, str],
        signatures: dict[int, str],
        tool_by_part: dict[int, ToolCall],
    ) -> ContentPart:
        """Content part ``part``, from the joined channels and the tool calls by part."""
        kind, raw = self.starts.get(part, ("", {}))
        thinking = [reasoning[k] for k in (part * 2, part * 2 + 1) if k in reasoning]
        return ContentPart(
            part=part,
            kind=kind or ("tool_call" if part in tool_by_part else "text"),
            raw=raw,
            text=texts.get(part),
            reasoning="".join(thinking) if thinking else None,
            signature=signatures.get(part),
            annotations=[a["payload"] for a in self.annotations or () if a["part"] == part],
            tool_call=tool_by_part.get(part),
        )


class Accumulator:
    """Sans-IO accumulator: :meth:`add` deltas, then :meth:`completion` builds the result.

    Every :meth:`add` is O(1): fragments are appended and joined only when a result is
    built. ``count`` is the number of deltas added (heartbeats excluded).
    """

    __slots__ = (
        "_annotations",
        "_choices",
        "_info",
        "_last",
        "_meta",
        "_protocol",
        "count",
        "end_marker",
        "usage",
    )

    def __init__(self, protocol: str = "openai-chat") -> None:
        self._protocol = protocol
        self._choices: dict[int, _ChoiceState] = {}
        self._last: _ChoiceState | None = None  # the choice of the previous delta
        self._info: dict[str, Any] = {}  # the provider's top-level fields, as sent
        self._meta: dict[str, Any] = {}  # id, model, created
        self._annotations: list[dict[str, Any]] = []
        self.usage: Usage | None = None
        self.count = 0
        #: False once a :class:`~rxgpt.MissingEndMarker` was added.
        self.end_marker = True

    def _choice(self, index: int) -> _ChoiceState:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState(index)
        return state

    def add(self, delta: Delta) -> None:
        """Fold one delta into the state."""
        self.count += 1
        cls = delta.__class__
        if cls is TextDelta:
            text: TextDelta = delta  # type: ignore[assignment]
            c = self._last
            if c is None or c.index != text.choice:
                c = self._last = self._choice(text.choice)
            if c.text_part == text.part:
                c.text.append(text.text)  # type: ignore[union-attr]
            else:
                c.add_text(text)
        elif cls is ToolCallArguments:
            fragment: ToolCallArguments = delta  # type: ignore[assignment]
            c = self._last
            if c is None or c.index != fragment.choice:
                c = self._last = self._choice(fragment.choice)
            tool = c.tools.get(fragment.index)
            if tool is None:
                tool = c.tools[fragment.index] = _ToolState(fragment.index, None, "", "function")
            tool.args.append(fragment.arguments)
        else:
            self._add_other(delta)

    def add_all(self, deltas: list[Delta]) -> None:
        """Fold a batch of deltas (the result is the same as :meth:`add` for each).

        A batch of text fragments continuing the text of the previous delta's choice and
        part (the bulk of a long answer) is taken in one list comprehension.
        """
        if len(deltas) < 2:  # (one delta a read, when a server writes each token alone)
            if deltas:
                self.add(deltas[0])
            return
        first = deltas[0]
        c = self._last
        if (
            first.__class__ is TextDelta
            and c is not None
            and c.index == first.choice
            and c.text_part == first.part
        ):
            choice, part = c.index, c.text_part
            texts = [
                d.text
                for d in deltas
                if d.__class__ is TextDelta and d.choice == choice and d.part == part
            ]
            if len(texts) == len(deltas):
                c.text.extend(texts)  # type: ignore[union-attr]
                self.count += len(texts)
                return
        add = self.add
        for delta in deltas:
            add(delta)

    def _add_other(self, delta: Delta) -> None:
        """Fold a delta of any class but the two :meth:`add` takes inline (see _ADDERS)."""
        adder = _ADDERS.get(delta.__class__)
        if adder is None:  # a subclass: the adder of its nearest known base, if any
            adder = next((_ADDERS[cls] for cls in delta.__class__.__mro__ if cls in _ADDERS), None)
        if adder is not None:
            adder(self, delta)

    def _add_refusal(self, delta: RefusalDelta) -> None:
        """A refusal fragment: starts the refusal channel or extends it."""
        c = self._choice(delta.choice)
        if c.refusal is None:
            c.refusal = [delta.text]
        else:
            c.refusal.append(delta.text)

    def _add_reasoning(self, delta: ReasoningDelta) -> None:
        """A reasoning (or reasoning summary) fragment."""
        self._choice(delta.choice).add_reasoning(delta)

    def _add_role(self, delta: RoleDelta) -> None:
        """The role of a choice's message (the last one wins)."""
        self._choice(delta.choice).role = delta.role

    def _add_tool_start(self, delta: ToolCallStart) -> None:
        """A tool call begins (or a known one gets its id, name, item id or part)."""
        tools = self._choice(delta.choice).tools
        tool = tools.get(delta.index)
        if tool is None:
            tool = tools[delta.index] = _ToolState(delta.index, delta.id, delta.name, delta.type)
        else:  # never overwrite a known id or name with an empty one
            tool.id = tool.id or delta.id
            tool.name = tool.name or delta.name
        tool.item_id = tool.item_id or delta.item_id
        if delta.part >= 0:
            tool.part = delta.part

    def _add_tool_end(self, delta: ToolCallEnd) -> None:
        """A tool call ends; its authoritative arguments, if sent, replace the fragments."""
        tool = self._choice(delta.choice).tools.get(delta.index)
        if tool is not None and delta.arguments is not None:
            tool.final = delta.arguments

    def _add_finish(self, delta: FinishDelta) -> None:
        """A choice's finish reason: the first one is kept."""
        c = self._choice(delta.choice)
        if c.finish is None:  # a finish is accepted once per choice
            c.finish = delta.reason
            c.raw_finish = delta.raw_reason

    def _add_usage(self, delta: UsageDelta) -> None:
        """Usage so far: replaces the earlier one."""
        self.usage = delta.usage

    def _add_info(self, delta: ResponseInfo) -> None:
        """Response metadata: protocol, top-level fields, and id, model and created."""
        if delta.protocol:
            self._protocol = delta.protocol
        if delta.raw:
            self._info.update(delta.raw)
        for key in ("id", "model", "created"):
            value = getattr(delta, key)
            if value is not None:
                self._meta[key] = value

    def _add_part_start(self, delta: PartStart) -> None:
        """A content part begins: its kind and start payload."""
        c = self._choice(delta.choice)
        c.starts[delta.part] = (delta.kind, delta.raw)
        c.order.setdefault(delta.part)

    def _add_signature(self, delta: ReasoningSignature) -> None:
        """An opaque reasoning token, kept with its part."""
        c = self._choice(delta.choice)
        if c.signatures is None:
            c.signatures = []
        c.signatures.append((delta.part, delta.value))

    def _add_annotation(self, delta: AnnotationDelta) -> None:
        """An annotation of a choice, or of the whole response (``choice`` None)."""
        record = {"kind": delta.kind, "payload": delta.payload, "part": delta.part}
        if delta.choice is None:
            self._annotations.append(record)
        else:
            c = self._choice(delta.choice)
            if c.annotations is None:
                c.annotations = []
            c.annotations.append(record)

    def _add_no_content(self, delta: Heartbeat | ErrorDelta) -> None:
        """A heartbeat or error: not content, so not counted."""
        self.count -= 1

    def _add_missing_marker(self, delta: MissingEndMarker) -> None:
        """The body ended without its end marker (accepted): not content either."""
        self.end_marker = False
        self.count -= 1

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

    def partial_arguments(self, index: int = 0, choice: int = 0) -> Any:
        """Tool call ``index``'s arguments parsed so far, while they stream.

        Incremental: each call parses only the fragments that arrived since the previous
        one. Raises :class:`~rxgpt._partial_json.PartialJSONError` on text that can never
        become valid JSON.
        """
        c = self._choices.get(choice)
        tool = c.tools.get(index) if c is not None else None
        return tool.partial() if tool is not None else {}

    def text(self, choice: int = 0) -> str:
        """The text of ``choice`` so far."""
        c = self._choices.get(choice)
        if c is None or c.text is None:
            return ""
        return "".join(c.text)

    def completion(
        self, state: CompletionState = "complete", error: RxgptError | None = None
    ) -> Completion:
        """Build the :class:`Completion` from everything added so far."""
        info = self._meta
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
            raw=dict(self._info),
            annotations=list(self._annotations),
            end_marker=self.end_marker,
        )


#: Delta class → the :class:`Accumulator` method that folds it (:meth:`Accumulator.add`
#: takes TextDelta and ToolCallArguments inline; a class not listed adds nothing).
_ADDERS: dict[type[Delta], Callable[[Accumulator, Any], None]] = {
    RefusalDelta: Accumulator._add_refusal,
    ReasoningDelta: Accumulator._add_reasoning,
    RoleDelta: Accumulator._add_role,
    ToolCallStart: Accumulator._add_tool_start,
    ToolCallEnd: Accumulator._add_tool_end,
    LogprobsDelta: Accumulator._logprobs,
    FinishDelta: Accumulator._add_finish,
    UsageDelta: Accumulator._add_usage,
    ResponseInfo: Accumulator._add_info,
    PartStart: Accumulator._add_part_start,
    ReasoningSignature: Accumulator._add_signature,
    AnnotationDelta: Accumulator._add_annotation,
    Heartbeat: Accumulator._add_no_content,
    MissingEndMarker: Accumulator._add_missing_marker,
    ErrorDelta: Accumulator._add_no_content,
}


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
