"""An embedded streaming LLM server, so tests, benchmarks and the CLI run offline.

It speaks OpenAI chat completions (its main use), OpenAI legacy completions and Responses,
Anthropic Messages, Google Gemini and Ollama's native chat and generate, each byte for byte as
the vendor streams it, so the vendors' own clients accept it (routes: :mod:`rxgpt.mock._app`;
one module per dialect). It keeps time like an inference server: one engine loop runs decode
steps for every running sequence at once (continuous batching), with slots, a waiting queue,
prefill, jitter and presets of real models (:mod:`rxgpt.mock._engine`,
:mod:`rxgpt.mock._timing`); it records the ground truth of every chunk (``timeline``) and
serves vLLM's Prometheus metrics at ``/metrics``. See docs/server.md.

Start it in-process with ``async with MockServer() as server:`` (then point a client at
``server.base_url``, or ``server.url`` for Anthropic and Ollama clients), mount
:func:`create_app` in your own aiohttp runner, or run it from the command line through
:func:`run_server` (``rxgpt serve``). Answers are deterministic (the same conversation gets the
same text on every endpoint); faults are requested per call with a ``"mock": {...}`` object in
the request body (see :mod:`rxgpt.mock._faults`), which also takes per-request timing
(``itl_ms``, ``ttft_ms``, ...) and steering (``tool_call``, ``thinking``; see
:func:`rxgpt.mock._dialect.make_answer`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _lazy

if TYPE_CHECKING:  # (what type checkers read; at run time each name loads on first use)
    from ._app import create_app
    from ._dialect import MockConfig
    from ._faults import FaultOptions
    from ._runner import MockServer, run_server
    from ._text import count_prompt_tokens, generate_tokens, iter_tokens
    from ._timeline import Chunk, RequestRecord
    from ._timing import PROFILES

__all__ = [
    "PROFILES",
    "Chunk",
    "FaultOptions",
    "MockConfig",
    "MockServer",
    "RequestRecord",
    "count_prompt_tokens",
    "create_app",
    "generate_tokens",
    "iter_tokens",
    "run_server",
]

#: Where each public name lives: imported on first use, as the package root does (so
#: ``python -m rxgpt.mock`` can catch a Ctrl+C while the server's modules load).
_MODULES: dict[str, str] = {
    "create_app": "._app",
    "MockConfig": "._dialect",
    "FaultOptions": "._faults",
    "MockServer": "._runner",
    "run_server": "._runner",
    "count_prompt_tokens": "._text",
    "generate_tokens": "._text",
    "iter_tokens": "._text",
    "Chunk": "._timeline",
    "RequestRecord": "._timeline",
    "PROFILES": "._timing",
}

__getattr__, __dir__ = _lazy(__name__, _MODULES, globals())
