"""Writing folios to swap and reading them back (mm/page_io.c).

``swap_writeout`` is the anon half of ``pageout()``: free the slots if no
one references them, mark zero-filled pages in the swap table instead of
writing them, try zswap, and otherwise write to the device's store. A
ghost device has no store (the seed): the write fails and the folio is
re-activated (``AOP_WRITEPAGE_ACTIVATE``), unless `vm.ghost_store` attaches
one for what-if studies. ``swap_read_folio`` reverses it: zero flag, zswap,
then the store. All I/O is synchronous, so counters that the kernel counts
at submission or completion are counted here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghostswap.kernel.bug import WARN
from ghostswap.kernel.lean import compile_lean
from ghostswap.mm import swapfile, zswap
from ghostswap.mm.content import BAD_TOKEN, ZERO_TOKEN
from ghostswap.mm.folio import PG_dirty, PG_uptodate
from ghostswap.mm.swap import (
    PMD_ORDER,
    SWAPFILE_CLUSTER,
    SWP_OFFSET_MASK,
    SWP_TYPE_SHIFT,
    __swap_offset_to_cluster,
    swap_cluster_lock,
    swap_cluster_unlock,
)
from ghostswap.mm.swap_table import SWP_TB_ZERO_FLAG

if TYPE_CHECKING:
    from ghostswap.mm.folio import Folio
    from ghostswap.mm.machine import Machine

__all__ = [
    "WRITE_ACTIVATE",
    "WRITE_DONE",
    "WRITE_FREED",
    "is_folio_zero_filled",
    "swap_read_folio",
    "swap_writeout",
]

WRITE_DONE = 0  # written (or stored, or zero): the folio is clean
WRITE_FREED = 1  # nobody referenced the slots: they were freed instead
WRITE_ACTIVATE = 2  # AOP_WRITEPAGE_ACTIVATE: keep the folio, dirty


def is_folio_zero_filled(vm: Machine, head: int, nr: int) -> bool:
    """Every page of the folio is zeros (its content token is ZERO_TOKEN,
    which is exactly when its bytes are all zero)."""
    tokens = vm.frames.token_mv
    if nr == 1:
        return tokens[head] == ZERO_TOKEN
    return all(tokens[head + i] == ZERO_TOKEN for i in range(nr))


def _zero_flags(vm: Machine, entry: int, nr: int) -> int:
    """How many of the slots carry the zero flag (``swap_zeromap_batch``).

    A lockless read: the folio in the swap cache pins the slots and so
    their cluster."""
    si = vm.subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    offset = entry & SWP_OFFSET_MASK
    ci = __swap_offset_to_cluster(si, offset)
    assert ci is not None and ci.table is not None
    table = ci.table
    start = offset % SWAPFILE_CLUSTER
    if nr == 1:
        return 1 if table[start] & SWP_TB_ZERO_FLAG else 0
    return sum(1 for off in range(start, start + nr) if table[off] & SWP_TB_ZERO_FLAG)


def _set_zero_flags(vm: Machine, entry: int, nr: int, zero: bool) -> None:
    """``swap_zeromap_folio_set``/``_clear``: the zero flag in the table entries."""
    if not zero and not _zero_flags(vm, entry, nr):
        return
    si = vm.subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    offset = entry & SWP_OFFSET_MASK
    ci = swap_cluster_lock(si, offset)
    assert ci is not None
    table = ci.table
    assert table is not None
    start = offset % SWAPFILE_CLUSTER
    for off in range(start, start + nr):
        if zero:
            table[off] |= SWP_TB_ZERO_FLAG
        else:
            table[off] &= ~SWP_TB_ZERO_FLAG
    swap_cluster_unlock(ci)


def count_swpout_vm_event(vm: Machine, order: int, nr: int) -> None:
    if order >= PMD_ORDER:
        vm.events["thp_swpout"] += 1
    if order:
        vm.mthp.count(order, "swpout")
    vm.events["pswpout"] += nr


def swap_writeout(vm: Machine, folio: Folio, head: int) -> int:
    """Write a locked, unmapped swap-cache folio out; WRITE_DONE,
    WRITE_FREED or WRITE_ACTIVATE."""
    subsys = vm.subsys
    if swapfile.folio_free_swap(subsys, folio):
        return WRITE_FREED
    nr = 1 << folio.order
    entry = folio.swap
    if is_folio_zero_filled(vm, head, nr):
        _set_zero_flags(vm, entry, nr, True)
        vm.events["swpout_zero"] += nr
        folio.flags &= ~PG_dirty
        return WRITE_DONE
    _set_zero_flags(vm, entry, nr, False)
    if vm.zswap is not None and zswap.zswap_store(vm, folio, head):
        if folio.order:
            vm.mthp.count(folio.order, "zswpout")
        folio.flags &= ~PG_dirty
        return WRITE_DONE
    store = vm.stores.get(entry >> SWP_TYPE_SHIFT)
    if store is None:
        # The ghost device has no backing store: the write fails.
        vm.vm_stats["ghost_write_fail"] += nr
        folio.flags |= PG_dirty
        return WRITE_ACTIVATE
    offset = entry & SWP_OFFSET_MASK
    tokens = vm.frames.token_mv
    for i in range(nr):
        store.write_page(offset + i, tokens[head + i])
    count_swpout_vm_event(vm, folio.order, nr)
    folio.flags &= ~PG_dirty
    return WRITE_DONE


def swap_read_folio(vm: Machine, folio: Folio, head: int) -> bool:
    """Fill a locked swap-cache folio from swap; False on a read error
    (the kernel's SIGBUS: the pages get BAD_TOKEN and will not verify)."""
    entry = folio.swap
    nr = 1 << folio.order
    tokens = vm.frames.token_mv
    zero = _zero_flags(vm, entry, nr)
    if zero:
        if zero != nr:
            WARN("swap_read_folio: a large folio with mixed zero and data slots")
            return _read_failed(vm, head, nr)
        for i in range(nr):
            tokens[head + i] = ZERO_TOKEN
        vm.events["swpin_zero"] += nr
        folio.flags |= PG_uptodate
        return True
    err = zswap.zswap_load(vm, folio, head)
    if err is None:
        folio.flags |= PG_uptodate
        return True
    if err == "EIO":
        return _read_failed(vm, head, nr)
    store = vm.stores.get(entry >> SWP_TYPE_SHIFT)
    if store is None:
        return _read_failed(vm, head, nr)
    offset = entry & SWP_OFFSET_MASK
    for i in range(nr):
        tokens[head + i] = store.read_page(offset + i)
    if folio.order:
        vm.mthp.count(folio.order, "swpin")
    vm.events["pswpin"] += nr
    folio.flags |= PG_uptodate
    return True


def _read_failed(vm: Machine, head: int, nr: int) -> bool:
    tokens = vm.frames.token_mv
    for i in range(nr):
        tokens[head + i] = BAD_TOKEN
    vm.vm_stats["read_errors"] += nr
    return False


compile_lean(globals())
