"""The swap cache on the swap table: add, look up, delete, swap-in."""

from __future__ import annotations

from ghostswap.kernel import gfp
from ghostswap.kernel.gfp import GFP_KERNEL, FailureInjection
from ghostswap.kernel.spinlock import spin_unlock
from ghostswap.mm import swapfile
from ghostswap.mm.folio import PG_locked, PG_swapcache
from ghostswap.mm.invariants import check_subsystem
from ghostswap.mm.swap import SWAPFILE_CLUSTER, SwapSubsystem, swap_cluster_lock, swp_offset
from ghostswap.mm.swap_state import (
    __swap_cache_del_folio,
    swap_cache_alloc_folio,
    swap_cache_get_folio,
    swap_cache_get_shadow,
    swap_cache_has_folio,
)
from ghostswap.mm.swap_table import __swap_table_set_zero, xa_mk_value
from ghostswap.mm.swapon import swapon
from tests.helpers import new_folio, swap_out

RAM = 4096


def test_lookup_of_a_cached_folio_and_its_shadow() -> None:
    subsys = SwapSubsystem(RAM)
    swapon(subsys, "ghost")
    folio = new_folio()
    assert swapfile.folio_alloc_swap(subsys, folio)
    entry = folio.swap
    assert swap_cache_get_folio(subsys, entry) is folio
    assert swap_cache_has_folio(subsys, entry)
    assert swapfile.folio_dup_swap(subsys, folio) is None
    si = subsys.swap_info[0]
    assert si is not None
    ci = swap_cluster_lock(si, swp_offset(entry))
    assert ci is not None
    shadow = xa_mk_value(0xABCDE)
    __swap_cache_del_folio(si, ci, folio, entry, shadow)
    spin_unlock(ci.lock)
    assert not folio.flags & PG_swapcache
    assert swap_cache_get_folio(subsys, entry) is None
    assert swap_cache_get_shadow(subsys, entry) == shadow


def test_lookup_on_a_missing_ghost_cluster_finds_nothing() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "ghost")
    entry = (si.type << 58) | (5 * SWAPFILE_CLUSTER + 3)
    assert swap_cache_get_folio(subsys, entry) is None
    assert swap_cache_get_shadow(subsys, entry) is None


def test_swapin_allocates_a_locked_cache_folio() -> None:
    subsys = SwapSubsystem(RAM)
    swapon(subsys, "partition", 4096)
    shadow = xa_mk_value(77)
    entry = swap_out(subsys, shadow=shadow)
    refaults: list[int] = []
    subsys.hooks.workingset_refault = lambda folio, s: refaults.append(s)
    folio = swap_cache_alloc_folio(subsys, entry, GFP_KERNEL)
    assert not isinstance(folio, str)
    assert folio.flags & PG_locked and folio.flags & PG_swapcache and folio.swap == entry
    assert refaults == [shadow]
    assert swap_cache_alloc_folio(subsys, entry, GFP_KERNEL) == "EEXIST"
    # Map it: the PTE's count moves to the folio, then the slot can go.
    swapfile.folio_put_swap(subsys, folio)
    assert swapfile.folio_free_swap(subsys, folio)
    assert swap_cache_alloc_folio(subsys, entry, GFP_KERNEL) == "ENOENT"
    check_subsystem(subsys)


def test_large_swapin_and_its_fallbacks() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 4096)
    entry = swap_out(subsys, order=4)
    folio = swap_cache_alloc_folio(subsys, entry + 5, GFP_KERNEL, orders=1 << 4)
    assert not isinstance(folio, str) and folio.order == 4 and folio.swap == entry
    swapfile.folio_put_swap(subsys, folio)
    assert swapfile.folio_free_swap(subsys, folio)

    # Mixed zero state in the range: the 16-page folio falls back to order 0.
    entry = swap_out(subsys, order=4)
    ci = swap_cluster_lock(si, swp_offset(entry) + 2)
    assert ci is not None
    __swap_table_set_zero(ci, (swp_offset(entry) + 2) % SWAPFILE_CLUSTER)
    spin_unlock(ci.lock)
    folio = swap_cache_alloc_folio(subsys, entry + 5, GFP_KERNEL, orders=1 << 4)
    assert not isinstance(folio, str) and folio.order == 0 and folio.swap == entry + 5
    assert subsys.mthp.orders[4]["swpin_fallback"] == 1
    check_subsystem(subsys)


def test_memcg_charge_failure_puts_everything_back() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "ghost")
    entry = swap_out(subsys)
    subsys.hooks.memcg_charge_swapin = lambda folio, memcg, g: False
    assert swap_cache_alloc_folio(subsys, entry, GFP_KERNEL) == "ENOMEM"
    assert not swap_cache_has_folio(subsys, entry)
    assert swapfile.swp_swapcount(subsys, entry) == 1 and si.inuse_pages == 1
    assert subsys.mthp.orders[0]["swpin_fallback_charge"] == 1
    check_subsystem(subsys)


def test_folio_allocation_failure_is_enomem() -> None:
    subsys = SwapSubsystem(RAM)
    swapon(subsys, "partition", 2048)
    entry = swap_out(subsys)
    gfp.set_injection(FailureInjection(sites={"folio_alloc": 1.0}, fail_blocking=True))
    assert swap_cache_alloc_folio(subsys, entry, GFP_KERNEL) == "ENOMEM"
    gfp.set_injection(None)
    check_subsystem(subsys)


def test_try_to_reclaim_swap_only_drops_cache_only_slots() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2048)
    busy = new_folio()
    assert swapfile.folio_alloc_swap(subsys, busy)
    assert swapfile.folio_dup_swap(subsys, busy) is None
    busy.flags &= ~PG_locked
    offset = swp_offset(busy.swap)
    assert swapfile.__try_to_reclaim_swap(si, offset, swapfile.TTRS_ANYWAY) == -1
    idle = new_folio()
    assert swapfile.folio_alloc_swap(subsys, idle)
    idle.flags &= ~PG_locked
    assert swapfile.__try_to_reclaim_swap(si, offset + 1, swapfile.TTRS_ANYWAY) == 1
    assert not idle.swap
    check_subsystem(subsys)
