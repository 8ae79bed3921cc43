"""The mock server's aiohttp application: :func:`create_app` and its routing table.

Routes (all answers deterministic, see :mod:`rxgpt.mock._text`; faults, see
:mod:`rxgpt.mock._faults`; the flow shared by all endpoints, see :mod:`rxgpt.mock._dialect`):

* ``POST /v1/chat/completions``: OpenAI chat completions, streamed or not
  (:mod:`rxgpt.mock._openai_chat`);
* ``POST /v1/completions``: OpenAI legacy completions (``text_completion`` chunks,
  :mod:`rxgpt.mock._openai_completions`);
* ``POST /v1/responses``: OpenAI Responses API (:mod:`rxgpt.mock._openai_responses`);
* ``POST /v1/messages``: Anthropic Messages API (:mod:`rxgpt.mock._anthropic`);
* ``POST /v1/messages/count_tokens``: Anthropic's token count;
* ``POST /api/chat``: Ollama's native chat (:mod:`rxgpt.mock._ollama`);
* ``POST /api/generate``: Ollama's native completion (``response`` lines);
* ``POST /v1beta/models/{model}:streamGenerateContent`` (``?alt=sse``: SSE; without: a
  streamed JSON array), ``:generateContent`` and ``:countTokens``: Google Gemini
  (:mod:`rxgpt.mock._gemini`), also under ``/v1/`` (the stable version, google-genai's
  default);
* the model catalog (:mod:`rxgpt.mock._models`): ``GET /v1/models`` and
  ``/v1/models/{model}`` (in OpenAI's, Anthropic's or Gemini's shape), ``GET
  /v1beta/models[/{model}]``, and Ollama's ``GET /api/tags``, ``POST /api/show``, ``GET
  /api/ps``, ``GET /api/version`` and ``GET /``;
* ``GET /health``, ``GET /metrics`` (Prometheus, vLLM's names).

Unknown routes get a 404 (405 for a wrong method) in the error shape of the API the request
belongs to (:func:`~rxgpt.mock._models.api_of`: Gemini under ``/v1beta/`` or
``/v1/models/{model}:...`` or with a Gemini key, Ollama under ``/api/``, Anthropic for
``/v1/messages`` or an ``anthropic-version`` header, OpenAI otherwise).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ._anthropic import ANTHROPIC_MESSAGES
from ._dialect import (
    CONFIG_KEY,
    COUNTERS_KEY,
    ENGINE_KEY,
    PLAN_CACHE_KEY,
    MockConfig,
    counted,
    handler,
    parse_options,
)
from ._engine import Engine
from ._faults import error_body, json_response
from ._gemini import gemini_error, gemini_route
from ._metrics import Metrics
from ._models import (
    api_of,
    get_model,
    list_models,
    ollama_ps,
    ollama_root,
    ollama_show,
    ollama_tags,
    ollama_version,
)
from ._ollama import OLLAMA_CHAT, OLLAMA_GENERATE
from ._openai_chat import OPENAI_CHAT
from ._openai_completions import OPENAI_COMPLETIONS
from ._openai_responses import OPENAI_RESPONSES
from ._timeline import TimelineRecorder

__all__ = ["create_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY_BYTES = 64 * 1024 * 1024  # large prompts for benchmarks (aiohttp's default is 1 MiB)


async def anthropic_count_tokens(request: web.Request) -> web.Response:
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": n}`` for a Messages body."""
    return await counted(request, ANTHROPIC_MESSAGES, lambda tokens: {"input_tokens": tokens})


async def health(request: web.Request) -> web.Response:
    """``GET /health``: liveness probe."""
    return web.Response(text="ok")


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text with vLLM's names (see :mod:`rxgpt.mock._metrics`)."""
    text = request.app[ENGINE_KEY].metrics.render()
    return web.Response(
        text=text,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Prometheus-Format": "0.0.4"},
    )


@web.middleware
async def _vendor_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes and methods get the JSON error shape of the API their path belongs to;
    a client gone before its answer gets nothing (no 500 logged with a traceback)."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        return route_error(request, exc.status)
    except ConnectionError:  # the client went away before its answer (it gave up waiting):
        gone = web.Response()  # nothing to tell it, nor a traceback to log (aiohttp's 500)
        gone.force_close()
        return gone


def route_error(request: web.Request, status: int) -> web.Response:
    """A 404 / 405 in the envelope of the API that ``request`` belongs to (:func:`api_of`)."""
    what = f"{request.method} {request.path}"
    api = api_of(request)
    if api == "gemini":
        return gemini_error(status, f"Method not found: {what}")
    if api == "ollama":
        return json_response(status, {"error": f"{status} page not found"})
    if api == "anthropic":
        return ANTHROPIC_MESSAGES.error(status, f"Not found: {what}", kind="not_found_error")
    message = f"Invalid URL ({what})"
    return json_response(status, error_body(message, "invalid_request_error"))


def make_engine(config: MockConfig) -> Engine:
    """The engine of one server process, with its metrics and (optional) timeline."""
    recorder = None
    if config.timeline or config.timeline_path:
        recorder = TimelineRecorder(config.timeline_path, keep=config.timeline)
    holder: list[Engine] = []
    metrics_ = Metrics(config.model, lambda: holder[0].gauges())
    engine = Engine(
        max_num_seqs=config.max_num_seqs,
        time_factor_under_load=config.time_factor_under_load,
        metrics=metrics_,
        recorder=recorder,
        seed=config.seed,
    )
    holder.append(engine)
    return engine


async def _close_engine(app: web.Application) -> None:
    await app[ENGINE_KEY].close()


def create_app(config: MockConfig | None = None) -> web.Application:
    """Build the mock server's aiohttp application.

    Run it with handler cancellation on (as :class:`~rxgpt.mock.MockServer` and pytest-aiohttp's
    ``aiohttp_server`` do) so that a client going away ends a stalled stream at once.

    Raises:
        ValueError: ``config.faults`` holds an unknown or ill-typed fault option.
    """
    config = config or MockConfig()
    parse_options(config.faults, config)
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_vendor_errors])
    app[CONFIG_KEY] = config
    app[COUNTERS_KEY] = {}
    app[ENGINE_KEY] = make_engine(config)
    app[PLAN_CACHE_KEY] = {}
    app.on_cleanup.append(_close_engine)
    app.router.add_post("/v1/chat/completions", handler(OPENAI_CHAT))
    app.router.add_post("/v1/completions", handler(OPENAI_COMPLETIONS))
    app.router.add_post("/v1/responses", handler(OPENAI_RESPONSES))
    app.router.add_post("/v1/messages", handler(ANTHROPIC_MESSAGES))
    app.router.add_post("/v1/messages/count_tokens", anthropic_count_tokens)
    app.router.add_post("/api/chat", handler(OLLAMA_CHAT))
    app.router.add_post("/api/generate", handler(OLLAMA_GENERATE))
    app.router.add_post("/v1beta/models/{target}", gemini_route)
    app.router.add_post("/v1/models/{target}", gemini_route)  # (google-genai's default)
    app.router.add_get("/api/tags", ollama_tags)
    app.router.add_post("/api/show", ollama_show)
    app.router.add_get("/api/ps", ollama_ps)
    app.router.add_get("/api/version", ollama_version)
    app.router.add_get("/", ollama_root)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_get("/v1beta/models", list_models)
    app.router.add_get("/v1beta/models/{model:.+}", get_model)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app
