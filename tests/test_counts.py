"""Swap counts: dup, put, frees of ranges, and the extend table."""

from __future__ import annotations

from ghostswap.kernel import gfp
from ghostswap.kernel.gfp import FailureInjection
from ghostswap.mm import swapfile
from ghostswap.mm.folio import folio_unlock
from ghostswap.mm.invariants import check_subsystem
from ghostswap.mm.swap import SWAPFILE_CLUSTER, SwapSubsystem, swp_offset
from ghostswap.mm.swap_state import swap_cache_has_folio
from ghostswap.mm.swap_table import SWP_TB_COUNT_MAX, swp_tb_is_shadow
from ghostswap.mm.swapon import swapon
from tests.helpers import new_folio, settle, swap_out

RAM = 4096


def test_dup_and_put_direct() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2048)
    entry = swap_out(subsys)
    assert swapfile.swp_swapcount(subsys, entry) == 1
    assert swapfile.swap_dup_entry_direct(subsys, entry) is None  # fork
    assert swapfile.swp_swapcount(subsys, entry) == 2
    swapfile.swap_put_entries_direct(subsys, entry, 1)
    assert swapfile.swp_swapcount(subsys, entry) == 1 and si.inuse_pages == 1
    swapfile.swap_put_entries_direct(subsys, entry, 1)
    assert swapfile.swp_swapcount(subsys, entry) == 0 and si.inuse_pages == 0
    check_subsystem(subsys)


def test_counts_beyond_the_inline_maximum_use_the_extend_table() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2048)
    entry = swap_out(subsys)
    ci = si.cluster_info[swp_offset(entry) // SWAPFILE_CLUSTER]  # type: ignore[index]
    for _ in range(40):
        assert swapfile.swap_dup_entry_direct(subsys, entry) is None
        check_subsystem(subsys)
    assert swapfile.swp_swapcount(subsys, entry) == 41
    assert ci.extend_table is not None
    for expected in range(40, 0, -1):
        swapfile.swap_put_entries_direct(subsys, entry, 1)
        assert swapfile.swp_swapcount(subsys, entry) == expected
        check_subsystem(subsys)
        if expected < SWP_TB_COUNT_MAX - 1:
            assert ci.extend_table is None
    swapfile.swap_put_entries_direct(subsys, entry, 1)
    assert si.inuse_pages == 0


def test_failed_extend_table_allocation_rolls_back() -> None:
    subsys = SwapSubsystem(RAM)
    swapon(subsys, "partition", 2048)
    entry = swap_out(subsys)
    for _ in range(SWP_TB_COUNT_MAX - 2):
        assert swapfile.swap_dup_entry_direct(subsys, entry) is None
    count = swapfile.swp_swapcount(subsys, entry)
    assert count == SWP_TB_COUNT_MAX - 1
    gfp.set_injection(FailureInjection(sites={"swap_extend_table": 1.0}))
    assert swapfile.swap_dup_entry_direct(subsys, entry) == "ENOMEM"
    assert swapfile.swp_swapcount(subsys, entry) == count
    # The caller's retry path allocates with a blocking mask, which succeeds.
    from ghostswap.kernel.gfp import GFP_KERNEL

    assert swapfile.swap_retry_table_alloc(subsys, entry, GFP_KERNEL)
    assert swapfile.swap_dup_entry_direct(subsys, entry) is None
    assert swapfile.swp_swapcount(subsys, entry) == count + 1
    check_subsystem(subsys)


def test_range_dup_is_all_or_nothing() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2048)
    folio = new_folio(order=2)
    assert swapfile.folio_alloc_swap(subsys, folio)
    assert swapfile.folio_dup_swap(subsys, folio) is None
    for _ in range(SWP_TB_COUNT_MAX - 2):
        assert swapfile.folio_dup_swap(subsys, folio, page=3) is None
    gfp.set_injection(FailureInjection(sites={"swap_extend_table": 1.0}))
    assert swapfile.folio_dup_swap(subsys, folio) == "ENOMEM"
    counts = [swapfile.swp_swapcount(subsys, folio.swap + i) for i in range(4)]
    assert counts == [1, 1, 1, SWP_TB_COUNT_MAX - 1]
    assert si.inuse_pages == 4
    check_subsystem(subsys)


def test_put_of_cached_slot_keeps_it_until_the_cache_lets_go() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2048)
    folio = new_folio()
    assert swapfile.folio_alloc_swap(subsys, folio)
    assert swapfile.folio_dup_swap(subsys, folio) is None
    swapfile.folio_put_swap(subsys, folio)
    assert si.inuse_pages == 1  # pinned by the swap cache
    assert swapfile.folio_free_swap(subsys, folio)
    assert si.inuse_pages == 0 and not folio.swap
    check_subsystem(subsys)


def test_folio_free_swap_refuses_while_mapped_from_swap() -> None:
    subsys = SwapSubsystem(RAM)
    swapon(subsys, "partition", 2048)
    folio = new_folio()
    assert swapfile.folio_alloc_swap(subsys, folio)
    assert swapfile.folio_dup_swap(subsys, folio) is None
    assert not swapfile.folio_free_swap(subsys, folio)
    assert swap_cache_has_folio(subsys, folio.swap)


def test_zap_of_a_range_batches_frees_and_reclaims_unmapped_cache() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2048)
    entries = [swap_out(subsys) for _ in range(6)]
    cached = new_folio()
    assert swapfile.folio_alloc_swap(subsys, cached)
    assert swapfile.folio_dup_swap(subsys, cached) is None
    folio_unlock(cached)  # a cached folio nobody maps any more
    first = entries[0]
    assert cached.swap == first + 6
    swapfile.swap_put_entries_direct(subsys, first, 7)
    assert si.inuse_pages == 0
    assert not cached.swap  # reclaimed: count 0, unmapped
    check_subsystem(subsys)


def test_free_leaves_a_shadow_until_the_slot_is_freed() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2048)
    entry = swap_out(subsys)
    ci = si.cluster_info[0]  # type: ignore[index]
    assert swp_tb_is_shadow(ci.table[swp_offset(entry)])  # type: ignore[index]
    swapfile.swap_put_entries_direct(subsys, entry, 1)
    assert ci.table[swp_offset(entry)] == 0  # type: ignore[index]
    settle()


def test_dup_restarts_when_the_table_it_waited_for_is_no_longer_needed(monkeypatch) -> None:
    # The count drops while the lock is off for the extend table allocation:
    # the allocation finds no need for it, and the dup restarts and succeeds
    # without one (swap_dup_entries_cluster's goto restart).
    from ghostswap.kernel.spinlock import spin_lock, spin_unlock
    from ghostswap.mm.swap import __swap_offset_to_cluster

    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2048)
    entry = swap_out(subsys)
    for _ in range(SWP_TB_COUNT_MAX - 2):
        assert swapfile.swap_dup_entry_direct(subsys, entry) is None
    assert swapfile.swp_swapcount(subsys, entry) == SWP_TB_COUNT_MAX - 1
    real_alloc = swapfile.swap_extend_table_alloc

    def alloc_while_another_cpu_puts(si_, ci, ci_off, gfp_mask):
        spin_lock(ci.lock)
        swapfile.__swap_cluster_put_entry(ci, ci_off)
        spin_unlock(ci.lock)
        return real_alloc(si_, ci, ci_off, gfp_mask)

    monkeypatch.setattr(swapfile, "swap_extend_table_alloc", alloc_while_another_cpu_puts)
    assert swapfile.swap_dup_entry_direct(subsys, entry) is None
    assert swapfile.swp_swapcount(subsys, entry) == SWP_TB_COUNT_MAX - 1
    ci = __swap_offset_to_cluster(si, swp_offset(entry))
    assert ci is not None and ci.extend_table is None
    check_subsystem(subsys)
