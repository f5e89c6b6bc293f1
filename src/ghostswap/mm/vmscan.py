"""Reclaim of anonymous memory under a memory cgroup limit (mm/vmscan.c,
the classic active/inactive LRU; MGLRU is not modelled).

``try_to_free_mem_cgroup_pages`` lowers the scan priority from
DEF_PRIORITY until enough is reclaimed; ``shrink_lruvec`` scans the lists
in SWAP_CLUSTER_MAX batches as ``get_scan_count`` sizes them (swappiness
and the anon/file cost balance, with no file pages); ``shrink_active_list``
deactivates (anon keeps no second chance there); ``shrink_inactive_list``
isolates from the tail and hands the batch to ``shrink_folio_list``, which
checks references, adds to swap (splitting a large folio that gets no
large entry), unmaps, writes out and frees.
"""

from __future__ import annotations

from math import isqrt
from typing import TYPE_CHECKING

from ghostswap.kernel.lean import compile_lean
from ghostswap.mm import page_io, swapfile, workingset
from ghostswap.mm.folio import (
    Folio,
    PG_dirty,
    PG_locked,
    PG_swapbacked,
    PG_uptodate,
    mem_map,
)
from ghostswap.mm.huge_memory import split_folio
from ghostswap.mm.mm_types import (
    FL_ACTIVE,
    FL_ANON,
    FL_ISOLATED,
    FL_LRU,
    FL_REFERENCED,
    FL_WORKINGSET,
)
from ghostswap.mm.rmap import folio_referenced, try_to_unmap
from ghostswap.mm.swap import (
    PMD_ORDER,
    SWP_TYPE_SHIFT,
    swap_cluster_get_and_lock,
    swap_cluster_unlock,
)
from ghostswap.mm.swap_state import __swap_cache_del_folio

if TYPE_CHECKING:
    from ghostswap.mm.machine import Machine

__all__ = [
    "DEF_PRIORITY",
    "SWAP_CLUSTER_MAX",
    "ScanControl",
    "folio_check_references",
    "inactive_is_low",
    "reclaim_pages",
    "shrink_active_list",
    "shrink_folio_list",
    "shrink_inactive_list",
    "shrink_lruvec",
    "try_to_free_mem_cgroup_pages",
]

SWAP_CLUSTER_MAX = 32
DEF_PRIORITY = 12
MAX_SWAPPINESS = 200

FOLIOREF_RECLAIM = 0
FOLIOREF_KEEP = 1
FOLIOREF_ACTIVATE = 2


class ScanControl:
    """``struct scan_control`` for memcg limit reclaim."""

    __slots__ = (
        "force_deactivate",
        "may_deactivate",
        "memcg_full_walk",
        "nr_reclaimed",
        "nr_scanned",
        "nr_to_reclaim",
        "priority",
        "skipped_deactivate",
    )

    def __init__(self, nr_to_reclaim: int) -> None:
        self.nr_to_reclaim = nr_to_reclaim
        self.priority = DEF_PRIORITY
        self.nr_reclaimed = 0
        self.nr_scanned = 0
        self.may_deactivate = False
        self.force_deactivate = False
        self.skipped_deactivate = False
        self.memcg_full_walk = False


def try_to_free_mem_cgroup_pages(vm: Machine, nr_pages: int) -> int:
    """Reclaim at least `nr_pages` (and SWAP_CLUSTER_MAX) from the cgroup;
    returns the pages reclaimed."""
    vm.sync_hits()
    sc = ScanControl(max(nr_pages, SWAP_CLUSTER_MAX))
    vm.vm_stats["reclaim_passes"] += 1
    return do_try_to_free_pages(vm, sc)


def do_try_to_free_pages(vm: Machine, sc: ScanControl) -> int:
    """Lower the priority until the goal is met; if nothing at all was
    reclaimed, retry from the start: once with a full memcg walk (the same
    single memcg here, but the kernel does run the loop again), then with
    forced deactivation if an active list was skipped."""
    initial_priority = sc.priority
    while True:
        while True:
            sc.nr_scanned = 0
            prepare_scan_control(vm, sc)
            shrink_lruvec(vm, sc)
            if sc.nr_reclaimed >= sc.nr_to_reclaim:
                break
            sc.priority -= 1
            if sc.priority < 0:
                break
        vm.refaults_snapshot = vm.events["workingset_activate_anon"]
        if sc.nr_reclaimed:
            return sc.nr_reclaimed
        if not sc.memcg_full_walk:
            sc.memcg_full_walk = True
        elif sc.skipped_deactivate:
            sc.force_deactivate = True
            sc.skipped_deactivate = False
        else:
            return 0
        sc.priority = initial_priority


def prepare_scan_control(vm: Machine, sc: ScanControl) -> None:
    refaults = vm.events["workingset_activate_anon"]
    sc.may_deactivate = (
        sc.force_deactivate or refaults != vm.refaults_snapshot or inactive_is_low(vm)
    )


def inactive_is_low(vm: Machine) -> bool:
    """Is the inactive anon list too small against the active one?"""
    inactive, active = vm.frames.lru_pages
    gb = (inactive + active) >> (30 - 12)
    ratio = isqrt(10 * gb) if gb else 1
    return inactive * ratio < active


def can_reclaim_anon_pages(vm: Machine) -> bool:
    """Is there free swap to reclaim anon to (no swap.max: the global count)?"""
    return vm.subsys.nr_swap_pages > 0


def can_age_anon_pages(vm: Machine) -> bool:
    """Is aging the anon LRU worth it: is any swap present, even if full?"""
    return vm.subsys.total_swap_pages > 0


def get_scan_count(vm: Machine, sc: ScanControl) -> tuple[int, int]:
    """Pages to scan on (inactive anon, active anon) at this priority."""
    swappiness = vm.swappiness
    if not can_reclaim_anon_pages(vm) or swappiness == 0:
        return 0, 0
    inactive, active = vm.frames.lru_pages
    if sc.priority == 0:
        return inactive, active  # SCAN_EQUAL
    # SCAN_FRACT (calculate_pressure_balance) with no file pages.
    anon_cost = vm.anon_cost
    file_cost = vm.file_cost
    total = anon_cost + file_cost
    a = total + anon_cost
    f = total + file_cost
    total = a + f
    ap = swappiness * (total + 1) // (a + 1)
    fp = (MAX_SWAPPINESS - swappiness) * (total + 1) // (f + 1)
    denominator = ap + fp
    return (
        (inactive >> sc.priority) * ap // denominator,
        (active >> sc.priority) * ap // denominator,
    )


def shrink_lruvec(vm: Machine, sc: ScanControl) -> None:
    """Scan the lists in SWAP_CLUSTER_MAX batches, inactive before active
    (``for_each_evictable_lru``), until this call has reclaimed
    ``nr_to_reclaim`` (memcg reclaim stops there: with no file pages there
    is no proportional rescan)."""
    nr_inactive, nr_active = get_scan_count(vm, sc)
    nr_reclaimed = 0
    nr_to_reclaim = sc.nr_to_reclaim
    while nr_inactive:
        scan = min(nr_inactive, SWAP_CLUSTER_MAX)
        nr_inactive -= scan
        nr_reclaimed += shrink_inactive_list(vm, scan, sc)
        if nr_active:
            scan = min(nr_active, SWAP_CLUSTER_MAX)
            nr_active -= scan
            # shrink_list(): the active list only when deactivation is allowed.
            if sc.may_deactivate:
                shrink_active_list(vm, scan)
            else:
                sc.skipped_deactivate = True
        if nr_reclaimed >= nr_to_reclaim:
            break
    sc.nr_reclaimed += nr_reclaimed
    # Rebalance the anon lists even if nothing was evicted from them.
    if can_age_anon_pages(vm) and inactive_is_low(vm):
        shrink_active_list(vm, SWAP_CLUSTER_MAX)


def lru_note_cost(vm: Machine, nr_io: int, nr_rotated: int) -> None:
    """``lru_note_cost_unlock_irq`` for anon: IO weighs SWAP_CLUSTER_MAX
    times a rotation; both costs decay once they outgrow a quarter of the
    LRU. A zero cost records (and decays) nothing."""
    cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated
    if not cost:
        return
    vm.anon_cost += cost
    lrusize = vm.frames.lru_pages[0] + vm.frames.lru_pages[1]
    if vm.anon_cost + vm.file_cost > lrusize // 4:
        vm.anon_cost //= 2
        vm.file_cost //= 2


def _isolate(vm: Machine, nr_to_scan: int, active: bool) -> tuple[list[int], int]:
    """``isolate_lru_folios``: folios from the tail until `nr_to_scan` pages."""
    frames = vm.frames
    flags = frames.flags_mv
    order = frames.order_mv
    isolated: list[int] = []
    scanned = 0
    while scanned < nr_to_scan:
        head = frames.lru_tail(active)
        if head < 0:
            break
        nr = 1 << order[head]
        frames.lru_del(head, active, nr)
        flags[head] = (flags[head] & ~FL_LRU) | FL_ISOLATED
        isolated.append(head)
        scanned += nr
    return isolated, scanned


def putback_folio(vm: Machine, head: int) -> None:
    """``folio_putback_lru``/``move_folios_to_lru``: back at the list head."""
    frames = vm.frames
    flags = frames.flags_mv[head]
    active = bool(flags & FL_ACTIVE)
    frames.flags_mv[head] = (flags & ~FL_ISOLATED) | FL_LRU
    nr = 1 << frames.order_mv[head]
    frames.lru_add(head, active, nr)
    if active:
        workingset.workingset_age_nonresident(vm, nr)


def shrink_active_list(vm: Machine, nr_to_scan: int) -> None:
    """Deactivate folios from the active tail; anon folios go inactive even
    when referenced (their young bits are cleared on the way)."""
    isolated, scanned = _isolate(vm, nr_to_scan, True)
    # The model's reclaim is all memcg reclaim (try_to_free_mem_cgroup_pages),
    # which counts PGREFILL in the memcg only: /proc/vmstat's pgrefill is
    # for global reclaim (`if (!cgroup_reclaim(sc))`, v5.9 on).
    vm.memcg.stat["pgrefill"] += scanned
    frames = vm.frames
    nr_deactivate = 0
    for head in isolated:
        nr = 1 << frames.order_mv[head]
        folio_referenced(vm, head, nr)
        flags = frames.flags_mv[head]
        frames.flags_mv[head] = (flags & ~FL_ACTIVE & ~FL_ISOLATED) | FL_WORKINGSET | FL_LRU
        frames.lru_add(head, False, nr)
        nr_deactivate += nr
    vm.events["pgdeactivate"] += nr_deactivate
    lru_note_cost(vm, 0, 0)


def shrink_inactive_list(vm: Machine, nr_to_scan: int, sc: ScanControl) -> int:
    isolated, scanned = _isolate(vm, nr_to_scan, False)
    if not isolated:
        return 0
    vm.events["pgscan_anon"] += scanned
    sc.nr_scanned += scanned
    stat = {"nr_pageout": 0}
    nr_reclaimed = shrink_folio_list(vm, isolated, False, stat)
    vm.events["pgsteal_anon"] += nr_reclaimed
    lru_note_cost(vm, stat["nr_pageout"], max(scanned - nr_reclaimed, 0))
    return nr_reclaimed


def folio_check_references(vm: Machine, head: int, nr: int) -> int:
    """FOLIOREF_ACTIVATE, _KEEP or _RECLAIM, by the classic rules."""
    referenced_ptes = folio_referenced(vm, head, nr)
    flags = vm.frames.flags_mv
    referenced_folio = flags[head] & FL_REFERENCED
    flags[head] &= ~FL_REFERENCED
    if referenced_ptes:
        flags[head] |= FL_REFERENCED
        if referenced_folio or referenced_ptes > 1:
            return FOLIOREF_ACTIVATE
        return FOLIOREF_KEEP
    return FOLIOREF_RECLAIM


def _add_to_swap(vm: Machine, head: int, folio_list: list[int]) -> Folio | None:
    """``folio_alloc_swap`` for an isolated folio, splitting a large one that
    gets no large entry (its tails join `folio_list`). None: no swap."""
    frames = vm.frames
    subsys = vm.subsys
    order = frames.order_mv[head]
    pfn = vm.pfn_base + head
    folio = Folio(pfn, order, vm.memcg.id)
    folio.flags = PG_locked | PG_swapbacked | PG_uptodate
    folio.mapcount = frames.mapcount_mv[head]
    if swapfile.folio_alloc_swap(subsys, folio):
        mem_map[pfn] = folio
        folio.flags |= PG_dirty
        return folio
    if not order:
        return None
    tails = split_folio(vm, head)[1:]
    folio_list.extend(tails)
    if order >= PMD_ORDER:
        vm.events["thp_swpout_fallback"] += 1
    vm.mthp.count(order, "swpout_fallback")
    folio = Folio(pfn, 0, vm.memcg.id)
    folio.flags = PG_locked | PG_swapbacked | PG_uptodate
    folio.mapcount = frames.mapcount_mv[head]
    if swapfile.folio_alloc_swap(subsys, folio):
        mem_map[pfn] = folio
        folio.flags |= PG_dirty
        return folio
    return None


def _activate(vm: Machine, head: int, folio: Folio | None, nr: int) -> None:
    """``activate_locked``: drop the swap cache if swap is full, set active."""
    if (
        folio is not None
        and vm.subsys.vm_swap_full()
        and swapfile.folio_free_swap(vm.subsys, folio)
    ):
        vm.folio_left_swapcache(head, folio)
    vm.frames.flags_mv[head] |= FL_ACTIVE
    vm.events["pgactivate"] += nr


def shrink_folio_list(
    vm: Machine, folio_list: list[int], ignore_references: bool, stat: dict[str, int]
) -> int:
    """Reclaim what it can of isolated folios; survivors go back on the
    LRU (active if activated). Returns the pages reclaimed."""
    frames = vm.frames
    order = frames.order_mv
    rmap = frames.rmap_mv
    nr_reclaimed = 0
    i = 0
    while i < len(folio_list):
        head = folio_list[i]
        i += 1
        nr = 1 << order[head]
        mapped = rmap[head] >= 0
        if not ignore_references:
            if mapped:
                # Most scanned folios end here, so this comes before anything else.
                references = folio_check_references(vm, head, nr)
                if references == FOLIOREF_ACTIVATE:
                    _activate(vm, head, vm.swapcache_folio(head), nr)
                    putback_folio(vm, head)
                    continue
                if references == FOLIOREF_KEEP:
                    putback_folio(vm, head)
                    continue
            else:
                # folio_check_references of an unmapped folio: no young PTE,
                # PG_referenced cleared, FOLIOREF_RECLAIM.
                frames.flags_mv[head] &= ~FL_REFERENCED
        folio = vm.swapcache_folio(head)
        if not mapped and folio is None:
            # Nobody maps it and it holds no swap: just free it.
            vm.free_folio(head)
            nr_reclaimed += nr
            continue
        if folio is not None and folio.flags & PG_locked:
            putback_folio(vm, head)
            continue
        if folio is None:
            folio = _add_to_swap(vm, head, folio_list)
            if folio is None:
                _activate(vm, head, None, 1 << frames.order_mv[head])
                putback_folio(vm, head)
                continue
            nr = 1 << folio.order
        folio.flags |= PG_locked
        if mapped and not try_to_unmap(vm, head, folio):
            # Still mapped (a swap count could not be taken): activate_locked.
            folio.flags &= ~PG_locked
            _activate(vm, head, folio, nr)
            putback_folio(vm, head)
            continue
        if folio.flags & PG_dirty:
            if not frames.flags_mv[head] & FL_ANON:
                # pageout() (v6.16+) writes only shmem and anon folios: a
                # swap-cache folio never mapped, which zswap_load() left
                # dirty in readahead, is PAGE_ACTIVATE, not written again.
                folio.flags &= ~PG_locked
                _activate(vm, head, folio, nr)
                putback_folio(vm, head)
                continue
            result = page_io.swap_writeout(vm, folio, head)
            if result == page_io.WRITE_ACTIVATE:
                folio.flags &= ~PG_locked
                _activate(vm, head, folio, nr)
                putback_folio(vm, head)
                continue
            stat["nr_pageout"] += nr
            if result == page_io.WRITE_FREED:
                # pageout() still returns PAGE_SUCCESS, but folio_free_swap()
                # left the folio dirty, so it is kept; nothing maps or caches
                # it, and the putback drops its last reference
                # (move_folios_to_lru): freed, but not counted as reclaimed.
                folio.flags &= ~PG_locked
                vm.folio_left_swapcache(head, folio)
                vm.free_folio(head)
                continue
        # Clean: __remove_mapping leaves a shadow and frees the folio.
        shadow = workingset.workingset_eviction(vm, head, nr)
        si = vm.subsys.swap_info[folio.swap >> SWP_TYPE_SHIFT]
        assert si is not None
        ci = swap_cluster_get_and_lock(vm.subsys, folio)
        __swap_cache_del_folio(si, ci, folio, folio.swap, shadow)
        swap_cluster_unlock(ci)
        folio.flags &= ~PG_locked
        vm.folio_left_swapcache(head, folio)
        vm.free_folio(head)
        nr_reclaimed += nr
    return nr_reclaimed


def reclaim_pages(vm: Machine, heads: list[int]) -> int:
    """MADV_PAGEOUT: reclaim isolated folios ignoring references
    (no pgscan/pgsteal); survivors go back. Returns pages reclaimed."""
    stat = {"nr_pageout": 0}
    vm.sync_hits()
    return shrink_folio_list(vm, heads, True, stat)


compile_lean(globals())
