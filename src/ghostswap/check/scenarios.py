"""The library of concurrent scenarios.

A scenario is one function that takes a :class:`~.harness.Harness`, builds a
small swap subsystem and its starting state on the set-up CPU, and returns
one body per modelled CPU; the ``@scenario`` line above it registers it.
Scenarios marked ``finding`` demonstrate a problem of the seed design
itself: they fail without any revert switch, so ``--all`` leaves them out
and they run by name (see docs/findings.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ghostswap.check.harness import Body, Harness, steps
from ghostswap.kernel.gfp import FailureInjection, set_injection
from ghostswap.mm.swap import SWAPFILE_CLUSTER

__all__ = ["SCENARIOS", "Scenario", "scenario"]


@dataclass(frozen=True)
class Scenario:
    name: str
    build: Callable[[Harness], list[Body]]
    help: str
    catches: tuple[str, ...] = ()  # revert switches this scenario is meant to expose
    finding: bool = False


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str, help: str, catches: tuple[str, ...] = (), finding: bool = False
) -> Callable[[Callable[[Harness], list[Body]]], Callable[[Harness], list[Body]]]:
    def register(build: Callable[[Harness], list[Body]]) -> Callable[[Harness], list[Body]]:
        assert name not in SCENARIOS, f"scenario {name} registered twice"
        SCENARIOS[name] = Scenario(name, build, help, catches, finding)
        return build

    return register


C = SWAPFILE_CLUSTER


@scenario(
    "alloc-free-stale",
    "CPU0 allocates through a per-CPU cluster hint while CPU1 frees the last "
    "slots of that cluster (freeing it) and CPU2 allocates a new cluster that "
    "may reuse its index",
    catches=("free-without-rcu", "no-null-cluster-check"),
)
def alloc_free_stale(h: Harness) -> list[Body]:
    h.subsystem()
    h.ghost(4)
    h.swap_out("A")  # the set-up CPU is cpu0: its per-CPU hint now points into cluster 1
    h.swap_out("B")
    return [
        steps(lambda: h.swap_out("C"), lambda: h.swap_out("D")),
        steps(lambda: h.put("A"), lambda: h.put("B")),
        lambda: h.swap_out("E"),
    ]


@scenario(
    "cache-lookup-vs-free",
    "lockless swap cache lookups of an entry (a fault, readahead) race the "
    "free of that entry, which frees its ghost cluster; a third CPU reuses "
    "the cluster index",
    catches=("no-rcu-lookup", "free-without-rcu"),
)
def cache_lookup_vs_free(h: Harness) -> list[Body]:
    h.subsystem()
    h.ghost(4)
    entry = h.swap_out("A")
    h.forget_percpu_clusters()
    return [
        steps(lambda: h.lookup("A", entry), lambda: h.lookup("A", entry)),
        lambda: h.put("A"),
        lambda: h.swap_out("B"),
    ]


@scenario(
    "swapin-vs-free",
    "CPU0 faults a page in (probe, swap_cache_alloc_folio, map) while CPU1 "
    "zaps it and its neighbour, emptying and freeing the ghost cluster; CPU2 "
    "allocates",
    catches=("no-cache-alloc-relookup", "no-dead-check", "no-null-cluster-check"),
)
def swapin_vs_free(h: Harness) -> list[Body]:
    h.subsystem()
    h.ghost(4)
    h.swap_out("A")
    h.swap_out("B")
    h.forget_percpu_clusters()
    return [
        lambda: h.swap_in("A"),
        steps(lambda: h.put("A"), lambda: h.put("B")),
        lambda: h.swap_out("C"),
    ]


@scenario(
    "reclaim-range-vs-free",
    "swap is more than half full; CPU0's allocation meets a cache-only slot "
    "and calls cluster_reclaim_range(), which drops the cluster lock, while "
    "CPU1 frees every other slot of that cluster and CPU2 allocates",
    catches=("no-relookup-after-reclaim",),
)
def reclaim_range_vs_free(h: Harness) -> list[Body]:
    h.subsystem()
    si = h.ghost(3)
    cached = h.swap_out_cached("C")  # slot 512, cluster 1
    assert cached % C == 0
    h.fill(si, C + 1, C - 1)  # cluster 1 full
    assert h.new_cluster(si) == 2 * C
    h.fill(si, 2 * C + 1, 256)  # cluster 2: 257 slots
    h.put_range(si, 2 * C - 1, 1)  # cluster 1: 511 used -> nonfull
    h.forget_percpu_clusters()
    return [
        lambda: h.swap_out("A"),
        lambda: h.put_range(si, C + 1, C - 2),
        lambda: h.swap_out("B"),
    ]


@scenario(
    "full-reclaim-vs-free",
    "swap is half full and cluster 1 is full; the reclaim worker (CPU0) runs "
    "swap_reclaim_full_clusters(), which drops the lock to reclaim a "
    "cache-only slot, while CPU1 frees the rest of the cluster and CPU2 "
    "allocates (its own fallback to the same reclaim runs under the per-CPU "
    "lock, an RCU read section)",
    catches=("no-relookup-full-reclaim",),
)
def full_reclaim_vs_free(h: Harness) -> list[Body]:
    h.subsystem()
    si = h.ghost(2)
    h.swap_out_cached("C")  # slot 512
    h.fill(si, C + 1, C - 1)  # cluster 1 full: swap is half full
    h.forget_percpu_clusters()
    return [
        lambda: h.reclaim_work(si),
        lambda: h.put_range(si, C + 1, C - 1),
        lambda: h.swap_out("A"),
    ]


@scenario(
    "swapoff-vs-swapin",
    "CPU0 swaps the ghost device off (unuse faults every page back) while "
    "CPU1 faults a page in itself and CPU2 zaps another; a static device "
    "stays on",
    catches=("ghost-wait-for-allocation",),
)
def swapoff_vs_swapin(h: Harness) -> list[Body]:
    h.subsystem()
    si = h.ghost(4, prio=10)
    h.static(1, prio=1)
    h.swap_out("A")
    h.swap_out("B")
    h.swap_out("C")
    h.forget_percpu_clusters()
    return [
        lambda: h.swapoff(si),
        lambda: h.swap_in("A"),
        lambda: h.put("B"),
    ]


@scenario(
    "swapoff-vs-alloc",
    "for contrast, a static device: CPU0 swaps it off while CPU1 allocates "
    "(on it or on the ghost device) and CPU2 faults a page in",
)
def swapoff_vs_alloc(h: Harness) -> list[Body]:
    h.subsystem()
    static = h.static(1, prio=10)
    h.ghost(2, prio=1)
    h.swap_out("A")
    h.forget_percpu_clusters()
    return [
        lambda: h.swapoff(static),
        steps(lambda: h.swap_out("X"), lambda: h.swap_out("Y")),
        lambda: h.swap_in("A"),
    ]


@scenario(
    "fork-retry-vs-exit",
    "a page shared by many processes needs an extend table to be forked once "
    "more; the atomic allocation fails, so swap_retry_table_alloc() looks the "
    "cluster up without a re-lookup while the other sharers exit",
)
def fork_retry_vs_exit(h: Harness) -> list[Body]:
    h.subsystem()
    h.ghost(4)
    h.swap_out("P")
    sharers = [f"S{i}" for i in range(13)]  # count 14: the next dup overflows
    for child in sharers:
        h.fork("P", child)
    h.forget_percpu_clusters()
    set_injection(FailureInjection(seed=0, sites={"swap_extend_table": 1.0}))
    # The parent P is forking, so nothing else touches its page table.
    return [
        lambda: h.fork("P", "Q"),
        steps(*(lambda c=c: h.put(c) for c in sharers[1:])),
        lambda: h.swap_in(sharers[0]),
    ]


@scenario(
    "charge-fail-vs-zap",
    "a swap-in whose memcg charge fails undoes its swap cache insertion with "
    "the cluster pointer it had (the folio pins the cluster) while CPU1 zaps "
    "the page, dropping the slot's last count",
)
def charge_fail_vs_zap(h: Harness) -> list[Body]:
    h.subsystem()
    h.ghost(4)
    h.swap_out("A")
    h.forget_percpu_clusters()
    h.memcg_charge_fails = True
    return [
        lambda: h.swap_in("A"),
        lambda: h.put("A"),
        lambda: h.swap_out("B"),
    ]


@scenario(
    "maybe-swapped-vs-zap",
    "a page shared by parent and child is faulted in by the parent "
    "(folio_free_swap -> folio_maybe_swapped, which trusts the folio to pin "
    "the cluster) while the child exits and a third CPU faults the child's "
    "copy",
)
def maybe_swapped_vs_zap(h: Harness) -> list[Body]:
    h.subsystem()
    h.ghost(4)
    h.swap_out("P")
    h.fork("P", "K")
    h.swap_out("N")
    h.forget_percpu_clusters()
    return [
        lambda: h.swap_in("P"),
        steps(lambda: h.put("K"), lambda: h.put("N")),
        lambda: h.swap_in("K"),
    ]


# -- findings: problems of the seed itself --------------------------------------------
@scenario(
    "ghost-swapoff-leak",
    "swapoff of a ghost device: the seed frees no cluster of the pool (cluster "
    "0 and its table stay allocated)",
    finding=True,
)
def ghost_swapoff_leak(h: Harness) -> list[Body]:
    h.subsystem()
    si = h.ghost(2)
    h.swap_out("A")
    h.strict_swapoff_leak = True
    return [lambda: h.swapoff(si), lambda: h.put("A")]


@scenario(
    "ghost-swapoff-vs-alloc",
    "the seed skips wait_for_allocation() for a ghost device, so an "
    "allocation that passed the SWP_WRITEOK check can land after try_to_unuse() "
    "found the device empty",
    finding=True,
)
def ghost_swapoff_vs_alloc(h: Harness) -> list[Body]:
    h.subsystem()
    si = h.ghost(2)
    return [lambda: h.swapoff(si), lambda: h.swap_out("X") and None]


@scenario(
    "ghost-2tib",
    "8x RAM of a 2 TiB machine is 2^32 pages: the 32-bit si->max wraps to 0, "
    "so every ghost entry is out of range",
    finding=True,
)
def ghost_2tib(h: Harness) -> list[Body]:
    h.subsystem(ram_pages=(2 << 40) // 4096)
    h.ghost(None)
    return [
        steps(lambda: h.swap_out("A"), lambda: h.swap_in("A")),
        lambda: h.swap_out("B"),
    ]
