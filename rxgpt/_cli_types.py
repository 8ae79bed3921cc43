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
import math
from collections.abc import Callable

__all__ = [
    "MAX_COUNT",
    "MAX_MILLISECONDS",
    "MAX_SECONDS",
    "count",
    "factor",
    "host",
    "http_url",
    "integer",
    "milliseconds",
    "number",
    "port",
    "positive",
    "seconds",
    "utf8_text",
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
    suffix: str = "",
) -> Callable[[str], float]:
    """The type of a finite number from ``low`` to ``high`` (above ``low`` if ``low_open``).

    ``unit`` names what it counts in messages ("seconds"); a trailing ``suffix`` ("s") is
    accepted and dropped.
    """
    what = f"a number of {unit}" if unit else "a number"
    bound = f"more than {_show(low)} and at most" if low_open else f"from {_show(low)} to"

    def parse(value: str) -> float:
        try:
            parsed = float(value.removesuffix(suffix) if suffix else value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not {what}") from None
        inside = parsed > low if low_open else parsed >= low
        if not (math.isfinite(parsed) and inside and parsed <= high):
            raise argparse.ArgumentTypeError(f"{value} is not {what} {bound} {_show(high)}")
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
