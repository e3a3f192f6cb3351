//! kswapd and explicit reclaim requests (mm/vmscan.c); direct reclaim is [`crate::vmscan`].
//!
//! kswapd is woken when an allocation finds free memory below the low watermark and reclaims
//! until free memory reaches the high watermark (`balance_pgdat`, priority 12 down to 1).
//! A lone [`Kernel`] runs a woken kswapd when the current operation finishes
//! ([`Kernel::settle`]), as if on another CPU; a multi-host run schedules it as an actor; on
//! one CPU ([`KswapdMode::OneCpu`]) it runs when the faulting process sleeps on a swap read
//! (`Kernel::io_schedule`), and the process reclaims directly when it outruns kswapd.

use crate::kernel::Kernel;
use crate::mm::vmstat::Vm;
use crate::sim::log::Ev;
use crate::vmscan::lru::LruList;
use crate::vmscan::shrink::{DEF_PRIORITY, SWAP_CLUSTER_MAX, ScanControl};
pub use crate::vmscan::types::{Kswapd, KswapdMode, MAX_RECLAIM_RETRIES};

impl Kernel {
    /// `pgdat_balanced` (mm/vmscan.c, every profile) → `zone_watermark_ok_safe` →
    /// `__zone_watermark_ok` (mm/page_alloc.c): balanced only when free memory is strictly
    /// above the high watermark (`if (free_pages <= min + z->lowmem_reserve[classzone_idx])
    /// return false;` in 4.13/4.17/4.18, `[highest_zoneidx]` in 6.12; one zone, no lowmem
    /// reserve, order 0).
    pub fn pgdat_balanced(&self) -> bool {
        match &self.zones {
            None => self.mem.nr_free() > self.mem.wmark.high,
            Some(_) => self.pgdat_balanced_idx(crate::mm::mmzone::ZONE_TOP),
        }
    }

    /// `pgdat_balanced(pgdat, 0, highest_zoneidx)` (mm/vmscan.c 6.12.117) over the zones
    /// (crate::mm::mmzone): balanced when any zone up to `highest` is above its high
    /// watermark with its boost and `lowmem_reserve[highest_zoneidx]`
    /// (`zone_watermark_ok_safe`).
    pub(crate) fn pgdat_balanced_idx(&self, highest: u8) -> bool {
        let Some(z) = self.zones.as_deref() else { return self.pgdat_balanced() };
        if z.dma.nr_free() > z.dma_mark(z.dma.wmark.high, highest) {
            return true;
        }
        highest >= crate::mm::mmzone::ZONE_DMA32 && self.mem.nr_free() > self.mem.wmark.high
    }

    /// `wakeup_kswapd(zone, gfp_flags, 0, highest_zoneidx)` (mm/vmscan.c 6.12.117) with the
    /// zones: raise `kswapd_highest_zoneidx` to `highest`; then, as [`Kernel::wakeup_kswapd`],
    /// nothing if kswapd is awake, the node hopeless, or balanced for `highest` and not
    /// boosted (`pgdat_watermark_boosted`).
    pub(crate) fn wakeup_kswapd_zone(&mut self, highest: u8) {
        let Some(z) = self.zones.as_deref_mut() else { return self.wakeup_kswapd() };
        z.kswapd_highest_zoneidx = Some(z.kswapd_highest_zoneidx.map_or(highest, |c| c.max(highest)));
        let boosted = z.dma.watermark_boost > 0;
        if self.kswapd.woken
            || self.kswapd.failures >= MAX_RECLAIM_RETRIES
            || (self.pgdat_balanced_idx(highest) && !boosted)
        {
            return;
        }
        self.kswapd.woken = true;
        self.guest_kswapd_woken();
        self.log_reclaim(Ev::KswapdWake, 0, 1, 0);
    }

    /// `wakeup_kswapd` (mm/vmscan.c 4.13..4.18, 6.12): nothing if kswapd is awake already
    /// (`!waitqueue_active`), the node is hopeless (`kswapd_failures >= MAX_RECLAIM_RETRIES`) or
    /// balanced; else wake it (`trace_mm_vmscan_wakeup_kswapd`). No watermark boost, order 0.
    pub(crate) fn wakeup_kswapd(&mut self) {
        if self.zones.is_some() {
            return self.wakeup_kswapd_zone(crate::mm::mmzone::ZONE_TOP);
        }
        if self.kswapd.woken || self.kswapd.failures >= MAX_RECLAIM_RETRIES || self.pgdat_balanced() {
            return;
        }
        self.kswapd.woken = true;
        self.guest_kswapd_woken();
        self.log_reclaim(Ev::KswapdWake, 0, 1, 0);
    }

    /// `balance_pgdat` (mm/vmscan.c 4.13..4.18, 6.12) with `kswapd_shrink_node`: PAGEOUTRUN;
    /// from DEF_PRIORITY down to 1, stop when `pgdat_balanced`, age the anon lists
    /// (`age_active_anon`; 6.12 `kswapd_age_node`), shrink the node for `max(high watermark,
    /// SWAP_CLUSTER_MAX)` pages, and raise the priority when the pass scanned less than that
    /// (`sc->nr_scanned >= sc->nr_to_reclaim` keeps it) or reclaimed nothing; a run that
    /// reclaims nothing counts a `kswapd_failures`. Not modelled: watermark boosting, 6.12's
    /// `cache_trim_mode_failed` restart (no page cache), high orders. Returns the pages
    /// reclaimed.
    pub fn balance_pgdat(&mut self) -> u64 {
        if self.zones.is_some() {
            return self.balance_pgdat_zones();
        }
        let mut sc = ScanControl::new(0, true);
        self.vmstat.inc(Vm::pageoutrun);
        // set_reclaim_active: the one zone's per-cpu lists keep few pages while kswapd reclaims
        self.update_reclaim_active(crate::mm::mmzone::ZONE_TOP, true);
        loop {
            if self.pgdat_balanced() {
                break;
            }
            // kswapd_age_node: lru_gen_age_node with MGLRU (v6.12), else age_active_anon
            if self.lru_gen_enabled() {
                self.lru_gen_age_node(&mut sc);
            } else if self.swap.total() > 0 && self.inactive_is_low(false) {
                self.shrink_active_list(SWAP_CLUSTER_MAX, LruList::ActiveAnon, &mut sc);
            }
            let before = sc.nr_reclaimed;
            sc.nr_scanned = 0;
            sc.nr_to_reclaim = self.mem.wmark.high.max(SWAP_CLUSTER_MAX);
            self.shrink_node(&mut sc);
            let raise = sc.nr_scanned < sc.nr_to_reclaim;
            if raise || sc.nr_reclaimed == before {
                sc.priority -= 1;
            }
            if sc.priority < 1 {
                break;
            }
        }
        self.update_reclaim_active(crate::mm::mmzone::ZONE_TOP, false);
        if sc.nr_reclaimed == 0 && !self.pgdat_balanced() {
            self.kswapd.failures += 1;
        }
        if self.profile.scan_balance_by_cost {
            self.snapshot_refaults();
        }
        sc.nr_reclaimed
    }

    /// `balance_pgdat(pgdat, 0, highest_zoneidx)` (mm/vmscan.c 6.12.117) with the zones
    /// (crate::mm::mmzone): `highest_zoneidx` is what the wakes asked (`kswapd_highest_zoneidx`,
    /// reset); `nr_boost_reclaim` sums the boosts of the zones up to it. Each pass reclaims with
    /// `sc.reclaim_idx = highest_zoneidx` (so a wake for ZONE_DMA skips every DMA32 folio);
    /// "if (!balanced && nr_boost_reclaim) { nr_boost_reclaim = 0; goto restart; }"; while
    /// boosting, `may_swap` and `may_writepage` are off and the priority stops at
    /// DEF_PRIORITY - 2; a boost pass that reclaims nothing ends the run, and like a run that
    /// reached priority 0 counts a `kswapd_failures` when the run reclaimed nothing (a
    /// balanced node's "goto out" does not). `kswapd_shrink_node`
    /// asks for the sum over the zones up to `reclaim_idx` of `max(high_wmark_pages(zone),
    /// SWAP_CLUSTER_MAX)`. At the end the boosts taken at the start are cleared and kcompactd
    /// is woken (`wakeup_kcompactd`, crate::mm::compaction, which counts `compact_daemon_wake`).
    ///
    /// On one CPU ([`KswapdMode::OneCpu`]) a boosted run gives the CPU back to the process
    /// after each pass of the priority loop that reclaimed pages and is resumed, with its
    /// priority, `nr_boost_reclaim` and boosts, at kswapd's next turn (a swap read, or with
    /// the guest clock's tick the next tick; a boost's wake meanwhile finds kswapd runnable and
    /// changes nothing but `kswapd_highest_zoneidx`): the kernel preempts kswapd at a `cond_resched()` of `shrink_lruvec` or
    /// `shrink_folio_list` once the scheduler asks, and the boost "is left in place so that
    /// parallel allocations that are near the watermark will stall or direct reclaim until
    /// kswapd is finished" (the comment in `balance_pgdat`): the process's allocations meanwhile
    /// fail DMA's boosted watermark, wake kswapd for every zone (raising
    /// `kswapd_highest_zoneidx` for its next run) and take DMA32 down to min, then reclaim
    /// directly in LRU order. A kernel preempts it by time, the model after each productive
    /// pass.
    fn balance_pgdat_zones(&mut self) -> u64 {
        use crate::mm::mmzone::{BoostedRun, ZONE_DMA, ZONE_TOP};
        let one_cpu = self.kswapd.mode == KswapdMode::OneCpu;
        let z = self.zones.as_deref_mut().expect("zones");
        let (mut sc, highest, mut nr_boost_reclaim, dma_boost, resumed) = match z.boosted_run.take() {
            Some(r) => {
                let mut sc = ScanControl::new(0, true);
                (sc.priority, sc.nr_reclaimed) = (r.priority, r.nr_reclaimed);
                (sc, r.highest, r.nr_boost_reclaim, r.dma_boost, true)
            }
            None => {
                let highest = z.kswapd_highest_zoneidx.take().unwrap_or(ZONE_TOP);
                // DMA32's boost is not modelled (always 0)
                let dma_boost = z.dma.watermark_boost;
                (ScanControl::new(0, true), highest, dma_boost, dma_boost, false)
            }
        };
        let boosted = dma_boost > 0;
        if !resumed {
            self.vmstat.inc(Vm::pageoutrun);
        }
        // set_reclaim_active: the per-cpu lists of the zones reclaimed keep few pages
        self.update_reclaim_active(highest, true);
        let mut keep_priority = resumed;
        'restart: loop {
            if !std::mem::take(&mut keep_priority) {
                sc.priority = DEF_PRIORITY;
            }
            loop {
                let before = sc.nr_reclaimed;
                let mut raise_priority = true;
                sc.reclaim_idx = highest;
                self.zones.as_deref_mut().expect("zones").reclaim_idx = highest;
                let balanced = self.pgdat_balanced_idx(highest);
                if !balanced && nr_boost_reclaim > 0 {
                    nr_boost_reclaim = 0;
                    continue 'restart;
                }
                if nr_boost_reclaim == 0 && balanced {
                    break 'restart;
                }
                if nr_boost_reclaim > 0 && sc.priority == DEF_PRIORITY - 2 {
                    raise_priority = false;
                }
                sc.may_writepage = nr_boost_reclaim == 0;
                sc.may_swap = nr_boost_reclaim == 0;
                if self.lru_gen_enabled() {
                    self.lru_gen_age_node(&mut sc);
                } else if self.swap.total() > 0 && self.inactive_is_low(false) {
                    self.shrink_active_list(SWAP_CLUSTER_MAX, LruList::ActiveAnon, &mut sc);
                }
                if sc.priority < DEF_PRIORITY - 2 {
                    sc.may_writepage = true;
                }
                sc.nr_scanned = 0;
                let zs = self.zones.as_deref().expect("zones");
                let mut to_reclaim = (zs.dma.wmark.high + zs.dma.watermark_boost).max(SWAP_CLUSTER_MAX);
                if highest > ZONE_DMA {
                    to_reclaim += self.mem.wmark.high.max(SWAP_CLUSTER_MAX);
                }
                sc.nr_to_reclaim = to_reclaim;
                self.shrink_node(&mut sc);
                if sc.nr_scanned >= sc.nr_to_reclaim {
                    raise_priority = false;
                }
                let reclaimed = sc.nr_reclaimed - before;
                nr_boost_reclaim -= nr_boost_reclaim.min(reclaimed);
                if nr_boost_reclaim > 0 && reclaimed == 0 {
                    // "if (nr_boost_reclaim && !nr_reclaimed) break;" leaves the priority loop
                    // for "if (!sc.nr_reclaimed) pgdat->kswapd_failures++;", as its end does
                    if sc.nr_reclaimed == 0 {
                        self.kswapd.failures += 1;
                    }
                    break 'restart;
                }
                if raise_priority || reclaimed == 0 {
                    sc.priority -= 1;
                }
                if sc.priority < 1 {
                    if sc.nr_reclaimed == 0 {
                        self.kswapd.failures += 1;
                    }
                    break 'restart;
                }
                if one_cpu && boosted && reclaimed > 0 {
                    // preempted: the process runs with the boost in place until kswapd's
                    // next turn, which resumes this run
                    let z = self.zones.as_deref_mut().expect("zones");
                    z.reclaim_idx = ZONE_TOP;
                    let (priority, nr_reclaimed) = (sc.priority, sc.nr_reclaimed);
                    z.boosted_run = Some(BoostedRun { priority, nr_reclaimed, highest, nr_boost_reclaim, dma_boost });
                    return reclaimed;
                }
            }
        }
        self.update_reclaim_active(highest, false);
        let z = self.zones.as_deref_mut().expect("zones");
        z.reclaim_idx = ZONE_TOP;
        if boosted {
            z.dma.watermark_boost -= z.dma.watermark_boost.min(dma_boost);
            // "As there is now likely space, wakeup kcompact to defragment pageblocks."
            self.wakeup_kcompactd(crate::mm::mmzone::PAGEBLOCK_ORDER, highest);
        }
        if self.profile.scan_balance_by_cost {
            self.snapshot_refaults();
        }
        sc.nr_reclaimed
    }

    /// One run of a woken kswapd (`kswapd`, mm/vmscan.c 4.13..4.18, 6.12): `balance_pgdat`,
    /// then `kswapd_try_to_sleep` (`trace_mm_vmscan_kswapd_sleep`); the short nap of
    /// `prepare_kswapd_sleep` is not modelled.
    pub fn kswapd_step(&mut self) -> u64 {
        if !self.kswapd.woken {
            return 0;
        }
        // a kernel thread: lazy TLB on the process's mm (mm/tlb_flush.rs)
        self.tlb_kthread(true);
        let n = self.balance_pgdat();
        // prepare_kswapd_sleep (mm/vmscan.c v6.12): "if (pgdat_balanced(...)) {
        // clear_pgdat_congested(pgdat); return true; }"
        if self.pgdat_balanced() {
            self.kswapd.pgdat_writeback = false;
        }
        self.tlb_kthread(false);
        if self.zones.as_deref().is_some_and(|z| z.boosted_run.is_some()) {
            // a boosted run gave the CPU back (balance_pgdat_zones): kswapd stays runnable
            self.guest_kswapd_preempted();
            return n;
        }
        self.kswapd.woken = false;
        self.log_reclaim(Ev::KswapdSleep, 0, 0, 0);
        n
    }

    /// The process's first rescheduling point after an allocation woke kswapd for a boosted
    /// zone (crate::mm::mmzone), on one CPU: the woken kswapd preempts the process there (6.12
    /// EEVDF wakeup preemption: the long-sleeping kthread is eligible with the earlier
    /// deadline), as the boost's wake means to: "Wake kswapd now as the node may be balanced
    /// overall and kswapd will not wake naturally" (`try_to_steal_block`, mm/page_alloc.c
    /// 6.12.117). The x86_64 guests' kernel is built with PREEMPT_DYNAMIC in mode voluntary,
    /// which honours the wake's TIF_NEED_RESCHED at the return to user space and at each
    /// `cond_resched()`, and `might_sleep()` is one (`might_resched()`, include/linux/kernel.h
    /// 6.12.117): so the process gives the CPU up at the fault's return ([`Kernel::settle`])
    /// or, if it allocates again first, at that allocation's `might_alloc()`
    /// (`prepare_alloc_pages`, mm/page_alloc.c 6.12.117; [`Kernel::alloc_page`]), e.g. the
    /// next page of a swap readahead, whichever comes first. With the scheduler tick
    /// ([`crate::sched`]) the tick decides instead, as for any other wake.
    pub(crate) fn boost_wake_resched(&mut self) {
        if self.kswapd.mode != KswapdMode::OneCpu {
            return;
        }
        let Some(z) = self.zones.as_deref_mut() else { return };
        if !std::mem::take(&mut z.boost_wake_pending) || self.guest_sched_tick() {
            return;
        }
        if self.kswapd.woken {
            self.swap_io_complete();
            self.kswapd_step();
        }
    }

    /// Finish an operation: run kswapd if it was woken (lone-kernel mode). Between two
    /// operations of a lone kernel time passes (the model's API steps are far apart), so a
    /// queued swap device completes its writes first ([`crate::mm::page_io`]); on one CPU the
    /// process runs on without a pause and they stay queued.
    pub fn settle(&mut self) {
        self.boost_wake_resched();
        if self.kswapd.mode == KswapdMode::Settle {
            self.swap_io_complete();
            if self.kswapd.woken {
                self.kswapd_step();
            }
        }
    }

    /// `io_schedule()` of the faulting process waiting for its swap read (`folio_lock_or_retry`
    /// in `do_swap_page`, mm/memory.c v6.12, after `swapin_readahead` submitted the read). On a
    /// one-CPU machine ([`KswapdMode::OneCpu`]) the scheduler gives the CPU to a runnable
    /// kswapd, which runs `balance_pgdat` (`kswapd_try_to_sleep` → `balance_pgdat` in
    /// `kswapd`, mm/vmscan.c v6.12) before the process runs again. The scheduling assumption:
    /// the read's wait is long enough for kswapd's pass (kswapd is not preempted by the
    /// read's completion). In the other modes kswapd runs elsewhere and this does nothing.
    ///
    /// With a queued swap device ([`crate::mm::page_io`]) the writes queued before the read
    /// complete first, before kswapd runs: the read is behind them in the device's queue.
    pub(crate) fn io_schedule(&mut self) {
        self.swap_io_complete();
        if self.kswapd.mode == KswapdMode::OneCpu && self.kswapd.woken {
            self.kswapd_step();
        }
    }

    /// An explicit request to reclaim `nr_pages` (like writing to `memory.reclaim`,
    /// `memory_reclaim` in mm/memcontrol.c 6.12; 4.x has no such file and the model offers the
    /// same request there:
    /// `try_to_free_mem_cgroup_pages` in a loop that gives up after MAX_RECLAIM_RETRIES passes
    /// without progress). Each pass asks for SWAP_CLUSTER_MAX pages, and since 287d5fedb377
    /// (v6.9) for a quarter of what is left ("will converge on zero, but reclaim enforces a
    /// minimum": `.nr_to_reclaim = max(nr_pages, SWAP_CLUSTER_MAX)`), so a request can
    /// reclaim a little more than asked. Returns the pages reclaimed.
    pub fn reclaim(&mut self, nr_pages: u64) -> u64 {
        let mut total = 0;
        let mut retries = MAX_RECLAIM_RETRIES;
        while total < nr_pages && retries > 0 {
            let left = nr_pages - total;
            let batch =
                if self.profile.proactive_reclaim_quarter_batch { left / 4 } else { left.min(SWAP_CLUSTER_MAX) };
            let mut sc = ScanControl::new(batch.max(SWAP_CLUSTER_MAX), false);
            sc.priority = DEF_PRIORITY;
            sc.cgroup_reclaim = true;
            let got = self.do_try_to_free_pages(&mut sc);
            if got == 0 {
                retries -= 1;
            }
            total += got;
        }
        self.settle();
        total
    }
}

#[cfg(test)]
mod tests {
    use super::KswapdMode;
    use crate::mm::mmap::MapKind;
    use crate::mm::vmstat::Vm;
    use crate::sim::log::Ev;
    use crate::testutil::kernel;

    /// `__zone_watermark_ok` (mm/page_alloc.c, 4.13/4.17/4.18/6.12) is strict: with free pages
    /// exactly at the high watermark the node is not balanced, so `wakeup_kswapd` wakes kswapd
    /// and runs `balance_pgdat` (pageoutrun), where `>=` left it asleep.
    #[test]
    fn kswapd_reclaims_when_free_pages_equal_the_high_watermark() {
        for p in ["4.13", "4.17", "4.18", "6.12"] {
            let mut k = kernel(p);
            let pid = k.spawn("test", false).unwrap();
            let a = k.mmap(pid, 2048 * 4096, MapKind::Anon, false, None).unwrap();
            let high = k.mem.wmark.high;
            let mut i = 0;
            while k.mem.nr_free() > high {
                k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
                i += 1;
            }
            assert_eq!(k.mem.nr_free(), high, "{p}: the faults stop exactly at the high watermark");
            assert!(!k.kswapd.woken, "{p}: above low, no allocation woke kswapd");
            assert!(!k.pgdat_balanced(), "{p}: free == high is not balanced");
            k.wakeup_kswapd();
            assert!(k.kswapd.woken, "{p}");
            k.kswapd_step();
            assert_eq!(k.vmstat.get(Vm::pageoutrun), 1, "{p}: kswapd ran balance_pgdat");
            assert!(k.log.events().iter().any(|e| e.kind == Ev::KswapdSleep), "{p}");
            k.check_invariants().unwrap();
        }
    }

    /// 6.12 at free == high in the 8 MiB kernel: kswapd wakes, runs balance_pgdat and frees
    /// nothing, as 6.12 does. Every page was just faulted in (young PTE) and sits on the
    /// inactive anon list; `folio_check_references` (mm/vmscan.c, v5.9+ two-strike rule: "All
    /// mapped folios start out with page table references from the instantiating fault, so we
    /// need to look twice") keeps a folio on its first reference (`folio_set_referenced`,
    /// FOLIOREF_KEEP), and the priority loop of `balance_pgdat` scans `size >> priority` pages
    /// per list at priorities 12..1 (`get_scan_count`; nothing at 12 and 11 for 1913 pages, the
    /// root memcg being online), in all fewer than the list holds: each page is looked at at
    /// most once, none is reclaimed, `kswapd_failures` goes up. The next wake finds the pages
    /// marked referenced with their young bit cleared (FOLIOREF_RECLAIM) and frees them. 4.x
    /// activated a referenced swap-backed page at once (`if (PageSwapBacked(page)) return
    /// PAGEREF_ACTIVATE;`), aged it back and reclaimed in the same pass.
    #[test]
    fn kswapd_at_free_equal_high_frees_nothing_on_612_until_its_second_wake() {
        for (p, first_frees) in [("4.18", true), ("6.12", false)] {
            let mut k = kernel(p);
            let pid = k.spawn("test", false).unwrap();
            let a = k.mmap(pid, 2048 * 4096, MapKind::Anon, false, None).unwrap();
            let mut i = 0;
            while k.mem.nr_free() > k.mem.wmark.high {
                k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
                i += 1;
            }
            k.wakeup_kswapd();
            let first = k.kswapd_step();
            assert_eq!(first > 0, first_frees, "{p}: first balance_pgdat reclaimed {first}");
            assert_eq!(k.kswapd.failures, u32::from(!first_frees), "{p}: kswapd_failures");
            if !first_frees {
                let scanned = k.log.events().iter().filter(|e| e.kind == Ev::LruShrinkInactive).count();
                assert!(scanned > 0, "{p}: the inactive list was scanned");
                k.wakeup_kswapd();
                assert!(k.kswapd.woken, "{p}: one failure does not make the node hopeless");
                let second = k.kswapd_step();
                assert!(second > 0, "{p}: the second wake reclaims the pages the first marked");
                assert!(k.pgdat_balanced(), "{p}");
            }
            k.check_invariants().unwrap();
        }
    }

    /// One CPU ([`super::KswapdMode::OneCpu`], the oracle's `-smp 1` guests): an allocation at
    /// the low watermark wakes kswapd (`wake_all_kswapds` in `__alloc_pages_slowpath`,
    /// mm/page_alloc.c v6.12) but the process keeps the CPU, so it allocates on down to the min
    /// watermark and then reclaims directly (`__alloc_pages_direct_reclaim` →
    /// `try_to_free_pages`: ALLOCSTALL, pgscan_direct) and free memory never falls to min. The
    /// first swap read makes the process sleep (`folio_lock_or_retry` in `do_swap_page`,
    /// mm/memory.c v6.12): kswapd runs then (`balance_pgdat`: PAGEOUTRUN, pgscan_kswapd) and
    /// leaves the node balanced. The default mode runs kswapd when each access returns:
    /// no direct reclaim at all.
    #[test]
    fn on_one_cpu_the_process_reclaims_directly_until_a_swap_read_lets_kswapd_run() {
        let run = |mode: KswapdMode| {
            let mut k = kernel("6.12");
            k.set_kswapd_mode(mode);
            let pid = k.spawn("test", false).unwrap();
            let n = 3000u64; // more than the 2048 pages of memory
            let a = k.mmap(pid, n * 4096, MapKind::Anon, false, None).unwrap();
            let mut lowest = u64::MAX;
            for i in 0..n {
                k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
                lowest = lowest.min(k.mem.nr_free());
            }
            k.check_invariants().unwrap();
            (k, pid, a, lowest)
        };
        let (mut k, pid, a, lowest) = run(KswapdMode::OneCpu);
        assert!(k.vmstat.get(Vm::allocstall_normal) > 0 && k.vmstat.get(Vm::pgscan_direct) > 0);
        assert_eq!((k.vmstat.get(Vm::pageoutrun), k.vmstat.get(Vm::pgscan_kswapd)), (0, 0), "kswapd never ran");
        assert!(k.kswapd.woken, "woken at the low watermark, waiting for the CPU");
        assert!(lowest >= k.mem.wmark.min, "direct reclaim keeps free memory at min: {lowest}");
        assert!(lowest <= k.mem.wmark.min + 1, "the process allocated down to min: {lowest}");
        // the first page went to swap long ago: reading it back puts the process to sleep
        assert!(k.arch().is_swap_pte(k.pte_at(pid, a).unwrap()));
        k.access(pid, 0, a, false, 0).unwrap();
        assert_eq!(k.vmstat.get(Vm::pgmajfault), 1);
        assert_eq!(k.vmstat.get(Vm::pageoutrun), 1, "kswapd ran while the process slept");
        assert!(k.vmstat.get(Vm::pgscan_kswapd) > 0 && !k.kswapd.woken && k.pgdat_balanced());
        k.check_invariants().unwrap();
        let (k, _, _, lowest) = run(KswapdMode::Settle);
        assert_eq!(k.vmstat.get(Vm::allocstall_normal), 0, "kswapd ran after each access");
        assert!(k.vmstat.get(Vm::pgscan_kswapd) > 0 && lowest > k.mem.wmark.min);
    }
}
