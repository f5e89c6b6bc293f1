"""What a scenario builds on: a small swap subsystem, tracked operations and
the end-of-run checks.

A :class:`Harness` owns one execution. Set-up code (run before the CPUs
start) and the CPU bodies call its operations, which are the model's own
entry points wrapped with bookkeeping the kernel does not have:

- every swap slot handed out is recorded with its owner, so a slot handed
  out twice while held is caught (:class:`DoubleAlloc`);
- every page swapped out carries a data token written to a stand-in for the
  backing store (zswap, for a ghost device), and every swap-in and the end
  of the run check that each page still reads back (:class:`DataLoss`);
- a tiny page table (``ptes``: name -> swap entry or resident folio) under
  one page-table lock gives faults, zaps and swapoff's unuse walk something
  real to race on.

``finish`` runs after the CPUs: RCU barrier and pending work, reclaim of
leftover clean cache (what kswapd would do), the model's invariant checker,
the leak check and the data check.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ghostswap.kernel import workqueue
from ghostswap.kernel.bug import KernelBug, KernelError
from ghostswap.kernel.gfp import GFP_KERNEL
from ghostswap.kernel.runtime import CheckedRuntime, TraceStep
from ghostswap.kernel.spinlock import spin_lock, spin_unlock, spinlock_t
from ghostswap.mm import folio as folio_mod
from ghostswap.mm import invariants, swap_state, swapfile, swapon
from ghostswap.mm.folio import (
    Folio,
    PG_locked,
    PG_swapbacked,
    PG_swapcache,
    PG_uptodate,
    folio_alloc,
    folio_free,
    folio_trylock,
    folio_unlock,
)
from ghostswap.mm.seed_reverts import SeedReverts
from ghostswap.mm.swap import (
    SWAPFILE_CLUSTER,
    SWP_GHOST,
    SWP_WRITEOK,
    SwapClusterInfo,
    SwapInfo,
    SwapSubsystem,
    swap_cluster_lock,
    swap_cluster_unlock,
    swp_entry,
    swp_offset,
    swp_type,
)
from ghostswap.mm.swap_table import swp_tb_is_null

__all__ = ["DataLoss", "DoubleAlloc", "Harness", "Leak"]


def _alloc_slot(si: SwapInfo, ci: SwapClusterInfo, ci_off: int) -> bool:
    # Module level: inside a class body the name would be mangled.
    return swapfile.__swap_cluster_alloc_entries(si, ci, None, ci_off)


class DoubleAlloc(KernelBug):
    kind = "double-alloc"


class Leak(KernelBug):
    kind = "leak"


class DataLoss(KernelBug):
    kind = "data-loss"


FILLER = "filler"


class Harness:
    """One execution of a scenario: the subsystem and its bookkeeping."""

    def __init__(self, rt: CheckedRuntime, reverts: SeedReverts, rng: random.Random) -> None:
        self.rt = rt
        self.reverts = reverts
        self.rng = rng  # the program's randomness, apart from the scheduler's
        self.subsys: SwapSubsystem | None = None
        self.owner: dict[int, str] = {}  # swap entry -> who holds it
        self.expect: dict[int, int] = {}  # swap entry -> data token it must read back
        self.store: dict[int, int] = {}  # swap entry -> data token written
        self.ptes: dict[str, int | Folio | None] = {}
        self.ptl = spinlock_t("ptl")
        self.folios: list[Folio] = []
        self.swapped_off: list[SwapInfo] = []
        self._token = 0
        # The seed never frees a ghost pool at swapoff; a scenario about that
        # leak sets this to report even cluster 0.
        self.strict_swapoff_leak = False
        self.memcg_charge_fails = False

    # -- set-up ----------------------------------------------------------------------
    def subsystem(self, ram_pages: int = 1 << 16, nr_cpus: int = 4, **kw: object) -> SwapSubsystem:
        subsys = SwapSubsystem(ram_pages, nr_cpus=nr_cpus, reverts=self.reverts, **kw)  # type: ignore[arg-type]
        subsys.hooks.unuse = self._unuse
        subsys.hooks.memcg_charge_swapin = lambda f, m, g: not self.memcg_charge_fails
        subsys.hooks.swapin_folio_alloc = self._swapin_folio_alloc
        self.subsys = subsys
        return subsys

    def ghost(self, clusters: int | None = 4, **kw: object) -> SwapInfo:
        """A ghost device of `clusters` clusters (cluster 0 holds the header),
        or of the seed's default 8x RAM for None."""
        assert self.subsys is not None
        size = None if clusters is None else clusters * SWAPFILE_CLUSTER
        return swapon.swapon(self.subsys, "ghost", size, **kw)  # type: ignore[arg-type]

    def static(self, clusters: int = 4, kind: str = "partition", **kw: object) -> SwapInfo:
        assert self.subsys is not None
        return swapon.swapon(self.subsys, kind, clusters * SWAPFILE_CLUSTER, **kw)  # type: ignore[arg-type]

    def forget_percpu_clusters(self) -> None:
        """Empty every CPU's cluster cache, so set-up leaves no shared hint."""
        assert self.subsys is not None
        for pcp in self.subsys.percpu_swap_cluster:
            pcp.si = [None] * len(pcp.si)
            pcp.offset = [0] * len(pcp.offset)

    def new_cluster(self, si: SwapInfo) -> int:
        """Set-up: allocate one slot (hibernation form) through the allocator,
        which opens a new cluster when no list has room; return its offset."""
        offset = swapfile.cluster_alloc_swap_entry(si, None)
        assert offset, "new_cluster(): the device is full"
        self.owner[swp_entry(si.type, offset)] = FILLER
        return offset

    def fill(self, si: SwapInfo, start: int, nr: int) -> None:
        """Set-up: take every free slot of [start, start + nr) in one existing
        cluster as a swapped-out page with count 1 and no data to check (the
        hibernation form of allocation), then put the cluster on its list."""
        ci = swap_cluster_lock(si, start)
        assert ci is not None, "fill() needs the cluster to exist"
        assert start // SWAPFILE_CLUSTER == (start + nr - 1) // SWAPFILE_CLUSTER
        for offset in range(start, start + nr):
            ci_off = offset % SWAPFILE_CLUSTER
            assert ci.table is not None
            if swp_tb_is_null(ci.table[ci_off]):
                assert _alloc_slot(si, ci, ci_off)
                self.owner[swp_entry(si.type, offset)] = FILLER
        if ci.flags == 0:
            swapfile.relocate_cluster(si, ci)
        elif ci.count == SWAPFILE_CLUSTER:
            swapfile.relocate_cluster(si, ci)  # frag/nonfull -> full
        swap_cluster_unlock(ci)

    # -- bookkeeping ---------------------------------------------------------------------
    def note(self, text: str) -> None:
        """Put an operation marker into the trace (no scheduling point)."""
        rt = self.rt
        cpu = rt.current()
        if len(rt.trace) < rt.trace_limit:
            where = "set-up" if cpu is rt.setup_cpu else "op"
            rt.trace.append(TraceStep(cpu.cpu if where == "op" else -1, where, text, ""))

    def _who(self, name: str) -> str:
        cpu = self.rt.current()
        return f"{name}@{'setup' if cpu is self.rt.setup_cpu else f'cpu{cpu.cpu}'}"

    def _claim(self, entry: int, nr: int, who: str) -> None:
        for e in range(entry, entry + nr):
            holder = self.owner.get(e)
            if holder is not None:
                raise DoubleAlloc(
                    f"swap entry {swp_type(e)}:{swp_offset(e)} handed to {who} "
                    f"while {holder} still holds it"
                )
            self.owner[e] = who

    def _release(self, entry: int, nr: int) -> None:
        for e in range(entry, entry + nr):
            self.owner.pop(e, None)
            self.expect.pop(e, None)

    def _new_folio(self, order: int = 0) -> Folio:
        folio = folio_alloc(order)
        assert folio is not None
        folio.flags |= PG_locked | PG_uptodate | PG_swapbacked
        self._token += 1
        folio.data = self._token
        self.folios.append(folio)
        return folio

    def _swapin_folio_alloc(self, order: int, gfp: int, memcg_id: int) -> Folio | None:
        folio = folio_alloc(order, gfp, memcg_id)
        if folio is not None:
            self.folios.append(folio)
        return folio

    # -- operations -----------------------------------------------------------------------
    def swap_out(self, name: str, order: int = 0) -> int:
        """Reclaim a page mapped at `name`: allocate its slots, let the page
        table take its count, write it out and drop it from the swap cache.
        Returns its swap entry, or 0 when swap is full."""
        subsys = self.subsys
        assert subsys is not None
        self.note(f"swap_out {name}")
        folio = self._new_folio(order)
        if not swapfile.folio_alloc_swap(subsys, folio):
            folio_unlock(folio)
            folio_free(folio)
            return 0
        entry = folio.swap
        nr = 1 << order
        self._claim(entry, nr, self._who(name))
        err = swapfile.folio_dup_swap(subsys, folio)
        assert err is None, err
        for i in range(nr):
            self.store[entry + i] = folio.data  # type: ignore[assignment]
            self.expect[entry + i] = folio.data  # type: ignore[assignment]
        spin_lock(self.ptl)
        self.ptes[name] = entry
        spin_unlock(self.ptl)
        swap_state.swap_cache_del_folio(subsys, folio)
        folio_unlock(folio)
        folio_free(folio)
        return entry

    def swap_out_cached(self, name: str) -> int:
        """A page whose mapping went away while it sat in the swap cache: the
        slot is cache-only (count 0, clean folio, unlocked) until reclaimed."""
        subsys = self.subsys
        assert subsys is not None
        self.note(f"swap_out_cached {name}")
        folio = self._new_folio()
        if not swapfile.folio_alloc_swap(subsys, folio):
            folio_unlock(folio)
            folio_free(folio)
            return 0
        # Not claimed: a clean cache-only slot is anyone's to reclaim.
        folio_unlock(folio)
        return folio.swap

    def put(self, name: str) -> None:
        """Zap the page table entry `name` (munmap, exit)."""
        subsys = self.subsys
        assert subsys is not None
        spin_lock(self.ptl)
        entry = self.ptes.pop(name, None)
        spin_unlock(self.ptl)
        self.note(f"zap {name}")
        if isinstance(entry, int) and entry:
            if not self._mapped_elsewhere(entry):
                self._release(entry, 1)
            swapfile.swap_put_entries_direct(subsys, entry, 1)

    def fork(self, name: str, child: str) -> None:
        """A child maps the same swapped-out page (copy_pte_range)."""
        subsys = self.subsys
        assert subsys is not None
        self.note(f"fork {name} -> {child}")
        # copy_pte_range(): the parent's page table is stable (its mmap lock is
        # held for writing), the dup runs under the page table lock.
        for _ in range(2):
            spin_lock(self.ptl)
            entry = self.ptes.get(name)
            assert isinstance(entry, int) and entry
            err = swapfile.swap_dup_entry_direct(subsys, entry)
            if err is None:
                self.ptes[child] = entry
            spin_unlock(self.ptl)
            if err != "ENOMEM":
                return
            # The atomic extend-table allocation failed: retry it sleeping.
            swapfile.swap_retry_table_alloc(subsys, entry, GFP_KERNEL)

    def _mapped_elsewhere(self, entry: int) -> bool:
        return any(pte == entry for pte in self.ptes.values())

    def put_range(self, si: SwapInfo, start: int, nr: int) -> None:
        """Drop the references of filler slots [start, start + nr)."""
        subsys = self.subsys
        assert subsys is not None
        entry = swp_entry(si.type, start)
        self.note(f"free {nr} slots from {si.type}:{start}")
        for e in range(entry, entry + nr):
            if self.owner.get(e) != FILLER:
                raise AssertionError(f"scenario error: {e:#x} is not a filler slot")
        self._release(entry, nr)
        swapfile.swap_put_entries_direct(subsys, entry, nr)

    def reclaim_cached(self, entry: int) -> None:
        """Drop a cache-only slot's folio, as reclaim would."""
        subsys = self.subsys
        assert subsys is not None
        self.note(f"reclaim cache {swp_type(entry)}:{swp_offset(entry)}")
        folio = swap_state.swap_cache_get_folio(subsys, entry)
        if folio is None or not folio_trylock(folio):
            return
        if swap_state.folio_matches_swap_entry(folio, entry):
            swapfile.folio_free_swap(subsys, folio)
        folio_unlock(folio)

    def reclaim_work(self, si: SwapInfo) -> None:
        """The reclaim worker (a kworker): swap_reclaim_work()."""
        self.note(f"swap_reclaim_work swap{si.type}")
        swapfile.swap_reclaim_work(si)

    def lookup(self, name: str, entry: int) -> None:
        """Lockless swap cache lookups of `entry` (a fault or readahead
        probing an entry that may be freed meanwhile)."""
        subsys = self.subsys
        assert subsys is not None
        self.note(f"lookup {name}")
        swap_state.swap_cache_get_folio(subsys, entry)
        swap_state.swap_cache_has_folio(subsys, entry)
        swap_state.swap_cache_get_shadow(subsys, entry)

    def swap_in(self, name: str, readahead_check: bool = True) -> None:
        """Fault on `name`: find or allocate the swap cache folio, read it,
        map it if the page table still holds the entry, free the slot."""
        subsys = self.subsys
        assert subsys is not None
        self.note(f"swap_in {name}")
        spin_lock(self.ptl)
        entry = self.ptes.get(name)
        spin_unlock(self.ptl)
        if not isinstance(entry, int) or not entry:
            return
        si = swapfile.get_swap_device(subsys, entry)
        if si is None:
            self._check_pte_moved(name, entry, "its device is gone")
            return
        try:
            folio = self._swapin_get_folio(name, si, entry)
            if folio is None:
                return
            self._swapin_map(name, entry, folio)
        finally:
            swapfile.put_swap_device(si)

    def _swapin_get_folio(self, name: str, si: SwapInfo, entry: int) -> Folio | None:
        subsys = self.subsys
        assert subsys is not None
        while True:
            folio = swap_state.swap_cache_get_folio(subsys, entry)
            if folio is not None:
                self.rt.wait_until(lambda f=folio: not f.flags & PG_locked, "folio lock")  # type: ignore[misc]
                folio.flags |= PG_locked
                if swap_state.folio_matches_swap_entry(folio, entry):
                    return folio
                folio_unlock(folio)
                continue
            # Readahead and shmem probe the entry before allocating.
            if not swapfile.swap_entry_swapped(si, entry):
                self._check_pte_moved(name, entry, "its slot has no count")
                return None
            result = swap_state.swap_cache_alloc_folio(subsys, entry, GFP_KERNEL)
            if isinstance(result, Folio):
                result.data = self.store.get(entry)  # swap_read_folio()
                return result
            if result == "EEXIST":
                continue
            if result == "ENOENT":
                self._check_pte_moved(name, entry, "swap_cache_alloc_folio() says ENOENT")
            return None  # ENOMEM: the fault fails and is retried later

    def _check_pte_moved(self, name: str, entry: int, why: str) -> None:
        spin_lock(self.ptl)
        still = self.ptes.get(name) == entry
        spin_unlock(self.ptl)
        if still:
            raise DataLoss(
                f"page {name} at swap entry {swp_type(entry)}:{swp_offset(entry)} cannot be "
                f"read back: {why}"
            )

    def _swapin_map(self, name: str, entry: int, folio: Folio) -> None:
        subsys = self.subsys
        assert subsys is not None
        spin_lock(self.ptl)
        mapped = self.ptes.get(name) == entry
        if mapped:
            want = self.expect.get(entry)
            if folio.data != want:
                spin_unlock(self.ptl)
                raise DataLoss(
                    f"page {name} read back token {folio.data} from "
                    f"{swp_type(entry)}:{swp_offset(entry)}, expected {want}"
                )
            self.ptes[name] = folio
        spin_unlock(self.ptl)
        if mapped:
            if not self._mapped_elsewhere(entry):
                self._release(entry, 1)
            swapfile.folio_put_swap(subsys, folio)
        # should_try_to_free_swap(): drop the slot if nothing maps it now.
        swapfile.folio_free_swap(subsys, folio)
        folio_unlock(folio)

    def _unuse(self, si: SwapInfo) -> None:
        """swapoff's unuse_mm(): fault in every page table entry on `si`."""
        for name, entry in list(self.ptes.items()):
            if isinstance(entry, int) and entry and swp_type(entry) == si.type:
                self.swap_in(name)

    def swapoff(self, si: SwapInfo) -> bool:
        subsys = self.subsys
        assert subsys is not None
        self.note(f"swapoff swap{si.type}")
        try:
            swapon.swapoff(subsys, si)
        except KernelError:
            return False
        self.swapped_off.append(si)
        return True

    # -- the end of the run ----------------------------------------------------------------
    def finish(self) -> None:
        """End-of-run checks (on the set-up CPU, no scheduling)."""
        subsys = self.subsys
        if subsys is None:
            return
        rt = self.rt
        while True:
            rt.rcu_barrier()
            if not workqueue.run_pending_work() and not rt.rcu_pending():
                break
        self._reclaim_clean_cache()
        rt.rcu_barrier()
        if rt.rcu_pending():
            raise Leak(f"{rt.rcu_pending()} RCU callbacks still pending after rcu_barrier()")
        invariants.check_subsystem(subsys)
        self._check_leaks(subsys)
        self._check_data(subsys)

    def _reclaim_clean_cache(self) -> None:
        subsys = self.subsys
        assert subsys is not None
        for folio in self.folios:
            if folio.flags & PG_swapcache and folio_trylock(folio):
                swapfile.folio_free_swap(subsys, folio)
                folio_unlock(folio)

    def _check_leaks(self, subsys: SwapSubsystem) -> None:
        for ci in subsys.leaked:
            if self.strict_swapoff_leak or ci.index != 0:
                raise Leak(
                    f"swapoff left cluster {ci.index} allocated "
                    f"({len(subsys.leaked)} clusters of the ghost pool never freed)"
                )
        for si in subsys.devices():
            if not si.flags & SWP_GHOST:
                continue
            assert si.cluster_info_pool is not None
            for index, ci in si.cluster_info_pool.items():
                if index and not ci.count:
                    raise Leak(f"swap{si.type}: empty ghost cluster {index} stays allocated")
        for folio in self.folios:
            if folio.flags & PG_swapcache:
                cache_si = subsys.swap_info[swp_type(folio.swap)]
                if cache_si is None or not cache_si.flags & SWP_WRITEOK:
                    raise Leak(
                        f"{folio!r} is still in the swap cache of swap{swp_type(folio.swap)}, "
                        "which is swapped off"
                    )

    def _check_data(self, subsys: SwapSubsystem) -> None:
        for name, pte in self.ptes.items():
            if isinstance(pte, Folio):
                continue
            if not pte:
                continue
            entry = pte
            si = subsys.swap_info[swp_type(entry)]
            where = f"{swp_type(entry)}:{swp_offset(entry)}"
            if si is None or not si.flags & SWP_WRITEOK or swp_offset(entry) >= si.max:
                raise DataLoss(f"page {name} is swapped out to {where}, a device that is gone")
            if swapfile.swp_swapcount(subsys, entry) < 1:
                raise DataLoss(f"page {name} is swapped out to {where}, whose slot is free")
            if self.store.get(entry) != self.expect.get(entry):
                raise DataLoss(f"page {name}: the data at {where} was overwritten")
            if entry not in self.owner or self.owner[entry] == FILLER:
                raise DataLoss(f"page {name}: {where} is held by {self.owner.get(entry)}")

    def cleanup(self) -> None:
        """Drop this execution's folios from the global PFN map."""
        mem_map = folio_mod.mem_map
        for folio in self.folios:
            mem_map.pop(folio.pfn, None)
        self.folios.clear()


Body = Callable[[], object]


def steps(*ops: Callable[[], object]) -> Body:
    """One CPU body that runs `ops` in order."""

    def body() -> None:
        for op in ops:
            op()

    return body
