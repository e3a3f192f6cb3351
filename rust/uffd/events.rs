//! Non-cooperative userfaultfd events (fs/userfaultfd.c): FORK (`dup_userfaultfd`), REMOVE
//! (`userfaultfd_remove` for MADV_DONTNEED/FREE/REMOVE), UNMAP (`userfaultfd_unmap_prep`),
//! REMAP (`mremap_userfaultfd_prep` / `_complete`), and the teardown of contexts when their process exits.

use super::{UffdCtx, UffdMsg};
use crate::kernel::Kernel;
use crate::mm::vm;
use crate::profile::uffd_features as feat;
use crate::sim::log::Ev;

/// The `__VM_UFFD_FLAGS` of every profile (MINOR's bit included; it is 0 where absent).
pub(crate) const VM_UFFD_ALL: u64 = vm::VM_UFFD_MISSING | vm::VM_UFFD_WP | vm::VM_UFFD_MINOR_BIT38;

impl Kernel {
    fn queue_event(&mut self, ctx: u32, msg: UffdMsg) {
        let c = &mut self.uffds[ctx as usize];
        c.seq += 1;
        c.events.push_back((c.seq, msg));
        let mm = c.mm;
        let (addr, end) = msg.trace_range();
        self.log(Ev::UffdEvent, mm, 0, addr, ctx as u64, msg.event() as u64, end);
    }

    /// `userfaultfd_remove`: MADV_DONTNEED / MADV_FREE / MADV_REMOVE on a registered VMA tells
    /// a manager that asked for UFFD_FEATURE_EVENT_REMOVE.
    pub(crate) fn userfaultfd_remove(&mut self, vma: u32, start: u64, end: u64) {
        let Some(ctx) = self.vma(vma).uffd else {
            return;
        };
        if self.uffds[ctx as usize].features & feat::EVENT_REMOVE == 0 {
            return;
        }
        self.queue_event(ctx, UffdMsg::Remove { start, end });
    }

    /// `userfaultfd_unmap_prep` + `userfaultfd_unmap_complete` (fs/userfaultfd.c, the same in
    /// 4.13..6.12): one UNMAP event of the munmap range per context (with
    /// UFFD_FEATURE_EVENT_UNMAP) that owns a VMA in it, in VMA order. The kernel skips a context
    /// already on the list (`has_unmap_ctx` searches the whole list), so a context whose VMAs
    /// are not adjacent in the range still gets one event.
    pub(crate) fn userfaultfd_unmap_prep(&mut self, vmas: &[u32], start: u64, end: u64) {
        let mut ctxs: Vec<u32> = Vec::new();
        for ctx in vmas.iter().filter_map(|&v| self.vma(v).uffd) {
            if self.uffds[ctx as usize].features & feat::EVENT_UNMAP != 0 && !ctxs.contains(&ctx) {
                ctxs.push(ctx);
            }
        }
        for ctx in ctxs {
            self.queue_event(ctx, UffdMsg::Unmap { start, end });
        }
    }

    /// `mremap_userfaultfd_prep` for a VMA that mremap moved: with UFFD_FEATURE_EVENT_REMAP the
    /// context stays and is returned (the REMAP event is queued by
    /// [`Kernel::mremap_userfaultfd_complete`]).
    ///
    /// Without the feature, from v5.0 (P. Xu, "userfaultfd: clear flag if remap event not
    /// enabled") the new VMA loses its registration ("Drop uffd context if remap feature not
    /// enabled": ctx and `__VM_UFFD_FLAGS` cleared); before, it silently stayed registered with
    /// a manager that never learns its new address.
    pub(crate) fn mremap_userfaultfd_prep(&mut self, vma: u32) -> Option<u32> {
        let ctx = self.vma(vma).uffd?;
        if self.uffds[ctx as usize].features & feat::EVENT_REMAP != 0 {
            return Some(ctx);
        }
        if !self.profile.uffd_remap_clears_unfeatured {
            return None;
        }
        let v = self.vma_mut(vma);
        v.uffd = None;
        v.flags &= !VM_UFFD_ALL;
        self.vma_set_page_prot(vma);
        None
    }

    /// `mremap_userfaultfd_complete`: UFFD_EVENT_REMAP `{from, to, len}` once the move is done.
    pub(crate) fn mremap_userfaultfd_complete(&mut self, ctx: u32, from: u64, to: u64, len: u64) {
        self.queue_event(ctx, UffdMsg::Remap { from, to, len });
    }

    /// `dup_userfaultfd` for the child VMA `child` of a registered parent VMA: with
    /// UFFD_FEATURE_EVENT_FORK the child gets a context of its own (one per parent context per
    /// fork, in `forks`); without it the child VMA loses its registration.
    pub(crate) fn dup_userfaultfd(&mut self, child: u32, child_pid: u32, forks: &mut Vec<(u32, u32)>) {
        let Some(octx) = self.vma(child).uffd else {
            return;
        };
        if self.uffds[octx as usize].features & feat::EVENT_FORK == 0 {
            let v = self.vma_mut(child);
            v.uffd = None;
            v.flags &= !VM_UFFD_ALL;
            self.vma_set_page_prot(child);
            return;
        }
        let nctx = match forks.iter().find(|(o, _)| *o == octx) {
            Some(&(_, n)) => n,
            None => {
                let features = self.uffds[octx as usize].features;
                self.uffds.push(UffdCtx {
                    mm: child_pid,
                    features,
                    api_done: true,
                    released: false,
                    waiters: Vec::new(),
                    events: Default::default(),
                    seq: 0,
                });
                let n = (self.uffds.len() - 1) as u32;
                forks.push((octx, n));
                n
            }
        };
        self.vma_mut(child).uffd = Some(nctx);
    }

    /// `dup_userfaultfd_complete`: the FORK events, once the child exists.
    pub(crate) fn dup_userfaultfd_complete(&mut self, forks: &[(u32, u32)]) {
        for &(octx, nctx) in forks {
            self.queue_event(octx, UffdMsg::Fork { ufd: nctx });
        }
    }

    /// The process exits: its contexts are released and anyone parked on them is woken.
    pub(crate) fn uffd_release_mm(&mut self, pid: u32) {
        for ctx in 0..self.uffds.len() as u32 {
            if self.uffds[ctx as usize].mm == pid && !self.uffds[ctx as usize].released {
                self.uffds[ctx as usize].released = true;
                self.uffds[ctx as usize].waiters.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::mm::mmap::MapKind;
    use crate::profile::uffd_features as feat;
    use crate::testutil::kernel;
    use crate::uffd::UffdMsg;
    use crate::uffd::ioctl::{UFFD_API, UFFDIO_REGISTER_MODE_MISSING};

    /// fs/userfaultfd.c `userfaultfd_unmap_prep` (4.13..6.12): `if (!ctx || !(ctx->features &
    /// UFFD_FEATURE_EVENT_UNMAP) || has_unmap_ctx(ctx, unmaps, start, end)) continue;` — one
    /// UNMAP per context over the whole munmap, even when another context's VMA lies between two
    /// of its VMAs.
    #[test]
    fn munmap_over_interleaved_registrations_sends_one_unmap_per_context() {
        for profile in ["4.13", "4.18", "6.12"] {
            let mut k = kernel(profile);
            let pid = k.spawn("t", false).unwrap();
            let a = k.mmap(pid, 3 * 4096, MapKind::Anon, false, None).unwrap();
            let (u1, u2) = (k.userfaultfd(pid).unwrap(), k.userfaultfd(pid).unwrap());
            k.uffdio_api(u1, UFFD_API, feat::EVENT_UNMAP).unwrap();
            k.uffdio_api(u2, UFFD_API, feat::EVENT_UNMAP).unwrap();
            k.uffdio_register(u1, a, 4096, UFFDIO_REGISTER_MODE_MISSING).unwrap();
            k.uffdio_register(u2, a + 4096, 4096, UFFDIO_REGISTER_MODE_MISSING).unwrap();
            k.uffdio_register(u1, a + 8192, 4096, UFFDIO_REGISTER_MODE_MISSING).unwrap();
            k.munmap(pid, a, 3 * 4096).unwrap();
            let unmap = UffdMsg::Unmap { start: a, end: a + 3 * 4096 };
            assert_eq!(k.uffd_read(u1).unwrap(), vec![unmap], "{profile}");
            assert_eq!(k.uffd_read(u2).unwrap(), vec![unmap], "{profile}");
        }
    }
}
