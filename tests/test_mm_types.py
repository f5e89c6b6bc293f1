import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostswap.mm.mm_types import (
    FrameTable,
    MmStruct,
    PageTables,
    pte_mk_swap,
    pte_to_swp_entry,
)
from ghostswap.mm.swap import swp_entry


@given(st.integers(0, 25), st.integers(0, (1 << 50) - 1), st.booleans())
def test_swap_pte_round_trip(type_, offset, excl):
    entry = swp_entry(type_, offset)
    pte = pte_mk_swap(entry, excl)
    assert pte & 1 == 0 and pte & 2
    assert pte_to_swp_entry(pte) == entry
    assert pte < 1 << 63


@settings(max_examples=60)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=80))
def test_buddy_allocator_never_overlaps_and_merges_back(ops):
    ft = FrameTable(2048)
    live: dict[int, int] = {}
    owned = np.zeros(ft.nr_frames, dtype=bool)
    for alloc, order in ops:
        if alloc or not live:
            head = ft.alloc(order)
            if head < 0:
                continue
            assert head % (1 << order) == 0
            assert not owned[head : head + (1 << order)].any()
            owned[head : head + (1 << order)] = True
            live[head] = order
        else:
            head, order = live.popitem()
            owned[head : head + (1 << order)] = False
            ft.free(head, order)
        assert ft.free_frames == ft.nr_frames - int(owned.sum())
    for head, order in live.items():
        ft.free(head, order)
    # Everything merged back into whole PMD blocks.
    assert sorted(ft.free_lists[9]) == list(range(0, ft.nr_frames, 512))
    assert not any(ft.free_lists[o] for o in range(9))


def test_lru_lists_keep_order_and_counts():
    ft = FrameTable(512)
    for head in (1, 2, 3):
        ft.lru_add(head, False, 1)
    ft.lru_add(8, True, 8)
    assert ft.lru_pages == [3, 8]
    assert ft.lru_tail(False) == 1  # oldest at the tail
    ft.lru_del(1, False, 1)
    assert ft.lru_tail(False) == 2
    ft.lru_insert_after(2, 5, False)
    ft.lru_del(2, False, 1)
    assert ft.lru_tail(False) == 5
    assert ft.lru_pages == [2, 8]


def test_vectorised_pte_lookup_matches_scalar():
    pt = PageTables(initial_blocks=1)
    rng = np.random.default_rng(3)
    pids = rng.integers(1, 4, 500).astype(np.uint32)
    pages = rng.integers(0, 1 << 20, 500).astype(np.uint64)
    for pid, page in zip(pids[:300].tolist(), pages[:300].tolist(), strict=True):
        pt.pti(pid, page)  # grows the table several times
    vec = pt.ptis(pids, pages)
    for i, (pid, page) in enumerate(zip(pids.tolist(), pages.tolist(), strict=True)):
        assert vec[i] == pt.pti(pid, page, create=False)
    assert (vec[:300] >= 0).all()


def test_vma_map_merges_and_unmap_splits():
    mm = MmStruct(1)
    mm.map_range(0, 10)
    mm.map_range(10, 20)
    mm.map_range(30, 40)
    assert [(v.start, v.end) for v in mm.vmas] == [(0, 20), (30, 40)]
    mm.unmap_range(5, 35)
    assert [(v.start, v.end) for v in mm.vmas] == [(0, 5), (35, 40)]
    assert mm.find_vma(4) is not None and mm.find_vma(5) is None
