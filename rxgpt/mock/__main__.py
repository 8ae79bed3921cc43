"""``python -m rxgpt.mock [flags]``: the same server as ``rxgpt serve`` (for benchmarks).

Nothing is imported before :func:`main` runs (the package loads its names on first use),
so a Ctrl+C while the server's modules load ends it quietly with status 130, as
``rxgpt serve`` does.
"""

from __future__ import annotations

import sys


def main() -> int:
    """Parse the ``rxgpt serve`` flags and serve."""
    try:
        from .._cli import _Parser
        from ._cli_args import add_serve_arguments, serve_from_args
    except KeyboardInterrupt:  # Ctrl+C while the server's modules load
        return 130
    parser = _Parser(prog="rxgpt serve", description="Run the embedded LLM server.")
    add_serve_arguments(parser)
    return serve_from_args(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
