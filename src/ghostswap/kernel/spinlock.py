"""Spinlocks and local locks (include/linux/spinlock.h, local_lock.h).

Fast mode: every operation is a no-op. Checked mode (see
:func:`ghostswap.kernel.runtime.checked_twin`): acquisition is a scheduling
point, a held lock blocks other CPUs, and misuse (unlocking a lock not held,
taking a lock twice, a failed ``lockdep_assert_held``) raises.
"""

from __future__ import annotations

from ghostswap.kernel import runtime as _rt
from ghostswap.kernel.runtime import checked_twin

__all__ = [
    "local_lock",
    "local_lock_t",
    "local_unlock",
    "lockdep_assert_held",
    "lockdep_is_held",
    "spin_lock",
    "spin_lock_init",
    "spin_trylock",
    "spin_unlock",
    "spinlock_t",
]


class spinlock_t:
    """A spinlock; `owner` is only tracked in checked mode."""

    __slots__ = ("name", "owner")

    def __init__(self, name: str = "lock") -> None:
        self.name = name
        self.owner: object | None = None

    def __repr__(self) -> str:
        return f"<spinlock {self.name}>"


class local_lock_t(spinlock_t):
    """A per-CPU local lock: only its own CPU takes it, so it never contends."""

    __slots__ = ()


def spin_lock_init(name: str = "lock") -> spinlock_t:
    return spinlock_t(name)


def spin_lock(lock: spinlock_t) -> None:
    pass


@checked_twin(spin_lock)
def _spin_lock(lock: spinlock_t) -> None:
    _rt.checked.spin_lock(lock, lock.name)  # type: ignore[union-attr]


def spin_trylock(lock: spinlock_t) -> bool:
    return True


@checked_twin(spin_trylock)
def _spin_trylock(lock: spinlock_t) -> bool:
    return _rt.checked.spin_trylock(lock, lock.name)  # type: ignore[union-attr]


def spin_unlock(lock: spinlock_t) -> None:
    pass


@checked_twin(spin_unlock)
def _spin_unlock(lock: spinlock_t) -> None:
    _rt.checked.spin_unlock(lock, lock.name)  # type: ignore[union-attr]


def local_lock(lock: local_lock_t) -> None:
    pass


@checked_twin(local_lock)
def _local_lock(lock: local_lock_t) -> None:
    _rt.checked.spin_lock(lock, lock.name)  # type: ignore[union-attr]


def local_unlock(lock: local_lock_t) -> None:
    pass


@checked_twin(local_unlock)
def _local_unlock(lock: local_lock_t) -> None:
    _rt.checked.spin_unlock(lock, lock.name)  # type: ignore[union-attr]


def lockdep_assert_held(lock: spinlock_t) -> None:
    pass


@checked_twin(lockdep_assert_held)
def _lockdep_assert_held(lock: spinlock_t) -> None:
    _rt.checked.assert_held(lock, lock.name)  # type: ignore[union-attr]


def lockdep_is_held(lock: spinlock_t) -> bool:
    """True when the current CPU holds `lock`; always True in fast mode."""
    return True


@checked_twin(lockdep_is_held)
def _lockdep_is_held(lock: spinlock_t) -> bool:
    return _rt.checked.holds(lock)  # type: ignore[union-attr]
