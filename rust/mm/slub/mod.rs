//! The swap cache's xarray nodes out of the zone's memory, when chosen
//! ([`Kernel::set_swap_cache_nodes`]): each `struct xa_node` of the swap address spaces
//! (crate::mm::swap_state::xarray) is an object of the `radix_tree_node` kmem cache
//! (`radix_tree_init`, lib/radix-tree.c: SLAB_RECLAIM_ACCOUNT), whose slabs SLUB takes from the
//! page allocator (`allocate_slab` → `alloc_slab_page`, mm/slub.c 6.12.117) when every slab is
//! full and gives back (`discard_slab`) when a slab empties with `min_partial` slabs already on
//! the partial list. By default the model keeps its swap cache apart from the frames: the switch
//! is for the replay oracle, whose guest's swap cache keeps a node for every 64 slots that hold a
//! page or a shadow.
//!
//! Simplifications: the nodes are packed into the fewest slabs (SLUB places objects in the slab
//! it has at hand, so freed nodes leave partial slabs it cannot give back; during a replay the
//! nodes are made, rarely freed); up to `min_partial` empty slabs are kept; a slab's two pages
//! are two order-0 pages; the slab pages are taken when the access that made the nodes ends,
//! as a GFP_KERNEL allocation ([`Gfp::Kernel`](crate::mm::page_alloc::Gfp::Kernel):
//! unmovable, may reclaim), where the kernel's
//! `add_to_swap` → `add_to_swap_cache` allocates inside reclaim with GFP_NOWAIT, then
//! `__GFP_HIGH | __GFP_NOMEMALLOC` (`xas_nomem`, no reclaim, down to half the min watermark)
//! and of the reclaimable migratetype; the per-CPU partial slabs are not kept.

use crate::error::{Error, Result};
use crate::kernel::Kernel;

pub mod cache;
pub use cache::KmemCache;

impl Kernel {
    /// Take the swap cache's xarray nodes' slab pages out of the zone's memory from now on
    /// (`true`), or keep the swap cache apart from the frames (`false`, the default). Set it on
    /// a kernel whose swap is unused. Fails (EINVAL) once a swap slot is in use.
    pub fn set_swap_cache_nodes(&mut self, on: bool) -> Result<()> {
        if self.swap.inuse() != 0 {
            return Err(Error::invalid("set the swap cache's nodes before any swap slot is in use"));
        }
        self.swap.set_xa_nodes(on);
        self.swap_cache_slab = on.then(Box::default);
        Ok(())
    }

    /// The `radix_tree_node` slabs the swap cache's nodes hold, when
    /// [`Kernel::set_swap_cache_nodes`] chose them.
    pub fn swap_cache_slab(&self) -> Option<&KmemCache> {
        self.swap_cache_slab.as_deref()
    }

    /// The swap cache's `struct xa_node`s now, when [`Kernel::set_swap_cache_nodes`] chose them.
    pub fn swap_cache_nodes(&self) -> Option<u64> {
        self.swap.xa_nodes()
    }

    /// Give the slab the pages its nodes need now, and back the slabs beyond `min_partial`
    /// empty ones. Called at the end of an access (its faults and reclaim made or freed the
    /// nodes) and of an exit (its swap slots freed). A page the allocator cannot give is asked for again at the next access.
    pub(crate) fn swap_cache_slab_sync(&mut self) {
        let per = KmemCache::objects_per_slab();
        let pages = 1usize << cache::RADIX_TREE_NODE_ORDER;
        loop {
            let have = self.swap_cache_slab.as_deref().map_or(0, |c| c.slabs.len());
            let Some(nodes) = self.swap.xa_nodes() else { return };
            let need = nodes.div_ceil(per) as usize;
            if have < need {
                let mut frames = Vec::with_capacity(pages);
                for _ in 0..pages {
                    let Some(pfn) = self.alloc_kernel_page() else { break };
                    frames.push(pfn);
                }
                if frames.len() < pages {
                    self.free_slab_frames(frames);
                    return;
                }
                if let Some(c) = self.swap_cache_slab.as_deref_mut() {
                    c.slabs.push(frames);
                }
            } else if have > need + cache::RADIX_TREE_NODE_MIN_PARTIAL {
                let Some(frames) = self.swap_cache_slab.as_deref_mut().and_then(|c| c.slabs.pop()) else { return };
                self.free_slab_frames(frames);
            } else {
                return;
            }
        }
    }

    /// `__free_slab` → `free_frozen_pages` of a slab's pages.
    fn free_slab_frames(&mut self, frames: Vec<u32>) {
        for pfn in frames {
            self.free_kernel_page(pfn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KmemCache;
    use crate::arch::Arch;
    use crate::kernel::Kernel;
    use crate::mm::mmap::MapKind;
    use crate::profile::Profile;
    use std::collections::BTreeSet;

    /// A 6.12 x86_64 kernel of `pages` pages and `swap` pages of swap, the swap cache's nodes
    /// out of its memory, and a process that wrote `touched` pages.
    fn swapped(pages: u64, swap: u64, touched: u64, on: bool) -> (Kernel, u32) {
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).expect("profile"), pages * 4096, swap * 4096, 1)
            .expect("kernel");
        k.set_swap_cache_nodes(on).expect("no swap in use");
        let pid = k.spawn("p", false).expect("spawn");
        let a = k.mmap(pid, touched * 4096, MapKind::Anon, false, None).expect("mmap");
        for i in 0..touched {
            k.access(pid, 0, a + i * 4096, true, i + 1).expect("touch");
        }
        (k, pid)
    }

    /// The nodes lib/xarray.c keeps for the slots in use (each holds its page or its shadow
    /// here): per swap address space of 1 << 14 slots (mm/swap.h `swap_cache_index`, 6.12.117),
    /// a leaf per 64 slots with an entry, a node per 4096 above them and the root.
    fn nodes_of_slots(k: &Kernel) -> u64 {
        let used: Vec<u32> = k.swap.used_slots().collect();
        let leaves: BTreeSet<u32> = used.iter().map(|o| o >> 6).collect();
        let mids: BTreeSet<u32> = used.iter().map(|o| o >> 12).collect();
        let roots: BTreeSet<u32> = used.iter().map(|o| o >> 14).collect();
        (leaves.len() + mids.len() + roots.len()) as u64
    }

    /// `add_to_swap` → `add_to_swap_cache` makes the nodes, `workingset_eviction`'s shadow keeps
    /// them (mm/swap_state.c, mm/vmscan.c 6.12.117), and SLUB takes a two-page slab of
    /// `radix_tree_node` for every 14 of them (`allocate_slab`, mm/slub.c).
    #[test]
    fn swapped_out_slots_keep_a_node_per_64_and_take_a_two_page_slab_per_14_nodes() {
        let (k, _) = swapped(3000, 12000, 9000, true);
        let nodes = k.swap_cache_nodes().expect("on");
        assert!(k.swap.inuse() > 5000, "reclaim swapped out: {}", k.swap.inuse());
        assert_eq!(nodes, nodes_of_slots(&k), "every slot in use holds a page or a shadow");
        let slab = k.swap_cache_slab().expect("on");
        assert_eq!(KmemCache::objects_per_slab(), 14);
        assert_eq!(slab.nr_slabs(), nodes.div_ceil(14));
        assert_eq!(slab.nr_pages(), 2 * nodes.div_ceil(14));
        k.check_invariants().expect("invariants");
        // the slabs' frames are the kernel's, out of the free memory
        for pfn in slab.slabs.iter().flatten() {
            assert!(k.mem.frames[*pfn as usize].test(crate::mm::page::pg::PG_RESERVED), "pfn {pfn}");
        }
        let (k0, _) = swapped(3000, 12000, 9000, false);
        assert!(k0.swap_cache_nodes().is_none() && k0.swap_cache_slab().is_none());
    }

    /// `swap_range_free` → `clear_shadow_from_swap_cache` (mm/swapfile.c 6.12.117) empties the
    /// nodes of an exiting process's slots; SLUB gives the emptied slabs back but
    /// `min_partial` (5) of them (`__slab_free` → `discard_slab`, mm/slub.c).
    #[test]
    fn exit_frees_the_nodes_and_the_slabs_but_min_partial_empty_ones() {
        let (mut k, pid) = swapped(3000, 12000, 9000, true);
        let free = k.nr_free_pages();
        let pages = k.swap_cache_slab().expect("on").nr_pages();
        assert!(pages > 10, "{pages}");
        k.exit_mm(pid).expect("exit");
        assert_eq!(k.swap_cache_nodes(), Some(0));
        assert_eq!(k.swap_cache_slab().expect("on").nr_pages(), 10);
        assert!(k.nr_free_pages() >= free + pages - 10);
        k.check_invariants().expect("invariants");
    }

    /// Off by default; chosen only before swap is in use.
    #[test]
    fn by_default_the_swap_cache_takes_no_frame_and_the_switch_needs_unused_swap() {
        let (mut k, _) = swapped(3000, 12000, 4000, false);
        assert!(k.swap_cache_nodes().is_none());
        assert!(k.swap.inuse() > 0);
        assert!(k.set_swap_cache_nodes(true).is_err());
    }
}
