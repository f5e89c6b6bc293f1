"""Who is running: the fast single-threaded mode and the checked mode.

Fast mode (the default) has one thread of control. Locks and RCU read
sections cost a function call and nothing else; objects handed to
``call_rcu``/``kfree_rcu`` wait in a list until the driver declares a
quiescent state (``rcu_quiescent_state``), which is the only safe moment
when no kernel function is on the stack.

Checked mode installs a :class:`CheckedRuntime`. Each modelled CPU is a
greenlet and only one runs at a time; every lock, RCU and xarray operation
is a scheduling point at which a :class:`Scheduler` picks the CPU that runs
next. The runtime keeps lockdep-style bookkeeping (held locks, RCU nesting,
atomic context), ends grace periods only after every CPU that was inside a
read-side critical section has left it, and raises a :class:`KernelBug`
subclass on misuse.

A spinlock or local lock held counts as a read-side critical section, as it
does on a non-RT kernel where holding one disables preemption.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import CodeType, FunctionType
from typing import Any, Protocol

from greenlet import getcurrent, greenlet

from ghostswap._build import NATIVE
from ghostswap.errors import GhostswapError
from ghostswap.kernel.bug import Deadlock, KernelBug, LockMisuse, RcuMisuse, SleepInAtomic

__all__ = [
    "CheckedRuntime",
    "CpuState",
    "RunToCompletion",
    "Scheduler",
    "TraceStep",
    "checked",
    "checked_twin",
    "install",
    "rcu_barrier_fast",
    "rcu_quiescent_state",
    "set_fast_cpu",
    "smp_processor_id",
]

# The installed checked runtime, or None in fast mode. Primitives read this
# module attribute on every call, so switching modes needs no re-import.
checked: CheckedRuntime | None = None

# Fast mode: the CPU the single thread of control pretends to run on, and
# the callbacks waiting for the next quiescent state.
_fast_cpu = 0
_fast_rcu_pending: list[Callable[[], None]] = []


def smp_processor_id() -> int:
    """The current CPU number (``smp_processor_id()``)."""
    c = checked
    if c is None:
        return _fast_cpu
    return c.current().cpu


def set_fast_cpu(cpu: int) -> None:
    """Fast mode: make the single thread of control run as CPU `cpu`."""
    global _fast_cpu
    _fast_cpu = cpu


def fast_call_rcu(callback: Callable[[], None]) -> None:
    _fast_rcu_pending.append(callback)


def rcu_quiescent_state() -> int:
    """Fast mode: no kernel code is on the stack; run deferred RCU callbacks.

    Returns how many callbacks ran. Drivers (the VM event loop, tests, the
    CLI) call this between operations.
    """
    global _fast_rcu_pending
    if not _fast_rcu_pending:
        return 0
    pending, _fast_rcu_pending = _fast_rcu_pending, []
    for callback in pending:
        callback()
    return len(pending)


def rcu_barrier_fast() -> None:
    """Fast mode: run callbacks until none are left (they may queue more)."""
    while rcu_quiescent_state():
        pass


def fast_rcu_pending() -> int:
    return len(_fast_rcu_pending)


# Primitives that cost nothing in fast mode. Each is defined as a no-op (or
# trivial) function; its checked twin is registered here, and switching modes
# swaps the function's code object, so every module that imported the
# function sees the change without a per-call mode test.
_dual: list[tuple[FunctionType, CodeType, CodeType]] = []


def checked_twin(fast: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the checked-mode body of `fast`.

    Both must live in the same module and take the same parameters.
    """

    def register(twin: Callable[..., Any]) -> Callable[..., Any]:
        assert isinstance(fast, FunctionType) and isinstance(twin, FunctionType)
        assert fast.__globals__ is twin.__globals__, "twins must share a module"
        _dual.append((fast, fast.__code__, twin.__code__))
        if checked is not None:
            fast.__code__ = twin.__code__
        return twin

    return register


def fast_code_of(fn: Callable[..., Any]) -> CodeType | None:
    """The fast-mode code of a primitive registered with `checked_twin`."""
    for dual_fn, fast_code, _ in _dual:
        if dual_fn is fn:
            return fast_code
    return None


# Functions with a lean twin (kernel/lean.py): (function, full code, lean
# code). Fast mode runs the lean code unless the debug build is selected;
# checked mode always runs the full code.
_lean: list[tuple[FunctionType, CodeType, CodeType]] = []
_debug_build = False


def _select_builds() -> None:
    lean = checked is None and not _debug_build
    for fn, full_code, lean_code in _lean:
        fn.__code__ = lean_code if lean else full_code


def lean_code_of(fn: Callable[..., Any]) -> CodeType | None:
    for lean_fn, _, lean_code in _lean:
        if lean_fn is fn:
            return lean_code
    return None


def register_lean(fn: FunctionType, lean_code: CodeType) -> None:
    _lean.append((fn, fn.__code__, lean_code))
    if checked is None and not _debug_build:
        fn.__code__ = lean_code


def _refuse_in_native_build(what: str) -> None:
    if NATIVE:
        raise GhostswapError(f"{what} runs the pure source: unset GHOSTSWAP_NATIVE")


def set_debug_build(on: bool) -> None:
    """Run the full functions (asserts, VM_WARN checks) in fast mode too."""
    global _debug_build
    if on:
        _refuse_in_native_build("the debug build")
    _debug_build = on
    _select_builds()


def install(runtime: CheckedRuntime | None) -> None:
    """Switch to checked mode with `runtime`, or back to fast mode with None."""
    global checked
    if runtime is not None:
        _refuse_in_native_build("checked mode")
    checked = runtime
    for fn, fast_code, checked_code in _dual:
        fn.__code__ = checked_code if runtime is not None else fast_code
    _select_builds()


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One scheduling point as a replay trace prints it."""

    cpu: int
    kind: str
    label: str
    func: str

    def __str__(self) -> str:
        return f"cpu{self.cpu} {self.func:<28} {self.kind:<14} {self.label}"


class Scheduler(Protocol):
    """Chooses which CPU runs at each scheduling point (checked mode)."""

    def start(self, nr_cpus: int) -> None:
        """A new execution of `nr_cpus` CPUs begins."""

    def pick(self, runnable: Sequence[int], current: int | None, point: TraceStep | None) -> int:
        """Return one of `runnable`; `current` is the CPU that just yielded."""


class RunToCompletion:
    """The trivial scheduler: keep the current CPU until it blocks or ends."""

    def start(self, nr_cpus: int) -> None:
        pass

    def pick(self, runnable: Sequence[int], current: int | None, point: TraceStep | None) -> int:
        return current if current is not None and current in runnable else runnable[0]


class CpuState:
    """Bookkeeping for one modelled CPU in checked mode."""

    __slots__ = ("blocked", "cpu", "done", "glet", "held", "qs_seq", "rcu_nesting", "waiting_for")

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.glet: greenlet | None = None
        self.held: list[object] = []  # spinlocks and local locks, in acquisition order
        self.rcu_nesting = 0
        self.qs_seq = 0  # quiescent states passed (left every critical section)
        self.done = False
        self.blocked: Callable[[], bool] | None = None
        self.waiting_for = ""

    def in_critical_section(self) -> bool:
        return self.rcu_nesting > 0 or bool(self.held)

    def runnable(self) -> bool:
        return not self.done and (self.blocked is None or self.blocked())


class _PendingCallback:
    __slots__ = ("callback", "label", "snapshot")

    def __init__(self, snapshot: dict[int, int], callback: Callable[[], None], label: str) -> None:
        self.snapshot = snapshot
        self.callback = callback
        self.label = label


class CheckedRuntime:
    """Checked mode: CPUs as greenlets, a scheduler, lockdep and RCU checks.

    ``run(bodies)`` executes each body on its own CPU and returns when all
    have finished; a detection propagates out of ``run`` as the
    :class:`KernelBug` raised on the CPU that hit it. Code called outside
    ``run`` (set-up and tear-down) executes on a set-up CPU without
    scheduling.
    """

    def __init__(self, scheduler: Scheduler | None = None, *, trace_limit: int = 100_000) -> None:
        self.scheduler: Scheduler = scheduler or RunToCompletion()
        self.trace: list[TraceStep] = []
        self.trace_limit = trace_limit
        self.setup_cpu = CpuState(0)
        self.cpus: list[CpuState] = []
        self._by_glet: dict[greenlet, CpuState] = {}
        self._main: greenlet | None = None
        self._pending: list[_PendingCallback] = []
        self.steps = 0
        # Set while run() unwinds the CPUs after a detection: their clean-up
        # code (finally blocks releasing locks) runs to the end without
        # switching, so nothing is left suspended for the garbage collector.
        self._aborting = False

    # -- who is running -------------------------------------------------
    def current(self) -> CpuState:
        return self._by_glet.get(getcurrent(), self.setup_cpu)

    def _all_cpus(self) -> list[CpuState]:
        return [*self.cpus, self.setup_cpu] if self.cpus else [self.setup_cpu]

    # -- scheduling --------------------------------------------------------
    def point(self, kind: str, label: str, depth: int = 2) -> None:
        """A scheduling point on the current CPU: record it and maybe switch."""
        cpu = self.current()
        if cpu is self.setup_cpu:
            self._run_ready_callbacks()
            return
        if self._aborting:
            return
        self.steps += 1
        if len(self.trace) >= self.trace_limit:
            # Not tracing: the scheduler gets no description of the point.
            self._main.switch(None)  # type: ignore[union-attr]
            return
        func = sys._getframe(depth).f_code.co_name
        step = TraceStep(cpu.cpu, kind, label, func)
        self.trace.append(step)
        assert self._main is not None
        self._main.switch(step)

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        """Block the current CPU until `ready()` holds (spinning, sleeping)."""
        cpu = self.current()
        if ready():
            return
        if cpu is self.setup_cpu:
            raise Deadlock(f"set-up code would block: {what}")
        if self._aborting:
            raise greenlet.GreenletExit
        cpu.blocked = ready
        cpu.waiting_for = what
        while not ready():
            assert self._main is not None
            self._main.switch(TraceStep(cpu.cpu, "block", what, "wait_until"))
        cpu.blocked = None
        cpu.waiting_for = ""

    def run(self, bodies: Sequence[Callable[[], object]]) -> None:
        """Run each body as a CPU under the scheduler until all are done."""
        self.cpus = [CpuState(i) for i in range(len(bodies))]
        self._main = getcurrent()
        self._by_glet = {}
        for cpu, body in zip(self.cpus, bodies, strict=True):
            cpu.glet = greenlet(self._cpu_entry(cpu, body), parent=self._main)
            self._by_glet[cpu.glet] = cpu
        self.scheduler.start(len(bodies))
        current: int | None = None
        step: TraceStep | None = None
        try:
            while True:
                self._run_ready_callbacks()
                runnable = [c.cpu for c in self.cpus if c.runnable()]
                if not runnable:
                    if all(c.done for c in self.cpus):
                        break
                    waits = "; ".join(
                        f"cpu{c.cpu} waits for {c.waiting_for}" for c in self.cpus if not c.done
                    )
                    raise Deadlock(f"every CPU is blocked: {waits}")
                current = self.scheduler.pick(runnable, current, step)
                glet = self.cpus[current].glet
                assert glet is not None
                step = glet.switch()
        finally:
            self._aborting = True
            for cpu in self.cpus:
                if cpu.glet is not None and not cpu.glet.dead:
                    # A second splat while unwinding is not the one to report.
                    with contextlib.suppress(BaseException):
                        cpu.glet.throw(greenlet.GreenletExit)
            self._aborting = False
            self._by_glet = {}
            self.cpus = []
            self._main = None
        self._run_ready_callbacks()

    def _cpu_entry(self, cpu: CpuState, body: Callable[[], object]) -> Callable[[], None]:
        def entry() -> None:
            body()
            if cpu.held:
                names = ", ".join(getattr(lock, "name", "?") for lock in cpu.held)
                raise LockMisuse(f"cpu{cpu.cpu} finished holding {names}")
            if cpu.rcu_nesting:
                raise RcuMisuse(f"cpu{cpu.cpu} finished inside an RCU read section")
            cpu.done = True
            cpu.qs_seq += 1

        return entry

    # -- locks (called by ghostswap.kernel.spinlock) -------------------------
    def spin_lock(self, lock: object, name: str) -> None:
        self.point("lock", name, depth=3)
        cpu = self.current()
        owner = lock.owner  # type: ignore[attr-defined]
        if owner is cpu:
            raise Deadlock(f"cpu{cpu.cpu} takes {name} twice (AA deadlock)")
        if owner is not None:
            self.wait_until(lambda: lock.owner is None, f"spin on {name}")  # type: ignore[attr-defined]
        lock.owner = cpu  # type: ignore[attr-defined]
        cpu.held.append(lock)

    def spin_trylock(self, lock: object, name: str) -> bool:
        self.point("trylock", name, depth=3)
        if lock.owner is not None:  # type: ignore[attr-defined]
            return False
        cpu = self.current()
        lock.owner = cpu  # type: ignore[attr-defined]
        cpu.held.append(lock)
        return True

    def spin_unlock(self, lock: object, name: str) -> None:
        cpu = self.current()
        if lock.owner is not cpu:  # type: ignore[attr-defined]
            raise LockMisuse(f"cpu{cpu.cpu} unlocks {name}, which it does not hold")
        lock.owner = None  # type: ignore[attr-defined]
        for i in range(len(cpu.held) - 1, -1, -1):
            if cpu.held[i] is lock:
                del cpu.held[i]
                break
        self._left_section(cpu)
        self.point("unlock", name, depth=3)

    def assert_held(self, lock: object, name: str) -> None:
        cpu = self.current()
        if lock.owner is not cpu:  # type: ignore[attr-defined]
            raise LockMisuse(f"lockdep: {name} must be held by cpu{cpu.cpu}")

    def holds(self, lock: object) -> bool:
        return lock.owner is self.current()  # type: ignore[attr-defined]

    # -- RCU (called by ghostswap.kernel.rcu) --------------------------------
    def rcu_read_lock(self) -> None:
        # The point comes before the section starts: a pointer loaded before
        # rcu_read_lock() may be freed, grace period and all, right here.
        self.point("rcu_read_lock", "", depth=3)
        self.current().rcu_nesting += 1

    def rcu_read_unlock(self) -> None:
        cpu = self.current()
        if cpu.rcu_nesting <= 0:
            raise RcuMisuse(f"cpu{cpu.cpu}: rcu_read_unlock() without rcu_read_lock()")
        cpu.rcu_nesting -= 1
        self._left_section(cpu)
        self.point("rcu_read_unlock", "", depth=3)

    def rcu_read_lock_held(self) -> bool:
        return self.current().rcu_nesting > 0

    def rcu_dereference(self, label: str, lock_held: bool) -> None:
        cpu = self.current()
        if cpu.rcu_nesting <= 0 and not lock_held:
            raise RcuMisuse(f"cpu{cpu.cpu}: rcu_dereference({label}) outside an RCU read section")
        self.point("rcu_dereference", label, depth=3)

    def call_rcu(self, callback: Callable[[], None], label: str) -> None:
        snapshot = {c.cpu: c.qs_seq for c in self._all_cpus() if c.in_critical_section()}
        self._pending.append(_PendingCallback(snapshot, callback, label))
        self.point("call_rcu", label, depth=3)

    def synchronize_rcu(self) -> None:
        self.might_sleep("synchronize_rcu")
        me = self.current()
        snapshot = {c.cpu: c.qs_seq for c in self.cpus if c is not me and c.in_critical_section()}
        self.point("synchronize_rcu", "", depth=3)
        self.wait_until(lambda: self._grace_period_over(snapshot), "a grace period")
        self._run_ready_callbacks()

    def _grace_period_over(self, snapshot: dict[int, int]) -> bool:
        cpus = self._all_cpus()
        by_id = {c.cpu: c for c in cpus if c is not self.setup_cpu}
        for cpu_id, seq in snapshot.items():
            cpu = by_id.get(cpu_id, self.setup_cpu)
            if cpu.qs_seq <= seq and not cpu.done:
                return False
        return True

    def _run_ready_callbacks(self) -> None:
        if not self._pending:
            return
        ready = [p for p in self._pending if self._grace_period_over(p.snapshot)]
        if not ready:
            return
        self._pending = [p for p in self._pending if p not in ready]
        for pending in ready:
            pending.callback()

    def rcu_pending(self) -> int:
        return len(self._pending)

    def rcu_barrier(self) -> None:
        """Run every queued callback (only valid when no CPU is running)."""
        while self._pending:
            pending, self._pending = self._pending, []
            for p in pending:
                p.callback()

    def _left_section(self, cpu: CpuState) -> None:
        if not cpu.in_critical_section():
            cpu.qs_seq += 1

    # -- context checks ------------------------------------------------------
    def might_sleep(self, what: str) -> None:
        cpu = self.current()
        if cpu.held:
            names = ", ".join(getattr(lock, "name", "?") for lock in cpu.held)
            raise SleepInAtomic(f"cpu{cpu.cpu}: {what} may sleep while holding {names}")
        if cpu.rcu_nesting:
            raise SleepInAtomic(f"cpu{cpu.cpu}: {what} may sleep inside an RCU read section")

    def cond_resched(self, label: str) -> None:
        self.might_sleep("cond_resched")
        self.point("cond_resched", label, depth=3)


def describe(bug: KernelBug) -> str:
    """One line naming the kind of detection and its message."""
    return f"{bug.kind}: {bug}"
