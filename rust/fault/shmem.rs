//! Faults on shmem mappings: `do_fault` → `do_read_fault` / `do_cow_fault` /
//! `do_shared_fault` (mm/memory.c) with `shmem_fault` → `shmem_get_folio_gfp` (mm/shmem.c).

use super::{Fault, Vmf};
use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::{CacheEntry, MM_ANONPAGES, MM_SHMEMPAGES, vm};
use crate::sim::log::{Ev, fault_path};
use crate::uffd::{REASON_MINOR, REASON_MISSING};

impl Kernel {
    /// mm/shmem.c `shmem_get_folio_gfp` (6.12; 4.x `shmem_getpage_gfp`) for a fault: the page at `index` of `file`, from the page cache,
    /// swapped in, or new (zeroed). Returns the page with a reference for the caller.
    ///
    /// The userfault decisions follow the kernel's order: the entry is looked up first
    /// (`filemap_get_entry`, which returns a page or a swap value) and `if (folio && vma &&
    /// userfaultfd_minor(vma))` raises MINOR for either, *before* `shmem_swapin_folio`: a
    /// swapped page in a MINOR range stays in swap until UFFDIO_CONTINUE brings it in (v5.13
    /// `shmem_getpage_gfp` through v6.12 `shmem_get_folio_gfp`). MISSING is raised only when the
    /// index holds neither a page nor a swap entry.
    pub(crate) fn shmem_get_page(&mut self, vmf: Vmf, file: u32, index: u64) -> Result<(u32, bool), Fault> {
        let flags = self.vma(vmf.vma).flags;
        let entry = self.filex(file).pages.get(&index).copied();
        if entry.is_some() && flags & self.vm_uffd_minor() != 0 {
            return Err(self.handle_userfault(vmf, REASON_MINOR));
        }
        match entry {
            Some(CacheEntry::Page(pfn)) => {
                self.get_page(pfn);
                Ok((pfn, false))
            }
            Some(CacheEntry::Swap(off)) => self.shmem_swapin_folio(file, index, off, true),
            None => {
                if flags & vm::VM_UFFD_MISSING != 0 {
                    return Err(self.handle_userfault(vmf, REASON_MISSING));
                }
                let Some(pfn) = self.alloc_user_page() else {
                    return Err(Fault::Oom);
                };
                if self.filex(file).pages.contains_key(&index) {
                    self.put_page(pfn);
                    return Err(Fault::Retry);
                }
                self.shmem_add_to_page_cache(file, index, pfn);
                self.lru_cache_add(pfn);
                Ok((pfn, false))
            }
        }
    }

    /// mm/shmem.c `shmem_swapin_folio` (6.12): read the swap entry at `index` of `file` into the swap cache, move
    /// the page over into the page cache (marked dirty) and free the swap entry. Returns the page
    /// with a reference for the caller and whether it was a major fault; PGMAJFAULT is counted
    /// only for a fault (`if (fault_type)`), not for UFFDIO_CONTINUE's `shmem_get_folio`.
    pub(crate) fn shmem_swapin_folio(
        &mut self,
        file: u32,
        index: u64,
        off: u32,
        fault: bool,
    ) -> Result<(u32, bool), Fault> {
        // shmem_swapin_folio (mm/shmem.c v6.12): swap_cache_get_folio, else
        // shmem_swapin_cluster → swap_cluster_readahead, a major fault
        let major = match self.swap_cache_get_folio(off) {
            Some(_) => false,
            None => {
                self.swap_cluster_readahead(off);
                true
            }
        };
        let (pfn, _) = self.swapin_page(off)?;
        if major {
            // folio_lock: the task sleeps until the read completes
            self.io_schedule();
        }
        // "folio_wait_writeback(folio);" (shmem_swapin_folio, v6.12) before the page leaves
        // the swap cache
        self.folio_wait_writeback(pfn);
        self.delete_from_swap_cache(pfn);
        self.shmem_add_to_page_cache(file, index, pfn);
        self.lru_relink_if_needed(pfn);
        self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
        self.swap.free(off);
        if major && fault {
            self.count_majfault();
        }
        Ok((pfn, major))
    }

    /// A page that moved from the swap cache to the shmem page cache keeps its LRU list.
    fn lru_relink_if_needed(&mut self, pfn: u32) {
        let f = &self.mem.frames[pfn as usize];
        if !f.test(pg::PG_LRU) && !f.test(pg::PG_ISOLATED) {
            self.lru_cache_add(pfn);
        }
    }

    /// mm/memory.c `do_fault` (4.17, 6.12) for a shmem VMA: `do_read_fault` (fault-around first,
    /// [`Kernel::do_fault_around`]; `__do_fault` only when the window did not map the faulting
    /// page), `do_cow_fault` for a private write, `do_shared_fault`.
    pub(crate) fn do_fault(&mut self, vmf: Vmf) -> Fault {
        let arch = self.arch();
        let (flags, prot, file, index) = {
            let v = self.vma(vmf.vma);
            (v.flags, v.page_prot, v.file.expect("file vma"), v.pgoff_of(vmf.addr))
        };
        // do_read_fault: "if (should_fault_around(vmf)) { ret = do_fault_around(vmf); if (ret)
        // return ret; }", before __do_fault (whose shmem_fault is what refuses an index beyond
        // EOF, so the window's cached pages below EOF are mapped even then)
        if !vmf.write && self.should_fault_around(vmf.vma) {
            if let Some(pfn) = self.do_fault_around(&vmf, file, index) {
                // VM_FAULT_NOPAGE: the window mapped the faulting page; one minor fault
                self.tick(self.cost.minor_fault);
                self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, pfn as u64, fault_path::FILE_READ, 0);
                return Fault::Retry;
            }
        }
        if index >= self.filex(file).size_pages {
            return Fault::Sigbus;
        }
        let (pfn, _major) = match self.shmem_get_page(vmf, file, index) {
            Ok(x) => x,
            Err(f) => return f,
        };
        // finish_fault → vmf_pte_changed: against vmf->orig_pte (none, or a marker)
        let cur = self.mmx(vmf.pid).pt.pte(vmf.idx);
        if !(arch.pte_none(cur) || (cur == vmf.orig_pte && self.is_pte_marker(cur))) {
            self.put_page(pfn);
            return Fault::Retry;
        }
        // set_pte_range: "if (unlikely(uffd_wp)) entry = pte_mkuffd_wp(entry);"
        let uffd_wp = self.vmf_orig_pte_uffd_wp(&vmf);
        if vmf.write && flags & vm::VM_SHARED == 0 {
            // do_cow_fault: a private anon copy of the file page
            self.anon_vma_prepare(vmf.vma);
            let Some(new) = self.alloc_user_page() else {
                self.put_page(pfn);
                return Fault::Oom;
            };
            self.mem.set_content(new, self.mem.content(pfn));
            self.put_page(pfn);
            let mut entry = arch.pte_mkwrite(arch.pte_mkdirty(self.mk_pte(new, prot)));
            if uffd_wp {
                entry = arch.pte_mkuffd_wp(entry);
            }
            self.add_rss(vmf.pid, MM_ANONPAGES, 1);
            self.page_add_new_anon_rmap(new, vmf.vma, vmf.addr);
            self.lru_cache_add_vma(new, vmf.vma);
            self.set_pte_at(vmf.pid, vmf.idx, entry);
            self.tick(self.cost.minor_fault);
            self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, new as u64, fault_path::FILE_COW, 1);
            return Fault::Retry;
        }
        // do_read_fault / do_shared_fault: map the page cache page (finish_fault)
        let mut entry = self.mk_pte(pfn, prot);
        let path = if vmf.write {
            entry = arch.pte_mkwrite(arch.pte_mkdirty(entry));
            self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
            fault_path::SHMEM
        } else {
            fault_path::FILE_READ
        };
        if uffd_wp {
            entry = arch.pte_mkuffd_wp(entry);
        }
        self.add_rss(vmf.pid, MM_SHMEMPAGES, 1);
        self.page_add_rmap(pfn);
        if flags & vm::VM_LOCKED != 0 {
            self.mlock_page(pfn);
        }
        self.set_pte_at(vmf.pid, vmf.idx, entry);
        self.tick(self.cost.minor_fault);
        self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, pfn as u64, path, vmf.write as u64);
        Fault::Retry
    }

    /// mm/memory.c `should_fault_around` (6.12): shmem's `vm_ops->map_pages` is
    /// `filemap_map_pages` and `fault_around_pages` is 64 KiB / PAGE_SIZE = 16 > 1, so only
    /// `uffd_disable_fault_around` (include/linux/userfaultfd_k.h: `vma->vm_flags &
    /// (VM_UFFD_WP | VM_UFFD_MINOR)`) turns it off. 4.17's `do_read_fault` has no uffd test
    /// (`if (vma->vm_ops->map_pages && fault_around_bytes >> PAGE_SHIFT > 1)`), but on the 4.x
    /// profiles a shmem VMA can carry neither flag (no MINOR mode; `vma_can_userfault` refuses
    /// WP on shmem before v5.19), so the test is the same in every profile and needs no switch.
    fn should_fault_around(&self, vma: u32) -> bool {
        self.vma(vma).flags & (vm::VM_UFFD_WP | self.vm_uffd_minor()) == 0
    }

    /// mm/memory.c `do_fault_around` (6.12.117; 4.17 computes the same window): map the cached
    /// pages of the `FAULT_AROUND_PAGES`-aligned window around the faulting address, clamped to
    /// the VMA and the page table. 6.12:
    /// `from_pte = max(ALIGN_DOWN(pte_off, nr_pages), pte_off - min(pte_off, vma_off))`,
    /// `to_pte = min3(from_pte + nr_pages, PTRS_PER_PTE, pte_off + vma_pages - vma_off) - 1`;
    /// 4.17: `vmf->address = max(address & mask, vm_start)`, `end_pgoff = min3(end of the page
    /// table, end of the VMA, start_pgoff + nr_pages - 1)`.
    /// Returns the faulting page's pfn when the window mapped it (`VM_FAULT_NOPAGE`; 4.17: "check
    /// if the page fault is solved", `!pte_none(*vmf->pte)`).
    fn do_fault_around(&mut self, vmf: &Vmf, file: u32, index: u64) -> Option<u32> {
        let (start, end) = {
            let v = self.vma(vmf.vma);
            (v.start, v.end)
        };
        let ptrs = self.mmx(vmf.pid).pt.geometry().pt_entries as u64;
        let pte_off = (vmf.addr >> 12) % ptrs;
        let vma_off = (vmf.addr - start) >> 12;
        let vma_pages = (end - start) >> 12;
        let from_pte = (pte_off & !(FAULT_AROUND_PAGES - 1)).max(pte_off - pte_off.min(vma_off));
        let to_pte = (from_pte + FAULT_AROUND_PAGES).min(ptrs).min(pte_off + vma_pages - vma_off) - 1;
        self.filemap_map_pages(vmf, file, index, index + from_pte - pte_off, index + to_pte - pte_off)
    }

    /// mm/filemap.c `filemap_map_pages` (6.12.117: `next_uptodate_folio`,
    /// `filemap_map_order0_folio` → mm/memory.c `set_pte_range`; 4.x: the
    /// `radix_tree_for_each_slot` loop → `alloc_set_pte`, read in a 4.x copy, search id
    /// 2584207160) for the order-0 pages of a shmem file: every index of `start..=end` below
    /// EOF whose page-cache entry is a page (not a swap value), not locked, uptodate, not
    /// PG_readahead (= PG_reclaim), not hwpoisoned, and whose PTE is none (a PTE marker is left
    /// to its own fault) is mapped with `mk_pte(page, vma->vm_page_prot)`: young on s390 and
    /// x86_64 (`arch_wants_old_prefaulted_pte` is arm64's only; 4.x had no old prefault),
    /// never made writable or dirty by the fault, uffd-wp when `vmf_orig_pte_uffd_wp`. Each
    /// takes a reference, a file rmap (`folio_add_file_rmap_ptes`, which mlocks in a VM_LOCKED
    /// VMA) and an MM_SHMEMPAGES count. `f_ra.mmap_miss` is not modelled: only
    /// `filemap_fault`'s readahead reads it, and `shmem_fault` does no readahead. Returns the
    /// pfn mapped at `index` (`if (vmf->address == addr) ret = VM_FAULT_NOPAGE;`).
    fn filemap_map_pages(&mut self, vmf: &Vmf, file: u32, index: u64, start: u64, end: u64) -> Option<u32> {
        let arch = self.arch();
        let (flags, prot) = {
            let v = self.vma(vmf.vma);
            (v.flags, v.page_prot)
        };
        // next_uptodate_folio: "if (xas->xa_index >= max_idx) goto unlock;"
        let max_idx = self.filex(file).size_pages;
        let pages: Vec<(u64, u32)> = self
            .filex(file)
            .pages
            .range(start..=end)
            .filter(|&(&i, _)| i < max_idx)
            .filter_map(|(&i, e)| match e {
                CacheEntry::Page(pfn) => Some((i, *pfn)),
                CacheEntry::Swap(_) => None, // xa_is_value
            })
            .collect();
        let uffd_wp = self.vmf_orig_pte_uffd_wp(vmf);
        let mut rss = 0;
        let mut nopage = None;
        for (i, pfn) in pages {
            let f = &self.mem.frames[pfn as usize];
            if f.test(pg::PG_LOCKED) || !f.referenced() {
                continue; // folio_test_locked, folio_try_get
            }
            if !f.test(pg::PG_UPTODATE) || f.test(pg::PG_READAHEAD) || f.test(pg::PG_HWPOISON) {
                continue;
            }
            let idx = (vmf.idx as u64 + i - index) as usize;
            if !arch.pte_none(self.mmx(vmf.pid).pt.pte(idx)) {
                continue;
            }
            // set_pte_range: "entry = mk_pte(page, vma->vm_page_prot);" then pte_sw_mkyoung
            // (a no-op here) for a prefault as for the faulting page
            let mut entry = self.mk_pte(pfn, prot);
            if uffd_wp {
                entry = arch.pte_mkuffd_wp(entry);
            }
            self.page_add_rmap(pfn);
            if flags & vm::VM_LOCKED != 0 {
                self.mlock_page(pfn);
            }
            self.set_pte_at(vmf.pid, idx, entry);
            self.get_page(pfn); // folio_ref_inc
            rss += 1;
            if i == index {
                nopage = Some(pfn);
            }
        }
        if rss > 0 {
            self.add_rss(vmf.pid, MM_SHMEMPAGES, rss);
        }
        nopage
    }
}

/// `fault_around_pages` (mm/memory.c 6.12: `65536 >> PAGE_SHIFT`; 4.17 `fault_around_bytes =
/// rounddown_pow_of_two(65536)`): the fault-around window, 16 pages of 4 KiB.
pub const FAULT_AROUND_PAGES: u64 = 16;

#[cfg(test)]
mod tests {
    use super::FAULT_AROUND_PAGES;
    use crate::arch::Arch;
    use crate::fault::Access;
    use crate::kernel::Kernel;
    use crate::mm::madvise::Advice;
    use crate::mm::mmap::MapKind;
    use crate::mm::vmstat::Vm;
    use crate::mm::{CacheEntry, MM_SHMEMPAGES};
    use crate::profile::Profile;
    use crate::testutil::kernel;
    use crate::uffd::ioctl::{
        UFFD_API, UFFDIO_REGISTER_MODE_MINOR, UFFDIO_REGISTER_MODE_MISSING, UFFDIO_REGISTER_MODE_WP,
    };

    const PAGE: u64 = 4096;
    const WINDOW: u64 = FAULT_AROUND_PAGES * PAGE;

    /// A 48-page shared shmem mapping whose pages are all in the page cache (written, then
    /// zapped by MADV_DONTNEED), and the first 64 KiB-aligned address 16 pages into it: a
    /// whole fault-around window inside the VMA with cached, unmapped pages on both sides.
    fn cached_shmem(profile: &str) -> (Kernel, u32, u64, u64) {
        cached_shmem_on(kernel(profile))
    }

    fn cached_shmem_on(mut k: Kernel) -> (Kernel, u32, u64, u64) {
        let pid = k.spawn("t", false).unwrap();
        let a = k.mmap(pid, 48 * PAGE, MapKind::Shmem, true, None).unwrap();
        for i in 0..48 {
            k.access(pid, 0, a + i * PAGE, true, 100 + i).unwrap();
        }
        k.madvise(pid, a, 48 * PAGE, Advice::Dontneed).unwrap();
        let w = a.next_multiple_of(WINDOW) + WINDOW;
        (k, pid, a, w)
    }

    fn present(k: &Kernel, pid: u32, addr: u64) -> bool {
        k.pte_at(pid, addr).is_some_and(|p| k.arch().pte_present(p))
    }

    fn shmem_rss(k: &Kernel, pid: u32) -> i64 {
        k.mmx(pid).rss[MM_SHMEMPAGES]
    }

    /// mm/memory.c `do_read_fault` → `do_fault_around` → mm/filemap.c `filemap_map_pages`
    /// (4.17 and 6.12.117): a read fault on one page of a cached shmem file maps the 16 pages of
    /// its 64 KiB-aligned window and nothing outside it, as one minor fault; each mapped page
    /// takes a map count and a reference, and MM_SHMEMPAGES counts all 16.
    #[test]
    fn read_fault_on_cached_shmem_maps_its_aligned_16_page_window() {
        for profile in ["4.17", "6.12"] {
            let (mut k, pid, a, w) = cached_shmem(profile);
            let (faults, majors) = (k.vmstat.get(Vm::pgfault), k.vmstat.get(Vm::pgmajfault));
            let at = w + 5 * PAGE;
            assert_eq!(k.access(pid, 0, at, false, 0).unwrap(), Access::Done { value: 100 + (at - a) / PAGE });
            assert_eq!(k.vmstat.get(Vm::pgfault), faults + 1, "{profile}: one fault");
            assert_eq!(k.vmstat.get(Vm::pgmajfault), majors, "{profile}: a minor fault");
            for i in 0..FAULT_AROUND_PAGES {
                let addr = w + i * PAGE;
                assert!(present(&k, pid, addr), "{profile}: page {i} of the window is mapped");
                let pfn = k.arch().pte_pfn(k.pte_at(pid, addr).unwrap());
                assert_eq!(
                    (k.mem.mapcount(pfn), k.mem.refcount(pfn)),
                    (1, 2),
                    "{profile}: page {i}: the cache's and the PTE's references"
                );
            }
            assert!(!present(&k, pid, w - PAGE), "{profile}: the page before the window is not mapped");
            assert!(!present(&k, pid, w + WINDOW), "{profile}: the page after the window is not mapped");
            assert_eq!(shmem_rss(&k, pid), FAULT_AROUND_PAGES as i64, "{profile}");
            k.check_invariants().unwrap();
        }
    }

    /// The mapped neighbours take no fault of their own: 4.17 and 6.12.117 `filemap_map_pages`
    /// maps them young (`arch_wants_old_prefaulted_pte` is arm64's only), so a read of each is
    /// a plain access, on s390 as on x86_64.
    #[test]
    fn neighbours_mapped_by_fault_around_take_no_fault_on_their_next_read() {
        for profile in ["4.17", "6.12"] {
            let (mut k, pid, a, w) = cached_shmem(profile);
            k.access(pid, 0, w, false, 0).unwrap();
            let faults = k.vmstat.get(Vm::pgfault);
            for i in 1..FAULT_AROUND_PAGES {
                let addr = w + i * PAGE;
                assert!(k.arch().pte_young(k.pte_at(pid, addr).unwrap()), "{profile}: page {i} is young");
                assert_eq!(k.access(pid, 0, addr, false, 0).unwrap(), Access::Done { value: 100 + (addr - a) / PAGE });
            }
            assert_eq!(k.vmstat.get(Vm::pgfault), faults, "{profile}: no fault for the neighbours");
            // outside the window a read faults again (and maps that window)
            k.access(pid, 0, w + WINDOW, false, 0).unwrap();
            assert_eq!(k.vmstat.get(Vm::pgfault), faults + 1, "{profile}");
            k.check_invariants().unwrap();
        }
    }

    /// 6.12.117 `filemap_map_order0_folio`: "if (!pte_none(ptep_get(vmf->pte))) return ret;"
    /// (4.x `alloc_set_pte`: `if (!pte_none(*vmf->pte)) return VM_FAULT_NOPAGE;`): a second
    /// fault in a window whose other pages are mapped maps only the faulting page; the others
    /// keep one map count and MM_SHMEMPAGES is not counted twice.
    #[test]
    fn fault_around_skips_ptes_that_are_already_mapped() {
        for profile in ["4.17", "6.12"] {
            let (mut k, pid, _, w) = cached_shmem(profile);
            k.access(pid, 0, w, false, 0).unwrap();
            k.madvise(pid, w + 3 * PAGE, PAGE, Advice::Dontneed).unwrap();
            assert!(!present(&k, pid, w + 3 * PAGE));
            k.access(pid, 0, w + 3 * PAGE, false, 0).unwrap();
            for i in 0..FAULT_AROUND_PAGES {
                let pfn = k.arch().pte_pfn(k.pte_at(pid, w + i * PAGE).unwrap());
                assert_eq!(k.mem.mapcount(pfn), 1, "{profile}: page {i}");
            }
            assert_eq!(shmem_rss(&k, pid), FAULT_AROUND_PAGES as i64, "{profile}");
            k.check_invariants().unwrap();
        }
    }

    /// x86_64 6.12 (s390 has no HAVE_ARCH_USERFAULTFD_MINOR / _WP).
    fn kernel_x86() -> Kernel {
        Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), 8 << 20, 8 << 20, 1).unwrap()
    }

    /// 6.12.117 mm/memory.c `should_fault_around` → `uffd_disable_fault_around` (`vm_flags &
    /// (VM_UFFD_WP | VM_UFFD_MINOR)`): in a MINOR-registered shmem VMA a read fault on a cached
    /// page is a MINOR userfault and maps none of its neighbours; UFFDIO_CONTINUE maps only
    /// the page asked for.
    #[test]
    fn uffd_minor_registered_shmem_maps_only_the_faulting_page_on_612() {
        let (mut k, pid, _, w) = cached_shmem_on(kernel_x86());
        let u = k.userfaultfd(pid).unwrap();
        k.uffdio_api(u, UFFD_API, 0).unwrap();
        k.uffdio_register(u, w, WINDOW, UFFDIO_REGISTER_MODE_MINOR).unwrap();
        let r = k.access(pid, 0, w + 5 * PAGE, false, 0).unwrap();
        assert!(matches!(r, Access::Blocked { .. }), "a MINOR userfault, got {r:?}");
        for i in 0..FAULT_AROUND_PAGES {
            assert!(!present(&k, pid, w + i * PAGE), "page {i}: no fault-around");
        }
        k.uffdio_continue(u, w + 5 * PAGE, PAGE, 0).unwrap();
        let mapped: Vec<u64> = (0..FAULT_AROUND_PAGES).filter(|&i| present(&k, pid, w + i * PAGE)).collect();
        assert_eq!(mapped, vec![5]);
        assert_eq!(shmem_rss(&k, pid), 1);
        k.check_invariants().unwrap();
    }

    /// 6.12.117 `uffd_disable_fault_around` for VM_UFFD_WP: a read fault in a WP-registered
    /// shmem VMA goes through `__do_fault` and maps only the faulting page.
    #[test]
    fn uffd_wp_registered_shmem_read_fault_maps_only_the_faulting_page_on_612() {
        let (mut k, pid, _, w) = cached_shmem_on(kernel_x86());
        let u = k.userfaultfd(pid).unwrap();
        k.uffdio_api(u, UFFD_API, 0).unwrap();
        k.uffdio_register(u, w, WINDOW, UFFDIO_REGISTER_MODE_WP).unwrap();
        assert!(matches!(k.access(pid, 0, w + 5 * PAGE, false, 0).unwrap(), Access::Done { .. }));
        let mapped: Vec<u64> = (0..FAULT_AROUND_PAGES).filter(|&i| present(&k, pid, w + i * PAGE)).collect();
        assert_eq!(mapped, vec![5]);
        assert_eq!(shmem_rss(&k, pid), 1);
        k.check_invariants().unwrap();
    }

    /// `uffd_disable_fault_around` leaves MISSING-registered VMAs alone (4.17 has no uffd test
    /// at all): a read fault on a cached page of a MISSING-registered shmem VMA is no userfault,
    /// and fault-around maps its window, as a postcopy destination's shmem-backed RAM sees it.
    #[test]
    fn uffd_missing_registered_shmem_still_faults_around() {
        for profile in ["4.17", "6.12"] {
            let (mut k, pid, _, w) = cached_shmem(profile);
            let u = k.userfaultfd(pid).unwrap();
            k.uffdio_api(u, UFFD_API, 0).unwrap();
            k.uffdio_register(u, w, WINDOW, UFFDIO_REGISTER_MODE_MISSING).unwrap();
            assert!(matches!(k.access(pid, 0, w, false, 0).unwrap(), Access::Done { .. }), "{profile}");
            assert!((0..FAULT_AROUND_PAGES).all(|i| present(&k, pid, w + i * PAGE)), "{profile}");
            k.check_invariants().unwrap();
        }
    }

    /// 6.12.117 `next_uptodate_folio` (`if (xa_is_value(folio)) continue;`): a page of the
    /// window that is out in swap (MADV_PAGEOUT → `shmem_writepage` left a swap entry in the
    /// page cache) is left to its own fault, which swaps it in; the cached pages around it are
    /// mapped.
    #[test]
    fn fault_around_leaves_swapped_out_shmem_pages_to_their_own_fault_on_612() {
        let (mut k, pid, a, w) = cached_shmem("6.12");
        let file = k.vma(k.vma_lookup(pid, a).unwrap()).file.unwrap();
        let at = w + 7 * PAGE;
        k.access(pid, 0, at, false, 0).unwrap();
        k.madvise(pid, at, PAGE, Advice::Pageout).unwrap();
        let idx = (at - a) / PAGE;
        assert!(
            matches!(k.filex(file).pages.get(&idx), Some(CacheEntry::Swap(_))),
            "{:?}",
            k.filex(file).pages.get(&idx)
        );
        k.madvise(pid, w, WINDOW, Advice::Dontneed).unwrap();
        k.access(pid, 0, w, false, 0).unwrap();
        let unmapped: Vec<u64> = (0..FAULT_AROUND_PAGES).filter(|&i| !present(&k, pid, w + i * PAGE)).collect();
        assert_eq!(unmapped, vec![7], "only the swapped-out page is left unmapped");
        let faults = k.vmstat.get(Vm::pgfault);
        assert_eq!(k.access(pid, 0, at, false, 0).unwrap(), Access::Done { value: 100 + idx });
        assert_eq!(k.vmstat.get(Vm::pgfault), faults + 1, "its own fault");
        k.check_invariants().unwrap();
    }

    /// 6.12.117 `do_fault_around` clamps the window to the VMA (`pte_off - min(pte_off,
    /// vma_off)`, `pte_off + vma_pages - vma_off`; 4.17: `max(address & mask, vm_start)` and
    /// `vma_pages(vma) + vm_pgoff - 1`): a read in a 3-page mapping of a cached file maps those
    /// 3 pages and no page of another VMA of the same file.
    #[test]
    fn fault_around_stays_inside_the_vma() {
        for profile in ["4.17", "6.12"] {
            let (mut k, pid, a, _) = cached_shmem(profile);
            let file = k.vma(k.vma_lookup(pid, a).unwrap()).file.unwrap();
            let b = k.mmap(pid, 3 * PAGE, MapKind::Shmem, true, Some((file, 10))).unwrap();
            assert_eq!(k.access(pid, 0, b + PAGE, false, 0).unwrap(), Access::Done { value: 100 + 11 });
            assert!((0..3).all(|i| present(&k, pid, b + i * PAGE)), "{profile}: the whole small VMA");
            assert!((0..48).all(|i| !present(&k, pid, a + i * PAGE)), "{profile}: nothing in the other VMA");
            assert_eq!(shmem_rss(&k, pid), 3, "{profile}");
            k.check_invariants().unwrap();
        }
    }
}
