//! The event log: every observable step of the model, in order, with kernel tracepoint names
//! where the kernel has one (`mm_vmscan_*`), QEMU trace-event names for QEMU's steps
//! (`postcopy_place_page`, `get_queued_page_not_dirty`), and `subsystem:function` names for
//! the steps the kernel does not trace (`rmap:try_to_unmap_one`, `userfaultfd:handle_userfault`).
//!
//! Events are flat, fixed-size records (struct of a few integers), so that a log of millions of
//! events is cheap, hashes fast (determinism checks) and exports to Arrow without copying
//! strings. What the generic fields `a`, `b`, `c` mean is given per kind by [`Ev::fields`].

use crate::profile::Profile;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The kind of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Ev {
    // --- mm ---
    Mmap,
    Munmap,
    Madvise,
    Fork,
    Exit,
    Mlock,
    // --- faults ---
    /// A fault resolved by `do_anonymous_page`, `do_fault`, `do_swap_page` or `do_wp_page`.
    Fault,
    /// An access raised SIGSEGV.
    Sigsegv,
    /// An access raised SIGBUS.
    Sigbus,
    /// A fault could not get memory (VM_FAULT_OOM).
    FaultOom,
    // --- userfaultfd ---
    HandleUserfault,
    UffdWake,
    UffdCopy,
    UffdZeropage,
    UffdContinue,
    UffdRegister,
    UffdUnregister,
    UffdEvent,
    /// A thread parked on a userfault runs again and retries its access.
    ThreadWoken,
    // --- rmap / reclaim ---
    TryToUnmapOne,
    TryToMigrateOne,
    KswapdWake,
    KswapdSleep,
    DirectReclaimBegin,
    DirectReclaimEnd,
    LruShrinkInactive,
    LruShrinkActive,
    WritePage,
    SwapIn,
    // --- s390 / KVM ---
    Essa,
    GmapZap,
    Diag10,
    SetCmmaBits,
    SkeyEnable,
    // --- QEMU ---
    RamDiscardRange,
    PostcopyPlacePage,
    PostcopyPlacePageZero,
    PostcopyRequest,
    GetQueuedPageNotDirty,
    PostcopyRequestSuppressed,
    PrecopySend,
    MigrationPhase,
    VcpuBlocked,
    /// A zero-page mapping removed when storage keys are enabled (zapped, or unshared v6.11+).
    ZeroPageZap,
    // --- mm (later additions: appended so that the numbering of older kinds stays) ---
    Mprotect,
    Mremap,
    /// `mm_vmscan_lru_isolate`, traced by MGLRU's `scan_folios` (the classic path's
    /// isolation is not traced by the model).
    LruIsolate,
    /// `mm_lru_insertion` (include/trace/events/pagemap.h): a page added to an LRU list by
    /// `lru_cache_add` / `folio_add_lru`. Off until enabled ([`EventLog::OFF_BY_DEFAULT`]).
    LruInsertion,
}

impl Ev {
    /// The model's name of the event kind (stable across profiles; [`Ev::by_name`] parses it).
    /// The `mm_vmscan_*` kinds mirror kernel tracepoints of include/trace/events/vmscan.h and
    /// [`Ev::tracepoint`] gives the name of that tracepoint in a profile's release. Every
    /// `system:function` name (`mm:handle_mm_fault`, `rmap:try_to_unmap_one`, `kvm:essa`,
    /// `qemu:…`) is the model's own: no kernel tracepoint has it (the kernel has no `rmap` or
    /// `mm` trace system), and the ftrace export writes those events as
    /// `reclaim:<name>` so that they cannot be mistaken for tracepoints.
    pub fn name(self) -> &'static str {
        match self {
            Ev::Mmap => "mm:mmap",
            Ev::Munmap => "mm:munmap",
            Ev::Madvise => "mm:madvise",
            Ev::Fork => "mm:fork",
            Ev::Exit => "mm:exit_mmap",
            Ev::Mlock => "mm:mlock",
            Ev::Fault => "mm:handle_mm_fault",
            Ev::Sigsegv => "signal:sigsegv",
            Ev::Sigbus => "signal:sigbus",
            Ev::FaultOom => "mm:fault_oom",
            Ev::HandleUserfault => "userfaultfd:handle_userfault",
            Ev::UffdWake => "userfaultfd:wake",
            Ev::UffdCopy => "userfaultfd:uffdio_copy",
            Ev::UffdZeropage => "userfaultfd:uffdio_zeropage",
            Ev::UffdContinue => "userfaultfd:uffdio_continue",
            Ev::UffdRegister => "userfaultfd:uffdio_register",
            Ev::UffdUnregister => "userfaultfd:uffdio_unregister",
            Ev::UffdEvent => "userfaultfd:event",
            Ev::ThreadWoken => "sched:thread_woken",
            Ev::TryToUnmapOne => "rmap:try_to_unmap_one",
            Ev::TryToMigrateOne => "rmap:try_to_migrate_one",
            Ev::KswapdWake => "mm_vmscan_kswapd_wake",
            Ev::KswapdSleep => "mm_vmscan_kswapd_sleep",
            Ev::DirectReclaimBegin => "mm_vmscan_direct_reclaim_begin",
            Ev::DirectReclaimEnd => "mm_vmscan_direct_reclaim_end",
            Ev::LruShrinkInactive => "mm_vmscan_lru_shrink_inactive",
            Ev::LruShrinkActive => "mm_vmscan_lru_shrink_active",
            Ev::WritePage => "mm_vmscan_write_folio",
            Ev::SwapIn => "swap:swap_readpage",
            Ev::Essa => "kvm:essa",
            Ev::GmapZap => "kvm:gmap_zap",
            Ev::Diag10 => "kvm:diag_release_pages",
            Ev::SetCmmaBits => "kvm:set_cmma_bits",
            Ev::SkeyEnable => "kvm:s390_enable_skey",
            Ev::RamDiscardRange => "qemu:ram_discard_range",
            Ev::PostcopyPlacePage => "qemu:postcopy_place_page",
            Ev::PostcopyPlacePageZero => "qemu:postcopy_place_page_zero",
            Ev::PostcopyRequest => "qemu:postcopy_ram_fault_thread_request",
            Ev::GetQueuedPageNotDirty => "qemu:get_queued_page_not_dirty",
            Ev::PostcopyRequestSuppressed => "qemu:postcopy_request_suppressed",
            Ev::PrecopySend => "qemu:ram_save_page",
            Ev::MigrationPhase => "qemu:migration_phase",
            Ev::VcpuBlocked => "kvm:vcpu_blocked",
            Ev::ZeroPageZap => "kvm:zap_zero_page",
            Ev::Mprotect => "mm:mprotect",
            Ev::Mremap => "mm:mremap",
            Ev::LruIsolate => "mm_vmscan_lru_isolate",
            Ev::LruInsertion => "mm_lru_insertion",
        }
    }

    /// The kernel tracepoint this kind mirrors, by its name in `profile`'s release, or None
    /// for the model's own events. `TRACE_EVENT(mm_vmscan_writepage, ...)` up to v5.17,
    /// `TRACE_EVENT(mm_vmscan_write_folio, ...)` from v5.18
    /// ([`Profile::vmscan_write_folio_tracepoint`]); the kswapd, direct-reclaim and
    /// lru_shrink tracepoints have one name in every modelled release (4.13 .. 6.12).
    pub fn tracepoint(self, profile: &Profile) -> Option<&'static str> {
        match self {
            Ev::WritePage if !profile.vmscan_write_folio_tracepoint => Some("mm_vmscan_writepage"),
            Ev::KswapdWake
            | Ev::KswapdSleep
            | Ev::DirectReclaimBegin
            | Ev::DirectReclaimEnd
            | Ev::LruShrinkInactive
            | Ev::LruShrinkActive
            | Ev::LruIsolate
            | Ev::LruInsertion
            | Ev::WritePage => Some(self.name()),
            _ => None,
        }
    }

    /// What the generic fields `a`, `b`, `c` hold for this kind (None = unused).
    pub fn fields(self) -> [Option<&'static str>; 3] {
        match self {
            Ev::Mmap | Ev::Munmap | Ev::Mlock => [Some("len"), Some("vm_flags"), None],
            Ev::Madvise => [Some("len"), Some("advice"), Some("ret")],
            Ev::Fork => [Some("child_pid"), None, None],
            Ev::Exit => [None, None, None],
            Ev::Fault => [Some("pfn"), Some("path"), Some("write")],
            Ev::Sigsegv | Ev::Sigbus | Ev::FaultOom => [Some("write"), None, None],
            Ev::HandleUserfault => [Some("uffd"), Some("reason"), Some("flags")],
            Ev::UffdWake | Ev::UffdRegister | Ev::UffdUnregister => [Some("uffd"), Some("len"), Some("mode")],
            Ev::UffdCopy | Ev::UffdZeropage | Ev::UffdContinue => [Some("uffd"), Some("len"), Some("ret")],
            Ev::UffdEvent => [Some("uffd"), Some("event"), Some("arg")],
            Ev::ThreadWoken => [Some("blocked_ns"), None, None],
            Ev::TryToUnmapOne | Ev::TryToMigrateOne => [Some("pfn"), Some("result"), Some("pteval")],
            Ev::KswapdWake => [Some("nid"), Some("zid"), Some("order")],
            Ev::KswapdSleep => [Some("nid"), None, None],
            Ev::DirectReclaimBegin => [Some("order"), None, None],
            Ev::DirectReclaimEnd => [Some("nr_reclaimed"), None, None],
            Ev::LruShrinkInactive => [Some("nr_scanned"), Some("nr_reclaimed"), Some("nr_unmap_fail")],
            Ev::LruShrinkActive => [Some("nr_taken"), Some("nr_deactivated"), Some("nr_referenced")],
            Ev::WritePage => [Some("pfn"), Some("swap_offset"), None],
            Ev::SwapIn => [Some("pfn"), Some("swap_offset"), Some("major")],
            Ev::Essa => [Some("orc"), Some("res"), Some("usage")],
            Ev::GmapZap => [Some("gaddr"), Some("zapped"), None],
            Ev::Diag10 => [Some("gstart"), Some("gend"), None],
            Ev::SetCmmaBits => [Some("gfn"), Some("count"), None],
            Ev::SkeyEnable => [Some("zero_pages"), None, None],
            Ev::RamDiscardRange => [Some("offset"), Some("len"), None],
            Ev::PostcopyPlacePage | Ev::PostcopyPlacePageZero => [Some("offset"), Some("ret"), None],
            Ev::PostcopyRequest => [Some("offset"), None, None],
            Ev::GetQueuedPageNotDirty => [Some("offset"), None, None],
            Ev::PostcopyRequestSuppressed => [Some("offset"), None, None],
            Ev::PrecopySend => [Some("offset"), Some("iteration"), None],
            Ev::MigrationPhase => [Some("phase"), None, None],
            Ev::VcpuBlocked => [Some("gaddr"), None, None],
            Ev::ZeroPageZap => [Some("unshared"), None, None],
            Ev::Mprotect => [Some("len"), Some("prot"), Some("errno")],
            Ev::Mremap => [Some("new_addr"), Some("old_len"), Some("new_len")],
            Ev::LruIsolate => [Some("nr_scanned"), Some("nr_taken"), Some("lru")],
            Ev::LruInsertion => [Some("pfn"), Some("lru"), Some("flags")],
        }
    }

    pub const ALL: [Ev; 48] = [
        Ev::Mmap,
        Ev::Munmap,
        Ev::Madvise,
        Ev::Fork,
        Ev::Exit,
        Ev::Mlock,
        Ev::Fault,
        Ev::Sigsegv,
        Ev::Sigbus,
        Ev::FaultOom,
        Ev::HandleUserfault,
        Ev::UffdWake,
        Ev::UffdCopy,
        Ev::UffdZeropage,
        Ev::UffdContinue,
        Ev::UffdRegister,
        Ev::UffdUnregister,
        Ev::UffdEvent,
        Ev::ThreadWoken,
        Ev::TryToUnmapOne,
        Ev::TryToMigrateOne,
        Ev::KswapdWake,
        Ev::KswapdSleep,
        Ev::DirectReclaimBegin,
        Ev::DirectReclaimEnd,
        Ev::LruShrinkInactive,
        Ev::LruShrinkActive,
        Ev::WritePage,
        Ev::SwapIn,
        Ev::Essa,
        Ev::GmapZap,
        Ev::Diag10,
        Ev::SetCmmaBits,
        Ev::SkeyEnable,
        Ev::RamDiscardRange,
        Ev::PostcopyPlacePage,
        Ev::PostcopyPlacePageZero,
        Ev::PostcopyRequest,
        Ev::GetQueuedPageNotDirty,
        Ev::PostcopyRequestSuppressed,
        Ev::PrecopySend,
        Ev::MigrationPhase,
        Ev::VcpuBlocked,
        Ev::ZeroPageZap,
        Ev::Mprotect,
        Ev::Mremap,
        Ev::LruIsolate,
        Ev::LruInsertion,
    ];

    pub fn from_u8(v: u8) -> Option<Ev> {
        Ev::ALL.get(v as usize).copied()
    }

    pub fn by_name(name: &str) -> Option<Ev> {
        if name == "mm_vmscan_writepage" {
            // the tracepoint's name before v5.18 (Ev::tracepoint)
            return Some(Ev::WritePage);
        }
        Ev::ALL.iter().copied().find(|e| e.name() == name)
    }
}

/// One event. 48 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    /// Simulated time in nanoseconds.
    pub t: u64,
    /// The virtual address concerned (0 if none).
    pub addr: u64,
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub pid: u32,
    /// Thread id (a vCPU's index for guest threads); u16 is plenty.
    pub tid: u16,
    pub kind: Ev,
    /// Which host of a run (0 for a lone kernel; source 0 and destination 1 in a migration).
    pub host: u8,
}

/// Names of the `path` field of [`Ev::Fault`].
pub mod fault_path {
    pub const ANON: u64 = 0;
    pub const ZERO_PAGE: u64 = 1;
    pub const SWAP_CACHE: u64 = 2;
    pub const SWAP_MAJOR: u64 = 3;
    pub const WP_COPY: u64 = 4;
    pub const WP_REUSE: u64 = 5;
    pub const YOUNG: u64 = 6;
    pub const DIRTY: u64 = 7;
    pub const SHMEM: u64 = 8;
    pub const FILE_READ: u64 = 9;
    pub const FILE_COW: u64 = 10;
    pub const UFFD_WP_RESOLVED: u64 = 11;
    pub const NAMES: [&str; 12] = [
        "do_anonymous_page",
        "do_anonymous_page:zero_page",
        "do_swap_page:swapcache",
        "do_swap_page:major",
        "do_wp_page:copy",
        "do_wp_page:reuse",
        "handle_pte_fault:young",
        "handle_pte_fault:dirty",
        "do_shared_fault",
        "do_read_fault",
        "do_cow_fault",
        "do_wp_page:uffd_wp",
    ];
}

/// Names of the `result` field of [`Ev::TryToUnmapOne`].
pub mod ttu_result {
    pub const SWAP: u64 = 0;
    pub const DROP_UNUSED: u64 = 1;
    pub const LAZYFREE_DISCARD: u64 = 2;
    pub const LAZYFREE_REDIRTIED: u64 = 3;
    pub const ABORT_MLOCK: u64 = 4;
    pub const ABORT_YOUNG: u64 = 5;
    pub const ABORT_SWAP_DUP: u64 = 6;
    pub const FILE: u64 = 7;
    pub const MIGRATION_ENTRY: u64 = 8;
    pub const HWPOISON: u64 = 9;
    /// The WARN_ON_ONCE path: an anon page that is swap-backed but not in the swap cache.
    pub const ABORT_NOT_SWAPCACHE: u64 = 10;
    pub const NAMES: [&str; 11] = [
        "swap_entry",
        "drop_pte_unused",
        "lazyfree_discard",
        "lazyfree_redirtied",
        "abort_mlocked",
        "abort_young",
        "abort_swap_duplicate",
        "file_unmapped",
        "migration_entry",
        "hwpoison_entry",
        "abort_swapbacked_not_swapcache",
    ];
}

/// QEMU migration phases ([`Ev::MigrationPhase`]).
pub mod phase {
    pub const SETUP: u64 = 0;
    pub const PRECOPY: u64 = 1;
    pub const POSTCOPY: u64 = 2;
    pub const COMPLETED: u64 = 3;
    pub const FAILED: u64 = 4;
    pub const NAMES: [&str; 5] = ["setup", "precopy", "postcopy", "completed", "failed"];
}

impl Event {
    /// A one-line text in the style of an ftrace line: `name: field=value ...`.
    pub fn render(&self) -> String {
        let mut s = format!("{} pid={} tid={}", self.kind.name(), self.pid, self.tid);
        if self.addr != 0 {
            let _ = write!(s, " addr={:#x}", self.addr);
        }
        let vals = [self.a, self.b, self.c];
        for (name, v) in self.kind.fields().iter().zip(vals) {
            let Some(n) = name else { continue };
            let text = match (self.kind, *n) {
                (Ev::Fault, "path") => fault_path::NAMES.get(v as usize).map(|x| x.to_string()),
                (Ev::TryToUnmapOne | Ev::TryToMigrateOne, "result") => {
                    ttu_result::NAMES.get(v as usize).map(|x| x.to_string())
                }
                (Ev::MigrationPhase, "phase") => phase::NAMES.get(v as usize).map(|x| x.to_string()),
                (Ev::Essa, "orc") => crate::arch::s390::essa::ORC_NAMES.get(v as usize).map(|x| x.to_string()),
                (_, "pteval" | "pfn" | "gaddr" | "gstart" | "gend" | "vm_flags" | "offset") => Some(format!("{v:#x}")),
                _ => None,
            };
            let _ = write!(s, " {n}={}", text.unwrap_or_else(|| v.to_string()));
        }
        s
    }
}

/// The log: events in the order they happened, plus a mask of the kinds to keep.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventLog {
    events: Vec<Event>,
    /// Bit `k` set: drop events of kind `k` (large studies mute per-page kinds).
    muted: u64,
    /// Bit `r` set: drop try_to_unmap_one / try_to_migrate_one events with result `r`
    /// (large studies keep the drops and aborts, not every swap entry).
    muted_results: u64,
}

crate::sim::clone_fields::clone_fields!(EventLog { events, muted, muted_results });

/// `mm_lru_insertion`'s `flags` (`trace_pagemap_flags`, include/trace/events/pagemap.h).
pub mod pagemap_flags {
    pub const MAPPED: u64 = 0x0001;
    pub const ANONYMOUS: u64 = 0x0002;
    pub const FILE: u64 = 0x0004;
    pub const SWAPCACHE: u64 = 0x0008;
    pub const SWAPBACKED: u64 = 0x0010;
    pub const MAPPEDDISK: u64 = 0x0020;
    pub const BUFFERS: u64 = 0x0040;
}

impl Default for EventLog {
    fn default() -> EventLog {
        EventLog { events: Vec::new(), muted: EventLog::OFF_BY_DEFAULT, muted_results: 0 }
    }
}

impl EventLog {
    /// The kinds a kernel records only once they are enabled (tracefs
    /// `events/<system>/<name>/enable` is 0 at boot): the per-page `mm_lru_insertion`. The
    /// model's other kinds are on from the start, as the model has always logged them.
    pub const OFF_BY_DEFAULT: u64 = 1 << Ev::LruInsertion as u8;

    pub fn new() -> EventLog {
        EventLog::default()
    }

    #[inline]
    pub fn push(&mut self, e: Event) {
        if self.muted & (1u64 << (e.kind as u8)) != 0 {
            return;
        }
        if matches!(e.kind, Ev::TryToUnmapOne | Ev::TryToMigrateOne)
            && e.b < 64
            && self.muted_results & (1u64 << e.b) != 0
        {
            return;
        }
        self.events.push(e);
    }

    /// Mute what every page produces on its normal path — faults, precopy sends, postcopy
    /// placements, writeback, swap-in, and try_to_unmap_one's swap-entry and file results — and
    /// keep the rare events (drops, aborts, userfaults, reclaim passes): the "chain" trace of a
    /// study of millions of pages.
    pub fn mute_per_page(&mut self) {
        for e in
            [Ev::Fault, Ev::PrecopySend, Ev::PostcopyPlacePage, Ev::PostcopyPlacePageZero, Ev::WritePage, Ev::SwapIn]
        {
            self.mute(e, true);
        }
        self.mute_result(ttu_result::SWAP, true);
        self.mute_result(ttu_result::FILE, true);
    }

    /// Also mute what every guest operation or migrated page produces — ESSA, UFFDIO_COPY and
    /// ZEROPAGE, madvise and QEMU's discards — and keep only the rare events: the "rare"
    /// trace of a study of tens of millions of pages, whose log must stay small.
    pub fn mute_all_but_rare(&mut self) {
        self.mute_per_page();
        for e in [Ev::Essa, Ev::UffdCopy, Ev::UffdZeropage, Ev::Madvise, Ev::RamDiscardRange] {
            self.mute(e, true);
        }
    }

    /// Drop try_to_unmap_one / try_to_migrate_one events whose result is `result`.
    /// A log that keeps nothing: for set-up work whose events are cleared afterwards, so they
    /// never take memory (a large study's boot writes every guest page).
    pub fn quiet() -> EventLog {
        EventLog { events: Vec::new(), muted: u64::MAX, muted_results: u64::MAX }
    }

    pub fn mute_result(&mut self, result: u64, muted: bool) {
        if muted {
            self.muted_results |= 1 << result;
        } else {
            self.muted_results &= !(1 << result);
        }
    }

    #[inline]
    pub fn enabled(&self, kind: Ev) -> bool {
        self.muted & (1u64 << (kind as u8)) == 0
    }

    pub fn mute(&mut self, kind: Ev, muted: bool) {
        if muted {
            self.muted |= 1u64 << (kind as u16);
        } else {
            self.muted &= !(1u64 << (kind as u8));
        }
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn clear(&mut self) {
        self.events.clear();
    }

    /// FNV-1a over every field of every event: equal logs have equal hashes, on every machine.
    pub fn hash(&self) -> u64 {
        hash_events(&self.events)
    }
}

/// FNV-1a 64 over the fields of `events` (little-endian), independent of the platform.
pub fn hash_events(events: &[Event]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: u64| {
        for b in v.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for e in events {
        eat(e.t);
        eat(e.addr);
        eat(e.a);
        eat(e.b);
        eat(e.c);
        eat(e.pid as u64 | (e.tid as u64) << 32 | (e.kind as u64) << 48 | (e.host as u64) << 56);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Event>(), 48);
    }

    #[test]
    fn kinds_round_trip_and_fit_the_mask() {
        assert!(Ev::ALL.len() <= 64);
        for (i, e) in Ev::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
            assert_eq!(Ev::from_u8(i as u8), Some(*e));
            assert_eq!(Ev::by_name(e.name()), Some(*e));
        }
    }

    #[test]
    fn mute_drops_and_hash_tracks_content() {
        let mut l = EventLog::new();
        let e = Event { t: 1, addr: 0x1000, a: 5, b: 1, c: 0x6cf, pid: 1, tid: 0, kind: Ev::TryToUnmapOne, host: 0 };
        l.push(e);
        let h1 = l.hash();
        l.mute(Ev::TryToUnmapOne, true);
        l.push(e);
        assert_eq!(l.len(), 1);
        assert_eq!(l.hash(), h1);
        assert!(e.render().contains("result=drop_pte_unused"), "{}", e.render());
        let mut l2 = EventLog::new();
        l2.push(Event { t: 2, ..e });
        assert_ne!(l2.hash(), h1);
    }
}
