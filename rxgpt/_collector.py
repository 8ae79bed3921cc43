"""rxgpt's applications and the cyclic garbage collector: freezing what a run starts with.

A full collection walks every tracked object: in a process with a large heap (its modules,
a test suite's data) each one pauses the event loop for tenths of a second. Freezing what
exists (``gc.freeze()``, as vLLM does) leaves the collections only the objects made after.
Freezes do not nest (``gc.unfreeze()`` releases everything frozen), so a run that froze
releases only when nothing was frozen before it: a caller's freeze is kept.

A process that is only a server (``rxgpt serve``) also makes full collections rarer
(:func:`for_a_server`): each one walks every live request's objects at once.
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


#: Collections of the middle generation before a full one (CPython's default: 10).
SERVER_FULL_EVERY = 100


def for_a_server() -> None:
    """Freeze what start-up made, and collect the oldest generation ten times less often.

    For a process that serves and does nothing else: after the freeze a full collection
    walks only the requests' objects, but with a thousand streams open that is tens of
    thousands of them, a 20-30 ms pause in the middle of a run (measured in ``rxgpt
    serve`` at 1,024 streams); with the middle generation collected 100 times before a
    full collection instead of 10, none comes in a benchmark's minutes, and cyclic garbage
    is still collected, later.
    """
    freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, SERVER_FULL_EVERY)
