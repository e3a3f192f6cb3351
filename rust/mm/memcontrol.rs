//! The memory cgroup's statistics as reclaim reads them (mm/memcontrol.c v6.12, CONFIG_MEMCG=y):
//! an opt-in named choice, [`MemcgStats`].
//!
//! With memory cgroups built in (both Debian 6.12 kernels of the replay oracle's guests),
//! `lruvec_page_state()` returns `pn->lruvec_stats->state[]`, the rstat aggregate as of the last
//! flush, not the live per-CPU counts. Global reclaim's `target_lruvec` is the root memcg's
//! (`mem_cgroup_lruvec(NULL, pgdat)`), so `prepare_scan_control` (mm/vmscan.c v6.12) reads the
//! WORKINGSET_ACTIVATE_ANON/FILE counts as flushed, and `snapshot_refaults` stores the same
//! flushed values: "refaults != target_lruvec->refaults[]" can become true once per flush, not
//! after every batch of refault activations.
//!
//! The flushes, v6.12:
//! - `flush_memcg_stats_dwork` runs `do_flush_stats(root_mem_cgroup)` every FLUSH_TIME
//!   (`2UL*HZ`, 2 s), "deliberately ignore memcg_vmstats_needs_flush()", and `do_flush_stats`
//!   of the root records `flush_last_time`;
//! - `mem_cgroup_flush_stats_ratelimited` (called first by `prepare_scan_control`, and by
//!   `workingset_test_recent` and the shadow-node shrinker) flushes only "if the periodic
//!   flusher is one full cycle late" (`jiffies_64` after `flush_last_time + 2*FLUSH_TIME`) and
//!   then only when `memcg_vmstats_needs_flush` (more than MEMCG_CHARGE_BATCH (64) updates per
//!   online CPU since the last flush).
//!
//! The clock is the guest's when the replay oracle gives one ([`crate::sched::GuestClock`]: the
//! periodic flush then runs at the end of the first request at or after its due time of guest
//! time, `Kernel::guest_request_done`); otherwise the model's cost clock,
//! [`Kernel::now`](crate::kernel::Kernel) (nanoseconds):
//! the periodic flush runs at the first [`Kernel::tick`](crate::kernel::Kernel::tick) at or
//! after its due time, so in the model it is never late and the ratelimited flush only matters
//! after the clock was set forward without ticking. The needs-flush threshold counts every memcg
//! statistic update (each charge, LRU move, fault); the model counts only the updates of the
//! counts it keeps flushed, a lower bound, so a ratelimited flush that the kernel would do may be
//! skipped only when fewer than 65 of those changed, where the kernel's other updates would
//! almost always pass it. The WORKINGSET_ACTIVATE counts are kept flushed here, and with
//! [`MemcgStats::Rstat612Lru`] the LRU sizes that `inactive_is_low` reads through
//! `lruvec_page_state` (their changes since the flush count as updates, a lower bound again);
//! the workingset size of `workingset_test_recent` is read live (not modelled).

use crate::error::Result;
use crate::kernel::Kernel;
use crate::mm::vmstat::Vm;
use crate::vmscan::lru::LruList;

pub use crate::mm::memcg_vmstats::{FLUSH_TIME_NS, MEMCG_FLUSH_THRESHOLD, MemcgRstat, MemcgStats};

impl Kernel {
    /// Choose how reclaim reads the memcg statistics ([`MemcgStats`]). Choosing `Rstat612`
    /// flushes once now and queues the periodic flush FLUSH_TIME later (as
    /// `mem_cgroup_css_online` of the root queues `stats_flush_dwork`, v6.12).
    pub fn set_memcg_stats(&mut self, stats: MemcgStats) -> Result<()> {
        match stats {
            MemcgStats::Live => self.memcg = None,
            MemcgStats::Rstat612 | MemcgStats::Rstat612Lru => {
                let mut r = Box::new(MemcgRstat::default());
                r.workingset_activate = self.live_workingset_activate();
                if stats == MemcgStats::Rstat612Lru {
                    r.lru_size = Some(self.live_lru_size());
                }
                let now = self.memcg_clock();
                r.flush_last_time = now;
                r.next_periodic = now.saturating_add(FLUSH_TIME_NS);
                self.memcg = Some(r);
            }
        }
        Ok(())
    }

    /// The choice in use.
    pub fn memcg_stats(&self) -> MemcgStats {
        match self.memcg.as_deref() {
            None => MemcgStats::Live,
            Some(r) if r.lru_size.is_some() => MemcgStats::Rstat612Lru,
            Some(_) => MemcgStats::Rstat612,
        }
    }

    fn live_lru_size(&self) -> [u64; 4] {
        [LruList::InactiveAnon, LruList::ActiveAnon, LruList::InactiveFile, LruList::ActiveFile]
            .map(|l| self.lru.size(l))
    }

    /// `lruvec_page_state(lruvec, NR_LRU_BASE + l)` (mm/memcontrol.c 6.12.117) for an evictable
    /// list `l`: as of the last flush with [`MemcgStats::Rstat612Lru`], else live.
    pub(crate) fn lruvec_page_state_lru(&self, l: LruList) -> u64 {
        match self.memcg.as_deref().and_then(|r| r.lru_size) {
            Some(sizes) if l != LruList::Unevictable => sizes[l as usize],
            _ => self.lru.size(l),
        }
    }

    fn live_workingset_activate(&self) -> [u64; 2] {
        [self.vmstat.get(Vm::workingset_activate_anon), self.vmstat.get(Vm::workingset_activate_file)]
    }

    /// `lruvec_page_state(target_lruvec, WORKINGSET_ACTIVATE_ANON/FILE)` (mm/memcontrol.c
    /// v6.12): the flushed counts with [`MemcgStats::Rstat612`], the live ones otherwise.
    pub(crate) fn lruvec_workingset_activate(&self) -> [u64; 2] {
        match self.memcg.as_deref() {
            Some(r) => r.workingset_activate,
            None => self.live_workingset_activate(),
        }
    }

    /// `do_flush_stats(root_mem_cgroup)` (mm/memcontrol.c v6.12): `flush_last_time` and the
    /// aggregate brought up to the live counts.
    fn do_flush_stats(&mut self) {
        let live = self.live_workingset_activate();
        let sizes = self.live_lru_size();
        let now = self.memcg_clock();
        if let Some(r) = self.memcg.as_deref_mut() {
            r.flush_last_time = now;
            r.workingset_activate = live;
            if r.lru_size.is_some() {
                r.lru_size = Some(sizes);
            }
        }
    }

    /// `memcg_vmstats_needs_flush` (mm/memcontrol.c v6.12), on the updates the model counts
    /// (see the module doc): more than MEMCG_CHARGE_BATCH per CPU since the last flush.
    fn memcg_vmstats_needs_flush(&self) -> bool {
        let live = self.live_workingset_activate();
        let sizes = self.live_lru_size();
        self.memcg.as_deref().is_some_and(|r| {
            let mut updates = (live[0] - r.workingset_activate[0]) + (live[1] - r.workingset_activate[1]);
            if let Some(flushed) = r.lru_size {
                updates += (0..4).map(|i| sizes[i].abs_diff(flushed[i])).sum::<u64>();
            }
            updates > MEMCG_FLUSH_THRESHOLD
        })
    }

    /// `mem_cgroup_flush_stats_ratelimited` (mm/memcontrol.c v6.12): "Only flush if the
    /// periodic flusher is one full cycle late", and then as `mem_cgroup_flush_stats`, only if
    /// `memcg_vmstats_needs_flush`.
    pub(crate) fn mem_cgroup_flush_stats_ratelimited(&mut self) {
        let Some(r) = self.memcg.as_deref() else { return };
        if self.memcg_clock() > r.flush_last_time.saturating_add(2 * FLUSH_TIME_NS) && self.memcg_vmstats_needs_flush()
        {
            self.do_flush_stats();
        }
    }

    /// `flush_memcg_stats_dwork` (mm/memcontrol.c v6.12), run from [`Kernel::tick`] when due:
    /// flush unconditionally and queue itself FLUSH_TIME later.
    #[cold]
    pub(crate) fn flush_memcg_stats_dwork(&mut self) {
        self.do_flush_stats();
        let now = self.memcg_clock();
        if let Some(r) = self.memcg.as_deref_mut() {
            r.next_periodic = now.saturating_add(FLUSH_TIME_NS);
        }
    }

    /// Whether the periodic flush is due on the cost clock (checked by [`Kernel::tick`]); with a
    /// guest clock it runs on the guest's time instead ([`Kernel::guest_request_done`]).
    #[inline]
    pub(crate) fn memcg_flush_due(&self) -> bool {
        self.memcg.as_deref().is_some_and(|r| self.now >= r.next_periodic && self.guest_clock.is_none())
    }

    /// The clock the flushes run on changed ([`Kernel::set_guest_clock`]): the last flush is
    /// now, the next FLUSH_TIME later, on the new clock.
    pub(crate) fn memcg_rebase_clock(&mut self) {
        let now = self.memcg_clock();
        if let Some(r) = self.memcg.as_deref_mut() {
            r.flush_last_time = now;
            r.next_periodic = now.saturating_add(FLUSH_TIME_NS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FLUSH_TIME_NS, MEMCG_FLUSH_THRESHOLD, MemcgStats};
    use crate::arch::Arch;
    use crate::error::Error;
    use crate::kernel::Kernel;
    use crate::mm::vmstat::Vm;
    use crate::named::Named;
    use crate::profile::Profile;

    fn rstat_kernel() -> Kernel {
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), 64 << 20, 64 << 20, 1).unwrap();
        k.set_memcg_stats(MemcgStats::Rstat612).unwrap();
        k
    }

    #[test]
    fn the_periodic_flush_refreshes_the_refault_counts_every_two_seconds() {
        // flush_memcg_stats_dwork (mm/memcontrol.c v6.12): do_flush_stats(root_mem_cgroup),
        // then queue_delayed_work(..., FLUSH_TIME) with FLUSH_TIME = 2UL*HZ
        let mut k = rstat_kernel();
        k.vmstat.inc(Vm::workingset_activate_anon);
        k.vmstat.inc(Vm::workingset_activate_file);
        assert_eq!(k.lruvec_workingset_activate(), [0, 0], "not flushed yet");
        k.tick(FLUSH_TIME_NS / 2);
        assert_eq!(k.lruvec_workingset_activate(), [0, 0]);
        k.tick(FLUSH_TIME_NS / 2);
        assert_eq!(k.lruvec_workingset_activate(), [1, 1], "flushed at 2 s");
        assert_eq!(k.memcg.as_deref().unwrap().flush_last_time, FLUSH_TIME_NS);
        k.vmstat.inc(Vm::workingset_activate_anon);
        k.tick(FLUSH_TIME_NS - 1);
        assert_eq!(k.lruvec_workingset_activate(), [1, 1], "the next flush is 2 s after the last");
        k.tick(1);
        assert_eq!(k.lruvec_workingset_activate(), [2, 1]);
        // the live choice reads the counters themselves
        k.set_memcg_stats(MemcgStats::Live).unwrap();
        k.vmstat.inc(Vm::workingset_activate_anon);
        assert_eq!(k.lruvec_workingset_activate(), [3, 1]);
    }

    #[test]
    fn the_ratelimited_flush_runs_only_a_full_cycle_late_and_past_the_update_threshold() {
        // mem_cgroup_flush_stats_ratelimited (mm/memcontrol.c v6.12): "if
        // (time_after64(jiffies_64, READ_ONCE(flush_last_time) + 2*FLUSH_TIME))
        // mem_cgroup_flush_stats(memcg);", which flushes only if memcg_vmstats_needs_flush
        // (stats_updates > MEMCG_CHARGE_BATCH * num_online_cpus())
        let mut k = rstat_kernel();
        for _ in 0..MEMCG_FLUSH_THRESHOLD + 1 {
            k.vmstat.inc(Vm::workingset_activate_anon);
        }
        k.now = 2 * FLUSH_TIME_NS; // the clock set forward without the periodic flush running
        k.mem_cgroup_flush_stats_ratelimited();
        assert_eq!(k.lruvec_workingset_activate(), [0, 0], "late by exactly one cycle: not after");
        k.now += 1;
        k.mem_cgroup_flush_stats_ratelimited();
        assert_eq!(k.lruvec_workingset_activate(), [MEMCG_FLUSH_THRESHOLD + 1, 0], "one full cycle late");
        k.vmstat.inc(Vm::workingset_activate_anon);
        k.now += 4 * FLUSH_TIME_NS;
        k.mem_cgroup_flush_stats_ratelimited();
        assert_eq!(k.lruvec_workingset_activate()[0], MEMCG_FLUSH_THRESHOLD + 1, "one update: below the threshold");
    }

    #[test]
    fn a_kernel_with_flushed_statistics_refuses_a_snapshot_and_names_the_choice() {
        let mut k = rstat_kernel();
        match k.snapshot_bytes() {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("rstat-6.12"), "{m}"),
            other => panic!("expected a refusal, got {:?}", other.map(|b| b.len())),
        }
        k.set_memcg_stats(MemcgStats::Live).unwrap();
        assert!(k.snapshot_bytes().is_ok());
        assert!(MemcgStats::from_name("rstat-6.11").is_err());
        assert_eq!(MemcgStats::from_name("rstat-6.12").unwrap().name(), "rstat-6.12");
    }
}
