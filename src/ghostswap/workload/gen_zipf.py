"""``zipf:SIZE:ACCESSES[:THETA]``: YCSB-style Zipfian accesses.

The process maps and populates SIZE (YCSB's load phase: every page written
once, in address order), then makes ACCESSES single-page accesses whose
pages follow YCSB's Zipfian distribution with constant THETA (default
0.99, YCSB's). By default the popular pages are scattered over the region
as YCSB's ``ScrambledZipfianGenerator`` does (``scramble=yes``, YCSB's
``requestdistribution=zipfian``); ``scramble=no`` uses the plain
``ZipfianGenerator``, whose most popular page is the first of the region,
the next the second, and so on. Each access writes with probability
``--write-ratio``. The math is in :mod:`ghostswap.workload.ycsb_zipfian`.
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
from ghostswap.workload.spec import Param, parse_bool, parse_count, parse_pages, parse_theta
from ghostswap.workload.ycsb_zipfian import YCSB_THETA, ScrambledZipfian, Zipfian

__all__ = ["ZipfWorkload"]


class ZipfWorkload(Generator):
    NAME = "zipf"
    USAGE = "zipf:SIZE:ACCESSES[:THETA][:scramble=no]"
    SUMMARY = (
        "write SIZE once, then ACCESSES YCSB Zipfian page accesses "
        f"(THETA default {YCSB_THETA}; hot pages scattered unless scramble=no)"
    )
    PARAMS = (
        Param("size", parse_pages, unit="pages"),
        Param("accesses", parse_count),
        Param("theta", parse_theta, YCSB_THETA),
        Param("scramble", parse_bool, True),
    )

    def _check(self) -> None:
        npages, theta = self.params["size"], self.params["theta"]
        self.distribution: Zipfian | ScrambledZipfian = (
            ScrambledZipfian(npages, theta) if self.params["scramble"] else Zipfian(npages, theta)
        )

    def total_events(self) -> int:
        return 1 + populate_count(self.params["size"]) + self.params["accesses"]

    def _generate(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        npages = self.params["size"]
        yield one_event(MAIN_PID, OP_MAP, BASE_PAGE, npages)
        yield from populate_events(MAIN_PID, BASE_PAGE, npages)
        left = self.params["accesses"]
        while left:
            n = min(left, CHUNK_EVENTS)
            pages = self.distribution.sample(rng, n).astype(np.uint64) + np.uint64(BASE_PAGE)
            yield access_events(rng, MAIN_PID, pages, self.write_ratio)
            left -= n
