"""``ghostswap check``: explore interleavings of concurrent swap operations.

Runs scenarios from :mod:`ghostswap.check.scenarios` under a scheduling
strategy; every failure prints the command that replays it, and replaying
prints the interleaved trace. Exit status: 0 nothing found, 1 a failure
found (or replayed), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys

from ghostswap.check import driver
from ghostswap.check.scenarios import SCENARIOS, Scenario
from ghostswap.check.schedule import ReplayDivergence
from ghostswap.check.trace import format_trace
from ghostswap.cli.fmt import write_json
from ghostswap.errors import ConfigError
from ghostswap.mm.seed_reverts import REVERTS

NAME = "check"
HELP = "explore interleavings of concurrent swap operations and report races"


def set_argparser(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--scenario", metavar="NAME", help="the scenario to run (see --list)")
    which.add_argument(
        "--all", action="store_true", help="every scenario of the library (not the findings)"
    )
    which.add_argument("--list", action="store_true", help="list the scenarios and switches")
    parser.add_argument("--strategy", choices=driver.STRATEGIES, default="pct", help="default: pct")
    parser.add_argument("--depth", type=int, default=3, help="PCT depth (default 3)")
    parser.add_argument(
        "--iterations", type=int, default=1000, help="schedules per scenario (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the exploration")
    parser.add_argument(
        "--preemption-bound", type=int, default=2, help="DFS preemption bound (default 2)"
    )
    parser.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="SWITCH",
        help="revert one of the seed's safety measures (repeatable; see --list)",
    )
    parser.add_argument(
        "--replay", metavar="STRING", help="replay one schedule and print its trace"
    )
    parser.add_argument(
        "--trace-lines", type=int, default=80, help="longest trace printed (default 80)"
    )
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON (- for stdout)")


def _scenario(name: str) -> Scenario:
    found = SCENARIOS.get(name)
    if found is None:
        raise ConfigError(f"unknown scenario {name!r} (see ghostswap check --list)")
    return found


def _list() -> int:
    print("scenarios (ghostswap check --all runs these):")
    for s in SCENARIOS.values():
        if not s.finding:
            catches = f"  [catches: {', '.join(s.catches)}]" if s.catches else ""
            print(f"  {s.name:<24} {s.help}{catches}")
    print("findings (problems of the seed itself; run by name):")
    for s in SCENARIOS.values():
        if s.finding:
            print(f"  {s.name:<24} {s.help}")
    print("revert switches (--inject):")
    for name, (_, what) in REVERTS.items():
        print(f"  {name:<28} {what}")
    return 0


def _print_failure(execution: driver.Execution) -> None:
    assert execution.failure is not None
    print(f"  {execution.failure}")
    print(f"  reproduce: {execution.command}")


def _replay(args: argparse.Namespace) -> int:
    if not args.scenario:
        raise ConfigError("--replay needs --scenario NAME")
    scenario = _scenario(args.scenario)
    try:
        execution = driver.replay(scenario, args.inject, args.replay)
    except ReplayDivergence as err:
        raise ConfigError(f"the replay diverged: {err}") from None
    for line in format_trace(execution.trace, args.trace_lines):
        print(line)
    if execution.failure is None:
        print(f"replayed {scenario.name}: {execution.decisions} decisions, nothing found")
        result = 0
    else:
        print(f"FAIL {scenario.name}")
        _print_failure(execution)
        result = 1
    if args.json:
        write_json(args.json, [_as_json(scenario.name, execution, None)])
    return result


def _as_json(
    name: str, execution: driver.Execution | None, run: driver.Exploration | None
) -> dict[str, object]:
    out: dict[str, object] = {"scenario": name}
    if run is not None:
        out.update(
            strategy=run.strategy,
            inject=list(run.inject),
            schedules=run.iterations,
            schedules_per_s=round(run.schedules_per_s, 1),
            exhausted=run.exhausted,
        )
    if execution is not None and execution.failure is not None:
        f = execution.failure
        out["failure"] = {
            "kind": f.kind,
            "message": f.message,
            "where": f.where,
            "cpu": f.cpu,
            "replay": execution.schedule.encode(),
            "command": execution.command,
        }
    else:
        out["failure"] = None
    return out


def main(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    for name in args.inject:
        if name not in REVERTS:
            raise ConfigError(f"unknown revert switch {name!r} (see ghostswap check --list)")
    if args.iterations < 1:
        raise ConfigError("--iterations must be at least 1")
    if args.seed < 0:
        raise ConfigError(f"seed {args.seed} is negative")
    if args.replay:
        return _replay(args)
    if args.all:
        scenarios = [s for s in SCENARIOS.values() if not s.finding]
    elif args.scenario:
        scenarios = [_scenario(args.scenario)]
    else:
        raise ConfigError("give --scenario NAME, --all, --list or --replay")
    failed = 0
    results = []
    for scenario in scenarios:
        run = driver.explore(
            scenario,
            args.inject,
            args.strategy,
            args.iterations,
            args.seed,
            args.depth,
            args.preemption_bound,
        )
        results.append(_as_json(scenario.name, run.failure, run))
        rate = f"{run.iterations} schedules, {run.schedules_per_s:,.0f}/s"
        if run.exhausted:
            rate += ", search complete"
        if run.failure is None:
            if args.json != "-":
                print(f"ok   {scenario.name:<24} {rate}")
        else:
            failed += 1
            if args.json != "-":
                print(f"FAIL {scenario.name:<24} {rate}")
                _print_failure(run.failure)
        sys.stdout.flush()
    if args.json:
        write_json(args.json, results)
    return 1 if failed else 0
