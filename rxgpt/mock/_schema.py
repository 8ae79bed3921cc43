"""Deterministic JSON values that match a JSON Schema: tool arguments and structured output.

:func:`value_for` walks the subset of JSON Schema that function ``parameters`` and
``response_format.json_schema`` use (``type`` and lists of types, ``properties`` /
``required``, ``items`` / ``minItems`` / ``maxItems``, ``enum``, ``const``, ``anyOf`` /
``oneOf`` / ``allOf``, ``$ref`` into ``$defs`` / ``definitions`` or to the root ``#``,
``minimum`` / ``maximum`` and their exclusive forms, ``multipleOf``, ``minLength`` /
``maxLength``, string ``format``\\ s). Every property of an object is filled (so ``strict``
schemas, where all are required, are met) and no other; past a few levels a recursive schema
ends (a ``null`` option, the fewest items). The same schema and seed always give the same
value. Words come from the answer vocabulary; ``pattern`` is not followed.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from typing import Any

from ._text import VOCABULARY

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
_PIECE_CHARS = 4  # structured output streams in pieces of this many characters


def _rng(seed: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))


def value_for(schema: Any, seed: str) -> Any:
    """A value valid under ``schema`` (deterministic for ``seed``)."""
    root = schema if isinstance(schema, Mapping) else {}
    return _value(root, root, _rng(seed), 0)


def fitting(strings: Mapping[str, str], schema: Any) -> dict[str, str]:
    """The entries of ``strings`` that an object schema declares as properties and that are
    plainly valid there (a string of a type, ``enum``, ``const`` and length it allows).

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
        if "enum" in sub and value not in sub["enum"]:
            continue
        if "const" in sub and value != sub["const"]:
            continue
        if int(sub.get("minLength", 0)) <= len(value) <= int(sub.get("maxLength", len(value))):
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


def _value(schema: Any, root: Mapping[str, Any], rng: random.Random, depth: int) -> Any:
    if not isinstance(schema, Mapping):
        return None
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
            return _value((usable or options)[0], root, rng, depth)
    parts = schema.get("allOf")
    if isinstance(parts, list) and parts:
        merged: dict[str, Any] = {}
        for part in parts:
            if isinstance(part, Mapping):
                part = _resolve(part, root)
                merged.update({k: v for k, v in part.items() if k != "properties"})
                merged.setdefault("properties", {}).update(part.get("properties") or {})
        return _value(merged, root, rng, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if depth >= _MAX_DEPTH and kind in ("object", "array"):
        return {} if kind == "object" else []
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        return {str(name): _value(sub, root, rng, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        high = int(schema.get("maxItems", 2))
        low = int(schema.get("minItems", 0 if depth >= _SHALLOW else min(1, high)))
        count = low if depth >= _SHALLOW else max(low, min(high, 2))
        return [_value(schema.get("items", {}), root, rng, depth + 1) for _ in range(count)]
    if kind == "integer":
        return _number(schema, rng, integer=True)
    if kind == "number":
        return _number(schema, rng, integer=False)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, rng)


def _number(schema: Mapping[str, Any], rng: random.Random, *, integer: bool) -> int | float:
    """A number within the bounds (inclusive or exclusive) and of ``multipleOf``."""
    low = _bound(schema, "minimum", "exclusiveMinimum", 1 if integer else 0)
    high = _bound(schema, "maximum", "exclusiveMaximum", -1 if integer else 0)
    if low is None:
        low = 0 if high is None or high > 0 else high - 100
    if high is None:
        high = low + 100
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
        if integer:  # (the smallest multiple of the step that is a whole number)
            step = next((n * step for n in range(1, 1001) if float(n * step).is_integer()), 1)
        first, last = math.ceil(low / step), math.floor(high / step)
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
    value = schema.get(inclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    value = schema.get(exclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value + past if past else value
    return None


def _exclusive(schema: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(schema[k] for k in ("exclusiveMinimum", "exclusiveMaximum") if k in schema)


def _string(schema: Mapping[str, Any], rng: random.Random) -> str:
    fixed = _FORMATS.get(str(schema.get("format", "")))
    if fixed is not None:
        return fixed
    high = int(schema.get("maxLength", 40))
    low = int(schema.get("minLength", min(1, high)))
    words = [rng.choice(VOCABULARY) for _ in range(rng.randint(1, 3))]
    text = " ".join(words)
    while len(text) < low:
        text += " " + rng.choice(VOCABULARY)
    return text[: max(high, low)]


def json_pieces(text: str) -> tuple[str, ...]:
    """``text`` cut in the pieces a stream sends (a few characters each)."""
    return tuple(text[i : i + _PIECE_CHARS] for i in range(0, len(text), _PIECE_CHARS)) or ("",)
