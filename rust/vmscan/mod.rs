//! Reclaim (mm/vmscan.c): the LRU lists, shrink_*, direct reclaim (`try_to_free_pages`) and
//! kswapd. The allocator that enters reclaim is [`crate::mm::page_alloc`], the unmapping it
//! asks for is [`crate::rmap::unmap`], the swap device [`crate::mm::swapfile`].

pub mod kswapd;
pub mod lru;
pub mod lru_gen;
pub mod lru_gen_walk;
pub mod shrink;
pub mod types;

use crate::kernel::Kernel;
use crate::mm::vmstat::Vm;
use crate::sim::log::Ev;
use lru::LruList;
use shrink::ScanControl;

impl Kernel {
    /// `do_try_to_free_pages` (mm/vmscan.c 4.13..4.18, 6.12) at priorities 12 .. 0 until
    /// `sc.nr_to_reclaim` is met. 4.x also snapshots the refaults (for the file list's
    /// `inactive_list_is_low`), which the model skips there: no file-LRU page leaves a shadow. v5.8+
    /// (`scan_balance_by_cost`, mm/vmscan.c v6.12): the refaults are snapshot at the end
    /// (`snapshot_refaults`), and a reclaim that got nothing after skipping an active list
    /// retries from the first priority with `force_deactivate`.
    pub(crate) fn do_try_to_free_pages(&mut self, sc: &mut ScanControl) -> u64 {
        let initial_priority = sc.priority;
        loop {
            loop {
                sc.nr_scanned = 0;
                self.shrink_node(sc);
                // shrink_zones → consider_reclaim_throttle (mm/vmscan.c 6.12.117; v5.16+,
                // `Profile::consider_reclaim_throttle`): direct reclaim (not kswapd, not cgroup
                // reclaim) with no page at priority 1 throttles on VMSCAN_THROTTLE_NOPROGRESS,
                // which sleeps only when writeback dominates
                // (`Kernel::reclaim_throttle_noprogress`); 4.x has no such throttle
                if self.profile.consider_reclaim_throttle
                    && !sc.kswapd
                    && !sc.cgroup_reclaim
                    && sc.priority == 1
                    && sc.nr_reclaimed == 0
                {
                    self.reclaim_throttle_noprogress();
                }
                if sc.nr_reclaimed >= sc.nr_to_reclaim {
                    break;
                }
                sc.priority -= 1;
                if sc.priority < 0 {
                    break;
                }
            }
            if !self.profile.scan_balance_by_cost {
                return sc.nr_reclaimed;
            }
            self.snapshot_refaults();
            if sc.nr_reclaimed > 0 || !sc.skipped_deactivate || sc.force_deactivate {
                return sc.nr_reclaimed;
            }
            sc.priority = initial_priority;
            sc.force_deactivate = true;
            sc.skipped_deactivate = false;
        }
    }

    /// `try_to_free_pages` (mm/vmscan.c 4.13..4.18, 6.12): direct reclaim of SWAP_CLUSTER_MAX
    /// pages by an allocating task, between `mm_vmscan_direct_reclaim_begin` and `_end`;
    /// `throttle_direct_reclaim` (pfmemalloc) is not modelled.
    /// Every call is one allocstall (`do_try_to_free_pages` counts ALLOCSTALL for global,
    /// `!cgroup_reclaim`, reclaim on every profile; the `memory.reclaim`-like
    /// [`Kernel::reclaim`] is cgroup reclaim and does not count it).
    pub(crate) fn try_to_free_pages(&mut self, nr: u64) -> u64 {
        self.log_reclaim(Ev::DirectReclaimBegin, 0, 0, 0);
        self.vmstat.inc(Vm::allocstall_normal);
        let mut sc = ScanControl::new(nr, false);
        let got = self.do_try_to_free_pages(&mut sc);
        if got > 0 {
            self.kswapd.failures = 0;
        }
        self.log_reclaim(Ev::DirectReclaimEnd, got, 0, 0);
        got
    }

    /// Pages on each LRU list (the nr_* gauges of /proc/vmstat).
    pub fn lru_sizes(&self) -> [(LruList, u64); 5] {
        LruList::ALL.map(|l| (l, self.lru.size(l)))
    }

    pub(crate) fn log_reclaim(&mut self, kind: Ev, a: u64, b: u64, c: u64) {
        self.log(kind, 0, 0, 0, a, b, c);
    }
}
