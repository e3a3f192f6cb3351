//! Memory failure (mm/memory-failure.c) as MADV_HWPOISON injects it, x86_64 only.
//!
//! ```text
//! madvise(addr, len, MADV_HWPOISON)              madvise_inject_error, per page:
//!   get_user_pages_fast(addr)                     the page mapped there
//!   memory_failure(pfn, MF_ACTION_REQUIRED | ..)
//!     TestSetPageHWPoison                         PG_hwpoison; the page is dead from here on
//!     hwpoison_user_mappings
//!       try_to_unmap(folio, TTU_IGNORE_MLOCK | TTU_SYNC | TTU_HWPOISON)  ("6.12")
//!       try_to_unmap(page, TTU_IGNORE_MLOCK | TTU_IGNORE_ACCESS)    ("4.17", "4.18")
//!         try_to_unmap_one: every PTE becomes swp_entry(SWP_HWPOISON, pfn)
//!     me_pagecache_clean → delete_from_lru_cache  off the LRU; anon: MF_RECOVERED
//! ```
//! The page keeps the reference memory_failure took and is never freed, so the allocator never
//! hands it out again. An access through a hwpoison entry is `do_swap_page` →
//! `is_hwpoison_entry` → VM_FAULT_HWPOISON → SIGBUS; zap clears the entry, fork copies it
//! (`copy_nonpresent_pte`), and it holds no swap slot and counts in no rss counter.
//!
//! s390 does not select ARCH_SUPPORTS_MEMORY_FAILURE: without CONFIG_MEMORY_FAILURE there is no
//! SWP_HWPOISON type and `madvise_behavior_valid` rejects MADV_HWPOISON with -EINVAL, which the
//! model returns.
//!
//! Simplifications, written down here:
//! - GUP first faults in a page that is not mapped, with a read fault (`faultin_page`): a none
//!   anonymous PTE gets the zero page, a swapped one is swapped in, a shmem one is read from
//!   the page cache (`Kernel::madvise_hwpoison`); a fault that raises SIGBUS (or finds a
//!   hwpoison entry: VM_FAULT_HWPOISON without FOLL_HWPOISON) is -EFAULT, as is a VMA without
//!   VM_READ (`check_vma_flags`). A none PTE in a VMA registered for MISSING or MINOR faults
//!   is -EFAULT in the model: the kernel's GUP would wait in `handle_userfault`, and the model
//!   does not park a madvise caller.
//! - Only private anonymous pages outside the swap cache are poisoned. The zero page, file
//!   and shmem pages, and swap-cache pages (which the kernel keeps in the swap cache, unmapped
//!   with ordinary swap entries) are -EBUSY, the errno memory_failure returns for pages it
//!   cannot handle.
//! - No process is killed (MF_ACTION_REQUIRED's SIGBUS to the current task, the early kill of
//!   other mappers): each mapper gets SIGBUS when it next touches the page.
//! - The dead page drops its anon_vma (`mapping` cleared) so that it names no object that may
//!   go away when the mappers exit; the kernel leaves the field, which nothing reads again.
//! - No TTU_SYNC: the model's rmap walk has no concurrent unmapper to wait for.
//! - No unpoison (the debugfs hwpoison/unpoison-pfn) and no num_poisoned_pages counter.

use crate::arch::Arch;
use crate::error::{Errno, Error, Result};
use crate::fault::Fault;
use crate::kernel::Kernel;
use crate::mm::page::{ZERO_PFN, pg};
use crate::rmap::unmap::TtuFlags;
use crate::sim::log::Ev;

/// `MADV_HWPOISON`.
pub const MADV_HWPOISON: u64 = 100;

impl Kernel {
    /// `SWP_HWPOISON` (include/linux/swap.h): `MAX_SWAPFILES`, the first type past the real swap
    /// files ([`crate::mm::swapfile::max_swapfiles`]: on x86_64 29 on 4.13, 27 on 4.17/4.18,
    /// 23 on 6.12). None on s390 (no CONFIG_MEMORY_FAILURE).
    pub fn swp_hwpoison_type(&self) -> Option<u32> {
        match self.arch() {
            Arch::S390x => None,
            Arch::X86_64 => Some(crate::mm::swapfile::max_swapfiles(&self.profile)),
        }
    }

    /// Whether the profile has the 6.x shape of memory failure
    /// ([`crate::Profile::hwpoison_ttu_flag`]).
    pub(crate) fn hwpoison_6x(&self) -> bool {
        self.profile.hwpoison_ttu_flag
    }

    /// `is_hwpoison_entry(pte_to_swp_entry(pte))` for a non-present, non-none PTE.
    pub fn is_hwpoison_entry(&self, pte: u64) -> bool {
        let arch = self.arch();
        arch.is_swap_pte(pte) && self.swp_hwpoison_type() == Some(self.swp_format().swp_type(pte))
    }

    /// `make_hwpoison_entry(page)` as a PTE (the pfn is the offset); None without
    /// CONFIG_MEMORY_FAILURE.
    pub(crate) fn mk_hwpoison_pte(&self, pfn: u32) -> Option<u64> {
        self.swp_hwpoison_type().map(|t| self.swp_format().mk_swap_pte(t, pfn as u64))
    }

    /// `madvise(addr, len, MADV_HWPOISON)` → mm/madvise.c `madvise_inject_error` (4.17, 6.12): poison each page of the
    /// range in turn, stopping at the first that fails (the pages before it stay poisoned).
    /// The kernel requires CAP_SYS_ADMIN; the model has no users and allows it.
    pub(crate) fn madvise_hwpoison(&mut self, pid: u32, addr: u64, end: u64) -> Result<()> {
        if self.swp_hwpoison_type().is_none() {
            return Err(Error::errno(
                Errno::EINVAL,
                "madvise",
                format!(
                    "MADV_HWPOISON needs CONFIG_MEMORY_FAILURE, which {} does not have (it does not select ARCH_SUPPORTS_MEMORY_FAILURE); use an x86_64 kernel",
                    self.arch().name()
                ),
            ));
        }
        let mut a = addr;
        while a < end {
            self.hwpoison_gup_faultin(pid, a)?;
            let pfn = self.hwpoison_target(pid, a)?;
            self.memory_failure(pfn);
            a += 4096;
        }
        self.log(Ev::Madvise, pid, 0, addr, end - addr, MADV_HWPOISON, 0);
        self.settle();
        Ok(())
    }

    /// `get_user_pages_fast(start, 1, 0, &page)` of `madvise_inject_error` (mm/madvise.c 4.17
    /// and 6.12.117; mm/gup.c) for a page that is not mapped: `check_vma_flags` (-EFAULT
    /// without VM_READ), then `faultin_page` → `handle_mm_fault` with a read fault until
    /// `follow_page_pte` finds the PTE present (a none anonymous PTE maps the zero page, which
    /// `follow_page_pte` returns: `if (is_zero_pfn(pte_pfn(pte))) page = pte_page(pte);`).
    /// VM_FAULT_SIGBUS and VM_FAULT_HWPOISON are -EFAULT, VM_FAULT_OOM -ENOMEM
    /// (`vm_fault_to_errno`); `if (ret != 1) return ret;`.
    fn hwpoison_gup_faultin(&mut self, pid: u32, addr: u64) -> Result<()> {
        let arch = self.arch();
        let efault = |why: String| Err(Error::errno(Errno::EFAULT, "madvise", why));
        let Some(vma) = self.vma_lookup(pid, addr) else {
            return efault(format!("MADV_HWPOISON: {addr:#x} is not mapped"));
        };
        if self.vma(vma).flags & crate::mm::vm::VM_READ == 0 {
            return efault(format!("MADV_HWPOISON: the mapping at {addr:#x} is not readable (GUP's check_vma_flags)"));
        }
        // handle_mm_fault returns Retry once it has installed the PTE; a few rounds cover a
        // swap-in that first allocates the swap-cache page
        for _ in 0..4 {
            let pte = self.pte_at(pid, addr).unwrap_or(arch.pte_none_val());
            if arch.pte_present(pte) || self.is_hwpoison_entry(pte) {
                return Ok(());
            }
            let waits = crate::mm::vm::VM_UFFD_MISSING | self.vm_uffd_minor();
            if arch.pte_none(pte) && self.vma(vma).flags & waits != 0 {
                return efault(format!(
                    "MADV_HWPOISON: the page at {addr:#x} is missing in a userfaultfd-registered range; the kernel's GUP would wait for the handler, the model does not: resolve the fault first"
                ));
            }
            match self.handle_mm_fault(pid, 0, vma, addr, false) {
                Fault::Retry => {}
                Fault::Sigbus | Fault::Userfault { .. } => {
                    return efault(format!("MADV_HWPOISON: faulting in {addr:#x} raises SIGBUS (GUP's -EFAULT)"));
                }
                Fault::Oom => {
                    return Err(Error::errno(
                        Errno::ENOMEM,
                        "madvise",
                        format!("MADV_HWPOISON: out of memory faulting in {addr:#x}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The page GUP would return for `addr`, if the model can poison it (see the module doc).
    fn hwpoison_target(&self, pid: u32, addr: u64) -> Result<u32> {
        let arch = self.arch();
        let efault = |why: String| Err(Error::errno(Errno::EFAULT, "madvise", why));
        let ebusy = |why: String| Err(Error::errno(Errno::EBUSY, "madvise", why));
        let Some(vma) = self.vma_lookup(pid, addr) else {
            return efault(format!("MADV_HWPOISON: {addr:#x} is not mapped"));
        };
        let pte = self.pte_at(pid, addr).unwrap_or(arch.pte_none_val());
        if self.is_hwpoison_entry(pte) {
            return efault(format!("MADV_HWPOISON: the page at {addr:#x} is already poisoned"));
        }
        if !arch.pte_present(pte) {
            return efault(format!("MADV_HWPOISON: the page at {addr:#x} is not present after GUP's fault"));
        }
        let pfn = arch.pte_pfn(pte);
        if arch.pte_special(pte) || pfn == ZERO_PFN {
            return ebusy(format!("MADV_HWPOISON: {addr:#x} maps the zero page, a reserved kernel page"));
        }
        let f = &self.mem.frames[pfn as usize];
        if !self.vma(vma).is_anonymous() || !f.anon() {
            return ebusy(format!(
                "MADV_HWPOISON: the page at {addr:#x} is a file or shmem page; the model poisons private anonymous pages only"
            ));
        }
        if f.test(pg::PG_SWAPCACHE) {
            return ebusy(format!(
                "MADV_HWPOISON: the page at {addr:#x} is in the swap cache; the model poisons anonymous pages outside it only"
            ));
        }
        Ok(pfn)
    }

    /// mm/memory-failure.c `memory_failure(pfn, MF_ACTION_REQUIRED)` (4.17, 6.12) for a mapped anonymous page outside the swap
    /// cache: set PG_hwpoison, unmap every mapping with hwpoison entries
    /// (`hwpoison_user_mappings`), then take the page off the LRU (`me_pagecache_clean` →
    /// `delete_from_lru_cache`). memory_failure's own reference is never dropped.
    fn memory_failure(&mut self, pfn: u32) {
        // get_hwpoison_page: the reference that keeps the page from ever being freed
        self.get_page(pfn);
        self.mem.frames[pfn as usize].set(pg::PG_HWPOISON);
        // hwpoison_user_mappings: 6.12 asks for the hwpoison branch with TTU_HWPOISON; 4.x gets
        // it unless TTU_IGNORE_HWPOISON (set only for swap-cache pages, which are not poisoned
        // here) and passes TTU_IGNORE_ACCESS so that a young PTE does not abort the unmap
        let flags = if self.hwpoison_6x() {
            TtuFlags::IGNORE_MLOCK | TtuFlags::HWPOISON
        } else {
            TtuFlags::IGNORE_MLOCK | TtuFlags::IGNORE_ACCESS
        };
        self.try_to_unmap(pfn, flags);
        // delete_from_lru_cache: isolate, clear active/unevictable, drop the isolation reference
        if self.mem.frames[pfn as usize].test(pg::PG_LRU) {
            self.lru.del(&mut self.mem.frames, pfn);
        }
        let f = &mut self.mem.frames[pfn as usize];
        f.clear(pg::PG_ACTIVE | pg::PG_UNEVICTABLE | pg::PG_REFERENCED | pg::PAGE_MAPPING_ANON);
        self.mem.set_mapping(pfn, 0);
        self.mem.set_index(pfn, 0);
    }
}

#[cfg(test)]
mod tests {
    use crate::arch::Arch;
    use crate::fault::Access;
    use crate::kernel::Kernel;
    use crate::mm::madvise::Advice;
    use crate::mm::page::pg;
    use crate::mm::{MM_ANONPAGES, MM_SWAPENTS};
    use crate::profile::Profile;
    use crate::testutil::proc_with_pages;

    fn x86(profile: &str) -> Kernel {
        Kernel::new(Profile::get(profile, Arch::X86_64).unwrap(), 8 << 20, 8 << 20, 1).unwrap()
    }

    #[test]
    fn young_mlocked_pages_get_a_hwpoison_entry_naming_the_pfn() {
        for p in ["4.17", "4.18", "6.12"] {
            let mut k = x86(p);
            let (pid, a) = proc_with_pages(&mut k, false, 2);
            k.mlock(pid, a, 2 * 4096).unwrap();
            let arch = k.arch();
            let before = k.pte_at(pid, a).unwrap();
            // a young PTE would abort 4.x's try_to_unmap_one without TTU_IGNORE_ACCESS, a
            // VM_LOCKED one every profile's without TTU_IGNORE_MLOCK
            assert!(arch.pte_young(before), "{p}");
            let pfn = arch.pte_pfn(before);
            k.madvise(pid, a, 4096, Advice::Hwpoison).unwrap();
            let pte = k.pte_at(pid, a).unwrap();
            assert!(k.is_hwpoison_entry(pte), "{p}: {pte:#x}");
            assert_eq!(k.swp_format().swp_offset(pte), pfn as u64, "{p}: make_hwpoison_entry(page)");
            let f = k.mem.frames[pfn as usize];
            assert!(f.test(pg::PG_HWPOISON) && !f.test(pg::PG_LRU) && !f.test(pg::PG_MLOCKED), "{p}");
            assert_eq!(k.mem.refcount(pfn), 1, "{p}: only memory_failure's reference");
            assert_eq!((k.mmx(pid).rss[MM_ANONPAGES], k.mmx(pid).rss[MM_SWAPENTS]), (1, 0), "{p}");
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Bus, "{p}");
            assert_eq!(k.access(pid, 0, a + 4096, false, 0).unwrap(), Access::Done { value: 2 }, "{p}");
            k.check_invariants().unwrap();
        }
    }
    /// mm/madvise.c `madvise_inject_error` (4.17, 6.12.117): `get_user_pages_fast(start, 1, 0,
    /// &page)` faults a page that is not mapped in before `memory_failure`. A swapped-out page
    /// is swapped in (and, swap being more than half full, leaves the swap cache:
    /// `do_swap_page` → `try_to_free_swap`), then poisoned; an untouched anonymous page gets
    /// the zero page, which memory_failure refuses (-EBUSY), not -EFAULT.
    #[test]
    fn hwpoison_faults_a_swapped_out_or_untouched_page_in_first_as_gup_does() {
        for p in ["4.17", "4.18", "6.12"] {
            // 4 usable slots: three swapped pages make vm_swap_full() true
            let mut k = Kernel::new(Profile::get(p, Arch::X86_64).unwrap(), 8 << 20, 5 * 4096, 1).unwrap();
            let (pid, a) = proc_with_pages(&mut k, false, 3);
            let arch = k.arch();
            for _ in 0..16 {
                if (0..3).all(|i| arch.is_swap_pte(k.pte_at(pid, a + i * 4096).unwrap())) {
                    break;
                }
                k.reclaim(8);
            }
            assert!(arch.is_swap_pte(k.pte_at(pid, a).unwrap()), "{p}: swapped out");
            k.madvise(pid, a, 4096, Advice::Hwpoison).unwrap();
            assert!(k.is_hwpoison_entry(k.pte_at(pid, a).unwrap()), "{p}: swapped in, then poisoned");
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Bus, "{p}");
            assert_eq!(k.access(pid, 0, a + 4096, false, 0).unwrap(), Access::Done { value: 2 }, "{p}");
            let b = k.mmap(pid, 4096, crate::mm::mmap::MapKind::Anon, false, None).unwrap();
            let e = k.madvise(pid, b, 4096, Advice::Hwpoison).unwrap_err();
            assert_eq!(e.errno_value(), Some(crate::error::Errno::EBUSY), "{p}: the zero page GUP faulted in: {e}");
            assert!(arch.pte_present(k.pte_at(pid, b).unwrap()), "{p}: GUP's read fault mapped the zero page");
            k.check_invariants().unwrap();
        }
    }
}
