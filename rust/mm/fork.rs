//! fork: `dup_mmap` and `copy_page_range` (kernel/fork.c, mm/memory.c).
//!
//! Private writable pages become copy-on-write in both processes (the parent's PTE is
//! write-protected too); shared mappings keep sharing the shmem page cache; swap entries get
//! one more reference. The child of a KVM process is a plain process (`has_pgste` is not
//! inherited: `init_new_context` clears it).

use crate::error::{Errno, Error, Result};
use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::{MM_SWAPENTS, vm};
use crate::sim::log::Ev;

impl Kernel {
    /// `fork()`: a child process with a copy of `pid`'s address space. Returns the child pid.
    pub fn fork(&mut self, pid: u32) -> Result<u32> {
        self.mm(pid)?;
        // copy_page_range's pte_alloc takes the child's tables out of the kernel's memory: a
        // fork whose copy (at most the parent's tables) would pass the model's page-table limit
        // fails in dup_mmap with -ENOMEM before anything is copied.
        let used: u64 = self.mms.iter().flatten().map(|m| m.pt.table_bytes()).sum();
        let copy = self.mmx(pid).pt.table_bytes();
        if used.saturating_add(copy) > self.page_table_limit() {
            return Err(Error::errno(
                Errno::ENOMEM,
                "fork",
                format!(
                    "copying {copy} bytes of page tables would pass the model's page-table limit of {} bytes \
                     ({used} in use; dup_mmap's copy_page_range fails)",
                    self.page_table_limit()
                ),
            ));
        }
        let name = self.mmx(pid).name.clone();
        let child = self.spawn(&name, false)?;
        let base = self.mmx(pid).mmap_base;
        let top_reach = self.mmx(pid).pt.reach();
        {
            let c = self.mmx_mut(child);
            c.mmap_base = base;
            c.pt.upgrade_for(top_reach - 1);
        }
        let parent_vmas: Vec<u32> = self.mmx(pid).vmas.values().copied().collect();
        let mut forks = Vec::new();
        for src in parent_vmas {
            let s = self.vma(src).clone();
            if s.flags & vm::VM_DONTCOPY != 0 {
                continue;
            }
            let mut d = s.clone();
            d.mm = child;
            d.flags &= !(vm::VM_LOCKED | vm::VM_LOCKONFAULT);
            d.anon_vma = None;
            d.anon_vma_chain = Vec::new();
            let dst = self.vma_insert(d);
            if s.flags & vm::VM_WIPEONFORK == 0 {
                self.anon_vma_fork(dst, src);
            }
            if let Some(f) = s.file {
                self.filex_mut(f).i_mmap.push(dst);
            }
            self.dup_userfaultfd(dst, child, &mut forks);
            if s.flags & vm::VM_WIPEONFORK == 0 && self.vma_needs_copy(dst, src) {
                self.copy_page_range(dst, src);
            }
        }
        self.dup_userfaultfd_complete(&forks);
        self.log(Ev::Fork, pid, 0, 0, child as u64, 0, 0);
        Ok(child)
    }

    /// `vma_needs_copy` (mm/memory.c, 6.12; 4.17 the same test inline in `copy_page_range`):
    /// "Don't copy ptes where a page fault will fill them correctly": only a VMA with an
    /// anon_vma (4.17: `if (!(vma->vm_flags & (VM_HUGETLB | VM_PFNMAP | VM_MIXEDMAP)) &&
    /// !vma->anon_vma) return 0;`), and from v5.19 (c56d1b62cce8 "mm/shmem: handle uffd-wp
    /// during fork()", with the [`Profile::uffd_wp_markers`](crate::profile::Profile) series)
    /// also a child VMA registered for uffd-wp (`if (userfaultfd_wp(dst_vma)) return true;`),
    /// whose uffd-wp bits and markers a fault would not restore.
    fn vma_needs_copy(&self, dst: u32, src: u32) -> bool {
        (self.profile.uffd_wp_markers && self.userfaultfd_wp(dst)) || self.vma(src).anon_vma.is_some()
    }

    /// `copy_page_range` → `copy_pte_range` / `copy_present_pte` / `copy_nonpresent_pte`
    /// (mm/memory.c 4.17 `copy_one_pte`, 6.12): a COW mapping write-protects the PTE in parent
    /// and child, a shared one gives the child a clean PTE, every child PTE is old; swap entries
    /// are duplicated (6.12: the parent's `_PAGE_SWP_EXCLUSIVE` cleared); uffd-wp bits and
    /// markers stay only where the child VMA is registered for WP.
    fn copy_page_range(&mut self, dst: u32, src: u32) {
        let arch = self.arch();
        let swp = self.swp_format();
        let (spid, start, end, cow, shared) = {
            let v = self.vma(src);
            (v.mm, v.start, v.end, v.is_cow_mapping(), v.flags & vm::VM_SHARED != 0)
        };
        let dpid = self.vma(dst).mm;
        let child_wp = self.vma(dst).flags & vm::VM_UFFD_WP != 0;
        let n = arch.geometry().0.pt_entries;
        let mut pts = Vec::new();
        self.mmx(spid).pt.for_each_pt(start, end, |va, base| pts.push((va, base)));
        for (va, base) in pts {
            for i in 0..n {
                let addr = va + ((i as u64) << 12);
                if addr < start || addr >= end {
                    continue;
                }
                let sidx = base + i;
                let mut pte = self.mmx(spid).pt.pte(sidx);
                if arch.pte_none(pte) {
                    continue;
                }
                let didx = self.mmx_mut(dpid).pt.pte_alloc(addr).expect("parent address fits");
                if self.is_pte_marker(pte) {
                    // copy_pte_marker (6.12): "Only copy PTE markers if UFFD register matches."
                    if child_wp && self.pte_marker_uffd_wp(pte) {
                        self.set_pte_at(dpid, didx, pte);
                    }
                    continue;
                }
                if self.is_hwpoison_entry(pte) {
                    // copy_nonpresent_pte: a non_swap_entry the child gets as it is (uffd-wp
                    // kept only where the child VMA has it); no slot, no rss counter
                    if !child_wp {
                        pte = arch.pte_swp_set_uffd_wp(pte, false);
                    }
                    self.set_pte_at(dpid, didx, pte);
                    continue;
                }
                if !arch.pte_present(pte) {
                    let off = swp.swp_offset(pte) as u32;
                    // swap_duplicate never fails in the model (continuations always allocate)
                    self.swap.duplicate(off).expect("a swap PTE references a live slot");
                    self.add_rss(dpid, MM_SWAPENTS, 1);
                    if arch.pte_swp_exclusive(pte) {
                        pte = arch.pte_swp_clear_exclusive(pte);
                        self.set_pte_at(spid, sidx, pte);
                    }
                    if !child_wp {
                        pte = arch.pte_swp_set_uffd_wp(pte, false);
                    }
                    self.set_pte_at(dpid, didx, pte);
                    continue;
                }
                if cow && arch.pte_write(pte) {
                    // ptep_set_wrprotect
                    let wp = arch.pte_wrprotect(pte);
                    self.ptep_xchg(spid, sidx, wp);
                    pte = wp;
                }
                if shared {
                    pte = arch.pte_mkclean(pte);
                }
                pte = arch.pte_mkold(pte);
                if !child_wp {
                    pte = arch.pte_clear_uffd_wp(pte);
                }
                if let Some(pfn) = self.vm_normal_page(pte) {
                    self.get_page(pfn);
                    self.page_add_rmap(pfn);
                    self.mem.frames[pfn as usize].clear(pg::PG_ANON_EXCLUSIVE);
                    let c = self.mm_counter(pfn);
                    self.add_rss(dpid, c, 1);
                }
                self.set_pte_at(dpid, didx, pte);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::kernel::Kernel;
    use crate::mm::mmap::MapKind;
    use crate::profile::Profile;
    use crate::profile::uffd_features as feat;
    use crate::uffd::ioctl::{UFFD_API, UFFDIO_REGISTER_MODE_WP, UFFDIO_WRITEPROTECT_MODE_WP};

    #[test]
    fn fork_copies_a_write_protected_shmem_pte_to_a_child_registered_for_wp_on_612() {
        // 6.12 mm/memory.c vma_needs_copy: "if (userfaultfd_wp(dst_vma)) return true;"
        // (c56d1b62cce8, v5.19): a shmem VMA has no anon_vma, yet the child (which keeps the
        // registration with UFFD_FEATURE_EVENT_FORK) gets the write-protected PTE; without
        // EVENT_FORK the child VMA is not registered and its PTEs are left to faults
        for (features, copied) in [(feat::EVENT_FORK, true), (0, false)] {
            let mut k =
                Kernel::new(Profile::get("6.12", crate::arch::Arch::X86_64).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
            let pid = k.spawn("t", false).unwrap();
            let a = k.mmap(pid, 4096, MapKind::Shmem, true, None).unwrap();
            k.access(pid, 0, a, true, 10).unwrap();
            let u = k.userfaultfd(pid).unwrap();
            k.uffdio_api(u, UFFD_API, features).unwrap();
            k.uffdio_register(u, a, 4096, UFFDIO_REGISTER_MODE_WP).unwrap();
            k.uffdio_writeprotect(u, a, 4096, UFFDIO_WRITEPROTECT_MODE_WP).unwrap();
            let child = k.fork(pid).unwrap();
            let arch = k.arch();
            let pte = k.pte_at(child, a).unwrap_or(arch.pte_none_val());
            assert_eq!(arch.pte_present(pte) && arch.pte_uffd_wp(pte), copied, "features {features:#x}: {pte:#x}");
            assert_eq!(arch.pte_none(pte), !copied);
            k.check_invariants().unwrap();
        }
    }
}
