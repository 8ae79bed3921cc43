"""Tests of rxgpt.partial_json: the incremental tolerant partial-JSON parser."""

from __future__ import annotations

import itertools
import json
import math
import pickle
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rxgpt._partial_json import PartialJSON, PartialJSONError, parse_partial

NOTHING: Any = object()  # the ``default`` passed to value(): "no value yet"
FIXTURES = Path(__file__).parent / "fixtures"


# ---------------------------------------------------------------- helpers


def same(a: Any, b: Any) -> bool:
    """Equality that also compares types (True != 1, 1 != 1.0) and the sign of zero."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def is_partial_of(partial: Any, full: Any) -> bool:
    """Whether ``partial`` is what a prefix of ``full``'s JSON text may parse to.

    Only the last entry of each container can be unfinished (it is where the text was cut),
    so: dict → its keys are the first keys of ``full``, in order, every value but the last
    one equal to ``full``'s and the last one partial-of; list → no longer than ``full``,
    every element but the last equal, the last partial-of; str → a prefix of ``full``;
    number → any number (a number in progress, ``12`` of ``12.5e3``, is its longest valid
    prefix); true/false/null → equal (they are left out until complete). ``NOTHING`` (no
    value yet) is a partial of anything.
    """
    if partial is NOTHING:
        return True
    if isinstance(full, dict):
        if not isinstance(partial, dict):
            return False
        keys = list(partial)
        if keys != list(full)[: len(keys)]:
            return False
        if not keys:
            return True
        return all(same(partial[k], full[k]) for k in keys[:-1]) and is_partial_of(
            partial[keys[-1]], full[keys[-1]]
        )
    if isinstance(full, list):
        if not isinstance(partial, list) or len(partial) > len(full):
            return False
        if not partial:
            return True
        return all(same(x, y) for x, y in zip(partial[:-1], full, strict=False)) and (
            is_partial_of(partial[-1], full[len(partial) - 1])
        )
    if isinstance(full, str):
        return isinstance(partial, str) and full.startswith(partial)
    if isinstance(full, int | float) and not isinstance(full, bool):
        return isinstance(partial, int | float) and not isinstance(partial, bool)
    return same(partial, full)


def feed_all(fragments: list[str], *, strict: bool = True) -> PartialJSON:
    parser = PartialJSON(strict=strict)
    for fragment in fragments:
        parser.feed(fragment)
    return parser


def split_at(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(cuts), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def all_chunkings(text: str, limit: int = 12) -> list[list[str]]:
    """Every way of cutting ``text`` into fragments (2**(len-1) of them) if it has at most
    ``limit`` characters; else every cut into 1, 2 or 3 pieces, 1-character fragments and
    random cuttings."""
    positions = range(1, len(text))
    if len(text) <= limit:
        return [
            split_at(text, list(cuts))
            for r in range(len(text))
            for cuts in itertools.combinations(positions, r)
        ]
    rnd = random.Random(text)
    return [
        *(
            split_at(text, list(cuts))
            for r in range(3)
            for cuts in itertools.combinations(positions, r)
        ),
        list(text),
        *(split_at(text, rnd.sample(positions, rnd.randrange(len(text)))) for _ in range(300)),
    ]


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_loads(text: str, *, strict: bool = True) -> Any:
    """json.loads without the NaN/Infinity extension (RFC 8259 exactly)."""
    return json.loads(text, parse_constant=reject_constant, strict=strict)


# ---------------------------------------------------------------- table-driven partial values

PARTIAL_CASES: list[tuple[str, Any]] = [
    ("", NOTHING),
    ("   \n\t", NOTHING),
    # objects
    ('{"a": 1, "b": "Pa', {"a": 1, "b": "Pa"}),
    ('{"a": 1, "ke', {"a": 1}),
    ('{"a": 1, "key"', {"a": 1}),
    ('{"a": 1, "key" ', {"a": 1}),
    ('{"a": 1, "b":', {"a": 1}),
    ('{"a": 1, "b": ', {"a": 1}),
    ('{"a": 1, "b": "', {"a": 1, "b": ""}),
    ('{"a": 1,', {"a": 1}),
    ("{", {}),
    ('{"', {}),
    ('{"a": 1}', {"a": 1}),
    ('{"a": 1}  \r\n', {"a": 1}),
    ('{"a": 1, "a": "x', {"a": "x"}),
    # arrays
    ("[", []),
    ("[1, 2, 3", [1, 2, 3]),
    ("[1, 2, 3,", [1, 2, 3]),
    ("[1, 2, 3, ", [1, 2, 3]),
    ('["a", "b', ["a", "b"]),
    ("[[", [[]]),
    ("[[], [1", [[], [1]]),
    # numbers
    ("0", 0),
    ("12", 12),
    ("12.", 12),
    ("12.5", 12.5),
    ("-", NOTHING),
    ("-1", -1),
    ("-0", 0),
    ("-0.", 0),
    ("-0.0", -0.0),
    ("1.5e", 1.5),
    ("1.5E-", 1.5),
    ("1.5e-3", 0.0015),
    ("1e", 1),
    ("1e+", 1),
    ("1e2", 100.0),
    ("[1.5e", [1.5]),
    ("[-", []),
    ('{"a": -', {}),
    ('{"a": 1.', {"a": 1}),
    ('{"n": 12', {"n": 12}),
    # literals
    ("t", NOTHING),
    ("tru", NOTHING),
    ("true", True),
    ("fals", NOTHING),
    ("false", False),
    ("nul", NOTHING),
    ("null", None),
    ("[tru", []),
    ("[true", [True]),
    ("[true, fa", [True]),
    ('{"a": nul', {}),
    ('{"a": null', {"a": None}),
    ('{"a": false, "b": t', {"a": False}),
    # strings and escapes
    ('"', ""),
    ('"Par', "Par"),
    ('"Paris"', "Paris"),
    ('"a\\', "a"),
    ('"a\\u', "a"),
    ('"a\\u00', "a"),
    ('"a\\u00e9', "aé"),
    ('"a\\n\\"\\\\\\/\\b\\f\\r\\t', 'a\n"\\/\b\f\r\t'),
    ('"a\\ud83d', "a"),
    ('"a\\ud83d\\', "a"),
    ('"a\\ud83d\\u', "a"),
    ('"a\\ud83d\\ude0', "a"),
    ('"a\\ud83d\\ude00', "a😀"),
    ('"a\\ud83dx', "a\ud83dx"),  # a lone surrogate, as json.loads keeps it
    ('"a\\ud83d\\n', "a\ud83d\n"),
    ('"a\\ud83d\\u0041', "a\ud83dA"),
    ('"a\\udc00', "a\udc00"),
    ('"héllo wörld 😀', "héllo wörld 😀"),
    ('["a\\ud83d', ["a"]),
    ('{"k\\u00e9y": "v\\u00e', {"kéy": "v"}),
    # nesting, closed implicitly
    ('{"a":[{"b":"x', {"a": [{"b": "x"}]}),
    ('{"a": {"b": [1, {"c": "d', {"a": {"b": [1, {"c": "d"}]}}),
    ('{"a": [', {"a": []}),
    ('{"a": {', {"a": {}}),
    ('{"a": {"', {"a": {}}),
    ('[{"', [{}]),
    ('[{"a": 1}, {"b": [true, null, "x"]}, {"c', [{"a": 1}, {"b": [True, None, "x"]}, {}]),
    # whitespace anywhere
    (' \n{ "a" :\t1 ,\r\n "b"\t:\r[ 2 , 3 ', {"a": 1, "b": [2, 3]}),
    ("[ 1 , 2 ] ", [1, 2]),
]


@pytest.mark.parametrize(("text", "expected"), PARTIAL_CASES)
def test_partial_value(text: str, expected: Any) -> None:
    assert same(parse_partial(text, NOTHING), expected)


@pytest.mark.parametrize(("text", "expected"), PARTIAL_CASES)
def test_partial_value_char_by_char(text: str, expected: Any) -> None:
    parser = feed_all(list(text))
    assert same(parser.value(NOTHING), expected)
    assert parser.text == text


def test_default_is_none() -> None:
    assert parse_partial("") is None
    assert parse_partial("tru") is None
    assert PartialJSON().value() is None
    assert PartialJSON().value(default={}) == {}


def test_streamed_tool_call_arguments() -> None:
    parser = PartialJSON()
    seen = []
    for fragment in ['{"ci', 'ty": "Par', 'is", "unit": "c"}']:
        parser.feed(fragment)
        seen.append(parser.value())
        assert parser.complete is (fragment.endswith("}"))
    assert seen == [{}, {"city": "Par"}, {"city": "Paris", "unit": "c"}]
    assert parser.text == '{"city": "Paris", "unit": "c"}'


def test_escape_split_across_fragments() -> None:
    parser = PartialJSON()
    parser.feed('"a\\')
    assert parser.value() == "a"
    parser.feed("u00")
    assert parser.value() == "a"
    parser.feed('e9"')
    assert parser.value() == "aé"
    assert parser.complete


def test_surrogate_pair_split_everywhere() -> None:
    text = '"\\ud83d\\ude00"'
    for fragments in all_chunkings(text, limit=len(text)):  # all 8192 of them
        parser = feed_all(fragments)
        assert parser.complete
        assert parser.value() == "😀"
    for fragments in all_chunkings('["x\\ud83d\\ude00y", "\\ud83d\\u0041\\udc00"]'):
        assert feed_all(fragments).value() == ["x😀y", "\ud83dA\udc00"]


def test_top_level_number_needs_an_end() -> None:
    parser = PartialJSON()
    parser.feed("12")
    assert not parser.complete
    assert parser.value() == 12
    parser.feed("3")
    assert parser.value() == 123
    assert parser.finish() == 123
    assert parser.complete
    parser.feed("  \n")  # whitespace may still follow
    with pytest.raises(PartialJSONError):
        parser.feed("4")

    parser = PartialJSON()
    parser.feed("-7.5 ")
    assert parser.complete
    assert parser.value() == -7.5


@pytest.mark.parametrize("text", ["", "  ", "{", '{"a": 1', '"abc', "tru", "-", "1.", "[1e"])
def test_finish_on_incomplete_text_raises(text: str) -> None:
    parser = PartialJSON()
    parser.feed(text)
    with pytest.raises(PartialJSONError) as info:
        parser.finish()
    assert info.value.position == len(text)


def test_complete_and_finish() -> None:
    parser = PartialJSON()
    parser.feed('{"a": [1, 2')
    assert not parser.complete
    parser.feed("]}")
    assert parser.complete
    assert parser.finish() == {"a": [1, 2]}
    assert parser.finish() == {"a": [1, 2]}  # idempotent


def test_empty_fragments_are_ignored() -> None:
    parser = PartialJSON()
    for fragment in ["", "[", "", "1", "", "]", ""]:
        parser.feed(fragment)
    assert parser.complete
    assert parser.value() == [1]
    assert parser.text == "[1]"


def test_lax_mode_allows_control_characters() -> None:
    text = '{"a": "line\nbreak\ttab\x00"}'
    with pytest.raises(PartialJSONError):
        parse_partial(text)
    assert parse_partial(text, strict=False) == {"a": "line\nbreak\ttab\x00"}
    for fragments in [list(text), [text[:9], text[9:]]]:
        parser = feed_all(fragments, strict=False)
        assert parser.value() == strict_loads(text, strict=False)


# ---------------------------------------------------------------- value() structure


def test_value_shares_completed_subtrees_and_copies_the_open_spine() -> None:
    parser = PartialJSON()
    parser.feed('{"done": {"x": [1, 2]}, "open": [1, {"y": "z"}, ')
    first = parser.value()
    second = parser.value()
    assert first == second == {"done": {"x": [1, 2]}, "open": [1, {"y": "z"}]}
    assert first is not second
    assert first["open"] is not second["open"]  # open containers: fresh copies
    assert first["done"] is second["done"]  # completed subtrees: shared, not copied
    assert first["open"][1] is second["open"][1]
    first["open"].append("mutated")
    first["new"] = 1
    assert parser.value() == second  # mutating a result does not touch the parser
    parser.feed("3]}")
    assert parser.value() == {"done": {"x": [1, 2]}, "open": [1, {"y": "z"}, 3]}
    assert parser.value()["done"] is first["done"]
    assert parser.value() is parser.value()  # complete: the parsed value itself


def test_error_is_sticky_and_value_survives() -> None:
    parser = PartialJSON()
    parser.feed('{"a": [1, 2')
    with pytest.raises(PartialJSONError) as info:
        parser.feed(", }")
    assert info.value.position == len('{"a": [1, 2, ')
    with pytest.raises(PartialJSONError) as again:
        parser.feed("3]}")
    assert again.value is info.value
    with pytest.raises(PartialJSONError):
        parser.finish()
    assert parser.value() == {"a": [1, 2]}


def test_error_type() -> None:
    with pytest.raises(ValueError, match=r"expected ':', found '1' at position 5") as info:
        parse_partial('{"a" 1}')
    error = info.value
    assert isinstance(error, PartialJSONError)
    assert (error.msg, error.position) == ("expected ':', found '1'", 5)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.position) == (PartialJSONError, str(error), 5)


# ---------------------------------------------------------------- invalid texts

INVALID_CASES: list[tuple[str, int]] = [  # text, position of the offending character
    ('{"a" 1}', 5),
    ("[1,,2]", 3),
    ("}", 0),
    ("]", 0),
    ('{"a":1}x', 7),
    ('{"a":1}}', 7),
    ("[1,]", 3),
    ('{"a":1,}', 7),
    ("{,}", 1),
    ("{1:2}", 1),
    ('{"a"}', 4),
    ("[1}", 2),
    ('{"a":1]', 6),
    ("[01]", 2),
    ("[-01]", 3),
    ("[1.]", 3),
    ("[1.e5]", 3),
    ("[.5]", 1),
    ("[1e]", 3),
    ("[1e+]", 4),
    ("[+1]", 1),
    ("[-]", 2),
    ("[1-2]", 2),
    ("[1.5.2]", 4),
    ('["\\x"]', 3),
    ('["\\u12g4"]', 6),
    ('["\\ud83d\\uzzzz"]', 10),
    ('["a\x01"]', 3),
    ("[nul]", 4),
    ("[tRue]", 2),
    ("[truex]", 5),
    ("NaN", 0),
    ("-Infinity", 1),
    ("[1 2]", 3),
    ('"a"b', 3),
    ("1 2", 2),
    ("'a'", 0),
    ("[1]\x00", 3),
]


@pytest.mark.parametrize(("text", "position"), INVALID_CASES)
def test_invalid_text_raises_for_every_chunking(text: str, position: int) -> None:
    with pytest.raises(ValueError):
        strict_loads(text)
    for fragments in all_chunkings(text):
        parser = PartialJSON()
        with pytest.raises(PartialJSONError) as info:
            for fragment in fragments:
                parser.feed(fragment)
        assert info.value.position == position, fragments
    with pytest.raises(PartialJSONError):
        parse_partial(text)


# ---------------------------------------------------------------- property tests

json_text = st.text(
    st.sampled_from('"\\/\b\f\n\r\t\x00\x1f\x7f aZé€\u2028😀') | st.characters(), max_size=12
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(json_text, children, max_size=5)
    ),
    max_leaves=25,
)
dumps_options = st.fixed_dictionaries(
    {
        "ensure_ascii": st.booleans(),
        "indent": st.sampled_from([None, 0, 2, "\t"]),
        "separators": st.sampled_from([None, (",", ":"), (" , ", " : ")]),
    }
)


def check_full_feed(text: str, fragments: list[str]) -> None:
    """Feeding ``fragments`` of ``text``: each value() equals the one-shot parse of the prefix
    so far, the end value equals json.loads, and nothing is scanned twice but carries."""
    expected = strict_loads(text)
    parser = PartialJSON()
    fed = 0
    feeds = 0
    for fragment in fragments:
        parser.feed(fragment)
        fed += len(fragment)
        feeds += bool(fragment)
        assert same(parser.value(NOTHING), parse_partial(text[:fed], NOTHING))
    top_level_number = isinstance(expected, int | float) and not isinstance(expected, bool)
    assert parser.complete or top_level_number
    assert same(parser.finish(), expected)
    assert parser.complete
    assert same(parser.value(), expected)
    assert parser.text == text
    assert len(text) <= parser.scanned <= len(text) + PartialJSON.MAX_CARRY * feeds


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, options=dumps_options, data=st.data())
def test_any_chunking_parses_to_json_loads(value: Any, options: dict[str, Any], data: Any) -> None:
    text = json.dumps(value, **options)
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=30), label="cuts")
    check_full_feed(text, split_at(text, cuts))


@settings(max_examples=60, deadline=None)
@given(value=json_values, ensure_ascii=st.booleans())
def test_one_character_fragments(value: Any, ensure_ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    check_full_feed(text, list(text))
    one_shot = PartialJSON()
    one_shot.feed(text)
    assert one_shot.scanned == len(text)  # each character examined once


@settings(max_examples=120, deadline=None)
@given(value=json_values, options=dumps_options)
def test_every_prefix_is_a_partial_of_the_value(value: Any, options: dict[str, Any]) -> None:
    text = json.dumps(value, **options)
    full = strict_loads(text)
    for end in range(len(text) + 1):
        partial = parse_partial(text[:end], NOTHING)
        assert is_partial_of(partial, full), (text[:end], partial)


@settings(max_examples=150, deadline=None)
@given(value=json_values, options=dumps_options)
def test_prefixes_agree_with_jiter(value: Any, options: dict[str, Any]) -> None:
    """Differential test against jiter's partial_mode="trailing-strings" (what openai-python
    uses), where it is defined the same way: the prefix does not end inside a number (jiter
    drops an unfinished number, ``12.``, where we keep its valid prefix, ``12``)."""
    jiter = pytest.importorskip("jiter")
    text = json.dumps(value, **options)
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        assume(False)  # a lone surrogate: jiter (Rust strings) cannot represent it
    for end in range(len(text) + 1):
        prefix = text[:end]
        if prefix and prefix[-1] in "0123456789-+.eE":
            continue
        ours = parse_partial(prefix, NOTHING)
        try:
            theirs = jiter.from_json(prefix.encode(), partial_mode="trailing-strings")
        except ValueError:  # nothing to show yet: empty, whitespace, "tru", ...
            assert ours is NOTHING, prefix
        else:
            assert same(ours, theirs), prefix


def _mutate(text: str, rnd: random.Random) -> str:
    pos = rnd.randrange(len(text) + 1)
    char = rnd.choice('{}[]",:0-1.eE+ tfnu\\x')
    kind = rnd.randrange(3)
    if kind == 0 or pos == len(text):
        return text[:pos] + char + text[pos:]
    if kind == 1:
        return text[:pos] + text[pos + 1 :]
    return text[:pos] + char + text[pos + 1 :]


def check_agrees_with_json_loads(text: str) -> None:
    """Same verdict as json.loads, and an error is found at the same place in every chunking."""
    try:
        expected = strict_loads(text)
    except (ValueError, RecursionError):
        expected = NOTHING
    outcomes = []
    for fragments in ([text], list(text), [text[: len(text) // 2], text[len(text) // 2 :]]):
        parser = PartialJSON()
        try:
            for fragment in fragments:
                parser.feed(fragment)
            got = parser.finish()
        except PartialJSONError as error:
            outcomes.append(error.position)
            got = NOTHING
        else:
            outcomes.append(-1)
        assert same(got, expected), (text, got, expected)
    assert len(set(outcomes)) == 1, (text, outcomes)


@settings(max_examples=250, deadline=None)
@given(value=json_values, options=dumps_options, seed=st.integers(0, 2**32), n=st.integers(1, 3))
def test_mutated_texts_agree_with_json_loads(
    value: Any, options: dict[str, Any], seed: int, n: int
) -> None:
    rnd = random.Random(seed)
    text = json.dumps(value, **options)
    for _ in range(n):
        text = _mutate(text, rnd)
    check_agrees_with_json_loads(text)


@settings(max_examples=400, deadline=None)
@given(text=st.text(st.sampled_from('{}[]",: \n0123456789-+.eEtruefalsnl\\uU"'), max_size=24))
def test_random_texts_agree_with_json_loads(text: str) -> None:
    check_agrees_with_json_loads(text)


def test_errors_are_raised_early() -> None:
    """An error is raised by the feed that brings the offending character, not later."""
    for text, position in INVALID_CASES:
        parser = PartialJSON()
        parser.feed(text[:position])  # the prefix before it is still fine
        with pytest.raises(PartialJSONError):
            parser.feed(text[position:])


# ---------------------------------------------------------------- incrementality


def big_arguments() -> dict[str, Any]:
    rnd = random.Random(7)
    words = ["alpha", "béta", "gamma", 'quote"d', "back\\slash", "tab\t", "new\nline", "😀"]
    return {
        "path": "src/app/main.py",
        "edits": [
            {
                "line": i,
                "ratio": rnd.random(),
                "ok": i % 3 == 0,
                "note": None,
                "old": " ".join(rnd.choice(words) for _ in range(8)),
                "new": " ".join(rnd.choice(words) for _ in range(8)),
                "tags": [rnd.randrange(-1000, 1000) for _ in range(3)],
            }
            for i in range(1000)
        ],
        "content": 'def main():\n    print("hello, world")  # \u00e9\\n\n' * 600,
    }


@pytest.mark.parametrize("ensure_ascii", [False, True])
def test_200_kb_in_4_char_fragments(ensure_ascii: bool) -> None:
    args = big_arguments()
    text = json.dumps(args, ensure_ascii=ensure_ascii)
    assert len(text) >= 200_000
    parser = PartialJSON()
    previous_edits = 0
    feeds = 0
    for start in range(0, len(text), 4):
        parser.feed(text[start : start + 4])
        feeds += 1
        current = parser.value()
        assert isinstance(current, dict)
        edits = len(current.get("edits", ()))
        assert edits >= previous_edits  # the view only grows
        previous_edits = edits
    assert parser.complete
    assert parser.value() == args
    assert len(text) <= parser.scanned <= len(text) + PartialJSON.MAX_CARRY * feeds


def test_scanned_counts_each_character_once_plus_carries() -> None:
    text = json.dumps(big_arguments()["edits"][:50]) + "  "
    text = text.replace("null", "true", 5)
    one_shot = PartialJSON()
    one_shot.feed(text)
    assert one_shot.complete
    assert one_shot.scanned == len(text)
    for size in (1, 2, 3, 5, 7, 64):
        parser = PartialJSON()
        feeds = 0
        for start in range(0, len(text), size):
            parser.feed(text[start : start + size])
            feeds += 1
        assert parser.complete
        assert parser.value() == one_shot.value()
        # only an escape or a literal cut by a fragment's end is read again
        assert len(text) <= parser.scanned <= len(text) + PartialJSON.MAX_CARRY * feeds
    # text without escapes or literals: never anything read twice, whatever the cutting
    plain = json.dumps({"a": [1, 2.5, -3e-2, "xyz" * 50], "b": {"c": "d" * 100}})
    for size in (1, 3, 8):
        parser = PartialJSON()
        for start in range(0, len(plain), size):
            parser.feed(plain[start : start + size])
        assert parser.complete
        assert parser.scanned == len(plain)


def test_long_number_and_string_streamed_one_char_at_a_time() -> None:
    """A number or string in progress is continued, never re-read from its start."""
    digits = "1234567890" * 300
    text = f'[{digits}.5e1, "{"x" * 5000}"]'
    parser = PartialJSON()
    for char in text:
        parser.feed(char)
    assert parser.complete
    assert parser.scanned == len(text)
    assert parser.value() == [float(digits + ".5e1"), "x" * 5000]


# ---------------------------------------------------------------- recorded streams


def _recorded_argument_streams() -> list[tuple[str, list[str]]]:
    """The tool-call argument fragments (and JSON-mode content) of the recorded fixtures."""
    streams: dict[tuple[str, Any], list[str]] = {}
    for path in sorted(FIXTURES.rglob("*.sse")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("data:"):
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "input_json_delta":
                streams.setdefault((path.name, event.get("index")), []).append(
                    delta["partial_json"]
                )
            for choice in event.get("choices") or ():
                cdelta = choice.get("delta") or {}
                for call in cdelta.get("tool_calls") or ():
                    fragment = (call.get("function") or {}).get("arguments")
                    if fragment is not None:
                        key = (path.name, (choice.get("index"), call.get("index")))
                        streams.setdefault(key, []).append(fragment)
                if path.name.startswith("json_") and isinstance(cdelta.get("content"), str):
                    key = (path.name, ("content", choice.get("index")))
                    streams.setdefault(key, []).append(cdelta["content"])
    return [(f"{name}:{index}", fragments) for (name, index), fragments in streams.items()]


RECORDED = _recorded_argument_streams()


@pytest.mark.skipif(not RECORDED, reason="no recorded tool-call fixtures")
@pytest.mark.parametrize(("name", "fragments"), RECORDED, ids=[name for name, _ in RECORDED])
def test_recorded_argument_streams(name: str, fragments: list[str]) -> None:
    text = "".join(fragments)
    parser = PartialJSON()
    fed = ""
    for fragment in fragments:
        parser.feed(fragment)
        fed += fragment
        assert same(parser.value(NOTHING), parse_partial(fed, NOTHING))
    try:
        expected = strict_loads(text)
    except ValueError:  # cut off (max_tokens): the partial value is still readable
        assert not parser.complete
        assert isinstance(parser.value(), dict | list)
    else:
        assert same(parser.finish(), expected)
