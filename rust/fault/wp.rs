//! `do_wp_page` (mm/memory.c): a write to a present, write-protected PTE: reuse the page if
//! only this mapping uses it, else copy it (`wp_page_copy`), including the zero page.

use super::{Fault, Vmf};
use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vmstat::Vm;
use crate::mm::{MM_ANONPAGES, vm};
use crate::sim::log::{Ev, fault_path};

impl Kernel {
    /// `do_wp_page` (mm/memory.c; 4.13..4.18 with `reuse_swap_page`, 6.12 with
    /// `PageAnonExclusive` / `wp_can_reuse_anon_folio`): reuse an anon page that only this
    /// mapping and no swap PTE use, make a shared file page writable in place, else copy
    /// (`wp_page_copy`).
    ///
    /// PG_dirty is set only where the reuse drops the page's swap-cache copy: 4.17 mm/swapfile.c
    /// `reuse_swap_page` ("if (count == 1 && PageSwapCache(page) && …) { … delete_from_swap_cache
    /// (page); SetPageDirty(page); }"), 6.12 `wp_can_reuse_anon_folio` → `folio_free_swap`
    /// (`delete_from_swap_cache(folio); folio_set_dirty(folio);`). A page that is not in the swap
    /// cache keeps its PG_dirty as it was (only the PTE is made dirty, `wp_page_reuse`). On 6.12 a
    /// `PageAnonExclusive` page is reused "without further checks": its swap-cache copy stays.
    pub(crate) fn do_wp_page(&mut self, vmf: Vmf, orig: u64) -> Fault {
        if let Some(f) = self.uffd_wp_fault(vmf, orig) {
            return f;
        }
        let arch = self.arch();
        let Some(pfn) = self.vm_normal_page(orig) else {
            return self.wp_page_copy(vmf, orig, None, false);
        };
        let f = self.mem.frames[pfn as usize];
        let flags = self.vma(vmf.vma).flags;
        if f.anon() {
            // 4.x reuse_swap_page: total mapcount + swap count == 1; 6.x: PageAnonExclusive or
            // a reference count of 1 + swapcache
            let swapcount = f.swap_offset().map_or(0, |o| self.swap.count(o));
            let exclusive = self.profile.pg_anon_exclusive && f.test(pg::PG_ANON_EXCLUSIVE);
            // under writeback the swap copy cannot go (folio_free_swap / 4.17 reuse_swap_page
            // "if (!PageWriteback(page))"): 4.x reuses the page in the swap cache, 6.12's
            // wp_can_reuse_anon_folio sees the swap cache's reference ("folio_ref_count(folio)
            // != 1") and copies
            let writeback = f.test(pg::PG_WRITEBACK) && f.test(pg::PG_SWAPCACHE);
            let cache_blocks = writeback && self.profile.pg_anon_exclusive;
            if exclusive || (self.mem.mapcount(pfn) + swapcount == 1 && !cache_blocks) {
                if !exclusive && f.test(pg::PG_SWAPCACHE) && swapcount == 0 && !writeback {
                    // reuse_swap_page / folio_free_swap: the swap copy goes, the page is dirty
                    self.delete_from_swap_cache(pfn);
                    self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
                }
                let x = self.anon_exclusive_flag();
                self.mem.frames[pfn as usize].set(x);
                let entry = arch.pte_mkwrite(arch.pte_mkdirty(arch.pte_mkyoung(orig)));
                self.ptep_set_access_flags(vmf.pid, vmf.idx, entry);
                self.vmstat.inc(Vm::pgreuse);
                self.tick(self.cost.minor_fault / 4);
                self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, pfn as u64, fault_path::WP_REUSE, 1);
                return Fault::Retry;
            }
        } else if flags & vm::VM_SHARED != 0 {
            // wp_page_shared: a shared file page becomes writable in place
            let entry = arch.pte_mkwrite(arch.pte_mkdirty(arch.pte_mkyoung(orig)));
            self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
            self.ptep_set_access_flags(vmf.pid, vmf.idx, entry);
            self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, pfn as u64, fault_path::WP_REUSE, 1);
            return Fault::Retry;
        }
        self.wp_page_copy(vmf, orig, Some(pfn), false)
    }

    /// A FAULT_FLAG_UNSHARE fault on the zero page (`__s390_unshare_zeropages` →
    /// `handle_mm_fault(vma, addr, FAULT_FLAG_UNSHARE | FAULT_FLAG_REMOTE, NULL)`, v6.11+):
    /// handle_pte_fault sends a present PTE that is not writable to do_wp_page, which with
    /// `unshare` skips the uffd-wp check and copies the zero page (`wp_page_copy`). Any other
    /// PTE is left as it is (only zero-page mappings are unshared here).
    pub(crate) fn handle_mm_fault_unshare(&mut self, pid: u32, vma: u32, addr: u64) -> Fault {
        self.vmstat.inc(Vm::pgfault);
        let arch = self.arch();
        let page_addr = addr & !0xfff;
        let Ok(idx) = self.pte_alloc(pid, page_addr) else { return Fault::Oom };
        let pte = self.mmx(pid).pt.pte(idx);
        if !arch.pte_present(pte) || arch.pte_write(pte) || self.vm_normal_page(pte).is_some() {
            return Fault::Retry;
        }
        let vmf = Vmf { pid, tid: 0, vma, addr: page_addr, real_addr: addr, write: false, idx, orig_pte: pte };
        self.wp_page_copy(vmf, pte, None, true)
    }

    /// `wp_page_copy`: a private copy (a zeroed page for the zero page) mapped writable and
    /// dirty; with `unshare` (FAULT_FLAG_UNSHARE, v5.18+) neither: mm/memory.c v6.12 "if
    /// (unlikely(unshare)) { if (pte_soft_dirty(vmf->orig_pte)) entry = pte_mksoft_dirty(entry);
    /// if (pte_uffd_wp(vmf->orig_pte)) entry = pte_mkuffd_wp(entry); } else { entry =
    /// maybe_mkwrite(pte_mkdirty(entry), vma); }".
    fn wp_page_copy(&mut self, vmf: Vmf, orig: u64, old: Option<u32>, unshare: bool) -> Fault {
        let arch = self.arch();
        if let Some(o) = old {
            self.get_page(o); // hold the old page across the allocation
        }
        self.anon_vma_prepare(vmf.vma);
        let Some(new) = self.alloc_user_page() else {
            if let Some(o) = old {
                self.put_page(o);
            }
            return Fault::Oom;
        };
        self.mem.set_content(new, old.map_or(0, |o| self.page_content(o)));
        if self.mmx(vmf.pid).pt.pte(vmf.idx) != orig {
            // the PTE changed meanwhile
            self.put_page(new);
            if let Some(o) = old {
                self.put_page(o);
            }
            return Fault::Retry;
        }
        match old {
            Some(o) if !self.mem.frames[o as usize].anon() => {
                let c = self.mm_counter(o);
                self.add_rss(vmf.pid, c, -1);
                self.add_rss(vmf.pid, MM_ANONPAGES, 1);
            }
            None => self.add_rss(vmf.pid, MM_ANONPAGES, 1),
            _ => {}
        }
        let prot = self.vma(vmf.vma).page_prot;
        let entry = if unshare {
            let mut e = self.mk_pte(new, prot);
            if arch.pte_soft_dirty(orig) {
                e = arch.pte_mksoft_dirty(e);
            }
            if arch.pte_uffd_wp(orig) {
                e = arch.pte_mkuffd_wp(e);
            }
            e
        } else {
            arch.pte_mkwrite(arch.pte_mkdirty(self.mk_pte(new, prot)))
        };
        self.ptep_clear_flush(vmf.pid, vmf.idx);
        self.page_add_new_anon_rmap(new, vmf.vma, vmf.addr);
        self.lru_cache_add_vma(new, vmf.vma);
        self.set_pte_at(vmf.pid, vmf.idx, entry);
        if let Some(o) = old {
            self.page_remove_rmap(o);
            self.put_page(o); // the mapping's reference
            self.put_page(o); // ours
        }
        self.tick(self.cost.minor_fault);
        self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, new as u64, fault_path::WP_COPY, !unshare as u64);
        Fault::Retry
    }
}

#[cfg(test)]
mod tests {
    use crate::fault::Access;
    use crate::mm::page::pg;
    use crate::mm::vmstat::Vm;
    use crate::testutil::{kernel, proc_with_pages, swapped_out};

    #[test]
    fn a_write_reuse_dirties_the_page_only_when_it_drops_the_swap_cache_copy() {
        // 4.17 mm/swapfile.c reuse_swap_page: "if (count == 1 && PageSwapCache(page) && …) { …
        // delete_from_swap_cache(page); SetPageDirty(page); }"; 6.12 mm/memory.c
        // wp_can_reuse_anon_folio → folio_free_swap ("delete_from_swap_cache(folio);
        // folio_set_dirty(folio);"); wp_page_reuse itself dirties only the PTE
        for profile in ["4.13", "4.17", "4.18", "6.12"] {
            // a page outside the swap cache, shared with a child that has exited
            let mut k = kernel(profile);
            let (pid, a) = proc_with_pages(&mut k, false, 1);
            let child = k.fork(pid).unwrap();
            k.exit_mm(child).unwrap();
            let pfn = k.arch().pte_pfn(k.pte_at(pid, a).unwrap()) as usize;
            assert!(!k.arch().pte_write(k.pte_at(pid, a).unwrap()), "{profile}");
            assert!(!k.mem.frames[pfn].test(pg::PG_DIRTY), "{profile}: an anon fault leaves PG_dirty clear");
            let reuse = k.vmstat.get(Vm::pgreuse);
            assert_eq!(k.access(pid, 0, a, true, 7).unwrap(), Access::Done { value: 7 });
            assert_eq!(k.vmstat.get(Vm::pgreuse), reuse + 1, "{profile}: reused");
            assert!(!k.mem.frames[pfn].test(pg::PG_DIRTY), "{profile}: no swap copy dropped, PG_dirty stays clear");
            k.check_invariants().unwrap();

            // a page read back from swap through a non-exclusive swap PTE (after fork): mapped
            // read-only, still in the swap cache; the write drops the swap copy and dirties it
            let (mut k, pid, a) = swapped_out(profile);
            let child = k.fork(pid).unwrap();
            k.exit_mm(child).unwrap();
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 1 });
            let pfn = k.arch().pte_pfn(k.pte_at(pid, a).unwrap()) as usize;
            assert!(k.mem.frames[pfn].test(pg::PG_SWAPCACHE), "{profile}");
            assert!(!k.mem.frames[pfn].test(pg::PG_DIRTY), "{profile}");
            assert_eq!(k.access(pid, 0, a, true, 8).unwrap(), Access::Done { value: 8 });
            let f = k.mem.frames[pfn];
            assert!(!f.test(pg::PG_SWAPCACHE) && f.test(pg::PG_DIRTY), "{profile}: {f:?}");
            k.check_invariants().unwrap();
        }
    }

    #[test]
    fn an_exclusive_page_is_reused_with_its_swap_cache_copy_kept_on_612() {
        // mm/memory.c v6.12 do_wp_page: "If we encounter a page that is marked exclusive, we
        // must reuse the page without further checks." (`PageAnonExclusive(vmf->page) ||
        // wp_can_reuse_anon_folio(…)`): folio_free_swap is not called for an exclusive page.
        // The read swap-in maps an exclusive page writable; write-protect its PTE as uffd-wp or
        // soft-dirty tracking would, then write.
        let (mut k, pid, a) = swapped_out("6.12");
        assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 1 });
        let arch = k.arch();
        let pte = k.pte_at(pid, a).unwrap();
        let pfn = arch.pte_pfn(pte) as usize;
        assert!(k.mem.frames[pfn].test(pg::PG_ANON_EXCLUSIVE) && k.mem.frames[pfn].test(pg::PG_SWAPCACHE));
        let idx = k.mmx(pid).pt.pte_index(a).unwrap();
        k.set_pte_at(pid, idx, arch.pte_wrprotect(pte));
        let reuse = k.vmstat.get(Vm::pgreuse);
        assert_eq!(k.access(pid, 0, a, true, 5).unwrap(), Access::Done { value: 5 });
        assert_eq!(k.vmstat.get(Vm::pgreuse), reuse + 1);
        let f = k.mem.frames[pfn];
        assert!(f.test(pg::PG_SWAPCACHE) && !f.test(pg::PG_DIRTY), "{f:?}");
        k.check_invariants().unwrap();
    }
}
