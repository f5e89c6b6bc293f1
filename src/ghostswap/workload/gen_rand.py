"""``rand:SIZE:ACCESSES``: uniform random accesses over a populated region.

The process maps and populates SIZE (written once in address order), then
makes ACCESSES single-page accesses at uniformly random pages; each writes
with probability ``--write-ratio``.
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

__all__ = ["RandWorkload"]


class RandWorkload(Generator):
    NAME = "rand"
    USAGE = "rand:SIZE:ACCESSES"
    SUMMARY = "write SIZE once, then ACCESSES uniformly random page accesses"
    PARAMS = (Param("size", parse_pages, unit="pages"), Param("accesses", parse_count))

    def total_events(self) -> int:
        return 1 + populate_count(self.params["size"]) + self.params["accesses"]

    def _generate(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        npages = self.params["size"]
        yield one_event(MAIN_PID, OP_MAP, BASE_PAGE, npages)
        yield from populate_events(MAIN_PID, BASE_PAGE, npages)
        left = self.params["accesses"]
        while left:
            n = min(left, CHUNK_EVENTS)
            pages = rng.integers(0, npages, n, dtype=np.uint64) + np.uint64(BASE_PAGE)
            yield access_events(rng, MAIN_PID, pages, self.write_ratio)
            left -= n
