//! kcompactd as the guests' `/proc/vmstat` counts it (mm/compaction.c 6.12.117): the model
//! does not compact; it counts `kcompactd_do_work`'s runs (KCOMPACTD_WAKE,
//! `compact_daemon_wake`) the way the kernel's kcompactd makes them, so that the count can be
//! compared with a guest's.
//!
//! `wakeup_kcompactd(pgdat, order, highest_zoneidx)` (called by a boosted `balance_pgdat` with
//! `pageblock_order`) records the request (`kcompactd_max_order`, the lowest
//! `kcompactd_highest_zoneidx`) and wakes kcompactd at once only when `kcompactd_node_suitable`
//! finds a zone up to `highest_zoneidx` where compaction could run
//! (`compaction_suit_allocation_order` at ALLOC_WMARK_MIN: no free block of the order yet, and
//! `__compaction_suitable`: free pages above the low watermark plus `compact_gap(order)` =
//! 2 << order and the zone's `lowmem_reserve[highest_zoneidx]`). Otherwise kcompactd, asleep
//! in `wait_event_freezable_timeout` with its HPAGE_FRAG_CHECK_INTERVAL_MSEC (500 ms) timeout
//! (proactive compaction is on: `sysctl_compaction_proactiveness` 20), finds the request at its
//! next timeout (`kcompactd_work_requested`) and runs `kcompactd_do_work` then, which clears
//! it. So a guest counts at most one wake per 500 ms of its time however often kswapd's
//! boosted runs end: `compact_daemon_wake` bounds the boosted runs from below, not from above.
//!
//! Simplified, and so documented: the timer's phase is the guest clock's start (kcompactd's
//! timeouts at multiples of 500 ms, restarted by an immediate wake); a request still pending
//! at the end of a run is counted (its wake comes at the next timeout); the fragmentation index
//! of `compaction_suitable` (`sysctl_extfrag_threshold`) is not modelled (no buddy orders);
//! the 32 s deferral after a proactive compaction without progress is not modelled. Without a
//! guest clock (crate::sched) there is no time to wait: every request is a wake, as before.

use crate::kernel::Kernel;
use crate::mm::mmzone::{KCOMPACTD_TIMEOUT_NS, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER, ZONE_DMA, ZONE_DMA32};

/// `compact_gap(order)` (mm/internal.h 6.12.117): "2UL << order".
fn compact_gap(order: u32) -> u64 {
    2u64 << order
}

impl Kernel {
    /// `kcompactd_node_suitable` (mm/compaction.c 6.12.117) for an order-`order` request up to
    /// zone `highest`: a zone where `compaction_suit_allocation_order` gives COMPACT_CONTINUE
    /// (the model's DMA32 has no pageblocks: it never has the free block already).
    fn kcompactd_node_suitable(&self, order: u32, highest: u8) -> bool {
        let Some(z) = self.zones.as_deref() else { return false };
        let dma_has_block = order <= PAGEBLOCK_ORDER
            && (0..z.dma.blocks.len())
                .any(|b| z.dma.blocks[b].len as u64 == PAGEBLOCK_NR_PAGES && z.dma.largest_free_order(b) >= order);
        let dma_reserve = if highest > ZONE_DMA { z.dma.lowmem_reserve } else { 0 };
        let dma = !(dma_has_block && z.dma.nr_free() > z.dma.wmark.min + dma_reserve)
            && z.dma.nr_free() > z.dma.wmark.low + compact_gap(order) + dma_reserve;
        let dma32 = highest >= ZONE_DMA32 && self.mem.nr_free() > self.mem.wmark.low + compact_gap(order);
        dma || dma32
    }

    /// `wakeup_kcompactd(pgdat, order, highest_zoneidx)` (mm/compaction.c 6.12.117) as the
    /// module doc describes: counts `compact_daemon_wake` when the request starts a run of
    /// `kcompactd_do_work`, at once or at kcompactd's next timeout.
    pub(crate) fn wakeup_kcompactd(&mut self, order: u32, highest: u8) {
        if order == 0 {
            return;
        }
        let clocked = self.guest_clock.is_some();
        let now = self.guest_now();
        let Some(z) = self.zones.as_deref() else { return };
        let mut kc = z.kcompactd.clone();
        if !clocked {
            self.zones.as_deref_mut().expect("zones").compact_daemon_wake += 1;
            return;
        }
        // the timeouts that fell since the last wake: the first one served a pending request
        let timeouts = now.saturating_sub(kc.last_wake) / KCOMPACTD_TIMEOUT_NS;
        if timeouts > 0 {
            kc.requested = None;
            kc.last_wake += timeouts * KCOMPACTD_TIMEOUT_NS;
        }
        let counted = kc.requested.is_none();
        let highest = kc.requested.map_or(highest, |h| h.min(highest));
        if self.kcompactd_node_suitable(order, highest) {
            // wake_up_interruptible: kcompactd runs now (one wake with a pending request)
            kc.requested = None;
            kc.last_wake = now;
        } else {
            kc.requested = Some(highest);
        }
        let z = self.zones.as_deref_mut().expect("zones");
        z.kcompactd = kc;
        if counted {
            z.compact_daemon_wake += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::mm::mmzone::ZoneSpec;
    use crate::profile::Profile;
    use crate::sched::GuestCost;

    const DMA: ZoneSpec = ZoneSpec { managed: 2304, held: 0, min: 16, low: 20, high: 24, lowmem_reserve: 20 };
    const DMA32: ZoneSpec = ZoneSpec { managed: 5887, held: 100, min: 40, low: 50, high: 60, lowmem_reserve: 0 };

    /// A zoned kernel with a guest clock of 1 ms a request, DMA's movable blocks all taken
    /// (no free pageblock) and both zones far below `compact_gap(9)` above their low marks;
    /// the DMA32 pages taken.
    fn kernel() -> (Kernel, Vec<u32>) {
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), 8192 * 4096, 16384 * 4096, 0).unwrap();
        k.set_guest_zones(DMA, DMA32, None).unwrap();
        let cost = GuestCost { request: 1e6, ..Default::default() };
        k.set_guest_clock(Some(cost), false).unwrap();
        let mut taken = Vec::new();
        while k.mem.nr_free() > 500 {
            taken.push(k.mem.take().unwrap());
        }
        for _ in 0..2000 {
            k.rmqueue_dma(crate::mm::mmzone::MigrateType::Movable).unwrap();
        }
        (k, taken)
    }

    fn advance_ms(k: &mut Kernel, ms: u64) {
        for _ in 0..ms {
            k.guest_request_done();
        }
    }

    fn wakes(k: &Kernel) -> u64 {
        k.zones().unwrap().compact_daemon_wake
    }

    /// kcompactd (mm/compaction.c 6.12.117) sleeps with a 500 ms timeout: requests of
    /// `wakeup_kcompactd` that `kcompactd_node_suitable` rejects wait for the next timeout, and
    /// however many come before it, `kcompactd_do_work` runs (KCOMPACTD_WAKE) once for them.
    #[test]
    fn kcompactd_serves_every_request_of_a_500_ms_window_with_one_wake() {
        let (mut k, _) = kernel();
        for _ in 0..10 {
            k.wakeup_kcompactd(9, ZONE_DMA);
            advance_ms(&mut k, 10);
        }
        assert_eq!(k.guest_now(), 100_000_000);
        assert_eq!(wakes(&k), 1, "ten requests in 100 ms: one run of kcompactd_do_work");
        advance_ms(&mut k, 400);
        k.wakeup_kcompactd(9, ZONE_DMA);
        assert_eq!(wakes(&k), 2, "a request after the timeout at 500 ms: the next wake");
        advance_ms(&mut k, 2000);
        assert_eq!(wakes(&k), 2, "no request, no KCOMPACTD_WAKE (no high-order kswapd wake)");
        k.wakeup_kcompactd(0, ZONE_DMA);
        assert_eq!(wakes(&k), 2, "wakeup_kcompactd returns at once for order 0");
    }

    /// `kcompactd_node_suitable` (mm/compaction.c 6.12.117): a zone up to the request's
    /// `highest_zoneidx` with free pages above its low watermark plus `compact_gap(order)` (and
    /// no free block of the order) wakes kcompactd at once, and its timeout restarts then; a
    /// request for ZONE_DMA alone does not look at DMA32.
    #[test]
    fn a_zone_with_room_to_compact_wakes_kcompactd_at_once() {
        let (mut k, taken) = kernel();
        for &p in &taken[..1100] {
            k.mem.put_frame(p, crate::mm::page::Frame::allocated(0));
            k.mem.set_refcount(p, 0);
            k.free_frame(p);
        }
        assert!(k.mem.nr_free() > DMA32.low + 1024);
        k.wakeup_kcompactd(9, ZONE_DMA);
        assert_eq!(wakes(&k), 1);
        assert!(k.zones().unwrap().kcompactd.requested.is_some(), "DMA alone: not suitable, pending");
        advance_ms(&mut k, 100);
        k.wakeup_kcompactd(9, ZONE_DMA32);
        assert_eq!(wakes(&k), 1, "kcompactd_highest_zoneidx is the lowest asked: DMA still");
        advance_ms(&mut k, 450);
        k.wakeup_kcompactd(9, ZONE_DMA32);
        assert_eq!(wakes(&k), 2, "the timeout at 500 ms served the request; DMA32 has room: at once");
        assert!(k.zones().unwrap().kcompactd.requested.is_none());
        advance_ms(&mut k, 450);
        k.wakeup_kcompactd(9, ZONE_DMA);
        assert_eq!(wakes(&k), 3, "a new request at 1000 ms");
        advance_ms(&mut k, 40);
        k.wakeup_kcompactd(9, ZONE_DMA);
        assert_eq!(wakes(&k), 3, "the timeout restarted at the wake at 550 ms: the next at 1050 ms");
        advance_ms(&mut k, 20);
        k.wakeup_kcompactd(9, ZONE_DMA);
        assert_eq!(wakes(&k), 4);
    }
}
