"""Read-copy update (include/linux/rcupdate.h, kernel/rcu/).

Python has no pointer loads, so ``rcu_dereference(p)`` takes the value the
caller just read and returns it; in checked mode the call asserts that the
read happened inside a read-side critical section and is a scheduling point,
which is exactly where another CPU may free what was read.

Fast mode defers ``call_rcu``/``kfree_rcu`` callbacks to the next
``rcu_quiescent_state()``; checked mode runs a callback only once every CPU
that was in a critical section when it was queued has left it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ghostswap.kernel import runtime as _rt
from ghostswap.kernel.runtime import checked_twin
from ghostswap.kernel.slab import kfree, site_of

__all__ = [
    "call_rcu",
    "kfree_rcu",
    "rcu_assign_pointer",
    "rcu_dereference",
    "rcu_dereference_check",
    "rcu_dereference_protected",
    "rcu_read_lock",
    "rcu_read_lock_held",
    "rcu_read_unlock",
    "synchronize_rcu",
]

T = TypeVar("T")


def rcu_read_lock() -> None:
    pass


@checked_twin(rcu_read_lock)
def _rcu_read_lock() -> None:
    _rt.checked.rcu_read_lock()  # type: ignore[union-attr]


def rcu_read_unlock() -> None:
    pass


@checked_twin(rcu_read_unlock)
def _rcu_read_unlock() -> None:
    _rt.checked.rcu_read_unlock()  # type: ignore[union-attr]


def rcu_read_lock_held() -> bool:
    return True


@checked_twin(rcu_read_lock_held)
def _rcu_read_lock_held() -> bool:
    return _rt.checked.rcu_read_lock_held()  # type: ignore[union-attr]


def rcu_dereference(value: T, label: str = "pointer") -> T:
    """The value of an RCU-protected pointer, read inside a read section."""
    return value


@checked_twin(rcu_dereference)
def _rcu_dereference(value: T, label: str = "pointer") -> T:
    _rt.checked.rcu_dereference(label, False)  # type: ignore[union-attr]
    return value


def rcu_dereference_check(value: T, lock_held: bool, label: str = "pointer") -> T:
    """As rcu_dereference(), but also legal when `lock_held` is true."""
    return value


@checked_twin(rcu_dereference_check)
def _rcu_dereference_check(value: T, lock_held: bool, label: str = "pointer") -> T:
    _rt.checked.rcu_dereference(label, lock_held)  # type: ignore[union-attr]
    return value


def rcu_dereference_protected(value: T, lock_held: bool = True) -> T:
    """An update-side read under the lock that stops the pointer changing."""
    return value


def rcu_assign_pointer(value: T) -> T:
    """Publish `value`; the caller stores the result in the protected field."""
    return value


def call_rcu(callback: Callable[[], None], label: str = "call_rcu") -> None:
    c = _rt.checked
    if c is not None:
        c.call_rcu(callback, label)
    else:
        _rt.fast_call_rcu(callback)


def kfree_rcu(obj: object) -> None:
    """Free `obj` (poisoning it) after a grace period."""
    label = f"kfree_rcu {type(obj).__name__}"
    site = site_of()
    call_rcu(lambda: kfree(obj, site), label)


def synchronize_rcu() -> None:
    c = _rt.checked
    if c is not None:
        c.synchronize_rcu()
    else:
        _rt.rcu_barrier_fast()
