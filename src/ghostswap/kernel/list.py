"""Doubly linked lists (include/linux/list.h) for objects that sit on at
most one list at a time.

A :class:`ListHead` keeps its members in insertion order with O(1) add,
delete, move and pop from the head. Each member carries the head it is on in
its ``list`` attribute (None when off-list), which is how ``list_del`` finds
it without a pointer to the head.

A head may also start with a :class:`LazyRun`: members ``lo .. hi - 1`` in
index order, ahead of every explicitly added member, whose objects are made
only when someone first looks at them. It stands for a list that setup code
filled with a huge number of identical, untouched objects (``swapon`` puts
every cluster of a device on its free list): the order and every list
operation are the same as if they had been added one by one, but a 16 TiB
device costs nothing until its clusters are used.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Protocol

__all__ = [
    "LazyRun",
    "ListHead",
    "list_add_tail",
    "list_del",
    "list_empty",
    "list_first_entry",
    "list_move_tail",
]


class Listable(Protocol):
    list: ListHead | None


class LazyRun:
    """Members ``lo .. hi - 1`` of a list, in index order, minus `taken`.

    `make(index)` returns the member object of `index`, creating it on first
    use with its ``list`` pointing at the head; a member removed from the run
    is always one whose object was made, found by its ``index`` attribute.
    """

    __slots__ = ("hi", "lo", "make", "taken")

    def __init__(self, lo: int, hi: int, make: Callable[[int], Any]) -> None:
        self.lo = lo
        self.hi = hi
        self.make = make
        self.taken: set[int] = set()

    def __len__(self) -> int:
        return self.hi - self.lo - len(self.taken)

    def holds(self, index: int) -> bool:
        return self.lo <= index < self.hi and index not in self.taken

    def indices(self) -> Iterator[int]:
        taken = self.taken
        return (i for i in range(self.lo, self.hi) if i not in taken)

    def take(self, index: int) -> None:
        """Remove `index` from the run; KeyError if it is not in it."""
        if not self.holds(index):
            raise KeyError(index)
        if index != self.lo:
            self.taken.add(index)
            return
        lo = index + 1
        taken = self.taken
        while lo in taken:
            taken.discard(lo)
            lo += 1
        self.lo = lo


class ListHead:
    __slots__ = ("_members", "lazy", "name")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._members: OrderedDict[Any, None] = OrderedDict()
        self.lazy: LazyRun | None = None

    def __iter__(self) -> Iterator[Any]:
        if self.lazy is None:
            return iter(self._members)
        return self._iter_with_run(self.lazy)

    def _iter_with_run(self, run: LazyRun) -> Iterator[Any]:
        for index in run.indices():
            yield run.make(index)
        yield from self._members

    def explicit(self) -> Iterator[Any]:
        """The members added one by one, after the lazy run (if any)."""
        return iter(self._members)

    def __len__(self) -> int:
        run = self.lazy
        return len(self._members) + (len(run) if run is not None else 0)

    def __contains__(self, item: object) -> bool:
        if item in self._members:
            return True
        run = self.lazy
        if run is None or getattr(item, "list", None) is not self:
            return False
        index = getattr(item, "index", None)
        return isinstance(index, int) and run.holds(index)

    def __repr__(self) -> str:
        return f"<list {self.name} ({len(self)})>"

    def _take_from_run(self, entry: Any) -> None:
        run = self.lazy
        if run is None:
            raise KeyError(entry)
        run.take(entry.index)
        if not len(run):
            self.lazy = None


def list_add_tail(entry: Listable, head: ListHead) -> None:
    head._members[entry] = None
    entry.list = head


def list_del(entry: Listable) -> None:
    head = entry.list
    if head is not None:
        try:
            del head._members[entry]
        except KeyError:
            head._take_from_run(entry)
        entry.list = None


def list_move_tail(entry: Listable, head: ListHead) -> None:
    old = entry.list
    if old is head:
        try:
            head._members.move_to_end(entry)
        except KeyError:
            head._take_from_run(entry)
            head._members[entry] = None
        return
    if old is not None:
        try:
            del old._members[entry]
        except KeyError:
            old._take_from_run(entry)
    head._members[entry] = None
    entry.list = head


def list_empty(head: ListHead) -> bool:
    return not head._members and head.lazy is None


def list_first_entry(head: ListHead) -> Any:
    run = head.lazy
    if run is not None:
        return run.make(run.lo)
    return next(iter(head._members))
