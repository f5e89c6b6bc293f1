from ghostswap.mm import vmscan
from ghostswap.mm.mm_types import PTE_PRESENT, PTE_YOUNG
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


def _to_active(vm, pages, pid=1):
    """Move the folios mapping `pages` to the active list (as a refault would)."""
    from ghostswap.mm.mm_types import FL_ACTIVE, PTE_FRAME_SHIFT

    frames = vm.frames
    for p in pages:
        head = int(vm.pt.pte_mv[vm.pt.pti(pid, p, create=False)] >> PTE_FRAME_SHIFT)
        frames.lru_del(head, False, 1)
        frames.flags_mv[head] |= FL_ACTIVE
        frames.lru_add(head, True, 1)


def test_each_round_scans_inactive_before_active(monkeypatch):
    # for_each_evictable_lru: LRU_INACTIVE_ANON comes before LRU_ACTIVE_ANON.
    with make_vm(ram_pages=512) as vm:
        run(vm, writes(range(300)))
        _to_active(vm, range(150))
        order = []
        real_inactive, real_active = vmscan.shrink_inactive_list, vmscan.shrink_active_list
        monkeypatch.setattr(
            vmscan, "shrink_inactive_list",
            lambda vm, n, sc: order.append("inactive") or real_inactive(vm, n, sc),
        )  # fmt: skip
        monkeypatch.setattr(
            vmscan, "shrink_active_list",
            lambda vm, n: order.append("active") or real_active(vm, n),
        )  # fmt: skip
        sc = vmscan.ScanControl(64)
        sc.priority = 0
        sc.may_deactivate = True
        vmscan.shrink_lruvec(vm, sc)
        assert order[:4] == ["inactive", "active", "inactive", "active"]


def test_a_lower_priority_pass_reclaims_a_full_batch_again():
    # shrink_lruvec compares what *this call* reclaimed with nr_to_reclaim.
    with make_vm(ram_pages=512) as vm:
        run(vm, writes(range(400)))
        for p in range(400):  # cold: no young bits
            vm.pt.pte_mv[vm.pt.pti(1, p, create=False)] &= ~PTE_YOUNG
        sc = vmscan.ScanControl(64)
        sc.priority = 0
        sc.nr_reclaimed = 60  # what an earlier priority already reclaimed
        vmscan.shrink_lruvec(vm, sc)
        assert sc.nr_reclaimed - 60 >= 64


def test_anon_lists_age_while_swap_is_full(monkeypatch):
    # can_age_anon_pages: swap present (total_swap_pages), not swap free.
    with make_vm(ram_pages=512) as vm:
        run(vm, writes(range(300)))
        _to_active(vm, range(200))
        monkeypatch.setattr(vm.subsys, "nr_swap_pages", 0)
        assert not vmscan.can_reclaim_anon_pages(vm) and vmscan.can_age_anon_pages(vm)
        sc = vmscan.ScanControl(32)
        vmscan.shrink_lruvec(vm, sc)
        assert sc.nr_reclaimed == 0
        assert vm.memcg.stat["pgrefill"] == vmscan.SWAP_CLUSTER_MAX
        assert vm.events["pgrefill"] == 0  # /proc/vmstat counts global reclaim only


def test_a_zero_cost_does_not_decay_the_costs():
    with make_vm(ram_pages=512) as vm:
        run(vm, writes(range(40)))
        vm.anon_cost = 1000  # far above a quarter of the 40-page LRU
        vmscan.lru_note_cost(vm, 0, 0)
        assert vm.anon_cost == 1000
        vmscan.lru_note_cost(vm, 0, 1)
        assert vm.anon_cost == 1001 // 2


def _reclaim_loops(monkeypatch, **kw):
    """(memcg_full_walk, force_deactivate) of every shrink_lruvec call during
    the writes that end in an OOM kill."""
    calls = []
    real = vmscan.shrink_lruvec

    def spy(vm, sc):
        calls.append((sc.memcg_full_walk, sc.force_deactivate))
        real(vm, sc)

    monkeypatch.setattr(vmscan, "shrink_lruvec", spy)
    with make_vm(ram_pages=128, **kw) as vm:
        run(vm, writes(range(129)), check=False)
        assert vm.events["oom_kill"] == 1
        return calls, vm.vm_stats["reclaim_passes"]


def test_nothing_reclaimed_retries_a_full_walk_then_forced_deactivation(monkeypatch):
    # A ghost device without zswap: every write fails and the folio is
    # activated; the next passes skip the active list, so the kernel's last
    # retry forces deactivation.
    calls, passes = _reclaim_loops(monkeypatch, swap=("ghost",))
    loops = vmscan.DEF_PRIORITY + 1
    one_pass = [(False, False)] * loops + [(True, False)] * loops + [(True, True)] * loops
    assert passes > 1 and calls == one_pass * passes


def test_no_forced_deactivation_when_no_active_list_was_skipped(monkeypatch):
    # swappiness 0: nothing is scanned at all, so nothing was skipped.
    calls, passes = _reclaim_loops(monkeypatch, swappiness=0)
    loops = vmscan.DEF_PRIORITY + 1
    assert calls == ([(False, False)] * loops + [(True, False)] * loops) * passes
    assert all(not force for _, force in calls)


def _unmapped_dirty_swapcache_folio(vm):
    """Page 0 of pid 1 after a failed MADV_PAGEOUT on a ghost device without
    zswap: unmapped (a swap PTE holds its slot), dirty, in the swap cache,
    activated back on the LRU. Returns its head frame."""
    from ghostswap.mm.mm_types import pte_to_swp_entry
    from ghostswap.mm.swap_state import swap_cache_get_folio

    run(vm, writes([0]), events([(1, "pageout", 0, 1)]))
    assert not present(vm, 0) and vm.vm_stats["ghost_write_fail"] == 1
    entry = pte_to_swp_entry(vm.pt.pte_mv[vm.pt.pti(1, 0, create=False)])
    folio = swap_cache_get_folio(vm.subsys, entry)
    assert folio is not None
    return folio, folio.pfn - vm.pfn_base


def _isolate(vm, head):
    from ghostswap.mm.mm_types import FL_ACTIVE, FL_ISOLATED, FL_LRU

    flags = vm.frames.flags_mv
    vm.frames.lru_del(head, bool(flags[head] & FL_ACTIVE), 1)
    flags[head] = (flags[head] & ~FL_LRU) | FL_ISOLATED


def test_reclaim_clears_pg_referenced_of_an_unmapped_folio():
    # folio_check_references runs for unmapped folios too: PG_referenced is
    # test-and-cleared even though no PTE can be young.
    from ghostswap.mm.mm_types import FL_REFERENCED

    with make_vm(ram_pages=256, swap=("ghost",)) as vm:
        _, head = _unmapped_dirty_swapcache_folio(vm)
        vm.frames.flags_mv[head] |= FL_REFERENCED
        _isolate(vm, head)
        stat = {"nr_pageout": 0}
        assert vmscan.shrink_folio_list(vm, [head], False, stat) == 0  # the write fails
        assert not vm.frames.flags_mv[head] & FL_REFERENCED
        run(vm, reads([0]))
        assert vm.mismatches == 0


def test_freed_slots_count_as_a_pageout_and_the_folio_is_not_reclaimed():
    # swap_writeout finds no count left and frees the slots: pageout() still
    # returns PAGE_SUCCESS (nr_pageout); the dirty folio is kept, and the
    # putback drops its last reference.
    from ghostswap.mm.folio import PG_locked

    with make_vm(ram_pages=256, swap=("ghost",)) as vm:
        folio, head = _unmapped_dirty_swapcache_folio(vm)
        folio.flags |= PG_locked  # zap cannot reclaim the cache meanwhile
        run(vm, events([(1, "f", 0, 1)]), check=False)
        folio.flags &= ~PG_locked
        _isolate(vm, head)
        freed, charged = vm.events["pgfree"], vm.memcg.usage_pages
        stat = {"nr_pageout": 0}
        assert vmscan.shrink_folio_list(vm, [head], False, stat) == 0
        assert stat["nr_pageout"] == 1
        assert vm.events["pgfree"] == freed + 1 and vm.memcg.usage_pages == charged - 1
        run(vm, reads([0]))  # check_machine; a fresh zero-page mapping
        assert vm.subsys.swap_info[0].inuse_pages == 0


def test_madvise_pageout_leaves_young_ptes_young():
    # madvise_cold_or_pageout_pte_range clears young bits for MADV_COLD only.
    from ghostswap.mm.mm_types import PTE_YOUNG

    with make_vm(ram_pages=256, swap=("partition:8KiB",)) as vm:  # one usable slot
        run(vm, writes([0, 1]), events([(1, "pageout", 0, 2)]))
        # One page took the slot; the other got none and stays mapped, activated.
        (kept,) = [p for p in (0, 1) if present(vm, p)]
        assert vm.events["pgactivate"] == 1
        assert vm.pt.pte_mv[vm.pt.pti(1, kept, create=False)] & PTE_YOUNG


def _large_folio_head(vm, page=0, pid=1):
    from ghostswap.mm.mm_types import PTE_FRAME_SHIFT

    value = vm.pt.pte_mv[vm.pt.pti(pid, page, create=False)]
    head = value >> PTE_FRAME_SHIFT
    assert vm.frames.order_mv[head] == 4
    return head


def _young_all(vm, pid=1, pages=range(16)):
    for p in pages:
        pti = vm.pt.pti(pid, p, create=False)
        vm.pt.pte_mv[pti] |= PTE_YOUNG


def test_a_large_folio_counts_one_reference_per_mapping():
    # folio_referenced_one counts a VMA once, however many of the folio's
    # PTEs in it are young: sixteen young PTEs of one mapping earn the
    # second chance (KEEP), not activation; the next young look activates.
    with make_vm(ram_pages=1024, mthp=["64kB:always"]) as vm:
        run(vm, writes(range(16)))
        head = _large_folio_head(vm)
        _young_all(vm)
        assert vmscan.folio_check_references(vm, head, 16) == vmscan.FOLIOREF_KEEP
        assert not any(vm.pt.pte_mv[vm.pt.pti(1, p, create=False)] & PTE_YOUNG for p in range(16))
        assert vmscan.folio_check_references(vm, head, 16) == vmscan.FOLIOREF_RECLAIM
        _young_all(vm, pages=[3])
        assert vmscan.folio_check_references(vm, head, 16) == vmscan.FOLIOREF_KEEP
        _young_all(vm, pages=[5, 9])
        assert vmscan.folio_check_references(vm, head, 16) == vmscan.FOLIOREF_ACTIVATE


def test_a_large_folio_young_in_two_mappings_is_activated():
    with make_vm(ram_pages=1024, mthp=["64kB:always"]) as vm:
        run(vm, writes(range(16)), events([(1, "fork", 2, 0)]))
        head = _large_folio_head(vm)
        _young_all(vm, pid=1, pages=[0])
        _young_all(vm, pid=2, pages=[15])
        assert vmscan.folio_referenced(vm, head, 16) == 2
        _young_all(vm, pid=1, pages=[0])
        _young_all(vm, pid=2, pages=[15])
        assert vmscan.folio_check_references(vm, head, 16) == vmscan.FOLIOREF_ACTIVATE
