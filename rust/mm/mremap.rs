//! mremap (mm/mremap.c): shrink, expand in place, or move a mapping with its page tables.
//!
//! A move keeps every page where it is and moves the PTEs (`move_page_tables`): anon pages keep
//! their `index`, and the new VMA's `vm_pgoff` is the old one advanced to the moved range
//! (`copy_vma`), so `vma_address(page, new_vma)` lands on the new address and the rmap finds
//! every page again; a VMA that never had an anon_vma takes `new_addr >> PAGE_SHIFT` instead.
//!
//! Simplifications: no MREMAP_FIXED / MREMAP_DONTUNMAP (the model picks the new address as
//! `get_unmapped_area` does), no `old_len == 0` duplication of shared mappings (EINVAL), no
//! VM_ACCOUNT or RLIMIT_MEMLOCK checks; the VMA lookup precedes a shrink as in v6.12 (v4.18
//! unmapped the tail without looking); a move that would fail halfway (no page table) fails
//! before it starts instead of moving the PTEs back.

use crate::error::{Errno, Error, Result};
use crate::kernel::Kernel;
use crate::mm::Vma;
use crate::mm::mmap::{PAGE, page_align};
use crate::mm::vm::*;
use crate::sim::log::Ev;

impl Kernel {
    /// `mremap(old_addr, old_len, new_len, maymove ? MREMAP_MAYMOVE : 0)` (mm/mremap.c, 6.12.117;
    /// 4.x as the module doc says); returns the address of the mapping afterwards.
    ///
    /// - Shrinking unmaps the tail (`do_vmi_munmap`, with its UNMAP events); the same length
    ///   returns `old_addr`.
    /// - Growing needs `[old_addr, old_addr + old_len)` inside one VMA (else EFAULT). If the range
    ///   ends at the VMA's end and the space after it is free, the VMA grows in place.
    /// - Otherwise, with `maymove`, `move_vma`: a new VMA at a free address, the PTEs moved
    ///   (`move_page_tables`), the old range unmapped. A VMA registered with a userfaultfd keeps
    ///   its registration and the context gets UFFD_EVENT_REMAP `{from, to, len = old_len}` if
    ///   it asked for UFFD_FEATURE_EVENT_REMAP; without it the new VMA is unregistered from
    ///   v5.0 and stays registered before (`mremap_userfaultfd_prep`). Without `maymove`:
    ///   ENOMEM.
    ///
    /// Errors: EINVAL for an unaligned `old_addr`, a zero `new_len` or `old_len`, or a wrapping
    /// range; EFAULT when `old_addr` is not mapped, the old range spans more than one VMA, or
    /// the VMA may not grow (VM_DONTEXPAND/VM_PFNMAP); ENOMEM when nothing fits.
    pub fn mremap(&mut self, pid: u32, old_addr: u64, old_len: u64, new_len: u64, maymove: bool) -> Result<u64> {
        const CALL: &str = "mremap";
        self.mm(pid)?;
        if old_addr % PAGE != 0 {
            return Err(Error::errno(Errno::EINVAL, CALL, format!("old address {old_addr:#x} is not page-aligned")));
        }
        let new_len = page_align(new_len)
            .filter(|&l| l != 0)
            .ok_or_else(|| Error::errno(Errno::EINVAL, CALL, format!("new length {new_len:#x} is 0 or overflows")))?;
        let old_len = page_align(old_len).filter(|&l| l != 0).ok_or_else(|| {
            Error::errno(
                Errno::EINVAL,
                CALL,
                format!("old length {old_len:#x} is 0 or overflows (the model does not duplicate mappings)"),
            )
        })?;
        let old_end = old_addr.checked_add(old_len).ok_or_else(|| {
            Error::errno(Errno::EINVAL, CALL, format!("range at {old_addr:#x} + {old_len:#x} wraps around"))
        })?;
        let Some(vma) = self.vma_lookup(pid, old_addr) else {
            return Err(Error::errno(Errno::EFAULT, CALL, format!("{old_addr:#x} is not mapped (no VMA)")));
        };
        if old_len >= new_len {
            if old_len > new_len {
                self.munmap(pid, old_addr + new_len, old_len - new_len)?;
            }
            self.log(Ev::Mremap, pid, 0, old_addr, old_addr, old_len, new_len);
            return Ok(old_addr);
        }
        // vma_to_resize
        let (vstart, vend, flags) = {
            let v = self.vma(vma);
            (v.start, v.end, v.flags)
        };
        if old_end > vend {
            return Err(Error::errno(
                Errno::EFAULT,
                CALL,
                format!("[{old_addr:#x}, {old_end:#x}) spans more than the VMA [{vstart:#x}, {vend:#x})"),
            ));
        }
        if flags & (VM_DONTEXPAND | VM_PFNMAP) != 0 {
            return Err(Error::errno(
                Errno::EFAULT,
                CALL,
                format!("the VMA at {vstart:#x} may not grow (VM_DONTEXPAND)"),
            ));
        }
        let delta = new_len - old_len;
        // expand in place: the range ends at the VMA's end and nothing lies after it
        if old_end == vend && self.vma_expandable(pid, vend, delta) {
            self.vma_mut(vma).end = vend + delta;
            self.mmx_mut(pid).pt.upgrade_for(vend + delta - 1);
            let vma = self.vma_merge_around(vma);
            self.log(Ev::Mremap, pid, 0, old_addr, old_addr, old_len, new_len);
            self.mremap_populate_locked(vma, old_end, old_addr + new_len);
            return Ok(old_addr);
        }
        if !maymove {
            return Err(Error::errno(
                Errno::ENOMEM,
                CALL,
                format!("cannot grow {old_addr:#x} in place to {new_len:#x} bytes and MREMAP_MAYMOVE is not set"),
            ));
        }
        let new_addr = self.get_unmapped_area(pid, new_len)?;
        self.move_vma(vma, old_addr, old_len, new_len, new_addr)?;
        if let Some(nv) = self.vma_lookup(pid, new_addr) {
            self.mremap_populate_locked(nv, new_addr + old_len, new_addr + new_len);
        }
        Ok(new_addr)
    }

    /// The end of mremap (mm/mremap.c, 4.17 and 6.12): a VM_LOCKED mapping that grew, in place
    /// or moved (`if (vm_flags & VM_LOCKED) { mm->locked_vm += …; *locked = true; }`), has its
    /// new part faulted in: "if (locked && new_len > old_len) mm_populate(new_addr + old_len,
    /// new_len - old_len);" (`mm_populate` ignores errors).
    fn mremap_populate_locked(&mut self, vma: u32, start: u64, end: u64) {
        if self.vma(vma).flags & VM_LOCKED != 0 {
            let _ = self.populate_locked(vma, start, end.min(self.vma(vma).end));
            self.settle();
        }
    }

    /// `vma_expandable` (mm/mremap.c, 4.17 and 6.12): `[end, end + delta)` is free and below
    /// TASK_SIZE (`find_vma_intersection`, `get_unmapped_area(NULL, vma->vm_start, end -
    /// vma->vm_start, 0, MAP_FIXED)`).
    fn vma_expandable(&self, pid: u32, end: u64, delta: u64) -> bool {
        match end.checked_add(delta) {
            Some(e) if e <= self.arch().task_size() => self.vmas_in(pid, end, e).is_empty(),
            _ => false,
        }
    }

    /// mm/mremap.c `move_vma` (6.12.117; 4.17 the same steps): `copy_vma` (a VMA for `[new_addr, new_addr + new_len)` with the old one's
    /// flags, file, anon_vma chain and advanced `vm_pgoff`, merged with its new neighbours where
    /// they fit), `move_page_tables`, `mremap_userfaultfd_prep`, the REMAP event, then the old
    /// range is unmapped (`do_vmi_munmap`, whose UNMAP events follow the REMAP one, as
    /// `userfaultfd_unmap_complete(uf_unmap)` runs after `mremap_userfaultfd_complete`).
    fn move_vma(&mut self, vma: u32, old_addr: u64, old_len: u64, new_len: u64, new_addr: u64) -> Result<()> {
        let arch = self.arch();
        let old = self.vma(vma).clone();
        let pid = old.mm;
        // the page tables of the new range first: a move that cannot complete does not start
        {
            let pt = &mut self.mmx_mut(pid).pt;
            pt.upgrade_for(new_addr + new_len - 1);
            let mut a = new_addr;
            while a < new_addr + old_len {
                if pt.pte_alloc(a).is_none() {
                    return Err(Error::errno(Errno::ENOMEM, "mremap", "no page table for the new range"));
                }
                a += PAGE;
            }
        }
        // copy_vma
        let pgoff = if old.anon_vma.is_none() && old.file.is_none() { new_addr >> 12 } else { old.pgoff_of(old_addr) };
        let nv = Vma { start: new_addr, end: new_addr + new_len, pgoff, anon_vma_chain: Vec::new(), ..old.clone() };
        let nid = self.vma_insert(nv);
        self.anon_vma_clone(nid, vma);
        if let Some(f) = old.file {
            self.filex_mut(f).i_mmap.push(nid);
        }
        let nid = self.vma_merge_around(nid);
        let remap_ctx = self.mremap_userfaultfd_prep(nid);
        // a VMA that lost its registration keeps no uffd-wp PTE bits
        let clear_uffd_wp =
            old.uffd.is_some() && self.vma_lookup(pid, new_addr).is_some_and(|v| self.vma(v).uffd.is_none());
        // move_page_tables → move_ptes
        let mut cur = old_addr;
        let old_end = old_addr + old_len;
        while let Some((a, idx)) = self.next_pte_slot(pid, cur, old_end) {
            cur = a + PAGE;
            let pte = self.mmx(pid).pt.pte(idx);
            if arch.pte_none(pte) {
                continue;
            }
            let nidx = self.mmx(pid).pt.pte_index(new_addr + (a - old_addr)).expect("allocated above");
            if arch.pte_present(pte) {
                let mut p = self.ptep_xchg(pid, idx, arch.pte_none_val());
                if clear_uffd_wp {
                    p = arch.pte_clear_uffd_wp(p);
                }
                self.set_pte_at(pid, nidx, p);
            } else {
                self.pte_clear(pid, idx);
                let p = if clear_uffd_wp { arch.pte_swp_set_uffd_wp(pte, false) } else { pte };
                self.mmx_mut(pid).pt.set_pte(nidx, p);
            }
        }
        if let Some(ctx) = remap_ctx {
            self.mremap_userfaultfd_complete(ctx, old_addr, new_addr, old_len);
        }
        self.log(Ev::Mremap, pid, 0, old_addr, new_addr, old_len, new_len);
        // do_vmi_munmap of the old range: its PTEs are none now (rss and swap counts moved along)
        self.munmap(pid, old_addr, old_len)
    }
}

#[cfg(test)]
mod tests {
    use crate::mm::mmap::MapKind;
    use crate::mm::page::pg;
    use crate::testutil::kernel;

    #[test]
    fn mremap_growing_a_locked_mapping_faults_in_and_mlocks_the_new_part() {
        // mm/mremap.c (4.17, 6.12): "if (locked && new_len > old_len) mm_populate(new_addr +
        // old_len, new_len - old_len);" after an in-place expansion or a move of a VM_LOCKED VMA
        for profile in ["4.17", "6.12"] {
            for blocker in [false, true] {
                let mut k = kernel(profile);
                let pid = k.spawn("p", false).unwrap();
                // top-down: a shmem mapping made first lies right above the anon one and
                // forces a move
                let above = blocker.then(|| k.mmap(pid, 4096, MapKind::Shmem, true, None).unwrap());
                let a = k.mmap(pid, 2 * 4096, MapKind::Anon, false, None).unwrap();
                assert!(above.is_none_or(|x| x == a + 2 * 4096));
                k.mlock(pid, a, 2 * 4096).unwrap();
                let b = k.mremap(pid, a, 2 * 4096, 4 * 4096, true).unwrap();
                assert_eq!(b != a, blocker, "{profile}: moved only when blocked");
                for i in 0..4 {
                    let pte = k.pte_at(pid, b + i * 4096).unwrap_or(k.arch().pte_none_val());
                    assert!(k.arch().pte_present(pte), "{profile} blocker={blocker}: page {i} populated");
                    let pfn = k.arch().pte_pfn(pte) as usize;
                    assert!(k.mem.frames[pfn].test(pg::PG_MLOCKED), "{profile}: page {i} mlocked");
                }
                k.check_invariants().unwrap();
            }
        }
    }
}
