import pytest

from ghostswap.errors import ConfigError
from ghostswap.mm.machine import parse_mthp
from ghostswap.mm.mm_types import PTE_PRESENT, pte_to_swp_entry
from tests.vmhelpers import events, make_vm, reads, run, writes


def test_mthp_swaps_out_whole_on_a_block_device():
    with make_vm(ram_pages=1024, swap=("partition:16MiB",), mthp=["64kB:always"]) as vm:
        run(vm, writes(range(0, 256, 16)), events([(1, "pageout", 0, 256)]))
        stats = vm.mthp.orders[4]
        assert stats["swpout"] == 16
        assert stats["swpout_fallback"] == 0
        assert vm.events["pswpout"] == 256
        assert vm.events["thp_swpout"] == 0  # only PMD-size counts there
        run(vm, reads(range(256)))
        assert vm.mismatches == 0


def test_mthp_falls_back_on_a_swap_file():
    with make_vm(ram_pages=1024, swap=("file:16MiB",), mthp=["64kB:always"]) as vm:
        run(vm, writes(range(0, 64, 16)), events([(1, "pageout", 0, 64)]))
        stats = vm.mthp.orders[4]
        assert stats["swpout_fallback"] == 4 and stats["swpout"] == 0
        assert stats["split"] == 4
        # Split into pages, the 60 never written are zero pages and not written.
        assert vm.events["pswpout"] == 4
        assert vm.events["swpout_zero"] == 60
        run(vm, reads(range(64)))
        assert vm.mismatches == 0


def test_pmd_thp_counts_thp_swpout():
    with make_vm(ram_pages=2048, swap=("partition:16MiB",), mthp=["2048kB:always"]) as vm:
        run(vm, writes([0]), events([(1, "pageout", 0, 512)]))
        assert vm.events["thp_swpout"] == 1
        assert vm.mthp.orders[9]["swpout"] == 1


def test_ghost_device_refuses_large_entries_unless_told():
    for spec, fallback in (("ghost", 1), ("ghost:8x:large", 0)):
        with make_vm(ram_pages=1024, swap=(spec,), mthp=["64kB:always"], zswap=True,
                     zswap_max_pool_percent=100) as vm:  # fmt: skip
            run(vm, writes(range(16)), events([(1, "pageout", 0, 16)]))
            assert vm.mthp.orders[4]["swpout_fallback"] == fallback
            assert vm.events["zswpout"] == 16
            assert vm.mthp.orders[4]["zswpout"] == 1 - fallback


def test_zram_swaps_large_folios_back_in_whole():
    with make_vm(ram_pages=1024, swap=("zram:16MiB",), mthp=["64kB:always"]) as vm:
        run(vm, writes(range(0, 128, 16)), events([(1, "pageout", 0, 128)]))
        run(vm, reads([5]))
        stats = vm.mthp.orders[4]
        assert stats["swpin"] == 1
        assert vm.events["pgmajfault"] == 1 and vm.events["pswpin"] == 16
        assert all(vm.pt.pte_mv[vm.pt.pti(1, p, create=False)] & PTE_PRESENT for p in range(16))
        run(vm, reads(range(128)))
        assert vm.mismatches == 0 and vm.verified_pages == 128


def test_partial_zap_splits_a_large_folio():
    with make_vm(ram_pages=1024, mthp=["64kB:always"]) as vm:
        run(vm, writes([0]), events([(1, "f", 4, 4)]))
        assert vm.mthp.orders[4]["split"] == 1
        assert vm.memcg.folio_pages() == 12
        run(vm, events([(1, "pageout", 0, 16)]), reads(range(16)))
        assert vm.mismatches == 0


def test_cow_of_a_shared_large_folio_splits_it():
    with make_vm(ram_pages=1024, mthp=["64kB:always"]) as vm:
        run(vm, writes([0]), events([(1, "fork", 2, 0)]), writes([3], pid=2))
        assert vm.mthp.orders[4]["split"] == 1
        run(vm, reads(range(16), pid=1), reads(range(16), pid=2))
        assert vm.mismatches == 0
        assert vm.verify_resident() == 0


def test_madvise_splits_and_merges_vmas():
    from ghostswap.mm.mm_types import VM_HUGEPAGE, VM_NOHUGEPAGE, MmStruct

    mm = MmStruct(1)
    mm.map_range(0, 1024)
    mm.madvise_range(256, 512, VM_HUGEPAGE, VM_NOHUGEPAGE)
    assert [(v.start, v.end, v.flags) for v in mm.vmas] == [
        (0, 256, 0), (256, 512, VM_HUGEPAGE), (512, 1024, 0)
    ]  # fmt: skip
    mm.madvise_range(512, 1024, VM_HUGEPAGE, VM_NOHUGEPAGE)
    assert [(v.start, v.end, v.flags) for v in mm.vmas] == [(0, 256, 0), (256, 1024, VM_HUGEPAGE)]
    mm.madvise_range(0, 1024, VM_NOHUGEPAGE, VM_HUGEPAGE)
    assert [(v.start, v.end, v.flags) for v in mm.vmas] == [(0, 1024, VM_NOHUGEPAGE)]
    mm.unmap_range(100, 200)
    assert [(v.start, v.end, v.flags) for v in mm.vmas] == [
        (0, 100, VM_NOHUGEPAGE), (200, 1024, VM_NOHUGEPAGE)
    ]  # fmt: skip
    mm.map_range(1024, 1100)  # not merged into a flagged neighbour
    assert mm.vmas[-1].start == 1024 and mm.vmas[-1].flags == 0


def test_madvise_decides_which_mthp_sizes_a_fault_may_use():
    # "madvise" mode: only MADV_HUGEPAGE mappings get 64 KiB folios.
    with make_vm(ram_pages=1024, mthp=["64kB:madvise"]) as vm:
        run(vm, events([(1, "map", 0, 64), (1, "huge", 0, 32)]), writes([0, 32]))
        assert vm.mthp.orders[4]["anon_fault_alloc"] == 1
    # "always" mode: everything but MADV_NOHUGEPAGE mappings.
    with make_vm(ram_pages=1024, mthp=["64kB:always"]) as vm:
        run(vm, events([(1, "map", 0, 64), (1, "nohuge", 32, 32)]), writes([0, 32]))
        assert vm.mthp.orders[4]["anon_fault_alloc"] == 1


def test_madv_hugepage_lets_an_mthp_charge_reclaim():
    """At the memcg limit an mTHP charge falls back to order 0 unless the
    mapping is MADV_HUGEPAGE (defrag=madvise): then it reclaims instead."""
    for advice, fallbacks in ((None, True), ("huge", False)):
        with make_vm(ram_pages=256, swap=("zram:16MiB",), mthp=["64kB:always"]) as vm:
            rows = [(1, "map", 0, 2048)] + ([(1, advice, 0, 2048)] if advice else [])
            run(vm, events(rows), writes(range(0, 1024, 16)))
            stats = vm.mthp.orders[4]
            assert (stats["anon_fault_fallback_charge"] > 0) == fallbacks, advice
            run(vm, reads(range(0, 1024, 16)))
            assert vm.mismatches == 0


def test_a_large_swapin_that_loses_a_race_gives_its_frames_back():
    # Another CPU reads one page of the range in between the check and the
    # recheck of an order-4 swap-in: the recheck fails (EBUSY), the swap cache
    # drops the large folio and its frames come back, order 0 succeeds.
    from ghostswap.mm.swap_readahead import swap_cache_read_folio

    with make_vm(ram_pages=1024, swap=("zram:16MiB",), mthp=["64kB:always"]) as vm:
        run(vm, writes(range(16)), events([(1, "pageout", 0, 16)]))
        hooks = vm.subsys.hooks
        alloc = hooks.swapin_folio_alloc
        entry5 = pte_to_swp_entry(vm.pt.pte_mv[vm.pt.pti(1, 5, create=False)])

        def racing_alloc(order, gfp, memcg_id):
            folio = alloc(order, gfp, memcg_id)
            if order:
                hooks.swapin_folio_alloc = alloc
                swap_cache_read_folio(vm, entry5, False)
            return folio

        hooks.swapin_folio_alloc = racing_alloc
        free_before = vm.frames.free_frames
        run(vm, reads([0]))  # check_machine: every frame allocated is charged
        assert vm.mthp.orders[4]["swpin_fallback"] == 1
        assert vm.mthp.orders[4]["swpin"] == 0
        assert vm.frames.free_frames == free_before - 2  # page 0 and page 5 only
        run(vm, reads(range(16)))
        assert vm.mismatches == 0


def test_a_large_swapin_over_zswap_entries_falls_back_and_counts_it():
    # Phase IV: the order is tried, zswap's presence is found once the folio
    # is in the swap cache, the insert is undone and swpin_fallback counted.
    with make_vm(ram_pages=1024, swap=("zram:16MiB",), mthp=["64kB:always"], zswap=True,
                 zswap_max_pool_percent=100) as vm:  # fmt: skip
        run(vm, writes(range(16)), events([(1, "pageout", 0, 16)]))
        assert vm.events["zswpout"] == 16
        run(vm, reads([0]))
        stats = vm.mthp.orders[4]
        assert stats["swpin_fallback"] == 1 and stats["swpin"] == 0
        assert stats["swpin_fallback_charge"] == 0
        assert vm.events["zswpin"] == 1 and vm.events["pgmajfault"] == 1
        # Page 0 is mapped now, so the range no longer suits order 4 at all.
        run(vm, reads(range(16)))
        assert stats["swpin_fallback"] == 1
        assert vm.events["zswpin"] == 16 and vm.mismatches == 0


def test_zswap_once_enabled_stops_large_swapin_on_old_kernels():
    # v6.18's alloc_swap_folio: once zswap was enabled since boot, every
    # swap-in is order 0, and no fallback is counted.
    for was_enabled, large in ((False, True), (True, False)):
        with make_vm(ram_pages=1024, swap=("zram:16MiB",), mthp=["64kB:always"],
                     zswap_was_enabled=was_enabled) as vm:  # fmt: skip
            run(vm, writes(range(64)), events([(1, "pageout", 0, 64)]), reads(range(64)))
            stats = vm.mthp.orders[4]
            assert (stats["swpin"] > 0) == large, was_enabled
            assert stats["swpin_fallback"] == 0
            assert vm.events["pswpin"] == 64 and vm.mismatches == 0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("64kB", {4: "always"}), ("64k", {4: "always"}), ("64KiB:never", {4: "never"}),
     ("2M:madvise", {9: "madvise"}), ("2MiB", {9: "always"}), ("2048kB", {9: "always"})],
)  # fmt: skip
def test_mthp_sizes_are_read_as_sizes(spec, expected):
    assert parse_mthp([spec]) == expected


@pytest.mark.parametrize("spec", ["63kB", "65537", "4kB", "4MiB", "lots"])
def test_mthp_sizes_that_are_no_mthp_size_are_refused(spec):
    with pytest.raises(ConfigError, match="one of 16kB"):
        parse_mthp([spec])
