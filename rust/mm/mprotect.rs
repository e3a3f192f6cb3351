//! mprotect (mm/mprotect.c): `do_mprotect_pkey` → `mprotect_fixup` → `change_protection`.
//!
//! A VMA's VM_READ/VM_WRITE/VM_EXEC decide which accesses fault with SIGSEGV (`SEGV_ACCERR`);
//! its `vm_page_prot` decides the protection new PTEs get, and `change_protection` rewrites the
//! PTEs already there with `pte_modify`.
//!
//! Simplifications: no VM_ACCOUNT (commit charge) changes, no pkeys, no PROT_GROWSDOWN/UP; a
//! VM_LOCKED VMA that becomes writable is not populated again (`populate_vma_page_range` to
//! break COW ahead of time); soft-dirty tracking never asks for write faults (the kernel's
//! mmap sets VM_SOFTDIRTY, which turns it off for the VMA).

use crate::error::{Errno, Error, Result};
use crate::kernel::Kernel;
use crate::mm::mmap::{PAGE, calc_vm_prot_bits, page_align};
use crate::mm::page::pg;
use crate::mm::vm::*;
use crate::sim::log::Ev;

impl Kernel {
    /// `mprotect(addr, len, prot)`: `do_mprotect_pkey` of mm/mprotect.c, the same checks in
    /// 4.13..6.12 (6.12 walks with `for_each_vma_range`). `addr` must be page-aligned (EINVAL),
    /// `prot` only PROT_READ|PROT_WRITE|PROT_EXEC (EINVAL); a zero length does nothing. Every
    /// page of `[addr, addr + len)` must be mapped: a hole is ENOMEM, and, as in the kernel, the
    /// VMAs before the hole keep their new protection. A protection the VMA may not have
    /// (`VM_MAY*` missing) is EACCES.
    pub fn mprotect(&mut self, pid: u32, addr: u64, len: u64, prot: u64) -> Result<()> {
        const CALL: &str = "mprotect";
        self.mm(pid)?;
        if addr % PAGE != 0 {
            return Err(Error::errno(Errno::EINVAL, CALL, format!("address {addr:#x} is not page-aligned")));
        }
        if len == 0 {
            return Ok(());
        }
        let end = page_align(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or_else(|| Error::errno(Errno::ENOMEM, CALL, format!("range at {addr:#x} + {len:#x} wraps around")))?;
        let bits = calc_vm_prot_bits(CALL, prot)?;
        let hole = |at: u64| {
            Error::errno(Errno::ENOMEM, CALL, format!("{at:#x} in [{addr:#x}, {end:#x}) is not mapped (no VMA)"))
        };
        let mut nstart = addr;
        while nstart < end {
            // VMAs split and merge as we go: look the next one up by address
            let Some(id) = self.vma_lookup(pid, nstart) else {
                self.log(Ev::Mprotect, pid, 0, addr, nstart - addr, prot, Errno::ENOMEM as u64);
                return Err(hole(nstart));
            };
            let (vstart, vend, oldflags) = {
                let v = self.vma(id);
                (v.start, v.end, v.flags)
            };
            let newflags = bits | (oldflags & !(VM_READ | VM_WRITE | VM_EXEC));
            // "newflags >> 4 shift VM_MAY% in place of VM_%"
            if (newflags & !(newflags >> 4)) & (VM_READ | VM_WRITE | VM_EXEC) != 0 {
                self.log(Ev::Mprotect, pid, 0, addr, nstart - addr, prot, Errno::EACCES as u64);
                return Err(Error::errno(
                    Errno::EACCES,
                    CALL,
                    format!(
                        "the VMA at {vstart:#x} may not get prot {prot:#x} (VM_MAY* bits {:#x})",
                        oldflags >> 4 & 7
                    ),
                ));
            }
            let tmp = vend.min(end);
            self.mprotect_fixup(id, nstart, tmp, newflags);
            nstart = tmp;
        }
        self.log(Ev::Mprotect, pid, 0, addr, end - addr, prot, 0);
        Ok(())
    }

    /// `mprotect_fixup(vma, start, end, newflags)` (mm/mprotect.c, 4.13..6.12; `if (newflags
    /// == oldflags)` returns at once): split the VMA at `start` and `end`
    /// (`vma_modify_flags`), set the flags and `vma_set_page_prot` ([`Kernel::vma_page_prot`]),
    /// rewrite the PTEs (`change_protection`) and merge with compatible neighbours.
    fn mprotect_fixup(&mut self, id: u32, start: u64, end: u64, newflags: u64) {
        if self.vma(id).flags == newflags {
            return;
        }
        let mut id = id;
        if self.vma(id).start < start {
            id = self.split_vma(id, start);
        }
        if self.vma(id).end > end {
            self.split_vma(id, end);
        }
        let prot = self.vma_page_prot(newflags);
        {
            let v = self.vma_mut(id);
            v.flags = newflags;
            v.page_prot = prot;
        }
        // vma_wants_manual_pte_write_upgrade: private writable VMAs (shmem has no writenotify)
        let try_writable = newflags & VM_WRITE != 0 && self.profile.mprotect_write_upgrade;
        self.change_protection(id, start, end, try_writable);
        self.vma_merge_around(id);
    }

    /// `change_protection` → `change_pte_range` over `[start, end)` of `vma`: each present PTE
    /// becomes `pte_modify(pte, vma->vm_page_prot)` (s390: `_PAGE_PROTECT`/`_PAGE_INVALID` from
    /// the new protection; x86: `_PAGE_RW`, and PROT_NONE clears `_PAGE_PRESENT`), keeping a
    /// uffd-wp PTE write-protected. Swap PTEs are left alone (the protection is applied when
    /// `do_swap_page` maps the page).
    ///
    /// mm/mprotect.c 4.13..6.12 (`ptent = ptep_modify_prot_start(…); ptent = pte_modify(ptent,
    /// newprot); … ptep_modify_prot_commit(…)`); the s390 start/commit pair is `ptep_xchg` here,
    /// which differs only in when `pgste_update_all` runs (storage keys; no model path
    /// mprotects guest memory).
    ///
    /// Profiles: with MM_CP_TRY_CHANGE_WRITABLE (v6.0+, 64fe24a3e05e), a PTE of a writable VMA
    /// that is still read-only is made writable when `can_change_pte_writable` says so (an
    /// exclusive anon page in a private VMA, a dirty PTE in a shared one); before, private
    /// pages stay read-only and the next write goes through `do_wp_page`.
    fn change_protection(&mut self, vma: u32, start: u64, end: u64, try_writable: bool) {
        let arch = self.arch();
        let (pid, flags, prot) = {
            let v = self.vma(vma);
            (v.mm, v.flags, v.page_prot)
        };
        let mut cur = start;
        while let Some((a, idx)) = self.next_pte_slot(pid, cur, end) {
            cur = a + PAGE;
            let old = self.mmx(pid).pt.pte(idx);
            if arch.pte_none(old) || !arch.pte_present(old) {
                continue;
            }
            let mut new = arch.pte_modify(old, prot);
            if arch.pte_uffd_wp(old) {
                new = arch.pte_wrprotect(new);
            } else if try_writable && !arch.pte_write(new) && self.can_change_pte_writable(flags, new) {
                new = arch.pte_mkwrite(new);
            }
            if new != old {
                self.ptep_xchg(pid, idx, new);
            }
        }
    }

    /// `can_change_pte_writable` (mm/mprotect.c, v6.0+; 6.12) for a writable VMA: in a private
    /// VMA an exclusive anon page (`page && PageAnon(page) && PageAnonExclusive(page)`), in a
    /// shared one a dirty PTE (uffd-wp PTEs are excluded by the caller). Not modelled: the
    /// `pte_protnone` check (no NUMA hinting PTEs) and `pte_needs_soft_dirty_wp` (VM_SOFTDIRTY).
    fn can_change_pte_writable(&self, flags: u64, pte: u64) -> bool {
        let arch = self.arch();
        if flags & VM_SHARED == 0 {
            return match self.vm_normal_page(pte) {
                Some(pfn) => {
                    let f = &self.mem.frames[pfn as usize];
                    f.anon() && f.test(pg::PG_ANON_EXCLUSIVE)
                }
                None => false,
            };
        }
        arch.pte_dirty(pte)
    }
}
