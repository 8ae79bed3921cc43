"""What a well-formed delta is: each field of the neutral delta model and the types it takes.

Protocol decoders check the deltas they build from a payload against it (see
``ProtocolDecoder.feed``), so valid JSON of the wrong shape (an index that is a string, a
text that is a list) stops at the payload it came in, as a typed error, instead of
breaking the accumulator or a subscriber later.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from . import _deltas
from ._deltas import Delta, Usage

__all__ = ["MAX_CHOICES", "MAX_TOOL_CALLS", "check_delta"]

#: The most choices one stream may have (OpenAI's own limit on ``n``): memory stays bounded
#: when a hostile server invents a new choice index per chunk.
MAX_CHOICES = 128
#: The most tool calls one choice may have, for the same reason.
MAX_TOOL_CALLS = 1024

#: Integer fields that number things a stream keeps state for, and their bounds.
_BOUNDS = {"choice": MAX_CHOICES, "index": MAX_TOOL_CALLS}


def _accepted(hint: Any) -> tuple[type, ...] | None:
    """The classes a field annotated ``hint`` accepts (None: anything)."""
    if hint is Any:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        accepted: list[type] = []
        for arg in typing.get_args(hint):
            one = _accepted(arg)
            if one is None:
                return None
            accepted.extend(one)
        return tuple(accepted)
    if hint is type(None):
        return (type(None),)
    if hint is float:
        return (float, int)
    return (origin or hint,)


def _fields(cls: type) -> tuple[tuple[str, tuple[type, ...]], ...]:
    hints = typing.get_type_hints(cls, vars(_deltas))
    checked = []
    for f in dataclasses.fields(cls):
        accepted = _accepted(hints[f.name])
        if accepted is not None:
            checked.append((f.name, accepted))
    return tuple(checked)


_FIELDS: dict[type, tuple[tuple[str, tuple[type, ...]], ...]] = {
    cls: _fields(cls)
    for cls in (Usage, *(c for c in vars(_deltas).values() if isinstance(c, type)))
    if dataclasses.is_dataclass(cls) and (cls is Usage or issubclass(cls, Delta))
}


#: Each class's checks, flattened: (field, accepted classes, bound or 0), and whether a
#: field may hold a Usage (checked in turn). (Performance: one tuple walk per delta.)
_CHECKS: dict[type, tuple[tuple[tuple[str, frozenset[type], int], ...], bool]] = {
    cls: (
        tuple((name, frozenset(kinds), _BOUNDS.get(name, 0)) for name, kinds in fields),
        any(Usage in kinds for _, kinds in fields),
    )
    for cls, fields in _FIELDS.items()
}


def check_delta(delta: Delta | Usage) -> None:
    """Raise TypeError naming the field when ``delta`` holds a value of the wrong type.

    The class must be one the annotation names exactly (``True`` is not an ``int`` here);
    a choice number must be below :data:`MAX_CHOICES`, a tool call's below
    :data:`MAX_TOOL_CALLS` (ValueError otherwise).
    """
    checks, nested = _CHECKS[delta.__class__]
    for name, accepted, bound in checks:
        value = getattr(delta, name)
        cls = value.__class__
        if cls not in accepted:
            kinds = " | ".join(t.__name__ for t in _accepted_order(delta, name))
            raise TypeError(f"{type(delta).__name__}.{name} is {cls.__name__}, not {kinds}")
        if bound and cls is int and not 0 <= value < bound:
            raise ValueError(f"{type(delta).__name__}.{name} is {value}, not in 0..{bound - 1}")
        if nested and cls is Usage:
            check_delta(value)


def _accepted_order(delta: Delta | Usage, name: str) -> tuple[type, ...]:
    """The classes field ``name`` accepts, in the annotation's order (for the message)."""
    return next(kinds for field, kinds in _FIELDS[delta.__class__] if field == name)
