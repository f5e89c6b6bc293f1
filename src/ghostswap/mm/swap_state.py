"""The swap cache on the swap table (mm/swap_state.c).

Since swap table phase I the swap cache is no XArray: a cached folio is the
PFN entry in its slots' table, a swapped-out slot keeps a shadow there.
Phase II makes the cache the synchronisation point of every swap-in, and
the seed wraps each lockless lookup of a ghost cluster in an RCU read
section and re-locks the cluster by offset wherever the lock was dropped.

Readahead and the swap-in fault path live with the VM (``mm/memory.py``);
this module provides what they build on.
"""

from __future__ import annotations

from ghostswap.kernel.bug import WARN
from ghostswap.kernel.lean import compile_lean
from ghostswap.kernel.rcu import rcu_read_lock, rcu_read_unlock
from ghostswap.kernel.spinlock import lockdep_assert_held, spin_lock, spin_unlock
from ghostswap.mm import swapfile
from ghostswap.mm.folio import (
    Folio,
    PG_locked,
    PG_swapbacked,
    PG_swapcache,
    mem_map,
)
from ghostswap.mm.swap import (
    SWAPFILE_CLUSTER,
    SWP_OFFSET_MASK,
    SWP_TYPE_SHIFT,
    SwapClusterInfo,
    SwapInfo,
    SwapSubsystem,
    __swap_cluster_lock,
    __swap_entry_to_cluster,
    swap_cluster_lock,
    swap_cluster_unlock,
)
from ghostswap.mm.swap_table import (
    SWAP_CACHE_PFN_MARK_BITS,
    SWP_TB_COUNT_SHIFT,
    SWP_TB_FLAGS_MASK,
    SWP_TB_FLAGS_SHIFT,
    SWP_TB_PFN_MARK,
    SWP_TB_SHADOW_MARK,
    SWP_TB_ZERO_FLAG,
    __swap_cgroup_get,
    __swap_table_get,
    __swap_table_set,
    pfn_to_swp_tb,
    swap_table_get,
    swap_table_get_unchecked,
    swp_tb_is_folio,
    swp_tb_is_shadow,
    swp_tb_to_pfn,
    swp_tb_to_shadow,
)

__all__ = [
    "folio_matches_swap_entry",
    "swap_cache_alloc_folio",
    "swap_cache_del_folio",
    "swap_cache_get_folio",
    "swap_cache_get_shadow",
    "swap_cache_has_folio",
]

_COUNT_SHIFT = SWP_TB_COUNT_SHIFT


def _lookup(subsys: SwapSubsystem, entry: int) -> int:
    """Resolve the entry's cluster and read its slot, under RCU (the seed)."""
    reverts = subsys.reverts
    table_get = swap_table_get_unchecked if reverts.no_null_cluster_check else swap_table_get
    if reverts.no_rcu_lookup:
        ci = __swap_entry_to_cluster(subsys, entry)
        return table_get(ci, (entry & SWP_OFFSET_MASK) % SWAPFILE_CLUSTER)
    rcu_read_lock()
    ci = __swap_entry_to_cluster(subsys, entry)
    swp_tb = table_get(ci, (entry & SWP_OFFSET_MASK) % SWAPFILE_CLUSTER)
    rcu_read_unlock()
    return swp_tb


def swap_cache_get_folio(subsys: SwapSubsystem, entry: int) -> Folio | None:
    """The folio cached for `entry`, or None. The caller must lock it and
    check it still matches the entry (``folio_matches_swap_entry``).

    The lookup is lockless: the folio may be freed between reading its PFN
    and taking a reference (``folio_try_get`` fails), and then the slot is
    read again, as the kernel's loop does.
    """
    stale = -1
    while True:
        swp_tb = _lookup(subsys, entry)
        if (swp_tb & 3) != 2:
            return None
        folio = mem_map.get(swp_tb_to_pfn(swp_tb))
        if folio is not None:  # folio_try_get()
            return folio
        if swp_tb == stale:
            WARN(f"swap_cache_get_folio: {entry:#x} still caches a freed folio")
            return None
        stale = swp_tb


def swap_cache_has_folio(subsys: SwapSubsystem, entry: int) -> bool:
    return swp_tb_is_folio(_lookup(subsys, entry))


def swap_cache_get_shadow(subsys: SwapSubsystem, entry: int) -> int | None:
    """The workingset shadow left when the slot's folio was reclaimed."""
    swp_tb = _lookup(subsys, entry)
    if swp_tb_is_shadow(swp_tb):
        return swp_tb_to_shadow(swp_tb)
    return None


def folio_matches_swap_entry(folio: Folio, entry: int) -> bool:
    """Is the locked folio still the swap cache folio covering `entry`?"""
    if not folio.flags & PG_swapcache:
        return False
    nr_pages = 1 << folio.order
    return folio.swap == entry - entry % nr_pages


def __swap_cache_add_folio(si: SwapInfo, ci: SwapClusterInfo, folio: Folio, entry: int) -> None:
    """Put a locked folio into the swap cache at `entry`: its slots keep
    their flags and take its PFN. Context: ci.lock held.

    (The kernel finds the device through ``swap_info[]``; the model passes
    it. The kernel's ``__swap_cache_do_add_folio`` split only delays the
    statistics on the swap-in path; here both paths count at once.)
    """
    lockdep_assert_held(ci.lock)
    ci_off = (entry & SWP_OFFSET_MASK) % SWAPFILE_CLUSTER
    nr_pages = 1 << folio.order
    if folio.flags & PG_swapcache:
        WARN(f"__swap_cache_add_folio: {folio!r} already cached")
    table = ci.table
    assert table is not None
    pfn_tb = (folio.pfn << SWAP_CACHE_PFN_MARK_BITS) | SWP_TB_PFN_MARK  # pfn_to_swp_tb()
    for off in range(ci_off, ci_off + nr_pages):
        old_tb = table[off]
        if swapfile._debug_vm and (old_tb & 3) == 2:
            WARN(f"__swap_cache_add_folio: {ci!r} slot {off} already cached")
        table[off] = pfn_tb | (old_tb & SWP_TB_FLAGS_MASK)
    folio.flags |= PG_swapcache
    folio.swap = entry
    si.subsys.nr_swapcache_pages += nr_pages


def __swap_cache_del_folio(
    si: SwapInfo, ci: SwapClusterInfo, folio: Folio, entry: int, shadow: int | None
) -> None:
    """Take a folio out of the swap cache, leaving `shadow` (None: an empty
    shadow) in its slots; slots with no count left are freed.
    Context: folio locked, ci.lock held."""
    lockdep_assert_held(ci.lock)
    ci_start = (entry & SWP_OFFSET_MASK) % SWAPFILE_CLUSTER
    nr_pages = 1 << folio.order
    ci_end = ci_start + nr_pages
    folio_swapped = False
    need_free = False
    table = ci.table
    assert table is not None
    shadow_tb = (shadow or 0) | SWP_TB_SHADOW_MARK  # shadow_to_swp_tb()
    for off in range(ci_start, ci_end):
        old_tb = table[off]
        if swapfile._debug_vm and old_tb & ~SWP_TB_FLAGS_MASK != pfn_to_swp_tb(folio.pfn, 0):
            WARN(f"__swap_cache_del_folio: {ci!r} slot {off} does not hold {folio!r}")
        if old_tb >> _COUNT_SHIFT:
            folio_swapped = True
        else:
            need_free = True
        table[off] = shadow_tb | (old_tb & SWP_TB_FLAGS_MASK)
    folio.swap = 0
    folio.flags &= ~PG_swapcache
    si.subsys.nr_swapcache_pages -= nr_pages
    if not folio_swapped:
        swapfile.__swap_cluster_free_entries(si, ci, ci_start, nr_pages)
    elif need_free:
        for off in range(ci_start, ci_end):
            if not table[off] >> _COUNT_SHIFT:
                swapfile.__swap_cluster_free_entries(si, ci, off, 1)


def swap_cache_del_folio(subsys: SwapSubsystem, folio: Folio) -> None:
    """``__swap_cache_del_folio`` with the cluster lock and refcount handled.
    The folio must be clean or have no count left, or data is lost.
    Context: folio locked and in the swap cache (which pins its cluster)."""
    entry = folio.swap
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    ci = __swap_cluster_lock(si, entry & SWP_OFFSET_MASK)  # swap_cluster_get_and_lock()
    assert ci is not None, "a swap cache folio pins its cluster"
    __swap_cache_del_folio(si, ci, folio, entry, None)
    spin_unlock(ci.lock)


def __swap_cache_replace_folio(ci: SwapClusterInfo, old: Folio, new: Folio) -> None:
    """Point the slots `new` covers at `new` (migration, split)."""
    entry = new.swap
    ci_off = (entry & SWP_OFFSET_MASK) % SWAPFILE_CLUSTER
    pfn = new.pfn
    for off in range(ci_off, ci_off + (1 << new.order)):
        old_tb = __swap_table_get(ci, off)
        if (old_tb & 3) != 2 or swp_tb_to_pfn(old_tb) != old.pfn:
            WARN(f"__swap_cache_replace_folio: slot {off} does not hold the old folio")
        __swap_table_set(ci, off, pfn_to_swp_tb(pfn, old_tb >> SWP_TB_FLAGS_SHIFT))


def __swap_cache_check_batch(
    ci: SwapClusterInfo, entry: int, ci_off: int, ci_targ: int, nr_pages: int
) -> tuple[str | None, int | None]:
    """Can [ci_off, ci_off + nr_pages) take a new swap-in folio?

    Every slot must be swapped out (count > 0), uncached, of one zero state
    and one memcg. Returns (errno or None, the target slot's shadow).
    """
    table = ci.table
    if table is None:
        return "ENOENT", None
    targ_tb = __swap_table_get(ci, ci_targ)
    if (targ_tb & 3) == 2:
        return "EEXIST", None
    if not targ_tb >> _COUNT_SHIFT:
        return "ENOENT", None
    shadow = swp_tb_to_shadow(targ_tb) if targ_tb & 1 else None
    if nr_pages == 1:
        return None, shadow
    zero = targ_tb & SWP_TB_ZERO_FLAG
    memcg_id = __swap_cgroup_get(ci, ci_targ)
    for off in range(ci_off, ci_off + nr_pages):
        swp_tb = table[off]
        if (
            (swp_tb & 3) == 2
            or not swp_tb >> _COUNT_SHIFT
            or swp_tb & SWP_TB_ZERO_FLAG != zero
            or __swap_cgroup_get(ci, off) != memcg_id
        ):
            return "EBUSY", shadow
    return None, shadow


def __swap_cache_alloc(subsys: SwapSubsystem, targ_entry: int, gfp: int, order: int) -> Folio | str:
    """Allocate a folio of `order` for a swapped-out range and add it to the
    swap cache, or return why not: "ENOMEM"/"EBUSY" (try a smaller order;
    "EBUSY" also when zswap holds part of a large range), "ENOENT"/"EEXIST"
    (slot freed or already cached).

    The cluster lock is dropped to allocate the folio; the seed re-locks the
    cluster by offset each time, since a ghost cluster may be gone.
    """
    nr_pages = 1 << order
    entry = targ_entry - targ_entry % nr_pages
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    offset = entry & SWP_OFFSET_MASK
    ci_targ = (targ_entry & SWP_OFFSET_MASK) % SWAPFILE_CLUSTER
    ci_off = ci_targ - ci_targ % nr_pages

    stale = None
    if subsys.reverts.no_cache_alloc_relookup:
        stale = __swap_entry_to_cluster(subsys, entry)
    no_null_check = subsys.reverts.no_null_cluster_check
    ci = _relock(si, offset, stale)
    if ci is None and not no_null_check:
        return "ENOENT"
    err, shadow = __swap_cache_check_batch(ci, entry, ci_off, ci_targ, nr_pages)  # type: ignore[arg-type]
    swap_cluster_unlock(ci)  # type: ignore[arg-type]
    if err:
        return err

    memcg_id = 0
    folio = subsys.hooks.swapin_folio_alloc(order, gfp, memcg_id)
    if folio is None:
        return "ENOMEM"

    ci = _relock(si, offset, stale)
    err = "ENOENT"
    shadow_check = None
    if ci is not None or no_null_check:
        err, shadow_check = __swap_cache_check_batch(ci, entry, ci_off, ci_targ, nr_pages)  # type: ignore[arg-type]
    if err or shadow_check != shadow:
        if ci is not None:
            swap_cluster_unlock(ci)
        subsys.hooks.swapin_folio_free(folio)
        # A changed shadow means the slot was reused: the caller retries.
        return err or "EAGAIN"
    assert ci is not None
    folio.memcg_id = __swap_cgroup_get(ci, ci_targ)
    folio.flags |= PG_locked | PG_swapbacked
    __swap_cache_add_folio(si, ci, folio, entry)
    swap_cluster_unlock(ci)

    # In the swap cache the range is pinned: zswap can neither store nor
    # write back a slot of it now, so this answer is stable.
    zswap_is_present = subsys.hooks.zswap_is_present
    if order and zswap_is_present is not None and zswap_is_present(entry, nr_pages):
        _delete_new_folio(si, ci, folio, entry, shadow)
        return "EBUSY"
    if not subsys.hooks.memcg_charge_swapin(folio, folio.memcg_id, gfp):
        _delete_new_folio(si, ci, folio, entry, shadow)
        subsys.mthp.count(order, "swpin_fallback_charge")
        return "ENOMEM"
    refault = subsys.hooks.workingset_refault
    if shadow and refault is not None:
        refault(folio, shadow)
    return folio


def _delete_new_folio(
    si: SwapInfo, ci: SwapClusterInfo, folio: Folio, entry: int, shadow: int | None
) -> None:
    """``__swap_cache_alloc``'s delete_folio: undo the insert, restoring the
    shadow, and put the folio."""
    # The folio pins the cluster (the seed's assumption), so the old pointer
    # is used without a re-lookup.
    spin_lock(ci.lock)
    __swap_cache_del_folio(si, ci, folio, entry, shadow)
    spin_unlock(ci.lock)
    folio.flags &= ~PG_locked
    si.subsys.hooks.swapin_folio_free(folio)


def _relock(si: SwapInfo, offset: int, stale: SwapClusterInfo | None) -> SwapClusterInfo | None:
    if stale is not None:
        spin_lock(stale.lock)
        return stale
    return swap_cluster_lock(si, offset)


def swap_cache_alloc_folio(
    subsys: SwapSubsystem, targ_entry: int, gfp: int, orders: int = 1
) -> Folio | str:
    """Allocate a swap cache folio for a swapped-out slot, trying the largest
    order allowed by the `orders` bitmask first (order 0 always allowed).

    Returns the locked folio, not yet read, or the errno name of the last
    attempt ("EEXIST": another task cached it first).
    """
    orders |= 1
    order = orders.bit_length() - 1
    while True:
        result = __swap_cache_alloc(subsys, targ_entry, gfp, order)
        if isinstance(result, Folio):
            return result
        if result == "EAGAIN":
            continue
        if not order or result not in ("EBUSY", "ENOMEM"):
            return result
        subsys.mthp.count(order, "swpin_fallback")
        orders &= ~(1 << order)
        order = orders.bit_length() - 1


def swap_cluster_readahead_range(si: SwapInfo, offset: int, mask: int) -> range:
    """The aligned window ``swap_cluster_readahead`` reads around `offset`."""
    start = offset & ~mask
    end = offset | mask
    if not start:
        start = 1  # the first page is the swap header
    if end >= si.max:
        end = si.max - 1
    return range(start, end + 1)


compile_lean(globals())
