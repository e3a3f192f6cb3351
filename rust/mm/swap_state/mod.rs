//! The swap cache (mm/swap_state.c): the page caching each swap slot, the workingset shadow an
//! evicted page leaves in its slot, and swap readahead (`swapin_readahead`). The slots
//! themselves are [`crate::mm::swapfile`].
//!
//! Swap readahead: `swapin_readahead` (mm/swap_state.c v6.12) reads around a faulting slot
//! with `swap_vma_readahead` when `swap_use_vma_readahead()` (`enable_vma_readahead &&
//! !nr_rotate_swap`), else with `swap_cluster_readahead`. The model's swap device is
//! rotational, as a virtio-blk disk is on every profile (virtio_blk did not set
//! QUEUE_FLAG_NONROT before v6.11 and sets `BLK_FEAT_ROTATIONAL` in `virtblk_probe` since
//! bd4a633b6f7c "block: move the nonrot flag to queue_limits", v6.11): swapon then counts it
//! in `nr_rotate_swap` and every swap-in reads the `page_cluster`-aligned cluster around its
//! slot. `swap_vma_readahead` (for non-rotational devices) is not modelled. The readahead's
//! functions on the kernel are in `readahead.rs`; this module holds the state.

use crate::mm::page::pg;
use crate::mm::swapfile::SwapDevice;
use crate::mm::vmstat::Vm;
use serde::{Deserialize, Serialize};

mod readahead;
pub mod xarray;

/// `page_cluster_max` (mm/swap.c v6.12: the bound of the `vm.page-cluster` sysctl).
pub const PAGE_CLUSTER_MAX: u8 = 31;

/// The state of swap readahead: the `vm.page-cluster` sysctl and the globals of
/// `swapin_nr_pages` (mm/swap_state.c v6.12).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SwapRa {
    /// `page_cluster`: readahead reads up to `1 << page_cluster` slots.
    pub page_cluster: u8,
    /// `swapin_readahead_hits`: readahead pages found in the swap cache since the last
    /// readahead ("Initial readahead hits is 4 to start up with a small window").
    pub hits: u32,
    /// `swapin_nr_pages`'s `prev_offset`: the slot of the last swap-in without hits.
    pub prev_offset: u32,
    /// `last_readahead_pages`: the last window ("Don't shrink readahead too fast").
    pub last_pages: u32,
}

impl SwapRa {
    /// `swap_setup` (mm/swap.c v6.12): "Right now other parts of the system means that we
    /// _really_ don't want to cluster much more": `page_cluster` 2 below 16 MiB of memory, else 3.
    pub fn new(total_pages: u64) -> SwapRa {
        let megs = total_pages >> (20 - 12);
        SwapRa { page_cluster: if megs < 16 { 2 } else { 3 }, hits: 4, prev_offset: 0, last_pages: 0 }
    }
}

/// `__swapin_nr_pages` (mm/swap_state.c v6.12): the readahead window from the hits since the
/// last readahead: `hits + 2` rounded up to a power of two (at least 4); without hits, two
/// pages if this slot is next to the previous one, else one; at most `max_pages`, and at least
/// half the previous window.
pub fn swapin_window(prev_offset: u32, offset: u32, hits: u32, max_pages: u32, prev_win: u32) -> u32 {
    let mut pages = hits.saturating_add(2);
    if pages == 2 {
        if offset != prev_offset.wrapping_add(1) && offset != prev_offset.wrapping_sub(1) {
            pages = 1;
        }
    } else {
        let mut roundup = 4u32;
        while roundup < pages {
            roundup <<= 1;
        }
        pages = roundup;
    }
    pages = pages.min(max_pages);
    pages.max(prev_win / 2)
}

impl SwapDevice {
    /// The swap-cache page of a slot.
    #[inline]
    pub fn cache_page(&self, off: u32) -> Option<u32> {
        let c = self.cache[off as usize];
        if c == 0 { None } else { Some(c - 1) }
    }

    /// `add_to_swap_cache` / `__delete_from_swap_cache` bookkeeping.
    pub fn set_cache_page(&mut self, off: u32, pfn: Option<u32>) {
        self.cache[off as usize] = pfn.map_or(0, |p| p + 1);
        self.xa_update(off);
    }

    /// Leave the workingset shadow of an evicted page (`workingset_eviction`, mm/workingset.c
    /// v6.12: `pack_shadow(memcgid, pgdat, eviction, folio_test_workingset(folio))`): the
    /// eviction clock and whether the page was PG_workingset.
    pub fn set_shadow(&mut self, off: u32, age: u32, workingset: bool) {
        self.shadow[off as usize] = Shadow { eviction: age, workingset }.pack();
        self.xa_update(off);
    }

    /// Take the workingset shadow of a slot (`workingset_refault` consumes it).
    pub fn take_shadow(&mut self, off: u32) -> Option<Shadow> {
        let shadow = Shadow::unpack(std::mem::take(&mut self.shadow[off as usize]));
        self.xa_update(off);
        shadow
    }

    /// Keep the swap cache's xarrays ([`xarray::SwapCacheXa`]) from now on (`true`) or not.
    pub fn set_xa_nodes(&mut self, on: bool) {
        self.xa.0 = on.then(|| {
            let mut xa = xarray::SwapCacheXa::new(self.total() + 1);
            for off in 1..=self.total() {
                xa.set(off, self.xa_occupied(off));
            }
            Box::new(xa)
        });
    }

    /// The `struct xa_node`s of the swap cache's xarrays, when kept.
    pub fn xa_nodes(&self) -> Option<u64> {
        self.xa.0.as_deref().map(xarray::SwapCacheXa::nodes)
    }

    /// Whether slot `off` holds an xarray entry: a swap-cache folio, or the shadow of a slot in
    /// use (`swap_range_free` clears a freed slot's shadow: `clear_shadow_from_swap_cache`,
    /// mm/swapfile.c 6.12.117; the model leaves it until the slot is taken again).
    fn xa_occupied(&self, off: u32) -> bool {
        let i = off as usize;
        self.cache[i] != 0 || (self.shadow[i] != 0 && self.map(off) != 0)
    }

    /// Follow a change of slot `off` in the xarrays, when kept.
    #[inline]
    pub(crate) fn xa_update(&mut self, off: u32) {
        if self.xa.0.is_some() {
            let occupied = self.xa_occupied(off);
            if let Some(xa) = self.xa.0.as_deref_mut() {
                xa.set(off, occupied);
            }
        }
    }
}

/// A workingset shadow entry (`pack_shadow` / `unpack_shadow`, mm/workingset.c v6.12): the
/// `nonresident_age` at eviction and the page's PG_workingset (`WORKINGSET_SHIFT`, one bit).
/// Packed as `(eviction << 1 | workingset) + 1`, 0 meaning no shadow; the clock keeps 31 bits
/// as the kernel's keeps `EVICTION_BITS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shadow {
    pub eviction: u32,
    pub workingset: bool,
}

impl Shadow {
    /// The clock's bits kept in a shadow (`EVICTION_MASK`).
    pub const EVICTION_MASK: u32 = u32::MAX >> 1;

    fn pack(self) -> u32 {
        ((self.eviction & Self::EVICTION_MASK) << 1 | self.workingset as u32).wrapping_add(1).max(1)
    }

    fn unpack(v: u32) -> Option<Shadow> {
        let v = v.checked_sub(1)?;
        Some(Shadow { eviction: v >> 1, workingset: v & 1 != 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::swapin_window;
    use crate::fault::Access;
    use crate::kernel::Kernel;
    use crate::mm::madvise::Advice;
    use crate::mm::page::pg;
    use crate::mm::vmstat::Vm;
    use crate::testutil::{kernel, proc_with_pages};

    /// `__swapin_nr_pages` (mm/swap_state.c v6.12): "pages = hits + 2", rounded up to a power
    /// of two from 4; with no hits 2 only next to the previous offset, else 1; capped at
    /// max_pages; "Don't shrink readahead too fast": at least prev_win / 2.
    #[test]
    fn swapin_window_grows_with_hits_and_shrinks_by_halves_as_swapin_nr_pages_does() {
        // (prev_offset, offset, hits, max_pages, prev_win) -> pages
        for (args, pages) in [
            ((0, 100, 4, 8, 0), 8),   // the initial 4 hits: 6 rounded up to 8
            ((0, 100, 4, 4, 0), 4),   // capped by page_cluster 2
            ((99, 100, 0, 8, 0), 2),  // no hits, adjacent
            ((101, 100, 0, 8, 0), 2), // no hits, adjacent below
            ((50, 100, 0, 8, 0), 1),  // no hits, random
            ((50, 100, 0, 8, 8), 4),  // ... but not below half the last window
            ((50, 100, 1, 8, 0), 4),  // 3 rounded up to 4
            ((50, 100, 7, 8, 0), 8),  // 9 rounded up to 16, capped at 8
            ((50, 100, 7, 32, 0), 16),
        ] {
            let (p, o, h, m, w) = args;
            assert_eq!(swapin_window(p, o, h, m, w), pages, "{args:?}");
        }
    }

    /// Sixteen pages paged out (slots 1..=16, in address order) of a 6.12 kernel at
    /// page-cluster `pc`.
    fn paged_out(pc: u32) -> (Kernel, u32, u64) {
        let mut k = kernel("6.12");
        k.set_page_cluster(pc).unwrap();
        let (pid, a) = proc_with_pages(&mut k, false, 16);
        k.madvise(pid, a, 16 * 4096, Advice::Pageout).unwrap();
        for i in 0..16u64 {
            let pte = k.pte_at(pid, a + i * 4096).unwrap();
            assert_eq!(k.swp_format().swp_offset(pte), i + 1, "page {i} in slot {}", i + 1);
        }
        (k, pid, a)
    }

    #[test]
    fn a_swap_fault_reads_the_page_cluster_aligned_cluster_and_its_neighbours_fault_minor() {
        // swap_cluster_readahead (mm/swap_state.c v6.12): "Read a page_cluster sized and
        // aligned cluster around offset"; the first window is 8 (4 initial hits); do_swap_page
        // finds the others in the swap cache (swap_cache_get_folio): no major fault, SWAP_RA_HIT
        let (mut k, pid, a) = paged_out(3);
        let v = |k: &Kernel, c| k.vmstat.get(c);
        assert_eq!(k.access(pid, 0, a + 8 * 4096, false, 0).unwrap(), Access::Done { value: 9 });
        assert_eq!((v(&k, Vm::pgmajfault), v(&k, Vm::pswpin), v(&k, Vm::swap_ra)), (1, 8, 7));
        // slots 8..=15 are pages 7..=14: read ahead, in the swap cache, on the LRU, unmapped
        for i in [7u64, 9, 10, 11, 12, 13, 14] {
            let off = i as u32 + 1;
            let pfn = k.swap.cache_page(off).unwrap_or_else(|| panic!("slot {off} read ahead"));
            let f = k.mem.frames[pfn as usize];
            assert!(f.test(pg::PG_READAHEAD) && f.test(pg::PG_LRU) && k.mem.mapcount(pfn) == 0, "slot {off}");
        }
        assert!(k.swap.cache_page(7).is_none() && k.swap.cache_page(16).is_none());
        for i in [7u64, 9, 10, 11, 12, 13, 14] {
            assert_eq!(k.access(pid, 0, a + i * 4096, false, 0).unwrap(), Access::Done { value: i + 1 });
        }
        assert_eq!((v(&k, Vm::pgmajfault), v(&k, Vm::pswpin), v(&k, Vm::swap_ra_hit)), (1, 8, 7));
        // seven hits: a window of 16, capped at 8: [16, 23] holds slot 16 only
        assert_eq!(k.access(pid, 0, a + 15 * 4096, false, 0).unwrap(), Access::Done { value: 16 });
        assert_eq!((v(&k, Vm::pgmajfault), v(&k, Vm::pswpin)), (2, 9));
        k.check_invariants().unwrap();
    }

    #[test]
    fn page_cluster_0_reads_only_the_faulting_page() {
        // swapin_nr_pages (mm/swap_state.c v6.12): "max_pages = 1 << READ_ONCE(page_cluster);
        // if (max_pages <= 1) return 1;"
        let (mut k, pid, a) = paged_out(0);
        for i in 0..16u64 {
            assert_eq!(k.access(pid, 0, a + i * 4096, false, 0).unwrap(), Access::Done { value: i + 1 });
        }
        let v = |c| k.vmstat.get(c);
        assert_eq!((v(Vm::pgmajfault), v(Vm::pswpin), v(Vm::swap_ra), v(Vm::swap_ra_hit)), (16, 16, 0, 0));
    }

    #[test]
    fn page_cluster_defaults_as_swap_setup_and_rejects_what_the_sysctl_rejects() {
        // swap_setup (mm/swap.c v6.12): "if (megs < 16) page_cluster = 2; else page_cluster = 3;"
        assert_eq!(kernel("6.12").page_cluster(), 2);
        let p = crate::profile::Profile::get("6.12", crate::arch::Arch::S390x).unwrap();
        assert_eq!(Kernel::new(p, 16 << 20, 0, 0).unwrap().page_cluster(), 3);
        let mut k = kernel("6.12");
        assert!(k.set_page_cluster(31).is_ok());
        assert!(k.set_page_cluster(32).is_err());
        assert_eq!(k.page_cluster(), 31);
    }

    #[test]
    fn a_refault_of_a_page_evicted_as_workingset_is_restored_and_counted() {
        // workingset_eviction packs folio_test_workingset(folio) into the shadow;
        // workingset_refault (mm/workingset.c v6.12): "if (workingset) {
        // folio_set_workingset(folio); ... mod_lruvec_state(lruvec, WORKINGSET_RESTORE_BASE +
        // file, nr);" — and a page evicted without it is activated only
        for ws in [true, false] {
            let mut k = kernel("6.12");
            k.set_page_cluster(0).unwrap();
            let (pid, a) = proc_with_pages(&mut k, false, 5);
            // four active pages: the workingset a refault distance is measured against
            for i in 1..5 {
                let pfn = k.pte_at(pid, a + i * 4096).map(|p| k.arch().pte_pfn(p)).unwrap();
                k.activate_page(pfn);
            }
            let pfn = k.pte_at(pid, a).map(|p| k.arch().pte_pfn(p)).unwrap();
            if ws {
                k.mem.frames[pfn as usize].set(pg::PG_WORKINGSET);
            }
            k.madvise(pid, a, 4096, Advice::Pageout).unwrap();
            assert!(k.arch().is_swap_pte(k.pte_at(pid, a).unwrap()));
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 1 });
            let pfn = k.pte_at(pid, a).map(|p| k.arch().pte_pfn(p)).unwrap();
            let f = k.mem.frames[pfn as usize];
            assert!(f.test(pg::PG_ACTIVE), "ws={ws}: a refault distance of 1 (its own eviction) <= 4 activates");
            assert_eq!(f.test(pg::PG_WORKINGSET), ws);
            let v = |c| k.vmstat.get(c);
            assert_eq!(
                (v(Vm::workingset_refault_anon), v(Vm::workingset_activate_anon), v(Vm::workingset_restore_anon)),
                (1, 1, u64::from(ws)),
                "ws={ws}"
            );
        }
    }
}
