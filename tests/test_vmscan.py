from ghostswap.mm import vmscan
from ghostswap.mm.mm_types import PTE_PRESENT
from tests.vmhelpers import events, make_vm, reads, run, writes


def present(vm, page, pid=1):
    return bool(vm.pt.pte_mv[vm.pt.pti(pid, page, create=False)] & PTE_PRESENT)


def test_usage_stays_within_the_limit_and_counters_add_up():
    with make_vm(ram_pages=256) as vm:
        run(vm, writes(range(1000)))
        assert vm.memcg.peak_pages <= 256
        ev = vm.events
        assert ev["pgsteal_anon"] >= 1000 - 256
        assert ev["pgscan_anon"] >= ev["pgsteal_anon"]
        assert ev["pswpout"] == ev["pgsteal_anon"]  # every reclaimed page was written once
        assert vm.memcg.events["max"] == vm.vm_stats["reclaim_passes"]


def test_recently_used_pages_get_a_second_chance():
    with make_vm(ram_pages=256) as vm:
        run(vm, writes(range(200)))
        # Touch the first 50 pages repeatedly while streaming through others.
        for start in range(200, 1200, 50):
            run(vm, reads(range(50)), writes(range(start, start + 50)), check=False)
        assert sum(present(vm, p) for p in range(50)) >= 45
        assert vm.events["pgactivate"] > 0


def test_swappiness_zero_scans_no_anon_in_cgroup_reclaim():
    with make_vm(ram_pages=128, swappiness=0) as vm:
        run(vm, writes(range(200)))
        assert vm.events["pgscan_anon"] == 0
        assert vm.events["oom_kill"] == 1


def test_inactive_is_low_uses_the_kernel_ratio():
    with make_vm() as vm:
        vm.frames.lru_pages = [100, 100]
        assert not vmscan.inactive_is_low(vm)
        vm.frames.lru_pages = [99, 100]
        assert vmscan.inactive_is_low(vm)
        gb = 1 << 18  # pages per GiB
        vm.frames.lru_pages = [gb // 3 + 100, gb]  # 1.33 GiB: ratio isqrt(10) = 3
        assert not vmscan.inactive_is_low(vm)
        vm.frames.lru_pages = [gb // 3 - 100, gb]
        assert vmscan.inactive_is_low(vm)


def test_scan_count_shrinks_with_priority():
    with make_vm() as vm:
        vm.frames.lru_pages = [1 << 16, 1 << 16]
        sc = vmscan.ScanControl(32)
        sc.priority = 12
        low = vmscan.get_scan_count(vm, sc)
        sc.priority = 4
        high = vmscan.get_scan_count(vm, sc)
        assert 0 < low[0] < high[0]
        sc.priority = 0
        assert vmscan.get_scan_count(vm, sc) == (1 << 16, 1 << 16)


def test_madvise_pageout_reclaims_exactly_the_range_and_it_comes_back():
    with make_vm(ram_pages=512) as vm:
        run(vm, writes(range(100)))
        run(vm, events([(1, "pageout", 10, 20)]))
        assert vm.events["pswpout"] == 20
        assert vm.events["pgscan_anon"] == 0  # reclaim_pages does not count scans
        assert [present(vm, p) for p in (9, 10, 29, 30)] == [True, False, False, True]
        run(vm, reads(range(10, 30)))
        assert vm.events["pswpin"] == 20
        assert vm.mismatches == 0 and vm.verified_pages == 20
        # The slots were kept (swap far from full): paging out again needs no write.
        run(vm, events([(1, "pageout", 10, 20)]))
        assert vm.events["pswpout"] == 20
        assert not present(vm, 15)


def test_written_swap_cache_pages_are_written_again():
    with make_vm(ram_pages=512) as vm:
        run(vm, writes(range(10)), events([(1, "pageout", 0, 10)]), reads(range(10)))
        run(vm, writes([3]), events([(1, "pageout", 0, 10)]))
        assert vm.events["pswpout"] == 11
        run(vm, reads(range(10)))
        assert vm.mismatches == 0
