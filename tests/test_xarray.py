from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostswap.kernel import gfp
from ghostswap.kernel.bug import KernelError
from ghostswap.kernel.gfp import GFP_ATOMIC, GFP_KERNEL, FailureInjection
from ghostswap.kernel.xarray import (
    XA_FLAGS_ALLOC,
    XA_LIMIT,
    XArray,
    xa_alloc,
    xa_erase,
    xa_insert,
    xa_load,
    xa_nr_nodes,
    xa_store,
)


def test_store_load_erase() -> None:
    xa = XArray()
    assert xa_store(xa, 5, "a", GFP_KERNEL) is None
    assert xa_store(xa, 5, "b", GFP_KERNEL) == "a"
    assert xa_load(xa, 5) == "b"
    assert xa_erase(xa, 5) == "b"
    assert xa_load(xa, 5) is None


def test_insert_refuses_occupied_index() -> None:
    xa = XArray()
    xa_insert(xa, 3, "x", GFP_KERNEL)
    with pytest.raises(KernelError) as err:
        xa_insert(xa, 3, "y", GFP_KERNEL)
    assert err.value.errno == "EBUSY"


def test_alloc_hands_out_lowest_free_index_within_limit() -> None:
    xa = XArray(XA_FLAGS_ALLOC)
    xa_insert(xa, 0, "header", GFP_KERNEL)
    ids = [xa_alloc(xa, f"c{i}", XA_LIMIT(1, 5), GFP_ATOMIC) for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    with pytest.raises(KernelError) as err:
        xa_alloc(xa, "full", XA_LIMIT(1, 5), GFP_ATOMIC)
    assert err.value.errno == "EBUSY"
    xa_erase(xa, 4)
    xa_erase(xa, 2)
    assert xa_alloc(xa, "again", XA_LIMIT(1, 5), GFP_ATOMIC) == 2
    assert xa_alloc(xa, "again", XA_LIMIT(1, 5), GFP_ATOMIC) == 4


def test_alloc_after_store_beyond_high_water_mark_fills_the_gap() -> None:
    xa = XArray(XA_FLAGS_ALLOC)
    xa_store(xa, 10, "far", GFP_KERNEL)
    assert xa_alloc(xa, "low", XA_LIMIT(3, 100), GFP_KERNEL) == 3
    assert xa_alloc(xa, "low", XA_LIMIT(0, 100), GFP_KERNEL) == 0


@settings(max_examples=60)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=80))
def test_alloc_matches_a_reference_model(ops: list[tuple[bool, int]]) -> None:
    xa = XArray(XA_FLAGS_ALLOC)
    used: set[int] = set()
    for alloc, index in ops:
        if alloc:
            free = [i for i in range(1, 31) if i not in used]
            try:
                got = xa_alloc(xa, object(), XA_LIMIT(1, 30), GFP_KERNEL)
            except KernelError:
                assert not free
                continue
            assert got == free[0]
            used.add(got)
        elif index in used:
            xa_erase(xa, index)
            used.discard(index)
    assert {i for i, _ in xa.items()} == used


def test_node_count_follows_the_radix_tree_shape() -> None:
    xa = XArray(XA_FLAGS_ALLOC)
    xa_store(xa, 0, "only", GFP_KERNEL)
    assert xa_nr_nodes(xa) == 0  # a lone entry at 0 lives in xa_head
    xa_store(xa, 1, "two", GFP_KERNEL)
    assert xa_nr_nodes(xa) == 1
    xa_store(xa, 64, "next leaf", GFP_KERNEL)
    assert xa_nr_nodes(xa) == 3  # two leaves and a root
    xa_store(xa, 64 * 64, "third level", GFP_KERNEL)
    # leaves {0, 64}: 2 + {4096}: 1; level 1: prefixes 0 and 1: 2; root: 1
    assert xa_nr_nodes(xa) == 6
    xa_erase(xa, 64 * 64)
    assert xa_nr_nodes(xa) == 3


def test_atomic_node_allocation_can_fail() -> None:
    gfp.set_injection(FailureInjection(sites={"xa_alloc": 1.0}))
    xa = XArray(XA_FLAGS_ALLOC)
    with pytest.raises(KernelError) as err:
        xa_alloc(xa, "x", XA_LIMIT(1, 10), GFP_ATOMIC)
    assert err.value.errno == "ENOMEM"
    assert xa_load(xa, 1) is None
