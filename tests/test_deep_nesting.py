"""100k nested ``[`` is a DecodeError with either JSON backend, never a RecursionError.

orjson (the ``fast`` extra) refuses deep nesting itself; the standard library's decoder
raises RecursionError, which rxgpt must turn into the typed error. The stdlib backend runs
in a subprocess with orjson hidden, so both are tested on one machine.
"""

from __future__ import annotations

import subprocess
import sys

import reactivex

from rxgpt import DecodeError, accumulate, decode_stream

BODY = b"data: " + b"[" * 100_000 + b"\n\n"


def test_deep_nesting_with_the_installed_backend() -> None:
    errors: list[BaseException] = []
    reactivex.from_iterable([BODY]).pipe(decode_stream(), accumulate()).subscribe(
        on_error=errors.append
    )
    assert len(errors) == 1 and isinstance(errors[0], DecodeError)
    assert errors[0].index == 0


def test_deep_nesting_with_the_standard_library_backend() -> None:
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "import reactivex, rxgpt\n"
        "from rxgpt._json import BACKEND\n"
        "assert BACKEND == 'json', BACKEND\n"
        "errors = []\n"
        "body = b'data: ' + b'[' * 100_000 + b'\\n\\n'\n"
        "reactivex.from_iterable([body]).pipe(rxgpt.decode_stream(), rxgpt.accumulate())"
        ".subscribe(on_error=errors.append)\n"
        "assert len(errors) == 1, errors\n"
        "print(type(errors[0]).__name__, errors[0].index)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["DecodeError", "0"]
