"""A whole machine: RAM under a memory cgroup, swap devices with their
stores, zswap, processes, and the counters — the VM layer's top object.

:class:`Machine` wires the VM to the swap model through
:class:`~ghostswap.mm.swap.SwapHooks` (swap-in folios come from the VM's
frames and are charged to its cgroup; freed slots invalidate zswap and the
store; refaults consult the workingset) and offers the operations the
workload events map to: :meth:`access`, :meth:`map`, :meth:`unmap`,
:meth:`madvise_dontneed`, :meth:`madvise_pageout`, :meth:`fork`,
:meth:`exit`. Plain hits are applied in bulk by :meth:`apply_hits`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ghostswap.errors import ConfigError
from ghostswap.kernel import quiescent
from ghostswap.kernel.bug import WARN
from ghostswap.kernel.gfp import Gfp
from ghostswap.kernel.workqueue import cancel_work, flush_work
from ghostswap.mm import memory, vmscan, workingset
from ghostswap.mm.content import FILL_KINDS, StoreFactory, SwapStore, make_token
from ghostswap.mm.folio import Folio, PG_swapcache, mem_map
from ghostswap.mm.memcontrol import MemCgroup, mem_cgroup_uncharge, try_charge_memcg
from ghostswap.mm.mm_types import (
    FL_ACTIVE,
    FL_ISOLATED,
    FL_LRU,
    MAX_PAGE,
    PTE_DIRTY,
    PTE_FRAME_SHIFT,
    PTE_YOUNG,
    VM_HUGEPAGE,
    VM_NOHUGEPAGE,
    FrameTable,
    MmStruct,
    PageTables,
    Vma,
)
from ghostswap.mm.swap import PMD_ORDER, SWP_GHOST, SwapSubsystem
from ghostswap.mm.swap_state import swap_cache_alloc_folio
from ghostswap.mm.swapon import SwapSpec, swapon_spec
from ghostswap.mm.zswap import (
    Zswap,
    zswap_invalidate,
    zswap_is_present,
    zswap_shrink_worker,
)
from ghostswap.units import parse_size

__all__ = ["MTHP_SIZES", "Machine", "MachineConfig", "check_ram_pages", "parse_mthp"]

# hugepages-<size>kB for anonymous memory: 16 KiB (order 2) to 2 MiB (PMD).
MTHP_SIZES = {f"{4 << order}kB": order for order in range(2, PMD_ORDER + 1)}
MTHP_MODES = ("always", "inherit", "madvise", "never")
# x86_64's largest CONFIG_NR_CPUS (with MAXSMP).
MAX_CPUS = 8192

# Each live machine's frames get their own PFN range in the shared mem_map:
# slot k covers [k << 30, (k + 1) << 30). The swap table keeps 40 PFN bits,
# so there are 1024 slots; slot 0 is the folio allocator's and slot 64 holds
# ghostswap.measure.populate's folios (PFN 1 << 36).
_PFN_SLOT_SHIFT = 30
_RESERVED_SLOTS = {0, 64}
_pfn_slots_in_use: set[int] = set()


def _take_pfn_slot() -> int:
    for slot in range(1, 1 << (40 - _PFN_SLOT_SHIFT)):
        if slot not in _pfn_slots_in_use and slot not in _RESERVED_SLOTS:
            _pfn_slots_in_use.add(slot)
            return slot
    raise ConfigError("too many machines alive at once (1022)")


def check_ram_pages(ram_pages: int) -> None:
    """Refuse a RAM size the machine cannot have: below 64 pages, or so
    large that its frames (twice RAM plus 2048) overflow a PFN slot."""
    if ram_pages < 64:
        raise ConfigError("RAM must be at least 64 pages (256 KiB)")
    if 2 * ram_pages + 2048 >= 1 << _PFN_SLOT_SHIFT:
        raise ConfigError("RAM above 2 TiB is not supported by the VM model")


def parse_mthp(specs: list[str]) -> dict[int, str]:
    """``["64kB:always", "2048kB:never"]`` -> {order: mode}."""
    out: dict[int, str] = {}
    for spec in specs:
        text, _, mode = str(spec).partition(":")
        mode = (mode or "always").strip()
        size = text.strip()
        try:
            nbytes = parse_size(size)  # 64k, 64KiB, 2M, 2MiB, ...
        except ConfigError:
            nbytes = 0
        if nbytes and not nbytes % 1024:
            size = f"{nbytes // 1024}kB"
        if size not in MTHP_SIZES:
            raise ConfigError(
                f"mTHP size {spec!r}: one of {', '.join(MTHP_SIZES)} (as in hugepages-<size>)"
            )
        if mode not in MTHP_MODES:
            raise ConfigError(f"mTHP size {spec!r}: mode must be one of {', '.join(MTHP_MODES)}")
        out[MTHP_SIZES[size]] = mode
    return out


@dataclass
class MachineConfig:
    """What the machine is made of; every field has a default."""

    ram_pages: int = 65536
    # The whole machine's RAM when ram_pages is a memory cgroup limit below
    # it (calibration); 0 means ram_pages. Only zswap's pool limit, a share
    # of totalram_pages in the kernel, reads it.
    totalram_pages: int = 0
    # The memory controller is cgroup v1 (calibration hosts): zswap's pool is
    # not charged to it. The default is v2, which charges it.
    memcg_v1: bool = False
    # MEMCG_CHARGE_BATCH: pages a charge takes from the counter at once, the
    # surplus kept in a per-CPU stock; 0 charges exactly (no stock).
    memcg_charge_batch: int = 64
    swap: list[SwapSpec] = field(default_factory=list)
    mthp: dict[int, str] = field(default_factory=dict)
    thp_enabled: str = "madvise"  # the top-level knob "inherit" sizes follow
    thp_defrag: str = "madvise"  # transparent_hugepage/defrag
    zswap: bool = False
    zswap_compressor: str = "zstd"
    zswap_max_pool_percent: int = 20
    zswap_accept_threshold_percent: int = 90
    zswap_shrinker: bool = True
    zswap_shrink_walk: int = 32  # per shrink_memcg(): 32 in the seed's tree, 1 up to v6.18
    # A kernel up to v6.18 on which zswap has been enabled since boot: its
    # alloc_swap_folio() tests zswap_never_enabled() and swaps in order 0 only.
    zswap_was_enabled: bool = False
    store: str = "memory"  # the front end's store_factory kind
    store_dir: str | None = None  # ... and directory (file stores)
    ghost_store: bool = False  # what-if: give ghost devices a backing store
    swappiness: int = 60
    page_cluster: int = 3
    vma_ra_enabled: bool = True
    fill: str = "text"
    nr_cpus: int = 2
    percpu_policy: str = "global"

    def anon_orders(self, madvised: bool = False) -> list[int]:
        """mTHP orders enabled for a mapping, largest first: ``always`` sizes,
        and ``madvise`` sizes too for a ``MADV_HUGEPAGE`` mapping
        (``thp_vma_allowable_orders``)."""
        wanted = ("always", "madvise") if madvised else ("always",)
        enabled = []
        for order, mode in self.mthp.items():
            effective = self.thp_enabled if mode == "inherit" else mode
            if effective in wanted:
                enabled.append(order)
        return sorted(enabled, reverse=True)


class Machine:
    """The simulated machine. See the module docstring."""

    def __init__(self, cfg: MachineConfig, stores: StoreFactory) -> None:
        """`stores` makes each device's backing store (the storage layer's
        ``store_factory(cfg.store, cfg.store_dir)``, from the front end)."""
        check_ram_pages(cfg.ram_pages)
        if not 0 <= cfg.swappiness <= 200:
            raise ConfigError("swappiness must be in 0..200")
        if not 0 <= cfg.page_cluster <= 31:
            raise ConfigError("page_cluster must be in 0..31")
        if cfg.fill not in FILL_KINDS:
            raise ConfigError(f"fill {cfg.fill!r}: one of {', '.join(FILL_KINDS)}")
        self.cfg = cfg
        self.subsys = SwapSubsystem(
            cfg.ram_pages, nr_cpus=cfg.nr_cpus, percpu_policy=cfg.percpu_policy
        )
        self.events = self.subsys.events
        for name in ("pgfree", "thp_fault_alloc"):
            self.events.setdefault(name, 0)
        self.mthp = self.subsys.mthp
        self.anon_orders = cfg.anon_orders()
        self.anon_orders_madvised = cfg.anon_orders(madvised=True)
        self.swappiness = cfg.swappiness
        self.page_cluster = cfg.page_cluster
        self.vma_ra_enabled = cfg.vma_ra_enabled
        self.fill_kind = FILL_KINDS[cfg.fill]
        self.serial = 0
        # Frames: twice the cgroup's RAM, so large folios rarely meet
        # physical fragmentation (the cgroup limit is what binds).
        self.frames = FrameTable(2 * cfg.ram_pages + 2048)
        self._pfn_slot = _take_pfn_slot()
        self.pfn_base = self._pfn_slot << _PFN_SLOT_SHIFT
        self.pt = PageTables()
        self.memcg = MemCgroup(
            cfg.ram_pages,
            v1=cfg.memcg_v1,
            nr_cpus=cfg.nr_cpus,
            charge_batch=cfg.memcg_charge_batch,
        )
        self.mms: dict[int, MmStruct] = {}
        self.killed: set[int] = set()
        self.before_oom_kill: Callable[[], None] | None = None
        self.oom_victims: list[int] = []  # pids the OOM killer took, in order
        self.anon_cost = 0
        self.file_cost = 0
        self.nonresident_age = 0
        self.refaults_snapshot = 0
        self.swapin_readahead_hits = 4
        self.ra_prev_offset = 0
        self.ra_last_pages = 0
        self.unmap_epoch = 0
        self.verified_pages = 0
        self.mismatches = 0
        self.vm_stats = {
            "ghost_write_fail": 0,
            "read_errors": 0,
            "reclaim_passes": 0,
            "events_skipped": 0,
        }
        self.zswap: Zswap | None = None
        if cfg.zswap:
            self.zswap = Zswap(
                cfg.totalram_pages or cfg.ram_pages,
                cfg.zswap_compressor,
                cfg.zswap_max_pool_percent,
                cfg.zswap_accept_threshold_percent,
                cfg.zswap_shrinker,
                cfg.zswap_shrink_walk,
            )
            self.zswap.shrink_work.func = lambda: zswap_shrink_worker(self)
            zswap = self.zswap
            self.subsys.hooks.zswap_is_present = lambda entry, nr: zswap_is_present(
                zswap, entry, nr
            )
        self.stores: dict[int, SwapStore] = {}
        hooks = self.subsys.hooks
        hooks.swapin_folio_alloc = self._swapin_folio_alloc
        hooks.swapin_folio_free = self._swapin_folio_free
        hooks.memcg_charge_swapin = self._charge_swapin
        hooks.slot_free_notify = self._slot_free_notify
        hooks.workingset_refault = partial(workingset.workingset_refault, self)
        self.replay_window = 8192  # the replay loop's classification window
        # Set by the replay loop while bulk hits are pending: applies them.
        self.sync_hits: Callable[[], None] = lambda: None
        try:
            for spec in cfg.swap:
                try:
                    si = swapon_spec(self.subsys, spec)
                except ConfigError as err:
                    raise ConfigError(f"swap device {spec.describe()!r}: {err}") from None
                if not si.flags & SWP_GHOST or cfg.ghost_store:
                    store = stores(si.name, si.max)
                    self.stores[si.type] = store
                    si.storage = store
        except BaseException:
            self.close()
            raise

    # -- lifetime ------------------------------------------------------------------
    def close(self) -> None:
        """Release the stores (files are deleted) and this machine's folios."""
        if self.zswap is not None:
            cancel_work(self.zswap.shrink_work)
        for store in self.stores.values():
            store.close()
        self.stores.clear()
        base = self.pfn_base
        for pfn in [p for p in mem_map if base <= p < base + self.frames.nr_frames]:
            del mem_map[pfn]
        _pfn_slots_in_use.discard(self._pfn_slot)

    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hooks from the swap model -----------------------------------------------------
    def _swapin_folio_alloc(self, order: int, gfp: int, memcg_id: int) -> Folio | None:
        head = self.frames.alloc(order)
        if head < 0:
            return None
        folio = Folio(self.pfn_base + head, order, memcg_id)
        mem_map[folio.pfn] = folio
        return folio

    def _swapin_folio_free(self, folio: Folio) -> None:
        """The swap cache dropped a swap-in folio before use: its frames
        come back (it was never charged)."""
        mem_map.pop(folio.pfn, None)
        self.frames.free(folio.pfn - self.pfn_base, folio.order)

    def _charge_swapin(self, folio: Folio, memcg_id: int, gfp: int) -> bool:
        # A large swap-in charge reclaims only when its gfp allows it; a
        # failed charge makes the swap cache drop the folio (swapin_folio_free).
        may_reclaim = not folio.order or bool(gfp & Gfp.DIRECT_RECLAIM)
        return try_charge_memcg(self, 1 << folio.order, may_reclaim=may_reclaim)

    def _slot_free_notify(self, si: object, offset: int, nr: int) -> None:
        type_ = si.type  # type: ignore[attr-defined]
        if self.zswap is not None:
            zswap_invalidate(self, type_, offset, nr)
        store = self.stores.get(type_)
        if store is not None:
            store.discard(offset, nr)

    def swap_cache_alloc(self, entry: int, orders: int, gfp: int = 0) -> Folio | str:
        """``swap_cache_alloc_folio`` with the VM's frames: a locked folio,
        or the errno name."""
        return swap_cache_alloc_folio(self.subsys, entry, gfp, orders)

    # -- folio helpers ----------------------------------------------------------------
    def swapcache_folio(self, head: int) -> Folio | None:
        """The swap-cache ``struct folio`` of the folio at `head`, if any."""
        folio = mem_map.get(self.pfn_base + head)
        if folio is None:
            return None
        if folio.flags & PG_swapcache:
            return folio
        # The swap model dropped it from the cache behind our back.
        del mem_map[self.pfn_base + head]
        return None

    def folio_left_swapcache(self, head: int, folio: Folio) -> None:
        pfn = self.pfn_base + head
        if mem_map.get(pfn) is folio:
            del mem_map[pfn]

    def reap_orphan(self, folio: Folio) -> None:
        """A folio the swap model just dropped from the cache: free it if
        nothing maps it (the kernel's last folio_put)."""
        if folio.flags & PG_swapcache:
            return
        head = folio.pfn - self.pfn_base
        frames = self.frames
        self.folio_left_swapcache(head, folio)
        if (
            0 <= head < frames.nr_frames
            and frames.flags_mv[head]
            and frames.mapcount_mv[head] == 0
            and not frames.flags_mv[head] & FL_ISOLATED
        ):
            self.free_folio(head)

    def free_folio(self, head: int) -> None:
        """Free a folio nothing maps or caches, and uncharge it."""
        frames = self.frames
        flags = frames.flags_mv[head]
        order = frames.order_mv[head]
        nr = 1 << order
        if flags & FL_LRU:
            frames.lru_del(head, bool(flags & FL_ACTIVE), nr)
        if mem_map.get(self.pfn_base + head) is not None and self.swapcache_folio(head):
            WARN(f"free_folio: frame {head} is still in the swap cache")
        frames.free(head, order)
        mem_cgroup_uncharge(self, nr)
        self.events["pgfree"] += nr

    def lru_add_new(self, head: int) -> None:
        """``folio_add_lru``: a new folio goes on the inactive list unless
        its refault made it active."""
        frames = self.frames
        flags = frames.flags_mv[head]
        frames.flags_mv[head] = (flags & ~FL_ISOLATED) | FL_LRU
        frames.lru_add(head, bool(flags & FL_ACTIVE), 1 << frames.order_mv[head])

    def lru_note_cost(self, nr_io: int, nr_rotated: int) -> None:
        vmscan.lru_note_cost(self, nr_io, nr_rotated)

    def new_token(self) -> int:
        self.serial += 1
        return make_token(self.fill_kind, self.serial)

    def write_hit(self, pti: int, value: int) -> None:
        """A write to a present writable PTE `pti` whose new value is `value`:
        the page gets new contents."""
        token = self.new_token()
        self.pt.pte_mv[pti] = value | PTE_YOUNG | PTE_DIRTY
        self.pt.token_mv[pti] = token
        self.frames.token_mv[value >> PTE_FRAME_SHIFT] = token

    def verify_swapin(self, head: int, base: int, nr: int) -> None:
        """Compare what came back from swap with what the process wrote."""
        ftokens = self.frames.token_mv
        tokens = self.pt.token_mv
        for i in range(nr):
            if ftokens[head + i] != tokens[base + i]:
                self.mismatches += 1
        self.verified_pages += nr

    # -- operations ---------------------------------------------------------------------
    def mm(self, pid: int) -> MmStruct | None:
        """The live process `pid` (created on first use); None if it was killed."""
        mm = self.mms.get(pid)
        if mm is None:
            if pid in self.killed:
                return None
            mm = self.mms[pid] = MmStruct(pid)
            # exec's mm_alloc: the new mm is no task's yet, so the OOM
            # killer picks among the others; with none left the exec fails.
            while not memory.mm_alloc_pgd(self, mm):
                if self.mem_cgroup_out_of_memory(exclude=mm) is None:
                    self.killed.add(pid)
                    self.exit(pid)
                    return None
        return mm

    def _check_range(self, page: int, npages: int) -> None:
        if page + npages > MAX_PAGE or npages < 0:
            raise ConfigError(
                f"page range {page:#x}+{npages} is outside the address space "
                f"(pages below {MAX_PAGE:#x})"
            )

    def access(self, pid: int, page: int, write: bool) -> None:
        """One read or write of one page (faulting as needed)."""
        mm = self.mms.get(pid)
        if mm is None:
            mm = self.mm(pid)  # first use, or a killed process
            if mm is None:
                self.vm_stats["events_skipped"] += 1
                return
        while memory.handle_mm_fault(self, mm, page, write) == memory.VM_FAULT_OOM:
            # The charge failed after reclaim: the OOM killer runs, and the
            # fault is taken again unless it killed this process.
            victim = self.mem_cgroup_out_of_memory()
            if victim is None or victim is mm:
                break
        if self.zswap is not None:  # nothing is deferred without zswap
            self.run_deferred()

    def map(self, pid: int, page: int, npages: int) -> None:
        mm = self.mm(pid)
        if mm is not None and npages > 0:
            self._check_range(page, npages)
            mm.map_range(page, page + npages)

    def unmap(self, pid: int, page: int, npages: int) -> None:
        mm = self.mm(pid)
        if mm is not None and npages > 0:
            memory.do_munmap(self, mm, page, page + npages)

    def madvise_dontneed(self, pid: int, page: int, npages: int) -> None:
        mm = self.mm(pid)
        if mm is not None and npages > 0:
            memory.madvise_dontneed(self, mm, page, page + npages)

    def vma_anon_orders(self, vma: Vma) -> list[int]:
        """The mTHP orders a fault in `vma` may allocate (none after
        ``MADV_NOHUGEPAGE``)."""
        if vma.flags & VM_NOHUGEPAGE:
            return []
        return self.anon_orders_madvised if vma.flags & VM_HUGEPAGE else self.anon_orders

    def vma_thp_may_reclaim(self, vma: Vma) -> bool:
        """Does a large folio's allocation (and charge) in `vma` allow direct
        reclaim? ``vma_thp_gfp_mask``: with ``defrag=always``, or with
        ``madvise``/``defer+madvise`` for a ``MADV_HUGEPAGE`` mapping."""
        defrag = self.cfg.thp_defrag
        return defrag == "always" or (
            defrag in ("madvise", "defer+madvise") and bool(vma.flags & VM_HUGEPAGE)
        )

    def madvise_hugepage(self, pid: int, page: int, npages: int, on: bool) -> None:
        """``MADV_HUGEPAGE`` (`on`) or ``MADV_NOHUGEPAGE`` over a range."""
        mm = self.mm(pid)
        if mm is None or npages <= 0:
            return
        self._check_range(page, npages)
        if on:
            mm.madvise_range(page, page + npages, VM_HUGEPAGE, VM_NOHUGEPAGE)
        else:
            mm.madvise_range(page, page + npages, VM_NOHUGEPAGE, VM_HUGEPAGE)

    def madvise_pageout(self, pid: int, page: int, npages: int) -> int:
        mm = self.mm(pid)
        if mm is None or npages <= 0:
            return 0
        reclaimed = memory.madvise_pageout(self, mm, page, page + npages)
        self.run_deferred()
        return reclaimed

    def run_deferred(self) -> None:
        """Work the operation just finished queued for another CPU: zswap's
        shrink worker runs now, after the reclaim that queued it (the other
        deferred work waits for :func:`ghostswap.kernel.quiescent`)."""
        zswap = self.zswap
        if zswap is not None and zswap.shrink_work.pending:
            flush_work(zswap.shrink_work)

    def fork(self, pid: int, child_pid: int) -> None:
        parent = self.mm(pid)
        if parent is None:
            # The parent was OOM-killed before it could fork: the child never
            # exists, so its events are skipped like a killed process's.
            if child_pid not in self.mms:
                self.killed.add(child_pid)
            return
        if child_pid in self.mms or child_pid == pid:
            raise ConfigError(f"fork: pid {pid} forks a child pid {child_pid} that already exists")
        self.killed.discard(child_pid)
        while True:
            child = self.mms[child_pid] = MmStruct(child_pid)
            # dup_mm: mm_init allocates the PGD before dup_mmap copies anything.
            failed = (
                memory.copy_page_range(self, parent, child)
                if memory.mm_alloc_pgd(self, child)
                else "OOM"
            )
            if failed is None:
                return
            # dup_mmap failed: the half-built child is torn down.
            self.exit(child_pid)
            if failed != "OOM":
                break
            # A charge failed: the OOM killer picks among the running
            # processes (the child is not one yet); the fork goes on unless
            # it killed the parent.
            victim = self.mem_cgroup_out_of_memory()
            if victim is None or victim is parent:
                break
        # The child never runs; its events are skipped like a killed process's.
        self.killed.add(child_pid)

    def exit(self, pid: int) -> None:
        mm = self.mms.pop(pid, None)
        if mm is not None:
            memory.exit_mmap(self, mm)
            memory.mm_free_pgd(self, mm)

    def select_bad_process(self, exclude: MmStruct | None = None) -> MmStruct | None:
        """``select_bad_process`` over the cgroup's processes (mm/oom_kill.c):
        the highest ``oom_badness``, which is resident pages, swap entries and
        page-table pages (``mm_pgtables_bytes``: PTE, PMD and PUD tables, not
        the PGD) with ``oom_score_adj`` 0. On a tie the later process wins, as
        in ``oom_evaluate_task``; processes are in the order they started."""
        chosen = None
        chosen_points = -1
        for mm in self.mms.values():
            if mm is exclude:
                continue
            points = mm.rss_anon + mm.rss_swapents + mm.nr_pgtables()
            if points >= chosen_points:
                chosen, chosen_points = mm, points
        return chosen

    def mem_cgroup_out_of_memory(self, exclude: MmStruct | None = None) -> MmStruct | None:
        """The memcg OOM killer after a charge failed: kill the process
        :meth:`select_bad_process` picks and return it (None if there is
        none). Its memory is freed at once (the OOM reaper's work) and the
        caller retries the charge, as ``try_charge_memcg`` does."""
        victim = self.select_bad_process(exclude)
        if victim is not None:
            self.oom_kill(victim)
        return victim

    def oom_kill(self, mm: MmStruct) -> None:
        """Kill `mm`'s process: its memory is freed and its events skipped.
        :attr:`before_oom_kill` is called first, while the machine still
        holds the victim's memory (for observers that sample peaks)."""
        if self.before_oom_kill is not None:
            self.before_oom_kill()
        self.oom_victims.append(mm.pid)
        self.memcg.events["oom_kill"] += 1
        self.events["oom_kill"] += 1
        self.killed.add(mm.pid)
        self.exit(mm.pid)

    # -- bulk hits -------------------------------------------------------------------------
    def apply_hits(self, ptis: np.ndarray, writes: np.ndarray) -> None:
        """Plain hits on present PTEs (writes on writable ones), in bulk:
        young bits for all, dirty bits and new contents for writes."""
        pte = self.pt.pte
        pte[ptis] |= PTE_YOUNG
        if writes.any():
            wp = ptis[writes]
            pte[wp] |= PTE_DIRTY
            n = len(wp)
            serials = np.arange(self.serial + 1, self.serial + 1 + n, dtype=np.int64)
            self.serial += n
            if self.fill_kind:
                tokens = (np.int64(self.fill_kind) << np.int64(60)) | serials
            else:
                tokens = np.zeros(n, dtype=np.int64)
            self.pt.token[wp] = tokens
            self.frames.token[pte[wp] >> PTE_FRAME_SHIFT] = tokens

    # -- checks ---------------------------------------------------------------------------
    def verify_resident(self) -> int:
        """Compare every present page's frame contents with what its process
        wrote; adds to the counts and returns the mismatches found."""
        n = self.pt.nr_blocks * 512
        pte = self.pt.pte[:n]
        present = (pte & 1).astype(bool) & ~((pte & (1 << 4)).astype(bool))
        ptis = np.flatnonzero(present)
        frames = pte[ptis] >> PTE_FRAME_SHIFT
        bad = int(np.count_nonzero(self.frames.token[frames] != self.pt.token[ptis]))
        self.mismatches += bad
        self.verified_pages += len(ptis)
        return bad

    def quiescent(self) -> None:
        quiescent()
