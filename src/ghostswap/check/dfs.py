"""Bounded exhaustive search: every schedule with at most `bound` preemptions.

Stateless depth-first search (as in CHESS, Musuvathi and Qadeer, PLDI 2007):
the driver re-runs the program from the start for each schedule; this
strategy keeps the path of choices taken, and after each execution advances
the deepest choice point that still has an untried option. A preemption is
a switch away from a CPU that could have continued; a switch away from a
CPU that blocked or finished is free. The program's own randomness must be
the same in every execution (the driver keeps the program seed fixed).
"""

from __future__ import annotations

from collections.abc import Sequence

from ghostswap.kernel.runtime import TraceStep

__all__ = ["DfsStrategy"]


class DfsStrategy:
    name = "dfs"

    def __init__(self, preemption_bound: int = 2) -> None:
        if preemption_bound < 0:
            raise ValueError("the preemption bound cannot be negative")
        self.bound = preemption_bound
        # One entry per choice point with more than one option: (options, index).
        self.path: list[tuple[tuple[int, ...], int]] = []
        self.pos = 0
        self.preemptions = 0
        self.exhausted = False

    def start(self, nr_cpus: int) -> None:
        self.pos = 0
        self.preemptions = 0

    def _options(self, runnable: Sequence[int], current: int | None) -> tuple[int, ...]:
        if current is None or current not in runnable:
            return tuple(sorted(runnable))
        if self.preemptions >= self.bound:
            return (current,)
        return (current, *sorted(c for c in runnable if c != current))

    def pick(self, runnable: Sequence[int], current: int | None, point: TraceStep | None) -> int:
        options = self._options(runnable, current)
        if len(options) == 1:
            choice = options[0]
        else:
            if self.pos < len(self.path):
                recorded, index = self.path[self.pos]
                if recorded != options:
                    raise RuntimeError(
                        f"dfs: the program is not deterministic (choice point {self.pos} "
                        f"offers {options}, before {recorded})"
                    )
            else:
                self.path.append((options, 0))
                index = 0
            choice = options[index]
            self.pos += 1
        if current is not None and choice != current and current in runnable:
            self.preemptions += 1
        return choice

    def next_execution(self) -> bool:
        path = self.path
        del path[self.pos :]  # an execution that ended early leaves no stale tail
        while path:
            options, index = path[-1]
            if index + 1 < len(options):
                path[-1] = (options, index + 1)
                return True
            path.pop()
        self.exhausted = True
        return False
