"""``thp-frag:SIZE[:ROUNDS]``: the kernel's mTHP swap-fragmentation selftest.

Replays ``tools/testing/selftests/mm/thp_swap_allocator_test.c`` (Barry
Song) as events. The test maps 60 MiB (64 KiB aligned, ``MADV_HUGEPAGE``:
:data:`OP_HUGEPAGE`) and runs 100 iterations of:

1. 256 times: pick a random 64 KiB-aligned chunk (``rand() % chunks``),
   ``MADV_DONTNEED`` it (:data:`OP_FREE`) and ``memset`` it again
   (:data:`OP_WRITE` of the chunk, which refaults a fresh 64 KiB folio);
   picks repeat, 16 MiB worth per iteration;
2. ``MADV_PAGEOUT`` the whole region (:data:`OP_PAGEOUT`).

Each iteration's swap-out fallback percentage comes from the 64 KiB mTHP
counters before and after it: see :func:`fallback_percentage`; snapshot
the counters after every :data:`OP_PAGEOUT` event. The region starts with
an :data:`OP_MAP` so the VM aligns mTHP folios to it; it is never written
as a whole (only chunks the test picks are ever populated, as in the test).

SIZE (default 60MiB) scales the region; the frees per round keep the
test's 16/60 share (``frees=N`` overrides it) and ``chunk`` (default 64KiB)
the folio size. ``rng=glibc`` draws the chunks with glibc's ``rand()``
seeded by ``srand(--seed)``, so ``--seed 1`` picks exactly the chunks the
real test picks (it never calls ``srand``); the default draws them with
numpy. ``--write-ratio`` does not apply: the test always writes.
``small=yes`` adds the test's ``-s`` region: 1 MiB with
``MADV_NOHUGEPAGE`` (:data:`OP_NOHUGEPAGE`), of which 192 random 4 KiB
pages are freed and rewritten each round, and paged out with the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np

from ghostswap.errors import ConfigError
from ghostswap.workload.events import (
    OP_FREE,
    OP_HUGEPAGE,
    OP_MAP,
    OP_NOHUGEPAGE,
    OP_PAGEOUT,
    OP_WRITE,
    make_events,
)
from ghostswap.workload.generator import BASE_PAGE, MAIN_PID, Generator, one_event
from ghostswap.workload.spec import Param, parse_count, parse_pages

__all__ = ["ThpFragWorkload", "fallback_percentage", "glibc_rand"]

SELFTEST_PAGES = (60 << 20) >> 12
SELFTEST_ROUNDS = 100
SELFTEST_FREE_SHARE = (16, 60)  # TOTAL_DONTNEED_MTHP / MEMSIZE_MTHP
SMALL_PAGES = (1 << 20) >> 12  # MEMSIZE_SMALLFOLIO
SMALL_FREES = 192  # TOTAL_DONTNEED_SMALLFOLIO / 4 KiB


def glibc_rand(seed: int, n: int) -> np.ndarray:
    """The first `n` results of glibc ``rand()`` after ``srand(seed)``.

    glibc's default generator (``random_r.c``, TYPE_3): an additive lagged
    Fibonacci generator r[i] = r[i-3] + r[i-31] (mod 2^32) seeded by a
    Park-Miller sequence, the first 310 outputs discarded, each output
    shifted right by one bit.
    """
    word = seed & 0xFFFFFFFF
    if word >= 1 << 31:
        word -= 1 << 32
    if word == 0:
        word = 1
    r = [word]
    for _ in range(1, 31):
        hi = abs(word) // 127773 * (1 if word >= 0 else -1)  # C division truncates
        lo = word - hi * 127773
        word = 16807 * lo - 2836 * hi
        if word < 0:
            word += 2147483647
        r.append(word)
    r.extend(r[i] for i in range(3))  # r[31..33] = r[0..2]
    r = [x & 0xFFFFFFFF for x in r]
    total = 344 + n
    for i in range(34, total):
        r.append((r[i - 31] + r[i - 3]) & 0xFFFFFFFF)
    return np.array(r[344:], dtype=np.int64) >> 1


def fallback_percentage(before: Mapping[str, int], after: Mapping[str, int]) -> float:
    """The selftest's figure: ``Δswpout_fallback / (Δswpout_fallback + Δswpout) * 100``.

    `before` and `after` hold the ``swpout`` and ``swpout_fallback``
    counters of one mTHP size. NaN when neither moved (the C test divides
    0 by 0 and prints ``-nan%``).
    """
    swpout = after["swpout"] - before["swpout"]
    fallback = after["swpout_fallback"] - before["swpout_fallback"]
    if swpout + fallback == 0:
        return math.nan
    return fallback / (fallback + swpout) * 100


def _parse_yes_no(text: str, what: str) -> bool:
    value = text.strip().lower()
    if value not in ("yes", "no"):
        raise ConfigError(f"{what}: {text!r} is not yes or no")
    return value == "yes"


def _parse_rng(text: str, what: str) -> str:
    value = text.strip().lower()
    if value not in ("numpy", "glibc"):
        raise ConfigError(f"{what}: {text!r} is not numpy or glibc")
    return value


class ThpFragWorkload(Generator):
    NAME = "thp-frag"
    USAGE = "thp-frag[:SIZE][:ROUNDS][:chunk=64KiB][:frees=N][:rng=numpy|glibc][:small=yes]"
    SUMMARY = (
        "the thp_swap_allocator_test selftest: rounds of random MADV_DONTNEED + rewrite "
        "of 64 KiB chunks, then MADV_PAGEOUT of the region (SIZE default 60MiB, 100 rounds)"
    )
    PARAMS = (
        Param("size", parse_pages, SELFTEST_PAGES, unit="pages"),
        Param("rounds", parse_count, SELFTEST_ROUNDS),
        Param("chunk", parse_pages, 16, unit="pages"),
        Param("frees", parse_count, None),
        Param("rng", _parse_rng, "numpy"),
        Param("small", _parse_yes_no, False),
    )
    USES_WRITE_RATIO = False  # the test memsets every chunk it frees

    def _check(self) -> None:
        npages, chunk = self.params["size"], self.params["chunk"]
        if npages % chunk:
            raise ConfigError(
                f"workload {self.spec!r}: SIZE must be a multiple of the chunk ({chunk} pages)"
            )
        if self.params["frees"] is None:
            share, whole = SELFTEST_FREE_SHARE
            self.params["frees"] = max(1, round(npages // chunk * share / whole))

    @property
    def nchunks(self) -> int:
        return self.params["size"] // self.params["chunk"]

    @property
    def small_page(self) -> int:
        """First page of the ``-s`` region: past the main one, not adjacent."""
        per_pmd = 512
        end = BASE_PAGE + self.params["size"]
        return (end + per_pmd - 1) // per_pmd * per_pmd + per_pmd

    def total_events(self) -> int:
        rounds = self.params["rounds"]
        events = 2 + rounds * (2 * self.params["frees"] + 1)
        if self.params["small"]:
            events += 2 + rounds * (2 * SMALL_FREES + 1)
        return events

    def _picks(self, rng: np.random.Generator) -> np.ndarray:
        """Chunk indexes for every round, as the test's ``rand() % chunks``."""
        count = self.params["rounds"] * self.params["frees"]
        if self.params["rng"] == "glibc":
            return glibc_rand(self.seed, count) % self.nchunks
        return rng.integers(0, self.nchunks, count)

    def _generate(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        npages, chunk, frees = self.params["size"], self.params["chunk"], self.params["frees"]
        small = self.params["small"]
        yield one_event(MAIN_PID, OP_MAP, BASE_PAGE, npages)
        yield one_event(MAIN_PID, OP_HUGEPAGE, BASE_PAGE, npages)
        if small:
            yield one_event(MAIN_PID, OP_MAP, self.small_page, SMALL_PAGES)
            yield one_event(MAIN_PID, OP_NOHUGEPAGE, self.small_page, SMALL_PAGES)
        picks = self._picks(rng).reshape(self.params["rounds"], frees)
        for round_picks in picks:
            ev = make_events(2 * frees + 1)
            ev["pid"] = MAIN_PID
            ev["npages"] = chunk
            pages = BASE_PAGE + round_picks.astype(np.uint64) * np.uint64(chunk)
            ev["page"][0:-1:2] = pages
            ev["page"][1:-1:2] = pages
            ev["op"][0:-1:2] = OP_FREE
            ev["op"][1:-1:2] = OP_WRITE
            ev[-1] = (MAIN_PID, OP_PAGEOUT, npages, BASE_PAGE)
            yield ev
            if small:
                yield self._small_round(rng)

    def _small_round(self, rng: np.random.Generator) -> np.ndarray:
        """The ``-s`` part of a round: 4 KiB frees and rewrites, then pageout."""
        ev = make_events(2 * SMALL_FREES + 1)
        ev["pid"] = MAIN_PID
        ev["npages"] = 1
        pages = self.small_page + rng.integers(0, SMALL_PAGES, SMALL_FREES).astype(np.uint64)
        ev["page"][0:-1:2] = pages
        ev["page"][1:-1:2] = pages
        ev["op"][0:-1:2] = OP_FREE
        ev["op"][1:-1:2] = OP_WRITE
        ev[-1] = (MAIN_PID, OP_PAGEOUT, SMALL_PAGES, self.small_page)
        return ev
