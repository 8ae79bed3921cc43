"""The open-file limit: raised by rxgpt's commands for themselves, told in errors.

Every stream is a socket, and a socket is an open file. Most systems start a process with
a soft limit of 1,024 open files (the hard limit, which a process may raise its soft one
to, is usually far higher), so a benchmark of 1,000 streams runs out of files on both ends
of the wire. The commands that open thousands of connections (``rxgpt serve``, ``rxgpt
bench``) raise their own soft limit as vLLM's server and benchmark do; the library never
changes a host program's limits.
"""

from __future__ import annotations

import contextlib
import errno
from typing import Final

__all__ = ["FILES_TARGET", "open_files_hint", "raise_open_files"]

try:
    import resource
except ImportError:  # pragma: no cover (not POSIX)
    resource = None  # type: ignore[assignment]

#: The soft limit the commands ask for (vLLM's ``set_ulimit`` asks the same).
FILES_TARGET: Final = 65535


def raise_open_files(target: int = FILES_TARGET) -> None:
    """Raise this process's soft open-file limit to ``target`` (at most the hard limit).
    Children inherit it."""
    if resource is None:  # pragma: no cover
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):  # (a sandbox may refuse: it stays)
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def open_files_hint(code: int | None) -> str:
    """What to add to an error of ``errno`` ``code`` when it means no file descriptor was
    left (``""`` otherwise): the limit, and what to do about it."""
    if code == errno.ENFILE:
        return " (the whole system is out of open files)"
    if code != errno.EMFILE:
        return ""
    if resource is None:  # pragma: no cover
        return " (raise the open-file limit, or open fewer streams at once)"
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return (
        f" (this process may have {soft} files open, each connection one: raise the limit,"
        " `ulimit -n`, or open fewer streams at once)"
    )
