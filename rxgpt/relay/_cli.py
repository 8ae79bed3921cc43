"""The relay's command line: ``rxgpt relay``, and ``rxgpt chat --relay`` / ``--from-relay``.

``rxgpt._cli`` wires these in: :func:`add_relay_command` and :func:`run_relay_command` for
``rxgpt relay --redis URL [--host H] [--port P] [--page FILE]`` (the SSE relay);
:func:`add_chat_relay_options`, :func:`relay_usage_error` and :func:`chat_relay` for ``rxgpt
chat PROMPT --relay URL --relay-key KEY`` (publish the answer while printing it); and
:func:`follow_relay` for ``rxgpt chat --from-relay URL --relay-key KEY`` (print another
process's answer live, with the same summary line). Redis being unreachable is one line on
stderr and exit status 1. Building the parsers does not import redis (the ``redis``
extra is needed only to run the relay commands).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .._chat_stream import ChatStream
from .._cli_types import MAX_SECONDS, fail, http_url, number, say, seconds, utf8_text
from .._errors import RxgptError
from .._observers import StreamMetrics, TextPrinter
from .._secrets import redact
from ._bounds import (
    ANSWER_TIMEOUT,
    DEFAULT_BLOCK,
    DEFAULT_LEASE,
    DEFAULT_START_TIMEOUT,
    DEFAULT_TTL,
)

if TYPE_CHECKING:
    from ._publish import Relay

__all__ = [
    "add_chat_relay_options",
    "add_relay_command",
    "chat_relay",
    "follow_relay",
    "relay_usage_error",
    "run_relay_command",
]

#: Seconds ``rxgpt chat --relay`` waits, after the answer, for the relay's last writes.
FINISH_TIMEOUT = 10.0
#: Seconds the commands' Redis client waits for any one answer (its socket timeout): a
#: blocking read's DEFAULT_BLOCK (1 s), and the time a Redis may take to answer.
READ_TIMEOUT = DEFAULT_BLOCK + ANSWER_TIMEOUT


#: ``--relay-ttl`` and ``--relay-lease``: seconds, at least a millisecond (Redis keeps them
#: in whole milliseconds: less would be 0, which deletes the key) and at most 100 years.
_relay_seconds = number(0.001, MAX_SECONDS, unit="seconds")


def add_relay_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``rxgpt relay`` to the ``rxgpt`` sub-command parsers; return its parser."""
    from .._cli_types import host, port

    relay = subparsers.add_parser(
        "relay", help="serve relayed streams as resumable SSE (GET /v1/streams/KEY)"
    )
    # (--redis is not required=True: argparse would then report it missing before an
    # unknown option, `rxgpt relay --bogus` saying "required: --redis"; run_relay_command
    # checks it, after rxgpt's parser has reported unknown options)
    relay.add_argument(
        "--redis", type=utf8_text, metavar="URL", help="the Redis server (redis://HOST:PORT/DB)"
    )
    relay.add_argument("--host", type=host, default="127.0.0.1", help="the address to listen on")
    relay.add_argument("--port", type=port, default=8080, help="the port (0: a free one)")
    relay.add_argument("--page", metavar="FILE", help="an HTML page to serve at / (a viewer)")
    relay.add_argument(
        "--start-timeout",
        type=seconds,
        default=DEFAULT_START_TIMEOUT,
        metavar="S",
        help="how long a request waits for a stream that has not started (default 10)",
    )
    return relay  # type: ignore[no-any-return]


def add_chat_relay_options(chat: argparse.ArgumentParser) -> None:
    """Add ``--relay``, ``--from-relay``, ``--relay-key`` and the bounds to ``rxgpt chat``."""
    group = chat.add_argument_group("relay (Redis Streams)")
    group.add_argument(
        "--relay",
        type=utf8_text,
        metavar="URL",
        help="also publish the answer to Redis (redis://HOST:PORT/DB)",
    )
    group.add_argument(
        "--from-relay",
        type=utf8_text,
        metavar="URL",
        help="print an answer relayed by another process instead of asking (no PROMPT)",
    )
    group.add_argument(
        "--relay-key", type=utf8_text, metavar="KEY", help="the Redis key of the relayed answer"
    )
    group.add_argument(
        "--relay-ttl",
        type=_relay_seconds,
        default=DEFAULT_TTL,
        metavar="S",
        help="seconds the relayed answer is kept (default 3600)",
    )
    group.add_argument(
        "--relay-lease",
        type=_relay_seconds,
        default=DEFAULT_LEASE,
        metavar="S",
        help="seconds without a write after which followers take the producer for dead (default 5)",
    )


def relay_usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the relay options of ``rxgpt chat`` (None: nothing)."""
    if args.relay and args.from_relay:
        return "--relay and --from-relay exclude each other"
    if (args.relay or args.from_relay) and not args.relay_key:
        return "--relay-key KEY is needed with --relay and --from-relay"
    if args.relay_key and not (args.relay or args.from_relay):
        return "--relay-key needs --relay URL or --from-relay URL"
    if args.from_relay and args.prompt is not None:
        return "--from-relay prints another process's answer: give no PROMPT"
    if not args.from_relay and args.prompt is None:
        return "the following arguments are required: prompt"
    if args.relay and args.relay_ttl < args.relay_lease:
        return (
            f"--relay-ttl {args.relay_ttl:g} is shorter than --relay-lease {args.relay_lease:g}: "
            "the answer would expire while it is written"
        )
    return None


@contextlib.asynccontextmanager
async def chat_relay(args: argparse.Namespace, stream: ChatStream) -> AsyncIterator[Relay | None]:
    """Publish ``stream`` to ``args.relay`` under ``args.relay_key`` while the block runs.

    Yields None without ``--relay``. Checks Redis and writes the start entry first, so an
    unreachable Redis (:class:`~rxgpt.TransportError`) or a key that holds another stream
    fails before the request is sent; on leaving, waits for the relay's last write, whose
    failure is raised when the stream itself succeeded.
    """
    if not args.relay:
        yield None
        return
    from ._connect import connect, describe, ping
    from ._publish import publish

    client = connect(args.relay, read_timeout=READ_TIMEOUT)
    try:
        await ping(client)
        relay = publish(stream, client, args.relay_key, ttl=args.relay_ttl, lease=args.relay_lease)
        try:
            await relay.started()  # the key is ours before the request is sent
        except BaseException:
            await relay.aclose()
            raise
        say(f"rxgpt: relaying to {describe(client)} key {args.relay_key}")
        try:
            yield relay
        except BaseException:
            with contextlib.suppress(RxgptError):
                await relay.finished(FINISH_TIMEOUT)
            raise
        else:
            await relay.finished(FINISH_TIMEOUT)
        finally:
            await relay.aclose()
    finally:
        await client.aclose()


async def follow_relay(args: argparse.Namespace) -> int:
    """Run ``rxgpt chat --from-relay URL --relay-key KEY``: print the answer live, then the
    summary line (or with ``--json`` only the final completion); the exit status."""
    from .._cli import _print_summary, _report_error, _summary
    from ._connect import connect, ping
    from ._subscribe import subscribe

    try:
        client = connect(args.from_relay, read_timeout=READ_TIMEOUT)
    except RxgptError as error:
        return _report_error(error)
    try:
        try:
            await ping(client)
        except RxgptError as error:
            return _report_error(error)
        stream = subscribe(client, args.relay_key)
        metrics = StreamMetrics()
        stream.subscribe(metrics)
        if not args.json:
            stream.subscribe(TextPrinter(sys.stdout))
        try:
            completion = await stream.completion()
        except RxgptError as error:
            return _report_error(error)
        if args.json:
            print(json.dumps(completion.to_openai(), ensure_ascii=False, indent=2))
        else:
            _print_summary(_summary(metrics, completion), sys.stdout)
        sys.stdout.flush()
        return 0
    finally:
        await client.aclose()


def _check_page(path: str) -> str | None:
    """What is wrong with ``--page FILE`` (None: nothing), before connecting to Redis: the
    check :func:`~rxgpt.relay.create_app` makes when it reads the page."""
    from ._web import read_page

    try:
        read_page(path)
    except ValueError as error:
        return str(error)
    return None


async def _serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from .._serving import say_accept_failures, start_site
    from ._connect import connect, describe, ping
    from ._web import STREAM_ROUTE, create_app

    client = connect(args.redis, read_timeout=READ_TIMEOUT)
    try:
        await ping(client)
        try:
            app = create_app(client, page=args.page, start_timeout=args.start_timeout)
        except ValueError as error:  # (changed since _check_page read it)
            raise _Failure(str(error)) from None
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        try:
            say_accept_failures(asyncio.get_running_loop(), "rxgpt relay")  # (our process)
            await start_site(runner, args.host, args.port)
            port = runner.addresses[0][1]
            stop = asyncio.Event()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            route = STREAM_ROUTE.replace("{key}", "KEY")
            print(
                f"rxgpt relay: serving {describe(client)} at {http_url(args.host, port)}{route} "
                "(?format=openai|rxgpt); press Ctrl+C to stop",
                flush=True,
            )
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        await client.aclose()


class _Failure(Exception):
    """A runtime failure of ``rxgpt relay``: one line for stderr, exit status 1."""


def run_relay_command(args: argparse.Namespace) -> int:
    """Run ``rxgpt relay`` until Ctrl+C (status 130) or SIGTERM (0); the exit status."""
    if not args.redis:
        return _fail("the following arguments are required: --redis (see --help)", 2)
    if args.page is not None:
        mistake = _check_page(args.page)
        if mistake is not None:  # (a file named on the command line: a usage mistake)
            return _fail(mistake, 2)
    from .._ulimit import raise_open_files

    raise_open_files()  # (each browser is an open file: 1,024 is a common soft limit)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 130
    except RxgptError as error:
        return _fail(f"{type(error).__name__}: {redact(str(error))}", 1)
    except _Failure as error:
        return _fail(str(error), 1)
    except OSError as error:  # (a host IDNA refuses is refused by the parser's host type)
        reason = error.strerror or str(error)
        return _fail(f"cannot listen on {args.host}:{args.port}: {reason}", 1)
    return 0


def _fail(message: str, status: int) -> int:
    """:func:`~rxgpt._cli_types.fail` for ``rxgpt relay``."""
    return fail("rxgpt relay", message, status)
