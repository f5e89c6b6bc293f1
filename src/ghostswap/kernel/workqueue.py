"""Deferred work (include/linux/workqueue.h).

A work item queued with ``schedule_work`` runs later, outside the caller's
locks: in fast mode at the next quiescent state, in checked mode wherever
the driver runs ``run_pending_work``. Queuing an item that is already
pending does nothing, as in the kernel.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["WorkStruct", "cancel_work", "flush_work", "run_pending_work", "schedule_work"]


class WorkStruct:
    __slots__ = ("func", "name", "pending")

    def __init__(self, func: Callable[[], object], name: str = "work") -> None:
        self.func = func
        self.name = name
        self.pending = False


_queue: list[WorkStruct] = []


def schedule_work(work: WorkStruct) -> bool:
    if work.pending:
        return False
    work.pending = True
    _queue.append(work)
    return True


def run_pending_work() -> int:
    """Run every queued item (and items they queue); return how many ran."""
    ran = 0
    while _queue:
        work = _queue.pop(0)
        work.pending = False
        work.func()
        ran += 1
    return ran


def flush_work(work: WorkStruct) -> None:
    """Run `work` now if it is pending."""
    if work.pending:
        _queue.remove(work)
        work.pending = False
        work.func()


def cancel_work(work: WorkStruct) -> bool:
    """Take `work` off the queue if it is pending; True if it was."""
    if not work.pending:
        return False
    _queue.remove(work)
    work.pending = False
    return True


def cancel_all() -> None:
    for work in _queue:
        work.pending = False
    _queue.clear()
