"""The swap table entry encoding and accessors (mm/swap_table.h).

Models the linux-mm tree of 2026 (swap table phases I-IV) on x86_64: each
in-use cluster owns a table of ``SWAPFILE_CLUSTER`` longs, one per slot::

    NULL:     |---------------- 0 ---------------|   free slot
    Shadow:   |COUNT|Z|----- SHADOW_VAL ------|1|   swapped out
    PFN:      |COUNT|Z|--------- PFN --------|10|   in the swap cache
    Pointer:  |C|-------- vswap offset ------|100|  reverse map
    Bad:      |--------------- 1 -----------|1000|  header or hole

With 40 PFN bits (``MAX_POSSIBLE_PHYSMEM_BITS`` 52 minus ``PAGE_SHIFT``) the
top 5 bits hold the flags: the zero-page flag Z (bit 59) and a 4-bit swap
count (bits 60-63). A count that reaches ``SWP_TB_COUNT_MAX`` continues in
the cluster's extend table. The table itself is an 8-byte-per-slot
``array`` whose poisoned twin traps any access after it is freed.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

from ghostswap.kernel import runtime as _rt
from ghostswap.kernel.lean import compile_lean
from ghostswap.kernel.rcu import rcu_dereference, rcu_read_lock, rcu_read_unlock
from ghostswap.kernel.runtime import checked_twin
from ghostswap.kernel.spinlock import lockdep_assert_held

if TYPE_CHECKING:  # swap.py imports this module
    from ghostswap.mm.swap import SwapClusterInfo

__all__ = [
    "SWAP_CACHE_PFN_BITS",
    "SWAP_CACHE_PFN_MARK_BITS",
    "SWP_TB_BAD",
    "SWP_TB_COUNT_BITS",
    "SWP_TB_COUNT_MAX",
    "SWP_TB_FLAGS_BITS",
    "SWP_TB_NULL",
    "SWP_TB_ZERO_FLAG",
    "SwapExtendTable",
    "SwapMemcgTable",
    "SwapTable",
    "pfn_to_swp_tb",
    "shadow_to_swp_tb",
    "swap_table_get",
    "swp_tb_get_count",
    "swp_tb_is_bad",
    "swp_tb_is_countable",
    "swp_tb_is_folio",
    "swp_tb_is_null",
    "swp_tb_is_pointer",
    "swp_tb_is_shadow",
    "swp_tb_to_pfn",
    "swp_tb_to_shadow",
    "xa_mk_value",
    "xa_to_value",
]

BITS_PER_LONG = 64
LONG_MASK = (1 << BITS_PER_LONG) - 1
SWAPFILE_CLUSTER = 512  # mirrors mm/swap.py; kept here to avoid an import cycle

SWAP_CACHE_PFN_BITS = 52 - 12  # MAX_POSSIBLE_PHYSMEM_BITS - PAGE_SHIFT (x86_64, 5-level)
SWAP_CACHE_PFN_MARK_BITS = 2
SWAP_COUNT_MIN_BITS = 2
SWAP_TABLE_HAS_ZEROFLAG = (
    BITS_PER_LONG - SWAP_CACHE_PFN_MARK_BITS - SWAP_CACHE_PFN_BITS
) > SWAP_COUNT_MIN_BITS

SWP_TB_NULL = 0
SWP_TB_SHADOW_MARK = 0b1
SWP_TB_PFN_MARK = 0b10
SWP_TB_PFN_MARK_MASK = (1 << SWAP_CACHE_PFN_MARK_BITS) - 1
SWP_TB_PFN_BITS = SWAP_CACHE_PFN_BITS + SWAP_CACHE_PFN_MARK_BITS
SWP_TB_FLAGS_BITS = min(5, BITS_PER_LONG - SWP_TB_PFN_BITS)
SWP_TB_COUNT_BITS = SWP_TB_FLAGS_BITS - int(SWAP_TABLE_HAS_ZEROFLAG)
SWP_TB_FLAGS_SHIFT = BITS_PER_LONG - SWP_TB_FLAGS_BITS
SWP_TB_COUNT_SHIFT = BITS_PER_LONG - SWP_TB_COUNT_BITS
SWP_TB_FLAGS_MASK = LONG_MASK & ~(LONG_MASK >> SWP_TB_FLAGS_BITS)
SWP_TB_COUNT_MASK = LONG_MASK & ~(LONG_MASK >> SWP_TB_COUNT_BITS)
SWP_TB_COUNT_MAX = (1 << SWP_TB_COUNT_BITS) - 1
SWP_TB_ZERO_FLAG = 1 << (BITS_PER_LONG - SWP_TB_FLAGS_BITS)
SWP_TB_BAD = (LONG_MASK << 3) & LONG_MASK
SWAP_COUNT_SHIFT = SWP_TB_FLAGS_BITS  # shadow values leave the flag bits free

SWP_TB_PTR_MARK_BITS = 3
SWP_TB_PTR_MARK = 0b100
SWP_TB_PTR_MARK_MASK = (1 << SWP_TB_PTR_MARK_BITS) - 1
SWP_RMAP_CACHE_ONLY = 1 << (BITS_PER_LONG - 1)
SWP_RMAP_ENTRY_MASK = LONG_MASK & ~(SWP_RMAP_CACHE_ONLY | SWP_TB_PTR_MARK_MASK)

_NOT_COUNTABLE = -1  # the kernel's swp_tb_get_count() returns -EINVAL


class SwapTable(array):
    """``struct swap_table``: SWAPFILE_CLUSTER atomic longs (one 4 KiB page)."""

    __slots__ = ()


class SwapMemcgTable(array):
    """``struct swap_memcg_table``: an unsigned short memcg id per slot."""

    __slots__ = ()


class SwapExtendTable(array):
    """A cluster's extend table: an unsigned int count per slot."""

    __slots__ = ()


_ZERO_TABLE = bytes(8 * SWAPFILE_CLUSTER)


def swap_table_new() -> SwapTable:
    return SwapTable("Q", _ZERO_TABLE)


def swap_memcg_table_new() -> SwapMemcgTable:
    return SwapMemcgTable("H", bytes(2 * SWAPFILE_CLUSTER))


def swap_extend_table_new() -> SwapExtendTable:
    return SwapExtendTable("I", bytes(4 * SWAPFILE_CLUSTER))


# -- XA_VALUE shadows (include/linux/xarray.h) ---------------------------------
def xa_mk_value(v: int) -> int:
    return (v << 1) | 1


def xa_to_value(entry: int) -> int:
    return entry >> 1


# -- constructing entries -------------------------------------------------------
def null_to_swp_tb() -> int:
    return SWP_TB_NULL


def __count_to_swp_tb(count: int) -> int:
    return count << SWP_TB_COUNT_SHIFT


def pfn_to_swp_tb(pfn: int, flags: int) -> int:
    return (pfn << SWAP_CACHE_PFN_MARK_BITS) | SWP_TB_PFN_MARK | (flags << SWP_TB_FLAGS_SHIFT)


def shadow_to_swp_tb(shadow: int | None, flags: int) -> int:
    """`shadow` is an XA_VALUE (odd) or None for an empty placeholder."""
    return (shadow or 0) | SWP_TB_SHADOW_MARK | (flags << SWP_TB_FLAGS_SHIFT)


# -- type tests -----------------------------------------------------------------
def swp_tb_is_null(swp_tb: int) -> bool:
    return not swp_tb


def swp_tb_is_folio(swp_tb: int) -> bool:
    return (swp_tb & SWP_TB_PFN_MARK_MASK) == SWP_TB_PFN_MARK


def swp_tb_is_shadow(swp_tb: int) -> bool:
    return bool(swp_tb & 1)


def swp_tb_is_bad(swp_tb: int) -> bool:
    return swp_tb == SWP_TB_BAD


def swp_tb_is_pointer(swp_tb: int) -> bool:
    return (swp_tb & SWP_TB_PTR_MARK_MASK) == SWP_TB_PTR_MARK


def swp_tb_is_countable(swp_tb: int) -> bool:
    return bool(swp_tb & 1) or (swp_tb & 3) == SWP_TB_PFN_MARK or not swp_tb


# -- reading entries ------------------------------------------------------------
def swp_tb_to_pfn(swp_tb: int) -> int:
    return (swp_tb & ~SWP_TB_FLAGS_MASK) >> SWAP_CACHE_PFN_MARK_BITS


def swp_tb_to_shadow(swp_tb: int) -> int:
    return swp_tb & ~SWP_TB_FLAGS_MASK


def __swp_tb_get_count(swp_tb: int) -> int:
    return swp_tb >> SWP_TB_COUNT_SHIFT


def __swp_tb_get_flags(swp_tb: int) -> int:
    return swp_tb >> SWP_TB_FLAGS_SHIFT


def swp_tb_get_count(swp_tb: int) -> int:
    """The inline count, or a negative value for bad and pointer entries."""
    if swp_tb_is_countable(swp_tb):
        return swp_tb >> SWP_TB_COUNT_SHIFT
    return _NOT_COUNTABLE


def __swp_tb_mk_count(swp_tb: int, count: int) -> int:
    return (swp_tb & ~SWP_TB_COUNT_MASK) | (count << SWP_TB_COUNT_SHIFT)


# -- pointer (reverse map) entries ----------------------------------------------
def offset_to_swp_tb_ptr(offset: int) -> int:
    return (offset << SWP_TB_PTR_MARK_BITS) | SWP_TB_PTR_MARK


def swp_tb_ptr_to_offset(swp_tb: int) -> int:
    return (swp_tb & SWP_RMAP_ENTRY_MASK) >> SWP_TB_PTR_MARK_BITS


# -- table access -----------------------------------------------------------------
# `ci` is a SwapClusterInfo (mm/swap.py); typed loosely to keep this module
# free of that import.


def __swap_table_set(ci: SwapClusterInfo, off: int, swp_tb: int) -> None:
    """Set a slot. Context: ci.lock held."""
    ci.table[off] = swp_tb  # type: ignore[index]  # a locked in-use cluster has its table


@checked_twin(__swap_table_set)
def _swap_table_set_checked(ci: SwapClusterInfo, off: int, swp_tb: int) -> None:
    _rt.checked.assert_held(ci.lock, ci.lock.name)  # type: ignore[union-attr]
    ci.table[off] = swp_tb  # type: ignore[index]


def __swap_table_xchg(ci: SwapClusterInfo, off: int, swp_tb: int) -> int:
    lockdep_assert_held(ci.lock)
    table = ci.table
    assert table is not None
    old = table[off]
    table[off] = swp_tb
    return old


def __swap_table_get(ci: SwapClusterInfo, off: int) -> int:
    """Read a slot under ci.lock or inside an RCU read section."""
    return ci.table[off]  # type: ignore[index]  # the caller holds the cluster


@checked_twin(__swap_table_get)
def _swap_table_get_checked(ci: SwapClusterInfo, off: int) -> int:
    c = _rt.checked
    c.rcu_dereference(f"{ci.lock.name}.table", c.holds(ci.lock))  # type: ignore[union-attr]
    return ci.table[off]  # type: ignore[index]


def swap_table_get(ci: SwapClusterInfo | None, off: int) -> int:
    """Lockless read of a slot; NULL when the cluster or its table is gone.

    The None check is the seed's addition: a ghost cluster looked up by
    index may no longer exist.
    """
    if ci is None:
        return SWP_TB_NULL
    rcu_read_lock()
    table = rcu_dereference(ci.table, "ci.table")
    swp_tb = table[off] if table is not None else SWP_TB_NULL
    rcu_read_unlock()
    return swp_tb


def swap_table_get_unchecked(ci: SwapClusterInfo | None, off: int) -> int:
    """``swap_table_get`` as it was before the seed: no check for a missing
    cluster (the ``no-null-cluster-check`` revert)."""
    rcu_read_lock()
    table = rcu_dereference(ci.table, "ci.table")  # type: ignore[union-attr]  # the oops
    swp_tb = table[off] if table is not None else SWP_TB_NULL
    rcu_read_unlock()
    return swp_tb


def __swap_table_set_zero(ci: SwapClusterInfo, off: int) -> None:
    __swap_table_set(ci, off, __swap_table_get(ci, off) | SWP_TB_ZERO_FLAG)


def __swap_table_test_zero(ci: SwapClusterInfo, off: int) -> bool:
    return bool(__swap_table_get(ci, off) & SWP_TB_ZERO_FLAG)


def __swap_table_clear_zero(ci: SwapClusterInfo, off: int) -> None:
    __swap_table_set(ci, off, __swap_table_get(ci, off) & ~SWP_TB_ZERO_FLAG)


# -- memcg ids (phase IV: a per-cluster table replaces swap_cgroup) -----------------
def __swap_cgroup_set(ci: SwapClusterInfo, off: int, nr: int, memcg_id: int) -> None:
    lockdep_assert_held(ci.lock)
    table = ci.memcg_table
    if table is None:
        return
    for i in range(off, off + nr):
        table[i] = memcg_id


def __swap_cgroup_get(ci: SwapClusterInfo, off: int) -> int:
    table = ci.memcg_table
    return table[off] if table is not None else 0


def __swap_cgroup_clear(ci: SwapClusterInfo, off: int, nr: int) -> int:
    table = ci.memcg_table
    if table is None:
        return 0
    old = table[off]
    if old:
        for i in range(off, off + nr):
            table[i] = 0
    return old


compile_lean(globals())
