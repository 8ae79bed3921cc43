"""A disposable without a lock, for rxgpt's own subscriptions on the event loop.

Performance: reactivex's ``Disposable`` takes a ``threading.RLock`` per instance, and
a stream makes several; each is an object the cyclic garbage collector tracks, at every
open stream. rxgpt's subscriptions live on one event loop thread, so a plain flag does.
"""

from __future__ import annotations

from collections.abc import Callable

from reactivex import abc

__all__ = ["NOTHING", "Disposer"]


def _nothing() -> None:
    pass


class Disposer(abc.DisposableBase):
    """Calls ``action`` on the first :meth:`dispose` (later calls do nothing)."""

    __slots__ = ("_action",)

    def __init__(self, action: Callable[[], None] = _nothing) -> None:
        self._action: Callable[[], None] | None = action

    @property
    def is_disposed(self) -> bool:
        """True once :meth:`dispose` was called."""
        return self._action is None

    def dispose(self) -> None:
        """Run the action, once."""
        action, self._action = self._action, None
        if action is not None:
            action()


#: A disposable that does nothing (a subscription already over).
NOTHING: abc.DisposableBase = Disposer()
NOTHING.dispose()
