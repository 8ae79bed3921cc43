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

__all__ = ["check_delta"]


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


def check_delta(delta: Delta | Usage) -> None:
    """Raise TypeError naming the field when ``delta`` holds a value of the wrong type.

    The class must be one the annotation names exactly (``True`` is not an ``int`` here).
    """
    for name, accepted in _FIELDS[delta.__class__]:
        value = getattr(delta, name)
        if value.__class__ not in accepted:
            raise TypeError(
                f"{type(delta).__name__}.{name} is {type(value).__name__}, "
                f"not {' | '.join(t.__name__ for t in accepted)}"
            )
        if value.__class__ is Usage:
            check_delta(value)
