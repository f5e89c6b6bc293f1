"""The swap slot allocator and swap counts (mm/swapfile.c).

Models the linux-mm tree of 2026 (swap table phases I-IV: counts live in
the table, an extend table catches overflow, clusters get their table when
isolated from the free list) with the seed patch applied: a ghost device
(``SWP_GHOST``) allocates clusters on demand (``alloc_swap_scan_dynamic``),
frees them to RCU as soon as they empty (``free_cluster``), and re-looks a
cluster up after every dropped lock. swapon/swapoff live in
:mod:`ghostswap.mm.swapon`.

Allocation order, as ``cluster_alloc_swap_entry`` tries it: the HDD global
cluster; the free list first on a discarding device; ``nonfull[order]``;
a fresh dynamic cluster (ghost); the free list; reclaim of full clusters
when swap is half full; one ``frag[order]`` cluster; order 0 then steals
from higher orders' frag and nonfull lists. Before all that
``swap_alloc_fast`` tries the CPU's cached cluster.

Functions keep the kernel's names. Where the kernel reaches a global
(``swap_info[]``) the model passes the :class:`SwapSubsystem`; where it
returns ``-errno`` the model returns the errno name or a bool.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

from ghostswap.kernel.bug import WARN, KernelError
from ghostswap.kernel.gfp import GFP_ATOMIC, GFP_KERNEL, Gfp
from ghostswap.kernel.lean import compile_lean
from ghostswap.kernel.list import ListHead, list_add_tail, list_del, list_move_tail
from ghostswap.kernel.plist import plist_add, plist_del, plist_node_empty, plist_requeue
from ghostswap.kernel.rcu import call_rcu, kfree_rcu, rcu_read_lock, rcu_read_unlock
from ghostswap.kernel.runtime import set_debug_build
from ghostswap.kernel.sched import sched_point
from ghostswap.kernel.slab import kfree, kzalloc
from ghostswap.kernel.spinlock import (
    local_lock,
    local_unlock,
    lockdep_assert_held,
    spin_lock,
    spin_trylock,
    spin_unlock,
)
from ghostswap.kernel.workqueue import schedule_work
from ghostswap.kernel.xarray import XA_LIMIT, xa_alloc, xa_erase
from ghostswap.mm import swap_state
from ghostswap.mm.folio import (
    Folio,
    PG_dirty,
    PG_locked,
    PG_swapcache,
    PG_writeback,
    folio_trylock,
    folio_unlock,
)
from ghostswap.mm.swap import (
    CLUSTER_FLAG_DEAD,
    CLUSTER_FLAG_DISCARD,
    CLUSTER_FLAG_FRAG,
    CLUSTER_FLAG_FREE,
    CLUSTER_FLAG_FULL,
    CLUSTER_FLAG_NONE,
    CLUSTER_FLAG_NONFULL,
    CLUSTER_FLAG_USABLE,
    PMD_ORDER,
    SWAP_ENTRY_INVALID,
    SWAP_NR_ORDERS,
    SWAPFILE_CLUSTER,
    SWP_BLKDEV,
    SWP_GHOST,
    SWP_OFFSET_MASK,
    SWP_PAGE_DISCARD,
    SWP_SOLIDSTATE,
    SWP_TYPE_SHIFT,
    SWP_WRITEOK,
    ClusterFlag,
    PercpuSwapCluster,
    SwapClusterInfo,
    SwapClusterInfoDynamic,
    SwapInfo,
    SwapSubsystem,
    __swap_offset_to_cluster,
    swap_cluster_lock,
    swap_cluster_unlock,
    swp_entry,
)
from ghostswap.mm.swap_table import (
    SWP_TB_COUNT_MAX,
    SWP_TB_COUNT_SHIFT,
    SWP_TB_NULL,
    __swap_cgroup_clear,
    __swap_cgroup_get,
    __swap_cgroup_set,
    __swap_table_get,
    __swap_table_set,
    __swp_tb_get_count,
    __swp_tb_mk_count,
    swap_extend_table_new,
    swap_memcg_table_new,
    swap_table_get,
    swap_table_new,
    swp_tb_get_count,
    swp_tb_is_bad,
    swp_tb_is_folio,
    swp_tb_is_null,
)

__all__ = [
    "cluster_alloc_swap_entry",
    "folio_alloc_swap",
    "folio_dup_swap",
    "folio_free_swap",
    "folio_put_swap",
    "get_swap_device",
    "put_swap_device",
    "swap_dup_entry_direct",
    "swap_put_entries_direct",
    "swap_reclaim_full_clusters",
    "swp_swapcount",
]

# __try_to_reclaim_swap() flags
TTRS_ANYWAY = 0x1
TTRS_UNMAPPED = 0x2
TTRS_FULL = 0x4

# cluster_scan_range() results (the kernel returns bool plus *need_reclaim)
SCAN_BUSY = 0
SCAN_FREE = 1
SCAN_NEED_RECLAIM = 2

_COUNT_SHIFT = SWP_TB_COUNT_SHIFT


# -- swap cache reclaim ---------------------------------------------------------------
def swap_only_has_cache(ci: SwapClusterInfo, offset: int, nr_pages: int) -> bool:
    """Every slot of the range is cached with a zero count. Context: ci.lock."""
    ci_off = offset % SWAPFILE_CLUSTER
    for off in range(ci_off, ci_off + nr_pages):
        swp_tb = __swap_table_get(ci, off)
        if not swp_tb_is_folio(swp_tb):
            WARN(f"swap_only_has_cache: slot {off} of {ci!r} is not cached")
        if swp_tb >> _COUNT_SHIFT:
            return False
    return True


def __try_to_reclaim_swap(si: SwapInfo, offset: int, flags: int) -> int:
    """Drop the swap cache folio at `offset` if nothing else uses its slots.

    Returns the folio's page count, positive when it was reclaimed and
    negative when it was not; 0 when no folio is cached there.
    """
    subsys = si.subsys
    entry = swp_entry(si.type, offset)
    while True:
        folio = swap_state.swap_cache_get_folio(subsys, entry)
        if folio is None:
            return 0
        nr_pages = 1 << folio.order
        if not folio_trylock(folio):
            return -nr_pages
        if not swap_state.folio_matches_swap_entry(folio, entry):
            folio_unlock(folio)
            continue
        break
    ret = -nr_pages
    offset = folio.swap & SWP_OFFSET_MASK
    need_reclaim = (
        flags & TTRS_ANYWAY
        or (flags & TTRS_UNMAPPED and not folio.mapcount)
        or (flags & TTRS_FULL and subsys.vm_swap_full())
    )
    if need_reclaim and folio_swapcache_freeable(folio):
        ci = swap_cluster_lock(si, offset)
        assert ci is not None, "a locked swap cache folio pins its cluster"
        only_cache = swap_only_has_cache(ci, offset, nr_pages)
        swap_cluster_unlock(ci)
        if only_cache:
            swap_state.swap_cache_del_folio(subsys, folio)
            folio.flags |= PG_dirty
            ret = nr_pages
    folio_unlock(folio)
    return ret


# -- cluster state ----------------------------------------------------------------------
def cluster_is_usable(ci: SwapClusterInfo, order: int) -> bool:
    if ci.flags > CLUSTER_FLAG_USABLE:
        return False
    if ci.table is None:
        return False
    if not order:
        return True
    return ci.count == 0 or order == ci.order


def cluster_index(si: SwapInfo, ci: SwapClusterInfo) -> int:
    return ci.index


def cluster_offset(si: SwapInfo, ci: SwapClusterInfo) -> int:
    return ci.index * SWAPFILE_CLUSTER


def swap_cluster_free_table(si: SwapInfo, ci: SwapClusterInfo) -> None:
    """Free the cluster's tables; the table page goes back after a grace
    period because lockless readers may still hold it."""
    if ci.memcg_table is not None:
        kfree(ci.memcg_table)
        ci.memcg_table = None
    table = ci.table
    if table is None:
        return
    ci.table = None
    si.subsys.stats.tables_freed += 1
    call_rcu(lambda: kfree(table, "swap_cluster_free_table"), "free swap table")


def swap_cluster_alloc_table(si: SwapInfo, ci: SwapClusterInfo, gfp: int) -> bool:
    """Give an empty off-list cluster its table (and memcg table)."""
    if ci.flags or ci.count:
        WARN(f"swap_cluster_alloc_table: {ci!r} is on a list or in use")
    if ci.table is not None:
        return True
    table = kzalloc(swap_table_new, gfp, "swap_table")
    if table is None:
        return False
    ci.table = table
    if si.subsys.memcg:
        memcg_table = kzalloc(swap_memcg_table_new, gfp, "swap_memcg_table")
        if memcg_table is None:
            swap_cluster_free_table(si, ci)
            return False
        ci.memcg_table = memcg_table
    si.subsys.stats.tables_allocated += 1
    return True


def swap_cluster_assert_empty(ci: SwapClusterInfo, ci_off: int, nr: int, swapoff: bool) -> None:
    """Nothing leaked: the range holds only NULL (and bad slots at swapoff)."""
    bad_slots = 0
    for off in range(ci_off, ci_off + nr):
        swp_tb = __swap_table_get(ci, off)
        if swp_tb_is_bad(swp_tb):
            bad_slots += 1
        elif not swp_tb_is_null(swp_tb):
            WARN(f"{ci!r}: slot {off} not empty ({swp_tb:#x})")
        if __swap_cgroup_get(ci, off):
            WARN(f"{ci!r}: slot {off} still has a memcg id")
    if bad_slots != (ci.count if swapoff else 0):
        WARN(f"{ci!r}: {bad_slots} bad slots in an emptied range")
    if nr == SWAPFILE_CLUSTER and ci.extend_table is not None:
        WARN(f"{ci!r}: emptied with an extend table")


def swap_cluster_populate(si: SwapInfo, ci: SwapClusterInfo) -> SwapClusterInfo | None:
    """Allocate the table of a cluster just isolated from the free list.

    An atomic attempt first; if it fails, drop every lock and sleep-allocate,
    then put the cluster back on the free list if that fails too.
    """
    lockdep_assert_held(ci.lock)
    if swap_cluster_alloc_table(si, ci, Gfp.HIGH | Gfp.NOMEMALLOC | Gfp.NOWARN):
        return ci
    subsys = si.subsys
    pcp_lock = subsys.percpu_swap_cluster.this_cpu_ptr().lock
    solidstate = si.flags & SWP_SOLIDSTATE
    spin_unlock(ci.lock)
    if not solidstate:
        spin_unlock(si.global_cluster_lock)
    local_unlock(pcp_lock)
    ok = swap_cluster_alloc_table(si, ci, Gfp.HIGH | Gfp.NOMEMALLOC | GFP_KERNEL)
    local_lock(pcp_lock)
    if not solidstate:
        spin_lock(si.global_cluster_lock)
    spin_lock(ci.lock)
    if not ok:
        move_cluster(si, ci, si.free_clusters, CLUSTER_FLAG_FREE)
        spin_unlock(ci.lock)
        return None
    return ci


def move_cluster(si: SwapInfo, ci: SwapClusterInfo, head: ListHead, new_flags: ClusterFlag) -> None:
    """The only place a cluster changes list and flag. Context: ci.lock."""
    if ci.flags == new_flags:
        WARN(f"move_cluster: {ci!r} already has flag {new_flags}")
    lockdep_assert_held(ci.lock)
    spin_lock(si.lock)
    if ci.flags == CLUSTER_FLAG_NONE:
        list_add_tail(ci, head)
    else:
        list_move_tail(ci, head)
    spin_unlock(si.lock)
    ci.flags = new_flags


def swap_cluster_schedule_discard(si: SwapInfo, ci: SwapClusterInfo) -> None:
    move_cluster(si, ci, si.discard_clusters, CLUSTER_FLAG_DISCARD)
    assert si.discard_work is not None
    schedule_work(si.discard_work)


def __free_cluster(si: SwapInfo, ci: SwapClusterInfo) -> None:
    if _debug_vm:
        swap_cluster_assert_empty(ci, 0, SWAPFILE_CLUSTER, False)
    swap_cluster_free_table(si, ci)
    move_cluster(si, ci, si.free_clusters, CLUSTER_FLAG_FREE)
    ci.order = 0


def isolate_lock_cluster(si: SwapInfo, head: ListHead) -> SwapClusterInfo | None:
    """Take the first uncontended cluster off `head`, locked, flag cleared.

    A cluster isolated from the free list gets its table here.
    """
    found = None
    flags = CLUSTER_FLAG_NONE
    si.subsys.stats.list_scans += 1
    spin_lock(si.lock)
    for ci in head:
        if not spin_trylock(ci.lock):
            continue
        if not ci.flags or (ci.flags > CLUSTER_FLAG_USABLE and ci.flags != CLUSTER_FLAG_FULL):
            WARN(f"isolate_lock_cluster: {ci!r} cannot be isolated from {head.name}")
        list_del(ci)
        flags = ci.flags
        ci.flags = CLUSTER_FLAG_NONE
        found = ci
        break
    spin_unlock(si.lock)
    if found is not None and flags == CLUSTER_FLAG_FREE:
        return swap_cluster_populate(si, found)
    return found


def swap_do_scheduled_discard(si: SwapInfo) -> bool:
    """The discard worker: discard each queued cluster, then free it."""
    ret = False
    spin_lock(si.lock)
    while len(si.discard_clusters):
        ci = next(iter(si.discard_clusters))
        # Off the list but still DISCARD: a per-CPU cache may point at it.
        list_del(ci)
        spin_unlock(si.lock)
        discard = si.subsys.hooks.discard
        if discard is not None:
            discard(si, cluster_offset(si, ci), SWAPFILE_CLUSTER)
        spin_lock(ci.lock)
        ci.flags = CLUSTER_FLAG_NONE
        __free_cluster(si, ci)
        spin_unlock(ci.lock)
        ret = True
        spin_lock(si.lock)
    spin_unlock(si.lock)
    return ret


def free_cluster(si: SwapInfo, ci: SwapClusterInfo) -> None:
    """A cluster just emptied. Context: ci.lock.

    Static device: onto the free (or discard) list. Ghost device (the seed):
    off every list, table freed, erased from the pool, marked DEAD and
    handed to RCU; lookups that still find it see DEAD and back off.
    """
    if ci.count != 0 or ci.flags == CLUSTER_FLAG_FREE:
        WARN(f"free_cluster: {ci!r} is not an in-use empty cluster")
    lockdep_assert_held(ci.lock)
    if si.flags & (SWP_WRITEOK | SWP_PAGE_DISCARD) == SWP_WRITEOK | SWP_PAGE_DISCARD:
        swap_cluster_schedule_discard(si, ci)
        return
    if si.flags & SWP_GHOST:
        assert isinstance(ci, SwapClusterInfoDynamic)
        if ci.flags != CLUSTER_FLAG_NONE:
            spin_lock(si.lock)
            list_del(ci)
            spin_unlock(si.lock)
        swap_cluster_free_table(si, ci)
        pool = si.cluster_info_pool
        assert pool is not None
        xa_erase(pool, ci.index)
        ci.flags = CLUSTER_FLAG_DEAD
        si.subsys.stats.ghost_clusters_freed += 1
        if si.subsys.reverts.free_without_rcu:
            kfree(ci)
        else:
            kfree_rcu(ci)
        return
    __free_cluster(si, ci)


def partial_free_cluster(si: SwapInfo, ci: SwapClusterInfo) -> None:
    """Some slots freed but not all: the cluster belongs on nonfull."""
    lockdep_assert_held(ci.lock)
    if ci.flags != CLUSTER_FLAG_NONFULL:
        move_cluster(si, ci, si.nonfull_clusters[ci.order], CLUSTER_FLAG_NONFULL)


def relocate_cluster(si: SwapInfo, ci: SwapClusterInfo) -> None:
    """After allocating: onto frag or full (or free it if it emptied).

    The ci lock may have been dropped for reclaim, so the cluster could be
    anywhere; a discarding cluster stays where it is.
    """
    lockdep_assert_held(ci.lock)
    if ci.flags == CLUSTER_FLAG_DISCARD:
        return
    count = ci.count
    if not count:
        if ci.flags != CLUSTER_FLAG_FREE:
            free_cluster(si, ci)
    elif count != SWAPFILE_CLUSTER:
        if ci.flags != CLUSTER_FLAG_FRAG:
            move_cluster(si, ci, si.frag_clusters[ci.order], CLUSTER_FLAG_FRAG)
    elif ci.flags != CLUSTER_FLAG_FULL:
        move_cluster(si, ci, si.full_clusters, CLUSTER_FLAG_FULL)


class _Reclaimed(NamedTuple):
    ok: bool  # the range is free now
    usable: bool  # the cluster can still serve this order
    ci: SwapClusterInfo | None  # the (re-looked-up) locked cluster


def cluster_reclaim_range(si: SwapInfo, ci: SwapClusterInfo, start: int, order: int) -> _Reclaimed:
    """Reclaim cache-only slots in [start, start + 1 << order), dropping the
    cluster lock to do it.

    While the lock is dropped a ghost cluster can be emptied, freed and its
    index reused, so the seed looks it up again instead of re-locking the
    old pointer.
    """
    nr_pages = 1 << order
    end = start + nr_pages
    si.subsys.stats.reclaim_range_calls += 1
    spin_unlock(ci.lock)
    rcu_read_lock()
    offset = start
    while offset < end:
        swp_tb = swap_table_get(ci, offset % SWAPFILE_CLUSTER)
        if swp_tb_get_count(swp_tb):
            break
        if swp_tb_is_folio(swp_tb) and __try_to_reclaim_swap(si, offset, TTRS_ANYWAY) < 0:
            break
        offset += 1
    rcu_read_unlock()

    if si.subsys.reverts.no_relookup_after_reclaim:
        spin_lock(ci.lock)
        relocked: SwapClusterInfo | None = ci
    else:
        relocked = swap_cluster_lock(si, start)
        if relocked is None and not si.subsys.reverts.no_null_cluster_check:
            return _Reclaimed(False, False, None)
    ci = relocked  # type: ignore[assignment]  # None only when a revert skips the check
    # The lock was dropped: another order may own the cluster now, or it
    # may have been freed.
    if not cluster_is_usable(ci, order):
        return _Reclaimed(False, False, ci)
    if ci.count == 0:
        return _Reclaimed(True, True, ci)
    # Re-check the whole range: slots may have been freed or taken meanwhile.
    for offset in range(start, end):
        if __swap_table_get(ci, offset % SWAPFILE_CLUSTER) != SWP_TB_NULL:
            return _Reclaimed(False, True, ci)
    return _Reclaimed(True, True, ci)


def cluster_scan_range(si: SwapInfo, ci: SwapClusterInfo, offset: int, nr_pages: int) -> int:
    """Can [offset, offset + nr_pages) be allocated? SCAN_FREE, SCAN_BUSY, or
    SCAN_NEED_RECLAIM when it only holds clean cache (and swap is half full)."""
    ci_off = offset % SWAPFILE_CLUSTER
    table = ci.table
    assert table is not None
    result = SCAN_FREE
    for off in range(ci_off, ci_off + nr_pages):
        swp_tb = table[off]
        if not swp_tb:
            continue
        if (swp_tb & 3) == 2 and not swp_tb >> _COUNT_SHIFT:
            if not si.subsys.vm_swap_full():
                return SCAN_BUSY
            result = SCAN_NEED_RECLAIM
            continue
        return SCAN_BUSY
    return result


_NULL_RANGES = [array("Q", bytes(8 << order)) for order in range(SWAP_NR_ORDERS)]


def _next_null_range(ci: SwapClusterInfo, offset: int, end: int, order: int) -> int:
    """The first of `offset`, `offset` + nr_pages, ... up to `end` whose
    range is all NULL, or `end` + 1 when there is none.

    While swap is at most half full, ``cluster_scan_range`` treats a
    cache-only slot as busy, so the first all-NULL range is exactly where the
    kernel's range-by-range scan stops; this finds it with C-speed searches
    of the table (``array.index``) instead of one scan call per range.
    """
    table = ci.table
    assert table is not None
    base = offset - offset % SWAPFILE_CLUSTER
    nr_pages = 1 << order
    stop = end - base + nr_pages
    try:
        null = table.index(SWP_TB_NULL, offset - base, stop)
        if not order:
            return base + null
        off = offset - base
        while True:
            # A range that starts before the first NULL slot holds a busy one.
            off += (null - off + nr_pages - 1) >> order << order
            if off + nr_pages > stop:
                break
            if table[off : off + nr_pages] == _NULL_RANGES[order]:
                return base + off
            off += nr_pages
            null = table.index(SWP_TB_NULL, off, stop)
    except ValueError:
        pass
    return end + 1


def __swap_cluster_alloc_entries(
    si: SwapInfo, ci: SwapClusterInfo, folio: Folio | None, ci_off: int
) -> bool:
    """Claim the slots at `ci_off` for `folio` (into the swap cache, count 0),
    or for hibernation (no folio: a shadow with count 1). Context: ci.lock."""
    if not si.flags & SWP_WRITEOK:
        return False
    # swapoff clears SWP_WRITEOK without this lock and relies on
    # wait_for_allocation() to outwait an allocator that already passed here.
    sched_point("SWP_WRITEOK checked")
    if folio is not None:
        order = folio.order
        nr_pages = 1 << order
        if _debug_vm:
            swap_cluster_assert_empty(ci, ci_off, nr_pages, False)
        entry = (si.type << SWP_TYPE_SHIFT) | (ci.index * SWAPFILE_CLUSTER + ci_off)
        swap_state.__swap_cache_add_folio(si, ci, folio, entry)
    else:
        order = 0
        nr_pages = 1
        __swap_table_set(ci, ci_off, __swp_tb_mk_count(1, 1))
    if ci.count == 0:
        ci.order = order  # the first allocation makes the cluster this order's
    ci.count += nr_pages
    swap_range_alloc(si, nr_pages)
    return True


def alloc_swap_scan_cluster(
    si: SwapInfo, ci: SwapClusterInfo, folio: Folio | None, offset: int
) -> int:
    """Allocate from the locked cluster `ci` starting at `offset`, then
    unlock it, put it on the right list and cache where to continue."""
    order = folio.order if folio is not None else 0
    nr_pages = 1 << order
    found = next_offset = SWAP_ENTRY_INVALID
    lockdep_assert_held(ci.lock)
    cur: SwapClusterInfo | None = ci
    if ci.count + nr_pages <= SWAPFILE_CLUSTER:
        start = offset - offset % SWAPFILE_CLUSTER
        end = start + SWAPFILE_CLUSTER - nr_pages
        # Not half full (vm_swap_full(), inlined): no range needs reclaim,
        # and the scan can jump.
        jump = si.subsys.nr_swap_pages * 2 >= si.subsys.total_swap_pages
        while offset <= end:
            if jump:
                offset = _next_null_range(ci, offset, end, order)
                if offset > end:
                    break
            else:
                scan = cluster_scan_range(si, ci, offset, nr_pages)
                if scan == SCAN_BUSY:
                    offset += nr_pages
                    continue
                if scan == SCAN_NEED_RECLAIM:
                    reclaimed = cluster_reclaim_range(si, ci, offset, order)
                    cur = reclaimed.ci
                    if not reclaimed.usable:
                        break
                    assert cur is not None
                    ci = cur
                    if ci.count == 0:
                        offset = start
                    if not reclaimed.ok:
                        offset += nr_pages
                        continue
            if not __swap_cluster_alloc_entries(si, ci, folio, offset % SWAPFILE_CLUSTER):
                break
            found = offset
            offset += nr_pages
            if ci.count < SWAPFILE_CLUSTER and offset <= end:
                next_offset = offset
            break
    if cur is not None:
        relocate_cluster(si, cur)
        spin_unlock(cur.lock)
    # Remember where this CPU continues allocating this order.
    if not si.flags & SWP_SOLIDSTATE:
        assert si.global_cluster is not None
        si.global_cluster[order] = next_offset
    elif si.percpu_cluster is None:
        pcp = si.subsys.percpu_swap_cluster.this_cpu_ptr()
        pcp.offset[order] = next_offset
        pcp.si[order] = si
    else:
        si.percpu_cluster.this_cpu_ptr()[order] = next_offset
    return found


def alloc_swap_scan_list(si: SwapInfo, head: ListHead, folio: Folio | None, scan_all: bool) -> int:
    found = SWAP_ENTRY_INVALID
    while True:
        ci = isolate_lock_cluster(si, head)
        if ci is None:
            break
        found = alloc_swap_scan_cluster(si, ci, folio, cluster_offset(si, ci))
        if found or not scan_all:
            break
    return found


def alloc_swap_scan_dynamic(si: SwapInfo, folio: Folio | None) -> int:
    """The seed: allocate a brand-new ghost cluster and allocate from it.

    The cluster gets the lowest free index in ``[1, nr_clusters - 1]``
    (index 0 is preallocated at swapon and holds the header slot).
    """
    if not si.flags & SWP_GHOST:
        WARN("alloc_swap_scan_dynamic on a device without SWP_GHOST")
    ci = kzalloc(SwapClusterInfoDynamic, GFP_ATOMIC, "swap_cluster_info_dynamic")
    if ci is None:
        return SWAP_ENTRY_INVALID
    table = kzalloc(swap_table_new, GFP_ATOMIC, "swap_table")
    if table is None:
        kfree(ci)
        return SWAP_ENTRY_INVALID
    if si.subsys.memcg:
        memcg_table = kzalloc(swap_memcg_table_new, GFP_ATOMIC, "swap_memcg_table")
        if memcg_table is None:
            kfree(table)
            kfree(ci)
            return SWAP_ENTRY_INVALID
        ci.memcg_table = memcg_table
    ci.table = table
    pool = si.cluster_info_pool
    assert pool is not None
    nr_clusters = (si.max + SWAPFILE_CLUSTER - 1) // SWAPFILE_CLUSTER
    hi = (nr_clusters - 1) & 0xFFFFFFFF  # unsigned int arithmetic, as in C

    def set_index(index: int) -> None:
        # xa_alloc() writes ci_dyn->index before it publishes the cluster: a
        # lockless lookup may find and lock it before we do.
        ci.index = index
        ci.lock.name = f"ci{index}"

    try:
        index = xa_alloc(pool, ci, XA_LIMIT(1, hi), GFP_ATOMIC, set_index)
    except KernelError:
        if ci.memcg_table is not None:
            kfree(ci.memcg_table)
        kfree(table)
        kfree(ci)
        return SWAP_ENTRY_INVALID
    stats = si.subsys.stats
    stats.ghost_clusters_allocated += 1
    stats.tables_allocated += 1
    if len(pool) > stats.ghost_pool_peak:
        stats.ghost_pool_peak = len(pool)
    spin_lock(ci.lock)
    return alloc_swap_scan_cluster(si, ci, folio, index * SWAPFILE_CLUSTER)


def swap_reclaim_full_clusters(si: SwapInfo, force: bool) -> None:
    """Drop clean swap cache from full clusters so their slots can be reused.

    Not forced: scan one cluster. Forced (the reclaim worker): as many
    clusters as the device has in use.
    """
    to_scan = 1
    if force:
        to_scan = si.inuse_pages // SWAPFILE_CLUSTER
    si.subsys.stats.reclaim_full_passes += 1
    while True:
        ci = isolate_lock_cluster(si, si.full_clusters)
        if ci is None:
            break
        offset = cluster_offset(si, ci)
        end = min(si.max, offset + SWAPFILE_CLUSTER)
        to_scan -= 1
        cur: SwapClusterInfo | None = ci
        while offset < end:
            assert cur is not None
            swp_tb = swap_table_get(cur, offset % SWAPFILE_CLUSTER)
            if swp_tb_is_folio(swp_tb) and not __swp_tb_get_count(swp_tb):
                spin_unlock(cur.lock)
                nr_reclaim = __try_to_reclaim_swap(si, offset, TTRS_ANYWAY)
                if si.subsys.reverts.no_relookup_full_reclaim:
                    spin_lock(cur.lock)
                else:
                    cur = swap_cluster_lock(si, offset)
                    if cur is None and not si.subsys.reverts.no_null_cluster_check:
                        break
                if nr_reclaim:
                    offset += abs(nr_reclaim)
                    continue
            offset += 1
        if cur is not None:
            # In case no swap cache was reclaimed the cluster is still off-list.
            if cur.flags == CLUSTER_FLAG_NONE:
                relocate_cluster(si, cur)
            swap_cluster_unlock(cur)
        if to_scan <= 0:
            break


def swap_reclaim_work(si: SwapInfo) -> None:
    swap_reclaim_full_clusters(si, True)


def _percpu_device_try(si: SwapInfo, folio: Folio | None, order: int) -> int:
    """Per-device policy: the device's own per-CPU cluster comes first."""
    assert si.percpu_cluster is not None
    offset = si.percpu_cluster.this_cpu_ptr()[order]
    if offset == SWAP_ENTRY_INVALID:
        return SWAP_ENTRY_INVALID
    ci = swap_cluster_lock(si, offset)
    if ci is None:
        return SWAP_ENTRY_INVALID
    if not cluster_is_usable(ci, order):
        swap_cluster_unlock(ci)
        return SWAP_ENTRY_INVALID
    if ci.count == 0:
        offset = cluster_offset(si, ci)
    si.subsys.stats.fast_hits += 1
    return alloc_swap_scan_cluster(si, ci, folio, offset)


def cluster_alloc_swap_entry(si: SwapInfo, folio: Folio | None) -> int:
    """Allocate `folio`'s slots on `si`, trying cluster sources in the
    kernel's order; returns the first offset or SWAP_ENTRY_INVALID."""
    order = folio.order if folio is not None else 0
    found = SWAP_ENTRY_INVALID

    # A swap file is not a block device: no large entries on it.
    if order and not si.flags & SWP_BLKDEV:
        return SWAP_ENTRY_INVALID

    solidstate = si.flags & SWP_SOLIDSTATE
    if not solidstate:
        # Serialize rotating-disk allocation on one sequential cluster.
        spin_lock(si.global_cluster_lock)
        assert si.global_cluster is not None
        offset = si.global_cluster[order]
        if offset != SWAP_ENTRY_INVALID:
            ci = swap_cluster_lock(si, offset)
            if ci is not None:
                if cluster_is_usable(ci, order):
                    if ci.count == 0:
                        offset = cluster_offset(si, ci)
                    found = alloc_swap_scan_cluster(si, ci, folio, offset)
                else:
                    swap_cluster_unlock(ci)
    elif si.percpu_cluster is not None:
        found = _percpu_device_try(si, folio, order)

    if not found:
        found = _cluster_alloc_new(si, folio, order)
    if not solidstate:
        spin_unlock(si.global_cluster_lock)
    return found


def _cluster_alloc_new(si: SwapInfo, folio: Folio | None, order: int) -> int:
    """The part of cluster_alloc_swap_entry() after its ``new_cluster:`` label."""
    discarding = si.flags & SWP_PAGE_DISCARD
    # A discarding device prefers fresh clusters to spread the writes.
    if discarding:
        found = alloc_swap_scan_list(si, si.free_clusters, folio, False)
        if found:
            return found
    if order < PMD_ORDER:
        found = alloc_swap_scan_list(si, si.nonfull_clusters[order], folio, True)
        if found:
            return found
    if si.flags & SWP_GHOST:
        found = alloc_swap_scan_dynamic(si, folio)
        if found:
            return found
    if not discarding:
        found = alloc_swap_scan_list(si, si.free_clusters, folio, False)
        if found:
            return found
    if si.subsys.vm_swap_full():
        swap_reclaim_full_clusters(si, False)
    if order < PMD_ORDER:
        # One fragmented cluster is enough: order 0 will succeed anyway and a
        # large allocation may fail. Scanning still rotates the list.
        si.subsys.stats.frag_scans += 1
        found = alloc_swap_scan_list(si, si.frag_clusters[order], folio, False)
        if found:
            return found
    if order:
        return SWAP_ENTRY_INVALID
    for o in range(1, SWAP_NR_ORDERS):
        # Steal a slot from a higher order's clusters.
        found = alloc_swap_scan_list(si, si.frag_clusters[o], folio, True)
        if not found:
            found = alloc_swap_scan_list(si, si.nonfull_clusters[o], folio, True)
        if found:
            si.subsys.stats.order0_steals += 1
            return found
    return SWAP_ENTRY_INVALID


# -- device availability and usage ----------------------------------------------------
def del_from_avail_list(si: SwapInfo, swapoff: bool) -> None:
    subsys = si.subsys
    spin_lock(subsys.swap_avail_lock)
    if swapoff:
        lockdep_assert_held(si.lock)
        si.flags &= ~SWP_WRITEOK
        si.offlist = True
    elif si.inuse_pages != si.pages or si.offlist:
        spin_unlock(subsys.swap_avail_lock)
        return
    else:
        si.offlist = True
    if not plist_node_empty(si.avail_list):
        plist_del(si.avail_list, subsys.swap_avail_head)
    spin_unlock(subsys.swap_avail_lock)


def add_to_avail_list(si: SwapInfo, swapon: bool) -> None:
    subsys = si.subsys
    spin_lock(subsys.swap_avail_lock)
    try:
        if swapon:
            lockdep_assert_held(si.lock)
            si.flags |= SWP_WRITEOK
        elif not si.flags & SWP_WRITEOK:
            return
        if not si.offlist:
            return
        si.offlist = False
        # Full again by the time we got here: whoever filled it removes it.
        if si.inuse_pages == si.pages:
            si.offlist = True
            return
        plist_add(si.avail_list, subsys.swap_avail_head)
    finally:
        spin_unlock(subsys.swap_avail_lock)


def swap_range_alloc(si: SwapInfo, nr_entries: int) -> None:
    subsys = si.subsys
    subsys.nr_swap_pages -= nr_entries
    # swap_usage_add(), inlined: a device that just filled leaves the list.
    inuse = si.inuse_pages = si.inuse_pages + nr_entries
    if inuse > si.peak_inuse_pages:
        si.peak_inuse_pages = inuse
    if inuse == si.pages and not si.offlist:
        del_from_avail_list(si, False)
        if subsys.vm_swap_full():
            assert si.reclaim_work is not None
            schedule_work(si.reclaim_work)


def swap_range_free(si: SwapInfo, offset: int, nr_entries: int) -> None:
    """Slots freed: tell zswap and the block device, then account."""
    subsys = si.subsys
    notify = subsys.hooks.slot_free_notify
    if notify is not None:
        notify(si, offset, nr_entries)
    subsys.nr_swap_pages += nr_entries
    # swap_usage_sub(), inlined
    si.inuse_pages -= nr_entries
    if si.offlist:
        add_to_avail_list(si, False)


def get_swap_device_info(si: SwapInfo) -> bool:
    """``percpu_ref_tryget_live(&si->users)``."""
    users = si.users
    if users.dead:
        return False
    users.count += 1
    return True


def put_swap_device(si: SwapInfo) -> None:
    si.users.count -= 1


# -- allocation entry points -------------------------------------------------------------
def swap_alloc_fast(subsys: SwapSubsystem, folio: Folio, pcp: PercpuSwapCluster) -> bool:
    """Try the current CPU's cached cluster (global per-CPU policy).

    `pcp` is this CPU's ``percpu_swap_cluster``; the caller holds its local
    lock, so the CPU cannot change underneath.
    """
    order = folio.order
    si = pcp.si[order]
    offset = pcp.offset[order]
    if si is None or not offset:
        return False
    users = si.users  # get_swap_device_info(), inlined
    if users.dead:
        return False
    users.count += 1
    locked = swap_cluster_lock(si, offset)
    # The seed's NULL check; the no-null-cluster-check revert dereferences it.
    if locked is not None or subsys.reverts.no_null_cluster_check:
        ci: SwapClusterInfo = locked  # type: ignore[assignment]  # None: the revert's oops
        # cluster_is_usable(ci, order), inlined
        if (
            ci.flags <= CLUSTER_FLAG_USABLE
            and ci.table is not None
            and (not order or not ci.count or ci.order == order)
        ):
            if not ci.count:
                offset = ci.index * SWAPFILE_CLUSTER
            alloc_swap_scan_cluster(si, ci, folio, offset)
        else:
            spin_unlock(ci.lock)
    users.count -= 1  # put_swap_device()
    if folio.flags & PG_swapcache:
        subsys.stats.fast_hits += 1
        return True
    return False


def swap_alloc_slow(subsys: SwapSubsystem, folio: Folio) -> None:
    """Walk available devices by priority, rotating equal priorities."""
    subsys.stats.slow_calls += 1
    head = subsys.swap_avail_head
    spin_lock(subsys.swap_avail_lock)
    restart = True
    while restart:
        restart = False
        nodes = list(head.nodes)
        for i, node in enumerate(nodes):
            si = node.owner
            if node.head is head:
                plist_requeue(node, head)
            spin_unlock(subsys.swap_avail_lock)
            if get_swap_device_info(si):
                cluster_alloc_swap_entry(si, folio)
                put_swap_device(si)
                if folio.flags & PG_swapcache or folio.order:
                    return
            spin_lock(subsys.swap_avail_lock)
            # Lists may have changed while unlocked; if the next device fell
            # off, start over.
            if i + 1 < len(nodes) and plist_node_empty(nodes[i + 1]):
                restart = True
                break
    spin_unlock(subsys.swap_avail_lock)


def swap_sync_discard(subsys: SwapSubsystem) -> bool:
    """Under pressure, run pending discards synchronously."""
    for si in subsys.swap_active_head:
        if get_swap_device_info(si):
            ret = bool(si.flags & SWP_PAGE_DISCARD) and swap_do_scheduled_discard(si)
            put_swap_device(si)
            if ret:
                return True
    return False


def folio_alloc_swap(subsys: SwapSubsystem, folio: Folio) -> bool:
    """Allocate swap slots for a locked folio and add it to the swap cache.

    Returns False when no slots could be had; a large folio's caller then
    splits it and retries with order-0 folios.
    """
    order = folio.order
    if order > PMD_ORDER:
        WARN("folio_alloc_swap: folio larger than a cluster")
        return False
    if folio.flags & PG_swapcache:
        WARN("folio_alloc_swap: folio already in the swap cache")
    while True:
        pcp = subsys.percpu_swap_cluster.this_cpu_ptr()
        local_lock(pcp.lock)
        if subsys.percpu_per_device or not swap_alloc_fast(subsys, folio, pcp):
            swap_alloc_slow(subsys, folio)
        local_unlock(pcp.lock)
        if folio.flags & PG_swapcache:
            break
        # Order 0 must not fail while discards could free clusters.
        if order or not swap_sync_discard(subsys):
            subsys.stats.alloc_fail += 1
            return False
    if subsys.memcg and folio.memcg_id:
        mem_cgroup_try_charge_swap(subsys, folio)
    return True


def mem_cgroup_try_charge_swap(subsys: SwapSubsystem, folio: Folio) -> None:
    """Record the folio's memcg in the cluster's memcg table (phase IV)."""
    entry = folio.swap
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    offset = entry & SWP_OFFSET_MASK
    ci = swap_cluster_lock(si, offset)
    assert ci is not None
    __swap_cgroup_set(ci, offset % SWAPFILE_CLUSTER, 1 << folio.order, folio.memcg_id)
    swap_cluster_unlock(ci)


# -- swap counts ---------------------------------------------------------------------------
def swap_extend_table_alloc(si: SwapInfo, ci: SwapClusterInfo, ci_off: int, gfp: int) -> bool:
    """Attach an extend table for an overflowing count; False on failure.

    The lock was dropped to allocate, so the need is re-checked under it.
    """
    table = kzalloc(swap_extend_table_new, gfp, "swap_extend_table")
    if table is None:
        return False
    spin_lock(ci.lock)
    if (
        ci.table is None
        or swp_tb_get_count(__swap_table_get(ci, ci_off)) < SWP_TB_COUNT_MAX - 1
        or ci.extend_table is not None
    ):
        spin_unlock(ci.lock)
        kfree(table)
        return True
    ci.extend_table = table
    spin_unlock(ci.lock)
    return True


def swap_retry_table_alloc(subsys: SwapSubsystem, entry: int, gfp: int) -> bool:
    """Retry the extend table allocation after a failed dup, sleeping if allowed.

    The seed adds no re-lookup here: the entry is in use, so its cluster is
    assumed alive.
    """
    si = get_swap_device(subsys, entry)
    if si is None:
        return True
    offset = entry & SWP_OFFSET_MASK
    ci = __swap_offset_to_cluster(si, offset)
    assert ci is not None
    ret = swap_extend_table_alloc(si, ci, offset % SWAPFILE_CLUSTER, gfp)
    put_swap_device(si)
    return ret


def swap_extend_table_try_free(ci: SwapClusterInfo) -> None:
    table = ci.extend_table
    if table is not None and not any(table):
        kfree(table)
        ci.extend_table = None


def __swap_cluster_put_entry(ci: SwapClusterInfo, ci_off: int) -> None:
    """Drop one count of a slot without freeing it. Context: ci.lock."""
    lockdep_assert_held(ci.lock)
    swp_tb = __swap_table_get(ci, ci_off)
    count = swp_tb >> _COUNT_SHIFT
    if count <= 0 or not (swp_tb & 1 or (swp_tb & 3) == 2):
        WARN(f"__swap_cluster_put_entry: {ci!r} slot {ci_off} has no count")
        return
    if count == SWP_TB_COUNT_MAX:
        extend = ci.extend_table
        assert extend is not None
        count = extend[ci_off] - 1
        if count == SWP_TB_COUNT_MAX - 1:
            extend[ci_off] = 0
            __swap_table_set(ci, ci_off, __swp_tb_mk_count(swp_tb, count))
        else:
            extend[ci_off] = count
    else:
        count -= 1
        __swap_table_set(ci, ci_off, __swp_tb_mk_count(swp_tb, count))
    # The extend table is needed from COUNT_MAX - 1 up; below that, or right
    # after a racing dup attached one, it may go.
    if count in (SWP_TB_COUNT_MAX - 2, SWP_TB_COUNT_MAX - 1):
        swap_extend_table_try_free(ci)


def swap_put_entries_cluster(si: SwapInfo, offset: int, nr: int, reclaim_cache: bool) -> None:
    """Drop one count from each slot of a range inside one cluster; free the
    slots that reach zero without a cached folio, in batches."""
    end = offset + nr
    need_reclaim = False
    ci = swap_cluster_lock(si, offset)
    assert ci is not None, "slots with a count pin their cluster"
    ci_off = offset % SWAPFILE_CLUSTER
    ci_end = ci_off + nr
    batch = -1
    for off in range(ci_off, ci_end):
        swp_tb = __swap_table_get(ci, off)
        if swp_tb_get_count(swp_tb) == 1:
            if not swp_tb_is_folio(swp_tb):
                if batch == -1:
                    batch = off
                continue
            need_reclaim = True
        # A cached slot or one with more counts can't be freed here; the
        # pending batch before it can.
        __swap_cluster_put_entry(ci, off)
        if batch != -1:
            __swap_cluster_free_entries(si, ci, batch, off - batch)
            batch = -1
    if batch != -1:
        __swap_cluster_free_entries(si, ci, batch, ci_end - batch)
    swap_cluster_unlock(ci)
    if not need_reclaim or not reclaim_cache:
        return
    while offset < end:
        nr_reclaimed = __try_to_reclaim_swap(si, offset, TTRS_UNMAPPED | TTRS_FULL)
        offset += 1
        if nr_reclaimed:
            step = abs(nr_reclaimed)
            offset = (offset + step - 1) // step * step


def __swap_cluster_dup_entry(ci: SwapClusterInfo, ci_off: int) -> str | None:
    """Add one count to a slot: None, or "ENOMEM" when an extend table is
    needed, "EINVAL" for a bad slot, "ENOENT" for a free one."""
    lockdep_assert_held(ci.lock)
    swp_tb = __swap_table_get(ci, ci_off)
    if swp_tb_is_bad(swp_tb):
        WARN(f"__swap_cluster_dup_entry: {ci!r} slot {ci_off} is bad")
        return "EINVAL"
    count = swp_tb >> _COUNT_SHIFT
    if not count and not swp_tb_is_folio(swp_tb):
        WARN(f"__swap_cluster_dup_entry: {ci!r} slot {ci_off} is free")
        return "ENOENT"
    if count < SWP_TB_COUNT_MAX - 1:
        __swap_table_set(ci, ci_off, __swp_tb_mk_count(swp_tb, count + 1))
    elif count == SWP_TB_COUNT_MAX - 1:
        extend = ci.extend_table
        if extend is None:
            return "ENOMEM"
        extend[ci_off] = SWP_TB_COUNT_MAX
        __swap_table_set(ci, ci_off, __swp_tb_mk_count(swp_tb, SWP_TB_COUNT_MAX))
    else:
        extend = ci.extend_table
        assert extend is not None
        if extend[ci_off] >= 0xFFFFFFFF:
            WARN(f"{ci!r} slot {ci_off}: extended count overflows")
        extend[ci_off] += 1
    return None


def swap_dup_entries_cluster(si: SwapInfo, offset: int, nr: int) -> str | None:
    """Add one count to each slot of a range in one cluster (all or none)."""
    ci_start = offset % SWAPFILE_CLUSTER
    ci_end = ci_start + nr
    ci = swap_cluster_lock(si, offset)
    assert ci is not None, "slots being duplicated pin their cluster"
    ci_off = ci_start
    while ci_off < ci_end:
        err = __swap_cluster_dup_entry(ci, ci_off)
        if err is None:
            ci_off += 1
            continue
        if err == "ENOMEM":
            spin_unlock(ci.lock)
            ok = swap_extend_table_alloc(si, ci, ci_off, GFP_ATOMIC)
            spin_lock(ci.lock)
            if ok:
                # restart: the slot again, with the table or without the
                # need for it (its count dropped while the lock was off).
                continue
        for undo in range(ci_off - 1, ci_start - 1, -1):
            __swap_cluster_put_entry(ci, undo)
        swap_extend_table_try_free(ci)
        swap_cluster_unlock(ci)
        return err
    swap_cluster_unlock(ci)
    return None


def folio_dup_swap(subsys: SwapSubsystem, folio: Folio, page: int | None = None) -> str | None:
    """Add a count to the folio's slots (or one page's), typically as the
    folio is unmapped and swap entries replace it. Context: folio locked, in
    the swap cache."""
    if not folio.flags & PG_locked or not folio.flags & PG_swapcache:
        WARN("folio_dup_swap: folio must be locked and in the swap cache")
    entry = folio.swap
    nr_pages = 1 << folio.order
    if page is not None:
        entry += page
        nr_pages = 1
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    return swap_dup_entries_cluster(si, entry & SWP_OFFSET_MASK, nr_pages)


def folio_put_swap(subsys: SwapSubsystem, folio: Folio, page: int | None = None) -> None:
    """Drop a count from the folio's slots; the cache still pins them."""
    if not folio.flags & PG_locked or not folio.flags & PG_swapcache:
        WARN("folio_put_swap: folio must be locked and in the swap cache")
    entry = folio.swap
    nr_pages = 1 << folio.order
    if page is not None:
        entry += page
        nr_pages = 1
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    swap_put_entries_cluster(si, entry & SWP_OFFSET_MASK, nr_pages, False)


def get_swap_device(subsys: SwapSubsystem, entry: int) -> SwapInfo | None:
    """Pin the device of `entry` against swapoff; None if it is not valid."""
    if not entry:
        return None
    type_ = entry >> SWP_TYPE_SHIFT
    if type_ >= len(subsys.swap_info):
        return None
    si = subsys.swap_info[type_]
    if si is None or not get_swap_device_info(si):
        return None
    if entry & SWP_OFFSET_MASK >= si.max:
        put_swap_device(si)
        return None
    return si


def __swap_cluster_free_entries(
    si: SwapInfo, ci: SwapClusterInfo, ci_start: int, nr_pages: int
) -> None:
    """Free slots whose last reference just went; empty clusters are freed.
    Context: ci.lock."""
    if _debug_vm and ci.count < nr_pages:
        WARN(f"__swap_cluster_free_entries: {ci!r} frees {nr_pages} of {ci.count}")
    ci.count -= nr_pages
    table = ci.table
    assert table is not None
    memcg_table = ci.memcg_table
    for off in range(ci_start, ci_start + nr_pages):
        # Freed after the last count went, or after the cache let go.
        if _debug_vm and (not table[off] & 1 or table[off] >> _COUNT_SHIFT > 1):
            WARN(f"__swap_cluster_free_entries: {ci!r} slot {off} = {table[off]:#x}")
        table[off] = SWP_TB_NULL
        if memcg_table is not None and memcg_table[off]:
            __swap_cgroup_clear(ci, off, 1)
    swap_range_free(si, ci.index * SWAPFILE_CLUSTER + ci_start, nr_pages)
    if _debug_vm:
        swap_cluster_assert_empty(ci, ci_start, nr_pages, False)
    if not ci.count:
        free_cluster(si, ci)
    else:
        partial_free_cluster(si, ci)


def swap_entry_swapped(si: SwapInfo, entry: int) -> bool:
    offset = entry & SWP_OFFSET_MASK
    ci = swap_cluster_lock(si, offset)
    if ci is None:
        return False
    swp_tb = __swap_table_get(ci, offset % SWAPFILE_CLUSTER)
    swap_cluster_unlock(ci)
    return swp_tb_get_count(swp_tb) > 0


def swp_swapcount(subsys: SwapSubsystem, entry: int) -> int:
    """The exact number of references (extend table included)."""
    si = get_swap_device(subsys, entry)
    if si is None:
        return 0
    offset = entry & SWP_OFFSET_MASK
    ci = swap_cluster_lock(si, offset)
    count = 0
    if ci is not None:
        ci_off = offset % SWAPFILE_CLUSTER
        count = swp_tb_get_count(__swap_table_get(ci, ci_off))
        if count == SWP_TB_COUNT_MAX:
            assert ci.extend_table is not None
            count = ci.extend_table[ci_off]
        swap_cluster_unlock(ci)
    put_swap_device(si)
    return max(count, 0)


def folio_maybe_swapped(subsys: SwapSubsystem, folio: Folio) -> bool:
    """Does any of the folio's slots still have a count? May be a false
    positive. The seed adds no re-lookup: the cached folio pins the cluster."""
    entry = folio.swap
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    ci = __swap_offset_to_cluster(si, entry & SWP_OFFSET_MASK)
    assert ci is not None
    ci_off = (entry & SWP_OFFSET_MASK) % SWAPFILE_CLUSTER
    rcu_read_lock()
    try:
        for off in range(ci_off, ci_off + (1 << folio.order)):
            if __swap_table_get(ci, off) >> _COUNT_SHIFT:
                return True
        return False
    finally:
        rcu_read_unlock()


def folio_swapcache_freeable(folio: Folio) -> bool:
    return bool(folio.flags & PG_swapcache) and not folio.flags & PG_writeback


def folio_free_swap(subsys: SwapSubsystem, folio: Folio) -> bool:
    """Free the folio's swap slots if no page table references them any more."""
    if not folio_swapcache_freeable(folio):
        return False
    if folio_maybe_swapped(subsys, folio):
        return False
    swap_state.swap_cache_del_folio(subsys, folio)
    folio.flags |= PG_dirty
    return True


def swap_put_entries_direct(subsys: SwapSubsystem, entry: int, nr: int) -> None:
    """Drop one reference from each entry of a range (zap, munmap, exit) and
    reclaim cache that nothing maps any more."""
    si = get_swap_device(subsys, entry)
    if si is None:
        WARN(f"swap_put_entries_direct: bad entry {entry:#x}")
        return
    offset = entry & SWP_OFFSET_MASK
    end = offset + nr
    if end > si.max:
        WARN("swap_put_entries_direct: range past the device end")
        put_swap_device(si)
        return
    while offset < end:
        cluster_end = min((offset // SWAPFILE_CLUSTER + 1) * SWAPFILE_CLUSTER, end)
        swap_put_entries_cluster(si, offset, cluster_end - offset, True)
        offset = cluster_end
    put_swap_device(si)


def swap_dup_entry_direct(subsys: SwapSubsystem, entry: int) -> str | None:
    """Add a reference to an entry that already has one (fork). None, or
    "ENOMEM" when an extend table is needed and could not be allocated."""
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    if si is None:
        return "EINVAL"
    return swap_dup_entries_cluster(si, entry & SWP_OFFSET_MASK, 1)


# CONFIG_DEBUG_VM: extra emptiness checks on every free (tests turn it on).
_debug_vm = False


def set_debug_vm(on: bool) -> None:
    """Select the debug build: VM_WARN checks and asserts run, in this
    module and in every function with a lean twin (kernel/lean.py)."""
    global _debug_vm
    _debug_vm = on
    set_debug_build(on)


compile_lean(globals())
