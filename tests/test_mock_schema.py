"""The mock's JSON values for a schema (tool arguments, structured output), checked by
``jsonschema``: every value is valid under the schema it was made for (recursive and deep
schemas, numeric bounds of every kind, ``multipleOf``, empty lengths, formats), and the
"weather" trigger's fixed values go only where the tool declares them; a ``pattern`` is
followed (strict mode honours it), and a client's regex, however built, never raises."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import jsonschema
import pytest
import re2  # type: ignore[import-untyped]
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rxgpt.mock._dialect import TOOL_ARGUMENTS
from rxgpt.mock._pattern import MAX_PATTERN, pattern_string, takes
from rxgpt.mock._schema import _MAX_CHARS, _MAX_VALUES, fitting, value_for

NODE: Any = {
    "type": "object",
    "properties": {
        "value": {"type": "integer"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
    },
    "required": ["value", "children"],
    "additionalProperties": False,
}


def nested(levels: int) -> Any:
    schema: Any = {"type": "string"}
    for level in range(levels):
        schema = {
            "type": "object",
            "properties": {f"level{level}": schema},
            "required": [f"level{level}"],
            "additionalProperties": False,
        }
    return schema


SCHEMAS: Any = [
    {"type": "integer", "maximum": -5},
    {"type": "number", "exclusiveMaximum": 0},
    {"type": "number", "minimum": 0.001, "maximum": 0.004},
    {"type": "integer", "multipleOf": 7},
    {"type": "integer", "minimum": 3, "maximum": 50, "multipleOf": 7},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 2},
    {"type": "number", "multipleOf": 0.5, "minimum": 9, "exclusiveMaximum": 10},
    {"type": "array", "items": {"type": "string"}, "maxItems": 0},
    {"type": "string", "maxLength": 0},
    {"type": "string", "format": "ipv6"},
    {"type": "string", "format": "hostname"},
    # a linked list through the root, and a tree through $defs (pydantic's recursive models)
    {
        "type": "object",
        "properties": {
            "v": {"type": "integer"},
            "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
        },
        "required": ["v", "next"],
        "additionalProperties": False,
    },
    {**NODE, "$defs": {"Node": NODE}},
    nested(10),  # OpenAI's strict mode allows 10 levels
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_values_are_valid_under_their_schema(schema: Any) -> None:
    for seed in range(20):
        value = value_for(schema, f"seed {seed}")
        jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())


def satisfiable(schema: dict[str, Any]) -> bool:
    """Whether some number meets ``schema`` (searched over the multiples of a small step)."""
    step = schema.get("multipleOf", 1 if schema["type"] == "integer" else 0.25)
    valid = jsonschema.Draft202012Validator(schema).is_valid
    anchor = schema.get("minimum", schema.get("exclusiveMinimum", 0))  # (spans are <= 300)
    return any(
        valid(k * step) for k in range(int((anchor - 400) / step), int((anchor + 400) / step))
    )


@settings(deadline=None)
@given(
    integer=st.booleans(),
    low=st.one_of(st.none(), st.integers(-1000, 1000)),
    span=st.integers(0, 300),
    exclusive_low=st.booleans(),
    exclusive_high=st.booleans(),
    has_high=st.booleans(),
    step=st.one_of(st.none(), st.sampled_from([1, 2, 3, 7, 0.5, 0.25])),
    seed=st.text(max_size=8),
)
def test_numbers_keep_every_kind_of_bound(
    integer: bool,
    low: int | None,
    span: int,
    exclusive_low: bool,
    exclusive_high: bool,
    has_high: bool,
    step: float | None,
    seed: str,
) -> None:
    schema: dict[str, Any] = {"type": "integer" if integer else "number"}
    if low is not None:
        schema["exclusiveMinimum" if exclusive_low else "minimum"] = low
    if has_high:
        schema["exclusiveMaximum" if exclusive_high else "maximum"] = (low or 0) + span
    if step is not None:
        schema["multipleOf"] = step
    assume(satisfiable(schema))
    jsonschema.validate(value_for(schema, seed), schema)


def test_the_weather_values_go_only_where_the_tool_declares_them() -> None:
    city: Any = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert fitting(TOOL_ARGUMENTS, city) == {"city": "Paris"}  # not "unit": not declared
    assert fitting(TOOL_ARGUMENTS, {"type": "object"}) == {}
    assert fitting(TOOL_ARGUMENTS, {}) == {}
    both: Any = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "kelvin"]}},
    }
    assert fitting(TOOL_ARGUMENTS, both) == TOOL_ARGUMENTS
    kelvin = {"type": "object", "properties": {"unit": {"enum": ["kelvin"]}}}
    assert fitting(TOOL_ARGUMENTS, kelvin) == {}
    typed = {"type": "object", "properties": {"city": {"type": "integer"}}}
    assert fitting(TOOL_ARGUMENTS, typed) == {}
    assert fitting(TOOL_ARGUMENTS, {"anyOf": [city]}) == {}  # not walked
    # laid over a generated value, the result stays valid under the schema
    strict: Any = {**both, "required": ["city", "unit"], "additionalProperties": False}
    value = {**value_for(strict, "seed"), **fitting(TOOL_ARGUMENTS, strict)}
    jsonschema.validate(value, strict)
    assert value == TOOL_ARGUMENTS


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "properties",
                    "items",
                    "minItems",
                    "maxItems",
                    "minLength",
                    "maxLength",
                    "minimum",
                    "exclusiveMaximum",
                    "multipleOf",
                    "enum",
                    "const",
                    "anyOf",
                    "allOf",
                    "required",
                    "$ref",
                    "pattern",
                    "format",
                    "city",
                    "unit",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=24,
)


@settings(deadline=None)
@given(schema=JSON, seed=st.text(max_size=4))
def test_any_json_as_a_schema_gives_a_value_not_an_exception(schema: Any, seed: str) -> None:
    """The schema is the client's: keywords of the wrong type (a null ``maxLength``, a
    ``properties`` that is ``true``, an integer past 64 bits) are ignored, never raised on."""
    value = value_for(schema, seed)
    assert isinstance(fitting(TOOL_ARGUMENTS, schema), dict)
    json.dumps(value)


def test_a_schema_that_asks_for_too_much_gets_a_bounded_value() -> None:
    strings = {"type": "string", "minLength": 10**9}
    huge: Any = {"type": "array", "minItems": 10**6, "items": {**strings, "maxLength": 10**9}}
    value = value_for({"type": "array", "minItems": 10**6, "items": huge}, "seed")
    assert len(json.dumps(value)) < 4 * _MAX_CHARS
    assert sum(1 + len(inner) for inner in value) <= 2 * _MAX_VALUES  # (each list's items
    # are counted out before their own values spend the budget: at most twice)


#: Patterns of real tool and structured-output schemas (ids, codes, phone numbers, slugs).
PATTERNS = [
    r"^[a-z]+$",
    r"^[A-Z]{3}-\d{4}$",
    r"^(foo|bar)+$",
    r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$",
    r"^\+?[0-9 ()-]{7,15}$",
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    r"^\d{5}(-\d{4})?$",
    r"^(?P<q>['\"]).+(?P=q)$",
    r"^#[0-9a-fA-F]{6}$",
    r"^[à-ü]{2,4}$",
    r"^[^a-zA-Z0-9 ]{3}$",
    r"^\w+\s\W\S$",
    r"^.{5}$",
    r"v\d+\.\d+",  # unanchored: matched anywhere
    r"^(?>ab|a)c$",
    r"^x*?y+?z{2,}?$",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_strings_follow_the_pattern(pattern: str) -> None:
    free = {"type": "string", "pattern": pattern}
    lengths = {len(value_for(free, f"{k}")) for k in range(100)}
    schemas: list[dict[str, Any]] = [free]
    if any(5 <= n <= 12 for n in lengths):  # (lengths this pattern can take)
        schemas.append({**free, "minLength": 5, "maxLength": 12})
    for schema in schemas:
        for seed in range(25):
            jsonschema.validate(value_for(schema, f"seed {seed}"), schema)


def test_a_tool_argument_with_a_pattern_is_valid_under_strict() -> None:
    strict: Any = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "pattern": "^[A-Z][a-z]+, [A-Z]{2}$"},
            "unit": {"type": "string", "pattern": "^[CF]$"},
            "code": {"type": "string", "format": "date", "pattern": r"^\d{4}-\d\d-\d\d$"},
        },
        "required": ["city", "unit", "code"],
        "additionalProperties": False,
    }
    value = {**value_for(strict, "seed"), **fitting(TOOL_ARGUMENTS, strict)}
    jsonschema.validate(value, strict, format_checker=jsonschema.FormatChecker())
    assert value["code"] == "2025-01-01"  # the format's value, which the pattern takes
    assert fitting(TOOL_ARGUMENTS, strict) == {}  # "Paris", "celsius": not matched
    paris: Any = {"type": "object", "properties": {"city": {"pattern": "^P"}}}
    assert fitting(TOOL_ARGUMENTS, paris) == {"city": "Paris"}


@pytest.mark.parametrize(
    "pattern", ["[", "(?P<x", "a{2,1}", "*", 7, None, "a" * (MAX_PATTERN + 1), "\\"]
)
def test_a_pattern_not_followed_is_ignored(pattern: Any) -> None:
    schema = {"type": "string", "pattern": pattern, "maxLength": 8}
    value = value_for(schema, "seed")
    assert isinstance(value, str) and 1 <= len(value) <= 8  # the usual words
    assert not takes(pattern, value) or pattern == "\\"


@pytest.mark.parametrize(
    "pattern", [r"[^\s\S]", r"^[^\d\D]x$", "(" * 450 + "a" + ")" * 450, r"^[^\W\w]+$"]
)
def test_a_pattern_nothing_matches_or_too_deep_gives_a_string(pattern: str) -> None:
    """A class of nothing (an empty negation), nesting past the recursion limit: a string,
    never an exception out of the server (StopIteration before)."""
    value = value_for({"type": "string", "pattern": pattern}, "seed")
    assert isinstance(value, str)
    assert not takes(pattern, value) or pattern.startswith("(")


@pytest.mark.parametrize(
    "pattern", ["(a|a)*b", "(a|a|a|a|a|a|a|a)*b", "((a+)+)+b", "(a*)*(a*)*(a*)*(a*)*b"]
)
def test_a_hostile_pattern_costs_polynomial_steps(pattern: str) -> None:
    """Each of these backtracks in ``re`` for minutes on the run of a's (inside C, where
    no timeout stops it); :func:`takes` walks sets of positions instead."""
    assert not takes(pattern, "a" * 60)
    assert takes(pattern, "a" * 59 + "b")
    value = value_for({"type": "string", "pattern": "^" + pattern, "minLength": 64}, "seed")
    assert len(value) >= 64 and re2.fullmatch("^" + pattern, value)


def test_an_empty_repeat_of_a_huge_count_ends() -> None:
    assert pattern_string("^(?:(?:){65535}){65535}x$", random.Random(0), 0, 10) == "x"
    assert takes("^(?:(?:){65535}){65535}x$", "x")
    assert takes(r"^(?:a?){1000}b$", "aab") and not takes(r"^(?:a?){1000}b$", "aac")


def test_what_the_matcher_does_not_follow_is_no_match() -> None:
    """Back-references, lookarounds and flags: ``False``, never a wrong ``True``."""
    for pattern, text in [
        (r"^(a)\1$", "aa"),
        ("^x(?=y)", "xy"),
        ("(?i)^abc$", "ABC"),
        ("^(?>ab|a)c$", "abc"),
        ("^a++$", "aa"),
    ]:
        assert re.search(pattern, text) and not takes(pattern, text)


def _regex(draw: Any, depth: int = 0) -> str:
    """A random regex from a grammar of what patterns use (no lookarounds)."""
    atoms = [
        st.sampled_from(list("abcxyz09-_ .@")).map(re.escape),
        st.sampled_from([r"\d", r"\w", r"\s", r"\D", r"\W", r"\S", ".", "[a-f]", "[^a-z]",
                         "[0-9A-F_]", r"[\d.]", r"[^\s@]"]),
    ]  # fmt: skip
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 3 if depth < 2 else 1))
        if kind <= 1:
            atom = draw(atoms[kind])
        elif kind == 2:
            atom = "(" + _regex(draw, depth + 1) + ")"
        else:
            atom = "(?:" + _regex(draw, depth + 1) + "|" + _regex(draw, depth + 1) + ")"
        atom += draw(st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "+?"]))
        parts.append(atom)
    return "".join(parts)


# (RE2, linear in time, is the oracle: re backtracks for minutes on some of these patterns)
@settings(deadline=None, max_examples=300)
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_every_built_string_matches_its_pattern(data: Any, seed: int) -> None:
    pattern = "^" + _regex(data.draw) + "$"
    text = pattern_string(pattern, random.Random(seed), 0, 4096)
    assert text is not None and re2.fullmatch(pattern, text), (pattern, text)


@settings(deadline=None, max_examples=500)
@given(data=st.data(), text=st.text(alphabet="abcxyz09-_ .@AF", max_size=12))
def test_the_matcher_agrees_with_re2(data: Any, text: str) -> None:
    pattern = _regex(data.draw)
    if data.draw(st.booleans()):
        pattern = "^" + pattern
    if data.draw(st.booleans()):
        pattern += "$"
    assert takes(pattern, text) == bool(re2.search(pattern, text)), (pattern, text)
