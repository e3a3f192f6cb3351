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
//! - Only private anonymous pages that are present and not in the swap cache are poisoned.
//!   The kernel's GUP would first fault in a none or swapped PTE; the model returns -EFAULT
//!   for a non-present PTE instead (it is -EFAULT in the kernel too for an entry that is
//!   already poisoned, as GUP's fault returns VM_FAULT_HWPOISON without FOLL_HWPOISON).
//!   The zero page, file and shmem pages, and swap-cache pages (which the kernel keeps in the
//!   swap cache, unmapped with ordinary swap entries) are -EBUSY, the errno memory_failure
//!   returns for pages it cannot handle.
//! - No process is killed (MF_ACTION_REQUIRED's SIGBUS to the current task, the early kill of
//!   other mappers): each mapper gets SIGBUS when it next touches the page.
//! - The dead page drops its anon_vma (`mapping` cleared) so that it names no object that may
//!   go away when the mappers exit; the kernel leaves the field, which nothing reads again.
//! - No TTU_SYNC: the model's rmap walk has no concurrent unmapper to wait for.
//! - No unpoison (the debugfs hwpoison/unpoison-pfn) and no num_poisoned_pages counter.

use crate::arch::Arch;
use crate::error::{Errno, Error, Result};
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
            let pfn = self.hwpoison_target(pid, a)?;
            self.memory_failure(pfn);
            a += 4096;
        }
        self.log(Ev::Madvise, pid, 0, addr, end - addr, MADV_HWPOISON, 0);
        self.settle();
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
            return efault(format!(
                "MADV_HWPOISON: the page at {addr:#x} is not present (the model does not fault it in); touch it first"
            ));
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
        f.mapping = 0;
        f.set_index(0);
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
            assert_eq!(f.refcount, 1, "{p}: only memory_failure's reference");
            assert_eq!((k.mmx(pid).rss[MM_ANONPAGES], k.mmx(pid).rss[MM_SWAPENTS]), (1, 0), "{p}");
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Bus, "{p}");
            assert_eq!(k.access(pid, 0, a + 4096, false, 0).unwrap(), Access::Done { value: 2 }, "{p}");
            k.check_invariants().unwrap();
        }
    }
}
