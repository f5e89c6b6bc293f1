"""Page tables charged to the memcg: ``__pte_alloc`` and the PMD/PUD
allocations above it, ``free_pgtables`` after munmap, MADV_DONTNEED's
``try_to_free_pte`` (CONFIG_PT_RECLAIM) and exit."""

from ghostswap.mm.mm_types import PMD_NR
from tests.vmhelpers import events, make_vm, reads, run, writes

GIB = 1 << 18  # pages
PUD_SPAN = 1 << 27  # pages a PUD table maps (512 GiB)


def tables(vm, pid=1):
    mm = vm.mms[pid]
    return len(mm.pud_tables), len(mm.pmd_tables), len(mm.regions)


def test_a_first_fault_charges_the_pud_pmd_and_pte_tables_it_needs():
    with make_vm(ram_pages=1024, memcg_charge_batch=0) as vm:
        run(vm, writes([5]))
        assert tables(vm) == (1, 1, 1)
        assert vm.memcg.pagetable_pages == 1 + 3  # the PGD, made with the process
        assert vm.memcg.current_pages() == 5
        run(vm, reads([PMD_NR + 1, 7]))  # a new PTE table; the same one again
        assert tables(vm) == (1, 1, 2)
        run(vm, reads([GIB]))  # a new PMD table and PTE table
        assert tables(vm) == (1, 2, 3)
        run(vm, reads([PUD_SPAN]))  # all three
        assert tables(vm) == (2, 3, 4)
        assert vm.memcg.pagetable_pages == 1 + 9
        assert vm.memcg.current_pages() == 11


def test_dontneed_frees_a_pte_table_it_empties_whole_and_keeps_a_partial_one():
    with make_vm(ram_pages=2048, memcg_charge_batch=0) as vm:
        run(vm, writes(range(3 * PMD_NR)))
        assert tables(vm) == (1, 1, 3)
        run(vm, events([(1, "f", 0, PMD_NR - 1)]))  # one page short of the table
        assert tables(vm) == (1, 1, 3)
        run(vm, events([(1, "f", PMD_NR, PMD_NR)]))
        assert tables(vm) == (1, 1, 2)
        assert PMD_NR >> 9 not in vm.mms[1].regions
        assert vm.memcg.pagetable_pages == 1 + 4
        assert vm.memcg.folio_pages() == 2 * PMD_NR - (PMD_NR - 1)
        # The freed table comes back, charged, on the next fault there.
        run(vm, reads([PMD_NR + 3]))
        assert tables(vm) == (1, 1, 3)


def test_dontneed_keeps_a_table_two_vmas_share():
    with make_vm(ram_pages=2048, memcg_charge_batch=0) as vm:
        run(vm, writes(range(PMD_NR)), events([(1, "huge", 0, 16)]))
        assert len(vm.mms[1].vmas) == 2
        run(vm, events([(1, "f", 0, PMD_NR)]))
        assert tables(vm) == (1, 1, 1)  # each VMA's part is less than 2 MiB
        assert vm.memcg.folio_pages() == 0


def test_munmap_frees_the_tables_no_vma_needs_any_more():
    with make_vm(ram_pages=2048, memcg_charge_batch=0) as vm:
        run(vm, events([(1, "map", 0, 4 * PMD_NR), (1, "map", GIB, PMD_NR)]),
            writes([0, PMD_NR, 2 * PMD_NR + 5, GIB]))  # fmt: skip
        assert tables(vm) == (1, 2, 4)
        run(vm, events([(1, "unmap", PMD_NR, PMD_NR + 5)]))
        # The first table is the mapped rest's; the third still has a VMA.
        assert tables(vm) == (1, 2, 3)
        run(vm, events([(1, "unmap", GIB, PMD_NR)]))  # the PMD table goes too
        assert tables(vm) == (1, 1, 2)
        assert vm.memcg.pagetable_pages == 1 + 4


def test_exit_uncharges_every_table_and_fork_charges_the_childs():
    with make_vm(ram_pages=2048, memcg_charge_batch=0) as vm:
        run(vm, reads([0, GIB, PUD_SPAN]), writes([3]))
        parent = tables(vm)
        run(vm, events([(1, "fork", 2, 0)]))
        assert tables(vm, 2) == parent
        assert vm.memcg.pagetable_pages == 2 * (1 + sum(parent))  # each has its PGD
        run(vm, events([(1, "exit", 0, 0)]))
        assert vm.memcg.pagetable_pages == 1 + sum(parent)
        run(vm, events([(2, "exit", 0, 0)]))
        assert vm.memcg.pagetable_pages == 0
        assert vm.memcg.current_pages() == 0


def test_reading_a_huge_untouched_range_fills_the_memcg_with_page_tables():
    # Each read maps the zero page and needs a PTE table: 200 tables do not
    # fit in 128 pages, and nothing is reclaimable.
    with make_vm(ram_pages=128, swap=()) as vm:
        run(vm, reads([r * PMD_NR for r in range(200)]))
        assert vm.events["oom_kill"] == 1
        assert 1 not in vm.mms
        assert vm.memcg.pagetable_pages == 0


def test_a_fork_whose_page_tables_do_not_fit_ooms():
    with make_vm(ram_pages=128, swap=(), memcg_charge_batch=0) as vm:
        run(vm, reads([r * PMD_NR for r in range(80)]))
        assert vm.memcg.pagetable_pages == 1 + 82
        run(vm, events([(1, "fork", 2, 0), (2, "r", 0, 1), (1, "r", 0, 1)]))
        assert vm.events["oom_kill"] == 1
        assert vm.mms == {}
        assert vm.memcg.current_pages() == 0
        assert vm.vm_stats["events_skipped"] == 2


def test_fork_gives_the_child_pmd_and_pud_tables_with_no_pte_table_below():
    with make_vm(ram_pages=2048, memcg_charge_batch=0) as vm:
        run(vm, writes([0]), events([(1, "f", 0, PMD_NR)]))  # the PTE table goes
        assert tables(vm) == (1, 1, 0)
        run(vm, events([(1, "fork", 2, 0)]))
        assert tables(vm, 2) == (1, 1, 0)  # copy_pud_range/copy_pmd_range
        assert vm.memcg.pagetable_pages == 2 * (1 + 2)


def test_fork_copies_each_vma_with_its_flags():
    with make_vm(ram_pages=2048, memcg_charge_batch=0) as vm:
        run(vm, writes(range(PMD_NR)), events([(1, "huge", 0, 16), (1, "fork", 2, 0)]))
        parent, child = vm.mms[1], vm.mms[2]
        assert [(v.start, v.end, v.flags) for v in child.vmas] == [
            (v.start, v.end, v.flags) for v in parent.vmas
        ]
        assert len(child.vmas) == 2
        # Neither VMA covers the 2 MiB whole, in either process: both keep
        # their (empty) PTE table after MADV_DONTNEED.
        run(vm, events([(1, "f", 0, PMD_NR), (2, "f", 0, PMD_NR)]))
        assert tables(vm, 1)[2] == tables(vm, 2)[2] == 1


def test_a_fork_that_ooms_with_shared_folios_and_swap_entries_leaves_nothing_charged():
    with make_vm(ram_pages=160, swap=("partition:8MiB",), memcg_charge_batch=0) as vm:
        # 300 written pages: some stay resident, the rest go to swap; then
        # reads of 100 more regions fill the cgroup with page tables.
        run(vm, writes(range(300)), reads([(r + 1) * PMD_NR for r in range(100)]))
        assert vm.events["pswpout"] > 0 and vm.mms[1].rss_anon > 0
        run(vm, events([(1, "fork", 2, 0)]))
        assert vm.events["oom_kill"] == 1
        assert vm.mms == {}
        assert vm.memcg.current_pages() == 0
        assert sum(si.inuse_pages for si in vm.subsys.devices()) == 0


def test_a_freed_table_goes_to_the_charge_stock():
    with make_vm(ram_pages=2048) as vm:
        run(vm, writes(range(PMD_NR + 1)))
        stocked = vm.memcg.stocked_pages()
        usage = vm.memcg.usage_pages
        run(vm, events([(1, "unmap", PMD_NR, PMD_NR)]))
        # The folio's uncharge goes to the counter, the table's to the stock.
        assert vm.memcg.usage_pages == usage - 1
        assert vm.memcg.stocked_pages() == stocked + 1
        assert vm.memcg.pagetable_pages == 1 + 3


def test_munmap_frees_a_pud_table_no_vma_needs():
    with make_vm(ram_pages=2048, memcg_charge_batch=0) as vm:
        run(vm, writes([0, PUD_SPAN]))
        assert tables(vm) == (2, 2, 2)
        run(vm, events([(1, "unmap", PUD_SPAN, PMD_NR)]))
        assert tables(vm) == (1, 1, 1)
        assert vm.memcg.pagetable_pages == 1 + 3


def test_a_new_process_whose_pgd_does_not_fit_starts_after_the_oom_killer_runs():
    # Process 1's PGD, three tables and 60 folios fill the 64 pages with
    # nothing reclaimable. Process 2's first access needs its PGD (exec's
    # mm_alloc): the OOM killer picks among the running processes, kills
    # process 1, and process 2 starts.
    with make_vm(ram_pages=64, swap=(), memcg_charge_batch=0) as vm:
        run(vm, writes(range(60)))
        assert vm.memcg.current_pages() == 64 and 1 in vm.mms
        run(vm, events([(2, "w", 0, 1), (2, "w", 1, 1)]))
        assert vm.events["oom_kill"] == 1
        assert 1 not in vm.mms and vm.mms[2].rss_anon == 2
        assert vm.vm_stats["events_skipped"] == 0
        assert vm.memcg.pagetable_pages == 1 + 3
        run(vm, events([(2, "exit", 0, 0)]))
        assert vm.memcg.current_pages() == 0


def test_a_fork_that_runs_out_kills_the_largest_process_and_goes_on():
    # Process 1 holds 60 folios; process 2 only page tables (30 regions
    # read). Process 2's child needs 33 page-table pages that do not fit:
    # the OOM killer takes process 1, the larger, and the fork succeeds.
    with make_vm(ram_pages=128, swap=(), memcg_charge_batch=0) as vm:
        run(vm, writes(range(60)), events([(2, "r", r * PMD_NR, 1) for r in range(30)]))
        assert vm.memcg.current_pages() == 64 + 33
        run(vm, events([(2, "fork", 3, 0)]))
        assert vm.events["oom_kill"] == 1
        assert 1 not in vm.mms and tables(vm, 3) == tables(vm, 2) == (1, 1, 30)
        assert vm.memcg.current_pages() == 2 * 33
