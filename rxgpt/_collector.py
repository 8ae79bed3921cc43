"""The cyclic garbage collector's freeze: what exists before a run is not rescanned in it.

A full collection walks every tracked object: in a process with a large heap (its modules,
a test suite's data) each one pauses the event loop for tenths of a second. Freezing what
exists (``gc.freeze()``, as vLLM does) leaves the collections only the objects made after.
Freezes do not nest (``gc.unfreeze()`` releases everything frozen), so a run that froze
releases only when nothing was frozen before it: a caller's freeze is kept.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze() -> bool:
    """Collect garbage, then freeze what is left; return whether something was frozen before."""
    frozen_before = gc.get_freeze_count() > 0
    gc.collect()
    gc.freeze()
    return frozen_before


@contextmanager
def frozen() -> Iterator[None]:
    """Freeze what exists for the block; release after it unless a caller had frozen first."""
    frozen_before = freeze()
    try:
        yield
    finally:
        if not frozen_before:
            gc.unfreeze()
