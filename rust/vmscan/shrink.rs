//! The shrinkers of mm/vmscan.c: `shrink_node` → `shrink_lruvec` (get_scan_count and the
//! SWAP_CLUSTER_MAX batches) → `shrink_active_list` / `shrink_inactive_list` →
//! `shrink_folio_list` (4.x: `shrink_page_list`), with `folio_check_references`, `add_to_swap`,
//! `try_to_unmap`, `pageout` and `__remove_mapping`.
//!
//! Simplifications, written down where they are made:
//! - `get_scan_count` follows the v4.19 formula on every profile (swappiness 60,
//!   `recent_scanned` / `recent_rotated`); v5.9+ balances by reclaim cost instead, to the same
//!   effect for the anon-only memory the model has.
//! - Swap writeback completes as the swap device's [`SwapIo`](crate::mm::page_io::SwapIo) says:
//!   synchronously (the default: no page is ever under writeback in reclaim) or queued
//!   (virtio-blk: pages under writeback are activated, PG_reclaim rotates them at completion,
//!   kswapd throttles on PGDAT_WRITEBACK). Anon pages count in neither `nr_dirty` nor
//!   `nr_congested` (`folio_check_dirty_writeback`), so the congestion throttles never fire;
//!   dirty file pages do not exist (shmem pages are swap-backed).
//! - No memcgs, one node, one zone; no slab shrinkers.

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vm;
use crate::mm::vmstat::Vm;
use crate::rmap::unmap::TtuFlags;
use crate::sim::log::Ev;
use crate::vmscan::lru::LruList;

/// `SWAP_CLUSTER_MAX`.
pub const SWAP_CLUSTER_MAX: u64 = 32;
/// `DEF_PRIORITY`.
pub const DEF_PRIORITY: i32 = 12;
/// `vm_swappiness` default.
pub const SWAPPINESS: u64 = 60;

/// `struct scan_control`.
#[derive(Clone, Debug)]
pub struct ScanControl {
    pub nr_to_reclaim: u64,
    pub priority: i32,
    pub may_writepage: bool,
    pub may_unmap: bool,
    pub may_swap: bool,
    /// `current_is_kswapd()`.
    pub kswapd: bool,
    /// `cgroup_reclaim(sc)` (4.x `!global_reclaim(sc)`): `sc->target_mem_cgroup` is set, as for
    /// the `memory.reclaim`-like [`Kernel::reclaim`]. Such reclaim is not counted in the global
    /// PGSCAN_KSWAPD/DIRECT and PGSTEAL_KSWAPD/DIRECT events and never scans proportionally.
    pub cgroup_reclaim: bool,
    pub nr_scanned: u64,
    pub nr_reclaimed: u64,
    /// `sc->may_deactivate` (v5.8+): [anon, file] active lists may be deactivated.
    pub may_deactivate: [bool; 2],
    /// `sc->force_deactivate`: deactivate regardless (do_try_to_free_pages's retry).
    pub force_deactivate: bool,
    /// `sc->skipped_deactivate`: an active list was left alone for `may_deactivate`.
    pub skipped_deactivate: bool,
    /// `sc->file_is_tiny`: "If the system is almost out of file pages, force-scan anon."
    pub file_is_tiny: bool,
    /// `sc->cache_trim_mode`: "If there is enough inactive page cache, we do not reclaim
    /// anything from the anonymous working right now."
    pub cache_trim_mode: bool,
    /// `sc->nr.writeback`, `sc->nr.immediate` and `sc->nr.taken` of the current `shrink_node`
    /// (zeroed at its start: "memset(&sc->nr, 0, sizeof(sc->nr));").
    pub nr: ScanNr,
    /// `sc->reclaim_idx`: the highest zone reclaim may take pages from (the zones of
    /// crate::mm::mmzone; without them every page is in the one zone).
    pub reclaim_idx: u8,
}

/// `sc->nr`: what the `shrink_inactive_list` calls of one `shrink_node` found (v6.12; the
/// dirty / congested counts are always 0 for anon pages and not kept).
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanNr {
    pub writeback: u64,
    pub immediate: u64,
    pub taken: u64,
}

impl ScanControl {
    pub fn new(nr_to_reclaim: u64, kswapd: bool) -> ScanControl {
        ScanControl {
            nr_to_reclaim,
            priority: DEF_PRIORITY,
            may_writepage: true,
            may_unmap: true,
            may_swap: true,
            kswapd,
            cgroup_reclaim: false,
            nr_scanned: 0,
            nr_reclaimed: 0,
            may_deactivate: [false; 2],
            force_deactivate: false,
            skipped_deactivate: false,
            file_is_tiny: false,
            cache_trim_mode: false,
            nr: ScanNr::default(),
            reclaim_idx: crate::mm::mmzone::ZONE_TOP,
        }
    }
}

/// `enum page_references` / `enum folio_references`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum References {
    Reclaim,
    ReclaimClean,
    Keep,
    Activate,
}

/// `struct reclaim_stat` of one shrink_folio_list call.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReclaimStat {
    pub nr_activate: [u64; 2],
    pub nr_ref_keep: u64,
    pub nr_unmap_fail: u64,
    pub nr_lazyfree_fail: u64,
    pub nr_pageout: u64,
    /// Pages under writeback met for the first time (case 2 of `shrink_folio_list`).
    pub nr_writeback: u64,
    /// Pages under writeback met again by kswapd on a PGDAT_WRITEBACK node (case 1).
    pub nr_immediate: u64,
}

pub use crate::vmscan::types::RecentStat;

fn int_sqrt(x: u64) -> u64 {
    (x as f64).sqrt() as u64
}

impl Kernel {
    /// `inactive_list_is_low` (mm/vmscan.c 4.13..4.18) / `inactive_is_low` (6.12): `inactive *
    /// ratio < active`, with
    /// `ratio = int_sqrt(10 * gb)` (1 below 1 GiB). Without swap, anon deactivation is
    /// pointless (4.x). 6.12 reads both sizes through `lruvec_page_state`
    /// ([`Kernel::lruvec_page_state_lru`]: as last flushed with `memcg_stats="rstat-6.12-lru"`).
    pub(crate) fn inactive_is_low(&self, file: bool) -> bool {
        if !file && self.swap.total() == 0 {
            return false;
        }
        let (inl, acl) = if file {
            (LruList::InactiveFile, LruList::ActiveFile)
        } else {
            (LruList::InactiveAnon, LruList::ActiveAnon)
        };
        let inactive = self.lruvec_page_state_lru(inl);
        let active = self.lruvec_page_state_lru(acl);
        let gb = (inactive + active) >> (30 - 12);
        let ratio = if gb > 0 { int_sqrt(10 * gb) } else { 1 };
        inactive * ratio < active
    }

    /// `prepare_scan_control` (mm/vmscan.c v6.12, [`Profile::scan_balance_by_cost`]): whether
    /// each active list may be deactivated ("When refaults are being observed, it means a new
    /// workingset is being established. Deactivate to get rid of any stale active pages
    /// quickly."), cache trim mode and "file is tiny", decided for the node before its lists
    /// are shrunk. The refault counts are `lruvec_page_state`'s, flushed ones with
    /// [`MemcgStats::Rstat612`] after `mem_cgroup_flush_stats_ratelimited`.
    ///
    /// [`Profile::scan_balance_by_cost`]: crate::profile::Profile::scan_balance_by_cost
    /// [`MemcgStats::Rstat612`]: crate::mm::memcontrol::MemcgStats::Rstat612
    pub(crate) fn prepare_scan_control(&mut self, sc: &mut ScanControl) {
        self.mem_cgroup_flush_stats_ratelimited();
        if !sc.force_deactivate {
            let refaults = self.lruvec_workingset_activate();
            for file in [0, 1] {
                sc.may_deactivate[file] =
                    refaults[file] != self.lru_recent.refaults[file] || self.inactive_is_low(file == 1);
            }
        } else {
            sc.may_deactivate = [true; 2];
        }
        // "file = lruvec_page_state(target_lruvec, NR_INACTIVE_FILE);" (v6.12.117)
        sc.cache_trim_mode =
            self.lruvec_page_state_lru(LruList::InactiveFile) >> sc.priority > 0 && !sc.may_deactivate[1];
        // "if (!cgroup_reclaim(sc)) { … sc->file_is_tiny = …" (cgroup reclaim leaves it clear),
        // from `node_page_state`: the live sizes
        if !sc.cgroup_reclaim {
            let file = self.lru.size(LruList::InactiveFile) + self.lru.size(LruList::ActiveFile);
            let anon = self.lru.size(LruList::InactiveAnon);
            sc.file_is_tiny =
                file + self.mem.nr_free() <= self.mem.wmark.high && !sc.may_deactivate[0] && anon >> sc.priority > 0;
        }
    }

    /// `snapshot_refaults` (mm/vmscan.c v6.12): the WORKINGSET_ACTIVATE counts at the end of a
    /// reclaim, against which the next one tells new refaults.
    pub(crate) fn snapshot_refaults(&mut self) {
        self.lru_recent.refaults = self.lruvec_workingset_activate();
    }

    /// `lru_note_cost` (mm/swap.c v6.12): the cost of reclaiming from one type ("cost = nr_io *
    /// SWAP_CLUSTER_MAX + nr_rotated"), halved for both types once they exceed a quarter of
    /// the LRU pages ("Decay previous events").
    pub(crate) fn lru_note_cost(&mut self, file: bool, nr_io: u64, nr_rotated: u64) {
        let cost = &mut self.lru_recent.cost;
        cost[file as usize] += nr_io * SWAP_CLUSTER_MAX + nr_rotated;
        let lrusize: u64 = [LruList::InactiveAnon, LruList::ActiveAnon, LruList::InactiveFile, LruList::ActiveFile]
            .iter()
            .map(|l| self.lru.size(*l))
            .sum();
        let cost = &mut self.lru_recent.cost;
        if cost[0] + cost[1] > lrusize / 4 {
            cost[0] /= 2;
            cost[1] /= 2;
        }
    }

    /// `get_scan_count`: pages to scan on each evictable list at this priority. v5.8+
    /// (`scan_balance_by_cost`, mm/vmscan.c v6.12): no swap → file only; priority 0 → equal;
    /// `file_is_tiny` → anon only; `cache_trim_mode` → file only; else by reclaim cost: "ap =
    /// swappiness * (total_cost + 1); ap /= anon_cost + 1; fp = (MAX_SWAPPINESS - swappiness) *
    /// (total_cost + 1); fp /= file_cost + 1;" with each cost counted twice in the total.
    fn get_scan_count(&mut self, sc: &ScanControl) -> [u64; 4] {
        if !self.profile.scan_balance_by_cost {
            return self.get_scan_count_v4(sc);
        }
        let lists = [LruList::InactiveAnon, LruList::ActiveAnon, LruList::InactiveFile, LruList::ActiveFile];
        // can_reclaim_anon_pages: get_nr_swap_pages() > 0
        let (fraction, denominator, only) = if !sc.may_swap || self.swap.inuse() >= self.swap.total() {
            ([0, 1], 1, Some(true))
        } else if sc.priority == 0 {
            ([1, 1], 1, None)
        } else if sc.file_is_tiny {
            ([1, 0], 1, Some(false))
        } else if sc.cache_trim_mode {
            ([0, 1], 1, Some(true))
        } else {
            let [a, f] = self.lru_recent.cost;
            let (anon_cost, file_cost) = (a + f + a, a + f + f);
            let total = anon_cost + file_cost;
            let ap = SWAPPINESS * (total + 1) / (anon_cost + 1);
            let fp = (200 - SWAPPINESS) * (total + 1) / (file_cost + 1);
            ([ap, fp], ap + fp, None)
        };
        let mut nr = [0u64; 4];
        for (i, l) in lists.iter().enumerate() {
            let file = l.is_file() as usize;
            let scan = self.lruvec_lru_size(*l, sc.reclaim_idx) >> sc.priority;
            nr[i] = match only {
                Some(f) => {
                    if (f as usize) == file {
                        scan
                    } else {
                        0
                    }
                }
                None => scan * fraction[file] / denominator.max(1),
            };
        }
        nr
    }

    /// `lruvec_lru_size(lruvec, lru, zone_idx)` (mm/vmscan.c 6.12): the pages of list `l` in
    /// the zones up to `reclaim_idx` (with the zones of crate::mm::mmzone; else the list).
    fn lruvec_lru_size(&self, l: LruList, reclaim_idx: u8) -> u64 {
        match self.zones() {
            Some(z) if reclaim_idx < crate::mm::mmzone::ZONE_TOP => {
                self.lru.pages(&self.mem.frames, l).iter().filter(|p| z.dma.contains(**p)).count() as u64
            }
            _ => self.lru.size(l),
        }
    }

    /// `get_scan_count` of v4.13..v4.19: anon against file by `recent_scanned` /
    /// `recent_rotated` (swappiness 60).
    fn get_scan_count_v4(&mut self, sc: &ScanControl) -> [u64; 4] {
        #[derive(PartialEq)]
        enum Balance {
            Equal,
            Fract,
            Anon,
            File,
        }
        let size = |k: &Kernel, l: LruList| k.lru.size(l);
        let balance = if !sc.may_swap || self.swap.inuse() >= self.swap.total() {
            Balance::File
        } else if sc.priority == 0 {
            Balance::Equal
        } else {
            let free = self.mem.nr_free();
            let file = size(self, LruList::ActiveFile) + size(self, LruList::InactiveFile);
            // "if (global_reclaim(sc)) { … if (unlikely(pgdatfile + pgdatfree <= total_high_wmark))"
            if !sc.cgroup_reclaim
                && file + free <= self.mem.wmark.high
                && !self.inactive_is_low(false)
                && size(self, LruList::InactiveAnon) >> sc.priority > 0
            {
                Balance::Anon
            } else if !self.inactive_is_low(true) && size(self, LruList::InactiveFile) >> sc.priority > 0 {
                Balance::File
            } else {
                Balance::Fract
            }
        };
        let mut fraction = [1u64, 1];
        let mut denominator = 1u64;
        if balance == Balance::Fract {
            let anon = size(self, LruList::ActiveAnon) + size(self, LruList::InactiveAnon);
            let file = size(self, LruList::ActiveFile) + size(self, LruList::InactiveFile);
            let rs = &mut self.lru_recent;
            if rs.scanned[0] > anon / 4 {
                rs.scanned[0] /= 2;
                rs.rotated[0] /= 2;
            }
            if rs.scanned[1] > file / 4 {
                rs.scanned[1] /= 2;
                rs.rotated[1] /= 2;
            }
            let ap = SWAPPINESS * (rs.scanned[0] + 1) / (rs.rotated[0] + 1);
            let fp = (200 - SWAPPINESS) * (rs.scanned[1] + 1) / (rs.rotated[1] + 1);
            fraction = [ap, fp];
            denominator = ap + fp + 1;
        }
        let lists = [LruList::InactiveAnon, LruList::ActiveAnon, LruList::InactiveFile, LruList::ActiveFile];
        let mut nr = [0u64; 4];
        for (i, l) in lists.iter().enumerate() {
            let file = l.is_file();
            let sz = size(self, *l);
            let mut scan = sz >> sc.priority;
            nr[i] = match balance {
                Balance::Equal => scan,
                Balance::Fract => {
                    scan = scan * fraction[file as usize] / denominator;
                    scan
                }
                Balance::File => {
                    if file {
                        scan
                    } else {
                        0
                    }
                }
                Balance::Anon => {
                    if file {
                        0
                    } else {
                        scan
                    }
                }
            };
        }
        nr
    }

    /// `shrink_node` → `shrink_lruvec` (mm/vmscan.c 6.12; `shrink_node_memcg` in 4.13..4.18):
    /// scan the lists in SWAP_CLUSTER_MAX batches until their `get_scan_count` targets are met;
    /// once enough was reclaimed, stop scanning the type with less left and cut the other to
    /// the share of its target the first had left ("scan the other type proportionally"),
    /// unless this is global direct reclaim at DEF_PRIORITY (`proportional_reclaim` in 6.12,
    /// `scan_adjusted` in 4.x: "the caller does not want to reclaim more than asked, but
    /// kswapd/memcg do") which scans its whole targets. Then rebalance the anon active list
    /// (`can_age_anon_pages && inactive_is_low(LRU_INACTIVE_ANON)`). Progress makes the node
    /// hopeful again: `kswapd_failures` is reset ("if (reclaimable) pgdat->kswapd_failures =
    /// 0;"), whoever reclaimed.
    pub(crate) fn shrink_node(&mut self, sc: &mut ScanControl) {
        let start = sc.nr_reclaimed;
        if self.lru_gen_enabled() {
            // v6.12: `if (lru_gen_enabled() && root_reclaim(sc)) { lru_gen_shrink_node(..) }`,
            // which ends "if (sc->nr_reclaimed > reclaimed) pgdat->kswapd_failures = 0;"
            self.lru_gen_shrink_node(sc);
            if sc.nr_reclaimed > start {
                self.kswapd.failures = 0;
            }
            return;
        }
        sc.nr = ScanNr::default();
        if self.profile.scan_balance_by_cost {
            self.prepare_scan_control(sc);
        }
        let mut nr = self.get_scan_count(sc);
        let targets = nr;
        let lists = [LruList::InactiveAnon, LruList::ActiveAnon, LruList::InactiveFile, LruList::ActiveFile];
        let proportional = !sc.cgroup_reclaim && !sc.kswapd && sc.priority == DEF_PRIORITY;
        while nr[0] > 0 || nr[2] > 0 || nr[3] > 0 {
            for (i, l) in lists.iter().enumerate() {
                if nr[i] > 0 {
                    let n = nr[i].min(SWAP_CLUSTER_MAX);
                    nr[i] -= n;
                    self.shrink_list(*l, n, sc);
                }
            }
            if sc.nr_reclaimed - start < sc.nr_to_reclaim || proportional {
                continue;
            }
            let (nr_anon, nr_file) = (nr[0] + nr[1], nr[2] + nr[3]);
            if nr_anon == 0 || nr_file == 0 {
                break;
            }
            // the type with less left stops; the other scans what the first had left of its
            // target, in proportion, minus what it already scanned
            let (stop, other, percentage) = if nr_file > nr_anon {
                (0, 2, nr_anon * 100 / (targets[0] + targets[1] + 1))
            } else {
                (2, 0, nr_file * 100 / (targets[2] + targets[3] + 1))
            };
            nr[stop] = 0;
            nr[stop + 1] = 0;
            for i in [other, other + 1] {
                let scanned = targets[i] - nr[i];
                nr[i] = targets[i] * (100 - percentage) / 100;
                nr[i] -= nr[i].min(scanned);
            }
        }
        if self.inactive_is_low(false) {
            self.shrink_active_list(SWAP_CLUSTER_MAX, LruList::ActiveAnon, sc);
        }
        self.shrink_node_writeback(sc);
        // shrink_node (4.x and 6.12): "if (reclaimable) pgdat->kswapd_failures = 0;", whoever
        // reclaims (kswapd, direct or cgroup reclaim)
        if sc.nr_reclaimed > start {
            self.kswapd.failures = 0;
        }
    }

    /// The writeback tail of `shrink_node` (mm/vmscan.c v6.12; 4.14..4.19 the same with
    /// `wait_iff_congested` / `congestion_wait` in place of `reclaim_throttle`): kswapd flags
    /// the node PGDAT_WRITEBACK when every page it took was under writeback ("if
    /// (sc->nr.writeback && sc->nr.writeback == sc->nr.taken) set_bit(PGDAT_WRITEBACK, ...)"),
    /// and stalls when it met pages marked for immediate reclaim still under writeback ("if
    /// (sc->nr.immediate) reclaim_throttle(pgdat, VMSCAN_THROTTLE_WRITEBACK);"): the device
    /// completes its queue while kswapd sleeps ([`crate::mm::page_io`]).
    pub(crate) fn shrink_node_writeback(&mut self, sc: &ScanControl) {
        if !sc.kswapd {
            return;
        }
        if sc.nr.writeback > 0 && sc.nr.writeback == sc.nr.taken {
            self.kswapd.pgdat_writeback = true;
        }
        if sc.nr.immediate > 0 {
            self.reclaim_throttle_writeback();
        }
    }

    /// `reclaim_throttle` (mm/vmscan.c v6.12) for a reason that waits on writeback: the task
    /// sleeps (up to HZ/10 for VMSCAN_THROTTLE_WRITEBACK) and the swap device completes its
    /// queue meanwhile.
    pub(crate) fn reclaim_throttle_writeback(&mut self) {
        self.swap_io_complete();
    }

    /// `reclaim_throttle(pgdat, VMSCAN_THROTTLE_NOPROGRESS)` (mm/vmscan.c 6.12.117; 6.12.107
    /// the same), which `consider_reclaim_throttle` calls for a direct reclaim still without a
    /// page at priority 1: unless [`Kernel::skip_throttle_noprogress`], when it is only a
    /// `cond_resched()` (nothing here: the model takes a reschedule at the end of the access),
    /// the task sleeps `schedule_timeout(1)`, to the next jiffy (`timeout = 1`; the guest
    /// clock's next tick, [`Kernel::guest_sleep_to_next_tick`]), and the swap device completes
    /// its queue meanwhile. No task reclaims in the model while it sleeps, so nothing wakes it
    /// early (`consider_reclaim_throttle`'s `wake_up` of the NOPROGRESS waiters).
    pub(crate) fn reclaim_throttle_noprogress(&mut self) {
        if self.skip_throttle_noprogress() {
            return;
        }
        self.swap_io_complete();
        self.guest_sleep_to_next_tick();
    }

    /// `skip_throttle_noprogress` (mm/vmscan.c 6.12.117; 6.12.107 the same): no NOPROGRESS
    /// sleep when kswapd has given up (`kswapd_failures >= MAX_RECLAIM_RETRIES`, "the system is
    /// likely near OOM"), nor unless the zones' write-pending pages (`NR_ZONE_WRITE_PENDING`:
    /// the model's pages under swap writeback; its anon pages are never dirty-accounted) are
    /// more than half their reclaimable ones ("if (2 * write_pending <= reclaimable) return
    /// true;"). Reclaimable is `zone_reclaimable_pages` summed: the file lists, the anon lists
    /// while swap has a free slot (`can_reclaim_anon_pages`, no demotion), and the free pages
    /// when there are none of those (the kernel falls back zone by zone; the model for the
    /// node, the zones' lists not being counted apart).
    pub(crate) fn skip_throttle_noprogress(&self) -> bool {
        if self.kswapd.failures >= crate::vmscan::types::MAX_RECLAIM_RETRIES {
            return true;
        }
        let mut reclaimable = self.lru.size(LruList::InactiveFile) + self.lru.size(LruList::ActiveFile);
        if self.swap.inuse() < self.swap.total() {
            reclaimable += self.lru.size(LruList::InactiveAnon) + self.lru.size(LruList::ActiveAnon);
        }
        if reclaimable == 0 {
            reclaimable = self.nr_free_pages();
        }
        2 * self.nr_writeback() as u64 <= reclaimable
    }

    /// `shrink_list` (mm/vmscan.c 4.13..4.18, 6.12): an active list is only shrunk when its inactive list is low (4.x) or
    /// `sc->may_deactivate` allows it (v5.8+, [`Kernel::prepare_scan_control`]).
    fn shrink_list(&mut self, l: LruList, n: u64, sc: &mut ScanControl) {
        if l.is_active() {
            let may = if self.profile.scan_balance_by_cost {
                sc.may_deactivate[l.is_file() as usize]
            } else {
                self.inactive_is_low(l.is_file())
            };
            if may {
                self.shrink_active_list(n, l, sc);
            } else {
                sc.skipped_deactivate = true;
            }
        } else {
            self.shrink_inactive_list(n, l, sc);
        }
    }

    /// `isolate_lru_pages` (mm/vmscan.c 4.13..4.18) / `isolate_lru_folios` (6.12): take up to `n` pages from the tail of `l`,
    /// each with a reference (PG_isolated marks them off any list).
    ///
    /// With the zones (crate::mm::mmzone) a folio above `reclaim_idx` is passed over: counted
    /// scanned (`total_scan`) and PGSCAN_SKIP, not in `n`, and spliced back to the head of
    /// the list at the end ("list_splice(&folios_skipped, src)"). Returns the pages taken and
    /// the pages skipped.
    fn isolate_lru_pages(&mut self, n: u64, l: LruList, reclaim_idx: u8) -> (Vec<u32>, u64) {
        let mut out = Vec::with_capacity(n as usize);
        if self.zones.is_some() && reclaim_idx < crate::mm::mmzone::ZONE_TOP {
            let mut skipped = Vec::new();
            while (out.len() as u64) < n {
                let Some(pfn) = self.lru.tail(l) else { break };
                self.lru.del(&mut self.mem.frames, pfn);
                if self.page_zonenum(pfn) > reclaim_idx {
                    skipped.push(pfn);
                    continue;
                }
                self.mem.frames[pfn as usize].set(pg::PG_ISOLATED);
                self.mem.inc_refcount(pfn);
                out.push(pfn);
            }
            // folios_skipped was built by list_move (each at its head) and is spliced after
            // src's head: the last one skipped ends at the head, the first behind the others
            for &pfn in skipped.iter() {
                self.lru.add(&mut self.mem.frames, pfn);
            }
            let nr = skipped.len() as u64;
            self.zones.as_deref_mut().expect("zones").pgskip_dma32 += nr;
            self.lru.start_ahead(l);
            return (out, nr);
        }
        for _ in 0..n {
            let Some(pfn) = self.lru.tail(l) else { break };
            self.lru.del(&mut self.mem.frames, pfn);
            self.mem.frames[pfn as usize].set(pg::PG_ISOLATED);
            self.mem.inc_refcount(pfn);
            out.push(pfn);
        }
        // the batch is isolated: its pages' PTEs, which the rmap walks of the caller read one
        // page after the other, can load in parallel now (a cache hint, no state)
        for &pfn in &out {
            self.prefetch_rmap(pfn);
        }
        // and the pages the next isolation from `l` takes, one a page of this batch
        self.lru.start_ahead(l);
        (out, 0)
    }

    /// `putback_lru_page` (mm/vmscan.c 4.13..4.18) / `folio_putback_lru` (6.12: `folio_add_lru`
    /// then `folio_put`) for an isolated page: back on the list its flags select, dropping
    /// the isolation reference (the last reference frees it).
    pub(crate) fn putback_lru_page(&mut self, pfn: u32) {
        self.mem.frames[pfn as usize].clear(pg::PG_ISOLATED);
        if self.mem.refcount(pfn) == 1 {
            // put_page_testzero: the page has no user left
            self.mem.set_refcount(pfn, 0);
            let f = &mut self.mem.frames[pfn as usize];
            f.clear(pg::PG_ACTIVE);
            self.free_frame(pfn);
            self.vmstat.inc(Vm::pgfree);
            return;
        }
        self.lru_cache_add(pfn);
        self.put_page(pfn);
    }

    /// `move_folios_to_lru` (mm/vmscan.c v6.12) for one isolated page: back on its list, and an
    /// active page that stays on the LRU ages the workingset clock ("if
    /// (folio_test_active(folio)) workingset_age_nonresident(lruvec, nr_pages);", with anon
    /// workingset detection, v5.9: the clock is read only there).
    fn move_folio_to_lru(&mut self, pfn: u32) {
        let f = &self.mem.frames[pfn as usize];
        let ages = f.test(pg::PG_ACTIVE) && !f.test(pg::PG_MLOCKED) && self.mem.refcount(pfn) > 1;
        self.putback_lru_page(pfn);
        if ages && self.profile.workingset_anon {
            self.workingset_age();
        }
    }

    /// `shrink_active_list` (mm/vmscan.c 4.13..4.18, 6.12): isolate up to `n` pages from the
    /// tail of an active list (PGREFILL) and deactivate them: PG_active cleared (6.12 also sets
    /// PG_workingset, "folio_set_workingset(folio)", v4.20+), back on the inactive list
    /// (PGDEACTIVATE). A referenced page mapped executable on a file list keeps its place
    /// ("give them one more trip around the active list"); referenced anon pages are
    /// deactivated too. The rotation statistic differs: 4.x counts every referenced page
    /// ("if (page_referenced(…)) { nr_rotated += hpage_nr_pages(page);" then
    /// `reclaim_stat->recent_rotated[file] += nr_rotated`), 6.12 only the file pages kept
    /// active, as reclaim cost ("if (nr_rotated) lru_note_cost(lruvec, file, 0, nr_rotated);").
    /// A page found unevictable (6.12: mlocked by `folio_referenced_one`) goes to the
    /// unevictable list through the putback. Not modelled: `buffer_heads_over_limit`.
    pub(crate) fn shrink_active_list(&mut self, n: u64, l: LruList, sc: &mut ScanControl) {
        let file = l.is_file() as usize;
        let (taken, skipped) = self.isolate_lru_pages(n, l, sc.reclaim_idx);
        self.vmstat.add(Vm::pgrefill, taken.len() as u64 + skipped);
        self.lru_recent.scanned[file] += taken.len() as u64;
        let (mut rotated, mut deactivated, mut referenced) = (0u64, 0u64, 0u64);
        let mut kept_active = 0u64;
        for &pfn in &taken {
            self.lru.prefetch_ahead(&self.mem.frames);
            let r = self.folio_referenced(pfn);
            if r.referenced > 0 {
                referenced += 1;
                rotated += 1;
                if r.vm_flags & vm::VM_EXEC != 0 && l.is_file() {
                    kept_active += 1;
                    self.move_folio_to_lru(pfn);
                    continue;
                }
            }
            let f = &mut self.mem.frames[pfn as usize];
            f.clear(pg::PG_ACTIVE);
            if self.profile.workingset_anon {
                f.set(pg::PG_WORKINGSET);
            }
            if !f.test(pg::PG_MLOCKED) {
                deactivated += 1;
            }
            self.putback_lru_page(pfn);
        }
        if self.profile.scan_balance_by_cost {
            if kept_active > 0 {
                self.lru_note_cost(l.is_file(), 0, kept_active);
            }
        } else {
            self.lru_recent.rotated[file] += rotated;
        }
        self.vmstat.add(Vm::pgdeactivate, deactivated);
        let _ = sc;
        self.log_reclaim(Ev::LruShrinkActive, taken.len() as u64, deactivated, referenced);
    }

    /// `shrink_inactive_list` (mm/vmscan.c 4.13..4.18, 6.12): isolate a batch from the tail, run `shrink_folio_list`, put the
    /// survivors back (activated ones on the active list).
    pub(crate) fn shrink_inactive_list(&mut self, n: u64, l: LruList, sc: &mut ScanControl) -> u64 {
        let file = l.is_file() as usize;
        let (taken, skipped) = self.isolate_lru_pages(n, l, sc.reclaim_idx);
        if skipped > 0 && !sc.cgroup_reclaim {
            // "*nr_scanned = total_scan": the skipped folios count as scanned
            self.vmstat.add(if sc.kswapd { Vm::pgscan_kswapd } else { Vm::pgscan_direct }, skipped);
            self.vmstat.add(if file == 1 { Vm::pgscan_file } else { Vm::pgscan_anon }, skipped);
        }
        if taken.is_empty() {
            return 0;
        }
        let nr_taken = taken.len() as u64;
        self.lru_recent.scanned[file] += nr_taken;
        // "if (!cgroup_reclaim(sc)) __count_vm_events(item, nr_scanned);" (4.x: global_reclaim)
        if !sc.cgroup_reclaim {
            self.vmstat.add(if sc.kswapd { Vm::pgscan_kswapd } else { Vm::pgscan_direct }, nr_taken);
        }
        self.vmstat.add(if file == 1 { Vm::pgscan_file } else { Vm::pgscan_anon }, nr_taken);
        let (reclaimed, survivors, stat) = self.shrink_folio_list(taken, sc, false);
        if !sc.cgroup_reclaim {
            self.vmstat.add(if sc.kswapd { Vm::pgsteal_kswapd } else { Vm::pgsteal_direct }, reclaimed);
        }
        self.vmstat.add(if file == 1 { Vm::pgsteal_file } else { Vm::pgsteal_anon }, reclaimed);
        self.lru_recent.rotated[file] += stat.nr_activate[file];
        sc.nr.writeback += stat.nr_writeback;
        sc.nr.immediate += stat.nr_immediate;
        sc.nr.taken += nr_taken;
        if self.profile.scan_balance_by_cost {
            // "lru_note_cost(lruvec, file, stat.nr_pageout, nr_scanned - nr_reclaimed);"
            self.lru_note_cost(file == 1, stat.nr_pageout, nr_taken - reclaimed);
        }
        for pfn in survivors {
            self.move_folio_to_lru(pfn);
        }
        sc.nr_reclaimed += reclaimed;
        self.tick(self.cost.reclaim_scan * nr_taken);
        self.log_reclaim(Ev::LruShrinkInactive, nr_taken, reclaimed, stat.nr_unmap_fail);
        reclaimed
    }

    /// `page_check_references` (4.x) / `folio_check_references` (v5.9+).
    fn check_references(&mut self, pfn: u32) -> References {
        let r = self.folio_referenced(pfn);
        let referenced_page = self.test_clear_referenced(pfn);
        let two_strikes = self.profile.references_two_strikes;
        if r.vm_flags & vm::VM_LOCKED != 0 {
            // 4.x: "Let try_to_unmap() move the page to the unevictable list"; 6.x: activate,
            // and putback moves the now mlocked folio to the unevictable list.
            return if two_strikes { References::Activate } else { References::Reclaim };
        }
        let swapbacked = self.mem.frames[pfn as usize].test(pg::PG_SWAPBACKED);
        if r.referenced > 0 {
            if swapbacked && !two_strikes {
                return References::Activate;
            }
            self.mem.frames[pfn as usize].set(pg::PG_REFERENCED);
            if referenced_page || r.referenced > 1 {
                return References::Activate;
            }
            if r.vm_flags & vm::VM_EXEC != 0 && !swapbacked {
                return References::Activate;
            }
            return References::Keep;
        }
        if referenced_page && !swapbacked {
            return References::ReclaimClean;
        }
        References::Reclaim
    }

    /// `shrink_folio_list` (mm/vmscan.c 6.12) / `shrink_page_list` (4.13..4.18). Returns (reclaimed, pages to put back, stat).
    /// `ignore_references` is `reclaim_pages` (MADV_PAGEOUT).
    pub(crate) fn shrink_folio_list(
        &mut self,
        pages: Vec<u32>,
        sc: &mut ScanControl,
        ignore_references: bool,
    ) -> (u64, Vec<u32>, ReclaimStat) {
        let mut stat = ReclaimStat::default();
        let mut keep = Vec::new();
        let mut reclaimed = 0u64;
        for pfn in pages {
            sc.nr_scanned += 1;
            self.lru.prefetch_ahead(&self.mem.frames);
            match self.shrink_one(pfn, sc, ignore_references, &mut stat) {
                Outcome::Freed => reclaimed += 1,
                Outcome::Activate => {
                    let f = &self.mem.frames[pfn as usize];
                    if f.test(pg::PG_SWAPCACHE) && (self.swap.full_half() || f.test(pg::PG_MLOCKED)) {
                        self.try_to_free_swap(pfn);
                    }
                    let f = &mut self.mem.frames[pfn as usize];
                    if !f.test(pg::PG_MLOCKED) {
                        let file = !f.test(pg::PG_SWAPBACKED);
                        f.set(pg::PG_ACTIVE);
                        stat.nr_activate[file as usize] += 1;
                        self.vmstat.inc(Vm::pgactivate);
                    }
                    keep.push(pfn);
                }
                Outcome::Keep => keep.push(pfn),
            }
        }
        (reclaimed, keep, stat)
    }

    fn shrink_one(
        &mut self,
        pfn: u32,
        sc: &mut ScanControl,
        ignore_references: bool,
        stat: &mut ReclaimStat,
    ) -> Outcome {
        let f = self.mem.frames[pfn as usize];
        // page_evictable
        if f.test(pg::PG_MLOCKED) {
            return Outcome::Activate;
        }
        if !sc.may_unmap && f.mapped() {
            return Outcome::Keep;
        }
        // v6.12 "folio_update_gen() tried to promote this page?"
        if self.lru_gen_enabled() && !ignore_references && f.mapped() && f.test(pg::PG_REFERENCED) {
            return Outcome::Keep;
        }
        if f.test(crate::mm::page::pg::PG_WRITEBACK) {
            return self.shrink_writeback_folio(pfn, sc, stat);
        }
        let references = if ignore_references { References::Reclaim } else { self.check_references(pfn) };
        match references {
            References::Activate => return Outcome::Activate,
            References::Keep => {
                stat.nr_ref_keep += 1;
                return Outcome::Keep;
            }
            _ => {}
        }
        // Anonymous process memory has backing store? Try to allocate it some swap space here.
        let f = self.mem.frames[pfn as usize];
        if f.anon() && f.test(pg::PG_SWAPBACKED) && !f.test(pg::PG_SWAPCACHE) && !self.add_to_swap(pfn) {
            return Outcome::Activate;
        }
        if self.mem.frames[pfn as usize].mapped() {
            let was_swapbacked = self.mem.frames[pfn as usize].test(pg::PG_SWAPBACKED);
            self.try_to_unmap(pfn, TtuFlags::BATCH_FLUSH);
            if self.mem.frames[pfn as usize].mapped() {
                stat.nr_unmap_fail += 1;
                self.vmstat.inc(Vm::model_unmap_fail);
                if !was_swapbacked && self.mem.frames[pfn as usize].test(pg::PG_SWAPBACKED) {
                    stat.nr_lazyfree_fail += 1;
                }
                return Outcome::Activate;
            }
        }
        if self.mem.frames[pfn as usize].test(pg::PG_DIRTY) {
            if references == References::ReclaimClean || !sc.may_writepage {
                return Outcome::Keep;
            }
            match self.pageout(pfn) {
                PageoutResult::Keep => return Outcome::Keep,
                PageoutResult::Activate => return Outcome::Activate,
                PageoutResult::Success => {
                    stat.nr_pageout += 1;
                    // "if (folio_test_writeback(folio)) goto keep; if (folio_test_dirty(folio))
                    // goto keep;" (the write is in flight: the page goes back to the inactive
                    // list), else "A synchronous write - probably a ramdisk": free it now
                    let f = self.mem.frames[pfn as usize];
                    if f.test(pg::PG_WRITEBACK) || f.test(pg::PG_DIRTY) {
                        return Outcome::Keep;
                    }
                }
            }
        }
        let f = self.mem.frames[pfn as usize];
        if f.anon() && !f.test(pg::PG_SWAPBACKED) {
            // lazyfree: follow __remove_mapping for reference
            if self.mem.refcount(pfn) != 1 {
                return Outcome::Keep;
            }
            if !self.profile.lazyfree_refcount_check && f.test(pg::PG_DIRTY) {
                return Outcome::Keep;
            }
            self.vmstat.inc(Vm::pglazyfreed);
            self.free_isolated(pfn);
            return Outcome::Freed;
        }
        if self.remove_mapping(pfn) { Outcome::Freed } else { Outcome::Keep }
    }

    /// `shrink_folio_list` (mm/vmscan.c v6.12; 4.13..4.18 `shrink_page_list` the same) on a
    /// page under writeback, "three cases to consider". An anon page counts in neither
    /// `nr_dirty` nor `nr_congested` (`folio_check_dirty_writeback`: "Anonymous folios are not
    /// handled by flushers ... Do not stall reclaim based on them."). Case 1: kswapd meets a
    /// PG_reclaim page on a PGDAT_WRITEBACK node: `nr_immediate`, activate. Case 2, global
    /// reclaim (`writeback_throttling_sane`; the model's cgroup reclaim is cgroup v2, sane
    /// too): set PG_reclaim, `nr_writeback`, activate ("we activate the folios to get them
    /// out of the way while we continue scanning for clean folios"). Case 3 (legacy memcg
    /// waits in `folio_wait_writeback`) never happens.
    fn shrink_writeback_folio(&mut self, pfn: u32, sc: &ScanControl, stat: &mut ReclaimStat) -> Outcome {
        let f = self.mem.frames[pfn as usize];
        if sc.kswapd && f.test(pg::PG_RECLAIM) && self.kswapd.pgdat_writeback {
            stat.nr_immediate += 1;
            return Outcome::Activate;
        }
        self.mem.frames[pfn as usize].set(pg::PG_RECLAIM);
        stat.nr_writeback += 1;
        Outcome::Activate
    }

    /// Free an isolated page whose only reference is the isolation.
    fn free_isolated(&mut self, pfn: u32) {
        self.mem.set_refcount(pfn, 0);
        let f = &mut self.mem.frames[pfn as usize];
        f.flags = 0;
        self.free_frame(pfn);
        self.vmstat.inc(Vm::pgfree);
    }

    /// `add_to_swap` (mm/swap_state.c 4.13..4.18) / `add_to_swap` → `folio_alloc_swap` (mm/vmscan.c
    /// 6.12): a swap slot for an anon page, the page into the swap
    /// cache (one more reference), and the page marked dirty ("Always setting the dirty flag for
    /// the folio solves the problem" of MADV_FREE pages racing with a redirtying write).
    pub(crate) fn add_to_swap(&mut self, pfn: u32) -> bool {
        let Some(off) = self.swap.alloc() else {
            return false;
        };
        self.swap.set_cache_page(off, Some(pfn));
        let f = &mut self.mem.frames[pfn as usize];
        f.private = off + 1;
        f.set(pg::PG_SWAPCACHE | pg::PG_DIRTY);
        self.mem.inc_refcount(pfn);
        true
    }

    /// `pageout` (mm/vmscan.c 4.13..4.18, 6.12) → `swap_writepage` / `shmem_writepage` (called for dirty pages only, so
    /// PAGE_CLEAN never happens). A shmem page for which no swap slot can be had is redirtied
    /// and `shmem_writepage` returns AOP_WRITEPAGE_ACTIVATE (`wbc->for_reclaim`), which
    /// `pageout` turns into PAGE_ACTIVATE: shrink_folio_list activates the page (every profile;
    /// 4.x `get_swap_page`, 6.x `folio_alloc_swap`, same `redirty:` path).
    fn pageout(&mut self, pfn: u32) -> PageoutResult {
        let f = self.mem.frames[pfn as usize];
        // is_page_cache_freeable: only the cache and the isolation hold it
        if self.mem.refcount(pfn) != 2 {
            return PageoutResult::Keep;
        }
        if !f.anon() && !f.test(pg::PG_SWAPCACHE) {
            // shmem_writepage: move the page from the shmem page cache into the swap cache
            let file = self.mem.mapping(pfn) - 1;
            let Some(off) = self.swap.alloc() else {
                // shmem_writepage `redirty:`: set_page_dirty (the page is still dirty: the
                // model clears it only below, clear_page_dirty_for_io), then
                // AOP_WRITEPAGE_ACTIVATE → PAGE_ACTIVATE
                return PageoutResult::Activate;
            };
            self.swap.duplicate(off).expect("fresh slot");
            let index = self.mem.index(pfn);
            self.filex_mut(file).pages.insert(index, crate::mm::CacheEntry::Swap(off));
            self.swap.set_cache_page(off, Some(pfn));
            self.mem.set_mapping(pfn, 0);
            let fm = &mut self.mem.frames[pfn as usize];
            fm.private = off + 1;
            fm.set(pg::PG_SWAPCACHE);
        }
        let off = self.mem.frames[pfn as usize].swap_offset().expect("swap cache page");
        // clear_page_dirty_for_io
        self.mem.frames[pfn as usize].clear(pg::PG_DIRTY);
        // mm_vmscan_write_folio is traced whether or not swap_writepage wrote anything
        self.log(Ev::WritePage, 0, 0, 0, pfn as u64, off as u64, 0);
        // "folio_set_reclaim(folio); res = mapping->a_ops->writepage(...); ... if
        // (!folio_test_writeback(folio)) { /* synchronous write or broken a_ops? */
        // folio_clear_reclaim(folio); }"
        self.mem.frames[pfn as usize].set(pg::PG_RECLAIM);
        // swap_writepage: a page no swap entry references any more (its PTE was dropped) is
        // taken out of the swap cache and redirtied instead of written; reclaim then keeps it
        // and the putback frees it, uncounted in nr_reclaimed
        if !self.try_to_free_swap(pfn) {
            self.swap_writepage(pfn, off);
        }
        if !self.mem.frames[pfn as usize].test(crate::mm::page::pg::PG_WRITEBACK) {
            self.mem.frames[pfn as usize].clear(pg::PG_RECLAIM);
        }
        PageoutResult::Success
    }

    /// `__remove_mapping` (mm/vmscan.c 4.13..4.18, 6.12): with only the cache and the isolation holding the page, take it out
    /// of the swap cache (leaving a workingset shadow) or the shmem page cache, and free it.
    fn remove_mapping(&mut self, pfn: u32) -> bool {
        let f = self.mem.frames[pfn as usize];
        if self.mem.refcount(pfn) != 2 || f.test(pg::PG_DIRTY) {
            return false;
        }
        if let Some(off) = f.swap_offset() {
            if self.lru_gen_enabled() {
                // workingset_eviction → lru_gen_eviction (v6.12)
                let shadow = self.lru_gen_eviction(pfn);
                self.swap.set_shadow(off, shadow.eviction, shadow.workingset);
            } else if self.profile.workingset_anon {
                // workingset_eviction (mm/workingset.c v6.12): "eviction =
                // atomic_long_read(&lruvec->nonresident_age); ...
                // workingset_age_nonresident(lruvec, folio_nr_pages(folio)); return
                // pack_shadow(memcgid, pgdat, eviction, folio_test_workingset(folio));"
                let eviction = self.nonresident_age;
                self.workingset_age();
                self.swap.set_shadow(off, eviction, f.test(pg::PG_WORKINGSET));
            }
            let fm = &mut self.mem.frames[pfn as usize];
            fm.private = 0;
            fm.clear(pg::PG_SWAPCACHE);
            self.swap.put_cache(off);
        } else if f.has_mapping() && !f.anon() {
            let index = self.mem.index(pfn);
            let file = self.mem.mapping(pfn) - 1;
            self.filex_mut(file).pages.remove(&index);
        } else {
            return false;
        }
        self.free_isolated(pfn);
        true
    }

    /// `reclaim_pages` (MADV_PAGEOUT, mm/vmscan.c v6.12): shrink exactly these pages, ignoring
    /// references. It clears PG_active on each folio first ("if (nid == folio_nid(folio)) {
    /// folio_clear_active(folio); list_move(&folio->lru, &node_folio_list);"), so a page that
    /// is kept goes back to the inactive list.
    pub(crate) fn reclaim_pages(&mut self, pages: Vec<u32>) -> u64 {
        for &pfn in &pages {
            self.mem.frames[pfn as usize].clear(pg::PG_ACTIVE);
        }
        let mut sc = ScanControl::new(pages.len() as u64, false);
        let (reclaimed, keep, _) = self.shrink_folio_list(pages, &mut sc, true);
        for pfn in keep {
            self.putback_lru_page(pfn);
        }
        reclaimed
    }

    /// Reclaim one page as if it had reached the tail of its inactive list (with MGLRU: of the
    /// oldest generation, isolated by `isolate_folio`): isolate it and run `shrink_folio_list`
    /// with the reference check (the explorer's reclaim step). Returns whether it was freed.
    pub fn reclaim_one(&mut self, pfn: u32) -> bool {
        if self.lru_gen_enabled() {
            if !self.mem.frames[pfn as usize].test(pg::PG_LRU) {
                return false;
            }
            self.isolate_folio(pfn);
        } else if !self.isolate_lru_page(pfn) {
            return false;
        }
        let mut sc = ScanControl::new(1, false);
        let (reclaimed, keep, _) = self.shrink_folio_list(vec![pfn], &mut sc, false);
        for p in keep {
            self.putback_lru_page(p);
        }
        reclaimed == 1
    }

    /// Isolate one page from its LRU (`isolate_lru_page`, mm/vmscan.c 4.13..4.18;
    /// `folio_isolate_lru` 6.12: `folio_test_clear_lru`, `folio_get`, `lruvec_del_folio`), for MADV_PAGEOUT and migration.
    pub(crate) fn isolate_lru_page(&mut self, pfn: u32) -> bool {
        let f = &self.mem.frames[pfn as usize];
        if !f.test(pg::PG_LRU) {
            return false;
        }
        self.lru.del(&mut self.mem.frames, pfn);
        self.mem.frames[pfn as usize].set(pg::PG_ISOLATED);
        self.mem.inc_refcount(pfn);
        true
    }
}

enum Outcome {
    Freed,
    Activate,
    Keep,
}

/// `pageout`'s `pageout_t` (PAGE_CLEAN cannot happen: only dirty pages are written).
enum PageoutResult {
    /// PAGE_KEEP: the page is not freeable (someone else holds a reference).
    Keep,
    /// PAGE_ACTIVATE: the writepage asked for activation (AOP_WRITEPAGE_ACTIVATE).
    Activate,
    /// PAGE_SUCCESS: written, or submitted and under writeback ([`crate::mm::page_io`]).
    Success,
}

#[cfg(test)]
mod tests {
    use super::ScanControl;
    use crate::kernel::Kernel;
    use crate::mm::vmstat::Vm;
    use crate::testutil::{kernel, proc_with_pages};

    /// `consider_reclaim_throttle` → `reclaim_throttle(pgdat, VMSCAN_THROTTLE_NOPROGRESS)`
    /// (mm/vmscan.c 6.12.117 and 6.12.107): `skip_throttle_noprogress` makes it a
    /// `cond_resched()` while the write-pending pages are at most half the reclaimable ones
    /// ("if (2 * write_pending <= reclaimable) return true;") or kswapd has failed
    /// MAX_RECLAIM_RETRIES times; only past that does the task sleep a jiffy
    /// (`schedule_timeout(1)`), the swap device completing its writes meanwhile.
    #[test]
    fn a_direct_reclaim_without_progress_sleeps_only_when_most_reclaimable_pages_are_under_writeback() {
        use crate::mm::madvise::Advice;
        use crate::mm::page_io::SwapIo;
        use crate::sched::{GuestCost, TICK_NS};
        let mut k = kernel("6.12");
        k.set_swap_io(SwapIo::VirtioBlk).unwrap();
        let (pid, a) = proc_with_pages(&mut k, false, 8);
        k.madvise(pid, a, 8 * 4096, Advice::Cold).unwrap();
        assert_eq!(k.lru_sizes().iter().map(|(_, n)| n).sum::<u64>(), 8, "the 8 pages are all the LRU holds");
        let cost = GuestCost { minor_fault: 1_000_000.0, ..Default::default() };
        k.set_guest_clock(Some(cost), false).unwrap();
        for i in 0..4 {
            let pfn = k.pte_at(pid, a + i * 4096).map(|p| k.arch().pte_pfn(p)).unwrap();
            assert!(!k.reclaim_one(pfn), "written, in flight, kept on the LRU");
        }
        // 4 under writeback of 8 reclaimable: 2 * 4 <= 8, a cond_resched
        let t = k.guest_now();
        k.reclaim_throttle_noprogress();
        assert_eq!((k.nr_writeback(), k.guest_now()), (4, t), "no sleep: nothing completes, no time passes");
        let pfn = k.pte_at(pid, a + 4 * 4096).map(|p| k.arch().pte_pfn(p)).unwrap();
        assert!(!k.reclaim_one(pfn));
        // 5 of 8: a jiffy's sleep, to the next tick, and the device completes its queue
        k.kswapd.failures = crate::vmscan::types::MAX_RECLAIM_RETRIES;
        k.reclaim_throttle_noprogress();
        assert_eq!(k.nr_writeback(), 5, "kswapd gave up: near OOM, no sleep");
        k.kswapd.failures = 0;
        let t = k.guest_now();
        k.reclaim_throttle_noprogress();
        assert_eq!(k.nr_writeback(), 0, "slept: the writes completed");
        assert!(k.guest_now() > t && k.guest_now() % TICK_NS == 0, "woken at the next tick");
        k.check_invariants().unwrap();
    }

    /// `consider_reclaim_throttle` came in v5.16 (69392a403f49, 1b4e3f26f9f7;
    /// `Profile::consider_reclaim_throttle`): a direct reclaim (`try_to_free_pages`) that finds
    /// only pages under writeback sleeps at priority 1 on 6.12 (mm/vmscan.c 6.12.117), the swap
    /// device completing its writes meanwhile, and takes them at priority 0; 4.17 has no such
    /// throttle (4.x `do_try_to_free_pages`, mm/vmscan.c), so the writes stay in flight and
    /// nothing is reclaimed.
    #[test]
    fn only_612_throttles_a_direct_reclaim_that_finds_every_page_under_writeback() {
        use crate::mm::page_io::SwapIo;
        use crate::sched::GuestCost;
        for (profile, throttles) in [("4.17", false), ("6.12", true)] {
            let mut k = kernel(profile);
            assert_eq!(k.profile.consider_reclaim_throttle, throttles, "{profile}");
            k.set_swap_io(SwapIo::VirtioBlk).unwrap();
            let (pid, a) = proc_with_pages(&mut k, false, 8);
            let cost = GuestCost { minor_fault: 1_000_000.0, ..Default::default() };
            k.set_guest_clock(Some(cost), false).unwrap();
            for i in 0..8 {
                let pfn = k.pte_at(pid, a + i * 4096).map(|p| k.arch().pte_pfn(p)).unwrap();
                // the first pass finds the page referenced (the access's young bit) and clears it
                for _ in 0..3 {
                    if !k.mem.frames[pfn as usize].test(crate::mm::page::pg::PG_WRITEBACK) {
                        assert!(!k.reclaim_one(pfn), "{profile}: kept, or written and in flight");
                    }
                }
            }
            assert_eq!(k.nr_writeback(), 8, "{profile}: every page in flight, on the LRU");
            let t = k.guest_now();
            let got = k.try_to_free_pages(32);
            if throttles {
                assert_eq!(k.nr_writeback(), 0, "{profile}: slept a jiffy, the writes completed");
                assert!(k.guest_now() > t, "{profile}: the sleep took guest time");
                assert!(got > 0, "{profile}: priority 0 took the written pages");
            } else {
                assert_eq!((k.nr_writeback(), got), (8, 0), "{profile}: no throttle, nothing completed");
                assert_eq!(k.guest_now(), t, "{profile}: no sleep");
            }
            k.check_invariants().unwrap();
        }
    }

    /// 400 anon pages, 200 of them active: the inactive list is not low.
    fn half_active(profile: &str) -> Kernel {
        let mut k = kernel(profile);
        let (pid, a) = proc_with_pages(&mut k, false, 400);
        for i in 0..400 {
            let pfn = k.pte_at(pid, a + i * 4096).map(|p| k.arch().pte_pfn(p)).unwrap();
            if i < 200 { k.activate_page(pfn) } else { k.deactivate_page(pfn) } // 4.x starts active
        }
        assert!(!k.inactive_is_low(false));
        k
    }

    #[test]
    fn refaults_since_the_last_reclaim_let_612_deactivate_active_anon_pages() {
        // prepare_scan_control (mm/vmscan.c v6.12): "refaults = lruvec_page_state(target_lruvec,
        // WORKINGSET_ACTIVATE_ANON); if (refaults != target_lruvec->refaults[WORKINGSET_ANON] ||
        // inactive_is_low(target_lruvec, LRU_INACTIVE_ANON)) sc->may_deactivate |=
        // DEACTIVATE_ANON;" and snapshot_refaults at the end of a reclaim
        let mut k = half_active("6.12");
        let mut sc = ScanControl::new(32, true);
        k.prepare_scan_control(&mut sc);
        assert!(!sc.may_deactivate[0], "no refault, inactive not low");
        k.vmstat.inc(Vm::workingset_activate_anon);
        k.prepare_scan_control(&mut sc);
        assert!(sc.may_deactivate[0], "a refault activated a page since the last reclaim");
        k.snapshot_refaults();
        k.prepare_scan_control(&mut sc);
        assert!(!sc.may_deactivate[0], "the snapshot took it");
    }

    #[test]
    fn with_rstat_612_a_refault_activation_deactivates_only_after_the_next_memcg_flush() {
        // prepare_scan_control (mm/vmscan.c v6.12) calls mem_cgroup_flush_stats_ratelimited
        // and reads lruvec_page_state(target_lruvec, WORKINGSET_ACTIVATE_ANON): with
        // CONFIG_MEMCG=y the root memcg's rstat aggregate, refreshed by
        // flush_memcg_stats_dwork every FLUSH_TIME (mm/memcontrol.c v6.12)
        use crate::mm::memcontrol::{FLUSH_TIME_NS, MemcgStats};
        let mut k = half_active("6.12");
        k.set_memcg_stats(MemcgStats::Rstat612).unwrap();
        let mut sc = ScanControl::new(32, true);
        k.snapshot_refaults();
        k.vmstat.inc(Vm::workingset_activate_anon);
        k.tick(FLUSH_TIME_NS - 1);
        k.prepare_scan_control(&mut sc);
        assert!(!sc.may_deactivate[0], "the refault is not flushed yet: no deactivation");
        k.snapshot_refaults();
        k.tick(1);
        k.prepare_scan_control(&mut sc);
        assert!(sc.may_deactivate[0], "the periodic flush brought the refault in");
        k.snapshot_refaults();
        k.prepare_scan_control(&mut sc);
        assert!(!sc.may_deactivate[0], "snapshot_refaults stored the flushed count");
        // the live counts (the default) see it at once
        k.set_memcg_stats(MemcgStats::Live).unwrap();
        k.vmstat.inc(Vm::workingset_activate_anon);
        k.prepare_scan_control(&mut sc);
        assert!(sc.may_deactivate[0]);
    }

    #[test]
    fn with_flushed_lru_sizes_inactive_is_low_sees_the_lists_as_of_the_last_memcg_flush() {
        // inactive_is_low (mm/vmscan.c v6.12.117): "inactive = lruvec_page_state(lruvec,
        // NR_LRU_BASE + inactive_lru); active = lruvec_page_state(lruvec, NR_LRU_BASE +
        // active_lru);", the root memcg's rstat aggregate (mm/memcontrol.c lruvec_page_state:
        // "x = READ_ONCE(pn->lruvec_stats->state[i]);"), refreshed by flush_memcg_stats_dwork
        // every FLUSH_TIME
        use crate::mm::memcontrol::{FLUSH_TIME_NS, MemcgStats};
        let mut k = kernel("6.12");
        let (pid, a) = proc_with_pages(&mut k, false, 400);
        let pfns: Vec<u32> = (0..400).map(|i| k.arch().pte_pfn(k.pte_at(pid, a + i * 4096).unwrap())).collect();
        for (i, &pfn) in pfns.iter().enumerate() {
            if i < 200 { k.activate_page(pfn) } else { k.deactivate_page(pfn) }
        }
        k.set_memcg_stats(MemcgStats::Rstat612LruSizes).unwrap();
        for &pfn in &pfns[200..300] {
            k.activate_page(pfn);
        }
        assert!(!k.inactive_is_low(false), "300 active against 100 inactive, but flushed at 200 / 200");
        k.tick(FLUSH_TIME_NS);
        assert!(k.inactive_is_low(false), "the periodic flush brought the sizes in");
        for &pfn in &pfns[..300] {
            k.deactivate_page(pfn);
        }
        assert!(k.inactive_is_low(false), "all inactive now, but not flushed yet");
        // rstat-6.12 keeps only the refault counts flushed: the sizes are live
        k.set_memcg_stats(MemcgStats::Rstat612).unwrap();
        assert!(!k.inactive_is_low(false));
    }

    #[test]
    fn without_file_pages_612_scans_anon_by_cost_or_only_anon_when_file_is_tiny() {
        // get_scan_count (mm/vmscan.c v6.12), SCAN_FRACT with no cost yet: "ap = swappiness *
        // (total_cost + 1); ap /= anon_cost + 1; fp = (MAX_SWAPPINESS - swappiness) *
        // (total_cost + 1); fp /= file_cost + 1;" = 60 and 140: anon lists scanned at 60/200
        let mut k = half_active("6.12");
        let mut sc = ScanControl::new(32, true);
        sc.priority = 4;
        k.prepare_scan_control(&mut sc);
        assert!(!sc.file_is_tiny);
        assert_eq!(k.get_scan_count(&sc), [(200 >> 4) * 60 / 200, (200 >> 4) * 60 / 200, 0, 0]);
        // "If the system is almost out of file pages, force-scan anon": file + free <= high
        k.mem.wmark.high = k.mem.nr_free();
        k.prepare_scan_control(&mut sc);
        assert!(sc.file_is_tiny);
        assert_eq!(k.get_scan_count(&sc), [200 >> 4, 200 >> 4, 0, 0]);
        // 4.18 (v4.13..v4.19 get_scan_count): recent_scanned / recent_rotated, no cost model
        let mut k = half_active("4.18");
        let sc = ScanControl { priority: 4, ..ScanControl::new(32, true) };
        let nr = k.get_scan_count(&sc);
        assert_eq!(nr[0], (200 >> 4) * 60 / 201, "ap = 60 * 1 / 1, fp = 140 * 1 / 1, denominator ap + fp + 1");
    }

    /// A kernel of `profile` with 1 GiB of memory whose process has `pages` anon pages, on
    /// v5.4+ all made old and unreferenced by MADV_COLD (ready to be reclaimed on the first
    /// look).
    fn cold_pages(profile: &str, pages: u64) -> Kernel {
        use crate::arch::Arch;
        use crate::mm::madvise::Advice;
        use crate::profile::Profile;
        let mut k = Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), 1 << 30, 64 << 20, 1).unwrap();
        let (pid, a) = proc_with_pages(&mut k, false, pages);
        if k.profile.madv_cold_pageout {
            k.madvise(pid, a, pages * 4096, Advice::Cold).unwrap();
        }
        k
    }

    /// `shrink_lruvec` (mm/vmscan.c v6.12; `shrink_node_memcg`'s `scan_adjusted` in 4.x):
    /// global direct reclaim at DEF_PRIORITY scans its whole `get_scan_count` target
    /// (`proportional_reclaim = (!cgroup_reclaim(sc) && !current_is_kswapd() && sc->priority ==
    /// DEF_PRIORITY)`: "continue"), where kswapd (and cgroup reclaim) stops once `nr_to_reclaim`
    /// is met and only anon pages are left to scan ("if (!nr_file || !nr_anon) break;").
    #[test]
    fn direct_reclaim_at_def_priority_scans_its_whole_target_and_kswapd_stops_at_the_goal() {
        let pages = 200_000;
        let target = pages >> super::DEF_PRIORITY; // 48 > SWAP_CLUSTER_MAX
        for kswapd in [false, true] {
            let mut k = cold_pages("6.12", pages);
            // "If the system is almost out of file pages, force-scan anon": the whole target
            // is anon (no SCAN_FRACT share)
            k.mem.wmark.high = k.mem.nr_free();
            let mut sc = ScanControl::new(super::SWAP_CLUSTER_MAX, kswapd);
            k.shrink_node(&mut sc);
            assert!(sc.file_is_tiny);
            let want = if kswapd { super::SWAP_CLUSTER_MAX } else { target };
            assert_eq!(sc.nr_scanned, want, "kswapd {kswapd}");
            assert_eq!(sc.nr_reclaimed, want, "cold pages are reclaimed on the first look");
            k.check_invariants().unwrap();
        }
    }

    /// `shrink_inactive_list` (mm/vmscan.c 6.12: "if (!cgroup_reclaim(sc))
    /// __count_vm_events(item, nr_scanned);"; 4.14..4.19: "if (global_reclaim(sc))"): reclaim
    /// for a memory cgroup (`memory.reclaim`, the model's `Kernel::reclaim`) is not counted in
    /// pgscan_direct / pgsteal_direct; 6.12's pgscan_anon / pgsteal_anon count it. MGLRU
    /// (`scan_folios` / `evict_folios`, 6.12, the "6.12-debian" variant) counts the same way.
    #[test]
    fn explicit_reclaim_is_cgroup_reclaim_and_leaves_pgscan_direct_and_pgsteal_direct_alone() {
        for p in ["4.18", "6.12", "6.12-debian"] {
            let mut k = kernel(p);
            let _ = proc_with_pages(&mut k, false, 64);
            let got = k.reclaim(16);
            assert!(got > 0, "{p}");
            assert_eq!(k.vmstat.get(Vm::pgscan_direct), 0, "{p}");
            assert_eq!(k.vmstat.get(Vm::pgsteal_direct), 0, "{p}");
            assert_eq!(k.vmstat.get(Vm::pgsteal_anon), got, "{p}");
        }
    }

    /// `prepare_scan_control` (mm/vmscan.c v6.12: "if (!cgroup_reclaim(sc)) { … sc->file_is_tiny
    /// = …") and 4.x `get_scan_count` ("if (global_reclaim(sc)) { … SCAN_ANON"): only global
    /// reclaim force-scans anon when the file lists and free memory are below the high
    /// watermark; cgroup reclaim balances by cost / by recent rotation as usual.
    #[test]
    fn only_global_reclaim_force_scans_anon_when_file_is_tiny() {
        for p in ["4.18", "6.12"] {
            let mut k = half_active(p);
            k.mem.wmark.high = k.mem.nr_free();
            let global = ScanControl { priority: 4, ..ScanControl::new(32, false) };
            let cgroup = ScanControl { cgroup_reclaim: true, ..global.clone() };
            let mut nr = Vec::new();
            for mut sc in [global, cgroup] {
                if k.profile.scan_balance_by_cost {
                    k.prepare_scan_control(&mut sc);
                }
                nr.push(k.get_scan_count(&sc)[0]);
            }
            assert_eq!(nr[0], 200 >> 4, "{p}: global reclaim scans the inactive anon list whole");
            assert!(nr[1] < nr[0], "{p}: cgroup reclaim takes the anon share only ({nr:?})");
        }
    }

    /// `shrink_node` (mm/vmscan.c 4.14..4.19 and 6.12): "if (reclaimable)
    /// pgdat->kswapd_failures = 0;": a kswapd run that reclaims makes the node hopeful again,
    /// so three failed runs before do not count towards MAX_RECLAIM_RETRIES.
    #[test]
    fn a_kswapd_run_that_reclaims_resets_kswapd_failures() {
        for p in ["4.18", "6.12"] {
            let mut k = cold_pages(p, 4000);
            k.mem.wmark.high = k.mem.nr_free() + 16;
            k.kswapd.failures = 3;
            k.kswapd.woken = true;
            let got = k.kswapd_step();
            assert!(got > 0, "{p}");
            assert_eq!(k.kswapd.failures, 0, "{p}");
        }
    }
}
