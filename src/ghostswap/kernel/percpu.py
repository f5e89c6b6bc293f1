"""Per-CPU variables and per-CPU reference counts (include/linux/percpu.h,
include/linux/percpu-refcount.h)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ghostswap.kernel import runtime as _rt
from ghostswap.kernel.runtime import checked_twin

__all__ = ["PerCpu", "PercpuRef"]

T = TypeVar("T")


class PerCpu(Generic[T]):
    """One instance of a structure per possible CPU (``DEFINE_PER_CPU``)."""

    __slots__ = ("_slots",)

    def __init__(self, factory: Callable[[int], T], nr_cpus: int) -> None:
        self._slots = [factory(cpu) for cpu in range(nr_cpus)]

    def this_cpu_ptr(self) -> T:
        return self._slots[_rt._fast_cpu]

    @checked_twin(this_cpu_ptr)
    def _this_cpu_ptr(self) -> T:
        return self._slots[_rt.checked.current().cpu]  # type: ignore[union-attr]

    def per_cpu_ptr(self, cpu: int) -> T:
        return self._slots[cpu]

    def __iter__(self) -> Iterator[T]:
        """``for_each_possible_cpu``."""
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)


class PercpuRef:
    """A reference count that can be killed (``struct percpu_ref``).

    ``tryget_live`` fails once the ref is killed; ``wait_for_zero`` is the
    ``wait_for_completion(&si->comp)`` of swapoff, which blocks in checked
    mode until the last user has put its reference.
    """

    __slots__ = ("count", "dead")

    def __init__(self, dead: bool = True) -> None:
        self.count = 0
        self.dead = dead

    def tryget_live(self) -> bool:
        if self.dead:
            return False
        self.count += 1
        return True

    def put(self) -> None:
        self.count -= 1

    def kill(self) -> None:
        self.dead = True

    def resurrect(self) -> None:
        self.dead = False

    def is_zero(self) -> bool:
        return self.dead and self.count == 0

    def wait_for_zero(self, what: str = "percpu_ref") -> None:
        c = _rt.checked
        if c is not None:
            c.wait_until(lambda: self.count == 0, f"{what} users to drop")
