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
    /// A kernel page that may reclaim (GFP_KERNEL, e.g. `GFP_PGTABLE_USER` of a page table):
    /// as [`Gfp::User`], but unmovable (from the DMA zone, a MIGRATE_UNMOVABLE `rmqueue`).
    Kernel,
}

impl Gfp {
    /// The migratetype of the allocation (`gfp_migratetype`).
    fn migratetype(self) -> crate::mm::mmzone::MigrateType {
        match self {
            Gfp::User => crate::mm::mmzone::MigrateType::Movable,
            Gfp::NoWait | Gfp::Kernel => crate::mm::mmzone::MigrateType::Unmovable,
        }
    }
}

impl Kernel {
    /// A page the kernel keeps for itself (a page table's, a slab's): a GFP_KERNEL allocation
    /// ([`Gfp::Kernel`]: unmovable, may reclaim) held PG_reserved, on no LRU, until
    /// [`Kernel::free_kernel_page`]. None when the allocator found no page.
    pub(crate) fn alloc_kernel_page(&mut self) -> Option<u32> {
        let pfn = self.alloc_page(Gfp::Kernel)?;
        self.mem.frames[pfn as usize].flags = crate::mm::page::pg::PG_RESERVED;
        Some(pfn)
    }

    /// `free_frozen_pages` of a page from [`Kernel::alloc_kernel_page`].
    pub(crate) fn free_kernel_page(&mut self, pfn: u32) {
        self.mem.put_frame(pfn, crate::mm::page::Frame::allocated(0));
        self.mem.set_refcount(pfn, 0);
        self.free_frame(pfn);
    }

    /// `alloc_pages(gfp, 0)` (mm/page_alloc.c 4.13..4.18, 6.12: `get_page_from_freelist`,
    /// `__alloc_pages_slowpath`): the fast path takes a page above the low watermark; below it
    /// kswapd is woken and the page is taken if above min; below min, direct reclaim
    /// (`__alloc_pages_direct_reclaim` → `try_to_free_pages`) runs and the allocation is
    /// retried while reclaim makes progress (at most MAX_RECLAIM_RETRIES = 16 rounds). `None`
    /// means out of memory; the caller decides (a fault returns VM_FAULT_OOM).
    pub fn alloc_page(&mut self, gfp: Gfp) -> Option<u32> {
        if self.zones.is_some() {
            return self.alloc_page_zoned(gfp);
        }
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

    /// `alloc_pages` over the zonelist DMA32, DMA (mm/page_alloc.c 6.12.117,
    /// crate::mm::mmzone): `get_page_from_freelist` takes the first zone whose free pages are
    /// above the watermark (`wmark_pages` with the zone's `watermark_boost`, and for DMA its
    /// `lowmem_reserve[ZONE_MOVABLE]`; `zone_watermark_fast`): ALLOC_WMARK_LOW first; then
    /// `__alloc_pages_slowpath` wakes kswapd for every zone (`wake_all_kswapds`) and retries
    /// at ALLOC_WMARK_MIN, then direct reclaim (`__alloc_pages_direct_reclaim`) up to
    /// MAX_RECLAIM_RETRIES rounds. A DMA page is an `rmqueue` of the allocation's migratetype
    /// (a user page's MIGRATE_MOVABLE; it may steal, boost the zone and wake kswapd for it).
    fn alloc_page_zoned(&mut self, gfp: Gfp) -> Option<u32> {
        if gfp != Gfp::NoWait {
            // might_alloc → might_sleep_if(gfpflags_allow_blocking(gfp)): a rescheduling point
            self.boost_wake_resched();
        }
        let mt = gfp.migratetype();
        if let Some(p) = self.get_page_from_freelist(false, mt) {
            return Some(p);
        }
        self.wakeup_kswapd();
        if let Some(p) = self.get_page_from_freelist(true, mt) {
            return Some(p);
        }
        if gfp == Gfp::NoWait {
            return None;
        }
        for _ in 0..16 {
            let got = self.try_to_free_pages(32);
            if let Some(p) = self.get_page_from_freelist(true, mt) {
                return Some(p);
            }
            if got == 0 {
                break;
            }
        }
        self.vmstat.inc(Vm::oom_kill);
        None
    }

    /// `get_page_from_freelist` over DMA32 then DMA at the low (or, `min`, the min)
    /// watermark (`__zone_watermark_ok`: "if (free_pages <= min + z->lowmem_reserve[highest_zoneidx])
    /// return false;").
    fn get_page_from_freelist(&mut self, min: bool, mt: crate::mm::mmzone::MigrateType) -> Option<u32> {
        let w = self.mem.wmark;
        if self.mem.nr_free() > if min { w.min } else { w.low } {
            return self.take_page();
        }
        let z = self.zones.as_deref()?;
        let mark = if min { z.dma.wmark.min } else { z.dma.wmark.low };
        if z.dma.nr_free() > z.dma_mark(mark, crate::mm::mmzone::ZONE_TOP) {
            return self.rmqueue_dma(mt);
        }
        None
    }

    fn take_page(&mut self) -> Option<u32> {
        let p = self.mem.take()?;
        self.vmstat.inc(Vm::pgalloc_normal);
        Some(p)
    }
}
