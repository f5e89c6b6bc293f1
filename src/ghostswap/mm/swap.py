"""Swap entries, clusters, devices and cluster locking.

Models mm/swap.h and the swap parts of include/linux/swap.h and
include/linux/swapops.h in the linux-mm tree of 2026 (swap table phases
I-IV) plus the seed patch "mm, swap: make the ghost swap device dynamic":
``struct swap_cluster_info`` and its dynamic twin, ``struct
swap_info_struct``, the cluster flags, and ``__swap_cluster_lock``, which
for a ghost device looks the cluster up in an XArray under RCU and treats a
DEAD or missing cluster as absent.

The statics of mm/swapfile.c (``swap_info[]``, the active and available
device lists, ``nr_swap_pages``, the per-CPU cluster cache) live in a
:class:`SwapSubsystem`, so several independent models can coexist in one
process.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import NoReturn

from ghostswap.kernel.lean import compile_lean
from ghostswap.kernel.list import ListHead
from ghostswap.kernel.percpu import PerCpu, PercpuRef
from ghostswap.kernel.plist import PlistHead, PlistNode
from ghostswap.kernel.rcu import rcu_read_lock, rcu_read_unlock
from ghostswap.kernel.spinlock import local_lock_t, spin_lock, spin_unlock, spinlock_t
from ghostswap.kernel.workqueue import WorkStruct
from ghostswap.kernel.xarray import XArray, xa_load
from ghostswap.mm.folio import Folio, folio_alloc, folio_free
from ghostswap.mm.seed_reverts import SeedReverts
from ghostswap.mm.swap_table import SwapExtendTable, SwapMemcgTable, SwapTable
from ghostswap.mm.vmstat import MthpStats, VmEvents

__all__ = [
    "MAX_SWAPFILES",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PMD_ORDER",
    "SWAPFILE_CLUSTER",
    "SWAP_ENTRY_INVALID",
    "SWAP_NR_ORDERS",
    "ClusterFlag",
    "SwapClusterArray",
    "SwapClusterInfo",
    "SwapClusterInfoDynamic",
    "SwapHooks",
    "SwapInfo",
    "SwapSubsystem",
    "swap_cluster_get_and_lock",
    "swap_cluster_lock",
    "swap_cluster_unlock",
    "swp_entry",
    "swp_offset",
    "swp_type",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PMD_ORDER = 9
SWAPFILE_CLUSTER = 1 << PMD_ORDER  # HPAGE_PMD_NR with CONFIG_THP_SWAP
SWAP_NR_ORDERS = PMD_ORDER + 1
SWAP_ENTRY_INVALID = 0
SWAP_CLUSTER_MAX = 32
LATENCY_LIMIT = 256

# include/linux/swap.h with DEVICE_PRIVATE (3 types), MIGRATION (3),
# MEMORY_FAILURE (1) and the PTE marker type: 32 - 3 - 3 - 1 - 1.
MAX_SWAPFILES_SHIFT = 5
MAX_SWAPFILES = (1 << MAX_SWAPFILES_SHIFT) - 3 - 3 - 1 - 1

# include/linux/swapops.h: type in the top bits of an XA_VALUE-sized word.
SWP_TYPE_SHIFT = 63 - MAX_SWAPFILES_SHIFT
SWP_OFFSET_MASK = (1 << SWP_TYPE_SHIFT) - 1
# arch/x86: a swap PTE keeps 50 offset bits (64 - 9 - 5), the tighter limit.
X86_64_MAX_SWAPFILE_PAGES = 1 << 50

# swap_info_struct.flags (include/linux/swap.h); SWP_GHOST comes with phase IV.
SWP_USED = 1 << 0
SWP_WRITEOK = 1 << 1
SWP_DISCARDABLE = 1 << 2
SWP_DISCARDING = 1 << 3
SWP_SOLIDSTATE = 1 << 4
SWP_BLKDEV = 1 << 6
SWP_ACTIVATED = 1 << 7
SWP_FS_OPS = 1 << 8
SWP_AREA_DISCARD = 1 << 9
SWP_PAGE_DISCARD = 1 << 10
SWP_STABLE_WRITES = 1 << 11
SWP_SYNCHRONOUS_IO = 1 << 12
SWP_GHOST = 1 << 13

DEF_SWAP_PRIO = -1


def swp_entry(type_: int, offset: int) -> int:
    """``swp_entry_t`` as its integer value."""
    return (type_ << SWP_TYPE_SHIFT) | offset


def swp_type(entry: int) -> int:
    return entry >> SWP_TYPE_SHIFT


def swp_offset(entry: int) -> int:
    return entry & SWP_OFFSET_MASK


def swp_cluster_offset(entry: int) -> int:
    return (entry & SWP_OFFSET_MASK) % SWAPFILE_CLUSTER


class ClusterFlag(IntEnum):
    """``enum swap_cluster_flags``; every cluster on a list has a flag != NONE."""

    NONE = 0
    FREE = 1
    NONFULL = 2
    FRAG = 3
    FULL = 4
    DISCARD = 5
    DEAD = 6  # the seed: a ghost cluster waiting for kfree_rcu
    MAX = 7

    # Clusters with a flag up to USABLE may be allocated from.
    USABLE = 3


CLUSTER_FLAG_NONE = ClusterFlag.NONE
CLUSTER_FLAG_FREE = ClusterFlag.FREE
CLUSTER_FLAG_NONFULL = ClusterFlag.NONFULL
CLUSTER_FLAG_FRAG = ClusterFlag.FRAG
CLUSTER_FLAG_USABLE = ClusterFlag.USABLE
CLUSTER_FLAG_FULL = ClusterFlag.FULL
CLUSTER_FLAG_DISCARD = ClusterFlag.DISCARD
CLUSTER_FLAG_DEAD = ClusterFlag.DEAD


class SwapClusterInfo:
    """``struct swap_cluster_info``.

    `index` is the cluster's position in the device (the kernel derives it
    from the pointer into ``si->cluster_info``; a dynamic cluster stores it).
    `list` is the list the cluster is on, None when off-list.
    """

    __slots__ = (
        "count",
        "extend_table",
        "flags",
        "index",
        "list",
        "lock",
        "memcg_table",
        "order",
        "table",
    )

    def __init__(self, index: int) -> None:
        self.lock = spinlock_t(f"ci{index}")
        self.count = 0
        self.flags = CLUSTER_FLAG_NONE
        self.order = 0
        self.table: SwapTable | None = None
        self.extend_table: SwapExtendTable | None = None
        self.memcg_table: SwapMemcgTable | None = None
        self.list: ListHead | None = None
        self.index = index

    def __repr__(self) -> str:
        flag = ClusterFlag(self.flags).name
        return f"<cluster {self.index} {flag} order={self.order} count={self.count}>"


class SwapClusterInfoDynamic(SwapClusterInfo):
    """``struct swap_cluster_info_dynamic`` (the seed): a ghost cluster,
    allocated on demand, found through the device's XArray pool and freed with
    kfree_rcu. `virtual_table` is the per-cluster table the patch reserves for
    what a ghost slot maps to in a lower tier."""

    __slots__ = ("virtual_table",)

    def __init__(self, index: int = 0) -> None:
        super().__init__(index)
        self.virtual_table: list[int] | None = None


class SwapClusterArray(dict[int, SwapClusterInfo]):
    """``si->cluster_info``: a static device's array of `nr` clusters.

    The kernel allocates the whole array at swapon (``kvcalloc``) and puts
    every empty cluster on the free list. Here a cluster object is made on
    first use: until then it is empty, FREE and in the free list's lazy run
    (:class:`ghostswap.kernel.list.LazyRun`), which keeps its place in list
    order. Indexing makes it (a dict's ``__missing__``, so a cluster already
    made costs one C-level lookup); :meth:`made` lists the ones made so far,
    the only ones that can hold a table. ``len()`` is the whole array's, and
    so is the kernel-equivalent size (``measure/overhead.py``).
    """

    __slots__ = ("free_list", "nr")

    def __init__(self, nr: int, free_list: ListHead) -> None:
        super().__init__()
        self.nr = nr
        self.free_list = free_list

    def __len__(self) -> int:
        return self.nr

    def __iter__(self) -> NoReturn:
        raise TypeError("index a SwapClusterArray or iterate made(): a whole pass makes them all")

    def __missing__(self, index: int) -> SwapClusterInfo:
        if not 0 <= index < self.nr:
            raise IndexError(f"cluster {index} of {self.nr}")
        ci = SwapClusterInfo(index)
        run = self.free_list.lazy
        if run is not None and run.holds(index):
            ci.flags = CLUSTER_FLAG_FREE
            ci.list = self.free_list
        self[index] = ci
        return ci

    def get_made(self, index: int) -> SwapClusterInfo | None:
        """The cluster at `index` if it was made, without making it."""
        return self.get(index)

    def made(self) -> list[SwapClusterInfo]:
        """The clusters made so far, in index order."""
        return [self[i] for i in sorted(self.keys())]


class SwapHooks:
    """Where the swap model calls out to the layers above it.

    The defaults make the swap model usable on its own: swap-in folios come
    from the folio allocator (and go back to it when the swap cache drops
    them before use), memcg charges succeed, freed slots notify nobody, and
    swapoff has no page tables to walk.
    """

    __slots__ = (
        "discard",
        "memcg_charge_swapin",
        "slot_free_notify",
        "swapin_folio_alloc",
        "swapin_folio_free",
        "unuse",
        "workingset_refault",
        "zswap_is_present",
    )

    def __init__(self) -> None:
        self.swapin_folio_alloc: Callable[[int, int, int], Folio | None] = (
            lambda order, gfp, memcg_id: folio_alloc(order, gfp, memcg_id)
        )
        # The last folio_put of a swap-in folio that never left __swap_cache_alloc.
        self.swapin_folio_free: Callable[[Folio], None] = folio_free
        self.memcg_charge_swapin: Callable[[Folio, int, int], bool] = lambda f, m, g: True
        self.slot_free_notify: Callable[[SwapInfo, int, int], None] | None = None
        self.unuse: Callable[[SwapInfo], None] | None = None
        self.workingset_refault: Callable[[Folio, int], None] | None = None
        self.discard: Callable[[SwapInfo, int, int], None] | None = None
        # zswap_is_present(entry, nr): does zswap hold any slot of the range?
        self.zswap_is_present: Callable[[int, int], bool] | None = None


# AllocStats fields, in the order `ghostswap run` prints them.
ALLOC_STAT_ITEMS = (
    "alloc_fail",
    "fast_hits",
    "frag_scans",
    "ghost_clusters_allocated",
    "ghost_clusters_freed",
    "ghost_pool_peak",
    "list_scans",
    "order0_steals",
    "reclaim_full_passes",
    "reclaim_range_calls",
    "slow_calls",
    "tables_allocated",
    "tables_freed",
)


class AllocStats:
    """Allocator internals that no kernel file prints, for `ghostswap run`."""

    __slots__ = ALLOC_STAT_ITEMS

    def __init__(self) -> None:
        self.alloc_fail = 0
        self.fast_hits = 0
        self.frag_scans = 0
        self.ghost_clusters_allocated = 0
        self.ghost_clusters_freed = 0
        self.ghost_pool_peak = 0
        self.list_scans = 0
        self.order0_steals = 0
        self.reclaim_full_passes = 0
        self.reclaim_range_calls = 0
        self.slow_calls = 0
        self.tables_allocated = 0
        self.tables_freed = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in ALLOC_STAT_ITEMS}


class PercpuSwapCluster:
    """``struct percpu_swap_cluster``: the mainline per-CPU cluster cache."""

    __slots__ = ("lock", "offset", "si")

    def __init__(self, cpu: int) -> None:
        self.si: list[SwapInfo | None] = [None] * SWAP_NR_ORDERS
        self.offset: list[int] = [SWAP_ENTRY_INVALID] * SWAP_NR_ORDERS
        self.lock = local_lock_t(f"percpu_swap_cluster[{cpu}].lock")


class SwapInfo:
    """``struct swap_info_struct``: one swap device.

    `kind` is how the device was created (``file``, ``partition``, ``zram``
    or ``ghost``). `percpu_cluster` is only set under the per-device cache
    policy that the swap tiers series restores.
    """

    __slots__ = (
        "avail_list",
        "cluster_info",
        "cluster_info_pool",
        "discard_clusters",
        "discard_work",
        "flags",
        "frag_clusters",
        "free_clusters",
        "full_clusters",
        "global_cluster",
        "global_cluster_lock",
        "inuse_pages",
        "kind",
        "list",
        "lock",
        "max",
        "maxpages_requested",
        "name",
        "nonfull_clusters",
        "offlist",
        "pages",
        "peak_inuse_pages",
        "percpu_cluster",
        "prio",
        "reclaim_work",
        "storage",
        "subsys",
        "type",
        "users",
    )

    def __init__(self, subsys: SwapSubsystem, type_: int) -> None:
        self.subsys = subsys
        self.type = type_
        self.users = PercpuRef(dead=True)
        self.flags = 0
        self.prio = DEF_SWAP_PRIO
        self.list = PlistNode(self)
        self.avail_list = PlistNode(self)
        self.max = 0
        self.maxpages_requested = 0
        self.pages = 0
        self.inuse_pages = 0
        self.peak_inuse_pages = 0
        self.offlist = True  # SWAP_USAGE_OFFLIST_BIT
        self.cluster_info: SwapClusterArray | None = None
        self.cluster_info_pool: XArray | None = None
        self.free_clusters = ListHead(f"swap{type_}.free")
        self.full_clusters = ListHead(f"swap{type_}.full")
        self.discard_clusters = ListHead(f"swap{type_}.discard")
        self.nonfull_clusters = [
            ListHead(f"swap{type_}.nonfull[{o}]") for o in range(SWAP_NR_ORDERS)
        ]
        self.frag_clusters = [ListHead(f"swap{type_}.frag[{o}]") for o in range(SWAP_NR_ORDERS)]
        self.global_cluster: list[int] | None = None
        self.global_cluster_lock = spinlock_t(f"swap{type_}.global_cluster_lock")
        self.lock = spinlock_t(f"swap{type_}.lock")
        self.discard_work: WorkStruct | None = None
        self.reclaim_work: WorkStruct | None = None
        self.percpu_cluster: PerCpu[list[int]] | None = None
        self.kind = ""
        self.name = ""
        self.storage: object = None  # the backing store, attached by the layers above

    def __repr__(self) -> str:
        return f"<swap{self.type} {self.name} {self.kind} max={self.max} inuse={self.inuse_pages}>"


class SwapSubsystem:
    """The global state of mm/swapfile.c and mm/swap_state.c.

    `percpu_policy` is ``"global"`` (mainline: one cached cluster per CPU and
    order, on whichever device it came from) or ``"per-device"`` (each device
    keeps its own per-CPU clusters and allocation walks devices by priority
    first, as the swap tiers series does). `si_max_bits` and
    `fix_ghost_swapoff_leak` ask what-if questions about the seed (a wider
    ``si->max``; a swapoff that frees the ghost pool).
    """

    def __init__(
        self,
        totalram_pages: int,
        *,
        nr_cpus: int = 2,
        percpu_policy: str = "global",
        memcg: bool = True,
        reverts: SeedReverts | None = None,
        si_max_bits: int = 32,
        fix_ghost_swapoff_leak: bool = False,
    ) -> None:
        if percpu_policy not in ("global", "per-device"):
            raise ValueError(
                f"percpu_policy must be 'global' or 'per-device', not {percpu_policy!r}"
            )
        self.totalram_pages = totalram_pages
        self.nr_cpus = nr_cpus
        self.percpu_policy = percpu_policy
        self.percpu_per_device = percpu_policy == "per-device"
        self.memcg = memcg
        self.reverts = reverts or SeedReverts()
        self.si_max_bits = si_max_bits
        # What-if: swapoff frees a ghost device's pool (ghost_pool_destroy),
        # as a fix of the seed's leak would.
        self.fix_ghost_swapoff_leak = fix_ghost_swapoff_leak
        self.swap_info: list[SwapInfo | None] = [None] * MAX_SWAPFILES
        self.nr_swapfiles = 0
        self.swap_active_head = PlistHead()
        self.swap_avail_head = PlistHead()
        self.swap_lock = spinlock_t("swap_lock")
        self.swap_avail_lock = spinlock_t("swap_avail_lock")
        self.nr_swap_pages = 0
        self.total_swap_pages = 0
        self.nr_rotate_swap = 0
        self.percpu_swap_cluster: PerCpu[PercpuSwapCluster] = PerCpu(PercpuSwapCluster, nr_cpus)
        self.events = VmEvents()
        self.mthp = MthpStats(SWAP_NR_ORDERS)
        self.stats = AllocStats()
        self.hooks = SwapHooks()
        self.nr_swapcache_pages = 0  # NR_SWAPCACHE
        # Clusters that swapoff left allocated (the seed never frees a
        # ghost device's pool), for leak reports and accounting.
        self.leaked: list[SwapClusterInfo] = []

    def devices(self) -> list[SwapInfo]:
        """Devices that are swapped on, by type."""
        return [si for si in self.swap_info if si is not None and si.flags & SWP_WRITEOK]

    def vm_swap_full(self) -> bool:
        """Swap more than half full: release swap cache more aggressively."""
        return self.nr_swap_pages * 2 < self.total_swap_pages


# -- looking clusters up ------------------------------------------------------------
def __swap_type_to_info(subsys: SwapSubsystem, type_: int) -> SwapInfo:
    si = subsys.swap_info[type_]
    assert si is not None
    return si


def __swap_entry_to_info(subsys: SwapSubsystem, entry: int) -> SwapInfo:
    si = subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    assert si is not None
    return si


def __swap_offset_to_cluster(si: SwapInfo, offset: int) -> SwapClusterInfo | None:
    """The cluster of `offset`; for a ghost device an RCU lookup that may miss.

    Context: ghost devices need the caller in an RCU read section (or holding
    something that pins the cluster) for the result to stay valid.
    """
    if si.flags & SWP_GHOST:
        pool = si.cluster_info_pool
        assert pool is not None
        return xa_load(pool, offset // SWAPFILE_CLUSTER)
    cluster_info = si.cluster_info
    assert cluster_info is not None
    return cluster_info[offset // SWAPFILE_CLUSTER]


def __swap_entry_to_cluster(subsys: SwapSubsystem, entry: int) -> SwapClusterInfo | None:
    si = __swap_entry_to_info(subsys, entry)
    return __swap_offset_to_cluster(si, entry & SWP_OFFSET_MASK)


def __swap_cluster_lock(si: SwapInfo, offset: int) -> SwapClusterInfo | None:
    """Lock and return the cluster of `offset`, or None if it is gone.

    A ghost cluster is looked up and locked inside one RCU read section; if
    it turns out to be DEAD (freed while we waited for its lock) it is
    unlocked and treated as missing.
    """
    if not si.flags & SWP_GHOST:
        cluster_info = si.cluster_info
        assert cluster_info is not None
        static_ci = cluster_info[offset // SWAPFILE_CLUSTER]
        spin_lock(static_ci.lock)
        return static_ci
    rcu_read_lock()
    pool = si.cluster_info_pool
    assert pool is not None
    ci: SwapClusterInfo | None = xa_load(pool, offset // SWAPFILE_CLUSTER)
    if ci is not None:
        spin_lock(ci.lock)
        if ci.flags == CLUSTER_FLAG_DEAD and not si.subsys.reverts.no_dead_check:
            spin_unlock(ci.lock)
            ci = None
    rcu_read_unlock()
    return ci


# swap_cluster_lock(si, offset): lock and return the cluster holding `offset`
# (None: a ghost cluster that is gone). Context: the caller keeps the device
# alive. The kernel's wrapper only adds the irq variant, so it is the same
# function here.
swap_cluster_lock = __swap_cluster_lock


def swap_cluster_get_and_lock(subsys: SwapSubsystem, folio: Folio) -> SwapClusterInfo:
    """Lock the cluster holding a folio's entries.

    Context: the folio is locked and in the swap cache, which pins its slots
    and so its cluster.
    """
    entry = folio.swap
    ci = __swap_cluster_lock(__swap_entry_to_info(subsys, entry), entry & SWP_OFFSET_MASK)
    assert ci is not None, "a swap cache folio's cluster must exist"
    return ci


def swap_cluster_unlock(ci: SwapClusterInfo) -> None:
    spin_unlock(ci.lock)


compile_lean(globals())
