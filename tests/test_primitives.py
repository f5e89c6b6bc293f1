"""Slab poisoning, RCU grace periods, lock bookkeeping and misuse detection."""

from __future__ import annotations

import pytest

from ghostswap.kernel import gfp, runtime
from ghostswap.kernel.bug import (
    Deadlock,
    LockMisuse,
    RcuMisuse,
    SleepInAtomic,
    UseAfterFree,
)
from ghostswap.kernel.gfp import GFP_ATOMIC, GFP_KERNEL, FailureInjection
from ghostswap.kernel.list import (
    ListHead,
    list_add_tail,
    list_del,
    list_first_entry,
    list_move_tail,
)
from ghostswap.kernel.percpu import PerCpu
from ghostswap.kernel.plist import PlistHead, PlistNode, plist_add, plist_requeue
from ghostswap.kernel.rcu import (
    kfree_rcu,
    rcu_dereference,
    rcu_read_lock,
    rcu_read_unlock,
    synchronize_rcu,
)
from ghostswap.kernel.runtime import CheckedRuntime, RunToCompletion
from ghostswap.kernel.slab import is_poisoned, kfree, kzalloc
from ghostswap.kernel.spinlock import lockdep_assert_held, spin_lock, spin_unlock, spinlock_t
from ghostswap.mm.swap_table import swap_table_new


class Obj:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 1


def test_kfree_poisons_every_access() -> None:
    obj = Obj()
    kfree(obj)
    assert is_poisoned(obj)
    with pytest.raises(UseAfterFree, match=r"read of \.value"):
        _ = obj.value
    with pytest.raises(UseAfterFree, match=r"write of \.value"):
        obj.value = 2
    with pytest.raises(UseAfterFree, match="double free"):
        kfree(obj)


def test_freed_table_traps_item_access() -> None:
    table = swap_table_new()
    kfree(table)
    with pytest.raises(UseAfterFree):
        _ = table[3]


def test_kzalloc_fails_only_where_injected() -> None:
    gfp.set_injection(FailureInjection(seed=1, sites={"thing": 1.0}))
    assert kzalloc(Obj, GFP_ATOMIC, "thing") is None
    assert kzalloc(Obj, GFP_ATOMIC, "other") is not None
    # A blocking allocation does not fail by default.
    assert kzalloc(Obj, GFP_KERNEL, "thing") is not None


def test_failure_injection_is_deterministic_per_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        inj = FailureInjection(seed=seed, probability=0.5)
        return [inj.should_fail("x", GFP_ATOMIC) for _ in range(64)]

    assert pattern(7) == pattern(7)
    assert pattern(7) != pattern(8)


def test_fast_mode_defers_kfree_rcu_to_the_quiescent_state() -> None:
    obj = Obj()
    kfree_rcu(obj)
    assert obj.value == 1  # still valid inside the "read section"
    assert runtime.rcu_quiescent_state() == 1
    assert is_poisoned(obj)


class PreferOther:
    """Switch to another runnable CPU at every scheduling point."""

    def start(self, nr_cpus: int) -> None:
        pass

    def pick(self, runnable: list[int], current: int | None, point: object) -> int:
        if current is None:
            return 0
        others = [c for c in runnable if c != current]
        return others[0] if others else runnable[0]


def checked(scheduler: object | None = None) -> CheckedRuntime:
    rt = CheckedRuntime(scheduler or RunToCompletion())  # type: ignore[arg-type]
    runtime.install(rt)
    return rt


class AfterLabel:
    """Run cpu0 until it passes the point labelled `label`, then prefer cpu1."""

    def __init__(self, label: str) -> None:
        self.label = label

    def start(self, nr_cpus: int) -> None:
        self.seen = False

    def pick(self, runnable: list[int], current: int | None, point: object) -> int:
        self.seen = self.seen or getattr(point, "label", None) == self.label
        if self.seen and 1 in runnable:
            return 1
        return 0 if 0 in runnable else runnable[0]


def test_grace_period_waits_for_a_preexisting_reader() -> None:
    rt = checked(AfterLabel("reader inside"))
    published: list[Obj | None] = [Obj()]
    seen: list[int] = []

    def reader() -> None:
        rcu_read_lock()
        ptr = rcu_dereference(published[0])
        rt.point("explicit", "reader inside")  # the freer runs from here on
        assert ptr is not None
        seen.append(ptr.value)  # must still be valid
        rcu_read_unlock()

    def freer() -> None:
        obj = published[0]
        published[0] = None  # rcu_assign_pointer(gp, NULL)
        kfree_rcu(obj)
        synchronize_rcu()  # blocks until the reader leaves its section
        assert is_poisoned(obj)

    rt.run([reader, freer])
    assert seen == [1]


def test_use_after_grace_period_is_caught() -> None:
    rt = checked()
    obj = Obj()

    def stale_reader() -> None:
        rcu_read_lock()
        ptr = rcu_dereference(obj)
        rcu_read_unlock()
        rt.point("explicit", "outside the section")
        _ = ptr.value  # the object may be gone by now

    def freer() -> None:
        kfree_rcu(obj)
        synchronize_rcu()

    class ReaderThenFreer:
        def start(self, nr_cpus: int) -> None:
            self.n = 0

        def pick(self, runnable: list[int], current: int | None, point: object) -> int:
            self.n += 1
            # run cpu0 through its unlock, then cpu1 to completion, then cpu0
            if 1 in runnable and self.n > 3:
                return 1
            return runnable[0]

    rt.scheduler = ReaderThenFreer()  # type: ignore[assignment]
    with pytest.raises(UseAfterFree, match="freed in"):
        rt.run([stale_reader, freer])


def test_rcu_dereference_outside_a_section_is_reported() -> None:
    rt = checked()
    with pytest.raises(RcuMisuse):
        rt.run([lambda: rcu_dereference(Obj())])


def test_unbalanced_rcu_unlock_is_reported() -> None:
    rt = checked()
    with pytest.raises(RcuMisuse):
        rt.run([rcu_read_unlock])


def test_lock_misuse_is_reported() -> None:
    lock = spinlock_t("L")
    rt = checked()
    with pytest.raises(LockMisuse, match="does not hold"):
        rt.run([lambda: spin_unlock(lock)])
    rt = checked()
    with pytest.raises(LockMisuse, match="must be held"):
        rt.run([lambda: lockdep_assert_held(lock)])
    rt = checked()
    with pytest.raises(LockMisuse, match="finished holding"):
        rt.run([lambda: spin_lock(spinlock_t("M"))])


def test_aa_deadlock() -> None:
    lock = spinlock_t("L")

    def body() -> None:
        spin_lock(lock)
        spin_lock(lock)

    rt = checked()
    with pytest.raises(Deadlock, match="AA"):
        rt.run([body])


def test_abba_deadlock() -> None:
    a, b = spinlock_t("A"), spinlock_t("B")

    def one() -> None:
        spin_lock(a)
        spin_lock(b)
        spin_unlock(b)
        spin_unlock(a)

    def two() -> None:
        spin_lock(b)
        spin_lock(a)
        spin_unlock(a)
        spin_unlock(b)

    rt = checked(PreferOther())
    with pytest.raises(Deadlock, match="every CPU is blocked"):
        rt.run([one, two])


def test_contended_lock_blocks_until_released() -> None:
    lock = spinlock_t("L")
    order: list[str] = []

    def holder() -> None:
        spin_lock(lock)
        order.append("a-in")
        runtime.checked.point("explicit", "holding")  # type: ignore[union-attr]
        order.append("a-out")
        spin_unlock(lock)

    def waiter() -> None:
        spin_lock(lock)
        order.append("b-in")
        spin_unlock(lock)

    rt = checked(PreferOther())
    rt.run([holder, waiter])
    assert order == ["a-in", "a-out", "b-in"]


def test_sleeping_allocation_under_a_spinlock_is_reported() -> None:
    lock = spinlock_t("L")

    def body() -> None:
        spin_lock(lock)
        kzalloc(Obj, GFP_KERNEL, "sleepy")

    rt = checked()
    with pytest.raises(SleepInAtomic, match="holding L"):
        rt.run([body])


def test_atomic_allocation_under_a_spinlock_is_fine() -> None:
    lock = spinlock_t("L")

    def body() -> None:
        spin_lock(lock)
        kzalloc(Obj, GFP_ATOMIC, "fine")
        spin_unlock(lock)

    checked().run([body])


def test_checked_mode_records_a_readable_trace() -> None:
    lock = spinlock_t("ci7")

    def body() -> None:
        spin_lock(lock)
        spin_unlock(lock)

    rt = checked()
    rt.run([body, body])
    kinds = [(s.cpu, s.kind, s.label) for s in rt.trace]
    assert (0, "lock", "ci7") in kinds and (1, "unlock", "ci7") in kinds
    assert all(s.func == "body" for s in rt.trace)


def test_install_none_restores_the_no_op_primitives() -> None:
    checked()
    runtime.install(None)
    lock = spinlock_t("L")
    spin_unlock(lock)  # a no-op again: no owner tracking
    lockdep_assert_held(lock)


def test_lists_and_plists() -> None:
    class Node:
        __slots__ = ("list", "name")

        def __init__(self, name: str) -> None:
            self.name = name
            self.list = None

    a, b = ListHead("a"), ListHead("b")
    x, y = Node("x"), Node("y")
    list_add_tail(x, a)
    list_add_tail(y, a)
    assert list_first_entry(a) is x
    list_move_tail(x, a)
    assert list_first_entry(a) is y
    list_move_tail(y, b)
    assert y.list is b and list(a) == [x]
    list_del(x)
    assert x.list is None and len(a) == 0

    head = PlistHead()
    nodes = {name: PlistNode(name, prio) for name, prio in [("hi", -10), ("m1", 1), ("m2", 1)]}
    for node in nodes.values():
        plist_add(node, head)
    assert list(head) == ["hi", "m1", "m2"]
    plist_requeue(nodes["m1"], head)
    assert list(head) == ["hi", "m2", "m1"]


def test_percpu_follows_the_current_cpu() -> None:
    pcp = PerCpu(lambda cpu: [cpu], 3)
    runtime.set_fast_cpu(2)
    assert pcp.this_cpu_ptr() == [2]
    runtime.set_fast_cpu(0)
    assert pcp.this_cpu_ptr() == [0]
    assert [slot[0] for slot in pcp] == [0, 1, 2]


def test_cancel_work_takes_a_pending_item_off_the_queue() -> None:
    from ghostswap.kernel import quiescent
    from ghostswap.kernel.workqueue import WorkStruct, cancel_work, schedule_work

    ran: list[str] = []
    work = WorkStruct(lambda: ran.append("work"), "test")
    assert not cancel_work(work)  # not pending
    assert schedule_work(work) and work.pending
    assert cancel_work(work) and not work.pending
    quiescent()
    assert ran == []
    assert schedule_work(work)  # can be queued again
    quiescent()
    assert ran == ["work"]
