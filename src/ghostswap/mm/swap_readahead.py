"""Swap-in readahead (the readahead half of mm/swap_state.c).

``swapin_readahead`` picks VMA-based readahead (the window follows the
faulting addresses, within the VMA and the PMD) unless a rotating device is
swapped on (``nr_rotate_swap``), in which case cluster readahead reads the
aligned block of slots around the target. Window sizes come from
``__swapin_nr_pages`` with the hit history; ``swap_ra`` counts folios read
ahead, ``swap_ra_hit`` (in do_swap_page) the ones later used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghostswap.kernel.lean import compile_lean
from ghostswap.mm import page_io
from ghostswap.mm.folio import Folio, PG_locked, PG_readahead
from ghostswap.mm.mm_types import PMD_NR, PTE_PRESENT, PTE_SWAP, Vma, pte_to_swp_entry
from ghostswap.mm.swap import SWP_OFFSET_MASK, SWP_TYPE_SHIFT, swp_entry
from ghostswap.mm.swap_state import (
    swap_cache_get_folio,
    swap_cluster_readahead_range,
)

if TYPE_CHECKING:
    from ghostswap.mm.machine import Machine

__all__ = [
    "SWAP_RA_ORDER_CEILING",
    "__swapin_nr_pages",
    "swap_cache_read_folio",
    "swap_cluster_readahead",
    "swap_vma_readahead",
    "swapin_readahead",
]

SWAP_RA_ORDER_CEILING = 5
SWAP_RA_HITS_MAX = (1 << 6) - 1


def __swapin_nr_pages(
    prev_offset: int, offset: int, hits: int, max_pages: int, prev_win: int
) -> int:
    """The readahead window for a fault at `offset` after one at `prev_offset`."""
    pages = hits + 2
    if pages == 2:
        # No hits: read ahead only for a sequential fault.
        if offset != prev_offset + 1 and offset != prev_offset - 1:
            pages = 1
    else:
        roundup = 4
        while roundup < pages:
            roundup <<= 1
        pages = roundup
    pages = min(pages, max_pages)
    # Don't shrink readahead too fast.
    return max(pages, prev_win // 2)


def swap_cache_read_folio(vm: Machine, entry: int, readahead: bool) -> Folio | None:
    """The swap cache folio of `entry`, read in if it was not cached (order 0).

    None when the slot is free or no memory could be charged. A folio read
    ahead gets PG_readahead and counts ``swap_ra``; every new folio goes on
    the LRU (active if its refault was recent).
    """
    subsys = vm.subsys
    folio = swap_cache_get_folio(subsys, entry)
    if folio is not None:
        return folio
    result = vm.swap_cache_alloc(entry, 1)
    if not isinstance(result, Folio):
        return swap_cache_get_folio(subsys, entry) if result == "EEXIST" else None
    folio = result
    head = folio.pfn - vm.pfn_base
    page_io.swap_read_folio(vm, folio, head)
    vm.lru_add_new(head)
    if readahead:
        folio.flags |= PG_readahead
        vm.events["swap_ra"] += 1
    folio.flags &= ~PG_locked
    return folio


def swapin_nr_pages(vm: Machine, offset: int) -> int:
    """Cluster readahead's window, from the global hit count."""
    max_pages = 1 << vm.page_cluster
    if max_pages <= 1:
        return 1
    hits = vm.swapin_readahead_hits
    vm.swapin_readahead_hits = 0
    pages = __swapin_nr_pages(vm.ra_prev_offset, offset, hits, max_pages, vm.ra_last_pages)
    if not hits:
        vm.ra_prev_offset = offset
    vm.ra_last_pages = pages
    return pages


def swap_cluster_readahead(vm: Machine, entry: int) -> Folio | None:
    """Read the naturally aligned block of slots around `entry`."""
    type_ = entry >> SWP_TYPE_SHIFT
    offset = entry & SWP_OFFSET_MASK
    si = vm.subsys.swap_info[type_]
    assert si is not None
    mask = swapin_nr_pages(vm, offset) - 1
    if mask:
        for off in swap_cluster_readahead_range(si, offset, mask):
            if off != offset:
                swap_cache_read_folio(vm, swp_entry(type_, off), True)
    return swap_cache_read_folio(vm, entry, False)


def swap_vma_ra_win(vm: Machine, vma: Vma, page: int) -> tuple[int, int]:
    """(window, previous fault page) for a fault at `page`; updates the VMA."""
    max_win = 1 << min(vm.page_cluster, SWAP_RA_ORDER_CEILING)
    prev = vma.ra_prev
    if max_win == 1:
        return 1, prev
    win = __swapin_nr_pages(prev, page, vma.ra_hits, max_win, vma.ra_win)
    vma.ra_prev = page
    vma.ra_win = win
    vma.ra_hits = 0
    return win, prev


def swap_vma_readahead(vm: Machine, vma: Vma, page: int, pti: int, entry: int) -> Folio | None:
    """Read the swap entries of the PTEs around the faulting page."""
    win, prev = swap_vma_ra_win(vm, vma, page)
    if win > 1:
        if page == prev + 1:
            start = page
        elif prev == page + 1:
            start = page - win + 1
        else:
            start = page - (win - 1) // 2
        end = start + win
        pmd_start = page & ~(PMD_NR - 1)
        start = max(start, vma.start, pmd_start)
        end = min(end, vma.end, pmd_start + PMD_NR)
        base = pti - (page - pmd_start)
        pte = vm.pt.pte_mv
        for p in range(start, end):
            if p == page:
                continue
            value = pte[base + (p - pmd_start)]
            if value & PTE_PRESENT or not value & PTE_SWAP:
                continue
            swap_cache_read_folio(vm, pte_to_swp_entry(value), True)
    return swap_cache_read_folio(vm, entry, False)


def swapin_readahead(vm: Machine, vma: Vma, page: int, pti: int, entry: int) -> Folio | None:
    if vm.vma_ra_enabled and not vm.subsys.nr_rotate_swap:
        return swap_vma_readahead(vm, vma, page, pti, entry)
    return swap_cluster_readahead(vm, entry)


def swap_update_readahead(vm: Machine, folio: Folio, vma: Vma, page: int) -> None:
    """A swap cache hit at `page`: count it if the folio was read ahead.

    In VMA mode every hit (read ahead or not) becomes the VMA's previous
    fault address, keeping the window; only a read-ahead folio adds a hit.
    So the next miss of a sequential scan reads forward from itself.
    """
    if folio.order:
        return
    readahead = bool(folio.flags & PG_readahead)
    folio.flags &= ~PG_readahead
    vma_ra = vm.vma_ra_enabled and not vm.subsys.nr_rotate_swap
    if vma_ra:
        vma.ra_prev = page
        if readahead:
            vma.ra_hits = min(vma.ra_hits + 1, SWAP_RA_HITS_MAX)
    if readahead:
        vm.events["swap_ra_hit"] += 1
        if not vma_ra:
            vm.swapin_readahead_hits += 1


compile_lean(globals())
