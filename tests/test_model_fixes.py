"""Model corrections the checker led to."""

from __future__ import annotations

import pytest

from ghostswap.kernel.bug import KernelWarning
from ghostswap.kernel.xarray import XA_FLAGS_ALLOC, XA_LIMIT, XArray, xa_alloc, xa_load
from ghostswap.mm import folio as folio_mod
from ghostswap.mm import swap_state, swapfile, swapon
from ghostswap.mm.folio import PG_locked, folio_alloc
from ghostswap.mm.swap import SWAPFILE_CLUSTER, SwapSubsystem


def test_xa_alloc_sets_the_id_before_publishing() -> None:
    xa = XArray(XA_FLAGS_ALLOC, "pool")
    seen = []

    def set_id(index: int) -> None:
        seen.append((index, xa_load(xa, index)))

    assert xa_alloc(xa, "a", XA_LIMIT(1, 10), 0, set_id) == 1
    assert seen == [(1, None)]
    assert xa_load(xa, 1) == "a"


def test_a_new_ghost_cluster_carries_its_index_when_published() -> None:
    subsys = SwapSubsystem(1 << 16)
    si = swapon.swapon(subsys, "ghost", 4 * SWAPFILE_CLUSTER)
    folio = folio_alloc()
    assert folio is not None
    folio.flags |= PG_locked
    assert swapfile.folio_alloc_swap(subsys, folio)
    assert si.cluster_info_pool is not None
    for index, ci in si.cluster_info_pool.items():
        assert ci.index == index and ci.lock.name == f"ci{index}"


def test_swap_cache_lookup_of_a_freed_folio_warns_instead_of_crashing() -> None:
    subsys = SwapSubsystem(1 << 16)
    swapon.swapon(subsys, "ghost", 4 * SWAPFILE_CLUSTER)
    folio = folio_alloc()
    assert folio is not None
    folio.flags |= PG_locked
    assert swapfile.folio_alloc_swap(subsys, folio)
    assert swap_state.swap_cache_get_folio(subsys, folio.swap) is folio
    folio_mod.mem_map.pop(folio.pfn)  # freed while the table still points at it: a model bug
    try:
        with pytest.raises(KernelWarning, match="freed folio"):
            swap_state.swap_cache_get_folio(subsys, folio.swap)
    finally:
        folio_mod.mem_map[folio.pfn] = folio
