"""Splitting large folios (mm/huge_memory.c ``split_folio``).

The VM splits a large folio whenever it would otherwise be mapped or
unmapped in part: at swap-out when no large swap entry can be had
(``swpout_fallback``), before a partial zap or MADV_PAGEOUT, before a
copy-on-write of one of its pages, and when a swap-in finds a large
swap-cache folio whose PTEs no longer all point at it. (The kernel can
also leave such folios partially mapped and split them later, counted in
``split_deferred``; the model splits at once.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghostswap.mm.folio import Folio, mem_map
from ghostswap.mm.mm_types import FL_ACTIVE, FL_HEAD, FL_LRU
from ghostswap.mm.swap import swap_cluster_get_and_lock, swap_cluster_unlock
from ghostswap.mm.swap_state import __swap_cache_replace_folio

if TYPE_CHECKING:
    from ghostswap.mm.machine import Machine

__all__ = ["split_folio"]


def split_folio(vm: Machine, head: int) -> list[int]:
    """Split the folio at `head` into order-0 folios; returns their heads.

    Each new folio keeps the head's LRU flags and position (tails follow
    the head on its list), its mappings (shifted per page) and, in the
    swap cache, its own slot.
    """
    frames = vm.frames
    order = frames.order_mv[head]
    nr = 1 << order
    if not order:
        return [head]
    flags = frames.flags_mv[head]
    mappings = frames.mappings(head)
    mapcount = frames.mapcount_mv[head]
    folio = vm.swapcache_folio(head)
    frames.order[head : head + nr] = 0
    frames.extra_rmap.pop(head, None)
    for i in range(nr):
        frame = head + i
        frames.flags_mv[frame] = flags | FL_HEAD
        frames.mapcount_mv[frame] = mapcount
        if mappings:
            frames.rmap_mv[frame] = mappings[0] + i
            if len(mappings) > 1:
                frames.extra_rmap[frame] = [base + i for base in mappings[1:]]
        else:
            frames.rmap_mv[frame] = -1
    if flags & FL_LRU:
        # The head keeps its place; the tails go right after it, in order.
        active = bool(flags & FL_ACTIVE)
        frames.lru_pages[1 if active else 0] -= nr - 1
        prev = head
        for i in range(1, nr):
            frames.lru_insert_after(prev, head + i, active)
            prev = head + i
    if folio is not None:
        ci = swap_cluster_get_and_lock(vm.subsys, folio)
        for i in range(nr):
            new = Folio(folio.pfn + i, 0, folio.memcg_id)
            new.flags = folio.flags
            new.swap = folio.swap + i
            new.mapcount = mapcount
            __swap_cache_replace_folio(ci, folio, new)
            mem_map[new.pfn] = new
        swap_cluster_unlock(ci)
        folio.order = 0
    vm.mthp.count(order, "split")
    return [head + i for i in range(nr)]
