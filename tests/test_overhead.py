"""Kernel-equivalent accounting and the `ghostswap overhead` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghostswap.cli.main import main
from ghostswap.measure import sizes
from ghostswap.measure.overhead import device_overhead
from ghostswap.measure.populate import populate_swap
from ghostswap.mm.invariants import check_subsystem
from ghostswap.mm.swap import SWAPFILE_CLUSTER, SwapSubsystem
from ghostswap.mm.swapon import swapon

RAM = 1 << 16  # 256 MiB


@given(st.integers(min_value=1, max_value=sizes.KMALLOC_MAX_CACHE_SIZE))
def test_kmalloc_rounds_up_to_the_smallest_generic_cache(size: int) -> None:
    bucket = sizes.kmalloc_size(size)
    assert bucket in sizes.KMALLOC_SIZES and bucket >= size
    smaller = [b for b in sizes.KMALLOC_SIZES if b < bucket]
    assert not smaller or smaller[-1] < size  # no smaller cache would hold it


@pytest.mark.parametrize(
    ("size", "bucket"),
    [(72, 96), (96, 96), (97, 128), (193, 256), (1025, 2048), (8192, 8192)],
)
def test_kmalloc_cache_boundaries(size: int, bucket: int) -> None:
    assert sizes.kmalloc_size(size) == bucket


@given(st.integers(min_value=sizes.KMALLOC_MAX_CACHE_SIZE + 1, max_value=sizes.PAGE_SIZE << 10))
def test_a_large_kmalloc_takes_a_power_of_two_of_pages(size: int) -> None:
    # kmalloc_large(): the page allocator, order rounded up.
    n = sizes.kmalloc_size(size)
    pages = n // sizes.PAGE_SIZE
    assert n % sizes.PAGE_SIZE == 0 and pages & (pages - 1) == 0
    assert n >= size > n // 2


@given(st.integers(min_value=(sizes.PAGE_SIZE << 10) + 1, max_value=1 << 34))
def test_a_kvmalloc_beyond_order_10_is_vmalloc_whole_pages(size: int) -> None:
    n = sizes.kvmalloc_size(size)
    assert n % sizes.PAGE_SIZE == 0 and n - sizes.PAGE_SIZE < size <= n


def test_an_unused_ghost_device_costs_only_its_fixed_parts() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "ghost")
    parts = device_overhead(si).components
    assert parts["cluster_info_dynamic"] == sizes.SWAP_CLUSTER_INFO_DYNAMIC  # cluster 0
    assert parts["swap_tables"] == sizes.SWAP_TABLE
    assert parts["cluster_pool_xa_nodes"] == 0
    assert "cluster_info" not in parts
    # zswap's trees scale with the (virtual) size: one xarray per 64 MiB.
    assert parts["zswap_trees"] == sizes.kvmalloc_size(8 * RAM // (1 << 14) * 16)


def test_a_static_device_pays_for_every_cluster_up_front() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "file", 32 * SWAPFILE_CLUSTER)
    parts = device_overhead(si).components
    assert parts["cluster_info"] == sizes.kvmalloc_size(32 * sizes.SWAP_CLUSTER_INFO)
    assert parts["swap_tables"] == sizes.SWAP_TABLE  # only cluster 0 (header)


def test_dynamic_parts_follow_the_clusters_in_use() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "ghost")
    result = populate_swap(subsys, 10 * SWAPFILE_CLUSTER)
    assert result.swapped_pages == 10 * SWAPFILE_CLUSTER and not result.full
    check_subsystem(subsys)
    d = device_overhead(si)
    assert d.used_pages == 10 * SWAPFILE_CLUSTER
    clusters = 11  # ten full ones plus cluster 0
    assert d.components["swap_tables"] == clusters * sizes.SWAP_TABLE
    assert d.components["memcg_tables"] == clusters * sizes.MEMCG_TABLE
    assert d.components["cluster_info_dynamic"] == clusters * sizes.SWAP_CLUSTER_INFO_DYNAMIC
    assert d.components["cluster_pool_xa_nodes"] == sizes.XA_NODE  # indices 0..10: one node
    per_slot = d.bytes_per_used_slot
    assert per_slot is not None and 10 < per_slot < 20


def test_random_frees_keep_clusters_alive() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "ghost")
    populate_swap(subsys, 20 * SWAPFILE_CLUSTER, free_fraction=0.5, seed=3)
    check_subsystem(subsys)
    d = device_overhead(si)
    assert d.used_pages == 10 * SWAPFILE_CLUSTER
    # Half the slots are gone but nearly every cluster keeps its table.
    assert d.components["swap_tables"] >= 19 * sizes.SWAP_TABLE
    per_slot = d.bytes_per_used_slot
    assert per_slot is not None and per_slot > 20


def test_large_folios_fall_back_on_a_swap_file() -> None:
    subsys = SwapSubsystem(RAM)
    swapon(subsys, "file", 64 * SWAPFILE_CLUSTER)
    result = populate_swap(subsys, 16 * 64, order=4)
    assert result.fallback_folios == 64 and result.swapped_pages == 1024
    assert subsys.mthp.orders[4]["swpout_fallback"] == 64


def test_overhead_command_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.json"
    rc = main(
        [
            "overhead",
            "--ram", "256MiB",
            "--swap", "ghost:8x",
            "--swap", "file:256MiB",
            "--used", "25%",
            "--free-fraction", "0.2",
            "--json", str(out),
            "--quiet",
        ]
    )  # fmt: skip
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["total_bytes"] == sum(d["total_bytes"] for d in data["devices"])
    names = [(d["name"], d["kind"]) for d in data["devices"]]
    assert names == [("/dev/ghostswap", "ghost"), ("file1", "file")]
    for d in data["devices"]:
        assert set(d) >= {"name", "kind", "size_pages", "used_pages", "components", "total_bytes"}
        assert d["total_bytes"] == sum(d["components"].values())
    used = sum(d["used_pages"] for d in data["devices"])
    assert used == data["swapped_pages"] - data["freed_pages"]
    assert capsys.readouterr().out == ""


def test_overhead_command_prints_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overhead", "--ram", "64MiB", "--swap", "ghost", "--used", "4MiB"]) == 0
    out = capsys.readouterr().out
    assert "/dev/ghostswap (ghost, 512.0 MiB, 1,024 slots used" in out
    assert "swap_tables" in out and "bytes per used slot" in out


def test_overhead_warns_when_si_max_overflows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overhead", "--ram", "2TiB", "--swap", "ghost"]) == 0
    out = capsys.readouterr().out
    assert "do not fit the 32-bit si->max" in out and "8x RAM" in out


def test_overhead_names_the_swap_header_for_an_oversized_file() -> None:
    # The cause for a static device is the header, not the ghost's 8x RAM.
    # (A real 16 TiB device builds 8M clusters; the header rule is what matters.)
    from ghostswap.cli import overhead
    from ghostswap.mm.swap import SwapSubsystem
    from ghostswap.mm.swapon import swapon

    subsys = SwapSubsystem(1 << 20)
    si = swapon(subsys, "file", 4096)
    si.max = 4095  # as read_swap_header leaves a device one page too big
    spec = overhead.parse_swap_spec("file:16MiB")
    (warning,) = overhead._warnings(subsys, [spec])
    assert "swap header" in warning and "4,095 of the 4,096 pages" in warning
    assert "8x RAM" not in warning


@pytest.mark.slow
def test_a_16_tib_swap_file_is_clamped_and_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["overhead", "--ram", "1GiB", "--swap", "file:16TiB", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["devices"][0]["size_pages"] == (1 << 32) - 1
    (warning,) = data["warnings"]
    assert "4,294,967,295 of the 4,294,967,296 pages" in warning


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ram", "lots"], "is not a size"),
        (["--swap", "tape:1G"], "unknown kind"),
        (["--used", "200%"], "outside 0..100%"),
        (["--order", "12"], "--order must be in 0..9"),
        (["--swap", "file:1GiB", "--used", "2GiB"], "more than the"),
        (["--swap", "ghost:1x", "--swap", "ghost:1x", "--ram", "3KiB"], "multiple of the 4 KiB"),
    ],
)
def test_overhead_errors_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["overhead", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unknown_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["overhead", "--bogus"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
