//! The guest clock's state and the scheduler's constants (the data of [`crate::sched`], which
//! `Kernel` holds; the functions on the kernel are in the parent module).

/// TICK_NSEC at CONFIG_HZ=250 (both Debian 6.12 configs of the oracle's guests), ns.
pub const TICK_NS: u64 = 4_000_000;
/// `sysctl_sched_base_slice` (kernel/sched/fair.c v6.12: 0.75 ms, `normalized_sysctl_sched_base_slice`
/// times `get_update_sysctl_factor()`, 1 on one CPU), ns.
pub const BASE_SLICE_NS: u64 = 750_000;

/// The guest's costs in nanoseconds (an input of the oracle: the TCG guest's speed).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GuestCost {
    /// Per request (the replay loop's access, hit or not).
    pub request: f64,
    /// Per minor fault (`pgfault - pgmajfault`; the kernel's rusage `minflt`).
    pub minor_fault: f64,
    /// Per major fault (`pgmajfault`).
    pub major_fault: f64,
    /// Per page written to swap (`pswpout`).
    pub swap_write: f64,
    /// Per page scanned by reclaim (`pgscan_kswapd + pgscan_direct`).
    pub page_scanned: f64,
    /// Per direct reclaim (`try_to_free_pages`, counted ALLOCSTALL): the guest's time in one
    /// beyond its pages scanned, which a reclaim that scans nothing takes too.
    pub direct_reclaim: f64,
}

/// The guest clock of a replay (`Kernel::set_guest_clock`, in the parent module).
#[derive(Clone, Debug, PartialEq)]
pub struct GuestClock {
    pub(crate) cost: GuestCost,
    /// kswapd also gets the CPU at the scheduler's switch (module doc), not only while the
    /// process sleeps on a swap read.
    pub(crate) sched_tick: bool,
    /// Requests done since the clock was set.
    pub(crate) requests: u64,
    /// The counters when the clock was set: pgfault, pgmajfault, pswpout, pgscan_kswapd +
    /// pgscan_direct, allocstall.
    pub(crate) base: [u64; 5],
    /// When kswapd was woken (guest ns), while it waits for the CPU.
    pub(crate) kswapd_woken_at: Option<u64>,
    /// Guest ns the process slept without an event the costs count (a NOPROGRESS throttle's
    /// jiffy, `Kernel::guest_sleep_to_next_tick`).
    pub(crate) slept: u64,
}

impl GuestClock {
    /// When a kswapd woken at `woken` gets the CPU (module doc): at once if the process's slice
    /// (from the last tick) is used up, else at the next tick.
    pub fn dispatch_at(woken: u64) -> u64 {
        let last_tick = woken / TICK_NS * TICK_NS;
        if woken - last_tick >= BASE_SLICE_NS { woken } else { last_tick + TICK_NS }
    }
}
