//! madvise (mm/madvise.c): DONTNEED, FREE, REMOVE, COLD, PAGEOUT, WILLNEED and the access
//! pattern hints, with the kernel's checks and errnos; HWPOISON in [`crate::mm::memory_failure`].

use crate::error::{Errno, Error, Result};
use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::{MM_SWAPENTS, vm};
use crate::sim::log::Ev;

/// `MADV_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    Normal = 0,
    Random = 1,
    Sequential = 2,
    Willneed = 3,
    Dontneed = 4,
    Free = 8,
    Remove = 9,
    Cold = 20,
    Pageout = 21,
    /// x86_64 only (CONFIG_MEMORY_FAILURE); -EINVAL on s390.
    Hwpoison = 100,
}

impl Advice {
    pub const ALL: [(&'static str, Advice); 10] = [
        ("normal", Advice::Normal),
        ("random", Advice::Random),
        ("sequential", Advice::Sequential),
        ("willneed", Advice::Willneed),
        ("dontneed", Advice::Dontneed),
        ("free", Advice::Free),
        ("remove", Advice::Remove),
        ("cold", Advice::Cold),
        ("pageout", Advice::Pageout),
        ("hwpoison", Advice::Hwpoison),
    ];

    /// By name (`"dontneed"`, `"MADV_DONTNEED"`); an unknown name is -EINVAL as an unknown
    /// behaviour is for madvise(2).
    pub fn parse(s: &str) -> Result<Advice> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_prefix("madv_").unwrap_or(&t);
        Advice::ALL.iter().find(|(n, _)| *n == t).map(|(_, a)| *a).ok_or_else(|| {
            let names: Vec<&str> = Advice::ALL.iter().map(|(n, _)| *n).collect();
            Error::errno(Errno::EINVAL, "madvise", format!("unknown advice {s:?}; known: {}", names.join(", ")))
        })
    }
}

impl Kernel {
    /// `madvise(addr, len, advice)`. Holes in the range are skipped and reported as -ENOMEM
    /// after the mapped parts were advised, as the kernel does.
    pub fn madvise(&mut self, pid: u32, addr: u64, len: u64, advice: Advice) -> Result<()> {
        self.mm(pid)?;
        if matches!(advice, Advice::Cold | Advice::Pageout) && !self.profile.madv_cold_pageout {
            return Err(Error::errno(
                Errno::EINVAL,
                "madvise",
                format!(
                    "MADV_{} does not exist in {} (added in v5.4)",
                    format!("{advice:?}").to_uppercase(),
                    self.profile.name
                ),
            ));
        }
        if advice == Advice::Hwpoison && self.swp_hwpoison_type().is_none() {
            // madvise_behavior_valid: MADV_HWPOISON exists only with CONFIG_MEMORY_FAILURE
            return self.madvise_hwpoison(pid, addr, addr);
        }
        let end = self.check_range("madvise", addr, len)?;
        if end == addr {
            return Ok(());
        }
        if advice == Advice::Hwpoison {
            // do_madvise hands MADV_HWPOISON to madvise_inject_error before any VMA walk
            return self.madvise_hwpoison(pid, addr, end);
        }
        let mut hole = false;
        let mut cur = addr;
        let ids = match advice {
            Advice::Normal | Advice::Random | Advice::Sequential => self.split_range(pid, addr, end),
            _ => self.vmas_in(pid, addr, end),
        };
        for &id in &ids {
            let (vs, ve) = (self.vma(id).start, self.vma(id).end);
            if vs > cur {
                hole = true;
            }
            let s = addr.max(vs);
            let e = end.min(ve);
            cur = ve;
            self.madvise_vma(id, s, e, advice)?;
        }
        if matches!(advice, Advice::Normal | Advice::Random | Advice::Sequential) {
            self.vma_merge_all(&ids);
        }
        if cur < end {
            hole = true;
        }
        self.log(Ev::Madvise, pid, 0, addr, end - addr, advice as u64, hole as u64);
        self.settle();
        if hole {
            return Err(Error::errno(Errno::ENOMEM, "madvise", format!("part of {addr:#x}..{end:#x} is not mapped")));
        }
        Ok(())
    }

    fn madvise_vma(&mut self, id: u32, s: u64, e: u64, advice: Advice) -> Result<()> {
        let flags = self.vma(id).flags;
        let locked = flags & (vm::VM_LOCKED | vm::VM_HUGETLB | vm::VM_PFNMAP) != 0;
        let einval = |why: &str| Err(Error::errno(Errno::EINVAL, "madvise", why.to_string()));
        match advice {
            Advice::Normal | Advice::Random | Advice::Sequential => {
                let v = self.vma_mut(id);
                v.flags &= !(vm::VM_RAND_READ | vm::VM_SEQ_READ);
                v.flags |= match advice {
                    Advice::Random => vm::VM_RAND_READ,
                    Advice::Sequential => vm::VM_SEQ_READ,
                    _ => 0,
                };
            }
            Advice::Willneed => self.madvise_willneed(id, s, e),
            Advice::Dontneed => {
                if locked {
                    return einval("MADV_DONTNEED on a locked (or hugetlb, PFN) mapping");
                }
                self.userfaultfd_remove(id, s, e);
                self.zap_page_range(id, s, e, false);
            }
            Advice::Free => {
                if locked {
                    return einval("MADV_FREE on a locked (or hugetlb, PFN) mapping");
                }
                if !self.vma(id).is_anonymous() {
                    return einval("MADV_FREE only applies to private anonymous memory");
                }
                self.userfaultfd_remove(id, s, e);
                self.madvise_free_range(id, s, e);
            }
            Advice::Remove => {
                if flags & vm::VM_LOCKED != 0 {
                    return einval("MADV_REMOVE on a locked mapping");
                }
                let Some(file) = self.vma(id).file else {
                    return einval("MADV_REMOVE needs a shmem (file) mapping");
                };
                if flags & (vm::VM_SHARED | vm::VM_WRITE) != (vm::VM_SHARED | vm::VM_WRITE) {
                    return Err(Error::errno(Errno::EACCES, "madvise", "MADV_REMOVE needs a shared writable mapping"));
                }
                self.userfaultfd_remove(id, s, e);
                let v = self.vma(id);
                let (p0, p1) = (v.pgoff_of(s), v.pgoff_of(e));
                self.shmem_punch(file, p0, p1);
            }
            Advice::Cold | Advice::Pageout => {
                if locked {
                    return einval("MADV_COLD/PAGEOUT on a locked (or hugetlb, PFN) mapping");
                }
                self.madvise_cold_or_pageout(id, s, e, advice == Advice::Pageout);
            }
            Advice::Hwpoison => unreachable!("madvise handles MADV_HWPOISON before the VMA walk"),
        }
        Ok(())
    }

    /// `madvise_free_pte_range` (mm/madvise.c, the same decisions in 4.13..6.12): swap entries
    /// are freed; a present page is made clean and old here and put on the lazyfree list
    /// (`mark_page_lazyfree` / `folio_mark_lazyfree`), reclaim may then drop it without writing.
    /// A swap-cache or PG_dirty page must be mapped only here (`page_mapcount(page) != 1` →
    /// skip; 6.12 `folio_mapcount(folio) != folio_nr_pages(folio)`), lose its swap slot
    /// (`try_to_free_swap`) and PG_dirty; any other page, shared or not, is marked lazyfree.
    /// A hwpoison entry is cleared in 6.x (`is_hwpoison_entry(entry) ||
    /// is_poisoned_swp_entry(entry)` → `pte_clear_not_present_full`) and left alone in 4.x
    /// (`if (non_swap_entry(entry)) continue;`).
    fn madvise_free_range(&mut self, id: u32, s: u64, e: u64) {
        let arch = self.arch();
        let swp = self.swp_format();
        let pid = self.vma(id).mm;
        let mut cur = s;
        while let Some((a, idx)) = self.next_pte_slot(pid, cur, e) {
            cur = a + 4096;
            let pte = self.mmx(pid).pt.pte(idx);
            if self.is_hwpoison_entry(pte) {
                if self.hwpoison_6x() {
                    self.pte_clear(pid, idx);
                }
            } else if self.is_pte_marker(pte) {
                // a uffd-wp marker is a non_swap_entry that is neither hwpoison nor poisoned:
                // left alone
            } else if arch.is_swap_pte(pte) {
                let off = swp.swp_offset(pte) as u32;
                self.add_rss(pid, MM_SWAPENTS, -1);
                self.pte_clear(pid, idx);
                self.free_swap_and_cache(off);
            } else if arch.pte_present(pte) {
                let Some(pfn) = self.vm_normal_page(pte) else { continue };
                let f = self.mem.frames[pfn as usize];
                // Only a swap-cache or PG_dirty page must be exclusive ("If page is shared with
                // others, we couldn't clear PG_dirty of the page"): a clean shared page is made
                // lazyfree too, its other mappings' dirty PTEs keep it at reclaim.
                if f.test(pg::PG_SWAPCACHE) || f.test(pg::PG_DIRTY) {
                    if self.mem.mapcount(pfn) != 1 {
                        continue;
                    }
                    if f.test(pg::PG_SWAPCACHE) && !self.try_to_free_swap(pfn) {
                        continue;
                    }
                    self.mem.frames[pfn as usize].clear(pg::PG_DIRTY);
                }
                if arch.pte_young(pte) || arch.pte_dirty(pte) {
                    let old = self.ptep_clear_flush(pid, idx);
                    self.set_pte_at(pid, idx, arch.pte_mkclean(arch.pte_mkold(old)));
                }
                self.mark_page_lazyfree(pfn);
            }
        }
    }

    /// `madvise_cold_or_pageout_pte_range`: pages only this mapping uses are made old and
    /// deactivated (COLD) or reclaimed at once (PAGEOUT, `reclaim_pages` at the end of each page
    /// table, as the kernel calls it per PMD range).
    ///
    /// Young bit: COLD clears it (`if (!pageout && pte_young(ptent))`, then
    /// `clear_young_dirty_ptes(.., CYDP_CLEAR_YOUNG)`); PAGEOUT leaves the PTE young and
    /// `reclaim_pages(&folio_list, true)` ignores references instead. That is the v6.9+ shape
    /// (Barry Song, "mm: madvise: pageout: ignore references rather than clearing young"),
    /// which the "6.12" profile models; v5.4..v6.8 cleared young for PAGEOUT too and reclaimed
    /// without ignoring references. Simplification: no profile before v6.9 has MADV_PAGEOUT
    /// (the 4.x profiles return EINVAL), so the pre-v6.9 variant is not modelled.
    fn madvise_cold_or_pageout(&mut self, id: u32, s: u64, e: u64, pageout: bool) {
        let arch = self.arch();
        let pid = self.vma(id).mm;
        let n = arch.geometry().0.pt_entries;
        let mut list = Vec::new();
        let mut table = usize::MAX;
        let mut cur = s;
        while let Some((a, idx)) = self.next_pte_slot(pid, cur, e) {
            cur = a + 4096;
            // the kernel walks one page table (PMD range) at a time and reclaims what it
            // isolated there before it moves on
            if idx / n != table {
                table = idx / n;
                if !list.is_empty() {
                    self.reclaim_pages(std::mem::take(&mut list));
                }
            }
            let pte = self.mmx(pid).pt.pte(idx);
            if !arch.pte_present(pte) {
                continue;
            }
            if let Some(pfn) = self.vm_normal_page(pte) {
                let f = self.mem.frames[pfn as usize];
                if f.test(pg::PG_LRU) && self.mem.mapcount(pfn) == 1 {
                    if !pageout && arch.pte_young(pte) {
                        let old = self.ptep_clear_flush(pid, idx);
                        self.set_pte_at(pid, idx, arch.pte_mkold(old));
                    }
                    // "VM couldn't reclaim the folio unless we clear PG_young"; then
                    // madvise_cold_or_pageout_pte_range (v6.12): "if (folio_test_active(folio))
                    // folio_set_workingset(folio);" for COLD and PAGEOUT alike
                    let fm = &mut self.mem.frames[pfn as usize];
                    fm.clear(pg::PG_REFERENCED);
                    if fm.test(pg::PG_ACTIVE) {
                        fm.set(pg::PG_WORKINGSET);
                    }
                    if pageout {
                        if self.isolate_lru_page(pfn) {
                            list.push(pfn);
                        }
                    } else {
                        self.deactivate_page(pfn);
                    }
                }
            }
        }
        if pageout && !list.is_empty() {
            self.reclaim_pages(list);
        }
    }

    /// MADV_WILLNEED on anon memory (`force_swapin_readahead`): read swapped pages into the
    /// swap cache. A hwpoison entry is skipped (`non_swap_entry`).
    fn madvise_willneed(&mut self, id: u32, s: u64, e: u64) {
        let arch = self.arch();
        let swp = self.swp_format();
        let pid = self.vma(id).mm;
        let mut cur = s;
        while let Some((a, idx)) = self.next_pte_slot(pid, cur, e) {
            cur = a + 4096;
            let p = self.mmx(pid).pt.pte(idx);
            if arch.is_swap_pte(p) && !self.is_hwpoison_entry(p) && !self.is_pte_marker(p) {
                if let Ok((pfn, _)) = self.swapin_page(swp.swp_offset(p) as u32) {
                    self.put_page(pfn);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::vmstat::Vm;
    use crate::testutil::{kernel, proc_with_pages, swapped_out};
    use crate::vmscan::lru::LruList;

    /// mm/madvise.c `force_swapin_readahead` / `swapin_walk_pmd_entry` (4.13..6.12): each swap
    /// entry in the range is read into the swap cache (`read_swap_cache_async`) and the reference
    /// dropped; the swap PTE stays, for the next fault to find the page in the swap cache.
    #[test]
    fn madv_willneed_reads_a_swapped_page_into_the_swap_cache_and_keeps_the_swap_pte() {
        for profile in ["4.13", "4.18", "6.12"] {
            let (mut k, pid, a) = swapped_out(profile);
            let pte = k.pte_at(pid, a).unwrap();
            let off = k.swp_format().swp_offset(pte) as u32;
            k.madvise(pid, a, 4096, Advice::Willneed).unwrap();
            assert_eq!(k.pte_at(pid, a).unwrap(), pte, "{profile}: the swap PTE stays");
            let pfn = k.swap.cache_page(off).expect("read into the swap cache");
            let f = k.mem.frames[pfn as usize];
            assert!(f.test(pg::PG_SWAPCACHE) && k.mem.mapcount(pfn) == 0, "{profile}");
            k.check_invariants().unwrap();
        }
    }

    /// mm/madvise.c `madvise_free_pte_range` (4.13..6.12): the exclusivity test sits inside
    /// `if (PageSwapCache(page) || PageDirty(page))`, so a clean anon page that a fork shares is
    /// still made lazyfree (SwapBacked cleared, moved to the inactive file list) and this
    /// mapping's PTE made old and clean; the child's PTE is left as it was.
    #[test]
    fn madv_free_makes_a_clean_shared_page_lazyfree_and_leaves_the_other_mapping() {
        for profile in ["4.13", "4.17", "4.18", "6.12"] {
            let mut k = kernel(profile);
            let (parent, a) = proc_with_pages(&mut k, false, 1);
            let child = k.fork(parent).unwrap();
            let arch = k.arch();
            let pfn = arch.pte_pfn(k.pte_at(parent, a).unwrap());
            let child_pte = k.pte_at(child, a).unwrap();
            let f = k.mem.frames[pfn as usize];
            assert!(k.mem.mapcount(pfn) == 2 && !f.test(pg::PG_DIRTY) && !f.test(pg::PG_SWAPCACHE), "{profile}");
            k.madvise(parent, a, 4096, Advice::Free).unwrap();
            let f = k.mem.frames[pfn as usize];
            assert!(!f.test(pg::PG_SWAPBACKED), "{profile}: lazyfree");
            let p = k.pte_at(parent, a).unwrap();
            assert!(!arch.pte_young(p) && !arch.pte_dirty(p), "{profile}");
            assert_eq!(k.pte_at(child, a).unwrap(), child_pte, "{profile}");
            k.check_invariants().unwrap();
        }
    }

    fn pfn_at(k: &Kernel, pid: u32, a: u64) -> u32 {
        k.arch().pte_pfn(k.pte_at(pid, a).unwrap())
    }

    #[test]
    fn madv_cold_leaves_an_inactive_page_where_it_is_on_612() {
        // mm/swap.c v6.12 folio_deactivate: "if (folio_test_unevictable(folio) ||
        // !(folio_test_active(folio) || lru_gen_enabled())) return;" — the page at the tail of
        // the inactive list stays at the tail, next in line for reclaim
        let mut k = kernel("6.12");
        let (pid, a) = proc_with_pages(&mut k, false, 3);
        let tail = pfn_at(&k, pid, a);
        let before = k.lru.pages(&k.mem.frames, LruList::InactiveAnon);
        assert_eq!(k.lru.tail(LruList::InactiveAnon), Some(tail), "6.12: new anon pages start inactive");
        k.madvise(pid, a, 4096, Advice::Cold).unwrap();
        assert_eq!(k.lru.pages(&k.mem.frames, LruList::InactiveAnon), before);
        assert_eq!(k.lru.tail(LruList::InactiveAnon), Some(tail));
        assert_eq!(k.vmstat.get(Vm::pgdeactivate), 0);
    }

    #[test]
    fn madv_cold_deactivates_an_active_page_and_marks_it_workingset_on_612() {
        // mm/madvise.c v6.12 madvise_cold_or_pageout_pte_range: "if (folio_test_active(folio))
        // folio_set_workingset(folio);" then folio_deactivate
        let mut k = kernel("6.12");
        let (pid, a) = proc_with_pages(&mut k, false, 1);
        let pfn = pfn_at(&k, pid, a);
        k.activate_page(pfn);
        k.madvise(pid, a, 4096, Advice::Cold).unwrap();
        let f = k.mem.frames[pfn as usize];
        assert!(f.test(pg::PG_LRU) && !f.test(pg::PG_ACTIVE), "{:?}", f.flag_names());
        assert!(f.test(pg::PG_WORKINGSET), "{:?}", f.flag_names());
        assert_eq!(k.vmstat.get(Vm::pgdeactivate), 1);
    }

    #[test]
    fn madv_pageout_puts_a_kept_active_page_back_on_the_inactive_list_on_612() {
        // mm/vmscan.c v6.12 reclaim_pages: "folio_clear_active(folio); list_move(&folio->lru,
        // &node_folio_list);", and madvise sets PG_workingset on the active folio first
        let mut k = kernel("6.12");
        let (pid, a) = proc_with_pages(&mut k, false, 1);
        let pfn = pfn_at(&k, pid, a);
        k.activate_page(pfn);
        k.get_page(pfn); // an extra reference: __remove_mapping fails and the page is kept
        k.madvise(pid, a, 4096, Advice::Pageout).unwrap();
        let f = k.mem.frames[pfn as usize];
        assert!(f.test(pg::PG_LRU), "kept and put back: {:?}", f.flag_names());
        assert!(!f.test(pg::PG_ACTIVE), "reclaim_pages cleared PG_active: {:?}", f.flag_names());
        assert!(f.test(pg::PG_WORKINGSET), "{:?}", f.flag_names());
        assert_eq!(LruList::of(&f), LruList::InactiveAnon);
    }
}
