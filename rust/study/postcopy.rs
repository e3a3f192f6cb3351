//! The postcopy migration study: a KVM guest migrates from a source host to a destination host
//! under memory pressure, with QEMU postcopy; the outcome comes from the mechanisms alone (no
//! code knows about "the bug").
//!
//! Outcomes:
//! - `Completed`: the migration finished and no vCPU waited for a page that was never coming;
//! - `Hung`: a vCPU took a userfault for a page the destination had already received — QEMU
//!   never sends such a page again (3.0: the source drops the request; 5.2+: the request is not
//!   even sent), so the vCPU waits until the postcopy cleanup unregisters guest RAM at the very
//!   end, or forever;
//! - `Failed`: the incoming migration failed (a placement error such as EEXIST, or memory).
//!
//! The invariant "no userfault on a page already received" is checked on every run.

use super::stall::{self, Stall};
use crate::arch::s390::essa::{ESSA_SET_UNUSED, ORC_NAMES};
use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::kvm::guest::{Guest, GuestConfig};
use crate::mm::mmap::MapKind;
use crate::mm::vmstat::Vm;
use crate::profile::Profile;
use crate::qemu::dest::QemuDest;
use crate::qemu::source::QemuSource;
use crate::qemu::{Link, LinkConfig, QemuVersion};
use crate::sim::log::{Ev, Event, EventLog, fault_path, hash_events, phase, ttu_result};
use crate::sim::rng::Rng;
use crate::snapshot::{self, Kind};
use crate::study::world::{DST, SRC, World};
use serde::{Deserialize, Serialize};

/// How much of the event log a study keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Trace {
    /// Everything (small guests).
    Full,
    /// What causal chains need: no per-page fault, send, placement, swap-out or swap-in
    /// events (large guests).
    Chain,
    /// Only rare events (drops, zaps, userfaults, reclaim passes, phases): no per-operation
    /// ESSA, UFFDIO_COPY/ZEROPAGE or discard events either (guests of tens of GiB). Causal
    /// chains lose the steps those events gave.
    Rare,
    /// Full up to 1 GiB of guest memory, Chain up to 16 GiB, Rare above.
    Auto,
}

/// Everything a postcopy study is made of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostcopyConfig {
    /// The destination host's kernel profile: the one whose reclaim runs under userfaultfd
    /// during postcopy, so the one that decides whether the seed bug bites.
    pub profile: Profile,
    /// The source host's kernel profile (`PostcopyConfig::new` makes it the destination's):
    /// two hosts of a real migration often run different kernels. Not serialized on its own: a
    /// snapshot stores the source host's kernel with its profile, which restoring copies back
    /// here (so snapshots of format version 1 keep their layout).
    #[serde(skip, default = "placeholder_profile")]
    pub source_profile: Profile,
    pub qemu: QemuVersion,
    pub guest: GuestConfig,
    pub source_memory: u64,
    pub source_swap: u64,
    pub dest_memory: u64,
    pub dest_swap: u64,
    /// Bytes of other load on the destination (another process touching its memory).
    pub other_load: u64,
    pub load_interval_ns: u64,
    pub link: LinkConfig,
    pub precopy_iterations: u32,
    pub seed: u64,
    /// Give up after this much simulated time.
    pub max_time_ns: u64,
    pub trace: Trace,
}

/// What `source_profile` holds while a snapshot is decoded, before the source host's own
/// profile replaces it.
fn placeholder_profile() -> Profile {
    Profile::get("6.12", crate::arch::Arch::S390x).expect("6.12 is a built-in profile")
}

impl PostcopyConfig {
    /// The trace a run keeps: `Auto` resolved by the pages the run sends, the guest's size
    /// times the precopy iterations (each iteration may send every page again).
    pub fn trace_kept(&self) -> Trace {
        let sent = self.guest.pages.saturating_mul(u64::from(self.precopy_iterations.max(1)));
        match self.trace {
            Trace::Auto if sent > (16 << 30) / 4096 => Trace::Rare,
            Trace::Auto if sent > (1 << 30) / 4096 => Trace::Chain,
            Trace::Auto => Trace::Full,
            t => t,
        }
    }
}

impl PostcopyConfig {
    /// The defaults of `reclaim demo`: a 256 MiB guest with 2 vCPUs moving over 1 Gbit/s to a
    /// destination with 224 MiB of memory, 32 MiB of it used by other load.
    pub fn new(profile: Profile) -> PostcopyConfig {
        PostcopyConfig {
            source_profile: profile.clone(),
            profile,
            qemu: QemuVersion::V3_0,
            guest: GuestConfig::default(),
            source_memory: 320 << 20,
            source_swap: 64 << 20,
            dest_memory: 224 << 20,
            dest_swap: 512 << 20,
            other_load: 32 << 20,
            load_interval_ns: 20_000,
            link: LinkConfig::default(),
            precopy_iterations: 1,
            seed: 0,
            max_time_ns: 600_000_000_000,
            trace: Trace::Auto,
        }
    }
}

/// One step of a causal chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainStep {
    pub t: u64,
    /// "source" or "destination".
    pub host: &'static str,
    pub what: String,
    pub event: Event,
}

/// A vCPU that waited for a page that was never coming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hang {
    pub vcpu: u32,
    pub gfn: u32,
    /// When the vCPU took the userfault.
    pub since: u64,
    /// When the postcopy cleanup woke it (None: never).
    pub released_at: Option<u64>,
    pub chain: Vec<ChainStep>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Completed,
    Hung,
    Failed,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Hung => "hung",
            Outcome::Failed => "failed",
        }
    }
}

/// What a study measured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    pub total_time_ns: u64,
    pub downtime_ns: u64,
    pub precopy_pages: u64,
    pub postcopy_pages: u64,
    pub zero_pages: u64,
    pub userfaults: u64,
    pub userfaults_on_received: u64,
    pub page_requests: u64,
    pub requests_not_dirty: u64,
    pub requests_suppressed: u64,
    pub dest_pages_swapped: u64,
    pub dest_pages_dropped: u64,
    pub dest_cbrl_zapped: u64,
    pub dest_diag10_zapped: u64,
    pub dest_pgmajfault: u64,
    pub vcpu_blocked_ns: u64,
    pub guest_ops: u64,
    pub data_errors: u64,
}

impl Metrics {
    /// (name, value) pairs, in a stable order.
    pub fn items(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("total_time_ns", self.total_time_ns),
            ("downtime_ns", self.downtime_ns),
            ("precopy_pages", self.precopy_pages),
            ("postcopy_pages", self.postcopy_pages),
            ("zero_pages", self.zero_pages),
            ("userfaults", self.userfaults),
            ("userfaults_on_received", self.userfaults_on_received),
            ("page_requests", self.page_requests),
            ("requests_not_dirty", self.requests_not_dirty),
            ("requests_suppressed", self.requests_suppressed),
            ("dest_pages_swapped", self.dest_pages_swapped),
            ("dest_pages_dropped", self.dest_pages_dropped),
            ("dest_cbrl_zapped", self.dest_cbrl_zapped),
            ("dest_diag10_zapped", self.dest_diag10_zapped),
            ("dest_pgmajfault", self.dest_pgmajfault),
            ("vcpu_blocked_ns", self.vcpu_blocked_ns),
            ("guest_ops", self.guest_ops),
            ("data_errors", self.data_errors),
        ]
    }
}

/// The result of a study.
#[derive(Clone, Debug)]
pub struct StudyResult {
    pub outcome: Outcome,
    pub failure: Option<String>,
    pub hang: Option<Hang>,
    /// Every vCPU wait on a page QEMU had already sent: how long, and what ended it (see
    /// [`stall`] for what a guest shows for a stall that long).
    pub stalls: Vec<Stall>,
    pub metrics: Metrics,
    /// Both hosts' events, merged in time order.
    pub events: Vec<Event>,
    pub log_hash: u64,
    /// The trace level the study used.
    pub trace: Trace,
}

/// Build the two hosts, boot the guest on the source, and assemble the run.
pub fn build(cfg: &PostcopyConfig) -> Result<World> {
    if cfg.profile.arch != crate::arch::Arch::S390x || cfg.source_profile.arch != crate::arch::Arch::S390x {
        return Err(Error::invalid("the postcopy study needs the s390x arch on both hosts (a KVM guest with CMMA)"));
    }
    cfg.guest.validate()?;
    let guest_bytes = cfg.guest.pages << 12;
    if cfg.source_memory < guest_bytes + (4 << 20) {
        return Err(Error::invalid(format!(
            "source memory of {} MiB cannot hold the {} MiB guest (give it at least 4 MiB more)",
            cfg.source_memory >> 20,
            guest_bytes >> 20
        )));
    }
    check_other_load(cfg)?;
    let mut rng = Rng::new(cfg.seed);
    let mut src = Kernel::new(cfg.source_profile.clone(), cfg.source_memory, cfg.source_swap, rng.next_u64())?;
    let mut dst = Kernel::new(cfg.profile.clone(), cfg.dest_memory, cfg.dest_swap, rng.next_u64())?;
    let trace = cfg.trace_kept();
    let spid = src.spawn("qemu-system-s390x", true)?;
    let sbase = src.mmap(spid, guest_bytes, MapKind::Anon, false, None)?;
    let dpid = dst.spawn("qemu-system-s390x", true)?;
    let dbase = dst.mmap(dpid, guest_bytes, MapKind::Anon, false, None)?;
    let guest = Guest::new(cfg.guest.clone(), rng.fork(1))?;
    // the boot's and the other load's events are cleared before the run starts: log them
    // nowhere, so they never take memory (at 256 GiB they were gigabytes of events)
    let kept = std::mem::replace(&mut src.log, EventLog::quiet());
    boot(&mut src, spid, sbase, &guest)?;
    src.log = kept;
    src.log.clear();
    src.now = 0;
    for k in [&mut src, &mut dst] {
        match trace {
            Trace::Chain => k.log.mute_per_page(),
            Trace::Rare => k.log.mute_all_but_rare(),
            _ => {}
        }
    }
    let source = QemuSource::new(spid, sbase, cfg.guest.pages, cfg.precopy_iterations);
    let dest = QemuDest::new(dpid, dbase, cfg.guest.pages, cfg.qemu);
    let link = Link { cfg: cfg.link.clone(), ..Default::default() };
    let mut w = World::new(vec![src, dst], guest, source, dest, link);
    let kept = std::mem::replace(&mut w.hosts[DST].log, EventLog::quiet());
    w.add_load(cfg.other_load / 4096, cfg.load_interval_ns, rng.fork(2))?;
    w.hosts[DST].log = kept;
    w.hosts[DST].log.clear();
    w.hosts[DST].now = 0;
    Ok(w)
}

/// Refuse other load the destination cannot hold: the other process touches every page of it
/// up front, so more than the destination's memory and swap together could only end in the OOM
/// killer, and its page tables and swap-outs would cost host memory beyond the destination's
/// documented cost per page ([`crate::hostmem`]).
fn check_other_load(cfg: &PostcopyConfig) -> Result<()> {
    let room = cfg.dest_memory.saturating_add(cfg.dest_swap);
    if cfg.other_load > room {
        return Err(Error::invalid(format!(
            "other_load of {} is more than the destination's memory and swap together ({} + {}): \
             its process touches every page of it, which the destination cannot hold; ask for less",
            crate::hostmem::human(cfg.other_load),
            crate::hostmem::human(cfg.dest_memory),
            crate::hostmem::human(cfg.dest_swap)
        )));
    }
    Ok(())
}

/// The guest before the migration: the pages it uses are written (and ESSA SET_STABLE), its
/// free pages were freed (ESSA SET_UNUSED; never touched, their host PTEs are none).
fn boot(k: &mut Kernel, pid: u32, base: u64, g: &Guest) -> Result<()> {
    let orc = g.alloc_orc();
    for &gfn in g.used_pages() {
        let a = base + ((gfn as u64) << 12);
        if g.cfg.cmma {
            k.essa(pid, 0, a, orc)?;
        }
        k.access(pid, 0, a, true, g.expected(gfn))?;
    }
    if g.cfg.cmma {
        for &gfn in g.free_pages() {
            k.essa(pid, 0, base + ((gfn as u64) << 12), ESSA_SET_UNUSED)?;
        }
        k.process_cbrl(pid, 0);
    }
    Ok(())
}

/// Run a postcopy study.
pub fn run(cfg: &PostcopyConfig) -> Result<StudyResult> {
    let mut w = build(cfg)?;
    w.start();
    w.run(cfg.max_time_ns);
    Ok(result(&w, cfg))
}

/// The bytes of a snapshot of a study in progress: its configuration and its run (both hosts,
/// QEMU on each, the guest, the link, the RNGs and the pending actions). See `crate::snapshot`.
pub fn snapshot_bytes(w: &World, cfg: &PostcopyConfig) -> Result<Vec<u8>> {
    cfg.profile.check_storable()?;
    cfg.source_profile.check_storable()?;
    snapshot::encode(Kind::PostcopyRun, &(cfg, w))
}

/// A study in progress from snapshot bytes: refused with `Error::Format` unless they are a
/// well-formed postcopy-run snapshot whose run passes [`World::check_invariants`].
pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<(World, PostcopyConfig)> {
    let (mut cfg, w): (PostcopyConfig, World) = snapshot::decode(Kind::PostcopyRun, bytes)?;
    w.check_invariants().map_err(snapshot::inconsistent)?;
    let Some(source) = w.hosts.get(SRC) else {
        return Err(snapshot::inconsistent("the run has no source host".into()));
    };
    cfg.source_profile = source.profile.clone();
    if cfg.guest != w.guest.cfg {
        return Err(snapshot::inconsistent("the study's guest configuration is not its guest's".into()));
    }
    Ok((w, cfg))
}

/// Write a snapshot of a study in progress to `path` (atomically).
pub fn snapshot(w: &World, cfg: &PostcopyConfig, path: &std::path::Path) -> Result<()> {
    cfg.profile.check_storable()?;
    cfg.source_profile.check_storable()?;
    snapshot::write_state(path, Kind::PostcopyRun, &(cfg, w))
}

/// The study in progress of the snapshot file `path`; it continues exactly as the run that
/// wrote it.
pub fn restore(path: &std::path::Path) -> Result<(World, PostcopyConfig)> {
    from_snapshot_bytes(&snapshot::read_file(path, snapshot::Kind::PostcopyRun)?)
}

/// The result of a finished (or timed-out) run.
pub fn result(w: &World, cfg: &PostcopyConfig) -> StudyResult {
    let d = &w.hosts[DST];
    let mut events: Vec<Event> = w.hosts.iter().flat_map(|k| k.log.events().iter().copied()).collect();
    events.sort_by_key(|e| (e.t, e.host));
    let log_hash = hash_events(&events);
    let still_blocked = w.vcpus.iter().any(|v| v.blocked.is_some());
    let end = w.completed_at.or(w.failed.as_ref().map(|f| f.0)).unwrap_or(w.now);
    let m = Metrics {
        total_time_ns: end,
        downtime_ns: match (w.stopped_at, w.running_on_dest_at) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        },
        precopy_pages: w.src.stats.precopy_pages,
        postcopy_pages: w.src.stats.postcopy_pages,
        zero_pages: w.src.stats.zero_pages,
        userfaults: d.vmstat.get(Vm::model_userfaults),
        userfaults_on_received: w.dst.stats.received_faults.len() as u64,
        page_requests: w.src.stats.requests,
        requests_not_dirty: w.src.stats.requests_not_dirty,
        requests_suppressed: w.dst.stats.requests_suppressed,
        dest_pages_swapped: d.vmstat.get(Vm::pswpout),
        dest_pages_dropped: d.vmstat.get(Vm::model_pte_unused_dropped),
        dest_cbrl_zapped: d.vmstat.get(Vm::model_cbrl_zapped),
        dest_diag10_zapped: d.vmstat.get(Vm::model_diag10_zapped),
        dest_pgmajfault: d.vmstat.get(Vm::pgmajfault),
        vcpu_blocked_ns: (0..w.vcpus.len() as u32)
            .map(|i| {
                let t = d.mmx(w.dst.pid).threads.get(&i);
                t.map_or(0, |t| t.blocked_ns + t.blocked.map_or(0, |b| end.saturating_sub(b.since)))
            })
            .sum(),
        guest_ops: w.vcpus.iter().map(|v| v.ops).sum(),
        data_errors: w.data_errors.len() as u64,
    };
    let hang = w.dst.stats.received_faults.first().map(|rf| hang_of(w, &events, rf.gfn, rf.t));
    let (outcome, failure) = if let Some((_, why)) = &w.failed {
        (Outcome::Failed, Some(why.clone()))
    } else if hang.is_some() || still_blocked {
        (Outcome::Hung, None)
    } else if w.completed_at.is_some() {
        (Outcome::Completed, None)
    } else {
        (
            Outcome::Failed,
            Some(format!(
                "the migration did not complete within {} s of simulated time",
                cfg.max_time_ns / 1_000_000_000
            )),
        )
    };
    let hang = hang.or_else(|| {
        // blocked without a received-page fault: e.g. the run timed out
        let (i, v) = w.vcpus.iter().enumerate().find(|(_, v)| v.blocked.is_some())?;
        let (op, since) = v.blocked?;
        let gfn = match op {
            crate::kvm::guest::GuestOp::Alloc { gfn, .. }
            | crate::kvm::guest::GuestOp::Read { gfn }
            | crate::kvm::guest::GuestOp::Write { gfn, .. }
            | crate::kvm::guest::GuestOp::Free { gfn, .. } => gfn,
        };
        Some(Hang { vcpu: i as u32, gfn, since, released_at: None, chain: chain(w, &events, gfn) })
    });
    let faults: Vec<(u32, u64)> = w.dst.stats.received_faults.iter().map(|rf| (rf.gfn, rf.t)).collect();
    let base = w.dst.ram_base;
    let stalls = stall::stalls(&events, DST as u8, &faults, |gfn| base + ((gfn as u64) << 12), w.completed_at, end);
    StudyResult { outcome, failure, hang, stalls, metrics: m, events, log_hash, trace: cfg.trace_kept() }
}

/// The hang of the vCPU that faulted on received page `gfn` at about `t`.
fn hang_of(w: &World, events: &[Event], gfn: u32, t: u64) -> Hang {
    let dhva = w.dst.ram_base + ((gfn as u64) << 12);
    let blocked =
        events.iter().rfind(|e| e.host == DST as u8 && e.kind == Ev::VcpuBlocked && e.addr == dhva && e.t <= t);
    let vcpu = blocked.map_or(0, |e| e.tid as u32);
    let since = blocked.map_or(t, |e| e.t);
    let released_at = events
        .iter()
        .find(|e| {
            e.host == DST as u8 && e.kind == Ev::ThreadWoken && e.tid as u32 == vcpu && e.t >= since && e.addr == dhva
        })
        .map(|e| e.t);
    Hang { vcpu, gfn, since, released_at, chain: chain(w, events, gfn) }
}

/// The events of one guest page on both hosts, in time order, each described in kernel and QEMU
/// terms: how the page was received, marked unused, lost its PTE, faulted and was (not) sent.
pub fn chain(w: &World, events: &[Event], gfn: u32) -> Vec<ChainStep> {
    let shva = w.src.ram_base + ((gfn as u64) << 12);
    let dhva = w.dst.ram_base + ((gfn as u64) << 12);
    let mut out = Vec::new();
    for e in events {
        let host = if e.host == SRC as u8 { "source" } else { "destination" };
        let mine = if e.host == SRC as u8 { e.addr == shva } else { e.addr == dhva };
        let what = match e.kind {
            Ev::PrecopySend if mine && e.b == u64::MAX => Some("QEMU sends the page (postcopy)".to_string()),
            Ev::PrecopySend if mine => Some(format!("QEMU sends the page in precopy pass {}", e.b)),
            Ev::PostcopyPlacePage | Ev::PostcopyPlacePageZero if mine => Some(if e.b == 0 {
                format!(
                    "QEMU places the page with {} (received)",
                    if e.kind == Ev::PostcopyPlacePage { "UFFDIO_COPY" } else { "UFFDIO_ZEROPAGE" }
                )
            } else {
                format!("QEMU's placement fails with errno {}", e.b)
            }),
            Ev::SetCmmaBits if e.host == DST as u8 => {
                Some("KVM_S390_SET_CMMA_BITS applies the source's usage states (this page's too)".to_string())
            }
            Ev::RamDiscardRange if e.host == DST as u8 && (gfn as u64) >= e.a && (gfn as u64) < e.a + e.b => {
                Some("postcopy discard: received bit cleared, MADV_DONTNEED".to_string())
            }
            Ev::Essa if mine => Some(format!(
                "the guest (vCPU {}) issues ESSA {}{}",
                e.tid,
                ORC_NAMES.get(e.a as usize).copied().unwrap_or("?").to_uppercase(),
                if e.b == 1 { " (host PTE invalid: onto the CBRL)" } else { "" }
            )),
            Ev::TryToUnmapOne | Ev::TryToMigrateOne if mine => Some(match e.b {
                ttu_result::DROP_UNUSED => format!(
                    "{} drops the page: pte_unused(pteval {:#x}){} — the PTE is left none, no swap entry",
                    e.kind.name().trim_start_matches("rmap:"),
                    e.c,
                    if w.hosts[DST].profile.unused_guard == crate::profile::UnusedGuard::None {
                        ""
                    } else {
                        " && !userfaultfd_armed"
                    }
                ),
                r => format!(
                    "{}: {}",
                    e.kind.name().trim_start_matches("rmap:"),
                    ttu_result::NAMES.get(r as usize).copied().unwrap_or("?")
                ),
            }),
            Ev::GmapZap if mine && e.b == 1 => {
                Some("__gmap_zap (CBRL) → ptep_zap_unused clears the swap PTE to none".to_string())
            }
            Ev::Diag10 if e.host == DST as u8 && dhva >= e.a && dhva < e.b => {
                Some("DIAG 0x10 → gmap_discard zaps the page to none".to_string())
            }
            Ev::Fault if mine => Some(format!(
                "{} by {}",
                fault_path::NAMES.get(e.b as usize).copied().unwrap_or("fault"),
                thread_name(e.tid as u32)
            )),
            Ev::HandleUserfault if mine => {
                Some(format!("handle_userfault(VM_UFFD_MISSING) for vCPU {}: the PTE is none in an armed VMA", e.tid))
            }
            Ev::VcpuBlocked if mine => Some(format!("vCPU {} blocks on the userfault", e.tid)),
            Ev::PostcopyRequest if mine => Some("QEMU's fault thread requests the page from the source".to_string()),
            Ev::PostcopyRequestSuppressed if mine => {
                Some("QEMU's fault thread does not request it: the received bitmap says the page is there".to_string())
            }
            Ev::GetQueuedPageNotDirty if mine => {
                Some("get_queued_page: already sent (!dirty), the request is dropped".to_string())
            }
            Ev::ThreadWoken if mine => Some(format!("vCPU {} woken after {:.3} s", e.tid, e.a as f64 / 1e9)),
            Ev::MigrationPhase if e.host == DST as u8 && e.a == phase::COMPLETED => {
                Some("postcopy cleanup: UFFDIO_UNREGISTER of guest RAM wakes every waiter".to_string())
            }
            _ => None,
        };
        if let Some(what) = what {
            out.push(ChainStep { t: e.t, host, what, event: *e });
        }
    }
    out
}

/// "vCPU n", or the QEMU thread for QEMU's thread ids.
fn thread_name(tid: u32) -> String {
    match tid {
        crate::qemu::source::TID_MIGRATION => "QEMU's migration thread".to_string(),
        crate::qemu::dest::TID_LISTEN => "QEMU's load thread".to_string(),
        t => format!("vCPU {t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;

    fn small(profile: &str, seed: u64) -> PostcopyConfig {
        let mut c = PostcopyConfig::new(Profile::get(profile, Arch::S390x).unwrap());
        c.guest.pages = 4096; // 16 MiB
        c.source_memory = 24 << 20;
        c.dest_memory = 14 << 20;
        c.dest_swap = 32 << 20;
        c.other_load = 2 << 20;
        c.link.bandwidth = 25_000_000;
        c.seed = seed;
        c
    }

    #[test]
    fn the_seed_hangs_417_and_completes_418() {
        let r17 = run(&small("4.17", 1)).unwrap();
        assert_eq!(r17.outcome, Outcome::Hung, "{:?} {:?}", r17.metrics, r17.failure);
        let h = r17.hang.as_ref().unwrap();
        assert!(h.chain.iter().any(|s| s.what.contains("pte_unused")), "{:#?}", h.chain);
        // the hung vCPU's stall: from its block until the postcopy cleanup at the very end
        let st = r17.stalls.iter().find(|s| s.vcpu == h.vcpu && s.gfn == h.gfn).expect("the hang is a stall");
        assert_eq!(st.since, h.since);
        assert_eq!(st.released_by, stall::Release::Cleanup, "{st:?}");
        assert_eq!(st.released_at, Some(r17.metrics.total_time_ns));
        assert_eq!(st.waited_ns, r17.metrics.total_time_ns - h.since);
        let r18 = run(&small("4.18", 1)).unwrap();
        assert_eq!(r18.outcome, Outcome::Completed, "{:?} {:?} {:?}", r18.metrics, r18.failure, r18.hang);
        assert_eq!(r18.metrics.userfaults_on_received, 0);
        assert!(r18.stalls.is_empty(), "{:?}", r18.stalls);
        assert!(r18.metrics.dest_pages_swapped > 0);
    }

    #[test]
    fn a_restored_run_continues_bit_for_bit() {
        for profile in ["4.17", "4.18"] {
            let cfg = small(profile, 3);
            let mut w = build(&cfg).unwrap();
            w.start();
            w.run(40_000_000);
            assert!(!w.finished() && w.now > 0);
            let bytes = snapshot_bytes(&w, &cfg).unwrap();
            let (mut r, rcfg) = from_snapshot_bytes(&bytes).unwrap();
            assert_eq!(rcfg, cfg);
            w.run(cfg.max_time_ns);
            r.run(cfg.max_time_ns);
            let (a, b) = (result(&w, &cfg), result(&r, &rcfg));
            assert_eq!(a.log_hash, b.log_hash, "{profile}");
            assert_eq!(a.metrics, b.metrics, "{profile}");
            assert_eq!(a.outcome, b.outcome, "{profile}");
            assert_eq!(snapshot_bytes(&w, &cfg).unwrap(), snapshot_bytes(&r, &rcfg).unwrap(), "{profile}");
            // and the same as a run never snapshotted at all
            assert_eq!(run(&cfg).unwrap().log_hash, a.log_hash, "{profile}");
            r.check_invariants().unwrap();
        }
    }

    #[test]
    fn a_run_snapshot_is_not_a_kernel_snapshot() {
        let cfg = small("4.18", 3);
        let w = build(&cfg).unwrap();
        let bytes = snapshot_bytes(&w, &cfg).unwrap();
        let e = Kernel::from_snapshot_bytes(&bytes).unwrap_err().to_string();
        assert!(e.contains("holds a postcopy run, expected a kernel"), "{e}");
        let mut bad = w.clone();
        bad.schedule(0, crate::study::world::Action::Vcpu(7));
        let e = from_snapshot_bytes(&snapshot_bytes(&bad, &cfg).unwrap()).unwrap_err().to_string();
        assert!(e.contains("Vcpu(7)"), "{e}");
    }

    #[test]
    fn same_seed_same_log() {
        let a = run(&small("4.18", 7)).unwrap();
        let b = run(&small("4.18", 7)).unwrap();
        assert_eq!(a.log_hash, b.log_hash);
        assert_eq!(a.metrics, b.metrics);
    }

    #[test]
    fn the_destination_profile_decides_with_hosts_of_different_kernels() {
        // the bug is in the destination's reclaim: a fixed source does not save a 4.17 destination
        let mut c = small("4.17", 1);
        c.source_profile = Profile::get("4.18", Arch::S390x).unwrap();
        let w = build(&c).unwrap();
        assert_eq!((w.hosts[SRC].profile.name, w.hosts[DST].profile.name), ("4.18", "4.17"));
        let r = run(&c).unwrap();
        assert_eq!(r.outcome, Outcome::Hung, "{:?}", r.metrics);
        assert!(r.hang.unwrap().chain.iter().any(|s| s.host == "destination" && s.what.contains("pte_unused")));
        // and a 4.17 source migrating to a fixed destination completes
        let mut c = small("4.18", 1);
        c.source_profile = Profile::get("4.17", Arch::S390x).unwrap();
        let r = run(&c).unwrap();
        assert_eq!(r.outcome, Outcome::Completed, "{:?} {:?}", r.metrics, r.failure);
        assert_eq!(r.metrics.userfaults_on_received, 0);
        // a snapshot keeps both hosts' profiles
        let mut w = build(&c).unwrap();
        w.start();
        w.run(20_000_000);
        let (_, rc) = from_snapshot_bytes(&snapshot_bytes(&w, &c).unwrap()).unwrap();
        assert_eq!(rc, c);
        let mut x86 = small("4.18", 1);
        x86.source_profile = Profile::get("4.18", Arch::X86_64).unwrap();
        assert!(build(&x86).unwrap_err().to_string().contains("s390x arch on both hosts"));
    }

    #[test]
    fn eexist_on_placement_fails_the_incoming_migration() {
        let cfg = small("4.18", 2);
        let mut w = build(&cfg).unwrap();
        w.start();
        while w.dst.phase != crate::qemu::dest::DstPhase::Postcopy {
            assert!(w.step(), "the run reaches postcopy");
        }
        // a page the destination has not received yet, populated behind QEMU's back
        let gfn = (0..cfg.guest.pages as u32).find(|&g| !w.dst.received.test(g as u64)).unwrap();
        let hva = w.dst.ram_base + ((gfn as u64) << 12);
        let u = w.dst.uffd.unwrap();
        w.hosts[DST].uffdio_copy(u, hva, &[0xdead], 0).unwrap();
        w.run(cfg.max_time_ns);
        let r = result(&w, &cfg);
        assert_eq!(r.outcome, Outcome::Failed, "{:?}", r.metrics);
        let why = r.failure.unwrap();
        assert!(why.starts_with("postcopy_place_page: File exists"), "{why}");
        assert!(why.contains(&format!("{hva:#x}")), "{why}");
        assert!(r.metrics.total_time_ns < cfg.max_time_ns && w.completed_at.is_none());
        let c = chain(&w, &r.events, gfn);
        assert!(c.iter().any(|s| s.what == "QEMU's placement fails with errno 17"), "{c:#?}");
    }

    #[test]
    fn other_load_beyond_the_destinations_memory_and_swap_is_refused_naming_it() {
        let mut c = small("4.18", 1);
        c.other_load = 1 << 40;
        let Err(e) = build(&c) else { panic!("1 TiB of other load on a 14 MiB host is refused") };
        let e = e.to_string();
        assert!(e.contains("other_load of 1.0 TiB") && e.contains("14.0 MiB + 32.0 MiB"), "{e}");
        c.other_load = c.dest_memory + c.dest_swap;
        check_other_load(&c).expect("other load that fits memory and swap together is accepted");
    }
}
