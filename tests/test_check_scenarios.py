"""The scenario library: clean runs find nothing, every revert switch is
found, findings fail without any switch, replays are exact."""

from __future__ import annotations

import pytest

from ghostswap.check import driver
from ghostswap.check.scenarios import SCENARIOS
from ghostswap.check.trace import format_trace
from ghostswap.mm.seed_reverts import REVERTS

LIBRARY = [s for s in SCENARIOS.values() if not s.finding]
FINDINGS = [s for s in SCENARIOS.values() if s.finding]

# The scenario each switch is asserted against (one per switch).
SWITCH_SCENARIO = {switch: next(s for s in LIBRARY if switch in s.catches) for switch in REVERTS}


def test_every_switch_has_a_scenario() -> None:
    assert set(SWITCH_SCENARIO) == set(REVERTS)


@pytest.mark.parametrize("scenario", LIBRARY, ids=lambda s: s.name)
def test_clean_run_finds_nothing(scenario) -> None:  # type: ignore[no-untyped-def]
    run = driver.explore(scenario, (), "pct", 40, seed=11)
    assert run.failure is None, run.failure and run.failure.command
    assert run.iterations == 40


@pytest.mark.parametrize("switch", list(REVERTS))
def test_switch_found_quickly(switch: str) -> None:
    """The quick version: a fixed seed, well under 1,000 PCT iterations."""
    scenario = SWITCH_SCENARIO[switch]
    run = driver.explore(scenario, (switch,), "pct", 1000, seed=0)
    assert run.failure is not None, f"{switch} not found by {scenario.name}"
    assert run.failure.failure is not None


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("switch", list(REVERTS))
def test_switch_found_within_1000_pct_iterations(switch: str, seed: int) -> None:
    run = driver.explore(SWITCH_SCENARIO[switch], (switch,), "pct", 1000, seed=seed)
    assert run.failure is not None


@pytest.mark.slow
@pytest.mark.parametrize("scenario", LIBRARY, ids=lambda s: s.name)
def test_clean_library_at_10000_iterations(scenario) -> None:  # type: ignore[no-untyped-def]
    run = driver.explore(scenario, (), "pct", 10_000, seed=0)
    assert run.failure is None, run.failure and run.failure.command


@pytest.mark.parametrize("scenario", FINDINGS, ids=lambda s: s.name)
def test_findings_fail_without_any_switch(scenario) -> None:  # type: ignore[no-untyped-def]
    run = driver.explore(scenario, (), "pct", 1000, seed=0)
    assert run.failure is not None


def test_replay_is_exact_and_prints_a_short_trace() -> None:
    scenario = SWITCH_SCENARIO["no-relookup-after-reclaim"]
    run = driver.explore(scenario, ("no-relookup-after-reclaim",), "pct", 1000, seed=0)
    assert run.failure is not None
    found = run.failure
    text = found.schedule.encode()
    assert found.command.endswith(f"--inject no-relookup-after-reclaim --replay {text}")
    again = driver.replay(scenario, ("no-relookup-after-reclaim",), text)
    assert again.failure == found.failure
    assert again.schedule == found.schedule
    lines = format_trace(again.trace, 80)
    assert 5 < len(lines) <= 81
    assert any("cluster_reclaim_range" in line for line in lines)
    # The same string without the switch diverges or runs clean: never the bug.
    try:
        clean = driver.replay(scenario, (), text)
    except driver.ReplayDivergence:
        return
    assert clean.failure is None


def test_dfs_explores_a_scenario_deterministically() -> None:
    scenario = SCENARIOS["cache-lookup-vs-free"]
    a = driver.explore(scenario, (), "dfs", 30, seed=0, preemption_bound=1)
    b = driver.explore(scenario, (), "dfs", 30, seed=0, preemption_bound=1)
    assert a.failure is None and a.iterations == b.iterations
    run = driver.explore(scenario, ("free-without-rcu",), "dfs", 200, preemption_bound=1)
    assert run.failure is not None


def test_find_next_to_unuse_reads_the_table_inside_rcu() -> None:
    """The schedule that caught the missing rcu_read_lock() no longer fails."""
    try:
        ex = driver.replay(SCENARIOS["swapoff-vs-swapin"], (), "1s_nLdrMSASECBgASAggA4BEBEg")
    except driver.ReplayDivergence:
        return
    assert ex.failure is None
