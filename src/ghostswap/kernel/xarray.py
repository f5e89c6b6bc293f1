"""The XArray (include/linux/xarray.h, lib/xarray.c).

Entries live in a dict; what the kernel would spend on radix-tree nodes is
derived from the set of occupied indices (`xa_nr_nodes`), so metadata
accounting can price a sparse pool exactly. An ``XA_FLAGS_ALLOC`` array
hands out the lowest free index inside the caller's limit, as ``xa_alloc``
does.

Checked mode: loads are scheduling points (they run under RCU inside the
kernel); stores, inserts, erases and allocations take the array's own
``xa_lock``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from ghostswap.kernel import runtime as _rt
from ghostswap.kernel.bug import KernelError
from ghostswap.kernel.gfp import might_alloc, should_fail_alloc
from ghostswap.kernel.runtime import checked_twin
from ghostswap.kernel.spinlock import spin_lock, spin_unlock, spinlock_t

__all__ = [
    "XA_CHUNK_SHIFT",
    "XA_CHUNK_SIZE",
    "XA_FLAGS_ALLOC",
    "XA_FLAGS_ALLOC1",
    "XA_LIMIT",
    "XArray",
    "xa_alloc",
    "xa_destroy",
    "xa_empty",
    "xa_erase",
    "xa_init_flags",
    "xa_insert",
    "xa_load",
    "xa_nr_nodes",
    "xa_store",
]

XA_CHUNK_SHIFT = 6  # CONFIG_BASE_SMALL=n
XA_CHUNK_SIZE = 1 << XA_CHUNK_SHIFT
XA_MAX_LEVELS = 6  # 64**6 = 2**36 covers a 32-bit index
XA_FLAGS_ALLOC = 1 << 0
XA_FLAGS_ALLOC1 = 1 << 1
XA_INDEX_MAX = (1 << 32) - 1  # xa_alloc() ids are u32


def XA_LIMIT(lo: int, hi: int) -> tuple[int, int]:
    return (lo, hi)


class XArray:
    """``struct xarray``: index -> entry, with node bookkeeping."""

    __slots__ = (
        "_entries",
        "_free",
        "_gaps",
        "_hwm",
        "_level_counts",
        "flags",
        "name",
        "xa_lock",
    )

    def __init__(self, flags: int = 0, name: str = "xarray") -> None:
        self.flags = flags
        self.name = name
        self.xa_lock = spinlock_t(f"{name}.xa_lock")
        self._entries: dict[int, Any] = {}
        # Per tree level, how many occupied indices fall under each node.
        self._level_counts: list[dict[int, int]] = [{} for _ in range(XA_MAX_LEVELS)]
        self._free: list[int] = []  # freed indices below _hwm (lazy heap)
        self._hwm = 0  # every index >= _hwm has never been occupied
        self._gaps: list[list[int]] = []  # [start, end) ranges below _hwm never occupied

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[int, Any]]:
        return sorted(self._entries.items())

    # -- node bookkeeping ----------------------------------------------------
    def _account(self, index: int, delta: int) -> None:
        for level, counts in enumerate(self._level_counts):
            key = index >> (XA_CHUNK_SHIFT * (level + 1))
            n = counts.get(key, 0) + delta
            if n:
                counts[key] = n
            else:
                del counts[key]

    def _needs_new_leaf(self, index: int) -> bool:
        return (index >> XA_CHUNK_SHIFT) not in self._level_counts[0]

    def nr_nodes(self) -> int:
        """How many ``struct xa_node`` the kernel would hold for these indices.

        A lone entry at index 0 lives in the head pointer; otherwise the tree
        is as tall as the largest index needs (the kernel shrinks it when the
        top node only uses slot 0) and a node exists under every prefix that
        has an occupied index.
        """
        entries = self._entries
        if not entries or (len(entries) == 1 and 0 in entries):
            return 0
        nodes = 0
        for counts in self._level_counts:
            nodes += len(counts)
            if len(counts) == 1 and 0 in counts:
                return nodes
        return nodes


def xa_init_flags(xa: XArray, flags: int) -> None:
    xa.flags = flags


def xa_load(xa: XArray, index: int) -> Any:
    return xa._entries.get(index)


@checked_twin(xa_load)
def _xa_load(xa: XArray, index: int) -> Any:
    _rt.checked.point("xa_load", f"{xa.name}[{index}]", depth=2)  # type: ignore[union-attr]
    return xa._entries.get(index)


def _store_locked(xa: XArray, index: int, entry: Any, gfp: int, site: str) -> Any:
    entries = xa._entries
    old = entries.get(index)
    if entry is None:
        if old is not None:
            del entries[index]
            xa._account(index, -1)
            if xa.flags & XA_FLAGS_ALLOC and index < xa._hwm:
                heapq.heappush(xa._free, index)
        return old
    if old is None:
        if xa._needs_new_leaf(index) and should_fail_alloc(site, gfp):
            raise KernelError("ENOMEM", f"{site}: xa_node allocation failed")
        xa._account(index, +1)
        if index >= xa._hwm:
            if index > xa._hwm and xa.flags & XA_FLAGS_ALLOC:
                xa._gaps.append([xa._hwm, index])
            xa._hwm = index + 1
        elif xa._gaps:
            _take_from_gaps(xa, index)
    entries[index] = entry
    return old


def xa_store(xa: XArray, index: int, entry: Any, gfp: int) -> Any:
    """Store `entry` at `index` and return the old entry (None to erase)."""
    might_alloc(gfp, "xa_store")
    spin_lock(xa.xa_lock)
    try:
        return _store_locked(xa, index, entry, gfp, "xa_store")
    finally:
        spin_unlock(xa.xa_lock)


def xa_insert(xa: XArray, index: int, entry: Any, gfp: int) -> None:
    """Store only into an empty index; EBUSY otherwise."""
    might_alloc(gfp, "xa_insert")
    spin_lock(xa.xa_lock)
    try:
        if index in xa._entries:
            raise KernelError("EBUSY", f"xa_insert: {xa.name}[{index}] is occupied")
        _store_locked(xa, index, entry, gfp, "xa_insert")
    finally:
        spin_unlock(xa.xa_lock)


def xa_erase(xa: XArray, index: int) -> Any:
    spin_lock(xa.xa_lock)
    try:
        return _store_locked(xa, index, None, 0, "xa_erase")
    finally:
        spin_unlock(xa.xa_lock)


def xa_alloc(
    xa: XArray,
    entry: Any,
    limit: tuple[int, int],
    gfp: int,
    set_id: Callable[[int], None] | None = None,
) -> int:
    """Store `entry` at the lowest free index within `limit`; return it.

    `set_id` is the kernel's ``u32 *id``: it is called with the index before
    the entry is published, so a lockless ``xa_load`` that finds the entry
    also sees its id. Raises ``KernelError("EBUSY")`` when the limit has no
    free index and ``KernelError("ENOMEM")`` when a node allocation fails.
    """
    assert xa.flags & XA_FLAGS_ALLOC, "xa_alloc on an array without XA_FLAGS_ALLOC"
    lo, hi = limit
    if hi > XA_INDEX_MAX:
        hi = XA_INDEX_MAX
    might_alloc(gfp, "xa_alloc")
    spin_lock(xa.xa_lock)
    try:
        index = _lowest_free(xa, lo, hi)
        if index is None:
            raise KernelError("EBUSY", f"xa_alloc: {xa.name} has no free index in [{lo}, {hi}]")
        if set_id is not None:
            set_id(index)
        _store_locked(xa, index, entry, gfp, "xa_alloc")
        return index
    finally:
        spin_unlock(xa.xa_lock)


def _take_from_gaps(xa: XArray, index: int) -> None:
    for gap in xa._gaps:
        start, end = gap
        if start <= index < end:
            xa._gaps.remove(gap)
            if start < index:
                xa._gaps.append([start, index])
            if index + 1 < end:
                xa._gaps.append([index + 1, end])
            return


def _lowest_in_gaps(xa: XArray, lo: int) -> int | None:
    best: int | None = None
    for start, end in xa._gaps:
        candidate = max(start, lo)
        if candidate < end and (best is None or candidate < best):
            best = candidate
    return best


def _lowest_free(xa: XArray, lo: int, hi: int) -> int | None:
    entries = xa._entries
    free = xa._free
    below: list[int] = []
    found: int | None = _lowest_in_gaps(xa, lo) if xa._gaps else None
    while free:
        index = heapq.heappop(free)
        if index in entries:
            continue  # stale: re-occupied by a store
        if index < lo:
            below.append(index)
            continue
        below.append(index)
        if index <= hi and (found is None or index < found):
            found = index
        break
    for index in below:
        heapq.heappush(free, index)
    if found is not None:
        return found if found <= hi else None
    index = max(xa._hwm, lo)
    while index in entries:
        index += 1
    return index if index <= hi else None


def xa_empty(xa: XArray) -> bool:
    return not xa._entries


def xa_destroy(xa: XArray) -> None:
    xa._entries.clear()
    for counts in xa._level_counts:
        counts.clear()
    xa._free.clear()
    xa._gaps.clear()
    xa._hwm = 0


def xa_nr_nodes(xa: XArray) -> int:
    return xa.nr_nodes()
