//! mlock / munlock (mm/mlock.c): VM_LOCKED on the range (splitting VMAs), pages faulted in and
//! moved to the unevictable list; munlock returns pages no other locked VMA maps.
//!
//! Simplification: populating skips a page whose fault would go to userfaultfd (the kernel's
//! GUP would park the mlocking thread on it).

use crate::error::{Errno, Error, Result};
use crate::fault::Fault;
use crate::kernel::Kernel;
use crate::mm::vm;
use crate::sim::log::Ev;

impl Kernel {
    /// The page-aligned range of an mlock/munlock call (`do_mlock`: `len = PAGE_ALIGN(len +
    /// offset_in_page(start)); start &= PAGE_MASK;`), and where the VMAs mapping it without a
    /// gap from `start` end: (start, end, mapped end). `apply_vma_lock_flags` (mm/mlock.c;
    /// 4.17: `vma = find_vma(current->mm, start); if (!vma || vma->vm_start > start) return
    /// -ENOMEM;`, 6.12: `vma = vma_iter_load(&vmi); if (!vma) return -ENOMEM;`) refuses a range
    /// whose start is not mapped before it changes anything.
    fn lock_range(&self, call: &'static str, pid: u32, addr: u64, len: u64) -> Result<(u64, u64, u64)> {
        let start = addr & !0xfff;
        // wraps like do_mlock's PAGE_ALIGN(len + offset_in_page(start)); `if (end < start)
        // return -EINVAL;`
        let end = crate::mm::mmap::page_align(len.wrapping_add(addr & 0xfff))
            .and_then(|l| start.checked_add(l))
            .ok_or_else(|| Error::errno(Errno::EINVAL, call, "range overflows"))?;
        let mut cur = start;
        for id in self.vmas_in(pid, start, end) {
            let v = self.vma(id);
            if v.start > cur {
                break;
            }
            cur = v.end;
        }
        if start != end && cur == start {
            return Err(Error::errno(Errno::ENOMEM, call, format!("{start:#x} is not mapped")));
        }
        Ok((start, end, cur.min(end)))
    }

    /// The ENOMEM of `apply_vma_lock_flags` at a hole: "if (!vma || vma->vm_start != nstart) {
    /// error = -ENOMEM; break; }" (4.17) / "if (vma->vm_start != tmp) return -ENOMEM;" and "if
    /// (tmp < end) return -ENOMEM;" (6.12), after the VMAs before the hole were changed.
    fn hole_error(call: &'static str, at: u64) -> Error {
        Error::errno(
            Errno::ENOMEM,
            call,
            format!("{at:#x} in the range is not mapped; the VMAs before it were changed"),
        )
    }

    /// `mlock(addr, len)` (mm/mlock.c `do_mlock`, 4.13..6.12): `apply_vma_lock_flags` sets
    /// VM_LOCKED on each VMA of the range (`mlock_fixup` splits and merges them), then
    /// `__mm_populate` faults the range in. A hole in the range stops `apply_vma_lock_flags`
    /// there: the VMAs before it stay locked, ENOMEM is returned and nothing is populated; with
    /// [`Profile::mlock_fixup_mlocks_pages`](crate::profile::Profile) (v5.18+) `mlock_fixup` has
    /// already mlocked their present pages (`mlock_vma_pages_range`, skipped for a VMA that
    /// was locked before: "No work to do, and mlocking twice would be wrong"), before it they
    /// are only VM_LOCKED.
    ///
    /// Populating stops at the first page that cannot be faulted in: the range stays VM_LOCKED
    /// and mlock fails with the errno `__mlock_posix_error_return` (mm/mlock.c, 4.13..6.12)
    /// makes of GUP's: out of memory (-ENOMEM from `vm_fault_to_errno`'s VM_FAULT_OOM) is
    /// EAGAIN, a SIGBUS or hwpoison fault (-EFAULT) is ENOMEM (`if (retval == -EFAULT) retval =
    /// -ENOMEM; else if (retval == -ENOMEM) retval = -EAGAIN;`).
    pub fn mlock(&mut self, pid: u32, addr: u64, len: u64) -> Result<()> {
        self.mm(pid)?;
        let (start, end, mapped) = self.lock_range("mlock", pid, addr, len)?;
        if start == end {
            return Ok(());
        }
        let ids = self.split_range(pid, start, mapped);
        let mut failed = None;
        for &id in &ids {
            let was_locked = self.vma(id).flags & vm::VM_LOCKED != 0;
            self.vma_mut(id).flags |= vm::VM_LOCKED;
            let (s, e) = (self.vma(id).start, self.vma(id).end);
            if mapped < end {
                if self.profile.mlock_fixup_mlocks_pages && !was_locked {
                    self.mlock_present_pages(id, s, e);
                }
            } else if failed.is_none() {
                failed = self.populate_locked(id, s, e).err();
            }
        }
        self.vma_merge_all(&ids);
        self.log(Ev::Mlock, pid, 0, start, mapped - start, 1, 0);
        self.settle();
        if mapped < end {
            return Err(Self::hole_error("mlock", mapped));
        }
        match failed {
            None => Ok(()),
            Some((at, Fault::Oom)) => Err(Error::errno(
                Errno::EAGAIN,
                "mlock",
                format!("out of memory faulting in {at:#x}; the range stays locked"),
            )),
            Some((at, _)) => Err(Error::errno(
                Errno::ENOMEM,
                "mlock",
                format!("the fault at {at:#x} raises SIGBUS (GUP's -EFAULT); the range stays locked"),
            )),
        }
    }

    /// `mlock_vma_pages_range` → `mlock_pte_range` (mm/mlock.c v5.18+, 6.12): each present
    /// page of `[start, end)` in `vma` is mlocked (`mlock_folio`); nothing is faulted in.
    fn mlock_present_pages(&mut self, vma: u32, start: u64, end: u64) {
        let pid = self.vma(vma).mm;
        let mut cur = start;
        while let Some(pfn) = self.next_present_page(pid, &mut cur, end) {
            self.mlock_page(pfn);
        }
    }

    /// The page of the next present PTE of `pid` in `[*cur, end)` that has one
    /// (`vm_normal_page`), moving `*cur` past it: the walk of `mlock_pte_range` and of 4.x's
    /// `munlock_vma_pages_range`.
    fn next_present_page(&self, pid: u32, cur: &mut u64, end: u64) -> Option<u32> {
        let arch = self.arch();
        while let Some((a, idx)) = self.next_pte_slot(pid, *cur, end) {
            *cur = a + 4096;
            let p = self.mmx(pid).pt.pte(idx);
            if arch.pte_present(p) {
                if let Some(pfn) = self.vm_normal_page(p) {
                    return Some(pfn);
                }
            }
        }
        None
    }

    /// mm/gup.c `__mm_populate` → `populate_vma_page_range` (4.17, 6.12) of a locked range: fault every page in and mlock it; the address and
    /// the fault at the first page whose fault fails (out of memory, SIGBUS).
    pub(crate) fn populate_locked(&mut self, vma: u32, start: u64, end: u64) -> std::result::Result<(), (u64, Fault)> {
        let arch = self.arch();
        let pid = self.vma(vma).mm;
        let flags = self.vma(vma).flags;
        let write = flags & (vm::VM_WRITE | vm::VM_SHARED) == vm::VM_WRITE;
        let mut a = start;
        while a < end {
            let pte = self.pte_at(pid, a).unwrap_or(arch.pte_none_val());
            let would_userfault = arch.pte_none(pte) && self.userfaultfd_armed(vma);
            if !would_userfault && !(arch.pte_present(pte) && (!write || arch.pte_write(pte))) {
                let f = self.handle_mm_fault(pid, 0, vma, a, write);
                if matches!(f, Fault::Oom | Fault::Sigbus) {
                    return Err((a, f));
                }
            }
            if let Some(p) = self.pte_at(pid, a) {
                if let Some(pfn) = self.vm_normal_page(p).filter(|_| arch.pte_present(p)) {
                    self.mlock_page(pfn);
                }
            }
            a += 4096;
        }
        Ok(())
    }

    /// `munlock(addr, len)` (mm/mlock.c, 4.13..6.12: `apply_vma_lock_flags(start, len, 0)`):
    /// VM_LOCKED cleared and the pages munlocked VMA by VMA (`mlock_fixup`); a hole in the
    /// range stops it there with ENOMEM, the VMAs before it unlocked.
    pub fn munlock(&mut self, pid: u32, addr: u64, len: u64) -> Result<()> {
        self.mm(pid)?;
        let (start, end, mapped) = self.lock_range("munlock", pid, addr, len)?;
        if start == end {
            return Ok(());
        }
        let ids = self.split_range(pid, start, mapped);
        for &id in &ids {
            self.vma_mut(id).flags &= !(vm::VM_LOCKED | vm::VM_LOCKONFAULT);
            let (s, e) = (self.vma(id).start, self.vma(id).end);
            self.munlock_vma_pages(id, s, e);
        }
        self.vma_merge_all(&ids);
        self.log(Ev::Mlock, pid, 0, start, mapped - start, 0, 0);
        if mapped < end {
            return Err(Self::hole_error("munlock", mapped));
        }
        Ok(())
    }

    /// mm/mlock.c `munlock_vma_pages_range` (4.17; 6.12 `mlock_vma_pages_range` with VM_LOCKED
    /// cleared): each mapped page that no other locked VMA maps is no
    /// longer mlocked.
    pub(crate) fn munlock_vma_pages(&mut self, vma: u32, start: u64, end: u64) {
        let pid = self.vma(vma).mm;
        let saved = self.vma(vma).flags;
        self.vma_mut(vma).flags &= !vm::VM_LOCKED;
        let mut cur = start;
        while let Some(pfn) = self.next_present_page(pid, &mut cur, end) {
            if !self.mapped_in_locked_vma(pfn) {
                self.munlock_page(pfn);
            }
        }
        self.vma_mut(vma).flags = saved;
    }
}

#[cfg(test)]
mod tests {
    use crate::arch::Arch;
    use crate::error::Errno;
    use crate::kernel::Kernel;
    use crate::mm::madvise::Advice;
    use crate::mm::vm;
    use crate::profile::Profile;
    use crate::testutil::proc_with_pages;

    #[test]
    fn mlock_over_a_hwpoisoned_page_is_enomem_not_eagain_and_stays_locked() {
        // mm/mlock.c do_mlock (4.17, 4.18): apply_vma_lock_flags sets VM_LOCKED, then
        // __mm_populate's GUP faults the hwpoison entry (do_swap_page: VM_FAULT_HWPOISON),
        // vm_fault_to_errno makes it -EFAULT (populate asks no FOLL_HWPOISON), and
        // __mlock_posix_error_return turns -EFAULT into -ENOMEM; only -ENOMEM becomes -EAGAIN.
        for profile in ["4.17", "4.18"] {
            let mut k = Kernel::new(Profile::get(profile, Arch::X86_64).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
            let (pid, a) = proc_with_pages(&mut k, false, 2);
            k.madvise(pid, a, 4096, Advice::Hwpoison).unwrap();
            let e = k.mlock(pid, a, 2 * 4096).unwrap_err();
            assert_eq!(e.errno_value(), Some(Errno::ENOMEM), "{profile}: {e}");
            let v = k.vma_lookup(pid, a).unwrap();
            assert_ne!(k.vma(v).flags & vm::VM_LOCKED, 0, "{profile}: the range stays VM_LOCKED");
            k.check_invariants().unwrap();
        }
    }

    #[test]
    fn mlock_over_a_hole_locks_the_vmas_before_it_and_fails_with_enomem() {
        // mm/mlock.c apply_vma_lock_flags: mlock_fixup on each VMA up to the hole, then -ENOMEM
        // (4.17: "if (!vma || vma->vm_start != nstart) { error = -ENOMEM; break; }"; 6.12: "if
        // (vma->vm_start != tmp) return -ENOMEM;"); do_mlock returns before __mm_populate.
        // v5.18+ mlock_fixup → mlock_vma_pages_range mlocks the present pages (6.12); 4.x only
        // sets VM_LOCKED.
        use crate::mm::page::pg;
        for (profile, mlocked) in [("4.13", false), ("4.17", false), ("4.18", false), ("6.12", true)] {
            let mut k = Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
            let (pid, a) = proc_with_pages(&mut k, false, 4);
            // unmap the third page and fault nothing in the fourth's neighbourhood: a, a+4K
            // present, hole at a+8K, a+12K present
            k.munmap(pid, a + 2 * 4096, 4096).unwrap();
            let e = k.mlock(pid, a, 4 * 4096).unwrap_err();
            assert_eq!(e.errno_value(), Some(Errno::ENOMEM), "{profile}: {e}");
            let before = k.vma_lookup(pid, a).unwrap();
            assert_ne!(k.vma(before).flags & vm::VM_LOCKED, 0, "{profile}: the VMA before the hole is locked");
            assert_eq!(k.vma(before).end, a + 2 * 4096, "{profile}");
            let after = k.vma_lookup(pid, a + 3 * 4096).unwrap();
            assert_eq!(k.vma(after).flags & vm::VM_LOCKED, 0, "{profile}: the VMA after the hole is not");
            for i in 0..2 {
                let pfn = k.arch().pte_pfn(k.pte_at(pid, a + i * 4096).unwrap()) as usize;
                assert_eq!(k.mem.frames[pfn].test(pg::PG_MLOCKED), mlocked, "{profile}: page {i}");
            }
            k.check_invariants().unwrap();

            // munlock over the same hole unlocks the VMA before it, then ENOMEM
            let e = k.munlock(pid, a, 4 * 4096).unwrap_err();
            assert_eq!(e.errno_value(), Some(Errno::ENOMEM), "{profile}: {e}");
            assert_eq!(k.vma(k.vma_lookup(pid, a).unwrap()).flags & vm::VM_LOCKED, 0, "{profile}");
            let pfn = k.arch().pte_pfn(k.pte_at(pid, a).unwrap()) as usize;
            assert!(!k.mem.frames[pfn].test(pg::PG_MLOCKED), "{profile}");

            // a range that starts in a hole changes nothing
            k.mlock(pid, a + 3 * 4096, 4096).unwrap();
            let e = k.munlock(pid, a + 2 * 4096, 2 * 4096).unwrap_err();
            assert_eq!(e.errno_value(), Some(Errno::ENOMEM), "{profile}: {e}");
            assert_ne!(k.vma(k.vma_lookup(pid, a + 3 * 4096).unwrap()).flags & vm::VM_LOCKED, 0, "{profile}");
            k.check_invariants().unwrap();
        }
    }
}
