//! Accesses and page faults (mm/memory.c, mm/shmem.c): what the CPU does with a load or store,
//! and `handle_mm_fault` when it faults.
//!
//! An access walks the page tables the way the CPU does ([`crate::arch::Arch::hw_access_ok`]);
//! if the PTE does not allow it, the fault handler runs and the access is retried. On s390 that
//! includes the young/dirty emulation faults: an access through an old (invalid) or clean
//! (protected) PTE of a present page faults, and `handle_pte_fault` makes it young / dirty.
//!
//! The userfault decisions are where the kernel takes them: `userfaultfd_missing` in
//! `do_anonymous_page` (after the page is allocated, under the PTE lock) and in
//! `shmem_get_folio_gfp` when the page is in neither page cache nor swap; `do_swap_page` never
//! raises one.

mod anon;
pub mod batch;
mod shmem;
mod swapin;
pub mod types;
mod wp;

use crate::error::{Error, Result};
use crate::kernel::{Kernel, PteAlloc};
use crate::mm::page::{ZERO_PFN, pg};
use crate::mm::vm;
use crate::mm::vmstat::Vm;
use crate::profile::ForbidsZeropage;
use crate::sim::log::{Ev, fault_path};
use crate::uffd::msg::UffdPagefault;
pub use types::Access;

/// What a fault handler returns (`vm_fault_t`, reduced to what the model distinguishes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Handled; retry the access.
    Retry,
    /// VM_FAULT_RETRY from handle_userfault: the thread is parked.
    Userfault {
        uffd: u32,
        msg: UffdPagefault,
    },
    Sigbus,
    Oom,
}

/// The access being faulted for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Vmf {
    pub pid: u32,
    pub tid: u32,
    pub vma: u32,
    /// The faulting address (page-aligned: `vmf->address`).
    pub addr: u64,
    /// The exact address (`vmf->real_address`).
    pub real_addr: u64,
    pub write: bool,
    /// Index of the PTE slot.
    pub idx: usize,
    /// `vmf->orig_pte`: the PTE the fault started on (a uffd-wp marker makes the installed PTE
    /// uffd-wp, [`Kernel::vmf_orig_pte_uffd_wp`]).
    pub orig_pte: u64,
}

impl Kernel {
    /// A load (`write == false`) or store of `value` by thread `tid` (0..=65535: the event
    /// log's thread field is 16 bits) of `pid` at `addr`. The thread must not be parked on a
    /// userfault.
    pub fn access(&mut self, pid: u32, tid: u32, addr: u64, write: bool, value: u64) -> Result<Access> {
        self.access_in_slot(pid, tid, addr, write, value, None)
    }

    /// [`Kernel::access`] with the PTE slot of `addr` if the caller knows it
    /// (a look ahead found it, no table allocated, freed or linked since): the
    /// first round of [`Kernel::do_access`] reads that slot instead of walking to it again.
    pub(crate) fn access_in_slot(
        &mut self,
        pid: u32,
        tid: u32,
        addr: u64,
        write: bool,
        value: u64,
        slot: Option<usize>,
    ) -> Result<Access> {
        if tid > u16::MAX as u32 {
            return Err(Error::invalid(format!("thread id {tid} is beyond the model's 0..=65535")));
        }
        let mm = self.mm(pid)?;
        // the thread of the mm's last completed access is known not to be parked
        // (`Mm::thread_hint`): the lookup is for any other
        debug_assert!(
            mm.thread_hint.get() != tid + 1 || mm.threads.get(&tid).is_some_and(|th| th.blocked.is_none()),
            "thread hint of {tid}"
        );
        let parked = if mm.thread_hint.get() == tid + 1 {
            None
        } else {
            mm.threads.get(&tid).and_then(|th| th.blocked.as_ref())
        };
        if let Some(b) = parked {
            return Err(Error::ThreadBlocked(format!(
                "thread {tid} of process {pid} is blocked on a userfault at {:#x} since t={}ns; wake it (UFFDIO_COPY, ZEROPAGE, WAKE, CONTINUE or UNREGISTER) first",
                b.addr, b.since
            )));
        }
        let r = self.do_access_in_slot(pid, tid, addr, write, value, slot);
        self.finish_access(pid, tid, addr, write, value, r);
        if self.swap_cache_slab.is_some() {
            self.swap_cache_slab_sync();
        }
        self.settle();
        Ok(r)
    }

    /// Record the outcome of an access in the thread: park it or remember the result.
    #[inline]
    pub(crate) fn finish_access(&mut self, pid: u32, tid: u32, addr: u64, write: bool, value: u64, r: Access) {
        let now = self.now;
        let mm = self.mmx_mut(pid);
        // a thread that completed the mm's last access has its record: one search to find it,
        // none to make it
        if mm.thread_hint.get() != tid + 1 {
            mm.threads.entry(tid).or_default();
        }
        let Some(th) = mm.threads.get_mut(&tid) else { return };
        match r {
            Access::Blocked { uffd, msg } => {
                th.blocked = Some(crate::uffd::types::Blocked { uffd, msg, addr, write, value, since: now });
                th.last = None;
                mm.thread_hint.set(0);
            }
            other => {
                th.last = Some(other);
                mm.thread_hint.set(tid + 1);
            }
        }
    }

    /// The access itself: walk, fault, retry (at most a few rounds: every fault makes progress
    /// or parks the thread).
    pub(crate) fn do_access(&mut self, pid: u32, tid: u32, addr: u64, write: bool, value: u64) -> Access {
        self.do_access_in_slot(pid, tid, addr, write, value, None)
    }

    /// [`Kernel::do_access`], its first walk replaced by `slot` if the caller knows the slot
    /// ([`Kernel::access_in_slot`]); a round after a fault walks again.
    #[inline]
    fn do_access_in_slot(
        &mut self,
        pid: u32,
        tid: u32,
        addr: u64,
        write: bool,
        value: u64,
        mut slot: Option<usize>,
    ) -> Access {
        let arch = self.arch();
        for _ in 0..8 {
            let Some(vma) = self.vma_lookup(pid, addr) else {
                self.log(Ev::Sigsegv, pid, tid, addr, write as u64, 0, 0);
                return Access::Segv { accerr: false };
            };
            // access_error (x86) / do_exception (s390): a store needs VM_WRITE, a load any of
            // VM_READ|VM_WRITE|VM_EXEC (`vma_is_accessible`); PROT_NONE allows nothing
            let flags = self.vma(vma).flags;
            let accessible = flags & (vm::VM_READ | vm::VM_WRITE | vm::VM_EXEC) != 0;
            if (write && flags & vm::VM_WRITE == 0) || (!write && !accessible) {
                self.log(Ev::Sigsegv, pid, tid, addr, write as u64, 1, 0);
                return Access::Segv { accerr: true };
            }
            let mm = self.mmx(pid);
            debug_assert!(slot.is_none() || slot == mm.pt.pte_index(addr), "slot of {addr:#x}");
            let found = match slot.take() {
                Some(i) => Some(i),
                None => mm.pt.pte_index(addr),
            };
            if let Some(idx) = found {
                let pte = mm.pt.pte(idx);
                if arch.hw_access_ok(pte, write) {
                    let pfn = arch.pte_pfn(pte);
                    // the hardware writes A (and D) when it walks: always without a TLB model,
                    // only on a TLB miss with one (mm/tlb_flush.rs)
                    if self.tlb.is_none() || self.tlb_access_walks(pid, addr, idx, pte, write) {
                        if let Some(n) = arch.hw_access_update(pte, write) {
                            self.mmx_mut(pid).pt.set_pte(idx, n);
                        }
                    }
                    self.tick(self.cost.access);
                    // the storage key's reference and change bits are set by the hardware
                    debug_assert!(!write || pfn != ZERO_PFN, "store through a zero-page PTE");
                    return Access::Done { value: self.mem.access_content(pfn, write, value) };
                }
            }
            match self.handle_mm_fault(pid, tid, vma, addr, write) {
                Fault::Retry => continue,
                Fault::Userfault { uffd, msg } => return Access::Blocked { uffd, msg },
                Fault::Sigbus => {
                    self.log(Ev::Sigbus, pid, tid, addr, write as u64, 0, 0);
                    return Access::Bus;
                }
                Fault::Oom => {
                    self.log(Ev::FaultOom, pid, tid, addr, write as u64, 0, 0);
                    return Access::Oom;
                }
            }
        }
        unreachable_access(pid, addr)
    }

    /// The PTE an access starts from ([`Kernel::pte_before`]) read from the slot `i` that a
    /// look ahead found for the same address when the tables were at generation `generation`: the
    /// same PTE a walk reads if no table was allocated, freed or linked since; None otherwise.
    #[inline]
    pub(crate) fn pte_in_slot(&self, pid: u32, i: usize, generation: u64) -> Option<u64> {
        let pt = &self.mmx(pid).pt;
        if pt.tree_gen() == generation { pt.peek_pte(i) } else { None }
    }

    /// The second step of the look ahead, closer to the access: read the PTE (which the first
    /// step brought in: [`PageTables::prefetch_slot`](crate::arch::pgtable::PageTables::prefetch_slot))
    /// and, if it maps a page, start loading the page's frame, which the access reads and
    /// writes (its storage key, its content); if it holds a swap entry, the swap slot
    /// `do_swap_page` reads.
    #[inline]
    pub(crate) fn prefetch_page(&self, pid: u32, addr: u64) {
        if let Some(i) = self.mmx(pid).pt.peek_index(addr) {
            self.prefetch_page_at(pid, i);
        }
    }

    /// [`Kernel::prefetch_page`] from the PTE slot `i` an earlier look ahead
    /// found (the walk is not repeated; a slot the tables reused meanwhile only makes the
    /// look ahead load lines the access does not use).
    #[inline]
    pub(crate) fn prefetch_page_at(&self, pid: u32, i: usize) {
        let pt = &self.mmx(pid).pt;
        if let Some(pte) = pt.peek_pte(i) {
            let arch = self.arch();
            if arch.pte_present(pte) {
                if let Some(f) = self.mem.frames.get(arch.pte_pfn(pte) as usize) {
                    crate::sim::prefetch::value(f);
                }
            } else if arch.is_swap_pte(pte) {
                // a major fault or a swap-cache hit: do_swap_page reads the slot
                self.swap.prefetch_slot(self.swp_format().swp_offset(pte) as u32);
            }
        }
    }

    /// `handle_mm_fault` → `handle_pte_fault`, between `lru_gen_enter_fault` (v6.12 with
    /// MGLRU: `current->in_lru_fault = vma_has_recency(vma)`) and `lru_gen_exit_fault`.
    pub(crate) fn handle_mm_fault(&mut self, pid: u32, tid: u32, vma: u32, addr: u64, write: bool) -> Fault {
        self.in_lru_fault = self.lru_gen_enabled() && self.vma_has_recency(vma);
        let r = self.handle_pte_fault(pid, tid, vma, addr, write);
        self.in_lru_fault = false;
        r
    }

    /// The body of `handle_mm_fault`: `handle_pte_fault`.
    fn handle_pte_fault(&mut self, pid: u32, tid: u32, vma: u32, addr: u64, write: bool) -> Fault {
        self.vmstat.inc(Vm::pgfault);
        let arch = self.arch();
        let page_addr = addr & !0xfff;
        let idx = match self.pte_alloc(pid, page_addr) {
            Ok(idx) => idx,
            Err(PteAlloc::NoMemory) => return Fault::Oom,
            Err(PteAlloc::OutOfReach) => return Fault::Sigbus,
        };
        let pte = self.mmx(pid).pt.pte(idx);
        let vmf =
            Vmf { pid, tid, vma, addr: page_addr, real_addr: arch.fault_address(addr), write, idx, orig_pte: pte };
        if arch.pte_none(pte) {
            return if self.vma(vma).is_anonymous() { self.do_anonymous_page(vmf) } else { self.do_fault(vmf) };
        }
        if !arch.pte_present(pte) {
            return self.do_swap_page(vmf, pte);
        }
        // present: write-protect / COW, or the young/dirty emulation
        let mut entry = pte;
        let mut path = fault_path::YOUNG;
        if write {
            if !arch.pte_write(entry) {
                return self.do_wp_page(vmf, pte);
            }
            entry = arch.pte_mkdirty(entry);
            path = fault_path::DIRTY;
        }
        entry = arch.pte_mkyoung(entry);
        self.ptep_set_access_flags(pid, idx, entry);
        self.tick(self.cost.minor_fault / 4);
        self.log(Ev::Fault, pid, tid, page_addr, arch.pte_pfn(entry) as u64, path, write as u64);
        Fault::Retry
    }

    /// `mm_forbids_zeropage(mm)` per profile (s390); never on other arches.
    pub(crate) fn mm_forbids_zeropage(&self, pid: u32) -> bool {
        if self.arch() != crate::arch::Arch::S390x {
            return false;
        }
        let mm = self.mmx(pid);
        match self.profile.forbids_zeropage {
            ForbidsZeropage::UsesSkeys => mm.uses_skeys,
            ForbidsZeropage::HasPgste => mm.has_pgste,
            ForbidsZeropage::NoCowSharing => !mm.allow_cow_sharing,
        }
    }

    /// A fresh page for a fault: from the allocator (which may reclaim), content zero.
    pub(crate) fn alloc_user_page(&mut self) -> Option<u32> {
        self.alloc_page(crate::mm::page_alloc::Gfp::User)
    }

    /// The content of the page a present PTE maps (0 for the zero page).
    pub(crate) fn page_content(&self, pfn: u32) -> u64 {
        if pfn == ZERO_PFN { 0 } else { self.mem.content(pfn) }
    }

    /// Count a major fault.
    pub(crate) fn count_majfault(&mut self) {
        self.vmstat.inc(Vm::pgmajfault);
    }

    /// Whether the page is a normal page (`vm_normal_page`): not the zero page, not special.
    pub(crate) fn vm_normal_page(&self, pte: u64) -> Option<u32> {
        let arch = self.arch();
        let pfn = arch.pte_pfn(pte);
        if arch.pte_special(pte) || pfn == ZERO_PFN { None } else { Some(pfn) }
    }

    /// Read-only check used by tests and invariants: is `pfn` dirty or mapped dirty?
    pub fn page_dirty(&self, pfn: u32) -> bool {
        self.mem.frames[pfn as usize].test(pg::PG_DIRTY)
    }
}

/// Every fault either installs what the access needs, parks the thread or fails; eight rounds
/// without progress are a model bug: loud in debug builds, SIGBUS (never a hang) in release.
#[cold]
fn unreachable_access(pid: u32, addr: u64) -> Access {
    if cfg!(debug_assertions) {
        panic!("no progress faulting {addr:#x} in process {pid}");
    }
    Access::Bus
}
