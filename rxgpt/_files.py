"""The files the ``rxgpt`` commands read and write, checked so a mistake is one sentence.

:func:`read_text` reads a file named on a command line (a dataset, a report, ``--tools``,
a ``--page``): a regular file (a FIFO would block forever, a device never end), at most a
size, UTF-8; :func:`loads` parses JSON with a
message naming the file; :func:`json_problem` finds what a JSON request body cannot carry;
:func:`check_writable` and :func:`check_directory` try an output path before a run, so a
typo is not found only after the whole run (or in a worker process). Each raises
ValueError with a message that names the file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
import tempfile
from typing import Any

__all__ = ["check_directory", "check_writable", "json_problem", "loads", "read_text"]

#: The most nesting a JSON value given to a request may have (orjson, which encodes the
#: request bodies, refuses more than 255 levels; the body itself adds a few).
MAX_JSON_DEPTH = 200
#: The widest integer a JSON request body can carry (orjson: signed or unsigned 64 bits).
_INT_LOW, _INT_HIGH = -(2**63), 2**64 - 1


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def read_text(path: str, limit: int, what: str = "") -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` bytes (``what`` it is,
    "dataset", prefixes the name in messages)."""
    name = f"{what} {path}" if what else path
    try:
        # (non-blocking: opening a FIFO does not wait for a writer; fstat then checks the
        # file that was opened, not one that replaced it since)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise ValueError(f"cannot read {name}: {_reason(error)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise ValueError(f"cannot read {name}: it is {kind}")
        if info.st_size > limit:
            raise ValueError(f"{name} holds {info.st_size} bytes, more than the {limit} read")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
    except OSError as error:
        raise ValueError(f"cannot read {name}: {_reason(error)}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # (it grew since the stat)
        raise ValueError(f"{name} holds more than the {limit} bytes read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{name} is not UTF-8 text (byte {error.start})") from None


def loads(text: str, where: str) -> Any:
    """``json.loads(text)``; a ValueError naming ``where`` (a file, or ``file:line``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not JSON: {error}") from None
    except RecursionError:
        raise ValueError(f"{where}: its JSON is nested too deeply") from None
    except ValueError as error:  # an integer of more digits than Python converts
        raise ValueError(f"{where}: {error}") from None


def json_problem(value: Any, depth: int = 0) -> str | None:
    """What in the JSON ``value`` a request body cannot carry, or None.

    (A number past 64 bits, a NaN or infinity, a string holding a lone surrogate from a
    ``\\ud800`` escape, nesting deeper than :data:`MAX_JSON_DEPTH`.)
    """
    if depth > MAX_JSON_DEPTH:
        return f"it is nested more than {MAX_JSON_DEPTH} levels deep"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if not _INT_LOW <= value <= _INT_HIGH:
            return f"the number {str(value)[:24]}... does not fit in 64 bits"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a JSON number"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"a string holds a lone surrogate ({value[:24]!r})"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = json_problem(key, depth + 1) or json_problem(item, depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for item in value:
            problem = json_problem(item, depth + 1)
            if problem is not None:
                return problem
        return None
    return f"{type(value).__name__} is not JSON"


def check_writable(path: str, flag: str) -> None:
    """Refuse (ValueError naming ``flag`` and ``path``) a file that cannot be written.

    The file is opened for appending (nothing in it changes; a FIFO without a reader is
    refused rather than waited for) and, if this made it, removed again.
    """
    existed = os.path.lexists(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    except OSError as error:
        reason = "it is a FIFO that no process reads" if error.errno == errno.ENXIO else None
        raise ValueError(f"cannot write {flag} {path}: {reason or _reason(error)}") from None
    os.close(fd)
    if not existed:
        with contextlib.suppress(OSError):
            os.remove(path)


def check_directory(path: str, flag: str) -> None:
    """Refuse (ValueError naming ``flag`` and ``path``) a directory files cannot be made in
    (it is created if missing, as writing into it would)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(f"cannot write into {flag} {path}: {_reason(error)}") from None
