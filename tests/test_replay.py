from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghostswap.kernel import quiescent
from ghostswap.measure.replay import replay
from ghostswap.mm.vm_invariants import check_machine
from ghostswap.workload.events import OP_READ, OP_WRITE, make_events
from tests.vmhelpers import ChunkWorkload, events, make_vm, run

COUNTERS = ("pgfault", "pgmajfault", "pswpin", "pswpout", "pgscan_anon", "pgsteal_anon",
            "pgactivate", "pgdeactivate", "swap_ra", "swap_ra_hit", "workingset_refault_anon",
            "workingset_activate_anon")  # fmt: skip


def random_chunk(seed: int, n: int, pages: int, write_ratio: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = make_events(n)
    ev["pid"] = 1
    ev["npages"] = 1
    hot = rng.random(n) < 0.8
    ev["page"] = np.where(hot, rng.integers(0, pages // 4, n), rng.integers(0, pages, n))
    ev["op"] = np.where(rng.random(n) < write_ratio, OP_WRITE, OP_READ)
    return ev


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 1000), st.sampled_from(["partition:4MiB", "file:4MiB:rotational"]))
def test_bulk_replay_matches_event_by_event(seed, swap):
    """The vectorised hit path changes nothing the kernel could observe."""
    chunk = random_chunk(seed, 3000, 600, 0.3)
    with make_vm(ram_pages=192, swap=(swap,)) as bulk:
        run(bulk, chunk)
        with make_vm(ram_pages=192, swap=(swap,)) as single:
            for row in chunk:
                single.access(int(row["pid"]), int(row["page"]), int(row["op"]) == OP_WRITE)
                quiescent()
            check_machine(single)
            assert {k: bulk.events[k] for k in COUNTERS} == {k: single.events[k] for k in COUNTERS}
            assert bulk.mismatches == single.mismatches == 0
            assert bulk.verified_pages == single.verified_pages
            live = bulk.pt.nr_blocks * 512
            assert ((bulk.pt.pte[:live] & 1) == (single.pt.pte[:live] & 1)).all()


def test_mixed_chunk_with_ranges_and_process_events():
    chunk = events([
        (1, "map", 0, 1024),
        (1, "w", 0, 300),  # a range: 300 page writes
        (1, "fork", 2, 0),
        (2, "w", 10, 5),
        (1, "pageout", 0, 64),
        (2, "r", 0, 300),
        (1, "f", 100, 50),
        (1, "r", 0, 300),
        (2, "exit", 0, 0),
        (1, "unmap", 0, 1024),
    ])  # fmt: skip
    with make_vm(ram_pages=256) as vm:
        run(vm, chunk)
        assert vm.mismatches == 0
        assert vm.verified_pages > 0
        assert vm.memcg.folio_pages() == 0
        assert vm.subsys.nr_swap_pages == vm.subsys.total_swap_pages


def test_replay_samples_a_timeline():
    chunks = [random_chunk(s, 2000, 500, 0.5) for s in range(3)]
    with make_vm(ram_pages=128) as vm:
        result = replay(
            vm, ChunkWorkload(chunks), sampler=lambda m, n: {"events": n}, sample_every=1000
        )
        assert result.events == 6000
        assert [s["events"] for s in result.samples] == [0, 1000, 2000, 3000, 4000, 5000, 6000]


def test_unknown_op_is_an_error():
    from ghostswap.errors import ConfigError
    from ghostswap.measure.replay import replay_chunk

    ev = make_events(1)
    ev[0] = (1, 99, 1, 0)
    with make_vm() as vm, pytest.raises(ConfigError, match="unknown event op"):
        replay_chunk(vm, ev)


def test_a_long_range_is_touched_a_slice_at_a_time(monkeypatch):
    """A trace range may cover 2^32 - 1 pages; building one array of them
    all needed 32 GiB. The slices cover the range in order."""
    from ghostswap.measure import replay as replay_mod

    seen = []
    monkeypatch.setattr(
        replay_mod, "_accesses", lambda vm, pids, pages, writes: seen.append(pages.copy())
    )
    npages = 200_005
    with make_vm() as vm:
        replay_mod.replay_chunk(vm, events([(1, "r", 7, npages)]))
    assert max(len(p) for p in seen) <= 1 << 16
    assert (np.concatenate(seen) == np.arange(7, 7 + npages)).all()


def test_progress_moves_within_a_chunk():
    """A generator's access phase is one chunk of 65536 events: the bar
    must not sit still for all of it."""
    seen = []
    with make_vm(ram_pages=128) as vm:
        replay(
            vm,
            ChunkWorkload([random_chunk(1, 3000, 500, 0.5)]),
            progress=seen.append,
            sampler=lambda m, n: {"events": n},
            sample_every=1000,
        )
    assert seen == [1000, 2000, 3000]


def _replay_row_page_by_page(vm, row):
    """The reference: an access event is one `Machine.access` per page."""
    from ghostswap.measure import replay as replay_mod

    pid, op, page, npages = (int(row[k]) for k in ("pid", "op", "page", "npages"))
    if op in (OP_READ, OP_WRITE):
        for p in range(page, page + npages):
            vm.access(pid, p, op == OP_WRITE)
    else:
        replay_mod._event(vm, pid, op, page, npages)


def _replay_page_by_page(vm, chunk):
    for row in chunk:
        _replay_row_page_by_page(vm, row)
    quiescent()


def _oom_chunk(npages: int, working_set: int = 32) -> np.ndarray:
    """pid 2 works on `working_set` pages; pid 1 writes `npages` pages in one range
    and is OOM-killed part-way; both go on afterwards, interleaved."""
    rng = np.random.default_rng(5)
    head = events([(2, "w", p, 1) for p in range(16)] + [(1, "w", 0, npages)])
    tail = make_events(4000)
    tail["pid"] = rng.choice([1, 2], 4000).astype(np.uint32)
    tail["op"] = np.where(rng.random(4000) < 0.5, OP_WRITE, OP_READ)
    tail["page"] = rng.integers(0, working_set, 4000).astype(np.uint64)
    tail["npages"] = 1
    ranges = events([(1, "r", 5, 70_000), (2, "r", 0, working_set), (1, "w", 0, npages)])
    return np.concatenate([head, tail, ranges, tail])


def _oom_counters(vm):
    return {
        "events": dict(vm.events),
        "vm": dict(vm.vm_stats),
        "memcg": dict(vm.memcg.events),
        "usage": vm.memcg.folio_pages(),
        "mms": sorted(vm.mms),
        "verified": vm.verified_pages,
        "mismatches": vm.mismatches,
    }


@pytest.mark.parametrize(("swap", "working_set"), [((), 32), (("partition:1MiB",), 100)])
def test_a_killed_process_s_events_are_skipped_as_page_by_page(swap, working_set):
    """Skipping an OOM-killed process's accesses in bulk counts them as one
    `Machine.access` call per page would, and leaves the rest unchanged
    (with swap, pid 2's reclaim makes windows with pid 1's skipped
    accesses in them be classified again)."""
    chunk = _oom_chunk(3000, working_set)
    with make_vm(ram_pages=64, swap=swap) as bulk:
        run(bulk, chunk)
        with make_vm(ram_pages=64, swap=swap) as single:
            _replay_page_by_page(single, chunk)
            check_machine(single)
            assert bulk.events["oom_kill"] == 1 and 1 in bulk.killed and 2 in bulk.mms
            assert _oom_counters(bulk) == _oom_counters(single)
            assert bulk.vm_stats["events_skipped"] > 2 * 3000


def test_the_rest_of_a_killed_process_s_huge_range_is_not_walked(monkeypatch):
    """A range of 4e9 pages whose process is OOM-killed part-way: the rest
    of it (and the process's later events) cost no call per page."""
    from ghostswap.mm.machine import Machine

    real_access = Machine.access
    dead_calls = []

    def access(vm, pid, page, write):
        if pid in vm.killed:
            dead_calls.append(page)
            if len(dead_calls) > 100:
                raise AssertionError("a killed process's pages are walked one by one")
        real_access(vm, pid, page, write)

    huge = 4_000_000_000
    with make_vm(ram_pages=64, swap=()) as small:
        run(small, _oom_chunk(3000))
        expected = _oom_counters(small)
    expected["vm"]["events_skipped"] += 2 * (huge - 3000)
    monkeypatch.setattr(Machine, "access", access)
    with make_vm(ram_pages=64, swap=()) as vm:
        run(vm, _oom_chunk(huge))
        assert _oom_counters(vm) == expected
    assert len(dead_calls) <= 100


class _UnknownLength(ChunkWorkload):
    """A workload that cannot tell its length up front (a text trace)."""

    def total_events(self) -> None:  # type: ignore[override]
        return None


def _state(vm, n):
    return {
        "events": n,
        "pgfault": vm.events["pgfault"],
        "pgmajfault": vm.events["pgmajfault"],
        "pswpout": vm.events["pswpout"],
        "pswpin": vm.events["pswpin"],
        "memcg_pages": vm.memcg.current_pages(),
        "swap_used": sum(si.inuse_pages for si in vm.subsys.devices()),
    }


def test_samples_inside_a_part_see_the_machine_as_it_was_at_their_event():
    """A sample point inside a part is taken at the next event that is not
    a plain hit: it must read what replaying exactly that many events one by
    one leaves."""
    chunk = random_chunk(3, 3000, 600, 0.3)
    with make_vm(ram_pages=192, swap=("partition:4MiB",)) as vm:
        result = replay(vm, ChunkWorkload([chunk]), sampler=_state, sample_every=7, step=1024)
    assert [s["events"] for s in result.samples] == [*range(0, 3000, 7), 3000]
    want = []
    with make_vm(ram_pages=192, swap=("partition:4MiB",)) as single:
        for i, row in enumerate(chunk):
            if i % 7 == 0:
                want.append(_state(single, i))
            single.access(int(row["pid"]), int(row["page"]), int(row["op"]) == OP_WRITE)
            quiescent()
        want.append(_state(single, len(chunk)))
    assert result.samples == want


def test_samples_between_ranges_and_process_events_see_the_machine_as_it_was():
    """The same with range, fork, pageout, free and exit events in the part:
    a point is taken before the first such event at or after it."""

    rows = [(1, "map", 0, 1024), (1, "w", 0, 300), (1, "fork", 2, 0), (2, "w", 10, 5)]
    rows += [(1, "r", p, 1) for p in range(0, 600, 7)]
    rows += [(1, "pageout", 0, 64), (2, "r", 0, 300), (1, "f", 100, 50), (1, "r", 0, 3)]
    rows += [(2, "w", p, 1) for p in range(0, 400, 3)] + [(2, "exit", 0, 0), (1, "w", 0, 40)]
    chunk = events(rows)
    with make_vm(ram_pages=256) as vm:
        result = replay(vm, ChunkWorkload([chunk]), sampler=_state, sample_every=3, step=4096)
    want = []
    with make_vm(ram_pages=256) as single:
        for i, row in enumerate(chunk):
            if i % 3 == 0:
                want.append(_state(single, i))
            _replay_row_page_by_page(single, row)
            quiescent()
        want.append(_state(single, len(chunk)))
    assert len({s["pgfault"] for s in want}) > 20
    assert result.samples == want


def test_where_samples_fall_changes_nothing_the_run_counts():
    """Sampling only reads: a timeline of every event and one of none give
    the same counters, zswap's compressed sizes included."""
    chunks = [random_chunk(s, 5000, 900, 0.4) for s in range(2)]

    def counters(sample_every):
        with make_vm(ram_pages=192, swap=("ghost:8x",), zswap=True) as vm:
            result = replay(
                vm, ChunkWorkload(chunks), sampler=_state, sample_every=sample_every, step=4096
            )
            return result, (dict(vm.events), dict(vm.vm_stats), vm.zswap.stats_dict())

    every, dense = counters(1)
    none, sparse = counters(1 << 30)
    assert len(every.samples) == 10_001 and len(none.samples) == 2
    assert dense == sparse and dense[0]["zswpout"] > 0
    assert every.samples[-1] == none.samples[-1]


def test_a_timeline_of_unknown_length_thins_out_and_stays_even():
    chunks = [random_chunk(s, 4000, 500, 0.5) for s in range(10)]
    calls = []

    def sampler(vm, n):
        calls.append(n)
        return {"events": n}

    with make_vm(ram_pages=128) as vm:
        result = replay(
            vm, _UnknownLength(chunks), sampler=sampler, sample_every=1, max_samples=600
        )
    points = [s["events"] for s in result.samples]
    assert 300 <= len(points) - 1 <= 600 and points[-1] == 40_000
    gaps = {b - a for a, b in pairwise(points[:-1])}
    assert len(gaps) == 1 and gaps.pop() in (64, 128)  # a power of two, the same everywhere
    assert len(calls) < 600 + 300 * 8  # each doubling costs about 300 more samples


def test_a_refused_event_is_reported_even_if_its_place_cannot_be_found():
    from ghostswap.errors import ConfigError, TraceError

    class Vanished(ChunkWorkload):
        def locate(self, index: int) -> str:
            raise TraceError("t.csv: No such file or directory")

    with make_vm(ram_pages=64) as vm:
        bad = events([(1, "w", 0, 1), (1, "fork", 1, 0)])
        with pytest.raises(ConfigError, match=r"^gone: event 1: fork: pid 1 forks a child pid 1"):
            replay(vm, Vanished([bad], name="gone"))
