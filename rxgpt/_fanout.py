"""Fan-out: one stream (one HTTP request), many subscribers, with no late-subscriber trap.

Strategy: subscribers attach first, then :meth:`Fanout.connect` subscribes to the source
once. Subscribing after the connection is an error unless a replay policy was chosen
(``replay=N`` keeps the last N items, ``replay="all"`` everything, or a replay log of
:mod:`rxgpt._replay`), so a subscriber can
never silently miss the beginning, as it can with ``share()``. Items are pushed to every
subscriber synchronously, in subscription order, with no lock and no scheduler hop. A
subscriber that raises is detached and reported (to ``on_subscriber_error``, by default
the ``rxgpt`` logger); the source and the other subscribers go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

from reactivex import Observable, abc

from ._disposable import NOTHING
from ._errors import LateSubscriberError
from ._fusion import Batched, subscribe_observer
from ._replay import AllItems, LastItems, ReplayLog

__all__ = ["Fanout", "LateSubscriberError", "ReplayPolicy"]

_T = TypeVar("_T")
ReplayPolicy = int | Literal["all"]

logger = logging.getLogger("rxgpt")


def _log_subscriber_error(error: BaseException, observer: Any) -> None:
    logger.error("rxgpt: a subscriber raised and was detached: %r", error, exc_info=error)


def _ignore() -> None:
    pass


def _drop(item: object) -> None:
    pass


def _unhandled(error: Exception) -> None:
    raise error  # reported as this subscriber's failure, like Rx's default handler


class _Entry(abc.DisposableBase):
    """One subscriber: its three callbacks, whether it takes a read's list at once, and
    (as its disposable) the fan-out it detaches from."""

    __slots__ = ("batches", "fanout", "observer", "on_completed", "on_error", "on_next")

    def __init__(
        self,
        observer: Any,
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        batches: bool = False,
    ) -> None:
        self.observer = observer
        self.on_next = on_next
        self.on_error = on_error
        self.on_completed = on_completed
        self.batches = batches  # receives lists of items rather than items
        self.fanout: Fanout[Any] | None = None

    def dispose(self) -> None:
        """Detach the subscriber."""
        fanout, self.fanout = self.fanout, None
        if fanout is not None:
            # (a new list: a push iterating over the old one is not disturbed)
            fanout._entries = [entry for entry in fanout._entries if entry is not self]
        self.release()

    def release(self) -> None:
        """Forget the subscriber (detached or ended): the subscriber may keep this entry, as
        its disposable, without a reference cycle through it."""
        self.observer = None
        self.on_next = self.on_error = _drop
        self.on_completed = _ignore


class Fanout(Generic[_T]):
    """Multicast ``source`` to subscribers attached before :meth:`connect`.

    ``observable`` (or :meth:`pipe`) gives an :class:`~reactivex.Observable` view: each
    subscription to it attaches a subscriber. The source is subscribed exactly once. The
    items of one network read are pushed as one batch through rxgpt's own stages (an
    operator or an accumulator after the fan-out takes the list at once); other
    subscribers get them one by one.
    """

    def __init__(
        self,
        source: Observable[Any],
        *,
        replay: ReplayPolicy | ReplayLog[_T] = 0,
        on_subscriber_error: Callable[[BaseException, Any], None] | None = None,
    ) -> None:
        self._source: Observable[Any] | None = source  # dropped once connected
        self._buffer: ReplayLog[_T] | None = None
        bad = ValueError("replay must be a non-negative int, 'all' or a replay log")
        if replay == "all":
            self._buffer = AllItems()
        elif isinstance(replay, (bool, str)):
            raise bad
        elif isinstance(replay, int):
            if replay < 0:
                raise bad
            if replay:
                self._buffer = LastItems(replay)
        elif callable(getattr(replay, "extend", None)) and callable(getattr(replay, "items", None)):
            self._buffer = replay  # a replay log of the caller's choice
        else:
            raise bad
        # Copy-on-write: attaching or detaching makes a new list, so a push iterates over
        # the list it found without copying it (subscribers may detach during a push).
        self._entries: list[_Entry] = []
        self._connection: abc.DisposableBase | None = None
        self._connected = False
        self._terminal: tuple[str, Exception | None] | None = None
        self._report = on_subscriber_error or _log_subscriber_error
        #: Errors raised by subscribers (each also reported to ``on_subscriber_error``).
        self.subscriber_errors: list[BaseException] = []
        self._flow = source.flow if isinstance(source, Batched) else None

    # -- subscribing ------------------------------------------------------------------

    @property
    def observable(self) -> Observable[_T]:
        """The items as an observable: each subscription attaches a subscriber."""
        # A new view each time, not kept: the fan-out holds no cycle through it.
        # Rx subscribers are attached as item entries, with no per-batch loop around them.
        return Batched(self._subscribe_batches, flow=self._flow, items=self._subscribe_items)

    @property
    def connected(self) -> bool:
        """True once :meth:`connect` was called."""
        return self._connected

    @property
    def subscriber_count(self) -> int:
        """Subscribers currently attached."""
        return len(self._entries)

    def pipe(self, *operators: Callable[[Any], Any]) -> Any:
        """``self.observable.pipe(*operators)``."""
        return self.observable.pipe(*operators)

    def subscribe(
        self,
        on_next: abc.ObserverBase[_T] | Callable[[_T], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_completed: Callable[[], None] | None = None,
    ) -> abc.DisposableBase:
        """Attach a subscriber (an observer or callbacks); returns its disposable.

        Plain callbacks are called directly, with no Rx observer wrapped around them.
        """
        if on_next is None or isinstance(on_next, abc.ObserverBase):
            return self.observable.subscribe(on_next, on_error, on_completed)
        entry = _Entry(on_next, on_next, on_error or _unhandled, on_completed or _ignore)
        try:
            return self._attach(entry)
        except LateSubscriberError as error:
            if on_error is None:
                raise
            on_error(error)  # as Rx does: the subscriber's error handler gets it
            return NOTHING

    def _subscribe_items(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        entry = _Entry(observer, observer.on_next, observer.on_error, observer.on_completed)
        return self._attach(entry)

    def _subscribe_batches(
        self,
        on_batch: Callable[[list[_T]], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> abc.DisposableBase:
        return self._attach(_Entry(on_batch, on_batch, on_error, on_completed, True))

    def _attach(self, entry: _Entry) -> abc.DisposableBase:
        if self._connected and self._buffer is None:
            raise LateSubscriberError(
                "this stream is already connected; subscribe before connect() or create "
                "the Fanout with replay=N or replay='all'"
            )
        try:
            if self._buffer:
                kept = self._buffer.items()
                if entry.batches:
                    entry.on_next(kept)
                else:
                    for item in kept:
                        entry.on_next(item)
            if self._terminal is not None:
                kind, error = self._terminal
                if kind == "error" and error is not None:
                    self._end_with(entry, error)
                else:
                    entry.on_completed()
                return NOTHING
        except Exception as exc:  # a late subscriber failed on the replay: isolate it too
            self._fail(entry, exc)
            return NOTHING
        self._entries = [*self._entries, entry]
        entry.fanout = self
        return entry

    # -- connecting -------------------------------------------------------------------

    def connect(self) -> abc.DisposableBase:
        """Subscribe to the source (once); returns the connection's disposable."""
        if not self._connected:
            self._connected = True
            source, self._source = self._source, None
            assert source is not None
            connection = subscribe_observer(source, self)
            self._connection = connection
        return self._connection or NOTHING

    def dispose(self, error: Exception | None = None) -> None:
        """Disconnect from the source (closing it) and end every subscriber.

        Subscribers get ``on_error(error)`` when an error is given (a cancellation, say),
        else they are detached silently.
        """
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.dispose()
        if error is not None and self._terminal is None:
            self._on_error(error)
        self._end_entries()

    def _end_entries(self) -> None:
        """Detach every subscriber."""
        entries, self._entries = self._entries, []
        self._release(entries)

    @staticmethod
    def _release(entries: list[_Entry]) -> None:
        """Each ended entry forgets its subscriber and the fan-out (no cycle is left)."""
        for entry in entries:
            entry.fanout = None
            entry.release()

    # -- pushing ----------------------------------------------------------------------

    def _fail(self, entry: _Entry, error: BaseException) -> None:
        observer = entry.observer
        entry.dispose()
        self.subscriber_errors.append(error)
        try:
            self._report(error, observer)
        except Exception:  # a broken reporter must not break the stream either
            logger.exception("rxgpt: on_subscriber_error raised")

    def _on_batch(self, batch: list[Any]) -> None:
        if self._buffer is not None:
            self._buffer.extend(batch)
        entries = self._entries
        if len(entries) == 1 and entries[0].batches and self._terminal is None:
            entry = entries[0]  # (the commonest: a ChatStream's accumulator alone)
            try:
                entry.on_next(batch)
            except Exception as error:
                self._fail(entry, error)
            return
        for entry in entries:  # (copy-on-write: see __init__)
            if self._terminal is not None:
                return  # a subscriber ended the stream (ChatStream's accumulator can)
            on_next = entry.on_next
            try:
                if entry.batches:
                    on_next(batch)
                else:
                    for item in batch:
                        on_next(item)
            except Exception as error:
                self._fail(entry, error)

    def _end_with(self, entry: _Entry, error: Exception) -> None:
        """Tell ``entry`` the stream failed; a subscriber is never blamed for that error.

        A subscriber without an error handler gets Rx's default, which raises the very
        error it was given: that is the stream's failure, not the subscriber's.
        """
        try:
            entry.on_error(error)
        except Exception as exc:
            if exc is not error:
                self._fail(entry, exc)

    def _on_error(self, error: Exception) -> None:
        self._terminal = ("error", error)
        self._connection = None  # the source ended: no reference cycle through it
        entries, self._entries = self._entries, []
        for entry in entries:
            self._end_with(entry, error)
        self._release(entries)

    def _on_completed(self) -> None:
        self._terminal = ("completed", None)
        self._connection = None
        entries, self._entries = self._entries, []
        for entry in entries:
            try:
                entry.on_completed()
            except Exception as exc:
                self._fail(entry, exc)
        self._release(entries)
