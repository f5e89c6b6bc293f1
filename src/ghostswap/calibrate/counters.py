"""Reading the host kernel's swap counters, under their own names.

``/proc/vmstat`` events, the per-size mTHP stats in
``/sys/kernel/mm/transparent_hugepage/hugepages-*/stats/``, zswap's debugfs
counters when they exist, and a sampler of ``/proc/swaps`` for peak use.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ghostswap.calibrate.host import swap_used_kib

__all__ = ["SwapSampler", "delta", "mthp_sizes", "read_mthp_stats", "read_vmstat", "read_zswap"]

THP = Path("/sys/kernel/mm/transparent_hugepage")
ZSWAP_DEBUGFS = Path("/sys/kernel/debug/zswap")

VMSTAT_KEYS = (
    "pswpin",
    "pswpout",
    "pgmajfault",
    "pgfault",
    "swap_ra",
    "swap_ra_hit",
    "swpin_zero",
    "swpout_zero",
    "thp_swpout",
    "thp_swpout_fallback",
    "zswpin",
    "zswpout",
    "zswpwb",
    "pgscan_anon",
    "pgsteal_anon",
    "workingset_refault_anon",
    "workingset_activate_anon",
    "workingset_restore_anon",
    "oom_kill",
)


def read_vmstat() -> dict[str, int]:
    values = {}
    for line in Path("/proc/vmstat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key in VMSTAT_KEYS:
            values[key] = int(value)
    return values


def mthp_sizes() -> list[str]:
    """Sizes the kernel lists, e.g. ``["16kB", ..., "2048kB"]``, smallest first."""
    sizes = [p.name.removeprefix("hugepages-") for p in THP.glob("hugepages-*kB")]
    return sorted(sizes, key=lambda s: int(s[:-2]))


def read_mthp_stats(sizes: list[str]) -> dict[str, dict[str, int]]:
    out = {}
    for size in sizes:
        stats = THP / f"hugepages-{size}" / "stats"
        if stats.is_dir():
            out[size] = {f.name: int(f.read_text()) for f in sorted(stats.iterdir())}
    return out


def read_zswap() -> dict[str, int] | None:
    """zswap's debugfs counters, or None when the kernel has not created them
    (debugfs unmounted, or zswap never enabled since boot)."""
    if not ZSWAP_DEBUGFS.is_dir():
        return None
    out = {}
    for f in sorted(ZSWAP_DEBUGFS.iterdir()):
        value = _read_int(f)
        if value is not None:
            out[f.name] = value
    return out


def _read_int(path: Path) -> int | None:
    """The number a sysfs or debugfs file holds, or None if unreadable."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before.get(key, 0) for key in after}


class SwapSampler:
    """Samples total swap use every `interval` seconds; `peak_kib` is the
    max. With zswap's debugfs present, also the peak of its pool
    (`peak_zswap_pool_bytes`) and of the pages stored in it."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_kib = 0
        self.peak_zswap_pool_bytes = 0
        self.peak_zswap_stored_pages = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.peak_kib = max(self.peak_kib, swap_used_kib())
        if ZSWAP_DEBUGFS.is_dir():
            pool = _read_int(ZSWAP_DEBUGFS / "pool_total_size") or 0
            stored = _read_int(ZSWAP_DEBUGFS / "stored_pages") or 0
            self.peak_zswap_pool_bytes = max(self.peak_zswap_pool_bytes, pool)
            self.peak_zswap_stored_pages = max(self.peak_zswap_stored_pages, stored)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> SwapSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
