"""Faults, unmapping, fork and exit for anonymous memory (mm/memory.c,
with the anon parts of mm/madvise.c and kernel/fork.c).

``handle_mm_fault`` dispatches a fault on one page: ``do_anonymous_page``
(zero page on a read, a new folio of the largest suitable mTHP order on a
write), ``do_swap_page`` (swap cache, readahead or a synchronous large
swap-in, verification of the contents, map, drop the PTE's swap count,
maybe free the slots) and ``do_wp_page`` (reuse or copy on write).
``zap_pte_range`` serves munmap, MADV_DONTNEED and exit; ``copy_page_range``
serves fork; ``madvise_pageout`` reclaims a range at once.

Page tables are charged to the memcg: ``__pte_alloc`` (with ``__pud_alloc``
and ``__pmd_alloc`` above it) on the first fault in a 2 MiB region and for
a fork's child; ``free_pgtables`` after munmap frees the tables no VMA
needs any more; MADV_DONTNEED frees a PTE table it emptied whole
(``CONFIG_PT_RECLAIM``, mm/pt_reclaim.c); exit frees them all. The PGD,
one page per process, is charged when the process is made and uncharged
when its mm is dropped; P4D tables are folded into it (4-level paging).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ghostswap.kernel.bug import WARN, KernelBug
from ghostswap.kernel.gfp import GFP_KERNEL, Gfp
from ghostswap.mm import page_io, swapfile, vmscan
from ghostswap.mm.folio import Folio, PG_locked
from ghostswap.mm.huge_memory import split_folio
from ghostswap.mm.memcontrol import (
    mem_cgroup_uncharge,
    memcg_kmem_charge_page,
    memcg_kmem_uncharge_page,
    try_charge_memcg,
)
from ghostswap.mm.mm_types import (
    FL_ACTIVE,
    FL_ISOLATED,
    FL_LRU,
    FL_REFERENCED,
    FL_WORKINGSET,
    P4D_SHIFT,
    PMD_NR,
    PTE_DIRTY,
    PTE_EXCL,
    PTE_FRAME_SHIFT,
    PTE_PRESENT,
    PTE_SWP_EXCL,
    PTE_WRITE,
    PTE_YOUNG,
    PTE_ZERO,
    PUD_SHIFT,
    REGION_SHIFT,
    MmStruct,
    Vma,
    pte_mk_swap,
    pte_to_swp_entry,
)
from ghostswap.mm.rmap import folio_add_anon_rmap, folio_remove_rmap
from ghostswap.mm.swap import PMD_ORDER, SWP_SYNCHRONOUS_IO, SWP_TYPE_SHIFT
from ghostswap.mm.swap_readahead import swap_update_readahead, swapin_readahead
from ghostswap.mm.swap_state import swap_cache_get_folio

if TYPE_CHECKING:
    from ghostswap.mm.machine import Machine

__all__ = [
    "VM_FAULT_DONE",
    "VM_FAULT_OOM",
    "VM_FAULT_RETRY",
    "copy_page_range",
    "do_anonymous_page",
    "do_munmap",
    "do_swap_page",
    "do_wp_page",
    "exit_mmap",
    "for_each_pte_range",
    "free_pgtables",
    "handle_mm_fault",
    "madvise_dontneed",
    "madvise_pageout",
    "zap_pte_range",
]

VM_FAULT_DONE = 0
VM_FAULT_RETRY = 1
VM_FAULT_OOM = 2
FAULT_RETRIES = 8

_NEW_PTE = PTE_PRESENT | PTE_WRITE | PTE_YOUNG | PTE_EXCL


def handle_mm_fault(vm: Machine, mm: MmStruct, page: int, write: bool) -> int:
    """Resolve one access that was not a plain hit. A touch outside every
    VMA maps the aligned 2 MiB region around it first."""
    vma = mm.find_vma(page)
    if vma is None:
        start = page & ~(PMD_NR - 1)
        vma = mm.map_range(start, start + PMD_NR)
    pt = vm.pt
    region = page >> REGION_SHIFT
    if region not in mm.regions and not __pte_alloc(vm, mm, region):
        vm.events["pgfault"] += 1
        return VM_FAULT_OOM
    pti = pt.pti(mm.pid, page, create=False)
    pte = pt.pte_mv
    for _ in range(FAULT_RETRIES):
        value = pte[pti]
        if not value:
            ret = do_anonymous_page(vm, mm, vma, pti, page, write)
        elif not value & PTE_PRESENT:
            ret = do_swap_page(vm, mm, vma, pti, page, value, write)
        elif write and not value & PTE_WRITE:
            ret = do_wp_page(vm, mm, pti, value)
        else:
            # A hit after all (an earlier fault in the batch mapped it).
            if write:
                vm.write_hit(pti, value)
            else:
                pte[pti] = value | PTE_YOUNG
            return VM_FAULT_DONE
        if ret != VM_FAULT_RETRY:
            vm.events["pgfault"] += 1
            return ret
    # Every retry follows a change another path made to this PTE; eight in a
    # row means the model loops, and dropping the access would hide it.
    raise KernelBug(
        f"handle_mm_fault: pid {mm.pid} page {page:#x} ({'write' if write else 'read'}) "
        f"still faults after {FAULT_RETRIES} tries (a model bug)"
    )


def mm_alloc_pgd(vm: Machine, mm: MmStruct) -> bool:
    """``mm_alloc_pgd`` (kernel/fork.c): ``pgd_alloc`` takes one page with
    ``GFP_PGTABLE_USER``, so it is charged to the memcg (order 0: no PTI on
    this host's CPU). False if the charge fails: the fork or exec fails."""
    if not memcg_kmem_charge_page(vm):
        return False
    mm.pgd = True
    return True


def mm_free_pgd(vm: Machine, mm: MmStruct) -> None:
    """``mm_free_pgd`` at the last ``mmdrop``: the PGD page is uncharged."""
    if mm.pgd:
        mm.pgd = False
        memcg_kmem_uncharge_page(vm)


def _alloc_table(vm: Machine, tables: set[int], index: int) -> bool:
    """Make table `index` of `tables` if it is missing, charged."""
    if index in tables:
        return True
    if not memcg_kmem_charge_page(vm):
        return False
    tables.add(index)
    return True


def __pud_alloc(vm: Machine, mm: MmStruct, region: int) -> bool:
    """``__pud_alloc``: the PUD table over `region` (512 GiB), charged."""
    return _alloc_table(vm, mm.pud_tables, region >> (P4D_SHIFT - REGION_SHIFT))


def __pmd_alloc(vm: Machine, mm: MmStruct, region: int) -> bool:
    """``__pmd_alloc``: the PMD table over `region` (1 GiB), charged."""
    return _alloc_table(vm, mm.pmd_tables, region >> (PUD_SHIFT - REGION_SHIFT))


def __pte_alloc(vm: Machine, mm: MmStruct, region: int) -> bool:
    """The page-table walk of a fault that finds no PTE table:
    ``pud_alloc``, ``pmd_alloc``, then ``__pte_alloc`` for `region`, each
    table one charged page. False if a charge fails (the kernel's
    VM_FAULT_OOM); tables made before the failure stay, as they do in the
    kernel."""
    if not (__pud_alloc(vm, mm, region) and __pmd_alloc(vm, mm, region)):
        return False
    if not memcg_kmem_charge_page(vm):
        return False
    vm.pt.block(mm.pid, region)
    mm.regions.add(region)
    return True


def free_pte(vm: Machine, mm: MmStruct, region: int) -> None:
    """``free_pte``: free the (empty) PTE table of `region` and uncharge it."""
    vm.pt.free_block(vm.pt.block(mm.pid, region, create=False))
    mm.regions.discard(region)
    memcg_kmem_uncharge_page(vm)


def free_pgtables(vm: Machine, mm: MmStruct, start: int, end: int) -> None:
    """``free_pgtables`` after munmap of [start, end): free the PTE, PMD and
    PUD tables there whose whole span no remaining VMA overlaps (the
    floor/ceiling rule of ``free_pgd_range``)."""
    for region in _blocks_in(mm, start, end):
        rstart = region << REGION_SHIFT
        if not mm.overlaps(rstart, rstart + PMD_NR):
            free_pte(vm, mm, region)
    for tables, shift in ((mm.pmd_tables, PUD_SHIFT), (mm.pud_tables, P4D_SHIFT)):
        first, last = start >> shift, (end - 1) >> shift
        for index in [i for i in tables if first <= i <= last]:
            if not mm.overlaps(index << shift, (index + 1) << shift):
                tables.discard(index)
                memcg_kmem_uncharge_page(vm)


def _map_new_folio(vm: Machine, mm: MmStruct, head: int, base: int, nr: int) -> None:
    """Map a freshly allocated (zeroed) folio at PTE index `base`."""
    pte = vm.pt.pte_mv
    tokens = vm.pt.token_mv
    ftokens = vm.frames.token_mv
    for i in range(nr):
        pte[base + i] = ((head + i) << PTE_FRAME_SHIFT) | _NEW_PTE
        tokens[base + i] = 0
        ftokens[head + i] = 0
    folio_add_anon_rmap(vm, head, base)
    vm.lru_add_new(head)
    mm.rss_anon += nr


def alloc_anon_folio(vm: Machine, vma: Vma, page: int, pti: int) -> tuple[int, int]:
    """(head, order) of a new charged folio for a write fault, trying the
    enabled mTHP orders whose aligned range lies in the VMA with no PTE set;
    head -1 when even order 0 cannot be charged (OOM)."""
    frames = vm.frames
    mthp = vm.mthp
    orders = vm.vma_anon_orders(vma)
    may_reclaim = bool(orders) and vm.vma_thp_may_reclaim(vma)
    for order in orders:
        nr = 1 << order
        start = page & ~(nr - 1)
        if start < vma.start or start + nr > vma.end:
            continue
        base = pti - (page - start)
        if vm.pt.pte[base : base + nr].any():
            continue
        head = frames.alloc(order)
        if head < 0:
            mthp.count(order, "anon_fault_fallback")
            continue
        # An mTHP charge reclaims only as vma_thp_gfp_mask() allows (with
        # defrag=madvise: only in a MADV_HUGEPAGE mapping).
        if try_charge_memcg(vm, nr, may_reclaim=may_reclaim):
            mthp.count(order, "anon_fault_alloc")
            return head, order
        frames.free(head, order)
        mthp.count(order, "anon_fault_fallback")
        mthp.count(order, "anon_fault_fallback_charge")
    head = frames.alloc(0)
    if head < 0:
        return -1, 0
    if not try_charge_memcg(vm, 1):
        frames.free(head, 0)
        return -1, 0
    return head, 0


def do_anonymous_page(vm: Machine, mm: MmStruct, vma: Vma, pti: int, page: int, write: bool) -> int:
    pte = vm.pt.pte_mv
    if not write:
        pte[pti] = PTE_PRESENT | PTE_ZERO | PTE_YOUNG
        return VM_FAULT_DONE
    head, order = alloc_anon_folio(vm, vma, page, pti)
    if head < 0:
        return VM_FAULT_OOM
    nr = 1 << order
    base = pti - (page & (nr - 1))
    if pte[pti]:
        # Reclaim ran while charging and something mapped the page meanwhile.
        vm.free_folio(head)
        return VM_FAULT_RETRY
    _map_new_folio(vm, mm, head, base, nr)
    vm.write_hit(pti, pte[pti] | PTE_DIRTY)
    return VM_FAULT_DONE


def do_wp_page(vm: Machine, mm: MmStruct, pti: int, value: int) -> int:
    """A write to a present read-only PTE: the zero page, or a shared folio."""
    pte = vm.pt.pte_mv
    frames = vm.frames
    if not value & PTE_ZERO:
        frame = value >> PTE_FRAME_SHIFT
        head = frames.folio_head(frame)
        if frames.mapcount_mv[head] == 1:
            folio = vm.swapcache_folio(head)
            if folio is None or swapfile.folio_free_swap(vm.subsys, folio):
                if folio is not None:
                    vm.folio_left_swapcache(head, folio)
                # wp_page_reuse: the only mapping takes the page back.
                vm.write_hit(pti, value | PTE_WRITE | PTE_EXCL | PTE_DIRTY)
                return VM_FAULT_DONE
        if frames.order_mv[head]:
            split_folio(vm, head)
            head = frame
    new = frames.alloc(0)
    if new < 0 or not try_charge_memcg(vm, 1):
        if new >= 0:
            frames.free(new, 0)
        return VM_FAULT_OOM
    if pte[pti] != value:
        frames.free(new, 0)
        mem_cgroup_uncharge(vm, 1)
        return VM_FAULT_RETRY
    if value & PTE_ZERO:
        mm.rss_anon += 0  # the zero page was never counted
    else:
        _unmap_folio(vm, mm, head, pti, 1)
        mm.rss_anon -= 1
    _map_new_folio(vm, mm, new, pti, 1)
    vm.write_hit(pti, pte[pti] | PTE_DIRTY)
    return VM_FAULT_DONE


def _unmap_folio(vm: Machine, mm: MmStruct, head: int, base: int, nr: int) -> None:
    """Drop one mapping of a folio; free it once nothing maps or caches it."""
    remaining = folio_remove_rmap(vm, head, base)
    if remaining:
        return
    folio = vm.swapcache_folio(head)
    if folio is not None:
        # free_swap_cache(): unmapped now, so drop the cache if no PTE needs it.
        if not swapfile.folio_free_swap(vm.subsys, folio):
            return
        vm.folio_left_swapcache(head, folio)
    if not vm.frames.flags_mv[head] & FL_ISOLATED:
        vm.free_folio(head)


def thp_swapin_orders(vm: Machine, vma: Vma, page: int, pti: int, entry: int) -> int:
    """The orders a synchronous swap-in may try (``thp_swapin_suitable_orders``):
    enabled mTHP sizes below PMD whose aligned range fits the VMA, whose
    PTEs are the contiguous swap entries of the range, aligned like the
    swap offset. (Whether zswap holds part of a range is found out by
    ``__swap_cache_alloc``, which then falls back and counts it.)

    ``zswap_was_enabled`` models the older kernels' ``alloc_swap_folio``
    (up to v6.18): once zswap has been enabled since boot, every swap-in
    is order 0, without counting a fallback."""
    orders = 1
    if vm.cfg.zswap_was_enabled:
        return orders
    pte = vm.pt.pte_mv
    for order in vm.vma_anon_orders(vma):
        if order >= PMD_ORDER:
            continue
        nr = 1 << order
        start = page & ~(nr - 1)
        idx = page - start
        if start < vma.start or start + nr > vma.end:
            continue
        first = entry - idx
        if (first & (nr - 1)) or (first >> SWP_TYPE_SHIFT) != (entry >> SWP_TYPE_SHIFT):
            continue
        base = pti - idx
        excl = pte[pti] & PTE_SWP_EXCL
        if any(pte[base + i] != pte_mk_swap(first + i, bool(excl)) for i in range(nr)):
            continue
        orders |= 1 << order
    return orders


def _swapin_folio(
    vm: Machine, mm: MmStruct, vma: Vma, pti: int, page: int, entry: int
) -> Folio | int:
    """Bring `entry` into the swap cache; the folio or a VM_FAULT code."""
    subsys = vm.subsys
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    if si.flags & SWP_SYNCHRONOUS_IO:
        gfp = Gfp.DIRECT_RECLAIM if vm.vma_thp_may_reclaim(vma) else 0
        result = vm.swap_cache_alloc(entry, thp_swapin_orders(vm, vma, page, pti, entry), gfp)
        if isinstance(result, Folio):
            head = result.pfn - vm.pfn_base
            page_io.swap_read_folio(vm, result, head)
            vm.lru_add_new(head)
            result.flags &= ~PG_locked
            return result
        if result == "EEXIST":
            folio = swap_cache_get_folio(subsys, entry)
            return folio if folio is not None else VM_FAULT_RETRY
        return VM_FAULT_OOM if result == "ENOMEM" else VM_FAULT_RETRY
    folio = swapin_readahead(vm, vma, page, pti, entry)
    return folio if folio is not None else VM_FAULT_OOM


def do_swap_page(
    vm: Machine, mm: MmStruct, vma: Vma, pti: int, page: int, value: int, write: bool
) -> int:
    subsys = vm.subsys
    entry = pte_to_swp_entry(value)
    folio = swap_cache_get_folio(subsys, entry)
    if folio is not None:
        swap_update_readahead(vm, folio, vma, page)
    else:
        got = _swapin_folio(vm, mm, vma, pti, page, entry)
        if not isinstance(got, Folio):
            return got
        folio = got
        vm.events["pgmajfault"] += 1
    pte = vm.pt.pte_mv
    if pte[pti] != value:
        return VM_FAULT_RETRY
    frames = vm.frames
    head = folio.pfn - vm.pfn_base
    nr = 1 << folio.order
    idx = entry - folio.swap
    if nr > 1:
        base = pti - idx
        excl = bool(value & PTE_SWP_EXCL)
        if (
            (page - idx) & (nr - 1)
            or base >> REGION_SHIFT != pti >> REGION_SHIFT
            or any(pte[base + i] != pte_mk_swap(folio.swap + i, excl) for i in range(nr))
        ):
            # Not mapped as one piece any more: split and map the one page.
            split_folio(vm, head)
            head += idx
            folio = vm.swapcache_folio(head)
            assert folio is not None
            nr = 1
            idx = 0
    base = pti - idx
    exclusive = bool(value & PTE_SWP_EXCL)
    bits = PTE_PRESENT | PTE_YOUNG
    if exclusive:
        bits |= PTE_WRITE | PTE_EXCL
    folio.flags |= PG_locked
    vm.verify_swapin(head, base, nr)
    for i in range(nr):
        pte[base + i] = ((head + i) << PTE_FRAME_SHIFT) | bits
    folio_add_anon_rmap(vm, head, base)
    swapfile.folio_put_swap(subsys, folio, None)
    mm.rss_anon += nr
    mm.rss_swapents -= nr
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    if (
        si.flags & SWP_SYNCHRONOUS_IO
        or subsys.vm_swap_full()
        or (write and exclusive and frames.mapcount_mv[head] == 1)
    ) and swapfile.folio_free_swap(subsys, folio):
        vm.folio_left_swapcache(head, folio)
    folio.flags &= ~PG_locked
    if write:
        if exclusive:
            vm.write_hit(pti, pte[pti] | PTE_DIRTY)
        else:
            return do_wp_page(vm, mm, pti, pte[pti])
    return VM_FAULT_DONE


def _blocks_in(mm: MmStruct, start: int, end: int) -> list[int]:
    """Regions of `mm` with a PTE block overlapping [start, end)."""
    first = start >> REGION_SHIFT
    last = (end - 1) >> REGION_SHIFT
    if last - first + 1 <= len(mm.regions):
        return [r for r in range(first, last + 1) if r in mm.regions]
    return sorted(r for r in mm.regions if first <= r <= last)


def for_each_pte_range(vm: Machine, mm: MmStruct, start: int, end: int) -> Iterator[range]:
    """The PTE indices of [start, end) in each of `mm`'s page-table blocks
    (``walk_page_range`` over the PMDs that have a table), block by block."""
    pt = vm.pt
    for region in _blocks_in(mm, start, end):
        block = pt.block(mm.pid, region, create=False)
        if block < 0:
            continue
        rstart = region << REGION_SHIFT
        yield range(block + max(start, rstart) - rstart, block + min(end, rstart + PMD_NR) - rstart)


def zap_pte_range(vm: Machine, mm: MmStruct, start: int, end: int) -> None:
    """Unmap [start, end) of `mm`: free folios nothing else maps, drop swap
    counts (freeing slots and cache nothing needs), clear the PTEs."""
    vm.sync_hits()
    pt = vm.pt
    frames = vm.frames
    subsys = vm.subsys
    for ptes in for_each_pte_range(vm, mm, start, end):
        lo, hi = ptes.start, ptes.stop
        pte = pt.pte_mv
        for p in (lo + np.flatnonzero(pt.pte[lo:hi])).tolist():
            value = pte[p]
            if not value:
                continue
            if value & PTE_PRESENT:
                pte[p] = 0
                if value & PTE_ZERO:
                    continue
                frame = value >> PTE_FRAME_SHIFT
                head = frames.folio_head(frame)
                nr = 1 << frames.order_mv[head]
                base = p - (frame - head)
                if nr > 1 and (base < lo or base + nr > hi):
                    split_folio(vm, head)
                    head, nr, base = frame, 1, p
                for i in range(nr):
                    pte[base + i] = 0
                mm.rss_anon -= nr
                _unmap_folio(vm, mm, head, base, nr)
            else:
                pte[p] = 0
                entry = pte_to_swp_entry(value)
                cached = swap_cache_get_folio(subsys, entry)
                swapfile.swap_put_entries_direct(subsys, entry, 1)
                mm.rss_swapents -= 1
                if cached is not None:
                    vm.reap_orphan(cached)
        pt.token[lo:hi] = 0
    vm.unmap_epoch += 1


def do_munmap(vm: Machine, mm: MmStruct, start: int, end: int) -> None:
    """munmap [start, end): unmap the pages, remove the VMAs, free the page
    tables nothing else needs."""
    zap_pte_range(vm, mm, start, end)
    mm.unmap_range(start, end)
    free_pgtables(vm, mm, start, end)


def madvise_dontneed(vm: Machine, mm: MmStruct, start: int, end: int) -> None:
    """MADV_DONTNEED [start, end): unmap the pages; a PTE table whose whole
    2 MiB one VMA covers inside the range is left empty and freed
    (``reclaim_pt_is_enabled`` then ``try_to_free_pte``)."""
    zap_pte_range(vm, mm, start, end)
    pt = vm.pt
    for region in _blocks_in(mm, start, end):
        rstart = region << REGION_SHIFT
        if rstart < start or rstart + PMD_NR > end:
            continue
        vma = mm.find_vma(rstart)
        if vma is None or vma.end < rstart + PMD_NR:
            continue
        base = pt.block(mm.pid, region, create=False)
        if not pt.pte[base : base + PMD_NR].any():
            free_pte(vm, mm, region)


def exit_mmap(vm: Machine, mm: MmStruct) -> None:
    """The process exits: unmap everything and free its page tables."""
    for region in sorted(mm.regions):
        start = region << REGION_SHIFT
        zap_pte_range(vm, mm, start, start + PMD_NR)
        free_pte(vm, mm, region)
    for _ in range(len(mm.pmd_tables) + len(mm.pud_tables)):
        memcg_kmem_uncharge_page(vm)
    mm.pmd_tables.clear()
    mm.pud_tables.clear()
    mm.vmas = []
    mm.vma_starts = []
    mm.alive = False


def copy_page_range(vm: Machine, parent: MmStruct, child: MmStruct) -> str | None:
    """fork: the child gets the parent's VMAs and PTEs; swap entries gain a
    count, folios a mapping; both sides lose write access and exclusivity.

    A swap count that needs an extend table the atomic allocation could not
    provide is retried after ``swap_retry_table_alloc(entry, GFP_KERNEL)``
    with the locks dropped (``copy_pte_range``'s -EIO path); returns
    "ENOMEM" if even that fails (the fork fails), "OOM" if the charge for
    one of the child's page tables fails (the memcg OOM killer runs), else
    None.
    """
    vm.sync_hits()
    pt = vm.pt
    frames = vm.frames
    subsys = vm.subsys
    # dup_mmap copies each VMA as it is (vm_area_dup), flags and all.
    child.set_vmas([vma.split(vma.start, vma.end) for vma in parent.vmas])
    clear = ~(PTE_WRITE | PTE_EXCL)
    try:
        # copy_pud_range/copy_pmd_range give the child a PUD and a PMD
        # table wherever the parent has one, even with no PTE table below.
        for pud in sorted(parent.pud_tables):
            if not __pud_alloc(vm, child, pud << (P4D_SHIFT - REGION_SHIFT)):
                return "OOM"
        for pmd in sorted(parent.pmd_tables):
            if not __pmd_alloc(vm, child, pmd << (PUD_SHIFT - REGION_SHIFT)):
                return "OOM"
        for region in sorted(parent.regions):
            pbase = pt.block(parent.pid, region, create=False)
            if pbase < 0:
                continue
            if not __pte_alloc(vm, child, region):
                return "OOM"
            cbase = pt.block(child.pid, region, create=False)
            # The charge may have reclaimed and the table grown: look again.
            pbase = pt.block(parent.pid, region, create=False)
            if pbase < 0:
                continue
            pt.token[cbase : cbase + PMD_NR] = pt.token[pbase : pbase + PMD_NR]
            pte = pt.pte_mv
            for k in np.flatnonzero(pt.pte[pbase : pbase + PMD_NR]).tolist():
                value = pte[pbase + k]
                if value & PTE_PRESENT:
                    if not value & PTE_ZERO:
                        frame = value >> PTE_FRAME_SHIFT
                        head = frames.folio_head(frame)
                        if frame == head:
                            folio_add_anon_rmap(vm, head, cbase + k)
                        child.rss_anon += 1
                        value &= clear
                        pte[pbase + k] = value
                    pte[cbase + k] = value
                    continue
                entry = pte_to_swp_entry(value)
                while (err := swapfile.swap_dup_entry_direct(subsys, entry)) is not None:
                    if err != "ENOMEM":
                        WARN(f"copy_page_range: swap_dup_entry_direct failed with {err}")
                        return err
                    if not swapfile.swap_retry_table_alloc(subsys, entry, GFP_KERNEL):
                        return "ENOMEM"
                value &= ~PTE_SWP_EXCL
                pte[pbase + k] = value
                pte[cbase + k] = value
                child.rss_swapents += 1
        return None
    finally:
        vm.unmap_epoch += 1


def madvise_pageout(vm: Machine, mm: MmStruct, start: int, end: int) -> int:
    """MADV_PAGEOUT [start, end): reclaim the exclusively mapped folios of
    the range now, ignoring references. Returns pages reclaimed."""
    vm.sync_hits()
    pt = vm.pt
    frames = vm.frames
    flags = frames.flags_mv
    heads: list[int] = []
    for ptes in for_each_pte_range(vm, mm, start, end):
        lo, hi = ptes.start, ptes.stop
        pte = pt.pte_mv
        for p in (lo + np.flatnonzero(pt.pte[lo:hi])).tolist():
            value = pte[p]
            if not value & PTE_PRESENT or value & PTE_ZERO:
                continue
            frame = value >> PTE_FRAME_SHIFT
            head = frames.folio_head(frame)
            if frames.mapcount_mv[head] != 1 or not flags[head] & FL_LRU:
                continue
            nr = 1 << frames.order_mv[head]
            base = p - (frame - head)
            if nr > 1 and (base < lo or base + nr > hi):
                split_folio(vm, head)
                head, nr, base = frame, 1, p
            if frame != head:
                continue
            # Pageout (unlike MADV_COLD) leaves the PTEs young.
            f = flags[head] & ~FL_REFERENCED
            if f & FL_ACTIVE:
                f |= FL_WORKINGSET
            frames.lru_del(head, bool(f & FL_ACTIVE), nr)
            flags[head] = (f & ~FL_LRU) | FL_ISOLATED
            heads.append(head)
    if not heads:
        return 0
    return vmscan.reclaim_pages(vm, heads)
