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

    /// mm/memory.c `do_fault` (4.17, 6.12) for a shmem VMA: `do_read_fault` (without fault-around,
    /// a simplification: docs/fidelity.md), `do_cow_fault` for a private write, `do_shared_fault`.
    pub(crate) fn do_fault(&mut self, vmf: Vmf) -> Fault {
        let arch = self.arch();
        let (flags, prot, file, index) = {
            let v = self.vma(vmf.vma);
            (v.flags, v.page_prot, v.file.expect("file vma"), v.pgoff_of(vmf.addr))
        };
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
            self.mem.frames[new as usize].content = self.mem.frames[pfn as usize].content;
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
}
