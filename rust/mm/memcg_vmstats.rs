//! The state of the memory cgroup statistics that reclaim reads (`struct memcg_vmstats` and the
//! flusher's `flush_last_time`, mm/memcontrol.c v6.12) and the choice of reading them
//! ([`MemcgStats`]); the flushes themselves are in [`crate::mm::memcontrol`].

use serde::{Deserialize, Serialize};

use crate::named::Named;

/// FLUSH_TIME (mm/memcontrol.c v6.12, `2UL*HZ`): the period of `flush_memcg_stats_dwork`, ns.
pub const FLUSH_TIME_NS: u64 = 2_000_000_000;

/// MEMCG_CHARGE_BATCH (include/linux/memcontrol.h v6.12) times `num_online_cpus()` (the
/// model's one CPU): `memcg_vmstats_needs_flush`'s threshold.
pub const MEMCG_FLUSH_THRESHOLD: u64 = 64;

/// How reclaim reads the memcg statistics it compares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemcgStats {
    /// The live counts (as with CONFIG_MEMCG=n or before the rstat flushing): the default.
    #[default]
    Live,
    /// The v6.12 rstat statistics, refreshed by the flushes of the module doc.
    Rstat612,
    /// The same with the LRU sizes read flushed too: `inactive_is_low` (mm/vmscan.c 6.12.117
    /// and 6.12.107) reads `lruvec_page_state(lruvec, NR_LRU_BASE + lru)`, the aggregate as of
    /// the last flush, as the refault counts are read.
    Rstat612Lru,
}

impl Named for MemcgStats {
    const NAMES: &'static [(MemcgStats, &'static str)] = &[
        (MemcgStats::Live, "live"),
        (MemcgStats::Rstat612, "rstat-6.12"),
        (MemcgStats::Rstat612Lru, "rstat-6.12-lru"),
    ];
    const SETTING: &'static str = "memcg_stats";
}

/// The root memcg's flushed statistics and its flusher's state (v6.12).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MemcgRstat {
    /// WORKINGSET_ACTIVATE_ANON / _FILE of `pn->lruvec_stats->state[]` as of the last flush.
    pub(crate) workingset_activate: [u64; 2],
    /// `flush_last_time` (ns of the cost clock).
    pub(crate) flush_last_time: u64,
    /// When `stats_flush_dwork` runs next (ns).
    pub(crate) next_periodic: u64,
    /// NR_INACTIVE_ANON, NR_ACTIVE_ANON, NR_INACTIVE_FILE, NR_ACTIVE_FILE as of the last flush,
    /// with [`MemcgStats::Rstat612Lru`] (None: read live).
    pub(crate) lru_size: Option<[u64; 4]>,
}
