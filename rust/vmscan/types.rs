//! The reclaim state the [`crate::Kernel`] holds (the `pglist_data` / `lruvec` fields of
//! include/linux/mmzone.h): kswapd's state and the recent scan statistics. A leaf module.

use serde::{Deserialize, Serialize};

/// How a woken kswapd gets to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum KswapdMode {
    /// When the operation that woke it returns (a lone kernel).
    #[default]
    Settle,
    /// Only when a scheduler steps it ([`crate::Kernel::kswapd_step`]).
    Actor,
    /// A machine with one CPU (the replay oracle's guests run `-smp 1`): kswapd and the
    /// faulting process share it, so a woken kswapd runs only when the process gives up the CPU
    /// by sleeping: waiting for a swap read in `do_swap_page` (`Kernel::io_schedule`).
    /// Until then the process allocates on, and below the min watermark it reclaims directly.
    /// Preemption at a scheduler tick is not modelled (the model has no CPU time).
    OneCpu,
}

/// `MAX_RECLAIM_RETRIES` (mm/internal.h): kswapd's failed runs before it is hopeless, and the
/// allocator's rounds of reclaim without progress.
pub const MAX_RECLAIM_RETRIES: u32 = 16;

/// kswapd's state (`pgdat->kswapd_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Kswapd {
    pub woken: bool,
    /// `pgdat->kswapd_failures`: runs that reclaimed nothing; from MAX_RECLAIM_RETRIES on,
    /// kswapd is "hopeless" and not woken any more until a page is freed by other means.
    pub failures: u32,
    pub mode: KswapdMode,
    /// `PGDAT_WRITEBACK` in `pgdat->flags` (mm/vmscan.c v6.12): set by kswapd's `shrink_node`
    /// when every page it took was under writeback, cleared when kswapd goes to sleep on a
    /// balanced node (`prepare_kswapd_sleep` → `clear_pgdat_congested`).
    pub pgdat_writeback: bool,
}

/// `reclaim_stat->recent_scanned` / `recent_rotated` of the lruvec, [anon, file].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecentStat {
    pub scanned: [u64; 2],
    pub rotated: [u64; 2],
    /// `lruvec->anon_cost` / `file_cost` (v5.8+, `lru_note_cost`).
    pub cost: [u64; 2],
    /// `lruvec->refaults[WORKINGSET_ANON / FILE]`: WORKINGSET_ACTIVATE at the end of the last
    /// reclaim (`snapshot_refaults`, v5.9+ for anon).
    pub refaults: [u64; 2],
}
