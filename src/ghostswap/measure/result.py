"""The result of a run: counters under the kernel's names, device usage,
allocator internals, kernel-equivalent overhead and integrity, as one JSON
document with stable keys, plus the timeline samples the report plots.
"""

from __future__ import annotations

from typing import Any

from ghostswap._build import NATIVE
from ghostswap.measure.overhead import clusters_in_use, subsystem_overhead
from ghostswap.mm.machine import Machine
from ghostswap.mm.swap import SWP_GHOST
from ghostswap.mm.vmstat import MTHP_STAT_ITEMS, VM_EVENT_ITEMS
from ghostswap.mm.zswap import ZSWAP_ENTRY_SIZE

__all__ = ["OverheadTracker", "build_result", "oom_warning", "sample"]

MTHP_KEYS = ("swpout", "swpout_fallback", "swpin", "swpin_fallback", "swpin_fallback_charge",
             "zswpout", "anon_fault_alloc", "anon_fault_fallback", "anon_fault_fallback_charge",
             "split")  # fmt: skip


def overhead_now(vm: Machine) -> dict[str, int]:
    """Kernel-equivalent metadata bytes by component, summed over devices,
    plus zswap's entries; ``total`` is their sum."""
    parts: dict[str, int] = {}
    for dev in subsystem_overhead(vm.subsys):
        for name, n in dev.components.items():
            parts[name] = parts.get(name, 0) + n
    if vm.zswap is not None:
        parts["zswap_entries"] = len(vm.zswap.entries) * ZSWAP_ENTRY_SIZE
    parts["total"] = sum(parts.values())
    return parts


class OverheadTracker:
    """Keeps the overhead's (sampled) peaks: for each component and for the
    total, the largest value at the points :meth:`update` was called.
    Components peak at different times, so their peaks may add up to more
    than the peak total."""

    def __init__(self) -> None:
        self.peak: dict[str, int] = {"total": 0}

    def update(self, vm: Machine) -> dict[str, int]:
        now = overhead_now(vm)
        peak = self.peak
        for name, value in now.items():
            if value > peak.get(name, -1):
                peak[name] = value
        return now


def sample(vm: Machine, events: int, overhead_bytes: int | None = None) -> dict[str, float]:
    """One timeline point (it only reads the machine); `overhead_bytes` is
    the metadata total when the caller has just computed it."""
    ev = vm.events
    ghost_clusters = sum(clusters_in_use(si) for si in vm.subsys.devices() if si.flags & SWP_GHOST)
    fallback = sum(vm.mthp.orders[o]["swpout_fallback"] for o in range(1, len(vm.mthp.orders)))
    swpout = sum(vm.mthp.orders[o]["swpout"] for o in range(1, len(vm.mthp.orders)))
    return {
        "events": events,
        "swap_used_pages": sum(si.inuse_pages for si in vm.subsys.devices()),
        "ghost_clusters": ghost_clusters,
        "overhead_bytes": overhead_now(vm)["total"] if overhead_bytes is None else overhead_bytes,
        "pgfault": ev["pgfault"],
        "pgmajfault": ev["pgmajfault"],
        "mthp_swpout": swpout,
        "mthp_swpout_fallback": fallback,
        "memcg_pages": vm.memcg.current_pages(),
        "zswap_pool_bytes": vm.zswap.pool_total_size() if vm.zswap is not None else 0,
    }


def swaps_table(vm: Machine) -> list[dict[str, Any]]:
    """``/proc/swaps`` plus the peak, per device."""
    out = []
    for si in vm.subsys.devices():
        out.append(
            {
                "name": si.name,
                "kind": si.kind,
                "size_pages": si.pages,
                "used_pages": si.inuse_pages,
                "peak_used_pages": si.peak_inuse_pages,
                "priority": si.prio,
                "store": getattr(vm.stores.get(si.type), "kind", None),
            }
        )
    return out


def build_result(
    vm: Machine,
    config: dict[str, Any],
    workload: dict[str, Any],
    events: int,
    seconds: float,
    tracker: OverheadTracker,
) -> dict[str, Any]:
    current = tracker.update(vm)
    mthp = {}
    for order in range(1, len(vm.mthp.orders)):
        stats = vm.mthp.orders[order]
        if any(stats[k] for k in MTHP_KEYS) or order in vm.cfg.mthp:
            mthp[f"{4 << order}kB"] = {k: stats[k] for k in MTHP_KEYS}
    zswap = vm.zswap.stats_dict() if vm.zswap is not None else None
    if vm.zswap is not None and zswap is not None:
        zswap["peak_pool_bytes"] = vm.zswap.peak_pool_total_size()
        zswap["peak_stored_pages"] = vm.zswap.peak_entries
    return {
        "config": config,
        "workload": workload,
        "vmstat": {k: vm.events.get(k, 0) for k in VM_EVENT_ITEMS},
        "mthp": mthp,
        "swaps": swaps_table(vm),
        "allocator": vm.subsys.stats.as_dict(),
        "memcg": {
            "limit_pages": vm.memcg.limit_pages,
            "current_pages": vm.memcg.current_pages(),
            "peak_pages": vm.memcg.peak_pages,
            "stat": dict(vm.memcg.stat),
            "pagetables_pages": vm.memcg.pagetable_pages,
            "events": dict(vm.memcg.events),
            "oom_victims": list(vm.oom_victims),
        },
        "zswap": zswap,
        "vm": dict(vm.vm_stats),
        "overhead_bytes": {
            "current": {"components": _parts(current), "total": current["total"]},
            "peak": {"components": _parts(tracker.peak), "total": tracker.peak["total"]},
        },
        "integrity": {"verified_pages": vm.verified_pages, "mismatches": vm.mismatches},
        "timing": {
            "events": events,
            "seconds": round(seconds, 3),
            "events_per_second": round(events / seconds) if seconds > 0 else None,
            "build": "native" if NATIVE else "pure",
        },
    }


def _parts(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if k != "total"}


assert set(MTHP_KEYS) <= set(MTHP_STAT_ITEMS)


def oom_warning(result: dict[str, Any]) -> str | None:
    """One line on the run's OOM kills, or None if there were none."""
    kills = result["vmstat"].get("oom_kill", 0)
    if not kills:
        return None
    pids = ", ".join(str(pid) for pid in result["memcg"]["oom_victims"])
    return (
        f"the memory cgroup OOM-killed {kills} process(es) (pid {pids}); "
        f"{result['vm']['events_skipped']:,} of their later page accesses were skipped"
    )
