//! The page allocator (mm/page_alloc.c): `alloc_pages` of one page against the zone
//! watermarks, waking kswapd and entering direct reclaim below them.

use crate::kernel::Kernel;
use crate::mm::vmstat::Vm;

/// Who asks for a page, and what the allocator may do to get one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gfp {
    /// A user page (GFP_HIGHUSER_MOVABLE): may wake kswapd and enter direct reclaim.
    User,
    /// No reclaim at all (GFP_NOWAIT): fails below the min watermark.
    NoWait,
}

impl Kernel {
    /// `alloc_pages(gfp, 0)` (mm/page_alloc.c 4.13..4.18, 6.12: `get_page_from_freelist`,
    /// `__alloc_pages_slowpath`): the fast path takes a page above the low watermark; below it
    /// kswapd is woken and the page is taken if above min; below min, direct reclaim
    /// (`__alloc_pages_direct_reclaim` → `try_to_free_pages`) runs and the allocation is
    /// retried while reclaim makes progress (at most MAX_RECLAIM_RETRIES = 16 rounds). `None`
    /// means out of memory; the caller decides (a fault returns VM_FAULT_OOM).
    pub fn alloc_page(&mut self, gfp: Gfp) -> Option<u32> {
        let w = self.mem.wmark;
        let free = self.mem.nr_free();
        if free > w.low {
            return self.take_page();
        }
        self.wakeup_kswapd();
        if free > w.min {
            return self.take_page();
        }
        if gfp == Gfp::NoWait {
            return None;
        }
        for _ in 0..16 {
            let got = self.try_to_free_pages(32);
            if self.mem.nr_free() > w.min {
                return self.take_page();
            }
            if got == 0 {
                break;
            }
        }
        // out_of_memory: the model kills nothing; the allocation fails
        self.vmstat.inc(Vm::oom_kill);
        None
    }

    fn take_page(&mut self) -> Option<u32> {
        let p = self.mem.take()?;
        self.vmstat.inc(Vm::pgalloc_normal);
        Some(p)
    }
}
