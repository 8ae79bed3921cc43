"""One set of rules: the staged operators, the fused operator and StreamDecoder agree.

Every fixture of every protocol, and hostile bodies made from them (cut at random
offsets, a corrupted event, an in-band error, Gemini's unframed error document,
wrong-typed fields), go through

- ``parse_sse() | decode_json() | extract_deltas(p) | accumulate()`` (the staged chain;
  ``parse_ndjson()`` for Ollama),
- ``decode_stream(p) | accumulate()`` (the fused operator),
- the staged chain with a user's identity operator between every two stages (so no two
  rxgpt stages fuse: each runs on its own subscription),
- :class:`rxgpt.StreamDecoder` with an :class:`rxgpt.Accumulator` (the sans-IO core),

at every chunking (whole, bytewise, random reads). All must give the same deltas, the
same :class:`~rxgpt.Completion`, and the same exception: type, message and partial. No
path may raise anything but an :class:`~rxgpt.RxgptError`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
from pathlib import Path
from typing import Any

import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

from rxgpt import (
    PROTOCOLS,
    Accumulator,
    Completion,
    Delta,
    RxgptError,
    StreamDecoder,
    StreamError,
    accumulate,
    decode_json,
    decode_stream,
    extract_deltas,
    parse_ndjson,
    parse_sse,
)

FIXTURES = Path(__file__).parent / "fixtures"

#: fixture (relative to tests/fixtures) → protocol
PROTOCOL = {
    "composed/openai_chat_tools.sse": "openai-chat",
    "composed/openai_chat_n2_logprobs.sse": "openai-chat",
    "composed/openai_chat_error_midstream.sse": "openai-chat",
    "composed/openai_responses.sse": "openai-responses",
    "composed/anthropic_messages_tools.sse": "anthropic",
    "composed/anthropic_error_overloaded.sse": "anthropic",
    "composed/gemini.sse": "gemini",
    "composed/ollama_chat.ndjson": "ollama",
    "composed/openai_completions.sse": "openai-completions",
    "composed/azure_chat.sse": "openai-chat",
    "composed/openrouter_chat.sse": "openai-chat",
    **{
        f"recorded/openai-chat/{p.name}": "openai-chat"
        for p in (FIXTURES / "recorded" / "openai-chat").glob("*.sse")
    },
    **{
        f"recorded/anthropic-messages/{p.name}": "anthropic"
        for p in (FIXTURES / "recorded" / "anthropic-messages").glob("*.sse")
    },
}
NAMES = sorted(PROTOCOL)

GEMINI_ERROR = (
    b'{\n  "error": {\n    "code": 503,\n    "message": "The model is overloaded.",\n'
    b'    "status": "UNAVAILABLE"\n  }\n}\n'
)


@functools.cache
def body_of(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_every_fixture_is_covered() -> None:
    on_disk = {
        str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*") if p.suffix in (".sse", ".ndjson")
    }
    assert on_disk == set(PROTOCOL)
    assert set(PROTOCOL.values()) == set(PROTOCOLS)


# --------------------------------------------------------------------------- running

Outcome = tuple[list[Delta], Completion | None, tuple[str, str, Completion | None] | None]


def _framing(protocol: str) -> Any:
    return parse_ndjson() if PROTOCOLS[protocol].framing == "ndjson" else parse_sse()


def _rx(chunks: list[bytes], stages: list[Any], protocol: str) -> Outcome:
    """Run chunks through ``stages``; record the deltas, then the accumulated result."""
    deltas: list[Delta] = []
    results: list[Completion] = []
    errors: list[BaseException] = []
    source = reactivex.from_iterable(chunks).pipe(*stages)
    shared = source.pipe(ops.do_action(deltas.append), ops.publish())
    shared.pipe(accumulate(protocol)).subscribe(results.append, errors.append)
    shared.connect()
    return _outcome(deltas, results, errors)


def _outcome(
    deltas: list[Delta], results: list[Completion], errors: list[BaseException]
) -> Outcome:
    for error in errors:
        assert isinstance(error, RxgptError), f"not an rxgpt error: {error!r}"
    error = errors[0] if errors else None
    described = None
    if error is not None:
        assert isinstance(error, RxgptError)
        partial = error.partial
        assert partial is not None and partial.error is error
        # the partial holds the error itself: compare it by type and text
        described = (type(error).__name__, str(error), dataclasses.replace(partial, error=None))
    return deltas, results[0] if results else None, described


def staged(chunks: list[bytes], protocol: str) -> Outcome:
    return _rx(chunks, [_framing(protocol), decode_json(), extract_deltas(protocol)], protocol)


def fused(chunks: list[bytes], protocol: str) -> Outcome:
    return _rx(chunks, [decode_stream(protocol)], protocol)


def unfused(chunks: list[bytes], protocol: str) -> Outcome:
    identity = ops.map(lambda item: item)
    done = "[DONE]" if PROTOCOLS[protocol].has_done_marker else None
    stages = [_framing(protocol), identity, decode_json(done=done), identity]
    return _rx(chunks, [*stages, extract_deltas(protocol)], protocol)


def sans_io(chunks: list[bytes], protocol: str) -> Outcome:
    decoder = StreamDecoder(protocol)
    acc = Accumulator(protocol)
    deltas: list[Delta] = []
    for chunk in chunks:
        deltas.extend(decoder.feed(chunk))
    deltas.extend(decoder.close())
    acc.add_all(deltas)
    error = decoder.error
    if error is None:
        return deltas, acc.completion("complete"), None
    from rxgpt._accumulate import partial_completion

    partial_completion(acc, error)
    return _outcome(deltas, [], [error])


def chunkings(body: bytes, seed: int) -> list[list[bytes]]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, 12))) if body else []
    randomly = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return [[body], [body[i : i + 1] for i in range(len(body))], randomly]


def _cut_after_every_finish(reference: Outcome, result: Completion | None) -> bool:
    described = reference[2]
    return (
        described is not None
        and described[0] == "MissingDone"
        and result is not None
        and not result.end_marker
    )


def check(body: bytes, protocol: str, seed: int = 0, *, unframed: bool = False) -> Outcome:
    """Every path at every chunking gives the outcome of the staged chain on the whole.

    ``unframed``: the body ends in an error document outside the SSE framing, which only
    stages chained directly can see (the framing passes it to the end of the body); the
    unfused chain then ends as truncated, with the same partial.
    """
    reference = staged([body], protocol)
    for chunks in chunkings(body, seed):
        for path in (staged, fused, sans_io):
            got = path(chunks, protocol)
            assert got == reference, (path.__name__, len(chunks))
        deltas, result, error = unfused(chunks, protocol)
        if _cut_after_every_finish(reference, result):
            # The body ended inside an event after every finish reason: only chained
            # stages see the framing's cut (truncated); the unchained ones see a body
            # without [DONE] (complete, end_marker False). The same content either way.
            assert deltas[:-1] == reference[0]
            assert result is not None and reference[2] is not None
            assert reference[2][2].text == result.text
            continue
        if unframed:
            assert deltas == reference[0][:-1]  # all but the ErrorDelta
            assert error is not None and reference[2] is not None
            assert error[0] == "StreamInterrupted"
            assert error[2].text == reference[2][2].text
            continue
        assert deltas == reference[0]
        assert result == reference[1]
        if error is None or reference[2] is None:
            assert error == reference[2]
        else:  # the same error; its text may lack what only the fused stages know
            assert error[0] == reference[2][0] and error[2] == reference[2][2]
    return reference


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("name", NAMES)
def test_fixture(name: str) -> None:
    check(body_of(name), PROTOCOL[name])


@pytest.mark.parametrize("name", NAMES)
def test_fixture_cut_at_random_offsets(name: str) -> None:
    body = body_of(name)
    rng = random.Random(name)
    for cut in sorted(rng.sample(range(1, len(body)), 6)):
        _, result, error = check(body[:cut], PROTOCOL[name], cut)
        assert result is None or error is None


@pytest.mark.parametrize("name", NAMES)
def test_fixture_with_a_corrupted_event(name: str) -> None:
    body = body_of(name)
    at = body.find(b"{", len(body) // 2)
    _, _, error = check(body[:at] + b"<html>" + body[at + 1 :], PROTOCOL[name])
    assert error is not None


@pytest.mark.parametrize("name", [n for n in NAMES if not n.endswith(".ndjson")])
def test_fixture_with_an_in_band_error(name: str) -> None:
    body = body_of(name)
    half = body.find(b"\n\n", len(body) // 2) + 2
    error = b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n'
    _, _, described = check(body[:half] + error + body[half:], PROTOCOL[name])
    if described is not None and half > 2:
        assert described[0] in ("StreamError", "StreamInterrupted", "MissingDone")


def test_ndjson_with_an_in_band_error() -> None:
    body = body_of("composed/ollama_chat.ndjson")
    half = body.find(b"\n", len(body) // 2) + 1
    _, _, described = check(body[:half] + b'{"error": "boom"}\n' + body[half:], "ollama")
    assert described is not None and described[0] == "StreamError"


def test_gemini_unframed_error_document() -> None:
    body = body_of("composed/gemini.sse")
    first = body.split(b"\r\n\r\n")[1] + b"\r\n\r\n"
    deltas, result, described = check(first + GEMINI_ERROR, "gemini", unframed=True)
    assert result is None and described is not None
    assert described[0] == "StreamError" and "overloaded" in described[1]
    assert described[2] is not None and described[2].text == "Let me look that up"
    assert isinstance(deltas[-1], Delta) and type(deltas[-1]).__name__ == "ErrorDelta"


# --------------------------------------------------------------------------- wrong types


def _events(name: str) -> list[Any]:
    """A fixture's payloads, parsed (the marker kept as a string)."""
    body = body_of(name).replace(b"\r\n", b"\n")
    if name.endswith(".ndjson"):
        return [json.loads(line) for line in body.splitlines() if line.strip()]
    out: list[Any] = []
    for block in body.decode().split("\n\n"):
        kind = "message"
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        for line in block.split("\n"):
            if line.startswith("event:"):
                kind = line[6:].strip()
        if data:
            text = "\n".join(data)
            out.append((kind, text if text == "[DONE]" else json.loads(text)))
    return out


def _encode(name: str, events: list[Any]) -> bytes:
    if name.endswith(".ndjson"):
        return b"".join(json.dumps(e).encode() + b"\n" for e in events)
    parts = []
    for kind, data in events:
        head = f"event: {kind}\n" if kind != "message" else ""
        text = data if isinstance(data, str) else json.dumps(data)
        parts.append(f"{head}data: {text}\n\n".encode())
    return b"".join(parts)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=4,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            found.append((*prefix, key))
            found.extend(_paths(inner, (*prefix, key)))
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            found.append((*prefix, n))
            found.extend(_paths(inner, (*prefix, n)))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), data=st.data(), value=JSON_VALUES)
def test_any_field_of_any_wrong_type_gives_only_rxgpt_errors(
    name: str, data: st.DataObject, value: Any
) -> None:
    """Valid JSON of the wrong shape anywhere: same outcome everywhere, typed errors only."""
    events = _events(name)
    candidates = [
        (n, path)
        for n, event in enumerate(events)
        for path in _paths(event if name.endswith(".ndjson") else event[1])
    ]
    n, path = data.draw(st.sampled_from(candidates))
    event = events[n]
    if name.endswith(".ndjson"):
        events[n] = _replace(event, path, value)
    else:
        events[n] = (event[0], _replace(event[1], path, value))
    body = _encode(name, events)
    protocol = PROTOCOL[name]
    reference = staged([body], protocol)
    for path_run in (fused, sans_io):
        assert path_run([body], protocol) == reference
    step = max(1, len(body) // 7)
    assert staged([body[i : i + step] for i in range(0, len(body), step)], protocol) == reference


def test_a_stream_error_is_reported_as_an_error_delta_first() -> None:
    body = body_of("composed/openai_chat_error_midstream.sse")
    deltas, result, described = check(body, "openai-chat")
    assert result is None and described is not None and described[0] == StreamError.__name__
    assert type(deltas[-1]).__name__ == "ErrorDelta"
