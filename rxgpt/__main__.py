"""``python -m rxgpt`` and the ``rxgpt`` command (its entry point, :func:`run`).

The package root imports nothing until a name is used (see :mod:`rxgpt`), so a Ctrl+C while
the command's modules load (a quarter of a second: aiohttp and the rest) is caught here and
ends the command quietly with status 130, as a Ctrl+C at any later moment does.
"""

from __future__ import annotations


def run() -> int:
    """Run the ``rxgpt`` command; its exit status."""
    try:
        from ._cli import main
    except KeyboardInterrupt:  # Ctrl+C while the command's modules load
        return 130
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
