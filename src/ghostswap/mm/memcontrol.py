"""The memory cgroup the workload runs in: its limit and charging
(mm/memcontrol.c ``try_charge_memcg``, ``mem_cgroup_charge``,
``mem_cgroup_swapin_charge_folio``, ``uncharge``).

One memcg holds every process. Its usage is the pages charged for folios
plus, under cgroup v2, zswap's compressed bytes (``MEMCG_ZSWAP_B``;
``obj_cgroup_charge_zswap`` charges nothing on the v1 controller, so
there zswap's pool lives outside the limit). The per-CPU charge stock
(``MEMCG_CHARGE_BATCH``) is not modelled: charges are exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghostswap.mm import vmscan

if TYPE_CHECKING:
    from ghostswap.mm.machine import Machine

__all__ = ["MAX_RECLAIM_RETRIES", "MemCgroup", "mem_cgroup_uncharge", "try_charge_memcg"]

MAX_RECLAIM_RETRIES = 16
PAGE_ALLOC_COSTLY_ORDER = 3
PAGE_SIZE = 4096


class MemCgroup:
    """``struct mem_cgroup`` reduced to its memory counter and events."""

    __slots__ = (
        "charges_zswap",
        "events",
        "id",
        "limit_pages",
        "peak_pages",
        "usage_pages",
        "zswap_bytes",
    )

    def __init__(self, limit_pages: int, memcg_id: int = 1, v1: bool = False) -> None:
        self.id = memcg_id
        self.limit_pages = limit_pages
        self.usage_pages = 0
        self.zswap_bytes = 0  # MEMCG_ZSWAP_B, kept on v1 too
        self.charges_zswap = not v1
        self.peak_pages = 0
        self.events = {"max": 0, "oom": 0, "oom_kill": 0}

    def current_pages(self) -> int:
        """``memory.current`` in pages (folios, plus zswap rounded up on v2)."""
        if not self.charges_zswap:
            return self.usage_pages
        return self.usage_pages + -(-self.zswap_bytes // PAGE_SIZE)

    def margin(self) -> int:
        """``mem_cgroup_margin``: pages that can still be charged."""
        return self.limit_pages - self.current_pages()


def _commit(memcg: MemCgroup, nr_pages: int) -> None:
    memcg.usage_pages += nr_pages
    current = memcg.current_pages()
    if current > memcg.peak_pages:
        memcg.peak_pages = current


def try_charge_memcg(vm: Machine, nr_pages: int, may_reclaim: bool = True) -> bool:
    """Charge `nr_pages`, reclaiming from the cgroup while over its limit.

    Follows ``try_charge_memcg``: reclaim, retry while reclaim makes
    progress for small charges, give up after MAX_RECLAIM_RETRIES failed
    rounds. Returns False where the kernel would go to the OOM killer (the
    caller handles that). A charge that may not reclaim (an mTHP fault
    without direct reclaim, as with ``defrag=madvise``) fails at once.
    """
    memcg = vm.memcg
    if memcg.margin() >= nr_pages:
        _commit(memcg, nr_pages)
        return True
    if not may_reclaim:
        return False
    retries = MAX_RECLAIM_RETRIES
    while True:
        memcg.events["max"] += 1
        reclaimed = vmscan.try_to_free_mem_cgroup_pages(vm, nr_pages)
        if memcg.margin() >= nr_pages:
            _commit(memcg, nr_pages)
            return True
        if reclaimed and nr_pages <= 1 << PAGE_ALLOC_COSTLY_ORDER:
            continue
        retries -= 1
        if not retries:
            memcg.events["oom"] += 1
            return False


def mem_cgroup_uncharge(vm: Machine, nr_pages: int) -> None:
    vm.memcg.usage_pages -= nr_pages
