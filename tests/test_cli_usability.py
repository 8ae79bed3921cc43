"""What a user of ``rxgpt chat`` expects: tool calls shown, request flags honoured, each
provider's own variables, a clear error for a missing key, and a README that runs.

The CLI runs in a subprocess (``python -m rxgpt``, bounded in time) against real loopback
servers that record what they were sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from helpers import DONE, PROVIDER_ENV, ROLE, chunk, full_stream, prepared

import rxgpt
from rxgpt import Client, MissingAPIKeyError
from rxgpt.mock import MockServer

ROOT = Path(__file__).resolve().parent.parent
RUN_BOUND = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_ENV}
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


async def run_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rxgpt",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else clean_env(),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), RUN_BOUND)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return subprocess.CompletedProcess(args, process.returncode or 0, out.decode(), err.decode())


class Recording:
    """A loopback server that records each request (path, headers, JSON body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []

    def handler(
        self, answer: Callable[[web.Request, int], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            self.requests.append((request.path_qs, dict(request.headers), body))
            return await answer(request, len(self.requests))

        return handle


async def start(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def sse(body: bytes) -> Callable[[web.Request, int], Awaitable[web.StreamResponse]]:
    async def answer(request: web.Request, _n: int) -> web.StreamResponse:
        response: web.StreamResponse = await prepared(request)
        await response.write(body)
        await response.write_eof()
        return response

    return answer


def tool_call_stream() -> bytes:
    start = {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    fragments = ['{"city"', ': "Par', 'is"}']
    args = [chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in fragments]
    return (
        ROLE
        + chunk({"content": "Let me check."})
        + chunk(start)
        + b"".join(args)
        + chunk({}, "tool_calls")
        + DONE
    )


# --------------------------------------------------------------------------- tool calls


async def test_tool_calls_are_shown_in_text_mode_and_ttft_is_kept(tmp_path: Path) -> None:
    recording = Recording()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", recording.handler(sse(tool_call_stream())))
    server = await start(app)
    tools = tmp_path / "tools.json"
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    tools.write_text(json.dumps([tool]))
    try:
        url = str(server.make_url("/v1"))
        done = await run_cli(
            "chat", "weather?", "--base-url", url, "--api-key", "sk-x", "--tools", str(tools)
        )
    finally:
        await server.close()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Let me check."
    assert lines[1] == '→ get_weather({"city": "Paris"})'
    assert re.search(r"ttft \d+\.\d ms", lines[-1]), lines[-1]
    assert "finish tool_calls" in lines[-1]
    assert recording.requests[0][2]["tools"] == [tool]  # the file went into the body


def test_the_printer_shows_calls_whose_arguments_come_only_at_the_end() -> None:
    import io

    from rxgpt import ToolCallEnd, ToolCallStart

    out = io.StringIO()
    printer = rxgpt.TextPrinter(out)
    printer.on_next(ToolCallStart(0, 0, "id", "lookup"))
    printer.on_next(ToolCallEnd(0, 0, '{"q": 1}'))
    printer.on_completed()
    assert out.getvalue() == '→ lookup({"q": 1})\n'


# --------------------------------------------------------------------------- request flags


async def test_temperature_and_max_tokens_go_where_each_provider_reads_them() -> None:
    recording = Recording()
    gemini_body = (ROOT / "tests/fixtures/composed/gemini.sse").read_bytes()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", recording.handler(sse(full_stream(["ok"]))))
    app.router.add_post(
        "/v1beta/models/{model}:streamGenerateContent", recording.handler(sse(gemini_body))
    )
    server = await start(app)
    try:
        origin = str(server.make_url("")).rstrip("/")
        openai = await run_cli(
            "chat", "hi", "--base-url", origin + "/v1", "--api-key", "sk-x",
            "--temperature", "0.25", "--max-tokens", "9",
        )  # fmt: skip
        gemini = await run_cli(
            "chat", "hi", "--provider", "gemini", "--temperature", "1.5", "--max-tokens", "7",
            env=clean_env(GEMINI_BASE_URL=origin, GEMINI_API_KEY="g-key-123"),
        )  # fmt: skip
    finally:
        await server.close()
    assert openai.returncode == 0, openai.stderr
    assert gemini.returncode == 0, gemini.stderr
    (_, _, first), (path, headers, second) = recording.requests
    assert first["temperature"] == 0.25 and first["max_tokens"] == 9
    assert second["generationConfig"] == {"temperature": 1.5, "maxOutputTokens": 7}
    assert "temperature" not in second
    assert path.endswith(":streamGenerateContent?alt=sse")
    assert headers["x-goog-api-key"] == "g-key-123"  # GEMINI_API_KEY, the vendor's variable


async def test_retries_and_timeouts_come_from_the_flags() -> None:
    recording = Recording()

    async def flaky(request: web.Request, n: int) -> web.StreamResponse:
        if n <= 2:
            raise web.HTTPServiceUnavailable(text="busy")
        return await sse(full_stream(["fine"]))(request, n)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", recording.handler(flaky))
    server = await start(app)
    try:
        url = str(server.make_url("/v1"))
        none = await run_cli("chat", "hi", "--base-url", url, "--api-key", "k", "--retries", "0")
        recording.requests.clear()
        two = await run_cli("chat", "hi", "--base-url", url, "--api-key", "k", "--retries", "2")
    finally:
        await server.close()
    assert none.returncode == 1 and "HTTPStatusError" in none.stderr and none.stdout == ""
    assert len(none.stderr.strip().splitlines()) == 1
    assert two.returncode == 0, two.stderr
    assert two.stdout.startswith("fine")
    assert len(recording.requests) == 3


async def test_idle_timeout_flag_ends_a_silent_stream() -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = await prepared(request)
        await response.write(ROLE)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", silent)
    server = await start(app)
    try:
        url = str(server.make_url("/v1"))
        done = await run_cli(
            "chat", "hi", "--base-url", url, "--api-key", "k",
            "--idle-timeout", "0.5", "--retries", "0",
        )  # fmt: skip
    finally:
        await server.close()
    assert done.returncode == 1
    assert "StreamTimeout" in done.stderr and "idle" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--timeout", "abc"),
        ("--idle-timeout", "-1"),
        ("--temperature", "3"),
        ("--retries", "-2"),
        ("--max-tokens", "many"),
    ],
)
async def test_a_bad_flag_value_is_one_line(flag: str, value: str) -> None:
    done = await run_cli("chat", "hi", flag, value)
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and flag in done.stderr


async def test_json_failure_prints_no_completion() -> None:
    body = ROLE + chunk({"content": "half"})  # cut: no finish reason, no [DONE]
    app = web.Application()
    app.router.add_post("/v1/chat/completions", Recording().handler(sse(body)))
    server = await start(app)
    try:
        url = str(server.make_url("/v1"))
        done = await run_cli("chat", "hi", "--base-url", url, "--api-key", "k", "--json")
    finally:
        await server.close()
    assert done.returncode == 1
    assert done.stdout == ""  # no partial dressed up as a chat.completion
    assert "StreamInterrupted" in done.stderr or "MissingDone" in done.stderr


# --------------------------------------------------------------------------- providers


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("gemini", "GEMINI_API_KEY"),
    ],
)
async def test_a_hosted_provider_without_a_key_is_a_clear_error_before_any_request(
    provider: str, variable: str
) -> None:
    from rxgpt._providers import PROVIDERS

    public = PROVIDERS[provider].default_base_url
    done = await run_cli("chat", "hi", "--provider", provider, "--base-url", public)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert "MissingAPIKeyError" in line and variable in line
    with pytest.raises(MissingAPIKeyError, match=variable):
        Client(provider=provider).chat(model="m", messages=[])


@pytest.mark.parametrize("form", ["{host}:{port}", "http://{host}:{port}", "http://{host}:{port}/"])
async def test_ollama_host_with_or_without_the_scheme(
    form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with MockServer(tokens=5) as server:
        host, port = server.url.removeprefix("http://").split(":")
        monkeypatch.setenv("OLLAMA_HOST", form.format(host=host, port=port))
        async with Client(provider="ollama") as client:  # no key: Ollama needs none
            assert client.base_url == f"http://{host}:{port}"
            stream = client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
            result = await asyncio.wait_for(stream.completion(), RUN_BOUND)
    assert result.state == "complete" and result.text


def test_ollama_host_reads_like_ollamas_own_clients() -> None:
    from rxgpt._providers import ollama_host

    assert ollama_host("127.0.0.1") == "http://127.0.0.1:11434"
    assert ollama_host("localhost:8080") == "http://localhost:8080"
    assert ollama_host("https://ollama.example") == "https://ollama.example:443"
    assert ollama_host("http://[::1]") == "http://[::1]:80"
    assert ollama_host("[::1]:9") == "http://[::1]:9"
    assert ollama_host("::1") == "http://[::1]:11434"  # (ollama's own client fails on it)
    assert ollama_host("http://fe80::1") == "http://[fe80::1]:80"


async def test_anthropic_variables_point_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    async with MockServer(tokens=5, api_key="sk-ant-test-123") as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-123")
        async with Client(provider="anthropic") as client:
            stream = client.chat(model="claude", messages=[{"role": "user", "content": "hi"}])
            result = await asyncio.wait_for(stream.completion(), RUN_BOUND)
    assert result.state == "complete" and result.text


async def test_base_url_help_names_each_providers_variable() -> None:
    done = await run_cli("chat", "--help")
    text = " ".join(done.stdout.split())
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GEMINI_BASE_URL", "OLLAMA_HOST"):
        assert name in text
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        assert name in text


# --------------------------------------------------------------------------- README, subscribers


def readme_first_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("```python\n", 1)[1].split("```", 1)[0]


async def test_the_readmes_first_example_runs_as_written() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        readme_first_example(),
        cwd=ROOT,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), RUN_BOUND)
    assert process.returncode == 0, err.decode()
    assert err.decode() == ""  # no subscriber blamed, no warning
    text = out.decode()
    assert "TextDelta" in text and "'object': 'chat.completion'" in text


async def test_a_subscriber_without_an_error_handler_is_not_blamed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with MockServer(tokens=5) as server, Client(server.base_url, "sk-test") as client:
        stream = client.chat(
            model="m", messages=[{"role": "user", "content": "hi"}], mock={"status": 500},
            retry=None,
        )  # fmt: skip
        seen: list[Any] = []
        stream.subscribe(seen.append)  # no on_error: the stream's error is not its fault
        stream.observable.subscribe(seen.append)  # an Rx observer without one, too
        with (
            caplog.at_level(logging.ERROR, logger="rxgpt"),
            pytest.raises(rxgpt.HTTPStatusError),
        ):
            await asyncio.wait_for(stream.completion(), RUN_BOUND)
    assert stream.subscriber_errors == []
    assert "subscriber raised" not in caplog.text


@pytest.mark.parametrize(
    "value",
    [":11434", "", "http://:8080", ":", "h:", "[::1]:", "h/path", "http://h:1/p/"],
)
def test_ollama_host_agrees_with_the_ollama_client(value: str) -> None:
    """The ollama package's own parser is the oracle (":11434" is 127.0.0.1, not no host)."""
    from ollama._client import _parse_host

    from rxgpt._providers import ollama_host

    assert ollama_host(value) == _parse_host(value)
