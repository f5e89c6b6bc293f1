"""Feed a workload's event chunks to a :class:`~ghostswap.mm.machine.Machine`.

Reads and writes of single pages are classified a window at a time with
numpy: accesses to present PTEs (writable ones, for writes) are plain hits
and are applied in bulk; every other event goes through the VM one by one,
in order. The hits between two slow events are applied before the second
one runs, so reclaim sees exactly the referenced bits the sequence left.
When a slow event unmaps or write-protects anything, the rest of the window
is classified again.

Timeline samples are observations only: they never change where a chunk is
cut or when deferred work runs. A sample point inside a chunk is taken just
before the first event at or after it that is not a plain hit (or at the
chunk's end): plain hits change no sampled figure, so the machine then is
as it was at the point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ghostswap.errors import ConfigError, GhostswapError
from ghostswap.kernel import quiescent
from ghostswap.mm.machine import Machine
from ghostswap.mm.mm_types import MAX_PAGE, PID_SHIFT
from ghostswap.workload.events import (
    OP_EXIT,
    OP_FORK,
    OP_FREE,
    OP_HUGEPAGE,
    OP_MAP,
    OP_NOHUGEPAGE,
    OP_PAGEOUT,
    OP_READ,
    OP_UNMAP,
    OP_WRITE,
    Workload,
)

__all__ = ["EventError", "Marks", "ReplayResult", "replay", "replay_chunk"]

WINDOW = 8192
MIN_WINDOW = 256
RANGE_SLICE = 1 << 16  # pages of one range event handed to _accesses at once
# The page tables key a process's blocks by ``pid << PID_SHIFT`` in an
# int64; the kernel's own PID_MAX_LIMIT (4,194,304) is below this.
MAX_PID = 1 << (63 - PID_SHIFT)


class EventError(ConfigError):
    """An event the machine refuses; `index` is its place in the chunk."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"event {index}: {message}")
        self.index = index
        self.message = message


@dataclass
class ReplayResult:
    events: int = 0
    seconds: float = 0.0
    samples: list[dict[str, float]] = field(default_factory=list)


def _first_unreplayable(chunk: np.ndarray) -> tuple[int, str] | None:
    """The first event of `chunk` the machine cannot represent, and why: a
    pid (or a forked child's) beyond :data:`MAX_PID`, or an access past
    the last page of the address space (:data:`MAX_PAGE`)."""
    ops = chunk["op"]
    pids = chunk["pid"]
    pages = chunk["page"]
    npages = chunk["npages"].astype(np.uint64)
    bad_pid = pids >= MAX_PID
    bad_child = (ops == OP_FORK) & (pages >= MAX_PID)
    bad_page = (ops <= OP_WRITE) & (npages > 0) & (pages > np.uint64(MAX_PAGE) - npages)
    bad = bad_pid | bad_child | bad_page
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    if bad_pid[i]:
        return i, f"pid {int(pids[i])} is not below {MAX_PID}, the model's pid limit"
    if bad_child[i]:
        return i, f"fork: child pid {int(pages[i])} is not below {MAX_PID}, the model's pid limit"
    return i, _outside(int(pages[i]), int(npages[i]))


def _outside(page: int, npages: int) -> str:
    what = f"page {page:#x}" if npages == 1 else f"page range {page:#x}+{npages}"
    return f"{what} is outside the address space (pages below {MAX_PAGE:#x})"


class Marks:
    """Sample points inside one chunk: :meth:`reach` is called with the
    index of every event that is not a plain hit once that index is at or
    past :attr:`next` (the next point, an index into the chunk), and with
    the chunk's length at its end."""

    __slots__ = ("next",)

    def __init__(self, first: int) -> None:
        self.next = first

    def reach(self, index: int) -> None:
        """Take the points up to `index` (the machine is as it was at each)
        and move :attr:`next` past `index`."""
        raise NotImplementedError


def _window(
    vm: Machine,
    pids: np.ndarray,
    pages: np.ndarray,
    writes: np.ndarray,
    marks: Marks | None = None,
    base: int = 0,
) -> int:
    """Apply one window of single-page accesses (the window starts at index
    `base` of the chunk `marks` belongs to).

    Hits are applied lazily: they are pending until the VM is about to look
    at other pages' PTEs or contents (reclaim, zap, fork, MADV_PAGEOUT call
    ``vm.sync_hits()``), and then applied up to the event in progress. A
    fault on one page cannot observe hits on others, so this keeps the
    exact order for everything that can. Returns how many times the window
    had to be classified again.
    """
    n = len(pids)
    pos = 0
    passes = -1
    pt = vm.pt
    while pos < n:
        passes += 1
        epoch = vm.unmap_epoch
        ptis = pt.ptis(pids[pos:], pages[pos:])
        valid = ptis >= 0
        pte = pt.pte[np.where(valid, ptis, 0)]
        wr = writes[pos:]
        hit = valid & np.where(wr, (pte & 3) == 3, (pte & 1) == 1)
        slow = np.flatnonzero(~hit)
        if not len(slow):
            vm.apply_hits(ptis, wr)
            return passes
        skipped = _EMPTY
        if vm.killed:
            # Accesses of OOM-killed processes are skipped (Machine.access
            # only counts them): count them here, not one call per page.
            dead = _dead_pids(vm)
            if len(dead):
                is_dead = np.isin(pids[pos:][slow], dead)
                if is_dead.any():
                    skipped = slow[is_dead]
                    slow = slow[~is_dead]
        state = [0, 0]  # hits applied up to, current event

        def flush(state: list[int] = state, ptis: np.ndarray = ptis, wr: np.ndarray = wr,
                  hit: np.ndarray = hit) -> None:  # fmt: skip
            lo, upto = state
            if upto > lo:
                mask = hit[lo:upto]
                vm.apply_hits(ptis[lo:upto][mask], wr[lo:upto][mask])
                state[0] = upto

        vm.sync_hits = flush
        wr_l = wr.tolist()
        prev = 0
        at = base + pos  # chunk index of `s` == 0
        mark = marks.next - at if marks is not None else n
        try:
            for s in slow.tolist():
                state[1] = s
                if s >= mark:
                    assert marks is not None
                    marks.reach(at + s)
                    mark = marks.next - at
                vm.access(int(pids[pos + s]), int(pages[pos + s]), wr_l[s])
                prev = s + 1
                if vm.unmap_epoch != epoch:
                    break
            else:
                vm.vm_stats["events_skipped"] += len(skipped)
                state[1] = len(ptis)
                flush()
                return passes
            # The rest of the window is classified again: count only the
            # skipped accesses before the break.
            vm.vm_stats["events_skipped"] += int(np.searchsorted(skipped, prev))
            state[1] = prev
            flush()
        finally:
            vm.sync_hits = _no_pending
        pos += prev
    return passes


def _no_pending() -> None:
    pass


_EMPTY = np.empty(0, dtype=np.intp)


def _dead_pids(vm: Machine) -> np.ndarray:
    """The pids whose accesses :meth:`Machine.access` skips: killed (by the
    OOM killer, or a fork that failed) and not started again since."""
    return np.array([p for p in vm.killed if p not in vm.mms], dtype=np.uint32)


def _is_dead(vm: Machine, pid: int) -> bool:
    """Does :meth:`Machine.access` skip `pid`'s accesses (see :meth:`Machine.mm`)?"""
    return pid in vm.killed and pid not in vm.mms


def _accesses(
    vm: Machine,
    pids: np.ndarray,
    pages: np.ndarray,
    writes: np.ndarray,
    marks: Marks | None = None,
    base: int = 0,
) -> None:
    """Single-page accesses; the first is event `base` of the chunk `marks`
    belongs to."""
    if len(pages) and int(pages.max()) >= MAX_PAGE:
        raise ConfigError(_outside(int(pages.max()), 1))
    # Windows shrink while reclaim keeps forcing reclassification (each pass
    # costs the rest of the window) and grow back when hits dominate.
    size = vm.replay_window
    start = 0
    n = len(pids)
    while start < n:
        end = start + size
        passes = _window(
            vm, pids[start:end], pages[start:end], writes[start:end], marks, base + start
        )
        if passes > 2:
            size = max(MIN_WINDOW, size // 4)
        elif passes == 0:
            size = min(WINDOW, size * 2)
        start = end
    vm.replay_window = size


def _event(vm: Machine, pid: int, op: int, page: int, npages: int) -> None:
    if op in (OP_READ, OP_WRITE):
        # A range may cover up to 2^32 - 1 pages: touch it a slice at a time.
        for first in range(page, page + npages, RANGE_SLICE):
            if _is_dead(vm, pid):
                # Killed before or during this range: the rest is skipped
                # as a whole, counted as Machine.access counts it (a page
                # each), not walked.
                vm.vm_stats["events_skipped"] += page + npages - first
                return
            n = min(RANGE_SLICE, page + npages - first)
            _accesses(
                vm,
                np.full(n, pid, dtype=np.uint32),
                np.arange(first, first + n, dtype=np.uint64),
                np.full(n, op == OP_WRITE, dtype=bool),
            )
    elif op == OP_FREE:
        vm.madvise_dontneed(pid, page, npages)
    elif op == OP_MAP:
        vm.map(pid, page, npages)
    elif op == OP_UNMAP:
        vm.unmap(pid, page, npages)
    elif op == OP_FORK:
        vm.fork(pid, page)
    elif op == OP_EXIT:
        vm.exit(pid)
    elif op == OP_PAGEOUT:
        vm.madvise_pageout(pid, page, npages)
    elif op in (OP_HUGEPAGE, OP_NOHUGEPAGE):
        vm.madvise_hugepage(pid, page, npages, op == OP_HUGEPAGE)
    else:
        raise ConfigError(f"unknown event op {op}")


def replay_chunk(vm: Machine, chunk: np.ndarray, marks: Marks | None = None) -> None:
    """Apply one chunk of EVENT_DTYPE events, in order; `marks` are sample
    points inside it (see :class:`Marks`)."""
    bad = _first_unreplayable(chunk)
    if bad is not None:
        raise EventError(*bad)
    ops = chunk["op"]
    npages = chunk["npages"]
    pids = chunk["pid"]
    pages = chunk["page"]
    simple = (ops <= OP_WRITE) & (npages == 1)
    if simple.all():
        _accesses(vm, pids, pages, ops == OP_WRITE, marks)
    else:
        start = 0
        for b in np.flatnonzero(~simple).tolist():
            if b > start:
                _accesses(vm, pids[start:b], pages[start:b], ops[start:b] == OP_WRITE, marks, start)
            if marks is not None and b >= marks.next:
                marks.reach(b)
            try:
                _event(vm, int(pids[b]), int(ops[b]), int(pages[b]), int(npages[b]))
            except ConfigError as err:
                raise EventError(b, str(err)) from None
            start = b + 1
        if start < len(chunk):
            _accesses(vm, pids[start:], pages[start:], ops[start:] == OP_WRITE, marks, start)
    if marks is not None and marks.next < len(chunk):
        marks.reach(len(chunk))


class _Timeline(Marks):
    """The samples of a run: one at each multiple of `every` events, taken
    between parts at part starts and through :class:`Marks` inside them.
    Past `limit` samples every other one is dropped and `every` doubles."""

    __slots__ = ("at", "base", "end", "every", "limit", "points", "sampler", "samples", "vm")

    def __init__(
        self,
        vm: Machine,
        sampler: Callable[[Machine, int], dict[str, float]],
        every: int,
        limit: int,
    ) -> None:
        super().__init__(0)
        self.vm = vm
        self.sampler = sampler
        self.every = max(every, 1)
        self.limit = limit
        self.samples: list[dict[str, float]] = []
        self.points: list[int] = []  # the event index of each sample
        self.at = 0  # the event index of the next sample
        self.base = 0  # the event index of the current part's first event
        self.end = 0  # and of the event after its last

    def start_part(self, base: int, length: int) -> None:
        """A part of `length` events from event `base` is next: the sample
        due at its start is taken now, the ones inside it while it runs."""
        if self.at == base:
            self.take()
        self.base, self.end = base, base + length
        self.next = self.at - base

    def reach(self, index: int) -> None:
        upto = min(self.base + index, self.end - 1)
        while self.at <= upto:
            self.take()
        self.next = self.at - self.base

    def take(self) -> None:
        self.samples.append(self.sampler(self.vm, self.at))
        self.points.append(self.at)
        if self.limit and len(self.samples) > self.limit:
            self.every *= 2
            keep = [i for i, p in enumerate(self.points) if p % self.every == 0]
            self.samples = [self.samples[i] for i in keep]
            self.points = [self.points[i] for i in keep]
        self.at = (self.points[-1] // self.every + 1) * self.every


def replay(
    vm: Machine,
    workload: Workload,
    *,
    progress: Callable[[int], None] | None = None,
    sampler: Callable[[Machine, int], dict[str, float]] | None = None,
    sample_every: int = 0,
    max_samples: int = 0,
    step: int | None = None,
    before_part: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Run every event of `workload` on `vm`.

    `sampler` records a timeline point before events 0, `sample_every`,
    2 x `sample_every`, ... and one at the end. With `max_samples`, a
    timeline that grows past it keeps every other point and samples half
    as often from then on, so a run of unknown length ends with between
    `max_samples` / 2 and `max_samples` points (plus the end).

    With a `step` (default: `sample_every` with a sampler), deferred work
    runs (:func:`quiescent`) after events `step`, 2 x `step`, ... and at
    the end, wherever the workload's chunks happen to end, so the same
    events give the same counters from a generator or from any trace of
    it; without one, after each chunk. Events are replayed in parts that
    end there and at chunk ends; `progress` hears the events done after
    each part, `before_part` before it. Where samples fall does not change
    the counters.
    """
    result = ReplayResult()
    timeline = None
    if sampler is not None:
        timeline = _Timeline(vm, sampler, sample_every, max_samples)
        if step is None:
            step = max(sample_every, 1)
    start = time.perf_counter()
    for chunk in workload.chunks():
        lo = 0
        while lo < len(chunk):
            hi = min(len(chunk), lo + step - result.events % step) if step else len(chunk)
            part = chunk[lo:hi]
            lo = hi
            if before_part is not None:
                before_part(result.events)
            if timeline is not None:
                timeline.start_part(result.events, len(part))
            try:
                replay_chunk(vm, part, timeline)
            except EventError as err:
                index = result.events + err.index
                try:
                    where = workload.locate(index)
                except GhostswapError:  # the trace changed or went away since
                    where = f"{workload.name}: event {index}"
                raise ConfigError(f"{where}: {err.message}") from None
            result.events += len(part)
            if not step or result.events % step == 0:
                quiescent()
            if progress is not None:
                progress(result.events)
    quiescent()
    result.seconds = time.perf_counter() - start
    if timeline is not None:
        result.samples = timeline.samples
        result.samples.append(timeline.sampler(vm, result.events))
    return result
