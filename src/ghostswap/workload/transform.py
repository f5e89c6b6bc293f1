"""Workloads made from other workloads.

:class:`MadviseMapped` follows every ``OP_MAP`` with an ``OP_HUGEPAGE`` (or
``OP_NOHUGEPAGE``) of the same range, as a program that ``madvise``\\ s each
mapping right after ``mmap`` would: what ``--madv-hugepage`` does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ghostswap.workload.events import OP_HUGEPAGE, OP_MAP, OP_NOHUGEPAGE, Workload

__all__ = ["MadviseMapped"]


class MadviseMapped:
    """`inner` with a madvise after each of its mappings."""

    def __init__(self, inner: Workload, hugepage: bool = True) -> None:
        self.inner = inner
        self.op = OP_HUGEPAGE if hugepage else OP_NOHUGEPAGE
        self.name = inner.name
        self.fill = getattr(inner, "fill", "half")

    def describe(self) -> dict[str, object]:
        advice = "hugepage" if self.op == OP_HUGEPAGE else "nohugepage"
        return {**self.inner.describe(), "madvise_mappings": advice}

    def total_events(self) -> int | None:
        # One more event per mapping, and how many there are is not known
        # without reading the stream.
        return None

    def locate(self, index: int) -> str:
        """Where the inner event behind event `index` comes from (an added
        madvise comes from its mapping)."""
        produced = consumed = 0  # events out of this workload, and of inner
        for chunk in self.inner.chunks():
            maps = np.flatnonzero(chunk["op"] == OP_MAP)
            if index < produced + len(chunk) + len(maps):
                source = np.insert(np.arange(len(chunk)), maps + 1, maps)
                return self.inner.locate(consumed + int(source[index - produced]))
            produced += len(chunk) + len(maps)
            consumed += len(chunk)
        # Past the end: no event of inner is behind it.
        return f"{self.name}: event {index}"

    def chunks(self) -> Iterator[np.ndarray]:
        for chunk in self.inner.chunks():
            maps = np.flatnonzero(chunk["op"] == OP_MAP)
            if not len(maps):
                yield chunk
                continue
            out = np.insert(chunk, maps + 1, chunk[maps])
            out["op"][maps + np.arange(1, len(maps) + 1)] = self.op
            yield out
