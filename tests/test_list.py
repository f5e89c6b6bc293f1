"""The list primitive's lazy run against the same list built eagerly, and a
huge static swap device that only makes the clusters it uses."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ghostswap.kernel.list import (
    LazyRun,
    ListHead,
    list_add_tail,
    list_del,
    list_empty,
    list_first_entry,
    list_move_tail,
)
from ghostswap.measure import sizes
from ghostswap.measure.overhead import device_overhead
from ghostswap.mm import swapfile
from ghostswap.mm.folio import folio_unlock
from ghostswap.mm.invariants import check_subsystem
from ghostswap.mm.swap import (
    CLUSTER_FLAG_FREE,
    CLUSTER_FLAG_FULL,
    SWAPFILE_CLUSTER,
    SwapSubsystem,
    swp_offset,
)
from ghostswap.mm.swap_state import swap_cache_del_folio
from ghostswap.mm.swapon import swapoff, swapon
from tests.helpers import new_folio, settle


class Node:
    __slots__ = ("index", "list")

    def __init__(self, index: int) -> None:
        self.index = index
        self.list: ListHead | None = None


class Pair:
    """One list built eagerly and its twin that starts as a lazy run."""

    def __init__(self, lo: int, hi: int) -> None:
        self.eager, self.eager_other = ListHead("eager"), ListHead("eager.other")
        self.eager_nodes = {i: Node(i) for i in range(lo, hi)}
        for node in self.eager_nodes.values():
            list_add_tail(node, self.eager)
        self.lazy, self.lazy_other = ListHead("lazy"), ListHead("lazy.other")
        self.made: dict[int, Node] = {}
        self.lazy.lazy = LazyRun(lo, hi, self.make)

    def make(self, index: int) -> Node:
        node = self.made.get(index)
        if node is None:
            node = self.made[index] = Node(index)
            node.list = self.lazy
        return node

    def node(self, index: int) -> tuple[Node, Node]:
        return self.eager_nodes[index], self.make(index)

    def check(self) -> None:
        assert [n.index for n in self.lazy] == [n.index for n in self.eager]
        assert [n.index for n in self.lazy_other] == [n.index for n in self.eager_other]
        assert len(self.lazy) == len(self.eager)
        assert list_empty(self.lazy) == list_empty(self.eager)
        if not list_empty(self.eager):
            assert list_first_entry(self.lazy).index == list_first_entry(self.eager).index
        for index, node in self.made.items():
            eager = self.eager_nodes[index]
            assert (node in self.lazy) == (eager in self.eager)
            assert (node.list is self.lazy) == (eager.list is self.eager)


OPS = st.lists(
    st.tuples(st.sampled_from(["del", "first", "tail", "other", "back"]), st.integers(0, 39)),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(0, 5), ops=OPS)
def test_lazy_run_behaves_like_the_list_built_one_by_one(lo: int, ops) -> None:
    hi = lo + 40
    pair = Pair(lo, hi)
    for op, pick in ops:
        index = lo + pick
        eager, lazy = pair.node(index)
        if op == "first":
            if list_empty(pair.eager):
                continue
            eager, lazy = pair.node(list_first_entry(pair.eager).index)
            list_del(eager)
            list_del(lazy)
        elif op == "del":
            list_del(eager)
            list_del(lazy)
        elif op == "tail":
            list_move_tail(eager, pair.eager)
            list_move_tail(lazy, pair.lazy)
        elif op == "other":
            list_move_tail(eager, pair.eager_other)
            list_move_tail(lazy, pair.lazy_other)
        elif eager.list is None:  # "back": an off-list node is added again
            list_add_tail(eager, pair.eager)
            list_add_tail(lazy, pair.lazy)
        pair.check()
    # Walking the list makes every node still in the run, and only those.
    pair.check()
    run = pair.lazy.lazy
    assert run is None or all(i in pair.made for i in run.indices())


def test_huge_static_device_makes_only_the_clusters_it_uses() -> None:
    subsys = SwapSubsystem(4096)
    pages = (16 << 40) // 4096  # 16 TiB: last_page is a __u32, so the
    si = swapon(subsys, "partition", pages)  # last cluster has one bad slot
    clusters = si.cluster_info
    assert clusters is not None and len(clusters) == pages // SWAPFILE_CLUSTER
    last = len(clusters) - 1
    assert [ci.index for ci in clusters.made()] == [0, last]
    assert list(si.nonfull_clusters[0]) == [clusters[0], clusters[last]]
    assert len(si.free_clusters) == len(clusters) - 2
    assert device_overhead(si).components["cluster_info"] == sizes.kvmalloc_size(
        len(clusters) * sizes.SWAP_CLUSTER_INFO
    )

    folios = [new_folio() for _ in range(511 + 511 + 512 + 10)]  # 0, last, 1, some of 2
    for folio in folios:
        assert swapfile.folio_alloc_swap(subsys, folio)
    cluster1 = clusters[1]
    assert cluster1.flags == CLUSTER_FLAG_FULL
    in_cluster1 = [f for f in folios if swp_offset(f.swap) // SWAPFILE_CLUSTER == 1]
    rest = [f for f in folios if f not in in_cluster1]
    for folio in in_cluster1:
        swap_cache_del_folio(subsys, folio)
    settle()
    # Cluster 1 went back to the free list's tail, behind the untouched run;
    # the next fresh cluster is still the lowest one never used.
    assert cluster1.flags == CLUSTER_FLAG_FREE
    assert list(si.free_clusters.explicit()) == [cluster1]
    assert list_first_entry(si.free_clusters) is clusters[3]
    assert [ci.index for ci in clusters.made()] == [0, 1, 2, 3, last]
    assert len(si.free_clusters) == len(clusters) - 3  # 0, 2 and the last are not free
    check_subsystem(subsys)

    # Swapoff walks the device for slots in use (the rest are still in the
    # swap cache) and drops them, without making the untouched clusters.
    for folio in rest:
        folio_unlock(folio)
    swapoff(subsys, si)
    assert si.cluster_info is None and not any(f.swap for f in rest)
    assert [ci.index for ci in clusters.made()] == [0, 1, 2, 3, last]


def test_membership_of_a_lazy_run_asks_the_member_where_it_is():
    pair = Pair(0, 8)
    stranger = Node(3)  # same index, on no list
    assert pair.make(3) in pair.lazy and stranger not in pair.lazy
    other = Pair(0, 8)
    assert other.make(3) not in pair.lazy


def test_an_empty_cluster_0_keeps_its_place_at_the_head_of_the_free_list():
    # With a 12-bit si->max, 4096 pages wrap to 0: cluster 0 gets no header
    # slot and is as free as the rest, first in index order.
    subsys = SwapSubsystem(1 << 16, si_max_bits=12)
    si = swapon(subsys, "partition", 4096)
    assert si.cluster_info is not None
    assert [ci.index for ci in si.free_clusters] == list(range(8))
