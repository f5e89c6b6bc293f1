"""Reverse mapping of anonymous folios (mm/rmap.c): who maps a folio,
``folio_referenced`` and ``try_to_unmap``.

A folio's mappings are recorded by the first PTE index of each (the folio
is always mapped whole by each of them: the VM splits a large folio before
mapping only part of it); the first in ``FrameTable.rmap``, further ones
(after fork) in ``FrameTable.extra_rmap``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghostswap.kernel.bug import WARN
from ghostswap.kernel.lean import compile_lean
from ghostswap.mm import swapfile
from ghostswap.mm.folio import PG_dirty
from ghostswap.mm.mm_types import (
    FL_ANON,
    PID_SHIFT,
    PMD_NR,
    PTE_DIRTY,
    PTE_EXCL,
    PTE_YOUNG,
    pte_mk_swap,
)

if TYPE_CHECKING:
    from ghostswap.mm.folio import Folio
    from ghostswap.mm.machine import Machine

__all__ = ["folio_add_anon_rmap", "folio_referenced", "folio_remove_rmap", "try_to_unmap"]


def folio_add_anon_rmap(vm: Machine, head: int, base: int) -> None:
    """Record a new mapping of the folio at PTE index `base`."""
    frames = vm.frames
    frames.flags_mv[head] |= FL_ANON
    if frames.rmap_mv[head] < 0:
        frames.rmap_mv[head] = base
    else:
        frames.extra_rmap.setdefault(head, []).append(base)
    count = frames.mapcount_mv[head] + 1
    frames.mapcount_mv[head] = count
    folio = vm.swapcache_folio(head)
    if folio is not None:
        folio.mapcount = count


def folio_remove_rmap(vm: Machine, head: int, base: int) -> int:
    """Forget the mapping at `base`; returns the mappings left."""
    frames = vm.frames
    extra = frames.extra_rmap.get(head)
    if frames.rmap_mv[head] == base:
        if extra:
            frames.rmap_mv[head] = extra.pop()
        else:
            frames.rmap_mv[head] = -1
    elif extra and base in extra:
        extra.remove(base)
    else:
        WARN(f"folio_remove_rmap: frame {head} is not mapped at {base}")
        return int(frames.mapcount_mv[head])
    if extra is not None and not extra:
        del frames.extra_rmap[head]
    count = frames.mapcount_mv[head] - 1
    frames.mapcount_mv[head] = count
    folio = vm.swapcache_folio(head)
    if folio is not None:
        folio.mapcount = count
    return count


def folio_referenced(vm: Machine, head: int, nr: int) -> int:
    """How many mappings of the folio have a young PTE; clears them all
    (``folio_referenced_one`` counts a VMA once, however many of a large
    folio's PTEs in it are young)."""
    frames = vm.frames
    first = frames.rmap_mv[head]
    if first < 0:
        return 0
    pte = vm.pt.pte_mv
    extra = frames.extra_rmap.get(head)
    if nr == 1 and not extra:
        # The common case (one PTE), without the loops' setup cost.
        value = pte[first]
        if value & PTE_YOUNG:
            pte[first] = value & ~PTE_YOUNG
            return 1
        return 0
    referenced = 0
    for base in (first, *extra) if extra else (first,):
        young = False
        for i in range(base, base + nr):
            value = pte[i]
            if value & PTE_YOUNG:
                pte[i] = value & ~PTE_YOUNG
                young = True
        referenced += young
    return referenced


def pti_owner(vm: Machine, pti: int) -> int:
    """The pid whose page table holds PTE index `pti`."""
    return vm.pt.block_key[pti & ~(PMD_NR - 1)] >> PID_SHIFT


def try_to_unmap(vm: Machine, head: int, folio: Folio) -> bool:
    """Replace every mapping of a swap-cache folio by swap entries; True if
    none is left.

    Each mapping takes one count on each slot (``folio_dup_swap``) and
    passes its PTEs' dirty bits to the folio. If a count cannot be taken
    (its extend table could not be allocated), ``try_to_unmap_one`` keeps
    that PTE and stops: the folio stays mapped there and further on, and
    the caller activates it.
    """
    frames = vm.frames
    mappings = frames.mappings(head)
    if not mappings:
        return True
    nr = 1 << folio.order
    pte = vm.pt.pte_mv
    entry = folio.swap
    subsys = vm.subsys
    dirty = False
    done: list[int] = []
    for base in mappings:
        if swapfile.folio_dup_swap(subsys, folio) is not None:
            break
        for i in range(nr):
            value = pte[base + i]
            if value & PTE_DIRTY:
                dirty = True
            pte[base + i] = pte_mk_swap(entry + i, bool(value & PTE_EXCL))
        mm = vm.mms.get(pti_owner(vm, base))
        if mm is not None:
            mm.rss_anon -= nr
            mm.rss_swapents += nr
        done.append(base)
    if dirty:
        folio.flags |= PG_dirty
    vm.unmap_epoch += 1
    if len(done) == len(mappings):
        frames.rmap_mv[head] = -1
        frames.extra_rmap.pop(head, None)
        frames.mapcount_mv[head] = 0
        folio.mapcount = 0
        return True
    for base in done:
        folio_remove_rmap(vm, head, base)
    return False


compile_lean(globals())
