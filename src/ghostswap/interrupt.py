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
    """SIGTERM and SIGHUP raise :class:`Terminated` while inside."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
