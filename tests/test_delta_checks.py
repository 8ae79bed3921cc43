"""The delta model's checks (what decoders apply to every delta made from untrusted JSON).

Each field of each delta class, filled with JSON values of every kind (hypothesis), must be
accepted exactly when the value's class is one its annotation names (``bool`` is not
``int``; ``int`` is a ``float``), and a rejection must be a TypeError naming the class and
the field; the choice and tool-call numbers must stay within their bounds (ValueError).
The oracle below reads the annotations itself.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rxgpt
from rxgpt import _deltas
from rxgpt._delta_types import MAX_CHOICES, MAX_TOOL_CALLS, check_delta

CLASSES = [
    cls
    for cls in vars(rxgpt).values()
    if isinstance(cls, type)
    and dataclasses.is_dataclass(cls)
    and (cls is rxgpt.Usage or issubclass(cls, rxgpt.Delta))
]

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)


def accepted(hint: Any) -> set[type] | None:
    """The exact classes an annotation accepts (None: anything)."""
    if hint is Any:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        out: set[type] = set()
        for arg in typing.get_args(hint):
            one = accepted(arg)
            if one is None:
                return None
            out |= one
        return out
    if hint is float:
        return {float, int}
    return {typing.get_origin(hint) or hint}


def valid(cls: type) -> Any:
    """An instance of ``cls`` whose every field holds a value of an accepted class."""
    samples: dict[type, Any] = {
        int: 0, float: 0.5, str: "x", bool: False, list: [], dict: {}, type(None): None,
        rxgpt.Usage: rxgpt.Usage(),
    }  # fmt: skip
    hints = typing.get_type_hints(cls, vars(_deltas))
    values = {}
    for f in dataclasses.fields(cls):
        kinds = accepted(hints[f.name])
        values[f.name] = None if kinds is None else samples[sorted(kinds, key=str)[0]]
    return cls(**values)


def test_every_delta_class_is_checked() -> None:
    assert len(CLASSES) >= 15
    for cls in CLASSES:
        check_delta(valid(cls))  # a well-formed instance passes


FIELDS = [(cls, f.name) for cls in CLASSES for f in dataclasses.fields(cls)]


@pytest.mark.parametrize(("cls", "name"), FIELDS, ids=[f"{c.__name__}.{n}" for c, n in FIELDS])
@settings(max_examples=12)
@given(value=JSON)
def test_a_field_takes_exactly_its_annotated_classes(cls: type, name: str, value: Any) -> None:
    hints = typing.get_type_hints(cls, vars(_deltas))
    kinds = accepted(hints[name])
    delta = dataclasses.replace(valid(cls), **{name: value})
    bound = {"choice": MAX_CHOICES, "index": MAX_TOOL_CALLS}.get(name)
    if kinds is not None and value.__class__ not in kinds:
        with pytest.raises(TypeError, match=rf"^{cls.__name__}\.{name} is "):
            check_delta(delta)
    elif bound is not None and value.__class__ is int and not 0 <= value < bound:
        with pytest.raises(ValueError, match=rf"^{cls.__name__}\.{name} is {value}, not in"):
            check_delta(delta)
    else:
        check_delta(delta)


@given(value=JSON)
def test_a_usage_inside_a_usage_delta_is_checked_too(value: Any) -> None:
    usage = rxgpt.Usage(input_tokens=value)
    if value is None or value.__class__ is int:
        check_delta(rxgpt.UsageDelta(usage))
    else:
        with pytest.raises(TypeError, match=r"^Usage\.input_tokens is "):
            check_delta(rxgpt.UsageDelta(usage))
