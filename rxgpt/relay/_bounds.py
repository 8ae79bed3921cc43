"""The relay's default bounds, in one place (and importable without redis, for the CLI)."""

from __future__ import annotations

__all__ = [
    "ANSWER_TIMEOUT",
    "DEFAULT_BLOCK",
    "DEFAULT_LEASE",
    "DEFAULT_MAXLEN",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_TTL",
]

#: Seconds a producer's lease lasts without renewal (renewed every third of it).
DEFAULT_LEASE = 5.0
#: Seconds a relayed stream is kept after its last write.
DEFAULT_TTL = 3600.0
#: Entries kept per key (``MAXLEN ~``): a backstop, far above one answer's reads.
DEFAULT_MAXLEN = 100_000
#: Deltas that may wait for Redis before the relay gives up.
DEFAULT_MAX_PENDING = 100_000
#: Seconds one blocking read waits at most (the poll interval of the lease check).
DEFAULT_BLOCK = 1.0
#: Seconds a reader waits for a stream that has not started yet.
DEFAULT_START_TIMEOUT = 10.0
#: Seconds Redis may take, beyond a blocking read's own wait, to answer one command of a
#: reader: a Redis silent this long is hung (stopped, or a network that drops packets),
#: and waiting on would be without end, whatever the client's socket timeout.
ANSWER_TIMEOUT = 9.0
