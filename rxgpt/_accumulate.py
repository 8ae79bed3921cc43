"""The accumulation stages: deltas → the final :class:`~rxgpt.Completion`, or snapshots.

They wrap :class:`~rxgpt.Accumulator` as pipeline stages. When the stream fails, the
partial result is attached to the error as ``error.partial`` (state "truncated" for an
interruption, "error" otherwise), so nothing that arrived is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._completion import Accumulator, Completion, CompletionState, Snapshot
from ._deltas import Delta
from ._errors import DecodeError, RxgptError, StreamInterrupted
from ._fusion import End, StageSpec
from ._protocols._base import SHAPE_ERRORS

__all__ = [
    "AccumulateSpec",
    "Accumulation",
    "SnapshotSpec",
    "Snapshots",
    "add_batch",
    "partial_completion",
]


def add_batch(acc: Accumulator, batch: list[Delta]) -> DecodeError | None:
    """Fold ``batch`` into ``acc``; a delta it cannot take is a typed error, never a crash.

    rxgpt's decoders only emit well-typed deltas; this guards deltas made elsewhere.
    """
    try:
        acc.add_all(batch)
    except SHAPE_ERRORS as exc:
        return DecodeError(f"a delta the accumulator cannot take ({type(exc).__name__}: {exc})")
    return None


def partial_completion(acc: Accumulator, error: BaseException) -> Completion:
    """Build the partial result for ``error`` and attach it as ``error.partial``."""
    state: CompletionState = "truncated" if isinstance(error, StreamInterrupted) else "error"
    typed = error if isinstance(error, RxgptError) else None
    partial = acc.completion(state, typed)
    if typed is not None and typed.partial is None:
        typed.partial = partial
    return partial


class Accumulation:
    """Stage: deltas → exactly one :class:`~rxgpt.Completion`, at the end."""

    __slots__ = ("acc", "end", "raise_errors")

    def __init__(self, protocol: str = "openai-chat", *, raise_errors: bool = True) -> None:
        self.acc = Accumulator(protocol)
        self.raise_errors = raise_errors
        self.end: End | None = None

    def feed(self, batch: list[Delta]) -> list[Completion]:
        """Fold a read's deltas in."""
        error = add_batch(self.acc, batch)
        return [] if error is None else self._fail(error)

    def close(self, end: End) -> list[Completion]:
        """The result: complete, or the partial one (attached to the error, or emitted)."""
        if end.error is None:
            self.end = End()
            return [self.acc.completion("complete")]
        return self._fail(end.error)

    def _fail(self, error: Exception) -> list[Completion]:
        """End with the partial result: attached to ``error`` (raised on), or emitted."""
        partial = partial_completion(self.acc, error)
        if self.raise_errors:
            self.end = End(error)
            return []
        self.end = End()
        return [partial]


class Snapshots:
    """Stage: deltas → a :class:`~rxgpt.Snapshot` of the running state after each."""

    __slots__ = ("acc", "end", "log")

    def __init__(self, protocol: str = "openai-chat") -> None:
        self.acc = Accumulator(protocol)
        self.log: list[Delta] = []
        self.end: End | None = None

    def feed(self, batch: list[Delta]) -> list[Snapshot]:
        """One snapshot per delta of the read."""
        out: list[Snapshot] = []
        for delta in batch:
            self.acc.add(delta)
            self.log.append(delta)
            out.append(Snapshot(self.acc, self.log, delta))
        return out

    def close(self, end: End) -> list[Any]:
        """The stream ended; a failure gets the partial result attached."""
        if end.error is not None:
            partial_completion(self.acc, end.error)
        self.end = End(end.error)
        return []


@dataclass(frozen=True, slots=True)
class AccumulateSpec:
    """:func:`~rxgpt.accumulate` in a chain."""

    protocol: str = "openai-chat"
    raise_errors: bool = True

    def build(self, downstream: StageSpec | None) -> Accumulation:
        """An accumulation stage."""
        return Accumulation(self.protocol, raise_errors=self.raise_errors)


@dataclass(frozen=True, slots=True)
class SnapshotSpec:
    """:func:`~rxgpt.snapshots` in a chain."""

    protocol: str = "openai-chat"

    def build(self, downstream: StageSpec | None) -> Snapshots:
        """A snapshot stage."""
        return Snapshots(self.protocol)
