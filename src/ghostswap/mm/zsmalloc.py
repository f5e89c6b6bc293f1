"""mm/zsmalloc.c: the allocator zswap stores compressed pages in, reduced
to what decides its size in pages.

zswap's pool limit is measured in zsmalloc pages (``zswap_total_pages()``
sums ``zs_get_total_pages()``), not in compressed bytes. zsmalloc rounds
each object (plus its 8-byte handle) up to a size class 16 bytes apart,
packs a class's objects into zspages of 1 to ``CONFIG_ZSMALLOC_CHAIN_SIZE``
pages, fills the fullest zspage of the class first, and gives a zspage's
pages back only when its last object is freed. So a pool that loses
entries here and there stays big: a full pool drains to the accept
threshold more slowly than its bytes do, and zswap rejects stores (to the
swap device) for longer. Compaction (``zs_compact``) runs from a shrinker
that memcg reclaim does not call, and is not modelled.

Objects have no addresses here: a handle names its class and zspage.
"""

from __future__ import annotations

from ghostswap.mm.content import PAGE_SIZE

__all__ = ["ZS_HANDLE_SIZE", "ZsPool", "zs_free", "zs_get_total_pages", "zs_malloc"]

ZS_HANDLE_SIZE = 8
ZS_MIN_ALLOC_SIZE = 32
ZS_MAX_ALLOC_SIZE = PAGE_SIZE
CLASS_BITS = 8
ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> CLASS_BITS
ZS_SIZE_CLASSES = -(-(ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA) + 1
# CONFIG_ZSMALLOC_CHAIN_SIZE: the default, and this host's.
ZS_MAX_PAGES_PER_ZSPAGE = 8
# Fullness groups: empty, 0-9% ... 90-99% in use, full (enum fullness_group).
ZS_INUSE_RATIO_0 = 0
ZS_INUSE_RATIO_99 = 10
ZS_INUSE_RATIO_100 = 11
# A handle is zspage_id << _CLASS_SHIFT | class index.
_CLASS_SHIFT = 8


def calculate_zspage_chain_size(class_size: int) -> int:
    """``calculate_zspage_chain_size()``: the pages per zspage that waste
    the least of the chain's tail (the first such count)."""
    if class_size & (class_size - 1) == 0:
        return 1
    best, min_waste = 1, PAGE_SIZE * ZS_MAX_PAGES_PER_ZSPAGE
    for pages in range(1, ZS_MAX_PAGES_PER_ZSPAGE + 1):
        waste = pages * PAGE_SIZE % class_size
        if waste < min_waste:
            best, min_waste = pages, waste
    return best


def get_size_class_index(size: int) -> int:
    idx = 0
    if size > ZS_MIN_ALLOC_SIZE:
        idx = -(-(size - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA)
    return min(ZS_SIZE_CLASSES - 1, idx)


class SizeClass:
    """``struct size_class``: its zspages by fullness group, each zspage
    as its number of objects in use."""

    __slots__ = ("fullness_list", "index", "inuse", "objs_per_zspage", "pages_per_zspage", "size")

    def __init__(self, index: int, size: int, pages_per_zspage: int, objs_per_zspage: int) -> None:
        self.index = index
        self.size = size
        self.pages_per_zspage = pages_per_zspage
        self.objs_per_zspage = objs_per_zspage
        # Each list is a dict in insertion order; its last key is the list's
        # head (insert_zspage() adds at the head, find_get_zspage() takes it).
        self.fullness_list: list[dict[int, None]] = [{} for _ in range(ZS_INUSE_RATIO_100 + 1)]
        self.inuse: dict[int, int] = {}  # zspage id -> objects in use

    def fullness(self, inuse: int) -> int:
        """``get_fullness_group()``."""
        if inuse == 0:
            return ZS_INUSE_RATIO_0
        if inuse == self.objs_per_zspage:
            return ZS_INUSE_RATIO_100
        return 100 * inuse // self.objs_per_zspage // 10 + 1


class ZsPool:
    """``struct zs_pool`` as ``zs_create_pool()`` sets it up: 255 size
    indexes, neighbouring ones merged into one class when their zspages
    hold the same pages and objects (``can_merge()``)."""

    def __init__(self) -> None:
        classes: list[SizeClass] = []  # from the biggest size down
        prev: SizeClass | None = None
        for i in range(ZS_SIZE_CLASSES - 1, -1, -1):
            size = min(ZS_MIN_ALLOC_SIZE + i * ZS_SIZE_CLASS_DELTA, ZS_MAX_ALLOC_SIZE)
            pages = calculate_zspage_chain_size(size)
            objs = pages * PAGE_SIZE // size
            if prev is None or prev.pages_per_zspage != pages or prev.objs_per_zspage != objs:
                prev = SizeClass(i, size, pages, objs)
            classes.append(prev)
        classes.reverse()
        self.size_class = classes
        self.pages_allocated = 0
        self.next_zspage = 1


def _move(class_: SizeClass, zspage: int, old: int, new: int) -> None:
    if new != old:
        del class_.fullness_list[old][zspage]
        class_.fullness_list[new][zspage] = None


def zs_malloc(pool: ZsPool, size: int) -> int:
    """``zs_malloc()``: a handle for an object of `size` bytes (1..4096)."""
    if not 0 < size <= ZS_MAX_ALLOC_SIZE:
        raise ValueError(f"zs_malloc of {size} bytes")
    class_ = pool.size_class[get_size_class_index(size + ZS_HANDLE_SIZE)]
    zspage = 0
    for group in range(ZS_INUSE_RATIO_99, ZS_INUSE_RATIO_0, -1):  # find_get_zspage()
        if class_.fullness_list[group]:
            zspage = next(reversed(class_.fullness_list[group]))
            break
    if zspage:
        inuse = class_.inuse[zspage]
        class_.inuse[zspage] = inuse + 1
        _move(class_, zspage, class_.fullness(inuse), class_.fullness(inuse + 1))
    else:  # alloc_zspage()
        zspage = pool.next_zspage
        pool.next_zspage += 1
        class_.inuse[zspage] = 1
        class_.fullness_list[class_.fullness(1)][zspage] = None
        pool.pages_allocated += class_.pages_per_zspage
    return zspage << _CLASS_SHIFT | class_.index


def zs_free(pool: ZsPool, handle: int) -> None:
    """``zs_free()``: the zspage's pages go back with its last object."""
    class_ = pool.size_class[handle & ((1 << _CLASS_SHIFT) - 1)]
    zspage = handle >> _CLASS_SHIFT
    inuse = class_.inuse[zspage] - 1
    old = class_.fullness(inuse + 1)
    if inuse:
        class_.inuse[zspage] = inuse
        _move(class_, zspage, old, class_.fullness(inuse))
    else:  # free_zspage()
        del class_.inuse[zspage]
        del class_.fullness_list[old][zspage]
        pool.pages_allocated -= class_.pages_per_zspage


def zs_get_total_pages(pool: ZsPool) -> int:
    return pool.pages_allocated
