"""The entry encoding: every delta round-trips exactly; errors keep their class and fields;
malformed (untrusted) entries are typed DecodeErrors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rxgpt
from rxgpt import _deltas
from rxgpt.relay import decode_delta, decode_deltas, decode_error, encode_delta, encode_deltas
from rxgpt.relay._encoding import EndInfo, decode_end, encode_end
from rxgpt.relay._subscribe import parse_entry

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=3)
choice = st.integers(0, 127)
index = st.integers(0, 1023)
small = st.integers(0, 2**31)
opt_int = st.none() | small
opt_text = st.none() | st.text()
usage = st.builds(
    rxgpt.Usage,
    input_tokens=opt_int,
    output_tokens=opt_int,
    total_tokens=opt_int,
    cached_input_tokens=opt_int,
    reasoning_tokens=opt_int,
    cache_write_tokens=opt_int,
    cost=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    raw=st.none() | json_objects,
)

known = [
    st.builds(rxgpt.ResponseInfo, opt_text, opt_text, opt_int, json_objects, opt_text),
    st.builds(rxgpt.RoleDelta, choice, st.text()),
    st.builds(rxgpt.PartStart, choice, small, st.text(), json_objects),
    st.builds(rxgpt.TextDelta, choice, st.text(), small),
    st.builds(rxgpt.RefusalDelta, choice, st.text()),
    st.builds(rxgpt.ReasoningDelta, choice, st.text(), st.booleans(), small),
    st.builds(rxgpt.ReasoningSignature, choice, st.text(), st.text(), small),
    st.builds(rxgpt.ToolCallStart, choice, index, opt_text, st.text(), st.text(), opt_text, small),
    st.builds(rxgpt.ToolCallArguments, choice, index, st.text()),
    st.builds(rxgpt.ToolCallEnd, choice, index, opt_text),
    st.builds(
        rxgpt.LogprobsDelta,
        choice,
        st.none() | st.lists(json_values),
        st.none() | st.lists(json_values),
    ),
    st.builds(rxgpt.FinishDelta, choice, st.sampled_from(rxgpt.FINISH_REASONS), opt_text),
    st.builds(rxgpt.UsageDelta, usage),
    st.builds(rxgpt.AnnotationDelta, st.none() | choice, st.text(), json_values, small),
    st.builds(rxgpt.ErrorDelta, json_values, st.text(), st.booleans()),
    st.builds(rxgpt.Heartbeat, st.text()),
]
DELTA_CLASSES = {
    cls
    for cls in vars(_deltas).values()
    if isinstance(cls, type) and issubclass(cls, rxgpt.Delta) and cls is not rxgpt.Delta
}
KNOWN = {
    rxgpt.ResponseInfo, rxgpt.RoleDelta, rxgpt.PartStart, rxgpt.TextDelta, rxgpt.RefusalDelta,
    rxgpt.ReasoningDelta, rxgpt.ReasoningSignature, rxgpt.ToolCallStart, rxgpt.ToolCallArguments,
    rxgpt.ToolCallEnd, rxgpt.LogprobsDelta, rxgpt.FinishDelta, rxgpt.UsageDelta,
    rxgpt.AnnotationDelta, rxgpt.ErrorDelta, rxgpt.Heartbeat,
}  # fmt: skip
# Delta classes added later (their fields are typed, not Any) are built from annotations.
deltas = st.one_of(*known, *(st.builds(c) for c in sorted(DELTA_CLASSES - KNOWN, key=str)))


def test_every_delta_class_is_known_to_the_encoding() -> None:
    from rxgpt.relay._encoding import _DELTA_CLASSES

    assert set(_DELTA_CLASSES.values()) == DELTA_CLASSES


@settings(max_examples=150, deadline=None)
@given(st.lists(deltas, max_size=6))
def test_deltas_round_trip_exactly(batch: list[rxgpt.Delta]) -> None:
    data = encode_deltas(batch)
    assert "\n" not in data and "\r" not in data  # one SSE data line
    back = decode_deltas(data.encode())
    assert back == batch
    assert [type(d) for d in back] == [type(d) for d in batch]
    for one in batch:
        assert decode_delta(encode_delta(one)) == one


def test_the_encoding_is_compact_and_documented() -> None:
    assert encode_delta(rxgpt.TextDelta(0, "Hi")) == {
        "@": "TextDelta",
        "choice": 0,
        "text": "Hi",
    }
    assert encode_delta(rxgpt.UsageDelta(rxgpt.Usage(output_tokens=3))) == {
        "@": "UsageDelta",
        "usage": {"output_tokens": 3},
    }


def _errors() -> list[rxgpt.RxgptError]:
    return [
        rxgpt.StreamError({"type": "overloaded_error", "message": "busy"}, index=4),
        rxgpt.HTTPStatusError(500, error={"message": "boom", "type": "server_error"}, url="u"),
        rxgpt.RateLimitError(429, headers={"retry-after": "1"}),
        rxgpt.StreamTimeout("idle", 2.5),
        rxgpt.StreamInterrupted("the body ended early"),
        rxgpt.MissingDone("no [DONE]"),
        rxgpt.DecodeError("bad json", raw="{x", index=3),
        rxgpt.EventTooLarge(100, 10),
        rxgpt.StreamCancelled("cancelled"),
        rxgpt.RxgptError("plain"),
    ]


@pytest.mark.parametrize("error", _errors(), ids=lambda e: type(e).__name__)
def test_errors_keep_class_message_and_fields(error: rxgpt.RxgptError) -> None:
    from rxgpt.relay._encoding import encode_error

    back = decode_error(encode_error(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.partial is None
    for name, value in vars(error).items():
        if name not in ("partial", "events"):
            assert getattr(back, name) == value, name


def test_a_foreign_error_becomes_an_rxgpt_error_naming_it() -> None:
    from rxgpt.relay._encoding import encode_error

    back = decode_error(encode_error(ValueError("nope")))
    assert type(back) is rxgpt.RxgptError
    assert "ValueError: nope" in str(back)


def test_end_entries_round_trip() -> None:
    error = rxgpt.StreamError({"message": "x", "type": "server_error"})
    info = EndInfo("error", 7, rxgpt.Usage(output_tokens=2, raw={"a": 1}), error)
    back = decode_end(encode_end(info).encode())
    assert (back.state, back.deltas, back.usage) == ("error", 7, info.usage)
    assert type(back.error) is rxgpt.StreamError and str(back.error) == str(error)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"{}",
        b"[1]",
        b'[{"@": "Nope"}]',
        b'[{"@": "TextDelta", "choice": "0", "text": "x"}]',
        b'[{"@": "TextDelta", "choice": 0}]',
        b'[{"@": "TextDelta", "choice": 0, "text": "x", "extra": 1}]',
        b'[{"@": "TextDelta", "choice": 999, "text": "x"}]',
        b'[{"@": "UsageDelta", "usage": 3}]',
        b'[{"@": "UsageDelta", "usage": {"bogus": 1}}]',
    ],
)
def test_malformed_deltas_are_decode_errors(data: bytes) -> None:
    with pytest.raises(rxgpt.DecodeError):
        decode_deltas(data)


@pytest.mark.parametrize(
    "fields",
    [
        {b"type": b"deltas", b"d": b"[]"},
        {b"seq": b"x", b"type": b"deltas", b"d": b"[]"},
        {b"seq": b"1", b"type": b"what", b"d": b"[]"},
        {b"seq": b"0", b"type": b"start", b"d": b'{"v": 99}'},
        {b"seq": b"2", b"type": b"end", b"d": b'{"state": "weird"}'},
    ],
)
def test_malformed_entries_are_decode_errors(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(rxgpt.DecodeError):
        parse_entry(b"1-0", fields)


def test_a_delta_that_is_not_json_cannot_be_relayed() -> None:
    with pytest.raises(rxgpt.DecodeError, match="cannot be encoded"):
        encode_deltas([rxgpt.AnnotationDelta(0, "x", payload={1, 2})])


def test_field_defaults_are_left_out_but_restored() -> None:
    delta = rxgpt.ToolCallStart(0, 1, "call_1", "f", type="custom")
    encoded = encode_delta(delta)
    assert encoded["@"] == "ToolCallStart" and encoded["type"] == "custom"
    assert "item_id" not in encoded and "part" not in encoded
    assert decode_delta(encoded) == delta
    assert dataclasses.asdict(decode_delta(encoded)) == dataclasses.asdict(delta)
