"""Scheduling strategies, schedule strings and replay on tiny programs."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from ghostswap.check.dfs import DfsStrategy
from ghostswap.check.pct import PctStrategy
from ghostswap.check.random import RandomStrategy
from ghostswap.check.replay import ReplayStrategy
from ghostswap.check.schedule import ReplayDivergence, Schedule
from ghostswap.errors import ConfigError
from ghostswap.kernel import runtime
from ghostswap.kernel.runtime import CheckedRuntime
from ghostswap.kernel.sched import sched_point


class _Recording:
    """Wraps a strategy like the driver does: asked only on real choices."""

    def __init__(self, strategy: object) -> None:
        self.strategy = strategy
        self.decisions: list[int] = []

    def start(self, nr_cpus: int) -> None:
        self.decisions = []
        self.strategy.start(nr_cpus)  # type: ignore[attr-defined]

    def pick(self, runnable, current, point):  # type: ignore[no-untyped-def]
        if len(runnable) == 1:
            return runnable[0]
        cpu = self.strategy.pick(runnable, current, point)  # type: ignore[attr-defined]
        self.decisions.append(cpu)
        return cpu


def _run(strategy: object, nr_cpus: int = 2, steps: int = 2) -> tuple[list[int], list[int]]:
    """Run `nr_cpus` CPUs of `steps` points each; return (order of steps, decisions)."""
    order: list[int] = []

    def body(cpu: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(steps):
                order.append(cpu)
                if i + 1 < steps:  # every decision is then followed by a visible step
                    sched_point("step")

        return run

    rec = _Recording(strategy)
    rt = CheckedRuntime(rec)
    runtime.install(rt)
    try:
        rt.run([body(c) for c in range(nr_cpus)])
    finally:
        runtime.install(None)
    return order, rec.decisions


def test_schedule_string_round_trip() -> None:
    decisions = (0,) * 50 + (1,) * 30 + (2,) * 5 + (0,) * 40 + (1, 2, 0, 1)
    s = Schedule(12345, decisions)
    text = s.encode()
    assert text.startswith("1")
    assert len(text) < 40
    assert Schedule.decode(text) == s
    mixed = Schedule(0, (0, 1, 2, 1) * 50)
    assert Schedule.decode(mixed.encode()) == mixed


@pytest.mark.parametrize("bad", ["", "2AAAA", "1!!", "1AAEC"])
def test_bad_schedule_strings_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        Schedule.decode(bad)


def test_random_is_deterministic_per_seed() -> None:
    a = _run(RandomStrategy(7), 3, 5)
    b = _run(RandomStrategy(7), 3, 5)
    assert a == b
    assert any(_run(RandomStrategy(s), 3, 5) != a for s in range(8, 14))


def test_replay_reproduces_and_detects_divergence() -> None:
    order, decisions = _run(RandomStrategy(3), 3, 4)
    replayed, again = _run(ReplayStrategy(decisions), 3, 4)
    assert (replayed, again) == (order, decisions)
    bad = list(decisions)
    bad[0] = 7  # no such CPU
    with pytest.raises(ReplayDivergence):
        _run(ReplayStrategy(bad), 3, 4)
    with pytest.raises(ReplayDivergence):
        _run(ReplayStrategy(decisions[:2]), 3, 4)


def test_pct_depth_one_never_preempts() -> None:
    """Depth 1: no change points, each CPU runs to the end in priority order."""
    for seed in range(10):
        order, _ = _run(PctStrategy(seed, depth=1), 3, 4)
        runs = [order[0]]
        for cpu in order[1:]:
            if cpu != runs[-1]:
                runs.append(cpu)
        assert len(runs) == 3, order


def test_pct_depth_bounds_preemptions() -> None:
    """Depth d gives at most d - 1 preemptions, and some run uses them all."""
    for depth in (2, 3, 4):
        most = 0
        for seed in range(200):
            strategy = PctStrategy(seed, depth=depth, expected_steps=8)
            order, _ = _run(strategy, 2, 4)
            switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
            # The last CPU to start never preempts: switches = preemptions + 1.
            assert switches - 1 <= depth - 1
            most = max(most, switches - 1)
        assert most == depth - 1


def _dfs_all(bound: int, nr_cpus: int, steps: int) -> list[tuple[int, ...]]:
    dfs = DfsStrategy(bound)
    seen = []
    while True:
        order, _ = _run(dfs, nr_cpus, steps)
        seen.append(tuple(order))
        if not dfs.next_execution():
            return seen


def _preemptions(order: tuple[int, ...], steps: int) -> int:
    done: dict[int, int] = {}
    count = 0
    for i, cpu in enumerate(order):
        done[cpu] = done.get(cpu, 0) + 1
        if i + 1 < len(order) and order[i + 1] != cpu and done[cpu] < steps:
            count += 1
    return count


@pytest.mark.parametrize("bound", [0, 1, 2, 5])
def test_dfs_enumerates_exactly_the_bounded_schedules(bound: int) -> None:
    """Two CPUs of three steps: DFS yields each interleaving with at most
    `bound` preemptions exactly once, and no other."""
    import itertools

    steps = 3
    seen = _dfs_all(bound, 2, steps)
    assert len(seen) == len(set(seen))
    expected = set()
    for positions in itertools.combinations(range(2 * steps), steps):
        order = tuple(0 if i in positions else 1 for i in range(2 * steps))
        if _preemptions(order, steps) <= bound:
            expected.add(order)
    assert set(seen) == expected
    if bound >= 5:
        assert len(seen) == 20  # C(6, 3): every interleaving
