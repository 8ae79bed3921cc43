"""Timeouts and retries around one streamed response.

Strategy: :func:`resilient` wraps a factory of attempts (each one HTTP request decoded
into deltas) in a single observable. Deadlines apply per phase: *connect* (until the
response headers), *first_byte* (until the body's first byte), *idle* (time without a
content delta: keep-alive comments and pings prove the connection lives but do not
count), each watched in turn by one lazily re-armed ``loop.call_at`` timer, and *total*,
with a timer of its own. The idle check costs one clock read per content delta. Until
the first content delta arrives the metadata deltas of an attempt are held back, so a
failed attempt can be retried without subscribers seeing anything twice; after it, an
error is final and carries the partial result. Retries back off exponentially with
jitter and honour ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date) and
``x-should-retry``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
from ._errors import (
    HTTPStatusError,
    RxgptError,
    StreamError,
    StreamInterrupted,
    StreamTimeout,
    TransportError,
)
from ._fusion import ENDED, Batched, BatchObserver, subscribe_observer

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
    return _Resilient(make_attempt, limits, retry, flow)


class _Resilient(Batched[Delta]):
    """The observable :func:`resilient` returns: each subscription is one :class:`_Run`."""

    def __init__(
        self,
        make_attempt: Callable[[Progress], Observable[Delta]],
        timeouts: Timeouts,
        retry: Retry | None,
        flow: FlowControl | None,
    ) -> None:
        super().__init__(flow=flow)
        # (names of their own: an Observable has methods called `retry` and `timeout`)
        self._make_attempt = make_attempt
        self._timeouts = timeouts
        self._retry_policy = retry

    def subscribe_observer(self, observer: BatchObserver[Delta]) -> abc.DisposableBase:
        """Start the first attempt."""
        run = _Run(self._make_attempt, self._timeouts, self._retry_policy, observer)
        return run.start()


class _Attempt:
    """One attempt of a :class:`_Run`: the subscriber of its source, and its ``progress``.

    What an older attempt (retried, or timed out) still delivers is ignored. (One object
    per attempt rather than four partials: fewer objects per open stream.)
    """

    __slots__ = ("n", "run")

    def __init__(self, run: _Run, n: int) -> None:
        self.run = run
        self.n = n

    def __call__(self, kind: str) -> None:
        """The transport's progress report."""
        self.run._progress(self.n, kind)

    def _on_batch(self, batch: list[Delta]) -> None:
        run = self.run
        if self.n != run.attempt or run.finished:
            return
        if run.content:
            # (the last delta first: a read of only heartbeats is rare, so the scan is too)
            if run.idle_armed and (batch[-1].__class__ is not Heartbeat or _has_content(batch)):
                run.last_content = run.clock()
            run.observer._on_batch(batch)
            return
        run._before_content(batch)

    def _on_error(self, error: Exception) -> None:
        self.run._on_error(self.n, error)

    def _on_completed(self) -> None:
        self.run._on_completed(self.n)


def _clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time``, as the C function ``time.monotonic`` when that is what it returns.

    Performance: the idle deadline reads the clock at every read, and asyncio's
    ``loop.time()`` is a Python method around ``time.monotonic()`` (a frame per read).
    """
    if type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class _Run(abc.DisposableBase):
    """The state of one subscription to :func:`resilient` (and its disposable)."""

    def __init__(
        self,
        make_attempt: Callable[[Progress], Observable[Delta]],
        timeouts: Timeouts,
        retry: Retry | None,
        observer: BatchObserver[Delta],
    ) -> None:
        self.make_attempt = make_attempt
        self.timeouts = timeouts
        self.retry = retry
        self.observer = observer
        self.loop = loop = asyncio.get_running_loop()
        self.clock = _clock(loop)
        self.started = self.clock()
        self.attempt = 0
        self.content = False  # a content delta has been passed on
        #: metadata held back until the first content (a list once there is some)
        self.prefix: list[Delta] | None = None
        self.last_content = 0.0
        self.idle_armed = False  # the idle deadline runs from the last content delta
        self.subscription: abc.DisposableBase | None = None
        # The phase's deadline (None: none) and the one timer that watches it (see
        # _set_phase); the total deadline has a timer of its own.
        self.phase = ""
        self.phase_seconds = 0.0
        self.deadline: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.total_timer: asyncio.TimerHandle | None = None
        self.retry_timer: asyncio.TimerHandle | None = None
        self.finished = False

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> abc.DisposableBase:
        if self.timeouts.total is not None:
            self.total_timer = self.loop.call_later(
                self.timeouts.total, self._expire, "total", self.timeouts.total
            )
        self._attempt()
        return self

    def _attempt(self) -> None:
        self.retry_timer = None
        self.attempt += 1
        self.prefix = None
        self.idle_armed = False
        self._set_phase("connect", self.timeouts.connect)
        attempt = _Attempt(self, self.attempt)
        try:
            subscription = subscribe_observer(self.make_attempt(attempt), attempt)
            if attempt.n == self.attempt and not self.finished:  # (not ended meanwhile)
                self.subscription = subscription
        except Exception as error:  # building the request failed
            self._on_error(attempt.n, error)

    def dispose(self) -> None:
        """Stop: the attempt in flight, its timers and any retry to come."""
        self.finished = True
        self._cancel_timers()
        if self.retry_timer is not None:
            self.retry_timer.cancel()
        subscription = self.subscription
        self._release()
        if subscription is not None:
            subscription.dispose()

    def _cancel_timers(self) -> None:
        self._stop_phase()
        if self.total_timer is not None:
            self.total_timer.cancel()
            self.total_timer = None

    def _stop_phase(self) -> None:
        """No phase deadline any more (a failed attempt keeps the total one)."""
        self.deadline = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- deadlines --------------------------------------------------------------------

    def _set_phase(self, phase: str, seconds: float | None) -> None:
        """``phase``'s deadline starts now (None: no deadline until the next phase).

        Performance: one timer watches the phases of a stream in turn. A deadline that
        moves later (connect, then first byte, then idle) costs no new timer: the armed
        one fires, sees the later deadline and waits again. Most streams end before their
        first deadline, so they arm one timer, not one per phase.
        """
        if seconds is None:
            self.deadline = None
            return
        self.phase, self.phase_seconds = phase, seconds
        self.deadline = deadline = self.clock() + seconds
        self._wake_by(deadline)

    def _wake_by(self, when: float) -> None:
        timer = self.timer
        if timer is not None:
            if self.timer_at <= when:
                return  # it fires first and looks again
            timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        deadline = self.deadline
        if self.finished or deadline is None:
            return
        if self.idle_armed:  # idle: measured from the last content delta
            deadline = self.last_content + self.phase_seconds
        if deadline - self.clock() > 0.001:
            self._wake_by(deadline)
        else:
            self._expire(self.phase, self.phase_seconds)

    def _progress(self, attempt: int, kind: str) -> None:
        if attempt != self.attempt or self.finished:
            return
        if kind == "queued":  # waiting for a free connection of the pool: not connecting
            self._set_phase("", None)
        elif kind == "dequeued":  # a connection is ours: the connect deadline starts now
            self._set_phase("connect", self.timeouts.connect)
        elif kind == "connected":
            # Until the first body byte (and while an error body is read), first_byte
            # applies, else idle: silence after the headers never waits for ever.
            if self.timeouts.first_byte is not None:
                self._set_phase("first_byte", self.timeouts.first_byte)
            else:
                self._set_phase("idle", self.timeouts.idle)
        elif kind == "first_byte":
            # From now on, idle runs from the last content delta (one clock read each).
            idle = self.timeouts.idle
            self._set_phase("idle", idle)
            if idle is not None:
                self.idle_armed = True
                self.last_content = self.clock()

    def _expire(self, phase: str, seconds: float) -> None:
        if self.finished:
            return
        if self.subscription is not None:
            self.subscription.dispose()
        self._on_error(self.attempt, StreamTimeout(phase, seconds))

    # -- items ------------------------------------------------------------------------

    def _before_content(self, batch: list[Delta]) -> None:
        """A read before the first content delta: hold metadata back, pass heartbeats on."""
        for n, delta in enumerate(batch):
            cls = delta.__class__
            if cls is Heartbeat:
                self.observer._on_batch([delta])
            elif isinstance(delta, _NOT_CONTENT) or (cls is TextDelta and not delta.text):  # type: ignore[attr-defined]
                if self.prefix is None:
                    self.prefix = [delta]
                else:
                    self.prefix.append(delta)
            else:
                self.content = True
                if self.idle_armed:
                    self.last_content = self.clock()
                prefix, self.prefix = self.prefix, None
                self.observer._on_batch(prefix + batch[n:] if prefix else batch[n:])
                return

    def _flush_prefix(self) -> None:
        prefix, self.prefix = self.prefix, None
        if prefix:
            self.observer._on_batch(prefix)

    def _on_completed(self, attempt: int) -> None:
        if attempt != self.attempt or self.finished:
            return
        self.finished = True
        self._cancel_timers()
        self._flush_prefix()
        observer = self.observer
        self._release()
        observer._on_completed()

    def _release(self) -> None:
        """Ended: drop the references to the subscriber and the source (no cycle left)."""
        self.observer = ENDED
        self.subscription = None
        self.make_attempt = _no_attempt

    def _on_error(self, attempt: int, error: Exception) -> None:
        if attempt != self.attempt or self.finished:
            return
        self._stop_phase()
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
        observer = self.observer
        self._release()
        observer._on_error(error)

    def _retry_delay(self, error: BaseException) -> float | None:
        retry = self.retry
        if retry is None or self.content or self.attempt >= retry.attempts:
            return None
        if not retry.should_retry(error):
            return None
        delay = retry.delay(self.attempt, error)
        elapsed = self.clock() - self.started
        if retry.max_elapsed is not None and elapsed + delay > retry.max_elapsed:
            return None
        total = self.timeouts.total
        if total is not None and elapsed + delay >= total:
            return None
        return delay
