"""Run a workload on this host's kernel and collect its swap counters.

Sets up exactly what a :class:`HostSetup` asks for — a swap file or a zram
device, a memory cgroup with the RAM limit, the mTHP sizes, optionally
zswap — runs the replayer inside the cgroup, and returns counter deltas.
Everything set up is undone on the way out, including on Ctrl-C, and only
the replayer process this module started is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ghostswap.calibrate import counters
from ghostswap.calibrate.host import (
    HostError,
    Knobs,
    MemCgroup,
    active_swaps,
    read_knob,
    require_root,
    swap_file,
    zram_swap,
)
from ghostswap.interrupt import interrupt_as_keyboard
from ghostswap.mm.zswap import COMPRESSORS

__all__ = [
    "ZSWAP_PARAMS",
    "HostResult",
    "HostSetup",
    "run_on_host",
    "swap_dir_rotational",
    "zswap_ever_enabled",
]

THP = Path("/sys/kernel/mm/transparent_hugepage")
ZSWAP_PARAMS = Path("/sys/module/zswap/parameters")
DEBUGFS = Path("/sys/kernel/debug")


@dataclass
class HostSetup:
    """What the host run needs; sizes in bytes."""

    ram_bytes: int
    swap_kind: str  # "file" or "zram"
    swap_bytes: int
    zram_algorithm: str = "lz4"
    swap_dir: str = "/var/tmp"
    mthp: dict[str, str] = field(default_factory=dict)  # "64kB" -> "always"
    zswap: str | None = None  # compressor, or None for zswap off
    zswap_max_pool_percent: int | None = None  # None: leave the host's setting


@dataclass
class HostResult:
    vmstat: dict[str, int]
    mthp: dict[str, dict[str, int]]
    zswap: dict[str, int] | None
    memcg: dict[str, int]
    peak_swap_pages: int
    replayer: dict[str, float]
    notes: list[str]
    device_rotational: bool
    # zswap was enabled at some point since boot (before or during this run):
    # a kernel up to v6.18 then swaps in no large folios.
    large_swapin_off: bool = False
    peak_zswap_pool_bytes: int = 0  # sampled, with the peak of swap use
    peak_zswap_stored_pages: int = 0


def zswap_ever_enabled() -> bool:
    """Has zswap been enabled since boot? Then large-folio swap-in is off
    until the next boot. zswap creates its debugfs directory on the first
    write of its ``enabled`` parameter, so that directory is the witness."""
    if (ZSWAP_PARAMS / "enabled").is_file() and read_knob(ZSWAP_PARAMS / "enabled") == "Y":
        return True
    with debugfs_mounted():
        return (DEBUGFS / "zswap").is_dir()


@contextlib.contextmanager
def debugfs_mounted() -> Iterator[None]:
    """debugfs mounted for the duration (zswap's statistics live there);
    unmounted again only if this mounted it."""
    if not DEBUGFS.is_dir() or os.path.ismount(DEBUGFS):
        yield
        return
    subprocess.run(
        ["mount", "-t", "debugfs", "none", str(DEBUGFS)], check=False, capture_output=True
    )
    try:
        yield
    finally:
        if os.path.ismount(DEBUGFS):
            subprocess.run(["umount", str(DEBUGFS)], check=False, capture_output=True)


def swap_dir_rotational(directory: str) -> bool:
    """Is the block device under `directory` rotational (the kernel's SSD test)?"""
    dev = os.stat(directory).st_dev
    sysfs = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    for candidate in (sysfs / "queue" / "rotational", sysfs / ".." / "queue" / "rotational"):
        if candidate.exists():
            return candidate.read_text().strip() == "1"
    return False


def preflight(setup: HostSetup) -> list[str]:
    """Refuse clearly what cannot work; return notes about the host state."""
    require_root()
    notes = []
    swaps = active_swaps()
    if swaps:
        raise HostError(
            "other swap devices are active (" + ", ".join(swaps) + "); calibration needs them "
            "off so that only its own device takes pages"
        )
    if setup.swap_kind not in ("file", "zram"):
        raise HostError(f"calibrate supports file and zram swap, not {setup.swap_kind!r}")
    for size in setup.mthp:
        if not (THP / f"hugepages-{size}" / "enabled").is_file():
            raise HostError(f"this kernel has no anonymous mTHP size {size}")
    if zswap_ever_enabled():
        notes.append(
            "zswap has been enabled since boot: a kernel up to v6.18 swaps in no large "
            "folios until a reboot (the model is set up to do the same)"
        )
    if setup.zswap and not (ZSWAP_PARAMS / "enabled").is_file():
        raise HostError("this kernel has no zswap")
    if setup.zswap and not crypto_may_have(setup.zswap):
        # Refused before zswap is enabled: enabling it costs large-folio
        # swap-in for the rest of the boot.
        raise HostError(
            f"this kernel's crypto API has no {setup.zswap} for zswap "
            f"(it has {', '.join(sorted(crypto_algorithms() & set(COMPRESSORS)))}); "
            "choose another --zswap-compressor"
        )
    return notes


def crypto_algorithms() -> set[str]:
    """The algorithm names /proc/crypto lists (loaded ones only)."""
    try:
        text = Path("/proc/crypto").read_text()
    except OSError:
        return set()
    return {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("name")}


def crypto_may_have(name: str) -> bool:
    """Could zswap get compressor `name`? Listed in /proc/crypto, or this
    kernel has a modules directory to load it from."""
    if name in crypto_algorithms():
        return True
    return Path("/lib/modules", os.uname().release).is_dir()


def run_on_host(setup: HostSetup, replayer: Path, events: Path) -> HostResult:
    notes = preflight(setup)
    sizes = counters.mthp_sizes()
    with contextlib.ExitStack() as stack, interrupt_as_keyboard():
        knobs = stack.enter_context(Knobs())
        for size in sizes:
            enabled = THP / f"hugepages-{size}" / "enabled"
            if enabled.is_file():
                knobs.set(enabled, setup.mthp.get(size, "never"))
        if setup.zswap:
            knobs.set(ZSWAP_PARAMS / "compressor", setup.zswap)
            if setup.zswap_max_pool_percent is not None:
                knobs.set(ZSWAP_PARAMS / "max_pool_percent", str(setup.zswap_max_pool_percent))
            knobs.set(ZSWAP_PARAMS / "enabled", "Y")
            actual = read_knob(ZSWAP_PARAMS / "compressor")
            if actual != setup.zswap:  # zswap falls back to its default silently
                raise HostError(f"zswap could not use {setup.zswap} and fell back to {actual}")
            notes.append(
                "zswap was enabled for this run: large-folio swap-in stays off until reboot"
            )
        if setup.swap_kind == "file":
            stack.enter_context(swap_file(setup.swap_dir, setup.swap_bytes))
            rotational = swap_dir_rotational(setup.swap_dir)
        else:
            stack.enter_context(zram_swap(setup.swap_bytes, setup.zram_algorithm))
            rotational = False
        if setup.zswap:
            stack.enter_context(debugfs_mounted())
        cgroup = stack.enter_context(MemCgroup(setup.ram_bytes))
        before_vm = counters.read_vmstat()
        before_mthp = counters.read_mthp_stats(sizes)
        before_zswap = counters.read_zswap()
        with counters.SwapSampler() as sampler:
            output = _run_replayer(cgroup, replayer, events)
        after_vm = counters.read_vmstat()
        after_mthp = counters.read_mthp_stats(sizes)
        after_zswap = counters.read_zswap()
        memcg = cgroup.stat()
    zswap_delta = (
        counters.delta(before_zswap, after_zswap)
        if before_zswap is not None and after_zswap is not None
        else None
    )
    return HostResult(
        vmstat=counters.delta(before_vm, after_vm),
        mthp={size: counters.delta(before_mthp[size], after_mthp[size]) for size in after_mthp},
        zswap=zswap_delta,
        memcg=memcg,
        peak_swap_pages=sampler.peak_kib // 4,
        peak_zswap_pool_bytes=sampler.peak_zswap_pool_bytes,
        peak_zswap_stored_pages=sampler.peak_zswap_stored_pages,
        replayer=output,
        notes=notes,
        device_rotational=rotational,
        large_swapin_off=zswap_ever_enabled(),
    )


def _describe_oom(stat: dict[str, int]) -> str:
    """What the cgroup still holds once the victim's own memory is gone
    (swap cache, LRU lists, writeback; v1 ``memory.stat`` names), in MiB;
    empty when that is nothing."""
    parts = [
        f"{name} {stat[name] >> 20} MiB"
        for name in ("swapcached", "active_anon", "inactive_anon", "writeback")
        if stat.get(name, 0) >> 20
    ]
    return "; after the kill it still held " + ", ".join(parts) if parts else ""


def _run_replayer(cgroup: MemCgroup, replayer: Path, events: Path) -> dict[str, float]:
    """Start the replayer inside `cgroup` (the shell joins it, then execs)."""
    script = 'echo $$ > "$1" && exec "$2" "$3"'
    proc = subprocess.Popen(
        ["sh", "-c", script, "sh", str(cgroup.path / "cgroup.procs"), str(replayer), str(events)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        proc.kill()  # our own child, by its pid
        proc.wait()
        raise
    if proc.returncode == -9:
        raise HostError(
            "the workload was OOM-killed in its memory cgroup (limit too small?)"
            + _describe_oom(cgroup.stat())
        )
    if proc.returncode not in (0, 3):
        raise HostError(f"the replayer failed ({proc.returncode}): {stderr.strip()[:300]}")
    result = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        result[key] = float(value)
    return result
