"""x86_64 sizes of the kernel structures the swap subsystem allocates.

Every figure is the size the kernel really spends: the struct layout
(LP64, no lockdep, ``CONFIG_MEMCG=y``, ``CONFIG_THP_SWAP=y``,
``CONFIG_ZSWAP=y``) rounded up to the slab cache or page allocation that
holds it. The layouts are those of the linux-mm tree of 2026 with swap table
phases I-IV and the seed patch; each constant names its source.
"""

from __future__ import annotations

__all__ = [
    "EXTEND_TABLE",
    "KMALLOC_SIZES",
    "MEMCG_TABLE",
    "PAGE_SIZE",
    "SWAP_CLUSTER_INFO",
    "SWAP_CLUSTER_INFO_DYNAMIC",
    "SWAP_EXTENT",
    "SWAP_INFO_STRUCT",
    "SWAP_SEQUENTIAL_CLUSTER",
    "SWAP_TABLE",
    "XARRAY",
    "XA_NODE",
    "ZSWAP_TREE_PAGES",
    "kmalloc_size",
    "kvmalloc_size",
]

PAGE_SIZE = 4096

# mm/slab_common.c kmalloc_info[]: the generic caches kmalloc() rounds to.
KMALLOC_SIZES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
KMALLOC_MAX_CACHE_SIZE = 8192  # larger kmalloc()s go to the page allocator
MAX_PAGE_ORDER_BYTES = PAGE_SIZE << 10  # kmalloc_large() up to order 10


def kmalloc_size(size: int) -> int:
    """Bytes a ``kmalloc(size)`` occupies."""
    for bucket in KMALLOC_SIZES:
        if size <= bucket:
            return bucket
    # kmalloc_large(): whole pages, order rounded up to a power of two.
    pages = -(-size // PAGE_SIZE)
    return PAGE_SIZE << (pages - 1).bit_length()


def kvmalloc_size(size: int) -> int:
    """Bytes a ``kvmalloc(size)`` occupies: kmalloc while it fits an order-10
    allocation (assuming it succeeds), vmalloc (whole pages) beyond."""
    if size <= MAX_PAGE_ORDER_BYTES:
        return kmalloc_size(size)
    return -(-size // PAGE_SIZE) * PAGE_SIZE


# mm/swap.h struct swap_cluster_info: spinlock_t (4) + u16 count + u8 flags
# + u8 order (8 so far), table, extend_table, memcg_table pointers (24),
# struct list_head list (16). No zero_bitmap: x86_64 keeps the zero flag in
# the table entry (SWAP_TABLE_HAS_ZEROFLAG).
SWAP_CLUSTER_INFO = 48

# The seed's struct swap_cluster_info_dynamic: the cluster info (48), an
# unsigned int index (+4, padded to 8) and a struct rcu_head (16) = 72,
# kzalloc()ed, so kmalloc-96.
SWAP_CLUSTER_INFO_DYNAMIC = kmalloc_size(48 + 8 + 16)

# mm/swap_table.h struct swap_table: SWAPFILE_CLUSTER (512) atomic longs =
# 4096 bytes; SWP_TABLE_USE_PAGE holds on x86_64, so one page each.
SWAP_TABLE = 512 * 8

# mm/swap_table.h struct swap_memcg_table: 512 unsigned shorts, kzalloc().
MEMCG_TABLE = kmalloc_size(512 * 2)

# mm/swapfile.c swap_extend_table_alloc(): kzalloc(sizeof(unsigned int) * 512).
EXTEND_TABLE = kmalloc_size(512 * 4)

# include/linux/xarray.h struct xa_node: shift, offset, count, nr_values (4
# bytes), parent and array pointers (16), a list_head/rcu_head union (16),
# 64 slots (512) and 3 mark bitmaps of one long (24) = 576, the object size
# of the radix_tree_node slab cache.
XA_NODE = 576

# include/linux/xarray.h struct xarray: spinlock_t, gfp_t, xa_head = 16.
XARRAY = 16

# include/linux/swap.h struct swap_info_struct, summed field by field:
# percpu_ref 16, flags 8, prio 2(+6), plist_node list 40, type 1(+3), max 4,
# zeromap 8, cluster_info 8, free/full list heads 32, nonfull and frag
# list heads 2 x 10 x 16, pages 4(+4), inuse_pages 8, global_cluster 8,
# global_cluster_lock 4(+4), swap_extent_root 8, bdev 8, swap_file 8,
# completion 24, lock 4(+4), two work_structs 64, discard_clusters 16,
# plist_node avail_list 40, and the seed's struct xarray cluster_info_pool
# 16 = 672 bytes; kvzalloc()ed, so kmalloc-1k.
SWAP_INFO_STRUCT = kmalloc_size(672)

# include/linux/swap.h struct swap_sequential_cluster: unsigned int next[10]
# for rotating devices only.
SWAP_SEQUENTIAL_CLUSTER = kmalloc_size(10 * 4)

# include/linux/swap.h struct swap_extent: rb_node (24), start_page,
# nr_pages, start_block (24) = 48, kmalloc-64. A block device has one.
SWAP_EXTENT = kmalloc_size(48)

# mm/zswap.c zswap_swapon(): one struct xarray per SWAP_ADDRESS_SPACE_PAGES
# (1 << 14 pages, 64 MiB) of the device, kvcalloc()ed; allocated for every
# device whenever zswap is built in, used or not.
ZSWAP_TREE_PAGES = 1 << 14
