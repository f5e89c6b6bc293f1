"""What the model reports when kernel code misbehaves, and errno-style errors.

`KernelBug` and its subclasses are detections: a BUG, a failed WARN, a
use-after-free, a lockdep or RCU splat. `KernelError` is the model's form of
a negative errno return (`-ENOMEM`, `-EBUSY`): an expected failure that
kernel callers handle.
"""

from __future__ import annotations

__all__ = [
    "WARN",
    "Deadlock",
    "InvariantViolation",
    "KernelBug",
    "KernelError",
    "KernelWarning",
    "LockMisuse",
    "RcuMisuse",
    "SleepInAtomic",
    "UseAfterFree",
    "warnings_seen",
]


class KernelBug(Exception):
    """Base of every detection; `kind` is the short name used in reports."""

    kind = "bug"


class UseAfterFree(KernelBug):
    kind = "use-after-free"


class LockMisuse(KernelBug):
    kind = "lock-misuse"


class RcuMisuse(KernelBug):
    kind = "rcu-misuse"


class SleepInAtomic(KernelBug):
    kind = "sleep-in-atomic"


class Deadlock(KernelBug):
    kind = "deadlock"


class InvariantViolation(KernelBug):
    kind = "invariant"


class KernelWarning(KernelBug):
    """A WARN_ON() that fired while warnings are strict (the default)."""

    kind = "warning"


class KernelError(Exception):
    """An errno-carrying failure, e.g. ``KernelError("ENOMEM", "swap table")``."""

    def __init__(self, errno: str, what: str = "") -> None:
        super().__init__(f"{errno}: {what}" if what else errno)
        self.errno = errno


# WARN_ON() either raises (strict: tests, checker) or is counted and ignored
# the way a production kernel carries on after a splat.
strict_warnings = True
warnings_seen: list[str] = []


def WARN(message: str) -> None:
    """Model of WARN(): a condition the kernel considers a bug fired."""
    if strict_warnings:
        raise KernelWarning(message)
    warnings_seen.append(message)
