"""Turning swap devices on and off (the swapon/swapoff half of mm/swapfile.c).

Kinds of device the model knows, and the kernel flags each gets:

``file``       a swap file on a filesystem: no ``SWP_BLKDEV``, so no large
               (mTHP) entries; solid state unless `rotational`.
``partition``  a block device: large entries allowed.
``zram``       a block device with ``SWP_SYNCHRONOUS_IO``.
``ghost``      the seed's /dev/ghostswap: ``SWP_GHOST | SWP_SOLIDSTATE``,
               sized ``round_up(totalram, SWAPFILE_CLUSTER) * 8`` by default,
               clusters allocated on demand in an XArray pool. It is a
               character device, so it has no ``SWP_BLKDEV`` either, unless
               `large_entries` asks the model to pretend otherwise.

``si->max`` is an ``unsigned int`` in the kernel. A static device reads its
size from the swap header, whose ``last_page`` is a ``__u32`` (mkswap
truncates a bigger area), and ``read_swap_header`` clamps ``last_page + 1``
to ``UINT_MAX``: a file, partition or zram device of 2^32 - 1 pages or more
gets ``si->max`` = 2^32 - 1. The ghost device skips the header; 8x RAM
wraps ``si->max`` from 2 TiB of RAM on, and the model keeps that
(``si_max_bits`` of the subsystem) so the consequences can be studied.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghostswap.errors import ConfigError
from ghostswap.kernel import runtime as _rt
from ghostswap.kernel.bug import KernelError
from ghostswap.kernel.gfp import GFP_KERNEL
from ghostswap.kernel.list import LazyRun, list_add_tail
from ghostswap.kernel.percpu import PerCpu
from ghostswap.kernel.plist import plist_add, plist_del
from ghostswap.kernel.rcu import rcu_read_lock, rcu_read_unlock, synchronize_rcu
from ghostswap.kernel.slab import kfree, kzalloc
from ghostswap.kernel.spinlock import spin_lock, spin_unlock
from ghostswap.kernel.workqueue import WorkStruct, flush_work
from ghostswap.kernel.xarray import XA_FLAGS_ALLOC, XArray, xa_erase, xa_insert
from ghostswap.mm import swap_state, swapfile
from ghostswap.mm.folio import folio_trylock, folio_unlock
from ghostswap.mm.swap import (
    CLUSTER_FLAG_FREE,
    CLUSTER_FLAG_NONFULL,
    DEF_SWAP_PRIO,
    MAX_SWAPFILES,
    SWAP_ENTRY_INVALID,
    SWAP_NR_ORDERS,
    SWAPFILE_CLUSTER,
    SWP_AREA_DISCARD,
    SWP_BLKDEV,
    SWP_DISCARDABLE,
    SWP_GHOST,
    SWP_PAGE_DISCARD,
    SWP_SOLIDSTATE,
    SWP_SYNCHRONOUS_IO,
    SWP_USED,
    SWP_WRITEOK,
    X86_64_MAX_SWAPFILE_PAGES,
    SwapClusterArray,
    SwapClusterInfo,
    SwapClusterInfoDynamic,
    SwapInfo,
    SwapSubsystem,
    __swap_offset_to_cluster,
    swap_cluster_lock,
    swap_cluster_unlock,
    swp_entry,
)
from ghostswap.mm.swap_table import (
    SWP_TB_BAD,
    SWP_TB_NULL,
    __swap_table_xchg,
    swap_table_get,
    swp_tb_is_bad,
    swp_tb_is_null,
)

__all__ = ["DEVICE_KINDS", "GHOST_DEFAULT_MULTIPLE", "SwapSpec", "swapoff", "swapon", "swapon_spec"]

DEVICE_KINDS = ("file", "partition", "zram", "ghost")
GHOST_DEFAULT_MULTIPLE = 8  # the seed: /dev/ghostswap is 8x RAM
# read_swap_header: maxpages = last_page + 1 (last_page a __u32), clamped to
# UINT_MAX so that si->max does not wrap.
SWAP_HEADER_MAX_PAGES = (1 << 32) - 1


def read_swap_header(size_pages: int) -> int:
    """``maxpages`` of a static device of `size_pages` pages as mkswap writes
    its header and ``read_swap_header`` reads it back: at most UINT_MAX."""
    return min(size_pages, SWAP_HEADER_MAX_PAGES)


def ghost_maxpages(totalram_pages: int, multiple: int = GHOST_DEFAULT_MULTIPLE) -> int:
    """``round_up(totalram_pages(), SWAPFILE_CLUSTER) * 8`` of the seed."""
    return -(-totalram_pages // SWAPFILE_CLUSTER) * SWAPFILE_CLUSTER * multiple


def _ghost_size(totalram_pages: int, size_pages: int | None, multiple: int) -> int:
    """A ghost device's ``si->max``: `size_pages` rounded up to whole
    clusters, or `multiple` x RAM without a size."""
    if size_pages is None:
        return ghost_maxpages(totalram_pages, multiple)
    return -(-size_pages // SWAPFILE_CLUSTER) * SWAPFILE_CLUSTER


def ghost_usable_pages(spec: SwapSpec, totalram_pages: int) -> int:
    """The slots a ghost device of `spec` can ever hand out: all but its
    first cluster, which swapon preallocates for the header slot and puts
    on no list (the seed allocates clusters from index 1 up)."""
    multiple = spec.ram_multiple or GHOST_DEFAULT_MULTIPLE
    return max(_ghost_size(totalram_pages, spec.size_pages, multiple) - SWAPFILE_CLUSTER, 0)


def alloc_swap_info(subsys: SwapSubsystem) -> SwapInfo:
    """A free ``swap_info[]`` slot (reusing one left by swapoff)."""
    spin_lock(subsys.swap_lock)
    try:
        for type_ in range(subsys.nr_swapfiles):
            si = subsys.swap_info[type_]
            if si is not None and not si.flags & SWP_USED:
                break
        else:
            type_ = subsys.nr_swapfiles
            if type_ >= MAX_SWAPFILES:
                raise ConfigError(
                    f"swapon: at most MAX_SWAPFILES ({MAX_SWAPFILES}) swap devices can be on"
                )
            subsys.nr_swapfiles += 1
        si = SwapInfo(subsys, type_)
        subsys.swap_info[type_] = si
        si.flags = SWP_USED
        return si
    finally:
        spin_unlock(subsys.swap_lock)


def swap_cluster_setup_bad_slot(si: SwapInfo, ci: SwapClusterInfo, offset: int, mask: bool) -> None:
    """Mark `offset` unusable (the header, a bad page, the tail past EOF)."""
    ci_off = offset % SWAPFILE_CLUSTER
    if offset >= si.max and not mask:
        return
    if offset and not mask:
        si.pages -= 1
    if not si.pages:
        raise ConfigError("swapon: empty swap area")
    if not ci.count and not swapfile.swap_cluster_alloc_table(si, ci, GFP_KERNEL):
        raise KernelError("ENOMEM", "swapon: swap table")
    spin_lock(ci.lock)
    if __swap_table_xchg(ci, ci_off, SWP_TB_BAD) != SWP_TB_NULL:
        spin_unlock(ci.lock)
        raise ConfigError(f"swapon: duplicated bad slot {offset}")
    ci.count += 1
    spin_unlock(ci.lock)


def setup_swap_clusters_info(si: SwapInfo, maxpages: int) -> None:
    """Static device: the cluster array, bad slots, and every cluster on the
    free (or, holding a bad slot, nonfull) list. Ghost device (the seed):
    only cluster 0, preallocated in the pool to hold the header slot; it is
    put on no list."""
    if si.flags & SWP_GHOST:
        pool = XArray(XA_FLAGS_ALLOC, name=f"swap{si.type}.cluster_info_pool")
        ci0 = kzalloc(SwapClusterInfoDynamic, GFP_KERNEL, "swap_cluster_info_dynamic")
        assert ci0 is not None
        xa_insert(pool, 0, ci0, GFP_KERNEL)
        si.cluster_info_pool = pool
        swap_cluster_setup_bad_slot(si, ci0, 0, False)
        return
    nr_clusters = -(-maxpages // SWAPFILE_CLUSTER)
    cluster_info = SwapClusterArray(nr_clusters, si.free_clusters)
    si.cluster_info = cluster_info
    if not si.flags & SWP_SOLIDSTATE:
        si.global_cluster = [SWAP_ENTRY_INVALID] * SWAP_NR_ORDERS
    swap_cluster_setup_bad_slot(si, cluster_info[0], 0, False)
    for offset in range(maxpages, nr_clusters * SWAPFILE_CLUSTER):
        swap_cluster_setup_bad_slot(si, cluster_info[offset // SWAPFILE_CLUSTER], offset, True)
    # In index order, as the kernel adds them: the header's cluster and a
    # partial last one hold bad slots and go to nonfull[0]; every empty
    # cluster goes to the free list, as one lazy run (cluster 0 too, in
    # the odd case that it holds no header).
    made = cluster_info.made()
    last = made[-1] if len(made) > 1 else None
    assert len(made) <= 2 and (last is None or last.count), "bad slots: last cluster only"
    run_start = 1 if made[0].count else 0
    run_end = last.index if last is not None else nr_clusters
    if run_end > run_start:
        si.free_clusters.lazy = LazyRun(run_start, run_end, cluster_info.__getitem__)
    for ci in made:
        if ci.count:
            ci.flags = CLUSTER_FLAG_NONFULL
            list_add_tail(ci, si.nonfull_clusters[0])
        else:  # cluster 0, already made, stands in the run
            ci.flags = CLUSTER_FLAG_FREE
            ci.list = si.free_clusters


def _device_flags(kind: str, rotational: bool, discard: bool, large_entries: bool | None) -> int:
    flags = {
        "file": 0,
        "partition": SWP_BLKDEV,
        "zram": SWP_BLKDEV | SWP_SYNCHRONOUS_IO,
        "ghost": SWP_GHOST | SWP_SOLIDSTATE,
    }[kind]
    if kind != "ghost" and (kind == "zram" or not rotational):
        flags |= SWP_SOLIDSTATE
    if large_entries is not None:
        flags = flags | SWP_BLKDEV if large_entries else flags & ~SWP_BLKDEV
    if discard:
        flags |= SWP_DISCARDABLE | SWP_AREA_DISCARD | SWP_PAGE_DISCARD
    return flags


def swapon(
    subsys: SwapSubsystem,
    kind: str,
    size_pages: int | None = None,
    *,
    prio: int | None = None,
    name: str = "",
    rotational: bool = False,
    discard: bool = False,
    ghost_multiple: int = GHOST_DEFAULT_MULTIPLE,
    large_entries: bool | None = None,
) -> SwapInfo:
    """Turn on a swap device of `size_pages` pages (the header page included).

    A ghost device without a size gets `ghost_multiple` x RAM; a static
    device larger than its swap header can describe is clamped (see the
    module docstring). Raises :class:`ConfigError` for sizes the kernel or
    the entry format refuse.
    """
    if kind not in DEVICE_KINDS:
        raise ConfigError(
            f"swapon: unknown device kind {kind!r} (one of {', '.join(DEVICE_KINDS)})"
        )
    if kind == "ghost":
        if size_pages is None and ghost_multiple < 1:
            raise ConfigError("swapon: a ghost device needs a multiple of RAM >= 1")
        maxpages = _ghost_size(subsys.totalram_pages, size_pages, ghost_multiple)
    else:
        if size_pages is None:
            raise ConfigError(f"swapon: a {kind} device needs a size")
        maxpages = read_swap_header(size_pages)
    if maxpages > X86_64_MAX_SWAPFILE_PAGES:
        raise ConfigError(
            f"swapon: {maxpages} pages exceed the swap entry format's limit of 2^50 pages "
            f"(x86_64 swap PTE offset bits)"
        )
    if maxpages < 2:
        raise ConfigError("swapon: a swap area needs at least two pages (header and one slot)")

    si = alloc_swap_info(subsys)
    si.kind = kind
    si.name = name or (f"/dev/ghostswap{si.type or ''}" if kind == "ghost" else f"{kind}{si.type}")
    si.flags |= _device_flags(kind, rotational, discard, large_entries)
    si.maxpages_requested = maxpages
    si.max = maxpages & ((1 << subsys.si_max_bits) - 1)
    si.pages = (si.max - 1) & ((1 << subsys.si_max_bits) - 1)
    si.discard_work = WorkStruct(lambda: swapfile.swap_do_scheduled_discard(si), "discard")
    si.reclaim_work = WorkStruct(lambda: swapfile.swap_reclaim_work(si), "reclaim")
    if subsys.percpu_policy == "per-device" and si.flags & SWP_SOLIDSTATE:
        si.percpu_cluster = PerCpu(
            lambda cpu: [SWAP_ENTRY_INVALID] * SWAP_NR_ORDERS, subsys.nr_cpus
        )
    try:
        setup_swap_clusters_info(si, si.max if kind == "ghost" else maxpages)
    except BaseException:
        si.flags = 0
        raise
    if not si.flags & SWP_SOLIDSTATE:
        subsys.nr_rotate_swap += 1
    si.prio = DEF_SWAP_PRIO if prio is None else prio
    si.list.prio = -si.prio
    si.avail_list.prio = -si.prio
    enable_swap_info(si)
    return si


@dataclass(frozen=True)
class SwapSpec:
    """The arguments of one :func:`swapon` (sizes in pages; None: the
    default), as ``ghostswap.config.parse_swap_spec`` reads them from
    ``KIND[:SIZE][:OPTION...]``."""

    kind: str
    size_pages: int | None = None
    ram_multiple: int | None = None
    prio: int | None = None
    rotational: bool = False
    discard: bool = False
    large_entries: bool | None = None
    text: str = ""

    def describe(self) -> str:
        return self.text or self.kind


def swapon_spec(subsys: SwapSubsystem, spec: SwapSpec, name: str = "") -> SwapInfo:
    """Turn on the device `spec` describes."""
    return swapon(
        subsys,
        spec.kind,
        spec.size_pages,
        prio=spec.prio,
        name=name,
        rotational=spec.rotational,
        discard=spec.discard,
        ghost_multiple=spec.ram_multiple or GHOST_DEFAULT_MULTIPLE,
        large_entries=spec.large_entries,
    )


def _enable_swap_info(si: SwapInfo) -> None:
    subsys = si.subsys
    subsys.nr_swap_pages += si.pages
    subsys.total_swap_pages += si.pages
    plist_add(si.list, subsys.swap_active_head)
    swapfile.add_to_avail_list(si, True)


def enable_swap_info(si: SwapInfo) -> None:
    """Expose a ready device to the allocator."""
    si.users.resurrect()
    subsys = si.subsys
    spin_lock(subsys.swap_lock)
    spin_lock(si.lock)
    _enable_swap_info(si)
    spin_unlock(si.lock)
    spin_unlock(subsys.swap_lock)


def wait_for_allocation(si: SwapInfo) -> None:
    """After SWP_WRITEOK is cleared, lock each cluster once so allocations
    in flight see it.

    The seed returns early for a ghost device instead of adding a NULL check
    to this loop; the ``ghost-wait-for-allocation`` revert runs the loop as
    it was, which unlocks NULL at the first cluster index not in the pool.
    """
    end = -(-si.max // SWAPFILE_CLUSTER) * SWAPFILE_CLUSTER
    cluster_info = si.cluster_info
    for offset in range(0, end, SWAPFILE_CLUSTER):
        # A static cluster never made was never locked; in fast mode, with
        # one thread, locking it would do nothing but make it.
        if (
            _rt.checked is None
            and cluster_info is not None
            and cluster_info.get_made(offset // SWAPFILE_CLUSTER) is None
        ):
            continue
        ci = swap_cluster_lock(si, offset)
        swap_cluster_unlock(ci)  # type: ignore[arg-type]


def find_next_to_unuse(si: SwapInfo, prev: int) -> int:
    """The next offset after `prev` whose slot is in use; 0 at the end."""
    # In fast mode a cluster with no slot in use is skipped whole; checked
    # mode reads every offset but the first of a missing ghost cluster, the
    # scheduling points its recorded schedules were made with.
    step_over_gap = SWAPFILE_CLUSTER if _rt.checked is None else 1
    i = prev + 1
    while i < si.max:
        if i % SWAPFILE_CLUSTER == 0 and _cluster_gap(si, i):
            i += step_over_gap
            continue
        # The seed's RCU section: the ghost cluster found must not be freed
        # before its table is read.
        rcu_read_lock()
        swp_tb = swap_table_get(__swap_offset_to_cluster(si, i), i % SWAPFILE_CLUSTER)
        rcu_read_unlock()
        if not swp_tb_is_null(swp_tb) and not swp_tb_is_bad(swp_tb):
            return i
        i += 1
    return 0


def _cluster_gap(si: SwapInfo, offset: int) -> bool:
    # The cluster at `offset` has no slot in use: a missing ghost cluster
    # and, in fast mode, a static one never made or without a table. The
    # kernel walks every offset and reads NULL from each; checked mode keeps
    # that walk for static devices.
    if si.flags & SWP_GHOST:
        return __swap_offset_to_cluster(si, offset) is None
    if _rt.checked is not None:
        return False
    assert si.cluster_info is not None
    ci = si.cluster_info.get_made(offset // SWAPFILE_CLUSTER)
    return ci is None or ci.table is None


def try_to_unuse(si: SwapInfo) -> None:
    """Bring every page on `si` back into memory (through the VM's unuse
    hook), then drop the swap cache that is left."""
    subsys = si.subsys
    if not si.inuse_pages:
        return
    if subsys.hooks.unuse is not None:
        subsys.hooks.unuse(si)
    i = 0
    while si.inuse_pages:
        i = find_next_to_unuse(si, i)
        if not i:
            break
        folio = swap_state.swap_cache_get_folio(subsys, swp_entry(si.type, i))
        if folio is None or not folio_trylock(folio):
            continue
        swapfile.folio_free_swap(subsys, folio)
        folio_unlock(folio)
    if si.inuse_pages:
        raise KernelError(
            "EBUSY", f"swapoff {si.name}: {si.inuse_pages} slots are still referenced"
        )


def free_swap_cluster_info(si: SwapInfo, cluster_info: SwapClusterArray) -> None:
    for ci in cluster_info.made():
        spin_lock(ci.lock)
        if ci.table is not None:
            swapfile.swap_cluster_assert_empty(ci, 0, SWAPFILE_CLUSTER, True)
            swapfile.swap_cluster_free_table(si, ci)
        spin_unlock(ci.lock)


def flush_percpu_swap_cluster(si: SwapInfo) -> None:
    for pcp in si.subsys.percpu_swap_cluster:
        for order in range(SWAP_NR_ORDERS):
            if pcp.si[order] is si:
                pcp.si[order] = None


def swapoff(subsys: SwapSubsystem, si: SwapInfo) -> None:
    """Turn a device off: stop allocation, bring its pages back, tear down.

    A ghost device's pool is left as the seed leaves it: nothing in the
    patch frees cluster 0 (or any cluster still in the pool) at swapoff.
    The model records what stays allocated in ``subsys.leaked``, unless
    ``subsys.fix_ghost_swapoff_leak`` asks for the fix (:func:`ghost_pool_destroy`).
    """
    if not si.flags & SWP_WRITEOK:
        raise ConfigError(f"swapoff: {si.name} is not swapped on")
    spin_lock(subsys.swap_lock)
    spin_lock(si.lock)
    swapfile.del_from_avail_list(si, True)
    plist_del(si.list, subsys.swap_active_head)
    subsys.nr_swap_pages -= si.pages
    subsys.total_swap_pages -= si.pages
    spin_unlock(si.lock)
    spin_unlock(subsys.swap_lock)

    if not si.flags & SWP_GHOST or subsys.reverts.ghost_wait_for_allocation:
        wait_for_allocation(si)
    try:
        try_to_unuse(si)
    except KernelError:
        reinsert_swap_info(si)
        raise

    si.users.kill()
    synchronize_rcu()
    si.users.wait_for_zero(f"swap{si.type}")
    for work in (si.discard_work, si.reclaim_work):
        if work is not None:
            flush_work(work)
    flush_percpu_swap_cluster(si)
    if not si.flags & SWP_SOLIDSTATE:
        subsys.nr_rotate_swap -= 1

    spin_lock(subsys.swap_lock)
    spin_lock(si.lock)
    cluster_info = si.cluster_info
    si.max = 0
    si.cluster_info = None
    spin_unlock(si.lock)
    spin_unlock(subsys.swap_lock)
    if cluster_info is not None:
        free_swap_cluster_info(si, cluster_info)
    if subsys.fix_ghost_swapoff_leak:
        ghost_pool_destroy(si)
    elif si.cluster_info_pool is not None and len(si.cluster_info_pool):
        subsys.leaked.extend(ci for _, ci in si.cluster_info_pool.items())
    spin_lock(subsys.swap_lock)
    si.flags = 0
    spin_unlock(subsys.swap_lock)


def reinsert_swap_info(si: SwapInfo) -> None:
    spin_lock(si.subsys.swap_lock)
    spin_lock(si.lock)
    _enable_swap_info(si)
    spin_unlock(si.lock)
    spin_unlock(si.subsys.swap_lock)


def ghost_pool_destroy(si: SwapInfo) -> None:
    """What a fixed swapoff would do for a ghost device: free the pool."""
    pool = si.cluster_info_pool
    if pool is None:
        return
    for index, ci in pool.items():
        xa_erase(pool, index)
        swapfile.swap_cluster_free_table(si, ci)
        kfree(ci)
    si.cluster_info_pool = None
