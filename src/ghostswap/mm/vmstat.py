"""Event counters under the kernel's own names (mm/vmstat.c,
include/linux/vm_event_item.h, the mTHP stats of mm/huge_memory.c).

``VmEvents`` is what ``/proc/vmstat`` prints for the events the swap path
counts; ``MthpStats`` is ``/sys/kernel/mm/transparent_hugepage/
hugepages-<size>kB/stats/`` for every order.
"""

from __future__ import annotations

__all__ = ["MTHP_STAT_ITEMS", "VM_EVENT_ITEMS", "MthpStats", "VmEvents", "mthp_size_name"]

# The /proc/vmstat events the model counts, in the order ``ghostswap run``
# reports them (its JSON ``vmstat`` has exactly these keys).
VM_EVENT_ITEMS = (
    "pgfault",
    "pgmajfault",
    "pswpin",
    "pswpout",
    "swap_ra",
    "swap_ra_hit",
    "swpin_zero",
    "swpout_zero",
    "zswpin",
    "zswpout",
    "zswpwb",
    "thp_swpout",
    "thp_swpout_fallback",
    "pgscan_anon",
    "pgsteal_anon",
    "pgrefill",
    "pgactivate",
    "pgdeactivate",
    "workingset_refault_anon",
    "workingset_activate_anon",
    "workingset_restore_anon",
    "oom_kill",
)

MTHP_STAT_ITEMS = (
    "anon_fault_alloc",
    "anon_fault_fallback",
    "anon_fault_fallback_charge",
    "zswpout",
    "swpin",
    "swpin_fallback",
    "swpin_fallback_charge",
    "swpout",
    "swpout_fallback",
    "split",
    "split_failed",
    "split_deferred",
    "nr_anon",
    "nr_anon_partially_mapped",
)


class VmEvents(dict[str, int]):
    """``/proc/vmstat`` events: a dict with every known name preset to 0."""

    def __init__(self) -> None:
        super().__init__(dict.fromkeys(VM_EVENT_ITEMS, 0))

    def count_vm_events(self, item: str, delta: int = 1) -> None:
        self[item] += delta


def mthp_size_name(order: int) -> str:
    """The sysfs directory name of an order: 4 -> ``hugepages-64kB``."""
    return f"hugepages-{4 << order}kB"


class MthpStats:
    """Per-order mTHP counters (``count_mthp_stat``)."""

    __slots__ = ("orders",)

    def __init__(self, nr_orders: int = 10) -> None:
        self.orders: list[dict[str, int]] = [
            dict.fromkeys(MTHP_STAT_ITEMS, 0) for _ in range(nr_orders)
        ]

    def count(self, order: int, item: str, delta: int = 1) -> None:
        self.orders[order][item] += delta

    def by_size(self, include_zero: bool = False) -> dict[str, dict[str, int]]:
        """Size name -> counters, for orders >= 1 (the sizes sysfs lists)."""
        out = {}
        for order in range(1, len(self.orders)):
            stats = self.orders[order]
            if include_zero or any(stats.values()):
                out[mthp_size_name(order)] = dict(stats)
        return out
