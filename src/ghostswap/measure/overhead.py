"""Kernel-equivalent metadata bytes of swap devices, from the model's state.

Python object sizes say nothing about the kernel; this module counts what
the kernel would have allocated for the same state, using the structure
sizes of :mod:`ghostswap.measure.sizes`:

``swap_info_struct``  the device descriptor (every device)
``cluster_info``      a static device's ``swap_cluster_info`` array
``cluster_info_dynamic``  a ghost device's live ``swap_cluster_info_dynamic``
``cluster_pool_xa_nodes`` the XArray nodes of the ghost pool
``swap_tables``       one page per cluster that has a table
``memcg_tables``      one per table when memcg is on (phase IV)
``extend_tables``     clusters whose counts overflowed
``global_cluster``    the sequential-cluster hint of a rotating device
``percpu_clusters``   the per-device per-CPU cache (swap tiers policy)
``swap_extents``      a static device's extent (one for a block device)
``zswap_trees``       zswap's per-64 MiB XArrays, allocated at swapon
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ghostswap.kernel.xarray import xa_nr_nodes
from ghostswap.measure import sizes
from ghostswap.mm.swap import SWP_GHOST, SWP_SOLIDSTATE, SwapInfo, SwapSubsystem

__all__ = ["DeviceOverhead", "device_overhead", "subsystem_overhead"]


@dataclass
class DeviceOverhead:
    """What one device costs in kernel metadata, by component."""

    name: str
    kind: str
    size_pages: int
    used_pages: int
    components: dict[str, int] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(self.components.values())

    @property
    def bytes_per_used_slot(self) -> float | None:
        return self.total_bytes / self.used_pages if self.used_pages else None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "size_pages": self.size_pages,
            "used_pages": self.used_pages,
            "components": dict(self.components),
            "total_bytes": self.total_bytes,
            "bytes_per_used_slot": self.bytes_per_used_slot,
        }


def device_overhead(si: SwapInfo, zswap_built: bool = True) -> DeviceOverhead:
    """The metadata bytes the kernel would hold for `si` right now."""
    ghost = bool(si.flags & SWP_GHOST)
    if ghost:
        assert si.cluster_info_pool is not None
        clusters = [ci for _, ci in si.cluster_info_pool.items()]
    else:
        assert si.cluster_info is not None
        nr_static = len(si.cluster_info)
        clusters = si.cluster_info.made()
    tables = sum(1 for ci in clusters if ci.table is not None)
    memcg_tables = sum(1 for ci in clusters if ci.memcg_table is not None)
    extend_tables = sum(1 for ci in clusters if ci.extend_table is not None)

    parts: dict[str, int] = {"swap_info_struct": sizes.SWAP_INFO_STRUCT}
    if ghost:
        parts["cluster_info_dynamic"] = len(clusters) * sizes.SWAP_CLUSTER_INFO_DYNAMIC
        assert si.cluster_info_pool is not None
        parts["cluster_pool_xa_nodes"] = xa_nr_nodes(si.cluster_info_pool) * sizes.XA_NODE
    else:
        parts["cluster_info"] = sizes.kvmalloc_size(nr_static * sizes.SWAP_CLUSTER_INFO)
        parts["swap_extents"] = sizes.SWAP_EXTENT
    parts["swap_tables"] = tables * sizes.SWAP_TABLE
    parts["memcg_tables"] = memcg_tables * sizes.MEMCG_TABLE
    parts["extend_tables"] = extend_tables * sizes.EXTEND_TABLE
    if not si.flags & SWP_SOLIDSTATE:
        parts["global_cluster"] = sizes.SWAP_SEQUENTIAL_CLUSTER
    if si.percpu_cluster is not None:
        # DEFINE_PER_CPU-style: unsigned int next[SWAP_NR_ORDERS] per CPU.
        parts["percpu_clusters"] = len(si.percpu_cluster) * 40
    if zswap_built:
        nr_trees = -(-si.maxpages_requested // sizes.ZSWAP_TREE_PAGES)
        parts["zswap_trees"] = sizes.kvmalloc_size(nr_trees * sizes.XARRAY)
    return DeviceOverhead(
        name=si.name,
        kind=si.kind,
        size_pages=si.max,
        used_pages=si.inuse_pages,
        components=parts,
    )


def subsystem_overhead(subsys: SwapSubsystem, zswap_built: bool = True) -> list[DeviceOverhead]:
    """Every swapped-on device's overhead, by swap type."""
    return [device_overhead(si, zswap_built) for si in subsys.devices()]


def clusters_in_use(si: SwapInfo) -> int:
    """Clusters holding a table (what the dynamic parts scale with)."""
    if si.flags & SWP_GHOST:
        assert si.cluster_info_pool is not None
        return sum(1 for _, ci in si.cluster_info_pool.items() if ci.table is not None)
    if si.cluster_info is None:
        return 0
    return sum(1 for ci in si.cluster_info.made() if ci.table is not None)
