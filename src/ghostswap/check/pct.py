"""Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).

Each execution gives the CPUs distinct random priorities ``depth ..
depth + n - 1`` and picks ``depth - 1`` change points among the decisions
it expects to make. The highest-priority runnable CPU always runs; at the
i-th change point the CPU that was running drops to priority ``depth - 1 -
i``, below every initial one. A bug that needs ``depth - 1`` ordering
constraints is found with probability at least ``1 / (n * k^(depth-1))``
per execution, k the number of decisions.

k is learnt from earlier executions. Shuttle takes the largest count seen;
here one long execution (a swapoff walking every slot while another CPU
waits its turn) would spread the change points over thousands of decisions
and starve the short windows, so each execution draws k from the counts of
the executions seen so far (a reservoir), which keeps a fair share of
change points where most executions are.
"""

from __future__ import annotations

import random as _random
from collections.abc import Sequence

from ghostswap.kernel.runtime import TraceStep

__all__ = ["PctStrategy"]

_RESERVOIR = 64


class PctStrategy:
    name = "pct"

    def __init__(self, seed: int, depth: int = 3, expected_steps: int = 50) -> None:
        if depth < 1:
            raise ValueError("PCT depth must be at least 1")
        self.rng = _random.Random(seed)
        self.depth = depth
        self.history: list[int] = [max(expected_steps, 1)]  # reservoir of decision counts
        self.seen = 1
        self.max_steps = self.history[0]
        self.priority: dict[int, int] = {}
        self.change_points: dict[int, int] = {}  # decision number -> new priority
        self.steps = 0

    def start(self, nr_cpus: int) -> None:
        initial = list(range(self.depth, self.depth + nr_cpus))
        self.rng.shuffle(initial)
        self.priority = dict(enumerate(initial))
        k = self.history[self.rng.randrange(len(self.history))]
        nr_changes = min(self.depth - 1, k)
        points = self.rng.sample(range(1, k + 1), nr_changes)
        self.change_points = {step: self.depth - 2 - i for i, step in enumerate(sorted(points))}
        self.steps = 0

    def pick(self, runnable: Sequence[int], current: int | None, point: TraceStep | None) -> int:
        self.steps += 1
        lowered = self.change_points.get(self.steps)
        if lowered is not None and current is not None:
            self.priority[current] = lowered
        priority = self.priority
        return max(runnable, key=priority.__getitem__)

    def next_execution(self) -> bool:
        steps = max(self.steps, 1)
        self.max_steps = max(self.max_steps, steps)
        self.seen += 1
        if len(self.history) < _RESERVOIR:
            self.history.append(steps)
        else:
            slot = self.rng.randrange(self.seen)
            if slot < _RESERVOIR:
                self.history[slot] = steps
        return True
