"""The one way child processes are started (rxgpt._children.start): Ctrl+C reaches only the
parent, and a Ctrl+C that comes during a start is raised once the child is recorded."""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import pytest

from rxgpt._children import start
from rxgpt.bench._embedded import start_child

#: Seconds a child may take to start, answer and end before the test fails.
BOUND = 30.0


def _report(conn: Connection) -> None:
    """In the child: how SIGINT is handled (ignored? blocked?)."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    conn.send((ignored, blocked))
    conn.close()


def _child_state(starter: Callable[[BaseProcess], None]) -> tuple[bool, bool]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_report, args=(child,), daemon=True)
    try:
        starter(process)
        child.close()
        assert parent.poll(BOUND), "the child did not answer"
        state: tuple[bool, bool] = parent.recv()
    finally:
        process.join(BOUND)
        if process.is_alive():
            process.kill()
            process.join(BOUND)
    return state


@pytest.mark.parametrize("starter", [start, start_child], ids=["start", "bench-start_child"])
def test_a_child_ignores_sigint_from_its_start(starter: Callable[[BaseProcess], None]) -> None:
    """bench's start_child only blocked SIGINT: a child that unblocked it (its own resource
    tracker does) was interrupted by the terminal's Ctrl+C; now it is ignored as well."""
    before = signal.getsignal(signal.SIGINT)
    assert _child_state(starter) == (True, True)
    assert signal.getsignal(signal.SIGINT) is before
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())


def test_a_ctrl_c_during_the_start_comes_after_the_child_is_recorded() -> None:
    """The Ctrl+C held back while the child starts is raised when the mask is restored: the
    caller has recorded the child by then (it would otherwise not be stopped)."""
    context = multiprocessing.get_context("spawn")
    _parent, child = context.Pipe()
    process = context.Process(target=_report, args=(child,), daemon=True)
    recorded: list[BaseProcess] = []

    def record(started: BaseProcess) -> None:
        # (to this thread, as in a process of one thread: a Ctrl+C sent to the process
        # may be taken by another thread, pytest-xdist's, that does not block it)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # (held: not raised here)
        recorded.append(started)

    try:
        with pytest.raises(KeyboardInterrupt):
            start(process, record)
        assert recorded == [process]
    finally:
        child.close()
        process.join(BOUND)
        if process.is_alive():
            process.kill()
            process.join(BOUND)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
