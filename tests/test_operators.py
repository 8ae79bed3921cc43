"""Each Rx operator of rxgpt._operators on its own, then bad inputs through the whole pipeline.

Sources are ``reactivex.from_iterable``: they run synchronously inside ``subscribe``, so
every list below is complete when ``subscribe`` returns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import reactivex

from rxgpt import (
    Comment,
    Completion,
    DecodeError,
    Delta,
    EventTooLarge,
    FinishDelta,
    Heartbeat,
    LogprobsDelta,
    MissingDone,
    ResponseInfo,
    RoleDelta,
    RxgptError,
    ServerSentEvent,
    Snapshot,
    StreamError,
    StreamInterrupted,
    TextDelta,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageDelta,
    accumulate,
    decode_json,
    decode_stream,
    extract_deltas,
    parse_sse,
    snapshots,
)

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = FIXTURES / "recorded" / "openai-chat"
COMPOSED = FIXTURES / "composed"
E = ServerSentEvent


# --------------------------------------------------------------------------- helpers


class Result:
    """Everything one subscription saw."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.errors: list[Exception] = []
        self.completed = 0

    @property
    def error(self) -> Exception:
        assert self.completed == 0
        assert len(self.errors) == 1
        return self.errors[0]

    def ok(self) -> list[Any]:
        assert self.errors == []
        assert self.completed == 1
        return self.items


def run(source: reactivex.Observable[Any], *stages: Any) -> Result:
    result = Result()

    def on_completed() -> None:
        result.completed += 1

    source.pipe(*stages).subscribe(result.items.append, result.errors.append, on_completed)
    return result


def feed(chunks: list[Any], *stages: Any) -> Result:
    return run(reactivex.from_iterable(chunks), *stages)


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def sse_body(*chunks: Any, done: bool = True) -> bytes:
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def staged(require_done: bool = False) -> tuple[Any, ...]:
    return (parse_sse(), decode_json(), extract_deltas("openai-chat", require_done=require_done))


def fused(require_done: bool = False) -> tuple[Any, ...]:
    return (decode_stream("openai-chat", require_done=require_done),)


PIPELINES = {"staged": staged, "fused": fused}


def all_finished(blocks: list[bytes]) -> bool:
    """Every choice the raw blocks carry has a finish reason (no rxgpt code)."""
    seen: set[int] = set()
    finished: set[int] = set()
    for block in blocks:
        data = block.decode().removeprefix("data: ").strip()
        if data == "[DONE]":
            continue
        for ch in json.loads(data).get("choices") or []:
            seen.add(ch.get("index", 0))
            if ch.get("finish_reason"):
                finished.add(ch.get("index", 0))
    return bool(seen) and seen <= finished


def events_of(body: bytes) -> list[bytes]:
    """The raw blocks of an LF-framed fixture, each with its blank line (no rxgpt code)."""
    blocks = body.split(b"\n\n")
    assert blocks[-1] == b""
    return [block + b"\n\n" for block in blocks[:-1]]


def content_of(block: bytes) -> str:
    """Choice-0 content carried by one raw fixture block ("" if none)."""
    data = block.decode().removeprefix("data: ").strip()
    if data == "[DONE]":
        return ""
    obj = json.loads(data)
    return "".join(
        (ch.get("delta") or {}).get("content") or ""
        for ch in obj.get("choices") or []
        if ch.get("index", 0) == 0
    )


def chunk(
    choices: list[dict[str, Any]], *, usage: dict[str, Any] | None = None, **top: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "chatcmpl-T1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "system_fingerprint": "fp_t",
        "choices": choices,
        "usage": usage,
    }
    obj.update(top)
    return obj


def choice(index: int = 0, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


# =========================================================================== parse_sse


def test_parse_sse_emits_events_with_fields() -> None:
    body = b"event: delta\nid: 7\ndata: a\ndata: b\n\nretry: 100\ndata: c\n\n"
    expected = [E("delta", "a\nb", "7", None), E("message", "c", "7", 100)]
    assert feed([body], parse_sse()).ok() == expected
    assert feed(bytewise(body), parse_sse()).ok() == expected


def test_parse_sse_drops_comments_and_the_unterminated_last_event() -> None:
    body = b": hello\n\ndata: a\n\n: ka\ndata: b\n\ndata: never finished"
    assert feed([body], parse_sse()).ok() == [E(data="a"), E(data="b")]


def test_parse_sse_heartbeats_gives_comments_in_order() -> None:
    body = b": first\n\ndata: a\n\n:second\ndata: b\n\n: third\n\n"
    expected = [Comment("first"), E(data="a"), Comment("second"), E(data="b"), Comment("third")]
    assert feed([body], parse_sse(heartbeats=True)).ok() == expected
    assert feed(bytewise(body), parse_sse(heartbeats=True)).ok() == expected


def test_parse_sse_handles_empty_chunks_and_no_input() -> None:
    assert feed([], parse_sse()).ok() == []
    assert feed([b"", b"data: x", b"", b"\n\n", b""], parse_sse()).ok() == [E(data="x")]


@pytest.mark.parametrize("split", ["whole", "bytewise", "per-event"])
def test_parse_sse_max_event_bytes_fails_after_the_complete_events(split: str) -> None:
    events = [b"data: 12345\n\n", b"data: ok\n\n", b"data: " + b"9" * 30 + b"\n\n", b"data: c\n\n"]
    body = b"".join(events)
    chunks = {"whole": [body], "bytewise": bytewise(body), "per-event": events}[split]
    # every line of the good events ("data: 12345" is 11 bytes) fits in the limit
    result = feed(chunks, parse_sse(max_event_bytes=16))
    assert result.items == [E(data="12345"), E(data="ok")]
    error = result.error
    assert isinstance(error, EventTooLarge)
    assert isinstance(error, DecodeError)
    assert error.limit == 16
    assert error.size > 16


@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_parse_sse_max_event_bytes_allows_events_at_the_limit(split: str) -> None:
    # An 8-byte data value with max_event_bytes=8 must pass however the body is chunked
    # (whole: accepted; byte by byte the pending line "data: 123" is counted with its
    # field name and fails before the value is even complete).
    body = b"data: 12345678\n\ndata: x\n\n"
    chunks = [body] if split == "whole" else bytewise(body)
    assert feed(chunks, parse_sse(max_event_bytes=8)).ok() == [E(data="12345678"), E(data="x")]


@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_parse_sse_max_event_bytes_keeps_heartbeats_before_the_overflow(split: str) -> None:
    # The output must not depend on how the body was chunked: the comment and the event
    # that precede the oversized one are complete, so both are emitted before the error.
    body = b": ping\n\ndata: a\n\ndata: 1234567890\n\n"
    chunks = [body] if split == "whole" else bytewise(body)
    result = feed(chunks, parse_sse(heartbeats=True, max_event_bytes=8))
    assert result.items == [Comment("ping"), E(data="a")]
    assert isinstance(result.error, EventTooLarge)


# =========================================================================== decode_json


def test_decode_json_parses_each_event() -> None:
    events = [E(data='{"a": 1}'), E(data="[1, 2]"), E(data='"s"'), E(data="[DONE]")]
    assert feed(events, decode_json()).ok() == [{"a": 1}, [1, 2], "s"]


def test_decode_json_completes_at_done_and_ignores_the_rest() -> None:
    events = [E(data='{"a": 1}'), E(data="[DONE]"), E(data="not json"), E(data='{"b": 2}')]
    result = feed(events, decode_json())
    assert result.ok() == [{"a": 1}]


def test_decode_json_without_done_is_stream_interrupted() -> None:
    result = feed([E(data='{"a": 1}'), E(data='{"b": 2}')], decode_json())
    assert result.items == [{"a": 1}, {"b": 2}]
    assert isinstance(result.error, StreamInterrupted)


def test_decode_json_done_none_completes_plainly() -> None:
    events = [E(data='{"a": 1}'), E(data="[DONE]")]
    # "[DONE]" is not a marker then: it is data, and not JSON
    assert feed([E(data='{"a": 1}')], decode_json(done=None)).ok() == [{"a": 1}]
    assert isinstance(feed(events, decode_json(done=None)).error, DecodeError)


def test_decode_json_custom_marker() -> None:
    events = [E(data='{"a": 1}'), E(data="END"), E(data='{"b": 2}')]
    assert feed(events, decode_json(done="END")).ok() == [{"a": 1}]


def test_decode_json_non_json_is_decode_error_with_index_and_raw() -> None:
    events = [E(data='{"a": 1}'), E(data='{"b": 2}'), E(data="{oops"), E(data='{"c": 3}')]
    result = feed(events, decode_json())
    assert result.items == [{"a": 1}, {"b": 2}]
    error = result.error
    assert type(error) is DecodeError
    assert error.index == 2
    assert error.raw == "{oops"
    assert "event 2" in str(error)


def test_decode_json_index_does_not_count_comments() -> None:
    body = b': c\n\ndata: {"a": 1}\n\n: c\n\ndata: nope\n\n'
    result = feed([body], parse_sse(heartbeats=True), decode_json())
    assert result.items == [Comment("c"), {"a": 1}, Comment("c")]
    assert isinstance(result.error, DecodeError)
    assert result.error.index == 1
    assert result.error.raw == "nope"


HTML_PAGE = (
    b"<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n"
    b"</body>\n</html>\n"
)


def test_decode_json_html_page_as_plain_text_has_no_events() -> None:
    # None of the lines is an SSE field: no event at all, then no [DONE].
    result = feed([HTML_PAGE], parse_sse(), decode_json())
    assert result.items == []
    assert isinstance(result.error, StreamInterrupted)


def test_decode_json_html_page_in_data_lines_is_decode_error() -> None:
    body = b"".join(b"data: " + line + b"\n" for line in HTML_PAGE.splitlines()) + b"\n"
    result = feed([body], parse_sse(), decode_json())
    assert result.items == []
    error = result.error
    assert type(error) is DecodeError
    assert error.index == 0
    assert error.raw == HTML_PAGE.decode().rstrip("\n")


def test_decode_json_error_object_is_stream_error() -> None:
    provider = {"message": "Overloaded", "type": "server_error", "param": None, "code": None}
    events = [E(data='{"a": 1}'), E(data=json.dumps({"error": provider})), E(data='{"b": 2}')]
    result = feed(events, decode_json())
    assert result.items == [{"a": 1}]
    error = result.error
    assert type(error) is StreamError
    assert error.error == provider
    assert error.index == 1
    assert error.error_type == "server_error"
    assert error.retryable is True


def test_decode_json_event_error_without_error_key_is_stream_error() -> None:
    obj = {"type": "overloaded_error", "message": "busy"}
    result = feed([E(event="error", data=json.dumps(obj))], decode_json())
    assert result.items == []
    assert isinstance(result.error, StreamError)
    assert result.error.error == obj


def test_decode_json_falsy_error_key_is_data() -> None:
    events = [E(data='{"error": null, "x": 1}'), E(data="[DONE]")]
    assert feed(events, decode_json()).ok() == [{"error": None, "x": 1}]


def test_decode_json_passes_comments_through() -> None:
    items = [Comment("ka"), E(data="1"), Comment("ka2"), E(data="[DONE]"), Comment("late")]
    assert feed(items, decode_json()).ok() == [Comment("ka"), 1, Comment("ka2")]


def test_decode_json_passes_upstream_errors_on() -> None:
    body = b"data: 1\n\ndata: 1234567890\n\n"
    result = feed([body], parse_sse(max_event_bytes=4), decode_json())
    assert result.items == [1]
    assert isinstance(result.error, EventTooLarge)


# =========================================================================== extract_deltas

TOKEN = {"token": "Hi", "logprob": -0.25, "bytes": [72, 105], "top_logprobs": []}
USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 5,
    "total_tokens": 16,
    "prompt_tokens_details": {"cached_tokens": 2},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
HAND_WRITTEN = [
    chunk(
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": {"content": [], "refusal": None},
                "finish_reason": None,
            }
        ]
    ),
    chunk(
        [
            {
                "index": 0,
                "delta": {"content": "Hi"},
                "logprobs": {"content": [TOKEN], "refusal": None},
                "finish_reason": None,
            }
        ]
    ),
    chunk(
        [
            choice(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            )
        ]
    ),
    chunk([choice(tool_calls=[{"index": 0, "function": {"arguments": '{"city":'}}])]),
    chunk([choice(tool_calls=[{"index": 0, "function": {"arguments": ' "Paris"}'}}])]),
    chunk([choice(finish="tool_calls")]),
    chunk([], usage=USAGE),
]
HAND_WRITTEN_DELTAS: list[Delta] = [
    ResponseInfo(
        "chatcmpl-T1",
        "gpt-test",
        1700000000,
        {
            "id": "chatcmpl-T1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-test",
            "system_fingerprint": "fp_t",
        },
        "openai-chat",
    ),
    RoleDelta(0, "assistant"),
    TextDelta(0, ""),
    LogprobsDelta(0, [], None),
    TextDelta(0, "Hi"),
    LogprobsDelta(0, [TOKEN], None),
    ToolCallStart(0, 0, "call_1", "get_weather", "function"),
    ToolCallArguments(0, 0, '{"city":'),
    ToolCallArguments(0, 0, ' "Paris"}'),
    ToolCallEnd(0, 0),
    FinishDelta(0, "tool_calls", "tool_calls"),
    UsageDelta(
        Usage(
            input_tokens=11,
            output_tokens=5,
            total_tokens=16,
            cached_input_tokens=2,
            reasoning_tokens=0,
            raw=USAGE,
        )
    ),
]


def test_extract_deltas_exact_sequence() -> None:
    assert feed(HAND_WRITTEN, extract_deltas("openai-chat")).ok() == HAND_WRITTEN_DELTAS


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_hand_written_stream_through_bytes(pipeline: str) -> None:
    body = sse_body(*HAND_WRITTEN)
    assert feed([body], *PIPELINES[pipeline]()).ok() == HAND_WRITTEN_DELTAS
    assert feed(bytewise(body), *PIPELINES[pipeline]()).ok() == HAND_WRITTEN_DELTAS


def test_hand_written_stream_accumulates() -> None:
    [completion] = feed(HAND_WRITTEN, extract_deltas(), accumulate()).ok()
    assert completion.state == "complete"
    assert completion.id == "chatcmpl-T1"
    assert completion.text == "Hi"
    assert completion.finish_reason == "tool_calls"
    [call] = completion.choices[0].tool_calls
    assert (call.id, call.name, call.arguments) == ("call_1", "get_weather", '{"city": "Paris"}')
    assert call.parsed_arguments() == {"city": "Paris"}
    assert completion.choices[0].logprobs == {"content": [TOKEN], "refusal": None}
    assert completion.usage is not None and completion.usage.input_tokens == 11


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("something_new", "other"),
    ],
)
def test_extract_deltas_finish_reason_neutral_and_raw(raw: str, neutral: str) -> None:
    deltas = feed([chunk([choice(finish=raw)])], extract_deltas()).ok()
    assert deltas[-1] == FinishDelta(0, neutral, raw)


def test_extract_deltas_n2_interleaving_keeps_choice_indices() -> None:
    body = (COMPOSED / "openai_chat_n2_logprobs.sse").read_bytes()
    deltas = feed([body], parse_sse(), decode_json(), extract_deltas()).ok()
    texts = {
        i: [d.text for d in deltas if isinstance(d, TextDelta) and d.choice == i] for i in (0, 1)
    }
    assert texts == {0: ["", "Bonjour", " !"], 1: ["", "Salut", " à"]}
    assert [d for d in deltas if isinstance(d, RoleDelta)] == [
        RoleDelta(0, "assistant"),
        RoleDelta(1, "assistant"),
    ]
    assert [d for d in deltas if isinstance(d, FinishDelta)] == [
        FinishDelta(0, "stop", "stop"),
        FinishDelta(1, "length", "length"),
    ]
    # the arrival order of the text fragments is kept across choices
    assert [(d.choice, d.text) for d in deltas if isinstance(d, TextDelta) and d.text] == [
        (0, "Bonjour"),
        (1, "Salut"),
        (0, " !"),
        (1, " à"),
    ]
    [completion] = feed(deltas, accumulate()).ok()
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [
        (0, "Bonjour !", "stop"),
        (1, "Salut à", "length"),
    ]


def test_extract_deltas_usage_only_chunk_is_not_an_error() -> None:
    deltas = feed([chunk([], usage={"prompt_tokens": 1})], extract_deltas()).ok()
    assert isinstance(deltas[0], ResponseInfo)
    assert deltas[1:] == [UsageDelta(Usage(input_tokens=1, raw={"prompt_tokens": 1}))]


def test_extract_deltas_azure_prompt_filter_chunk_is_not_an_error() -> None:
    body = (COMPOSED / "azure_chat.sse").read_bytes()
    first = json.loads(body.split(b"\n\n")[0].removeprefix(b"data: "))
    assert first["choices"] == []
    deltas = feed([first], extract_deltas()).ok()
    assert not any(isinstance(d, (RoleDelta, TextDelta, FinishDelta)) for d in deltas)
    [completion] = feed([body], parse_sse(), decode_json(), extract_deltas(), accumulate()).ok()
    assert completion.state == "complete"
    assert completion.text == "Paris is the capital of France."
    assert completion.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (14, 7)


def test_extract_deltas_chunk_without_delta_is_not_an_error() -> None:
    # Azure async-filter annotation chunk: a choice without "delta"
    item = {"choices": [{"index": 0, "finish_reason": None}], "id": "", "object": ""}
    deltas = feed([chunk([choice(content="x")]), item], extract_deltas()).ok()
    assert [d for d in deltas if isinstance(d, TextDelta)] == [TextDelta(0, "x")]


def test_extract_deltas_mistral_tool_calls_without_index() -> None:
    items = [
        chunk([choice(role="assistant", content="")]),
        chunk(
            [
                choice(
                    content=None,
                    tool_calls=[
                        {
                            "id": "abc123XYZ",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x": 1}'},
                        },
                        {"id": "def456UVW", "function": {"name": "g", "arguments": "{}"}},
                    ],
                )
            ]
        ),
        chunk([choice(content="", finish="tool_calls")]),
    ]
    deltas = feed(items, extract_deltas()).ok()
    tool_deltas = [
        d for d in deltas if isinstance(d, (ToolCallStart, ToolCallArguments, ToolCallEnd))
    ]
    assert tool_deltas == [
        ToolCallStart(0, 0, "abc123XYZ", "f", "function"),
        ToolCallArguments(0, 0, '{"x": 1}'),
        ToolCallStart(0, 1, "def456UVW", "g", "function"),
        ToolCallArguments(0, 1, "{}"),
        ToolCallEnd(0, 0),
        ToolCallEnd(0, 1),
    ]
    [completion] = feed(deltas, accumulate()).ok()
    calls = completion.choices[0].tool_calls
    assert [(c.index, c.id, c.name, c.arguments) for c in calls] == [
        (0, "abc123XYZ", "f", '{"x": 1}'),
        (1, "def456UVW", "g", "{}"),
    ]


def test_extract_deltas_index_less_continuation_fragments() -> None:
    items = [
        chunk([choice(tool_calls=[{"id": "c1", "function": {"name": "f", "arguments": '{"a"'}}])]),
        chunk([choice(tool_calls=[{"function": {"arguments": ": 1}"}}])]),
        chunk([choice(finish="tool_calls")]),
    ]
    [completion] = feed(items, extract_deltas(), accumulate()).ok()
    [call] = completion.choices[0].tool_calls
    assert (call.id, call.name, call.arguments) == ("c1", "f", '{"a": 1}')


def test_extract_deltas_two_calls_at_index_0_with_different_ids() -> None:
    def frag(**kw: Any) -> dict[str, Any]:
        return chunk([choice(tool_calls=[{"index": 0, **kw}])])

    items = [
        frag(id="call_A", type="function", function={"name": "f", "arguments": '{"a"'}),
        frag(function={"arguments": ": 1}"}),
        frag(id="call_B", type="function", function={"name": "g", "arguments": ""}),
        frag(function={"arguments": '{"b": 2}'}),
        chunk([choice(finish="tool_calls")]),
    ]
    deltas = feed(items, extract_deltas()).ok()
    starts = [d for d in deltas if isinstance(d, ToolCallStart)]
    assert starts == [
        ToolCallStart(0, 0, "call_A", "f", "function"),
        ToolCallStart(0, 1, "call_B", "g", "function"),
    ]
    assert [d for d in deltas if isinstance(d, ToolCallEnd)] == [
        ToolCallEnd(0, 0),
        ToolCallEnd(0, 1),
    ]
    [completion] = feed(deltas, accumulate()).ok()
    calls = completion.choices[0].tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_A", "f", '{"a": 1}'),
        ("call_B", "g", '{"b": 2}'),
    ]


def test_extract_deltas_repeated_same_id_stays_one_call() -> None:
    items = [
        chunk(
            [
                choice(
                    tool_calls=[
                        {"index": 0, "id": "call_A", "function": {"name": "f", "arguments": "{"}}
                    ]
                )
            ]
        ),
        chunk([choice(tool_calls=[{"index": 0, "id": "call_A", "function": {"arguments": "}"}}])]),
        chunk([choice(finish="tool_calls")]),
    ]
    [completion] = feed(items, extract_deltas(), accumulate()).ok()
    assert [(c.id, c.name, c.arguments) for c in completion.choices[0].tool_calls] == [
        ("call_A", "f", "{}")
    ]


def test_extract_deltas_comment_becomes_heartbeat() -> None:
    items = [Comment("keep-alive"), chunk([choice(content="a")])]
    deltas = feed(items, extract_deltas()).ok()
    assert deltas[0] == Heartbeat("keep-alive")
    assert deltas[-1] == TextDelta(0, "a")


def test_extract_deltas_unknown_protocol_is_value_error() -> None:
    with pytest.raises(ValueError, match="no-such-protocol"):
        extract_deltas("no-such-protocol")


def test_decode_stream_unknown_protocol_is_value_error() -> None:
    try:
        op = decode_stream("no-such-protocol")
    except ValueError as exc:
        assert "no-such-protocol" in str(exc)
        return
    result = feed([b"data: {}\n\n"], op)
    assert isinstance(result.error, ValueError)
    assert "no-such-protocol" in str(result.error)


def test_operators_are_cold_each_subscription_has_its_own_state() -> None:
    body = sse_body(*HAND_WRITTEN)
    pipeline = reactivex.from_iterable([body]).pipe(*staged(), accumulate())
    first = run(pipeline).ok()
    second = run(pipeline).ok()
    assert len(first) == len(second) == 1
    assert first[0].to_openai() == second[0].to_openai()
    assert first[0].text == "Hi"


# =========================================================================== accumulate


def _text_deltas() -> list[Delta]:
    return [
        ResponseInfo("r1", "m", 5, {"id": "r1", "model": "m", "created": 5}, "openai-chat"),
        RoleDelta(0, "assistant"),
        TextDelta(0, "Hello"),
        TextDelta(0, ", world"),
    ]


def test_accumulate_emits_exactly_one_completion() -> None:
    deltas = [*_text_deltas(), FinishDelta(0, "stop", "stop")]
    [completion] = feed(deltas, accumulate()).ok()
    assert completion.state == "complete"
    assert completion.text == "Hello, world"
    assert completion.finish_reason == "stop"
    assert (completion.id, completion.model, completion.created) == ("r1", "m", 5)
    assert completion.error is None


def test_accumulate_empty_source_gives_one_empty_completion() -> None:
    [completion] = feed([], accumulate()).ok()
    assert completion.state == "complete"
    assert completion.choices == []
    assert completion.text == ""


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (StreamInterrupted("cut"), "truncated"),
        (StreamError({"message": "boom", "type": "server_error"}), "error"),
        (DecodeError("bad", raw="x", index=3), "error"),
    ],
)
def test_accumulate_attaches_partial_to_the_error(error: RxgptError, state: str) -> None:
    source = reactivex.concat(reactivex.from_iterable(_text_deltas()), reactivex.throw(error))
    result = run(source, accumulate())
    assert result.items == []
    assert result.error is error
    partial = error.partial
    assert isinstance(partial, Completion)
    assert partial.state == state
    assert partial.text == "Hello, world"
    assert partial.id == "r1"
    assert partial.error is error


@pytest.mark.parametrize(
    ("error", "state"),
    [(StreamInterrupted("cut"), "truncated"), (StreamError({"message": "x"}), "error")],
)
def test_accumulate_raise_errors_false_emits_the_partial(error: RxgptError, state: str) -> None:
    source = reactivex.concat(reactivex.from_iterable(_text_deltas()), reactivex.throw(error))
    [partial] = run(source, accumulate(raise_errors=False)).ok()
    assert partial.state == state
    assert partial.text == "Hello, world"
    assert partial.error is error


def test_accumulate_foreign_exception_passes_through() -> None:
    boom = RuntimeError("boom")
    source = reactivex.concat(reactivex.from_iterable(_text_deltas()), reactivex.throw(boom))
    assert run(source, accumulate()).error is boom
    [partial] = run(source, accumulate(raise_errors=False)).ok()
    assert partial.state == "error"
    assert partial.text == "Hello, world"


# =========================================================================== snapshots


def _fixture_deltas(name: str) -> list[Delta]:
    body = (RECORDED / name).read_bytes()
    return feed([body], *staged()).ok()


def test_snapshots_one_per_delta_and_old_ones_keep_their_text() -> None:
    deltas = _fixture_deltas("text_stop.sse")
    live_texts: list[str] = []
    snaps: list[Snapshot] = []

    def on_next(snapshot: Snapshot) -> None:
        snaps.append(snapshot)
        live_texts.append(snapshot.text)

    errors: list[Exception] = []
    reactivex.from_iterable(deltas).pipe(snapshots()).subscribe(on_next, errors.append)
    assert errors == []
    assert len(snaps) == len(deltas)
    expected: list[str] = []
    text = ""
    for delta in deltas:
        if isinstance(delta, TextDelta) and delta.choice == 0:
            text += delta.text
        expected.append(text)
    assert live_texts == expected
    # read again after the stream ended: every old snapshot still shows its own time
    assert [s.text for s in snaps] == expected
    assert [s.count for s in snaps] == list(range(1, len(deltas) + 1))
    assert all(s.delta is d for s, d in zip(snaps, deltas, strict=True))
    assert expected[-1].startswith("I'm unable to provide real-time weather")
    middle = snaps[len(snaps) // 2]
    assert middle.text == expected[len(snaps) // 2]
    assert middle.completion().text == expected[len(snaps) // 2]


@pytest.mark.parametrize(
    "name", ["n3_choices.sse", "tool_calls_parallel.sse", "refusal_logprobs.sse"]
)
def test_last_snapshot_equals_the_final_completion(name: str) -> None:
    deltas = _fixture_deltas(name)
    snaps = feed(deltas, snapshots()).ok()
    [final] = feed(deltas, accumulate()).ok()
    assert len(snaps) == len(deltas)
    assert snaps[-1].completion().choices == final.choices
    assert snaps[-1].completion().usage == final.usage
    # an early snapshot does not see the later tool calls / finish
    assert snaps[0].completion().choices != final.choices


def test_snapshots_attach_partial_on_error() -> None:
    error = StreamInterrupted("cut")
    source = reactivex.concat(reactivex.from_iterable(_text_deltas()), reactivex.throw(error))
    result = run(source, snapshots())
    assert [s.text for s in result.items] == ["", "", "Hello", "Hello, world"]
    assert result.error is error
    assert error.partial is not None
    assert error.partial.text == "Hello, world"
    assert error.partial.state == "truncated"


# =========================================================================== bad inputs, end to end

TEXT_STOP = (RECORDED / "text_stop.sse").read_bytes()


def _complete(chunks: list[bytes], pipeline: str, *, require_done: bool = False) -> Result:
    return feed(chunks, *PIPELINES[pipeline](require_done), accumulate())


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
@pytest.mark.parametrize("bad_at", [2, 5, 20])
def test_non_json_data_mid_stream(pipeline: str, bad_at: int) -> None:
    blocks = events_of(TEXT_STOP)
    body = b"".join([*blocks[:bad_at], b"data: this is not json\n\n", *blocks[bad_at + 1 :]])
    for chunks in ([body], bytewise(body)):
        result = _complete(chunks, pipeline)
        assert result.items == []
        error = result.error
        assert type(error) is DecodeError
        assert error.index == bad_at
        assert error.raw == "this is not json"
        partial = error.partial
        assert partial is not None
        assert partial.state == "error"
        assert partial.text == "".join(content_of(b) for b in blocks[:bad_at])
        assert partial.text != ""
        assert partial.finish_reason is None


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_error_object_mid_stream(pipeline: str) -> None:
    body = (COMPOSED / "openai_chat_error_midstream.sse").read_bytes()
    for chunks in ([body], bytewise(body)):
        result = _complete(chunks, pipeline)
        assert result.items == []
        error = result.error
        assert type(error) is StreamError
        assert error.error == {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        assert error.index == 3
        assert error.retryable is True
        partial = error.partial
        assert partial is not None
        assert partial.state == "error"
        assert partial.text == "The three largest moons of Jupiter are"
        assert partial.id == "chatcmpl-D1kP8wZr5tYq3NcVb7XmL2aHs9uJe"
        assert partial.finish_reason is None
        assert partial.usage is None


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_error_object_mid_stream_without_raising(pipeline: str) -> None:
    body = (COMPOSED / "openai_chat_error_midstream.sse").read_bytes()
    stages = (*PIPELINES[pipeline](), accumulate(raise_errors=False))
    [partial] = feed([body], *stages).ok()
    assert partial.state == "error"
    assert isinstance(partial.error, StreamError)
    assert partial.text == "The three largest moons of Jupiter are"


def _assert_truncated(result: Result, expected_text: str, n_events: int) -> None:
    assert result.items == []
    error = result.error
    assert isinstance(error, StreamInterrupted)
    partial = error.partial
    assert partial is not None
    assert partial.state == "truncated"
    assert partial.text == expected_text
    if n_events == 0:
        assert partial.choices == []


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_body_cut_in_half_at_an_event_boundary(pipeline: str) -> None:
    blocks = events_of(TEXT_STOP)
    half = len(blocks) // 2
    body = b"".join(blocks[:half])
    expected = "".join(content_of(b) for b in blocks[:half])
    assert expected != ""
    _assert_truncated(_complete([body], pipeline), expected, half)
    _assert_truncated(_complete(bytewise(body), pipeline), expected, half)


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_body_cut_in_half_in_the_middle_of_an_event(pipeline: str) -> None:
    blocks = events_of(TEXT_STOP)
    half = len(blocks) // 2
    body = b"".join(blocks[:half]) + blocks[half][: len(blocks[half]) // 2]
    expected = "".join(content_of(b) for b in blocks[:half])
    assert content_of(blocks[half]) != ""  # the lost event did carry text
    _assert_truncated(_complete([body], pipeline), expected, half)
    _assert_truncated(_complete(bytewise(body), pipeline), expected, half)


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
@pytest.mark.parametrize("name", ["text_stop.sse", "tool_calls_parallel.sse", "n3_choices.sse"])
def test_every_cut_point_is_truncated_with_the_text_so_far(pipeline: str, name: str) -> None:
    # A cut mid-event, or at a boundary before every choice has finished, is truncated;
    # at a boundary after every finish reason the stream is complete, without the marker
    # (as openai-python takes it), unless require_done.
    body = (RECORDED / name).read_bytes()
    blocks = events_of(body)
    offset = 0
    completes = 0
    for k, block in enumerate(blocks):
        expected = "".join(content_of(b) for b in blocks[:k])
        # at the boundary, and in the middle of the event (its JSON is incomplete there)
        for cut in (offset, offset + len(block) // 2):
            result = _complete([body[:cut]], pipeline)
            if cut == offset and all_finished(blocks[:k]):
                completes += 1
                [completion] = result.ok()
                assert completion.state == "complete" and not completion.end_marker
                assert completion.text == expected
            else:
                _assert_truncated(result, expected, k)
            strict = _complete([body[:cut]], pipeline, require_done=True)
            _assert_truncated(strict, expected, k)
        offset += len(block)
    assert offset == len(body)
    assert completes >= 1  # the cut just before [DONE], at least


def _summary(result: Result) -> tuple[Any, ...]:
    if result.errors:
        error = result.errors[0]
        partial = getattr(error, "partial", None)
        assert partial is not None
        return (type(error), partial.state, partial.to_openai())
    [completion] = result.ok()
    return ("completed", completion.state, completion.to_openai())


def _complete_flush(chunks: list[bytes], pipeline: str) -> Result:
    if pipeline == "staged":
        stages: tuple[Any, ...] = (
            parse_sse(flush_incomplete=True),
            decode_json(),
            extract_deltas("openai-chat"),
        )
    else:
        stages = (decode_stream("openai-chat", flush_incomplete=True),)
    return feed(chunks, *stages, accumulate())


@pytest.mark.parametrize("flush", [False, True], ids=["drop", "flush_incomplete"])
@pytest.mark.parametrize("name", ["text_stop.sse", "tool_calls_parallel.sse"])
def test_missing_final_blank_line_same_in_fused_and_staged(name: str, flush: bool) -> None:
    # The body stops after the last event's data line, before (or inside) its blank line:
    # decode_stream must give exactly what parse_sse | decode_json | extract_deltas gives.
    run_ = _complete_flush if flush else _complete
    body = (RECORDED / name).read_bytes()
    blocks = events_of(body)
    offset = 0
    for k, block in enumerate(blocks):
        offset += len(block)
        for cut in (offset - 1, offset - 2):  # "...}\n" and "...}"
            staged_result = _summary(run_([body[:cut]], "staged"))
            fused_result = _summary(run_([body[:cut]], "fused"))
            assert fused_result == staged_result, (cut, body[:cut][-40:])
            kept = blocks[: k + 1] if flush else blocks[:k]
            if flush and (block == b"data: [DONE]\n\n" or all_finished(kept)):
                # the last event flushed, every choice finished: complete, with or
                # without the marker (dropped instead, it is a cut: truncated)
                assert staged_result[:2] == ("completed", "complete")
            else:
                assert staged_result[:2] == (MissingDone, "truncated")
                text = "".join(content_of(b) for b in kept)
                choices = staged_result[2]["choices"]
                assert len(choices) == (1 if kept else 0)
                content = choices[0]["message"]["content"] if choices else None
                assert (content or "") == text


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_flush_incomplete_discards_a_cut_off_event_as_truncation(pipeline: str) -> None:
    # stream-formats.md §10: an unterminated final event is flushed "if it parses, else
    # discard and mark truncated". A final event cut inside its JSON must not become a
    # DecodeError, in the staged pipeline as in the fused one.
    blocks = events_of(TEXT_STOP)
    half = len(blocks) // 2
    body = b"".join(blocks[:half]) + blocks[half][: len(blocks[half]) // 2]
    result = _complete_flush([body], pipeline)
    _assert_truncated(result, "".join(content_of(b) for b in blocks[:half]), half)


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_cut_just_before_done_keeps_everything_but_is_truncated(pipeline: str) -> None:
    body = TEXT_STOP[: TEXT_STOP.rindex(b"data: [DONE]")]
    result = _complete([body], pipeline, require_done=True)
    error = result.error
    assert isinstance(error, StreamInterrupted)
    assert error.partial is not None
    assert error.partial.state == "truncated"
    assert error.partial.finish_reason == "stop"
    assert error.partial.usage is not None
    assert error.partial.usage.input_tokens == 14
    [complete] = _complete([TEXT_STOP], pipeline).ok()
    assert error.partial.text == complete.text


def test_html_page_through_the_whole_pipeline() -> None:
    for stages in (staged(), fused()):
        result = feed([HTML_PAGE], *stages, accumulate())
        error = result.error
        assert isinstance(error, StreamInterrupted)
        assert error.partial is not None
        assert error.partial.state == "truncated"
        assert error.partial.choices == []


def test_event_too_large_through_decode_stream_keeps_the_partial() -> None:
    blocks = events_of(TEXT_STOP)
    big = b'data: {"choices": [{"index": 0, "delta": {"content": "' + b"x" * 5000 + b'"}}]}\n\n'
    body = b"".join([*blocks[:4], big, *blocks[4:]])
    result = feed([body], decode_stream(max_event_bytes=4096), accumulate())
    error = result.error
    assert isinstance(error, EventTooLarge)
    assert error.partial is not None
    assert error.partial.state == "error"
    assert error.partial.text == "".join(content_of(b) for b in blocks[:4])
