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
from collections.abc import AsyncIterator, Sequence
from typing import IO, Any, NoReturn

from ._chat_stream import ChatStream
from ._cli_types import count, number, seconds, utf8_text
from ._client import Client
from ._completion import Completion
from ._deltas import Delta
from ._errors import RxgptError, StreamCancelled
from ._observers import DeltaLogger, StreamMetrics, TextPrinter
from ._providers import PROVIDERS, Provider, get_provider
from ._resilience import Retry, Timeouts
from ._secrets import redact

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
        default="openai",
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
        default=10.0,
        metavar="S",
        help="seconds to wait for the response headers (default 10; 0: none)",
    )
    chat.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=300.0,
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
        default=2,
        metavar="N",
        help="retries of a failed request before any token arrived (default 2)",
    )
    chat.add_argument(
        "--require-done",
        action="store_true",
        help="treat a stream without its end marker (data: [DONE]) as truncated",
    )

    serve = commands.add_parser("serve", help="run the embedded LLM server (every API of rxgpt)")
    from .mock._cli_args import add_serve_arguments  # (it imports this module's validators)
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


def _messages(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The conversation to send: the optional ``--system`` message, then the prompt."""
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
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
    try:
        with open(path, encoding="utf-8") as file:
            tools = json.load(file)
    except OSError as error:
        raise SystemExit(f"rxgpt chat: cannot read --tools {path}: {error.strerror}") from None
    except ValueError as error:
        raise SystemExit(f"rxgpt chat: --tools {path} is not JSON: {error}") from None
    if not isinstance(tools, list):
        raise SystemExit(f"rxgpt chat: --tools {path} must hold a JSON list of tools")
    return tools


def _policies(args: argparse.Namespace) -> tuple[Timeouts, Retry]:
    """The deadlines and retry policy of ``--*-timeout`` and ``--retries``."""
    timeouts = Timeouts(connect=args.connect_timeout, idle=args.idle_timeout, total=args.timeout)
    return timeouts, Retry(attempts=args.retries + 1)


class _PipePrinter(TextPrinter):
    """The live text printer; when stdout is closed (``| head``) it stops the stream."""

    closed = False

    def __init__(self, file: IO[str], stream: ChatStream) -> None:
        super().__init__(file)
        self._stream = stream

    def _on_next_core(self, value: Delta) -> None:
        if _PipePrinter.closed:
            return
        try:
            super()._on_next_core(value)
        except BrokenPipeError:
            _PipePrinter.closed = True
            self._stream.cancel()

    def _on_error_core(self, error: Exception) -> None:
        if not _PipePrinter.closed:
            with contextlib.suppress(BrokenPipeError):
                super()._on_error_core(error)

    def _on_completed_core(self) -> None:
        if not _PipePrinter.closed:
            try:
                super()._on_completed_core()
            except BrokenPipeError:
                _PipePrinter.closed = True


def _closed_pipe() -> int:
    """Exit as a program whose stdout was closed does: quietly, status 128 + SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush into the closed pipe
    return 141


def _report_error(error: RxgptError) -> int:
    """Print a stream's typed error as one line on stderr; exit code 1.

    Nothing goes to stdout: with ``--json`` a failure prints no completion (a partial one
    would pass for a real answer); in text mode what arrived is already printed.
    """
    sys.stdout.flush()
    sys.stderr.write(f"rxgpt: {type(error).__name__}: {redact(str(error))}\n")
    return 1


async def _chat(args: argparse.Namespace) -> int:
    """Run ``rxgpt chat``: stream one answer to the printer, logger and metrics."""
    from .relay._cli import chat_relay

    messages = _messages(args)
    params = _body_params(args)
    timeouts, retry = _policies(args)
    try:
        log_file = open(args.log, "w", encoding="utf-8") if args.log else None  # noqa: SIM115
    except OSError as error:
        raise SystemExit(f"rxgpt chat: cannot write the log {args.log}: {error.strerror}") from None
    try:
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
            metrics = StreamMetrics()
            stream.subscribe(metrics)
            if log_file is not None:
                stream.subscribe(DeltaLogger(log_file))
            if not args.json:
                stream.subscribe(_PipePrinter(sys.stdout, stream))
            try:
                async with chat_relay(args, stream):  # --relay: publish while printing
                    completion = await stream.completion()
            except BrokenPipeError:
                return _closed_pipe()
            except RxgptError as error:
                if isinstance(error, StreamCancelled) and _PipePrinter.closed:
                    return _closed_pipe()
                return _report_error(error)
        if _PipePrinter.closed:
            return _closed_pipe()
        try:
            if args.json:
                print(json.dumps(completion.to_openai(), ensure_ascii=False, indent=2))
            else:
                _print_summary(_summary(metrics, completion), sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            return _closed_pipe()
        return 0
    finally:
        if log_file is not None:
            log_file.close()


def _serve(args: argparse.Namespace) -> int:
    """Run ``rxgpt serve``: the embedded server (see :mod:`rxgpt.mock._cli_args`)."""
    from .mock._cli_args import serve_from_args

    return serve_from_args(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rxgpt`` command."""
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

    mistake = relay_usage_error(args)
    if mistake is not None:
        parser.exit(2, f"rxgpt chat: {mistake} (see --help)\n")
    try:
        if args.from_relay:
            return asyncio.run(follow_relay(args))
        return asyncio.run(_chat(args))
    except KeyboardInterrupt:
        return 130
