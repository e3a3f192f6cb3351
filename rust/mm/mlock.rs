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
    /// The page-aligned range of an mlock call and a check that it is fully mapped.
    fn lock_range(&self, call: &'static str, pid: u32, addr: u64, len: u64) -> Result<(u64, u64)> {
        let start = addr & !0xfff;
        // wraps like do_mlock's PAGE_ALIGN(len + offset_in_page(start))
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
        if cur < end {
            return Err(Error::errno(Errno::ENOMEM, call, format!("{cur:#x} in the range is not mapped")));
        }
        Ok((start, end))
    }

    /// `mlock(addr, len)`. Populating stops at the first page that cannot be faulted in: the
    /// range stays VM_LOCKED and mlock fails with the errno `__mlock_posix_error_return`
    /// (mm/mlock.c, 4.13..6.12) makes of GUP's: out of memory (-ENOMEM from
    /// `vm_fault_to_errno`'s VM_FAULT_OOM) is EAGAIN, a SIGBUS or hwpoison fault (-EFAULT) is
    /// ENOMEM (`if (retval == -EFAULT) retval = -ENOMEM; else if (retval == -ENOMEM) retval =
    /// -EAGAIN;`).
    pub fn mlock(&mut self, pid: u32, addr: u64, len: u64) -> Result<()> {
        self.mm(pid)?;
        let (start, end) = self.lock_range("mlock", pid, addr, len)?;
        if start == end {
            return Ok(());
        }
        let ids = self.split_range(pid, start, end);
        let mut failed = None;
        for &id in &ids {
            self.vma_mut(id).flags |= vm::VM_LOCKED;
            let (s, e) = (self.vma(id).start, self.vma(id).end);
            if failed.is_none() {
                failed = self.populate_locked(id, s, e).err();
            }
        }
        self.vma_merge_all(&ids);
        self.log(Ev::Mlock, pid, 0, start, end - start, 1, 0);
        self.settle();
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

    /// `__mm_populate` of a locked range: fault every page in and mlock it; the address and
    /// the fault at the first page whose fault fails (out of memory, SIGBUS).
    fn populate_locked(&mut self, vma: u32, start: u64, end: u64) -> std::result::Result<(), (u64, Fault)> {
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

    /// `munlock(addr, len)`.
    pub fn munlock(&mut self, pid: u32, addr: u64, len: u64) -> Result<()> {
        self.mm(pid)?;
        let (start, end) = self.lock_range("munlock", pid, addr, len)?;
        if start == end {
            return Ok(());
        }
        let ids = self.split_range(pid, start, end);
        for &id in &ids {
            self.vma_mut(id).flags &= !(vm::VM_LOCKED | vm::VM_LOCKONFAULT);
            let (s, e) = (self.vma(id).start, self.vma(id).end);
            self.munlock_vma_pages(id, s, e);
        }
        self.vma_merge_all(&ids);
        self.log(Ev::Mlock, pid, 0, start, end - start, 0, 0);
        Ok(())
    }

    /// `munlock_vma_pages_range`: each mapped page that no other locked VMA maps is no
    /// longer mlocked.
    pub(crate) fn munlock_vma_pages(&mut self, vma: u32, start: u64, end: u64) {
        let arch = self.arch();
        let pid = self.vma(vma).mm;
        let saved = self.vma(vma).flags;
        self.vma_mut(vma).flags &= !vm::VM_LOCKED;
        let mut cur = start;
        while let Some((a, idx)) = self.next_pte_slot(pid, cur, end) {
            cur = a + 4096;
            let p = self.mmx(pid).pt.pte(idx);
            if arch.pte_present(p) {
                if let Some(pfn) = self.vm_normal_page(p) {
                    if !self.mapped_in_locked_vma(pfn) {
                        self.munlock_page(pfn);
                    }
                }
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
}
