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
from typing import IO, Any

from ._client import Client
from ._completion import Completion
from ._errors import RxgptError
from ._observers import DeltaLogger, StreamMetrics, TextPrinter
from ._providers import PROVIDERS, get_provider
from ._secrets import redact

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxgpt", description="Stream LLM answers through a reactive pipeline."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser("chat", help="stream one answer to the terminal")
    chat.add_argument("prompt", help="the user message")
    chat.add_argument(
        "--provider",
        default="openai",
        choices=sorted(PROVIDERS),
        help="the API to talk to (default: openai chat completions)",
    )
    chat.add_argument("--base-url", help="API base URL (default: $OPENAI_BASE_URL or embedded)")
    chat.add_argument("--api-key", help="API key (default: $OPENAI_API_KEY)")
    chat.add_argument(
        "--model", default=None, help="model name (default: rxgpt-mock / gpt-4o-mini)"
    )
    chat.add_argument("--system", default=None, help="an optional system message")
    chat.add_argument("--log", metavar="FILE", help="write every delta as a JSON line to FILE")
    chat.add_argument(
        "--json", action="store_true", help="print only the final completion (OpenAI shape)"
    )
    chat.add_argument("--max-tokens", type=int, default=None, help="cap the answer length")

    serve = commands.add_parser("serve", help="run the embedded OpenAI-compatible server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--tokens", type=int, default=64, help="tokens per answer")
    serve.add_argument("--ttft-ms", type=float, default=0.0, help="time to first token")
    serve.add_argument("--itl-ms", type=float, default=0.0, help="inter-token latency")
    serve.add_argument("--api-key", default=None, help="require this API key")
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a server-wide fault for every request, e.g. drop_after=5, status=429, "
        "gzip=true, line_endings=crlf (JSON values; repeatable)",
    )
    return parser


@contextlib.asynccontextmanager
async def _target(args: argparse.Namespace) -> AsyncIterator[tuple[str | None, str | None, str]]:
    """Yield (base_url, api_key, model), starting the embedded server when none is set."""
    provider = get_provider(args.provider)
    env = (*provider.base_url_env, *provider.api_key_env)
    base_url = args.base_url
    api_key = args.api_key
    if base_url or api_key or any(os.environ.get(name) for name in env):
        yield base_url, api_key, args.model or _DEFAULT_MODELS.get(provider.name, "gpt-4o-mini")
        return
    from .mock import MockConfig, MockServer

    async with MockServer(MockConfig(itl_ms=8, ttft_ms=40)) as server:
        url = server.base_url if provider.name.startswith("openai") else server.url
        yield url, "sk-embedded", args.model or "rxgpt-mock"


_DEFAULT_MODELS = {
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
    "ollama": "llama3.2",
}


def _summary(metrics: StreamMetrics, completion: Completion) -> str:
    parts = []
    if metrics.ttft is not None:
        parts.append(f"ttft {metrics.ttft * 1000:.1f} ms")
    parts.append(f"{metrics.deltas} deltas")
    tokens = metrics.output_tokens if metrics.output_tokens is not None else metrics.text_deltas
    parts.append(f"{tokens} tokens")
    if metrics.tokens_per_second is not None:
        parts.append(f"{metrics.tokens_per_second:.1f} tokens/s")
    parts.append(f"finish {completion.finish_reason or '-'}")
    parts.append(f"state {completion.state}")
    return " · ".join(parts)


def _print_summary(line: str, out: IO[str]) -> None:
    try:
        from rich.console import Console

        Console(file=out, highlight=False, soft_wrap=True).print(f"[dim]{line}[/dim]")
    except ImportError:  # pragma: no cover - rich is the optional cli extra
        out.write(line + "\n")


async def _chat(args: argparse.Namespace) -> int:
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.prompt})
    params: dict[str, Any] = {}
    if args.provider in ("openai", "openai-completions"):
        params["stream_options"] = {"include_usage": True}
    if args.max_tokens is not None:
        key = {"openai-responses": "max_output_tokens", "ollama": "options"}.get(
            args.provider, "max_tokens"
        )
        params[key] = {"num_predict": args.max_tokens} if key == "options" else args.max_tokens
    log_file = open(args.log, "w", encoding="utf-8") if args.log else None  # noqa: SIM115
    try:
        async with (
            _target(args) as (base_url, api_key, model),
            Client(base_url=base_url, api_key=api_key, provider=args.provider) as client,
        ):
            stream = client.chat(model=model, messages=messages, **params)
            metrics = StreamMetrics()
            stream.subscribe(metrics)
            if log_file is not None:
                stream.subscribe(DeltaLogger(log_file))
            if not args.json:
                stream.subscribe(TextPrinter(sys.stdout))
            try:
                completion = await stream.completion()
            except RxgptError as error:
                sys.stdout.flush()
                sys.stderr.write(f"rxgpt: {type(error).__name__}: {redact(str(error))}\n")
                if args.json and error.partial is not None:
                    print(json.dumps(error.partial.to_openai(), ensure_ascii=False, indent=2))
                return 1
        if args.json:
            print(json.dumps(completion.to_openai(), ensure_ascii=False, indent=2))
        else:
            _print_summary(_summary(metrics, completion), sys.stdout)
        return 0
    finally:
        if log_file is not None:
            log_file.close()


def _serve(args: argparse.Namespace) -> int:
    from .mock import MockConfig, run_server

    faults: dict[str, Any] = {}
    for item in args.fault:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"rxgpt serve: --fault expects KEY=VALUE, got {item!r}")
        try:
            faults[key] = json.loads(value)
        except json.JSONDecodeError:
            faults[key] = value
    config = MockConfig(
        tokens=args.tokens,
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        api_key=args.api_key,
        faults=faults,
    )
    with contextlib.suppress(KeyboardInterrupt):
        run_server(args.host, args.port, config)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rxgpt`` command."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    try:
        return asyncio.run(_chat(args))
    except KeyboardInterrupt:
        return 130


