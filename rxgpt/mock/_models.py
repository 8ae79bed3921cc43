"""The mock's model catalog: the routes that describe its model instead of answering.

The server serves any model name it is asked for and lists one, :attr:`MockConfig.model`.
Each API's own routes and shapes, so its SDK's model calls work:

* OpenAI ``GET /v1/models`` and ``GET /v1/models/{model}`` (``object: "model"``); the same
  paths in Anthropic's shapes (``type: "model"``, ``has_more``) when the request carries an
  ``anthropic-version`` header, and in Gemini's with a Gemini key (``x-goog-api-key`` or
  ``?key=``): the three APIs share ``/v1/models`` (see :func:`api_of`);
* Gemini ``GET /v1beta/models`` and ``GET /v1beta/models/{model}``;
* Ollama ``GET /api/tags`` (the models), ``POST /api/show`` (one model's details and
  capabilities), ``GET /api/ps`` (the loaded models: the one, always loaded),
  ``GET /api/version`` and ``GET /`` ("Ollama is running").

Token counting (Anthropic ``POST /v1/messages/count_tokens``, Gemini ``:countTokens``) is
:func:`rxgpt.mock._dialect.counted`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from aiohttp import web

from ._anthropic import ANTHROPIC_MESSAGES
from ._dialect import (
    CONFIG_KEY,
    CONTEXT_LENGTH,
    BadRequest,
    Dialect,
    model_of,
    read_json,
)
from ._faults import json_response
from ._gemini import GEMINI_WHOLE
from ._ollama import OLLAMA_CHAT, OLLAMA_VERSION
from ._openai_chat import OPENAI_CHAT

__all__ = [
    "CONTEXT_LENGTH",
    "api_of",
    "get_model",
    "list_models",
    "ollama_ps",
    "ollama_root",
    "ollama_show",
    "ollama_tags",
    "ollama_version",
]

Api = Literal["openai", "anthropic", "gemini", "ollama"]
OUTPUT_LIMIT = 32_768
"""The output token limit the catalog states (nominal, as :data:`CONTEXT_LENGTH`)."""
MODELS_CREATED = 1_700_000_000  # fixed, so the catalog is byte-stable
MODELS_CREATED_AT = "2023-11-14T22:13:20Z"  # the same instant, as Anthropic writes it
_DIALECTS: Mapping[Api, Dialect] = {
    "openai": OPENAI_CHAT,
    "anthropic": ANTHROPIC_MESSAGES,
    "gemini": GEMINI_WHOLE,
    "ollama": OLLAMA_CHAT,
}


def api_of(request: web.Request) -> Api:
    """The API a request belongs to, by its path, then by the headers only its SDK sends.

    Gemini's paths (``/v1beta/``, ``/v1/models/{model}:{method}``) or key; Ollama's
    ``/api/``; Anthropic's ``/v1/messages`` or ``anthropic-version`` header; else OpenAI.
    """
    path = request.path
    if path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path):
        return "gemini"
    if path.startswith("/api/"):
        return "ollama"
    if "anthropic-version" in request.headers or path.startswith("/v1/messages"):
        return "anthropic"
    if "x-goog-api-key" in request.headers or "key" in request.query:
        return "gemini"
    return "openai"


def _model(api: Api, name: str) -> dict[str, Any]:
    """One model in ``api``'s shape."""
    if api == "anthropic":
        return {
            "type": "model",
            "id": name,
            "display_name": name,
            "created_at": MODELS_CREATED_AT,
            "max_input_tokens": CONTEXT_LENGTH,
            "max_tokens": OUTPUT_LIMIT,
        }
    if api == "gemini":
        return {
            "name": f"models/{name}",
            "version": "001",
            "displayName": name,
            "description": "rxgpt's embedded server",
            "inputTokenLimit": CONTEXT_LENGTH,
            "outputTokenLimit": OUTPUT_LIMIT,
            "supportedGenerationMethods": [
                "generateContent",
                "streamGenerateContent",
                "countTokens",
            ],
            "thinking": True,
        }
    return {"id": name, "object": "model", "created": MODELS_CREATED, "owned_by": "rxgpt"}


def _refused(request: web.Request, api: Api) -> web.Response | None:
    """``api``'s 401 unless the request carries the configured key (else ``None``)."""
    return _DIALECTS[api].unauthorized(request, request.app[CONFIG_KEY])


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models`` (OpenAI, Anthropic or Gemini: :func:`api_of`), ``/v1beta/models``."""
    api = api_of(request)
    denied = _refused(request, api)
    if denied is not None:
        return denied
    model = _model(api, request.app[CONFIG_KEY].model)
    if api == "anthropic":
        body = {"data": [model], "has_more": False, "first_id": model["id"], "last_id": model["id"]}
    elif api == "gemini":
        body = {"models": [model]}
    else:
        body = {"object": "list", "data": [model]}
    return json_response(200, body)


async def get_model(request: web.Request) -> web.Response:
    """``GET /v1/models/{model}`` and ``/v1beta/models/{model}``: any name is served."""
    api = api_of(request)
    denied = _refused(request, api)
    if denied is not None:
        return denied
    name = request.match_info["model"]  # (any name: a/b too)
    if api == "gemini":
        name = name.removeprefix("models/")
        if ":" in name:
            message = f"Method not found: GET models/{name}"
            return _DIALECTS[api].error(404, message, kind="not_found")
    return json_response(200, _model(api, name))


# (a chat template as tool-calling models have one: clients read `.Tools` in it as the sign)
_TEMPLATE = (
    "{{- if .System }}<|system|>{{ .System }}\n{{ end }}"
    "{{- if .Tools }}<|tools|>{{ range .Tools }}{{ . }}\n{{ end }}{{ end }}"
    "{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}\n{{ end }}<|assistant|>"
)


def _ollama_model(name: str) -> dict[str, Any]:
    """The fields Ollama's model lists share."""
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00Z",
        "size": 0,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "rxgpt",
            "families": ["rxgpt"],
            "parameter_size": "0B",
            "quantization_level": "none",
        },
    }


async def ollama_tags(request: web.Request) -> web.Response:
    """``GET /api/tags``: the configured model."""
    denied = _refused(request, "ollama")
    if denied is not None:
        return denied
    return json_response(200, {"models": [_ollama_model(request.app[CONFIG_KEY].model)]})


async def ollama_ps(request: web.Request) -> web.Response:
    """``GET /api/ps``: the loaded models (the configured one, always loaded)."""
    denied = _refused(request, "ollama")
    if denied is not None:
        return denied
    model = _ollama_model(request.app[CONFIG_KEY].model)
    del model["modified_at"]
    loaded = {
        **model,
        "expires_at": "2099-01-01T00:00:00Z",
        "size_vram": 0,
        "context_length": CONTEXT_LENGTH,
    }
    return json_response(200, {"models": [loaded]})


async def ollama_show(request: web.Request) -> web.Response:
    """``POST /api/show`` (``{"model": name}``): a model's details, context length and
    capabilities (completion, tools, thinking: what the mock answers)."""
    denied = _refused(request, "ollama")
    if denied is not None:
        return denied
    try:
        body = await read_json(request)
        if isinstance(body, dict) and "model" not in body and "name" in body:
            body = {"model": body["name"]}  # (Ollama's older field)
        name = model_of(body, request.app[CONFIG_KEY])
    except BadRequest as exc:
        return OLLAMA_CHAT.error(400, exc.message, kind="")
    model = _ollama_model(name)
    show = {
        "license": "",
        "modelfile": f"# Modelfile of rxgpt's embedded server\nFROM {name}\n",
        "parameters": "",
        "template": _TEMPLATE,
        "details": model["details"],
        "model_info": {
            "general.architecture": "rxgpt",
            "general.parameter_count": 0,
            "rxgpt.context_length": CONTEXT_LENGTH,
        },
        "capabilities": ["completion", "tools", "thinking"],
        "modified_at": model["modified_at"],
    }
    return json_response(200, show)


async def ollama_version(request: web.Request) -> web.Response:
    """``GET /api/version``."""
    return json_response(200, {"version": OLLAMA_VERSION})


async def ollama_root(request: web.Request) -> web.Response:
    """``GET /`` (and ``HEAD``): Ollama's liveness answer."""
    return web.Response(text="Ollama is running")
