"""Replay a recorded schedule, stopping at the first divergence."""

from __future__ import annotations

from collections.abc import Sequence

from ghostswap.check.schedule import ReplayDivergence
from ghostswap.kernel.runtime import TraceStep

__all__ = ["ReplayStrategy"]


class ReplayStrategy:
    name = "replay"

    def __init__(self, decisions: Sequence[int]) -> None:
        self.decisions = tuple(decisions)
        self.pos = 0

    def start(self, nr_cpus: int) -> None:
        self.pos = 0

    def pick(self, runnable: Sequence[int], current: int | None, point: TraceStep | None) -> int:
        if self.pos >= len(self.decisions):
            raise ReplayDivergence(
                f"the schedule ends after {self.pos} decisions but the program goes on"
            )
        cpu = self.decisions[self.pos]
        if cpu not in runnable:
            where = f" at {point}" if point is not None else ""
            raise ReplayDivergence(
                f"decision {self.pos}: cpu{cpu} is not runnable (runnable: "
                f"{', '.join(f'cpu{c}' for c in runnable)}){where}"
            )
        self.pos += 1
        return cpu

    def exhausted(self) -> bool:
        return self.pos == len(self.decisions)

    def next_execution(self) -> bool:
        return False
