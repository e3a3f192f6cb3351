//! The guest's time and its one CPU's scheduler, as the replay oracle needs them (issue 18).
//!
//! The model has no CPU time of its own: its cost clock ([`Kernel::now`](crate::kernel::Kernel))
//! is a unit of work, not the time a TCG guest takes. Two decisions of a one-CPU 6.12 guest
//! depend on the guest's time: the memcg statistics' periodic flush every FLUSH_TIME (2 s,
//! `flush_memcg_stats_dwork`, mm/memcontrol.c v6.12; [`crate::mm::memcontrol`]) and when a woken
//! kswapd gets the CPU from the process (the scheduler tick, below).
//!
//! [`GuestClock`] is an *input* of the replay oracle, not a model constant: the guest's speed
//! under TCG on the machine that ran it, as costs in nanoseconds per request, minor fault, major
//! fault, page written to swap and page scanned by reclaim, fitted by the oracle to the
//! durations of its kernel runs (python reclaim.crosscheck.replay `fit_guest_clock`). The guest's
//! time is those costs times the model's own counts since the clock was set
//! ([`Kernel::guest_now`]), so it advances inside a request too (reclaim's scanning).
//!
//! **kswapd on one CPU by the scheduler** (`GuestClock::sched_tick`, with
//! [`KswapdMode::OneCpu`]): besides the process's sleeps on a swap read (`Kernel::io_schedule`),
//! a woken kswapd gets the CPU when 6.12's EEVDF would switch to it, at the end of the
//! process's current access. What the source says (kernel/sched/fair.c and core.c, v6.12, two
//! nice-0 SCHED_NORMAL tasks of the default slice on one CPU):
//!
//! - the slice: `sysctl_sched_base_slice` is 0.75 ms times `get_update_sysctl_factor()`, which
//!   for SCHED_TUNABLESCALING_LOG (the default) is `1 + ilog2(min(ncpus, 8))` = 1 on one CPU
//!   ([`BASE_SLICE_NS`]);
//! - the tick: HZ = 250 in both Debian configs (CONFIG_HZ=250), `sched_tick` → `task_tick_fair`
//!   → `entity_tick` → `update_curr` every 4 ms ([`TICK_NS`]);
//! - `update_curr` → `update_deadline`: once the running entity's vruntime has passed its
//!   deadline it gets a new one (vruntime + slice) and, with another entity queued, `update_curr`
//!   calls `resched_curr` (v6.12 returns early on `rq->nr_running == 1`, the 6.12 stable
//!   releases, read in 6.12.67, on the cfs_rq's count; with only the process and kswapd, both CFS tasks of the root cfs_rq, the
//!   two counts are the same). The process running alone gets a new slice at every tick (4 ms >
//!   0.75 ms), so its slice is used up 0.75 ms after each tick;
//! - a wake (`try_to_wake_up` → `ttwu_do_activate`: `enqueue_task_fair`, then `wakeup_preempt`
//!   → `check_preempt_wakeup_fair`): `enqueue_entity` calls `update_curr` while the process is
//!   still alone on the cfs_rq, so a process whose slice was used up gets its new deadline
//!   there (`update_deadline`) but no reschedule (`update_curr` returns on one running entity).
//!   kswapd is then placed at the average vruntime, the process's (`place_entity`, lag about 0:
//!   a kswapd that went to sleep not eligible, having run more than its share, stays queued
//!   under `DELAY_DEQUEUE` until it is picked, and `DELAY_ZERO` clips what is positive; one
//!   that slept eligible would keep a positive lag and preempt at once, and one woken while
//!   still delayed keeps its negative lag and waits longer, which the model does not follow),
//!   with the same slice, so its deadline equals the process's new one, and `pick_eevdf`
//!   (called by `check_preempt_wakeup_fair`) takes the leftmost eligible entity, kswapd: the
//!   process wins only with an earlier deadline (`entity_before`). So a wake after the slice
//!   reschedules at once; before it, the process keeps its earlier deadline (from the last
//!   tick) and the CPU (RUN_TO_PARITY's protection, `vlag == deadline` from the process's last
//!   pick, ends with its first new deadline, so it adds nothing after a tick). The switch then
//!   comes at the next tick (`update_deadline`; PREEMPT_SHORT's `did_preempt_short` too, the
//!   process having run past the average);
//! - `resched_curr` sets TIF_NEED_RESCHED, which both configs honour at the return to user
//!   space (`exit_to_user_mode_loop`) or a `cond_resched()` (CONFIG_PREEMPT_VOLUNTARY on s390x,
//!   PREEMPT_DYNAMIC in mode voluntary on x86_64), not at an interrupt's return into the
//!   kernel: in the model, at the end of the access that was running.
//!
//! So a kswapd woken at guest time `t` runs at the end of the first access that ends at or
//! after `t` if `t` is at least [`BASE_SLICE_NS`] past the last tick, else at or after the next
//! tick ([`GuestClock::dispatch_at`]). The same rule for every wake (low watermark and
//! watermark boost). Not modelled: kswapd keeps the CPU for its whole `balance_pgdat` pass
//! (the kernel preempts it at a `cond_resched()` once its own slice is used at a tick, and the
//! process and kswapd then alternate tick by tick), except a boosted run with the zones, which
//! gives the CPU back after each productive pass (`Kernel::balance_pgdat`); other tasks (kworkers, kcompactd) taking
//! the CPU; `update_curr` calls between ticks other than the wake's; the tick's phase (ticks
//! at multiples of 4 ms of the guest clock).

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mm::vmstat::Vm;
use crate::vmscan::types::KswapdMode;

pub mod clock;
pub use clock::{BASE_SLICE_NS, GuestClock, GuestCost, TICK_NS};

impl Kernel {
    fn guest_counts(&self) -> [u64; 5] {
        let v = &self.vmstat;
        [
            v.get(Vm::pgfault),
            v.get(Vm::pgmajfault),
            v.get(Vm::pswpout),
            v.get(Vm::pgscan_kswapd) + v.get(Vm::pgscan_direct),
            v.get(Vm::allocstall_normal),
        ]
    }

    /// Give the kernel a guest clock (None: none, the default). `sched_tick` needs one CPU
    /// ([`KswapdMode::OneCpu`]). A memcg choice made before is re-based on it: its periodic
    /// flush then runs every FLUSH_TIME of guest time.
    pub fn set_guest_clock(&mut self, cost: Option<GuestCost>, sched_tick: bool) -> Result<()> {
        let Some(cost) = cost else {
            if sched_tick {
                return Err(Error::invalid("sched_tick needs a guest clock (guest_clock=...)"));
            }
            self.guest_clock = None;
            return Ok(());
        };
        let c =
            [cost.request, cost.minor_fault, cost.major_fault, cost.swap_write, cost.page_scanned, cost.direct_reclaim];
        if c.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(Error::invalid(format!(
                "the guest clock's costs are nanoseconds, finite and not negative, not {c:?}"
            )));
        }
        if sched_tick && self.kswapd.mode != KswapdMode::OneCpu {
            return Err(Error::invalid("sched_tick schedules kswapd on one CPU: it needs one_cpu=True"));
        }
        let base = self.guest_counts();
        let woken = self.kswapd.woken.then_some(0);
        self.guest_clock =
            Some(Box::new(GuestClock { cost, sched_tick, requests: 0, base, kswapd_woken_at: woken, slept: 0 }));
        self.memcg_rebase_clock();
        Ok(())
    }

    /// The guest's time in ns since the clock was set (0 without one): the costs times the
    /// counts since then.
    pub fn guest_now(&self) -> u64 {
        let Some(g) = self.guest_clock.as_deref() else { return 0 };
        let n = self.guest_counts();
        let d: [f64; 5] = std::array::from_fn(|i| n[i].saturating_sub(g.base[i]) as f64);
        let (minor, major) = (d[0] - d[1], d[1]);
        let c = &g.cost;
        let t = g.requests as f64 * c.request
            + minor.max(0.0) * c.minor_fault
            + major * c.major_fault
            + d[2] * c.swap_write
            + d[3] * c.page_scanned
            + d[4] * c.direct_reclaim;
        t as u64 + g.slept
    }

    /// The process sleeps until the next scheduler tick of the guest clock (`schedule_timeout(1)`:
    /// the timer fires at the next jiffy, TICK_NSEC at CONFIG_HZ=250, ticks at multiples of
    /// [`TICK_NS`] as for [`GuestClock::dispatch_at`]). Nothing without a guest clock.
    pub(crate) fn guest_sleep_to_next_tick(&mut self) {
        let now = self.guest_now();
        if let Some(g) = self.guest_clock.as_deref_mut() {
            g.slept += TICK_NS - now % TICK_NS;
        }
    }

    /// The clock the memcg flushes run on: the guest's when set, else the cost clock.
    #[inline]
    pub(crate) fn memcg_clock(&self) -> u64 {
        if self.guest_clock.is_some() { self.guest_now() } else { self.now }
    }

    /// kswapd was woken (`wakeup_kswapd`): note the guest time for the scheduler.
    #[inline]
    pub(crate) fn guest_kswapd_woken(&mut self) {
        if self.guest_clock.as_deref().is_some_and(|g| g.sched_tick && g.kswapd_woken_at.is_none()) {
            let t = self.guest_now();
            self.guest_clock.as_deref_mut().expect("guest clock").kswapd_woken_at = Some(t);
        }
    }

    /// kswapd gave the CPU back in the middle of a run (a boosted `balance_pgdat`,
    /// `Kernel::balance_pgdat`): it was preempted at a tick, and with
    /// [`GuestClock::sched_tick`] gets the CPU again at the next one, once the process has
    /// used its new slice (`update_curr` → `update_deadline` at that tick).
    pub(crate) fn guest_kswapd_preempted(&mut self) {
        if self.guest_clock.as_deref().is_some_and(|g| g.sched_tick) {
            let now = self.guest_now();
            // woken at the last tick: GuestClock::dispatch_at gives the next one
            self.guest_clock.as_deref_mut().expect("guest clock").kswapd_woken_at = Some(now - now % TICK_NS);
        }
    }

    /// Whether kswapd's wakes are dispatched by the scheduler tick (no immediate run after a
    /// boost wake).
    #[inline]
    pub(crate) fn guest_sched_tick(&self) -> bool {
        self.guest_clock.as_deref().is_some_and(|g| g.sched_tick)
    }

    /// The end of one request of the replay (the access returned to user space): the guest's
    /// periodic memcg flush when due, and with `GuestClock::sched_tick` a woken kswapd's
    /// turn on the CPU (module doc). Nothing without a guest clock.
    pub fn guest_request_done(&mut self) {
        let Some(g) = self.guest_clock.as_deref_mut() else { return };
        g.requests += 1;
        let now = self.guest_now();
        if self.memcg.as_deref().is_some_and(|r| now >= r.next_periodic) {
            self.flush_memcg_stats_dwork();
        }
        self.vmstat_update_pcp(now);
        let g = self.guest_clock.as_deref_mut().expect("guest clock");
        if !g.sched_tick {
            return;
        }
        if !self.kswapd.woken {
            g.kswapd_woken_at = None;
            return;
        }
        let woken = *g.kswapd_woken_at.get_or_insert(now);
        if now >= GuestClock::dispatch_at(woken) {
            g.kswapd_woken_at = None;
            self.kswapd_step();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BASE_SLICE_NS, GuestClock, GuestCost, TICK_NS};
    use crate::mm::mmap::MapKind;
    use crate::mm::vmstat::Vm;
    use crate::testutil::kernel;
    use crate::vmscan::types::KswapdMode;

    const COST: GuestCost = GuestCost {
        request: 1000.0,
        minor_fault: 20_000.0,
        major_fault: 0.0,
        swap_write: 0.0,
        page_scanned: 0.0,
        direct_reclaim: 0.0,
    };

    /// `check_preempt_wakeup_fair` → `update_curr` → `update_deadline` (kernel/sched/fair.c
    /// v6.12): a wake after the process's 0.75 ms slice (`sysctl_sched_base_slice` on one CPU)
    /// since the last tick reschedules it at once; a wake within the slice waits for the next
    /// tick (HZ=250: `entity_tick` → `update_curr`), since `pick_eevdf` keeps the process with
    /// the earlier deadline.
    #[test]
    fn a_woken_kswapd_gets_the_cpu_at_the_wake_after_the_slice_else_at_the_next_tick() {
        assert_eq!(GuestClock::dispatch_at(0), TICK_NS);
        assert_eq!(GuestClock::dispatch_at(BASE_SLICE_NS - 1), TICK_NS);
        assert_eq!(GuestClock::dispatch_at(BASE_SLICE_NS), BASE_SLICE_NS);
        assert_eq!(GuestClock::dispatch_at(TICK_NS + 100), 2 * TICK_NS);
        assert_eq!(GuestClock::dispatch_at(2 * TICK_NS - 1), 2 * TICK_NS - 1);
    }

    #[test]
    fn the_guest_clock_is_the_costs_times_the_counts_since_it_was_set() {
        let mut k = kernel("6.12");
        let pid = k.spawn("test", false).unwrap();
        let a = k.mmap(pid, 64 * 4096, MapKind::Anon, false, None).unwrap();
        k.access(pid, 0, a, true, 1).unwrap(); // before the clock: not counted
        k.set_guest_clock(Some(COST), false).unwrap();
        assert_eq!(k.guest_now(), 0);
        for i in 1..4u64 {
            k.access(pid, 0, a + i * 4096, true, 1).unwrap();
            k.guest_request_done();
        }
        k.access(pid, 0, a, true, 2).unwrap();
        k.guest_request_done();
        assert_eq!(k.guest_now(), 4 * 1000 + 3 * 20_000, "four requests, three minor faults");
        let bad = GuestCost { request: -1.0, ..COST };
        assert!(k.set_guest_clock(Some(bad), false).unwrap_err().to_string().contains("not negative"));
        let e = k.set_guest_clock(Some(COST), true).unwrap_err().to_string();
        assert!(e.contains("one_cpu"), "{e}");
        assert!(k.set_guest_clock(None, true).is_err());
        assert!(k.snapshot_bytes().is_err(), "a kernel with a guest clock refuses a snapshot");
        k.set_guest_clock(None, false).unwrap();
        assert!(k.snapshot_bytes().is_ok());
    }

    /// A direct reclaim (`try_to_free_pages`, mm/vmscan.c 6.12.117) takes guest time even when
    /// it scans and reclaims nothing: `GuestCost::direct_reclaim` a call, so that the
    /// time-driven events (the memcg flush, the tick) come while a process reclaims in vain.
    #[test]
    fn a_direct_reclaim_that_finds_nothing_still_takes_guest_time() {
        let mut k = kernel("6.12");
        let cost = GuestCost { direct_reclaim: 50_000.0, ..COST };
        k.set_guest_clock(Some(cost), false).unwrap();
        assert_eq!(k.lru_sizes().iter().map(|(_, n)| n).sum::<u64>(), 0, "nothing to reclaim");
        assert_eq!(k.try_to_free_pages(32), 0);
        assert_eq!(k.try_to_free_pages(32), 0);
        assert_eq!(k.vmstat.get(Vm::pgscan_direct), 0);
        assert_eq!(k.guest_now(), 2 * 50_000, "two direct reclaims");
        let bad = GuestCost { direct_reclaim: f64::NAN, ..COST };
        assert!(k.set_guest_clock(Some(bad), false).is_err());
    }

    /// `flush_memcg_stats_dwork` every FLUSH_TIME (mm/memcontrol.c v6.12) on the guest's time:
    /// at 1 ms a request the refault counts reclaim reads are refreshed after 2,000 requests,
    /// whatever the model's cost clock says.
    #[test]
    fn with_a_guest_clock_the_memcg_flush_runs_every_two_seconds_of_guest_time() {
        use crate::mm::memcontrol::MemcgStats;
        let mut k = kernel("6.12");
        k.set_memcg_stats(MemcgStats::Rstat612).unwrap();
        let ms = GuestCost { request: 1e6, ..Default::default() };
        k.set_guest_clock(Some(ms), false).unwrap();
        k.vmstat.inc(Vm::workingset_activate_anon);
        k.tick(3 * crate::mm::memcontrol::FLUSH_TIME_NS); // the cost clock is not the flush's
        assert_eq!(k.lruvec_workingset_activate(), [0, 0]);
        for _ in 0..1999 {
            k.guest_request_done();
        }
        assert_eq!(k.lruvec_workingset_activate(), [0, 0], "1.999 s of guest time");
        k.guest_request_done();
        assert_eq!(k.lruvec_workingset_activate(), [1, 0], "flushed at 2 s");
    }

    /// On one CPU with the scheduler tick (kernel/sched/fair.c v6.12, `update_deadline` at the
    /// tick after the process's slice): a process that never sleeps on a swap read still lets
    /// a woken kswapd run (`balance_pgdat`: PAGEOUTRUN, pgscan_kswapd), within a tick of guest
    /// time of its wake; without the tick it never runs and the process reclaims directly.
    #[test]
    fn on_one_cpu_the_tick_gives_a_woken_kswapd_the_cpu_where_no_swap_read_would() {
        let run = |sched_tick: bool| {
            let mut k = kernel("6.12");
            k.set_kswapd_mode(KswapdMode::OneCpu);
            k.set_guest_clock(Some(COST), sched_tick).unwrap();
            let pid = k.spawn("test", false).unwrap();
            let n = 3000u64; // more than the 2048 pages of memory, each touched once: no read
            let a = k.mmap(pid, n * 4096, MapKind::Anon, false, None).unwrap();
            let mut waited = 0u64;
            for i in 0..n {
                let woken_before = k.kswapd.woken.then(|| k.guest_clock.as_deref().unwrap().kswapd_woken_at);
                let runs = k.vmstat.get(Vm::pageoutrun);
                k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
                k.guest_request_done();
                if let Some(Some(w)) = woken_before
                    && k.vmstat.get(Vm::pageoutrun) > runs
                {
                    waited = waited.max(k.guest_now() - w);
                }
            }
            assert_eq!(k.vmstat.get(Vm::pgmajfault), 0);
            k.check_invariants().unwrap();
            (k, waited)
        };
        let (tick, waited) = run(true);
        assert!(tick.vmstat.get(Vm::pageoutrun) > 0 && tick.vmstat.get(Vm::pgscan_kswapd) > 0);
        assert!(waited > 0 && waited <= TICK_NS + 21_000, "kswapd waited {waited} ns for the CPU");
        let (none, _) = run(false);
        assert_eq!(none.vmstat.get(Vm::pageoutrun), 0, "without the tick kswapd never gets the CPU");
        assert!(none.vmstat.get(Vm::allocstall_normal) > tick.vmstat.get(Vm::allocstall_normal));
    }
}
