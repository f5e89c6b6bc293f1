"""Random sequences of swap operations against a reference model.

The machine plays reclaim, page faults, fork and zap on a small device:
folios are allocated swap in the orders 0..9, mappings take counts, folios
are written out and dropped from the cache, swapped-out slots are faulted
back in (large where the range allows), forked, zapped and freed. After
every step the invariant checker runs and every tracked slot's count and
cache state must match what the reference says.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ghostswap.kernel import quiescent
from ghostswap.kernel.gfp import GFP_KERNEL
from ghostswap.kernel.spinlock import spin_unlock
from ghostswap.mm import swapfile
from ghostswap.mm.folio import Folio, PG_locked
from ghostswap.mm.invariants import check_subsystem
from ghostswap.mm.swap import SWAPFILE_CLUSTER, SwapSubsystem, swap_cluster_lock, swp_offset

# Imported under another name: a __name called inside a class body is mangled.
from ghostswap.mm.swap_state import __swap_cache_del_folio as swap_cache_del_locked
from ghostswap.mm.swap_state import swap_cache_alloc_folio
from ghostswap.mm.swapon import swapon
from tests.helpers import new_folio

DEVICE_PAGES = 8 * SWAPFILE_CLUSTER


class SwapMachine(RuleBasedStateMachine):
    kind = "partition"

    def __init__(self) -> None:
        super().__init__()
        self.subsys = SwapSubsystem(DEVICE_PAGES // 4)
        size = None if self.kind == "ghost" else DEVICE_PAGES
        swapon(self.subsys, self.kind, size, large_entries=True)
        if self.kind == "ghost":
            swapon(self.subsys, "ghost", DEVICE_PAGES, large_entries=True)
        # Reference model: entry -> count for every used slot, and the
        # folios that are in the swap cache.
        self.counts: dict[int, int] = {}
        self.cached: list[Folio] = []

    # -- helpers ------------------------------------------------------------------
    def entries(self, folio: Folio) -> range:
        return range(folio.swap, folio.swap + (1 << folio.order))

    def swapped(self) -> list[int]:
        """Slots with a count that are not cached (swapped out)."""
        in_cache = {e for f in self.cached for e in self.entries(f)}
        return sorted(e for e, c in self.counts.items() if c > 0 and e not in in_cache)

    def drop_uncached(self, folio: Folio, old: range) -> None:
        """`folio` left the cache: its zero-count slots were freed."""
        self.cached.remove(folio)
        for entry in old:
            if self.counts[entry] == 0:
                del self.counts[entry]

    def sync_reclaimed(self) -> None:
        """Zap, and allocation once swap is half full, may reclaim cached
        folios whose slots have no count left."""
        for folio in list(self.cached):
            if not folio.swap:
                self.cached.remove(folio)
        live = {e for f in self.cached for e in self.entries(f)}
        for entry in [e for e, c in self.counts.items() if c == 0 and e not in live]:
            del self.counts[entry]

    # -- rules --------------------------------------------------------------------------
    @rule(order=st.sampled_from([0, 0, 0, 1, 2, 4, 9]))
    def allocate(self, order: int) -> None:
        folio = new_folio(order)
        allocated = swapfile.folio_alloc_swap(self.subsys, folio)
        self.sync_reclaimed()
        if allocated:
            assert folio.swap % (1 << order) == 0
            for entry in self.entries(folio):
                assert entry not in self.counts, "slot handed out twice"
                self.counts[entry] = 0
            folio.flags &= ~PG_locked
            self.cached.append(folio)
        else:
            assert self.subsys.nr_swap_pages < (1 << order) + 2 * SWAPFILE_CLUSTER or order

    @precondition(lambda self: self.cached)
    @rule(data=st.data())
    def unmap(self, data: st.DataObject) -> None:
        """try_to_unmap: one more mapping of the folio becomes a swap entry."""
        folio = data.draw(st.sampled_from(self.cached))
        folio.flags |= PG_locked
        assert swapfile.folio_dup_swap(self.subsys, folio) is None
        folio.flags &= ~PG_locked
        for entry in self.entries(folio):
            self.counts[entry] += 1

    @precondition(lambda self: self.cached)
    @rule(data=st.data(), with_shadow=st.booleans())
    def writeback_done(self, data: st.DataObject, with_shadow: bool) -> None:
        """__remove_mapping after pageout: the folio leaves the cache."""
        folio = data.draw(st.sampled_from(self.cached))
        old = self.entries(folio)
        si = self.subsys.swap_info[folio.swap >> 58]
        assert si is not None
        ci = swap_cluster_lock(si, swp_offset(folio.swap))
        assert ci is not None
        folio.flags |= PG_locked
        swap_cache_del_locked(si, ci, folio, folio.swap, (5 << 1 | 1) if with_shadow else None)
        spin_unlock(ci.lock)
        folio.flags &= ~PG_locked
        self.drop_uncached(folio, old)

    @precondition(lambda self: self.swapped())
    @rule(data=st.data(), order=st.sampled_from([0, 2, 4]))
    def swapin(self, data: st.DataObject, order: int) -> None:
        entry = data.draw(st.sampled_from(self.swapped()))
        result = swap_cache_alloc_folio(self.subsys, entry, GFP_KERNEL, orders=1 << order)
        assert not isinstance(result, str), result
        assert result.swap <= entry < result.swap + (1 << result.order)
        result.flags &= ~PG_locked
        self.cached.append(result)

    @precondition(lambda self: any(self.counts[e] for f in self.cached for e in self.entries(f)))
    @rule(data=st.data())
    def map_swapped_page(self, data: st.DataObject) -> None:
        """do_swap_page maps one page of a cached folio: its count moves to the PTE."""
        candidates = [
            (f, i) for f in self.cached for i in range(1 << f.order) if self.counts[f.swap + i]
        ]
        folio, page = data.draw(st.sampled_from(candidates))
        folio.flags |= PG_locked
        swapfile.folio_put_swap(self.subsys, folio, page)
        folio.flags &= ~PG_locked
        self.counts[folio.swap + page] -= 1

    @precondition(lambda self: self.cached)
    @rule(data=st.data())
    def free_swap(self, data: st.DataObject) -> None:
        folio = data.draw(st.sampled_from(self.cached))
        old = self.entries(folio)
        mapped = any(self.counts[e] for e in old)
        folio.flags |= PG_locked
        freed = swapfile.folio_free_swap(self.subsys, folio)
        folio.flags &= ~PG_locked
        assert freed == (not mapped)
        if freed:
            self.drop_uncached(folio, old)

    @precondition(lambda self: any(c > 0 for c in self.counts.values()))
    @rule(data=st.data())
    def fork(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from(sorted(e for e, c in self.counts.items() if c > 0)))
        assert swapfile.swap_dup_entry_direct(self.subsys, entry) is None
        self.counts[entry] += 1

    @precondition(lambda self: any(c > 0 for c in self.counts.values()))
    @rule(data=st.data())
    def zap(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from(sorted(e for e, c in self.counts.items() if c > 0)))
        swapfile.swap_put_entries_direct(self.subsys, entry, 1)
        self.counts[entry] -= 1
        self.sync_reclaimed()

    @rule()
    def quiesce(self) -> None:
        quiescent()

    # -- checks -------------------------------------------------------------------
    @invariant()
    def consistent(self) -> None:
        check_subsystem(self.subsys)
        assert sum(si.inuse_pages for si in self.subsys.devices()) == len(self.counts)
        for entry, count in self.counts.items():
            assert swapfile.swp_swapcount(self.subsys, entry) == count, hex(entry)
        for folio in self.cached:
            assert folio.flags & (1 << 9), "a tracked folio left the swap cache"


class GhostMachine(SwapMachine):
    kind = "ghost"


SETTINGS = settings(
    max_examples=40,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestStaticDevice = SwapMachine.TestCase
TestStaticDevice.settings = SETTINGS
TestGhostDevice = GhostMachine.TestCase
TestGhostDevice.settings = SETTINGS


@pytest.mark.slow
def test_long_ghost_sequences() -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        GhostMachine, settings=settings(SETTINGS, max_examples=300, stateful_step_count=200)
    )
