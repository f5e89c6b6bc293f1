"""``churn:SIZE:ROUNDS``: allocate, touch, free random halves.

The process maps SIZE, cut into blocks of ``block`` bytes (default 64 KiB,
one 64 KiB mTHP), and writes all of it. Each round then

1. frees a random half of the blocks (``MADV_DONTNEED``, in random order),
   dropping their pages and swap entries;
2. touches every page of the surviving blocks once, in address order
   (each access writes with probability ``--write-ratio``);
3. allocates the freed blocks again by writing them (random order).

Freed blocks leave holes wherever their pages sat in swap, so rounds of
churn fragment the swap space the way a malloc-heavy program does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ghostswap.errors import ConfigError
from ghostswap.workload.events import OP_FREE, OP_MAP, OP_WRITE
from ghostswap.workload.generator import (
    BASE_PAGE,
    CHUNK_EVENTS,
    MAIN_PID,
    Generator,
    access_events,
    one_event,
    populate_count,
    populate_events,
    range_events,
)
from ghostswap.workload.spec import Param, parse_count, parse_pages

__all__ = ["ChurnWorkload"]


class ChurnWorkload(Generator):
    NAME = "churn"
    USAGE = "churn:SIZE:ROUNDS[:block=64KiB]"
    SUMMARY = (
        "write SIZE in blocks; each round frees a random half of the blocks, "
        "touches the rest, and writes the freed ones again"
    )
    PARAMS = (
        Param("size", parse_pages, unit="pages"),
        Param("rounds", parse_count),
        Param("block", parse_pages, 16, unit="pages"),
    )

    def _check(self) -> None:
        npages, block = self.params["size"], self.params["block"]
        if npages % block:
            raise ConfigError(
                f"workload {self.spec!r}: SIZE must be a multiple of the block ({block} pages)"
            )
        if npages // block < 2:
            raise ConfigError(f"workload {self.spec!r}: SIZE must hold at least two blocks")

    @property
    def nblocks(self) -> int:
        return self.params["size"] // self.params["block"]

    def total_events(self) -> int:
        npages, block = self.params["size"], self.params["block"]
        freed = self.nblocks // 2
        per_round = 2 * freed + (self.nblocks - freed) * block
        return 1 + populate_count(npages) + self.params["rounds"] * per_round

    def _generate(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        npages, block = self.params["size"], self.params["block"]
        yield one_event(MAIN_PID, OP_MAP, BASE_PAGE, npages)
        yield from populate_events(MAIN_PID, BASE_PAGE, npages)
        nblocks = self.nblocks
        starts = BASE_PAGE + np.arange(nblocks, dtype=np.uint64) * np.uint64(block)
        offsets = np.arange(block, dtype=np.uint64)
        for _ in range(self.params["rounds"]):
            freed = rng.permutation(nblocks)[: nblocks // 2]
            yield range_events(MAIN_PID, OP_FREE, starts[freed], block)
            kept = np.ones(nblocks, dtype=bool)
            kept[freed] = False
            kept_starts = starts[kept]
            step = max(1, CHUNK_EVENTS // block)
            for first in range(0, len(kept_starts), step):
                pages = (kept_starts[first : first + step, None] + offsets).ravel()
                yield access_events(rng, MAIN_PID, pages, self.write_ratio)
            yield range_events(MAIN_PID, OP_WRITE, starts[rng.permutation(freed)], block)
