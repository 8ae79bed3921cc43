"""The argparse types of every ``rxgpt`` command: what a number or a text argument may be.

Each type returns the parsed value or raises :class:`argparse.ArgumentTypeError` with a
sentence saying what was wrong; argparse prefixes it with the flag's name. Every number is
bounded above, so no flag can ask for more memory, time or processes than a machine has or
overflow what it is handed to (a 64-bit integer in JSON, a Redis TTL in ms, ``time.sleep``).
One definition per kind of argument: ``rxgpt chat``, ``bench``, ``serve`` and ``relay`` share
them.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Callable

from ._urls import base_url_problem

__all__ = [
    "MAX_COUNT",
    "MAX_MILLISECONDS",
    "MAX_SECONDS",
    "MAX_WORKERS",
    "api_key_problem",
    "base_url",
    "count",
    "factor",
    "fail",
    "host",
    "http_url",
    "integer",
    "milliseconds",
    "number",
    "port",
    "positive",
    "say",
    "seconds",
    "utf8_text",
    "workers",
]

#: The largest whole number a count flag takes (tokens, requests, slots): a JSON integer
#: every server reads (within 32 bits), far above anything a run can use.
MAX_COUNT = 2**31 - 1

#: The longest duration a flag takes, in seconds: 100 years (a TTL or a timeout that is
#: "forever" for any run, and within what ``asyncio`` and Redis can hold).
MAX_SECONDS = 100 * 365 * 86400.0


def utf8_text(value: str) -> str:
    """A text argument: refused when the command line held bytes that are not UTF-8.

    (Python keeps such bytes as lone surrogates, which no JSON body, header or file can
    carry: the request would fail later, far from the flag that caused it.)
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise argparse.ArgumentTypeError(
            f"holds bytes that are not UTF-8 text (at character {error.start})"
        ) from None
    return value


def integer(low: int, high: int = MAX_COUNT) -> Callable[[str], int]:
    """The type of a whole number from ``low`` to ``high``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if number < low:
            below = "negative" if low == 0 else f"less than {low}"
            raise argparse.ArgumentTypeError(f"{number} is {below}")
        if number > high:
            raise argparse.ArgumentTypeError(f"{number} is more than {high}, the most it takes")
        return number

    parse.__name__ = "integer"  # (argparse names the type in some of its messages)
    return parse


#: A whole number, zero or more.
count = integer(0)
#: A whole number, one or more.
positive = integer(1)
#: A TCP port number (0 picks a free one).
port = integer(0, 65535)


def _show(value: float) -> str:
    """A bound as people write it: ``2``, ``0.5``, ``3153600000``."""
    return str(int(value)) if value == int(value) else f"{value:g}"


def number(
    low: float,
    high: float,
    *,
    unit: str = "",
    low_open: bool = False,
    high_open: bool = False,
    suffix: str = "",
) -> Callable[[str], float]:
    """The type of a finite number from ``low`` to ``high`` (above ``low`` if ``low_open``,
    below ``high`` if ``high_open``).

    ``unit`` names what it counts in messages ("seconds"); a trailing ``suffix`` ("s") is
    accepted and dropped.
    """
    what = f"a number of {unit}" if unit else "a number"
    if not low_open and not high_open:
        bound = f"from {_show(low)} to {_show(high)}"
    else:
        above = f"more than {_show(low)}" if low_open else f"at least {_show(low)}"
        below = f"less than {_show(high)}" if high_open else f"at most {_show(high)}"
        bound = f"{above} and {below}"

    def parse(value: str) -> float:
        try:
            parsed = float(value.removesuffix(suffix) if suffix else value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not {what}") from None
        above = parsed > low if low_open else parsed >= low
        below = parsed < high if high_open else parsed <= high
        if not (math.isfinite(parsed) and above and below):
            raise argparse.ArgumentTypeError(f"{value} is not {what} {bound}")
        return parsed

    parse.__name__ = "number"
    return parse


#: A positive number of seconds (at most 100 years).
seconds = number(0, MAX_SECONDS, unit="seconds", low_open=True)
#: The longest duration a millisecond flag takes: a day (no decode step or prefill is longer).
MAX_MILLISECONDS = 86_400_000.0

#: A duration in milliseconds, zero or more (at most a day).
milliseconds = number(0, MAX_MILLISECONDS, unit="milliseconds")
#: A multiplier, more than 0 (at most 1,000).
factor = number(0, 1000, low_open=True)


def host(value: str) -> str:
    """The address a server listens on, for argparse: not empty (``""`` would listen on
    every interface and announce ``http://:PORT``), UTF-8, a name IDNA can encode."""
    value = utf8_text(value)
    if not value:
        raise argparse.ArgumentTypeError(
            "is empty: give an address to listen on (0.0.0.0 or :: for every interface)"
        )
    try:
        value.encode("idna")
    except UnicodeError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a host name or address") from None
    return value


def http_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, where a server listening on ``host`` (as :func:`host` took it)
    is reached: an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


#: The most processes a ``--workers`` flag starts: 4 per CPU, and 256. A worker is a
#: process of its own (tens of MB once rxgpt is imported, its own event loop); past a few
#: per core they only take turns on the same cores (a benchmark client that waits for a
#: core measures its own contention), and a typo (``--workers 10000``) must not fork the
#: machine to a standstill.
MAX_WORKERS = min(256, 4 * (os.cpu_count() or 1))

#: ``--workers``: processes, 1 to :data:`MAX_WORKERS`.
workers = integer(1, MAX_WORKERS)


def base_url(value: str) -> str:
    """An API's base URL, for argparse: UTF-8, http:// or https://, a host, a usable port
    (the refusal shows the URL with its credentials redacted)."""
    from ._secrets import redact

    problem = base_url_problem(utf8_text(value))
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{redact(value)!r} {problem}")
    return value


def api_key_problem(key: str) -> str | None:
    """What an API key holds that no HTTP header can carry (None: nothing); not the key."""
    for at, char in enumerate(key):
        if not "!" <= char <= "~":  # the visible ASCII characters: what a key is made of
            if char == " ":
                what = "a space"
            elif char in "\r\n":
                what = "a newline"
            elif char.isascii() or not char.isprintable():
                what = "a control character"
            else:
                what = "a character that is not ASCII"
            return (
                f"holds {what} (character {at + 1} of {len(key)}): an HTTP header cannot "
                "carry it, and no API key has one"
            )
    return None


def say(line: str) -> None:
    """Write one line on stderr, the way every ``rxgpt`` command tells its user something
    (nothing when stderr cannot take it: closed, or a broken pipe)."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def fail(command: str, message: str, status: int) -> int:
    """Say ``COMMAND: MESSAGE`` (one line on stderr); the exit status to return (2: a
    mistake on the command line, 1: a failure of the run)."""
    say(f"{command}: {message}")
    return status
