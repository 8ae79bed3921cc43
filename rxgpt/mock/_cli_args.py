"""The flags of ``rxgpt serve`` and running the server from them.

:func:`add_serve_arguments` puts every server flag on an argparse parser (``rxgpt serve``,
``python -m rxgpt.mock``); :func:`serve_from_args` turns the parsed flags into a
:class:`~rxgpt.mock.MockConfig` and serves until interrupted. A mistake is one line on stderr
and exit status 2 (a port that cannot be bound: status 1), never a traceback; Ctrl+C
stops the server and its workers quietly, status 130. ``--profile``
fills the timing flags left out; a flag given wins, even at its default value.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from .._cli_types import (
    MAX_COUNT,
    MAX_WORKERS,
    count,
    factor,
    fail,
    host,
    milliseconds,
    number,
    port,
    positive,
    utf8_text,
    workers,
)
from .._files import check_writable, json_problem, loads
from .._ulimit import raise_open_files
from ._dialect import MockConfig, parse_options
from ._runner import serve
from ._timing import PROFILES

__all__ = ["add_serve_arguments", "serve_from_args"]


# (flag, MockConfig field, type, help)
_TIMING_FLAGS: tuple[tuple[str, str, Any, str], ...] = (
    ("--tokens", "tokens", count, "completion tokens per answer (default 64)"),
    ("--tokens-std", "tokens_std", number(0, MAX_COUNT), "std dev of the answer length (normal)"),
    ("--ttft-ms", "ttft_ms", milliseconds, "constant time to first token (prefill)"),
    ("--prefill-overhead-ms", "prefill_overhead_ms", milliseconds, "fixed prefill time"),
    (
        "--prefill-per-token-ms",
        "prefill_per_token_ms",
        milliseconds,
        "prefill time per prompt token",
    ),
    ("--itl-ms", "itl_ms", milliseconds, "decode step time: the gap between chunks"),
    ("--itl-std-ms", "itl_std_ms", milliseconds, "std dev of the step time (normal, clamped)"),
    ("--tokens-per-chunk", "tokens_per_chunk", positive, "tokens per streamed chunk"),
    ("--max-num-seqs", "max_num_seqs", positive, "decode slots; more requests queue (FIFO)"),
    (
        "--time-factor-under-load",
        "time_factor_under_load",
        factor,
        "step time multiplier at --max-num-seqs running sequences (linear from 1)",
    ),
    ("--thinking-tokens", "thinking_tokens", count, "tokens of a thinking text"),
    ("--seed", "seed", count, "seed of the step-time jitter"),
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every ``rxgpt serve`` flag to ``parser``."""
    parser.add_argument("--host", type=host, default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=port, default=8000)
    for flag, name, kind, text in _TIMING_FLAGS:
        parser.add_argument(flag, dest=name, type=kind, default=None, help=text)
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="timing preset of a real model (flags given as well win)",
    )
    parser.add_argument(
        "--model", type=utf8_text, default=None, help="model of /v1/models (default rxgpt-mock)"
    )
    parser.add_argument("--api-key", type=utf8_text, default=None, help="require this API key")
    parser.add_argument(
        "--timeline",
        metavar="FILE",
        default=None,
        help="append the ground-truth timeline of every request to FILE (JSON lines)",
    )
    parser.add_argument(
        "--workers",
        type=workers,
        default=1,
        help="server processes sharing the port (SO_REUSEPORT); each has its own slots "
        f"(at most {MAX_WORKERS} here: 4 per CPU, and 256)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=utf8_text,
        metavar="KEY=VALUE",
        help="a server-wide default of the requests' mock object (any of its keys), e.g. "
        "drop_after=5, status=429, gzip=true, line_endings=crlf, tool_call=true, thinking=8 "
        "(JSON values; repeatable)",
    )


class _Mistake(Exception):
    """A bad flag value: one line for stderr."""


def _fault_value(key: str, text: str) -> Any:
    """The value of ``--fault KEY=TEXT``: JSON (``5``, ``true``, ``[...]``, ``"..."``), or the
    text itself when it does not start as a JSON value does (``crlf``)."""
    where = f"--fault {key}"
    try:
        value = loads(text, where)
    except ValueError as error:
        if text.lstrip()[:1] in tuple('[{"-0123456789'):  # JSON, but not parseable
            raise _Mistake(str(error)) from None
        return text
    problem = json_problem(value)
    if problem is not None:
        raise _Mistake(f"{where}: {problem}")
    return value


def _faults(items: list[str]) -> dict[str, Any]:
    faults: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _Mistake(f"--fault expects KEY=VALUE (a key of the mock object), got {item!r}")
        faults[key] = _fault_value(key, value)
    try:
        parse_options(faults, MockConfig())
    except (TypeError, ValueError) as error:
        raise _Mistake(f"--fault: {error}") from None
    return faults


def config_from_args(args: argparse.Namespace) -> MockConfig:
    """The :class:`MockConfig` the parsed flags describe (raises ValueError)."""
    given: dict[str, Any] = {
        name: getattr(args, name)
        for _, name, _, _ in _TIMING_FLAGS
        if getattr(args, name, None) is not None
    }
    if args.model is not None:
        given["model"] = args.model
    if args.timeline is not None:
        given["timeline_path"] = args.timeline
    # The preset's values, then the flags given (even one equal to its default) over them;
    # MockConfig(profile=...) alone could not tell `--itl-ms 0` from no --itl-ms at all.
    preset = dict(PROFILES[args.profile]) if args.profile else {}
    return MockConfig(api_key=args.api_key, faults=_faults(args.fault), **{**preset, **given})


def serve_from_args(args: argparse.Namespace) -> int:
    """Run ``rxgpt serve`` from parsed flags until Ctrl+C; the exit status."""
    try:
        config = config_from_args(args)
    except _Mistake as error:
        return _fail(str(error))
    except ValueError as error:  # MockConfig's own checks: said with the flags' names
        message = str(error)
        for flag, name, _, _ in _TIMING_FLAGS:
            message = re.sub(rf"\b{name}\b", flag, message)
        return _fail(message)
    try:
        if config.timeline_path is not None:
            check_writable(config.timeline_path, "--timeline")
    except ValueError as error:
        return _fail(str(error))
    raise_open_files()  # (each stream is an open file: 1,024 is a common soft limit)
    try:
        serve(args.host, args.port, config, workers=args.workers, freeze_gc=True)
    except KeyboardInterrupt:  # Ctrl+C: quietly, as a shell expects of an interrupted command
        return 130
    except OSError as error:  # (a host IDNA refuses is refused by the parser's host type)
        reason = error.strerror or str(error)
        return _fail(f"cannot listen on {args.host}:{args.port}: {reason}", 1)
    return 0


def _fail(message: str, status: int = 2) -> int:
    """:func:`~rxgpt._cli_types.fail` for ``rxgpt serve`` (2 unless said)."""
    return fail("rxgpt serve", message, status)
