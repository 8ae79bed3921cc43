"""One test per provider quirk (stream-formats.md §2–§9), on small hand-written bodies.

Each body is the smallest stream that shows the quirk; it goes through the fused
``StreamDecoder`` and the staged operators, which must agree. Then partial tool-call
arguments read while they stream (``Accumulator.partial_arguments``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import reactivex
import reactivex.operators as ops
from hypothesis import given, settings
from hypothesis import strategies as st

from rxgpt import (
    Accumulator,
    AnnotationDelta,
    Completion,
    Delta,
    ErrorDelta,
    Heartbeat,
    ReasoningDelta,
    ReasoningSignature,
    StreamError,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    accumulate,
    decode_json,
    decode_stream,
    extract_deltas,
    parse_ndjson,
    parse_sse,
)
from rxgpt._protocols import PROTOCOLS as _PROTOCOLS

DONE_MARKER_PROTOCOLS = {name for name, cls in _PROTOCOLS.items() if cls.has_done_marker}

FIXTURES = Path(__file__).parent / "fixtures"
FAST = settings(max_examples=25, deadline=None)


# --------------------------------------------------------------------------- helpers


def _sse(*events: Any, done: bool = False, eol: str = "\n") -> bytes:
    """An SSE body: dicts become ``data:`` events, ``(name, dict)`` named events, str comments."""
    out = []
    for event in events:
        if isinstance(event, str):
            out.append(f": {event}{eol}{eol}")
        elif isinstance(event, tuple):
            name, data = event
            out.append(f"event: {name}{eol}data: {json.dumps(data)}{eol}{eol}")
        else:
            out.append(f"data: {json.dumps(event)}{eol}{eol}")
    if done:
        out.append(f"data: [DONE]{eol}{eol}")
    return "".join(out).encode()


def _ndjson(*lines: dict[str, Any]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _run(
    body: bytes, protocol: str, *, staged: bool = False, heartbeats: bool = False
) -> tuple[Completion, Exception | None, list[Delta]]:
    if not staged:
        stages: tuple[Any, ...] = (decode_stream(protocol, heartbeats=heartbeats),)
    elif protocol == "ollama":
        stages = (parse_ndjson(), decode_json(done=None), extract_deltas(protocol))
    else:
        done = "[DONE]" if protocol in DONE_MARKER_PROTOCOLS else None
        stages = (
            parse_sse(heartbeats=heartbeats),
            decode_json(done=done),
            extract_deltas(protocol),
        )
    deltas: list[Delta] = []
    results: list[Completion] = []
    errors: list[Exception] = []
    reactivex.from_iterable([body[: len(body) // 2], body[len(body) // 2 :]]).pipe(
        *stages, ops.do_action(deltas.append), accumulate(protocol)
    ).subscribe(results.append, errors.append)
    if errors:
        partial = getattr(errors[0], "partial", None)
        assert isinstance(partial, Completion)
        return partial, errors[0], deltas
    return results[0], None, deltas


def decode(
    body: bytes, protocol: str = "openai-chat", **kwargs: Any
) -> tuple[Completion, list[Delta]]:
    """Run both pipelines, check they agree and that the stream ended cleanly."""
    fused, error, deltas = _run(body, protocol, **kwargs)
    staged, staged_error, staged_deltas = _run(body, protocol, staged=True, **kwargs)
    assert error is None, error
    assert staged_error is None, staged_error
    assert staged_deltas == deltas
    assert staged == fused
    assert fused.state == "complete"
    return fused, deltas


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    base = {
        "id": "chatcmpl-q1",
        "object": "chat.completion.chunk",
        "created": 1761906000,
        "model": "m",
    }
    return {**base, "choices": choices, **extra}


def _choice(
    delta: dict[str, Any] | None = None, finish: str | None = None, index: int = 0, **extra: Any
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": index,
        "delta": delta if delta is not None else {},
        "finish_reason": finish,
    }
    choice.update(extra)
    return choice


def _call(
    index: int | None, call_id: str | None, name: str | None, arguments: str | None
) -> dict[str, Any]:
    frag: dict[str, Any] = {}
    if index is not None:
        frag["index"] = index
    if call_id is not None:
        frag["id"] = call_id
        frag["type"] = "function"
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    frag["function"] = function
    return frag


# --------------------------------------------------------------------------- Azure


AZURE_PROMPT_FILTER = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": [
        {
            "prompt_index": 0,
            "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}},
        }
    ],
}
SAFE = {
    "hate": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "low"},
}


def test_azure_first_chunk_with_empty_choices_and_prompt_filter() -> None:
    body = _sse(
        AZURE_PROMPT_FILTER,
        _chunk([_choice({"role": "assistant", "content": ""})]),
        _chunk([_choice({"content": "Hi"})]),
        _chunk([_choice(finish="stop")]),
        done=True,
    )
    completion, deltas = decode(body)
    assert completion.id == "chatcmpl-q1"  # not the empty id of the filter chunk
    assert completion.model == "m"
    assert [c.index for c in completion.choices] == [0]
    assert completion.annotations == [
        {
            "kind": "prompt_filter",
            "payload": AZURE_PROMPT_FILTER["prompt_filter_results"],
            "part": 0,
        }
    ]
    assert completion.text == "Hi"
    assert isinstance(deltas[0], AnnotationDelta) and deltas[0].choice is None


def test_azure_content_filter_results_per_choice() -> None:
    body = _sse(
        _chunk(
            [
                _choice(
                    {"role": "assistant", "content": ""}, content_filter_results={}, logprobs=None
                )
            ]
        ),
        _chunk([_choice({"content": "Hi"}, content_filter_results=SAFE, logprobs=None)]),
        _chunk([_choice(finish="stop", content_filter_results={}, logprobs=None)]),
        done=True,
    )
    completion, _ = decode(body)
    assert completion.choices[0].annotations == [
        {"kind": "content_filter", "payload": {"content_filter_results": SAFE}, "part": 0}
    ]


def test_azure_annotation_chunk_after_the_finish() -> None:
    # The asynchronous filter's annotation-only chunk (no delta, empty ids) after the finish.
    late = {
        "choices": [
            {
                "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 2},
                "content_filter_results": SAFE,
                "finish_reason": None,
                "index": 0,
            }
        ],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
    }
    body = _sse(
        _chunk([_choice({"role": "assistant", "content": "Hi"})]),
        _chunk([_choice(finish="stop")]),
        late,
        done=True,
    )
    completion, _ = decode(body)
    assert completion.finish_reason == "stop"
    assert completion.id == "chatcmpl-q1"
    assert completion.choices[0].annotations == [
        {
            "kind": "content_filter",
            "payload": {
                "content_filter_results": SAFE,
                "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 2},
            },
            "part": 0,
        }
    ]


# --------------------------------------------------------------------------- OpenRouter


def _openrouter_body() -> bytes:
    return _sse(
        "OPENROUTER PROCESSING",
        _chunk([_choice({"role": "assistant", "content": "", "reasoning": "Think"})], provider="X"),
        "OPENROUTER PROCESSING",
        _chunk([_choice({"role": "assistant", "content": "", "reasoning": "ing."})], provider="X"),
        _chunk([_choice({"role": "assistant", "content": "Done"})], provider="X"),
        "OPENROUTER PROCESSING",
        _chunk(
            [_choice({"role": "assistant", "content": ""}, "stop", native_finish_reason="stop")],
            provider="X",
        ),
        done=True,
    )


def test_openrouter_comments_are_heartbeats_only_on_request() -> None:
    quiet, quiet_deltas = decode(_openrouter_body())
    loud, loud_deltas = decode(_openrouter_body(), heartbeats=True)
    assert not any(isinstance(d, Heartbeat) for d in quiet_deltas)
    beats = [d for d in loud_deltas if isinstance(d, Heartbeat)]
    assert [b.comment.strip() for b in beats] == ["OPENROUTER PROCESSING"] * 3
    assert [d for d in loud_deltas if not isinstance(d, Heartbeat)] == quiet_deltas
    assert loud == quiet
    assert quiet.text == "Done" and quiet.finish_reason == "stop"


@pytest.mark.parametrize("heartbeats", [False, True])
def test_openrouter_comments_split_anywhere_never_break_decoding(heartbeats: bool) -> None:
    body = _openrouter_body()
    for staged in (False, True):
        stages: tuple[Any, ...] = (
            (parse_sse(heartbeats=heartbeats), decode_json(), extract_deltas())
            if staged
            else (decode_stream(heartbeats=heartbeats),)
        )
        results: list[Completion] = []
        reactivex.from_iterable([body[i : i + 1] for i in range(len(body))]).pipe(
            *stages, accumulate()
        ).subscribe(results.append)
        assert results[0].state == "complete"
        assert results[0].text == "Done"
        assert results[0].choices[0].reasoning == "Thinking."


def test_openrouter_reasoning_field() -> None:
    completion, deltas = decode(_openrouter_body())
    assert completion.choices[0].reasoning == "Thinking."
    assert [d.text for d in deltas if isinstance(d, ReasoningDelta)] == ["Think", "ing."]
    # the role repeated on every delta does not repeat the role
    assert completion.choices[0].role == "assistant"


def test_openrouter_error_chunk_with_finish_reason_error() -> None:
    failing = _chunk(
        [_choice({"content": ""}, "error")],
        error={"code": "server_error", "message": "Provider disconnected unexpectedly"},
    )
    body = _sse(_chunk([_choice({"role": "assistant", "content": "Half"})]), failing)
    for staged in (False, True):
        partial, error, deltas = _run(body, "openai-chat", staged=staged)
        assert isinstance(error, StreamError)
        assert error.error["message"] == "Provider disconnected unexpectedly"
        assert partial.text == "Half"
        assert partial.state == "error"
        assert isinstance(deltas[-1], ErrorDelta)


# --------------------------------------------------------------------------- reasoning fields


@pytest.mark.parametrize(
    "field", ["reasoning_content", "reasoning"], ids=["deepseek-llamacpp-xai", "vllm-groq-ollama"]
)
def test_reasoning_field_variants(field: str) -> None:
    body = _sse(
        ": keep-alive",
        _chunk([_choice({"role": "assistant", "content": None, field: ""})]),
        _chunk([_choice({"content": None, field: "2+2 is 4."})]),
        _chunk([_choice({"content": "4", field: None})]),
        _chunk([_choice({}, "stop")]),
        done=True,
    )
    completion, _ = decode(body)
    assert completion.choices[0].reasoning == "2+2 is 4."
    assert completion.choices[0].reasoning_summary is None
    assert completion.text == "4"
    assert completion.to_openai()["choices"][0]["message"]["reasoning_content"] == "2+2 is 4."


# --------------------------------------------------------------------------- usage placement


def test_usage_on_the_finish_chunk_deepseek() -> None:
    usage = {
        "prompt_tokens": 14,
        "completion_tokens": 9,
        "total_tokens": 23,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 6},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 14,
    }
    body = _sse(
        _chunk([_choice({"role": "assistant", "content": "4"})], usage=None),
        _chunk([_choice({"content": ""}, "stop")], usage=usage),
        done=True,
    )
    completion, _ = decode(body)
    assert completion.usage is not None
    u = completion.usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.reasoning_tokens) == (14, 9, 23, 6)
    assert u.cached_input_tokens == 0
    assert completion.finish_reason == "stop"


def test_deepseek_prompt_cache_hit_tokens_are_cached_input() -> None:
    usage = {
        "prompt_tokens": 14,
        "completion_tokens": 9,
        "total_tokens": 23,
        "prompt_cache_hit_tokens": 8,
    }
    body = _sse(
        _chunk([_choice({"role": "assistant", "content": "4"}, "stop")], usage=usage), done=True
    )
    completion, _ = decode(body)
    assert completion.usage is not None and completion.usage.cached_input_tokens == 8


def test_usage_on_every_chunk_vllm_continuous() -> None:
    body = _sse(
        _chunk(
            [_choice({"role": "assistant", "content": ""})],
            usage={"prompt_tokens": 17, "total_tokens": 17, "completion_tokens": 0},
        ),
        _chunk(
            [_choice({"reasoning": "Simple greeting."})],
            usage={"prompt_tokens": 17, "total_tokens": 21, "completion_tokens": 4},
        ),
        _chunk(
            [_choice({"content": "Hello!"})],
            usage={"prompt_tokens": 17, "total_tokens": 23, "completion_tokens": 6},
        ),
        _chunk(
            [_choice({"content": ""}, "stop", stop_reason=None)],
            usage={"prompt_tokens": 17, "total_tokens": 24, "completion_tokens": 7},
        ),
        _chunk([], usage={"prompt_tokens": 17, "total_tokens": 24, "completion_tokens": 7}),
        done=True,
    )
    completion, _ = decode(body)
    u = completion.usage
    assert u is not None
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (17, 7, 24)  # the last, not a sum
    assert completion.text == "Hello!"
    assert completion.choices[0].reasoning == "Simple greeting."


def test_groq_x_groq_usage() -> None:
    x_usage = {
        "queue_time": 0.0412,
        "prompt_tokens": 210,
        "prompt_time": 0.0104,
        "completion_tokens": 15,
        "completion_time": 0.0466,
        "total_tokens": 225,
        "total_time": 0.057,
    }
    body = _sse(
        _chunk(
            [_choice({"role": "assistant", "content": None})], x_groq={"id": "req_1", "seed": 1}
        ),
        _chunk(
            [
                _choice(
                    {
                        "tool_calls": [
                            {
                                "id": "t7b2k9x1q",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": '{"city":"Paris"}',
                                },
                                "index": 0,
                            }
                        ]
                    }
                )
            ]
        ),
        _chunk([_choice({}, "tool_calls")], x_groq={"id": "req_1", "usage": x_usage}),
        done=True,
    )
    completion, _ = decode(body)
    u = completion.usage
    assert u is not None
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (210, 15, 225)
    call = completion.tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("t7b2k9x1q", "get_weather", '{"city":"Paris"}')
    assert completion.finish_reason == "tool_calls"


# --------------------------------------------------------------------------- tool-call shapes


def test_mistral_tool_calls_without_index() -> None:
    calls = [
        {"id": "a1b2c3d4e", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "f5g6h7i8j", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}},
    ]
    body = _sse(
        _chunk([_choice({"role": "assistant", "content": ""})]),
        _chunk(
            [_choice({"tool_calls": calls}, "tool_calls")],
            usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        ),
        done=True,
    )
    completion, deltas = decode(body)
    got = [(c.index, c.id, c.name, c.parsed_arguments()) for c in completion.tool_calls]
    assert got == [
        (0, "a1b2c3d4e", "get_weather", {"city": "Paris"}),
        (1, "f5g6h7i8j", "get_time", {"tz": "CET"}),
    ]
    assert [d.index for d in deltas if isinstance(d, ToolCallEnd)] == [0, 1]
    assert completion.finish_reason == "tool_calls"


def test_mistral_index_less_continuation_fragments() -> None:
    body = _sse(
        _chunk(
            [
                _choice(
                    {
                        "tool_calls": [
                            {"id": "a1b2c3d4e", "function": {"name": "f", "arguments": '{"a"'}}
                        ]
                    }
                )
            ]
        ),
        _chunk([_choice({"tool_calls": [{"function": {"arguments": ": 1}"}}]})]),
        _chunk([_choice({}, "tool_calls")]),
        done=True,
    )
    completion, _ = decode(body)
    assert len(completion.tool_calls) == 1
    assert completion.tool_calls[0].arguments == '{"a": 1}'


def test_mistral_typed_content_with_thinking_parts() -> None:
    content = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "Let me think."}]},
        {"type": "text", "text": "Answer: "},
    ]
    body = _sse(
        _chunk([_choice({"role": "assistant", "content": content})]),
        _chunk([_choice({"content": [{"type": "text", "text": "42"}]})]),
        _chunk([_choice({"content": ""}, "stop")]),
        done=True,
    )
    completion, _ = decode(body)
    assert completion.choices[0].reasoning == "Let me think."
    assert completion.text == "Answer: 42"


def test_parallel_calls_all_at_index_0() -> None:
    body = _sse(
        _chunk([_choice({"tool_calls": [_call(0, "call_a", "get_weather", "")]})]),
        _chunk([_choice({"tool_calls": [_call(0, None, None, '{"city":"Paris"}')]})]),
        _chunk([_choice({"tool_calls": [_call(0, "call_b", "get_time", "")]})]),
        _chunk([_choice({"tool_calls": [_call(0, None, None, '{"tz":"CET"}')]})]),
        _chunk([_choice({}, "tool_calls")]),
        done=True,
    )
    completion, _ = decode(body)
    got = [(c.index, c.id, c.name, c.arguments) for c in completion.tool_calls]
    assert got == [
        (0, "call_a", "get_weather", '{"city":"Paris"}'),
        (1, "call_b", "get_time", '{"tz":"CET"}'),
    ]


def test_repeated_id_at_the_same_index_is_the_same_call() -> None:
    body = _sse(
        _chunk([_choice({"tool_calls": [_call(0, "call_a", "f", '{"x":')]})]),
        _chunk([_choice({"tool_calls": [_call(0, "call_a", None, " 1}")]})]),
        _chunk([_choice({}, "tool_calls")]),
        done=True,
    )
    completion, _ = decode(body)
    assert [(c.id, c.arguments) for c in completion.tool_calls] == [("call_a", '{"x": 1}')]


def test_fragment_with_empty_name_keeps_the_stored_name() -> None:
    body = _sse(
        _chunk([_choice({"tool_calls": [_call(0, "call_a", "get_weather", "")]})]),
        _chunk([_choice({"tool_calls": [_call(0, "", "", '{"city":')]})]),
        _chunk([_choice({"tool_calls": [_call(0, None, "", '"Paris"}')]})]),
        _chunk([_choice({}, "tool_calls")]),
        done=True,
    )
    completion, _ = decode(body)
    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [
        ("call_a", "get_weather", '{"city":"Paris"}')
    ]


def test_accumulator_never_overwrites_name_or_id_with_empty() -> None:
    acc = Accumulator()
    acc.add(ToolCallStart(0, 0, "call_a", "get_weather"))
    acc.add(ToolCallStart(0, 0, None, ""))
    acc.add(ToolCallArguments(0, 0, "{}"))
    call = acc.completion().tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call_a", "get_weather", "{}")


def test_empty_finish_reason_is_null() -> None:
    # old Ollama /v1 and TGI: "finish_reason": "" on every non-final chunk, role repeated
    body = _sse(
        _chunk([_choice({"role": "assistant", "content": "Hel"}, "")]),
        _chunk([_choice({"role": "assistant", "content": "lo"}, "")]),
        _chunk([_choice({"role": "assistant", "content": ""}, "stop")]),
        done=True,
    )
    completion, deltas = decode(body)
    assert completion.text == "Hello"
    finishes = [d for d in deltas if type(d).__name__ == "FinishDelta"]
    assert [(f.reason, f.raw_reason) for f in finishes] == [("stop", "stop")]


def test_empty_finish_reason_alone_leaves_no_finish() -> None:
    body = _sse(_chunk([_choice({"role": "assistant", "content": "Hel"}, "")]), done=True)
    completion, _ = decode(body)
    assert completion.finish_reason is None
    assert completion.choices[0].raw_finish_reason is None


def test_proxy_repeating_the_finish_chunk() -> None:
    # §10: a repeated identical finish is ignored; the calls are ended once.
    body = _sse(
        _chunk([_choice({"tool_calls": [_call(0, "call_a", "f", "{}")]})]),
        _chunk([_choice({}, "tool_calls")]),
        _chunk([_choice({}, "tool_calls")]),
        done=True,
    )
    completion, deltas = decode(body)
    assert completion.finish_reason == "tool_calls"
    assert [d.index for d in deltas if isinstance(d, ToolCallEnd)] == [0]
    assert len(completion.tool_calls) == 1


def test_finish_is_accepted_once_per_choice() -> None:
    # §11.5.7: later frames of a finished choice may carry annotations, logprobs or usage,
    # not a new finish reason.
    body = _sse(
        _chunk([_choice({"role": "assistant", "content": "Hi"})]),
        _chunk([_choice({}, "stop")]),
        _chunk([_choice({}, "length")]),
        done=True,
    )
    completion, _ = decode(body)
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == ("stop", "stop")


# --------------------------------------------------------------------------- legacy completions


def test_legacy_completions_finish_on_the_last_text_chunk() -> None:
    def chunk(text: str, finish: str | None) -> dict[str, Any]:
        return {
            "id": "cmpl-G7s",
            "object": "text_completion",
            "created": 1761906500,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
            "model": "gpt-3.5-turbo-instruct",
            "usage": None,
        }

    usage_chunk = {
        "id": "cmpl-G7s",
        "object": "text_completion",
        "created": 1761906500,
        "model": "gpt-3.5-turbo-instruct",
        "usage": {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9},
        "choices": [],
    }
    body = _sse(
        chunk("Haiku", None),
        chunk(" are short", None),
        chunk(" poems", "length"),
        usage_chunk,
        done=True,
    )
    completion, _ = decode(body, "openai-completions")
    assert completion.text == "Haiku are short poems"
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (
        "length",
        "length",
    )
    assert completion.usage is not None
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (6, 3)
    assert completion.id == "cmpl-G7s"


# --------------------------------------------------------------------------- Gemini


def _gemini(parts: list[dict[str, Any]], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
        **extra,
    }


def test_gemini_crlf_framing_signature_and_call_object() -> None:
    body = _sse(
        _gemini([{"text": "Planning.", "thought": True}]),
        _gemini(
            [
                {"text": "Sure."},
                {
                    "functionCall": {
                        "name": "get_weather",
                        "args": {"city": "Paris", "days": [1, 2]},
                    },
                    "thoughtSignature": "SIG/1==",
                },
                {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}},
            ]
        ),
        _gemini([{"text": ""}], "STOP"),
        eol="\r\n",
    )
    assert b"\r\n\r\n" in body and b"\n\n" not in body.replace(b"\r\n", b"")
    completion, deltas = decode(body, "gemini")
    choice = completion.choices[0]
    assert choice.text == "Sure."
    assert choice.reasoning_summary == "Planning."
    assert choice.signatures == ["SIG/1=="]
    calls = [(c.index, c.name, c.arguments) for c in choice.tool_calls]
    assert calls == [
        (0, "get_weather", '{"city":"Paris","days":[1,2]}'),
        (1, "get_time", '{"tz":"Europe/Paris"}'),
    ]
    ids = [c.id for c in choice.tool_calls]
    assert all(ids) and len(set(ids)) == 2  # synthesised, distinct
    assert (choice.finish_reason, choice.raw_finish_reason) == ("tool_calls", "STOP")
    signature = next(d for d in deltas if isinstance(d, ReasoningSignature))
    assert signature.value == "SIG/1=="


def test_gemini_function_call_id_is_kept_when_given() -> None:
    body = _sse(
        _gemini([{"functionCall": {"id": "fc-77", "name": "f", "args": {}}}], "STOP"), eol="\r\n"
    )
    completion, _ = decode(body, "gemini")
    assert [(c.id, c.arguments) for c in completion.tool_calls] == [("fc-77", "{}")]


def test_gemini_non_ascii_arguments_are_kept_verbatim() -> None:
    body = _sse(
        _gemini([{"functionCall": {"name": "f", "args": {"city": "Zürich"}}}], "STOP"), eol="\r\n"
    )
    completion, _ = decode(body, "gemini")
    assert completion.tool_calls[0].arguments == '{"city":"Zürich"}'


def test_gemini_prompt_blocked() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r2",
    }
    completion, _ = decode(_sse(blocked, eol="\r\n"), "gemini")
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (
        "content_filter",
        "PROHIBITED_CONTENT",
    )
    assert completion.text == ""
    assert [a["kind"] for a in completion.annotations] == ["prompt_feedback"]
    assert completion.usage is not None and completion.usage.input_tokens == 9


# --------------------------------------------------------------------------- Ollama


def test_ollama_done_line_metrics_and_object_arguments() -> None:
    body = _ndjson(
        {
            "model": "llama3.2",
            "created_at": "t0",
            "message": {"role": "assistant", "content": "", "thinking": "Hmm."},
            "done": False,
        },
        {
            "model": "llama3.2",
            "created_at": "t1",
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "function": {
                            "index": 0,
                            "name": "get_weather",
                            "arguments": {"city": "Paris", "n": 2},
                        }
                    }
                ],
            },
            "done": False,
        },
        {
            "model": "llama3.2",
            "created_at": "t2",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 2_000_000_000,
            "load_duration": 500_000_000,
            "prompt_eval_count": 10,
            "prompt_eval_duration": 250_000_000,
            "eval_count": 20,
            "eval_duration": 1_000_000_000,
        },
    )
    completion, _ = decode(body, "ollama")
    metrics = [a["payload"] for a in completion.annotations if a["kind"] == "metrics"]
    assert metrics == [{"total_s": 2.0, "load_s": 0.5, "prompt_eval_s": 0.25, "eval_s": 1.0}]
    assert completion.usage is not None
    assert (
        completion.usage.input_tokens,
        completion.usage.output_tokens,
        completion.usage.total_tokens,
    ) == (10, 20, 30)
    call = completion.tool_calls[0]
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris","n":2}')
    assert call.id  # synthesised
    assert completion.choices[0].reasoning == "Hmm."
    assert (completion.finish_reason, completion.choices[0].raw_finish_reason) == (
        "tool_calls",
        "stop",
    )


def test_ollama_generate_endpoint_response_field() -> None:
    body = _ndjson(
        {"model": "m", "created_at": "t", "response": "Hel", "done": False},
        {"model": "m", "created_at": "t", "response": "lo", "done": False},
        {
            "model": "m",
            "created_at": "t",
            "response": "",
            "done": True,
            "done_reason": "length",
            "eval_count": 2,
        },
    )
    completion, _ = decode(body, "ollama")
    assert completion.text == "Hello"
    assert completion.finish_reason == "length"


# --------------------------------------------------------------------------- Anthropic


def _message_start(**usage: int) -> tuple[str, dict[str, Any]]:
    message = {
        "id": "msg_q1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 10, "output_tokens": 1},
    }
    return ("message_start", {"type": "message_start", "message": message})


def _block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def _block_delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _block_stop(index: int) -> tuple[str, dict[str, Any]]:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def _message_end(stop: str, output: int = 20) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": output},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


SIGNATURE = "EqQBCkgIBxABGAIqQJ3m+/Z0v1Yk==\n"  # verbatim, even odd characters


def test_anthropic_thinking_signature_redacted_thinking() -> None:
    body = _sse(
        _message_start(),
        _block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        ("ping", {"type": "ping"}),
        _block_delta(0, {"type": "thinking_delta", "thinking": "Step one."}),
        _block_delta(0, {"type": "thinking_delta", "thinking": " Step two."}),
        _block_delta(0, {"type": "signature_delta", "signature": SIGNATURE}),
        _block_stop(0),
        _block_start(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}),
        _block_stop(1),
        _block_start(2, {"type": "text", "text": ""}),
        _block_delta(2, {"type": "text_delta", "text": "Done."}),
        _block_stop(2),
        *_message_end("end_turn"),
    )
    completion, deltas = decode(body, "anthropic")
    choice = completion.choices[0]
    assert choice.reasoning == "Step one. Step two."
    assert choice.signatures == [SIGNATURE, "EmwKAhgBEgy3va3pzix/LafPsn4a"]
    kinds = [(d.kind, d.part) for d in deltas if isinstance(d, ReasoningSignature)]
    assert kinds == [("signature", 0), ("redacted", 1)]
    assert choice.text == "Done."
    message = completion.to_anthropic()
    assert [b["type"] for b in message["content"]] == ["thinking", "redacted_thinking", "text"]
    assert message["content"][0] == {
        "type": "thinking",
        "thinking": "Step one. Step two.",
        "signature": SIGNATURE,
    }
    assert message["content"][1] == {
        "type": "redacted_thinking",
        "data": "EmwKAhgBEgy3va3pzix/LafPsn4a",
    }


def test_anthropic_citations_delta() -> None:
    citation = {
        "type": "char_location",
        "cited_text": "The grass is green.",
        "document_index": 0,
        "document_title": "Facts",
        "start_char_index": 0,
        "end_char_index": 19,
    }
    body = _sse(
        _message_start(),
        _block_start(0, {"type": "text", "text": "", "citations": []}),
        _block_delta(0, {"type": "citations_delta", "citation": citation}),
        _block_delta(0, {"type": "text_delta", "text": "the grass is green"}),
        _block_stop(0),
        *_message_end("end_turn"),
    )
    completion, _ = decode(body, "anthropic")
    assert completion.choices[0].annotations == [
        {"kind": "citation", "payload": citation, "part": 0}
    ]
    block = completion.to_anthropic()["content"][0]
    assert block == {"type": "text", "text": "the grass is green", "citations": [citation]}


def test_anthropic_ping_is_a_heartbeat() -> None:
    body = _sse(
        _message_start(),
        ("ping", {"type": "ping"}),
        _block_start(0, {"type": "text", "text": ""}),
        ("ping", {"type": "ping"}),
        _block_delta(0, {"type": "text_delta", "text": "Hi"}),
        _block_stop(0),
        *_message_end("end_turn"),
    )
    completion, deltas = decode(body, "anthropic")
    assert sum(isinstance(d, Heartbeat) for d in deltas) == 2
    assert completion.text == "Hi"
    assert completion.deltas == len(deltas) - 2  # heartbeats are not content


@pytest.mark.parametrize(
    "fragments", [[], [""], ["{}"], ["", "{", "}"]], ids=["none", "empty", "braces", "split"]
)
def test_anthropic_tool_without_arguments(fragments: list[str]) -> None:
    body = _sse(
        _message_start(),
        _block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}),
        *[_block_delta(0, {"type": "input_json_delta", "partial_json": f}) for f in fragments],
        _block_stop(0),
        *_message_end("tool_use"),
    )
    completion, _ = decode(body, "anthropic")
    call = completion.tool_calls[0]
    assert (call.id, call.name) == ("toolu_1", "get_time")
    assert call.arguments in ("", "{}")
    assert call.parsed_arguments() == {}
    assert call.partial_arguments() == {}
    assert completion.to_anthropic()["content"][0]["input"] == {}
    assert completion.finish_reason == "tool_calls"


@pytest.mark.parametrize("fragments", [[], [""]], ids=["none", "empty"])
def test_tool_without_arguments_gives_json_arguments_in_openai_shape(fragments: list[str]) -> None:
    # §11.5.4: empty arguments → "{}"; openai's ChatCompletion carries a JSON string.
    body = _sse(
        _message_start(),
        _block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}),
        *[_block_delta(0, {"type": "input_json_delta", "partial_json": f}) for f in fragments],
        _block_stop(0),
        *_message_end("tool_use"),
    )
    completion, _ = decode(body, "anthropic")
    arguments = completion.to_openai()["choices"][0]["message"]["tool_calls"][0]["function"][
        "arguments"
    ]
    assert json.loads(arguments) == {}


# --------------------------------------------------------------------------- Responses


def _responses(*events: tuple[str, dict[str, Any]]) -> bytes:
    numbered = []
    for n, (kind, fields) in enumerate(events):
        numbered.append((kind, {"type": kind, "sequence_number": n, **fields}))
    return _sse(*numbered)


_RESP = {
    "id": "resp_q1",
    "object": "response",
    "created_at": 1,
    "model": "o4-mini",
    "output": [],
    "usage": None,
}


def test_responses_reasoning_summary_and_encrypted_content() -> None:
    body = _responses(
        ("response.created", {"response": dict(_RESP, status="in_progress")}),
        (
            "response.output_item.added",
            {"output_index": 0, "item": {"id": "rs_1", "type": "reasoning", "summary": []}},
        ),
        (
            "response.reasoning_summary_part.added",
            {
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "part": {"type": "summary_text", "text": ""},
            },
        ),
        (
            "response.reasoning_summary_text.delta",
            {"item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": "**Adding**"},
        ),
        (
            "response.reasoning_summary_text.delta",
            {"item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": " numbers."},
        ),
        (
            "response.output_item.done",
            {
                "output_index": 0,
                "item": {
                    "id": "rs_1",
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": "**Adding** numbers."}],
                    "encrypted_content": "gAAAAAB-opaque+/=",
                },
            },
        ),
        (
            "response.output_item.added",
            {
                "output_index": 1,
                "item": {
                    "id": "msg_1",
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                },
            },
        ),
        (
            "response.output_text.delta",
            {
                "item_id": "msg_1",
                "output_index": 1,
                "content_index": 0,
                "delta": "4",
                "logprobs": [],
            },
        ),
        ("response.completed", {"response": dict(_RESP, status="completed")}),
    )
    completion, deltas = decode(body, "openai-responses")
    choice = completion.choices[0]
    assert choice.reasoning_summary == "**Adding** numbers."
    assert choice.reasoning is None
    assert choice.signatures == ["gAAAAAB-opaque+/="]
    signature = next(d for d in deltas if isinstance(d, ReasoningSignature))
    assert (signature.kind, signature.part) == ("encrypted", 0)
    assert choice.text == "4"
    assert completion.finish_reason == "stop"
    item = completion.to_responses()["output"][0]
    assert item["encrypted_content"] == "gAAAAAB-opaque+/="
    assert item["summary"] == [{"type": "summary_text", "text": "**Adding** numbers."}]


def test_responses_raw_reasoning_text_lm_studio() -> None:
    body = _responses(
        ("response.created", {"response": dict(_RESP, status="in_progress")}),
        (
            "response.output_item.added",
            {"output_index": 0, "item": {"id": "rs_1", "type": "reasoning", "summary": []}},
        ),
        (
            "response.reasoning_text.delta",
            {"item_id": "rs_1", "output_index": 0, "content_index": 0, "delta": "raw thoughts"},
        ),
        ("response.completed", {"response": dict(_RESP, status="completed")}),
    )
    completion, _ = decode(body, "openai-responses")
    assert completion.choices[0].reasoning == "raw thoughts"
    assert completion.choices[0].reasoning_summary is None


def test_responses_function_call_arguments_done_is_authoritative() -> None:
    item = {
        "id": "fc_1",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_1",
        "name": "f",
    }
    body = _responses(
        ("response.created", {"response": dict(_RESP, status="in_progress")}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        (
            "response.function_call_arguments.delta",
            {"item_id": "fc_1", "output_index": 0, "delta": '{"city":"Par'},
        ),
        (
            "response.function_call_arguments.delta",
            {"item_id": "fc_1", "output_index": 0, "delta": 'is"'},
        ),  # a lost "}"
        (
            "response.function_call_arguments.done",
            {"item_id": "fc_1", "output_index": 0, "arguments": '{"city":"Paris"}'},
        ),
        (
            "response.output_item.done",
            {
                "output_index": 0,
                "item": dict(item, status="completed", arguments='{"city":"Paris"}'),
            },
        ),
        ("response.completed", {"response": dict(_RESP, status="completed")}),
    )
    completion, _ = decode(body, "openai-responses")
    call = completion.tool_calls[0]
    assert (call.id, call.item_id, call.arguments) == ("call_1", "fc_1", '{"city":"Paris"}')
    assert call.parsed_arguments() == {"city": "Paris"}
    assert completion.to_responses()["output"][0]["arguments"] == '{"city":"Paris"}'
    assert completion.finish_reason == "tool_calls"


def test_responses_arguments_done_without_deltas() -> None:
    item = {
        "id": "fc_1",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_1",
        "name": "f",
    }
    body = _responses(
        ("response.created", {"response": dict(_RESP, status="in_progress")}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        (
            "response.function_call_arguments.done",
            {"item_id": "fc_1", "output_index": 0, "arguments": '{"a":[1,2]}'},
        ),
        ("response.completed", {"response": dict(_RESP, status="completed")}),
    )
    completion, _ = decode(body, "openai-responses")
    assert completion.tool_calls[0].arguments == '{"a":[1,2]}'


# --------------------------------------------------------------------------- partial arguments


def _consistent(partial: Any, final: Any) -> bool:
    """``partial`` is what a prefix of ``final``'s JSON text can show."""
    if isinstance(final, dict):
        return isinstance(partial, dict) and all(
            k in final and _consistent(v, final[k]) for k, v in partial.items()
        )
    if isinstance(final, list):
        return (
            isinstance(partial, list)
            and len(partial) <= len(final)
            and all(_consistent(v, final[n]) for n, v in enumerate(partial))
        )
    if isinstance(final, str):
        return isinstance(partial, str) and final.startswith(partial)
    if isinstance(final, bool) or final is None:
        return partial is final
    if isinstance(final, int | float):
        # An unfinished number shows the value of its longest valid prefix, which may be
        # any number (12.5 → 12 on the way; 1.5e-38 → 1.5e-3, i.e. 0.0015): only its type
        # is fixed. Finished numbers are checked exactly by the final comparison.
        return isinstance(partial, int | float) and not isinstance(partial, bool)
    return False


def _chat_call_deltas(path: Path) -> list[Delta]:
    deltas: list[Delta] = []
    reactivex.from_iterable([path.read_bytes()]).pipe(decode_stream("openai-chat")).subscribe(
        deltas.append
    )
    return deltas


OPENAI_TOOL_FILES = [
    FIXTURES / "composed" / "openai_chat_tools.sse",
    FIXTURES / "recorded" / "openai-chat" / "tool_call_strict.sse",
    FIXTURES / "recorded" / "openai-chat" / "tool_call_non_strict.sse",
]


@pytest.mark.parametrize("path", OPENAI_TOOL_FILES, ids=lambda p: p.name)
def test_partial_arguments_while_openai_tool_calls_stream(path: Path) -> None:
    deltas = _chat_call_deltas(path)
    acc = Accumulator()
    seen: dict[int, list[Any]] = {}
    for delta in deltas:
        acc.add(delta)
        if isinstance(delta, ToolCallArguments | ToolCallStart):
            seen.setdefault(delta.index, []).append(
                acc.partial_arguments(delta.index, delta.choice)
            )
    calls = acc.completion().tool_calls
    assert calls and sorted(seen) == [c.index for c in calls]
    for call in calls:
        final = json.loads(call.arguments)
        history = seen[call.index]
        assert history[-1] == final
        assert acc.partial_arguments(call.index, 0) == final
        for before, after in itertools.pairwise(history):
            assert _consistent(before, final), before
            assert _consistent(before, after), (before, after)
        assert len(history) >= 3  # it did stream


ANTHROPIC_TOOL_FILES = [
    FIXTURES / "composed" / "anthropic_messages_tools.sse",
    FIXTURES / "recorded" / "anthropic-messages" / "tool_use.sse",
    FIXTURES / "recorded" / "anthropic-messages" / "incomplete_partial_json.sse",
]


@pytest.mark.parametrize("path", ANTHROPIC_TOOL_FILES, ids=lambda p: p.name)
def test_partial_arguments_while_anthropic_input_json_streams(path: Path) -> None:
    deltas: list[Delta] = []
    reactivex.from_iterable([path.read_bytes()]).pipe(
        decode_stream("anthropic", flush_incomplete=True)
    ).subscribe(deltas.append)
    acc = Accumulator("anthropic")
    history: list[Any] = []
    for delta in deltas:
        acc.add(delta)
        if isinstance(delta, ToolCallArguments):
            history.append(acc.partial_arguments(delta.index, 0))
    call = acc.completion().tool_calls[0]
    assert len(history) >= 3
    for before, after in itertools.pairwise(history):
        assert _consistent(before, after), (before, after)
    if path.name == "incomplete_partial_json.sse":
        with pytest.raises(ValueError):
            json.loads(call.arguments)
        assert history[-1]["filename"] == "taxes.txt"
        # the partial view keeps the unfinished string as far as it goes
        assert history[-1]["lines_of_text"][-1] == "Filing taxes"
    else:
        assert history[-1] == json.loads(call.arguments)
        for partial in history:
            assert _consistent(partial, history[-1])


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@FAST
@given(
    value=st.dictionaries(st.text(max_size=6), _JSON, max_size=5),
    ascii_only=st.booleans(),
    data=st.data(),
)
def test_partial_arguments_any_split(
    value: dict[str, Any], ascii_only: bool, data: st.DataObject
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    points = data.draw(st.lists(st.integers(0, len(text)), max_size=12))
    cuts = sorted(points)
    fragments = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    acc = Accumulator()
    acc.add(ToolCallStart(0, 0, "call_1", "f"))
    previous: Any = {}
    for fragment in fragments:
        acc.add(ToolCallArguments(0, 0, fragment))
        partial = acc.partial_arguments(0, 0)
        assert _consistent(partial, value), (text, partial)
        assert _consistent(previous, partial), (previous, partial)
        previous = partial
    assert acc.partial_arguments(0, 0) == json.loads(text)
    acc.add(ToolCallEnd(0, 0))
    assert acc.completion().tool_calls[0].parsed_arguments() == json.loads(text)
