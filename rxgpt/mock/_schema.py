"""Deterministic JSON values that match a JSON Schema: tool arguments and structured output.

:func:`value_for` walks the subset of JSON Schema that function ``parameters`` and
``response_format.json_schema`` use (``type`` and lists of types, ``properties`` /
``required``, ``items`` / ``minItems`` / ``maxItems``, ``enum``, ``const``, ``anyOf`` /
``oneOf`` / ``allOf``, ``$ref`` into ``$defs`` / ``definitions`` or to the root ``#``,
``minimum`` / ``maximum`` and their exclusive forms, ``multipleOf``, ``minLength`` /
``maxLength``, string ``format``\\ s, ``pattern``: see :mod:`._pattern`). Every property
of an object is filled (so ``strict`` schemas, where all are required, are met) and no
other; past a few levels a recursive schema ends (a ``null`` option, the fewest items). The
same schema and seed always give the same value. Words come from the answer vocabulary.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from typing import Any

from ._pattern import pattern_string, takes
from ._text import VOCABULARY
from ._timing import finite_number

__all__ = ["fitting", "json_pieces", "value_for"]

_FORMATS = {
    "date-time": "2025-01-01T12:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.com",
    "duration": "P1D",
}
#: Past this depth a value takes the shortest way out: a ``null`` option, the fewest items
#: an array may have (a recursive schema ends; OpenAI allows 10 levels of nesting).
_SHALLOW = 4
#: A schema that cannot end (a required property that is itself) stops here, invalid.
_MAX_DEPTH = 32
#: The most ``anyOf`` / ``oneOf`` / ``allOf`` steps in a row before a value has a type: a
#: schema that is only its own alternative (``{"anyOf": [{"$ref": "#"}]}``) ends there.
_MAX_HOPS = 16
_PIECE_CHARS = 4  # structured output streams in pieces of this many characters


def _rng(seed: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))


def value_for(schema: Any, seed: str) -> Any:
    """A value valid under ``schema`` (deterministic for ``seed``).

    Any JSON is taken (the schema is the client's): keywords of the wrong type are ignored,
    and the value stays small whatever the schema asks (about :data:`_MAX_VALUES` values at
    most, :data:`_MAX_SIZE` items or characters each, :data:`_MAX_CHARS` characters in all),
    valid or not past that.
    """
    root = schema if isinstance(schema, Mapping) else {}
    try:
        return _value(root, _Walk(root, _rng(seed)), 0)
    except RecursionError:  # (combinators nested inside every level of a deep schema)
        return None


#: The most values (scalars, items, properties) one :func:`value_for` call makes.
_MAX_VALUES = 10_000
#: The most items of an array, characters of a string, that a schema can ask for.
_MAX_SIZE = 4096
#: The most characters of all the strings of one value.
_MAX_CHARS = 1 << 20


class _Walk:
    """What one :func:`value_for` call carries: the root, the random source, the budget."""

    __slots__ = ("chars", "left", "rng", "root")

    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.left = _MAX_VALUES
        self.chars = _MAX_CHARS


def _number_keyword(schema: Mapping[str, Any], name: str) -> int | float | None:
    """A numeric keyword's value if it is a finite number (a JSON schema is untrusted)."""
    value = schema.get(name)
    return value if finite_number(value) else None


def _size(schema: Mapping[str, Any], name: str, default: int) -> int:
    """A count keyword (``minItems``, ``maxLength``...) as an int in 0.._MAX_SIZE."""
    value = _number_keyword(schema, name)
    return default if value is None else max(0, min(int(value), _MAX_SIZE))


def fitting(strings: Mapping[str, str], schema: Any) -> dict[str, str]:
    """The entries of ``strings`` that an object schema declares as properties and that are
    plainly valid there (a string of a type, ``enum``, ``const``, length and ``pattern`` it
    allows).

    Laid over :func:`value_for`'s value of ``schema``, they keep it valid: a property's value
    is replaced by another valid one. Combinators (``anyOf``...) are not walked.
    """
    root = schema if isinstance(schema, Mapping) else {}
    schema = _resolve(root, root)
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or any(k in schema for k in _COMBINATORS):
        return {}
    out: dict[str, str] = {}
    for name, value in strings.items():
        sub = properties.get(name)
        sub = _resolve(sub, root) if isinstance(sub, Mapping) else None
        if sub is None or any(k in sub for k in _COMBINATORS):
            continue
        kind = sub.get("type", "string")
        if kind != "string" and not (isinstance(kind, list) and "string" in kind):
            continue
        enum = sub.get("enum")
        if enum is not None and not (isinstance(enum, list) and value in enum):
            continue
        if "const" in sub and value != sub["const"]:
            continue
        if "pattern" in sub and not takes(sub["pattern"], value):
            continue
        if _size(sub, "minLength", 0) <= len(value) <= _size(sub, "maxLength", _MAX_SIZE):
            out[name] = value
    return out


_COMBINATORS = ("anyOf", "oneOf", "allOf", "not")


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if ref == "#":  # the root itself: a recursive schema
        return root
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, Mapping) else None
    return target if isinstance(target, Mapping) else {}


def _value(schema: Any, walk: _Walk, depth: int, hops: int = 0) -> Any:
    walk.left -= 1
    if not isinstance(schema, Mapping) or hops > _MAX_HOPS:
        return None
    root = walk.root
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            null = [o for o in options if isinstance(o, Mapping) and o.get("type") == "null"]
            if null and depth >= _SHALLOW:
                return None
            usable = [o for o in options if o not in null]
            return _value((usable or options)[0], walk, depth, hops + 1)
    parts = schema.get("allOf")
    if isinstance(parts, list) and parts:
        merged: dict[str, Any] = {}
        for part in parts:
            if isinstance(part, Mapping):
                part = _resolve(part, root)
                merged.update({k: v for k, v in part.items() if k != "properties"})
                properties = part.get("properties")
                if isinstance(properties, Mapping):
                    merged.setdefault("properties", {}).update(properties)
        return _value(merged, walk, depth, hops + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if (depth >= _MAX_DEPTH or walk.left <= 0) and kind in ("object", "array"):
        return {} if kind == "object" else []
    rng = walk.rng
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        return {str(name): _value(sub, walk, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        high = _size(schema, "maxItems", 2)
        low = _size(schema, "minItems", 0 if depth >= _SHALLOW else min(1, high))
        count = low if depth >= _SHALLOW else max(low, min(high, 2))
        count = min(count, max(walk.left, 0))
        return [_value(schema.get("items", {}), walk, depth + 1) for _ in range(count)]
    if kind == "integer":
        return _number(schema, rng, integer=True)
    if kind == "number":
        return _number(schema, rng, integer=False)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, walk)


def _number(schema: Mapping[str, Any], rng: random.Random, *, integer: bool) -> int | float:
    """A number within the bounds (inclusive or exclusive) and of ``multipleOf``."""
    low = _bound(schema, "minimum", "exclusiveMinimum", 1 if integer else 0)
    high = _bound(schema, "maximum", "exclusiveMaximum", -1 if integer else 0)
    if low is None:
        low = 0 if high is None or high > 0 else high - 100
    if high is None:
        high = low + 100
    step = _number_keyword(schema, "multipleOf")
    if step is not None and step > 0:
        if integer:  # (the smallest multiple of the step that is a whole number)
            step = next((n * step for n in range(1, 1001) if float(n * step).is_integer()), 1)
        try:
            first, last = math.ceil(low / step), math.floor(high / step)
        except OverflowError:  # (a step so small that the bounds are past a float's range)
            return math.ceil(low) if integer else float(low)
        if first * step in _exclusive(schema):
            first += 1
        if last * step in _exclusive(schema):
            last -= 1
        k = rng.randint(first, last) if first <= last else first
        return int(k * step) if integer and float(step).is_integer() else k * step
    if integer:
        first, last = math.ceil(low), math.floor(high)
        return rng.randint(first, last) if first <= last else first
    value = round(rng.uniform(float(low), float(high)), 2)
    if not low <= value <= high or value in _exclusive(schema):  # (rounding went out)
        value = (low + high) / 2
    return value


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str, past: int) -> Any:
    """An inclusive bound; an exclusive one moved inside by one for integers (``past``)."""
    value = _number_keyword(schema, inclusive)
    if value is not None:
        return value
    value = _number_keyword(schema, exclusive)
    if value is not None:
        return value + past if past else value
    return None


def _exclusive(schema: Mapping[str, Any]) -> tuple[Any, ...]:
    bounds = (_number_keyword(schema, k) for k in ("exclusiveMinimum", "exclusiveMaximum"))
    return tuple(bound for bound in bounds if bound is not None)


def _string(schema: Mapping[str, Any], walk: _Walk) -> str:
    fixed = _FORMATS.get(str(schema.get("format", "")))
    pattern = schema.get("pattern")
    rng = walk.rng
    if pattern is not None:  # (a format's fixed value where the pattern takes it too)
        high = _size(schema, "maxLength", _MAX_SIZE)
        low = min(_size(schema, "minLength", 0), walk.chars)
        words = VOCABULARY if fixed is None else (fixed,)
        text = pattern_string(pattern, rng, low, max(low, min(high, walk.chars)), words)
        if text is not None:
            walk.chars -= len(text)
            return text
    if fixed is not None:
        return fixed
    high = _size(schema, "maxLength", 40)
    low = min(_size(schema, "minLength", min(1, high)), walk.chars)
    text = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 3)))
    if len(text) < low:  # (a long minimum: the words again, joined once)
        text = " ".join([text] * (low // (len(text) + 1) + 1))
    text = text[: max(high, low)]
    walk.chars -= len(text)
    return text


def json_pieces(text: str) -> tuple[str, ...]:
    """``text`` cut in the pieces a stream sends (a few characters each)."""
    return tuple(text[i : i + _PIECE_CHARS] for i in range(0, len(text), _PIECE_CHARS)) or ("",)
