"""One calibration: the same workload on the host kernel and on the model.

The workload's events are generated once, from the same registry, seed and
write ratio that ``ghostswap run`` uses; the host replays them with the C
replayer inside a memory cgroup, the model replays them on a machine built
to match the host: the same RAM limit, a swap device of the same kind and
class (a swap file on a rotational disk is a rotational device to both),
the same mTHP sizes, readahead settings and swappiness.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostswap.calibrate.compare import Row, compare
from ghostswap.calibrate.host import read_knob
from ghostswap.calibrate.hostrun import (
    ZSWAP_PARAMS,
    HostResult,
    HostSetup,
    run_on_host,
    swap_dir_rotational,
    zswap_ever_enabled,
)
from ghostswap.calibrate.replayer import build_replayer, write_replay_file
from ghostswap.config import parse_swap_spec
from ghostswap.errors import ConfigError
from ghostswap.mm.machine import MachineConfig, parse_mthp
from ghostswap.runconfig import RunConfig
from ghostswap.units import PAGE_SIZE
from ghostswap.workload.events import Workload
from ghostswap.workload.registry import make_workload
from ghostswap.workload.transform import MadviseMapped

__all__ = ["Calibration", "CalibrationResult", "run_calibration"]

THP = Path("/sys/kernel/mm/transparent_hugepage")


@dataclass
class Calibration:
    """What to calibrate; sizes in bytes."""

    workload: str
    ram_bytes: int
    swap_kind: str
    swap_bytes: int
    seed: int = 1
    write_ratio: float = 0.3
    fill: str = "text"
    mthp: dict[str, str] = field(default_factory=dict)
    zswap: str | None = None
    zswap_max_pool_percent: int | None = None  # None: the host's setting
    zram_algorithm: str = "lz4"
    swap_dir: str = "/var/tmp"
    madv_hugepage: bool = False


@dataclass
class CalibrationResult:
    config: dict[str, Any]
    host: HostResult | None
    model: dict[str, Any]
    rows: list[Row]
    notes: list[str]

    def as_json(self) -> dict[str, Any]:
        host = None
        if self.host is not None:
            host = {
                "vmstat": self.host.vmstat,
                "mthp": self.host.mthp,
                "zswap": self.host.zswap,
                "memcg": self.host.memcg,
                "peak_swap_pages": self.host.peak_swap_pages,
                "replayer": self.host.replayer,
            }
        return {
            "config": self.config,
            "host": host,
            "model": {
                "vmstat": self.model["vmstat"],
                "mthp": self.model["mthp"],
                "swaps": self.model["swaps"],
                "integrity": self.model["integrity"],
                "timing": self.model["timing"],
            },
            "compare": {row.name: row.as_dict() for row in self.rows},
            "notes": self.notes,
        }


def _host_int(path: str, default: int) -> int:
    try:
        return int(read_knob(path))
    except (OSError, ValueError):
        return default


def model_config(cal: Calibration, rotational: bool, zswap_was_enabled: bool = False) -> RunConfig:
    """The model machine that matches what the host run sets up;
    `zswap_was_enabled`: zswap has been enabled on the host since boot."""
    old_kernel = _up_to_v6_18(os.uname().release)
    swap_text = f"{cal.swap_kind}:{cal.swap_bytes}" + (":rotational" if rotational else "")
    thp_top = read_knob(THP / "enabled") if (THP / "enabled").is_file() else "madvise"
    machine = MachineConfig(
        ram_pages=cal.ram_bytes // PAGE_SIZE,
        swap=[parse_swap_spec(swap_text)],
        mthp=parse_mthp([f"{size}:{mode}" for size, mode in cal.mthp.items()]),
        thp_enabled=thp_top,
        zswap=cal.zswap is not None,
        zswap_compressor=cal.zswap or "zstd",
        # zswap's pool limit is a share of the whole host's RAM, not of the
        # cgroup's; the shrinker and threshold are the host's settings.
        totalram_pages=_meminfo_pages("MemTotal"),
        memcg_v1=True,  # calibrate's host cgroup (hostrun.MemCgroup) is v1
        zswap_max_pool_percent=cal.zswap_max_pool_percent
        or _host_int(f"{ZSWAP_PARAMS}/max_pool_percent", 20),
        zswap_accept_threshold_percent=_host_int(f"{ZSWAP_PARAMS}/accept_threshold_percent", 90),
        zswap_shrinker=_host_knob_bool(f"{ZSWAP_PARAMS}/shrinker_enabled", True),
        # v6.18 walks one entry per shrink_memcg(), the seed's tree 32 ...
        zswap_shrink_walk=1 if old_kernel else 32,
        # ... and stops large swap-in for good once zswap was enabled.
        zswap_was_enabled=zswap_was_enabled and old_kernel,
        swappiness=_host_int("/proc/sys/vm/swappiness", 60),
        page_cluster=_host_int("/proc/sys/vm/page-cluster", 3),
        vma_ra_enabled=_host_knob_bool("/sys/kernel/mm/swap/vma_ra_enabled", True),
        fill=cal.fill,
        nr_cpus=os.cpu_count() or 2,
    )
    return RunConfig(
        machine=machine,
        workload=cal.workload,
        seed=cal.seed,
        write_ratio=cal.write_ratio,
        swap_texts=[swap_text],
    )


def _up_to_v6_18(release: str) -> bool:
    """Is the kernel `release` v6.18 or older (before the linux-mm tree's
    zswap changes the seed builds on)?"""
    try:
        major, minor = (int(part) for part in release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) <= (6, 18)


def _meminfo_pages(field_name: str) -> int:
    """A /proc/meminfo figure in pages (0 when it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name == field_name:
                    return int(rest.split()[0]) * 1024 // PAGE_SIZE
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _host_knob_bool(path: str, default: bool) -> bool:
    try:
        return read_knob(path).lower() in ("true", "1", "y")
    except OSError:
        return default


def run_calibration(
    cal: Calibration, *, host: bool = True, quiet: bool = True
) -> CalibrationResult:
    """Run `cal` on the host (unless `host` is False) and on the model."""
    from ghostswap.measure.run import run as run_model

    if cal.swap_kind not in ("file", "zram"):
        raise ConfigError(f"calibrate supports file and zram swap, not {cal.swap_kind!r}")
    workload: Workload = make_workload(
        cal.workload, seed=cal.seed, write_ratio=cal.write_ratio, fill=cal.fill
    )
    if cal.madv_hugepage:
        # Both sides see the same MADV_HUGEPAGE events after every mmap.
        workload = MadviseMapped(workload)
    notes: list[str] = []
    host_result = None
    rotational = cal.swap_kind == "file" and swap_dir_rotational(cal.swap_dir)
    if host:
        setup = HostSetup(
            ram_bytes=cal.ram_bytes,
            swap_kind=cal.swap_kind,
            swap_bytes=cal.swap_bytes,
            zram_algorithm=cal.zram_algorithm,
            swap_dir=cal.swap_dir,
            mthp=dict(cal.mthp),
            zswap=cal.zswap,
            zswap_max_pool_percent=cal.zswap_max_pool_percent,
        )
        replayer = build_replayer()
        with tempfile.TemporaryDirectory(prefix="ghostswap-calibrate-") as tmp:
            events = Path(tmp) / "events.bin"
            write_replay_file(events, workload.chunks(), cal.fill)
            host_result = run_on_host(setup, replayer, events)
        notes += host_result.notes
        if host_result.replayer.get("mismatches"):
            notes.append(
                f"the host replayer saw {int(host_result.replayer['mismatches'])} "
                "pages come back wrong"
            )
        rotational = host_result.device_rotational
    was_enabled = host_result.large_swapin_off if host_result else zswap_ever_enabled()
    cfg = model_config(cal, rotational, was_enabled)
    model, _ = run_model(cfg, workload, quiet=quiet)
    rows = compare(
        host_result.vmstat if host_result else {},
        model["vmstat"],
        host_result.mthp if host_result else {},
        model["mthp"],
        host_result.peak_swap_pages if host_result else 0,
        sum(d["peak_used_pages"] for d in model["swaps"]),
    )
    model_zswap = model.get("zswap")
    if cal.zswap and model_zswap is not None:
        hr = host_result
        rows += [
            Row("zswap pool_limit_hit", (hr.zswap or {}).get("pool_limit_hit", 0) if hr else 0,
                model_zswap["pool_limit_hit"]),
            Row("peak zswap stored pages", hr.peak_zswap_stored_pages if hr else 0,
                model_zswap["peak_stored_pages"]),
            # The kernel's pool holds zsmalloc pages; the model's compressed bytes.
            Row("peak zswap pool MiB", (hr.peak_zswap_pool_bytes if hr else 0) / 2**20,
                model_zswap["peak_pool_bytes"] / 2**20),
        ]  # fmt: skip
    config = {
        "workload": cal.workload,
        "seed": cal.seed,
        "write_ratio": cal.write_ratio,
        "fill": cal.fill,
        "ram_bytes": cal.ram_bytes,
        "swap": cfg.swap_texts[0],
        "mthp": dict(cal.mthp),
        "zswap": cal.zswap,
        "zswap_max_pool_percent": cfg.machine.zswap_max_pool_percent if cal.zswap else None,
        "madv_hugepage": cal.madv_hugepage,
        "model": cfg.describe(),
    }
    return CalibrationResult(config, host_result, model, rows, notes)
