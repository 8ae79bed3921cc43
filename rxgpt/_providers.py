"""How to ask each provider for a stream: URL, auth headers, request body, protocol.

Strategy: one small :class:`Provider` record per provider, with a function that turns the
neutral ``(model, messages, params)`` into the provider's request. The client picks the
framing and decoder from ``Provider.protocol``. Base URLs follow each vendor's own SDK
convention: OpenAI's includes ``/v1``, Anthropic's, Gemini's and Ollama's do not.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["PROVIDERS", "Provider", "Request", "get_provider"]

Messages = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request: where to send it, with which headers and JSON body."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]


def _text(content: Any) -> str:
    """The text of a message's content (a string, or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)


def _bearer(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _openai_chat(
    base: str, key: str | None, model: str, messages: Messages, params: dict[str, Any]
) -> Request:
    body = {"model": model, "messages": list(messages), **params, "stream": True}
    return Request(f"{base}/chat/completions", _bearer(key), body)


def _openai_completions(
    base: str, key: str | None, model: str, messages: Messages, params: dict[str, Any]
) -> Request:
    prompt = params.pop("prompt", None)
    if prompt is None:
        prompt = "\n\n".join(_text(m.get("content")) for m in messages)
    body = {"model": model, "prompt": prompt, **params, "stream": True}
    return Request(f"{base}/completions", _bearer(key), body)


def _openai_responses(
    base: str, key: str | None, model: str, messages: Messages, params: dict[str, Any]
) -> Request:
    body = {"model": model, "input": list(messages), **params, "stream": True}
    return Request(f"{base}/responses", _bearer(key), body)


def _anthropic(
    base: str, key: str | None, model: str, messages: Messages, params: dict[str, Any]
) -> Request:
    system = [_text(m.get("content")) for m in messages if m.get("role") == "system"]
    turns = [dict(m) for m in messages if m.get("role") != "system"]
    body: dict[str, Any] = {"model": model, "messages": turns, "max_tokens": 1024}
    if system and "system" not in params:
        body["system"] = "\n\n".join(system)
    body.update(params)
    body["stream"] = True
    headers = {"anthropic-version": "2023-06-01"}
    if key:
        headers["x-api-key"] = key
    return Request(f"{base}/v1/messages", headers, body)


def _gemini(
    base: str, key: str | None, model: str, messages: Messages, params: dict[str, Any]
) -> Request:
    contents = []
    system = []
    for message in messages:
        role = message.get("role")
        text = _text(message.get("content"))
        if role == "system":
            system.append(text)
        else:
            gemini_role = "model" if role == "assistant" else "user"
            contents.append({"role": gemini_role, "parts": [{"text": text}]})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    body.update(params)
    headers = {"x-goog-api-key": key} if key else {}
    url = f"{base}/v1beta/models/{quote(model, safe='')}:streamGenerateContent?alt=sse"
    return Request(url, headers, body)


def _ollama(
    base: str, key: str | None, model: str, messages: Messages, params: dict[str, Any]
) -> Request:
    body = {"model": model, "messages": list(messages), **params, "stream": True}
    return Request(f"{base}/api/chat", _bearer(key), body)


def _as_given(url: str) -> str:
    return url


def ollama_host(value: str) -> str:
    """``OLLAMA_HOST`` as Ollama's own clients read it: scheme and port are optional.

    ``127.0.0.1``, ``localhost:8080``, ``http://host:11434`` and ``https://host`` all
    work; a missing scheme is ``http://``, a missing port 11434 (80/443 with a scheme).
    """
    value = value.strip().rstrip("/")
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "http", value
    host, _, path = rest.partition("/")
    if not host or (host.startswith(":") and host.count(":") == 1):
        # "" or ":8080": Ollama's clients mean 127.0.0.1 (not "::1", an IPv6 address)
        host = "127.0.0.1" + host
    host = host.removesuffix(":")  # "host:": the default port
    if host.count(":") > 1 and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address without brackets ("::1"): no port in it
    # an IPv6 literal is [::1] or [::1]:port
    has_port = "]:" in host if host.startswith("[") else ":" in host
    if not has_port:
        host += ":11434" if not sep else (":443" if scheme == "https" else ":80")
    return f"{scheme}://{host}" + (f"/{path}" if path else "")


#: Neutral request parameter → where each provider's body takes it, unless it says.
_PARAM_PATHS: Mapping[str, tuple[str, ...]] = {
    "max_tokens": ("max_tokens",),
    "temperature": ("temperature",),
}


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider: its protocol, default base URL, environment variables, request builder.

    ``default_model`` is the model asked for when none is given; ``param_paths`` says
    where the request body takes the neutral parameters ``max_tokens`` and
    ``temperature`` (a nested key path, e.g. Ollama's ``options.num_predict``);
    ``usage_options`` are the body parameters that make the stream report token usage
    (empty when the provider always does). ``hosted``: the default base URL is a public
    API, which needs a key. ``normalize_url`` reads a base URL the vendor's way (Ollama's
    ``OLLAMA_HOST`` may lack the scheme and port).
    """

    name: str
    protocol: str
    default_base_url: str
    base_url_env: tuple[str, ...]
    api_key_env: tuple[str, ...]
    build: Callable[[str, str | None, str, Messages, dict[str, Any]], Request]
    default_model: str
    param_paths: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _PARAM_PATHS)
    usage_options: Mapping[str, Any] = field(default_factory=dict)
    hosted: bool = True
    normalize_url: Callable[[str], str] = _as_given

    def request(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        messages: Messages,
        params: Mapping[str, Any],
    ) -> Request:
        """The HTTP request that streams an answer to ``messages``."""
        return self.build(base_url.rstrip("/"), api_key, model, messages, dict(params))

    @property
    def base_path(self) -> str:
        """The path part of the base URL (``/v1`` for OpenAI, empty for the others)."""
        return urlsplit(self.default_base_url).path.rstrip("/")

    def base_url_at(self, origin: str) -> str:
        """The base URL of this provider's API served at ``origin`` (``http://host:port``)."""
        return origin.rstrip("/") + self.base_path

    def limit_params(self, max_tokens: int) -> dict[str, Any]:
        """The body parameters that cap the answer at ``max_tokens`` tokens."""
        return self.body_params(max_tokens=max_tokens, usage=False)

    def body_params(
        self,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        usage: bool = True,
    ) -> dict[str, Any]:
        """The body parameters for the neutral settings given (None: not sent), merged
        with the usage options (unless ``usage=False``)."""
        params: dict[str, Any] = self.usage_params() if usage else {}
        for name, value in (("max_tokens", max_tokens), ("temperature", temperature)):
            if value is None:
                continue
            path = self.param_paths.get(name, _PARAM_PATHS[name])
            target = params
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = value
        return params

    def usage_params(self) -> dict[str, Any]:
        """The body parameters that make the stream report token usage."""
        return copy.deepcopy(dict(self.usage_options))


_OPENAI_BASE = "https://api.openai.com/v1"
_OPENAI_ENV = (("OPENAI_BASE_URL",), ("OPENAI_API_KEY",))
_OPENAI_MODEL = "gpt-4o-mini"
_INCLUDE_USAGE: Mapping[str, Any] = {"stream_options": {"include_usage": True}}

#: Provider name → :class:`Provider`.
PROVIDERS: dict[str, Provider] = {
    "openai": Provider(
        "openai",
        "openai-chat",
        _OPENAI_BASE,
        *_OPENAI_ENV,
        _openai_chat,
        _OPENAI_MODEL,
        usage_options=_INCLUDE_USAGE,
    ),
    "openai-completions": Provider(
        "openai-completions",
        "openai-completions",
        _OPENAI_BASE,
        *_OPENAI_ENV,
        _openai_completions,
        _OPENAI_MODEL,
        usage_options=_INCLUDE_USAGE,
    ),
    "openai-responses": Provider(
        "openai-responses",
        "openai-responses",
        _OPENAI_BASE,
        *_OPENAI_ENV,
        _openai_responses,
        _OPENAI_MODEL,
        param_paths={**_PARAM_PATHS, "max_tokens": ("max_output_tokens",)},
    ),
    "anthropic": Provider(
        "anthropic",
        "anthropic",
        "https://api.anthropic.com",
        ("ANTHROPIC_BASE_URL",),
        ("ANTHROPIC_API_KEY",),
        _anthropic,
        "claude-sonnet-4-5",
    ),
    "gemini": Provider(
        "gemini",
        "gemini",
        "https://generativelanguage.googleapis.com",
        ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"),
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        _gemini,
        "gemini-2.5-flash",
        param_paths={
            "max_tokens": ("generationConfig", "maxOutputTokens"),
            "temperature": ("generationConfig", "temperature"),
        },
    ),
    "ollama": Provider(
        "ollama",
        "ollama",
        "http://127.0.0.1:11434",
        ("OLLAMA_HOST",),
        (),
        _ollama,
        "llama3.2",
        param_paths={
            "max_tokens": ("options", "num_predict"),
            "temperature": ("options", "temperature"),
        },
        hosted=False,
        normalize_url=ollama_host,
    ),
}


def get_provider(name: str) -> Provider:
    """The :class:`Provider` called ``name``; ValueError names the known ones otherwise."""
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ValueError(f"unknown provider {name!r}; known: {known}") from None
