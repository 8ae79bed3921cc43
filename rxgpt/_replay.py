"""Replay storage: what a :class:`~rxgpt.Fanout` keeps for subscribers that come late.

A log takes each read's items (:meth:`ReplayLog.extend`) and hands a late subscriber all
it kept (:meth:`ReplayLog.items`). :class:`AllItems` keeps everything, :class:`LastItems`
the last N. :class:`DeltaLog` keeps every delta of a stream compactly (see below): it is
what a :class:`~rxgpt.ChatStream` uses.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Generic, Protocol, TypeVar

from ._deltas import Delta, TextDelta

__all__ = ["AllItems", "DeltaLog", "LastItems", "ReplayLog"]

_T = TypeVar("_T")


class ReplayLog(Protocol[_T]):
    """Where a fan-out keeps items for late subscribers."""

    def extend(self, batch: list[_T]) -> None:
        """Keep one read's items."""
        ...

    def items(self) -> list[_T]:
        """Every item kept, in order (a new list)."""
        ...

    def __len__(self) -> int: ...


class AllItems(Generic[_T]):
    """Keeps every item (``replay="all"``)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[_T] = []

    def extend(self, batch: list[_T]) -> None:
        """Keep one read's items."""
        self._items.extend(batch)

    def items(self) -> list[_T]:
        """Every item kept."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


class LastItems(Generic[_T]):
    """Keeps the last ``n`` items (``replay=n``)."""

    __slots__ = ("_items",)

    def __init__(self, n: int) -> None:
        self._items: deque[_T] = deque(maxlen=n)

    def extend(self, batch: list[_T]) -> None:
        """Keep one read's items (older ones fall out)."""
        self._items.extend(batch)

    def items(self) -> list[_T]:
        """The last ``n`` items."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)


class DeltaLog:
    """Keeps every delta of a stream, the commonest one as its bare text.

    Performance: most deltas are a :class:`~rxgpt.TextDelta` of choice 0, part 0. Kept as
    such, every open stream would hold one object per event that CPython's cyclic garbage
    collector tracks (a dataclass instance), so with thousands of open streams each full
    collection walks millions of them. A ``str`` is not tracked: this log keeps those
    deltas as their text (which the accumulator keeps anyway) and builds equal
    ``TextDelta`` objects again only when a late subscriber asks. Other deltas are kept as
    they are. The log never holds a ``str`` for anything else, so the two cannot be
    confused.
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[Any] = []

    def extend(self, batch: list[Delta]) -> None:
        """Keep one read's deltas."""
        append = self._items.append
        text_delta = TextDelta
        for delta in batch:
            if delta.__class__ is text_delta and not (delta.choice or delta.part):
                append(delta.text)
            else:
                append(delta)

    def items(self) -> list[Delta]:
        """Every delta kept, in order (texts made deltas again)."""
        text_delta = TextDelta
        return [text_delta(0, item) if item.__class__ is str else item for item in self._items]

    def __len__(self) -> int:
        return len(self._items)
