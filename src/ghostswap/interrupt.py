"""Termination signals unwind like Ctrl-C, so every clean-up runs.

A command may hold swap devices, a memory cgroup, store files or a child
process; SIGTERM's and SIGHUP's default action would end the process
without undoing any of it. Under :func:`interrupt_as_keyboard` they raise
:class:`Terminated` (a :class:`KeyboardInterrupt`) instead, so the same
``finally`` blocks and context managers that handle Ctrl-C run.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Terminated", "interrupt_as_keyboard"]

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def interrupt_as_keyboard() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` while inside.

    A signal the process ignores (``nohup`` ignores SIGHUP) stays ignored.
    After the first one, both are ignored until the block is left, so a
    second signal cannot cut the clean-up short. Off the main thread,
    where handlers cannot be set, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = [sig for sig in SIGNALS if signal.getsignal(sig) != signal.SIG_IGN]

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in caught:
            signal.signal(sig, signal.SIG_IGN)
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in caught}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
