"""Put a given amount of swapped-out memory on the model, through the
allocator, the way reclaim does: allocate a folio's slots, let its mappings
take their counts, write it out and drop it from the swap cache. Then free
a random fraction again, as exiting or unmapping tasks would.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ghostswap.kernel import quiescent
from ghostswap.kernel.spinlock import spin_unlock
from ghostswap.mm import folio as folio_mod
from ghostswap.mm import swapfile
from ghostswap.mm.folio import Folio, PG_locked, PG_uptodate
from ghostswap.mm.swap import SwapSubsystem, __swap_cluster_lock, swp_offset, swp_type
from ghostswap.mm.swap_state import __swap_cache_del_folio

__all__ = ["PopulateResult", "populate_swap"]

_PFN_BASE = 1 << 36  # far from the folio allocator's PFNs


@dataclass
class PopulateResult:
    requested_pages: int
    swapped_pages: int = 0
    folios: int = 0
    fallback_folios: int = 0  # large folios that had to be split
    freed_pages: int = 0
    full: bool = False  # swap ran out before the request was met


def swap_out_folio(subsys: SwapSubsystem, folio: Folio, shadow: int | None = None) -> int:
    """Allocate, map-count and write out one folio (leaving `shadow` in its
    slots); return its first swap entry, or 0 when no slots could be had."""
    if not swapfile.folio_alloc_swap(subsys, folio):
        return 0
    entry = folio.swap
    swapfile.folio_dup_swap(subsys, folio)
    si = subsys.swap_info[swp_type(entry)]
    assert si is not None
    ci = __swap_cluster_lock(si, swp_offset(entry))
    assert ci is not None
    __swap_cache_del_folio(si, ci, folio, entry, shadow)
    spin_unlock(ci.lock)
    return entry


def populate_swap(
    subsys: SwapSubsystem,
    used_pages: int,
    order: int = 0,
    free_fraction: float = 0.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> PopulateResult:
    """Swap out `used_pages` pages in folios of `order`, then free a random
    `free_fraction` of them. `progress` is called with pages done so far."""
    result = PopulateResult(used_pages)
    chunks: list[tuple[int, int]] = []  # (first entry, pages) per folio
    nr = 1 << order
    folio = Folio(_PFN_BASE, order)
    small = Folio(_PFN_BASE + (1 << 20), 0)
    mem_map = folio_mod.mem_map
    mem_map[folio.pfn] = folio
    mem_map[small.pfn] = small
    try:
        while result.swapped_pages + nr <= used_pages:
            folio.flags = PG_locked | PG_uptodate
            entry = swap_out_folio(subsys, folio)
            if entry:
                chunks.append((entry, nr))
                result.swapped_pages += nr
                result.folios += 1
            elif order:
                # Reclaim splits a folio it cannot swap out whole.
                result.fallback_folios += 1
                subsys.mthp.count(order, "swpout_fallback")
                for _ in range(nr):
                    small.flags = PG_locked | PG_uptodate
                    entry = swap_out_folio(subsys, small)
                    if not entry:
                        result.full = True
                        break
                    chunks.append((entry, 1))
                    result.swapped_pages += 1
                    result.folios += 1
                if result.full:
                    break
            else:
                result.full = True
                break
            if progress is not None and result.folios % 4096 == 0:
                progress(result.swapped_pages)
                quiescent()
    finally:
        mem_map.pop(folio.pfn, None)
        mem_map.pop(small.pfn, None)
    quiescent()
    if free_fraction > 0 and chunks:
        rng = random.Random(seed)
        target = int(result.swapped_pages * free_fraction)
        rng.shuffle(chunks)
        for entry, pages in chunks:
            if result.freed_pages + pages > target:
                continue
            swapfile.swap_put_entries_direct(subsys, entry, pages)
            result.freed_pages += pages
    quiescent()
    if progress is not None:
        progress(result.swapped_pages)
    return result
