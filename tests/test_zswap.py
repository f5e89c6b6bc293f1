import pytest

from ghostswap.errors import ConfigError
from ghostswap.mm.zswap import Zswap
from tests.vmhelpers import events, make_vm, reads, run, writes


def zvm(**kw):
    kw.setdefault("zswap", True)
    kw.setdefault("zswap_max_pool_percent", 100)
    return make_vm(**kw)


@pytest.mark.parametrize("compressor", ["zstd", "lz4", "deflate"])
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


def test_deflate_is_set_up_as_the_kernels_crypto_deflate():
    import zlib

    from ghostswap.mm.content import expand, make_token
    from ghostswap.mm.zswap import COMPRESSORS

    compress, decompress = COMPRESSORS["deflate"]()
    page = expand(make_token(3, 7))
    data = compress(page)
    assert decompress(data) == page
    # Raw deflate with a 2 KiB window: a zlib stream of its own would have a header.
    with pytest.raises(zlib.error):
        zlib.decompress(data)
    assert len(data) < len(zlib.compress(page, 6, -15)) * 1.2


@pytest.mark.parametrize(("v1", "charged"), [(False, True), (True, False)])
def test_zswap_is_charged_to_a_v2_memcg_only(v1, charged):
    # obj_cgroup_charge_zswap charges nothing on the v1 controller.
    with zvm(ram_pages=512, memcg_v1=v1) as vm:
        run(vm, writes(range(40)), events([(1, "pageout", 0, 40)]))
        assert vm.memcg.zswap_bytes == vm.zswap.total_bytes > 0
        zswap_pages = -(-vm.zswap.total_bytes // 4096)
        expected = vm.memcg.usage_pages + (zswap_pages if charged else 0)
        assert vm.memcg.current_pages() == expected


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
    # A pool of 81 pages: a zsmalloc class takes up to 8 pages at a time
    # (zspages), so a much smaller one is all partly used zspages.
    with zvm(ram_pages=4096, zswap_max_pool_percent=2) as vm:
        run(vm, writes(range(800)), events([(1, "pageout", 0, 800)]))
        assert vm.events["zswpwb"] > 0
        assert vm.zswap.stats["written_back_pages"] == vm.events["zswpwb"]
        run(vm, reads(range(800)))
        assert vm.events["pswpin"] > 0 and vm.events["zswpin"] > 0
        assert vm.mismatches == 0


def test_incompressible_pages_are_stored_whole():
    with zvm(ram_pages=512, fill="random") as vm:
        run(vm, writes(range(5)), events([(1, "pageout", 0, 5)]))
        assert vm.zswap.stats_dict()["stored_incompressible_pages"] == 5
        assert vm.zswap.total_bytes == 5 * 4096
        run(vm, reads(range(5)))
        assert vm.mismatches == 0
        # A current count, as debugfs keeps it: the loads freed the entries.
        stats = vm.zswap.stats_dict()
        assert stats["stored_incompressible_pages"] == stats["stored_pages"] == 0


def test_the_peak_pool_size_is_in_whole_pages_like_the_current_one():
    with zvm(ram_pages=512) as vm:
        run(vm, writes(range(50)), events([(1, "pageout", 0, 50)]))
        zswap = vm.zswap
        assert zswap.total_bytes % 4096  # compressed: not whole pages
        assert zswap.peak_pool_total_size() == zswap.pool_total_size() > zswap.total_bytes


def test_parameters_are_checked():
    with pytest.raises(ConfigError):
        Zswap(100, compressor="lzo")
    with pytest.raises(ConfigError):
        Zswap(100, max_pool_percent=0)


def test_full_pool_writes_back_with_the_pressure_shrinker_off():
    # shrinker_enabled only registers the memcg-aware shrinker; the worker a
    # full pool queues writes back either way (this host runs with it off).
    with zvm(ram_pages=512, zswap_max_pool_percent=2, zswap_shrinker=False) as vm:
        run(vm, writes(range(200)), events([(1, "pageout", 0, 200)]))
        assert vm.events["zswpwb"] > 0
        assert vm.zswap.total_pages() <= vm.zswap.accept_pages
        run(vm, reads(range(200)))
        assert vm.mismatches == 0


def test_the_shrink_worker_runs_after_the_operation_that_queued_it():
    with zvm(ram_pages=512, zswap_max_pool_percent=2) as vm:
        zswap = vm.zswap
        run(vm, writes(range(200)))
        # One MADV_PAGEOUT fills the pool; the rest of that reclaim is
        # rejected (the worker has not run yet), then the worker drains it.
        full_at = []

        def stores_seen(*args, _orig=vm.run_deferred):
            full_at.append((zswap.shrink_work.pending, zswap.total_pages()))
            _orig()

        vm.run_deferred = stores_seen
        run(vm, events([(1, "pageout", 0, 200)]))
        assert full_at[0][0]  # queued, not yet run
        assert full_at[0][1] >= zswap.max_pages
        assert vm.events["zswpout"] + vm.events["pswpout"] - vm.events["zswpwb"] == 200
        assert vm.events["pswpout"] - vm.events["zswpwb"] > 0  # rejected: straight to disk
        assert not zswap.shrink_work.pending
        assert zswap.total_pages() <= zswap.accept_pages


def test_shrink_memcg_gives_stored_entries_a_second_chance():
    from ghostswap.mm.zswap import shrink_memcg

    with zvm(ram_pages=512) as vm:
        walk = vm.zswap.shrink_walk  # the seed tree walks SWAP_CLUSTER_MAX
        assert walk == 32
        run(vm, writes(range(100)), events([(1, "pageout", 0, 100)]))
        order = list(vm.zswap.entries)
        # The first walk only clears the referenced bits of the 32 oldest.
        assert shrink_memcg(vm) == "EAGAIN"
        assert vm.events["zswpwb"] == 0
        assert list(vm.zswap.entries)[-walk:] == order[:walk]
        # They come round again only after the other 68 lost theirs.
        assert shrink_memcg(vm) == "EAGAIN"
        assert shrink_memcg(vm) == "EAGAIN"
        assert shrink_memcg(vm) is None
        assert vm.events["zswpwb"] == 4 * walk - 100
        assert order[0] not in vm.zswap.entries
        assert vm.zswap.stats["written_back_pages"] == vm.events["zswpwb"]
        run(vm, reads(range(100)))
        assert vm.mismatches == 0


def test_a_short_lru_is_walked_around():
    from ghostswap.mm.zswap import shrink_memcg

    with zvm(ram_pages=512) as vm:
        run(vm, writes(range(10)), events([(1, "pageout", 0, 10)]))
        # 32 steps over 10 entries: the first lap clears, the second writes back.
        assert shrink_memcg(vm) is None
        assert vm.events["zswpwb"] == 10 and not vm.zswap.entries
        assert shrink_memcg(vm) == "ENOENT"


def test_a_v6_18_worker_walks_one_entry_per_try():
    # Up to v6.18 shrink_memcg() walks one entry: a worker run over freshly
    # stored (referenced) entries rotates MAX_RECLAIM_RETRIES of them and
    # writes back none.
    from ghostswap.mm.zswap import MAX_RECLAIM_RETRIES, zswap_shrink_worker

    with zvm(ram_pages=512, zswap_shrink_walk=1) as vm:
        run(vm, writes(range(100)), events([(1, "pageout", 0, 100)]))
        order = list(vm.zswap.entries)
        zswap_shrink_worker(vm)  # the pool is far below its limit: one try
        assert vm.events["zswpwb"] == 0
        assert list(vm.zswap.entries)[-1] == order[0]
        vm.zswap.accept_pages = 0  # now it tries until it gives up
        zswap_shrink_worker(vm)
        assert vm.events["zswpwb"] == 0
        assert list(vm.zswap.entries)[-MAX_RECLAIM_RETRIES:] == order[1 : MAX_RECLAIM_RETRIES + 1]


def test_ghost_entries_are_not_written_back():
    from ghostswap.mm.zswap import MAX_RECLAIM_RETRIES

    with zvm(ram_pages=2048, swap=("ghost",), zswap_max_pool_percent=1) as vm:
        walk = vm.zswap.shrink_walk
        # The pool fills; the worker queued by the first rejection runs after
        # the MADV_PAGEOUT and can write nothing back.
        run(vm, writes(range(300)), events([(1, "pageout", 0, 300)]))
        stored = len(vm.zswap.entries)
        assert vm.zswap.total_pages() > vm.zswap.accept_pages
        assert vm.events["zswpwb"] == 0
        # 16 failed walks of 32: the first visit of each entry clears its
        # referenced bit, every later one fails (patch 13/15's -EINVAL).
        walks = MAX_RECLAIM_RETRIES * walk
        assert stored < walks
        assert vm.zswap.stats["reject_reclaim_fail"] == walks - stored
        run(vm, reads(range(300)))
        assert vm.mismatches == 0


def test_closing_a_machine_cancels_its_pending_worker():
    from ghostswap.kernel import quiescent
    from ghostswap.measure.replay import replay_chunk

    vm = zvm(ram_pages=512, zswap_max_pool_percent=2)
    with vm:
        run(vm, writes(range(200)))
        vm.run_deferred = lambda: None  # leave the worker queued
        replay_chunk(vm, events([(1, "pageout", 0, 200)]))
        assert vm.zswap.shrink_work.pending
    assert not vm.zswap.shrink_work.pending
    wb = vm.events["zswpwb"]
    quiescent()  # nothing left to run on the closed machine
    assert vm.events["zswpwb"] == wb


def test_a_readahead_folio_nobody_mapped_is_activated_not_stored_again():
    # zswap_load() leaves a readahead folio dirty, and pageout() (v6.16+)
    # writes only anon folios: one never mapped is PAGE_ACTIVATE. The host
    # shows it (calibration: pgmajfault within 2% only with it).
    with zvm(ram_pages=256) as vm:
        run(vm, writes(range(64)), events([(1, "pageout", 0, 64)]))
        run(vm, reads(range(6)))  # the readahead window runs past page 5
        ahead = [h for h in range(vm.frames.nr_frames)
                 if vm.swapcache_folio(h) is not None and vm.frames.rmap[h] < 0]  # fmt: skip
        assert ahead and vm.events["pgactivate"] == 0
        run(vm, writes(range(1000, 1400)))  # reclaim takes everything else
        assert all(vm.swapcache_folio(h) is not None for h in ahead)
        assert vm.events["pgactivate"] >= len(ahead)
        # Once mapped, they are anon and reclaimable as any other page.
        swapped = vm.events["zswpout"] + vm.events["pswpout"]
        run(vm, reads(range(6, 6 + len(ahead))), events([(1, "pageout", 6, len(ahead))]))
        assert not any(vm.swapcache_folio(h) is not None for h in ahead)
        assert vm.events["zswpout"] + vm.events["pswpout"] == swapped + len(ahead)
