"""The cluster allocator: order of sources, cluster lists, ghost clusters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ghostswap.kernel import gfp
from ghostswap.kernel.gfp import FailureInjection
from ghostswap.kernel.slab import is_poisoned
from ghostswap.mm import swapfile
from ghostswap.mm.folio import Folio, PG_dirty, folio_unlock
from ghostswap.mm.invariants import check_subsystem
from ghostswap.mm.swap import (
    CLUSTER_FLAG_DEAD,
    CLUSTER_FLAG_FRAG,
    CLUSTER_FLAG_FREE,
    CLUSTER_FLAG_FULL,
    CLUSTER_FLAG_NONFULL,
    SWAPFILE_CLUSTER,
    SwapClusterInfo,
    SwapInfo,
    SwapSubsystem,
    swp_offset,
    swp_type,
)
from ghostswap.mm.swap_state import swap_cache_del_folio
from ghostswap.mm.swap_table import (
    SWP_TB_NULL,
    __swap_cgroup_get,
    pfn_to_swp_tb,
    shadow_to_swp_tb,
    swap_table_new,
)
from ghostswap.mm.swapon import swapon
from tests.helpers import new_folio, settle

RAM = 4096


def alloc(subsys: SwapSubsystem, order: int = 0, memcg_id: int = 0) -> Folio | None:
    folio = new_folio(order, memcg_id)
    return folio if swapfile.folio_alloc_swap(subsys, folio) else None


def alloc_n(subsys: SwapSubsystem, n: int, order: int = 0) -> list[Folio]:
    out = []
    for _ in range(n):
        folio = alloc(subsys, order)
        assert folio is not None
        out.append(folio)
    return out


def free(subsys: SwapSubsystem, folio: Folio) -> None:
    swap_cache_del_folio(subsys, folio)


def offsets(folios: list[Folio]) -> list[int]:
    return [swp_offset(f.swap) for f in folios]


def test_order0_allocation_is_sequential_from_the_cpu_cluster() -> None:
    subsys = SwapSubsystem(RAM)
    swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER)
    folios = alloc_n(subsys, 600)
    # Cluster 0 (with the header slot) sits on nonfull[0] and is used first.
    assert offsets(folios) == list(range(1, 601))
    assert subsys.stats.fast_hits == 598  # two slow-path trips: start, cluster 0 full
    check_subsystem(subsys)


def test_static_cluster_moves_between_lists() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER)
    assert si.cluster_info is not None
    cluster1 = si.cluster_info[1]
    folios = alloc_n(subsys, 511 + 512 + 10)
    assert cluster1.flags == CLUSTER_FLAG_FULL
    in_cluster1 = [f for f in folios if swp_offset(f.swap) // SWAPFILE_CLUSTER == 1]
    free(subsys, in_cluster1[0])
    assert cluster1.flags == CLUSTER_FLAG_NONFULL
    for folio in in_cluster1[1:]:
        free(subsys, folio)
    assert cluster1.flags == CLUSTER_FLAG_FREE and cluster1.table is None
    assert si.cluster_info[2].flags == CLUSTER_FLAG_FRAG  # the CPU's current one
    check_subsystem(subsys)


def test_ghost_clusters_come_and_go() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "ghost")
    pool = si.cluster_info_pool
    assert pool is not None
    folios = alloc_n(subsys, 3 * SWAPFILE_CLUSTER)
    # Cluster 0 is never allocated from; fresh clusters get indices 1, 2, 3.
    assert offsets(folios)[:2] == [SWAPFILE_CLUSTER, SWAPFILE_CLUSTER + 1]
    assert [index for index, _ in pool.items()] == [0, 1, 2, 3]
    assert subsys.stats.ghost_clusters_allocated == 3
    cluster2 = pool.items()[2][1]
    for folio in folios[SWAPFILE_CLUSTER : 2 * SWAPFILE_CLUSTER]:
        free(subsys, folio)
    assert [index for index, _ in pool.items()] == [0, 1, 3]
    assert cluster2.flags == CLUSTER_FLAG_DEAD and not is_poisoned(cluster2)
    settle()  # the grace period ends
    assert is_poisoned(cluster2)
    assert subsys.stats.ghost_clusters_freed == 1
    check_subsystem(subsys)
    # The next fresh cluster takes the lowest free index again.
    more = alloc_n(subsys, SWAPFILE_CLUSTER + 1)
    assert 2 * SWAPFILE_CLUSTER in offsets(more)
    check_subsystem(subsys)


def test_ghost_pool_at_its_index_limit() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "ghost", 4 * SWAPFILE_CLUSTER)  # indices 1..3 usable
    folios = alloc_n(subsys, 3 * SWAPFILE_CLUSTER)
    assert alloc(subsys) is None  # xa_alloc has no index left in [1, 3]
    assert si.cluster_info_pool is not None and len(si.cluster_info_pool) == 4
    free(subsys, folios[0])
    again = alloc(subsys)
    assert (again is not None and again.swap == folios[0].swap) or swp_offset(
        again.swap
    ) // SWAPFILE_CLUSTER == 1  # type: ignore[union-attr]
    check_subsystem(subsys)


def test_large_entries_need_a_block_device() -> None:
    for kind, large, expect in [
        ("file", None, False),
        ("ghost", None, False),
        ("partition", None, True),
        ("zram", None, True),
        ("ghost", True, True),
    ]:
        subsys = SwapSubsystem(RAM)
        swapon(subsys, kind, None if kind == "ghost" else 8 * SWAPFILE_CLUSTER, large_entries=large)
        folio = alloc(subsys, order=4)
        assert (folio is not None) == expect, kind
        if folio is not None:
            assert swp_offset(folio.swap) % 16 == 0
        check_subsystem(subsys)


def test_a_cluster_serves_one_order() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER)
    small = alloc_n(subsys, 3)
    big = alloc_n(subsys, 3, order=4)
    assert si.cluster_info is not None
    assert {swp_offset(f.swap) // SWAPFILE_CLUSTER for f in small} == {0}
    big_clusters = {swp_offset(f.swap) // SWAPFILE_CLUSTER for f in big}
    assert 0 not in big_clusters
    for index in big_clusters:
        assert si.cluster_info[index].order == 4
    check_subsystem(subsys)


def test_full_device_leaves_and_rejoins_the_available_list() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2 * SWAPFILE_CLUSTER)
    folios = alloc_n(subsys, si.pages)
    assert si.inuse_pages == si.pages
    assert si.avail_list.head is None
    assert alloc(subsys) is None
    assert subsys.stats.alloc_fail >= 1
    free(subsys, folios[5])
    assert si.avail_list.head is subsys.swap_avail_head
    refill = alloc(subsys)
    assert refill is not None and swp_offset(refill.swap) == swp_offset(folios[4].swap) + 1
    check_subsystem(subsys)


def test_higher_priority_device_is_used_first() -> None:
    subsys = SwapSubsystem(RAM)
    low = swapon(subsys, "partition", 2 * SWAPFILE_CLUSTER, prio=1)
    high = swapon(subsys, "partition", 2 * SWAPFILE_CLUSTER, prio=5)
    folios = alloc_n(subsys, high.pages + 10)
    types = [swp_type(f.swap) for f in folios]
    assert types[: high.pages] == [high.type] * high.pages
    assert types[high.pages :] == [low.type] * 10


def test_equal_priorities_take_turns_by_cluster() -> None:
    subsys = SwapSubsystem(RAM)
    a = swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER)
    b = swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER)
    folios = alloc_n(subsys, 511 + 511 + 512)
    types = [swp_type(f.swap) for f in folios]
    assert types[:511] == [a.type] * 511
    assert types[511:1022] == [b.type] * 511
    assert types[1022:] == [a.type] * 512


def test_per_device_policy_keeps_priorities() -> None:
    subsys = SwapSubsystem(RAM, percpu_policy="per-device")
    low = swapon(subsys, "partition", 2 * SWAPFILE_CLUSTER, prio=1)
    high = swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER, prio=5)
    assert high.percpu_cluster is not None
    folios = alloc_n(subsys, 700)
    assert {swp_type(f.swap) for f in folios} == {high.type}
    assert offsets(folios) == list(range(1, 701))
    assert low.inuse_pages == 0
    check_subsystem(subsys)


def test_rotating_disk_shares_one_sequential_cluster_across_cpus() -> None:
    from ghostswap.kernel import runtime

    subsys = SwapSubsystem(RAM, nr_cpus=2)
    swapon(subsys, "file", 4 * SWAPFILE_CLUSTER, rotational=True)
    got = []
    for i in range(20):
        runtime.set_fast_cpu(i % 2)
        folio = alloc(subsys)
        assert folio is not None
        got.append(swp_offset(folio.swap))
    assert got == list(range(1, 21))


def test_ssd_gives_each_cpu_its_own_cluster() -> None:
    from ghostswap.kernel import runtime

    subsys = SwapSubsystem(RAM, nr_cpus=2)
    swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER)
    clusters = {}
    for cpu in (0, 1, 0, 1):
        runtime.set_fast_cpu(cpu)
        folio = alloc(subsys)
        assert folio is not None
        clusters.setdefault(cpu, set()).add(swp_offset(folio.swap) // SWAPFILE_CLUSTER)
    assert clusters[0].isdisjoint(clusters[1])


def test_half_full_swap_reclaims_clean_cache_to_allocate() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 3 * SWAPFILE_CLUSTER)
    cached = alloc_n(subsys, 900)  # swap cache only, count 0: cluster 0 full
    for folio in cached:
        folio_unlock(folio)
    free(subsys, cached[0])  # slot 1: cluster 0 is nonfull again
    assert subsys.vm_swap_full()
    # Point this CPU at slot 2, still held by a clean cached folio.
    pcp = subsys.percpu_swap_cluster.this_cpu_ptr()
    pcp.si[0], pcp.offset[0] = si, 2
    folio = alloc(subsys)
    assert folio is not None and swp_offset(folio.swap) == 2
    assert not cached[1].swap and cached[1].flags & PG_dirty  # dropped from the cache
    assert subsys.stats.reclaim_range_calls == 1
    check_subsystem(subsys)


def test_full_device_reclaim_worker_frees_clean_cache() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 2 * SWAPFILE_CLUSTER)
    for folio in alloc_n(subsys, si.pages):
        folio_unlock(folio)
    assert si.inuse_pages == si.pages
    settle()  # the reclaim work scheduled when the device filled up runs
    assert si.inuse_pages < si.pages
    assert subsys.stats.reclaim_full_passes >= 1
    assert alloc(subsys) is not None
    check_subsystem(subsys)


def test_order0_steals_from_higher_order_clusters() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 3 * SWAPFILE_CLUSTER)
    small = alloc_n(subsys, 511)  # cluster 0 is full of order 0
    big = alloc_n(subsys, 64, order=4)  # clusters 1 and 2 belong to order 4
    free(subsys, big[3])  # a 16-slot hole in an order-4 cluster
    stolen = alloc(subsys)
    assert stolen is not None
    assert si.cluster_info is not None
    assert si.cluster_info[swp_offset(stolen.swap) // SWAPFILE_CLUSTER].order == 4
    assert subsys.stats.order0_steals == 1
    assert len(small) == 511
    check_subsystem(subsys)


def test_discarding_device_frees_clusters_after_discard() -> None:
    subsys = SwapSubsystem(RAM)
    discarded: list[tuple[int, int]] = []
    subsys.hooks.discard = lambda si, start, nr: discarded.append((start, nr))
    si = swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER, discard=True)
    folios = alloc_n(subsys, 700)
    # A discarding device takes fresh clusters before the header's cluster.
    assert swp_offset(folios[0].swap) == SWAPFILE_CLUSTER
    for folio in folios[:SWAPFILE_CLUSTER]:
        free(subsys, folio)
    assert si.cluster_info is not None and len(si.discard_clusters) == 1
    settle()  # the discard work runs
    assert discarded == [(SWAPFILE_CLUSTER, SWAPFILE_CLUSTER)]
    assert si.cluster_info[1].flags == CLUSTER_FLAG_FREE
    check_subsystem(subsys)


def test_atomic_allocation_failure_on_a_ghost_device_is_clean() -> None:
    subsys = SwapSubsystem(RAM)
    swapon(subsys, "ghost")
    gfp.set_injection(FailureInjection(sites={"swap_table": 1.0}))
    assert alloc(subsys) is None
    gfp.set_injection(None)
    check_subsystem(subsys)
    assert alloc(subsys) is not None


def test_injected_failures_never_break_invariants() -> None:
    subsys = SwapSubsystem(RAM)
    swapon(subsys, "ghost")
    gfp.set_injection(FailureInjection(seed=3, probability=0.3))
    live: list[Folio] = []
    for i in range(3000):
        folio = alloc(subsys)
        if folio is not None:
            live.append(folio)
        if i % 3 == 0 and live:
            free(subsys, live.pop(len(live) // 2))
        if i % 500 == 0:
            settle()
            check_subsystem(subsys)
    assert gfp.injection is not None and sum(gfp.injection.failed.values()) > 0
    check_subsystem(subsys)


def test_memcg_ids_follow_the_slots() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER)
    folio = alloc(subsys, order=2, memcg_id=7)
    assert folio is not None
    offset = swp_offset(folio.swap)
    ci = _cluster(si, offset)
    assert [__swap_cgroup_get(ci, (offset + i) % SWAPFILE_CLUSTER) for i in range(4)] == [7] * 4
    free(subsys, folio)
    assert __swap_cgroup_get(ci, offset % SWAPFILE_CLUSTER) == 0
    check_subsystem(subsys)


def _cluster(si: SwapInfo, offset: int):  # type: ignore[no-untyped-def]
    assert si.cluster_info is not None
    return si.cluster_info[offset // SWAPFILE_CLUSTER]


@given(
    slots=st.lists(st.sampled_from(["null", "cache", "used"]), min_size=512, max_size=512),
    order=st.integers(0, 5),
    start=st.integers(0, 511),
)
def test_null_range_search_stops_where_the_range_scan_would(slots, order, start) -> None:
    """With swap under half full, the C-speed search finds the same first
    free range as calling cluster_scan_range() range after range."""
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 4 * SWAPFILE_CLUSTER)
    assert not subsys.vm_swap_full()
    ci = SwapClusterInfo(1)
    ci.table = swap_table_new()
    encoding = {"null": SWP_TB_NULL, "cache": pfn_to_swp_tb(7, 0),
                "used": shadow_to_swp_tb(None, 1 << 1)}  # fmt: skip
    for off, kind in enumerate(slots):
        ci.table[off] = encoding[kind]
    nr_pages = 1 << order
    offset = SWAPFILE_CLUSTER + (start & ~(nr_pages - 1) if start % 3 else start)
    end = 2 * SWAPFILE_CLUSTER - nr_pages
    expected = offset
    while expected <= end:
        if swapfile.cluster_scan_range(si, ci, expected, nr_pages) == swapfile.SCAN_FREE:
            break
        expected += nr_pages
    assert swapfile._next_null_range(ci, offset, end, order) == min(expected, end + 1)
