"""Workingset detection for anonymous pages (mm/workingset.c, classic LRU).

On eviction a shadow entry records the cgroup's non-resident age clock;
on refault the distance the clock moved since tells whether the page would
have stayed resident with a little more memory, in which case it starts on
the active list. Shadows are packed as ``pack_shadow`` does and stored in
the swap table by the swap cache (``__swap_cache_del_folio``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghostswap.kernel.lean import compile_lean
from ghostswap.mm.mm_types import FL_ACTIVE, FL_WORKINGSET

if TYPE_CHECKING:
    from ghostswap.mm.folio import Folio
    from ghostswap.mm.machine import Machine

__all__ = ["pack_shadow", "unpack_shadow", "workingset_eviction", "workingset_refault"]

MEM_CGROUP_ID_SHIFT = 16
NODES_SHIFT = 10
WORKINGSET_SHIFT = 1
SWAP_COUNT_SHIFT = 5  # SWP_TB_FLAGS_BITS: anon shadows share the table entry's flag bits
EVICTION_SHIFT = 1 + NODES_SHIFT + MEM_CGROUP_ID_SHIFT + WORKINGSET_SHIFT
EVICTION_SHIFT_ANON = EVICTION_SHIFT + SWAP_COUNT_SHIFT
EVICTION_BITS_ANON = 64 - EVICTION_SHIFT_ANON
EVICTION_MASK_ANON = (1 << EVICTION_BITS_ANON) - 1


def pack_shadow(memcg_id: int, nid: int, eviction: int, workingset: bool) -> int:
    """The XA_VALUE shadow of an evicted anon folio (odd, below the flag bits)."""
    v = eviction & EVICTION_MASK_ANON
    v = (v << MEM_CGROUP_ID_SHIFT) | memcg_id
    v = (v << NODES_SHIFT) | nid
    v = (v << WORKINGSET_SHIFT) | int(workingset)
    return (v << 1) | 1


def unpack_shadow(shadow: int) -> tuple[int, int, int, bool]:
    """(memcg id, node, eviction, workingset) of a shadow."""
    v = shadow >> 1
    workingset = bool(v & 1)
    v >>= WORKINGSET_SHIFT
    nid = v & ((1 << NODES_SHIFT) - 1)
    v >>= NODES_SHIFT
    memcg_id = v & ((1 << MEM_CGROUP_ID_SHIFT) - 1)
    v >>= MEM_CGROUP_ID_SHIFT
    return memcg_id, nid, v & EVICTION_MASK_ANON, workingset


def workingset_age_nonresident(vm: Machine, nr_pages: int) -> None:
    vm.nonresident_age += nr_pages


def workingset_eviction(vm: Machine, head: int, nr_pages: int) -> int:
    """Age the clock and return the shadow of a folio being reclaimed."""
    eviction = vm.nonresident_age
    workingset_age_nonresident(vm, nr_pages)
    workingset = bool(vm.frames.flags_mv[head] & FL_WORKINGSET)
    return pack_shadow(vm.memcg.id, 0, eviction, workingset)


def workingset_refault(vm: Machine, folio: Folio, shadow: int) -> None:
    """A swap-in folio found `shadow` in its slot: activate it if recent.

    Called by the swap cache (``SwapHooks.workingset_refault``) before the
    folio is read and put on the LRU.
    """
    nr = 1 << folio.order
    events = vm.events
    events["workingset_refault_anon"] += nr
    memcg_id, _nid, eviction, workingset = unpack_shadow(shadow)
    if memcg_id != vm.memcg.id:
        return
    refault_distance = (vm.nonresident_age - eviction) & EVICTION_MASK_ANON
    # Anon: active + inactive file (none here) plus active anon while swap lasts.
    workingset_size = vm.frames.lru_pages[1] if vm.subsys.nr_swap_pages > 0 else 0
    if refault_distance > workingset_size:
        return
    head = folio.pfn - vm.pfn_base
    vm.frames.flags_mv[head] |= FL_ACTIVE
    workingset_age_nonresident(vm, nr)
    events["workingset_activate_anon"] += nr
    if workingset:
        vm.frames.flags_mv[head] |= FL_WORKINGSET
        vm.lru_note_cost(nr, 0)
        events["workingset_restore_anon"] += nr


compile_lean(globals())
