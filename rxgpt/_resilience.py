"""Timeouts and retries around one streamed response.

Strategy: :func:`resilient` wraps a factory of attempts (each one HTTP request decoded
into deltas) in a single observable. Deadlines are ``loop.call_later`` handles armed per
phase: *connect* (until the response headers), *first_byte* (until the body's first
byte), *idle* (time without a content delta: keep-alive comments and pings prove the
connection lives but do not count) and *total*. The idle check costs one clock read per
content delta; its timer re-arms itself lazily. Until the first content delta arrives
the metadata deltas of an attempt are held back, so a failed attempt can be retried
without subscribers seeing anything twice; after it, an error is final and carries the
partial result. Retries back off exponentially with jitter and honour ``retry-after-ms``,
``retry-after`` (seconds or an HTTP date) and ``x-should-retry``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from reactivex import Observable, abc

from ._aio import FlowControl
from ._deltas import (
    Delta,
    ErrorDelta,
    Heartbeat,
    PartStart,
    ResponseInfo,
    RoleDelta,
    TextDelta,
    UsageDelta,
)
from ._disposable import Disposer
from ._errors import (
    HTTPStatusError,
    RxgptError,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    TransportError,
)
from ._fusion import Batched, subscribe_batches

__all__ = ["Progress", "Retry", "Timeouts", "resilient", "retry_after"]

logger = logging.getLogger("rxgpt")

#: Called by the transport as a request progresses: "connected", then "first_byte".
Progress = Callable[[str], None]

# Deltas that are not content: held back until content arrives (an ErrorDelta then
# precedes the error; if the attempt is retried, they are dropped with it).
_NOT_CONTENT = (ResponseInfo, RoleDelta, PartStart, UsageDelta, ErrorDelta)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines of one stream, in seconds (None: no limit).

    ``connect``: until the response headers arrive; ``first_byte``: from then until the
    first body byte (and the reading of an error body), ``idle`` when it is None;
    ``idle``: the longest time without content (keep-alives do not count); ``total``: the
    whole stream, retries included. The defaults (10 s to connect, 300 s of silence) are
    in the range of the vendor SDKs' (openai-python and anthropic: 5 s to connect, 600 s
    to read): a dead connection always ends in :class:`~rxgpt.StreamTimeout`.
    """

    connect: float | None = 10.0
    first_byte: float | None = None
    idle: float | None = 300.0
    total: float | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """When and how often to retry a stream that failed before its first content delta.

    ``attempts`` counts the first try. Delays grow from ``backoff`` by ``multiplier`` up to
    ``max_backoff``, minus up to ``jitter`` of themselves at random; a server's
    ``retry-after`` wins when it is at most ``max_retry_after``. No retry starts after
    ``max_elapsed`` seconds since the first try.
    """

    attempts: int = 3
    backoff: float = 0.5
    multiplier: float = 2.0
    max_backoff: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    max_elapsed: float | None = 120.0
    statuses: frozenset[int] = field(
        default_factory=lambda: frozenset({408, 409, 429, 500, 502, 503, 504, 529})
    )

    def should_retry(self, error: BaseException) -> bool:
        """Whether ``error`` (raised before any content) is worth another attempt."""
        if isinstance(error, HTTPStatusError):
            if "insufficient_quota" in (error.error_code, error.error_type):
                return False  # never, whatever the server suggests
            hint = {k.lower(): v for k, v in error.headers.items()}.get("x-should-retry")
            if hint is not None:
                return hint.strip().lower() == "true"
            return error.status in self.statuses or error.status >= 500
        if isinstance(error, StreamTimeout):
            return error.phase != "total"
        if isinstance(error, StreamError):
            return error.retryable and "insufficient_quota" not in (
                error.error_type,
                error.error.get("code") if isinstance(error.error, dict) else None,
            )
        return isinstance(error, StreamInterrupted | TransportError)

    def delay(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait before attempt ``attempt + 1`` after ``error``."""
        if isinstance(error, HTTPStatusError):
            hinted = retry_after(error.headers)
            if hinted is not None and 0 <= hinted <= self.max_retry_after:
                return hinted
        base = min(self.max_backoff, self.backoff * self.multiplier ** (attempt - 1))
        return base * (1 - self.jitter * random.random())


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The delay a server asked for: ``retry-after-ms``, else ``retry-after`` (s or date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _drop(item: object) -> None:
    """Where an ended run's items and errors go: nowhere."""


def _nothing() -> None:
    """Where an ended run's completion goes: nowhere."""


def _no_attempt(progress: Progress) -> Observable[Delta]:
    raise RuntimeError("the run ended: no more attempts")  # never called: finished first


def _has_content(batch: list[Delta]) -> bool:
    return any(delta.__class__ is not Heartbeat for delta in batch)


def resilient(
    make_attempt: Callable[[Progress], Observable[Delta]],
    *,
    timeouts: Timeouts | None = None,
    retry: Retry | None = None,
    flow: FlowControl | None = None,
) -> Batched[Delta]:
    """One stream of deltas out of as many attempts as ``retry`` allows.

    ``make_attempt(progress)`` returns the deltas of one request (one batch per network
    read: ``decode_stream`` over the transport); its transport calls
    ``progress("connected")`` and ``progress("first_byte")``. Deadlines apply per phase.
    ``flow`` is the gate of the attempts' socket reads, carried on as the result's.
    Subscribe on a running loop.
    """
    limits = timeouts or Timeouts(connect=None, idle=None)

    def subscribe(
        on_batch: Callable[[list[Delta]], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> abc.DisposableBase:
        return _Run(make_attempt, limits, retry, on_batch, on_error, on_completed).start()

    return Batched(subscribe, flow=flow)


class _Run:
    """The state of one subscription to :func:`resilient`."""

    def __init__(
        self,
        make_attempt: Callable[[Progress], Observable[Delta]],
        timeouts: Timeouts,
        retry: Retry | None,
        on_batch: Callable[[list[Delta]], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> None:
        self.make_attempt = make_attempt
        self.timeouts = timeouts
        self.retry = retry
        self.emit = on_batch
        self.fail = on_error
        self.complete = on_completed
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.attempt = 0
        self.content = False  # a content delta has been passed on
        self.prefix: list[Delta] = []  # metadata held back until the first content
        self.last_content = 0.0
        self.idle_armed = False
        self.subscription: abc.DisposableBase | None = None
        self.phase_timer: asyncio.TimerHandle | None = None
        self.idle_timer: asyncio.TimerHandle | None = None
        self.total_timer: asyncio.TimerHandle | None = None
        self.retry_timer: asyncio.TimerHandle | None = None
        self.finished = False
        #: attempts made so far, exposed for tests and logs
        self.errors: list[BaseException] = []

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> abc.DisposableBase:
        if self.timeouts.total is not None:
            self.total_timer = self.loop.call_later(
                self.timeouts.total, self._expire, "total", self.timeouts.total
            )
        self._attempt()
        return Disposer(self._dispose)

    def _attempt(self) -> None:
        self.retry_timer = None
        self.attempt += 1
        self.prefix = []
        self.idle_armed = False
        self._arm_phase("connect", self.timeouts.connect)
        attempt_no = self.attempt
        # (partial, not lambdas: one Python call per read, not two, and no closure cells)
        try:
            source = self.make_attempt(partial(self._progress, attempt_no))
            subscription = subscribe_batches(
                source,
                partial(self._on_next, attempt_no),
                partial(self._on_error, attempt_no),
                partial(self._on_completed, attempt_no),
            )
            if attempt_no == self.attempt and not self.finished:  # (not ended meanwhile)
                self.subscription = subscription
        except Exception as error:  # building the request failed
            self._on_error(attempt_no, error)

    def _dispose(self) -> None:
        self.finished = True
        self._cancel_timers()
        if self.retry_timer is not None:
            self.retry_timer.cancel()
        subscription = self.subscription
        self._release()
        if subscription is not None:
            subscription.dispose()

    def _cancel_timers(self) -> None:
        for timer in (self.phase_timer, self.idle_timer, self.total_timer):
            if timer is not None:
                timer.cancel()
        self.phase_timer = self.idle_timer = self.total_timer = None

    # -- deadlines --------------------------------------------------------------------

    def _arm_phase(self, phase: str, seconds: float | None) -> None:
        if self.phase_timer is not None:
            self.phase_timer.cancel()
            self.phase_timer = None
        if seconds is not None:
            self.phase_timer = self.loop.call_later(seconds, self._expire, phase, seconds)

    def _progress(self, attempt: int, kind: str) -> None:
        if attempt != self.attempt or self.finished:
            return
        if kind == "queued":  # waiting for a free connection of the pool: not connecting
            self._arm_phase("", None)
        elif kind == "dequeued":  # a connection is ours: the connect deadline starts now
            self._arm_phase("connect", self.timeouts.connect)
        elif kind == "connected":
            # Until the first body byte (and while an error body is read), first_byte
            # applies, else idle: silence after the headers never waits for ever.
            if self.timeouts.first_byte is not None:
                self._arm_phase("first_byte", self.timeouts.first_byte)
            else:
                self._arm_phase("idle", self.timeouts.idle)
        elif kind == "first_byte":
            self._arm_phase("", None)
            self._arm_idle()

    def _arm_idle(self) -> None:
        idle = self.timeouts.idle
        if idle is None or self.idle_armed:
            return
        self.idle_armed = True
        self.last_content = self.loop.time()
        self.idle_timer = self.loop.call_later(idle, self._check_idle)

    def _check_idle(self) -> None:
        idle = self.timeouts.idle
        assert idle is not None
        remaining = self.last_content + idle - self.loop.time()
        if remaining > 0.001:
            self.idle_timer = self.loop.call_later(remaining, self._check_idle)
        else:
            self._expire("idle", idle)

    def _expire(self, phase: str, seconds: float) -> None:
        if self.finished:
            return
        if self.subscription is not None:
            self.subscription.dispose()
        self._on_error(self.attempt, StreamTimeout(phase, seconds))

    # -- items ------------------------------------------------------------------------

    def _on_next(self, attempt: int, batch: list[Delta]) -> None:
        if attempt != self.attempt or self.finished:
            return
        if self.content:
            # (the last delta first: a read of only heartbeats is rare, so the scan is too)
            if self.idle_armed and (batch[-1].__class__ is not Heartbeat or _has_content(batch)):
                self.last_content = self.loop.time()
            self.emit(batch)
            return
        # Before the first content delta: hold metadata back, pass heartbeats on.
        for n, delta in enumerate(batch):
            cls = delta.__class__
            if cls is Heartbeat:
                self.emit([delta])
            elif isinstance(delta, _NOT_CONTENT) or (cls is TextDelta and not delta.text):  # type: ignore[attr-defined]
                self.prefix.append(delta)
            else:
                self.content = True
                if self.idle_armed:
                    self.last_content = self.loop.time()
                prefix, self.prefix = self.prefix, []
                self.emit(prefix + batch[n:])
                return

    def _flush_prefix(self) -> None:
        prefix, self.prefix = self.prefix, []
        if prefix:
            self.emit(prefix)

    def _on_completed(self, attempt: int) -> None:
        if attempt != self.attempt or self.finished:
            return
        self.finished = True
        self._cancel_timers()
        self._flush_prefix()
        complete = self.complete
        self._release()
        complete()

    def _release(self) -> None:
        """Ended: drop the references to the subscriber and the source (no cycle left)."""
        self.emit = _drop
        self.fail = _drop
        self.complete = _nothing
        self.subscription = None
        self.make_attempt = _no_attempt

    def _on_error(self, attempt: int, error: Exception) -> None:
        if attempt != self.attempt or self.finished:
            return
        self._arm_phase("", None)
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        self.errors.append(error)
        delay = self._retry_delay(error)
        if delay is not None:
            logger.info(
                "rxgpt: attempt %d failed (%s); retrying in %.2fs", self.attempt, error, delay
            )
            if self.subscription is not None:
                self.subscription.dispose()
                self.subscription = None
            self.retry_timer = self.loop.call_later(delay, self._attempt)
            return
        self.finished = True
        self._cancel_timers()
        self._flush_prefix()
        if isinstance(error, RxgptError):
            error.attempts = self.attempt
        fail = self.fail
        self._release()
        fail(error)

    def _retry_delay(self, error: BaseException) -> float | None:
        retry = self.retry
        if retry is None or self.content or self.attempt >= retry.attempts:
            return None
        if not retry.should_retry(error):
            return None
        delay = retry.delay(self.attempt, error)
        elapsed = self.loop.time() - self.started
        if retry.max_elapsed is not None and elapsed + delay > retry.max_elapsed:
            return None
        total = self.timeouts.total
        if total is not None and elapsed + delay >= total:
            return None
        return delay
