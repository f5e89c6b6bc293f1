"""The memory cgroup's charging: the per-CPU charge stock of
``try_charge_memcg`` (mm/memcontrol.c)."""

import pytest

from ghostswap.kernel.runtime import set_fast_cpu
from ghostswap.mm.memcontrol import MEMCG_CHARGE_BATCH, try_charge_memcg
from tests.vmhelpers import events, make_vm, run, writes


def test_a_charge_takes_a_batch_and_stocks_the_rest():
    with make_vm(ram_pages=1024) as vm:
        memcg = vm.memcg
        assert try_charge_memcg(vm, 1)
        assert memcg.usage_pages == MEMCG_CHARGE_BATCH
        assert memcg.stocked_pages() == MEMCG_CHARGE_BATCH - 1
        for _ in range(MEMCG_CHARGE_BATCH - 1):
            assert try_charge_memcg(vm, 1)
        assert memcg.usage_pages == MEMCG_CHARGE_BATCH and memcg.stocked_pages() == 0
        assert try_charge_memcg(vm, 1)
        assert memcg.usage_pages == 2 * MEMCG_CHARGE_BATCH


def test_faults_run_the_counter_ahead_and_frees_uncharge_it_directly():
    # 100 folios and four page-table pages (PGD, PUD, PMD, PTE); the stock
    # rounds the counter up to whole batches.
    for batch, current in ((MEMCG_CHARGE_BATCH, 128), (0, 104)):
        with make_vm(ram_pages=1024, memcg_charge_batch=batch) as vm:
            run(vm, writes(range(100)))  # check_machine: folios + stock == counter
            assert vm.memcg.current_pages() == current, batch
            stocked = vm.memcg.stocked_pages()
            run(vm, events([(1, "f", 0, 10)]))
            assert vm.memcg.current_pages() == current - 10
            assert vm.memcg.stocked_pages() == stocked  # uncharge_batch bypasses it


@pytest.mark.parametrize(("batch", "charged"), [(MEMCG_CHARGE_BATCH, True), (0, False)])
def test_the_stock_covers_an_mthp_charge_that_may_not_reclaim(batch, charged):
    with make_vm(ram_pages=256, memcg_charge_batch=batch) as vm:
        memcg = vm.memcg
        assert try_charge_memcg(vm, 1)
        assert try_charge_memcg(vm, 256 - 12 - memcg.usage_pages)  # > a batch: exact
        assert memcg.margin() == 12
        assert try_charge_memcg(vm, 16, may_reclaim=False) == charged
        assert memcg.events["max"] == 0  # no reclaim was tried


def test_a_charge_at_the_limit_drains_the_other_cpus_stock_before_oom():
    with make_vm(ram_pages=256) as vm:
        memcg = vm.memcg
        set_fast_cpu(1)
        try:
            assert try_charge_memcg(vm, 1)
        finally:
            set_fast_cpu(0)
        assert memcg.stock_pages == [0, MEMCG_CHARGE_BATCH - 1]
        assert try_charge_memcg(vm, 256 - MEMCG_CHARGE_BATCH)
        assert memcg.margin() == 0
        # Nothing on the LRU to reclaim: only the drain makes room.
        assert try_charge_memcg(vm, 1)
        assert memcg.stock_pages == [0, 0]
        assert memcg.events["oom"] == 0 and memcg.events["max"] == 1
