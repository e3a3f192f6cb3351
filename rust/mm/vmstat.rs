//! Event counters of /proc/vmstat, by their kernel names (include/linux/vm_event_item.h), and
//! the gauges computed from the model's state when read.
//!
//! Counters that the kernel does not have are prefixed `model_` and documented.

use serde::{Deserialize, Serialize};

macro_rules! counters {
    ($($(#[$m:meta])* $id:ident = $name:literal,)*) => {
        /// A vm event counter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types)]
        #[repr(usize)]
        pub enum Vm { $($(#[$m])* $id,)* }
        impl Vm {
            pub const ALL: &'static [Vm] = &[$(Vm::$id,)*];
            pub fn name(self) -> &'static str {
                match self { $(Vm::$id => $name,)* }
            }
        }
    };
}

counters! {
    /// KiB read from block devices: `submit_bio` counts sectors (`count_vm_events(PGPGIN,
    /// bio_sectors(bio))`) and /proc/vmstat halves them (mm/vmstat.c `vmstat_start`, 4.13..6.12:
    /// `v[PGPGIN] /= 2; /* sectors -> kbytes */`): [`PGPG_PER_PAGE`]
    /// per page.
    pgpgin = "pgpgin",
    /// KiB written to block devices, as `pgpgin`.
    pgpgout = "pgpgout",
    pswpin = "pswpin",
    pswpout = "pswpout",
    pgalloc_normal = "pgalloc_normal",
    pgfree = "pgfree",
    pgactivate = "pgactivate",
    pgdeactivate = "pgdeactivate",
    pglazyfree = "pglazyfree",
    pgfault = "pgfault",
    pgmajfault = "pgmajfault",
    pglazyfreed = "pglazyfreed",
    pgrefill = "pgrefill",
    pgreuse = "pgreuse",
    pgsteal_kswapd = "pgsteal_kswapd",
    pgsteal_direct = "pgsteal_direct",
    pgscan_kswapd = "pgscan_kswapd",
    pgscan_direct = "pgscan_direct",
    pgscan_anon = "pgscan_anon",
    pgscan_file = "pgscan_file",
    pgsteal_anon = "pgsteal_anon",
    pgsteal_file = "pgsteal_file",
    pageoutrun = "pageoutrun",
    allocstall_normal = "allocstall_normal",
    pgrotated = "pgrotated",
    kswapd_low_wmark_hit_quickly = "kswapd_low_wmark_hit_quickly",
    kswapd_high_wmark_hit_quickly = "kswapd_high_wmark_hit_quickly",
    workingset_refault_anon = "workingset_refault_anon",
    workingset_refault_file = "workingset_refault_file",
    workingset_activate_anon = "workingset_activate_anon",
    workingset_activate_file = "workingset_activate_file",
    workingset_restore_anon = "workingset_restore_anon",
    pgmigrate_success = "pgmigrate_success",
    pgmigrate_fail = "pgmigrate_fail",
    unevictable_pgs_culled = "unevictable_pgs_culled",
    unevictable_pgs_mlocked = "unevictable_pgs_mlocked",
    unevictable_pgs_munlocked = "unevictable_pgs_munlocked",
    unevictable_pgs_rescued = "unevictable_pgs_rescued",
    /// UNEVICTABLE_PGCLEARED ("on COW, page truncate"): 4.x `clear_page_mlock` from
    /// `page_remove_rmap`; 6.12 counts it when a still-mlocked folio is freed.
    unevictable_pgs_cleared = "unevictable_pgs_cleared",
    swap_ra = "swap_ra",
    swap_ra_hit = "swap_ra_hit",
    oom_kill = "oom_kill",
    /// try_to_unmap_one took the `pte_unused` branch: the PTE is left none, no swap entry.
    model_pte_unused_dropped = "model_pte_unused_dropped",
    /// Faults delivered to userspace through handle_userfault.
    model_userfaults = "model_userfaults",
    /// `__gmap_zap` / `ptep_zap_unused` cleared a swap PTE.
    model_cbrl_zapped = "model_cbrl_zapped",
    /// Pages whose PTEs DIAG 0x10 (`gmap_discard`) zapped.
    model_diag10_zapped = "model_diag10_zapped",
    /// try_to_unmap_one returned false (the rmap walk was aborted).
    model_unmap_fail = "model_unmap_fail",
}

/// The event counters of one kernel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vmstat {
    v: Vec<u64>,
}

impl Default for Vmstat {
    fn default() -> Self {
        Vmstat { v: vec![0; Vm::ALL.len()] }
    }
}

/// What one 4 KiB page adds to `pgpgin` / `pgpgout` as /proc/vmstat shows them (KiB).
pub const PGPG_PER_PAGE: u64 = 4;

impl Vmstat {
    #[inline]
    pub fn inc(&mut self, c: Vm) {
        self.v[c as usize] += 1;
    }
    #[inline]
    pub fn add(&mut self, c: Vm, n: u64) {
        self.v[c as usize] += n;
    }
    #[inline]
    pub fn get(&self, c: Vm) -> u64 {
        self.v[c as usize]
    }
    /// Whether there is one counter per [`Vm`] (a snapshot could hold another number).
    pub fn check(&self) -> Result<(), String> {
        if self.v.len() == Vm::ALL.len() {
            Ok(())
        } else {
            Err(format!("vmstat has {} counters, the model {}", self.v.len(), Vm::ALL.len()))
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Vm::ALL.iter().map(|c| (c.name(), self.v[*c as usize]))
    }
}
