//! mmap, munmap, VMA split and merge (mm/mmap.c, mm/vma.c).
//!
//! Addresses are chosen top-down below the mm's mmap base, as `arch_get_unmapped_area_topdown`
//! does, so consecutive anonymous mappings end up adjacent and are merged by `vma_merge`, as on
//! a real system.

use crate::error::{Errno, Error, Result};
use crate::kernel::Kernel;
use crate::mm::Vma;
use crate::mm::vm::*;
use crate::sim::log::Ev;

/// What an mmap maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// `MAP_ANONYMOUS`.
    Anon,
    /// A shmem object (a memfd or `/dev/shm` file). With `MAP_SHARED|MAP_ANONYMOUS` the kernel
    /// also sets up a shmem object (`shmem_zero_setup`).
    Shmem,
}

pub const PAGE: u64 = 4096;

/// `PROT_*` (include/uapi/asm-generic/mman-common.h).
pub const PROT_NONE: u64 = 0x0;
pub const PROT_READ: u64 = 0x1;
pub const PROT_WRITE: u64 = 0x2;
pub const PROT_EXEC: u64 = 0x4;

/// mprotect's `arch_validate_prot` then `calc_vm_prot_bits` (include/linux/mman.h, 4.13..6.12:
/// `_calc_vm_trans(prot, PROT_READ, VM_READ) | …`): PROT_READ/WRITE/EXEC become
/// VM_READ/WRITE/EXEC (the same bit values); bits beyond them are refused with EINVAL (the generic
/// `arch_validate_prot`: `(prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) == 0`; the
/// model has no PROT_SEM, PROT_GROWSDOWN/UP). mmap does not validate: see [`Kernel::mmap_prot`].
pub fn calc_vm_prot_bits(call: &'static str, prot: u64) -> Result<u64> {
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
        return Err(Error::errno(
            Errno::EINVAL,
            call,
            format!("prot {prot:#x} has bits other than PROT_READ (1), PROT_WRITE (2), PROT_EXEC (4)"),
        ));
    }
    Ok(prot & (VM_READ | VM_WRITE | VM_EXEC))
}

/// Round `len` up to pages, as mmap/munmap/madvise do. `None` if it overflows.
pub fn page_align(len: u64) -> Option<u64> {
    len.checked_add(PAGE - 1).map(|l| l & !(PAGE - 1))
}

impl Kernel {
    /// mm/mmap.c `get_unmapped_area` → `arch_get_unmapped_area_topdown` (4.17, 6.12), top-down: the highest gap below the mmap base that fits `len`.
    pub(crate) fn get_unmapped_area(&self, pid: u32, len: u64) -> Result<u64> {
        let mm = self.mmx(pid);
        let mut top = mm.mmap_base;
        for (_, &id) in mm.vmas.range(..mm.mmap_base).rev() {
            let v = self.vma(id);
            if v.end <= top && top - v.end >= len {
                return Ok(top - len);
            }
            top = top.min(v.start);
        }
        if top >= len + 0x1_0000 {
            return Ok(top - len);
        }
        Err(Error::errno(Errno::ENOMEM, "mmap", format!("no free range of {len} bytes below {:#x}", mm.mmap_base)))
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE or MAP_SHARED [|MAP_ANONYMOUS])`.
    /// `file` maps an existing shmem object (else a new one is made for `Shmem` or shared anon
    /// mappings). Returns the address.
    pub fn mmap(&mut self, pid: u32, len: u64, kind: MapKind, shared: bool, file: Option<(u32, u64)>) -> Result<u64> {
        self.mmap_prot(pid, len, PROT_READ | PROT_WRITE, kind, shared, file)
    }

    /// `vma_wants_writenotify(vma, vm_page_prot)` (mm/vma.c 6.12.117, mm/mmap.c 4.17) for a
    /// VMA with `flags`: only a shared writable VMA can want it (`vma_is_shared_writable`), and
    /// of the kernel's reasons only uffd-wp applies to the model's memory (6.12: `if
    /// (userfaultfd_wp(vma)) return true;`, [`crate::Profile::uffd_wp_writenotify`]). shmem has no
    /// `page_mkwrite` (`vm_ops_needs_writenotify`), cannot write back (`vma_fs_can_writeback`), and
    /// soft-dirty tracking is not modelled (a new VMA has VM_SOFTDIRTY, which disables it).
    pub(crate) fn vma_wants_writenotify(&self, flags: u64) -> bool {
        flags & (VM_WRITE | VM_SHARED) == VM_WRITE | VM_SHARED
            && self.profile.uffd_wp_writenotify
            && flags & VM_UFFD_WP != 0
    }

    /// The `vm_page_prot` `vma_set_page_prot` (mm/mmap.c, 4.13..6.12) gives a VMA with `flags`:
    /// `vm_get_page_prot(vm_flags)`, or without VM_SHARED (the private, read-only protection)
    /// when the VMA wants write notification, so that the first write to each page faults
    /// (`wp_page_shared`).
    pub(crate) fn vma_page_prot(&self, flags: u64) -> u64 {
        let flags = if self.vma_wants_writenotify(flags) { flags & !VM_SHARED } else { flags };
        self.arch().vm_get_page_prot(flags)
    }

    /// `vma_set_page_prot(vma)` (mm/mmap.c, 4.13..6.12): recompute the VMA's `vm_page_prot` from
    /// its flags ([`Kernel::vma_page_prot`]). 6.12 `userfaultfd_set_vm_flags` (mm/userfaultfd.c
    /// 6.12.117) calls it when VM_UFFD_WP of a VM_SHARED VMA changes: on UFFDIO_REGISTER,
    /// UNREGISTER, close, and when fork or mremap drop a registration. PTEs already mapped keep
    /// their protection (the kernel does not rewrite them either).
    pub(crate) fn vma_set_page_prot(&mut self, id: u32) {
        let prot = self.vma_page_prot(self.vma(id).flags);
        self.vma_mut(id).page_prot = prot;
    }

    /// `mmap(NULL, len, prot, ...)` (mm/mmap.c `do_mmap` → `mmap_region`, 4.13..6.12): as
    /// [`Kernel::mmap`] with the protection `prot` (`PROT_*`); the VMA gets
    /// `calc_vm_prot_bits(prot)` plus every VM_MAY* bit (a shmem object opened read-write), and
    /// `vm_page_prot` as `vma_set_page_prot` gives it. As in `do_mmap`, `prot` is not validated:
    /// bits other than PROT_READ/WRITE/EXEC are ignored (`calc_vm_prot_bits` only translates
    /// those three). Length 0 is EINVAL, a length that overflows when page-aligned ENOMEM
    /// (`len = PAGE_ALIGN(len); if (!len) return -ENOMEM;`).
    pub fn mmap_prot(
        &mut self,
        pid: u32,
        len: u64,
        prot: u64,
        kind: MapKind,
        shared: bool,
        file: Option<(u32, u64)>,
    ) -> Result<u64> {
        self.mm(pid)?;
        // do_mmap: `vm_flags |= calc_vm_prot_bits(prot, pkey) | …`, no arch_validate_prot
        let prot_bits = prot & (PROT_READ | PROT_WRITE | PROT_EXEC);
        if len == 0 {
            return Err(Error::errno(Errno::EINVAL, "mmap", "length is 0"));
        }
        let len = page_align(len).ok_or_else(|| Error::errno(Errno::ENOMEM, "mmap", "length overflows"))?;
        if len > 1 << 40 {
            return Err(Error::errno(
                Errno::ENOMEM,
                "mmap",
                format!("length {len:#x} exceeds the model's 1 TiB per mapping"),
            ));
        }
        let addr = self.get_unmapped_area(pid, len)?;
        let mut flags = prot_bits | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
        if shared {
            flags |= VM_SHARED | VM_MAYSHARE;
        }
        let (file, pgoff) = match (kind, shared, file) {
            (_, _, Some((f, off))) => {
                self.file(f)?;
                (Some(f), off)
            }
            (MapKind::Anon, false, None) => (None, addr >> 12),
            (MapKind::Anon, true, None) => (Some(self.shmem_create("dev/zero (deleted)", len >> 12)), 0),
            (MapKind::Shmem, _, None) => (Some(self.shmem_create("memfd:reclaim", len >> 12)), 0),
        };
        if let Some(f) = file {
            let need = pgoff + (len >> 12);
            let a = self.filex_mut(f);
            if a.size_pages < need {
                a.size_pages = need;
            }
        }
        let prot = self.vma_page_prot(flags);
        let v = Vma {
            mm: pid,
            start: addr,
            end: addr + len,
            flags,
            pgoff,
            file,
            anon_vma: None,
            anon_vma_chain: Vec::new(),
            uffd: None,
            page_prot: prot,
        };
        let id = self.vma_insert(v);
        if let Some(f) = file {
            self.filex_mut(f).i_mmap.push(id);
        }
        self.mmx_mut(pid).pt.upgrade_for(addr + len - 1);
        self.vma_merge_around(id);
        self.log(Ev::Mmap, pid, 0, addr, len, flags, 0);
        Ok(addr)
    }

    /// Whether two adjacent VMAs can be one (mm/mmap.c 4.17, mm/vma.c 6.12: `is_mergeable_vma` +
    /// `is_mergeable_anon_vma`; flags compared whole, VM_SOFTDIRTY being on every model VMA).
    fn can_merge(&self, a: u32, b: u32) -> bool {
        let (x, y) = (self.vma(a), self.vma(b));
        let anon_ok = x.anon_vma == y.anon_vma
            || (x.anon_vma.is_none() && y.anon_vma_chain.len() <= 1)
            || (y.anon_vma.is_none() && x.anon_vma_chain.len() <= 1);
        x.end == y.start
            && x.flags == y.flags
            && x.file == y.file
            && x.uffd == y.uffd
            && x.pgoff + x.pages() == y.pgoff
            && anon_ok
    }

    /// mm/mmap.c `vma_merge` (4.17; 6.12 mm/vma.c `vma_modify`): fold `id` into its neighbours where they are compatible. Returns the id of
    /// the VMA that now covers `id`'s range.
    pub(crate) fn vma_merge_around(&mut self, id: u32) -> u32 {
        let mut cur = id;
        let (pid, start, end) = {
            let v = self.vma(cur);
            (v.mm, v.start, v.end)
        };
        // with the previous VMA
        if let Some((_, &prev)) = self.mmx(pid).vmas.range(..start).next_back() {
            if self.can_merge(prev, cur) {
                self.merge_into(prev, cur);
                cur = prev;
            }
        }
        if let Some(&next) = self.mmx(pid).vmas.get(&end) {
            if self.can_merge(cur, next) {
                self.merge_into(cur, next);
            }
        }
        cur
    }

    /// Merge each of `ids` that is still a VMA with its neighbours, once an operation has set
    /// the flags of all of them (merging one may remove the next; the kernel's loops continue
    /// from the merged VMA instead).
    pub(crate) fn vma_merge_all(&mut self, ids: &[u32]) {
        for &id in ids {
            if matches!(self.vmas.get(id as usize), Some(Some(_))) {
                self.vma_merge_around(id);
            }
        }
    }

    /// Extend `a` over the adjacent `b` and remove `b`.
    fn merge_into(&mut self, a: u32, b: u32) {
        let vb = self.vma(b).clone();
        if let Some(av) = vb.anon_vma {
            if self.vma(a).anon_vma.is_none() {
                self.vma_mut(a).anon_vma = Some(av);
                self.anon_vma_chain_link(a, av);
            }
        }
        self.vma_mut(a).end = vb.end;
        self.vma_remove(b);
    }

    /// mm/mmap.c `split_vma` (4.17; 6.12 mm/vma.c `__split_vma`): split the VMA containing `addr` so that a VMA starts at `addr`. Returns the
    /// id of the VMA that starts at `addr` (the new upper part).
    pub(crate) fn split_vma(&mut self, id: u32, addr: u64) -> u32 {
        let v = self.vma(id).clone();
        debug_assert!(addr > v.start && addr < v.end && addr % PAGE == 0);
        let mut upper = v.clone();
        upper.start = addr;
        upper.pgoff = v.pgoff + ((addr - v.start) >> 12);
        upper.anon_vma_chain = Vec::new();
        self.vma_mut(id).end = addr;
        let nid = self.vma_insert(upper);
        self.anon_vma_clone(nid, id);
        if let Some(f) = v.file {
            self.filex_mut(f).i_mmap.push(nid);
        }
        nid
    }

    /// Split VMAs at `start` and `end` so that `[start, end)` is covered by whole VMAs; return
    /// them in order. Holes are skipped.
    pub(crate) fn split_range(&mut self, pid: u32, start: u64, end: u64) -> Vec<u32> {
        let ids = self.vmas_in(pid, start, end);
        let mut out = Vec::with_capacity(ids.len());
        for mut id in ids {
            if self.vma(id).start < start {
                id = self.split_vma(id, start);
            }
            if self.vma(id).end > end {
                self.split_vma(id, end);
            }
            out.push(id);
        }
        out
    }

    /// Check `[addr, addr + len)` as munmap/madvise/mlock do: `addr` page-aligned, the rounded
    /// length not overflowing. Returns the end (== addr for an empty range).
    pub(crate) fn check_range(&self, call: &'static str, addr: u64, len: u64) -> Result<u64> {
        if addr % PAGE != 0 {
            return Err(Error::errno(Errno::EINVAL, call, format!("address {addr:#x} is not page-aligned")));
        }
        let l =
            page_align(len).ok_or_else(|| Error::errno(Errno::EINVAL, call, format!("length {len:#x} overflows")))?;
        addr.checked_add(l)
            .ok_or_else(|| Error::errno(Errno::EINVAL, call, format!("range at {addr:#x} + {len:#x} wraps around")))
    }

    /// `munmap(addr, len)`: unmap every page in the range, drop the VMAs (splitting at the
    /// edges) and free empty page tables. Unmapped holes are not an error.
    pub fn munmap(&mut self, pid: u32, addr: u64, len: u64) -> Result<()> {
        self.mm(pid)?;
        if len == 0 {
            return Err(Error::errno(Errno::EINVAL, "munmap", "length is 0"));
        }
        let end = self.check_range("munmap", addr, len)?;
        let ids = self.split_range(pid, addr, end);
        self.userfaultfd_unmap_prep(&ids, addr, end);
        for id in ids {
            self.remove_vma(id);
        }
        let (lo, hi) = self.free_pgtables_range(pid, addr, end);
        let pt = &self.mmx(pid).pt;
        let tables = pt.nr_page_tables() + pt.nr_upper_tables();
        self.mmx_mut(pid).pt.free_empty_pts(lo, hi);
        self.pgtable_free(pid, tables, false);
        self.log(Ev::Munmap, pid, 0, addr, end - addr, 0, 0);
        Ok(())
    }

    /// The whole page tables mm/memory.c `free_pgtables` → `free_pgd_range(tlb, addr, end, floor,
    /// ceiling)` (4.17, 6.12; 6.12 `unmap_region`/`vms_clear_ptes` pass `prev ? prev->vm_end :
    /// FIRST_USER_ADDRESS` and `next ? next->vm_start : USER_PGTABLES_CEILING`) frees after
    /// `[addr, end)` was unmapped: every table the range touches, except the first when the
    /// previous VMA ends inside it (`addr &= PMD_MASK; if (addr < floor) addr += PMD_SIZE;`)
    /// and the last when the next VMA starts inside it (`ceiling &= PMD_MASK; … if (end - 1 >
    /// ceiling - 1) end -= PMD_SIZE;`). Returned as a range of whole tables for
    /// [`crate::arch::pgtable::PageTable::free_empty_pts`]. FIRST_USER_ADDRESS is 0 on x86_64
    /// and s390. Simplified: the upper-level tables are kept, and one range spans the holes
    /// between the unmapped VMAs (tables there are already empty and unused).
    fn free_pgtables_range(&self, pid: u32, addr: u64, end: u64) -> (u64, u64) {
        let span = self.mmx(pid).pt.geometry().pt_span();
        let vmas = &self.mmx(pid).vmas;
        let floor = vmas.range(..addr).next_back().map_or(0, |(_, &id)| self.vma(id).end);
        let ceiling = vmas.range(end..).next().map(|(_, &id)| self.vma(id).start);
        let mut lo = addr & !(span - 1);
        if lo < floor {
            lo += span;
        }
        let mut hi = end;
        if let Some(c) = ceiling {
            let c = c & !(span - 1);
            if c == 0 {
                return (0, 0);
            }
            if hi > c {
                hi -= span;
            }
        }
        // the tables free_pmd_range visits: those holding an address of [lo, hi)
        let hi = hi.checked_next_multiple_of(span).unwrap_or(!(span - 1));
        if lo >= hi { (0, 0) } else { (lo, hi) }
    }

    /// mm/memory.c `unmap_vmas` + mm/mmap.c `remove_vma` (4.17, 6.12) for one VMA; VM_LOCKED pages
    /// are munlocked first (4.17 `munlock_vma_pages_all` in `do_munmap`).
    pub(crate) fn remove_vma(&mut self, id: u32) {
        let (s, e, file) = {
            let v = self.vma(id);
            (v.start, v.end, v.file)
        };
        if self.vma(id).flags & VM_LOCKED != 0 {
            self.munlock_vma_pages(id, s, e);
        }
        self.zap_page_range(id, s, e, true);
        self.vma_remove(id);
        if let Some(f) = file {
            self.shmem_release_if_unused(f);
        }
    }

    /// mm/mmap.c `exit_mmap` (4.17, 6.12): the process exits; every VMA goes, its threads with it.
    pub fn exit_mm(&mut self, pid: u32) -> Result<()> {
        self.mm(pid)?;
        let ids: Vec<u32> = self.mmx(pid).vmas.values().copied().collect();
        for id in ids {
            self.remove_vma(id);
        }
        self.uffd_release_mm(pid);
        self.mmx_mut(pid).threads.clear();
        self.mmx(pid).thread_hint.set(0);
        self.lru_gen_del_mm(pid);
        self.pgtable_free(pid, 0, true);
        if self.swap_cache_slab.is_some() {
            self.swap_cache_slab_sync();
        }
        self.mmx_mut(pid).alive = false;
        self.log(Ev::Exit, pid, 0, 0, 0, 0, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{MapKind, PROT_READ};
    use crate::mm::vm;
    use crate::testutil::kernel;

    #[test]
    fn mmap_ignores_prot_bits_it_does_not_know_as_do_mmap_does() {
        // mm/mmap.c do_mmap (4.17, 6.12) has no arch_validate_prot (only mprotect has):
        // calc_vm_prot_bits translates PROT_READ/WRITE/EXEC and drops anything else
        for profile in ["4.17", "6.12"] {
            let mut k = kernel(profile);
            let pid = k.spawn("p", false).unwrap();
            let a = k.mmap_prot(pid, 4096, PROT_READ | 0x100, MapKind::Anon, false, None).unwrap();
            let v = k.vma_lookup(pid, a).unwrap();
            assert_eq!(k.vma(v).flags & (vm::VM_READ | vm::VM_WRITE | vm::VM_EXEC), vm::VM_READ, "{profile}");
            assert!(k.mprotect(pid, a, 4096, 0x100).is_err(), "{profile}: mprotect validates");
        }
    }

    /// 6.12.117 mm/userfaultfd.c `userfaultfd_set_vm_flags` → mm/mmap.c `vma_set_page_prot` →
    /// mm/vma.c `vma_wants_writenotify` (`if (userfaultfd_wp(vma)) return true;`, 51d3d5eb74ff):
    /// while a shared shmem VMA is registered for uffd-wp, a read fault maps the page read-only
    /// and the first write is a `wp_page_shared` fault (no userfault: the PTE has no uffd-wp
    /// bit); UNREGISTER restores the writable protection. Without the switch (v5.19..v6.1) the
    /// read fault maps the page writable.
    #[test]
    fn uffd_wp_registered_shared_shmem_is_write_notified_on_612() {
        use crate::arch::Arch;
        use crate::fault::Access;
        use crate::kernel::Kernel;
        use crate::profile::{Profile, SwitchValue};
        use crate::sim::log::{Ev, fault_path};
        use crate::uffd::ioctl::{UFFD_API, UFFDIO_REGISTER_MODE_WP};
        let off = Profile::derive(
            "6.12",
            Arch::X86_64,
            "6.12-no-uffd-writenotify",
            &[("uffd_wp_writenotify", SwitchValue::Bool(false))],
        )
        .unwrap();
        for (profile, notify) in [(Profile::get("6.12", Arch::X86_64).unwrap(), true), (off, false)] {
            let mut k = Kernel::new(profile, 8 << 20, 8 << 20, 1).unwrap();
            let pid = k.spawn("t", false).unwrap();
            let a = k.mmap(pid, 2 * 4096, MapKind::Shmem, true, None).unwrap();
            let u = k.userfaultfd(pid).unwrap();
            k.uffdio_api(u, UFFD_API, 0).unwrap();
            k.uffdio_register(u, a, 2 * 4096, UFFDIO_REGISTER_MODE_WP).unwrap();
            assert!(matches!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { .. }));
            let pte = k.pte_at(pid, a).unwrap();
            assert_eq!(k.arch().pte_write(pte), !notify, "notify={notify}: read-fault PTE {pte:#x}");
            let n = k.log.len();
            assert!(matches!(k.access(pid, 0, a, true, 7).unwrap(), Access::Done { .. }), "notify={notify}");
            let reuse =
                k.log.events()[n..].iter().any(|e| e.kind == Ev::Fault && e.b == fault_path::WP_REUSE && e.c == 1);
            assert_eq!(reuse, notify, "notify={notify}: the first write is a wp_page_shared fault");
            let pte = k.pte_at(pid, a).unwrap();
            assert!(k.arch().pte_write(pte) && k.arch().pte_dirty(pte), "notify={notify}: {pte:#x}");
            assert!(k.uffd_read(u).unwrap().is_empty(), "notify={notify}: no userfault");
            k.check_invariants().unwrap();
            // userfaultfd_unregister → userfaultfd_clear_vma → vma_set_page_prot: writable again
            k.uffdio_unregister(u, a, 2 * 4096).unwrap();
            assert!(matches!(k.access(pid, 0, a + 4096, false, 0).unwrap(), Access::Done { .. }));
            let pte = k.pte_at(pid, a + 4096).unwrap();
            assert!(k.arch().pte_write(pte), "notify={notify}: after UNREGISTER {pte:#x}");
            k.check_invariants().unwrap();
        }
    }

    /// mm/memory.c `free_pgtables` → `free_pgd_range(…, floor, ceiling)` (4.17, 6.12): munmap of
    /// a mapping that covers only part of its page table frees the table when no other VMA uses
    /// it, and keeps it while a neighbour VMA (the `floor`/`ceiling`) still lies in it.
    #[test]
    fn munmap_frees_a_partly_covered_page_table_no_other_vma_uses() {
        use super::PROT_WRITE;
        for profile in ["4.17", "6.12", "4.17-x86_64", "6.12-x86_64"] {
            let mut k = match profile.strip_suffix("-x86_64") {
                Some(p) => crate::kernel::Kernel::new(
                    crate::profile::Profile::get(p, crate::arch::Arch::X86_64).unwrap(),
                    8 << 20,
                    8 << 20,
                    1,
                )
                .unwrap(),
                None => kernel(profile),
            };
            let pid = k.spawn("p", false).unwrap();
            let span = k.mmx(pid).pt.geometry().pt_span();
            let base = k.mmx(pid).pt.nr_page_tables();
            // three adjacent mappings of 4 pages that do not merge (alternating protections):
            // a on top, b below it, c below b
            let rw = PROT_READ | PROT_WRITE;
            let a = k.mmap_prot(pid, 4 * 4096, rw, MapKind::Anon, false, None).unwrap();
            let b = k.mmap_prot(pid, 4 * 4096, PROT_READ, MapKind::Anon, false, None).unwrap();
            let c = k.mmap_prot(pid, 4 * 4096, rw, MapKind::Anon, false, None).unwrap();
            assert_eq!((b + 4 * 4096, c + 4 * 4096), (a, b), "{profile}: top-down, adjacent");
            assert_eq!(c / span, (a + 4 * 4096 - 1) / span, "{profile}: all in one page table");
            for i in 0..4 {
                k.access(pid, 0, a + i * 4096, true, 1).unwrap();
                k.access(pid, 0, b + i * 4096, false, 0).unwrap();
                k.access(pid, 0, c + i * 4096, true, 1).unwrap();
            }
            let tables = |k: &crate::kernel::Kernel| k.mmx(pid).pt.nr_page_tables() - base;
            let used = tables(&k);
            k.munmap(pid, b, 4 * 4096).unwrap();
            assert_eq!(tables(&k), used, "{profile}: c (floor) and a (ceiling) still lie in the table");
            k.munmap(pid, a, 4 * 4096).unwrap();
            assert_eq!(tables(&k), used, "{profile}: c (floor) still lies in the table");
            k.munmap(pid, c, 4 * 4096).unwrap();
            assert_eq!(tables(&k), 0, "{profile}: no VMA uses the table any more");
            k.check_invariants().unwrap();
        }
    }
}
