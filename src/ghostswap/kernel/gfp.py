"""GFP flags and allocation-failure injection (include/linux/gfp_types.h,
mm/fail_page_alloc.c, mm/failslab.c).

Only allocations that cannot block may fail here by default: a
``GFP_KERNEL`` allocation of a few bytes does not fail in practice, while
``GFP_ATOMIC`` ones do under pressure. A :class:`FailureInjection` decides,
per call site and from its own seed, which atomic allocations fail, so a run
with the same seed and the same schedule fails at the same places.
"""

from __future__ import annotations

import random
from collections import Counter
from enum import IntFlag

from ghostswap.kernel import runtime as _rt

__all__ = [
    "GFP_ATOMIC",
    "GFP_KERNEL",
    "GFP_NOIO",
    "GFP_NOWAIT",
    "FailureInjection",
    "Gfp",
    "gfpflags_allow_blocking",
    "injection",
    "might_alloc",
    "set_injection",
    "should_fail_alloc",
]


class Gfp(IntFlag):
    """The subset of ``__GFP_*`` bits the swap code passes around."""

    HIGH = 0x20
    IO = 0x40
    FS = 0x80
    ZERO = 0x100
    DIRECT_RECLAIM = 0x400
    KSWAPD_RECLAIM = 0x800
    NOWARN = 0x2000
    NOMEMALLOC = 0x10000


GFP_ATOMIC = Gfp.HIGH | Gfp.KSWAPD_RECLAIM
GFP_NOWAIT = Gfp.KSWAPD_RECLAIM | Gfp.NOWARN
GFP_NOIO = Gfp.DIRECT_RECLAIM | Gfp.KSWAPD_RECLAIM
GFP_KERNEL = GFP_NOIO | Gfp.IO | Gfp.FS


def gfpflags_allow_blocking(gfp: int) -> bool:
    return bool(gfp & Gfp.DIRECT_RECLAIM)


class FailureInjection:
    """Decides which allocations fail.

    `probability` applies to every site not listed in `sites`; a site listed
    with 1.0 always fails. Blocking allocations fail only when
    `fail_blocking` is set.
    """

    def __init__(
        self,
        seed: int = 0,
        probability: float = 0.0,
        sites: dict[str, float] | None = None,
        fail_blocking: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.probability = probability
        self.sites = dict(sites or {})
        self.fail_blocking = fail_blocking
        self.failed: Counter[str] = Counter()

    def should_fail(self, site: str, gfp: int) -> bool:
        if gfpflags_allow_blocking(gfp) and not self.fail_blocking:
            return False
        p = self.sites.get(site, self.probability)
        if p <= 0.0:
            return False
        if p >= 1.0 or self.rng.random() < p:
            self.failed[site] += 1
            return True
        return False


injection: FailureInjection | None = None


def set_injection(inj: FailureInjection | None) -> None:
    global injection
    injection = inj


def might_alloc(gfp: int, site: str) -> None:
    """Checked mode: a blocking allocation in atomic context is a bug."""
    c = _rt.checked
    if c is not None and gfpflags_allow_blocking(gfp):
        c.might_sleep(f"{site} allocation with a blocking GFP mask")


def should_fail_alloc(site: str, gfp: int) -> bool:
    inj = injection
    return inj is not None and inj.should_fail(site, gfp)
