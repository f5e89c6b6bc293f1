"""What a workload does, in one pass over its events (``ghostswap trace info``).

Counts events per op, pids, the page range, reads and writes (events and
pages), and the footprint: the distinct pages each process reads or
writes, kept as a union of page intervals, so memory grows with the number
of disjoint touched ranges, never with the event count or range lengths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ghostswap.units import PAGE_SIZE
from ghostswap.workload.events import OP_NAMES, OP_READ, OP_WRITE, Workload
from ghostswap.workload.trace_common import RANGE_OPS

__all__ = ["IntervalSet", "WorkloadSummary", "summarize"]


class IntervalSet:
    """A set of pages as sorted disjoint half-open intervals."""

    def __init__(self) -> None:
        self.starts = np.empty(0, dtype=np.uint64)
        self.ends = np.empty(0, dtype=np.uint64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_len = 0

    def add(self, starts: np.ndarray, ends: np.ndarray) -> None:
        """Add ``[starts[i], ends[i])`` for every i."""
        self._pending.append((starts, ends))
        self._pending_len += len(starts)
        # Merge when the pending part outgrows the merged part: amortised
        # O(n log n) however the adds come.
        if self._pending_len > max(len(self.starts), 1 << 16):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        starts = np.concatenate([self.starts, *(s for s, _ in self._pending)])
        ends = np.concatenate([self.ends, *(e for _, e in self._pending)])
        self._pending, self._pending_len = [], 0
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
        reach = np.maximum.accumulate(ends)
        first = np.flatnonzero(np.concatenate(([True], starts[1:] > reach[:-1])))
        self.starts = starts[first]
        self.ends = np.maximum.reduceat(ends, first) if len(first) else ends[:0]

    def __len__(self) -> int:
        """The number of pages in the set."""
        self._merge()
        return int((self.ends - self.starts).sum())


@dataclass
class WorkloadSummary:
    events: int = 0
    ops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OP_NAMES.values(), 0))
    pids: set[int] = field(default_factory=set)
    page_min: int | None = None
    page_max: int | None = None
    read_pages: int = 0
    write_pages: int = 0
    touched: dict[int, IntervalSet] = field(default_factory=dict)

    @property
    def distinct_pages(self) -> int:
        """Pages read or written, counted once per process."""
        return sum(len(s) for s in self.touched.values())

    @property
    def footprint_bytes(self) -> int:
        return self.distinct_pages * PAGE_SIZE

    @property
    def write_share(self) -> float | None:
        """Written pages / accessed pages."""
        accessed = self.read_pages + self.write_pages
        return self.write_pages / accessed if accessed else None

    def as_dict(self) -> dict[str, object]:
        return {
            "events": self.events,
            "ops": self.ops,
            "pids": sorted(self.pids),
            "page_min": self.page_min,
            "page_max": self.page_max,
            "read_pages": self.read_pages,
            "write_pages": self.write_pages,
            "write_share": self.write_share,
            "distinct_pages": self.distinct_pages,
            "footprint_bytes": self.footprint_bytes,
            "distinct_pages_per_pid": {str(p): len(s) for p, s in sorted(self.touched.items())},
        }

    def add(self, events: np.ndarray) -> None:
        self.events += len(events)
        ops = events["op"]
        for code, n in enumerate(np.bincount(ops, minlength=len(OP_NAMES))):
            if n:
                self.ops[OP_NAMES[code]] += int(n)
        self.pids.update(np.unique(events["pid"]).tolist())
        ranged = events[np.isin(ops, RANGE_OPS)]
        if len(ranged):
            last = ranged["page"] + ranged["npages"] - np.uint64(1)
            low, high = int(ranged["page"].min()), int(last.max())
            self.page_min = low if self.page_min is None else min(self.page_min, low)
            self.page_max = high if self.page_max is None else max(self.page_max, high)
        reads, writes = ops == OP_READ, ops == OP_WRITE
        self.read_pages += int(events["npages"][reads].sum(dtype=np.uint64))
        self.write_pages += int(events["npages"][writes].sum(dtype=np.uint64))
        accesses = events[reads | writes]
        if not len(accesses):
            return
        accesses = accesses[np.argsort(accesses["pid"], kind="stable")]
        pids, firsts = np.unique(accesses["pid"], return_index=True)
        for pid, mine in zip(pids.tolist(), np.split(accesses, firsts[1:]), strict=True):
            pages = self.touched.setdefault(pid, IntervalSet())
            pages.add(mine["page"], mine["page"] + mine["npages"].astype(np.uint64))


def summarize(
    workload: Workload, progress: Callable[[int], object] | None = None
) -> WorkloadSummary:
    """One pass over `workload`; `progress(events_done)` is called per chunk."""
    summary = WorkloadSummary()
    for events in workload.chunks():
        summary.add(events)
        if progress is not None:
            progress(summary.events)
    return summary
