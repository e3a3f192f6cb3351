//! Swap readahead on the kernel (mm/swap_state.c v6.12): `swap_cache_get_folio`,
//! `swapin_nr_pages`, `swap_cluster_readahead` and the `vm.page-cluster` sysctl. The state
//! they keep (`SwapRa`) and the swap cache are in [`super`].

use super::*;
use crate::kernel::Kernel;

impl Kernel {
    /// `swap_cache_get_folio` (mm/swap_state.c v6.12) for a swap fault: the swap-cache page of
    /// `off` (no reference taken). A page readahead brought in (`folio_test_clear_readahead`,
    /// PG_readahead, which the model keeps in PG_reclaim as the kernel aliases them) counts a
    /// SWAP_RA_HIT and, for cluster readahead (`!vma || !vma_ra`), one more
    /// `swapin_readahead_hits`.
    pub(crate) fn swap_cache_get_folio(&mut self, off: u32) -> Option<u32> {
        let pfn = self.swap.cache_page(off)?;
        let f = &mut self.mem.frames[pfn as usize];
        if f.test(pg::PG_READAHEAD) {
            f.clear(pg::PG_READAHEAD);
            self.vmstat.inc(Vm::swap_ra_hit);
            self.swap_ra.hits = self.swap_ra.hits.saturating_add(1);
        }
        Some(pfn)
    }

    /// `swapin_nr_pages` (mm/swap_state.c v6.12): the window of this readahead, from the hits
    /// since the last one (which it takes), at most `1 << page_cluster`.
    pub(crate) fn swapin_nr_pages(&mut self, off: u32) -> u32 {
        let ra = &mut self.swap_ra;
        let max_pages = 1u32 << ra.page_cluster.min(PAGE_CLUSTER_MAX);
        if max_pages <= 1 {
            return 1;
        }
        let hits = std::mem::take(&mut ra.hits);
        let pages = swapin_window(ra.prev_offset, off, hits, max_pages, ra.last_pages);
        if hits == 0 {
            ra.prev_offset = off;
        }
        ra.last_pages = pages;
        pages
    }

    /// `swapin_readahead` → `swap_cluster_readahead` (mm/swap_state.c v6.12), the readahead
    /// half: "Read a page_cluster sized and aligned cluster around offset" (not the swap
    /// header, not past the device), each slot in use and not yet cached read into the swap
    /// cache and the inactive list (`__read_swap_cache_async`, with its workingset refault),
    /// those other than `off` marked PG_readahead and counted in SWAP_RA. The caller reads
    /// `off` itself, which this usually did already.
    pub(crate) fn swap_cluster_readahead(&mut self, off: u32) {
        let mask = self.swapin_nr_pages(off) as u64 - 1;
        if mask == 0 {
            return;
        }
        let start = (off as u64 & !mask).max(1);
        let end = (off as u64 | mask).min(self.swap.total() as u64);
        for o in start..=end {
            let o = o as u32;
            if self.swap.cache_page(o).is_some() || self.swap.count(o) == 0 {
                continue; // cached (the folio is only looked up) or free (-ENOENT)
            }
            let Ok((pfn, allocated)) = self.swapin_page(o) else { continue };
            if allocated && o != off {
                self.mem.frames[pfn as usize].set(pg::PG_READAHEAD);
                self.vmstat.inc(Vm::swap_ra);
            }
            self.put_page(pfn);
        }
    }

    /// Set `vm.page-cluster` (`page_cluster`, 0..=31, as the sysctl accepts).
    pub fn set_page_cluster(&mut self, v: u32) -> crate::error::Result<()> {
        let Some(v) = u8::try_from(v).ok().filter(|v| *v <= PAGE_CLUSTER_MAX) else {
            return Err(crate::error::Error::invalid(format!("vm.page-cluster is 0 to {PAGE_CLUSTER_MAX}, not {v}")));
        };
        self.swap_ra.page_cluster = v;
        Ok(())
    }

    /// `vm.page-cluster`.
    pub fn page_cluster(&self) -> u8 {
        self.swap_ra.page_cluster
    }
}
