//! The shape of the swap cache's xarrays, when chosen ([`crate::kernel::Kernel::set_swap_cache_nodes`]):
//! how many `struct xa_node` the kernel's swap address spaces hold for the slots the model's
//! swap cache and shadows occupy.
//!
//! The swap cache is split into address spaces of `SWAP_ADDRESS_SPACE_PAGES` (1 << 14) slots,
//! each an xarray indexed by `swap_cache_index` = the slot's offset masked to the space
//! (mm/swap.h, 6.12.117). A slot is occupied while it holds a swap-cache folio
//! (`add_to_swap_cache`) or a workingset shadow (`__delete_from_swap_cache` with the
//! `workingset_eviction` shadow, mm/swap_state.c), until `__delete_from_swap_cache` without one or
//! `swap_range_free` → `clear_shadow_from_swap_cache` when the slot is freed (mm/swapfile.c).
//! Nodes have `XA_CHUNK_SIZE` = 64 slots (`XA_CHUNK_SHIFT` 6, lib/xarray.c): a node at level
//! `l` (shift `6 * l`) exists while an entry lies in its range and its level is below the
//! tree's height. `xas_expand` raises the height to what the largest index stored needs (an
//! entry at index 0 alone sits in `xa_head`, no node); `xas_delete_node` frees a node that
//! empties and its emptied parents, and when the removal reaches the root `xas_shrink` lowers
//! the height while the root's only entry is its slot 0.
//!
//! Kept apart from the slots' equality and hash ([`XaShape`]): it is derived from them.

/// `XA_CHUNK_SHIFT` (include/linux/xarray.h, CONFIG_BASE_SMALL off).
pub const XA_CHUNK_SHIFT: u32 = 6;
/// `SWAP_ADDRESS_SPACE_SHIFT` (mm/swap.h, 6.12.117).
pub const SWAP_ADDRESS_SPACE_SHIFT: u32 = 14;
/// Levels a space of 1 << 14 indices can need (64^3 > 1 << 14).
const LEVELS: usize = 3;

/// One swap address space's xarray.
#[derive(Clone, Debug, Default)]
struct Space {
    /// The tree's height: 0 with no node (empty, or index 0 alone in `xa_head`).
    height: u8,
    /// Entries under each range of each level: `count[l][r]` is the `count` of the node of
    /// level `l` covering indices `r << 6 * (l + 1)..`, entries at level 0, child nodes above.
    count: [Vec<u8>; LEVELS],
    /// Ranges of each level with a non-zero count.
    nonempty: [u32; LEVELS],
    /// Whether index 0 holds an entry (the one that can sit in `xa_head`).
    index0: bool,
}

impl Space {
    fn new() -> Space {
        let n = |l: u32| 1usize << (SWAP_ADDRESS_SPACE_SHIFT.saturating_sub(XA_CHUNK_SHIFT * (l + 1)));
        Space { height: 0, count: [vec![0; n(0)], vec![0; n(1)], vec![0; n(2)]], nonempty: [0; LEVELS], index0: false }
    }

    fn nodes(&self) -> u64 {
        self.nonempty[..self.height as usize].iter().map(|&n| u64::from(n)).sum()
    }

    fn is_empty(&self) -> bool {
        self.nonempty[0] == 0
    }

    /// The height an index needs (`xas_expand`: `max_index` of each level).
    fn needs(index: u32) -> u8 {
        let mut h = 0u8;
        while (index as u64) >> (XA_CHUNK_SHIFT * h as u32) != 0 {
            h += 1;
        }
        h
    }

    fn insert(&mut self, index: u32) {
        let h = if self.is_empty() { Self::needs(index) } else { self.height.max(Self::needs(index)) };
        // a lone index 0 in xa_head gets its leaf when the tree grows: the counts have it
        self.height = h;
        self.index0 |= index == 0;
        for l in 0..LEVELS {
            let r = (index >> (XA_CHUNK_SHIFT * (l as u32 + 1))) as usize;
            self.count[l][r] += 1;
            if self.count[l][r] != 1 {
                break;
            }
            self.nonempty[l] += 1;
        }
    }

    fn remove(&mut self, index: u32) {
        if index == 0 {
            self.index0 = false;
        }
        // the first level whose node keeps entries (LEVELS: every level emptied)
        let mut kept = LEVELS;
        for l in 0..LEVELS {
            let r = (index >> (XA_CHUNK_SHIFT * (l as u32 + 1))) as usize;
            self.count[l][r] -= 1;
            if self.count[l][r] != 0 {
                kept = l;
                break;
            }
            self.nonempty[l] -= 1;
        }
        let h = self.height as usize;
        if self.is_empty() {
            self.height = 0;
        } else if h >= 1 && kept == h - 1 {
            self.shrink();
        }
    }

    /// `xas_shrink` (lib/xarray.c): while the root holds one entry and it is in slot 0, the
    /// root goes and its child (or the entry, at index 0 into `xa_head`) takes its place.
    fn shrink(&mut self) {
        while self.height >= 1 {
            let root = self.height as usize - 1;
            if self.count[root][0] != 1 {
                break;
            }
            let slot0 = if root == 0 { self.index0 } else { self.count[root - 1][0] > 0 };
            if !slot0 {
                break;
            }
            self.height -= 1;
        }
    }
}

/// The swap cache's xarrays: which slots are occupied and the nodes their spaces hold.
#[derive(Clone, Debug, Default)]
pub struct SwapCacheXa {
    occupied: Vec<u64>,
    spaces: Vec<Space>,
    nodes: u64,
}

impl SwapCacheXa {
    /// The xarrays of a device of `slots` slots (slot 0, the header, included), all empty.
    pub fn new(slots: u32) -> SwapCacheXa {
        let n = (slots as usize).div_ceil(1 << SWAP_ADDRESS_SPACE_SHIFT);
        SwapCacheXa {
            occupied: vec![0; (slots as usize).div_ceil(64)],
            spaces: (0..n).map(|_| Space::new()).collect(),
            nodes: 0,
        }
    }

    /// `struct xa_node`s the spaces hold now.
    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// Slot `off` holds an entry (a folio or a shadow) or not: the spaces' nodes follow.
    pub fn set(&mut self, off: u32, occupied: bool) {
        let (w, b) = (off as usize / 64, 1u64 << (off % 64));
        if (self.occupied[w] & b != 0) == occupied {
            return;
        }
        self.occupied[w] ^= b;
        let space = &mut self.spaces[(off >> SWAP_ADDRESS_SPACE_SHIFT) as usize];
        let index = off & ((1 << SWAP_ADDRESS_SPACE_SHIFT) - 1);
        let before = space.nodes();
        if occupied {
            space.insert(index);
        } else {
            space.remove(index);
        }
        self.nodes = self.nodes + space.nodes() - before;
    }
}

/// The swap cache's xarrays as the swap device keeps them: None unless chosen. Equal and of
/// one hash whatever they hold, since they follow from the slots (the device's own equality
/// and hash are the slots').
#[derive(Clone, Debug, Default)]
pub struct XaShape(pub Option<Box<SwapCacheXa>>);

impl PartialEq for XaShape {
    fn eq(&self, _: &XaShape) -> bool {
        true
    }
}

impl Eq for XaShape {}

impl std::hash::Hash for XaShape {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

#[cfg(test)]
mod tests {
    use super::SwapCacheXa;

    /// lib/xarray.c (6.12.117): 64 slots a node; a space of 1 << 14 slots (mm/swap.h) is a tree
    /// of height 3 once an index >= 4096 is stored: the root, a node per 4096 and a leaf per
    /// 64 that hold an entry.
    #[test]
    fn a_node_exists_for_each_64_slot_range_holding_an_entry_and_its_parents() {
        let mut xa = SwapCacheXa::new(2 << 14);
        xa.set(5, true);
        assert_eq!(xa.nodes(), 1, "index 5: one leaf, the root");
        xa.set(6, true);
        assert_eq!(xa.nodes(), 1, "same 64 slots");
        xa.set(64, true);
        assert_eq!(xa.nodes(), 3, "height 2: a root over two leaves");
        xa.set(5000, true);
        assert_eq!(xa.nodes(), 6, "height 3: root, two mid nodes, three leaves");
        xa.set((1 << 14) + 7, true);
        assert_eq!(xa.nodes(), 7, "the second space: one leaf");
        // every slot of the first space: 256 leaves, 4 mid nodes, the root
        for off in 1..1 << 14 {
            xa.set(off, true);
        }
        assert_eq!(xa.nodes(), 256 + 4 + 1 + 1);
    }

    /// `xas_delete_node` frees an emptied node and its emptied parents; `xas_shrink` lowers the
    /// tree only when the removal reaches the root and the root's one entry is in slot 0.
    #[test]
    fn emptied_nodes_are_freed_and_the_tree_shrinks_only_from_the_root() {
        let mut xa = SwapCacheXa::new(1 << 14);
        for off in [1, 70, 5000] {
            xa.set(off, true);
        }
        assert_eq!(xa.nodes(), 6);
        xa.set(70, false);
        assert_eq!(xa.nodes(), 5, "leaf of 64..127 freed, its mid node keeps leaf 0");
        xa.set(5000, false);
        // mid node 1 freed at the root: the root has one entry in slot 0 and shrinks twice?
        // its child (mid 0) holds one leaf in slot 0: the tree goes to height 1
        assert_eq!(xa.nodes(), 1, "the leaf of 0..63 is the root");
        xa.set(1, false);
        assert_eq!(xa.nodes(), 0);
        // a lone index 0 sits in xa_head
        xa.set(0, true);
        assert_eq!(xa.nodes(), 0);
        xa.set(3, true);
        assert_eq!(xa.nodes(), 1);
        xa.set(3, false);
        assert_eq!(xa.nodes(), 0, "index 0 alone again: back to xa_head");
    }
}
