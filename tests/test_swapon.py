"""swapon/swapoff, device kinds, sizes, and the ghost device's set-up."""

from __future__ import annotations

import pytest

from ghostswap.config import parse_swap_spec, swapon_spec
from ghostswap.errors import ConfigError
from ghostswap.kernel.bug import KernelError
from ghostswap.mm import swapfile
from ghostswap.mm.folio import folio_unlock
from ghostswap.mm.invariants import check_subsystem
from ghostswap.mm.swap import (
    CLUSTER_FLAG_FREE,
    CLUSTER_FLAG_NONFULL,
    MAX_SWAPFILES,
    SWAPFILE_CLUSTER,
    SWP_BLKDEV,
    SWP_GHOST,
    SWP_SOLIDSTATE,
    SWP_SYNCHRONOUS_IO,
    SwapSubsystem,
)
from ghostswap.mm.swap_table import SWP_TB_BAD
from ghostswap.mm.swapon import ghost_maxpages, read_swap_header, swapoff, swapon
from tests.helpers import new_folio, settle

RAM = 4096  # 16 MiB of RAM


def test_static_device_layout() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "partition", 1000)
    assert si.max == 1000 and si.pages == 999
    assert si.flags & SWP_BLKDEV and si.flags & SWP_SOLIDSTATE
    assert si.cluster_info is not None and len(si.cluster_info) == 2
    first, last = si.cluster_info[0], si.cluster_info[1]
    assert first.table is not None and first.table[0] == SWP_TB_BAD
    # The tail past EOF (1000..1023) is masked bad; both clusters are nonfull.
    assert last.count == 2 * SWAPFILE_CLUSTER - 1000
    assert first.flags == last.flags == CLUSTER_FLAG_NONFULL
    assert subsys.total_swap_pages == subsys.nr_swap_pages == 999
    check_subsystem(subsys)


def test_whole_clusters_start_free_without_tables() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "file", 4 * SWAPFILE_CLUSTER)
    assert si.cluster_info is not None
    assert list(si.free_clusters) == [si.cluster_info[i] for i in (1, 2, 3)]
    assert [si.cluster_info[i].flags for i in (1, 2, 3)] == [CLUSTER_FLAG_FREE] * 3
    assert all(si.cluster_info[i].table is None for i in (1, 2, 3))
    assert not si.flags & SWP_BLKDEV


def test_zram_and_rotational_flags() -> None:
    subsys = SwapSubsystem(RAM)
    zram = swapon(subsys, "zram", 2048)
    disk = swapon(subsys, "file", 2048, rotational=True)
    assert zram.flags & SWP_SYNCHRONOUS_IO and zram.flags & SWP_BLKDEV
    assert not disk.flags & SWP_SOLIDSTATE and disk.global_cluster is not None
    assert subsys.nr_rotate_swap == 1


def test_ghost_device_is_eight_times_ram_and_mostly_absent() -> None:
    subsys = SwapSubsystem(RAM + 1)  # rounds up to whole clusters first
    si = swapon(subsys, "ghost")
    assert si.max == ghost_maxpages(RAM + 1) == 8 * (RAM + SWAPFILE_CLUSTER)
    assert si.flags & SWP_GHOST and si.flags & SWP_SOLIDSTATE
    assert not si.flags & SWP_BLKDEV
    assert si.cluster_info is None
    pool = si.cluster_info_pool
    assert pool is not None and len(pool) == 1
    ci0 = pool.items()[0][1]
    assert ci0.index == 0 and ci0.table is not None and ci0.table[0] == SWP_TB_BAD
    assert ci0.list is None  # cluster 0 sits on no list
    check_subsystem(subsys)


def test_ghost_multiple_and_explicit_size() -> None:
    subsys = SwapSubsystem(RAM)
    assert swapon(subsys, "ghost", ghost_multiple=2).max == 2 * RAM
    assert swapon(subsys, "ghost", 1000).max == 1024  # whole clusters


def test_si_max_is_32_bits_like_the_kernel() -> None:
    four_tib = (4 << 40) // 4096
    subsys = SwapSubsystem(four_tib)
    si = swapon(subsys, "ghost")
    assert si.maxpages_requested == 8 * four_tib
    assert si.max == (8 * four_tib) % (1 << 32)
    wide = SwapSubsystem(four_tib, si_max_bits=64)
    assert swapon(wide, "ghost").max == 8 * four_tib


@pytest.mark.parametrize(
    ("size", "maxpages"),
    [
        (2048, 2048),
        ((1 << 32) - 2, (1 << 32) - 2),
        ((1 << 32) - 1, (1 << 32) - 1),
        (1 << 32, (1 << 32) - 1),  # last_page + 1 wraps the unsigned int: UINT_MAX
        ((1 << 33) + 5, (1 << 32) - 1),  # mkswap truncates what a __u32 cannot hold
    ],
)
def test_a_static_device_is_sized_by_its_swap_header(size: int, maxpages: int) -> None:
    assert read_swap_header(size) == maxpages


@pytest.mark.slow
def test_a_16_tib_swap_file_gets_the_largest_si_max() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "file", 1 << 32)
    assert si.max == si.maxpages_requested == (1 << 32) - 1
    assert si.pages == (1 << 32) - 2
    check_subsystem(subsys)


def test_bad_sizes_are_refused() -> None:
    subsys = SwapSubsystem(RAM)
    with pytest.raises(ConfigError, match="2\\^50"):
        swapon(subsys, "ghost", 1 << 51)
    with pytest.raises(ConfigError, match="at least two pages"):
        swapon(subsys, "file", 1)
    with pytest.raises(ConfigError, match="needs a size"):
        swapon(subsys, "file")
    with pytest.raises(ConfigError, match="unknown device kind"):
        swapon(subsys, "floppy", 100)


def test_max_swapfiles() -> None:
    subsys = SwapSubsystem(RAM)
    for _ in range(MAX_SWAPFILES):
        swapon(subsys, "file", 16)
    with pytest.raises(ConfigError, match="MAX_SWAPFILES"):
        swapon(subsys, "file", 16)


def test_swapoff_frees_the_slot_for_reuse() -> None:
    subsys = SwapSubsystem(RAM)
    first = swapon(subsys, "file", 2048)
    swapoff(subsys, first)
    assert subsys.total_swap_pages == 0 and subsys.devices() == []
    again = swapon(subsys, "file", 2048)
    assert again.type == first.type


def test_swapoff_refuses_while_slots_are_referenced() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "file", 2048)
    folio = new_folio()
    assert swapfile.folio_alloc_swap(subsys, folio)
    assert swapfile.folio_dup_swap(subsys, folio) is None  # a page table holds it
    with pytest.raises(KernelError, match="still referenced"):
        swapoff(subsys, si)
    assert si in subsys.devices()  # re-inserted
    check_subsystem(subsys)


def test_swapoff_drops_clean_swap_cache() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "file", 2048)
    folio = new_folio()
    assert swapfile.folio_alloc_swap(subsys, folio)  # cache-only, count 0
    folio_unlock(folio)  # reclaim is done with it
    swapoff(subsys, si)
    assert not folio.swap


def test_ghost_swapoff_leaks_the_pool_as_the_seed_does() -> None:
    subsys = SwapSubsystem(RAM)
    si = swapon(subsys, "ghost")
    folio = new_folio()
    assert swapfile.folio_alloc_swap(subsys, folio)
    from ghostswap.mm.swap_state import swap_cache_del_folio

    swap_cache_del_folio(subsys, folio)
    settle()
    swapoff(subsys, si)
    assert [ci.index for ci in subsys.leaked] == [0]
    assert subsys.leaked[0].table is not None


def test_a_fixed_swapoff_frees_the_ghost_pool() -> None:
    # What findings.md §1.2 points at: ghost_pool_destroy() at swapoff.
    subsys = SwapSubsystem(RAM, fix_ghost_swapoff_leak=True)
    si = swapon(subsys, "ghost")
    folio = new_folio()
    assert swapfile.folio_alloc_swap(subsys, folio)
    from ghostswap.mm.swap_state import swap_cache_del_folio

    swap_cache_del_folio(subsys, folio)
    settle()
    pool = si.cluster_info_pool
    assert pool is not None
    (ci0,) = [ci for _, ci in pool.items()]
    swapoff(subsys, si)
    assert not subsys.leaked and si.cluster_info_pool is None and not len(pool)
    from ghostswap.kernel.bug import UseAfterFree

    with pytest.raises(UseAfterFree):
        _ = ci0.table  # kfree'd (and poisoned)
    check_subsystem(subsys)
    assert swapon(subsys, "ghost").cluster_info_pool is not pool  # a fresh pool


def test_spec_parsing() -> None:
    spec = parse_swap_spec("zram:1GiB:prio=10:discard")
    assert (spec.kind, spec.size_pages, spec.prio, spec.discard) == ("zram", 262144, 10, True)
    assert parse_swap_spec("ghost").ram_multiple == 8
    assert parse_swap_spec("ghost:3x:large").large_entries is True
    assert parse_swap_spec("ghost:64MiB").size_pages == 16384
    subsys = SwapSubsystem(RAM)
    si = swapon_spec(subsys, parse_swap_spec("partition:8MiB:rotational:prio=3"))
    assert si.prio == 3 and not si.flags & SWP_SOLIDSTATE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tape:1GiB", "unknown kind"),
        ("file", "needs a size"),
        ("file:8x", "only a ghost"),
        ("ghost:0x", ">= 1"),
        ("file:1GiB:prio=x", "not a number"),
        ("file:1GiB:prio=99999", "-1..32767"),
        ("file:1GiB:turbo", "unknown option"),
        ("zram:1GiB:prio=1:prio=2", "'prio=2' repeats or contradicts"),
        ("ghost:large:nolarge", "'nolarge' repeats or contradicts"),
        ("file:3KiB", "multiple of the 4 KiB"),
    ],
)
def test_spec_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_swap_spec(text)
