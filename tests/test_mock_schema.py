"""The mock's JSON values for a schema (tool arguments, structured output), checked by
``jsonschema``: every value is valid under the schema it was made for (recursive and deep
schemas, numeric bounds of every kind, ``multipleOf``, empty lengths, formats), and the
"weather" trigger's fixed values go only where the tool declares them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rxgpt.mock._dialect import TOOL_ARGUMENTS
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
