"""zsmalloc's pool size (mm/zsmalloc.py): the class table as the kernel
builds it, and the pages a sequence of allocations and frees holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ghostswap.mm.zsmalloc import (
    ZS_HANDLE_SIZE,
    ZS_INUSE_RATIO_100,
    ZS_SIZE_CLASSES,
    ZsPool,
    calculate_zspage_chain_size,
    get_size_class_index,
    zs_free,
    zs_get_total_pages,
    zs_malloc,
)


def test_the_chain_size_wastes_least() -> None:
    # The kernel's own examples: class 208 (commit "zsmalloc: rework zspage
    # chain size selection") and class 1568 (Documentation/mm/zsmalloc.rst).
    assert calculate_zspage_chain_size(208) == 3
    assert calculate_zspage_chain_size(1568) == 5
    assert calculate_zspage_chain_size(1024) == 1  # a power of two fills a page


def test_the_class_table_merges_neighbours_with_the_same_zspages() -> None:
    pool = ZsPool()
    assert len(pool.size_class) == ZS_SIZE_CLASSES == 255
    c96 = pool.size_class[96]
    assert (c96.size, c96.pages_per_zspage, c96.objs_per_zspage) == (1568, 5, 13)
    huge = pool.size_class[ZS_SIZE_CLASSES - 1]
    assert (huge.size, huge.pages_per_zspage, huge.objs_per_zspage) == (4096, 1, 1)
    for i, class_ in enumerate(pool.size_class):
        assert class_.index >= i and pool.size_class[class_.index] is class_
        if class_.index != i:  # merged into the next bigger class
            own = 32 + i * 16
            pages = calculate_zspage_chain_size(own)
            assert (pages, pages * 4096 // own) == (class_.pages_per_zspage, class_.objs_per_zspage)


def test_the_handle_and_the_class_index_count_the_handle_bytes() -> None:
    assert get_size_class_index(32) == 0
    assert get_size_class_index(33) == 1
    assert get_size_class_index(5000) == ZS_SIZE_CLASSES - 1
    pool = ZsPool()
    handle = zs_malloc(pool, 32 - ZS_HANDLE_SIZE + 1)  # 33 bytes with the handle
    assert pool.size_class[handle & 0xFF].size == 48


def test_a_zspage_gives_its_pages_back_only_when_empty() -> None:
    pool = ZsPool()
    objs = pool.size_class[get_size_class_index(1560 + ZS_HANDLE_SIZE)].objs_per_zspage
    handles = [zs_malloc(pool, 1560) for _ in range(2 * objs)]
    assert zs_get_total_pages(pool) == 2 * 5
    for h in handles[::2]:  # half the objects, some from each zspage
        zs_free(pool, h)
    assert zs_get_total_pages(pool) == 2 * 5
    zs_malloc(pool, 1560)  # fills a hole: no new zspage
    assert zs_get_total_pages(pool) == 2 * 5
    for h in handles[1::2]:
        zs_free(pool, h)
    assert zs_get_total_pages(pool) == 5  # the zspage with the new object stays


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 4096), st.integers(0, 1 << 16)),
                max_size=300))  # fmt: skip
def test_pages_are_the_zspages_in_use_and_a_new_zspage_only_when_the_class_is_full(
    ops: list[tuple[bool, int, int]],
) -> None:
    pool = ZsPool()
    live: list[int] = []
    for alloc, size, pick in ops:
        if alloc or not live:
            class_ = pool.size_class[get_size_class_index(size + ZS_HANDLE_SIZE)]
            had_room = any(n < class_.objs_per_zspage for n in class_.inuse.values())
            zspages = len(class_.inuse)
            live.append(zs_malloc(pool, size))
            assert len(class_.inuse) == zspages + (not had_room)
        else:
            zs_free(pool, live.pop(pick % len(live)))
        classes = {id(c): c for c in pool.size_class}.values()
        assert zs_get_total_pages(pool) == sum(len(c.inuse) * c.pages_per_zspage for c in classes)
        for c in classes:
            for zspage, inuse in c.inuse.items():
                assert 0 < inuse <= c.objs_per_zspage
                assert zspage in c.fullness_list[c.fullness(inuse)]
            assert sum(map(len, c.fullness_list)) == len(c.inuse)
            assert not c.fullness_list[0]
            assert all(c.inuse[z] == c.objs_per_zspage for z in c.fullness_list[ZS_INUSE_RATIO_100])
    for handle in live:
        zs_free(pool, handle)
    assert zs_get_total_pages(pool) == 0
