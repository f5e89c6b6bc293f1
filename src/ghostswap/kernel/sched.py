"""Explicit scheduling points (include/linux/sched.h).

``cond_resched()`` is the voluntary preemption point of long loops: it may
sleep, so in checked mode it is a bug under a spinlock or inside an RCU read
section, and it is a place where the scheduler may switch CPUs.

``sched_point()`` has no kernel counterpart. It marks a place inside a
critical section where another CPU, running truly in parallel, may act on
anything the current CPU's locks do not cover: the checked mode interleaves
only at scheduling points, so without one a critical section is atomic. Both
cost nothing in fast mode.
"""

from __future__ import annotations

from ghostswap.kernel import runtime as _rt
from ghostswap.kernel.runtime import checked_twin

__all__ = ["cond_resched", "sched_point"]


def cond_resched(label: str = "") -> None:
    pass


@checked_twin(cond_resched)
def _cond_resched(label: str = "") -> None:
    _rt.checked.cond_resched(label)  # type: ignore[union-attr]


def sched_point(label: str = "") -> None:
    pass


@checked_twin(sched_point)
def _sched_point(label: str = "") -> None:
    _rt.checked.point("point", label, depth=2)  # type: ignore[union-attr]
