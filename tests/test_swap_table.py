"""The swap table entry encoding of mm/swap_table.h on x86_64."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ghostswap.mm import swap_table as tb


def test_layout_constants_match_x86_64() -> None:
    assert tb.SWAP_CACHE_PFN_BITS == 40
    assert tb.SWAP_TABLE_HAS_ZEROFLAG
    assert tb.SWP_TB_FLAGS_BITS == 5
    assert tb.SWP_TB_COUNT_BITS == 4
    assert tb.SWP_TB_COUNT_MAX == 15
    assert tb.SWP_TB_ZERO_FLAG == 1 << 59
    assert tb.SWP_TB_COUNT_SHIFT == 60
    assert tb.SWP_TB_BAD == 0xFFFF_FFFF_FFFF_FFF8


@given(pfn=st.integers(0, (1 << 40) - 1), count=st.integers(0, 15), zero=st.booleans())
def test_pfn_entry_round_trip(pfn: int, count: int, zero: bool) -> None:
    swp_tb = tb.pfn_to_swp_tb(pfn, int(zero))
    swp_tb = tb.__swp_tb_mk_count(swp_tb, count)
    assert swp_tb < 1 << 64
    assert tb.swp_tb_is_folio(swp_tb)
    assert not tb.swp_tb_is_shadow(swp_tb)
    assert not tb.swp_tb_is_bad(swp_tb) and not tb.swp_tb_is_null(swp_tb)
    assert tb.swp_tb_to_pfn(swp_tb) == pfn
    assert tb.swp_tb_get_count(swp_tb) == count
    assert bool(swp_tb & tb.SWP_TB_ZERO_FLAG) == zero


@given(value=st.integers(0, (1 << 58) - 1), count=st.integers(0, 15))
def test_shadow_entry_round_trip(value: int, count: int) -> None:
    shadow = tb.xa_mk_value(value)
    swp_tb = tb.__swp_tb_mk_count(tb.shadow_to_swp_tb(shadow, 0), count)
    assert tb.swp_tb_is_shadow(swp_tb) and not tb.swp_tb_is_folio(swp_tb)
    assert tb.swp_tb_to_shadow(swp_tb) == shadow
    assert tb.xa_to_value(tb.swp_tb_to_shadow(swp_tb)) == value
    assert tb.swp_tb_get_count(swp_tb) == count


def test_empty_shadow_is_a_counted_placeholder() -> None:
    swp_tb = tb.__swp_tb_mk_count(tb.shadow_to_swp_tb(None, 0), 1)
    assert tb.swp_tb_is_shadow(swp_tb)
    assert tb.swp_tb_get_count(swp_tb) == 1


def test_bad_and_pointer_entries_are_not_countable() -> None:
    assert tb.swp_tb_get_count(tb.SWP_TB_BAD) < 0
    assert tb.swp_tb_is_bad(tb.SWP_TB_BAD)
    ptr = tb.offset_to_swp_tb_ptr(12345)
    assert tb.swp_tb_is_pointer(ptr)
    assert not tb.swp_tb_is_countable(ptr)
    assert tb.swp_tb_ptr_to_offset(ptr) == 12345
    assert not tb.swp_tb_is_pointer(tb.SWP_TB_BAD)
    assert tb.swp_tb_get_count(tb.SWP_TB_NULL) == 0
