"""The memory cgroup the workload runs in: its limit and charging
(mm/memcontrol.c ``try_charge_memcg``, ``mem_cgroup_charge``,
``mem_cgroup_swapin_charge_folio``, ``uncharge``).

One memcg holds every process. Its page counter holds the pages charged
for folios and the pages pre-charged into the per-CPU charge stock, plus,
under cgroup v2, zswap's compressed bytes (``MEMCG_ZSWAP_B``;
``obj_cgroup_charge_zswap`` charges nothing on the v1 controller, so
there zswap's pool lives outside the limit).

The stock (``struct memcg_stock_pcp``) is why the limit bites before the
folios reach it: a charge that finds too little in this CPU's stock
charges ``MEMCG_CHARGE_BATCH`` pages to the counter and keeps the rest,
so ``memory.current`` runs up to a batch ahead of what is mapped. An mTHP
charge that may not reclaim fails at the limit unless the stock covers
it. Folio uncharges go straight to the counter, as ``uncharge_batch``
does. ``charge_batch=0`` charges exactly, without a stock.

Page tables are kernel memory charged to the same counter
(``GFP_PGTABLE_USER`` carries ``__GFP_ACCOUNT``): ``memcg_kmem_charge_page``
charges one like a folio page, may reclaim and fails where the kernel's
charge would OOM; ``memcg_kmem_uncharge_page`` returns it to the stock,
as ``obj_cgroup_uncharge_pages`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghostswap.kernel.runtime import smp_processor_id
from ghostswap.mm import vmscan

if TYPE_CHECKING:
    from ghostswap.mm.machine import Machine

__all__ = [
    "MAX_RECLAIM_RETRIES",
    "MEMCG_CHARGE_BATCH",
    "MemCgroup",
    "drain_all_stock",
    "mem_cgroup_uncharge",
    "memcg_kmem_charge_page",
    "memcg_kmem_uncharge_page",
    "try_charge_memcg",
]

MAX_RECLAIM_RETRIES = 16
MEMCG_CHARGE_BATCH = 64  # include/linux/memcontrol.h, 64 since v6.1
PAGE_ALLOC_COSTLY_ORDER = 3
PAGE_SIZE = 4096


class MemCgroup:
    """``struct mem_cgroup`` reduced to its memory counter and events."""

    __slots__ = (
        "charge_batch",
        "charges_zswap",
        "events",
        "id",
        "limit_pages",
        "pagetable_pages",
        "peak_pages",
        "stat",
        "stock_pages",
        "usage_pages",
        "zswap_bytes",
    )

    def __init__(
        self,
        limit_pages: int,
        memcg_id: int = 1,
        v1: bool = False,
        nr_cpus: int = 1,
        charge_batch: int = MEMCG_CHARGE_BATCH,
    ) -> None:
        self.id = memcg_id
        self.limit_pages = limit_pages
        self.usage_pages = 0  # the page counter: folios, page tables and the stocks
        self.pagetable_pages = 0  # memory.stat "pagetables", in pages
        # memcg_stock.nr_pages per CPU. The kernel's stock is per CPU and
        # caches a memcg; with one memcg, it is this memcg's.
        self.stock_pages = [0] * nr_cpus
        self.charge_batch = charge_batch
        self.zswap_bytes = 0  # MEMCG_ZSWAP_B, kept on v1 too
        self.charges_zswap = not v1
        self.peak_pages = 0
        self.events = {"max": 0, "oom": 0, "oom_kill": 0}
        # memory.stat (v2) event counts the kernel keeps per memcg only.
        self.stat = {"pgrefill": 0}

    def stocked_pages(self) -> int:
        """Pages charged to the counter but held in the per-CPU stocks."""
        return sum(self.stock_pages)

    def folio_pages(self) -> int:
        """Pages charged for folios: the counter without the stocks and
        the page tables."""
        return self.usage_pages - self.stocked_pages() - self.pagetable_pages

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


def consume_stock(memcg: MemCgroup, nr_pages: int) -> bool:
    """``consume_stock``: take `nr_pages` from this CPU's stock if it has them."""
    if nr_pages > memcg.charge_batch:
        return False
    cpu = smp_processor_id()
    stock = memcg.stock_pages
    if stock[cpu] < nr_pages:
        return False
    stock[cpu] -= nr_pages
    return True


def drain_stock(memcg: MemCgroup, cpu: int) -> None:
    """``drain_stock``: give a CPU's stocked pages back to the counter."""
    memcg.usage_pages -= memcg.stock_pages[cpu]
    memcg.stock_pages[cpu] = 0


def refill_stock(memcg: MemCgroup, nr_pages: int) -> None:
    """``refill_stock``: keep a batch's surplus; drain a stock that grew
    past one batch."""
    cpu = smp_processor_id()
    memcg.stock_pages[cpu] += nr_pages
    if memcg.stock_pages[cpu] > memcg.charge_batch:
        drain_stock(memcg, cpu)


def drain_all_stock(memcg: MemCgroup) -> None:
    """``drain_all_stock``: every CPU's stock (the kernel queues the other
    CPUs' drains as work; the model's single thread drains them at once)."""
    for cpu in range(len(memcg.stock_pages)):
        drain_stock(memcg, cpu)


def try_charge_memcg(vm: Machine, nr_pages: int, may_reclaim: bool = True) -> bool:
    """Charge `nr_pages`, reclaiming from the cgroup while over its limit.

    Follows ``try_charge_memcg``: use this CPU's stock; else charge a whole
    batch to the counter and stock the surplus, or, if the batch does not
    fit, just `nr_pages`; else reclaim and retry while that makes room,
    drain the stocks once, retry while reclaim makes progress for small
    charges, and give up after MAX_RECLAIM_RETRIES more rounds. Returns
    False where the kernel would go to the OOM killer (the caller handles
    that). A charge that may not reclaim (an mTHP fault without direct
    reclaim, as with ``defrag=madvise``) fails once the stock and the
    margin are both short.
    """
    memcg = vm.memcg
    batch = max(memcg.charge_batch, nr_pages)
    retries = MAX_RECLAIM_RETRIES
    drained = False
    while True:
        if consume_stock(memcg, nr_pages):
            return True
        if memcg.margin() >= batch:  # page_counter_try_charge()
            _commit(memcg, batch)
            if batch > nr_pages:
                refill_stock(memcg, batch - nr_pages)
            return True
        if batch > nr_pages:
            batch = nr_pages
            continue
        if not may_reclaim:
            return False
        memcg.events["max"] += 1
        reclaimed = vmscan.try_to_free_mem_cgroup_pages(vm, nr_pages)
        if memcg.margin() >= nr_pages:
            continue
        if not drained:
            drain_all_stock(memcg)
            drained = True
            continue
        if reclaimed and nr_pages <= 1 << PAGE_ALLOC_COSTLY_ORDER:
            continue
        if retries:
            retries -= 1
            continue
        memcg.events["oom"] += 1
        return False


def mem_cgroup_uncharge(vm: Machine, nr_pages: int) -> None:
    vm.memcg.usage_pages -= nr_pages


def memcg_kmem_charge_page(vm: Machine) -> bool:
    """``__memcg_kmem_charge_page`` for one page-table page
    (``pagetable_alloc(GFP_PGTABLE_USER)``): charge it, reclaiming as a
    folio charge does; False where the kernel's allocation fails with the
    cgroup out of memory."""
    if not try_charge_memcg(vm, 1):
        return False
    vm.memcg.pagetable_pages += 1
    return True


def memcg_kmem_uncharge_page(vm: Machine) -> None:
    """``__memcg_kmem_uncharge_page`` of a freed page-table page: the page
    goes to this CPU's stock (``obj_cgroup_uncharge_pages``)."""
    memcg = vm.memcg
    memcg.pagetable_pages -= 1
    refill_stock(memcg, 1)
