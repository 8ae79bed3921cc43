"""What every dialect (wire protocol) of the mock server shares: settings, requests, answers, flow.

Each wire protocol is a :class:`Dialect`: it parses its request body into a neutral
:class:`Prompt`, shapes errors in its own envelope, renders a whole answer, and makes a
:class:`StreamEncoder` that plans the streamed answer as ``(step, event bytes)`` pairs. The
flow around them (API key, JSON body, ``mock`` options, injected statuses, the engine's time
for a whole answer, preparing the streamed response and handing it to the engine) is
:func:`serve`, the same for all. API keys are compared, never logged or echoed.

Strategy: an encoder plans the stream as ``(step, event bytes)`` pairs (:class:`StepClock`:
step 0 for what goes out before the first token, then one step per chunk), and the engine
(:mod:`rxgpt.mock._engine`) writes step ``k`` of every running stream at its decode step
``k``. Everything constant in a chunk (the ``id``/``created``/``model`` header, the per-choice
prefix, the suffix and the line ends) is encoded once per request, token texts have cached
JSON encodings, and identical requests share one pre-encoded plan, so a decode step costs one
write per stream.

The answer (:class:`Answer`) is protocol-neutral: optional thinking tokens, the text tokens of
each choice (from :mod:`rxgpt.mock._text`, so the same conversation gives the same text on
every endpoint, streamed or not), and an optional tool call. Its ``stop`` is ``"stop"``,
``"length"`` (the request's token cap cut the text) or ``"tool"``; each dialect maps it to its
own finish reason.

Tool calls and thinking (the same on every endpoint that supports them):

* tool call: ``tool_choice`` ``"none"`` never calls; ``"required"`` (Anthropic ``any``,
  Gemini ``ANY``) or a named tool calls that (or the first) tool with arguments generated
  from its JSON schema (:mod:`rxgpt.mock._schema`), with no text beside the call; the
  ``mock`` object's ``tool_call`` (``true``, a name, ``false``) overrides both. Otherwise the
  legacy trigger: the request offers ``tools`` and its LAST message is a user message whose
  text contains the word "weather" (any case); the call is to the first tool, with
  arguments generated from its schema and the values of :data:`TOOL_ARGUMENTS` for the
  properties of those names that it declares, after the text, unless the token cap cut the
  text. A tool result as the last message (a ``tool`` message, a ``tool_result`` block, a
  ``function_call_output`` item) therefore gets a plain text answer.
* thinking: asked per protocol (chat ``reasoning_effort``, Anthropic ``thinking``, Responses
  ``reasoning.summary`` or ``effort`` (hidden), Gemini ``includeThoughts``, Ollama ``think``)
  or by ``mock.thinking``;
  the thinking text is :attr:`MockConfig.thinking_tokens` tokens from the same generator with
  another seed, sent before the text; the token cap counts it (as the APIs' caps count
  reasoning tokens), so a cap below it cuts the thinking and leaves no text.

The last section holds what OpenAI's chat and legacy completions dialects share (their
``data:`` chunks, usage and finish reasons).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from aiohttp import web

from ._engine import Engine
from ._engine import Sequence as EngineSequence
from ._faults import (
    BodyWriter,
    FaultOptions,
    error_body,
    json_response,
    run_interrupt,
    status_error,
)
from ._schema import fitting, json_pieces, value_for
from ._text import (
    content_texts,
    count_prompt_tokens,
    derived_id,
    dumps,
    encode_token,
    iter_tokens,
    request_digest,
)
from ._timing import PROFILES, REQUEST_KEYS, Timing, finite_number, output_length, parse_timing

__all__ = [
    "CONFIG_KEY",
    "CONTEXT_LENGTH",
    "COUNTERS_KEY",
    "JSON_NULL",
    "MAX_N",
    "OPENAI_FINISH_REASONS",
    "SERVER_ERROR_MESSAGE",
    "TOOL_ARGUMENTS",
    "Answer",
    "BadRequest",
    "Dialect",
    "MockConfig",
    "OpenAIChunks",
    "Prompt",
    "SseEncoder",
    "StepClock",
    "Stop",
    "StreamEncoder",
    "ToolCall",
    "alternative_tokens",
    "as_messages",
    "counted",
    "first_tool_name",
    "handler",
    "length_floor",
    "logprob_of",
    "make_answer",
    "model_of",
    "openai_finish",
    "openai_stream_flags",
    "openai_usage",
    "parse_tool_choice",
    "positive_int",
    "reasons",
    "response_schema",
    "serve",
    "stop_sequences",
    "stream_flag",
    "token_events",
    "tool_schemas",
    "tool_trigger",
]

TOOL_ARGUMENTS: Mapping[str, str] = {"city": "Paris", "unit": "celsius"}
"""The values the "weather" trigger's call gives the properties of these names (when the
tool declares them, and they are valid there); its other arguments are generated."""
_TOOL_FRAGMENT_CHARS = 7  # streamed tool arguments come in fragments of this many characters
_THINKING_CHOICE = -1  # the seed "choice" of the thinking text (answers use 0, 1, ...)
_WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)
SERVER_ERROR_MESSAGE = "The server had an error while processing your request."
"""The message of the in-band (mid-stream) server errors of OpenAI's streams."""
_SERVER_ERROR_EVENT = dumps(error_body(SERVER_ERROR_MESSAGE, "server_error", code=None))

Stop = Literal["stop", "length", "tool"]


@dataclass
class MockConfig:
    """Server-wide settings of the mock (each timing field has a ``rxgpt serve`` flag).

    Attributes:
        tokens: completion tokens per answer (per choice), before ``max_tokens`` caps it.
        ttft_ms: a constant time to first token (prefill), added to the per-token model.
        itl_ms: the decode step time: the gap between consecutive chunks of a stream.
        model: the model listed by ``/v1/models`` and used when a request names none.
        api_key: when set, requests must send it (``Authorization: Bearer``; ``x-api-key``
            for ``/v1/messages``; ``x-goog-api-key`` or ``?key=`` for Gemini), else 401.
        faults: default fault options (see :mod:`rxgpt.mock._faults`); a request's ``"mock"``
            object overrides them key by key.
        thinking_tokens: tokens of the thinking text, when a request asks for thinking.
        max_num_seqs: decode slots; more requests wait in a FIFO queue (``None``: unlimited).
        time_factor_under_load: step (and prefill) time multiplier with ``max_num_seqs``
            sequences running, linear from 1 with one.
        prefill_overhead_ms: fixed prefill time of every request.
        prefill_per_token_ms: prefill time per prompt token.
        itl_std_ms: standard deviation of the step time (normal, clamped to +-70 %).
        tokens_per_chunk: tokens per streamed chunk (one chunk per decode step).
        tokens_std: standard deviation of the answer length (normal, fixed per request).
        profile: a preset of :data:`~rxgpt.mock._timing.PROFILES` (``"llama-8b-h100"``...);
            it sets the fields that are left at their defaults.
        timeline: keep the ground-truth timeline of every request (``MockServer.timeline``).
        timeline_path: append it to this JSONL file as well (one line per request).
        seed: seed of the step-time jitter.
    """

    tokens: int = 64
    ttft_ms: float = 0
    itl_ms: float = 0
    model: str = "rxgpt-mock"
    api_key: str | None = field(default=None, repr=False)
    faults: dict[str, Any] = field(default_factory=dict)
    thinking_tokens: int = 16
    max_num_seqs: int | None = None
    time_factor_under_load: float = 1.0
    prefill_overhead_ms: float = 0.0
    prefill_per_token_ms: float = 0.0
    itl_std_ms: float = 0.0
    tokens_per_chunk: int = 1
    tokens_std: float = 0.0
    profile: str | None = None
    timeline: bool = False
    timeline_path: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.profile is not None:
            preset = PROFILES.get(self.profile)
            if preset is None:
                known = ", ".join(sorted(PROFILES))
                raise ValueError(f"unknown profile {self.profile!r}; known: {known}")
            defaults = {f.name: f.default for f in fields(MockConfig)}
            for name, value in preset.items():
                if getattr(self, name) == defaults[name]:
                    setattr(self, name, value)
        if self.max_num_seqs is not None and self.max_num_seqs < 1:
            raise ValueError("max_num_seqs must be at least 1 (or None: unlimited)")
        if self.time_factor_under_load <= 0:
            raise ValueError("time_factor_under_load must be > 0")
        if self.time_factor_under_load != 1 and self.max_num_seqs is None:
            raise ValueError(
                "time_factor_under_load needs max_num_seqs: the factor applies at that many "
                "running sequences"
            )
        if self.tokens_per_chunk < 1:
            raise ValueError("tokens_per_chunk must be at least 1")
        for name in ("ttft_ms", "itl_ms", "prefill_overhead_ms", "prefill_per_token_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("itl_std_ms", "tokens_std", "tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    def timing(self) -> Timing:
        """The server-wide :class:`~rxgpt.mock._timing.Timing`."""
        return Timing(
            ttft_ms=float(self.ttft_ms),
            prefill_overhead_ms=float(self.prefill_overhead_ms),
            prefill_per_token_ms=float(self.prefill_per_token_ms),
            itl_ms=float(self.itl_ms),
            itl_std_ms=float(self.itl_std_ms),
            tokens_per_chunk=self.tokens_per_chunk,
            tokens=self.tokens,
            tokens_std=float(self.tokens_std),
        )


CONFIG_KEY = web.AppKey("rxgpt_mock_config", MockConfig)
COUNTERS_KEY = web.AppKey("rxgpt_mock_counters", dict[str, int])
ENGINE_KEY = web.AppKey("rxgpt_mock_engine", Engine)
PLAN_CACHE_KEY = web.AppKey("rxgpt_mock_plans", dict[Any, list[tuple[float, bytes]]])
RAW_BODY_KEY = web.RequestKey("rxgpt_mock_raw_body", bytes)


class BadRequest(Exception):
    """A request the server answers with 400 (``param`` names the offending field)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Prompt:
    """A parsed request, whatever its protocol: what shapes the answer.

    Attributes:
        model: the requested model (or the configured one).
        messages: the conversation that the answer is a function of (chat-style messages;
            for several legacy prompts, the list of their conversations).
        stream: whether to stream the answer.
        max_tokens: the cap on tokens per choice (thinking included), if any.
        n: choices per conversation.
        include_usage: OpenAI ``stream_options.include_usage``.
        tool: the name of the tool to call (when the tool trigger fired), else ``None``.
        thinking: thinking tokens to send before the text (0: none).
        prompts: legacy completions with several prompts: one conversation per prompt.
        body: the request body, for fields a protocol echoes back.
        first_tool: the name of the first tool offered (for ``mock.tool_call: true``).
        tools: each offered tool's name -> its parameters' JSON schema.
        tool_choice: ``("auto" | "none" | "required", the forced tool's name or None)``.
        stop: stop sequences (the text ends before the first one; with ``n == 1``).
        logprobs: ``None``, or how many ``top_logprobs`` to send with every token.
        response_schema: structured output: the text is JSON valid under this schema.
        seed: the request's ``seed`` (another seed, another text).
        continuous_usage: vLLM's ``stream_options.continuous_usage_stats``.
        min_tokens: vLLM's ``min_tokens``: no end (nor stop sequence) before that many tokens.
        ignore_eos: vLLM's ``ignore_eos``: no end of sequence, only the cap ends the text.
        enum_text: Gemini's ``text/x.enum``: a string value is the text itself, not its JSON.
    """

    model: str
    messages: list[Any]
    stream: bool
    max_tokens: int | None = None
    n: int = 1
    include_usage: bool = False
    tool: str | None = None
    thinking: int = 0
    prompts: tuple[list[Any], ...] = ()
    body: Mapping[str, Any] = field(default_factory=dict)
    first_tool: str | None = None
    tools: Mapping[str, Any] = field(default_factory=dict)
    tool_choice: tuple[str, str | None] = ("auto", None)
    stop: tuple[str, ...] = ()
    logprobs: int | None = None
    response_schema: Mapping[str, Any] | None = None
    seed: int | None = None
    continuous_usage: bool = False
    min_tokens: int = 0
    ignore_eos: bool = False
    enum_text: bool = False

    def __post_init__(self) -> None:
        mode, named = self.tool_choice
        if mode == "required" and not self.tools:
            raise BadRequest(
                "Invalid 'tool_choice': a tool is required, and no tools were given.", "tool_choice"
            )
        if named is not None and named not in self.tools:
            raise BadRequest(
                f"Invalid 'tool_choice': tool '{named}' is not one of the tools given.",
                "tool_choice",
            )

    @property
    def input_tokens(self) -> int:
        """The prompt's tokens, as every usage and token count reports them."""
        return sum(count_prompt_tokens(conv) for conv in self.prompts or (self.messages,))


def positive_int(body: Mapping[str, Any], name: str, *, upper: int | None = None) -> int | None:
    """``body[name]`` as an int >= 1 (``None`` when absent).

    Raises:
        BadRequest: the value is not an integer in range.
    """
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"Invalid '{name}': expected an integer >= 1.", name)
    if upper is not None and value > upper:
        raise BadRequest(f"Invalid '{name}': expected at most {upper}.", name)
    return value


CONTEXT_LENGTH = 131_072
"""The mock model's context length, as its catalog states it: the most tokens an answer has
(per choice; a longer ``--tokens`` / ``mock.tokens`` ends there, finish ``length``) and a
request may ask for (nominal otherwise: a prompt of any length is taken)."""


def reasons(effort: Any) -> bool:
    """Whether an OpenAI ``reasoning_effort`` / ``reasoning.effort`` asks for reasoning
    (``"none"`` and ``"minimal"`` count as none)."""
    return effort not in (None, "none", "minimal")


def length_floor(body: Mapping[str, Any], cap: int | None) -> tuple[int, bool]:
    """vLLM's sampling extensions to OpenAI's APIs that lengthen an answer, as vLLM checks
    them: ``(min_tokens, ignore_eos)`` (raises :class:`BadRequest`). A length they would
    force past :data:`CONTEXT_LENGTH` is refused, as a real server refuses it."""
    least = body.get("min_tokens", 0)
    if least is None:
        least = 0
    if isinstance(least, bool) or not isinstance(least, int) or least < 0:
        raise BadRequest("Invalid 'min_tokens': expected an integer >= 0.", "min_tokens")
    if cap is not None and least > cap:
        message = f"min_tokens must be less than or equal to max_tokens={cap}, got {least}."
        raise BadRequest(message, "min_tokens")
    ignore = body.get("ignore_eos", False)
    if ignore is None:
        ignore = False
    if not isinstance(ignore, bool):
        raise BadRequest("Invalid 'ignore_eos': expected a boolean.", "ignore_eos")
    forced = max(least, cap if ignore and cap is not None else 0)
    if forced > CONTEXT_LENGTH:
        message = (
            f"This model's maximum context length is {CONTEXT_LENGTH} tokens. However, you "
            f"requested {forced} tokens in the completion."
        )
        raise BadRequest(message, "max_tokens" if forced > least else "min_tokens")
    return least, ignore


def model_of(body: Any, config: MockConfig) -> str:
    """The requested model, or the configured one (raises :class:`BadRequest`)."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = body.get("model", config.model)
    if not isinstance(model, str):
        raise BadRequest("Invalid 'model': expected a string.", "model")
    return model


def _kind(value: Any) -> str:
    """How OpenAI's validator names a JSON value's type in its messages."""
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "an array", dict: "an object"}.get(
        type(value), "a number"
    )


def check_decimal(body: Mapping[str, Any], name: str, low: float, high: float) -> None:
    """An OpenAI sampling parameter (``temperature``, ``top_p``...): absent, null, or a
    number in ``low..high`` (raises :class:`BadRequest` in OpenAI's words)."""
    value = body.get(name)
    if value is None:
        return
    if not finite_number(value):
        kind = _kind(value)
        raise BadRequest(
            f"Invalid type for '{name}': expected a decimal, but got {kind} instead.", name
        )
    if not low <= value <= high:
        side, bound = (
            ("below minimum", f">= {low:g}") if value < low else ("above maximum", f"<= {high:g}")
        )
        raise BadRequest(
            f"Invalid '{name}': decimal {side} value. Expected a value {bound}, but got "
            f"{value} instead.",
            name,
        )


def check_choice(value: Any, name: str, allowed: Sequence[str]) -> None:
    """Parameter ``name``, one of a few strings (None: absent, its default)."""
    if value is not None and value not in allowed:
        listed = ", ".join(f"'{v}'" for v in allowed[:-1]) + f", and '{allowed[-1]}'"
        raise BadRequest(f"Invalid value: {value!r}. Supported values are: {listed}.", name)


def check_boolean(body: Mapping[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(
            f"Invalid type for '{name}': expected a boolean, but got {_kind(value)} instead.", name
        )


def as_messages(value: Any, name: str = "messages") -> list[Any]:
    """A non-empty list of objects (raises :class:`BadRequest` naming ``name``)."""
    if not isinstance(value, list) or not value:
        raise BadRequest(f"Missing required parameter: '{name}'.", name)
    if not all(isinstance(message, dict) for message in value):
        raise BadRequest(f"Invalid '{name}': expected a list of objects.", name)
    return value


def tool_trigger(tools: Any, messages: Sequence[Any]) -> str | None:
    """The first tool's name when the tool trigger fires (see the module docstring)."""
    if not isinstance(tools, list) or not tools or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, Mapping) or last.get("role") != "user":
        return None
    if not any(_WEATHER.search(text) for text in content_texts(last.get("content"))):
        return None
    return first_tool_name(tools)


STEERING_KEYS = frozenset(("tool_call", "thinking"))
"""The ``mock`` keys that steer the answer itself (see :class:`Steering`)."""


@dataclass(frozen=True, slots=True)
class Steering:
    """What a request's ``mock`` object asks of the answer (beyond faults and timing).

    Attributes:
        tool_call: ``True``: call the first tool offered; a name: call that tool; ``False``:
            never call one; ``None``: decide as the request's own fields say (``tool_choice``,
            then the "weather" trigger, see the module docstring).
        thinking: thinking tokens to send first (overrides what the request asks).
    """

    tool_call: bool | str | None = None
    thinking: int | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> Steering:
        tool_call = options.get("tool_call")
        if tool_call is not None and not isinstance(tool_call, bool | str):
            raise ValueError("mock option 'tool_call' must be a boolean or a tool name")
        thinking = options.get("thinking")
        if thinking is not None and (
            isinstance(thinking, bool) or not isinstance(thinking, int) or thinking < 0
        ):
            raise ValueError("mock option 'thinking' must be an int >= 0")
        return cls(tool_call, thinking)


@dataclass(frozen=True, slots=True)
class MockOptions:
    """A request's ``mock`` object, parsed: its faults, its timing and its steering."""

    faults: FaultOptions
    timing: Timing
    steering: Steering


def parse_mock(body: Any, config: MockConfig) -> MockOptions:
    """Merge the server's defaults with the request's ``mock`` object and validate them."""
    options = body.get("mock") if isinstance(body, dict) else None
    if options is not None and not isinstance(options, dict):
        raise BadRequest("Invalid 'mock': expected an object.", "mock")
    try:
        return parse_options({**config.faults, **(options or {})}, config)
    except ValueError as exc:
        raise BadRequest(str(exc), "mock") from None


def parse_options(options: Mapping[str, Any], config: MockConfig) -> MockOptions:
    """A ``mock`` object's keys (faults, timing, steering) over ``config``'s: the one check
    of a request's object and of the server-wide defaults (``--fault``, ``faults``).

    Raises:
        ValueError: an unknown key or a value of the wrong type or range.
    """
    other = REQUEST_KEYS | STEERING_KEYS
    faults = FaultOptions.parse({k: v for k, v in options.items() if k not in other})
    return MockOptions(faults, parse_timing(config.timing(), options), Steering.parse(options))


def first_tool_name(tools: Any) -> str | None:
    """The name of the first tool of a ``tools`` list (chat, Responses or Anthropic shape)."""
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], Mapping):
        return None
    first = tools[0]
    function = first.get("function")
    name = first.get("name") or (function.get("name") if isinstance(function, Mapping) else None)
    return name if isinstance(name, str) and name else None


#: A ``\\uD800``-``\\uDFFF`` escape: a body with one may hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


async def read_json(request: web.Request) -> Any:
    """The request's JSON body (raises :class:`BadRequest`).

    A lone UTF-16 surrogate (``"\\ud800"``: valid JSON, not text) is refused here, as
    strict JSON parsers refuse it, rather than failing whatever encodes the value later.
    """
    raw = await request.read()
    request[RAW_BODY_KEY] = raw
    try:
        body = json.loads(raw)
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(body, ensure_ascii=False).encode()  # (UnicodeEncodeError: a lone one)
        return body
    except UnicodeEncodeError as exc:
        raise BadRequest(
            "We could not parse the JSON body of your request: it holds a lone UTF-16 "
            f"surrogate ({exc.object[exc.start]!a}), which is not text."
        ) from None
    except (ValueError, RecursionError):  # (RecursionError: nested past the parser's depth)
        raise BadRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The API expects a JSON payload.)"
        ) from None


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The mock's tool call: to ``name``, with ``value``, its arguments (generated from the
    tool's schema; for the "weather" trigger, with :data:`TOOL_ARGUMENTS` laid over)."""

    name: str
    digest: str
    value: Mapping[str, Any]

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(self.value)

    def arguments_json(self, *, spaced: bool = False) -> str:
        """The arguments as JSON text: compact (OpenAI) or with spaces (Anthropic)."""
        separators = (", ", ": ") if spaced else (",", ":")
        return json.dumps(self.arguments, separators=separators, ensure_ascii=False)

    def fragments(self, *, spaced: bool = False) -> list[str]:
        """The arguments JSON cut in the fragments that a stream sends one by one."""
        text = self.arguments_json(spaced=spaced)
        size = _TOOL_FRAGMENT_CHARS
        return [text[i : i + size] for i in range(0, len(text), size)]

    @property
    def tokens(self) -> int:
        """Output tokens the call costs (one per fragment)."""
        return len(self.fragments())

    def id(self, prefix: str, length: int = 24, choice: int = 0) -> str:
        """A deterministic call id (``call_…``, ``toolu_…``)."""
        return derived_id(prefix, self.digest, salt=f"tool#{choice}", length=length)


@dataclass(frozen=True, slots=True)
class Answer:
    """The neutral answer to a :class:`Prompt`; tokens are generated lazily while streamed.

    ``sources[i]`` is ``(conversation, seed choice)`` of output choice ``i``; ``started_ns``
    is the ``perf_counter_ns()`` when the answer began (for measured durations); ``pieces``,
    when set, are the text tokens of every choice instead of the generated ones (JSON of a
    ``response_format``, a text cut at a ``stop`` sequence); ``stop_sequence`` is the stop
    sequence that ended the text, if one did.
    """

    digest: str
    created: int
    model: str
    sources: tuple[tuple[Any, int], ...]
    tokens: int
    stop: Stop
    prompt_tokens: int
    thinking: int = 0
    tool: ToolCall | None = None
    started_ns: int = field(default_factory=time.perf_counter_ns)
    pieces: tuple[str, ...] | None = None
    stop_sequence: str | None = None

    @property
    def n(self) -> int:
        """The number of output choices."""
        return len(self.sources)

    @property
    def steps(self) -> int:
        """Token events of one choice: thinking, text and tool fragments."""
        return self.thinking + self.tokens + (self.tool.tokens if self.tool else 0)

    @property
    def output_tokens(self) -> int:
        """Output tokens summed over the choices."""
        return self.n * self.steps

    def iter_tokens(self, choice: int) -> Iterator[str]:
        """The text tokens of choice ``choice``."""
        if self.pieces is not None:  # structured output, or a text cut at a stop sequence
            return iter(self.pieces[: self.tokens])
        messages, seed = self.sources[choice]
        return iter_tokens(messages, self.model, self.tokens, seed)

    @property
    def has_text(self) -> bool:
        """Whether the message carries a text part: when it has text, or nothing else (the
        APIs send no empty text block beside a tool call or thinking)."""
        return self.tokens > 0 or (not self.thinking and self.tool is None)

    def text(self, choice: int = 0) -> str:
        """The whole text of choice ``choice``."""
        return "".join(self.iter_tokens(choice))

    def iter_thinking(self) -> Iterator[str]:
        """The thinking tokens (of the first conversation)."""
        return iter_tokens(self.sources[0][0], self.model, self.thinking, _THINKING_CHOICE)

    def thinking_text(self) -> str:
        return "".join(self.iter_thinking())

    def make_id(self, prefix: str, length: int = 24, *, salt: str = "", hex_: bool = False) -> str:
        """A deterministic id for this request (same conversation, same id)."""
        return derived_id(prefix, self.digest, salt=salt, length=length, hex_=hex_)


def make_answer(prompt: Prompt, config: MockConfig, options: MockOptions | None = None) -> Answer:
    """Generate the deterministic answer to ``prompt`` (``options``: its ``mock`` object).

    When a tool call happens (see the module docstring): ``tool_choice`` ``"none"`` never
    calls; ``"required"`` or a named tool always calls (the named or the first tool, with
    arguments generated from its schema, and no text beside the call); ``mock.tool_call``
    overrides both; otherwise the "weather" trigger calls the first tool after the text, with
    arguments generated from its schema, :data:`TOOL_ARGUMENTS` laid over them.
    """
    timing = options.timing if options is not None else config.timing()
    steering = options.steering if options is not None else Steering()
    digest = request_digest(prompt.messages, prompt.model)
    seed_salt = "" if prompt.seed is None else f"#seed{prompt.seed}"
    count = output_length(timing, digest, prompt.seed)
    context_full = count > CONTEXT_LENGTH  # (a model generates no further than its context)
    count = min(count, CONTEXT_LENGTH)
    pieces: tuple[str, ...] | None = None
    stop_sequence: str | None = None
    if prompt.response_schema is not None:
        value = value_for(prompt.response_schema, digest + seed_salt)
        bare = prompt.enum_text and isinstance(value, str)
        pieces = json_pieces(value if bare else json.dumps(value, ensure_ascii=False))
        count = len(pieces)
    stop: Stop = "length" if context_full and pieces is None else "stop"
    base = 0 if prompt.seed is None else (prompt.seed % 1_000_003 + 1) * 1024
    if pieces is None:  # (vLLM's floors; structured output ends with its JSON)
        count = max(count, prompt.min_tokens)
        if prompt.ignore_eos and prompt.max_tokens is not None:
            count = max(count, prompt.max_tokens + 1)  # (one past the cap: the cap ends it)
    tool, forced = _tool_call(prompt, steering, digest + seed_salt)
    if forced:  # the call alone, sent whole: the token cap is for text (the mock cuts no call)
        count, pieces, stop = 0, None, "tool"
    thinking = max(prompt.thinking if steering.thinking is None else steering.thinking, 0)
    thinking = min(thinking, CONTEXT_LENGTH)  # (nor does it think past it)
    cap = prompt.max_tokens
    if cap is not None:  # the cap counts the thinking too, as every API's does
        thinking = min(thinking, cap)
        cap -= thinking
        if cap < count:
            count, stop = cap, "length"
    if prompt.stop and pieces is None and prompt.n == 1 and not prompt.prompts and count:
        cut, stop_sequence = _cut_at_stop(
            list(iter_tokens(prompt.messages, prompt.model, count, base)),
            prompt.stop,
            prompt.min_tokens,
        )
        if cut is not None:
            pieces, count, stop = cut, len(cut), "stop"
    if tool is not None and stop != "length":
        stop = "tool"
    else:
        tool = None
    conversations = prompt.prompts or (prompt.messages,)
    return Answer(
        digest=digest,
        created=int(time.time()),
        model=prompt.model,
        sources=tuple(
            (conv, base + choice) for conv in conversations for choice in range(prompt.n)
        ),
        tokens=count,
        stop=stop,
        prompt_tokens=prompt.input_tokens,
        thinking=thinking,
        tool=tool,
        pieces=pieces,
        stop_sequence=stop_sequence,
    )


def _cut_at_stop(
    tokens: list[str], stops: Sequence[str], least: int = 0
) -> tuple[tuple[str, ...] | None, str | None]:
    """The tokens before the first stop sequence (the last one cut short), and that sequence.

    As vLLM, a stop sequence counts only once ``least`` tokens are out: it must end in the
    ``least``-th token or after it.
    """
    text = "".join(tokens)
    before = len("".join(tokens[: least - 1])) if least > 1 else 0
    found = []
    for stop in stops:
        at = text.find(stop, max(before - len(stop) + 1, 0)) if stop else -1
        if at >= 0:
            found.append((at, stop))
    if not found:
        return None, None
    at, stop = min(found)
    out: list[str] = []
    length = 0
    for token in tokens:
        if length + len(token) > at:
            if at > length:
                out.append(token[: at - length])
            break
        out.append(token)
        length += len(token)
    return tuple(out), stop


def _tool_call(prompt: Prompt, steering: Steering, seed: str) -> tuple[ToolCall | None, bool]:
    """The tool call of the answer, if any, and whether it was forced (no text beside it)."""
    digest = seed
    mode, named = prompt.tool_choice
    if steering.tool_call is False or (mode == "none" and steering.tool_call is None):
        return None, False
    name: str | None = None
    forced = False
    if isinstance(steering.tool_call, str):
        name, forced = steering.tool_call, True
    elif steering.tool_call is True or mode == "required":
        name, forced = named or prompt.first_tool, True
    elif prompt.tool is not None:  # the "weather" trigger
        name = prompt.tool
    if name is None:
        return None, False
    # (a tool without parameters takes an empty object, as the APIs send it)
    schema = prompt.tools.get(name) or {"type": "object"}
    value = value_for(schema, f"{digest}#{name}")
    arguments = value if isinstance(value, dict) else {"value": value}
    if not forced:  # the weather trigger: its fixed values where the tool declares them
        arguments.update(fitting(TOOL_ARGUMENTS, schema))
    return ToolCall(name, _tool_digest(prompt), arguments), forced


def _tool_digest(prompt: Prompt) -> str:
    return request_digest(prompt.messages, prompt.model)


def tool_schemas(tools: Any) -> dict[str, Any]:
    """Each tool's name -> parameters schema (chat, Responses, Anthropic or Gemini shape)."""
    out: dict[str, Any] = {}
    if not isinstance(tools, list):
        return out
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function")
        entry = function if isinstance(function, Mapping) else tool
        name = entry.get("name")
        if isinstance(name, str):
            schema = entry.get("parameters", entry.get("input_schema", {}))
            out[name] = schema if isinstance(schema, Mapping) else {}
    return out


def parse_tool_choice(value: Any) -> tuple[str, str | None]:
    """``tool_choice`` of any vendor as ``(mode, forced tool name)``.

    OpenAI chat: ``"none" | "auto" | "required" | {"type": "function", "function": {name}}``;
    Responses: ``{"type": "function", "name"}``; Anthropic: ``{"type": "auto" | "any" |
    "tool" | "none", "name"}``.
    """
    if isinstance(value, str):
        return {"none": "none", "required": "required", "any": "required"}.get(value, "auto"), None
    if not isinstance(value, Mapping):
        return "auto", None
    kind = value.get("type")
    if kind in ("none", "auto"):
        return str(kind), None
    if kind == "any":
        return "required", None
    function = value.get("function")
    name = value.get("name") or (function.get("name") if isinstance(function, Mapping) else None)
    if kind in ("function", "tool") and isinstance(name, str):
        return "required", name
    return "auto", None


def response_schema(value: Any) -> Mapping[str, Any] | None:
    """The JSON schema of an OpenAI ``response_format`` / Responses ``text.format``.

    ``json_object`` gets a small object schema (``{"answer": string}``); ``None``: plain text.
    """
    if not isinstance(value, Mapping):
        return None
    kind = value.get("type")
    if kind == "json_object":
        return _JSON_OBJECT_SCHEMA
    if kind == "json_schema":
        inner = value.get("json_schema")
        schema = inner.get("schema") if isinstance(inner, Mapping) else value.get("schema")
        return schema if isinstance(schema, Mapping) else _JSON_OBJECT_SCHEMA
    return None


_JSON_OBJECT_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer", "confidence"],
}


def logprob_of(token: str) -> float:
    """A deterministic log-probability of ``token`` (between -2 and -0.5)."""
    digest = hashlib.sha256(token.encode()).digest()
    return -round(0.5 + int.from_bytes(digest[:4], "big") / 2**32 * 1.5, 6)


#: What a ``top_logprobs`` list offers after the token itself (the API allows up to 20).
_ALTERNATIVES = (
    *(" the", " a", " of", " and", " to", " in", " is", " that", " it", " for", " on"),
    *(" with", " as", " was", " at", " by", " an", " be", " this", " or", " from"),
)


def alternative_tokens(token: str, top: int) -> list[tuple[str, float]]:
    """``token`` then ``top - 1`` alternatives, each with its log-probability: one less per
    rank, so that the probabilities of the list add up to less than 1."""
    own = logprob_of(token)
    words = [token, *(w for w in _ALTERNATIVES if w != token)][:top]
    return [(word, round(own - rank, 6)) for rank, word in enumerate(words)]


def stop_sequences(value: Any) -> tuple[str, ...]:
    """``stop`` (a string or a list of strings) as a tuple."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()


# --------------------------------------------------------------------------- stream encoding


class StepClock:
    """The decode step of each event of a stream (the engine writes step ``k`` at step ``k``).

    Each :meth:`tick` is one chunk of tokens (``group`` of them: ``tokens_per_chunk``),
    counted over thinking, text and tool fragments, from 1; a structural event (a block start,
    a finish chunk) rides with the chunk before it (:attr:`now`, 0 before the first token:
    such events go out at once, before the prefill ends).
    """

    __slots__ = ("_step", "group", "now")

    def __init__(self, group: int = 1) -> None:
        self.group = max(int(group), 1)
        self._step = 0
        self.now = 0.0

    def tick(self) -> float:
        """The step of the next chunk."""
        self._step += 1
        self.now = due = float(self._step)
        return due

    def chunks(self, pieces: Iterable[str]) -> Iterator[str]:
        """``pieces`` joined ``group`` at a time: the text of each chunk."""
        if self.group == 1:
            yield from pieces
            return
        for group in self.groups(pieces):
            yield "".join(group)

    def groups(self, pieces: Iterable[str]) -> Iterator[list[str]]:
        """``pieces`` ``group`` at a time: the tokens of each chunk."""
        group = self.group
        batch: list[str] = []
        for piece in pieces:
            batch.append(piece)
            if len(batch) == group:
                yield batch
                batch = []
        if batch:
            yield batch

    def count(self, pieces: int) -> int:
        """The chunks that ``pieces`` pieces make."""
        return -(-pieces // self.group) if pieces > 0 else 0


def token_events(
    clock: StepClock,
    streams: Sequence[Iterable[str]],
    count: int,
    prefixes: Sequence[bytes],
    suffixes: Sequence[bytes],
    last_suffixes: Sequence[bytes] | None = None,
) -> Iterator[tuple[float, bytes]]:
    """Token events, round-robin over ``streams`` (one per choice, ``count`` tokens each).

    Event of stream ``i`` = ``prefixes[i] + token JSON + suffixes[i]``; the last token of each
    stream takes ``last_suffixes[i]`` instead when given (legacy completions put the finish
    reason there). Step ``k`` of every stream is due at the same time.
    """
    ends = last_suffixes or suffixes
    encode = encode_token if clock.group == 1 else dumps
    last = clock.count(count) - 1
    if clock.group > 1:
        streams = [clock.chunks(stream) for stream in streams]
    if len(streams) == 1:
        prefix, suffix, end = prefixes[0], suffixes[0], ends[0]
        for step, token in enumerate(streams[0]):
            yield clock.tick(), prefix + encode(token) + (end if step == last else suffix)
        return
    for step, tokens in enumerate(zip(*streams, strict=True)):
        due = clock.tick()
        tails = ends if step == last else suffixes
        for prefix, token, suffix in zip(prefixes, tokens, tails, strict=True):
            yield due, prefix + encode(token) + suffix


class StreamEncoder(ABC):
    """Plans one streamed answer in a wire protocol; also its :class:`~._faults.Framing`.

    ``cacheable``: the events are a pure function of the request, the framing and the
    current second (so identical requests can share one pre-encoded plan).
    """

    content_type: ClassVar[str] = "text/event-stream; charset=utf-8"
    cacheable: ClassVar[bool] = True

    def __init__(self, eol: bytes) -> None:
        self.eol = eol

    @abstractmethod
    def events(self, clock: StepClock, *, done: bool) -> Iterator[tuple[float, bytes]]:
        """``(due, event bytes)`` for the whole stream; ``done=False`` omits the end signal."""

    @abstractmethod
    def garbage(self, index: int) -> bytes: ...

    @property
    @abstractmethod
    def keepalive(self) -> bytes | None: ...

    @property
    @abstractmethod
    def endless(self) -> bytes: ...

    @abstractmethod
    def error(self, index: int) -> Sequence[bytes]: ...


class SseEncoder(StreamEncoder):
    """Server-sent events; faults in OpenAI's style unless a subclass says otherwise."""

    def garbage(self, index: int) -> bytes:
        return b"data: this is not json" + self.eol * 2

    @property
    def keepalive(self) -> bytes | None:
        return b": keep-alive" + self.eol * 2

    @property
    def endless(self) -> bytes:
        return b'data: {"x":"'

    def error(self, index: int) -> Sequence[bytes]:
        return (self.data(_SERVER_ERROR_EVENT),)

    def data(self, payload: bytes) -> bytes:
        """An unnamed event."""
        return b"data: " + payload + self.eol * 2

    def event(self, name: str, payload: bytes) -> bytes:
        """A named event (``event:`` line, then ``data:``)."""
        return self.event_prefix(name) + payload + self.eol * 2

    def event_prefix(self, name: str) -> bytes:
        """A named event up to its data: ``event: NAME`` + eol + ``data: ``."""
        return b"event: " + name.encode() + self.eol + b"data: "


# --------------------------------------------------------------------------- dialects, flow


class Dialect(ABC):
    """One wire protocol: parsing, errors, whole answers and stream encoders.

    Errors and the API key check default to OpenAI's (``Authorization: Bearer``, the
    ``{"error": {message, type, param, code}}`` envelope); other vendors override them.
    """

    request_id_header: ClassVar[str | None] = "X-Request-Id"

    @abstractmethod
    def parse(self, body: Any, config: MockConfig) -> Prompt:
        """Validate a request body (raises :class:`BadRequest`)."""

    def parse_request(self, request: web.Request, body: Any, config: MockConfig) -> Prompt:
        """Validate a request (its body; a dialect may also read its URL)."""
        return self.parse(body, config)

    def parse_counted(self, request: web.Request, body: Any, config: MockConfig) -> Prompt:
        """Validate the body of a token-counting request (the API's own rules for one)."""
        return self.parse_request(request, body, config)

    def immediate(self, body: Any, config: MockConfig) -> Mapping[str, Any] | None:
        """The answer to a request that the API answers at once, without generating."""
        return None

    def eol(self, faults: FaultOptions) -> bytes:
        """The line terminator of the stream (``line_endings``; LF by default)."""
        return faults.eol

    def whole_response(self, prompt: Prompt, answer: Answer) -> web.Response:
        """The non-streamed answer."""
        return json_response(200, self.whole(prompt, answer))

    @abstractmethod
    def whole(self, prompt: Prompt, answer: Answer) -> Mapping[str, Any]:
        """The non-streamed answer body."""

    @abstractmethod
    def encoder(self, prompt: Prompt, answer: Answer, eol: bytes) -> StreamEncoder:
        """The encoder of the streamed answer."""

    def error(
        self, status: int, message: str, *, kind: str, param: str | None = None
    ) -> web.Response:
        """An error answer in the protocol's envelope (``kind``: the error type)."""
        return json_response(status, error_body(message, kind, param=param))

    def status_error(self, status: int) -> web.Response:
        """The protocol's usual error answer for HTTP ``status``."""
        return status_error(status)

    def injected_error(self, faults: FaultOptions) -> web.Response:
        """The answer to a request that the ``status`` / ``fail_first`` options fail."""
        response = self.status_error(faults.status or 500)
        if faults.retry_after is not None:
            response.headers["Retry-After"] = f"{faults.retry_after:g}"
        return response

    def credentials(self, request: web.Request) -> list[str]:
        """The API keys the request presents (``Authorization: Bearer``)."""
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        return [key.strip()] if scheme.lower() == "bearer" and key.strip() else []  # (RFC 9110)

    def unauthorized(self, request: web.Request, config: MockConfig) -> web.Response | None:
        """401 unless the request carries the configured API key (never echoed)."""
        if config.api_key is None:
            return None
        presented = self.credentials(request)
        return None if config.api_key in presented else self.unauthorized_error(bool(presented))

    def unauthorized_error(self, presented: bool) -> web.Response:
        """The 401 answer (``presented``: a key was sent, but the wrong one)."""
        message = (
            "Incorrect API key provided."
            if presented
            else "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
        )
        body = error_body(message, "invalid_request_error", code="invalid_api_key")
        return json_response(401, body)

    def request_id(self, answer: Answer) -> str:
        return "req_" + answer.digest[:29]


def handler(dialect: Dialect) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler serving ``dialect`` through :func:`serve`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve(request, dialect)

    return handle


_PLAN_CACHE_SIZE = 32
_PLAN_CACHE_EVENTS = 50_000  # longer plans are generated lazily, never cached


def _planned(
    app: web.Application,
    request: web.Request,
    encoder: StreamEncoder,
    clock: StepClock,
    eol: bytes,
    *,
    done: bool,
) -> Iterator[tuple[float, bytes]]:
    """The events of a stream: pre-encoded once for identical requests, else lazily.

    A benchmark sends the same body many times: its plan (a pure function of the route, the
    body, the framing and the current second, for the encoders that say so) is encoded once
    and then only iterated, so a decode step costs one write per stream and nothing else.
    """
    cache = app[PLAN_CACHE_KEY]
    raw = request.get(RAW_BODY_KEY)
    if not encoder.cacheable or raw is None:
        return encoder.events(clock, done=done)
    key = (request.path_qs, raw, eol, clock.group, done, int(time.time()))
    plan = cache.get(key)
    if plan is None:
        events = encoder.events(clock, done=done)
        plan = list(itertools.islice(events, _PLAN_CACHE_EVENTS + 1))
        if len(plan) > _PLAN_CACHE_EVENTS:
            return itertools.chain(plan, events)
        if len(cache) >= _PLAN_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = plan
    return iter(plan)


_ENGINE_FINISH: Mapping[Stop, str] = {"stop": "stop", "length": "length", "tool": "stop"}


async def serve(request: web.Request, dialect: Dialect) -> web.StreamResponse:
    """The flow of every answering endpoint: key, body, options, then whole or streamed.

    Either way the answer takes its time in the engine (:mod:`rxgpt.mock._engine`): a slot,
    the prefill, one decode step per chunk; a streamed answer is written by the engine.
    """
    app = request.app
    config = app[CONFIG_KEY]
    engine = app[ENGINE_KEY]
    arrived = asyncio.get_running_loop().time()  # its waits for turns count as queueing
    await engine.wait_turn()  # running streams' steps go first
    denied = dialect.unauthorized(request, config)
    if denied is not None:
        return denied
    try:
        body = await read_json(request)
        at_once = dialect.immediate(body, config)
        if at_once is not None:
            return json_response(200, at_once)
        prompt = dialect.parse_request(request, body, config)
        options = parse_mock(body, config)
    except BadRequest as exc:
        return dialect.error(400, exc.message, kind="invalid_request_error", param=exc.param)
    faults, timing = options.faults, options.timing
    if faults.fails(app[COUNTERS_KEY]):
        return dialect.injected_error(faults)
    answer = make_answer(prompt, config, options)
    finish = _ENGINE_FINISH[answer.stop]
    clock = StepClock(timing.tokens_per_chunk)
    if not prompt.stream:
        steps = clock.count(answer.thinking) + clock.count(answer.tokens)
        if answer.tool is not None:
            steps += clock.count(answer.tool.tokens)
        silent = EngineSequence.silent(
            steps,
            timing,
            prompt_tokens=answer.prompt_tokens,
            output_tokens=answer.output_tokens,
            finish=finish,
        )
        await engine.run(silent, request.path, stream=False, arrived=arrived)
        return dialect.whole_response(prompt, answer)
    eol = dialect.eol(faults)
    encoder = dialect.encoder(prompt, answer, eol)
    plan = _planned(app, request, encoder, clock, eol, done=not faults.no_done)
    response = web.StreamResponse(
        headers={"Content-Type": encoder.content_type, "Cache-Control": "no-cache"}
    )
    if dialect.request_id_header is not None:
        response.headers[dialect.request_id_header] = dialect.request_id(answer)
    if faults.gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.enable_chunked_encoding()
    await engine.wait_turn()
    await response.prepare(request)
    out = BodyWriter(response, faults, request.transport)
    sequence = EngineSequence(
        plan,
        timing,
        prompt_tokens=answer.prompt_tokens,
        output_tokens=answer.output_tokens,
        finish=finish,
        sink=out,
        faults=faults,
        framing=encoder,
    )
    outcome = await engine.run(sequence, request.path, stream=True, arrived=arrived)
    if outcome == "gone":
        response.force_close()
    elif outcome is not None:
        with contextlib.suppress(ConnectionError):
            await run_interrupt(outcome, request, response, out, faults, encoder)
    return response


async def counted(
    request: web.Request, dialect: Dialect, shape: Callable[[int], Mapping[str, Any]]
) -> web.Response:
    """The flow of a token-counting endpoint: key, body, then ``shape(input tokens)``.

    The count is the one the usage of an answer to the same body reports
    (:attr:`Prompt.input_tokens`); counting takes no time in the engine.
    """
    config = request.app[CONFIG_KEY]
    denied = dialect.unauthorized(request, config)
    if denied is not None:
        return denied
    try:
        prompt = dialect.parse_counted(request, await read_json(request), config)
    except BadRequest as exc:
        return dialect.error(400, exc.message, kind="invalid_request_error", param=exc.param)
    return json_response(200, shape(prompt.input_tokens))


# --------------------------------------------------------------------------- OpenAI shared

MAX_N = 128  # OpenAI's limit on ``n``
OPENAI_FINISH_REASONS: Mapping[Stop, str] = {
    "stop": "stop",
    "length": "length",
    "tool": "tool_calls",
}
"""OpenAI's ``finish_reason`` for each :data:`Stop`."""
JSON_NULL = b"null"


def openai_finish(answer: Answer) -> bytes:
    """The JSON of the answer's finish reason."""
    return b'"%s"' % OPENAI_FINISH_REASONS[answer.stop].encode()


def openai_stream_flags(body: Mapping[str, Any]) -> tuple[bool, bool]:
    """``(stream, stream_options.include_usage)`` of an OpenAI chat or completions body,
    whose sampling parameters are checked too (raises :class:`BadRequest`)."""
    options = body.get("stream_options")
    stream = stream_flag(body)
    if options is not None and not stream:
        raise BadRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    for name, low, high in _SAMPLING:
        check_decimal(body, name, low, high)
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return stream, include_usage


#: OpenAI's sampling parameters and their ranges.
_SAMPLING = (
    ("temperature", 0.0, 2.0),
    ("top_p", 0.0, 1.0),
    ("presence_penalty", -2.0, 2.0),
    ("frequency_penalty", -2.0, 2.0),
)


def stream_flag(body: Mapping[str, Any], default: bool = False) -> bool:
    """A body's ``stream``: a boolean, or absent / null for ``default`` (raises
    :class:`BadRequest` for anything else, as every API does)."""
    value = body.get("stream")
    if value is None:
        return default
    if not isinstance(value, bool):
        kind = type(value).__name__
        raise BadRequest(f"Invalid type for 'stream': expected a boolean, got {kind}.", "stream")
    return value


def openai_usage(answer: Answer) -> dict[str, int]:
    """OpenAI's basic usage object (prompt, completion and total tokens), over the choices."""
    completion = answer.output_tokens
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + completion,
    }


class OpenAIChunks(SseEncoder):
    """``data:`` chunks that share an ``id``/``object``/``created`` head, then ``[DONE]``."""

    def __init__(
        self, answer: Answer, *, chunk_id: str, obj: bytes, include_usage: bool, eol: bytes
    ) -> None:
        super().__init__(eol)
        self.answer = answer
        self.include_usage = include_usage
        self.head = b'data: {"id":"%s","object":"%s","created":%d,' % (
            chunk_id.encode(),
            obj,
            answer.created,
        )

    def tail(self, answer: Answer, usage: bytes, done: bool) -> Iterator[bytes]:
        """The usage chunk (``include_usage``) and ``[DONE]`` (``done``)."""
        if self.include_usage:
            yield usage
        if done:
            yield b"data: [DONE]" + self.eol * 2
