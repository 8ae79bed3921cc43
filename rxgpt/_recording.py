"""Recording streams to files (and replaying them), with secrets redacted.

Strategy: :func:`record` is a pass-through operator on the raw body chunks that appends
each chunk to a file; :func:`write_request` stores the request beside it as JSON with
auth headers masked and any registered API key removed from every string. A recording is
the body exactly as it arrived (chunk boundaries are not kept), so :func:`replay` can
feed it back through the pipeline in any chunking.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._secrets import SENSITIVE_HEADERS, redact, redact_value

__all__ = ["record", "replay", "write_request"]


class _RedactingWriter:
    """Writes body chunks to a file with secrets removed, even when a read splits one.

    Text is written up to the last line end; the unfinished line waits for the next
    chunk (secrets never span lines in JSON payloads). A line longer than ``hold`` is
    written except for its last ``hold`` characters, which is longer than any key.
    """

    hold = 512

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.pending = ""
        self.decode = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode

    def _write(self, text: str) -> None:
        if text:
            self.file.write(redact(text).encode("utf-8", "surrogateescape"))

    def write(self, chunk: bytes) -> None:
        text = self.pending + self.decode(chunk)
        cut = max(text.rfind("\n"), text.rfind("\r")) + 1
        if cut == 0 and len(text) > 4 * self.hold:
            cut = len(text) - self.hold
        self._write(text[:cut])
        self.pending = text[cut:]

    def close(self) -> None:
        self._write(self.pending + self.decode(b"", True))
        self.pending = ""
        self.file.flush()


def record(file: IO[bytes]) -> Callable[[Observable[bytes]], Observable[bytes]]:
    """Pass body chunks through unchanged while appending them (redacted) to ``file``."""

    def _record(source: Observable[bytes]) -> Observable[bytes]:
        def subscribe(
            observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            writer = _RedactingWriter(file)

            def on_next(chunk: bytes) -> None:
                writer.write(chunk)
                observer.on_next(chunk)

            def on_error(error: Exception) -> None:
                writer.close()
                observer.on_error(error)

            def on_completed() -> None:
                writer.close()
                observer.on_completed()

            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

            def dispose() -> None:
                writer.close()
                subscription.dispose()

            return Disposable(dispose)

        return Observable(subscribe)

    return _record


def write_request(
    path: str | Path, *, url: str, headers: Mapping[str, str], body: Any = None
) -> None:
    """Store a request as JSON beside its recording, secrets removed."""
    safe_headers = {
        k: ("***" if k.lower() in SENSITIVE_HEADERS else redact(v)) for k, v in headers.items()
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
