"""Provider facts live in rxgpt._providers: protocols, body parameters, the docs' table.

The table "Provider names and protocol names" in docs/providers.md is checked against
the code, row by row (:func:`provider_rows` is what generates it), and the CLI's
``--max-tokens`` is checked end to end against the embedded server of every provider.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from helpers import PROVIDER_ENV

from rxgpt._cli import _body_params, _parser, main
from rxgpt._protocols import PROTOCOLS
from rxgpt._providers import PROVIDERS, Provider
from rxgpt.mock import generate_tokens

DOCS = Path(__file__).resolve().parent.parent / "docs" / "providers.md"
HEADING = "## Provider names and protocol names"
PROMPT = "Explain server-sent events in one paragraph."
#: The providers the embedded server speaks: every one the CLI offers.
EMBEDDED = sorted(PROVIDERS)


def _names(names: tuple[str, ...]) -> str:
    """A table cell listing environment variables (— for none)."""
    return ", ".join(f"`{name}`" for name in names) or "—"


def endpoint(provider: Provider) -> str:
    """The path a provider's stream request goes to, below its default base URL's host."""
    url = provider.request(provider.base_path, None, "{model}", [], {}).url
    return unquote(url)


def framing(protocol: str) -> str:
    """How a protocol's body is framed: NDJSON lines or server-sent events."""
    return "NDJSON" if PROTOCOLS[protocol].framing == "ndjson" else "SSE"


def provider_rows() -> list[list[str]]:
    """The docs table's rows, from the code: one per provider, cells without backticks."""
    return [
        [
            p.name,
            p.protocol,
            framing(p.protocol),
            endpoint(p),
            ", ".join(p.api_key_env) or "—",
            ", ".join(p.base_url_env) or "—",
        ]
        for p in PROVIDERS.values()
    ]


def provider_table() -> str:
    """The markdown table of docs/providers.md (print it to regenerate the docs)."""
    lines = [
        "| provider name | protocol (decoder) name | framing | endpoint path "
        "| key env var | base URL env var |",
        "|---|---|---|---|---|---|",
    ]
    for p in PROVIDERS.values():
        cells = [
            f"`{p.name}`",
            f"`{p.protocol}`",
            framing(p.protocol),
            f"`POST {endpoint(p)}`",
            _names(p.api_key_env),
            _names(p.base_url_env),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


README = DOCS.parent.parent / "README.md"
README_HEADING = "## Where each provider is"


def readme_table() -> str:
    """The README's table of base URL, key variable and path per provider (from the code)."""
    lines = [
        "| `--provider` | default base URL | key variable | base URL variable | path |",
        "|---|---|---|---|---|",
    ]
    for p in PROVIDERS.values():
        key = _names(p.api_key_env) if p.hosted else "— (none needed)"
        cells = [f"`{p.name}`", f"`{p.default_base_url}`", key, _names(p.base_url_env)]
        cells.append(f"`{endpoint(p)}`")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_the_readme_table_of_providers_is_the_codes() -> None:
    text = README.read_text(encoding="utf-8")
    assert README_HEADING in text
    section = text.split(README_HEADING, 1)[1].split("\n## ", 1)[0]
    assert readme_table() in section


def documented_rows() -> list[list[str]]:
    """The rows of the docs table under :data:`HEADING`, cells without backticks."""
    text = DOCS.read_text(encoding="utf-8")
    assert HEADING in text, f"{DOCS.name} has no section {HEADING!r}"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [
        [cell.strip().replace("`", "").removeprefix("POST ") for cell in row.strip("|").split("|")]
        for row in rows
    ]


# --------------------------------------------------------------------------- names


def test_every_provider_speaks_a_known_protocol() -> None:
    for name, provider in PROVIDERS.items():
        assert provider.name == name
        assert provider.protocol in PROTOCOLS, (name, provider.protocol)


def test_the_docs_table_lists_exactly_the_providers_with_their_protocol() -> None:
    documented = {row[0]: row[1] for row in documented_rows()}
    assert documented == {name: p.protocol for name, p in PROVIDERS.items()}


def test_the_docs_table_endpoints_and_env_vars_are_the_codes() -> None:
    expected = [row[:1] + row[3:] for row in provider_rows()]
    assert [row[:1] + row[3:] for row in documented_rows()] == expected


def test_the_docs_table_framing_is_the_codes() -> None:
    assert [row[:3] for row in documented_rows()] == [row[:3] for row in provider_rows()]


# --------------------------------------------------------------------------- body parameters


@pytest.mark.parametrize(
    ("provider", "limit"),
    [
        ("openai", {"max_tokens": 7}),
        ("openai-completions", {"max_tokens": 7}),
        ("openai-responses", {"max_output_tokens": 7}),
        ("anthropic", {"max_tokens": 7}),
        ("gemini", {"generationConfig": {"maxOutputTokens": 7}}),
        ("ollama", {"options": {"num_predict": 7}}),
    ],
)
def test_limit_params_put_the_cap_where_the_provider_reads_it(
    provider: str, limit: dict[str, object]
) -> None:
    assert PROVIDERS[provider].limit_params(7) == limit


def test_usage_params_ask_openai_for_usage_and_are_a_fresh_copy() -> None:
    for name in ("openai", "openai-completions"):
        params = PROVIDERS[name].usage_params()
        assert params == {"stream_options": {"include_usage": True}}
        params["stream_options"]["include_usage"] = False  # the caller's to change
        assert PROVIDERS[name].usage_params() == {"stream_options": {"include_usage": True}}
    for name in ("openai-responses", "anthropic", "gemini", "ollama"):
        assert PROVIDERS[name].usage_params() == {}


def test_the_cli_body_params_come_from_the_provider() -> None:
    for name, provider in PROVIDERS.items():
        args = _parser().parse_args(["chat", "hi", "--provider", name, "--max-tokens", "5"])
        assert _body_params(args) == {**provider.usage_params(), **provider.limit_params(5)}
        args = _parser().parse_args(["chat", "hi", "--provider", name])
        assert _body_params(args) == provider.usage_params()


def test_default_models_and_base_urls() -> None:
    models = {name: p.default_model for name, p in PROVIDERS.items()}
    assert models == {
        "openai": "gpt-4o-mini",
        "openai-completions": "gpt-4o-mini",
        "openai-responses": "gpt-4o-mini",
        "anthropic": "claude-sonnet-4-5",
        "gemini": "gemini-2.5-flash",
        "ollama": "llama3.2",
    }
    for name, provider in PROVIDERS.items():
        # OpenAI's base URL includes /v1, the others' do not (each vendor SDK's convention)
        expected = "http://h:1/v1" if name.startswith("openai") else "http://h:1"
        assert provider.base_url_at("http://h:1") == expected
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(provider.default_base_url))
        assert provider.base_url_at(origin) == provider.default_base_url


# --------------------------------------------------------------------------- the CLI, end to end


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("provider", EMBEDDED)
def test_max_tokens_caps_the_answer_of_every_embedded_provider(
    provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", PROMPT, "--provider", provider, "--max-tokens", "3", "--json"]) == 0
    completion = json.loads(capsys.readouterr().out)
    messages = [{"role": "user", "content": PROMPT}]
    expected = "".join(generate_tokens(messages, "rxgpt-mock", 3))
    assert completion["choices"][0]["message"]["content"] == expected
    assert completion["choices"][0]["finish_reason"] == "length"
    if PROVIDERS[provider].usage_params():
        assert completion["usage"]["completion_tokens"] == 3
