"""Run scenarios under a strategy, classify what goes wrong, replay it.

One *execution* runs a scenario once: a fresh checked runtime and harness,
the set-up, the CPUs under the strategy, then the end-of-run checks. Its
result carries the schedule (program seed + decisions) that reproduces it.
"""

from __future__ import annotations

import random
import time
import traceback
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ghostswap.check.dfs import DfsStrategy
from ghostswap.check.harness import Harness
from ghostswap.check.pct import PctStrategy
from ghostswap.check.random import RandomStrategy
from ghostswap.check.replay import ReplayStrategy
from ghostswap.check.scenarios import Scenario
from ghostswap.check.schedule import ReplayDivergence, Schedule
from ghostswap.check.strategy import Strategy
from ghostswap.errors import ConfigError
from ghostswap.kernel import gfp, runtime, slab, workqueue
from ghostswap.kernel.bug import KernelBug
from ghostswap.kernel.runtime import CheckedRuntime, TraceStep
from ghostswap.mm.seed_reverts import SeedReverts

__all__ = [
    "STRATEGIES",
    "Execution",
    "Exploration",
    "Failure",
    "explore",
    "make_strategy",
    "replay",
    "replay_command",
    "run_execution",
]

STRATEGIES = ("random", "pct", "dfs")
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Failure:
    """A detection: its kind, message, the model function it happened in and
    the CPU that was running."""

    kind: str
    message: str
    where: str
    cpu: int | None

    phase: str = "run"

    def __str__(self) -> str:
        if self.phase != "run":
            on = f" during {self.phase}"
        else:
            on = f" on cpu{self.cpu}" if self.cpu is not None else ""
        return f"{self.kind}{on} in {self.where}: {self.message}"


@dataclass
class Execution:
    scenario: str
    inject: tuple[str, ...]
    schedule: Schedule
    failure: Failure | None
    decisions: int
    trace: list[TraceStep] = field(default_factory=list)
    points: int = 0  # scheduling points the CPUs passed

    @property
    def command(self) -> str:
        return replay_command(self.scenario, self.inject, self.schedule)


class _Recorder:
    """Asks the strategy only when there is a choice, and records the answer."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.decisions: list[int] = []
        self.running: int | None = None

    def start(self, nr_cpus: int) -> None:
        self.decisions = []
        self.strategy.start(nr_cpus)

    def pick(self, runnable: Sequence[int], current: int | None, point: TraceStep | None) -> int:
        if len(runnable) == 1:
            cpu = runnable[0]
        else:
            cpu = self.strategy.pick(runnable, current, point)
            self.decisions.append(cpu)
        self.running = cpu
        return cpu


def _where(exc: BaseException) -> str:
    """The innermost frame in the swap model (or the harness) that raised."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename.startswith(_PACKAGE_DIR) and not f.filename.endswith("/check/driver.py")
    ]
    # The model function, else the primitive (an RCU callback freeing twice).
    chosen = next((f for f in reversed(frames) if "/kernel/" not in f.filename), None)
    if chosen is None:
        chosen = next((f for f in frames if not f.filename.endswith("/runtime.py")), None)
    if chosen is None:
        return "?"
    path = Path(chosen.filename)
    return f"{chosen.name}() {path.parent.name}/{path.name}:{chosen.lineno}"


def classify(exc: BaseException, cpu: int | None, phase: str = "run") -> Failure:
    """Turn what a CPU raised into a detection kind.

    Python errors stand for the kernel crashes they model: an attribute or
    subscript of None is a NULL pointer dereference, a failed ``assert`` a
    BUG_ON.
    """
    message = str(exc) or type(exc).__name__
    if isinstance(exc, KernelBug):
        kind = exc.kind
    elif isinstance(exc, AttributeError | TypeError) and "NoneType" in message:
        kind = "null-deref"
    elif isinstance(exc, AssertionError):
        kind = "bug-on"
    else:
        kind = "crash"
        message = f"{type(exc).__name__}: {message}"
    return Failure(kind, message, _where(exc), cpu, phase)


def _reset_globals() -> None:
    workqueue.cancel_all()
    slab._free_sites.clear()
    gfp.set_injection(None)


def run_execution(
    scenario: Scenario,
    reverts: SeedReverts,
    strategy: Strategy,
    program_seed: int,
    trace_limit: int = 0,
) -> Execution:
    """Run `scenario` once under `strategy`."""
    recorder = _Recorder(strategy)
    rt = CheckedRuntime(recorder, trace_limit=trace_limit)
    harness = Harness(rt, reverts, random.Random(program_seed))
    failure: Failure | None = None
    phase = "set-up"
    _reset_globals()
    runtime.install(rt)
    try:
        bodies = scenario.build(harness)
        phase = "run"
        rt.run(bodies)
        phase = "the end-of-run checks"
        harness.finish()
    except ReplayDivergence:
        raise
    except Exception as exc:  # every detection and every crash of the model
        failure = classify(exc, recorder.running, phase)
    finally:
        runtime.install(None)
        gfp.set_injection(None)
        workqueue.cancel_all()
        harness.cleanup()
    return Execution(
        scenario.name,
        tuple(reverts.names()),
        Schedule(program_seed, tuple(recorder.decisions)),
        failure,
        len(recorder.decisions),
        rt.trace,
        rt.steps,
    )


def make_strategy(name: str, seed: int, depth: int = 3, preemption_bound: int = 2) -> Strategy:
    if name == "random":
        return RandomStrategy(seed)
    if name == "pct":
        if depth < 1:
            raise ConfigError("--depth must be at least 1")
        return PctStrategy(seed, depth)
    if name == "dfs":
        if preemption_bound < 0:
            raise ConfigError("--preemption-bound must be at least 0")
        return DfsStrategy(preemption_bound)
    raise ConfigError(f"unknown strategy {name!r} (one of {', '.join(STRATEGIES)})")


def program_seed_for(seed: int, iteration: int, strategy: str) -> int:
    """The scenario's own seed for one iteration (fixed for DFS, which needs
    the same program every time)."""
    if strategy == "dfs":
        return seed
    return zlib.crc32(f"{seed}:{iteration}".encode())


@dataclass
class Exploration:
    scenario: str
    inject: tuple[str, ...]
    strategy: str
    iterations: int
    failure: Execution | None
    elapsed_s: float
    exhausted: bool = False

    @property
    def schedules_per_s(self) -> float:
        return self.iterations / self.elapsed_s if self.elapsed_s > 0 else 0.0


def explore(
    scenario: Scenario,
    inject: Sequence[str] = (),
    strategy: str = "pct",
    iterations: int = 1000,
    seed: int = 0,
    depth: int = 3,
    preemption_bound: int = 2,
) -> Exploration:
    """Run up to `iterations` executions; stop at the first failure."""
    reverts = SeedReverts.from_names(inject)
    chosen = make_strategy(strategy, seed, depth, preemption_bound)
    start = time.perf_counter()
    done = 0
    found: Execution | None = None
    exhausted = False
    for iteration in range(iterations):
        if iteration and not chosen.next_execution():
            exhausted = True
            break
        execution = run_execution(
            scenario, reverts, chosen, program_seed_for(seed, iteration, strategy)
        )
        done += 1
        if execution.failure is not None:
            found = execution
            break
    else:
        exhausted = isinstance(chosen, DfsStrategy) and not chosen.next_execution()
    elapsed = time.perf_counter() - start
    return Exploration(
        scenario.name, tuple(reverts.names()), strategy, done, found, elapsed, exhausted
    )


def replay(
    scenario: Scenario, inject: Sequence[str], text: str, trace_limit: int = 100_000
) -> Execution:
    """Re-run one recorded schedule exactly, with its trace."""
    schedule = Schedule.decode(text)
    reverts = SeedReverts.from_names(inject)
    strategy = ReplayStrategy(schedule.decisions)
    execution = run_execution(scenario, reverts, strategy, schedule.seed, trace_limit)
    if not strategy.exhausted():
        raise ReplayDivergence(
            f"the program finished after {strategy.pos} of {len(schedule.decisions)} decisions"
        )
    return execution


def replay_command(scenario: str, inject: Sequence[str], schedule: Schedule) -> str:
    parts = ["ghostswap", "check", "--scenario", scenario]
    for name in inject:
        parts += ["--inject", name]
    parts += ["--replay", schedule.encode()]
    return " ".join(parts)
