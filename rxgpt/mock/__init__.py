"""An embedded streaming LLM server, so tests, benchmarks and the CLI run offline.

It speaks OpenAI chat completions (its main use), OpenAI legacy completions and Responses,
Anthropic Messages and Ollama's native chat, each byte for byte as the vendor streams it, so
the vendors' own clients accept it (routes: :mod:`rxgpt.mock._app`; one module per dialect).

Start it in-process with ``async with MockServer() as server:`` (then point a client at
``server.base_url``, or ``server.url`` for Anthropic and Ollama clients), mount
:func:`create_app` in your own aiohttp runner, or run it from the command line through
:func:`run_server` (``rxgpt serve``). Answers are deterministic (the same conversation gets the
same text on every endpoint); faults are requested per call with a ``"mock": {...}`` object in
the request body (see :mod:`rxgpt.mock._faults`); tool calls and thinking have triggers (see
:mod:`rxgpt.mock._dialect`).
"""

from __future__ import annotations

from ._app import create_app
from ._dialect import MockConfig
from ._faults import FaultOptions
from ._runner import MockServer, run_server
from ._text import count_prompt_tokens, generate_tokens, iter_tokens

__all__ = [
    "FaultOptions",
    "MockConfig",
    "MockServer",
    "count_prompt_tokens",
    "create_app",
    "generate_tokens",
    "iter_tokens",
    "run_server",
]
