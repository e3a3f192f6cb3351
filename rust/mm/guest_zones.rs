//! The kernel's side of the zones of crate::mm::mmzone: setting them up as a guest reported
//! them ([`Kernel::set_guest_zones`]), freeing into and allocating from the DMA zone
//! (`free_unref_page`, `rmqueue`), and the guest kernel's own allocations.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mm::mmzone::{
    Block, DmaZone, MigrateType, PAGEBLOCK_NR_PAGES, PageTypes, Use, ZONE_DMA, ZONE_DMA32, ZONE_TOP, ZoneSpec, Zones,
};
use crate::mm::page::{Frame, NO_PFN, Watermarks, pg};

/// A free DMA frame: outside the main allocator's list, PG_reserved for it (the zone's own
/// lists hold it, [`DmaZone::check`]).
pub(crate) fn dma_free_frame() -> Frame {
    let mut f = Frame::FREE;
    f.flags = pg::PG_RESERVED;
    f.lru_next = NO_PFN;
    f
}

/// A page as the allocator hands it out (`Memory::take`): refcount 1, no flags.
pub(crate) fn new_page() -> Frame {
    Frame::allocated(0)
}

impl Kernel {
    /// Split the model's memory into the zones DMA and DMA32 as a guest reported them
    /// (`/proc/zoneinfo`, `/proc/pagetypeinfo`), instead of [`Kernel::set_guest_zone`]'s one
    /// summed zone: the first `dma.managed` pfns after the zero page are ZONE_DMA, with
    /// `dma.held` of them held by others (kernel pages in its first non-movable block) and
    /// its pageblocks of the types `types` gives (None: the partial block, where the kernel's
    /// reserved low memory sits, unmovable with the held pages in it, the whole ones
    /// movable, as the 96 MiB x86_64 guest's pagetypeinfo has them); the rest is DMA32 with
    /// `dma32.held` pages held. Call it on a fresh kernel. Fails (EINVAL) when the numbers do
    /// not fit the model's memory or the watermarks do not rise.
    pub fn set_guest_zones(&mut self, dma: ZoneSpec, dma32: ZoneSpec, types: Option<PageTypes>) -> Result<()> {
        let free = self.mem.nr_free();
        for (name, z) in [("DMA", dma), ("DMA32", dma32)] {
            if !(z.min <= z.low && z.low <= z.high && z.held < z.managed && z.high < z.managed - z.held) {
                return Err(Error::invalid(format!(
                    "zone {name}: watermarks min {} low {} high {} must rise and stay below its {} free pages",
                    z.min,
                    z.low,
                    z.high,
                    z.managed.saturating_sub(z.held)
                )));
            }
        }
        if dma.managed + dma32.held >= free || dma.managed < PAGEBLOCK_NR_PAGES {
            return Err(Error::invalid(format!(
                "a DMA zone of {} pages and {} held DMA32 pages do not fit the model's {free} free pages",
                dma.managed, dma32.held
            )));
        }
        let mut pfns = Vec::with_capacity(dma.managed as usize);
        for _ in 0..dma.managed {
            let Some(p) = self.mem.take() else { return Err(Error::invalid("the free list ran out")) };
            pfns.push(p);
        }
        let start = pfns[0];
        if pfns.iter().enumerate().any(|(i, p)| *p != start + i as u32) {
            return Err(Error::invalid("set_guest_zones needs a fresh kernel (the DMA pfns must be contiguous)"));
        }
        let end = start + dma.managed as u32;
        // the pageblocks: non-movable ones first (the kernel's early allocations), then movable
        let t = types.unwrap_or(PageTypes {
            unmovable_blocks: 1,
            reclaimable_blocks: 0,
            unmovable_free: (dma.managed % PAGEBLOCK_NR_PAGES).saturating_sub(dma.held),
            reclaimable_free: 0,
        });
        let mut blocks = Vec::new();
        let mut at = start;
        let add = |pages: u64, n: u64, mt: MigrateType, blocks: &mut Vec<Block>, at: &mut u32| {
            let mut left = pages;
            for i in 0..n {
                let len = if i + 1 == n { left } else { left.min(PAGEBLOCK_NR_PAGES) };
                let len = len.min(PAGEBLOCK_NR_PAGES) as u32;
                if len > 0 {
                    blocks.push(Block { start: *at, len, mt });
                    *at += len;
                }
                left -= len as u64;
            }
        };
        let held_in_nonmovable = if t.unmovable_blocks + t.reclaimable_blocks > 0 { dma.held } else { 0 };
        add(t.unmovable_free + held_in_nonmovable, t.unmovable_blocks, MigrateType::Unmovable, &mut blocks, &mut at);
        add(t.reclaimable_free, t.reclaimable_blocks, MigrateType::Reclaimable, &mut blocks, &mut at);
        if at > end {
            return Err(Error::invalid("the guest's non-movable DMA pages exceed the zone"));
        }
        while at < end {
            let len = (end - at).min(PAGEBLOCK_NR_PAGES as u32);
            blocks.push(Block { start: at, len, mt: MigrateType::Movable });
            at += len;
        }
        let mut zone = DmaZone {
            start,
            end,
            free: [Vec::new(), Vec::new(), Vec::new()],
            blocks,
            uses: vec![Use::Free; dma.managed as usize],
            wmark: Watermarks { min: dma.min, low: dma.low, high: dma.high, min_free_kbytes: 0 },
            lowmem_reserve: dma.lowmem_reserve,
            watermark_boost: 0,
            boosted_flag: false,
        };
        // held pages: the first ones (in the non-movable blocks when there are some)
        for p in start..start + dma.held as u32 {
            zone.uses[(p - start) as usize] = Use::Kernel;
            self.mem.frames[p as usize].flags = pg::PG_RESERVED;
        }
        // free lists LIFO: the lowest pfns on top, as Memory::new hands them out
        for b in (0..zone.blocks.len()).rev() {
            let blk = zone.blocks[b].clone();
            for p in (blk.start..blk.start + blk.len).rev() {
                if zone.uses[(p - start) as usize] == Use::Free {
                    zone.free[blk.mt as usize].push(p);
                    self.mem.put_frame(p, dma_free_frame());
                }
            }
        }
        for _ in 0..dma32.held {
            let Some(p) = self.mem.take() else { return Err(Error::invalid("the free list ran out")) };
            self.mem.frames[p as usize].flags = pg::PG_RESERVED;
        }
        // MGLRU's generations get a list per zone (`lrugen->folios[gen][type][zone]`)
        self.lru.set_zone_dma(&self.mem.frames, start, end);
        let kbytes = self.mem.wmark.min_free_kbytes;
        self.mem.wmark = Watermarks { min: dma32.min, low: dma32.low, high: dma32.high, min_free_kbytes: kbytes };
        self.zones = Some(Box::new(Zones {
            dma: zone,
            kswapd_highest_zoneidx: None,
            reclaim_idx: ZONE_TOP,
            pgskip_dma32: 0,
            nr_boosts: 0,
            nr_steals: 0,
            nr_claims: 0,
            compact_daemon_wake: 0,
            kcompactd: Default::default(),
            kernel_alloc_every: 0,
            kernel_alloc_count: 0,
            kernel_page: None,
            boost_wake_pending: false,
            boosted_run: None,
        }));
        Ok(())
    }

    /// The zone layer, when [`Kernel::set_guest_zones`] set one.
    pub fn zones(&self) -> Option<&Zones> {
        self.zones.as_deref()
    }

    /// Free pages of every zone (`global_zone_page_state(NR_FREE_PAGES)`).
    pub fn nr_free_pages(&self) -> u64 {
        self.mem.nr_free() + self.zones.as_ref().map_or(0, |z| z.dma.nr_free())
    }

    /// Whether `pfn` is in ZONE_DMA (`folio_zonenum(folio) == ZONE_DMA`).
    #[inline]
    pub(crate) fn page_zonenum(&self, pfn: u32) -> u8 {
        match &self.zones {
            Some(z) if z.dma.contains(pfn) => ZONE_DMA,
            _ => ZONE_DMA32,
        }
    }

    /// `free_unref_page` into the zone the page belongs to: a DMA page back on the list of its
    /// pageblock's migratetype (`free_one_page` → `get_pfnblock_migratetype`).
    pub(crate) fn free_frame(&mut self, pfn: u32) {
        if self.pcp.is_some() {
            return self.free_unref_page(pfn);
        }
        if let Some(z) = self.zones.as_deref_mut() {
            if z.dma.contains(pfn) {
                debug_assert!(self.mem.refcount(pfn) == 0, "freeing a busy DMA page {pfn}");
                self.mem.put_frame(pfn, dma_free_frame());
                z.dma.free_page(pfn);
                return;
            }
        }
        self.mem.free_page(pfn);
    }

    /// `rmqueue` from the DMA zone of a page of type `mt` (a user page: MIGRATE_MOVABLE), then
    /// "if ((alloc_flags & ALLOC_KSWAPD) && test_bit(ZONE_BOOSTED_WATERMARK, &zone->flags))
    /// { clear_bit(...); wakeup_kswapd(zone, 0, 0, zone_idx(zone)); }" (mm/page_alloc.c
    /// 6.12.117).
    pub(crate) fn rmqueue_dma(&mut self, mt: MigrateType) -> Option<u32> {
        let pfn =
            if self.pcp.is_some() { self.rmqueue_pcplist(ZONE_DMA, mt)? } else { self.rmqueue_buddy(ZONE_DMA, mt)? };
        let z = self.zones.as_deref_mut()?;
        z.dma.uses[(pfn - z.dma.start) as usize] = if mt == MigrateType::Movable { Use::Movable } else { Use::Kernel };
        let wake = std::mem::take(&mut z.dma.boosted_flag);
        self.mem.put_frame(pfn, new_page());
        if wake {
            self.wakeup_kswapd_zone(ZONE_DMA);
            // a kswapd in the middle of a boosted balance_pgdat is runnable, not on its
            // waitqueue: the wake changes nothing but kswapd_highest_zoneidx
            let z = self.zones.as_deref_mut().expect("zones");
            if z.boosted_run.is_none() {
                z.boost_wake_pending = true;
            }
        }
        Some(pfn)
    }

    /// One non-movable allocation of the guest's kernel (a slab page, a page table, an
    /// xarray node's page: GFP_KERNEL, MIGRATE_UNMOVABLE), which the model does not run
    /// itself: the page before it is freed (the model holds one such page at a time), then
    /// a page is taken from the zonelist as `get_page_from_freelist` would at the low
    /// watermark (DMA32, else DMA, whose fallback may claim a movable pageblock and boost
    /// the zone). Nothing without a zone layer or when both zones are below it.
    pub fn guest_kernel_alloc(&mut self) {
        let Some(z) = self.zones.as_deref_mut() else { return };
        if let Some(p) = z.kernel_page.take() {
            self.mem.put_frame(p, new_page());
            self.mem.set_refcount(p, 0);
            self.free_frame(p);
        }
        let z = self.zones.as_deref().expect("zones");
        let pfn = if self.mem.nr_free() > self.mem.wmark.low {
            self.rmqueue_dma32(MigrateType::Unmovable)
        } else if z.dma.nr_free() > z.dma_mark(z.dma.wmark.low, ZONE_TOP) {
            self.rmqueue_dma(MigrateType::Unmovable)
        } else {
            None
        };
        if let Some(p) = pfn {
            self.mem.frames[p as usize].flags = pg::PG_RESERVED;
            self.zones.as_deref_mut().expect("zones").kernel_page = Some(p);
        }
    }

    /// Count a page written to swap towards the guest kernel's allocation stream
    /// ([`Zones::kernel_alloc_every`]).
    pub(crate) fn note_swap_write_for_zones(&mut self) {
        let Some(z) = self.zones.as_deref_mut() else { return };
        if z.kernel_alloc_every == 0 {
            return;
        }
        z.kernel_alloc_count += 1;
        if z.kernel_alloc_count >= z.kernel_alloc_every {
            z.kernel_alloc_count = 0;
            self.guest_kernel_alloc();
        }
    }

    /// Set the guest kernel's allocation stream: one non-movable page allocation every `n`
    /// pages written to swap (0: none). Fails (EINVAL) without a zone layer.
    pub fn set_guest_kernel_alloc_every(&mut self, n: u64) -> Result<()> {
        match self.zones.as_deref_mut() {
            Some(z) => {
                z.kernel_alloc_every = n;
                Ok(())
            }
            None if n == 0 => Ok(()),
            None => Err(Error::invalid("the guest kernel's allocations need the zones (set_guest_zones)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::mm::mmap::MapKind;
    use crate::mm::mmzone::*;
    use crate::mm::page_alloc::Gfp;
    use crate::mm::vmstat::Vm;
    use crate::profile::Profile;

    const DMA: ZoneSpec = ZoneSpec { managed: 2304, held: 0, min: 16, low: 20, high: 24, lowmem_reserve: 20 };
    const DMA32: ZoneSpec = ZoneSpec { managed: 5887, held: 100, min: 40, low: 50, high: 60, lowmem_reserve: 0 };

    fn kernel(types: Option<PageTypes>) -> Kernel {
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), 8192 * 4096, 16384 * 4096, 0).unwrap();
        k.set_guest_zones(DMA, DMA32, types).unwrap();
        k
    }

    fn stat(k: &Kernel, name: &str) -> u64 {
        k.vmstat().into_iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| v)
    }

    /// The zones split the memory as the guest reported it: DMA's pages are the first pfns
    /// with its partial pageblock unmovable (the default layout), DMA32 the rest with its held
    /// pages reserved and its watermarks the allocator's.
    #[test]
    fn guest_zones_split_the_memory_and_keep_the_dma_zone_on_its_own_lists() {
        let k = kernel(None);
        let z = k.zones().unwrap();
        assert_eq!((z.dma.start, z.dma.end), (1, 2305));
        assert_eq!(z.dma.nr_free(), 2304);
        assert_eq!(z.dma.blocks[0].mt, MigrateType::Unmovable);
        assert_eq!(z.dma.blocks[0].len, 256, "3840 % 512 = 256 in the guest: the partial block");
        assert!(z.dma.blocks[1..].iter().all(|b| b.mt == MigrateType::Movable));
        assert_eq!(k.mem.nr_free(), 5887 - 100);
        assert_eq!(k.nr_free_pages(), 2304 + 5787);
        assert_eq!(k.mem.wmark.high, 60);
        z.dma.check().unwrap();
        k.check_invariants().unwrap();
        let err = k.snapshot_bytes().unwrap_err();
        assert!(err.to_string().contains("guest zones"), "{err}");
    }

    /// `get_page_from_freelist` (mm/page_alloc.c 6.12.117) walks the zonelist DMA32, DMA: a
    /// user page comes from DMA32 while it is above its low watermark, then from DMA, which
    /// keeps its low watermark plus `lowmem_reserve` from a movable allocation; only when both
    /// are below does the slow path wake kswapd.
    #[test]
    fn user_pages_come_from_dma32_first_and_dma_keeps_its_lowmem_reserve() {
        let mut k = kernel(None);
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 8000 * 4096, MapKind::Anon, false, None).unwrap();
        let mut i = 0;
        while k.mem.nr_free() > k.mem.wmark.low {
            k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
            i += 1;
        }
        assert_eq!(k.zones().unwrap().dma.nr_free(), 2304, "DMA untouched while DMA32 is above low");
        k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
        i += 1;
        assert_eq!(k.zones().unwrap().dma.nr_free(), 2303, "DMA32 at low: the next page is DMA's");
        assert_eq!(k.vmstat.get(Vm::pageoutrun), 0, "no kswapd yet: DMA was above its mark");
        // DMA serves until low + lowmem_reserve = 40 free pages, then kswapd wakes
        while k.vmstat.get(Vm::pageoutrun) == 0 {
            k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
            i += 1;
        }
        k.check_invariants().unwrap();
        k.zones().unwrap().dma.check().unwrap();
    }

    /// The x86_64 guest's DMA boost (mm/page_alloc.c 6.12.117 `__rmqueue_claim` →
    /// `try_to_steal_block` → `boost_watermark`; mm/vmscan.c `balance_pgdat`,
    /// `isolate_lru_folios`): once DMA's movable pageblocks have no free page, a movable
    /// allocation falls back to the unmovable block (a free buddy of order >= 4:
    /// `can_steal_fallback`), claims it and raises the zone's boost by a pageblock (512
    /// pages, above 1.5 x high); `rmqueue` wakes kswapd for ZONE_DMA, whose boosted run,
    /// unbalanced, restarts without the boost and reclaims with reclaim_idx = ZONE_DMA (scan
    /// targets from the DMA pages of each list, `lruvec_lru_size`): it passes over the DMA32
    /// folios (PGSCAN_SKIP, counted scanned) and frees DMA pages only, then clears the boost
    /// and wakes kcompactd.
    #[test]
    fn a_fallback_claim_boosts_the_dma_zone_and_kswapd_then_skips_dma32_folios() {
        let mut k = kernel(None);
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 8000 * 4096, MapKind::Anon, false, None).unwrap();
        let mut i = 0;
        while k.zones().unwrap().nr_boosts == 0 {
            assert!(i < 8000, "no boost");
            k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
            i += 1;
        }
        let z = k.zones().unwrap();
        assert_eq!((z.nr_claims, z.nr_steals), (1, 0), "the 256 free pages of the block: claimed");
        assert_eq!(z.dma.blocks[0].mt, MigrateType::Movable);
        // settle ran kswapd after the access: the boosted run reclaimed DMA only
        assert_eq!(z.dma.watermark_boost, 0, "cleared at the end of balance_pgdat");
        assert_eq!(z.compact_daemon_wake, 1);
        assert!(z.pgskip_dma32 > 0, "DMA32 folios passed over");
        // every page was touched once, just now: the two-strike rule keeps them all this time
        // (folio_check_references), and whatever was reclaimed was DMA's: DMA32 got nothing
        assert!(k.mem.nr_free() <= k.mem.wmark.low + 1, "DMA32 got nothing: {}", k.mem.nr_free());
        assert!(stat(&k, "pgscan_kswapd") >= stat(&k, "pgskip_dma32"), "skips count as scanned");
        k.check_invariants().unwrap();
        k.zones().unwrap().dma.check().unwrap();
    }

    /// A non-movable allocation (`can_steal_fallback`: always for UNMOVABLE) that finds no
    /// unmovable page in DMA claims a free movable pageblock (`try_to_steal_block`: free +
    /// alike >= half a block) and boosts the zone; one into blocks full of user pages steals
    /// a single page (`__rmqueue_steal`) after the claim attempt boosted the zone anyway, and
    /// `rmqueue` wakes kswapd for ZONE_DMA each time (mm/page_alloc.c 6.12.117).
    /// The guest's own layout (pagetypeinfo: one unmovable block, 224 of its 256 pages free,
    /// 32 the kernel's): a movable fallback into it cannot claim it (free + movable < half a
    /// pageblock), so `try_to_steal_block` boosts and `__rmqueue_steal` takes one page; the
    /// block stays unmovable, and every time DMA's movable lists run dry again the next
    /// movable page boosts the zone again (mm/page_alloc.c 6.12.117).
    #[test]
    fn an_unclaimable_unmovable_block_boosts_the_dma_zone_again_and_again() {
        let dma = ZoneSpec { held: 32, ..DMA };
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), 8192 * 4096, 16384 * 4096, 0).unwrap();
        k.set_guest_zones(dma, DMA32, None).unwrap();
        assert_eq!(k.zones().unwrap().dma.nr_free(), 2304 - 32);
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 8000 * 4096, MapKind::Anon, false, None).unwrap();
        let mut i = 0u64;
        while k.zones().unwrap().compact_daemon_wake < 2 {
            assert!(i < 200_000, "fewer than two boosted kswapd runs");
            let page = (i * 7919) % 8000; // the pages over and over, out of order
            k.access(pid, 0, a + page * 4096, true, i + 1).unwrap();
            i += 1;
        }
        let z = k.zones().unwrap();
        assert_eq!(z.nr_claims, 0);
        assert!(z.nr_steals >= 2 && z.nr_boosts >= 2, "steals {} boosts {}", z.nr_steals, z.nr_boosts);
        assert_eq!(z.dma.blocks[0].mt, MigrateType::Unmovable);
        assert!(z.pgskip_dma32 > 0);
        k.check_invariants().unwrap();
        z.dma.check().unwrap();
    }

    /// A boost on a node that is balanced for the wake's `highest_zoneidx` (DMA32 above its
    /// high watermark) leaves `balance_pgdat` (mm/vmscan.c 6.12.117) boosted: `may_swap` off,
    /// so with anon pages only its pass reclaims nothing, "if (nr_boost_reclaim &&
    /// !nr_reclaimed) break;" ends the run, which then counts a failure ("if
    /// (!sc.nr_reclaimed) pgdat->kswapd_failures++;") and clears the boost. The guest's DMA32
    /// boosts end this way (FINDINGS section 7, "the kernel boosts DMA32 too").
    #[test]
    fn a_boosted_run_that_reclaims_nothing_counts_a_kswapd_failure_and_clears_the_boost() {
        let mut k = kernel(None);
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 256 * 4096, MapKind::Anon, false, None).unwrap();
        for i in 0..256u64 {
            k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
        }
        assert!(k.mem.nr_free() > k.mem.wmark.high && k.pgdat_balanced_idx(ZONE_DMA32));
        assert_eq!(k.vmstat.get(Vm::pageoutrun), 0);
        k.zones.as_deref_mut().unwrap().dma.watermark_boost = PAGEBLOCK_NR_PAGES;
        k.wakeup_kswapd_zone(ZONE_DMA32);
        assert!(k.kswapd.woken, "balanced but boosted: pgdat_watermark_boosted wakes kswapd");
        assert_eq!(k.kswapd_step(), 0, "the boosted pass may not swap");
        assert_eq!(k.vmstat.get(Vm::pageoutrun), 1);
        assert_eq!(k.kswapd.failures, 1, "a run that reclaimed nothing");
        assert_eq!(k.zones().unwrap().dma.watermark_boost, 0, "the boost taken at the start is cleared");
        assert_eq!(k.vmstat.get(Vm::pswpout), 0);
        k.check_invariants().unwrap();
    }

    /// A one-CPU 6.12 x86_64 kernel of 8,192 pages with the guest zones, 32 of DMA's pages
    /// held by the guest's kernel.
    fn one_cpu_guest_with_a_held_dma_block() -> Kernel {
        let dma = ZoneSpec { held: 32, ..DMA };
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), 8192 * 4096, 16384 * 4096, 0).unwrap();
        k.set_guest_zones(dma, DMA32, None).unwrap();
        k.kswapd.mode = crate::vmscan::types::KswapdMode::OneCpu;
        k
    }

    /// On one CPU a boosted `balance_pgdat` (mm/vmscan.c 6.12.117) does not run to its end at
    /// once: kswapd is preempted and the boost "is left in place so that parallel allocations
    /// that are near the watermark will stall or direct reclaim until kswapd is finished". The
    /// process's next page fails DMA's boosted watermark, so it comes from DMA32 below its low
    /// watermark (`__alloc_pages_slowpath` at ALLOC_WMARK_MIN) and the slow path's
    /// `wakeup_kswapd` raises `kswapd_highest_zoneidx` to DMA32 for kswapd's next run; the
    /// boosted run, resumed, is still one PAGEOUTRUN, and clears the boost at its end.
    #[test]
    fn on_one_cpu_a_boosted_kswapd_run_leaves_the_boost_in_place_while_the_process_allocates() {
        let mut k = one_cpu_guest_with_a_held_dma_block();
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 8000 * 4096, MapKind::Anon, false, None).unwrap();
        let fresh = k.mmap(pid, 16 * 4096, MapKind::Anon, false, None).unwrap();
        let mut i = 0u64;
        while k.zones().unwrap().boosted_run.is_none() {
            assert!(i < 200_000, "no boosted kswapd run gave the CPU back");
            let page = (i * 7919) % 8000;
            k.access(pid, 0, a + page * 4096, true, i + 1).unwrap();
            i += 1;
        }
        let z = k.zones().unwrap();
        assert!(z.dma.watermark_boost > 0, "the boost stays while the run is unfinished");
        assert!(k.kswapd.woken, "kswapd stays runnable");
        let (runs, wakes) = (k.vmstat.get(Vm::pageoutrun), z.compact_daemon_wake);
        let (dma_free, dma32_free) = (z.dma.nr_free(), k.mem.nr_free());
        assert!(dma_free <= z.dma_mark(z.dma.wmark.low, ZONE_TOP), "DMA fails its boosted low watermark");
        assert!(dma32_free <= k.mem.wmark.low && dma32_free > k.mem.wmark.min);
        k.access(pid, 0, fresh, true, 1).unwrap();
        let z = k.zones().unwrap();
        assert_eq!(z.dma.nr_free(), dma_free, "the page is not DMA's");
        assert_eq!(k.mem.nr_free(), dma32_free - 1, "DMA32 below its low watermark served it");
        assert_eq!(z.kswapd_highest_zoneidx, Some(ZONE_DMA32), "the slow path woke kswapd for every zone");
        let mut turns = 0;
        while k.zones().unwrap().boosted_run.is_some() {
            assert!(turns < 100, "the boosted run never ended");
            k.kswapd_step();
            turns += 1;
        }
        let z = k.zones().unwrap();
        assert_eq!(k.vmstat.get(Vm::pageoutrun), runs, "resumed, not a new balance_pgdat");
        assert_eq!(z.compact_daemon_wake, wakes + 1);
        assert_eq!(z.dma.watermark_boost, 0, "cleared at the end of the run");
        k.check_invariants().unwrap();
        z.dma.check().unwrap();
    }

    /// On one CPU the kswapd a boost woke preempts the process at its next rescheduling point,
    /// and an allocation is one: `prepare_alloc_pages` → `might_alloc` → `might_sleep()` →
    /// `might_resched()`, `__cond_resched()` under the x86_64 guests' PREEMPT_DYNAMIC in mode
    /// voluntary (mm/page_alloc.c, include/linux/kernel.h 6.12.117). So when one page of a
    /// swap readahead boosts DMA, kswapd runs before the readahead's next page is allocated,
    /// with the `highest_zoneidx` of the boost's wake (ZONE_DMA: it passes over the DMA32
    /// folios), rather than after the fault with ZONE_DMA32, which the next pages' slow path
    /// (DMA boosted, DMA32 at its low watermark) would have asked for.
    #[test]
    fn on_one_cpu_the_kswapd_a_boost_woke_runs_before_the_next_allocation() {
        let mut k = one_cpu_guest_with_a_held_dma_block();
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 8000 * 4096, MapKind::Anon, false, None).unwrap();
        // fresh pages, oldest first on the LRU, until the next movable page would fall back:
        // DMA32 at its low watermark and DMA's movable lists empty, its unmovable block not
        let will_fall_back = |k: &Kernel| {
            let z = k.zones().unwrap();
            k.mem.nr_free() <= k.mem.wmark.low
                && z.dma.free[MigrateType::Movable as usize].is_empty()
                && z.dma.nr_free() > z.dma_mark(z.dma.wmark.low, ZONE_TOP)
        };
        let mut i = 0;
        while !will_fall_back(&k) {
            assert!(i < 8000, "DMA's movable lists never ran dry");
            k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
            i += 1;
        }
        assert_eq!((k.zones().unwrap().nr_boosts, k.vmstat.get(Vm::pageoutrun)), (0, 0));
        // two pages of one readahead (`swap_cluster_readahead`: one allocation a page)
        let first = k.alloc_page(Gfp::User).unwrap();
        let z = k.zones().unwrap();
        assert_eq!((z.nr_boosts, z.nr_steals, z.kswapd_highest_zoneidx), (1, 1, Some(ZONE_DMA)));
        assert!(z.boost_wake_pending && k.kswapd.woken);
        assert_eq!(k.vmstat.get(Vm::pageoutrun), 0, "kswapd is woken, the process still runs");
        let second = k.alloc_page(Gfp::User).unwrap();
        let z = k.zones().unwrap();
        assert_eq!(k.vmstat.get(Vm::pageoutrun), 1, "kswapd ran at the second allocation's might_alloc");
        assert!(z.pgskip_dma32 > 0, "a run for ZONE_DMA: the DMA32 folios passed over");
        assert_eq!(stat(&k, "pgsteal_direct"), 0);
        assert_ne!(z.kswapd_highest_zoneidx, Some(ZONE_DMA32), "no slow path asked for DMA32");
        for p in [first, second] {
            k.mem.set_refcount(p, 0);
            k.free_frame(p);
        }
        k.check_invariants().unwrap();
        k.zones().unwrap().dma.check().unwrap();
    }

    /// With the scheduler tick (crate::sched, kernel/sched/fair.c v6.12) a boosted kswapd that
    /// gave the CPU back was preempted at a tick; the process then has its new slice and
    /// kswapd runs again at the next tick (`update_curr` → `update_deadline`), not at the
    /// process's next access.
    #[test]
    fn with_the_tick_a_preempted_boosted_kswapd_run_resumes_at_the_next_tick() {
        use crate::mm::mmzone::BoostedRun;
        use crate::sched::{GuestCost, TICK_NS};
        let mut k = one_cpu_guest_with_a_held_dma_block();
        let cost = GuestCost { request: 1000.0, minor_fault: 20_000.0, ..Default::default() };
        k.set_guest_clock(Some(cost), true).unwrap();
        let pid = k.spawn("p", false).unwrap();
        let a = k.mmap(pid, 8000 * 4096, MapKind::Anon, false, None).unwrap();
        let fresh = k.mmap(pid, 4096 * 4096, MapKind::Anon, false, None).unwrap();
        let mut i = 0u64;
        while k.zones().unwrap().boosted_run.is_none() {
            assert!(i < 200_000, "no boosted kswapd run gave the CPU back");
            k.access(pid, 0, a + (i * 7919) % 8000 * 4096, true, i + 1).unwrap();
            k.guest_request_done();
            i += 1;
        }
        let next_tick = (k.guest_now() / TICK_NS + 1) * TICK_NS;
        let ran = |k: &Kernel, before: &(Option<BoostedRun>, u64, u64)| {
            let z = k.zones().unwrap();
            (z.boosted_run.clone(), z.compact_daemon_wake, k.vmstat.get(Vm::pgscan_kswapd)) != *before
        };
        let z = k.zones().unwrap();
        let before = (z.boosted_run.clone(), z.compact_daemon_wake, k.vmstat.get(Vm::pgscan_kswapd));
        for j in 0..4096u64 {
            // fresh pages: no swap read lets kswapd in (the scanned pages and writes cost 0)
            k.access(pid, 0, fresh + j * 4096, true, 1).unwrap();
            k.guest_request_done();
            if k.guest_now() < next_tick {
                assert!(!ran(&k, &before), "kswapd ran before the next tick");
            } else {
                assert!(ran(&k, &before), "kswapd did not run again at the tick");
                k.check_invariants().unwrap();
                return;
            }
        }
        panic!("the guest clock never reached the next tick");
    }

    #[test]
    fn a_kernel_allocation_in_dma_claims_or_steals_and_boosts_either_way() {
        let all_movable =
            PageTypes { unmovable_blocks: 0, reclaimable_blocks: 0, unmovable_free: 0, reclaimable_free: 0 };
        let mut k = kernel(Some(all_movable));
        while k.mem.nr_free() > k.mem.wmark.low {
            k.mem.take();
        }
        k.guest_kernel_alloc();
        let z = k.zones().unwrap();
        assert_eq!((z.nr_boosts, z.nr_claims, z.nr_steals), (1, 1, 0));
        assert_eq!(z.dma.watermark_boost, 512);
        assert_eq!(z.kswapd_highest_zoneidx, Some(ZONE_DMA));
        assert!(k.kswapd.woken);
        // a fresh zone whose blocks are nearly all user pages: the kernel page is a steal
        let mut k = kernel(Some(all_movable));
        while k.mem.nr_free() > k.mem.wmark.low {
            k.mem.take();
        }
        let pages: Vec<u32> = (0..2304).map(|_| k.rmqueue_dma(MigrateType::Movable).unwrap()).collect();
        assert_eq!(pages[..3], [1, 2, 3], "lowest pfns first, as the main list hands them out");
        // 100 pages of the second block come back: it is 412 user pages and 100 free
        for &p in &pages[512..612] {
            k.mem.set_refcount(p, 0);
            k.free_frame(p);
        }
        assert_eq!(k.zones().unwrap().nr_boosts, 0, "movable pages from movable blocks: no fallback");
        k.guest_kernel_alloc();
        let z = k.zones().unwrap();
        assert_eq!((z.nr_boosts, z.nr_claims, z.nr_steals), (1, 0, 1));
        assert!(k.kswapd.woken);
        z.dma.check().unwrap();
    }
}
