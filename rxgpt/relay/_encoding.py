"""The relay's entry encoding: neutral deltas, the stream's start and its end, as Redis entries.

Every entry of a relayed stream has three fields:

- ``seq``: the entry's number in the stream (0 for the start entry, then 1, 2, ...), so a
  reader sees a gap (entries trimmed or lost) or a duplicate (a retried write) at once;
- ``type``: ``start``, ``deltas`` or ``end``;
- ``d``: compact JSON, by type:

  - ``start``: ``{"v": 1, "protocol": "openai-chat", "producer": "<id>", "lease_ms": 5000}``;
  - ``deltas``: the deltas of one network read, a list of delta objects (below);
  - ``end``: ``{"state": "complete", "deltas": N, "usage": {...} | null}``, or for a failure
    ``{"state": "error" | "truncated" | "cancelled", "deltas": N, "usage": ...,
    "error": {"class": "StreamError", "message": "...", "attrs": {...}}}``.

A delta is ``{"@": "<class name>", <field>: <value>, ...}`` with every field whose value
differs from the field's default (``{"@": "TextDelta", "choice": 0, "text": "Hi"}``; ``@``
can never be a field's name); a
:class:`~rxgpt.Usage` is an object of its fields that are not None, ``raw`` included. The
encoding round-trips exactly (``decode_delta(encode_delta(d)) == d``) for every delta whose
free-form fields (``raw``, ``payload``, ``error``, logprobs) hold JSON values: dicts with
string keys, lists, strings, 64-bit integers, finite floats, booleans and None. Decoding is
for untrusted input: an unknown class, field or a value of the wrong type is a
:class:`~rxgpt.DecodeError`, never a crash.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from .. import _deltas, _errors
from .._completion import CompletionState
from .._delta_types import check_delta
from .._deltas import Delta, Usage
from .._errors import DecodeError, RxgptError
from .._json import JSONDecodeError, dumps, loads
from .._partial_json import PartialJSONError
from .._secrets import redact

__all__ = [
    "ENCODING_VERSION",
    "EndInfo",
    "EntryKind",
    "StartInfo",
    "decode_delta",
    "decode_deltas",
    "decode_end",
    "decode_error",
    "decode_start",
    "encode_delta",
    "encode_deltas",
    "encode_end",
    "encode_error",
    "encode_start",
]

#: The version of the entry encoding, written in every start entry.
ENCODING_VERSION: Final = 1

EntryKind = Literal["start", "deltas", "end"]

_DELTA_CLASSES: dict[str, type[Delta]] = {
    name: cls
    for name, cls in vars(_deltas).items()
    if isinstance(cls, type) and issubclass(cls, Delta) and dataclasses.is_dataclass(cls)
}

#: Per class: field name → default, for the fields that have a default.
_DEFAULTS: dict[type, dict[str, Any]] = {}
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _default(f: dataclasses.Field[Any]) -> Any:
    """A field's default value (a fresh one from its factory), or MISSING."""
    if f.default is not dataclasses.MISSING:
        return f.default
    factory: Any = f.default_factory
    return factory() if factory is not dataclasses.MISSING else dataclasses.MISSING


for _cls in (*_DELTA_CLASSES.values(), Usage):
    _FIELD_NAMES[_cls] = tuple(f.name for f in dataclasses.fields(_cls))
    _DEFAULTS[_cls] = {
        f.name: _default(f)
        for f in dataclasses.fields(_cls)
        if _default(f) is not dataclasses.MISSING
    }

_ERROR_CLASSES: dict[str, type[RxgptError]] = {
    name: cls
    for name, cls in (*vars(_errors).items(), ("PartialJSONError", PartialJSONError))
    if isinstance(cls, type) and issubclass(cls, RxgptError)
}


# --------------------------------------------------------------------------- deltas


def _usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        name: getattr(usage, name)
        for name in _FIELD_NAMES[Usage]
        if getattr(usage, name) is not None
    }


def encode_delta(delta: Delta) -> dict[str, Any]:
    """The JSON-ready object of ``delta`` (fields at their default left out)."""
    cls = delta.__class__
    out: dict[str, Any] = {"@": cls.__name__}
    defaults = _DEFAULTS[cls]
    for name in _FIELD_NAMES[cls]:
        value = getattr(delta, name)
        if name in defaults and value == defaults[name] and type(value) is type(defaults[name]):
            continue
        out[name] = _usage_dict(value) if value.__class__ is Usage else value
    return out


def encode_deltas(batch: list[Delta]) -> str:
    """The ``d`` field of a ``deltas`` entry: one read's deltas as a JSON list."""
    try:
        return dumps([encode_delta(delta) for delta in batch])
    except (TypeError, ValueError, KeyError) as error:
        raise DecodeError(
            f"a delta cannot be encoded for the relay ({type(error).__name__}: {error}); "
            "its free-form fields must hold JSON values",
            raw=repr(batch)[:1000],
        ) from None


def decode_delta(obj: Any) -> Delta:
    """The delta an :func:`encode_delta` object stands for; DecodeError if it is not one."""
    if obj.__class__ is not dict:
        raise DecodeError("a relayed delta is not a JSON object", raw=dumps(obj))
    fields = dict(obj)
    name = fields.pop("@", None)
    cls = _DELTA_CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise DecodeError(f"unknown delta type {name!r} in a relayed entry", raw=dumps(obj))
    try:
        usage = fields.get("usage")
        if cls is _deltas.UsageDelta:
            if usage.__class__ is not dict:
                raise TypeError("UsageDelta.usage is not an object")
            fields["usage"] = Usage(**usage)
        delta = cls(**fields)
        check_delta(delta)
    except (TypeError, ValueError) as error:
        raise DecodeError(f"a relayed {name} is malformed ({error})", raw=dumps(obj)) from None
    return delta


def decode_deltas(data: bytes | str) -> list[Delta]:
    """The deltas of a ``deltas`` entry's ``d`` field."""
    value = _loads(data, "deltas")
    if value.__class__ is not list:
        raise DecodeError("a relayed deltas entry is not a JSON list", raw=_text(data))
    return [decode_delta(obj) for obj in value]


# --------------------------------------------------------------------------- errors


def encode_error(error: BaseException) -> dict[str, Any]:
    """The JSON-ready object of a stream's error: its class, message and attributes.

    The attributes kept are the error's instance attributes that are JSON values
    (``status``, ``error``, ``phase``...), without ``partial`` (rebuilt by the reader). An
    error that is not an :class:`~rxgpt.RxgptError` becomes one, its type named in the message.
    """
    if not isinstance(error, RxgptError):
        message = f"the producer failed: {type(error).__name__}: {error}"
        return {"class": "RxgptError", "message": redact(message), "attrs": {}}
    attrs: dict[str, Any] = {}
    for name, value in vars(error).items():
        if name == "partial":
            continue
        try:
            dumps(value)
        except (TypeError, ValueError):
            continue
        attrs[name] = value
    name = type(error).__name__
    if _ERROR_CLASSES.get(name) is not type(error):  # a user's subclass: its nearest rxgpt base
        name = next(c.__name__ for c in type(error).__mro__ if _ERROR_CLASSES.get(c.__name__) is c)
    return {"class": name, "message": error.message, "attrs": attrs}


def decode_error(obj: Any) -> RxgptError:
    """The typed error an :func:`encode_error` object stands for (``partial`` left None)."""
    if obj.__class__ is not dict or not isinstance(obj.get("message"), str):
        raise DecodeError("a relayed error is not an error object", raw=dumps(obj))
    cls = _ERROR_CLASSES.get(obj.get("class"), RxgptError)  # type: ignore[arg-type]
    error = cls.__new__(cls)
    Exception.__init__(error, obj["message"])
    attrs = obj.get("attrs")
    if isinstance(attrs, dict):
        for name, value in attrs.items():
            if isinstance(name, str) and name != "partial" and not name.startswith("__"):
                setattr(error, name, value)
    error.partial = None
    return error


# --------------------------------------------------------------------------- start and end


@dataclass(frozen=True, slots=True)
class StartInfo:
    """What the start entry says: the encoding version, protocol, producer and its lease."""

    protocol: str
    producer: str
    lease_ms: int
    version: int = ENCODING_VERSION


def encode_start(info: StartInfo) -> str:
    """The ``d`` field of the start entry."""
    return dumps(
        {
            "v": info.version,
            "protocol": info.protocol,
            "producer": info.producer,
            "lease_ms": info.lease_ms,
        }
    )


def decode_start(data: bytes | str) -> StartInfo:
    """The start entry's information; DecodeError for another version or a bad shape."""
    obj = _loads(data, "start")
    if obj.__class__ is not dict or obj.get("v") != ENCODING_VERSION:
        raise DecodeError(
            f"a relayed stream of an unknown encoding (rxgpt reads v{ENCODING_VERSION})",
            raw=_text(data),
        )
    protocol, producer, lease = obj.get("protocol"), obj.get("producer"), obj.get("lease_ms")
    if not (isinstance(protocol, str) and isinstance(producer, str) and type(lease) is int):
        raise DecodeError("a relayed start entry is malformed", raw=_text(data))
    return StartInfo(protocol, producer, lease)


@dataclass(frozen=True, slots=True)
class EndInfo:
    """What the end entry says: how the stream ended, its delta count, usage and error."""

    state: CompletionState
    deltas: int
    usage: Usage | None = None
    error: RxgptError | None = None


_STATES: Final = ("complete", "truncated", "error", "cancelled")


def encode_end(info: EndInfo) -> str:
    """The ``d`` field of the end entry."""
    obj: dict[str, Any] = {
        "state": info.state,
        "deltas": info.deltas,
        "usage": _usage_dict(info.usage) if info.usage is not None else None,
    }
    if info.error is not None:
        obj["error"] = encode_error(info.error)
    try:
        return dumps(obj)
    except (TypeError, ValueError):  # usage.raw that is not JSON: the counts still go
        obj["usage"] = {k: v for k, v in (obj["usage"] or {}).items() if k != "raw"} or None
        return dumps(obj)


def decode_end(data: bytes | str) -> EndInfo:
    """The end entry's information (its error, if any, without ``partial``)."""
    obj = _loads(data, "end")
    if obj.__class__ is not dict or obj.get("state") not in _STATES:
        raise DecodeError("a relayed end entry is malformed", raw=_text(data))
    deltas = obj.get("deltas")
    usage = obj.get("usage")
    try:
        built = Usage(**usage) if isinstance(usage, Mapping) else None
    except TypeError:
        raise DecodeError("a relayed end entry has a malformed usage", raw=_text(data)) from None
    error = decode_error(obj["error"]) if obj.get("error") is not None else None
    return EndInfo(obj["state"], deltas if type(deltas) is int else -1, built, error)


# --------------------------------------------------------------------------- helpers


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _loads(data: bytes | str, kind: str) -> Any:
    try:
        return loads(data)
    except JSONDecodeError:
        raise DecodeError(f"a relayed {kind} entry is not JSON", raw=_text(data)) from None
