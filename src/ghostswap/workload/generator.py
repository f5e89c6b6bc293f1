"""The shared frame of the built-in generators and their event builders.

A generator is a :class:`Generator` subclass that declares ``NAME``,
``USAGE``, ``SUMMARY`` and ``PARAMS`` and implements ``_generate(rng)`` (the
events, as arrays in order) and ``total_events()`` (their exact number).
Every run of :meth:`Generator.chunks` starts a fresh
``numpy.random.default_rng(seed)``, so the stream is a pure function of the
spec, the seed and the options, and can be replayed any number of times.

Layout: a generator's process is pid :data:`MAIN_PID` and its region starts
at page :data:`BASE_PAGE` (1 GiB, 2 MiB aligned). Populating a region
writes it in address order in runs of :data:`POPULATE_RUN` pages (64 KiB):
as if a program memset it, the way ``usemem`` and a YCSB load phase do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

# numpy loads numpy.random on first use; a signal that arrives while its
# extension modules initialise can be swallowed there (a KeyboardInterrupt
# raised in abc.__subclasscheck__ during their init was seen lost), and a run
# then ignores Ctrl-C. Importing it here loads it at start-up instead.
from numpy.random import default_rng

from ghostswap.workload.events import OP_READ, OP_WRITE, make_events
from ghostswap.workload.spec import Param, parse_spec_args

__all__ = [
    "BASE_PAGE",
    "CHUNK_EVENTS",
    "MAIN_PID",
    "POPULATE_RUN",
    "Generator",
    "access_events",
    "one_event",
    "populate_count",
    "populate_events",
    "range_events",
    "split_chunks",
]

CHUNK_EVENTS = 1 << 16
MAIN_PID = 1
BASE_PAGE = 1 << 18
POPULATE_RUN = 16


def split_chunks(events: np.ndarray, size: int = CHUNK_EVENTS) -> Iterator[np.ndarray]:
    """`events` in slices of at most `size` (views, no copies)."""
    for start in range(0, len(events), size):
        yield events[start : start + size]


def one_event(pid: int, op: int, page: int, npages: int) -> np.ndarray:
    ev = make_events(1)
    ev[0] = (pid, op, npages, page)
    return ev


def range_events(pid: int, op: int, pages: np.ndarray, npages: int | np.ndarray) -> np.ndarray:
    """One `op` event per entry of `pages`, each covering `npages` pages."""
    ev = make_events(len(pages))
    ev["pid"] = pid
    ev["op"] = op
    ev["page"] = pages
    ev["npages"] = npages
    return ev


def populate_count(npages: int, run: int = POPULATE_RUN) -> int:
    return -(-npages // run)


def populate_events(
    pid: int, start: int, npages: int, run: int = POPULATE_RUN
) -> Iterator[np.ndarray]:
    """Write ``[start, start + npages)`` in address order, `run` pages per event."""
    per_chunk = CHUNK_EVENTS * run
    for first in range(start, start + npages, per_chunk):
        end = min(first + per_chunk, start + npages)
        pages = np.arange(first, end, run, dtype=np.uint64)
        ev = range_events(pid, OP_WRITE, pages, run)
        ev["npages"][-1] = end - int(pages[-1])
        yield ev


def access_events(
    rng: np.random.Generator, pid: int, pages: np.ndarray, write_ratio: float
) -> np.ndarray:
    """One single-page access per entry of `pages`; each writes with P = `write_ratio`."""
    ev = make_events(len(pages))
    ev["pid"] = pid
    ev["op"] = np.where(rng.random(len(pages)) < write_ratio, OP_WRITE, OP_READ)
    ev["page"] = pages
    ev["npages"] = 1
    return ev


class Generator:
    """A seeded synthetic workload described by a ``NAME:ARGS`` spec."""

    NAME: ClassVar[str]
    USAGE: ClassVar[str]
    SUMMARY: ClassVar[str]
    PARAMS: ClassVar[Sequence[Param]]
    # False for a generator whose accesses are all writes, whatever --write-ratio says.
    USES_WRITE_RATIO: ClassVar[bool] = True

    def __init__(
        self, spec: str, params: dict[str, Any], *, seed: int, write_ratio: float, fill: str
    ) -> None:
        self.name = self.NAME
        self.spec = spec
        self.params = params
        self.seed = seed
        self.write_ratio = write_ratio
        self.fill = fill
        self._check()

    @classmethod
    def from_spec(
        cls, spec: str, args: Sequence[str], *, seed: int, write_ratio: float, fill: str
    ) -> Generator:
        params = parse_spec_args(spec, cls.USAGE, cls.PARAMS, args)
        return cls(spec, params, seed=seed, write_ratio=write_ratio, fill=fill)

    def _check(self) -> None:
        """Refuse parameter combinations that cannot work (ConfigError)."""

    def describe(self) -> dict[str, object]:
        ratio = {"write_ratio": self.write_ratio} if self.USES_WRITE_RATIO else {}
        return {
            "workload": self.NAME,
            "spec": self.spec,
            "seed": self.seed,
            **ratio,
            "fill": self.fill,
            **{p.key: self.params[p.name] for p in self.PARAMS},
        }

    def total_events(self) -> int:
        raise NotImplementedError

    def locate(self, index: int) -> str:
        return f"{self.name}: event {index}"

    def chunks(self) -> Iterator[np.ndarray]:
        rng = default_rng(self.seed)
        for events in self._generate(rng):
            yield from split_chunks(events)

    def _generate(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        raise NotImplementedError
