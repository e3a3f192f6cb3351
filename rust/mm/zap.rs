//! Unmapping page ranges (`zap_page_range` → `zap_pte_range`, mm/memory.c) and the helpers
//! that drop a mapping of a page or a swap entry.

use crate::kernel::Kernel;
use crate::mm::page::{ZERO_PFN, pg};
use crate::mm::swapfile::SWAP_HAS_CACHE;
use crate::mm::{MM_SWAPENTS, vm};

impl Kernel {
    /// `zap_page_range(vma, start, end)`: clear every PTE of `[start, end)` in `vma`, dropping
    /// mappings (rss, mapcount, page references) and swap entries (`free_swap_and_cache`).
    /// `full` marks a teardown (munmap/exit: `unmap_vmas`; shmem truncation) rather than a
    /// MADV_DONTNEED; it is 6.12's `ZAP_FLAG_DROP_MARKER` (`zap_drop_markers`).
    ///
    /// PTE markers (v5.19+, 6.12 mm/memory.c `zap_nonpresent_ptes`, `zap_present_folio_ptes`,
    /// `zap_install_uffd_wp_if_needed`): a uffd-wp marker is dropped in an anonymous VMA or
    /// with `full` and kept otherwise ("For anon: always drop the marker; for file: only drop
    /// the marker if explicitly requested"); a uffd-wp file PTE that is zapped without `full`
    /// leaves a marker.
    pub(crate) fn zap_page_range(&mut self, vma: u32, start: u64, end: u64, full: bool) {
        self.zap_page_range_details(vma, start, end, full, true);
    }

    /// [`Kernel::zap_page_range`] with `zap_details.even_cows` (mm/memory.c; 4.17
    /// `details->check_mapping`, 6.12 `should_zap_cows` / `should_zap_folio`): without
    /// `even_cows` (`unmap_mapping_range(…, 0)`: shmem_fallocate's hole punch, "hole-punching
    /// leaves COWed pages") the private anonymous pages of a MAP_PRIVATE mapping and its swap
    /// and hwpoison entries are left alone ("If details->check_mapping, we leave swap entries",
    /// 4.17; "Genuine swap entries, hence a private anon pages", 6.12).
    pub(crate) fn zap_page_range_details(&mut self, vma: u32, start: u64, end: u64, full: bool, even_cows: bool) {
        // `likely(!(vma->vm_flags & VM_SEQ_READ))` (4.x) / `likely(vma_has_recency(vma))`
        // (v6.3+) before mark_page_accessed
        let pid = self.vma(vma).mm;
        let recency = if self.profile.vma_has_recency {
            self.vma_has_recency(vma)
        } else {
            self.vma(vma).flags & vm::VM_SEQ_READ == 0
        };
        let arch = self.arch();
        let swp = self.swp_format();
        let n = arch.geometry().0.pt_entries;
        let mut pts = Vec::new();
        self.mmx(pid).pt.for_each_pt(start, end, |va, base| pts.push((va, base)));
        for (va, base) in pts {
            for i in 0..n {
                let addr = va + ((i as u64) << 12);
                if addr < start || addr >= end {
                    continue;
                }
                let idx = base + i;
                let pte = self.mmx(pid).pt.pte(idx);
                if arch.pte_none(pte) {
                    continue;
                }
                if self.is_pte_marker(pte) {
                    if !self.vma(vma).is_anonymous() && !full {
                        continue;
                    }
                    self.pte_clear(pid, idx);
                } else if arch.pte_present(pte) {
                    if !even_cows && self.vm_normal_page(pte).is_some_and(|p| self.mem.frames[p as usize].anon()) {
                        continue;
                    }
                    let old = self.ptep_xchg(pid, idx, arch.pte_none_val());
                    // zap_install_uffd_wp_if_needed: "Zap on anonymous always means dropping
                    // everything", and not with ZAP_FLAG_DROP_MARKER
                    if !full && self.userfaultfd_wp(vma) && arch.pte_uffd_wp(old) {
                        self.pte_install_uffd_wp_if_needed(pid, idx, vma, old);
                    }
                    let pfn = arch.pte_pfn(old);
                    if arch.pte_special(old) || pfn == ZERO_PFN {
                        continue;
                    }
                    if !self.mem.frames[pfn as usize].anon() {
                        if arch.pte_dirty(old) {
                            self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
                        }
                        if arch.pte_young(old) && recency {
                            self.mark_page_accessed(pfn);
                        }
                    }
                    let c = self.mm_counter(pfn);
                    self.add_rss(pid, c, -1);
                    self.page_remove_rmap(pfn);
                    self.put_page(pfn);
                } else if !even_cows {
                    // swap and hwpoison entries belong to private anon pages
                    continue;
                } else if self.is_hwpoison_entry(pte) {
                    // zap_pte_range: a hwpoison entry holds no slot and counts in no rss
                    // counter; it is just cleared
                    self.pte_clear(pid, idx);
                } else {
                    let off = swp.swp_offset(pte) as u32;
                    self.add_rss(pid, MM_SWAPENTS, -1);
                    self.pte_clear(pid, idx);
                    self.free_swap_and_cache(off);
                }
            }
        }
    }

    /// `free_swap_and_cache` (mm/swapfile.c; 4.13..4.18 `free_swap_and_cache`, v4.19+
    /// `__try_to_reclaim_swap(p, offset, TTRS_UNMAPPED | TTRS_FULL)`, 6.12
    /// `free_swap_and_cache_nr`): drop one reference to a swap slot; if only the swap cache holds
    /// it any more, free that page from the cache when it is not mapped or when swap is more
    /// than half full (4.17: "Not mapped elsewhere, or swap space full? Free it!" `(!page_mapped
    /// (page) || mem_cgroup_swap_full(page))`; 6.12: `((flags & TTRS_UNMAPPED) &&
    /// !folio_mapped(folio)) || ((flags & TTRS_FULL) && mem_cgroup_swap_full(folio))`), and mark
    /// it dirty (`SetPageDirty` / `folio_set_dirty`): its only copy is in memory now.
    /// `mem_cgroup_swap_full` is `vm_swap_full()` here (no memcg swap limits).
    pub(crate) fn free_swap_and_cache(&mut self, off: u32) {
        if self.swap.free(off) == SWAP_HAS_CACHE {
            if let Some(pfn) = self.swap.cache_page(off) {
                let f = &self.mem.frames[pfn as usize];
                // trylock_page fails while reclaim holds the page isolated; a page under
                // writeback stays (folio_swapcache_freeable, 4.17 try_to_free_swap)
                if (!f.mapped() || self.swap.full_half()) && !f.test(pg::PG_ISOLATED) && !f.test(pg::PG_WRITEBACK) {
                    // SetPageDirty before the cache's reference goes (it may be the last)
                    self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
                    self.delete_from_swap_cache(pfn);
                }
            }
        }
    }

    /// `delete_from_swap_cache`: the page leaves the swap cache, dropping the cache's
    /// reference and SWAP_HAS_CACHE of its slot.
    pub(crate) fn delete_from_swap_cache(&mut self, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        let Some(off) = f.swap_offset() else { return };
        f.private = 0;
        f.clear(pg::PG_SWAPCACHE);
        self.swap.put_cache(off);
        self.put_page(pfn);
    }

    /// `try_to_free_swap` / `folio_free_swap`: free the swap slot of a swap-cache page that no
    /// swap PTE references any more and that is not under writeback (6.12
    /// `folio_swapcache_freeable`: "if (folio_test_writeback(folio)) return false;"; 4.17
    /// `try_to_free_swap`: "if (PageWriteback(page)) return 0;"). Returns whether it did.
    pub(crate) fn try_to_free_swap(&mut self, pfn: u32) -> bool {
        let f = &self.mem.frames[pfn as usize];
        let Some(off) = f.swap_offset() else {
            return false;
        };
        if f.test(pg::PG_WRITEBACK) {
            return false;
        }
        if self.swap.count(off) != 0 {
            return false;
        }
        self.delete_from_swap_cache(pfn);
        self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::arch::Arch;
    use crate::fault::Access;
    use crate::kernel::Kernel;
    use crate::mm::page::pg;
    use crate::profile::Profile;
    use crate::testutil::proc_with_pages;

    #[test]
    fn unmapping_the_last_other_swap_pte_drops_a_mapped_pages_swap_copy_only_when_swap_is_half_full() {
        // 4.17 mm/swapfile.c free_swap_and_cache: "Not mapped elsewhere, or swap space full?
        // Free it!" `(!page_mapped(page) || mem_cgroup_swap_full(page))` then
        // `delete_from_swap_cache(page); SetPageDirty(page);`; 6.12 free_swap_and_cache_nr →
        // __try_to_reclaim_swap(si, offset, TTRS_UNMAPPED | TTRS_FULL)
        for profile in ["4.13", "4.17", "4.18", "6.12"] {
            for (pages, full) in [(8u64, false), (48, true)] {
                // 64 swap slots: 8 swapped pages leave it far from half full, 48 past half
                let mut k = Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), 8 << 20, 64 << 12, 1).unwrap();
                let (pid, a) = proc_with_pages(&mut k, false, pages);
                for _ in 0..32 {
                    if (0..pages).all(|i| k.arch().is_swap_pte(k.pte_at(pid, a + i * 4096).unwrap())) {
                        break;
                    }
                    k.reclaim(64);
                }
                assert!((0..pages).all(|i| k.arch().is_swap_pte(k.pte_at(pid, a + i * 4096).unwrap())));
                assert_eq!(k.swap.full_half(), full, "{profile}");
                let child = k.fork(pid).unwrap();
                assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 1 });
                let pfn = k.arch().pte_pfn(k.pte_at(pid, a).unwrap()) as usize;
                assert!(k.mem.frames[pfn].test(pg::PG_SWAPCACHE), "{profile}: the child's swap PTE holds the slot");
                k.exit_mm(child).unwrap();
                let f = k.mem.frames[pfn];
                assert_eq!(!f.test(pg::PG_SWAPCACHE), full, "{profile} {pages}: {f:?}");
                assert_eq!(f.test(pg::PG_DIRTY), full, "{profile} {pages}: {f:?}");
                k.check_invariants().unwrap();
            }
        }
    }
}
