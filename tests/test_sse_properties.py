"""Property and differential tests for the SSE decoder (rxgpt.sse).

``reference_decode`` below is a deliberately simple, slow, whole-input implementation of the
WHATWG HTML §9.2.6 algorithm (decode everything, split into lines, run the per-line rules).
The real, incremental decoder must agree with it on every input and under every chunking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxgpt._errors import EventTooLarge
from rxgpt._sse import Comment, ServerSentEvent, SSEDecoder

BOM = b"\xef\xbb\xbf"
FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_FILES = sorted(
    [*FIXTURES.glob("recorded/**/*.sse"), *FIXTURES.glob("composed/*.sse")],
    key=lambda p: str(p),
)
FIXTURE_IDS = [str(p.relative_to(FIXTURES)) for p in FIXTURE_FILES]

# A passing run of this file takes seconds; a failing one may spend a minute shrinking.
pytestmark = pytest.mark.timeout(300)

COMMON = settings(
    deadline=None,
    database=None,  # do not write .hypothesis/ into the project tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- reference decoder


@dataclass
class Result:
    frames: list[ServerSentEvent | Comment] = field(default_factory=list)
    last_event_id: str = ""
    retry: int | None = None
    comments: int = 0

    @property
    def events(self) -> list[ServerSentEvent]:
        return [f for f in self.frames if isinstance(f, ServerSentEvent)]


_LINE_END = re.compile(r"\r\n|\r|\n")
_DIGITS = frozenset("0123456789")


def reference_decode(raw: bytes, last_event_id: str = "") -> Result:
    """WHATWG §9.2.6 over the whole input at once: obviously correct, not fast."""
    if raw.startswith(BOM):  # UTF-8 decode: strip one leading BOM
        raw = raw[3:]
    text = raw.decode("utf-8", errors="replace")
    lines = _LINE_END.split(text)
    lines.pop()  # whatever follows the last line end is an unfinished line: dropped at EOF

    res = Result(last_event_id=last_event_id)
    data = ""
    event_type = ""
    id_buffer = last_event_id
    block_retry: int | None = None
    for line in lines:
        if line == "":
            res.last_event_id = id_buffer
            if data == "":
                event_type = ""
                block_retry = None
                continue
            if data.endswith("\n"):
                data = data[:-1]
            res.frames.append(
                ServerSentEvent(
                    event=event_type or "message",
                    data=data,
                    id=res.last_event_id,
                    retry=block_retry,
                )
            )
            data = ""
            event_type = ""
            block_retry = None
        elif line.startswith(":"):
            res.comments += 1
            comment = line[1:]
            if comment.startswith(" "):
                comment = comment[1:]
            res.frames.append(Comment(comment))
        else:
            if ":" in line:
                name, value = line.split(":", 1)
                if value.startswith(" "):
                    value = value[1:]
            else:
                name, value = line, ""
            if name == "event":
                event_type = value
            elif name == "data":
                data += value + "\n"
            elif name == "id":
                if "\x00" not in value:
                    id_buffer = value
            elif name == "retry" and value and all(c in _DIGITS for c in value):
                res.retry = int(value)
                block_retry = res.retry
    return res


def test_reference_decoder_sanity() -> None:
    # the reference itself must be right, or the differential tests prove nothing
    r = reference_decode(
        BOM + b"id: 1\nevent: e\nretry: 05\ndata: a\ndata\n\n: hb\r\ndata: b\r\r"
        b"id: 2\n\ndata:  c\n\nretry: -1\nid: 3\ndata: lost"
    )
    assert r.frames == [
        ServerSentEvent("e", "a\n", "1", 5),
        Comment("hb"),
        ServerSentEvent("message", "b", "1", None),
        ServerSentEvent("message", " c", "2", None),
    ]
    assert (r.last_event_id, r.retry, r.comments) == ("2", 5, 1)
    assert reference_decode(b"data: x\n\r").events == [ServerSentEvent(data="x")]
    assert reference_decode(b"data: x\r\n").events == []
    assert reference_decode(BOM + BOM + b"data: x\n\n").events == []
    assert reference_decode(b"id: 9\n\n", "s").last_event_id == "9"
    assert reference_decode(b"data: q\n\n", "s").events == [ServerSentEvent(data="q", id="s")]


# --------------------------------------------------------------------------- running the decoder


def run(chunks: list[bytes], *, frames: bool = False, **kw: object) -> Result:
    dec = SSEDecoder(**kw)  # type: ignore[arg-type]
    out: list[ServerSentEvent | Comment] = []
    for chunk in chunks:
        out.extend(dec.feed_frames(chunk) if frames else dec.feed(chunk))
    out.extend(dec.close())
    # (the value types are NamedTuples, so == alone would also accept bare tuples)
    allowed = (ServerSentEvent, Comment) if frames else (ServerSentEvent,)
    assert all(type(f) in allowed for f in out), [type(f) for f in out]
    return Result(out, dec.last_event_id, dec.retry, dec.comments)


def split(raw: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted(min(p, len(raw)) for p in points)
    chunks, prev = [], 0
    for c in cuts:
        chunks.append(raw[prev:c])
        prev = c
    chunks.append(raw[prev:])
    return chunks


def check_incremental(chunks: list[bytes], *, frames: bool, last_event_id: str = "") -> None:
    """After every feed call the decoder must be exactly where the reference is on the bytes
    fed so far: same frames delivered (nothing held back, nothing early), same last event
    ID, retry and comment count. (A CR at the end of the prefix is a complete line end for
    both, so this holds at every cut.)"""
    dec = SSEDecoder(last_event_id=last_event_id)
    got: list[ServerSentEvent | Comment] = []
    fed = b""
    for i, chunk in enumerate(chunks):
        got.extend(dec.feed_frames(chunk) if frames else dec.feed(chunk))
        fed += chunk
        ref = reference_decode(fed, last_event_id)
        where = f"after chunk {i} of {chunks!r}"
        assert got == (ref.frames if frames else ref.events), where
        assert dec.last_event_id == ref.last_event_id, where
        assert dec.retry == ref.retry, where
        assert dec.comments == ref.comments, where


def check_all_ways(raw: bytes, chunks: list[bytes], last_event_id: str = "") -> Result:
    """Whole, chunked, frames (whole and chunked) and the reference must all agree."""
    assert b"".join(chunks) == raw
    expected = reference_decode(raw, last_event_id)
    whole = run([raw], last_event_id=last_event_id)
    chunked = run(chunks, last_event_id=last_event_id)
    whole_frames = run([raw], frames=True, last_event_id=last_event_id)
    chunked_frames = run(chunks, frames=True, last_event_id=last_event_id)

    assert chunked == whole, f"chunking changed the result: {chunks!r}"
    assert chunked_frames == whole_frames, f"chunking changed the frames: {chunks!r}"
    assert whole.frames == expected.events, "decoder disagrees with the reference (events)"
    assert whole_frames.frames == expected.frames, "decoder disagrees with the reference (frames)"
    for res in (whole, chunked, whole_frames, chunked_frames):
        assert res.last_event_id == expected.last_event_id
        assert res.retry == expected.retry
        assert res.comments == expected.comments
    return expected


# --------------------------------------------------------------------------- strategies

FIELD_NAMES = [
    "data", "data", "data", "data", "event", "id", "id", "retry", "retry",  # the real fields
    "Data", " data", "data ", "dat", "ID", "\ufeffdata", "foo", "", "é", "data\x00",
]  # fmt: skip
VALUE_CHARS = [
    "a", "b", "z", " ", "0", "1", "9", ":", "\t", "-", "+", ".", "_", "e",
    "\x00", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\ufeff", "é", "€", "😀", "١", "２", "²",
]  # fmt: skip
SPECIAL_VALUES = [
    "", " ", "  ", "[DONE]", "02000", "100", "0", "-1", "+10", " 100", "100 ", "1_000", "1.5",
    "1e3", "١٢", "x\x00y", '{"a": 1}',
]  # fmt: skip

values = st.one_of(
    st.text(alphabet=st.sampled_from(VALUE_CHARS), max_size=8),
    st.sampled_from(SPECIAL_VALUES),
    st.text(max_size=4).map(lambda s: s.replace("\r", "").replace("\n", "")),
)
retry_values = st.one_of(
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),  # valid (leading zeros included)
    values,
)
line_ends = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def sse_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["field", "field", "field", "bare", "comment", "blank", "blank"]))
    if kind == "blank":
        return ""
    if kind == "comment":
        return ":" + draw(values)
    name = draw(st.sampled_from(FIELD_NAMES))
    if kind == "bare":
        return name
    sep = draw(st.sampled_from([":", ": ", ":  "]))
    value = draw(retry_values if name == "retry" else values)
    return name + sep + value


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    prefix = draw(st.sampled_from([b"", b"", b"", BOM, BOM + BOM, BOM[:2]]))
    pieces: list[bytes] = [prefix]
    for _ in range(draw(st.integers(0, 25))):
        if draw(st.integers(0, 15)) == 0:  # occasional raw garbage (invalid UTF-8, stray CR)
            pieces.append(draw(st.binary(max_size=4)))
        else:
            pieces.append((draw(sse_line()) + draw(line_ends)).encode("utf-8", "surrogatepass"))
    if draw(st.booleans()):  # an unfinished final line
        pieces.append(draw(sse_line()).encode("utf-8", "surrogatepass"))
    return b"".join(pieces)


TOKENS = [
    b"data", b"data:", b"data: ", b":", b" ", b"id:", b"id", b"event:", b"retry:", b"1", b"x",
    b"\r", b"\n", b"\r\n", b"\n\n", b"\r\r", BOM, BOM[:1], BOM[1:], b"\xff", b"\xc3", b"\xa9",
    b"\xe2\x80\xa8", b"\x00", "é".encode(), "😀".encode()[:2], "😀".encode()[2:],
]  # fmt: skip
token_soup = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.sampled_from([b"data: ", b"\n", b"\r", b"id: 1"])),
    max_size=50,
).map(b"".join)


@st.composite
def chunkings(draw: st.DrawFn, raw: bytes) -> list[bytes]:
    """Any way of cutting ``raw`` into chunks, empty chunks included."""
    styles = ["random", "random", "random", "line-ends", "after-cr", "bytewise", "whole"]
    style = draw(st.sampled_from(styles))
    if style == "bytewise":
        return [raw[i : i + 1] for i in range(len(raw))]
    if style == "whole":
        return [raw]
    if style == "after-cr":  # every CR ends a chunk, then empty chunks: the split-CRLF cases
        n_empty = draw(st.integers(0, 2))
        chunks = []
        for piece in re.split(rb"(?<=\r)", raw):
            chunks += [piece] + [b""] * n_empty
        return chunks
    ends = [i + 1 for i, b in enumerate(raw) if b in b"\r\n"]
    if style == "line-ends" and ends:  # chunks that start exactly at a line boundary
        return split(raw, draw(st.lists(st.sampled_from(ends), max_size=10)))
    points = draw(st.lists(st.integers(0, len(raw)), max_size=min(30, len(raw) + 3)))
    return split(raw, points)


seeds = st.sampled_from(["", "", "seed", "7"])


# --------------------------------------------------------------------------- properties


@settings(COMMON, max_examples=400)
@given(raw=sse_streams(), data=st.data(), seed=seeds)
def test_sse_streams_any_chunking_matches_whole_and_reference(
    raw: bytes, data: st.DataObject, seed: str
) -> None:
    chunks = data.draw(chunkings(raw), label="chunks")
    check_all_ways(raw, chunks, seed)
    check_incremental(chunks, frames=data.draw(st.booleans(), label="frames"), last_event_id=seed)


@settings(COMMON, max_examples=300)
@given(raw=token_soup, data=st.data())
def test_token_soup_any_chunking_matches_whole_and_reference(
    raw: bytes, data: st.DataObject
) -> None:
    chunks = data.draw(chunkings(raw), label="chunks")
    check_all_ways(raw, chunks)
    check_incremental(chunks, frames=data.draw(st.booleans(), label="frames"))


@settings(COMMON, max_examples=300)
@given(raw=st.binary(max_size=300), data=st.data())
def test_random_bytes_never_raise_and_rechunk_identically(raw: bytes, data: st.DataObject) -> None:
    chunks = data.draw(chunkings(raw), label="chunks")
    check_all_ways(raw, chunks)


@settings(COMMON, max_examples=150)
@given(raw=sse_streams(), data=st.data())
def test_generous_max_event_bytes_changes_nothing(raw: bytes, data: st.DataObject) -> None:
    chunks = data.draw(chunkings(raw), label="chunks")
    limit = len(raw) * 4 + 8  # no line or event of this input can come near it
    assert run(chunks, max_event_bytes=limit) == run([raw])
    assert run(chunks, frames=True, max_event_bytes=limit) == run([raw], frames=True)


@settings(COMMON, max_examples=150)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["", "message", "delta", "ping"]),
            st.lists(st.text(max_size=10).map(lambda s: re.sub(r"[\r\n]", "", s)), max_size=3),
            st.one_of(st.none(), st.text(max_size=5).map(lambda s: re.sub(r"[\r\n\x00]", "", s))),
        ),
        max_size=8,
    ),
    eol=line_ends,
    data=st.data(),
)
def test_well_formed_streams_round_trip(
    events: list[tuple[str, list[str], str | None]], eol: str, data: st.DataObject
) -> None:
    """Serialise known events with one line-end style; decoding gives them back exactly."""
    text, expected, current_id = "", [], ""
    for etype, lines, ev_id in events:
        if etype:
            text += f"event: {etype}{eol}"
        if ev_id is not None:
            text += f"id: {ev_id}{eol}"
            current_id = ev_id
        for line in lines:
            text += f"data: {line}{eol}"
        text += eol
        if lines:
            expected.append(ServerSentEvent(etype or "message", "\n".join(lines), current_id))
    raw = text.encode()
    chunks = data.draw(chunkings(raw), label="chunks")
    result = run(chunks)
    assert result.frames == expected
    assert result.last_event_id == current_id


@settings(COMMON, max_examples=200)
@given(
    limit=st.integers(1, 40),
    blocks=st.lists(
        st.lists(st.text(alphabet=st.sampled_from("ab é€😀"), max_size=30), min_size=1, max_size=3),
        max_size=5,
    ),
    eol=line_ends,
    data=st.data(),
)
def test_max_event_bytes_is_chunking_independent(
    limit: int, blocks: list[list[str]], eol: str, data: st.DataObject
) -> None:
    """EventTooLarge fires iff some event's data (UTF-8, lines joined with LF) exceeds the
    limit, however the stream is chunked; every event before it is delivered exactly once."""
    raw = "".join("".join(f"data: {line}{eol}" for line in lines) + eol for lines in blocks)
    expected = [ServerSentEvent(data="\n".join(lines)) for lines in blocks]
    if expected and data.draw(st.booleans(), label="limit near an event size"):
        size = len(data.draw(st.sampled_from(expected)).data.encode())
        limit = max(1, size + data.draw(st.sampled_from([-1, 0, 1])))
    first_over = next((i for i, ev in enumerate(expected) if len(ev.data.encode()) > limit), None)
    chunks = data.draw(chunkings(raw.encode()), label="chunks")
    dec = SSEDecoder(max_event_bytes=limit)
    got: list[ServerSentEvent] = []
    try:
        for chunk in chunks:
            got.extend(dec.feed(chunk))
        got.extend(dec.close())
    except EventTooLarge as err:
        got.extend(err.events)
        assert first_over is not None, f"raised though no event exceeds {limit} bytes"
        assert err.limit == limit
        assert err.size > limit
        assert got == expected[:first_over]
    else:
        assert first_over is None, f"event {first_over} exceeds {limit} bytes but no error"
        assert got == expected


# --------------------------------------------------------------------------- fixtures


def _count_data_blocks(raw: bytes) -> int:
    """Independent, rough count: complete blocks (ended by a blank line) with a data line."""
    text = raw.decode("utf-8", "replace").removeprefix("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = text.split("\n\n")
    blocks.pop()  # after the last blank line: never dispatched
    return sum(
        any(line == "data" or line.startswith("data:") for line in block.split("\n"))
        for block in blocks
    )


def test_fixtures_exist() -> None:
    assert len(FIXTURE_FILES) >= 20
    assert any("recorded" in i for i in FIXTURE_IDS)
    assert any("composed" in i for i in FIXTURE_IDS)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=FIXTURE_IDS)
def test_fixture_whole_bytewise_reference(path: Path) -> None:
    raw = path.read_bytes()
    expected = check_all_ways(raw, [raw[i : i + 1] for i in range(len(raw))])
    n = len(expected.events)
    assert n > 0
    assert n == _count_data_blocks(raw)
    assert all(ev.data for ev in expected.events)  # every fixture event carries a payload


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=FIXTURE_IDS)
@settings(COMMON, max_examples=15)
@given(data=st.data())
def test_fixture_random_chunkings(path: Path, data: st.DataObject) -> None:
    raw = path.read_bytes()
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=60), label="points")
    chunks = split(raw, points)
    assert run(chunks) == run([raw])
    assert run(chunks, frames=True) == run([raw], frames=True)


@pytest.mark.parametrize(
    "path",
    [p for p in FIXTURE_FILES if "recorded/openai-chat" in p.as_posix()],
    ids=[i for i in FIXTURE_IDS if i.startswith("recorded/openai-chat")],
)
def test_openai_recordings_end_with_done(path: Path) -> None:
    raw = path.read_bytes()
    events = run([raw]).frames
    assert events[-1] == ServerSentEvent(data="[DONE]")
    assert all(ev.event == "message" and ev.id == "" and ev.retry is None for ev in events)
    assert len(events) == raw.count(b"\ndata: ") + 1  # LF-only, one data line per event


@pytest.mark.parametrize(
    "path",
    [p for p in FIXTURE_FILES if "recorded/anthropic-messages" in p.as_posix()],
    ids=[i for i in FIXTURE_IDS if i.startswith("recorded/anthropic-messages")],
)
def test_anthropic_recordings_unterminated_message_stop_is_dropped(path: Path) -> None:
    # These recordings end right after `data: {"type":"message_stop"}` with no line end:
    # by R15 that last block is never dispatched.
    raw = path.read_bytes()
    last_line = raw.rsplit(b"\n", 1)[1]
    assert re.fullmatch(rb'data: \{"type":"message_stop" *\}', last_line)
    events = run([raw]).frames
    assert events[0].event == "message_start"
    assert events[-1].event == "message_delta"
    assert "message_stop" not in [ev.event for ev in events]
    assert len(events) == raw.count(b"data:") - 1
    # with the missing blank line appended, message_stop arrives
    fixed = run([raw + b"\n\n"]).frames
    assert fixed[:-1] == events
    assert fixed[-1] == ServerSentEvent("message_stop", last_line[6:].decode())


def test_gemini_fixture_is_crlf_and_decodes() -> None:
    raw = (FIXTURES / "composed" / "gemini.sse").read_bytes()
    assert b"\r\n" in raw
    events = run([raw]).frames
    assert len(events) == raw.count(b"data:")
    assert all("\r" not in ev.data and ev.data.startswith("{") for ev in events)


def test_openrouter_comments_are_frames() -> None:
    raw = (FIXTURES / "composed" / "openrouter_chat.sse").read_bytes()
    res = run([raw], frames=True)
    comments = [f for f in res.frames if isinstance(f, Comment)]
    assert comments and all(c.text == "OPENROUTER PROCESSING" for c in comments)
    assert res.comments == len(comments) == raw.count(b"\n:") + raw.startswith(b":")
    assert res.frames[0] == Comment("OPENROUTER PROCESSING")
