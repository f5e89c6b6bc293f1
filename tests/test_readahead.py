import pytest

from ghostswap.mm.swap_readahead import __swapin_nr_pages as swapin_nr_pages
from tests.vmhelpers import events, make_vm, reads, run, writes


@pytest.mark.parametrize(
    ("prev", "off", "hits", "prev_win", "want"),
    [
        (10, 11, 0, 0, 2),  # sequential, no hits: 2 pages
        (10, 50, 0, 0, 1),  # random, no hits: none
        (10, 50, 2, 0, 4),  # hits round up to a power of two, at least 4
        (10, 50, 7, 0, 8),  # capped at max
        (10, 50, 0, 8, 4),  # does not shrink faster than halving
    ],
)
def test_window_sizes(prev, off, hits, prev_win, want):
    assert swapin_nr_pages(prev, off, hits, 8, prev_win) == want


def _sequential_reread(swap, **kw):
    vm = make_vm(ram_pages=256, swap=(swap,), **kw)
    run(vm, writes(range(600)))
    start = dict(vm.events)
    run(vm, reads(range(600)))
    delta = {k: vm.events[k] - start[k] for k in ("pswpin", "pgmajfault", "swap_ra", "swap_ra_hit")}
    return vm, delta


def test_cluster_readahead_on_a_rotating_device():
    vm, d = _sequential_reread("file:16MiB:rotational")
    with vm:
        assert vm.subsys.nr_rotate_swap == 1
        assert d["swap_ra"] > d["pgmajfault"]  # several pages per major fault
        # The host identity for a swap file: every page read is a fault or readahead.
        assert d["pswpin"] == d["pgmajfault"] + d["swap_ra"]
        assert d["swap_ra_hit"] > 0.8 * d["swap_ra"]
        assert vm.mismatches == 0


def test_vma_readahead_on_an_ssd():
    vm, d = _sequential_reread("partition:16MiB", page_cluster=3)
    with vm:
        assert vm.subsys.nr_rotate_swap == 0
        assert d["pswpin"] == d["pgmajfault"] + d["swap_ra"]
        # Every hit becomes the VMA's previous fault address, so each miss of
        # a sequential scan reads a forward window of 8: the kernel and this
        # host read about 8 pages per major fault (a window centred on the
        # last miss instead re-covers read pages and gives under 4).
        assert d["pswpin"] / d["pgmajfault"] >= 7
        assert vm.mismatches == 0


def test_a_swap_cache_hit_moves_the_vma_readahead_address():
    vm, _ = _sequential_reread("partition:16MiB")
    with vm:
        vma = vm.mms[1].find_vma(0)
        assert vma is not None
        # The last read (page 599) was a hit on a page read ahead.
        assert vma.ra_prev == 599
        assert vma.ra_win == 8


def test_page_cluster_zero_disables_readahead():
    vm, d = _sequential_reread("partition:16MiB", page_cluster=0)
    with vm:
        assert d["swap_ra"] == 0
        assert d["pgmajfault"] == d["pswpin"]


def test_zram_reads_synchronously_without_readahead_and_frees_slots():
    vm, d = _sequential_reread("zram:16MiB")
    with vm:
        assert d["swap_ra"] == 0
        assert d["pgmajfault"] == d["pswpin"]
        # Swap cache dropped at swap-in: only what is still swapped out holds slots.
        swapped = sum(1 for p in range(600) if not vm.pt.pte_mv[vm.pt.pti(1, p, create=False)] & 1)
        assert vm.subsys.swap_info[0].inuse_pages == swapped


def test_random_access_reads_little_ahead():
    import numpy as np

    vm = make_vm(ram_pages=256, swap=("partition:16MiB",))
    with vm:
        run(vm, writes(range(2000)))
        order = np.random.default_rng(1).permutation(2000).tolist()
        run(vm, reads(order))
        assert vm.events["swap_ra"] < 0.5 * vm.events["pgmajfault"]
        run(vm, events([(1, "exit", 0, 0)]))
