//! The `radix_tree_node` kmem cache's slabs when the swap cache's xarray nodes take memory
//! (the state of [`crate::mm::slub`], kept apart from its functions on the kernel).

/// `sizeof(struct xa_node)` on 64-bit (include/linux/xarray.h, 6.12.117: four bytes of shift,
/// offset, count and nr_values, the parent and array pointers, a list_head, 64 slot pointers
/// and three words of marks: 576) plus the free pointer SLUB keeps after the object of a cache
/// with a constructor (`calculate_sizes`, mm/slub.c: `radix_tree_node_ctor`), 8-aligned.
/// Not recorded by the guests' agent (it keeps each cache's pages only); the x86_64 desktop
/// kernels' /proc/slabinfo shows 584 for `radix_tree_node`.
pub const RADIX_TREE_NODE_SIZE: u32 = 584;

/// The slab order of a 584-byte cache on a one-CPU guest: `calculate_order` (mm/slub.c
/// 6.12.117) asks `4 * (fls(nr_cpus) + 1)` = 8 objects, `get_order(8 * 584)` = 1: slabs of
/// two pages holding 14 objects. The guests' `radix_tree_node` grew by 54, 56 and 66 pages in
/// the three runs that recorded it, all even.
pub const RADIX_TREE_NODE_ORDER: u32 = 1;

/// `set_min_partial(s, ilog2(s->size) / 2)` clamped to MIN_PARTIAL = 5 (mm/slub.c 6.12.117):
/// empty slabs the node's partial list keeps before `discard_slab` gives them back.
pub const RADIX_TREE_NODE_MIN_PARTIAL: usize = 5;

/// The slabs of the `radix_tree_node` cache the swap cache's nodes have taken, each its frames.
#[derive(Clone, Debug, Default)]
pub struct KmemCache {
    pub(crate) slabs: Vec<Vec<u32>>,
}

impl KmemCache {
    /// Objects a slab holds (`oo_objects`).
    pub const fn objects_per_slab() -> u64 {
        (4096u64 << RADIX_TREE_NODE_ORDER) / RADIX_TREE_NODE_SIZE as u64
    }

    /// Slabs held.
    pub fn nr_slabs(&self) -> u64 {
        self.slabs.len() as u64
    }

    /// Pages the slabs hold (`NR_SLAB_RECLAIMABLE_B` of this cache, in pages).
    pub fn nr_pages(&self) -> u64 {
        self.slabs.iter().map(|s| s.len() as u64).sum()
    }
}
