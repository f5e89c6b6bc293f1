"""Folios, page flags and the PFN map the swap table points into.

Models the parts of ``struct folio`` (include/linux/mm_types.h), the page
flags (include/linux/page-flags.h) and ``pfn_folio``/``folio_alloc``
(mm/page_alloc.c) that the swap code touches. A folio in the swap cache is
recorded in the swap table by its PFN, exactly as the kernel encodes it, so
every folio gets a PFN and a place in the global `mem_map`.
"""

from __future__ import annotations

from ghostswap.kernel.gfp import GFP_KERNEL, should_fail_alloc

__all__ = [
    "Folio",
    "PG_active",
    "PG_dirty",
    "PG_locked",
    "PG_lru",
    "PG_readahead",
    "PG_referenced",
    "PG_swapbacked",
    "PG_swapcache",
    "PG_uptodate",
    "PG_workingset",
    "PG_writeback",
    "folio_alloc",
    "folio_free",
    "folio_nr_pages",
    "folio_pfn",
    "folio_test_large",
    "folio_trylock",
    "folio_unlock",
    "mem_map",
    "pfn_folio",
]

PG_locked = 1 << 0
PG_referenced = 1 << 1
PG_uptodate = 1 << 2
PG_dirty = 1 << 3
PG_lru = 1 << 4
PG_active = 1 << 5
PG_workingset = 1 << 6
PG_writeback = 1 << 7
PG_swapbacked = 1 << 8
PG_swapcache = 1 << 9
PG_readahead = 1 << 10


class Folio:
    """A folio: `1 << order` pages starting at `pfn`.

    `swap` is the swap entry of the first page while the folio is in the swap
    cache (``folio->swap``). `data` belongs to the layers above (page
    contents, LRU and mapping state); the swap model never reads it.
    """

    __slots__ = ("data", "flags", "mapcount", "memcg_id", "order", "pfn", "swap")

    def __init__(self, pfn: int, order: int = 0, memcg_id: int = 0) -> None:
        self.pfn = pfn
        self.order = order
        self.flags = 0
        self.swap = 0
        self.memcg_id = memcg_id
        self.mapcount = 0
        self.data: object = None

    def __repr__(self) -> str:
        return (
            f"<folio pfn={self.pfn} order={self.order} flags={self.flags:#x} swap={self.swap:#x}>"
        )


# pfn -> folio for every live folio (the kernel's mem_map, sparse).
mem_map: dict[int, Folio] = {}
_next_pfn = 1 << 9  # leave pfn 0 unused; keep large folios naturally aligned


def folio_alloc(order: int = 0, gfp: int = GFP_KERNEL, memcg_id: int = 0) -> Folio | None:
    """Allocate a folio of `order` (naturally aligned PFN), or None on failure."""
    global _next_pfn
    if should_fail_alloc("folio_alloc", gfp):
        return None
    nr = 1 << order
    pfn = (_next_pfn + nr - 1) & ~(nr - 1)
    _next_pfn = pfn + nr
    folio = Folio(pfn, order, memcg_id)
    mem_map[pfn] = folio
    return folio


def folio_free(folio: Folio) -> None:
    """Return the folio's PFN range; the PFN may not be reused by this model."""
    mem_map.pop(folio.pfn, None)


def pfn_folio(pfn: int) -> Folio:
    return mem_map[pfn]


def folio_pfn(folio: Folio) -> int:
    return folio.pfn


def folio_nr_pages(folio: Folio) -> int:
    return 1 << folio.order


def folio_test_large(folio: Folio) -> bool:
    return folio.order > 0


def folio_trylock(folio: Folio) -> bool:
    if folio.flags & PG_locked:
        return False
    folio.flags |= PG_locked
    return True


def folio_unlock(folio: Folio) -> None:
    folio.flags &= ~PG_locked
