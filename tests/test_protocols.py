"""Every protocol decoder against the composed fixtures and stream-formats.md §11.

For each file of tests/fixtures/composed/ the final :class:`~rxgpt.Completion` must hold the
values of the test matrix (stream-formats.md §11.8): finish reasons (neutral and raw), text,
reasoning, signatures, tool calls, usage and annotations. The result must not depend on how
the body was cut (random splits with empty chunks, one byte at a time, CRLF / CR line ends
for the SSE files) nor on the pipeline: the fused ``decode_stream`` and the staged
``parse_sse | decode_json | extract_deltas`` (``parse_ndjson`` for Ollama) give the same
deltas and the same result. Then each protocol's end signal (a body cut before it is
"truncated"), its in-band errors, the finish-reason table (§11.3), usage replacement,
Responses sequence gaps, and ``Completion.to_openai()`` validated by openai-python's type.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import reactivex
import reactivex.operators as ops
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from rxgpt import (
    AnnotationDelta,
    Completion,
    DecodeError,
    Delta,
    ErrorDelta,
    FinishDelta,
    Heartbeat,
    StreamDecoder,
    StreamError,
    StreamInterrupted,
    accumulate,
    decode_json,
    decode_stream,
    extract_deltas,
    parse_ndjson,
    parse_sse,
)
from rxgpt._completion import Accumulator
from rxgpt._protocols import PROTOCOLS as _PROTOCOLS
from rxgpt._protocols import OpenAIResponsesDecoder

DONE_MARKER_PROTOCOLS = {name for name, cls in _PROTOCOLS.items() if cls.has_done_marker}

COMPOSED = Path(__file__).parent / "fixtures" / "composed"

#: fixture → protocol
PROTOCOL = {
    "openai_chat_tools.sse": "openai-chat",
    "openai_chat_n2_logprobs.sse": "openai-chat",
    "openai_chat_error_midstream.sse": "openai-chat",
    "openai_responses.sse": "openai-responses",
    "anthropic_messages_tools.sse": "anthropic",
    "anthropic_error_overloaded.sse": "anthropic",
    "gemini.sse": "gemini",
    "ollama_chat.ndjson": "ollama",
    "azure_chat.sse": "openai-chat",
    "openrouter_chat.sse": "openai-chat",
}
NAMES = sorted(PROTOCOL)
SSE_NAMES = [n for n in NAMES if n.endswith(".sse")]
ERROR_ENDED = {"openai_chat_error_midstream.sse", "anthropic_error_overloaded.sse"}
COMPLETE = [n for n in NAMES if n not in ERROR_ENDED]

#: the bytes that start each fixture's end signal (Gemini: the chunk with finishReason)
END_SIGNAL = {
    "openai_chat_tools.sse": b"data: [DONE]",
    "openai_chat_n2_logprobs.sse": b"data: [DONE]",
    "azure_chat.sse": b"data: [DONE]",
    "openrouter_chat.sse": b"data: [DONE]",
    "openai_responses.sse": b"event: response.completed",
    "anthropic_messages_tools.sse": b"event: message_stop",
    "gemini.sse": b'data: {"candidates": [{"content": {"parts": [{"text": ""}]',
    "ollama_chat.ndjson": b'{"model":"qwen3:8b","created_at":"2025-10-31T09:12:01.902284Z"',
}
#: the bytes that start each error-ended fixture's error event
ERROR_SIGNAL = {
    "openai_chat_error_midstream.sse": b'data: {"error"',
    "anthropic_error_overloaded.sse": b"event: error",
}

FAST = settings(max_examples=25, deadline=None)


@functools.cache
def _body(name: str) -> bytes:
    return (COMPOSED / name).read_bytes()


# --------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """What a pipeline gave: the final (or partial) result, the error, every delta."""

    result: Completion
    error: Exception | None
    deltas: list[Delta] = field(default_factory=list)


def _stages(
    protocol: str, mode: str, *, heartbeats: bool, flush_incomplete: bool, require_done: bool
) -> tuple:
    if mode == "fused":
        return (
            decode_stream(
                protocol,
                heartbeats=heartbeats,
                flush_incomplete=flush_incomplete,
                require_done=require_done,
            ),
        )
    extract = extract_deltas(protocol, require_done=require_done)
    if protocol == "ollama":
        return (parse_ndjson(), decode_json(done=None), extract)
    sse = parse_sse(heartbeats=heartbeats, flush_incomplete=flush_incomplete)
    if mode == "staged-none":
        return (sse, decode_json(done=None), extract)
    # "staged": decode_json's default marker, which protocols without one must tolerate
    return (sse, decode_json(), extract)


def _modes(protocol: str) -> list[str]:
    if protocol in DONE_MARKER_PROTOCOLS or protocol == "ollama":
        return ["fused", "staged"]
    return ["fused", "staged", "staged-none"]


def run(
    chunks: list[bytes],
    protocol: str,
    mode: str = "fused",
    *,
    heartbeats: bool = False,
    flush_incomplete: bool = False,
    require_done: bool = False,
) -> Outcome:
    """Push ``chunks`` through one pipeline and ``accumulate``."""
    stages = _stages(
        protocol,
        mode,
        heartbeats=heartbeats,
        flush_incomplete=flush_incomplete,
        require_done=require_done,
    )
    deltas: list[Delta] = []
    results: list[Completion] = []
    errors: list[Exception] = []
    completed: list[bool] = []
    reactivex.from_iterable(chunks).pipe(
        *stages, ops.do_action(deltas.append), accumulate(protocol)
    ).subscribe(results.append, errors.append, lambda: completed.append(True))
    if errors:
        assert results == [] and completed == []
        assert len(errors) == 1
        partial = getattr(errors[0], "partial", None)
        assert isinstance(partial, Completion), errors[0]
        return Outcome(partial, errors[0], deltas)
    assert completed == [True] and len(results) == 1
    return Outcome(results[0], None, deltas)


def run_decoder(body: bytes, protocol: str, **kwargs: Any) -> tuple[Completion, Any, list]:
    """The sans-IO path: StreamDecoder + Accumulator, no Rx."""
    decoder = StreamDecoder(protocol, **kwargs)
    deltas = decoder.feed(body) + decoder.close()
    acc = Accumulator(protocol)
    acc.add_all(deltas)
    return acc.completion(), decoder.error, deltas


def _split(body: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted(points)
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


def _line_ends(body: bytes, eol: str) -> bytes:
    lf = body.replace(b"\r\n", b"\n")
    return lf.replace(b"\n", {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}[eol])


def _rewrite(body: bytes, how: str) -> bytes:
    """Equivalent SSE spellings: ``data:`` without the space, comment lines between events."""
    lf = body.replace(b"\r\n", b"\n")
    if how == "nospace":
        return lf.replace(b"\ndata: ", b"\ndata:").replace(b"data: ", b"data:", 1)
    if how == "comments":
        return b": keep-alive\n\n" + lf.replace(b"\n\n", b"\n\n: keep-alive\n\n")
    return lf


def _comparable(outcome: Outcome) -> tuple[Any, ...]:
    """The outcome without the error object's identity (compared by type and message)."""
    error = outcome.error
    return (
        dataclasses.replace(outcome.result, error=None),
        (type(error).__name__, str(error)) if error is not None else None,
        [d for d in outcome.deltas if not isinstance(d, ErrorDelta)],
        [(d.error, d.retryable) for d in outcome.deltas if isinstance(d, ErrorDelta)],
    )


@functools.cache
def _reference(name: str, heartbeats: bool = False) -> tuple[Any, ...]:
    return _comparable(run([_body(name)], PROTOCOL[name], heartbeats=heartbeats))


# --------------------------------------------------------------------------- §11.8 matrix


@dataclass(frozen=True)
class Call:
    id: str | None
    name: str
    arguments: dict[str, Any]
    text: str | None = None  # the exact arguments text, when it is fixed by the rules


@dataclass(frozen=True)
class Expected:
    finish: str | None
    raw_finish: str | None
    text: str
    usage: tuple[int, int] | None
    reasoning: str | None = None
    summary: str | None = None
    signatures: tuple[str, ...] = ()
    calls: tuple[Call, ...] = ()


PARIS_CELSIUS = {"city": "Paris", "unit": "celsius"}
ANTHROPIC_SIGNATURE = (
    "EqQBCkgIBxABGAIqQJ3mZ0v1Yk8sT2uX4pL9cR7nW6eA5dF0gH1jK3lQ8zB2xC4v"
    "N6mM9bT1yU7iO0pE5rS3aD2fG6hJ8kL1Ew=="
)
GEMINI_SIGNATURE = "CiQB0e2Kb7vYq9Xr3LmT1sWn5cPz8dGh4jKf2aQe6uVb0iNoCmIBC2bXw=="

MATRIX: dict[str, dict[int, Expected]] = {
    "openai_chat_tools.sse": {
        0: Expected(
            "tool_calls",
            "tool_calls",
            "",
            (142, 51),
            calls=(
                Call(
                    "call_7QmZ2rYk1bVd8sTn3LpW0xFa",
                    "get_weather",
                    {"city": "Paris", "unit": "c"},
                    '{"city": "Paris", "unit": "c"}',
                ),
                Call(
                    "call_Ux4nC9hJ2eKs6TqR1mWv8YdB",
                    "get_local_time",
                    {"tz": "Europe/Paris"},
                    '{"tz": "Europe/Paris"}',
                ),
            ),
        )
    },
    "openai_chat_n2_logprobs.sse": {
        0: Expected("stop", "stop", "Bonjour !", (21, 4)),
        1: Expected("length", "length", "Salut à", (21, 4)),
    },
    "openai_chat_error_midstream.sse": {
        0: Expected(None, None, "The three largest moons of Jupiter are", None),
    },
    "openai_responses.sse": {
        0: Expected(
            "tool_calls",
            "completed",
            "Let me check Paris.",
            (61, 23),
            calls=(
                Call(
                    "call_Rb3Xk8nQ2vT7mWzY1dLs0PfE",
                    "get_weather",
                    {"city": "Paris"},
                    '{"city":"Paris"}',
                ),
            ),
        )
    },
    "anthropic_messages_tools.sse": {
        0: Expected(
            "tool_calls",
            "tool_use",
            "I'll check the current weather in Paris.",
            (472, 89),
            reasoning="The user wants Paris weather; I should call get_weather.",
            signatures=(ANTHROPIC_SIGNATURE,),
            calls=(Call("toolu_01A9sK2mQ7xVb4NcT8yRd3Wf", "get_weather", PARIS_CELSIUS),),
        )
    },
    "anthropic_error_overloaded.sse": {
        0: Expected(None, None, "Once upon a", (25, 1)),
    },
    "gemini.sse": {
        0: Expected(
            "tool_calls",
            "STOP",
            "Let me look that up for you.",
            (38, 27 + 64),
            summary="**Locating the forecast**\n\n"
            "The user wants the weather in Paris, so I will call the tool.",
            signatures=(GEMINI_SIGNATURE,),
            # no id on the wire: one is synthesised (checked below)
            calls=(Call(None, "get_weather", PARIS_CELSIUS, '{"city":"Paris","unit":"celsius"}'),),
        )
    },
    "ollama_chat.ndjson": {
        0: Expected(
            "tool_calls",
            "stop",
            "Checking now.",
            (187, 58),
            reasoning="The user asks about Paris weather. Use the tool.",
            calls=(
                Call(
                    "call_k2v8q1xz",
                    "get_weather",
                    PARIS_CELSIUS,
                    '{"city":"Paris","unit":"celsius"}',
                ),
            ),
        )
    },
    "azure_chat.sse": {
        0: Expected("stop", "stop", "Paris is the capital of France.", (14, 7)),
    },
    "openrouter_chat.sse": {
        0: Expected(
            "stop",
            "stop",
            "Autumn rain on stone\nlanterns drift",
            (12, 96),
            reasoning="The user wants a haiku.",
        )
    },
}


def _check_matrix(name: str, completion: Completion) -> None:
    expected = MATRIX[name]
    assert [c.index for c in completion.choices] == sorted(expected)
    for choice in completion.choices:
        exp = expected[choice.index]
        assert choice.finish_reason == exp.finish
        assert choice.raw_finish_reason == exp.raw_finish
        assert (choice.text or "") == exp.text
        assert choice.reasoning == exp.reasoning
        assert choice.reasoning_summary == exp.summary
        assert tuple(choice.signatures) == exp.signatures
        assert len(choice.tool_calls) == len(exp.calls)
        for n, (call, want) in enumerate(zip(choice.tool_calls, exp.calls, strict=True)):
            assert call.index == n
            assert call.name == want.name
            if want.id is not None:
                assert call.id == want.id
            else:
                assert isinstance(call.id, str) and call.id  # synthesised
            assert call.parsed_arguments() == want.arguments
            assert json.loads(call.arguments) == want.arguments
            if want.text is not None:
                assert call.arguments == want.text
    usage = next(iter(expected.values())).usage
    if usage is None:
        assert completion.usage is None
    else:
        assert completion.usage is not None
        assert (completion.usage.input_tokens, completion.usage.output_tokens) == usage


@pytest.mark.parametrize("name", NAMES)
def test_final_completion_matches_the_matrix(name: str) -> None:
    protocol = PROTOCOL[name]
    for mode in _modes(protocol):
        outcome = run([_body(name)], protocol, mode)
        _check_matrix(name, outcome.result)
        assert outcome.result.protocol == protocol
        if name in ERROR_ENDED:
            assert isinstance(outcome.error, StreamError)
            assert outcome.result.state == "error"
        else:
            assert outcome.error is None, mode
            assert outcome.result.state == "complete"


@pytest.mark.parametrize("name", NAMES)
def test_sans_io_decoder_agrees_with_the_operators(name: str) -> None:
    protocol = PROTOCOL[name]
    completion, error, deltas = run_decoder(_body(name), protocol)
    _check_matrix(name, completion)
    ref = run([_body(name)], protocol)
    assert deltas == ref.deltas
    assert (error is None) == (name not in ERROR_ENDED)


def test_gemini_synthesised_call_id_and_compact_arguments() -> None:
    call = run([_body("gemini.sse")], "gemini").result.tool_calls[0]
    assert call.id == "call_0_0"
    assert call.arguments == '{"city":"Paris","unit":"celsius"}'


def test_gemini_usage_counts_thoughts_in_output() -> None:
    usage = run([_body("gemini.sse")], "gemini").result.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (38, 91, 129)
    assert usage.reasoning_tokens == 64


def test_n2_logprobs_per_choice() -> None:
    result = run([_body("openai_chat_n2_logprobs.sse")], "openai-chat").result
    tokens = {c.index: [t["token"] for t in (c.logprobs or {})["content"]] for c in result.choices}
    assert tokens == {0: ["Bonjour", " !"], 1: ["Salut", " à"]}
    top = result.choices[1].logprobs["content"][1]["top_logprobs"]  # type: ignore[index]
    assert [t["token"] for t in top] == [" à", " tout"]
    assert result.choices[1].logprobs["content"][1]["bytes"] == [32, 195, 160]  # type: ignore[index]


def test_azure_prompt_filter_is_a_global_annotation() -> None:
    result = run([_body("azure_chat.sse")], "openai-chat").result
    assert [a["kind"] for a in result.annotations] == ["prompt_filter"]
    payload = result.annotations[0]["payload"]
    assert payload[0]["prompt_index"] == 0
    assert payload[0]["content_filter_results"]["jailbreak"] == {
        "filtered": False,
        "detected": False,
    }
    assert result.id == "chatcmpl-E9mQ2xT7vK4bN1cR8yWd3LpZs6aHf"


def test_azure_content_filter_annotations_include_the_late_offsets_chunk() -> None:
    # Two text chunks carry content_filter_results; the async-filter chunk that arrives
    # after the finish carries results + content_filter_offsets and must be kept too.
    result = run([_body("azure_chat.sse")], "openai-chat").result
    notes = result.choices[0].annotations
    assert [a["kind"] for a in notes] == ["content_filter"] * 3
    assert notes[0]["payload"]["content_filter_results"]["hate"] == {
        "filtered": False,
        "severity": "safe",
    }
    assert notes[-1]["payload"]["content_filter_offsets"] == {
        "check_offset": 0,
        "start_offset": 0,
        "end_offset": 31,
    }
    # the late annotation does not undo the finish
    assert result.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("mode", ["fused", "staged"])
def test_openrouter_heartbeats_only_on_request(mode: str) -> None:
    body = _body("openrouter_chat.sse")
    quiet = run([body], "openai-chat", mode)
    loud = run([body], "openai-chat", mode, heartbeats=True)
    assert [d for d in quiet.deltas if isinstance(d, Heartbeat)] == []
    beats = [d for d in loud.deltas if isinstance(d, Heartbeat)]
    assert len(beats) == 3
    assert {b.comment.strip() for b in beats} == {"OPENROUTER PROCESSING"}
    # heartbeats change nothing else
    assert [d for d in loud.deltas if not isinstance(d, Heartbeat)] == quiet.deltas
    assert loud.result == quiet.result


def test_openrouter_usage_keeps_cost() -> None:
    usage = run([_body("openrouter_chat.sse")], "openai-chat").result.usage
    assert usage is not None
    assert usage.reasoning_tokens == 81
    assert usage.cost == pytest.approx(0.000231)


def test_ollama_metrics_annotation_in_seconds() -> None:
    result = run([_body("ollama_chat.ndjson")], "ollama").result
    metrics = [a["payload"] for a in result.annotations if a["kind"] == "metrics"]
    assert metrics == [
        {
            "total_s": pytest.approx(1.843520792),
            "load_s": pytest.approx(0.041295167),
            "prompt_eval_s": pytest.approx(0.098214),
            "eval_s": pytest.approx(1.601187),
        }
    ]


# --------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data())
def test_random_splits_give_the_same_result(name: str, data: st.DataObject) -> None:
    body = _body(name)
    protocol = PROTOCOL[name]
    if name.endswith(".sse"):
        body = _rewrite(body, data.draw(st.sampled_from(["as-is", "nospace", "comments"]), "how"))
        body = _line_ends(body, data.draw(st.sampled_from(["lf", "crlf", "cr"]), "eol"))
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=40), "points")
    chunks = _split(body, points)
    for mode in _modes(protocol):
        assert _comparable(run(chunks, protocol, mode)) == _reference(name), mode


@pytest.mark.parametrize("name", NAMES)
def test_bytewise_gives_the_same_result(name: str) -> None:
    body = _body(name)
    chunks = [body[i : i + 1] for i in range(len(body))]
    for mode in _modes(PROTOCOL[name]):
        assert _comparable(run(chunks, PROTOCOL[name], mode)) == _reference(name), mode


@pytest.mark.parametrize("name", SSE_NAMES)
@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
def test_line_endings_give_the_same_result(name: str, eol: str) -> None:
    body = _line_ends(_body(name), eol)
    for mode in _modes(PROTOCOL[name]):
        assert _comparable(run([body], PROTOCOL[name], mode)) == _reference(name), mode


@FAST
@given(points=st.lists(st.integers(0, len(_body("openrouter_chat.sse"))), max_size=40))
def test_heartbeats_survive_any_split(points: list[int]) -> None:
    chunks = _split(_body("openrouter_chat.sse"), points)
    for mode in ("fused", "staged"):
        outcome = run(chunks, "openai-chat", mode, heartbeats=True)
        assert _comparable(outcome) == _reference("openrouter_chat.sse", True)
        assert sum(isinstance(d, Heartbeat) for d in outcome.deltas) == 3


# --------------------------------------------------------------------------- end signals


@pytest.mark.parametrize("name", COMPLETE)
def test_cut_before_the_end_signal_is_truncated(name: str) -> None:
    # (strict: without it an OpenAI body that lacks only [DONE] is complete, see
    # test_missing_done.py)
    body = _body(name)
    cut = body.index(END_SIGNAL[name])
    full = _reference(name)[0]
    for mode in _modes(PROTOCOL[name]):
        outcome = run([body[:cut]], PROTOCOL[name], mode, require_done=True)
        assert isinstance(outcome.error, StreamInterrupted), (mode, outcome.error)
        assert outcome.result.state == "truncated"
        assert outcome.error.partial is outcome.result
        assert outcome.result.text == full.text
        assert outcome.result.text == MATRIX[name][0].text


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=st.data())
def test_any_cut_before_the_last_signal_is_truncated_with_a_prefix(
    name: str, data: st.DataObject
) -> None:
    body = _body(name)
    signal = ERROR_SIGNAL.get(name) or END_SIGNAL[name]
    cut = data.draw(st.integers(0, body.index(signal)), "cut")
    if name.endswith(".ndjson"):
        # cuts inside a line: test_ndjson_cut_inside_a_line_is_truncation_in_both_pipelines
        cut = body.rfind(b"\n", 0, cut) + 1
    full = _reference(name)[0]
    for mode in _modes(PROTOCOL[name]):
        outcome = run([body[:cut]], PROTOCOL[name], mode, require_done=True)
        assert isinstance(outcome.error, StreamInterrupted), (mode, outcome.error)
        assert outcome.result.state == "truncated"
        for choice in outcome.result.choices:
            assert (full.choices[choice.index].text or "").startswith(choice.text or "")


@pytest.mark.parametrize("name", ["ollama_chat.ndjson"])
def test_ndjson_cut_inside_a_line_is_truncation_in_both_pipelines(name: str) -> None:
    # The fused decoder treats a final line cut in the middle as truncation; the staged
    # parse_ndjson | decode_json | extract_deltas must say the same (not DecodeError).
    body = _body(name)
    cut = body.index(END_SIGNAL[name]) + 20  # inside the done line
    for mode in ("fused", "staged"):
        outcome = run([body[:cut]], "ollama", mode)
        assert isinstance(outcome.error, StreamInterrupted), (mode, outcome.error)
        assert not isinstance(outcome.error, DecodeError)
        assert outcome.result.state == "truncated"
        assert outcome.result.text == "Checking now."


@pytest.mark.parametrize("name", COMPLETE)
def test_complete_body_is_complete(name: str) -> None:
    for mode in _modes(PROTOCOL[name]):
        outcome = run([_body(name)], PROTOCOL[name], mode)
        assert outcome.error is None
        assert outcome.result.state == "complete"


def test_gemini_ends_at_eof_after_finish_reason_only() -> None:
    body = _body("gemini.sse")
    last = body.index(END_SIGNAL["gemini.sse"])
    # everything up to the chunk with finishReason (inclusive) is a complete stream
    assert run([body], "gemini").result.state == "complete"
    before = run([body[:last]], "gemini")
    assert isinstance(before.error, StreamInterrupted)
    assert before.result.choices[0].finish_reason is None
    assert before.result.tool_calls[0].name == "get_weather"


@pytest.mark.parametrize("name", ["basic.sse", "tool_use.sse", "incomplete_partial_json.sse"])
def test_recorded_anthropic_without_final_blank_line(name: str) -> None:
    body = (COMPOSED.parent / "recorded" / "anthropic-messages" / name).read_bytes()
    assert not body.endswith(b"\n\n")
    for mode in _modes("anthropic"):
        strict = run([body], "anthropic", mode)
        assert isinstance(strict.error, StreamInterrupted)
        assert strict.result.state == "truncated"
        lenient = run([body], "anthropic", mode, flush_incomplete=True)
        assert lenient.error is None
        assert lenient.result.state == "complete"
        assert lenient.result.text == strict.result.text != ""
        assert lenient.result.finish_reason == strict.result.finish_reason
    completion, error, _ = run_decoder(body, "anthropic")
    assert isinstance(error, StreamInterrupted)
    completion, error, _ = run_decoder(body, "anthropic", flush_incomplete=True)
    assert error is None
    expected_finish = {"basic.sse": "stop", "tool_use.sse": "tool_calls"}
    assert completion.finish_reason == expected_finish.get(name, "length")


# --------------------------------------------------------------------------- in-band errors


def _errors(body: bytes, protocol: str) -> list[Outcome]:
    return [run([body], protocol, mode) for mode in _modes(protocol)]


def test_anthropic_overloaded_is_retryable_with_partial() -> None:
    for outcome in _errors(_body("anthropic_error_overloaded.sse"), "anthropic"):
        error = outcome.error
        assert isinstance(error, StreamError)
        assert error.retryable is True
        assert error.error_type == "overloaded_error"
        assert error.error == {"type": "overloaded_error", "message": "Overloaded"}
        assert error.partial is outcome.result
        assert outcome.result.text == "Once upon a"
        assert outcome.result.state == "error"
        # the ErrorDelta is emitted, last, before the error
        last = outcome.deltas[-1]
        assert isinstance(last, ErrorDelta)
        assert last.retryable is True
        assert last.error == {"type": "overloaded_error", "message": "Overloaded"}
        assert "Overloaded" in last.message


def test_openai_midstream_server_error_keeps_partial() -> None:
    for outcome in _errors(_body("openai_chat_error_midstream.sse"), "openai-chat"):
        error = outcome.error
        assert isinstance(error, StreamError)
        assert error.error_type == "server_error"
        assert error.error["message"].startswith("The server had an error")
        assert outcome.result.text == "The three largest moons of Jupiter are"
        assert outcome.result.usage is None
        assert isinstance(outcome.deltas[-1], ErrorDelta)


def _sse(*events: tuple[str | None, dict[str, Any]]) -> bytes:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {json.dumps(data)}\n\n")
    return "".join(out).encode()


def _responses_start(seq: int = 0) -> tuple[str, dict[str, Any]]:
    response = {
        "id": "resp_err1",
        "object": "response",
        "created_at": 1761904000,
        "status": "in_progress",
        "model": "gpt-4.1",
        "output": [],
        "usage": None,
        "error": None,
    }
    return (
        "response.created",
        {"type": "response.created", "sequence_number": seq, "response": response},
    )


def _responses_text(seq: int, text: str) -> list[tuple[str, dict[str, Any]]]:
    item = {
        "id": "msg_1",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    return [
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": seq,
                "output_index": 0,
                "item": item,
            },
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": seq + 1,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": text,
                "logprobs": [],
            },
        ),
    ]


FAILED = {
    "type": "response.failed",
    "sequence_number": 4,
    "response": {
        "id": "resp_err1",
        "object": "response",
        "status": "failed",
        "error": {"code": "server_error", "message": "The model failed."},
        "output": [],
        "usage": None,
    },
}


@pytest.mark.parametrize(
    ("payload", "error_type", "message"),
    [
        (  # flat, as openai-python types it
            {
                "type": "error",
                "sequence_number": 3,
                "code": "server_error",
                "message": "Something broke.",
                "param": None,
            },
            None,
            "Something broke.",
        ),
        (  # nested, as recorded
            {
                "type": "error",
                "sequence_number": 3,
                "error": {
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                    "message": "You exceeded your current quota.",
                    "param": None,
                },
            },
            "insufficient_quota",
            "You exceeded your current quota.",
        ),
    ],
    ids=["flat", "nested"],
)
def test_responses_error_event(
    payload: dict[str, Any], error_type: str | None, message: str
) -> None:
    body = _sse(
        _responses_start(),
        *_responses_text(1, "Hel"),
        ("error", payload),
        ("response.failed", FAILED),
    )
    for outcome in _errors(body, "openai-responses"):
        error = outcome.error
        assert isinstance(error, StreamError), error
        assert message in str(error)
        if error_type is not None:
            assert error.error_type == error_type
            assert error.retryable is False
        else:
            assert error.error["code"] == "server_error"
        assert outcome.result.text == "Hel"
        assert outcome.result.state == "error"


def test_responses_flat_error_type_is_its_code() -> None:
    # In the flat shape "type" is always "error": the code says what went wrong.
    payload = {
        "type": "error",
        "sequence_number": 3,
        "code": "rate_limit_exceeded",
        "message": "Slow down.",
    }
    body = _sse(_responses_start(), *_responses_text(1, "Hel"), ("error", payload))
    _, error, _ = run_decoder(body, "openai-responses")
    assert isinstance(error, StreamError)
    assert error.error_type == "rate_limit_exceeded"
    assert error.retryable is True


def test_responses_flat_error_without_event_name_is_an_error() -> None:
    # The envelope table (§10) matches {"type":"error",...,"code","message"} by shape: a
    # proxy that drops the `event:` line must not turn it into a silent truncation.
    payload = {"type": "error", "sequence_number": 3, "code": "server_error", "message": "Boom."}
    body = _sse(_responses_start(), *_responses_text(1, "Hel"), (None, payload))
    for outcome in _errors(body, "openai-responses"):
        assert isinstance(outcome.error, StreamError), outcome.error
        assert outcome.result.text == "Hel"


def test_responses_failed_is_a_stream_error() -> None:
    failed = dict(FAILED, sequence_number=3)
    body = _sse(_responses_start(), *_responses_text(1, "Hel"), ("response.failed", failed))
    for outcome in _errors(body, "openai-responses"):
        error = outcome.error
        assert isinstance(error, StreamError)
        assert error.error == {"code": "server_error", "message": "The model failed."}
        assert error.error_type == "server_error"
        assert "The model failed." in str(error)
        assert outcome.result.text == "Hel"
        assert isinstance(outcome.deltas[-1], ErrorDelta)


def test_ollama_error_line() -> None:
    lines = [
        {
            "model": "qwen3:8b",
            "created_at": "t",
            "message": {"role": "assistant", "content": "Par"},
            "done": False,
        },
        {"error": "an error was encountered while running the model"},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    for outcome in _errors(body, "ollama"):
        error = outcome.error
        assert isinstance(error, StreamError)
        assert "an error was encountered while running the model" in str(error)
        assert error.error == "an error was encountered while running the model"
        assert outcome.result.text == "Par"
        assert outcome.result.state == "error"
        assert isinstance(outcome.deltas[-1], ErrorDelta)


GEMINI_TEXT = {
    "candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"}, "index": 0}],
    "modelVersion": "gemini-2.5-flash",
    "responseId": "r1",
}


def test_gemini_error_data() -> None:
    error_obj = {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}
    body = _line_ends(_sse((None, GEMINI_TEXT), (None, {"error": error_obj})), "crlf")
    for outcome in _errors(body, "gemini"):
        error = outcome.error
        assert isinstance(error, StreamError)
        assert error.error == error_obj
        assert "Internal error encountered." in str(error)
        assert outcome.result.text == "Hello"
        assert outcome.result.state == "error"


@pytest.mark.parametrize(("code", "status"), [(503, "UNAVAILABLE"), (429, "RESOURCE_EXHAUSTED")])
def test_gemini_error_status_decides_retryable(code: int, status: str) -> None:
    # Gemini's code is the numeric HTTP status; the gRPC status name says what happened.
    error_obj = {"code": code, "message": "The model is overloaded.", "status": status}
    body = _sse((None, GEMINI_TEXT), (None, {"error": error_obj}))
    _, error, deltas = run_decoder(body, "gemini")
    assert isinstance(error, StreamError)
    assert error.retryable is True
    assert isinstance(deltas[-1], ErrorDelta) and deltas[-1].retryable is True


def test_openrouter_error_chunk() -> None:
    head = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 1761905300,
        "model": "openai/gpt-4o",
        "provider": "OpenAI",
    }
    first = dict(
        head,
        choices=[
            {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
        ],
    )
    failing = dict(
        head,
        error={"code": "server_error", "message": "Provider disconnected unexpectedly"},
        choices=[{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    )
    body = _sse((None, first), (None, failing))
    for outcome in _errors(body, "openai-chat"):
        error = outcome.error
        assert isinstance(error, StreamError)
        assert error.error == {
            "code": "server_error",
            "message": "Provider disconnected unexpectedly",
        }
        assert error.error_type == "server_error"
        assert outcome.result.text == "Hi"
        assert outcome.result.state == "error"


# --------------------------------------------------------------------------- §11.3 finish


def _chat_finish(raw: str, *, refusal: str | None = None, calls: bool = False) -> bytes:
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    delta: dict[str, Any] = {"role": "assistant", "content": None if refusal else "ok"}
    if refusal:
        delta["refusal"] = refusal
    if calls:
        delta["tool_calls"] = [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": "{}"},
            }
        ]
    events = [
        dict(head, choices=[{"index": 0, "delta": delta, "finish_reason": None}]),
        dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": raw}]),
    ]
    return _sse(*((None, e) for e in events)) + b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("error", "error"),  # OpenRouter
        ("eos_token", "stop"),  # TGI
        ("stop_sequence", "stop"),  # TGI
        ("insufficient_system_resource", "error"),  # DeepSeek
        ("something_new", "other"),
    ],
)
def test_finish_openai_compatible(raw: str, neutral: str) -> None:
    completion, error, _ = run_decoder(_chat_finish(raw), "openai-chat")
    assert error is None
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (neutral, raw)


def test_finish_openai_stop_with_refusal_is_refusal() -> None:
    completion, _, _ = run_decoder(_chat_finish("stop", refusal="I can't help."), "openai-chat")
    assert completion.choices[0].refusal == "I can't help."
    assert completion.finish_reason == "refusal"
    assert completion.choices[0].raw_finish_reason == "stop"


def _anthropic_body(stop_reason: str, *, tool: bool = False) -> bytes:
    block = (
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
        if tool
        else {"type": "text", "text": ""}
    )
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 10, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _sse(*events)


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "refusal"),
        ("pause_turn", "other"),  # rxgpt's neutral set has no "pause"
        ("brand_new_reason", "other"),
    ],
)
def test_finish_anthropic(raw: str, neutral: str) -> None:
    completion, error, _ = run_decoder(_anthropic_body(raw), "anthropic")
    assert error is None
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (neutral, raw)


def test_finish_anthropic_tool_use() -> None:
    completion, _, _ = run_decoder(_anthropic_body("tool_use", tool=True), "anthropic")
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (
        "tool_calls",
        "tool_use",
    )
    assert completion.tool_calls[0].arguments in ("", "{}")
    assert completion.tool_calls[0].parsed_arguments() == {}


def _gemini_body(finish: str, *, call: bool = False) -> bytes:
    parts: list[dict[str, Any]] = [{"text": "x"}]
    if call:
        parts.append({"functionCall": {"name": "f", "args": {"a": 1}}})
    chunk = {
        "candidates": [
            {"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}
        ],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r",
    }
    return _line_ends(_sse((None, chunk)), "crlf")


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_RECITATION", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("UNEXPECTED_TOOL_CALL", "error"),
        ("TOO_MANY_TOOL_CALLS", "error"),
        ("LANGUAGE", "other"),
        ("OTHER", "other"),
        ("NO_IMAGE", "other"),
        ("FINISH_REASON_UNSPECIFIED", "other"),
    ],
)
def test_finish_gemini(raw: str, neutral: str) -> None:
    completion, error, _ = run_decoder(_gemini_body(raw), "gemini")
    assert error is None
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (neutral, raw)


def test_finish_gemini_stop_with_function_call() -> None:
    completion, _, _ = run_decoder(_gemini_body("STOP", call=True), "gemini")
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (
        "tool_calls",
        "STOP",
    )
    # MAX_TOKENS with a call stays "length"
    completion, _, _ = run_decoder(_gemini_body("MAX_TOKENS", call=True), "gemini")
    assert completion.finish_reason == "length"


def test_finish_gemini_prompt_blocked() -> None:
    chunk = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash",
    }
    completion, error, _ = run_decoder(_sse((None, chunk)), "gemini")
    assert error is None
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (
        "content_filter",
        "SAFETY",
    )


def _ollama_body(done_reason: str, *, call: bool = False) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": "x"}
    if call:
        message["tool_calls"] = [{"function": {"name": "f", "arguments": {"a": 1}}}]
    lines = [
        {"model": "m", "created_at": "t", "message": message, "done": False},
        {
            "model": "m",
            "created_at": "t",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": done_reason,
        },
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [("stop", "stop"), ("length", "length"), ("load", "other"), ("unload", "other")],
)
def test_finish_ollama(raw: str, neutral: str) -> None:
    completion, error, _ = run_decoder(_ollama_body(raw), "ollama")
    assert error is None
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (neutral, raw)


def test_finish_ollama_stop_with_tool_calls() -> None:
    completion, _, _ = run_decoder(_ollama_body("stop", call=True), "ollama")
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (
        "tool_calls",
        "stop",
    )
    assert completion.tool_calls[0].arguments == '{"a":1}'


def _responses_terminal(
    kind: str,
    status: str,
    *,
    incomplete: str | None = None,
    call: bool = False,
    refusal: bool = False,
) -> bytes:
    events = [_responses_start()]
    seq = 1
    if refusal:
        item = {
            "id": "msg_1",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        events.append(
            (
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "sequence_number": seq,
                    "output_index": 0,
                    "item": item,
                },
            )
        )
        events.append(
            (
                "response.refusal.delta",
                {
                    "type": "response.refusal.delta",
                    "sequence_number": seq + 1,
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "I can't.",
                },
            )
        )
        seq += 2
    if call:
        item = {
            "id": "fc_1",
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": "call_1",
            "name": "f",
        }
        events.append(
            (
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "sequence_number": seq,
                    "output_index": 0,
                    "item": item,
                },
            )
        )
        seq += 1
    response = {
        "id": "resp_err1",
        "object": "response",
        "status": status,
        "output": [],
        "usage": None,
    }
    if incomplete:
        response["incomplete_details"] = {"reason": incomplete}
    events.append((kind, {"type": kind, "sequence_number": seq, "response": response}))
    return _sse(*events)


@pytest.mark.parametrize(
    ("kind", "status", "incomplete", "call", "neutral", "raw"),
    [
        ("response.completed", "completed", None, False, "stop", "completed"),
        ("response.completed", "completed", None, True, "tool_calls", "completed"),
        (
            "response.incomplete",
            "incomplete",
            "max_output_tokens",
            False,
            "length",
            "max_output_tokens",
        ),
        (
            "response.incomplete",
            "incomplete",
            "content_filter",
            False,
            "content_filter",
            "content_filter",
        ),
    ],
)
def test_finish_responses(
    kind: str, status: str, incomplete: str | None, call: bool, neutral: str, raw: str
) -> None:
    body = _responses_terminal(kind, status, incomplete=incomplete, call=call)
    completion, error, _ = run_decoder(body, "openai-responses")
    assert error is None
    assert completion.state == "complete"
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (neutral, raw)


def test_finish_responses_refusal_part_is_refusal() -> None:
    body = _responses_terminal("response.completed", "completed", refusal=True)
    completion, _, _ = run_decoder(body, "openai-responses")
    assert completion.choices[0].refusal == "I can't."
    assert completion.finish_reason == "refusal"


def test_finish_responses_failed_is_an_error_not_a_finish() -> None:
    body = _responses_terminal("response.failed", "failed")
    _completion, error, deltas = run_decoder(body, "openai-responses")
    assert isinstance(error, StreamError)
    assert not any(isinstance(d, FinishDelta) for d in deltas)


def test_finish_empty_string_is_null() -> None:
    completion, _, deltas = run_decoder(_chat_finish(""), "openai-chat")
    assert completion.finish_reason is None
    assert not any(isinstance(d, FinishDelta) for d in deltas)


# --------------------------------------------------------------------------- usage


def test_anthropic_message_delta_usage_replaces() -> None:
    completion, _, deltas = run_decoder(_body("anthropic_messages_tools.sse"), "anthropic")
    usage = completion.usage
    assert usage is not None
    # message_start says output 4, message_delta 89 (cumulative): 89, not 93; input 472 twice: 472
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (472, 89, 561)
    assert usage.cached_input_tokens == 0 and usage.cache_write_tokens == 0
    usages = [d for d in deltas if type(d).__name__ == "UsageDelta"]
    assert [u.usage.output_tokens for u in usages] == [4, 89]


def test_anthropic_message_delta_without_input_keeps_message_start_input() -> None:
    body = _anthropic_body("end_turn")
    completion, _, _ = run_decoder(body, "anthropic")
    assert completion.usage is not None
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (10, 5)


def test_anthropic_cache_tokens_count_as_input() -> None:
    body = _anthropic_body("end_turn").replace(
        b'"usage": {"input_tokens": 10, "output_tokens": 1}',
        b'"usage": {"input_tokens": 10, "cache_creation_input_tokens": 20, '
        b'"cache_read_input_tokens": 30, "output_tokens": 1}',
    )
    completion, _, _ = run_decoder(body, "anthropic")
    usage = completion.usage
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_write_tokens) == (60, 30, 20)
    assert usage.output_tokens == 5


def test_gemini_cumulative_usage_replaces() -> None:
    completion, _, deltas = run_decoder(_body("gemini.sse"), "gemini")
    outputs = [d.usage.output_tokens for d in deltas if type(d).__name__ == "UsageDelta"]
    assert outputs == [64, 69, 91, 91]
    assert completion.usage is not None
    assert completion.usage.output_tokens == 91  # not the sum
    assert completion.usage.input_tokens == 38


# --------------------------------------------------------------------------- sequence gaps


def _gap_body() -> bytes:
    events = [_responses_start(0), *_responses_text(1, "Hi")]
    events[2][1]["sequence_number"] = 5  # 0, 1, 5: two events lost
    done = {
        "type": "response.completed",
        "sequence_number": 6,
        "response": {
            "id": "resp_err1",
            "object": "response",
            "status": "completed",
            "output": [],
            "usage": None,
        },
    }
    return _sse(*events, ("response.completed", done))


def test_responses_sequence_gap_is_annotated() -> None:
    for mode in _modes("openai-responses"):
        outcome = run([_gap_body()], "openai-responses", mode)
        assert outcome.error is None
        gaps = [
            d for d in outcome.deltas if isinstance(d, AnnotationDelta) and d.kind == "sequence_gap"
        ]
        assert gaps == [AnnotationDelta(None, "sequence_gap", {"expected": 2, "got": 5})]
        assert outcome.result.text == "Hi"
        assert outcome.result.annotations == [
            {"kind": "sequence_gap", "payload": {"expected": 2, "got": 5}, "part": 0}
        ]


def test_responses_sequence_gap_strict_raises() -> None:
    decoder = OpenAIResponsesDecoder(strict=True)
    out: list[Delta] = []
    events = [_responses_start(0)[1], *(e for _, e in _responses_text(1, "Hi"))]
    events[2]["sequence_number"] = 5
    decoder.feed(events[0], out)
    decoder.feed(events[1], out)
    with pytest.raises(DecodeError, match="expected 2, got 5"):
        decoder.feed(events[2], out)
    assert decoder.gaps == [(2, 5)]


def test_responses_repeated_sequence_number_is_a_gap() -> None:
    decoder = OpenAIResponsesDecoder()
    out: list[Delta] = []
    events = [_responses_start(0)[1], *(e for _, e in _responses_text(1, "Hi"))]
    events[2]["sequence_number"] = 1  # a duplicate
    for event in events:
        decoder.feed(event, out)
    assert decoder.gaps == [(2, 1)]


def test_responses_fixture_has_no_gap() -> None:
    outcome = run([_body("openai_responses.sse")], "openai-responses")
    assert not any(isinstance(d, AnnotationDelta) for d in outcome.deltas)


# --------------------------------------------------------------------------- to_openai


@pytest.mark.parametrize("name", COMPLETE)
def test_to_openai_validates_as_chat_completion(name: str) -> None:
    result = run([_body(name)], PROTOCOL[name]).result
    model = ChatCompletion.model_validate(result.to_openai())
    assert model.object == "chat.completion"
    assert [c.index for c in model.choices] == [c.index for c in result.choices]
    for mine, theirs in zip(result.choices, model.choices, strict=True):
        assert (theirs.message.content or "") == (mine.text or "")
        calls = theirs.message.tool_calls or []
        assert [(c.id, c.function.name) for c in calls] == [(t.id, t.name) for t in mine.tool_calls]
        for call in calls:
            assert isinstance(call.function.arguments, str)
            json.loads(call.function.arguments)
    expected = MATRIX[name][0]
    assert model.choices[0].finish_reason == expected.finish
    assert model.usage is not None
    assert (model.usage.prompt_tokens, model.usage.completion_tokens) == expected.usage
