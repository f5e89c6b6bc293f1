"""Small helpers the tests share."""

from __future__ import annotations

from ghostswap.kernel import quiescent
from ghostswap.kernel.spinlock import spin_unlock
from ghostswap.mm import swapfile
from ghostswap.mm.folio import Folio, PG_locked, PG_uptodate, folio_alloc
from ghostswap.mm.swap import SwapSubsystem, swap_cluster_lock, swp_offset, swp_type
from ghostswap.mm.swap_state import __swap_cache_del_folio


def new_folio(order: int = 0, memcg_id: int = 0) -> Folio:
    """A locked, up-to-date anonymous folio ready for swap-out."""
    folio = folio_alloc(order, memcg_id=memcg_id)
    assert folio is not None
    folio.flags |= PG_locked | PG_uptodate
    return folio


def settle() -> None:
    quiescent()


def swap_out(subsys: SwapSubsystem, order: int = 0, shadow: int | None = None) -> int:
    """Swap a fresh folio out the way reclaim does (allocate, one mapping's
    count, write, drop from the cache); return its first entry."""
    folio = new_folio(order)
    assert swapfile.folio_alloc_swap(subsys, folio)
    assert swapfile.folio_dup_swap(subsys, folio) is None
    entry = folio.swap
    si = subsys.swap_info[swp_type(entry)]
    assert si is not None
    ci = swap_cluster_lock(si, swp_offset(entry))
    assert ci is not None
    __swap_cache_del_folio(si, ci, folio, entry, shadow)
    spin_unlock(ci.lock)
    return entry
