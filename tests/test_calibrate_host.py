"""The host side of calibration: replayer, swap devices, cgroup, knobs.

Tests marked root create and remove real swap devices and cgroups; each
checks that nothing is left behind.
"""

from __future__ import annotations

import os
import statistics
import subprocess
from pathlib import Path

import lz4.block
import numpy as np
import pytest

from ghostswap.calibrate import host
from ghostswap.calibrate.host import HostError, Knobs, MemCgroup, swap_file, swap_header, zram_swap
from ghostswap.calibrate.replayer import build_replayer, write_replay_file
from ghostswap.mm.content import expand, fill_kind, make_token
from ghostswap.workload.events import (
    OP_FORK,
    OP_FREE,
    OP_MAP,
    OP_PAGEOUT,
    OP_READ,
    OP_WRITE,
    make_events,
)

ROOT = os.geteuid() == 0


def events(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    ev = make_events(len(rows))
    for i, row in enumerate(rows):
        ev[i] = row
    return ev


def run_replayer(
    tmp_path: Path, rows: list[tuple[int, int, int, int]], fill: str
) -> dict[str, str]:
    path = tmp_path / "ev.bin"
    assert write_replay_file(path, [events(rows)], fill) == len(rows)
    out = subprocess.run([str(build_replayer()), str(path)], capture_output=True, text=True)
    result = dict(line.split() for line in out.stdout.splitlines())
    result["rc"] = str(out.returncode)
    return result


@pytest.mark.parametrize("fill", ["zero", "random", "half", "text"])
def test_replayer_keeps_and_verifies_contents(tmp_path: Path, fill: str) -> None:
    rows = [
        (1, OP_MAP, 1024, 4096),
        (1, OP_WRITE, 1024, 4096),
        (1, OP_READ, 1024, 4096),
        (1, OP_FREE, 10, 4100),  # MADV_DONTNEED: these read back as zero
        (1, OP_PAGEOUT, 1024, 4096),
        (1, OP_READ, 1024, 4096),
        (1, OP_WRITE, 5, 9000),  # outside the mapping: an implicit region
        (1, OP_READ, 5, 9000),
    ]
    result = run_replayer(tmp_path, rows, fill)
    assert result == {"events": "8", "mismatches": "0", "seconds": result["seconds"], "rc": "0"}


@pytest.mark.parametrize("fill", ["random", "half", "text"])
def test_replayer_pages_compress_like_the_models(tmp_path: Path, fill: str) -> None:
    # zswap and zram on the host see the replayer's pages, zswap in the
    # model the model's: their lz4 sizes must agree.
    rows = [(1, OP_MAP, 0, 256), (1, OP_WRITE, 256, 0)]
    path, pages = tmp_path / "ev.bin", tmp_path / "pages.bin"
    write_replay_file(path, [events(rows)], fill)
    out = subprocess.run([str(build_replayer()), str(path), str(pages)], capture_output=True)
    assert out.returncode == 0, out.stderr
    data = pages.read_bytes()[: 256 * 4096]  # a region is mapped in 2 MiB steps
    host = [len(lz4.block.compress(data[i : i + 4096])) for i in range(0, len(data), 4096)]
    kind = fill_kind(fill)
    model = [len(lz4.block.compress(expand(make_token(kind, s)))) for s in range(1, 257)]
    assert len(host) == 256
    assert abs(statistics.mean(host) / statistics.mean(model) - 1) < 0.05, (host[:4], model[:4])


def test_replay_file_refuses_forking_workloads(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="one process"):
        write_replay_file(tmp_path / "x", [events([(1, OP_FORK, 0, 2)])], "text")
    with pytest.raises(HostError, match="one process"):
        write_replay_file(
            tmp_path / "x", [events([(1, OP_READ, 1, 1), (2, OP_READ, 1, 1)])], "text"
        )


def test_swap_header_is_what_mkswap_writes() -> None:
    header = swap_header(1 << 20)
    assert len(header) == 4096 and header[-10:] == b"SWAPSPACE2"
    assert int.from_bytes(header[1024:1028], "little") == 1  # version
    assert int.from_bytes(header[1028:1032], "little") == 255  # last_page


def test_refuses_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    with pytest.raises(HostError, match="needs root"):
        host.require_root()


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root")
def test_swap_file_is_removed_even_on_error(tmp_path: Path) -> None:
    directory = Path("/var/tmp")
    with pytest.raises(RuntimeError), swap_file(directory, 64 << 20) as name:
        assert name in host.active_swaps()
        raise RuntimeError("boom")
    assert name not in host.active_swaps() and not os.path.exists(name)


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root")
def test_zram_swap_is_reset_and_removed() -> None:
    before = sorted(os.listdir("/sys/block"))
    with zram_swap(32 << 20, "lz4") as device:
        assert device in host.active_swaps()
    assert device not in host.active_swaps()
    assert sorted(os.listdir("/sys/block")) == before


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root")
def test_memcg_and_knobs_are_restored() -> None:
    knob = Path("/proc/sys/vm/page-cluster")
    original = knob.read_text().strip()
    with Knobs() as knobs, MemCgroup(64 << 20) as cg:
        knobs.set(knob, "0")
        assert knob.read_text().strip() == "0"
        assert cg.read_int("memory.limit_in_bytes") == 64 << 20
        path = cg.path
    assert knob.read_text().strip() == original
    assert not path.exists()
