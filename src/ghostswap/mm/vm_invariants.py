"""Consistency checks over the VM layer, run between operations (tests and
``--check`` style drivers); :func:`check_machine` raises
:class:`~ghostswap.kernel.bug.InvariantViolation` on the first failure.

What must hold at a quiescent point:

- every allocated frame is charged to the cgroup and vice versa;
- the LRU lists hold exactly the folios flagged on them, with the page
  counts recorded;
- every present PTE points into a live folio that records a mapping at the
  PTE's folio-aligned base; every mapping a folio records is such a PTE;
- every swap PTE's slot has a swap count equal to the number of swap PTEs
  naming it (phase II+: a mapped swap-cache folio holds no count);
- the memcg's page-table pages are the PTE, PMD and PUD tables the live
  processes hold, and every PTE table a process records has a block;
- the swap model's own invariants (:func:`ghostswap.mm.invariants.check_subsystem`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from ghostswap.kernel.bug import InvariantViolation
from ghostswap.mm.invariants import check_subsystem
from ghostswap.mm.mm_types import (
    FL_ACTIVE,
    FL_HEAD,
    FL_LRU,
    PTE_FRAME_SHIFT,
    PTE_PRESENT,
    PTE_ZERO,
    pte_to_swp_entry,
)
from ghostswap.mm.swapfile import swp_swapcount

if TYPE_CHECKING:
    from ghostswap.mm.machine import Machine

__all__ = ["check_machine"]


def _fail(message: str) -> InvariantViolation:
    return InvariantViolation(f"vm: {message}")


def _check_lru(vm: Machine) -> set[int]:
    frames = vm.frames
    seen: set[int] = set()
    for active, sentinel in ((False, frames.inactive), (True, frames.active)):
        pages = 0
        node = frames.next_mv[sentinel]
        while node != sentinel:
            flags = frames.flags_mv[node]
            if not flags & FL_LRU or bool(flags & FL_ACTIVE) != active:
                raise _fail(f"frame {node} on the {'active' if active else 'inactive'} list "
                            f"has flags {flags:#x}")  # fmt: skip
            if node in seen:
                raise _fail(f"frame {node} is on an LRU list twice")
            seen.add(node)
            pages += 1 << frames.order_mv[node]
            node = frames.next_mv[node]
        if pages != frames.lru_pages[int(active)]:
            raise _fail(
                f"LRU {int(active)} counts {frames.lru_pages[int(active)]} pages, holds {pages}"
            )
    return seen


def _check_pagetables(vm: Machine) -> None:
    tables = 0
    blocks = 0
    for mm in vm.mms.values():
        tables += mm.pgd + mm.nr_pgtables()
        blocks += len(mm.regions)
        for region in mm.regions:
            if vm.pt.block(mm.pid, region, create=False) < 0:
                raise _fail(f"pid {mm.pid} records a PTE table for region {region:#x} "
                            "that has no block")  # fmt: skip
    if len(vm.pt.directory) != blocks:
        raise _fail(f"{len(vm.pt.directory)} PTE blocks, processes record {blocks}")
    if vm.memcg.pagetable_pages != tables:
        raise _fail(f"memcg charges {vm.memcg.pagetable_pages} page-table pages, "
                    f"processes hold {tables}")  # fmt: skip


def check_machine(vm: Machine) -> None:
    frames = vm.frames
    used = frames.nr_frames - frames.free_frames
    charged = vm.memcg.folio_pages()
    if used != charged:
        raise _fail(f"{used} frames allocated but {charged} pages charged to folios")
    _check_pagetables(vm)
    on_lru = _check_lru(vm)
    heads = [int(h) for h in np.flatnonzero(frames.flags & FL_HEAD)]
    for head in heads:
        if frames.flags_mv[head] & FL_LRU and head not in on_lru:
            raise _fail(f"frame {head} is flagged LRU but on no list")
    n = vm.pt.nr_blocks * 512
    pte = vm.pt.pte[:n]
    swap_refs: Counter[int] = Counter()
    for pti in np.flatnonzero(pte).tolist():
        value = int(pte[pti])
        if value & PTE_PRESENT:
            if value & PTE_ZERO:
                continue
            frame = value >> PTE_FRAME_SHIFT
            head = frames.folio_head(frame)
            if not frames.flags_mv[head] & FL_HEAD:
                raise _fail(f"PTE {pti} maps frame {frame} of no live folio")
            base = pti - (frame - head)
            if base not in frames.mappings(head):
                raise _fail(f"PTE {pti} maps folio {head} at {base}, which it does not record")
        else:
            swap_refs[pte_to_swp_entry(value)] += 1
    for head in heads:
        for base in frames.mappings(head):
            nr = 1 << frames.order_mv[head]
            for i in range(nr):
                value = int(vm.pt.pte[base + i])
                if not value & PTE_PRESENT or value >> PTE_FRAME_SHIFT != head + i:
                    raise _fail(f"folio {head} records a mapping at {base} that PTE {base + i} "
                                f"does not hold ({value:#x})")  # fmt: skip
        if frames.mapcount_mv[head] != len(frames.mappings(head)):
            raise _fail(f"folio {head} mapcount {frames.mapcount_mv[head]} != its mappings")
    for entry, refs in swap_refs.items():
        count = swp_swapcount(vm.subsys, entry)
        if count != refs:
            raise _fail(f"swap entry {entry:#x}: count {count}, {refs} swap PTEs")
    check_subsystem(vm.subsys)
