"""Starting the child processes of a command (``rxgpt serve --workers``, ``rxgpt bench``'s
embedded server and workers) so that Ctrl+C reaches only the parent, which then stops them.

A terminal's Ctrl+C sends SIGINT to every process of its group: a child still importing its
modules printed a ``KeyboardInterrupt`` traceback, and one stopped on its own left its
parent to find it gone. A child is instead stopped by its parent (SIGTERM, a message, or
its parent's death), never by the signal.
"""

from __future__ import annotations

import multiprocessing.resource_tracker
import signal
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

__all__ = ["start"]


def start(process: BaseProcess, record: Callable[[BaseProcess], object] | None = None) -> None:
    """Start ``process`` ignoring SIGINT from its first instruction on; then ``record(process)``
    (e.g. ``children.append``) while this process still holds a Ctrl+C back.

    For the start: SIGINT blocked, then ignored; both are inherited by the spawned
    interpreter (an ignored signal stays ignored across ``exec``, and Python then installs
    no handler of its own). Afterwards this process's handler is put back, then the signal
    unblocked: a Ctrl+C that came meanwhile was held pending (on Linux a blocked signal is
    kept even while its action is to ignore it) and is raised only then, when ``record`` has
    run, so the caller's list of children to stop already holds this one. (The mask is this
    thread's: a process of several threads may take the signal in another one.)

    multiprocessing's resource tracker, which the first spawned process starts, unblocks
    SIGINT when it starts: it is started here first, so that it cannot unblock the signal
    in the middle of the start.
    """
    multiprocessing.resource_tracker.ensure_running()
    if not hasattr(signal, "pthread_sigmask"):  # (Windows: no signal masks)
        process.start()
        if record is not None:
            record(process)
        return
    # (a handler is set only from the main thread; None: one not set from Python, which
    # could not be put back: the child then has SIGINT blocked only)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        if previous is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process.start()
            if record is not None:
                record(process)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
