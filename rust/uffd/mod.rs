//! userfaultfd (fs/userfaultfd.c, mm/userfaultfd.c): contexts, the fault delivery
//! (`handle_userfault`), waking, and the ioctls in [`ioctl`], non-cooperative events in
//! [`events`].
//!
//! A fault delivered to userspace parks its thread: the thread's state says on which message
//! and since when; waking (COPY, ZEROPAGE, WAKE, CONTINUE, UNREGISTER, close) retries the
//! access at once, as the woken thread would when it runs.
//!
//! Simplifications: a non-cooperative event (REMOVE, UNMAP, FORK) is queued and the call that
//! caused it returns at once; the kernel blocks that call in `userfaultfd_event_wait_completion`
//! until the manager has read the event, with `mmap_changing` raised meanwhile. Calls in the model
//! are atomic, so no UFFDIO_COPY can run while such a call is in flight: the EAGAIN of
//! `mmap_changing` is never observable, and messages are read in the order they were queued (an
//! event the kernel made its producer wait for is read before anything the producer did next).
//! There are no signals, so handle_userfault never returns VM_FAULT_NOPAGE for an interrupted
//! wait.

pub mod events;
pub mod features;
pub mod ioctl;
pub mod msg;
pub mod types;

pub use msg::{
    UFFD_EVENT_FORK, UFFD_EVENT_PAGEFAULT, UFFD_EVENT_REMAP, UFFD_EVENT_REMOVE, UFFD_EVENT_UNMAP,
    UFFD_PAGEFAULT_FLAG_MINOR, UFFD_PAGEFAULT_FLAG_NAMES, UFFD_PAGEFAULT_FLAG_WP, UFFD_PAGEFAULT_FLAG_WRITE, UffdMsg,
    UffdPagefault,
};

use crate::fault::{Access, Fault, Vmf};
use crate::kernel::Kernel;
use crate::mm::vm;
use crate::mm::vmstat::Vm;
use crate::profile::uffd_features as feat;
use crate::sim::log::Ev;
pub use types::*;

/// The `reason` of handle_userfault, as VM_UFFD_* bits.
pub const REASON_MISSING: u64 = vm::VM_UFFD_MISSING;
pub const REASON_WP: u64 = vm::VM_UFFD_WP;
/// VM_UFFD_MINOR (its bit number does not matter for the reason).
pub const REASON_MINOR: u64 = vm::VM_UFFD_MINOR_BIT38;

impl Kernel {
    /// `VM_UFFD_MINOR` on this profile and arch (VM_NONE without HAVE_ARCH_USERFAULTFD_MINOR).
    pub fn vm_uffd_minor(&self) -> u64 {
        if self.profile.uffd_minor && self.profile.arch_has_uffd_minor() { vm::VM_UFFD_MINOR_BIT38 } else { 0 }
    }

    /// `handle_userfault(vmf, reason)`: SIGBUS without a context or with UFFD_FEATURE_SIGBUS;
    /// VM_FAULT_NOPAGE (retry) when the context was released; otherwise queue a PAGEFAULT message and park the thread (VM_FAULT_RETRY).
    pub(crate) fn handle_userfault(&mut self, vmf: Vmf, reason: u64) -> Fault {
        let Some(ctx) = self.vma(vmf.vma).uffd else {
            return Fault::Sigbus;
        };
        let c = &self.uffds[ctx as usize];
        if c.features & feat::SIGBUS != 0 {
            return Fault::Sigbus;
        }
        if c.released {
            // fs/userfaultfd.c handle_userfault (v4.11+, 656710a60e36; the same in v4.13, v4.17,
            // v4.18, v6.12): "if (unlikely(READ_ONCE(ctx->released))) { /* Don't return
            // VM_FAULT_SIGBUS in this case, so a non cooperative manager can close the uffd
            // after the last UFFDIO_COPY ... */ ret = VM_FAULT_NOPAGE; goto out; }": the access
            // is retried. (userfaultfd_release disarms the VMAs first, so the retry finds none.)
            return Fault::Retry;
        }
        let mut flags = 0;
        if vmf.write {
            flags |= UFFD_PAGEFAULT_FLAG_WRITE;
        }
        if reason & REASON_WP != 0 {
            flags |= UFFD_PAGEFAULT_FLAG_WP;
        }
        if reason & REASON_MINOR != 0 {
            flags |= UFFD_PAGEFAULT_FLAG_MINOR;
        }
        let address = if c.features & feat::EXACT_ADDRESS != 0 { vmf.real_addr } else { vmf.addr };
        // task_pid_vnr(current): the main thread's id is the pid, thread n's is pid + n
        let ptid = if c.features & feat::THREAD_ID != 0 { vmf.pid + vmf.tid } else { 0 };
        let msg = UffdPagefault { flags, address, ptid };
        let c = &mut self.uffds[ctx as usize];
        c.seq += 1;
        let seq = c.seq;
        c.waiters.push(Waiter { pid: vmf.pid, tid: vmf.tid, msg, read: false, seq });
        self.vmstat.inc(Vm::model_userfaults);
        self.log(Ev::HandleUserfault, vmf.pid, vmf.tid, vmf.addr, ctx as u64, reason, flags);
        Fault::Userfault { uffd: ctx, msg }
    }

    /// `wake_userfault(ctx, range)`: wake every thread parked on `ctx` whose fault address lies
    /// in `[start, start + len)` (all of them for `len == 0`); each retries its access.
    pub(crate) fn wake_userfault(&mut self, ctx: u32, start: u64, len: u64) -> usize {
        let waiters = std::mem::take(&mut self.uffds[ctx as usize].waiters);
        let (wake, keep): (Vec<Waiter>, Vec<Waiter>) = waiters.into_iter().partition(|w| {
            let a = w.msg.address & !0xfff;
            len == 0 || (a >= start && a < start.saturating_add(len))
        });
        self.uffds[ctx as usize].waiters = keep;
        for w in &wake {
            self.resume_thread(w.pid, w.tid);
        }
        wake.len()
    }

    /// A parked thread runs again: retry its access and record the outcome.
    pub(crate) fn resume_thread(&mut self, pid: u32, tid: u32) {
        let now = self.now;
        let Ok(mm) = self.mm_mut(pid) else { return };
        let Some(th) = mm.threads.get_mut(&tid) else {
            return;
        };
        let Some(b) = th.blocked.take() else { return };
        let waited = now.saturating_sub(b.since);
        th.blocked_ns += waited;
        self.log(Ev::ThreadWoken, pid, tid, b.addr, waited, 0, 0);
        let r = self.do_access(pid, tid, b.addr, b.write, b.value);
        self.finish_access(pid, tid, b.addr, b.write, b.value, r);
    }

    /// Threads parked on userfaults: (pid, tid, blocked state), in pid/tid order.
    pub fn blocked_threads(&self) -> Vec<(u32, u32, Blocked)> {
        let mut out = Vec::new();
        for m in self.mms.iter().flatten().filter(|m| m.alive) {
            for (tid, th) in &m.threads {
                if let Some(b) = th.blocked {
                    out.push((m.pid, *tid, b));
                }
            }
        }
        out
    }

    /// The outcome of the last access of a thread.
    pub fn last_access(&self, pid: u32, tid: u32) -> Option<Access> {
        self.mmx(pid).threads.get(&tid).and_then(|t| t.last)
    }

    /// mm/memory.c `do_wp_page` → `userfaultfd_pte_wp(vma, pte)` (v5.7+, 6.12): a write to a uffd-wp PTE in a VM_UFFD_WP VMA goes to
    /// userspace (`do_wp_page`). Never on s390: it has no uffd-wp PTE bit.
    pub(crate) fn uffd_wp_fault(&mut self, vmf: Vmf, orig: u64) -> Option<Fault> {
        if self.vma(vmf.vma).flags & vm::VM_UFFD_WP != 0 && self.arch().pte_uffd_wp(orig) {
            return Some(self.handle_userfault(vmf, REASON_WP));
        }
        None
    }

    /// try_to_unmap_one: `if (pte_uffd_wp(pteval)) swp_pte = pte_swp_mkuffd_wp(swp_pte)`.
    pub(crate) fn swp_carry_uffd_wp(&self, pteval: u64, swp: u64) -> u64 {
        let arch = self.arch();
        if arch.pte_uffd_wp(pteval) { arch.pte_swp_set_uffd_wp(swp, true) } else { swp }
    }

    /// do_swap_page: `if (pte_swp_uffd_wp(vmf->orig_pte)) pte = pte_mkuffd_wp(pte)` (which also
    /// write-protects, so a write takes the WP userfault).
    pub(crate) fn pte_carry_uffd_wp(&self, orig: u64, pte: u64) -> u64 {
        let arch = self.arch();
        if arch.pte_swp_uffd_wp(orig) { arch.pte_mkuffd_wp(pte) } else { pte }
    }
}
