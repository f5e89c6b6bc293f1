"""What every scheduling strategy provides.

It extends the runtime's :class:`~ghostswap.kernel.runtime.Scheduler`
(``start``, ``pick``) with ``next_execution``, called by the driver before
each execution after the first: a strategy that enumerates (DFS) returns
False when nothing is left to explore. A strategy is only asked when more
than one CPU can run; the driver records its answers as the schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ghostswap.kernel.runtime import TraceStep

__all__ = ["Strategy"]


class Strategy(Protocol):
    name: str

    def start(self, nr_cpus: int) -> None:
        """An execution of `nr_cpus` CPUs begins."""

    def pick(self, runnable: Sequence[int], current: int | None, point: TraceStep | None) -> int:
        """One of `runnable` (at least two); `current` just yielded."""

    def next_execution(self) -> bool:
        """Prepare the next execution; False when the search is complete."""
