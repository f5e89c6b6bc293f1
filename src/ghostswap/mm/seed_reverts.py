"""Named switches that revert the ghost-device patch's safety measures.

The seed patch (``mm, swap: make the ghost swap device dynamic``) adds RCU
sections, re-lookups after every dropped cluster lock, a DEAD flag and NULL
checks so a dynamically allocated cluster can disappear under a reader. Each
switch below puts back the code the patch replaced at one of those places.
All are off by default; ``ghostswap check --inject NAME`` turns one on so the
checker can prove it finds the bug that measure prevents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from ghostswap.errors import ConfigError

__all__ = ["REVERTS", "SeedReverts"]

# switch name -> (field of SeedReverts, what reverting it does)
REVERTS: dict[str, tuple[str, str]] = {
    "no-relookup-after-reclaim": (
        "no_relookup_after_reclaim",
        "cluster_reclaim_range() re-takes the lock of the cluster pointer it held "
        "before dropping the lock, instead of looking the cluster up again",
    ),
    "no-relookup-full-reclaim": (
        "no_relookup_full_reclaim",
        "swap_reclaim_full_clusters() re-locks its stale cluster pointer after reclaiming a slot",
    ),
    "no-dead-check": (
        "no_dead_check",
        "__swap_cluster_lock() returns a cluster marked CLUSTER_FLAG_DEAD",
    ),
    "free-without-rcu": (
        "free_without_rcu",
        "a freed ghost cluster is kfree()d at once instead of kfree_rcu()",
    ),
    "no-rcu-lookup": (
        "no_rcu_lookup",
        "swap cache lookups resolve the cluster outside an RCU read section",
    ),
    "no-null-cluster-check": (
        "no_null_cluster_check",
        "callers use the result of swap_cluster_lock()/xa_load() without "
        "checking for a missing cluster",
    ),
    "no-cache-alloc-relookup": (
        "no_cache_alloc_relookup",
        "__swap_cache_alloc() reuses the cluster pointer found before allocating "
        "the folio instead of locking the cluster again by offset",
    ),
    "ghost-wait-for-allocation": (
        "ghost_wait_for_allocation",
        "swapoff of a ghost device walks every cluster index in wait_for_allocation()",
    ),
}


@dataclass(frozen=True, slots=True)
class SeedReverts:
    """Which of the seed's safety measures are reverted (all False: the patch)."""

    no_relookup_after_reclaim: bool = False
    no_relookup_full_reclaim: bool = False
    no_dead_check: bool = False
    free_without_rcu: bool = False
    no_rcu_lookup: bool = False
    no_null_cluster_check: bool = False
    no_cache_alloc_relookup: bool = False
    ghost_wait_for_allocation: bool = False

    @classmethod
    def from_names(cls, names: Iterable[str]) -> SeedReverts:
        chosen = {}
        for name in names:
            if name not in REVERTS:
                known = ", ".join(sorted(REVERTS))
                raise ConfigError(f"unknown revert switch {name!r} (known: {known})")
            chosen[REVERTS[name][0]] = True
        return cls(**chosen)

    def names(self) -> list[str]:
        on = {f.name for f in fields(self) if getattr(self, f.name)}
        return [name for name, (field, _) in REVERTS.items() if field in on]
