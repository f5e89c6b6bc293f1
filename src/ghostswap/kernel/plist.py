"""Priority-sorted lists (include/linux/plist.h).

Nodes are kept sorted by ascending ``prio`` (the swap code stores the
negated swap priority, so the highest swap priority comes first); nodes of
equal priority keep insertion order, and ``plist_requeue`` moves a node
behind its equals, which is how swap devices of one priority take turns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = [
    "PlistHead",
    "PlistNode",
    "plist_add",
    "plist_del",
    "plist_head_empty",
    "plist_node_empty",
    "plist_requeue",
]


class PlistNode:
    __slots__ = ("head", "owner", "prio")

    def __init__(self, owner: Any, prio: int = 0) -> None:
        self.owner = owner
        self.prio = prio
        self.head: PlistHead | None = None


class PlistHead:
    __slots__ = ("nodes",)

    def __init__(self) -> None:
        self.nodes: list[PlistNode] = []

    def __iter__(self) -> Iterator[Any]:
        """The owners, highest priority first (``plist_for_each_entry``)."""
        return (node.owner for node in list(self.nodes))


def plist_add(node: PlistNode, head: PlistHead) -> None:
    assert node.head is None, "node already on a plist"
    nodes = head.nodes
    i = len(nodes)
    while i > 0 and nodes[i - 1].prio > node.prio:
        i -= 1
    nodes.insert(i, node)
    node.head = head


def plist_del(node: PlistNode, head: PlistHead) -> None:
    head.nodes.remove(node)
    node.head = None


def plist_requeue(node: PlistNode, head: PlistHead) -> None:
    plist_del(node, head)
    plist_add(node, head)


def plist_node_empty(node: PlistNode) -> bool:
    return node.head is None


def plist_head_empty(head: PlistHead) -> bool:
    return not head.nodes
