from ghostswap.mm.mm_types import pte_to_swp_entry
from ghostswap.mm.swap import swp_offset
from tests.vmhelpers import events, make_vm, reads, run, writes


def test_zero_pages_are_not_written():
    with make_vm(ram_pages=512, fill="zero") as vm:
        run(vm, writes(range(30)), events([(1, "pageout", 0, 30)]))
        assert vm.events["swpout_zero"] == 30
        assert vm.events["pswpout"] == 0
        run(vm, reads(range(30)))
        assert vm.events["swpin_zero"] == 30
        assert vm.events["pswpin"] == 0
        assert vm.mismatches == 0 and vm.verified_pages == 30


def test_ghost_device_without_zswap_cannot_write():
    with make_vm(ram_pages=512, swap=("ghost",)) as vm:
        run(vm, writes(range(10)), events([(1, "pageout", 0, 10)]))
        assert vm.vm_stats["ghost_write_fail"] == 10
        assert vm.events["pswpout"] == 0
        assert vm.events["pgactivate"] == 10
        # The pages stay in the swap cache, unmapped; touching them is a minor fault.
        run(vm, reads(range(10)))
        assert vm.events["pgmajfault"] == 0
        assert vm.mismatches == 0


def test_ghost_device_takes_zero_pages_without_a_store():
    with make_vm(ram_pages=512, swap=("ghost",), fill="zero") as vm:
        run(vm, writes(range(10)), events([(1, "pageout", 0, 10)]))
        assert vm.events["swpout_zero"] == 10
        assert vm.subsys.swap_info[0].inuse_pages == 10
        assert vm.subsys.stats.ghost_clusters_allocated == 1


def test_file_store_round_trips_real_bytes(tmp_path):
    with make_vm(ram_pages=128, swap=("file:8MiB",), store="file", store_dir=str(tmp_path),
                 fill="random") as vm:  # fmt: skip
        run(vm, writes(range(300)), reads(range(300)))
        store = vm.stores[0]
        assert store.bytes_written == vm.events["pswpout"] * 4096
        assert store.bytes_read == vm.events["pswpin"] * 4096
        assert vm.events["pswpin"] > 0
        assert vm.mismatches == 0
    assert list(tmp_path.iterdir()) == []  # the store cleaned up


def test_a_corrupted_store_is_caught_by_verification():
    with make_vm(ram_pages=512) as vm:
        run(vm, writes(range(4)), events([(1, "pageout", 0, 4)]))
        entry = pte_to_swp_entry(vm.pt.pte_mv[vm.pt.pti(1, 2, create=False)])
        vm.stores[0].write_page(swp_offset(entry), 12345)
        run(vm, reads(range(4)), check=False)
        assert vm.mismatches == 1
