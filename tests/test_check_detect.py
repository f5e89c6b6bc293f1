"""Each kind of detection on a tiny synthetic program, through the driver's
classification, plus the runtime changes the checker relies on."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ghostswap.check import driver
from ghostswap.check.harness import DoubleAlloc, Harness
from ghostswap.check.random import RandomStrategy
from ghostswap.check.scenarios import Scenario
from ghostswap.kernel import runtime
from ghostswap.kernel.bug import KernelBug
from ghostswap.kernel.gfp import GFP_KERNEL
from ghostswap.kernel.rcu import kfree_rcu, rcu_dereference, rcu_read_lock, rcu_read_unlock
from ghostswap.kernel.runtime import CheckedRuntime
from ghostswap.kernel.sched import cond_resched, sched_point
from ghostswap.kernel.slab import kfree, kzalloc
from ghostswap.kernel.spinlock import spin_lock, spin_unlock, spinlock_t
from ghostswap.mm.seed_reverts import SeedReverts


class _Obj:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 1


def _scenario(build: Callable[[Harness], list[Callable[[], object]]]) -> Scenario:
    return Scenario("synthetic", build, "a test program")  # type: ignore[arg-type]


def _first_failure(build: Callable[[Harness], list[Callable[[], object]]], tries: int = 200):  # type: ignore[no-untyped-def]
    strategy = RandomStrategy(1)
    for i in range(tries):
        ex = driver.run_execution(_scenario(build), SeedReverts(), strategy, i)
        if ex.failure is not None:
            return ex.failure
    return None


def test_use_after_free_names_the_freeing_function() -> None:
    def build(h: Harness) -> list[Callable[[], object]]:
        box = {"p": _Obj()}

        def reader() -> None:
            p = box["p"]
            sched_point("window")
            assert p.value == 1

        def freeing_function() -> None:
            kfree(box["p"])

        return [reader, freeing_function]

    failure = _first_failure(build)
    assert failure is not None and failure.kind == "use-after-free"
    assert "freed in freeing_function()" in failure.message


def test_rcu_protects_only_what_was_loaded_inside_the_section() -> None:
    """A pointer loaded before rcu_read_lock() can be freed (grace period and
    all) at the rcu_read_lock() point; one loaded inside cannot."""

    def build(load_inside: bool) -> Callable[[Harness], list[Callable[[], object]]]:
        def b(h: Harness) -> list[Callable[[], object]]:
            box: dict[str, _Obj | None] = {"p": _Obj()}

            def reader() -> None:
                if load_inside:
                    rcu_read_lock()
                    p = rcu_dereference(box["p"])
                else:
                    p = box["p"]
                    rcu_read_lock()
                if p is not None:
                    sched_point("use")
                    assert p.value == 1
                rcu_read_unlock()

            def updater() -> None:
                old, box["p"] = box["p"], None
                kfree_rcu(old)

            return [reader, updater]

        return b

    assert _first_failure(build(True)) is None
    failure = _first_failure(build(False))
    assert failure is not None and failure.kind == "use-after-free"


def test_rcu_dereference_outside_a_section() -> None:
    failure = _first_failure(lambda h: [lambda: rcu_dereference(_Obj())])
    assert failure is not None and failure.kind == "rcu-misuse"


def test_sleeping_allocation_under_a_spinlock() -> None:
    lock = spinlock_t("L")

    def body() -> None:
        spin_lock(lock)
        kzalloc(_Obj, GFP_KERNEL, "test")
        spin_unlock(lock)

    failure = _first_failure(lambda h: [body])
    assert failure is not None and failure.kind == "sleep-in-atomic"
    failure = _first_failure(lambda h: [lambda: (rcu_read_lock(), cond_resched("loop"))])
    assert failure is not None and failure.kind == "sleep-in-atomic"


def test_lock_misuse_and_deadlock() -> None:
    a, b = spinlock_t("A"), spinlock_t("B")
    failure = _first_failure(lambda h: [lambda: spin_unlock(a)])
    assert failure is not None and failure.kind == "lock-misuse"

    def ab() -> None:
        spin_lock(a)
        spin_lock(b)
        spin_unlock(b)
        spin_unlock(a)

    def ba() -> None:
        spin_lock(b)
        spin_lock(a)
        spin_unlock(a)
        spin_unlock(b)

    failure = _first_failure(lambda h: [ab, ba])
    assert failure is not None and failure.kind == "deadlock"
    assert "every CPU is blocked" in failure.message


def test_null_dereference_and_bug_on_are_classified() -> None:
    def null() -> None:
        p = None
        p.value  # type: ignore[attr-defined]  # noqa: B018

    failure = _first_failure(lambda h: [null])
    assert failure is not None and failure.kind == "null-deref"

    def bug() -> None:
        raise AssertionError("BUG_ON")

    failure = _first_failure(lambda h: [bug])
    assert failure is not None and failure.kind == "bug-on"


def test_slot_handed_out_twice() -> None:
    def build(h: Harness) -> list[Callable[[], object]]:
        h.subsystem()
        h.ghost(2)
        entry = h.swap_out("A")

        def thief() -> None:
            h._claim(entry, 1, "B@cpu1")

        return [thief]

    failure = _first_failure(build)
    assert failure is not None and failure.kind == DoubleAlloc.kind
    assert "while A@setup still holds it" in failure.message


def test_lost_page_data_and_leaks_at_the_end() -> None:
    def overwrite(h: Harness) -> list[Callable[[], object]]:
        h.subsystem()
        h.ghost(2)
        entry = h.swap_out("A")
        return [lambda: h.store.__setitem__(entry, -1)]

    failure = _first_failure(overwrite)
    assert failure is not None and failure.kind == "data-loss"
    assert failure.phase != "run"

    def pending(h: Harness) -> list[Callable[[], object]]:
        h.subsystem()
        si = h.ghost(2)
        h.swap_out("A")
        h.strict_swapoff_leak = True
        return [lambda: h.put("A"), lambda: h.swapoff(si)]

    failure = _first_failure(pending)
    assert failure is not None and failure.kind == "leak"


def test_invariant_violation_at_the_end() -> None:
    def build(h: Harness) -> list[Callable[[], object]]:
        subsys = h.subsystem()
        h.ghost(2)

        def corrupt() -> None:
            subsys.nr_swap_pages += 1

        return [corrupt]

    failure = _first_failure(build)
    assert failure is not None and failure.kind == "invariant"


def test_an_aborted_run_leaves_no_cpu_suspended() -> None:
    """After a detection the other CPUs are unwound (their finally blocks
    run without scheduling) and the next run starts clean."""
    lock = spinlock_t("L")
    released: list[bool] = []

    def holder() -> None:
        spin_lock(lock)
        try:
            sched_point("hold")
            sched_point("hold")
        finally:
            spin_unlock(lock)
            released.append(True)

    def crasher() -> None:
        sched_point("before")
        raise KernelBug("boom")

    class Alternate:
        def start(self, nr_cpus: int) -> None:
            pass

        def pick(self, runnable, current, point):  # type: ignore[no-untyped-def]
            others = [c for c in runnable if c != current]
            return others[0] if others else runnable[0]

    rt = CheckedRuntime(Alternate())
    runtime.install(rt)
    try:
        with pytest.raises(KernelBug, match="boom"):
            rt.run([holder, crasher])
    finally:
        runtime.install(None)
    assert released == [True]
    assert lock.owner is None
    rt2 = CheckedRuntime()
    runtime.install(rt2)
    try:
        rt2.run([lambda: (spin_lock(lock), spin_unlock(lock))])
    finally:
        runtime.install(None)
