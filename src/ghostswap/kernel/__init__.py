"""Kernel primitives the swap model is written against.

Spinlocks, RCU, per-CPU variables, the XArray, a poisoning slab, GFP
failure injection, lists, priority lists and deferred work, each in a
module named after its kernel header. ``runtime`` switches between the fast
single-threaded mode and the checked mode that schedules modelled CPUs.
"""

from __future__ import annotations

from ghostswap.kernel import runtime, workqueue

__all__ = ["quiescent"]


def quiescent() -> None:
    """Fast mode: nothing kernel-side is on the stack; run deferred work.

    Runs RCU callbacks whose grace period has ended and queued work items,
    repeating until neither queues more.
    """
    while runtime.rcu_quiescent_state() + workqueue.run_pending_work():
        pass
