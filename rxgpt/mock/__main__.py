"""``python -m rxgpt.mock [flags]``: the same server as ``rxgpt serve`` (for benchmarks)."""

from __future__ import annotations

import sys

from .._cli import _Parser
from ._cli_args import add_serve_arguments, serve_from_args


def main() -> int:
    """Parse the ``rxgpt serve`` flags and serve."""
    parser = _Parser(prog="rxgpt serve", description="Run the embedded LLM server.")
    add_serve_arguments(parser)
    return serve_from_args(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
