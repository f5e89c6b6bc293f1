"""Address spaces, VMAs, page tables and physical frames, in compact arrays.

Models the state that include/linux/mm_types.h and the page tables hold for
anonymous memory, laid out for speed: no Python object per page.

Page tables: every process's virtual pages live in 512-entry blocks (one
per 2 MiB region, like a PTE table under a PMD) of one flat int64 array,
found through a directory keyed by ``(pid, region)``. A PTE is 0 (none), a
present entry (frame index and the hardware bits), or a swap entry::

    present:  |------ frame ------|EXCL|ZERO|DIRTY|YOUNG|WRITE|1|
    swap:     |--- type:5 | offset:50 ---|EXCL|1|0|

A parallel array holds, per virtual page, the content token the process
last wrote there: what it expects to read back (:mod:`ghostswap.mm.content`).

Frames (``struct page`` of the memory the VM uses) are arrays indexed by
frame number; a folio is a naturally aligned run of frames whose head
carries the order, the LRU links, the flags and the reverse map. A folio's
``struct folio`` (:class:`~ghostswap.mm.folio.Folio`) exists only while it
is in the swap cache, registered in ``mem_map`` under ``pfn_base + frame``.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

__all__ = [
    "P4D_SHIFT",
    "PTE_DIRTY",
    "PTE_EXCL",
    "PTE_PRESENT",
    "PTE_WRITE",
    "PTE_YOUNG",
    "PTE_ZERO",
    "PUD_SHIFT",
    "FrameTable",
    "MmStruct",
    "PageTables",
    "Vma",
    "pte_mk_swap",
    "pte_to_frame",
    "pte_to_swp_entry",
]

PTE_PRESENT = 1 << 0
PTE_WRITE = 1 << 1
PTE_YOUNG = 1 << 2
PTE_DIRTY = 1 << 3
PTE_ZERO = 1 << 4
PTE_EXCL = 1 << 5
PTE_FRAME_SHIFT = 8

PTE_SWAP = 1 << 1  # with bit 0 clear
PTE_SWP_EXCL = 1 << 2
PTE_SWP_SHIFT = 3
_SWP_TYPE_SHIFT_PTE = 50  # x86_64 keeps 50 offset bits in a swap PTE
_SWP_OFFSET_MASK_PTE = (1 << _SWP_TYPE_SHIFT_PTE) - 1
SWP_TYPE_SHIFT = 58  # ghostswap.mm.swap.SWP_TYPE_SHIFT
SWP_OFFSET_MASK = (1 << SWP_TYPE_SHIFT) - 1

PMD_NR = 512
REGION_SHIFT = 9  # a PTE table maps 2 MiB: 2^9 pages
PUD_SHIFT = 18  # a PMD table maps 1 GiB
P4D_SHIFT = 27  # a PUD table maps 512 GiB
PID_SHIFT = 40  # directory key: pid << 40 | region
MAX_PAGE = 1 << (PID_SHIFT + REGION_SHIFT)  # 57-bit virtual addresses


def pte_mk_swap(entry: int, exclusive: bool) -> int:
    """The swap PTE of swap entry `entry` (``swp_entry_to_pte``)."""
    packed = ((entry >> SWP_TYPE_SHIFT) << _SWP_TYPE_SHIFT_PTE) | (entry & SWP_OFFSET_MASK)
    return (packed << PTE_SWP_SHIFT) | PTE_SWAP | (PTE_SWP_EXCL if exclusive else 0)


def pte_to_swp_entry(pte: int) -> int:
    packed = pte >> PTE_SWP_SHIFT
    return ((packed >> _SWP_TYPE_SHIFT_PTE) << SWP_TYPE_SHIFT) | (packed & _SWP_OFFSET_MASK_PTE)


def pte_to_frame(pte: int) -> int:
    return pte >> PTE_FRAME_SHIFT


# vm_flags the anonymous VM looks at (include/linux/mm.h).
VM_HUGEPAGE = 1 << 0  # MADV_HUGEPAGE
VM_NOHUGEPAGE = 1 << 1  # MADV_NOHUGEPAGE


class Vma:
    """``struct vm_area_struct`` of an anonymous private mapping
    ``[start, end)`` (pages): its THP madvise flags and its swap readahead
    state (``vma->swap_readahead_info``: last fault page, window, hits)."""

    __slots__ = ("end", "flags", "ra_hits", "ra_prev", "ra_win", "start")

    def __init__(self, start: int, end: int, flags: int = 0) -> None:
        self.start = start
        self.end = end
        self.flags = flags
        self.ra_prev = -1
        self.ra_win = 0
        self.ra_hits = 4  # GET_SWAP_RA_VAL of an empty value

    def split(self, start: int, end: int) -> Vma:
        """A piece ``[start, end)`` of this VMA with its flags and readahead state."""
        piece = Vma(start, end, self.flags)
        piece.ra_prev, piece.ra_win, piece.ra_hits = self.ra_prev, self.ra_win, self.ra_hits
        return piece

    def __repr__(self) -> str:
        return f"<vma {self.start:#x}-{self.end:#x} flags={self.flags:#x}>"


class MmStruct:
    """``struct mm_struct``: a process's VMAs (sorted, merged), counters,
    and which page tables exist: PTE tables (`regions`, 2 MiB each), PMD
    tables (`pmd_tables`, one per 1 GiB) and PUD tables (`pud_tables`, one
    per 512 GiB), keyed by the virtual page shifted by their span."""

    __slots__ = (
        "alive",
        "pgd",
        "pid",
        "pmd_tables",
        "pud_tables",
        "regions",
        "rss_anon",
        "rss_swapents",
        "vma_starts",
        "vmas",
    )

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.vmas: list[Vma] = []
        self.vma_starts: list[int] = []
        self.regions: set[int] = set()  # regions with a PTE block
        self.pmd_tables: set[int] = set()  # page >> PUD_SHIFT
        self.pud_tables: set[int] = set()  # page >> P4D_SHIFT
        self.pgd = False  # the PGD page is allocated (and charged)
        self.rss_anon = 0
        self.rss_swapents = 0
        self.alive = True

    def nr_pgtables(self) -> int:
        """``mm_pgtables_bytes`` in pages: the PTE, PMD and PUD tables (the
        PGD page is not counted, as in the kernel)."""
        return len(self.regions) + len(self.pmd_tables) + len(self.pud_tables)

    def find_vma(self, page: int) -> Vma | None:
        i = bisect_right(self.vma_starts, page) - 1
        if i >= 0:
            vma = self.vmas[i]
            if page < vma.end:
                return vma
        return None

    def map_range(self, start: int, end: int) -> Vma:
        """Add ``[start, end)``, merging with overlapping VMAs and with
        adjacent ones that have no madvise flags (``vma_merge`` needs equal
        flags)."""
        keep: list[Vma] = []
        for vma in self.vmas:
            adjacent = vma.end == start or vma.start == end
            if vma.end < start or vma.start > end or (adjacent and vma.flags):
                keep.append(vma)
            else:
                start = min(start, vma.start)
                end = max(end, vma.end)
        new = Vma(start, end)
        keep.append(new)
        self.set_vmas(keep)
        return new

    def madvise_range(self, start: int, end: int, set_flags: int, clear_flags: int) -> None:
        """``madvise_update_vma``: split the VMAs at the range's edges, change
        the flags inside it, merge neighbours that end up alike."""
        outside, inside = self._carve(start, end)
        for vma in inside:
            vma.flags = (vma.flags & ~clear_flags) | set_flags
        self.set_vmas(outside + inside)

    def _carve(self, start: int, end: int) -> tuple[list[Vma], list[Vma]]:
        """The VMAs cut at `start` and `end`: the pieces outside the range
        and the pieces inside it."""
        outside: list[Vma] = []
        inside: list[Vma] = []
        for vma in self.vmas:
            if vma.end <= start or vma.start >= end:
                outside.append(vma)
                continue
            if vma.start < start:
                outside.append(vma.split(vma.start, start))
            inside.append(vma.split(max(vma.start, start), min(vma.end, end)))
            if vma.end > end:
                outside.append(vma.split(end, vma.end))
        return outside, inside

    def set_vmas(self, vmas: list[Vma]) -> None:
        """Take `vmas` (disjoint) as this process's VMAs, sorted, with
        adjacent ones of equal flags merged."""
        vmas.sort(key=lambda v: v.start)
        merged: list[Vma] = []
        for vma in vmas:
            last = merged[-1] if merged else None
            if last is not None and last.end == vma.start and last.flags == vma.flags:
                last.end = vma.end
            else:
                merged.append(vma)
        self.vmas = merged
        self.vma_starts = [v.start for v in merged]

    def overlaps(self, start: int, end: int) -> bool:
        """Does any VMA overlap ``[start, end)``?"""
        i = bisect_right(self.vma_starts, end - 1) - 1
        return i >= 0 and self.vmas[i].end > start

    def unmap_range(self, start: int, end: int) -> None:
        """Remove ``[start, end)``, splitting VMAs that straddle it."""
        self.set_vmas(self._carve(start, end)[0])


class PageTables:
    """Every process's PTEs and expected tokens, in 512-entry blocks.

    ``pte[pti]`` and ``token[pti]`` (numpy) and ``pte_mv``/``token_mv``
    (memoryviews of the same memory, for fast scalar access) are indexed by
    a PTE index from :meth:`pti` or :meth:`ptis`.
    """

    def __init__(self, initial_blocks: int = 64) -> None:
        self.pte = np.zeros(initial_blocks * PMD_NR, dtype=np.int64)
        self.token = np.zeros(initial_blocks * PMD_NR, dtype=np.int64)
        self.pte_mv = self.pte.data
        self.token_mv = self.token.data
        self.nr_blocks = 0
        self.free_blocks: list[int] = []
        self.directory: dict[int, int] = {}  # key -> block base pti
        self.block_key: dict[int, int] = {}  # block base -> key
        self._keys = np.zeros(0, dtype=np.int64)
        self._bases = np.zeros(0, dtype=np.int64)
        self._sorted_valid = True

    def _grow(self) -> None:
        size = len(self.pte) * 2
        pte = np.zeros(size, dtype=np.int64)
        token = np.zeros(size, dtype=np.int64)
        pte[: len(self.pte)] = self.pte
        token[: len(self.token)] = self.token
        self.pte_mv.release()
        self.token_mv.release()
        self.pte, self.token = pte, token
        self.pte_mv = pte.data
        self.token_mv = token.data

    def block(self, pid: int, region: int, create: bool = True) -> int:
        """The base PTE index of `region` of `pid` (-1 if absent and not created)."""
        key = (pid << PID_SHIFT) | region
        base = self.directory.get(key)
        if base is not None:
            return base
        if not create:
            return -1
        if self.free_blocks:
            base = self.free_blocks.pop()
        else:
            base = self.nr_blocks * PMD_NR
            self.nr_blocks += 1
            if base + PMD_NR > len(self.pte):
                self._grow()
        self.directory[key] = base
        self.block_key[base] = key
        self._sorted_valid = False
        return base

    def pti(self, pid: int, page: int, create: bool = True) -> int:
        base = self.block(pid, page >> REGION_SHIFT, create)
        return base + (page & (PMD_NR - 1)) if base >= 0 else -1

    def free_block(self, base: int) -> None:
        """Give a (cleared) block back for reuse."""
        key = self.block_key.pop(base)
        del self.directory[key]
        self.pte[base : base + PMD_NR] = 0
        self.token[base : base + PMD_NR] = 0
        self.free_blocks.append(base)
        self._sorted_valid = False

    def ptis(self, pids: np.ndarray, pages: np.ndarray) -> np.ndarray:
        """PTE indexes of (pid, page) pairs, vectorised; -1 where no block exists."""
        if not self._sorted_valid:
            keys = np.fromiter(self.directory.keys(), dtype=np.int64, count=len(self.directory))
            bases = np.fromiter(self.directory.values(), dtype=np.int64, count=len(keys))
            order = np.argsort(keys)
            self._keys, self._bases = keys[order], bases[order]
            self._sorted_valid = True
        keys = (pids.astype(np.int64) << PID_SHIFT) | (pages >> REGION_SHIFT).astype(np.int64)
        if not len(self._keys):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.searchsorted(self._keys, keys)
        np.minimum(pos, len(self._keys) - 1, out=pos)
        found = self._keys[pos] == keys
        out = self._bases[pos] + (pages & (PMD_NR - 1)).astype(np.int64)
        out[~found] = -1
        return out


# Frame flags (the subset of page flags the VM keeps per folio head).
FL_LRU = 1 << 0
FL_ACTIVE = 1 << 1
FL_REFERENCED = 1 << 2
FL_WORKINGSET = 1 << 3
FL_HEAD = 1 << 4  # allocated folio head
FL_ISOLATED = 1 << 5
FL_TAIL = 1 << 6
# folio_test_anon(): folio->mapping is an anon_vma. Set when the folio is
# first mapped and kept until it is freed; a swap-in readahead folio nobody
# has faulted on has none.
FL_ANON = 1 << 7

MAX_ORDER = 9  # frames are allocated up to PMD order


class FrameTable:
    """Physical frames: per-frame arrays, a buddy allocator, two LRU lists.

    `nr_frames` is a multiple of 512. The LRU lists are circular doubly
    linked lists through ``lru_next``/``lru_prev``, with sentinels at
    ``nr_frames`` (inactive anon) and ``nr_frames + 1`` (active anon).
    """

    def __init__(self, nr_frames: int) -> None:
        nr_frames = -(-nr_frames // PMD_NR) * PMD_NR
        self.nr_frames = nr_frames
        self.flags = np.zeros(nr_frames, dtype=np.uint8)
        self.order = np.zeros(nr_frames, dtype=np.uint8)
        self.rmap = np.full(nr_frames, -1, dtype=np.int64)
        self.mapcount = np.zeros(nr_frames, dtype=np.int32)
        self.token = np.zeros(nr_frames, dtype=np.int64)
        self.lru_next = np.zeros(nr_frames + 2, dtype=np.int32)
        self.lru_prev = np.zeros(nr_frames + 2, dtype=np.int32)
        self.flags_mv = self.flags.data
        self.order_mv = self.order.data
        self.rmap_mv = self.rmap.data
        self.mapcount_mv = self.mapcount.data
        self.token_mv = self.token.data
        self.next_mv = self.lru_next.data
        self.prev_mv = self.lru_prev.data
        self.extra_rmap: dict[int, list[int]] = {}  # head -> further mappings (fork)
        self.inactive = nr_frames
        self.active = nr_frames + 1
        for head in (self.inactive, self.active):
            self.next_mv[head] = head
            self.prev_mv[head] = head
        self.lru_pages = [0, 0]  # inactive, active
        # Buddy allocator: free block heads per order, and each free head's order.
        self.free_lists: list[set[int]] = [set() for _ in range(MAX_ORDER + 1)]
        self.free_order = np.full(nr_frames, -1, dtype=np.int8)
        self.free_order_mv = self.free_order.data
        for head in range(0, nr_frames, PMD_NR):
            self.free_lists[MAX_ORDER].add(head)
            self.free_order_mv[head] = MAX_ORDER
        self.free_frames = nr_frames
        self.used_peak = 0

    # -- the buddy allocator ------------------------------------------------------
    def alloc(self, order: int) -> int:
        """A free naturally aligned block of ``1 << order`` frames, or -1."""
        lists = self.free_lists
        for o in range(order, MAX_ORDER + 1):
            if lists[o]:
                break
        else:
            return -1
        head = lists[o].pop()
        fo = self.free_order_mv
        fo[head] = -1
        while o > order:
            o -= 1
            buddy = head + (1 << o)
            lists[o].add(buddy)
            fo[buddy] = o
        self.free_frames -= 1 << order
        used = self.nr_frames - self.free_frames
        if used > self.used_peak:
            self.used_peak = used
        self.flags_mv[head] = FL_HEAD
        if order:
            self.order[head : head + (1 << order)] = order
        else:
            self.order_mv[head] = 0  # a numpy slice assignment costs ~20 lines
        self.rmap_mv[head] = -1
        self.mapcount_mv[head] = 0
        return head

    def folio_head(self, frame: int) -> int:
        """The head frame of the folio `frame` belongs to (folios are aligned)."""
        return frame & ~((1 << self.order_mv[frame]) - 1)

    def free(self, head: int, order: int) -> None:
        self.flags_mv[head] = 0
        self.free_frames += 1 << order
        lists = self.free_lists
        fo = self.free_order_mv
        while order < MAX_ORDER:
            buddy = head ^ (1 << order)
            if fo[buddy] != order:
                break
            lists[order].discard(buddy)
            fo[buddy] = -1
            head = min(head, buddy)
            order += 1
        lists[order].add(head)
        fo[head] = order

    # -- LRU lists -----------------------------------------------------------------
    def lru_add(self, head: int, active: bool, nr: int) -> None:
        """Add at the list head (``lruvec_add_folio``)."""
        sentinel = self.active if active else self.inactive
        nxt = self.next_mv
        first = nxt[sentinel]
        nxt[head] = first
        self.prev_mv[head] = sentinel
        self.prev_mv[first] = head
        nxt[sentinel] = head
        self.lru_pages[1 if active else 0] += nr

    def lru_add_tail(self, head: int, active: bool, nr: int) -> None:
        sentinel = self.active if active else self.inactive
        prv = self.prev_mv
        last = prv[sentinel]
        prv[head] = last
        self.next_mv[head] = sentinel
        self.next_mv[last] = head
        prv[sentinel] = head
        self.lru_pages[1 if active else 0] += nr

    def lru_insert_after(self, prev: int, node: int, active: bool) -> None:
        """Put `node` right after `prev` on its list (one page, for splits)."""
        nxt = self.next_mv
        after = nxt[prev]
        nxt[node] = after
        self.prev_mv[node] = prev
        self.prev_mv[after] = node
        nxt[prev] = node
        self.lru_pages[1 if active else 0] += 1

    def lru_del(self, head: int, active: bool, nr: int) -> None:
        nxt = self.next_mv
        prv = self.prev_mv
        n = nxt[head]
        p = prv[head]
        nxt[p] = n
        prv[n] = p
        self.lru_pages[1 if active else 0] -= nr

    def lru_tail(self, active: bool) -> int:
        """The folio at the tail (oldest), or -1 when the list is empty."""
        sentinel = self.active if active else self.inactive
        tail = self.prev_mv[sentinel]
        return -1 if tail == sentinel else tail

    def mappings(self, head: int) -> list[int]:
        """The first PTE index of every mapping of the folio."""
        first = self.rmap_mv[head]
        if first < 0:
            return []
        extra = self.extra_rmap.get(head)
        return [first, *extra] if extra else [first]
