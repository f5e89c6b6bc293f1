"""Small helpers the tests share."""

from __future__ import annotations

from ghostswap.kernel import quiescent
from ghostswap.measure.populate import swap_out_folio
from ghostswap.mm.folio import Folio, PG_locked, PG_uptodate, folio_alloc
from ghostswap.mm.swap import SwapSubsystem


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
    entry = swap_out_folio(subsys, new_folio(order), shadow)
    assert entry
    return entry
