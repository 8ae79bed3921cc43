"""The ``rxgpt`` command: ``rxgpt chat`` streams an answer, ``rxgpt serve`` runs the mock server.

``rxgpt chat`` wires the pipeline the README describes: one request, fanned out to a text
printer, a JSON-lines logger (``--log``), a metrics observer and the accumulator, then a
summary line. With no base URL and no API key configured (flags or ``OPENAI_BASE_URL`` /
``OPENAI_API_KEY``) it starts the embedded server in-process, so it works offline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import IO, Any, NoReturn

from ._chat_stream import ChatStream
from ._cli_types import (
    api_key_problem,
    count,
    number,
    say,
    seconds,
    utf8_text,
)
from ._client import Client, env_setting
from ._completion import Completion
from ._deltas import Delta
from ._errors import RxgptError, StreamCancelled, StreamTimeout
from ._observers import DeltaLogger, StreamMetrics, TextPrinter
from ._providers import PROVIDERS, Provider, get_provider
from ._resilience import Retry, Timeouts
from ._secrets import redact
from ._urls import base_url_problem

__all__ = ["main"]


def _seconds(text: str) -> float | None:
    """A deadline in seconds (``0`` or ``none``: no limit), for argparse."""
    if text.lower() in ("0", "none"):
        return None
    return seconds(text)


def _base_url_help() -> str:
    """``--base-url``'s help: each provider's variable, in the vendor's convention."""
    names = ", ".join(
        f"{p.base_url_env[0]} ({name})"
        for name, p in sorted(PROVIDERS.items())
        if name in ("openai", "anthropic", "gemini", "ollama")
    )
    return f"API base URL (default: the provider's variable: {names}; else the embedded server)"


def _api_key_help() -> str:
    """``--api-key``'s help: each hosted provider's variable."""
    names = ", ".join(
        f"{p.api_key_env[0]} ({name})"
        for name, p in sorted(PROVIDERS.items())
        if p.api_key_env and name in ("openai", "anthropic", "gemini")
    )
    return f"API key (default: the provider's variable: {names})"


#: chat's flags that only shape the request, with their defaults: meaningless with
#: ``--from-relay``, which prints an answer another process asked for.
_REQUEST_FLAGS: dict[str, Any] = {
    "provider": "openai",
    "base_url": None,
    "api_key": None,
    "model": None,
    "system": None,
    "log": None,
    "max_tokens": None,
    "temperature": None,
    "tools": None,
    "connect_timeout": 10.0,
    "idle_timeout": 300.0,
    "timeout": None,
    "retries": 2,
    "require_done": False,
}


class _Parser(argparse.ArgumentParser):
    """argparse, with a user's mistake reported as one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: MESSAGE`` and exit 2, without the usage block."""
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    """The command-line parser of ``rxgpt chat`` and ``rxgpt serve``."""
    parser = _Parser(prog="rxgpt", description="Stream LLM answers through a reactive pipeline.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"rxgpt {__version__}")
    # (not required=True: argparse would then name the missing command before an unknown
    # option, `rxgpt --bogus` saying "required: command"; main() checks both, options first)
    commands = parser.add_subparsers(dest="command")

    chat = commands.add_parser("chat", help="stream one answer to the terminal")
    chat.add_argument(
        "prompt", nargs="?", type=utf8_text, help="the user message ('-' reads it from stdin)"
    )
    chat.add_argument(
        "--provider",
        default=_REQUEST_FLAGS["provider"],
        choices=sorted(PROVIDERS),
        help="the API to talk to (default: openai chat completions)",
    )
    chat.add_argument("--base-url", type=utf8_text, help=_base_url_help())
    chat.add_argument("--api-key", type=utf8_text, help=_api_key_help())
    chat.add_argument(
        "--model",
        type=utf8_text,
        default=None,
        help="model name (default: rxgpt-mock / gpt-4o-mini)",
    )
    chat.add_argument("--system", type=utf8_text, default=None, help="an optional system message")
    chat.add_argument("--log", metavar="FILE", help="write every delta as a JSON line to FILE")
    chat.add_argument(
        "--json", action="store_true", help="print only the final completion (OpenAI shape)"
    )
    chat.add_argument("--max-tokens", type=count, default=None, help="cap the answer length")
    chat.add_argument("--temperature", type=number(0, 2), default=None, help="0 to 2")
    chat.add_argument(
        "--tools",
        metavar="FILE",
        help="a JSON file of tool definitions, in the provider's format (tool calls are shown)",
    )
    chat.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=_REQUEST_FLAGS["connect_timeout"],
        metavar="S",
        help="seconds to wait for the response headers (default 10; 0: none)",
    )
    chat.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=_REQUEST_FLAGS["idle_timeout"],
        metavar="S",
        help="seconds without a token before giving up (default 300; 0: none)",
    )
    chat.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="seconds for the whole answer (default: none)",
    )
    chat.add_argument(
        "--retries",
        type=count,
        default=_REQUEST_FLAGS["retries"],
        metavar="N",
        help="retries of a failed request before any token arrived (default 2)",
    )
    chat.add_argument(
        "--require-done",
        action="store_true",
        help="treat a stream without its end marker (data: [DONE]) as truncated",
    )

    serve = commands.add_parser("serve", help="run the embedded LLM server (every API of rxgpt)")
    from .mock._cli_args import add_serve_arguments
    from .relay._cli import add_chat_relay_options, add_relay_command

    add_serve_arguments(serve)
    from .bench import add_bench_arguments

    bench = commands.add_parser(
        "bench", help="benchmark a streaming LLM server (TTFT, ITL, throughput, goodput)"
    )
    add_bench_arguments(bench)

    add_chat_relay_options(chat)
    add_relay_command(commands)
    return parser


#: The model the embedded server is asked for when ``--model`` is not given.
_EMBEDDED_MODEL = "rxgpt-mock"
#: The embedded server's key: any key works, one is sent so the request looks real.
_EMBEDDED_KEY = "sk-embedded"


def _configured(args: argparse.Namespace, provider: Provider) -> bool:
    """Whether a base URL or API key is given, by a flag or the provider's env vars."""
    env = (*provider.base_url_env, *provider.api_key_env)
    return bool(args.base_url or args.api_key or any(os.environ.get(name) for name in env))


@contextlib.asynccontextmanager
async def _target(args: argparse.Namespace) -> AsyncIterator[tuple[str | None, str | None, str]]:
    """Yield (base_url, api_key, model), starting the embedded server when none is set."""
    provider = get_provider(args.provider)
    if _configured(args, provider):
        yield args.base_url, args.api_key, args.model or provider.default_model
        return
    from .mock import MockConfig, MockServer

    async with MockServer(MockConfig(itl_ms=8, ttft_ms=40)) as server:
        url = provider.base_url_at(server.url)
        names = " / ".join((*provider.base_url_env[:1], *provider.api_key_env[:1]))
        sys.stderr.write(
            f"rxgpt: no API configured: talking to the embedded server at {url} "
            f"(set {names}, or pass --base-url and --api-key, for a real API)\n"
        )
        yield url, _EMBEDDED_KEY, args.model or _EMBEDDED_MODEL


def _summary(metrics: StreamMetrics, completion: Completion) -> str:
    """The one summary line after a streamed answer (ttft, deltas, tokens, finish)."""
    parts = []
    if metrics.ttft is not None:
        parts.append(f"ttft {metrics.ttft * 1000:.1f} ms")
    parts.append(f"{metrics.deltas} deltas")
    tokens = metrics.output_tokens if metrics.output_tokens is not None else metrics.output_deltas
    parts.append(f"{tokens} tokens")
    if metrics.tokens_per_second is not None:
        parts.append(f"{metrics.tokens_per_second:.1f} tokens/s")
    parts.append(f"finish {completion.finish_reason or '-'}")
    parts.append(f"state {completion.state}")
    return " · ".join(parts)


def _print_summary(line: str, out: IO[str]) -> None:
    """Write the summary line, dimmed when rich is installed."""
    try:
        from rich.console import Console

        Console(file=out, highlight=False, soft_wrap=True).print(f"[dim]{line}[/dim]")
    except ImportError:  # pragma: no cover - rich is the optional cli extra
        out.write(line + "\n")


#: The most bytes read from a file or stream named on the command line (the ``--tools``
#: file, the prompt of ``-``): far above any prompt or tool list an API takes (a million
#: tokens are some 4 MiB), and a bound on memory (``--tools /dev/zero`` ends).
_MAX_INPUT_BYTES = 32 * 1024 * 1024

#: The deadline flag of each phase of a :class:`~rxgpt.StreamTimeout`.
_TIMEOUT_FLAGS = {"connect": "--connect-timeout", "idle": "--idle-timeout", "total": "--timeout"}


def _fail(message: str, status: int = 1) -> NoReturn:
    """End ``rxgpt chat`` with the one line ``rxgpt chat: MESSAGE`` and ``status``."""
    say(f"rxgpt chat: {message}")
    raise SystemExit(status)


def _usage(message: str) -> NoReturn:
    """End ``rxgpt chat`` for a mistake on its command line: one line, exit status 2."""
    _fail(f"{message} (see --help)", 2)


def _flag(dest: str) -> str:
    """The flag of an ``argparse`` destination: ``base_url`` → ``--base-url``."""
    return "--" + dest.replace("_", "-")


def _chat_usage_error(args: argparse.Namespace) -> str | None:
    """What contradicts itself among chat's flags (None: nothing).

    The relay's own combinations are :func:`rxgpt.relay._cli.relay_usage_error`'s.
    """
    if args.from_relay:
        for dest, default in _REQUEST_FLAGS.items():
            if getattr(args, dest) != default:
                return (
                    f"--from-relay prints an answer another process asked for: "
                    f"{_flag(dest)} does not apply to it"
                )
        return None
    if args.base_url is not None and not args.base_url.strip():
        return (
            "--base-url is empty: give the API's URL (http://HOST:PORT/PATH), "
            "or leave the flag out for the provider's variable"
        )
    if args.log and args.tools and _same_file(args.log, args.tools):
        return f"--log {args.log} would overwrite the --tools file"
    return None


def _same_file(first: str, second: str) -> bool:
    """Whether the paths ``first`` and ``second`` name one existing file."""
    try:
        return os.path.samefile(first, second)
    except (OSError, ValueError):
        return False


def _given(flag: str, value: str | None, names: tuple[str, ...]) -> tuple[str, str] | None:
    """Where a setting comes from and its value: the flag, else the first of the variables
    ``names`` that is set and not empty (as :class:`~rxgpt.Client` reads them); None: unset."""
    return (flag, value) if value is not None else env_setting(names)


def _check_target(args: argparse.Namespace) -> None:
    """Refuse a base URL or an API key (flag or variable) that no request can carry."""
    provider = get_provider(args.provider)
    url = _given("--base-url", args.base_url, provider.base_url_env)
    if url is not None:
        problem = base_url_problem(provider.normalize_url(url[1]))
        if problem is not None:
            _usage(f"{url[0]} {redact(url[1])!r} {problem}")
    key = _given("--api-key", args.api_key, provider.api_key_env)
    if key is not None:
        problem = api_key_problem(key[1])
        if problem is not None:
            _usage(f"{key[0]} {problem}")


def _read_prompt() -> str:
    """The prompt of ``rxgpt chat -``: stdin, read whole (bounded), as UTF-8 text."""
    stdin = sys.stdin
    if stdin is None:
        _usage("the prompt '-' is read from stdin, which is closed")
    try:
        buffer = getattr(stdin, "buffer", None)
        data: bytes | str = (
            buffer.read(_MAX_INPUT_BYTES + 1)
            if buffer is not None
            else stdin.read(_MAX_INPUT_BYTES + 1)
        )
    except OSError as error:
        _usage(f"cannot read the prompt '-' from stdin: {error.strerror or error}")
    if len(data) > _MAX_INPUT_BYTES:
        _usage(f"the prompt '-' on stdin is longer than {_MAX_INPUT_BYTES >> 20} MiB")
    if isinstance(data, str):
        try:
            return utf8_text(data)
        except argparse.ArgumentTypeError as error:
            _usage(f"the prompt '-' on stdin {error}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        _usage(
            f"the prompt '-' on stdin holds bytes that are not UTF-8 text (at byte {error.start})"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")  # the newlines of text-mode stdin


def _messages(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The conversation to send: the optional ``--system`` message, then the prompt."""
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    prompt = _read_prompt() if args.prompt == "-" else args.prompt
    messages.append({"role": "user", "content": prompt})
    return messages


def _body_params(args: argparse.Namespace) -> dict[str, Any]:
    """The provider's request-body parameters: ``--max-tokens``, ``--temperature``,
    ``--tools`` and usage reporting."""
    provider = get_provider(args.provider)
    params = provider.body_params(
        max_tokens=args.max_tokens, temperature=getattr(args, "temperature", None)
    )
    tools = getattr(args, "tools", None)
    if tools:
        params["tools"] = _read_tools(tools)
    return params


def _read_tools(path: str) -> Any:
    """The tool definitions in the JSON file ``path`` (a list), or a one-line exit."""
    from ._files import read_text
    from ._json import JSONDecodeError, loads

    try:
        text = read_text(path, _MAX_INPUT_BYTES, "--tools")
    except ValueError as error:
        _fail(str(error), 2)
    try:
        tools = loads(text)
    except JSONDecodeError as error:
        _fail(f"--tools {path} is not JSON: {error}", 2)
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        _fail(f"--tools {path} must hold a JSON list of tools (objects)", 2)
    return tools


def _policies(args: argparse.Namespace) -> tuple[Timeouts, Retry]:
    """The deadlines and retry policy of ``--*-timeout`` and ``--retries``."""
    timeouts = Timeouts(connect=args.connect_timeout, idle=args.idle_timeout, total=args.timeout)
    return timeouts, Retry(attempts=args.retries + 1)


def _open_log(path: str | None) -> IO[str] | None:
    """The ``--log`` file, opened for writing (None without the flag), or a one-line exit."""
    if not path:
        return None
    from ._files import check_writable

    try:
        check_writable(path, "--log")  # (a FIFO without a reader: refused, not waited for)
        return open(path, "w", encoding="utf-8")  # (closed by _run_chat)
    except ValueError as error:
        _fail(str(error), 2)
    except OSError as error:
        _fail(f"cannot write --log {path}: {error.strerror or error}", 2)


class _LogWriter(DeltaLogger):
    """The ``--log`` logger: a failed write (a full disk) ends the logging, not the
    answer; ``error`` keeps it, for one line after the answer."""

    def __init__(self, file: IO[str]) -> None:
        super().__init__(file)
        self.error: OSError | None = None

    def _guarded(self, write: Callable[[], None]) -> None:
        """Run one of DeltaLogger's writes unless one failed before; keep its failure."""
        if self.error is None:
            try:
                write()
            except OSError as error:
                self.error = error

    def _on_next_core(self, value: Delta) -> None:
        self._guarded(lambda: super(_LogWriter, self)._on_next_core(value))

    def _on_error_core(self, error: Exception) -> None:
        self._guarded(lambda: super(_LogWriter, self)._on_error_core(error))

    def _on_completed_core(self) -> None:
        self._guarded(super()._on_completed_core)


class _PipePrinter(TextPrinter):
    """The live text printer; when stdout fails it stops the stream.

    ``closed``: the reader closed the pipe (``| head``); ``error``: another write error
    (a full disk), reported after the stream.
    """

    def __init__(self, file: IO[str], stream: ChatStream) -> None:
        super().__init__(file)
        self._stream = stream
        self.closed = False
        self.error: OSError | None = None

    @property
    def failed(self) -> bool:
        """Whether stdout failed (closed or in error): nothing more is printed."""
        return self.closed or self.error is not None

    def _failure(self, error: OSError) -> None:
        if isinstance(error, BrokenPipeError):
            self.closed = True
        else:
            self.error = error
        self._stream.cancel()

    def _on_next_core(self, value: Delta) -> None:
        if self.failed:
            return
        try:
            super()._on_next_core(value)
        except OSError as error:
            self._failure(error)

    def _on_error_core(self, error: Exception) -> None:
        if not self.failed:
            with contextlib.suppress(OSError):
                super()._on_error_core(error)

    def _on_completed_core(self) -> None:
        if not self.failed:
            try:
                super()._on_completed_core()
            except OSError as error:
                self._failure(error)


def _discard_stdout() -> None:
    """Point stdout's descriptor at /dev/null: what is still buffered for a closed or
    failing stdout goes nowhere at exit (no "Exception ignored" from the last flush)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's capture): nothing to flush at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _closed_pipe() -> int:
    """Exit as a program whose stdout was closed does: quietly, status 128 + SIGPIPE."""
    _discard_stdout()
    return 141


def _stdout_failed(error: OSError, command: str = "chat") -> int:
    """End ``rxgpt COMMAND`` after a write error on stdout: quietly with the closed-pipe
    status when the reader went away, else (a full disk) one line on stderr and exit 1."""
    if isinstance(error, BrokenPipeError):
        return _closed_pipe()
    _discard_stdout()
    say(f"rxgpt {command}: cannot write to stdout: {error.strerror or error}")
    return 1


def _describe(error: RxgptError) -> str:
    """The message of ``error`` in the user's words (secrets redacted)."""
    message = redact(str(error))
    if isinstance(error, StreamTimeout) and error.phase in _TIMEOUT_FLAGS:
        message += f" ({_TIMEOUT_FLAGS[error.phase]})"
    return message


def _report_error(error: RxgptError, *, started: float | None = None) -> int:
    """Print a stream's typed error as one line on stderr; exit code 1.

    The line says how many attempts were made when there were several (and over how
    long, from ``started``, a ``time.monotonic()``). Nothing goes to stdout: with
    ``--json`` a failure prints no completion (a partial one would pass for a real
    answer); in text mode what arrived is already printed.
    """
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    line = f"rxgpt: {type(error).__name__}: {_describe(error)}"
    if error.attempts > 1:
        line += f"; {error.attempts} attempts"
        if started is not None:
            line += f" over {time.monotonic() - started:.1f} s"
    say(line)
    return 1


async def _chat(
    args: argparse.Namespace,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    logger: _LogWriter | None,
) -> int:
    """Stream one answer to the printer, the ``--log`` logger and the metrics."""
    from .relay._cli import chat_relay

    timeouts, retry = _policies(args)
    printer: _PipePrinter | None = None
    async with (
        _target(args) as (base_url, api_key, model),
        Client(
            base_url=base_url,
            api_key=api_key,
            provider=args.provider,
            timeouts=timeouts,
            retry=retry,
            require_done=args.require_done,
        ) as client,
    ):
        try:
            stream = client.chat(model=model, messages=messages, **params)
        except RxgptError as error:  # no key for a hosted API: before any request
            return _report_error(error)
        started = time.monotonic()
        metrics = StreamMetrics()
        stream.subscribe(metrics)
        if logger is not None:
            stream.subscribe(logger)
        if not args.json:
            printer = _PipePrinter(sys.stdout, stream)
            stream.subscribe(printer)
        try:
            async with chat_relay(args, stream):  # --relay: publish while printing
                completion = await stream.completion()
        except OSError as error:  # (stdout, written to by the relay's code)
            return _stdout_failed(error)
        except RxgptError as error:
            if printer is not None and printer.failed and isinstance(error, StreamCancelled):
                return _stdout_failed(printer.error or BrokenPipeError())
            return _report_error(error, started=started)
    if printer is not None and printer.failed:
        return _stdout_failed(printer.error or BrokenPipeError())
    try:
        if args.json:
            print(json.dumps(completion.to_openai(), ensure_ascii=False, indent=2))
        else:
            _print_summary(_summary(metrics, completion), sys.stdout)
        sys.stdout.flush()
    except OSError as error:
        return _stdout_failed(error)
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Run ``rxgpt serve``: the embedded server (see :mod:`rxgpt.mock._cli_args`)."""
    from .mock._cli_args import serve_from_args

    return serve_from_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rxgpt`` command; Ctrl+C at any point exits with status 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130


def _main(argv: Sequence[str] | None) -> int:
    """Parse the command line and run its command."""
    if sys.stderr is None:  # (2>&-) the messages are lost, not the run
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.error("a command is needed: chat, serve, bench or relay")
    if args.command == "serve":
        return _serve(args)
    if args.command == "bench":
        from .bench import bench_from_args

        return bench_from_args(args)
    if args.command == "relay":
        from .relay._cli import run_relay_command

        return run_relay_command(args)
    from .relay._cli import follow_relay, relay_usage_error

    mistake = relay_usage_error(args) or _chat_usage_error(args)
    if mistake is not None:
        _usage(mistake)
    if sys.stdout is None:  # (>&-) before any request: the answer would go nowhere
        _fail("stdout is closed: nowhere to print the answer (>/dev/null discards it)")
    if args.from_relay:
        return asyncio.run(follow_relay(args))
    return _run_chat(args)


def _run_chat(args: argparse.Namespace) -> int:
    """``rxgpt chat PROMPT``: what can block or fail on the user's input (stdin, files)
    first, outside the event loop (Ctrl+C ends a read of stdin), then the stream."""
    _check_target(args)
    messages = _messages(args)
    params = _body_params(args)
    log_file = _open_log(args.log)
    logger = _LogWriter(log_file) if log_file is not None else None
    try:
        status = asyncio.run(_chat(args, messages, params, logger))
    finally:
        if log_file is not None and logger is not None:
            try:
                log_file.close()
            except OSError as error:  # the last buffered lines
                logger.error = logger.error or error
    if logger is not None and logger.error is not None:
        reason = logger.error.strerror or logger.error
        say(f"rxgpt chat: cannot write the --log file {args.log}: {reason}")
        return status or 1
    return status
