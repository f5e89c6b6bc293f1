"""zswap: a compressed cache in front of the swap devices (mm/zswap.c).

Pages are compressed for real (zstd or lz4 from PyPI, deflate from zlib)
from the bytes their content tokens expand to, and kept in a pool with the
kernel's limit (``max_pool_percent`` of ``totalram_pages``, refilling
allowed again below ``accept_threshold_percent`` of it). The pool's size
is zsmalloc's (:mod:`ghostswap.mm.zsmalloc`: size classes, zspages that
return their pages only when empty). The compressed bytes are the memcg's
``MEMCG_ZSWAP_B``, charged to its limit on cgroup v2 only.

Entries are found by swap entry; a load is exclusive (the entry is erased
and the folio dirtied), freed slots invalidate their entries
(``SwapHooks.slot_free_notify``). A store that fails while the pool is full
queues ``shrink_worker`` (``zswap_shrink_work``), which writes the oldest
entries back to their device's store, with the LRU's second chance
(``shrink_memcg_cb``), until the pool is below the accept threshold. The
kernel runs it on a workqueue; the machine runs it when the operation that
queued it returns (``Machine.access``/``madvise_pageout``), so the rest of
that reclaim still sees a full pool. Writeback of a ghost entry fails
(patch 13/15 returns -EINVAL for ``SWP_GHOST`` in ``zswap_writeback_entry``),
so a ghost device's entries stay.

Not modelled: the memcg-aware shrinker (``zswap_shrinker_count``/
``zswap_shrinker_scan``, registered when ``shrinker_enabled`` is set) that
``shrink_slab`` calls under memory pressure below the pool limit; the
``shrinker`` knob is kept for configuration parity and changes nothing. The
full-pool worker does not depend on it, as in the kernel.

Counters: debugfs names in :attr:`Zswap.stats`, ``zswpout``/``zswpin``/
``zswpwb`` in /proc/vmstat, per-size ``zswpout`` (counted by page_io).
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING

from ghostswap.errors import ConfigError
from ghostswap.kernel.workqueue import WorkStruct, schedule_work
from ghostswap.mm.content import BAD_TOKEN, PAGE_SIZE, expand, token_of
from ghostswap.mm.folio import PG_dirty
from ghostswap.mm.swap import SWP_GHOST, SWP_OFFSET_MASK, SWP_TYPE_SHIFT, swp_entry
from ghostswap.mm.swap_state import swap_cache_has_folio
from ghostswap.mm.zsmalloc import ZsPool, zs_free, zs_get_total_pages, zs_malloc

if TYPE_CHECKING:
    from ghostswap.mm.folio import Folio
    from ghostswap.mm.machine import Machine

__all__ = [
    "COMPRESSORS",
    "Zswap",
    "zswap_invalidate",
    "zswap_is_present",
    "zswap_load",
    "zswap_store",
]

# struct zswap_entry on x86_64: swpentry 8, length 4 (+4), referenced 1 (+7),
# pool/objcg/handle pointers 24, list_head lru 16 = 64 (its kmem_cache).
ZSWAP_ENTRY_SIZE = 64


# crypto/zstd.c: ZSTD_DEF_LEVEL.
ZSTD_LEVEL = 3


def _zstd() -> tuple[object, object]:
    import zstandard

    # One compressor and one decompressor for the pool, as zswap keeps one
    # crypto context per CPU: creating them per page would cost more than
    # compressing.
    c = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=False, write_checksum=False)
    d = zstandard.ZstdDecompressor()
    return (c.compress, lambda data: d.decompress(data, max_output_size=PAGE_SIZE))


def _lz4() -> tuple[object, object]:
    import lz4.block

    return (
        lambda data: lz4.block.compress(data, store_size=False),
        lambda data: lz4.block.decompress(data, uncompressed_size=PAGE_SIZE),
    )


# crypto/deflate.c: raw deflate, DEFLATE_DEF_LEVEL (Z_DEFAULT_COMPRESSION),
# DEFLATE_DEF_WINBITS 11, DEFLATE_DEF_MEMLEVEL MAX_MEM_LEVEL (8 in the
# kernel's zlib).
DEFLATE_WBITS = -11
DEFLATE_MEMLEVEL = 8


def _deflate() -> tuple[object, object]:
    import zlib

    def compress(data: bytes) -> bytes:
        c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, DEFLATE_WBITS,
                             DEFLATE_MEMLEVEL)  # fmt: skip
        return c.compress(data) + c.flush()

    return (compress, lambda data: zlib.decompress(data, DEFLATE_WBITS))


# zswap's compressors, all available to this model. A kernel offers those its
# crypto API was built with (/proc/crypto); this host's has deflate, not lz4.
COMPRESSORS = {"zstd": _zstd, "lz4": _lz4, "deflate": _deflate}

STAT_NAMES = (
    "pool_limit_hit",
    "reject_reclaim_fail",
    "reject_alloc_fail",
    "reject_kmemcache_fail",
    "reject_compress_fail",
    "reject_compress_poor",
    "decompress_fail",
    "written_back_pages",
    "stored_pages",
    "stored_incompressible_pages",
)


class Zswap:
    """The zswap module state: parameters, entries, pool size, stats."""

    def __init__(
        self,
        totalram_pages: int,
        compressor: str = "zstd",
        max_pool_percent: int = 20,
        accept_threshold_percent: int = 90,
        shrinker_enabled: bool = True,
        shrink_walk: int = 32,
    ) -> None:
        if compressor not in COMPRESSORS:
            raise ConfigError(
                f"zswap compressor {compressor!r}: one of {', '.join(sorted(COMPRESSORS))}"
            )
        if not 0 < max_pool_percent <= 100:
            raise ConfigError("zswap max_pool_percent must be in 1..100")
        if not 0 < accept_threshold_percent <= 100:
            raise ConfigError("zswap accept_threshold_percent must be in 1..100")
        self.compressor = compressor
        self.compress, self.decompress = COMPRESSORS[compressor]()
        self.max_pool_percent = max_pool_percent
        self.accept_threshold_percent = accept_threshold_percent
        # Only registers the memory-pressure shrinker, which is not modelled.
        self.shrinker_enabled = shrinker_enabled
        if shrink_walk < 1:
            raise ConfigError("zswap shrink_walk must be at least 1")
        # Entries shrink_memcg() walks per node: SWAP_CLUSTER_MAX in the
        # linux-mm tree the seed applies to, 1 up to v6.18.
        self.shrink_walk = shrink_walk
        self.max_pages = totalram_pages * max_pool_percent // 100
        self.accept_pages = self.max_pages * accept_threshold_percent // 100
        self.entries: dict[int, bytes] = {}  # swap entry -> compressed page, LRU order
        # Entries whose referenced bit the shrinker cleared (stored ones have it set).
        self.unreferenced: set[int] = set()
        # zswap_shrink_work; the machine binds it to shrink_worker.
        self.shrink_work = WorkStruct(lambda: None, "zswap_shrink_work")
        # Compressed bytes (what the memcg is charged) and the zsmalloc
        # pool that holds them (what the pool limit counts).
        self.total_bytes = 0
        self.zs_pool = ZsPool()
        self.handles: dict[int, int] = {}  # swap entry -> zsmalloc handle
        self.peak_pages = 0
        self.peak_entries = 0
        self.incompressible = 0  # entries stored raw: debugfs stored_incompressible_pages
        self.reached_full = False
        self.stats = dict.fromkeys(STAT_NAMES, 0)

    def total_pages(self) -> int:
        """``zswap_total_pages()``: the zsmalloc pool's pages."""
        return zs_get_total_pages(self.zs_pool)

    def pool_total_size(self) -> int:
        """debugfs ``pool_total_size``: pool pages in bytes."""
        return self.total_pages() * PAGE_SIZE

    def peak_pool_total_size(self) -> int:
        """The highest ``pool_total_size`` seen, in the same whole pages."""
        return self.peak_pages * PAGE_SIZE

    def stats_dict(self) -> dict[str, int]:
        out = dict(self.stats)
        out["pool_total_size"] = self.pool_total_size()
        out["stored_pages"] = len(self.entries)
        out["stored_incompressible_pages"] = self.incompressible
        return out


def _erase(vm: Machine, zswap: Zswap, entry: int) -> bool:
    data = zswap.entries.pop(entry, None)
    if data is None:
        return False
    zswap.unreferenced.discard(entry)
    zs_free(zswap.zs_pool, zswap.handles.pop(entry))
    zswap.total_bytes -= len(data)
    zswap.incompressible -= len(data) == PAGE_SIZE
    vm.memcg.zswap_bytes -= len(data)
    return True


def zswap_check_limits(zswap: Zswap) -> bool:
    """True while the pool is (still considered) full."""
    total = zswap.total_pages()
    if total >= zswap.max_pages:
        zswap.stats["pool_limit_hit"] += 1
        zswap.reached_full = True
    elif zswap.reached_full and total <= zswap.accept_pages:
        zswap.reached_full = False
    return zswap.reached_full


def zswap_store(vm: Machine, folio: Folio, head: int) -> bool:
    """Compress every page of a locked swap-cache folio into the pool.

    All or nothing: a failure undoes the pages already stored, and queues
    the shrink worker if the pool was full.
    """
    zswap = vm.zswap
    assert zswap is not None
    nr = 1 << folio.order
    entry = folio.swap
    if zswap_check_limits(zswap):
        schedule_work(zswap.shrink_work)
        zswap_invalidate_range(vm, entry, nr)
        return False
    tokens = vm.frames.token_mv
    compress = zswap.compress
    entries = zswap.entries
    for i in range(nr):
        data = compress(expand(tokens[head + i]))  # type: ignore[operator]
        if len(data) >= PAGE_SIZE:
            # Incompressible: zswap_compress() stores it raw unless
            # mem_cgroup_zswap_writeback_enabled() is false. Patch 13/15 stops
            # ghost writeback in zswap_writeback_entry (-EINVAL for SWP_GHOST),
            # not through that predicate, so a ghost entry is stored raw too.
            data = expand(tokens[head + i])
        zswap.incompressible += len(data) == PAGE_SIZE
        old = entries.pop(entry + i, None)
        if old is not None:
            zswap.incompressible -= len(old) == PAGE_SIZE
            zswap.total_bytes -= len(old)
            zs_free(zswap.zs_pool, zswap.handles.pop(entry + i))
            vm.memcg.zswap_bytes -= len(old)
            zswap.unreferenced.discard(entry + i)
        entries[entry + i] = data  # at the LRU tail, referenced
        zswap.handles[entry + i] = zs_malloc(zswap.zs_pool, len(data))
        zswap.total_bytes += len(data)
        vm.memcg.zswap_bytes += len(data)
    pages = zs_get_total_pages(zswap.zs_pool)
    if pages > zswap.peak_pages:
        zswap.peak_pages = pages
    if len(entries) > zswap.peak_entries:
        zswap.peak_entries = len(entries)
    vm.events["zswpout"] += nr
    return True


def zswap_load(vm: Machine, folio: Folio, head: int) -> str | None:
    """Fill a locked swap-in folio from the pool: None (loaded), "ENOENT"
    (not in zswap) or "EIO" (a large folio partly in zswap, or corrupt data)."""
    zswap = vm.zswap
    if zswap is None:
        return "ENOENT"
    entry = folio.swap
    nr = 1 << folio.order
    if nr > 1:
        if zswap_is_present(zswap, entry, nr):
            return "EIO"
        return "ENOENT"
    data = zswap.entries.get(entry)
    if data is None:
        return "ENOENT"
    raw = data if len(data) == PAGE_SIZE else zswap.decompress(data)  # type: ignore[operator]
    token = token_of(raw)
    if token == BAD_TOKEN:
        zswap.stats["decompress_fail"] += 1
        return "EIO"
    vm.frames.token_mv[head] = token
    vm.events["zswpin"] += 1
    # Exclusive load: the swap cache holds the only copy now.
    folio.flags |= PG_dirty
    _erase(vm, zswap, entry)
    return None


def zswap_is_present(zswap: Zswap, entry: int, nr: int) -> bool:
    entries = zswap.entries
    return any(entry + i in entries for i in range(nr))


def zswap_invalidate_range(vm: Machine, entry: int, nr: int) -> None:
    zswap = vm.zswap
    if zswap is None or not zswap.entries:
        return
    for i in range(nr):
        _erase(vm, zswap, entry + i)


def zswap_invalidate(vm: Machine, type_: int, offset: int, nr: int) -> None:
    """Slots freed: drop their entries (``zswap_invalidate``)."""
    zswap_invalidate_range(vm, swp_entry(type_, offset), nr)


def zswap_writeback_entry(vm: Machine, entry: int) -> str | None:
    """Write one entry back to its device: None, or why not ("EINVAL": a
    ghost entry, "EEXIST": the slot's folio is in the swap cache, "ENOENT":
    nothing to write it to, "EIO": corrupt data)."""
    zswap = vm.zswap
    assert zswap is not None
    si = vm.subsys.swap_info[entry >> SWP_TYPE_SHIFT]
    if si is None:
        return "ENOENT"
    if si.flags & SWP_GHOST:
        # Patch 13/15: no writeback of ghost entries (there is no backing store).
        return "EINVAL"
    store = vm.stores.get(entry >> SWP_TYPE_SHIFT)
    if store is None:
        return "ENOENT"
    if swap_cache_has_folio(vm.subsys, entry):
        return "EEXIST"
    data = zswap.entries[entry]
    raw = data if len(data) == PAGE_SIZE else zswap.decompress(data)  # type: ignore[operator]
    token = token_of(raw)
    if token == BAD_TOKEN:
        zswap.stats["decompress_fail"] += 1
        return "EIO"
    store.write_page(entry & SWP_OFFSET_MASK, token)
    _erase(vm, zswap, entry)
    vm.events["zswpwb"] += 1
    vm.events["pswpout"] += 1
    return None


# mm/internal.h
MAX_RECLAIM_RETRIES = 16


def shrink_memcg(vm: Machine) -> str | None:
    """Walk up to ``zswap.shrink_walk`` entries from the LRU head
    (``shrink_memcg`` with ``shrink_memcg_cb``): a referenced entry loses
    its bit and rotates to the tail (its second chance); any other rotates
    and is written back. None if one was written back, "EAGAIN" if entries
    were walked but none went, "ENOENT" if the LRU is empty."""
    zswap = vm.zswap
    assert zswap is not None
    entries = zswap.entries
    unreferenced = zswap.unreferenced
    stats = zswap.stats
    to_walk = zswap.shrink_walk
    walked = shrunk = 0
    while to_walk and entries:
        # Visited entries rotate to the tail, so a list shorter than the
        # batch is walked again from its (new) head, as list_lru's walk does.
        batch = list(islice(iter(entries), to_walk))
        to_walk -= len(batch)
        walked += len(batch)
        for entry in batch:
            entries[entry] = entries.pop(entry)
            if entry not in unreferenced:
                unreferenced.add(entry)
                continue
            if zswap_writeback_entry(vm, entry) is None:
                stats["written_back_pages"] += 1
                shrunk += 1
            else:
                stats["reject_reclaim_fail"] += 1
    if not walked:
        return "ENOENT"
    return None if shrunk else "EAGAIN"


def zswap_shrink_worker(vm: Machine) -> None:
    """``shrink_worker``: write back until the pool is at or below the
    accept threshold, giving up after MAX_RECLAIM_RETRIES failed walks.

    The kernel walks the memcgs round robin; the machine has one, and a
    hierarchy pass that finds no candidate counts as a failure too.
    """
    zswap = vm.zswap
    assert zswap is not None
    thr = zswap.accept_pages
    failures = 0
    while True:
        if shrink_memcg(vm) is not None:
            failures += 1
            if failures == MAX_RECLAIM_RETRIES:
                return
        if zswap.total_pages() <= thr:
            return
