"""Doubly linked lists (include/linux/list.h) for objects that sit on at
most one list at a time.

A :class:`ListHead` keeps its members in insertion order with O(1) add,
delete, move and pop from the head. Each member carries the head it is on in
its ``list`` attribute (None when off-list), which is how ``list_del`` finds
it without a pointer to the head.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Protocol

__all__ = [
    "ListHead",
    "list_add_tail",
    "list_del",
    "list_empty",
    "list_first_entry",
    "list_move_tail",
]


class Listable(Protocol):
    list: ListHead | None


class ListHead:
    __slots__ = ("_members", "name")

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._members: OrderedDict[Any, None] = OrderedDict()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, item: object) -> bool:
        return item in self._members

    def __repr__(self) -> str:
        return f"<list {self.name} ({len(self._members)})>"


def list_add_tail(entry: Listable, head: ListHead) -> None:
    head._members[entry] = None
    entry.list = head


def list_del(entry: Listable) -> None:
    head = entry.list
    if head is not None:
        del head._members[entry]
        entry.list = None


def list_move_tail(entry: Listable, head: ListHead) -> None:
    old = entry.list
    if old is head:
        head._members.move_to_end(entry)
        return
    if old is not None:
        del old._members[entry]
    head._members[entry] = None
    entry.list = head


def list_empty(head: ListHead) -> bool:
    return not head._members


def list_first_entry(head: ListHead) -> Any:
    return next(iter(head._members))
