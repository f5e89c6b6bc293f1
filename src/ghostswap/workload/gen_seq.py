"""``seq:SIZE[:PASSES]``: populate a region like ``usemem``, then sweep it.

The process maps SIZE, writes it once in address order (usemem's fill),
then makes PASSES passes over it in address order, one access per page;
each access writes with probability ``--write-ratio``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ghostswap.workload.events import OP_MAP
from ghostswap.workload.generator import (
    BASE_PAGE,
    CHUNK_EVENTS,
    MAIN_PID,
    Generator,
    access_events,
    one_event,
    populate_count,
    populate_events,
)
from ghostswap.workload.spec import Param, parse_count, parse_pages

__all__ = ["SeqWorkload"]


class SeqWorkload(Generator):
    NAME = "seq"
    USAGE = "seq:SIZE[:PASSES]"
    SUMMARY = "usemem-style: write SIZE in order, then PASSES sequential passes (default 1)"
    PARAMS = (Param("size", parse_pages, unit="pages"), Param("passes", parse_count, 1))

    def total_events(self) -> int:
        npages = self.params["size"]
        return 1 + populate_count(npages) + self.params["passes"] * npages

    def _generate(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        npages = self.params["size"]
        yield one_event(MAIN_PID, OP_MAP, BASE_PAGE, npages)
        yield from populate_events(MAIN_PID, BASE_PAGE, npages)
        for _ in range(self.params["passes"]):
            for first in range(0, npages, CHUNK_EVENTS):
                pages = np.arange(first, min(first + CHUNK_EVENTS, npages), dtype=np.uint64)
                yield access_events(rng, MAIN_PID, pages + BASE_PAGE, self.write_ratio)
