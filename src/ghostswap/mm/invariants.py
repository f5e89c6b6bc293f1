"""Consistency checks over the whole swap model, run between operations.

What must hold whenever no operation is in flight (a quiescent point):

- a cluster is on a list exactly when its flag is not NONE, and on the list
  its flag names (``nonfull``/``frag`` of its own order);
- a static cluster's table is gone exactly when it is FREE;
- the free list's lazy run (clusters not made yet) lies inside the device,
  and each cluster of it that was made since is FREE;
- every cluster's count equals its non-NULL slots, counts beyond the inline
  maximum sit in its extend table;
- ``inuse_pages`` equals the used slots, ``nr_swap_pages`` the free ones;
- slot 0 is BAD and never handed out;
- a ghost pool holds cluster 0 (off-list) plus exactly the clusters on its
  lists, each under its own index, none DEAD, none empty;
- every cached slot points at a live folio that is in the swap cache at
  that entry, and ``NR_SWAPCACHE`` counts those slots;
- a device is on the available list exactly when it can still allocate.
"""

from __future__ import annotations

from ghostswap.kernel.bug import InvariantViolation
from ghostswap.kernel.list import ListHead
from ghostswap.kernel.slab import is_poisoned
from ghostswap.mm.folio import PG_swapcache, mem_map
from ghostswap.mm.swap import (
    CLUSTER_FLAG_DEAD,
    CLUSTER_FLAG_DISCARD,
    CLUSTER_FLAG_FRAG,
    CLUSTER_FLAG_FREE,
    CLUSTER_FLAG_FULL,
    CLUSTER_FLAG_NONE,
    CLUSTER_FLAG_NONFULL,
    SWAP_NR_ORDERS,
    SWAPFILE_CLUSTER,
    SWP_GHOST,
    SWP_WRITEOK,
    SwapClusterInfo,
    SwapInfo,
    SwapSubsystem,
    swp_entry,
)
from ghostswap.mm.swap_table import (
    SWP_TB_COUNT_MAX,
    SWP_TB_COUNT_SHIFT,
    swp_tb_is_bad,
    swp_tb_is_folio,
    swp_tb_to_pfn,
)

__all__ = ["check_device", "check_subsystem"]


def _fail(si: SwapInfo, message: str) -> InvariantViolation:
    return InvariantViolation(f"swap{si.type} ({si.kind}): {message}")


def _lists(si: SwapInfo) -> list[tuple[ListHead, int, int | None]]:
    """(list head, flag of its members, order or None)."""
    heads: list[tuple[ListHead, int, int | None]] = [
        (si.free_clusters, CLUSTER_FLAG_FREE, None),
        (si.full_clusters, CLUSTER_FLAG_FULL, None),
        (si.discard_clusters, CLUSTER_FLAG_DISCARD, None),
    ]
    for order in range(SWAP_NR_ORDERS):
        heads.append((si.nonfull_clusters[order], CLUSTER_FLAG_NONFULL, order))
        heads.append((si.frag_clusters[order], CLUSTER_FLAG_FRAG, order))
    return heads


def _listed(si: SwapInfo, head: ListHead, clusters: list[SwapClusterInfo]) -> list[SwapClusterInfo]:
    """The members of `head` that exist: its explicit members and those of
    its lazy run that were made (walking the whole run would make them all)."""
    run = head.lazy
    if run is None:
        return list(head)
    if not 0 <= run.lo < run.hi <= (len(si.cluster_info) if si.cluster_info is not None else 0):
        raise _fail(si, f"{head!r} has a lazy run [{run.lo}, {run.hi}) outside the device")
    if any(not run.lo < i < run.hi for i in run.taken):
        raise _fail(si, f"{head!r}: a cluster taken from the lazy run lies outside it")
    return [ci for ci in clusters if run.holds(ci.index)] + list(head.explicit())


def _check_lists(si: SwapInfo, clusters: list[SwapClusterInfo]) -> None:
    on_lists: set[int] = set()
    for head, flag, order in _lists(si):
        for ci in _listed(si, head, clusters):
            if is_poisoned(ci):
                raise _fail(si, f"a freed cluster is on {head!r}")
            if ci.list is not head:
                raise _fail(si, f"{ci!r} is on {head!r} but records {ci.list!r}")
            if ci.flags != flag:
                raise _fail(si, f"{ci!r} on {head!r} has the wrong flag")
            if order is not None and ci.order != order:
                raise _fail(si, f"{ci!r} on {head!r} has order {ci.order}")
            if id(ci) in on_lists:
                raise _fail(si, f"{ci!r} is on two lists")
            on_lists.add(id(ci))
    for ci in clusters:
        listed = id(ci) in on_lists
        if ci.flags == CLUSTER_FLAG_DEAD:
            raise _fail(si, f"{ci!r} is DEAD but still reachable")
        if listed != (ci.flags != CLUSTER_FLAG_NONE) and ci.flags != CLUSTER_FLAG_DISCARD:
            raise _fail(si, f"{ci!r}: on a list={listed} but flag {ci.flags}")
    if len(on_lists) != sum(1 for ci in clusters if ci.list is not None):
        raise _fail(si, "a listed cluster does not belong to the device")


def _check_cluster(si: SwapInfo, ci: SwapClusterInfo, subsys: SwapSubsystem) -> tuple[int, int]:
    """Check one cluster; return (used slots, bad slots)."""
    table = ci.table
    ghost = si.flags & SWP_GHOST
    if table is None:
        if ci.count:
            raise _fail(si, f"{ci!r} has a count but no table")
        if not ghost and ci.flags not in (CLUSTER_FLAG_FREE,):
            raise _fail(si, f"{ci!r} has no table but is not FREE")
        if ci.extend_table is not None or ci.memcg_table is not None:
            raise _fail(si, f"{ci!r} keeps side tables without a table")
        return 0, 0
    if not ghost and ci.flags == CLUSTER_FLAG_FREE:
        raise _fail(si, f"{ci!r} is FREE but still has its table")
    if subsys.memcg and ci.memcg_table is None:
        raise _fail(si, f"{ci!r} has a table but no memcg table")
    used = bad = 0
    extend = ci.extend_table
    base = ci.index * SWAPFILE_CLUSTER
    for off, swp_tb in enumerate(table):
        if not swp_tb:
            if ci.memcg_table is not None and ci.memcg_table[off]:
                raise _fail(si, f"{ci!r} slot {off} is free but has a memcg id")
            continue
        if swp_tb_is_bad(swp_tb):
            bad += 1
            continue
        used += 1
        count = swp_tb >> SWP_TB_COUNT_SHIFT
        extended = extend[off] if extend is not None else 0
        if count == SWP_TB_COUNT_MAX:
            if extended < SWP_TB_COUNT_MAX:
                raise _fail(si, f"{ci!r} slot {off}: count overflow without an extended count")
        elif extended:
            raise _fail(si, f"{ci!r} slot {off}: extended count {extended} with inline {count}")
        if swp_tb_is_folio(swp_tb):
            _check_cached_slot(si, base + off, swp_tb)
        elif not swp_tb & 1:
            raise _fail(si, f"{ci!r} slot {off} holds an unknown entry {swp_tb:#x}")
        elif not count:
            raise _fail(si, f"{ci!r} slot {off} is swapped out with no count")
    if used + bad != ci.count:
        raise _fail(si, f"{ci!r}: count {ci.count} but {used} used and {bad} bad slots")
    return used, bad


def _check_cached_slot(si: SwapInfo, offset: int, swp_tb: int) -> None:
    folio = mem_map.get(swp_tb_to_pfn(swp_tb))
    if folio is None:
        raise _fail(si, f"offset {offset} caches a folio that no longer exists")
    if not folio.flags & PG_swapcache:
        raise _fail(si, f"offset {offset} caches {folio!r}, which is not in the swap cache")
    entry = swp_entry(si.type, offset)
    if not folio.swap <= entry < folio.swap + (1 << folio.order):
        raise _fail(si, f"offset {offset} caches {folio!r}, which covers other entries")


def _check_ghost_pool(si: SwapInfo) -> list[SwapClusterInfo]:
    pool = si.cluster_info_pool
    if pool is None:
        raise _fail(si, "ghost device without a cluster pool")
    clusters = []
    nr_clusters = -(-si.max // SWAPFILE_CLUSTER)
    for index, ci in pool.items():
        if is_poisoned(ci):
            raise _fail(si, f"pool index {index} holds a freed cluster")
        if ci.index != index:
            raise _fail(si, f"pool index {index} holds {ci!r}")
        if index >= max(nr_clusters, 1):
            raise _fail(si, f"pool index {index} is past the device's {nr_clusters} clusters")
        if index and (ci.count == 0 or ci.flags == CLUSTER_FLAG_NONE):
            raise _fail(si, f"{ci!r} stays in the pool while empty or off-list")
        clusters.append(ci)
    if not clusters or clusters[0].index != 0 or clusters[0].list is not None:
        raise _fail(si, "cluster 0 must stay in the pool, off every list")
    if len(si.free_clusters):
        raise _fail(si, "a ghost device never puts clusters on its free list")
    return clusters


def _static_clusters(si: SwapInfo) -> list[SwapClusterInfo]:
    return si.cluster_info.made() if si.cluster_info is not None else []


def check_device(si: SwapInfo) -> None:
    """Raise InvariantViolation if the device's state is inconsistent."""
    subsys = si.subsys
    clusters = _check_ghost_pool(si) if si.flags & SWP_GHOST else _static_clusters(si)
    _check_lists(si, clusters)
    used = 0
    for ci in clusters:
        u, _ = _check_cluster(si, ci, subsys)
        used += u
    if used != si.inuse_pages:
        raise _fail(si, f"inuse_pages {si.inuse_pages} but {used} slots in use")
    first = clusters[0].table if clusters else None
    if first is None or not swp_tb_is_bad(first[0]):
        raise _fail(si, "slot 0 (the header) is not BAD")
    writeable = si.flags & SWP_WRITEOK
    on_avail = si.avail_list.head is subsys.swap_avail_head
    if writeable and si.inuse_pages < si.pages and not on_avail:
        raise _fail(si, "has free slots but is not on the available list")
    if on_avail and (not writeable or si.inuse_pages >= si.pages):
        raise _fail(si, "is on the available list but cannot allocate")


def check_subsystem(subsys: SwapSubsystem) -> None:
    """Check every device, the global page counts and the swap cache size."""
    inuse = 0
    total = 0
    cached = 0
    for si in subsys.devices():
        check_device(si)
        inuse += si.inuse_pages
        total += si.pages
        clusters = (
            [ci for _, ci in si.cluster_info_pool.items()]
            if si.cluster_info_pool is not None
            else si.cluster_info.made()
            if si.cluster_info is not None
            else []
        )
        for ci in clusters:
            if ci.table is not None:
                cached += sum(1 for tb in ci.table if (tb & 3) == 2)
    if total != subsys.total_swap_pages:
        raise InvariantViolation(f"total_swap_pages {subsys.total_swap_pages}, devices {total}")
    if subsys.nr_swap_pages != total - inuse:
        raise InvariantViolation(
            f"nr_swap_pages {subsys.nr_swap_pages} but {total - inuse} slots are free"
        )
    if cached != subsys.nr_swapcache_pages:
        raise InvariantViolation(
            f"NR_SWAPCACHE {subsys.nr_swapcache_pages} but {cached} cached slots"
        )
