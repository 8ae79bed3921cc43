"""The mock server's aiohttp application: :func:`create_app` and its routing table.

Routes (all answers deterministic, see :mod:`rxgpt.mock._text`; faults, see
:mod:`rxgpt.mock._faults`; the flow shared by all endpoints, see :mod:`rxgpt.mock._dialect`):

* ``POST /v1/chat/completions``: OpenAI chat completions, streamed or not
  (:mod:`rxgpt.mock._openai_chat`);
* ``POST /v1/completions``: OpenAI legacy completions (``text_completion`` chunks,
  :mod:`rxgpt.mock._openai_completions`);
* ``POST /v1/responses``: OpenAI Responses API (:mod:`rxgpt.mock._openai_responses`);
* ``POST /v1/messages``: Anthropic Messages API (:mod:`rxgpt.mock._anthropic`);
* ``POST /api/chat``, ``GET /api/tags``, ``GET /api/version``: Ollama's native API
  (:mod:`rxgpt.mock._ollama`);
* ``GET /v1/models``, ``GET /health``.
"""

from __future__ import annotations

from aiohttp import web

from ._anthropic import ANTHROPIC_MESSAGES
from ._dialect import CONFIG_KEY, COUNTERS_KEY, MockConfig, handler
from ._faults import FaultOptions, json_response
from ._ollama import OLLAMA_CHAT, ollama_tags, ollama_version
from ._openai_chat import OPENAI_CHAT
from ._openai_completions import OPENAI_COMPLETIONS
from ._openai_responses import OPENAI_RESPONSES

__all__ = ["create_app"]

MAX_BODY_BYTES = 64 * 1024 * 1024  # large prompts for benchmarks (aiohttp's default is 1 MiB)
MODELS_CREATED = 1_700_000_000  # fixed, so /v1/models is byte-stable


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models``."""
    config = request.app[CONFIG_KEY]
    denied = OPENAI_CHAT.unauthorized(request, config)
    if denied is not None:
        return denied
    model = {"id": config.model, "object": "model", "created": MODELS_CREATED, "owned_by": "rxgpt"}
    return json_response(200, {"object": "list", "data": [model]})


async def health(request: web.Request) -> web.Response:
    """``GET /health``: liveness probe."""
    return web.Response(text="ok")


def create_app(config: MockConfig | None = None) -> web.Application:
    """Build the mock server's aiohttp application.

    Run it with handler cancellation on (as :class:`~rxgpt.mock.MockServer` and pytest-aiohttp's
    ``aiohttp_server`` do) so that a client going away ends a stalled stream at once.

    Raises:
        ValueError: ``config.faults`` holds an unknown or ill-typed fault option.
    """
    config = config or MockConfig()
    FaultOptions.parse(config.faults)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[CONFIG_KEY] = config
    app[COUNTERS_KEY] = {}
    app.router.add_post("/v1/chat/completions", handler(OPENAI_CHAT))
    app.router.add_post("/v1/completions", handler(OPENAI_COMPLETIONS))
    app.router.add_post("/v1/responses", handler(OPENAI_RESPONSES))
    app.router.add_post("/v1/messages", handler(ANTHROPIC_MESSAGES))
    app.router.add_post("/api/chat", handler(OLLAMA_CHAT))
    app.router.add_get("/api/tags", ollama_tags)
    app.router.add_get("/api/version", ollama_version)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/health", health)
    return app
