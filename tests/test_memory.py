import pytest

from ghostswap.mm.mm_types import PTE_PRESENT, PTE_WRITE, PTE_ZERO, pte_to_swp_entry
from ghostswap.mm.swapfile import swp_swapcount
from tests.vmhelpers import events, make_vm, reads, run, writes


def pte(vm, pid, page):
    return vm.pt.pte_mv[vm.pt.pti(pid, page, create=False)]


def test_read_fault_maps_the_zero_page_without_memory():
    with make_vm() as vm:
        run(vm, reads(range(10)))
        assert vm.memcg.folio_pages() == 0
        assert all(pte(vm, 1, p) & PTE_ZERO for p in range(10))
        assert vm.events["pgfault"] == 10
        run(vm, writes([3]))
        assert vm.memcg.folio_pages() == 1
        assert pte(vm, 1, 3) & PTE_WRITE and not pte(vm, 1, 3) & PTE_ZERO


def test_write_faults_allocate_and_hits_do_not_fault():
    with make_vm() as vm:
        run(vm, writes(range(20)))
        assert vm.memcg.folio_pages() == 20
        faults = vm.events["pgfault"]
        run(vm, reads(range(20)), writes(range(20)))
        assert vm.events["pgfault"] == faults
        assert vm.verify_resident() == 0


def test_mthp_fault_allocates_a_large_folio_when_the_range_fits():
    with make_vm(mthp=["64kB:always"]) as vm:
        run(vm, events([(1, "map", 0, 40)]), writes([0, 20, 33]))
        stats = vm.mthp.orders[4]
        # Pages 0..15 and 16..31 fit the VMA; 32..47 does not (it ends at 40).
        assert stats["anon_fault_alloc"] == 2
        assert vm.memcg.folio_pages() == 33
        assert vm.frames.order_mv[pte(vm, 1, 20) >> 8] == 4


def test_mthp_mode_never_and_madvise_fall_back_to_order_0():
    with make_vm(mthp=["64kB:madvise", "32kB:never"]) as vm:
        run(vm, writes([0]))
        assert vm.memcg.folio_pages() == 1


def test_zap_frees_frames_and_swap_entries():
    with make_vm(ram_pages=128) as vm:
        run(vm, writes(range(400)))
        assert vm.events["pswpout"] > 0
        used = vm.subsys.swap_info[0].inuse_pages
        assert used > 0
        run(vm, events([(1, "f", 0, 400)]))
        assert vm.subsys.swap_info[0].inuse_pages == 0
        assert vm.memcg.folio_pages() == 0
        assert vm.frames.lru_pages == [0, 0]


def test_unmap_removes_the_vma_and_exit_frees_everything():
    with make_vm(ram_pages=128) as vm:
        run(vm, events([(1, "map", 0, 512)]), writes(range(300)))
        run(vm, events([(1, "unmap", 0, 100)]))
        mm = vm.mms[1]
        assert mm.find_vma(50) is None and mm.find_vma(200) is not None
        run(vm, events([(1, "exit", 0, 0)]))
        assert 1 not in vm.mms
        assert vm.memcg.folio_pages() == 0
        assert vm.subsys.nr_swap_pages == vm.subsys.total_swap_pages
        assert vm.pt.directory == {}


def test_fork_shares_swap_entries_and_pages_until_written():
    with make_vm(ram_pages=128) as vm:
        run(vm, writes(range(300)))
        swapped = [p for p in range(300) if not pte(vm, 1, p) & PTE_PRESENT]
        present = [p for p in range(300) if pte(vm, 1, p) & PTE_PRESENT]
        assert swapped and present
        run(vm, events([(1, "fork", 2, 0)]))
        entry = pte_to_swp_entry(pte(vm, 1, swapped[0]))
        assert swp_swapcount(vm.subsys, entry) == 2
        # Shared pages are read-only in both; a write copies.
        assert not pte(vm, 1, present[0]) & PTE_WRITE
        before = vm.memcg.folio_pages()
        run(vm, writes([present[0]], pid=2))
        assert vm.memcg.folio_pages() >= before  # copied (reclaim may have run)
        assert pte(vm, 2, present[0]) >> 8 != pte(vm, 1, present[0]) >> 8
        # Both processes read everything back intact.
        run(vm, reads(range(300), pid=2), reads(range(300), pid=1))
        assert vm.mismatches == 0
        assert vm.verify_resident() == 0
        run(vm, events([(2, "exit", 0, 0)]))
        run(vm, reads(range(300), pid=1))
        assert vm.mismatches == 0


def test_write_to_exclusive_page_after_child_exit_reuses_it():
    with make_vm(ram_pages=512) as vm:
        run(vm, writes([7]), events([(1, "fork", 2, 0), (2, "exit", 0, 0)]))
        frame = pte(vm, 1, 7) >> 8
        usage = vm.memcg.folio_pages()
        run(vm, writes([7]))
        assert pte(vm, 1, 7) >> 8 == frame
        assert vm.memcg.folio_pages() == usage


def test_oom_kills_the_process_when_nothing_can_be_reclaimed():
    with make_vm(ram_pages=64, swap=()) as vm:
        run(vm, writes(range(100)))
        assert vm.events["oom_kill"] == 1
        assert 1 not in vm.mms
        assert vm.memcg.folio_pages() == 0
        # The PGD, three page tables and 60 folios fill the 64 pages: the
        # write to page 60 is killed, pages 61..99 skipped, then one more.
        assert vm.memcg.pagetable_pages == 0
        assert vm.vm_stats["events_skipped"] == 39
        run(vm, writes([1]))
        assert vm.vm_stats["events_skipped"] == 40


def test_the_oom_killer_takes_the_largest_process_not_the_faulting_one():
    with make_vm(ram_pages=64, swap=(), memcg_charge_batch=0) as vm:
        # Process 1: PGD, 3 tables, 40 folios; process 2: PGD, 3 tables and
        # folios until the cgroup is full, then one more write faults.
        run(vm, writes(range(40)), events([(2, "w", p, 1) for p in range(30)]))
        assert vm.events["oom_kill"] == 1
        assert 1 not in vm.mms  # badness 43 against process 2's 20
        assert vm.mms[2].rss_anon == 30
        assert vm.vm_stats["events_skipped"] == 0


def test_on_equal_badness_the_oom_killer_takes_the_later_process():
    with make_vm(ram_pages=64, swap=(), memcg_charge_batch=0) as vm:
        # 2 PGDs, 6 tables and 2 x 28 folios fill the 64 pages; process 1's
        # next write finds both at badness 31 and oom_evaluate_task keeps the
        # later one it sees.
        run(vm, writes(range(28)), events([(2, "w", p, 1) for p in range(28)]))
        assert vm.memcg.current_pages() == 64
        run(vm, writes([28]))
        assert vm.events["oom_kill"] == 1
        assert 2 not in vm.mms and vm.mms[1].rss_anon == 29
        assert vm.oom_victims == [2]


def test_pages_beyond_the_address_space_are_refused():
    from ghostswap.errors import ConfigError

    with make_vm() as vm, pytest.raises(ConfigError, match="outside the address space"):
        run(vm, writes([1 << 50]))


def test_machines_reuse_pfn_ranges_that_fit_the_swap_table():
    from ghostswap.mm.swap_table import SWAP_CACHE_PFN_BITS

    bases = set()
    for _ in range(1100):  # more machines than PFN ranges: closed ones are reused
        with make_vm(ram_pages=64, swap=()) as vm:
            assert vm.pfn_base + vm.frames.nr_frames < 1 << SWAP_CACHE_PFN_BITS
            bases.add(vm.pfn_base)
    assert len(bases) == 1


def _shared_swap_entry(vm, children):
    """Page 0 of pid 1 swapped out, then `children` forks: its swap entry."""
    run(vm, writes([0]), events([(1, "pageout", 0, 1)]))
    entry = pte_to_swp_entry(vm.pt.pte_mv[vm.pt.pti(1, 0, create=False)])
    run(vm, events([(1, "fork", 100 + c, 0) for c in range(children)]))
    return entry


def test_fork_retries_an_extend_table_with_a_blocking_allocation():
    from ghostswap.kernel import gfp
    from ghostswap.mm.swap_table import SWP_TB_COUNT_MAX

    with make_vm(ram_pages=512) as vm:
        entry = _shared_swap_entry(vm, SWP_TB_COUNT_MAX - 2)
        assert swp_swapcount(vm.subsys, entry) == SWP_TB_COUNT_MAX - 1
        # The next count needs the extend table; its GFP_ATOMIC allocation
        # fails, fork drops its locks and retries with GFP_KERNEL.
        inj = gfp.FailureInjection(sites={"swap_extend_table": 1.0})
        gfp.set_injection(inj)
        run(vm, events([(1, "fork", 2, 0)]))
        assert swp_swapcount(vm.subsys, entry) == SWP_TB_COUNT_MAX
        assert inj.failed["swap_extend_table"] == 1
        run(vm, reads([0], pid=2), reads([0]))
        assert vm.mismatches == 0 and vm.verified_pages == 2


def test_a_fork_whose_table_retry_fails_leaves_no_child():
    from ghostswap.kernel import gfp
    from ghostswap.mm.swap_table import SWP_TB_COUNT_MAX

    with make_vm(ram_pages=512) as vm:
        run(vm, writes(range(1, 40)))
        entry = _shared_swap_entry(vm, SWP_TB_COUNT_MAX - 2)
        gfp.set_injection(
            gfp.FailureInjection(sites={"swap_extend_table": 1.0}, fail_blocking=True)
        )
        run(vm, events([(1, "fork", 2, 0)]))  # check_machine: no count without a PTE
        assert 2 not in vm.mms
        assert swp_swapcount(vm.subsys, entry) == SWP_TB_COUNT_MAX - 1
        gfp.set_injection(None)
        run(vm, reads([0, 5], pid=2), reads([0]))
        assert vm.vm_stats["events_skipped"] == 2
        assert vm.mismatches == 0


def test_unmap_keeps_the_mapping_whose_swap_count_cannot_be_taken():
    from ghostswap.kernel import gfp
    from ghostswap.mm.swap_table import SWP_TB_COUNT_MAX

    with make_vm(ram_pages=512) as vm:
        entry = _shared_swap_entry(vm, SWP_TB_COUNT_MAX - 1)
        run(vm, reads([0]))  # pid 1 maps the cached folio again: its count goes
        assert swp_swapcount(vm.subsys, entry) == SWP_TB_COUNT_MAX - 1
        activated = vm.events["pgactivate"]
        gfp.set_injection(gfp.FailureInjection(sites={"swap_extend_table": 1.0}))
        # try_to_unmap_one: folio_dup_swap fails, the PTE is restored, the
        # unmap fails and reclaim activates the folio.
        assert vm.madvise_pageout(1, 0, 1) == 0
        assert vm.pt.pte_mv[vm.pt.pti(1, 0, create=False)] & PTE_PRESENT
        assert vm.events["pgactivate"] == activated + 1
        assert swp_swapcount(vm.subsys, entry) == SWP_TB_COUNT_MAX - 1
        gfp.set_injection(None)
        run(vm, reads([0]), reads([0], pid=100))
        assert vm.mismatches == 0


def test_a_fault_that_keeps_retrying_is_a_model_bug_not_a_lost_access(monkeypatch):
    from ghostswap.kernel.bug import KernelBug
    from ghostswap.mm import memory

    monkeypatch.setattr(memory, "do_anonymous_page", lambda *a: memory.VM_FAULT_RETRY)
    with make_vm() as vm, pytest.raises(KernelBug, match=r"page 0x5 \(write\) still faults"):
        run(vm, writes([5]))


def test_for_each_pte_range_walks_the_blocks_that_exist():
    from ghostswap.mm.memory import for_each_pte_range
    from ghostswap.mm.mm_types import PMD_NR

    with make_vm(ram_pages=512) as vm:
        # Pages in regions 0 and 2, none in region 1.
        run(vm, writes([5, 2 * PMD_NR + 7]))
        mm = vm.mms[1]
        ranges = list(for_each_pte_range(vm, mm, 3, 2 * PMD_NR + 10))
        assert [len(r) for r in ranges] == [PMD_NR - 3, 10]
        pti = vm.pt.pti
        assert ranges[0].start == pti(1, 3, create=False)
        assert ranges[1].stop - 1 == pti(1, 2 * PMD_NR + 9, create=False)
        assert list(for_each_pte_range(vm, mm, PMD_NR, 2 * PMD_NR)) == []
