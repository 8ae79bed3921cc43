"""The relay's command line: ``rxgpt relay`` as a process, ``chat --relay`` publishing while
printing, ``chat --from-relay`` following live with the summary line, and one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from conftest import TIMEOUT, RedisProcess, env, free_port
from helpers import handshakes_completed, somaxconn
from relay_helpers import chat

import rxgpt
import rxgpt.relay as relay
from rxgpt._cli import _parser
from rxgpt.mock import MockServer
from rxgpt.relay._cli import (
    add_chat_relay_options,
    add_relay_command,
    chat_relay,
    follow_relay,
    relay_usage_error,
)
from rxgpt.relay._connect import Redis

#: ``rxgpt relay`` as the lead wires it into rxgpt._cli, standing alone.
RELAY_MAIN = (
    "import argparse, sys\n"
    "from rxgpt.relay._cli import add_relay_command, run_relay_command\n"
    "parser = argparse.ArgumentParser(prog='rxgpt')\n"
    "add_relay_command(parser.add_subparsers(dest='command', required=True))\n"
    "sys.exit(run_relay_command(parser.parse_args(sys.argv[1:])))\n"
)

WIRED = (
    "--relay"
    in subprocess.run(
        [sys.executable, "-m", "rxgpt", "chat", "--help"], capture_output=True, text=True, env=env()
    ).stdout
)


def _chat_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("prompt", nargs="?")
    parser.add_argument("--json", action="store_true")
    add_chat_relay_options(parser)
    return parser.parse_args(argv)


def test_usage_mistakes_are_one_line_messages() -> None:
    assert relay_usage_error(_chat_args("hi", "--relay", "redis://x")) == (
        "--relay-key KEY is needed with --relay and --from-relay"
    )
    assert "exclude" in (relay_usage_error(_chat_args("--relay", "u", "--from-relay", "u")) or "")
    assert "give no PROMPT" in (
        relay_usage_error(_chat_args("hi", "--from-relay", "u", "--relay-key", "k")) or ""
    )
    assert relay_usage_error(_chat_args()) == "the following arguments are required: prompt"
    assert relay_usage_error(_chat_args("--from-relay", "u", "--relay-key", "k")) is None
    assert relay_usage_error(_chat_args("hi", "--relay", "u", "--relay-key", "k")) is None


def test_building_the_parsers_does_not_import_redis() -> None:
    code = (
        "import argparse, sys\n"
        "from rxgpt.relay._cli import add_chat_relay_options, add_relay_command\n"
        "parser = argparse.ArgumentParser()\n"
        "add_relay_command(parser.add_subparsers())\n"
        "add_chat_relay_options(parser)\n"
        "import rxgpt.relay\n"
        "print('redis' in sys.modules, rxgpt.relay.DEFAULT_LEASE)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env())
    assert done.stdout.split() == ["False", "5.0"], done.stderr


def test_the_relay_command_parses_like_the_others() -> None:
    parser = argparse.ArgumentParser()
    add_relay_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["relay", "--redis", "redis://h:1/0", "--port", "0"])
    assert (args.redis, args.host, args.port, args.page) == ("redis://h:1/0", "127.0.0.1", 0, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["relay", "--redis", "u", "--port", "70000"])
    assert _parser() is not None  # the lead's parser still builds


async def test_chat_relay_publishes_and_follow_relay_prints_live(
    redis_process: RedisProcess, redis_client: Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    url = redis_process.url
    async with (
        MockServer(tokens=30, itl_ms=1) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as client,
    ):
        stream = chat(client)
        args = _chat_args("hi", "--relay", url, "--relay-key", "cli")
        async with asyncio.timeout(TIMEOUT):
            async with chat_relay(args, stream) as published:
                assert published is not None
                completion = await stream.completion()
            assert published.done and published.error is None
            assert await follow_relay(_chat_args("--from-relay", url, "--relay-key", "cli")) == 0
    out = capsys.readouterr()
    assert f"relaying to redis://127.0.0.1:{redis_process.port}/0 key cli" in out.err
    text, summary = out.out.rstrip("\n").rsplit("\n", 1)
    assert text == completion.text
    assert "deltas" in summary and "finish stop" in summary and "state complete" in summary


async def test_unreachable_redis_is_one_line_and_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with asyncio.timeout(TIMEOUT):
        assert await follow_relay(_chat_args("--from-relay", url, "--relay-key", "k")) == 1
        with pytest.raises(rxgpt.TransportError, match="cannot reach Redis"):
            async with chat_relay(_chat_args("hi", "--relay", url, "--relay-key", "k"), None):  # type: ignore[arg-type]
                pass
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rxgpt: TransportError: cannot reach Redis at")


def test_the_relay_command_reports_unreachable_redis_in_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = subprocess.run(
        [sys.executable, "-c", RELAY_MAIN, "relay", "--redis", url],
        capture_output=True,
        text=True,
        env=env(),
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cannot reach Redis at redis://127.0.0.1" in done.stderr


@contextlib.asynccontextmanager
async def _relay_command(
    redis_process: RedisProcess,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``rxgpt relay`` on a free port, once it serves: the process and its base URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RELAY_MAIN, "relay", "--redis", redis_process.url, "--port", "0",
        stdout=asyncio.subprocess.PIPE,
        env=env(),
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            assert process.stdout is not None
            line = (await process.stdout.readline()).decode()
        assert line.startswith("rxgpt relay: serving redis://127.0.0.1:"), line
        yield process, line.split(" at ")[1].split("/v1/")[0]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_relay_command_serves_sse_until_sigterm(
    redis_process: RedisProcess, redis_client: Redis
) -> None:
    async with (
        MockServer(tokens=20) as llm,
        rxgpt.Client(base_url=llm.base_url, api_key="k") as client,
    ):
        stream = chat(client)
        published = relay.publish(stream, redis_client, "served")
        completion = await stream.completion()
        await published.finished()
    async with _relay_command(redis_process) as (process, base), asyncio.timeout(30):
        async with aiohttp.ClientSession() as session:
            url = f"{base}/v1/streams/served?format=openai"
            async with session.get(url) as response:
                body = await response.text()
        content = "".join(
            e.json()["choices"][0]["delta"].get("content", "")  # type: ignore[index]
            for e in rxgpt.SSEDecoder().feed(body.encode())
            if e.event == "message" and e.data.startswith("{") and e.json()["choices"]  # type: ignore[index]
        )
        assert content == completion.text
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0


@pytest.mark.skipif(somaxconn() <= 1000, reason="net.core.somaxconn caps the listen queue")
async def test_the_relay_endpoint_queues_a_burst_of_browsers_while_it_is_stopped(
    redis_process: RedisProcess,
) -> None:
    """Browsers reconnecting at once (after a restart, say) are queued by the kernel, not
    dropped to retry their SYN 1 s later (see tests/test_listen_backlog.py)."""
    async with _relay_command(redis_process) as (process, base):
        process.send_signal(signal.SIGSTOP)
        try:
            assert handshakes_completed(int(base.rsplit(":", 1)[1]), 1000) == 1000
        finally:
            process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0


@pytest.mark.skipif(not WIRED, reason="rxgpt chat --relay is not wired into rxgpt._cli yet")
async def test_rxgpt_chat_relay_and_from_relay_end_to_end(redis_process: RedisProcess) -> None:
    url = redis_process.url
    follower = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rxgpt", "chat", "--from-relay", url, "--relay-key", "e2e",
        stdout=asyncio.subprocess.PIPE, env=env(),
    )  # fmt: skip
    producer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rxgpt", "chat", "hello", "--relay", url, "--relay-key", "e2e",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env(),
    )  # fmt: skip
    async with asyncio.timeout(40):
        produced, _ = await producer.communicate()
        followed, _ = await follower.communicate()
    assert producer.returncode == 0 and follower.returncode == 0
    assert produced.decode().split("\n")[0] == followed.decode().split("\n")[0]
    assert "state complete" in followed.decode()
