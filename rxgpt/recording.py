"""Recording streams to files (and replaying them), with secrets redacted.

Strategy: :func:`record` is a pass-through operator on the raw body chunks that appends
each chunk to a file; :func:`write_request` stores the request beside it as JSON with
auth headers masked and any registered API key removed from every string. A recording is
the body exactly as it arrived (chunk boundaries are not kept), so :func:`replay` can
feed it back through the pipeline in any chunking.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import reactivex
from reactivex import Observable, abc

from .errors import _SENSITIVE_HEADERS, redact, redact_value

__all__ = ["record", "replay", "write_request"]


def _redact_bytes(chunk: bytes) -> bytes:
    text = chunk.decode("utf-8", "surrogateescape")
    cleaned = redact(text)
    return chunk if cleaned == text else cleaned.encode("utf-8", "surrogateescape")


def record(file: IO[bytes]) -> Callable[[Observable[bytes]], Observable[bytes]]:
    """Pass body chunks through unchanged while appending them (redacted) to ``file``."""

    def _record(source: Observable[bytes]) -> Observable[bytes]:
        def subscribe(
            observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(chunk: bytes) -> None:
                file.write(_redact_bytes(chunk))
                observer.on_next(chunk)

            def on_completed() -> None:
                file.flush()
                observer.on_completed()

            return source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _record


def write_request(
    path: str | Path, *, url: str, headers: Mapping[str, str], body: Any = None
) -> None:
    """Store a request as JSON beside its recording, secrets removed."""
    safe_headers = {
        k: ("***" if k.lower() in _SENSITIVE_HEADERS else redact(v)) for k, v in headers.items()
    }
    record_ = {"url": redact(url), "headers": safe_headers, "body": redact_value(body)}
    Path(path).write_text(json.dumps(record_, ensure_ascii=False, indent=2), encoding="utf-8")


def replay(path: str | Path, chunk_size: int = 4096) -> Observable[bytes]:
    """The recorded body at ``path`` as an observable of chunks of ``chunk_size`` bytes."""
    data = Path(path).read_bytes()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    return reactivex.from_iterable(chunks())
