"""``python -m rxgpt``: the ``rxgpt`` command."""

from ._cli import main

raise SystemExit(main())
