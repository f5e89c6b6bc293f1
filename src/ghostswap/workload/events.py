"""The event stream every workload and trace produces and the VM consumes.

Events come in chunks: numpy structured arrays of :data:`EVENT_DTYPE`, so a
generator or trace reader can produce millions of events without a Python
object per event, and the VM can scan a chunk with vectorised code.

Each event is one operation of one process on a range of its pages (page
numbers are virtual page numbers, i.e. address >> 12):

``OP_READ``, ``OP_WRITE``  touch ``npages`` pages from ``page`` (a write
    gives each page new contents)
``OP_FREE``     ``MADV_DONTNEED`` the range: drop pages and swap entries
``OP_MAP``      create an anonymous mapping (VMA) over the range
``OP_UNMAP``    ``munmap`` the range (free it and remove the mapping)
``OP_FORK``     fork: ``page`` is the child's pid, which shares everything
``OP_EXIT``     the process exits, freeing all it holds
``OP_PAGEOUT``  ``MADV_PAGEOUT`` the range (reclaim it now)
``OP_HUGEPAGE``, ``OP_NOHUGEPAGE``  ``MADV_HUGEPAGE``/``MADV_NOHUGEPAGE``
    the range (which mTHP sizes a fault may use, and whether their
    allocation may reclaim)

A process that touches pages outside any mapping gets an implicit mapping
of the aligned 2 MiB region around them (traces carry no mmap calls).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

__all__ = [
    "EVENT_DTYPE",
    "OP_EXIT",
    "OP_FORK",
    "OP_FREE",
    "OP_HUGEPAGE",
    "OP_MAP",
    "OP_NAMES",
    "OP_NOHUGEPAGE",
    "OP_PAGEOUT",
    "OP_READ",
    "OP_UNMAP",
    "OP_WRITE",
    "Workload",
    "make_events",
]

OP_READ = 0
OP_WRITE = 1
OP_FREE = 2
OP_MAP = 3
OP_UNMAP = 4
OP_FORK = 5
OP_EXIT = 6
OP_PAGEOUT = 7
OP_HUGEPAGE = 8
OP_NOHUGEPAGE = 9

OP_NAMES = {
    OP_READ: "r",
    OP_WRITE: "w",
    OP_FREE: "f",
    OP_MAP: "map",
    OP_UNMAP: "unmap",
    OP_FORK: "fork",
    OP_EXIT: "exit",
    OP_PAGEOUT: "pageout",
    OP_HUGEPAGE: "huge",
    OP_NOHUGEPAGE: "nohuge",
}

EVENT_DTYPE = np.dtype([("pid", "<u4"), ("op", "u1"), ("npages", "<u4"), ("page", "<u8")])


def make_events(n: int) -> np.ndarray:
    """An uninitialised chunk of `n` events."""
    return np.empty(n, dtype=EVENT_DTYPE)


class Workload(Protocol):
    """Anything that yields event chunks: a generator or a trace reader."""

    name: str

    def describe(self) -> dict[str, object]:
        """The parameters that reproduce this workload (for JSON results)."""

    def total_events(self) -> int | None:
        """How many events `chunks` will yield, if known (for progress)."""

    def chunks(self) -> Iterator[np.ndarray]:
        """The events, in order, as arrays of EVENT_DTYPE."""

    def locate(self, index: int) -> str:
        """Where event `index` (counted from 0 over all chunks) comes from,
        for an error message: ``FILE:LINE`` for a text trace."""
