"""The ``rxgpt`` command: chat against the embedded server, the logger, --json, serve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROVIDER_ENV

from rxgpt._cli import main
from rxgpt.mock import MockServer, generate_tokens

PROMPT = "Explain server-sent events in one paragraph."


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


def expected_text(model: str = "rxgpt-mock", tokens: int = 64) -> str:
    messages = [{"role": "user", "content": PROMPT}]
    return "".join(generate_tokens(messages, model, tokens))


def test_chat_json_uses_the_embedded_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", PROMPT, "--json"]) == 0
    out = capsys.readouterr().out
    completion = json.loads(out)  # --json prints only the final completion
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == expected_text()
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"]["completion_tokens"] == 64


def test_chat_streams_text_then_one_summary_line_and_logs_deltas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "deltas.jsonl"
    assert main(["chat", PROMPT, "--log", str(log), "--max-tokens", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == expected_text(tokens=10)
    assert len(out) == 2
    summary = out[1]
    for part in ("ttft", "deltas", "10 tokens", "tokens/s", "finish length", "state complete"):
        assert part in summary
    records = [json.loads(line) for line in log.read_text().splitlines()]
    texts = [r["text"] for r in records if r["type"] == "TextDelta"]
    assert "".join(texts) == expected_text(tokens=10)
    assert records[-1] == {"type": "end", "state": "complete", "t": records[-1]["t"]}
    assert all("sk-embedded" not in line for line in log.read_text().splitlines())


@pytest.mark.parametrize(
    "provider", ["anthropic", "openai-responses", "openai-completions", "ollama", "gemini"]
)
def test_chat_every_provider_against_the_embedded_server(
    provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", PROMPT, "--provider", provider, "--json"]) == 0
    completion = json.loads(capsys.readouterr().out)
    assert completion["choices"][0]["message"]["content"] == expected_text()


async def test_chat_against_a_given_base_url_reports_typed_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with MockServer(api_key="sk-right-key-000000") as server:
        args = ["chat", PROMPT, "--base-url", server.base_url, "--api-key", "sk-wrong-key-0000000"]
        # run the CLI in a subprocess: main() runs its own event loop
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        proc = await _run(args, env)
    assert proc.returncode == 1
    assert "AuthenticationError" in proc.stderr
    assert "sk-wrong-key-0000000" not in proc.stderr + proc.stdout


async def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rxgpt",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return subprocess.CompletedProcess(args, process.returncode or 0, out.decode(), err.decode())
