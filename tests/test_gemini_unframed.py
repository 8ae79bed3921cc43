"""Gemini's error documents sent outside the SSE framing (pretty-printed JSON lines)."""

from __future__ import annotations

from pathlib import Path

import pytest
import reactivex

from rxgpt import (
    MissingDone,
    SSEDecoder,
    StreamDecoder,
    StreamError,
    accumulate,
    decode_json,
    decode_stream,
    extract_deltas,
    parse_sse,
)

FIXTURE = Path(__file__).parent / "fixtures" / "composed" / "gemini.sse"
FIRST_CHUNK = FIXTURE.read_bytes().split(b"\r\n\r\n")[1] + b"\r\n\r\n"  # "Let me look that up"
ERROR = (
    b'{\n  "error": {\n    "code": 503,\n    "message": "The model is overloaded.",\n'
    b'    "status": "UNAVAILABLE"\n  }\n}\n'
)


def run(body: bytes, step: int, staged: bool = False) -> tuple[list[object], BaseException | None]:
    results: list[object] = []
    errors: list[BaseException] = []
    chunks = [body[i : i + step] for i in range(0, len(body), step)]
    stages = (
        (parse_sse(), decode_json(), extract_deltas("gemini"))
        if staged
        else (decode_stream("gemini"),)
    )
    reactivex.from_iterable(chunks).pipe(*stages, accumulate()).subscribe(
        results.append, errors.append
    )
    return results, errors[0] if errors else None


@pytest.mark.parametrize("staged", [False, True], ids=["fused", "staged"])
@pytest.mark.parametrize("step", [1, 7, 64, 100_000])
def test_an_unframed_error_document_is_a_stream_error_with_the_partial_text(
    step: int, staged: bool
) -> None:
    results, error = run(FIRST_CHUNK + ERROR, step, staged)
    assert results == []
    assert isinstance(error, StreamError)
    assert error.error == {
        "code": 503,
        "message": "The model is overloaded.",
        "status": "UNAVAILABLE",
    }
    assert error.retryable is True
    assert error.error_type == "UNAVAILABLE"
    assert error.partial is not None and error.partial.text == "Let me look that up"


def test_an_error_wrapped_in_a_list_is_recognised() -> None:
    _, error = run(FIRST_CHUNK + b"[" + ERROR.rstrip(b"\n") + b"]\n", 5)
    assert isinstance(error, StreamError) and error.error_type == "UNAVAILABLE"


def test_unframed_text_that_is_not_an_error_is_ignored_and_not_kept() -> None:
    decoder = StreamDecoder("gemini")
    decoder.feed(b"this is not json\n" * 5000)  # 85 KB of unknown lines
    assert decoder.error is None
    assert decoder.sse is not None
    assert 0 < sum(len(line) + 1 for line in decoder.sse.unframed) <= 64 * 1024
    body = FIXTURE.read_bytes()
    deltas = decoder.feed(body)
    decoder.close()
    assert decoder.done and decoder.error is None
    assert any(getattr(d, "text", None) == "Let me look that up" for d in deltas)


def test_other_protocols_and_the_plain_decoder_ignore_unknown_lines() -> None:
    plain = SSEDecoder()
    assert plain.feed(b'{\n  "error": {"code": 1}\n}\n\ndata: x\n\n')[0].data == "x"
    assert plain.unframed == ["{", '  "error": {"code": 1}', "}"]  # kept, not acted on
    openai = StreamDecoder("openai-chat")
    openai.feed(ERROR)
    assert openai.error is None
    openai.close()
    assert isinstance(openai.error, MissingDone)  # only Gemini sends errors that way
