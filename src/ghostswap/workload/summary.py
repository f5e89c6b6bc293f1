"""What a workload does, in one pass over its events (``ghostswap trace info``).

Counts events per op, pids, the page range, reads and writes (events and
pages), and the footprint: the distinct pages each process reads or
writes, kept as a union of page intervals, so memory grows with the number
of disjoint touched ranges, never with the event count or range lengths.

A forked child shares the pages it inherits with its parent (the model's
``copy_page_range`` maps the same folios and swap entries, write-protected),
so they are the parent's memory, counted once: a child's page counts only
once it is the child's own, because it wrote it after the fork (a COW
copy) or touched a page outside what it inherited. A child inherits the
pages its parent touched and those the parent inherited in turn; like the
rest of the footprint, this ignores frees (a freed page a child reads is
the zero page, no memory either). A parent's write to a page it shares
gives it a new copy of a page it has counted already: like a page
rewritten after a free, that counts once. A pid that accesses memory
after its exit is a new process (the model gives it a new mm): its pages
count again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ghostswap.units import PAGE_SIZE
from ghostswap.workload.events import (
    OP_EXIT,
    OP_FORK,
    OP_NAMES,
    OP_READ,
    OP_WRITE,
    Workload,
)
from ghostswap.workload.trace_common import RANGE_OPS

__all__ = ["IntervalSet", "WorkloadSummary", "summarize"]

# Intervals are kept with inclusive last pages: the top page 2^64 - 1 is a
# valid page in a trace, and its exclusive end would wrap to 0.
_TOP = np.uint64((1 << 64) - 1)

Intervals = tuple[np.ndarray, np.ndarray]


def _union(starts: np.ndarray, lasts: np.ndarray) -> Intervals:
    """The pages of ``[starts[i], lasts[i]]`` as sorted, disjoint and not
    adjacent intervals."""
    if not len(starts):
        return starts, lasts
    order = np.argsort(starts, kind="stable")
    starts, lasts = starts[order], lasts[order]
    reach = np.maximum.accumulate(lasts)[:-1]
    apart = (reach < _TOP) & (starts[1:] > reach + np.uint64(1))
    first = np.flatnonzero(np.concatenate(([True], apart)))
    return starts[first], np.maximum.reduceat(lasts, first)


def _contains(have: Intervals, points: np.ndarray) -> np.ndarray:
    """Which of `points` lie in `have` (from :func:`_union`)."""
    starts, lasts = have
    if not len(starts):
        return np.zeros(len(points), dtype=bool)
    k = np.searchsorted(starts, points, side="right") - 1
    return (k >= 0) & (points <= lasts[np.maximum(k, 0)])


def _difference(keep: Intervals, drop: Intervals) -> Intervals:
    """The pages of `keep` not in `drop` (both from :func:`_union`)."""
    if not len(keep[0]):
        return keep
    # Membership changes only at a start or just past a last: test each
    # piece between two such cuts at its first page.
    ends = [lasts[lasts < _TOP] + np.uint64(1) for lasts in (keep[1], drop[1])]
    cuts = np.unique(np.concatenate([keep[0], drop[0], *ends]))
    piece_lasts = np.append(cuts[1:] - np.uint64(1), _TOP)
    mine = _contains(keep, cuts) & ~_contains(drop, cuts)
    return _union(cuts[mine], piece_lasts[mine])


class IntervalSet:
    """A set of pages as sorted disjoint inclusive intervals
    ``[starts[i], lasts[i]]``. Ranges are given with exclusive ends
    (``page + npages``, 0 for one that reaches the top page)."""

    def __init__(self) -> None:
        self.starts = np.empty(0, dtype=np.uint64)
        self.lasts = np.empty(0, dtype=np.uint64)
        self._pending: list[Intervals] = []
        self._pending_len = 0

    def add(self, starts: np.ndarray, ends: np.ndarray) -> None:
        """Add ``[starts[i], ends[i])`` for every i."""
        self._add_lasts(starts, ends - np.uint64(1))

    def update(self, other: IntervalSet) -> None:
        """Add every page of `other`."""
        other._merge()
        self._add_lasts(other.starts, other.lasts)

    def remove(self, starts: np.ndarray, ends: np.ndarray) -> None:
        """Remove ``[starts[i], ends[i])`` for every i."""
        self._merge()
        gone = _union(starts, ends - np.uint64(1))
        self.starts, self.lasts = _difference((self.starts, self.lasts), gone)

    def outside(self, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pages of ``[starts[i], ends[i])`` not in the set, as ranges
        with exclusive ends."""
        self._merge()
        out_starts, out_lasts = _difference(
            _union(starts, ends - np.uint64(1)), (self.starts, self.lasts)
        )
        return out_starts, out_lasts + np.uint64(1)

    def _add_lasts(self, starts: np.ndarray, lasts: np.ndarray) -> None:
        self._pending.append((starts, lasts))
        self._pending_len += len(starts)
        # Merge when the pending part outgrows the merged part: amortised
        # O(n log n) however the adds come.
        if self._pending_len > max(len(self.starts), 1 << 16):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        starts = np.concatenate([self.starts, *(s for s, _ in self._pending)])
        lasts = np.concatenate([self.lasts, *(la for _, la in self._pending)])
        self._pending, self._pending_len = [], 0
        self.starts, self.lasts = _union(starts, lasts)

    def __len__(self) -> int:
        """The number of pages in the set."""
        self._merge()
        return int((self.lasts - self.starts).sum()) + len(self.starts)


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
    # Per live forked child: the pages it still shares with its parent.
    shared: dict[int, IntervalSet] = field(default_factory=dict)
    # Pages of processes that exited, per pid: a pid used again after its
    # exit is a new process, with pages of its own.
    exited: dict[int, int] = field(default_factory=dict)

    @property
    def distinct_pages(self) -> int:
        """Pages read or written, counted once per process; a forked child's
        pages only once they are its own (see the module docstring)."""
        return sum(len(s) for s in self.touched.values()) + sum(self.exited.values())

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
            "distinct_pages_per_pid": {
                str(p): self.exited.get(p, 0) + len(self.touched.get(p, ()))
                for p in sorted(self.touched.keys() | self.exited.keys())
            },
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
        self._add_footprint(events[reads | writes | np.isin(ops, (OP_FORK, OP_EXIT))])

    def _add_footprint(self, events: np.ndarray) -> None:
        # What a child shares changes only at a fork or an exit, so the
        # accesses between two of them can be taken together.
        start = 0
        for at in np.flatnonzero(np.isin(events["op"], (OP_FORK, OP_EXIT))).tolist():
            self._add_accesses(events[start:at])
            pid = int(events["pid"][at])
            if events["op"][at] == OP_FORK:
                self._fork(pid, int(events["page"][at]))
            else:
                self.shared.pop(pid, None)
                gone = self.touched.pop(pid, None)
                if gone is not None:
                    self.exited[pid] = self.exited.get(pid, 0) + len(gone)
            start = at + 1
        self._add_accesses(events[start:])

    def _fork(self, parent: int, child: int) -> None:
        view = IntervalSet()
        for pages in (self.touched.get(parent), self.shared.get(parent)):
            if pages is not None:
                view.update(pages)
        self.shared[child] = view

    def _add_accesses(self, accesses: np.ndarray) -> None:
        if not len(accesses):
            return
        accesses = accesses[np.argsort(accesses["pid"], kind="stable")]
        pids, firsts = np.unique(accesses["pid"], return_index=True)
        for pid, mine in zip(pids.tolist(), np.split(accesses, firsts[1:]), strict=True):
            starts = mine["page"]
            ends = starts + mine["npages"].astype(np.uint64)
            pages = self.touched.setdefault(pid, IntervalSet())
            shared = self.shared.get(pid)
            if shared is None:
                pages.add(starts, ends)
                continue
            # A write makes the child's own copy; a read of a shared page
            # adds nothing.
            writes = mine["op"] == OP_WRITE
            pages.add(starts[writes], ends[writes])
            pages.add(*shared.outside(starts[~writes], ends[~writes]))
            shared.remove(starts[writes], ends[writes])


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
