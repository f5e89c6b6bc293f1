"""How fast ``ghostswap check`` explores schedules.

Runs a 3-CPU scenario of the library (default ``swapin-vs-free``: a fault,
a zap of two pages and an allocation on a ghost device) under PCT for a
fixed number of schedules and prints::

    scenario: NAME (3 CPUs, N scheduling points per schedule on average)
    schedules/s: N
    scheduling points/s: N
    target ratio: X.XX (schedules/s / 200)

Target: at least 200 schedules/s for a 3-CPU scenario of a few hundred
scheduling points. Run: ``python bench/check.py [--scenario NAME] [--schedules N]``.
"""

from __future__ import annotations

import argparse
import time

from ghostswap.check import driver
from ghostswap.check.pct import PctStrategy
from ghostswap.check.scenarios import SCENARIOS
from ghostswap.mm.seed_reverts import SeedReverts

TARGET = 200.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="swapin-vs-free")
    parser.add_argument("--schedules", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    scenario = SCENARIOS[args.scenario]
    strategy = PctStrategy(args.seed, depth=3)
    reverts = SeedReverts()
    points = 0
    cpus = 0
    start = time.perf_counter()
    for i in range(args.schedules):
        if i:
            strategy.next_execution()
        ex = driver.run_execution(scenario, reverts, strategy, i)
        if ex.failure is not None:
            raise SystemExit(f"unexpected failure: {ex.failure}")
        points += ex.points
        cpus = max(cpus, len(strategy.priority))
    elapsed = time.perf_counter() - start
    rate = args.schedules / elapsed
    print(
        f"scenario: {scenario.name} ({cpus} CPUs, {points / args.schedules:.0f} scheduling "
        "points per schedule on average)"
    )
    print(f"schedules/s: {rate:.0f}")
    print(f"scheduling points/s: {points / elapsed:,.0f}")
    print(f"target ratio: {rate / TARGET:.2f} (schedules/s / {TARGET:.0f})")


if __name__ == "__main__":
    main()
