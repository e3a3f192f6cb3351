//! The page allocator (mm/page_alloc.c): `alloc_pages` of one page against the zone
//! watermarks, waking kswapd and entering direct reclaim below them.

use crate::error::Result;
use crate::kernel::Kernel;
use crate::mm::guest_zones::{dma_free_frame, new_page};
use crate::mm::mmzone::{
    MigrateType, PCP_BATCH_SCALE_MAX, Pcp, PerCpuPages, STAT_INTERVAL_NS, Use, ZONE_DMA, ZONE_DMA32, ZONE_TOP,
};
use crate::mm::page::Frame;
use crate::mm::vmstat::Vm;

/// The CPUs of the guest whose zones the model has (the oracle's guests run `-smp 1`):
/// `nr_split_cpus` of `zone_highsize`.
const GUEST_CPUS: u64 = 1;

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
    fn migratetype(self) -> MigrateType {
        match self {
            Gfp::User => MigrateType::Movable,
            Gfp::NoWait | Gfp::Kernel => MigrateType::Unmovable,
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
    /// means out of memory; the caller decides (a fault returns VM_FAULT_OOM). With the per-cpu
    /// lists ([`Kernel::set_pcp_lists`]) a retry after reclaim that fails drains them and tries
    /// again (`__alloc_pages_direct_reclaim`'s `drain_all_pages`, mm/page_alloc.c 6.12.117).
    pub fn alloc_page(&mut self, gfp: Gfp) -> Option<u32> {
        if self.zones.is_some() {
            return self.alloc_page_zoned(gfp);
        }
        let w = self.mem.wmark;
        // get_page_from_freelist notes ZONE_BELOW_HIGH for the per-cpu lists first
        self.note_below_high(ZONE_TOP);
        let free = self.mem.nr_free();
        if free > w.low {
            return self.take_page(gfp.migratetype());
        }
        self.wakeup_kswapd();
        if free > w.min {
            return self.take_page(gfp.migratetype());
        }
        if gfp == Gfp::NoWait {
            return None;
        }
        for _ in 0..16 {
            let got = self.try_to_free_pages(32);
            self.note_below_high(ZONE_TOP);
            if self.mem.nr_free() > w.min {
                return self.take_page(gfp.migratetype());
            }
            // __alloc_pages_direct_reclaim's drain_all_pages, as with the zones
            if got > 0 && self.drain_all_pages() && self.mem.nr_free() > w.min {
                return self.take_page(gfp.migratetype());
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
            // __alloc_pages_direct_reclaim: "If an allocation failed after direct reclaim, it
            // could be because pages are pinned on the per-cpu lists": drain them, try again
            if got > 0 && self.drain_all_pages() {
                if let Some(p) = self.get_page_from_freelist(true, mt) {
                    return Some(p);
                }
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
    /// With the per-cpu lists each zone visited first notes whether it is below its high
    /// watermark (ZONE_BELOW_HIGH, which `nr_pcp_high` and `nr_pcp_alloc` read).
    fn get_page_from_freelist(&mut self, min: bool, mt: MigrateType) -> Option<u32> {
        let w = self.mem.wmark;
        self.note_below_high(ZONE_DMA32);
        if self.mem.nr_free() > if min { w.min } else { w.low } {
            return self.take_page(mt);
        }
        self.note_below_high(ZONE_DMA);
        let z = self.zones.as_deref()?;
        let mark = if min { z.dma.wmark.min } else { z.dma.wmark.low };
        if z.dma.nr_free() > z.dma_mark(mark, crate::mm::mmzone::ZONE_TOP) {
            return self.rmqueue_dma(mt);
        }
        None
    }

    fn take_page(&mut self, mt: MigrateType) -> Option<u32> {
        let p = self.rmqueue_dma32(mt)?;
        self.vmstat.inc(Vm::pgalloc_normal);
        Some(p)
    }

    /// `rmqueue` of an order-0 page of type `mt` from DMA32, or without the guest zones from
    /// the one zone (the main free list, which has no migratetypes): through the per-cpu lists
    /// when chosen (their MIGRATE_MOVABLE list for every type, as every page of the main list
    /// frees to it), else straight from the list.
    pub(crate) fn rmqueue_dma32(&mut self, mt: MigrateType) -> Option<u32> {
        if self.pcp.is_some() {
            // one list: the model's main list has no pageblocks, its pages no migratetype
            let _ = mt;
            let pfn = self.rmqueue_pcplist(ZONE_DMA32, MigrateType::Movable)?;
            self.mem.put_frame(pfn, new_page());
            return Some(pfn);
        }
        self.mem.take()
    }

    /// Choose the per-cpu page lists (crate::mm::mmzone::PerCpuPages) of the zones on the
    /// guest's one CPU: the guest zones' DMA and DMA32 ([`Kernel::set_guest_zones`]), else the
    /// one zone's, each sized from its zone's managed pages and low watermark as
    /// `zone_set_pageset_high_and_batch` sizes them (mm/page_alloc.c 6.12.117, the same in
    /// 6.12.107; `percpu_pagelist_high_fraction` 0): order-0 pages then leave their zone's
    /// free list in batches (`rmqueue_bulk`) and come back to it in batches
    /// (`free_pcppages_bulk`), and the pages between, on the lists, are not in
    /// `NR_FREE_PAGES`. Choose them after the zones and their watermarks (a later
    /// [`Kernel::set_guest_zones`] or `set_guest_zone` does not resize them). `false` drains
    /// the lists and removes them.
    pub fn set_pcp_lists(&mut self, on: bool) -> Result<()> {
        if !on {
            self.drain_all_pages();
            self.pcp = None;
            return Ok(());
        }
        if self.pcp.is_some() {
            return Ok(());
        }
        let dma = self.zones.as_deref().map(|z| &z.dma);
        let top_managed = self.mem.managed() - dma.map_or(0, |d| (d.end - d.start) as u64);
        let mut pageset = [None, None];
        if let Some(d) = dma {
            pageset[ZONE_DMA as usize] = Some(PerCpuPages::new((d.end - d.start) as u64, d.wmark.low, GUEST_CPUS));
        }
        pageset[ZONE_TOP as usize] = Some(PerCpuPages::new(top_managed, self.mem.wmark.low, GUEST_CPUS));
        self.pcp =
            Some(Box::new(Pcp { pageset, reclaim_active: [false; 2], below_high: [false; 2], next_vmstat_update: 0 }));
        Ok(())
    }

    /// The pages on the per-cpu lists of (DMA, DMA32), when chosen (what `/proc/zoneinfo`'s
    /// pagesets' `count:` sum to, per zone); without the guest zones DMA's is 0 and DMA32's
    /// the one zone's.
    pub fn pcp_count(&self) -> Option<(u64, u64)> {
        let p = self.pcp.as_deref()?;
        let count = |z: u8| p.pageset[z as usize].as_ref().map_or(0, |s| s.count);
        Some((count(ZONE_DMA), count(ZONE_DMA32)))
    }

    /// `get_page_from_freelist` (mm/page_alloc.c 6.12.117): "if (test_bit(ZONE_BELOW_HIGH,
    /// &zone->flags)) goto check_alloc_wmark; ... if (zone_watermark_fast(zone, order, mark
    /// = high_wmark_pages(zone), ...)) goto try_this_zone; else set_bit(ZONE_BELOW_HIGH)".
    fn note_below_high(&mut self, zone: u8) {
        if self.pcp.as_deref().is_none_or(|p| p.below_high[zone as usize]) {
            return;
        }
        if !self.zone_above_high(zone) {
            self.pcp.as_deref_mut().expect("pcp").below_high[zone as usize] = true;
        }
    }

    /// `zone_watermark_ok(zone, 0, high_wmark_pages(zone), ZONE_MOVABLE, 0)`: what a free that
    /// drained the lists asks before it clears ZONE_BELOW_HIGH.
    fn zone_above_high(&self, zone: u8) -> bool {
        match self.zones.as_deref() {
            Some(z) if zone == ZONE_DMA => z.dma.nr_free() > z.dma_mark(z.dma.wmark.high, ZONE_TOP),
            _ => self.mem.nr_free() > self.mem.wmark.high,
        }
    }

    /// `__rmqueue` of one page of type `mt` from a zone's free lists (DMA's by migratetype,
    /// counting its boosts, claims and steals; DMA32's one list), no watermark check.
    pub(crate) fn rmqueue_buddy(&mut self, zone: u8, mt: MigrateType) -> Option<u32> {
        if zone != ZONE_DMA {
            return self.mem.take();
        }
        let z = self.zones.as_deref_mut()?;
        let mut stats = (0, 0, 0);
        let pfn = z.dma.rmqueue(mt, &mut stats)?;
        z.nr_boosts += stats.0;
        z.nr_claims += stats.1;
        z.nr_steals += stats.2;
        Some(pfn)
    }

    /// `__free_one_page` of an order-0 page into its zone's free list (DMA's of its pageblock's
    /// migratetype).
    fn free_one_page(&mut self, zone: u8, pfn: u32) {
        if zone == ZONE_DMA {
            self.mem.put_frame(pfn, dma_free_frame());
            self.zones.as_deref_mut().expect("zones").dma.free_page(pfn);
        } else {
            self.mem.put_frame(pfn, Frame::allocated(0));
            self.mem.set_refcount(pfn, 0);
            self.mem.free_page(pfn);
        }
    }

    /// A page onto the per-cpu lists: free (refcount 0) but on no free list, PG_reserved as a
    /// free DMA page is (outside the main list); a DMA page's use [`Use::Pcp`].
    fn mark_pcp_page(&mut self, zone: u8, pfn: u32) {
        self.mem.put_frame(pfn, dma_free_frame());
        if zone == ZONE_DMA {
            let d = &mut self.zones.as_deref_mut().expect("zones").dma;
            d.uses[(pfn - d.start) as usize] = Use::Pcp;
        }
    }

    fn take_pcp(&mut self) -> Box<Pcp> {
        self.pcp.take().expect("pcp lists")
    }

    fn put_pcp(&mut self, p: Box<Pcp>) {
        self.pcp = Some(p);
    }

    /// `rmqueue_pcplist` → `__rmqueue_pcplist` (mm/page_alloc.c 6.12.117) of an order-0 page of
    /// type `mt` from `zone`'s per-cpu list: "pcp->free_count >>= 1"; an empty list is
    /// refilled by `rmqueue_bulk` with `nr_pcp_alloc` pages taken from the zone's free lists
    /// (added at the tail, and `NR_FREE_PAGES` drops by them), then the head is taken.
    pub(crate) fn rmqueue_pcplist(&mut self, zone: u8, mt: MigrateType) -> Option<u32> {
        let mut pcp = self.take_pcp();
        let z = zone as usize;
        pcp.zone_mut(zone).free_count >>= 1;
        if pcp.zone_mut(zone).lists[mt as usize].is_empty() {
            let below_high = pcp.below_high[z];
            let batch = pcp.zone_mut(zone).nr_pcp_alloc(below_high);
            for _ in 0..batch {
                let Some(pfn) = self.rmqueue_buddy(zone, mt) else { break };
                self.mark_pcp_page(zone, pfn);
                pcp.zone_mut(zone).lists[mt as usize].push_back(pfn);
                pcp.zone_mut(zone).count += 1;
            }
        }
        let pfn = pcp.zone_mut(zone).lists[mt as usize].pop_front();
        if pfn.is_some() {
            pcp.zone_mut(zone).count -= 1;
        }
        self.put_pcp(pcp);
        pfn
    }

    /// `free_unref_page` → `free_unref_page_commit` (mm/page_alloc.c 6.12.117) of an order-0
    /// page whose last reference is gone: "pcp->alloc_factor >>= 1", onto the head of the
    /// list of its pageblock's migratetype (DMA32's: MIGRATE_MOVABLE, the model's DMA32 has
    /// no pageblocks), `free_count` up by one (to `batch << CONFIG_PCP_BATCH_SCALE_MAX`), and
    /// when the lists reach `nr_pcp_high` they give `nr_pcp_free` pages back to the zone
    /// (`free_pcppages_bulk`), after which ZONE_BELOW_HIGH is cleared if the zone is above
    /// its high watermark again.
    pub(crate) fn free_unref_page(&mut self, pfn: u32) {
        let zone = self.page_zonenum(pfn);
        let mt = match self.zones.as_deref() {
            Some(z) if zone == ZONE_DMA => z.dma.pfnblock_migratetype(pfn),
            _ => MigrateType::Movable,
        };
        debug_assert!(zone == ZONE_DMA || mt == MigrateType::Movable);
        debug_assert!(self.mem.refcount(pfn) == 0, "freeing a busy page {pfn}");
        self.mark_pcp_page(zone, pfn);
        let mut pcp = self.take_pcp();
        let z = zone as usize;
        let (reclaim_active, below_high) = (pcp.reclaim_active[z], pcp.below_high[z]);
        let p = pcp.zone_mut(zone);
        p.alloc_factor >>= 1;
        p.lists[mt as usize].push_front(pfn);
        p.count += 1;
        if p.free_count < p.batch << PCP_BATCH_SCALE_MAX {
            p.free_count += 1;
        }
        let high = p.nr_pcp_high(reclaim_active, below_high);
        if pcp.zone_mut(zone).count >= high {
            let n = pcp.zone_mut(zone).nr_pcp_free(high);
            self.free_pcppages_bulk(&mut pcp, zone, n, mt as usize);
            if pcp.below_high[z] && self.zone_above_high(zone) {
                pcp.below_high[z] = false;
            }
        }
        self.put_pcp(pcp);
    }

    /// `free_pcppages_bulk` (mm/page_alloc.c 6.12.117): `count` pages (at most those on the
    /// lists) back to the zone's free lists, the lists in turn from `pindex` on, each from its
    /// tail (the coldest page).
    fn free_pcppages_bulk(&mut self, pcp: &mut Pcp, zone: u8, count: u64, pindex: usize) {
        let p = pcp.zone_mut(zone);
        let mut count = count.min(p.count);
        let n = p.lists.len();
        let mut idx = (pindex + n - 1) % n;
        let mut freed = Vec::with_capacity(count as usize);
        while count > 0 {
            loop {
                idx = (idx + 1) % n;
                if !p.lists[idx].is_empty() {
                    break;
                }
            }
            while count > 0 {
                let Some(pfn) = p.lists[idx].pop_back() else { break };
                count -= 1;
                p.count -= 1;
                freed.push(pfn);
            }
        }
        for pfn in freed {
            self.free_one_page(zone, pfn);
        }
    }

    /// `drain_all_pages(NULL)` (mm/page_alloc.c 6.12.117) on the one CPU: every zone's lists
    /// back to its free lists (`drain_pages_zone`). Returns whether there are per-cpu lists.
    pub(crate) fn drain_all_pages(&mut self) -> bool {
        if self.pcp.is_none() {
            return false;
        }
        let mut pcp = self.take_pcp();
        for zone in pcp.zones() {
            let count = pcp.zone_mut(zone).count;
            self.free_pcppages_bulk(&mut pcp, zone, count, 0);
        }
        self.put_pcp(pcp);
        true
    }

    /// `set_reclaim_active`/`clear_reclaim_active` (mm/vmscan.c 6.12.117) of `balance_pgdat`:
    /// ZONE_RECLAIM_ACTIVE on the zones up to `highest_zoneidx` while kswapd reclaims.
    pub(crate) fn update_reclaim_active(&mut self, highest_zoneidx: u8, active: bool) {
        if let Some(p) = self.pcp.as_deref_mut() {
            for zone in p.zones().filter(|&z| z <= highest_zoneidx) {
                p.reclaim_active[zone as usize] = active;
            }
        }
    }

    /// `vmstat_update` → `refresh_cpu_vm_stats(true)` → `decay_pcp_high` (mm/vmstat.c,
    /// mm/page_alloc.c 6.12.117) every `sysctl_stat_interval` of the guest's time: each zone's
    /// `high` decays by an eighth (not below `high_min`, nor below `count - (batch <<
    /// CONFIG_PCP_BATCH_SCALE_MAX)`) and the lists drain to it, `batch` pages at a time.
    /// Nothing without a guest clock or the lists.
    pub(crate) fn vmstat_update_pcp(&mut self, now: u64) {
        let Some(p) = self.pcp.as_deref_mut() else { return };
        if p.next_vmstat_update == 0 {
            p.next_vmstat_update = now + STAT_INTERVAL_NS;
            return;
        }
        if now < p.next_vmstat_update {
            return;
        }
        p.next_vmstat_update += STAT_INTERVAL_NS;
        let mut pcp = self.take_pcp();
        for zone in pcp.zones() {
            let p = pcp.zone_mut(zone);
            if p.high > p.high_min {
                let floor = p.count.saturating_sub(p.batch << PCP_BATCH_SCALE_MAX);
                p.high = floor.max(p.high - (p.high >> 3)).max(p.high_min);
            }
            let mut to_drain = p.count.saturating_sub(p.high);
            let batch = p.batch;
            while to_drain > 0 {
                let n = to_drain.min(batch);
                self.free_pcppages_bulk(&mut pcp, zone, n, 0);
                to_drain -= n;
            }
        }
        self.put_pcp(pcp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::mm::mmap::MapKind;
    use crate::mm::mmzone::{ZoneSpec, zone_batchsize};
    use crate::profile::Profile;

    /// The 96 MiB x86_64 guest's zones (its `/proc/zoneinfo`): DMA 3840 managed pages, DMA32
    /// 10077, of which the model holds 4000 for others.
    const DMA: ZoneSpec = ZoneSpec { managed: 3840, held: 32, min: 64, low: 80, high: 96, lowmem_reserve: 28 };
    const DMA32: ZoneSpec = ZoneSpec { managed: 10077, held: 4000, min: 168, low: 210, high: 252, lowmem_reserve: 0 };

    fn guest(pcp: bool) -> Kernel {
        let pages = DMA.managed + DMA32.managed + 1;
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), pages * 4096, 32768 * 4096, 0).unwrap();
        k.set_guest_zones(DMA, DMA32, None).unwrap();
        k.set_pcp_lists(pcp).unwrap();
        k
    }

    fn pageset(k: &Kernel, zone: u8) -> &PerCpuPages {
        k.pcp.as_deref().unwrap().zone(zone)
    }

    /// A user page nobody maps, held as a kernel page is (PG_reserved) until freed.
    fn page(k: &mut Kernel) -> u32 {
        let p = k.alloc_page(Gfp::User).unwrap();
        k.mem.frames[p as usize].flags = crate::mm::page::pg::PG_RESERVED;
        p
    }

    fn pcp_mut(k: &mut Kernel) -> &mut Pcp {
        k.pcp.as_deref_mut().unwrap()
    }

    /// `zone_batchsize` and `zone_highsize` via `zone_set_pageset_high_and_batch` (mm/page_alloc.c
    /// 6.12.117, `percpu_pagelist_high_fraction` 0, one CPU): the guest's small zones get a
    /// batch of 1 (`(managed >> 10) / 4` rounds to 0 or 2, then `2^n - 1`), `high_min` their
    /// low watermark and `high_max` an eighth of their managed pages; a zone of 1 GiB or more
    /// the familiar batch of 63.
    #[test]
    fn the_guest_zones_pcp_batch_and_high_come_from_their_managed_pages_and_low_watermark() {
        assert_eq!((zone_batchsize(3840), zone_batchsize(10077)), (1, 1));
        assert_eq!(zone_batchsize(262_144), 63);
        assert_eq!(zone_batchsize(64_000), 15, "62 / 4 = 15, 15 + 7 = 22 -> 16 - 1");
        let k = guest(true);
        let (dma, dma32) = (pageset(&k, ZONE_DMA), pageset(&k, ZONE_DMA32));
        assert_eq!((dma.batch, dma.high_min, dma.high_max), (1, 80, 480));
        assert_eq!((dma32.batch, dma32.high_min, dma32.high_max), (1, 210, 1259));
        assert_eq!(k.pcp_count(), Some((0, 0)));
        k.check_invariants().unwrap();
        assert!(guest(false).pcp_count().is_none());
    }

    /// A process on one CPU writing 12,000 pages twice over in a scattered order, faster than
    /// kswapd reclaims: the most pages the lists held (DMA's, the top zone's: DMA32 or the one
    /// zone).
    fn outrun_reclaim(k: &mut Kernel) -> (u64, u64) {
        k.kswapd.mode = crate::vmscan::types::KswapdMode::OneCpu;
        let pid = k.spawn("p", false).unwrap();
        let n = 12_000u64;
        let a = k.mmap(pid, n * 4096, MapKind::Anon, false, None).unwrap();
        let mut most = (0, 0);
        for i in 0..2 * n {
            k.access(pid, 0, a + (i * 7919 % n) * 4096, true, i + 1).unwrap();
            let (d, top) = k.pcp_count().unwrap();
            most = (most.0.max(d), most.1.max(top));
        }
        most
    }

    /// The 72 MiB s390x guest's one zone (its `/proc/zoneinfo`: DMA, 11622 managed pages, low
    /// 255), of which the model holds 3000 for others, with the one zone's per-cpu lists.
    fn one_zone(pcp: bool) -> Kernel {
        let pages = 11622 + 1;
        let mut k = Kernel::new(Profile::get("6.12", Arch::S390x).unwrap(), pages * 4096, 32768 * 4096, 0).unwrap();
        k.set_guest_zone(crate::mm::guest_zone::GuestZone { held: 3000, min: 204, low: 255, high: 306 }).unwrap();
        k.set_pcp_lists(pcp).unwrap();
        k
    }

    /// Without the guest zones the one zone has its own pageset (`zone_pcp_init` gives every
    /// populated zone one; mm/page_alloc.c 6.12.107 and 6.12.117 size it alike in
    /// `zone_set_pageset_high_and_batch`): the s390x guest's DMA zone of 11622 pages gets
    /// batch 1, `high_min` its low watermark 255 and `high_max` 11622 / 8 = 1452; there is
    /// no second pageset.
    #[test]
    fn the_one_zone_has_a_pageset_sized_from_its_managed_pages_and_low_watermark() {
        let k = one_zone(true);
        let s = pageset(&k, ZONE_TOP);
        assert_eq!((s.batch, s.high_min, s.high_max), (1, 255, 1452));
        assert!(k.pcp.as_deref().unwrap().pageset[ZONE_DMA as usize].is_none());
        assert_eq!(k.pcp_count(), Some((0, 0)));
        k.check_invariants().unwrap();
        assert!(one_zone(false).pcp_count().is_none());
    }

    /// `rmqueue_pcplist` and `free_unref_page_commit` (mm/page_alloc.c 6.12.117) serve the one
    /// zone as they serve DMA32: refills in doubling batches leave `NR_FREE_PAGES`, a freed
    /// page stays on the list (not in `NR_FREE_PAGES`) and is the next one handed out.
    #[test]
    fn the_one_zones_order0_pages_pass_through_its_pcp_list() {
        let mut k = one_zone(true);
        let free0 = k.mem.nr_free();
        let mut refills = Vec::new();
        let mut last = free0;
        for _ in 0..70 {
            page(&mut k);
            if k.mem.nr_free() != last {
                refills.push(last - k.mem.nr_free());
                last = k.mem.nr_free();
            }
        }
        assert_eq!(refills, [1, 2, 4, 8, 16, 32, 32]);
        let p = page(&mut k);
        let free = k.mem.nr_free();
        k.free_kernel_page(p);
        assert_eq!(k.mem.nr_free(), free, "the freed page is on the list");
        assert_eq!(k.pcp_count(), Some((0, pageset(&k, ZONE_TOP).count)));
        k.check_invariants().unwrap();
        assert_eq!(k.alloc_kernel_page(), Some(p));
    }

    /// The one zone's `balance_pgdat` sets ZONE_RECLAIM_ACTIVE while it runs (mm/vmscan.c
    /// 6.12.117 `set_reclaim_active`/`clear_reclaim_active`), and direct reclaim's failed retry
    /// drains the lists (`__alloc_pages_direct_reclaim`): a process that outruns reclaim on one
    /// CPU gets every page, and the lists hold no more than `high_max`.
    #[test]
    fn the_one_zones_pcp_list_follows_kswapd_and_direct_reclaim() {
        let mut k = one_zone(true);
        let (d, most) = outrun_reclaim(&mut k);
        assert!(d == 0 && most <= 1452);
        assert!(k.vm_event(Vm::pgsteal_direct) > 0 && k.vm_event(Vm::pgsteal_kswapd) > 0);
        assert!(most > 4, "the lists held pages: {most}");
        assert_eq!(k.vm_event(Vm::oom_kill), 0);
        assert!(!k.pcp.as_deref().unwrap().reclaim_active.contains(&true), "cleared after kswapd's run");
        k.check_invariants().unwrap();
        k.balance_pgdat();
        k.check_invariants().unwrap();
    }

    /// `rmqueue_pcplist` → `nr_pcp_alloc` (mm/page_alloc.c 6.12.117): an empty list is refilled
    /// by `rmqueue_bulk` with `batch << alloc_factor` pages, `alloc_factor` growing by one per
    /// refill without a free between (to CONFIG_PCP_BATCH_SCALE_MAX = 5): 1, 2, 4, ..., 32,
    /// and `NR_FREE_PAGES` drops by each refill, not by each page handed out.
    #[test]
    fn an_empty_pcp_list_is_refilled_in_doubling_batches_that_leave_nr_free_pages() {
        let mut k = guest(true);
        let free0 = k.mem.nr_free();
        let mut refills = Vec::new();
        let mut last = free0;
        for _ in 0..200 {
            page(&mut k);
            if k.mem.nr_free() != last {
                refills.push(last - k.mem.nr_free());
                last = k.mem.nr_free();
            }
        }
        assert_eq!(refills[..7], [1, 2, 4, 8, 16, 32, 32]);
        assert_eq!(free0 - k.mem.nr_free(), 200 + pageset(&k, ZONE_DMA32).count);
        assert_eq!(k.vm_event(Vm::pgalloc_normal), 200);
        // a free halves alloc_factor: the next refill after it is half as big
        let p = page(&mut k);
        k.free_kernel_page(p);
        assert_eq!(pageset(&k, ZONE_DMA32).alloc_factor, 2);
        k.check_invariants().unwrap();
    }

    /// `free_unref_page_commit` (mm/page_alloc.c 6.12.117): a freed page goes on the head of
    /// its list, not back to the zone (`NR_FREE_PAGES` is unchanged), and the next allocation
    /// takes it from there (the hottest page).
    #[test]
    fn a_freed_page_goes_on_the_pcp_list_and_not_into_nr_free_pages() {
        let mut k = guest(true);
        let p = page(&mut k);
        let free = k.mem.nr_free();
        let count = pageset(&k, ZONE_DMA32).count;
        k.free_kernel_page(p);
        assert_eq!(k.mem.nr_free(), free);
        assert_eq!(pageset(&k, ZONE_DMA32).count, count + 1);
        k.check_invariants().unwrap();
        assert_eq!(k.alloc_kernel_page(), Some(p), "the head of the list, for any migratetype");
    }

    /// `nr_pcp_high` and `nr_pcp_free` (mm/page_alloc.c 6.12.117) above the high watermark: a
    /// run of frees fills the list to `high` and each free that reaches it gives `free_count`
    /// pages (at most `high - batch`) back to the zone, from the list's tail.
    #[test]
    fn frees_that_reach_high_drain_the_list_back_into_the_zone() {
        let mut k = guest(true);
        let pages: Vec<u32> = (0..600).map(|_| page(&mut k)).collect();
        k.drain_all_pages();
        pcp_mut(&mut k).zone_mut(ZONE_DMA32).high = 210;
        let before = pageset(&k, ZONE_DMA32).count;
        let free = k.mem.nr_free();
        for &p in &pages {
            k.free_kernel_page(p);
        }
        let s = pageset(&k, ZONE_DMA32);
        assert!(!k.pcp.as_deref().unwrap().below_high[ZONE_DMA32 as usize]);
        assert_eq!(s.free_count, 32, "capped at batch << CONFIG_PCP_BATCH_SCALE_MAX");
        assert_eq!(s.high, 210, "high holds the 33 pages freed in a row: it stays");
        assert!(s.count < 210 && s.count >= 210 - 32, "count {}", s.count);
        assert_eq!(k.mem.nr_free() - free, before + 600 - s.count, "the rest went back to the zone");
        k.check_invariants().unwrap();
    }

    /// ZONE_RECLAIM_ACTIVE (set by kswapd's `balance_pgdat`, mm/vmscan.c 6.12.117): `nr_pcp_high`
    /// returns `min(batch << 2, high)`, so the lists keep at most 4 pages of the guest's zones
    /// and lower `high` by the pages freed in a row, to `high_min`.
    #[test]
    fn while_kswapd_reclaims_a_zone_its_pcp_list_keeps_at_most_batch_times_four() {
        let mut k = guest(true);
        let pages: Vec<u32> = (0..300).map(|_| page(&mut k)).collect();
        k.drain_all_pages();
        pcp_mut(&mut k).zone_mut(ZONE_DMA32).high = 900;
        k.update_reclaim_active(ZONE_DMA32, true);
        for &p in &pages {
            k.free_kernel_page(p);
            assert!(pageset(&k, ZONE_DMA32).count < 4);
        }
        assert_eq!(pageset(&k, ZONE_DMA32).high, 210, "down to high_min");
        k.update_reclaim_active(ZONE_DMA32, false);
        assert!(!pcp_mut(&mut k).reclaim_active.contains(&true));
        k.check_invariants().unwrap();
    }

    /// `decay_pcp_high` from `vmstat_update` (mm/vmstat.c, mm/page_alloc.c 6.12.117) every
    /// second: `high` above `high_min` loses an eighth and the list drains to it.
    #[test]
    fn every_second_the_pcp_high_decays_by_an_eighth_and_the_list_drains_to_it() {
        let mut k = guest(true);
        let pages: Vec<u32> = (0..400).map(|_| page(&mut k)).collect();
        k.drain_all_pages();
        for &p in &pages {
            k.free_kernel_page(p);
        }
        let (high, count) = (pageset(&k, ZONE_DMA32).high, pageset(&k, ZONE_DMA32).count);
        assert!(high > 300 && count > 300, "high {high} count {count}");
        k.vmstat_update_pcp(5); // the first call only sets the timer
        k.vmstat_update_pcp(STAT_INTERVAL_NS);
        assert_eq!(pageset(&k, ZONE_DMA32).high, high, "not yet a second");
        let free = k.mem.nr_free();
        k.vmstat_update_pcp(STAT_INTERVAL_NS + 5);
        let s = pageset(&k, ZONE_DMA32);
        assert_eq!(s.high, high - (high >> 3));
        assert_eq!(s.count, s.high.min(count));
        assert_eq!(k.mem.nr_free() - free, count - s.count);
        k.check_invariants().unwrap();
    }

    /// `__alloc_pages_direct_reclaim` (mm/page_alloc.c 6.12.117): the pages direct reclaim
    /// frees stay on the per-cpu lists (no ZONE_RECLAIM_ACTIVE, and below the high watermark
    /// the lists keep what they hold up to `high_min`), so the watermark check after it fails
    /// and `drain_all_pages` gives them back; a process that outruns reclaim on one CPU still
    /// gets every page, and the lists never hold more than `high_max`.
    #[test]
    fn direct_reclaim_drains_the_pcp_lists_its_frees_filled() {
        let mut k = guest(true);
        let (d, most) = outrun_reclaim(&mut k);
        assert!(d <= 480 && most <= 1259);
        assert!(k.vm_event(Vm::pgsteal_direct) > 0, "direct reclaim ran");
        assert!(most > 4, "the lists held pages: {most}");
        assert_eq!(k.vm_event(Vm::oom_kill), 0);
        k.check_invariants().unwrap();
        k.zones().unwrap().dma.check().unwrap();
    }

    /// Switching the lists off gives their pages back to the zones (`drain_all_pages`).
    #[test]
    fn switching_the_pcp_lists_off_drains_them_into_the_zones() {
        let mut k = guest(true);
        let pages: Vec<u32> = (0..50).map(|_| page(&mut k)).collect();
        for &p in &pages {
            k.free_kernel_page(p);
        }
        let total = k.nr_free_pages() + k.pcp_count().map_or(0, |(a, b)| a + b);
        k.set_pcp_lists(false).unwrap();
        assert_eq!(k.nr_free_pages(), total);
        assert!(k.pcp_count().is_none());
        k.check_invariants().unwrap();
    }
}
