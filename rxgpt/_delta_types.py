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
from collections.abc import Callable
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


def _compile(cls: type) -> Callable[[Any], None]:
    """The checker of ``cls``'s fields: straight-line code generated from :data:`_FIELDS`.

    Performance: a delta is checked once per payload on the decoders' general path (every
    stream's first events and its end), and a loop over a table of (field, classes) costs
    about three times as many bytecodes as the same checks written out, as dataclasses
    writes out ``__init__``. The rule stays in one place: the annotations, via _FIELDS;
    only field names (identifiers) enter the generated source, the classes are globals.
    """
    namespace: dict[str, Any] = {"_wrong_type": _wrong_type, "_out_of_range": _out_of_range}
    lines = ["def check(delta):"]
    for n, (name, kinds) in enumerate(_FIELDS[cls]):
        namespace[f"K{n}"] = kinds[0] if len(kinds) == 1 else frozenset(kinds)
        test = f"v.__class__ is not K{n}" if len(kinds) == 1 else f"v.__class__ not in K{n}"
        lines += [f"    v = delta.{name}", f"    if {test}:"]
        lines += [f"        _wrong_type(delta, {name!r})"]
        bound = _BOUNDS.get(name, 0)
        if bound and int in kinds:
            lines += [
                f"    if v.__class__ is int and not 0 <= v < {bound}:",
                f"        _out_of_range(delta, {name!r}, {bound})",
            ]
        if Usage in kinds:
            namespace["Usage"], namespace["check_usage"] = Usage, _check_usage
            lines += ["    if v.__class__ is Usage:", "        check_usage(v)"]
    if len(lines) == 1:
        lines.append("    pass")
    exec("\n".join(lines), namespace)  # (the source is built above from field names only)
    check: Callable[[Any], None] = namespace["check"]
    check.__qualname__ = f"check_{cls.__name__}"
    return check


def _wrong_type(delta: Delta | Usage, name: str) -> None:
    cls = getattr(delta, name).__class__
    kinds = " | ".join(t.__name__ for t in _accepted_order(delta, name))
    raise TypeError(f"{type(delta).__name__}.{name} is {cls.__name__}, not {kinds}")


def _out_of_range(delta: Delta | Usage, name: str, bound: int) -> None:
    value = getattr(delta, name)
    raise ValueError(f"{type(delta).__name__}.{name} is {value}, not in 0..{bound - 1}")


def _check_usage(usage: Usage) -> None:
    _CHECKERS[Usage](usage)


#: Each class's checker (see _compile).
_CHECKERS: dict[type, Callable[[Any], None]] = {cls: _compile(cls) for cls in _FIELDS}


def check_delta(delta: Delta | Usage) -> None:
    """Raise TypeError naming the field when ``delta`` holds a value of the wrong type.

    The class must be one the annotation names exactly (``True`` is not an ``int`` here);
    a choice number must be below :data:`MAX_CHOICES`, a tool call's below
    :data:`MAX_TOOL_CALLS` (ValueError otherwise).
    """
    _CHECKERS[delta.__class__](delta)


def _accepted_order(delta: Delta | Usage, name: str) -> tuple[type, ...]:
    """The classes field ``name`` accepts, in the annotation's order (for the message)."""
    return next(kinds for field, kinds in _FIELDS[delta.__class__] if field == name)
