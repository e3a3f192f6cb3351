//! `do_anonymous_page` (mm/memory.c): the first touch of an anonymous page.

use super::{Fault, Vmf};
use crate::kernel::Kernel;
use crate::mm::page::ZERO_PFN;
use crate::mm::{MM_ANONPAGES, vm};
use crate::sim::log::{Ev, fault_path};
use crate::uffd::REASON_MISSING;

impl Kernel {
    /// `do_anonymous_page`: a read maps the shared zero page unless the mm forbids it (s390 KVM
    /// processes); otherwise a zeroed page is allocated and mapped writable and dirty. In a
    /// VMA registered for MISSING faults, the fault goes to userspace instead — checked "inside
    /// PT lock", after the allocation.
    pub(crate) fn do_anonymous_page(&mut self, vmf: Vmf) -> Fault {
        let arch = self.arch();
        let (flags, prot) = {
            let v = self.vma(vmf.vma);
            (v.flags, v.page_prot)
        };
        if flags & vm::VM_SHARED != 0 {
            return Fault::Sigbus;
        }
        // `vmf_orig_pte_uffd_wp`: the fault started on a uffd-wp marker (WP_UNPOPULATED)
        let uffd_wp = self.vmf_orig_pte_uffd_wp(&vmf);
        let unchanged = |k: &Kernel| {
            let cur = k.mmx(vmf.pid).pt.pte(vmf.idx);
            arch.pte_none(cur) || (uffd_wp && cur == vmf.orig_pte)
        };
        if !vmf.write && !self.mm_forbids_zeropage(vmf.pid) {
            let mut entry = arch.pte_mkspecial(arch.mk_pte(ZERO_PFN, prot));
            if uffd_wp {
                entry = arch.pte_mkuffd_wp(entry);
            }
            if flags & vm::VM_UFFD_MISSING != 0 {
                return self.handle_userfault(vmf, REASON_MISSING);
            }
            self.set_pte_at(vmf.pid, vmf.idx, entry);
            self.tick(self.cost.minor_fault);
            self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, ZERO_PFN as u64, fault_path::ZERO_PAGE, 0);
            return Fault::Retry;
        }
        self.anon_vma_prepare(vmf.vma);
        let Some(pfn) = self.alloc_user_page() else {
            return if unchanged(self) { Fault::Oom } else { Fault::Retry };
        };
        let mut entry = self.mk_pte(pfn, prot);
        if flags & vm::VM_WRITE != 0 {
            entry = arch.pte_mkwrite(arch.pte_mkdirty(entry));
        }
        if uffd_wp {
            entry = arch.pte_mkuffd_wp(entry);
        }
        // the PTE may have been filled while we allocated (direct reclaim ran)
        if !unchanged(self) {
            self.put_page(pfn);
            return Fault::Retry;
        }
        // "Deliver the page fault to userland, check inside PT lock"
        if self.vma(vmf.vma).flags & vm::VM_UFFD_MISSING != 0 {
            self.put_page(pfn);
            return self.handle_userfault(vmf, REASON_MISSING);
        }
        self.add_rss(vmf.pid, MM_ANONPAGES, 1);
        self.page_add_new_anon_rmap(pfn, vmf.vma, vmf.addr);
        self.lru_cache_add_vma(pfn, vmf.vma);
        self.set_pte_at(vmf.pid, vmf.idx, entry);
        self.tick(self.cost.minor_fault);
        self.log(Ev::Fault, vmf.pid, vmf.tid, vmf.addr, pfn as u64, fault_path::ANON, vmf.write as u64);
        Fault::Retry
    }
}
