"""``fork:SIZE:CHILDREN``: fork and exit over memory that sits in swap.

The parent maps and writes SIZE, pages all of it out (``MADV_PAGEOUT``;
``pageout=no`` leaves that to memory pressure), and forks CHILDREN
children, all alive at once: every swap entry the parent holds is
duplicated into each child, so its count rises to 1 + CHILDREN (past 15 it
needs the cluster's extended count table). Child ``i`` then touches its
own slice ``i`` of the region, one access per page in address order (each
writes with probability ``--write-ratio``: a write breaks COW), and the
children exit in fork order. With ``rounds=N`` the fork-touch-exit cycle
repeats with new child pids. The parent (pid 1) never exits.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ghostswap.errors import ConfigError
from ghostswap.workload.events import OP_EXIT, OP_FORK, OP_MAP, OP_PAGEOUT
from ghostswap.workload.generator import (
    BASE_PAGE,
    CHUNK_EVENTS,
    MAIN_PID,
    Generator,
    access_events,
    one_event,
    populate_count,
    populate_events,
    range_events,
)
from ghostswap.workload.spec import Param, parse_bool, parse_count, parse_pages

__all__ = ["ForkWorkload"]


class ForkWorkload(Generator):
    NAME = "fork"
    USAGE = "fork:SIZE:CHILDREN[:rounds=1][:pageout=yes]"
    SUMMARY = (
        "write SIZE and page it out, fork CHILDREN children that share its swap, "
        "each touches its slice, then they exit"
    )
    PARAMS = (
        Param("size", parse_pages, unit="pages"),
        Param("children", parse_count),
        Param("rounds", parse_count, 1),
        Param("pageout", parse_bool, True),
    )

    def _check(self) -> None:
        children = self.params["children"]
        if children < 1:
            raise ConfigError(f"workload {self.spec!r}: CHILDREN must be at least 1")
        if children > self.params["size"]:
            raise ConfigError(f"workload {self.spec!r}: more CHILDREN than pages in SIZE")
        if self.params["rounds"] * children >= 1 << 31:
            raise ConfigError(f"workload {self.spec!r}: too many children for 32-bit pids")

    def slice_of(self, child: int) -> tuple[int, int]:
        """First page and page count of child number `child` (0-based)."""
        npages, children = self.params["size"], self.params["children"]
        start = child * npages // children
        end = (child + 1) * npages // children
        return BASE_PAGE + start, end - start

    def total_events(self) -> int:
        npages = self.params["size"]
        setup = 1 + populate_count(npages) + int(self.params["pageout"])
        per_round = 2 * self.params["children"] + npages
        return setup + self.params["rounds"] * per_round

    def _generate(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        npages, children = self.params["size"], self.params["children"]
        yield one_event(MAIN_PID, OP_MAP, BASE_PAGE, npages)
        yield from populate_events(MAIN_PID, BASE_PAGE, npages)
        if self.params["pageout"]:
            yield one_event(MAIN_PID, OP_PAGEOUT, BASE_PAGE, npages)
        next_pid = MAIN_PID + 1
        for _ in range(self.params["rounds"]):
            pids = np.arange(next_pid, next_pid + children, dtype=np.uint64)
            next_pid += children
            yield range_events(MAIN_PID, OP_FORK, pids, 0)
            for child, pid in enumerate(pids.tolist()):
                start, count = self.slice_of(child)
                for first in range(0, count, CHUNK_EVENTS):
                    pages = np.arange(first, min(first + CHUNK_EVENTS, count), dtype=np.uint64)
                    yield access_events(rng, pid, pages + np.uint64(start), self.write_ratio)
            exits = range_events(0, OP_EXIT, np.zeros(children, dtype=np.uint64), 0)
            exits["pid"] = pids
            yield exits
