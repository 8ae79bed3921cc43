"""``python -m rxgpt``: the ``rxgpt`` command.

(A Ctrl+C while the ``rxgpt`` package itself is imported, before this module runs, still
ends in Python's own traceback: nothing of the package can catch it.)
"""

try:
    from ._cli import main
except KeyboardInterrupt:  # Ctrl+C while the command's module is imported
    raise SystemExit(130) from None

raise SystemExit(main())
