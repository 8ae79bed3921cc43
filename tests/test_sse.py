"""Conformance tests for the sans-IO SSE decoder (rxgpt.sse).

The specification is WHATWG HTML §9.2 as restated in shared/reference/sse-rules.md
(rules R1-R15 and the dispatch steps of 1.6). Every table case is run three ways -- in one
piece, byte by byte, and through ``feed_frames`` -- and all three must give the same events.
"""

from __future__ import annotations

import dataclasses

import pytest

from rxgpt._errors import DecodeError, EventTooLarge
from rxgpt._sse import Comment, ServerSentEvent, SSEDecoder

E = ServerSentEvent
BOM = b"\xef\xbb\xbf"


# --------------------------------------------------------------------------- helpers


def feed_whole(data: bytes, **kw: object) -> tuple[list[ServerSentEvent], SSEDecoder]:
    dec = SSEDecoder(**kw)  # type: ignore[arg-type]
    out = list(dec.feed(data))
    out.extend(dec.close())
    return out, dec


def feed_bytewise(data: bytes, **kw: object) -> tuple[list[ServerSentEvent], SSEDecoder]:
    dec = SSEDecoder(**kw)  # type: ignore[arg-type]
    out: list[ServerSentEvent] = []
    for i in range(len(data)):
        out.extend(dec.feed(data[i : i + 1]))
    out.extend(dec.close())
    return out, dec


def feed_chunks(chunks: list[bytes], **kw: object) -> tuple[list[ServerSentEvent], SSEDecoder]:
    dec = SSEDecoder(**kw)  # type: ignore[arg-type]
    out: list[ServerSentEvent] = []
    for chunk in chunks:
        out.extend(dec.feed(chunk))
    out.extend(dec.close())
    return out, dec


def frames_whole(data: bytes, **kw: object) -> list[ServerSentEvent | Comment]:
    dec = SSEDecoder(**kw)  # type: ignore[arg-type]
    out: list[ServerSentEvent | Comment] = list(dec.feed_frames(data))
    out.extend(dec.close())
    return out


def frames_bytewise(data: bytes, **kw: object) -> list[ServerSentEvent | Comment]:
    dec = SSEDecoder(**kw)  # type: ignore[arg-type]
    out: list[ServerSentEvent | Comment] = []
    for i in range(len(data)):
        out.extend(dec.feed_frames(data[i : i + 1]))
    out.extend(dec.close())
    return out


# --------------------------------------------------------------------------- the table
# (name, input bytes, expected events)

CASES: list[tuple[str, bytes, list[ServerSentEvent]]] = [
    # --- basics
    ("single", b"data: hello\n\n", [E(data="hello")]),
    ("two-events", b"data: a\n\ndata: b\n\n", [E(data="a"), E(data="b")]),
    ("empty-stream", b"", []),
    ("only-blank-lines", b"\n\n\n\r\n\r\r", []),
    ("done-is-ordinary-message", b"data: [DONE]\n\n", [E(data="[DONE]")]),
    ("json-payload", b'data: {"a": 1}\n\n', [E(data='{"a": 1}')]),
    # --- R3: line ends
    ("lf", b"data: a\n\n", [E(data="a")]),
    ("cr", b"data: a\r\r", [E(data="a")]),
    ("crlf", b"data: a\r\n\r\n", [E(data="a")]),
    ("cr-multiline", b"data: a\rdata: b\r\r", [E(data="a\nb")]),
    ("crlf-multiline", b"data: a\r\ndata: b\r\n\r\n", [E(data="a\nb")]),
    ("mixed-line-ends", b"data: a\rdata: b\ndata: c\r\n\r", [E(data="a\nb\nc")]),
    (
        "mixed-events",
        b"data: a\r\rdata: b\r\n\r\ndata: c\n\n",
        [E(data="a"), E(data="b"), E(data="c")],
    ),
    ("cr-cr-lf-lf-is-three-line-ends", b"data: a\r\r\n\ndata: b\n\n", [E(data="a"), E(data="b")]),
    ("cr-cr-lf-lf-before-data", b"data: a\rdata: b\r\r\n\n", [E(data="a\nb")]),
    ("lf-cr-is-two-line-ends", b"data: a\n\rdata: b\n\r", [E(data="a"), E(data="b")]),
    ("crlf-swallows-one-lf-only", b"data: a\r\n\n", [E(data="a")]),
    ("lf-lf-lf", b"data: a\n\n\ndata: b\n\n", [E(data="a"), E(data="b")]),
    ("stream-ends-in-lf-cr", b"data: x\n\r", [E(data="x")]),
    ("cr-then-data-char", b"data: a\rdata: b\n\n", [E(data="a\nb")]),
    # --- R3: other characters are not line ends
    ("u2028-not-a-line-end", "data: a\u2028b\n\n".encode(), [E(data="a\u2028b")]),
    ("u2029-not-a-line-end", "data: a\u2029b\n\n".encode(), [E(data="a\u2029b")]),
    ("nel-not-a-line-end", "data: a\u0085b\n\n".encode(), [E(data="a\u0085b")]),
    ("vt-ff-not-line-ends", b"data: a\x0bb\x0cc\n\n", [E(data="a\x0bb\x0cc")]),
    ("fs-gs-rs-not-line-ends", b"data: a\x1cb\x1dc\x1ed\n\n", [E(data="a\x1cb\x1dc\x1ed")]),
    ("nel-after-data-not-blank", "data: a\n\u0085\ndata: b\n\n".encode(), [E(data="a\nb")]),
    # the same with CR line ends (decoders often take a different path when a CR is present)
    ("u2028-with-cr", "data: a\u2028b\r\r".encode(), [E(data="a\u2028b")]),
    ("u2029-with-crlf", "data: a\u2029b\r\n\r\n".encode(), [E(data="a\u2029b")]),
    ("nel-with-cr", "data: a\u0085b\rdata: c\r\r".encode(), [E(data="a\u0085b\nc")]),
    ("vt-ff-fs-with-crlf", b"data: a\x0bb\x0cc\x1cd\r\n\r\n", [E(data="a\x0bb\x0cc\x1cd")]),
    ("u2028-line-with-cr-not-blank", "data: a\r\u2028\rdata: b\r\r".encode(), [E(data="a\nb")]),
    # --- R1: BOM
    ("bom-stripped", BOM + b"data: x\n\n", [E(data="x")]),
    ("bom-only", BOM, []),
    ("bom-then-blank", BOM + b"\ndata: x\n\n", [E(data="x")]),
    ("second-bom-is-a-char", BOM + BOM + b"data: x\n\n", []),
    ("second-bom-unknown-field-then-event", BOM + BOM + b"data: x\n\ndata: y\n\n", [E(data="y")]),
    ("bom-mid-stream-is-a-char", b"data: a\n\n" + BOM + b"data: x\n\n", [E(data="a")]),
    ("bom-in-value-kept", b"data: " + BOM + b"x\n\n", [E(data="\ufeffx")]),
    ("truncated-bom-is-fffd", b"\xef\xbb\ndata: x\n\n", [E(data="x")]),
    ("truncated-bom-glued", b"\xef\xbbdata: x\n\n", []),
    # --- R1: invalid UTF-8 becomes U+FFFD
    ("invalid-ff", b"data: \xff\n\n", [E(data="\ufffd")]),
    ("invalid-ff-fe", b"data: a\xff\xfeb\n\n", [E(data="a\ufffd\ufffdb")]),
    ("truncated-2byte", b"data: \xc3\n\n", [E(data="\ufffd")]),
    ("truncated-3byte", b"data: \xe2\x82\n\n", [E(data="\ufffd")]),
    ("truncated-4byte-before-ascii", b"data: \xf0\x9f\x98x\n\n", [E(data="\ufffdx")]),
    ("lone-continuation", b"data: \x80\x80\n\n", [E(data="\ufffd\ufffd")]),
    ("overlong", b"data: \xc0\xaf\n\n", [E(data="\ufffd\ufffd")]),
    ("surrogate", b"data: \xed\xa0\x80\n\n", [E(data="\ufffd\ufffd\ufffd")]),
    ("above-max", b"data: \xf4\x90\x80\x80\n\n", [E(data="\ufffd\ufffd\ufffd\ufffd")]),
    ("invalid-in-field-name", b"d\xffata: x\n\ndata: y\n\n", [E(data="y")]),
    ("invalid-before-cr", b"data: \xe2\rdata: b\r\r", [E(data="\ufffd\nb")]),
    ("nul-in-data-kept", b"data: a\x00b\n\n", [E(data="a\x00b")]),
    # --- multi-byte characters
    (
        "multibyte",
        "data: é€😀中\n\n".encode(),
        [E(data="é€😀中")],
    ),
    ("multibyte-event-and-id", "event: ünï\nid: ïd€\ndata: ✓\n\n".encode(), [E("ünï", "✓", "ïd€")]),
    # --- R6: comments
    ("comment-only", b": ping\n\n", []),
    ("bare-colon", b":\n\n", []),
    ("comments-only-stream", b":\n:\n: ping\n:ping\n\n\n", []),
    ("comment-inside-event", b"data: a\n: ping\ndata: b\n\n", [E(data="a\nb")]),
    ("comment-does-not-dispatch", b"data: a\n:\n", []),
    ("comment-with-data-word", b":data: x\n\n", []),
    ("comment-then-event", b": ping\n\ndata: x\n\n", [E(data="x")]),
    # --- 1.6 step 2: no phantom events
    ("id-only-block", b"id: 1\n\n", []),
    ("retry-only-block", b"retry: 1000\n\n", []),
    ("event-only-block", b"event: foo\n\n", []),
    ("unknown-only-block", b"foo: bar\n\n", []),
    ("meta-only-block", b"event: e\nid: 1\nretry: 5\n: c\n\n", []),
    (
        "sticky-id-no-phantoms",
        b"id: 1\ndata: x\n\n\n\n: ping\n\nretry: 5\n\nevent: e\n\n",
        [E(data="x", id="1")],
    ),
    ("id-block-then-heartbeats", b"id: 7\n\n: ping\n\n: ping\n\n", []),
    ("event-type-reset-by-empty-dispatch", b"event: foo\n\ndata: x\n\n", [E(data="x")]),
    # --- R7: leading space
    ("no-space", b"data:x\n\n", [E(data="x")]),
    ("two-spaces-keep-one", b"data:  x\n\n", [E(data=" x")]),
    ("tab-kept", b"data:\tx\n\n", [E(data="\tx")]),
    ("space-only-value", b"data: \n\n", [E(data="")]),
    ("two-space-only-value", b"data:  \n\n", [E(data=" ")]),
    ("trailing-space-kept", b"data: x \n\n", [E(data="x ")]),
    ("first-colon-splits", b"data: a: b:c\n\n", [E(data="a: b:c")]),
    ("event-leading-space-once", b"event:  foo\ndata: x\n\n", [E(event=" foo", data="x")]),
    # --- R8: no colon
    ("data-alone", b"data\n\n", [E(data="")]),
    ("data-data", b"data\ndata\n\n", [E(data="\n")]),
    ("data-then-empty-data", b"data: a\ndata\n\n", [E(data="a\n")]),
    ("whitespace-line-not-blank", b"data: a\n \ndata: b\n\n", [E(data="a\nb")]),
    ("tab-line-not-blank", b"data: a\n\t\ndata: b\n\n", [E(data="a\nb")]),
    ("event-no-colon-resets", b"event: foo\nevent\ndata: x\n\n", [E(data="x")]),
    (
        "id-no-colon-resets",
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b")],
    ),
    # --- R9: names are literal
    ("Data-capital", b"Data: x\n\n", []),
    ("DATA-upper", b"DATA: x\n\n", []),
    ("space-before-name", b" data: x\n\n", []),
    ("space-before-colon", b"data : x\n\n", []),
    ("tab-before-colon", b"data\t: x\n\n", []),
    ("nul-in-name", b"data\x00: x\n\n", []),
    ("dash-in-name", b"da-ta: x\n\n", []),
    ("Event-capital-ignored", b"Event: foo\ndata: x\n\n", [E(data="x")]),
    ("ID-capital-ignored", b"ID: 5\ndata: x\n\n", [E(data="x")]),
    ("unknown-field-does-not-reset", b"id: 1\nevent: t\nfoo\ndata: x\n\n", [E("t", "x", "1")]),
    # --- R10: event
    ("event-type", b"event: foo\ndata: x\n\n", [E(event="foo", data="x")]),
    ("event-last-wins", b"event: a\nevent: b\ndata: x\n\n", [E(event="b", data="x")]),
    ("empty-event-resets", b"event: a\nevent:\ndata: x\n\n", [E(data="x")]),
    ("event-after-data", b"data: x\nevent: late\n\n", [E(event="late", data="x")]),
    ("event-not-persistent", b"event: a\ndata: 1\n\ndata: 2\n\n", [E("a", "1"), E(data="2")]),
    ("event-message-explicit", b"event: message\ndata: x\n\n", [E(data="x")]),
    # --- R11: data
    ("multi-line", b"data: a\ndata: b\ndata: c\n\n", [E(data="a\nb\nc")]),
    ("empty-data", b"data:\n\n", [E(data="")]),
    ("empty-data-twice", b"data:\ndata:\n\n", [E(data="\n")]),
    ("one-trailing-lf-removed", b"data: a\ndata:\ndata:\n\n", [E(data="a\n\n")]),
    ("data-starting-empty", b"data:\ndata: a\n\n", [E(data="\na")]),
    # --- R12: id
    ("id-on-event", b"id: 1\ndata: x\n\n", [E(data="x", id="1")]),
    ("id-after-data", b"data: x\nid: 5\n\n", [E(data="x", id="5")]),
    ("id-persists", b"id: 1\ndata: a\n\ndata: b\n\n", [E(data="a", id="1"), E(data="b", id="1")]),
    ("id-last-wins", b"id: 1\nid: 2\ndata: a\n\n", [E(data="a", id="2")]),
    ("id-empty-resets", b"id: 1\ndata: a\n\nid:\ndata: b\n\n", [E(data="a", id="1"), E(data="b")]),
    (
        "id-with-nul-ignored",
        b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="1")],
    ),
    ("id-only-nul-ignored", b"id: \x00\ndata: a\n\n", [E(data="a")]),
    ("id-only-block-then-event", b"id: 1\n\ndata: a\n\n", [E(data="a", id="1")]),
    ("id-two-spaces", b"id:  7\ndata: a\n\n", [E(data="a", id=" 7")]),
    ("id-unicode", "id: ☃\ndata: a\n\n".encode(), [E(data="a", id="☃")]),
    (
        "id-changes",
        b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="2")],
    ),
    # --- R13: retry (events keep their own block's retry)
    ("retry-on-event", b"retry: 5\ndata: x\n\n", [E(data="x", retry=5)]),
    (
        "retry-not-persistent-on-events",
        b"retry: 5\ndata: x\n\ndata: y\n\n",
        [E(data="x", retry=5), E(data="y")],
    ),
    ("retry-only-block-not-carried", b"retry: 5\n\ndata: y\n\n", [E(data="y")]),
    ("retry-leading-zeros", b"retry: 02000\ndata: x\n\n", [E(data="x", retry=2000)]),
    ("retry-zero", b"retry: 0\ndata: x\n\n", [E(data="x", retry=0)]),
    ("retry-no-space", b"retry:7\ndata: x\n\n", [E(data="x", retry=7)]),
    ("retry-negative", b"retry: -1\ndata: x\n\n", [E(data="x")]),
    ("retry-plus", b"retry: +10\ndata: x\n\n", [E(data="x")]),
    ("retry-two-spaces", b"retry:  100\ndata: x\n\n", [E(data="x")]),
    ("retry-trailing-space", b"retry: 100 \ndata: x\n\n", [E(data="x")]),
    ("retry-underscore", b"retry: 1_000\ndata: x\n\n", [E(data="x")]),
    ("retry-float", b"retry: 1.5\ndata: x\n\n", [E(data="x")]),
    ("retry-exponent", b"retry: 1e3\ndata: x\n\n", [E(data="x")]),
    ("retry-arabic-indic", "retry: ١٢\ndata: x\n\n".encode(), [E(data="x")]),
    ("retry-fullwidth", "retry: １２\ndata: x\n\n".encode(), [E(data="x")]),
    ("retry-superscript", "retry: ²\ndata: x\n\n".encode(), [E(data="x")]),
    ("retry-empty", b"retry:\ndata: x\n\n", [E(data="x")]),
    ("retry-no-colon", b"retry\ndata: x\n\n", [E(data="x")]),
    ("retry-hex", b"retry: 0x10\ndata: x\n\n", [E(data="x")]),
    ("retry-tab", b"retry:\t10\ndata: x\n\n", [E(data="x")]),
    ("retry-valid-then-invalid", b"retry: 5\nretry: x\ndata: x\n\n", [E(data="x", retry=5)]),
    ("retry-last-valid-wins", b"retry: 5\nretry: 6\ndata: x\n\n", [E(data="x", retry=6)]),
    (
        "retry-huge",
        b"retry: 123456789012345678901234567890\ndata: x\n\n",
        [E(data="x", retry=123456789012345678901234567890)],
    ),
    # --- R15: end of stream
    ("unterminated-final-line", b"data: x", []),
    ("unterminated-final-event", b"data: x\n", []),
    ("unterminated-after-events", b"data: a\n\ndata: b\n", [E(data="a")]),
    ("unterminated-cr", b"data: x\r", []),
    ("unterminated-crlf", b"data: x\r\n", []),
    ("lf-cr-ending", b"data: a\n\ndata: x\n\r", [E(data="a"), E(data="x")]),
    ("cr-cr-ending", b"data: x\r\r", [E(data="x")]),
    # --- composite, realistic
    (
        "openai-like",
        b'data: {"x":1}\n\ndata: {"x":2}\n\n: keep-alive\n\ndata: [DONE]\n\n',
        [E(data='{"x":1}'), E(data='{"x":2}'), E(data="[DONE]")],
    ),
    (
        "anthropic-like",
        b'event: message_start\ndata: {}\n\nevent: ping\ndata: {"type": "ping"}\n\n',
        [E("message_start", "{}"), E("ping", '{"type": "ping"}')],
    ),
    (
        "resumable",
        b"retry: 3000\nid: a1\nevent: e\ndata: one\n\nid: a2\ndata: two\n\n: hb\n\ndata: three\n\n",
        [E("e", "one", "a1", 3000), E("message", "two", "a2"), E("message", "three", "a2")],
    ),
]

_names = [c[0] for c in CASES]
assert len(_names) == len(set(_names)), "duplicate case names"


@pytest.mark.parametrize(("name", "data", "expected"), CASES, ids=_names)
def test_case_whole(name: str, data: bytes, expected: list[ServerSentEvent]) -> None:
    events, _ = feed_whole(data)
    assert events == expected
    assert all(type(e) is ServerSentEvent for e in events)


@pytest.mark.parametrize(("name", "data", "expected"), CASES, ids=_names)
def test_case_bytewise(name: str, data: bytes, expected: list[ServerSentEvent]) -> None:
    whole, dwhole = feed_whole(data)
    events, dbytes = feed_bytewise(data)
    assert events == expected
    assert events == whole
    assert dbytes.last_event_id == dwhole.last_event_id
    assert dbytes.retry == dwhole.retry
    assert dbytes.comments == dwhole.comments


@pytest.mark.parametrize(("name", "data", "expected"), CASES, ids=_names)
def test_case_frames(name: str, data: bytes, expected: list[ServerSentEvent]) -> None:
    frames = frames_whole(data)
    assert [f for f in frames if isinstance(f, ServerSentEvent)] == expected
    assert all(type(f) in (ServerSentEvent, Comment) for f in frames)
    assert frames_bytewise(data) == frames


@pytest.mark.parametrize(("name", "data", "expected"), CASES, ids=_names)
def test_case_every_two_way_split(name: str, data: bytes, expected: list[ServerSentEvent]) -> None:
    _, whole = feed_whole(data)
    for i in range(len(data) + 1):
        events, dec = feed_chunks([data[:i], b"", data[i:]])
        where = f"split at {i}: {data[:i]!r} | {data[i:]!r}"
        assert events == expected, where
        assert (dec.last_event_id, dec.retry, dec.comments) == (
            whole.last_event_id,
            whole.retry,
            whole.comments,
        ), where


# --------------------------------------------------------------------------- decoder state
# (name, input, last_event_id after close, retry after close, comment count)

STATE_CASES: list[tuple[str, bytes, str, int | None, int]] = [
    ("fresh", b"", "", None, 0),
    ("id-set", b"id: 1\ndata: x\n\n", "1", None, 0),
    ("id-only-block-commits", b"id: 42\n\n", "42", None, 0),
    ("id-unterminated-not-committed", b"data: a\n\nid: 2\ndata: b\n", "", None, 0),
    ("id-unterminated-after-commit", b"id: 1\n\nid: 2\n", "1", None, 0),
    ("id-partial-line", b"id: 1\n\nid: 2", "1", None, 0),
    ("id-reset", b"id: 1\n\nid:\n\n", "", None, 0),
    ("id-nul-ignored", b"id: 1\n\nid: \x00\n\n", "1", None, 0),
    ("id-lf-cr-end", b"id: 9\n\r", "9", None, 0),
    ("id-only-block-then-partial-data", b"id: 1\n\ndata: ", "1", None, 0),
    ("id-only-block-then-partial-event", b"id: 1\n\n\ndata: x\n", "1", None, 0),
    ("id-only-block-crlf-then-partial", b"id: 1\r\n\r\ndata: x", "1", None, 0),
    ("retry-set", b"retry: 1500\n\n", "", 1500, 0),
    ("retry-leading-zero", b"retry: 02000\n\n", "", 2000, 0),
    ("retry-applies-without-dispatch", b"retry: 700\n", "", 700, 0),
    ("retry-last-wins", b"retry: 1\n\nretry: 2\n\n", "", 2, 0),
    ("retry-invalid-keeps-previous", b"retry: 10\n\nretry: -1\n\nretry: 1e3\n\n", "", 10, 0),
    ("retry-invalid-only", b"retry: +10\nretry:  100\nretry: 100 \nretry: 1_000\n\n", "", None, 0),
    ("retry-arabic", "retry: ١٢\n\n".encode(), "", None, 0),
    ("retry-fullwidth", "retry: １２\n\n".encode(), "", None, 0),
    ("retry-superscript", "retry: ²\n\n".encode(), "", None, 0),
    ("comments-counted", b":\n: ping\n:x\n\n", "", None, 3),
    ("comments-inside-event", b"data: a\n: ping\ndata: b\n\n: ping\n\n", "", None, 2),
    ("comment-cr", b":a\r:b\r\n:c\n", "", None, 3),
    ("not-comments", b" :x\ndata::x\n\n", "", None, 0),
]


@pytest.mark.parametrize(
    ("name", "data", "last_id", "retry", "comments"), STATE_CASES, ids=[c[0] for c in STATE_CASES]
)
def test_state(name: str, data: bytes, last_id: str, retry: int | None, comments: int) -> None:
    for events_dec in (feed_whole(data)[1], feed_bytewise(data)[1]):
        assert events_dec.last_event_id == last_id
        assert events_dec.retry == retry
        assert events_dec.comments == comments


@pytest.mark.parametrize(
    ("name", "data", "last_id", "retry", "comments"), STATE_CASES, ids=[c[0] for c in STATE_CASES]
)
def test_state_every_two_way_split(
    name: str, data: bytes, last_id: str, retry: int | None, comments: int
) -> None:
    for i in range(len(data) + 1):
        _, dec = feed_chunks([data[:i], data[i:]])
        got = (dec.last_event_id, dec.retry, dec.comments)
        assert got == (last_id, retry, comments), f"split at {i}: {data[:i]!r} | {data[i:]!r}"


@pytest.mark.parametrize(
    "chunks",
    [
        [b"id: 1\n", b"\ndata: "],
        [b"id: 1\n", b"\n\ndata: x"],
        [b"id: 1\r", b"\n\ndata: "],
        [b"id: 1\n", b"\ndata: x\n"],
    ],
    ids=["lf", "two-blank-lines", "split-crlf", "complete-line"],
)
def test_id_only_block_committed_when_its_blank_line_starts_a_chunk(chunks: list[bytes]) -> None:
    # 1.6 step 1: the blank line that ends the `id: 1` block commits the id, even though no
    # event fires and the next event never completes.
    dec = SSEDecoder()
    for chunk in chunks:
        assert dec.feed(chunk) == []
    assert dec.last_event_id == "1"
    assert dec.close() == []
    assert dec.last_event_id == "1"


def test_last_event_id_committed_at_blank_line_not_before() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"id: 1\n") == []
    assert dec.last_event_id == ""
    assert dec.feed(b"\n") == []
    assert dec.last_event_id == "1"
    assert dec.feed(b"id: 2\ndata: x\n") == []
    assert dec.last_event_id == "1"
    assert dec.feed(b"\n") == [E(data="x", id="2")]
    assert dec.last_event_id == "2"
    assert dec.close() == []
    assert dec.last_event_id == "2"


def test_retry_updates_at_line() -> None:
    dec = SSEDecoder()
    assert dec.retry is None
    assert dec.feed(b"retry: 250\n") == []
    assert dec.retry == 250
    assert dec.feed(b"data: x\n\n") == [E(data="x", retry=250)]
    assert dec.feed(b"retry: nope\ndata: y\n\n") == [E(data="y")]
    assert dec.retry == 250


# --------------------------------------------------------------------------- chunking (R2, R4)


def test_cr_at_chunk_end_dispatches_immediately() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: x\r") == []
    assert dec.feed(b"\r") == [E(data="x")]


def test_cr_blank_line_in_same_chunk_is_delivered_by_that_feed() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: x\n\r") == [E(data="x")]
    # the LF that follows is swallowed (it is the second half of a CRLF) ...
    assert dec.feed(b"\n") == []
    # ... so this is one event "y", not an extra blank line first
    assert dec.feed(b"data: y\r\n\r\n") == [E(data="y")]


def test_cr_only_server_not_delayed() -> None:
    dec = SSEDecoder()
    got = []
    for i in range(5):
        got.append(dec.feed(f"data: {i}\r\r".encode()))
    assert got == [[E(data=str(i))] for i in range(5)]


def test_split_crlf_swallows_lf() -> None:
    # "data: a" CR | LF "data: b" LF LF  ==  data: a CRLF data: b LF LF  -> one event "a\nb"
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\ndata: b\n\n") == [E(data="a\nb")]


def test_split_crlf_blank_line() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r\n\r") == [E(data="a")]
    assert dec.feed(b"\ndata: b\r") == []
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\r\n") == [E(data="b")]


@pytest.mark.parametrize("n_empty", [1, 2, 5])
def test_empty_chunks_between_cr_and_lf(n_empty: int) -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    for _ in range(n_empty):
        assert dec.feed(b"") == []
    assert dec.feed(b"\ndata: b\n\n") == [E(data="a\nb")]


def test_empty_chunks_between_cr_and_lf_frames() -> None:
    dec = SSEDecoder()
    assert dec.feed_frames(b"data: a\r") == []
    assert dec.feed_frames(b"") == []
    assert dec.feed_frames(b"\n:c\r") == [Comment("c")]
    assert dec.feed_frames(b"") == []
    assert dec.feed_frames(b"\n\n") == [E(data="a")]


def test_lf_swallow_only_once() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\n") == []
    # a second LF is a real blank line
    assert dec.feed(b"\n") == [E(data="a")]


def test_swallow_flag_cleared_by_other_char() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"x\n") == []  # unknown field "x"
    assert dec.feed(b"\n") == [E(data="a")]


def test_swallow_flag_cleared_by_multibyte_char_split_over_chunks() -> None:
    # After the CR, the next decoded text is "é": the pending LF-swallow must be dropped,
    # even though the first chunk after the CR decodes to nothing.
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\xc3") == []
    assert dec.feed(b"\xa9") == []
    assert dec.feed(b"\n") == []  # ends the unknown-field line "é"
    assert dec.feed(b"\n") == [E(data="a")]


def test_swallow_flag_survives_chunk_decoding_to_nothing_then_invalid() -> None:
    # CR | first byte of a 2-byte char | LF: the \xc3 becomes U+FFFD (an unknown-field line)
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\xc3") == []
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\n") == [E(data="a")]


def test_feed_empty_is_not_end_of_stream() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: x\n") == []
    assert dec.feed(b"") == []
    assert dec.feed(b"") == []
    assert dec.feed(b"\n") == [E(data="x")]
    assert dec.close() == []


def test_events_returned_as_soon_as_blank_line_arrives() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\ndata: b\n") == [E(data="a")]
    assert dec.feed(b"\ndata: c") == [E(data="b")]
    assert dec.feed(b"\n\n") == [E(data="c")]
    assert dec.close() == []


@pytest.mark.parametrize(
    "text",
    ["é", "€", "😀", "中", "aé€😀b", "\u2028", "\u0085", "\ufeff"],
)
def test_multibyte_split_at_every_byte(text: str) -> None:
    raw = f"data: {text}\nid: {text}\nevent: {text}\n\n".encode()
    expected = [E(event=text, data=text, id=text)]
    for i in range(len(raw) + 1):
        for j in range(i, len(raw) + 1):
            events, dec = feed_chunks([raw[:i], raw[i:j], raw[j:]])
            assert events == expected, (i, j)
            assert dec.last_event_id == text


def test_multibyte_fed_one_byte_at_a_time_with_empty_chunks() -> None:
    raw = "data: 😀€é\n\n".encode()
    chunks: list[bytes] = []
    for i in range(len(raw)):
        chunks += [raw[i : i + 1], b""]
    assert feed_chunks(chunks)[0] == [E(data="😀€é")]


# --------------------------------------------------------------------------- BOM (R1)


@pytest.mark.parametrize(
    "chunks",
    [
        [BOM + b"data: x\n\n"],
        [BOM, b"data: x\n\n"],
        [BOM[:1], BOM[1:] + b"data: x\n\n"],
        [BOM[:2], BOM[2:] + b"data: x\n\n"],
        [BOM[:1], BOM[1:2], BOM[2:], b"data: x\n\n"],
        [b"", BOM[:1], b"", BOM[1:2], b"", BOM[2:], b"", b"data: x\n\n"],
    ],
    ids=["whole", "bom-alone", "split-1-2", "split-2-1", "split-1-1-1", "with-empty-chunks"],
)
def test_bom_stripped_however_split(chunks: list[bytes]) -> None:
    events, _ = feed_chunks(chunks)
    assert events == [E(data="x")]


@pytest.mark.parametrize(
    "chunks",
    [
        [BOM + BOM + b"data: x\n\ndata: y\n\n"],
        [BOM[:2], BOM[2:] + BOM[:1], BOM[1:] + b"data: x\n\ndata: y\n\n"],
        [BOM, BOM, b"data: x\n\ndata: y\n\n"],
    ],
    ids=["whole", "split", "bom-chunks"],
)
def test_second_bom_is_an_ordinary_char(chunks: list[bytes]) -> None:
    events, _ = feed_chunks(chunks)
    assert events == [E(data="y")]


def test_bom_after_first_chunk_is_not_stripped() -> None:
    events, _ = feed_chunks([b"data: a\n\n", BOM + b"data: x\n\n", b"data: y\n\n"])
    assert events == [E(data="a"), E(data="y")]


def test_bom_in_data_split() -> None:
    events, _ = feed_chunks([b"data: ", BOM[:1], BOM[1:], b"\n\n"])
    assert events == [E(data="\ufeff")]


# --------------------------------------------------------------------------- comments / frames


def test_feed_frames_reports_comments_in_order() -> None:
    dec = SSEDecoder()
    frames = dec.feed_frames(b": ping\n:\ndata: x\n:  two\n:tab\n\n:after\n")
    assert frames == [
        Comment("ping"),
        Comment(""),
        Comment(" two"),
        Comment("tab"),
        E(data="x"),
        Comment("after"),
    ]
    assert dec.comments == 5
    assert dec.close() == []


def test_feed_frames_comment_with_leading_tab_kept() -> None:
    dec = SSEDecoder()
    assert dec.feed_frames(b":\tx\n") == [Comment("\tx")]


def test_feed_frames_interleaving() -> None:
    dec = SSEDecoder()
    frames = dec.feed_frames(b"data: a\n\n: hb\ndata: b\n\n: hb2\n")
    assert frames == [E(data="a"), Comment("hb"), E(data="b"), Comment("hb2")]


def test_feed_drops_comments_but_counts_them() -> None:
    dec = SSEDecoder()
    assert dec.feed(b": ping\n: ping\n\n") == []
    assert dec.comments == 2
    assert dec.feed(b":\n") == []
    assert dec.comments == 3


def test_mixing_feed_and_feed_frames() -> None:
    dec = SSEDecoder()
    assert dec.feed(b": a\ndata: 1\n") == []
    assert dec.feed_frames(b": b\n\n") == [Comment("b"), E(data="1")]
    assert dec.feed(b": c\ndata: 2\n\n") == [E(data="2")]
    assert dec.feed_frames(b"data: 3\r") == []
    assert dec.feed(b"\n\n") == [E(data="3")]
    assert dec.comments == 3


def test_comment_partial_line_not_reported_until_complete() -> None:
    dec = SSEDecoder()
    assert dec.feed_frames(b": pi") == []
    assert dec.feed_frames(b"ng") == []
    assert dec.feed_frames(b"\r") == [Comment("ping")]
    assert dec.feed_frames(b"\n") == []
    assert dec.comments == 1


def test_comment_multibyte() -> None:
    dec = SSEDecoder()
    raw = ": ☃ é\n".encode()
    out: list[object] = []
    for i in range(len(raw)):
        out.extend(dec.feed_frames(raw[i : i + 1]))
    assert out == [Comment("☃ é")]


# --------------------------------------------------------------------------- reconnect id


def test_constructor_last_event_id_used_for_events_without_id() -> None:
    dec = SSEDecoder(last_event_id="42")
    assert dec.last_event_id == "42"
    assert dec.feed(b"data: a\n\n") == [E(data="a", id="42")]
    assert dec.last_event_id == "42"
    events = dec.feed(b"id: 43\ndata: b\n\ndata: c\n\n")
    assert events == [E(data="b", id="43"), E(data="c", id="43")]
    assert dec.last_event_id == "43"


def test_constructor_last_event_id_reset_by_empty_id() -> None:
    dec = SSEDecoder(last_event_id="42")
    assert dec.feed(b"id:\ndata: a\n\n") == [E(data="a")]
    assert dec.last_event_id == ""


def test_constructor_last_event_id_survives_unterminated_block() -> None:
    dec = SSEDecoder(last_event_id="42")
    assert dec.feed(b"id: 99\ndata: a\n") == []
    assert dec.close() == []
    assert dec.last_event_id == "42"


def test_constructor_last_event_id_nul_id_ignored() -> None:
    dec = SSEDecoder(last_event_id="42")
    assert dec.feed(b"id: a\x00\ndata: a\n\n") == [E(data="a", id="42")]


def test_constructor_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        SSEDecoder(100)  # type: ignore[misc]
    with pytest.raises(TypeError):
        SSEDecoder(None, "x")  # type: ignore[misc]


def test_reconnect_flow() -> None:
    first = SSEDecoder()
    assert first.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: partial") == [
        E(data="a", id="1"),
        E(data="b", id="2"),
    ]
    assert first.close() == []
    assert first.last_event_id == "2"
    second = SSEDecoder(last_event_id=first.last_event_id)
    assert second.feed(b"data: c\n\n") == [E(data="c", id="2")]


# --------------------------------------------------------------------------- close (R15)


def test_close_discards_unterminated_event() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\ndata: b\nid: 5\nevent: e\n") == [E(data="a")]
    assert dec.close() == []
    assert dec.last_event_id == ""


def test_close_after_clean_end() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\n") == [E(data="a")]
    assert dec.close() == []


def test_close_on_fresh_decoder() -> None:
    dec = SSEDecoder()
    assert dec.close() == []
    assert dec.last_event_id == ""
    assert dec.retry is None
    assert dec.comments == 0


def test_close_with_truncated_multibyte_tail() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: a\n\ndata: \xe2\x82") == [E(data="a")]
    assert dec.close() == []


def test_lf_cr_ending_dispatches_at_the_cr() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"id: 1\ndata: x\n\r") == [E(data="x", id="1")]
    assert dec.close() == []
    assert dec.last_event_id == "1"


# --------------------------------------------------------------------------- value types


def test_server_sent_event_defaults_and_equality() -> None:
    ev = ServerSentEvent()
    assert (ev.event, ev.data, ev.id, ev.retry) == ("message", "", "", None)
    assert ev == ServerSentEvent("message", "", "", None)
    assert ServerSentEvent(data="a") != ServerSentEvent(data="b")
    assert ServerSentEvent(data="a", id="1") != ServerSentEvent(data="a")
    assert ServerSentEvent(data="a", retry=1) != ServerSentEvent(data="a")
    assert ServerSentEvent(event="x", data="a") != ServerSentEvent(data="a")


def test_server_sent_event_is_frozen_and_slotted() -> None:
    ev = ServerSentEvent(data="x")
    with pytest.raises(AttributeError):
        ev.data = "y"  # type: ignore[misc]
    assert not hasattr(ev, "__dict__")
    assert dataclasses.is_dataclass(ev) or hasattr(type(ev), "__slots__")


def test_comment_value() -> None:
    c = Comment("ping")
    assert c.text == "ping"
    assert c == Comment("ping")
    assert c != Comment("pong")
    assert c != ServerSentEvent(data="ping")


def test_event_field_types() -> None:
    events, _ = feed_whole(b"retry: 10\nid: 1\nevent: e\ndata: d\n\n")
    (ev,) = events
    assert type(ev.event) is str
    assert type(ev.data) is str
    assert type(ev.id) is str
    assert type(ev.retry) is int
    assert ev.retry == 10


# --------------------------------------------------------------------------- max_event_bytes


def test_max_event_bytes_over_raises_with_earlier_events() -> None:
    dec = SSEDecoder(max_event_bytes=1000)
    chunk = b"data: a\n\ndata: b\n\ndata: " + b"x" * 5000 + b"\n\ndata: c\n\n"
    with pytest.raises(EventTooLarge) as info:
        dec.feed(chunk)
    err = info.value
    assert isinstance(err, DecodeError)
    assert err.limit == 1000
    assert err.size > 1000
    assert err.events == [E(data="a"), E(data="b")]


def test_max_event_bytes_events_only_from_same_feed_call() -> None:
    dec = SSEDecoder(max_event_bytes=100)
    assert dec.feed(b"data: a\n\n") == [E(data="a")]
    with pytest.raises(EventTooLarge) as info:
        dec.feed(b"data: b\n\ndata: " + b"y" * 500 + b"\n\n")
    assert info.value.events == [E(data="b")]
    assert info.value.limit == 100


def test_max_event_bytes_under_limit_fine() -> None:
    dec = SSEDecoder(max_event_bytes=100)
    chunk = b"".join(b"id: %d\ndata: %s\n\n" % (i, b"z" * 50) for i in range(200))
    events = dec.feed(chunk)
    assert len(events) == 200
    assert events[0] == E(data="z" * 50, id="0")
    assert events[-1] == E(data="z" * 50, id="199")
    assert dec.close() == []


def test_max_event_bytes_under_limit_bytewise() -> None:
    dec = SSEDecoder(max_event_bytes=64)
    raw = b"data: 0123456789\n: " + b"c" * 20 + b"\n\n"
    events: list[ServerSentEvent] = []
    for _ in range(50):
        for i in range(len(raw)):
            events.extend(dec.feed(raw[i : i + 1]))
    assert events == [E(data="0123456789")] * 50


def test_max_event_bytes_many_small_lines_add_up() -> None:
    dec = SSEDecoder(max_event_bytes=1000)
    block = b"".join(b"data: " + b"q" * 50 + b"\n" for _ in range(100))  # no blank line
    with pytest.raises(EventTooLarge) as info:
        dec.feed(block + b"\n")
    assert info.value.limit == 1000
    assert info.value.size > 1000
    assert info.value.events == []


def test_max_event_bytes_many_small_lines_split_feeds() -> None:
    dec = SSEDecoder(max_event_bytes=1000)
    with pytest.raises(EventTooLarge) as info:
        for _ in range(100):
            assert dec.feed(b"data: " + b"q" * 50 + b"\n") == []
    assert info.value.limit == 1000


def test_max_event_bytes_endless_line_without_newline() -> None:
    dec = SSEDecoder(max_event_bytes=4096)
    fed = 0
    with pytest.raises(EventTooLarge) as info:
        assert dec.feed(b"data: ") == []
        for _ in range(100):
            fed += 512
            assert dec.feed(b"w" * 512) == []
    assert fed <= 4096 + 1024, f"raised only after {fed} bytes"
    assert info.value.limit == 4096
    assert info.value.size > 4096


@pytest.mark.parametrize("size", [1, 10, 100])
def test_max_event_bytes_boundary_same_for_every_chunking(size: int) -> None:
    # The limit is the size of the event's data; exactly the limit passes and one byte more
    # fails, whether the event arrives whole, split before its blank line, or byte by byte.
    ok = b"data: " + b"d" * size + b"\n\n"
    over = b"data: " + b"d" * (size + 1) + b"\n\n"
    for chunks in ([ok], [ok[:-1], ok[-1:]], [ok[i : i + 1] for i in range(len(ok))]):
        events, _ = feed_chunks(chunks, max_event_bytes=size)
        assert events == [E(data="d" * size)], chunks
    for chunks in ([over], [over[:-1], over[-1:]], [over[i : i + 1] for i in range(len(over))]):
        with pytest.raises(EventTooLarge) as info:
            feed_chunks(chunks, max_event_bytes=size)
        assert info.value.limit == size
        assert info.value.size > size


def test_max_event_bytes_counts_utf8_bytes_and_joining_lfs() -> None:
    # "€" is 3 bytes: data "€€\n€" is 3 + 3 + 1 + 3 = 10 bytes
    raw = "event: e\ndata: €€\ndata: €\n\n".encode()
    assert feed_whole(raw, max_event_bytes=10)[0] == [E("e", "€€\n€")]
    assert feed_bytewise(raw, max_event_bytes=10)[0] == [E("e", "€€\n€")]
    with pytest.raises(EventTooLarge):
        feed_whole(raw, max_event_bytes=9)
    with pytest.raises(EventTooLarge):
        feed_bytewise(raw, max_event_bytes=9)


def test_max_event_bytes_feed_frames_keeps_earlier_events() -> None:
    dec = SSEDecoder(max_event_bytes=50)
    with pytest.raises(EventTooLarge) as info:
        dec.feed_frames(b": hb\ndata: a\n\n: hb\ndata: " + b"x" * 200 + b"\n\n")
    assert [e for e in info.value.events if isinstance(e, ServerSentEvent)] == [E(data="a")]


def test_max_event_bytes_none_is_unbounded() -> None:
    dec = SSEDecoder(max_event_bytes=None)
    payload = b"m" * 300_000
    assert dec.feed(b"data: " + payload + b"\n\n") == [E(data=payload.decode())]


# --------------------------------------------------------------------------- big inputs


def test_big_line_4mib_in_1kib_chunks() -> None:
    unit = "0123456789abcdef€é😀"  # 25 bytes: 1/2/3/4-byte chars, so chunk edges split chars
    text = unit * (4 * 1024 * 1024 // len(unit.encode()) + 1)
    raw = b"data: " + text.encode() + b"\n\n"
    assert len(raw) > 4 * 1024 * 1024
    dec = SSEDecoder()
    events: list[ServerSentEvent] = []
    n_chunks = 0
    for i in range(0, len(raw), 1024):
        got = dec.feed(raw[i : i + 1024])
        n_chunks += 1
        if i + 1024 < len(raw):
            assert got == []
        events.extend(got)
    assert n_chunks > 4000
    assert len(events) == 1
    assert events[0].event == "message"
    assert len(events[0].data) == len(text)
    assert events[0].data == text
    assert dec.close() == []


def test_big_multiline_event_in_small_chunks() -> None:
    lines = [f"line {i} ✓" for i in range(20_000)]
    raw = "".join(f"data: {s}\r\n" for s in lines).encode() + b"\r\n"
    dec = SSEDecoder()
    events: list[ServerSentEvent] = []
    for i in range(0, len(raw), 37):
        events.extend(dec.feed(raw[i : i + 37]))
    assert events == [E(data="\n".join(lines))]


def test_2000_events_in_one_chunk() -> None:
    raw = b"".join(b"id: %d\nevent: e%d\ndata: payload %d\n\n" % (i, i % 3, i) for i in range(2000))
    dec = SSEDecoder()
    events = dec.feed(raw)
    assert len(events) == 2000
    assert events == [E(f"e{i % 3}", f"payload {i}", str(i)) for i in range(2000)]
    assert dec.last_event_id == "1999"
    assert dec.close() == []


def test_many_comments_heartbeats() -> None:
    dec = SSEDecoder()
    for _ in range(5000):
        assert dec.feed(b": ping\n\n") == []
    assert dec.comments == 5000
    assert dec.feed(b"data: x\n\n") == [E(data="x")]


def test_long_junk_line_then_event() -> None:
    dec = SSEDecoder()
    for _ in range(1000):
        assert dec.feed(b"junkjunk" * 128) == []
    assert dec.feed(b"\ndata: ok\n\n") == [E(data="ok")]
