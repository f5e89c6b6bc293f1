"""Uniformly random scheduling: at every decision any runnable CPU."""

from __future__ import annotations

import random as _random
from collections.abc import Sequence

from ghostswap.kernel.runtime import TraceStep

__all__ = ["RandomStrategy"]


class RandomStrategy:
    name = "random"

    def __init__(self, seed: int) -> None:
        self.rng = _random.Random(seed)

    def start(self, nr_cpus: int) -> None:
        pass

    def pick(self, runnable: Sequence[int], current: int | None, point: TraceStep | None) -> int:
        return runnable[self.rng.randrange(len(runnable))]

    def next_execution(self) -> bool:
        return True
