import pytest

from ghostswap.errors import ConfigError
from ghostswap.mm.zswap import Zswap
from tests.vmhelpers import events, make_vm, reads, run, writes


def zvm(**kw):
    kw.setdefault("zswap", True)
    kw.setdefault("zswap_max_pool_percent", 100)
    return make_vm(**kw)


@pytest.mark.parametrize("compressor", ["zstd", "lz4"])
def test_store_and_load_count_and_verify(compressor):
    with zvm(ram_pages=512, zswap_compressor=compressor) as vm:
        run(vm, writes(range(40)), events([(1, "pageout", 0, 40)]))
        assert vm.events["zswpout"] == 40
        assert vm.events["pswpout"] == 0
        assert len(vm.zswap.entries) == 40
        assert 0 < vm.zswap.total_bytes < 40 * 4096 * 0.6  # text compresses
        assert vm.memcg.zswap_bytes == vm.zswap.total_bytes
        run(vm, reads(range(40)))
        assert vm.events["zswpin"] == 40 and vm.events["pswpin"] == 0
        # Readahead loads from zswap too: a fault brings in a window.
        assert vm.events["pgmajfault"] + vm.events["swap_ra"] == 40
        assert vm.events["swap_ra"] > 0
        assert not vm.zswap.entries  # exclusive loads
        assert vm.mismatches == 0


def test_loaded_pages_are_dirty_and_stored_again():
    with zvm(ram_pages=512) as vm:
        run(vm, writes(range(10)), events([(1, "pageout", 0, 10)]), reads(range(10)))
        run(vm, events([(1, "pageout", 0, 10)]))
        assert vm.events["zswpout"] == 20


def test_freed_slots_invalidate_entries():
    with zvm(ram_pages=512) as vm:
        run(vm, writes(range(10)), events([(1, "pageout", 0, 10)]))
        run(vm, events([(1, "f", 0, 5)]))
        assert len(vm.zswap.entries) == 5
        run(vm, events([(1, "exit", 0, 0)]))
        assert not vm.zswap.entries and vm.zswap.total_bytes == 0
        assert vm.memcg.zswap_bytes == 0


def test_full_pool_rejects_and_ghost_pages_stay_resident():
    with zvm(ram_pages=512, swap=("ghost",), zswap_max_pool_percent=1) as vm:
        run(vm, writes(range(100)), events([(1, "pageout", 0, 100)]))
        stats = vm.zswap.stats
        assert stats["pool_limit_hit"] > 0
        assert vm.events["zswpout"] < 100
        assert vm.vm_stats["ghost_write_fail"] == 100 - vm.events["zswpout"]
        run(vm, reads(range(100)))
        assert vm.mismatches == 0


def test_full_pool_writes_back_to_a_device_with_a_store():
    with zvm(ram_pages=512, zswap_max_pool_percent=2) as vm:
        run(vm, writes(range(200)), events([(1, "pageout", 0, 200)]))
        assert vm.events["zswpwb"] > 0
        assert vm.zswap.stats["written_back_pages"] == vm.events["zswpwb"]
        run(vm, reads(range(200)))
        assert vm.events["pswpin"] > 0 and vm.events["zswpin"] > 0
        assert vm.mismatches == 0


def test_incompressible_pages_are_stored_whole():
    with zvm(ram_pages=512, fill="random") as vm:
        run(vm, writes(range(5)), events([(1, "pageout", 0, 5)]))
        assert vm.zswap.stats["stored_incompressible_pages"] == 5
        assert vm.zswap.total_bytes == 5 * 4096
        run(vm, reads(range(5)))
        assert vm.mismatches == 0


def test_parameters_are_checked():
    with pytest.raises(ConfigError):
        Zswap(100, compressor="lzo")
    with pytest.raises(ConfigError):
        Zswap(100, max_pool_percent=0)
