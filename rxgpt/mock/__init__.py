"""An embedded OpenAI-compatible streaming server, so tests, benchmarks and the CLI run offline.

Start it in-process with ``async with MockServer() as server:`` (then point a client at
``server.base_url``), mount :func:`create_app` in your own aiohttp runner, or run it from the
command line through :func:`run_server` (``rxgpt serve``). Answers are deterministic; faults are
requested per call with a ``"mock": {...}`` object in the request body (see
:mod:`rxgpt.mock.faults`).
"""

from __future__ import annotations

from .faults import FaultOptions
from .server import MockConfig, MockServer, create_app, run_server
from .text import count_prompt_tokens, generate_tokens, iter_tokens

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
