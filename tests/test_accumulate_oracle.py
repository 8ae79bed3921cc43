"""openai-python as the oracle for ``accumulate()`` / ``Completion.to_openai()``.

For every recorded OpenAI Chat Completions stream, the bytes go through the rxgpt pipeline
(whole, one byte at a time, and at hypothesis-chosen split points) and the final
``Completion.to_openai()`` must equal, field for field, what openai-python's own
``ChatCompletionStreamState`` accumulates from the same chunks. Both sides are normalised
through ``openai.types.chat.ChatCompletion`` so that absent/None fields compare alike; only
the SDK-private ``parsed`` / ``parsed_arguments`` and the streaming-only tool-call ``index``
are removed.

The oracle side never uses rxgpt: its events are cut out of the body with plain
``bytes.split`` (the fixtures are LF-framed, one ``data:`` line per event).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion import Choice

from rxgpt import (
    Completion,
    accumulate,
    decode_json,
    decode_stream,
    extract_deltas,
    parse_sse,
)

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = sorted((FIXTURES / "recorded" / "openai-chat").glob("*.sse"))
# composed OpenAI-protocol files whose every chunk is a valid ChatCompletionChunk
COMPOSED = [
    FIXTURES / "composed" / "openai_chat_tools.sse",
    FIXTURES / "composed" / "openai_chat_n2_logprobs.sse",
]
ALL = RECORDED + COMPOSED
AZURE = FIXTURES / "composed" / "azure_chat.sse"


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@functools.cache
def _body(path: Path) -> bytes:
    return path.read_bytes()


# --------------------------------------------------------------------------- oracle


def _data_events(body: bytes) -> list[str]:
    """The data of every event before ``[DONE]``, cut out without any rxgpt code."""
    out: list[str] = []
    for block in body.decode("utf-8").split("\n\n"):
        lines = [line for line in block.split("\n") if line.startswith("data:")]
        if not lines:
            continue
        data = "\n".join(line[6:] if line.startswith("data: ") else line[5:] for line in lines)
        if data == "[DONE]":
            return out
        out.append(data)
    raise AssertionError("fixture has no [DONE]")


def _sdk_state(body: bytes, *, skip_invalid: bool = False) -> ChatCompletionStreamState[Any]:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for data in _data_events(body):
        obj = json.loads(data)
        if skip_invalid and obj.get("object") != "chat.completion.chunk":
            # what openai-python's ChatCompletionStream does (Azure async-filter chunks)
            continue
        state.handle_chunk(ChatCompletionChunk.model_validate(obj))
    return state


def _normalise(obj: dict[str, Any]) -> dict[str, Any]:
    dumped = ChatCompletion.model_validate(obj).model_dump()
    for choice in dumped["choices"]:
        message = choice["message"]
        message.pop("parsed", None)
        for call in message.get("tool_calls") or []:
            call.pop("index", None)
            call["function"].pop("parsed_arguments", None)
    return dumped


@functools.cache
def _oracle(path: Path) -> dict[str, Any]:
    snapshot = _sdk_state(_body(path)).current_completion_snapshot
    return _normalise(snapshot.model_dump())


# --------------------------------------------------------------------------- rxgpt side


def _run(chunks: list[bytes], *, fused: bool = False) -> Completion:
    stages = (
        (decode_stream("openai-chat"),)
        if fused
        else (parse_sse(), decode_json(), extract_deltas("openai-chat"))
    )
    results: list[Completion] = []
    errors: list[Exception] = []
    completed: list[bool] = []
    reactivex.from_iterable(chunks).pipe(*stages, accumulate()).subscribe(
        results.append, errors.append, lambda: completed.append(True)
    )
    assert errors == []
    assert completed == [True]
    assert len(results) == 1
    return results[0]


def _assert_same(completion: Completion, path: Path) -> None:
    assert completion.state == "complete"
    mine = _normalise(completion.to_openai())
    theirs = _oracle(path)
    assert sorted(mine) == sorted(theirs)
    for key in theirs:
        assert mine[key] == theirs[key], key
    assert mine == theirs


def _split(body: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted(points)
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


# --------------------------------------------------------------------------- tests


def test_fixture_set_is_complete() -> None:
    assert len(RECORDED) >= 12
    for path in RECORDED:
        assert _body(path).endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_whole_body_matches_openai_python(path: Path) -> None:
    _assert_same(_run([_body(path)]), path)


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_bytewise_matches_openai_python(path: Path) -> None:
    body = _body(path)
    _assert_same(_run([body[i : i + 1] for i in range(len(body))]), path)


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_random_splits_match_openai_python(path: Path, data: st.DataObject) -> None:
    body = _body(path)
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=40), label="split points")
    _assert_same(_run(_split(body, points)), path)


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_fused_decode_stream_gives_the_same_completion(path: Path) -> None:
    body = _body(path)
    staged = _run([body])
    fused = _run([body], fused=True)
    assert fused.state == "complete"
    assert fused.to_openai() == staged.to_openai()
    fused_bytewise = _run([body[i : i + 1] for i in range(len(body))], fused=True)
    assert fused_bytewise.to_openai() == staged.to_openai()


def test_refusal_keeps_content_none() -> None:
    path = FIXTURES / "recorded" / "openai-chat" / "refusal.sse"
    completion = _run([_body(path)])
    message = completion.to_openai()["choices"][0]["message"]
    assert message["content"] is None
    assert isinstance(message["refusal"], str)
    assert message["refusal"].startswith("I'm sorry")
    assert _oracle(path)["choices"][0]["message"]["content"] is None
    assert completion.choices[0].text is None
    assert completion.text == ""


def test_text_stop_has_string_content_and_no_refusal() -> None:
    path = FIXTURES / "recorded" / "openai-chat" / "text_stop.sse"
    completion = _run([_body(path)])
    message = completion.to_openai()["choices"][0]["message"]
    assert isinstance(message["content"], str)
    assert message["content"].startswith("I'm unable to provide real-time weather")
    assert message["refusal"] is None
    assert completion.to_openai()["choices"][0]["finish_reason"] == "stop"
    assert completion.to_openai()["usage"]["prompt_tokens"] == 14


@pytest.mark.parametrize(
    "name", ["tool_call_strict.sse", "tool_calls_parallel.sse", "tool_call_non_strict.sse"]
)
def test_tool_call_files_have_content_none(name: str) -> None:
    path = FIXTURES / "recorded" / "openai-chat" / name
    completion = _run([_body(path)])
    choice = completion.to_openai()["choices"][0]
    assert choice["message"]["content"] is None
    assert choice["finish_reason"] == "tool_calls"
    calls = choice["message"]["tool_calls"]
    assert calls and all(call["id"].startswith("call_") for call in calls)
    for call in calls:
        assert "index" not in call
        json.loads(call["function"]["arguments"])  # complete JSON after a tool_calls finish
    assert _oracle(path)["choices"][0]["message"]["content"] is None


def test_parallel_tool_calls_in_order() -> None:
    path = FIXTURES / "recorded" / "openai-chat" / "tool_calls_parallel.sse"
    calls = _run([_body(path)]).to_openai()["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["GetWeatherArgs", "get_stock_price"]
    assert [c["id"] for c in calls] == [
        "call_JMW1whyEaYG438VE1OIflxA2",
        "call_DNYTawLBoN8fj3KN6qU9N1Ou",
    ]


def test_length_cutoff_keeps_raw_finish_reason() -> None:
    # get_final_completion() of the SDK would raise here; the snapshot does not.
    path = FIXTURES / "recorded" / "openai-chat" / "length_cutoff.sse"
    completion = _run([_body(path)])
    assert completion.finish_reason == "length"
    assert completion.to_openai()["choices"][0]["finish_reason"] == "length"
    assert _oracle(path)["choices"][0]["finish_reason"] == "length"


def test_n3_choices_keep_their_indices() -> None:
    path = FIXTURES / "recorded" / "openai-chat" / "n3_choices.sse"
    result = _run([_body(path)]).to_openai()
    assert [c["index"] for c in result["choices"]] == [0, 1, 2]
    assert all(c["finish_reason"] == "stop" for c in result["choices"])


# --------------------------------------------------------------------------- Azure


def test_azure_choices_and_usage_match_openai_python_stream() -> None:
    # openai-python's ChatCompletionStream skips chunks whose object is not
    # "chat.completion.chunk" (Azure's prompt-filter and async-filter chunks).
    body = _body(AZURE)
    theirs = _normalise(
        _sdk_state(body, skip_invalid=True).current_completion_snapshot.model_dump()
    )
    completion = _run([body])
    mine = _normalise(completion.to_openai())
    # the SDK keeps Azure's per-choice extra "content_filter_results" of the role chunk
    # (a stale value, not part of the ChatCompletion schema): compare the schema fields
    fields = set(Choice.model_fields)
    assert "content_filter_results" not in fields
    assert [{k: c[k] for k in fields} for c in mine["choices"]] == [
        {k: c[k] for k in fields} for c in theirs["choices"]
    ]
    assert mine["usage"] == theirs["usage"]
    assert mine["choices"][0]["message"]["content"] == "Paris is the capital of France."


def test_azure_prompt_filter_chunk_does_not_blank_the_response_id() -> None:
    # The first Azure chunk is {"choices":[],"created":0,"id":"","model":"","object":"",
    # "prompt_filter_results":[...]}: placeholders, not the response's identity. The SDK
    # stream reports the real id/model/created of the chat.completion.chunk objects.
    body = _body(AZURE)
    theirs = _sdk_state(body, skip_invalid=True).current_completion_snapshot
    assert theirs.id == "chatcmpl-E9mQ2xT7vK4bN1cR8yWd3LpZs6aHf"
    completion = _run([body])
    assert completion.id == "chatcmpl-E9mQ2xT7vK4bN1cR8yWd3LpZs6aHf"
    assert completion.model == "gpt-4o-2024-11-20"
    assert completion.created == 1761905011
    result = completion.to_openai()
    assert (result["id"], result["model"], result["created"]) == (
        theirs.id,
        theirs.model,
        theirs.created,
    )
