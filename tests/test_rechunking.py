"""The decoded stream must not depend on how the body was cut, nor on its line endings.

For every ``.sse`` fixture under tests/fixtures: the OpenAI Chat Completions files go through
``parse_sse | decode_json | extract_deltas`` (and the fused ``decode_stream``) and must give
exactly the same list of deltas, and the same terminal outcome, as the whole body; the other
protocols' files go through ``parse_sse | decode_json(done=None)`` and must give the same
parsed items. The variants: one byte at a time, random split points (empty chunks included),
LF rewritten to CRLF and to CR, ``data: `` rewritten to ``data:``, and ``: keep-alive``
comment lines between events.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st

from rxgpt import (
    Comment,
    FinishDelta,
    Heartbeat,
    ResponseInfo,
    RxgptError,
    StreamError,
    TextDelta,
    decode_json,
    decode_stream,
    extract_deltas,
    parse_sse,
)

FIXTURES = Path(__file__).parent / "fixtures"
ALL = sorted(FIXTURES.rglob("*.sse"))
OPENAI_COMPOSED = {
    "openai_chat_tools.sse",
    "openai_chat_n2_logprobs.sse",
    "openai_chat_error_midstream.sse",
    "azure_chat.sse",
    "openrouter_chat.sse",
}
# fixtures whose stream ends with an in-band error rather than normally
ERROR_ENDED = {"openai_chat_error_midstream.sse", "anthropic_error_overloaded.sse"}


def _is_openai(path: Path) -> bool:
    return path.parent.name == "openai-chat" or path.name in OPENAI_COMPOSED


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


IDS = [_id(p) for p in ALL]
OPENAI = [p for p in ALL if _is_openai(p)]


@functools.cache
def _body(path: Path) -> bytes:
    return path.read_bytes()


# --------------------------------------------------------------------------- variants


def _lf(body: bytes) -> bytes:
    return body.replace(b"\r\n", b"\n")


def _line_ends(body: bytes, eol: str) -> bytes:
    return _lf(body).replace(b"\n", {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}[eol])


def _no_space(body: bytes) -> bytes:
    return re.sub(rb"(?m)^data: ", b"data:", _lf(body))


KEEP_ALIVE = b": keep-alive\n\n"


def _keep_alive(body: bytes) -> bytes:
    """A comment block before the first event and after every event."""
    return KEEP_ALIVE + _lf(body).replace(b"\n\n", b"\n\n" + KEEP_ALIVE)


def _variant(body: bytes, *, eol: str = "lf", no_space: bool = False, keep: bool = False) -> bytes:
    if no_space:
        body = _no_space(body)
    if keep:
        body = _keep_alive(body)
    return _line_ends(body, eol)


def _split(body: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted(points)
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


# --------------------------------------------------------------------------- decoding


def _error_key(error: Exception) -> tuple[Any, ...]:
    return (type(error), getattr(error, "error", None), getattr(error, "index", None))


def _subscribe(chunks: list[bytes], stages: tuple[Any, ...]) -> tuple[list[Any], Any]:
    items: list[Any] = []
    end: list[Any] = []
    reactivex.from_iterable(chunks).pipe(*stages).subscribe(
        items.append, lambda e: end.append(_error_key(e)), lambda: end.append("completed")
    )
    assert len(end) == 1
    return items, end[0]


def _decode(path: Path, chunks: list[bytes], *, heartbeats: bool = False) -> tuple[list[Any], Any]:
    """(items, outcome) of the whole pipeline for ``path``'s protocol."""
    if _is_openai(path):
        staged = _subscribe(
            chunks, (parse_sse(heartbeats=heartbeats), decode_json(), extract_deltas())
        )
        fused = _subscribe(chunks, (decode_stream(heartbeats=heartbeats),))
        assert fused == staged
        return staged
    done = "[DONE]" if path.name in DONE_MARKED else None  # the payloads, parsed
    return _subscribe(chunks, (parse_sse(heartbeats=heartbeats), decode_json(done=done)))


#: non-chat fixtures that end with data: [DONE]
DONE_MARKED = {"openai_completions.sse"}


@functools.cache
def _baseline(path: Path) -> tuple[list[Any], Any]:
    return _decode(path, [_body(path)])


def _without_heartbeats(items: list[Any]) -> list[Any]:
    return [x for x in items if not isinstance(x, (Heartbeat, Comment))]


# --------------------------------------------------------------------------- baselines


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_baseline_is_meaningful(path: Path) -> None:
    items, outcome = _baseline(path)
    assert len(items) >= 4
    if path.name in ERROR_ENDED:
        assert outcome[0] is StreamError
    else:
        assert outcome == "completed"
    if _is_openai(path):
        assert any(isinstance(d, ResponseInfo) for d in items)
        finished = any(isinstance(d, FinishDelta) for d in items)
        assert finished is (path.name not in ERROR_ENDED)
        if path.name in ERROR_ENDED:
            assert any(isinstance(d, TextDelta) and d.text for d in items)
    else:
        assert all(isinstance(x, dict) for x in items)


def test_fixture_inventory() -> None:
    # guards against a glob that silently matches nothing
    assert len(ALL) >= 24
    assert len(OPENAI) >= 17
    assert {p.parent.name for p in ALL} == {"composed", "openai-chat", "anthropic-messages"}


# --------------------------------------------------------------------------- re-chunking


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_bytewise_equals_whole(path: Path) -> None:
    body = _body(path)
    assert _decode(path, [body[i : i + 1] for i in range(len(body))]) == _baseline(path)


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_empty_chunks_change_nothing(path: Path) -> None:
    body = _body(path)
    half = len(body) // 2
    chunks = [b"", body[:half], b"", b"", body[half:], b""]
    assert _decode(path, chunks) == _baseline(path)


@pytest.mark.parametrize("path", ALL, ids=IDS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_random_splits_equal_whole(path: Path, data: st.DataObject) -> None:
    body = _body(path)
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=60), label="split points")
    assert _decode(path, _split(body, points)) == _baseline(path)


# --------------------------------------------------------------------------- rewritten bodies


@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_line_endings(path: Path, eol: str) -> None:
    body = _line_ends(_body(path), eol)
    if eol == "cr":
        assert b"\n" not in body
    assert _decode(path, [body]) == _baseline(path)
    assert _decode(path, [body[i : i + 1] for i in range(len(body))]) == _baseline(path)


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_data_without_space(path: Path) -> None:
    body = _no_space(_body(path))
    assert b"\ndata: " not in body and not body.startswith(b"data: ")
    assert _decode(path, [body]) == _baseline(path)


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_keep_alive_comments_between_events(path: Path) -> None:
    body = _keep_alive(_body(path))
    assert _decode(path, [body]) == _baseline(path)


@pytest.mark.parametrize("path", ALL, ids=IDS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_rewritten_and_resplit_equal_whole(path: Path, data: st.DataObject) -> None:
    body = _variant(
        _body(path),
        eol=data.draw(st.sampled_from(["lf", "crlf", "cr"]), label="eol"),
        no_space=data.draw(st.booleans(), label="no_space"),
        keep=data.draw(st.booleans(), label="keep_alive"),
    )
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=60), label="split points")
    assert _decode(path, _split(body, points)) == _baseline(path)


# --------------------------------------------------------------------------- heartbeats


def _comments_before_end(body: bytes, path: Path) -> list[str]:
    """Comment texts the pipeline should report: those before the stream's last event."""
    texts: list[str] = []
    for block in _lf(body).split(b"\n\n"):
        lines = block.decode().split("\n")
        data = "\n".join(line[5:].lstrip(" ") for line in lines if line.startswith("data:"))
        if (_is_openai(path) or path.name in DONE_MARKED) and data == "[DONE]":
            break
        if data and path.name in ERROR_ENDED and json.loads(data).get("error"):
            break
        texts.extend(
            line[2:] if line.startswith(": ") else line[1:] for line in lines if line[:1] == ":"
        )
    return texts


@pytest.mark.parametrize("eol", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_heartbeats_are_the_only_difference(path: Path, eol: str) -> None:
    body = _line_ends(_keep_alive(_body(path)), eol)
    for chunks in ([body], [body[i : i + 1] for i in range(len(body))]):
        items, outcome = _decode(path, chunks, heartbeats=True)
        base_items, base_outcome = _baseline(path)
        assert outcome == base_outcome
        assert _without_heartbeats(items) == base_items
        beats = [x for x in items if isinstance(x, (Heartbeat, Comment))]
        expected = _comments_before_end(_keep_alive(_body(path)), path)
        assert "keep-alive" in expected
        if _is_openai(path):
            assert beats == [Heartbeat(text) for text in expected]
            assert items[0] == Heartbeat("keep-alive")
        else:
            assert beats == [Comment(text) for text in expected]
            assert items[0] == Comment("keep-alive")
        kinds = [isinstance(x, (Heartbeat, Comment)) for x in items]
        assert kinds[0] is True
        assert not all(kinds)


@pytest.mark.parametrize("path", OPENAI, ids=[_id(p) for p in OPENAI])
def test_heartbeats_false_ignores_comments(path: Path) -> None:
    body = _keep_alive(_body(path))
    items, outcome = _decode(path, [body], heartbeats=False)
    assert not any(isinstance(x, Heartbeat) for x in items)
    assert (items, outcome) == _baseline(path)


def test_openrouter_comments_are_heartbeats() -> None:
    path = FIXTURES / "composed" / "openrouter_chat.sse"
    items, outcome = _decode(path, [_body(path)], heartbeats=True)
    assert outcome == "completed"
    assert [x for x in items if isinstance(x, Heartbeat)] == [
        Heartbeat("OPENROUTER PROCESSING")
    ] * 3
    assert items[:2] == [Heartbeat("OPENROUTER PROCESSING")] * 2
    assert _without_heartbeats(items) == _baseline(path)[0]


def test_outcome_errors_are_typed() -> None:
    path = FIXTURES / "composed" / "openai_chat_error_midstream.sse"
    _, outcome = _baseline(path)
    assert outcome[0] is StreamError
    assert issubclass(outcome[0], RxgptError)
    assert outcome[1]["type"] == "server_error"
    assert outcome[2] == 3
