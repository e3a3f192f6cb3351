//! The explorer: every interleaving of a small postcopy scenario, up to a bound, checked against
//! invariants; violations come back as minimal, replayable step lists in kernel terms.
//!
//! The scenario is the destination host at the postcopy switchover with a few guest pages in
//! each state the migration creates — received and in use, received and free (the guest's CMMA
//! state UNUSED arrives with the final storage attributes), discarded and in use, never sent and
//! zero — and nothing in it mentions the seed bug. The actors whose steps interleave:
//! - the migration stream (storage attributes, discards, LISTEN, RUN, pages, EOF: in order);
//! - QEMU's source (background sends, page requests served or dropped) and the destination's
//!   fault thread (requests, or not, per QEMU version);
//! - the guest's vCPUs (allocate with ESSA SET_STABLE and write, free with ESSA SET_UNUSED, read,
//!   write, release with DIAG 0x10, enable storage keys);
//! - KVM (an ESSA intercept of a running vCPU that processes its CBRL);
//! - host reclaim of one page (isolate + shrink_folio_list: add_to_swap, try_to_unmap,
//!   pageout, as MADV_PAGEOUT does), in any order the LRU could produce, and direct reclaim
//!   (try_to_free_pages) of a batch in LRU order.
//!
//! Search: iterative-deepening DFS up to a depth bound and a state budget, skipping states
//! already seen at a smaller or equal remaining depth (state hashing), so the first violation of
//! each predicate found has a shortest trace; then seeded random walks beyond the bound. A trace
//! found by a walk is shrunk by delta debugging (removing runs of steps while the violation
//! stays: 1-minimal), then by a search of every interleaving with the same guest steps for a
//! shorter one (see [`Minimal`] for what each counterexample's "minimal" means).
//!
//! Every selected predicate is evaluated after every step, independently of the others: a
//! step can violate several, and each is reported.

use crate::arch::s390::essa::{ESSA_SET_STABLE, ESSA_SET_UNUSED};
use crate::error::{Error, Result};
use crate::fault::Access;
use crate::kernel::{Cost, Kernel};
use crate::mm::madvise::Advice;
use crate::mm::mmap::MapKind;
use crate::profile::Profile;
use crate::qemu::QemuVersion;
use crate::sim::log::{Ev, ttu_result};
use crate::sim::rng::Rng;
use crate::uffd::UffdMsg;
use crate::uffd::ioctl::{UFFD_API, UFFDIO_REGISTER_MODE_MISSING};
use crate::vmscan::kswapd::KswapdMode;
use crate::vmscan::shrink::SWAP_CLUSTER_MAX;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

/// The invariants the explorer checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Predicate {
    /// No userfault for a page the destination already received.
    UserfaultOnReceived,
    /// No vCPU still parked when the migration ends (only the cleanup would release it).
    BlockedAtEnd,
    /// A page the guest uses keeps the last value it wrote.
    DataLost,
    /// The model's own invariants (rss, mapcount, refcount, LRU, swap_map, rmap).
    Invariants,
    /// A predicate of the user's (a function of the state).
    Custom,
}

impl Predicate {
    pub const ALL: [Predicate; 4] =
        [Predicate::UserfaultOnReceived, Predicate::BlockedAtEnd, Predicate::DataLost, Predicate::Invariants];

    pub fn name(self) -> &'static str {
        match self {
            Predicate::UserfaultOnReceived => "userfault_on_received",
            Predicate::BlockedAtEnd => "blocked_at_end",
            Predicate::DataLost => "data_lost",
            Predicate::Invariants => "invariants",
            Predicate::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Result<Predicate> {
        Predicate::ALL.iter().copied().find(|p| p.name() == s).ok_or_else(|| {
            let n: Vec<&str> = Predicate::ALL.iter().map(|p| p.name()).collect();
            Error::invalid(format!("unknown predicate {s:?}; known: {}", n.join(", ")))
        })
    }
}

/// A step of one actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The next message of the migration stream reaches the destination.
    Deliver,
    /// The source sends its next unsent page (background stream).
    SendNext,
    /// The source takes the next page request off the return path.
    ServeRequest,
    /// The destination's fault thread reads the userfaultfd.
    FaultThread,
    /// Host reclaim ages the page backing guest page `gfn`: `folio_referenced` clears its young
    /// bits (on s390 the PTE becomes hardware-invalid), as `shrink_active_list` does.
    Age(u32),
    /// The page backing guest page `gfn` reaches the tail of the inactive list:
    /// `shrink_folio_list` (references, add_to_swap, try_to_unmap, pageout).
    Reclaim(u32),
    /// Direct reclaim by an allocating task on the host: `try_to_free_pages` →
    /// `do_try_to_free_pages` for SWAP_CLUSTER_MAX pages (`shrink_node` at falling priority),
    /// over the LRUs in their order. Not kswapd (`balance_pgdat`, which reclaims up to the
    /// high watermark).
    ///
    /// Simplification: the kernel enters direct reclaim from `__alloc_pages_slowpath` when an
    /// allocation finds free memory below the min watermark. The scenario's host is the slice
    /// of a host that holds the guest's pages; the load that takes its free memory below the
    /// watermark (other guests, page cache) is not modelled, so whether an allocator is in
    /// direct reclaim at a given moment is left open: the step is enabled whenever a guest
    /// page is on an LRU, like `Age` and `Reclaim` (which stand for the LRU order such a
    /// reclaimer would meet). Enabling it only below the scenario host's own watermark would
    /// never enable it (the guest uses a few of its pages).
    DirectReclaim,
    /// KVM intercepts an ESSA of vCPU `v` and processes its CBRL (`handle_essa` →
    /// `__do_essa`, `_essa_clear_cbrl` → `__gmap_zap`). Only the vCPU's own ESSA does that, so
    /// it is enabled only while `v` runs: a vCPU parked on a userfault executes nothing.
    Intercept(u32),
    /// vCPU `v` allocates guest page `gfn` (ESSA SET_STABLE, then writes it).
    Alloc(u32, u32),
    /// vCPU `v` frees guest page `gfn` (ESSA SET_UNUSED).
    Free(u32, u32),
    Read(u32, u32),
    Write(u32, u32),
    /// vCPU `v` releases free guest page `gfn` with DIAG 0x10.
    Diag10(u32, u32),
    /// The guest enables storage keys (`s390_enable_skey`).
    EnableSkey,
}

impl Step {
    /// A step of the guest (a vCPU's instruction or enabling storage keys), not of the
    /// migration stream, QEMU, KVM or host reclaim.
    pub fn is_guest(self) -> bool {
        matches!(
            self,
            Step::Alloc(..) | Step::Free(..) | Step::Read(..) | Step::Write(..) | Step::Diag10(..) | Step::EnableSkey
        )
    }

    /// The replayable text form: "deliver", "reclaim:1", "alloc:0:1", ...
    pub fn text(self) -> String {
        match self {
            Step::Deliver => "deliver".into(),
            Step::SendNext => "send_next".into(),
            Step::ServeRequest => "serve_request".into(),
            Step::FaultThread => "fault_thread".into(),
            Step::Age(g) => format!("age:{g}"),
            Step::Reclaim(g) => format!("reclaim:{g}"),
            Step::DirectReclaim => "direct_reclaim".into(),
            Step::Intercept(v) => format!("intercept:{v}"),
            Step::Alloc(v, g) => format!("alloc:{v}:{g}"),
            Step::Free(v, g) => format!("free:{v}:{g}"),
            Step::Read(v, g) => format!("read:{v}:{g}"),
            Step::Write(v, g) => format!("write:{v}:{g}"),
            Step::Diag10(v, g) => format!("diag10:{v}:{g}"),
            Step::EnableSkey => "enable_skey".into(),
        }
    }

    pub fn parse(s: &str) -> Result<Step> {
        let p: Vec<&str> = s.trim().split(':').collect();
        let n = |i: usize| -> Result<u32> {
            p.get(i)
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| Error::invalid(format!("step {s:?} needs a number in field {i}")))
        };
        Ok(match p[0] {
            "deliver" => Step::Deliver,
            "send_next" => Step::SendNext,
            "serve_request" => Step::ServeRequest,
            "fault_thread" => Step::FaultThread,
            "age" => Step::Age(n(1)?),
            "reclaim" => Step::Reclaim(n(1)?),
            // "reclaim_batch": the step's name in traces written before it was renamed
            "direct_reclaim" | "reclaim_batch" => Step::DirectReclaim,
            "intercept" => Step::Intercept(n(1)?),
            "alloc" => Step::Alloc(n(1)?, n(2)?),
            "free" => Step::Free(n(1)?, n(2)?),
            "read" => Step::Read(n(1)?, n(2)?),
            "write" => Step::Write(n(1)?, n(2)?),
            "diag10" => Step::Diag10(n(1)?, n(2)?),
            "enable_skey" => Step::EnableSkey,
            other => {
                return Err(Error::invalid(format!(
                    "unknown step {other:?}; known: deliver, send_next, serve_request, fault_thread, age:G, reclaim:G, direct_reclaim, intercept:V, alloc:V:G, free:V:G, read:V:G, write:V:G, diag10:V:G, enable_skey"
                )));
            }
        })
    }
}

/// What a guest page is at the switchover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageClass {
    /// Received in precopy, in use by the guest.
    UsedReceived,
    /// Received in precopy, free in the guest (its CMMA state is UNUSED).
    FreeReceived,
    /// In use, dirtied after it was sent: discarded at the switchover, sent again in postcopy.
    UsedDirty,
    /// Free and never sent: a zero page in postcopy.
    FreeZero,
    /// Free, received in precopy as a zero page: QEMU's load only reads it (`is_zero_range`), so
    /// the destination maps the shared zero page where `mm_forbids_zeropage` allows it.
    ZeroReceived,
}

impl PageClass {
    pub const ALL: [PageClass; 5] = [
        PageClass::UsedReceived,
        PageClass::FreeReceived,
        PageClass::UsedDirty,
        PageClass::FreeZero,
        PageClass::ZeroReceived,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PageClass::UsedReceived => "used_received",
            PageClass::FreeReceived => "free_received",
            PageClass::UsedDirty => "used_dirty",
            PageClass::FreeZero => "free_zero",
            PageClass::ZeroReceived => "zero_received",
        }
    }

    pub fn parse(s: &str) -> Result<PageClass> {
        PageClass::ALL.iter().copied().find(|c| c.name() == s).ok_or_else(|| {
            let n: Vec<&str> = PageClass::ALL.iter().map(|c| c.name()).collect();
            Error::invalid(format!("unknown page class {s:?}; known: {}", n.join(", ")))
        })
    }
}

/// The scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub profile: Profile,
    pub qemu: QemuVersion,
    pub pages: Vec<PageClass>,
    pub vcpus: u32,
    /// Host memory in pages (at least 64).
    pub host_pages: u64,
    pub swap_pages: u64,
    /// Which guest steps exist (a smaller set explores faster).
    pub guest_steps: GuestSteps,
    /// Where the search starts.
    pub start: Start,
}

/// Where a scenario's search starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Start {
    /// Before the final storage attributes arrive: the whole switchover interleaves with
    /// reclaim.
    Switchover,
    /// Just after LISTEN registered guest RAM with userfaultfd (`postcopy_ram_enable_notify`):
    /// the storage attributes and discards are applied, every page is in an armed VMA.
    Listen,
}

impl Start {
    pub fn name(self) -> &'static str {
        match self {
            Start::Switchover => "switchover",
            Start::Listen => "listen",
        }
    }

    pub fn parse(s: &str) -> Result<Start> {
        match s {
            "switchover" => Ok(Start::Switchover),
            "listen" => Ok(Start::Listen),
            o => Err(Error::invalid(format!("start must be \"switchover\" or \"listen\", not {o:?}"))),
        }
    }
}

/// The guest steps the explorer may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuestSteps {
    pub alloc: bool,
    pub free: bool,
    pub read: bool,
    pub write: bool,
    pub diag10: bool,
    pub enable_skey: bool,
}

impl Default for GuestSteps {
    fn default() -> Self {
        GuestSteps { alloc: true, free: true, read: true, write: true, diag10: true, enable_skey: true }
    }
}

impl GuestSteps {
    pub const NAMES: [&'static str; 6] = ["alloc", "free", "read", "write", "diag10", "enable_skey"];

    /// Only the named steps.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<GuestSteps> {
        let mut g =
            GuestSteps { alloc: false, free: false, read: false, write: false, diag10: false, enable_skey: false };
        for n in names {
            *g.flag(n.as_ref())? = true;
        }
        Ok(g)
    }

    /// The names of the steps allowed.
    pub fn names(self) -> Vec<&'static str> {
        let mut g = self;
        GuestSteps::NAMES.into_iter().filter(|n| g.flag(n).is_ok_and(|f| *f)).collect()
    }

    fn flag(&mut self, name: &str) -> Result<&mut bool> {
        Ok(match name {
            "alloc" => &mut self.alloc,
            "free" => &mut self.free,
            "read" => &mut self.read,
            "write" => &mut self.write,
            "diag10" => &mut self.diag10,
            "enable_skey" => &mut self.enable_skey,
            o => {
                return Err(Error::invalid(format!(
                    "unknown guest step {o:?}; known: {}",
                    GuestSteps::NAMES.join(", ")
                )));
            }
        })
    }
}

impl Scenario {
    /// The default scenario: four guest pages, one of each class, one vCPU, a 256 KiB host.
    pub fn small(profile: Profile, qemu: QemuVersion) -> Scenario {
        Scenario {
            profile,
            qemu,
            pages: vec![PageClass::UsedReceived, PageClass::FreeReceived, PageClass::UsedDirty, PageClass::FreeZero],
            vcpus: 1,
            host_pages: 64,
            swap_pages: 64,
            guest_steps: GuestSteps::default(),
            start: Start::Switchover,
        }
    }
}

/// A message of the explorer's migration stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Msg {
    CmmaDone,
    Discard(u32),
    Listen,
    Run,
    Page(u32),
    Eof,
}

/// The state of the destination, QEMU and the guest.
#[derive(Clone, Debug)]
pub struct State {
    k: Kernel,
    pid: u32,
    base: u64,
    uffd: Option<u32>,
    stream: VecDeque<Msg>,
    /// Source: pages not yet sent.
    unsent: Vec<bool>,
    /// Return path: requested pages.
    requests: VecDeque<u32>,
    received: Vec<bool>,
    /// QEMU 5.2: pages with a request in flight.
    requested: Vec<bool>,
    running: bool,
    done: bool,
    /// Guest: page in use, and the value it expects.
    used: Vec<bool>,
    expected: Vec<u64>,
    /// The value a page had when the source sent it.
    content: Vec<u64>,
    /// vCPU parked on a userfault with (step, gfn).
    blocked: Vec<Option<(Step, u32)>>,
    writes: u64,
    /// Pages with a guest write parked on a userfault.
    inflight: Vec<u32>,
    qemu: QemuVersion,
    guest_steps: GuestSteps,
}

/// A violated predicate with the step that violated it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub predicate: Predicate,
    pub message: String,
    /// For a userfault on a received page: the kernel path that made the page missing.
    pub cause: Cause,
}

/// The kernel path that made a received page missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// `try_to_unmap_one` / `try_to_migrate_one` took the `pte_unused` branch.
    PteUnusedDrop,
    /// `__gmap_zap` → `ptep_zap_unused` cleared a swap PTE (the CBRL).
    CbrlZap,
    /// DIAG 0x10 → `gmap_discard`.
    Diag10,
    /// Enabling storage keys zapped a zero-page mapping.
    ZeroPageZap,
    /// Something else (or not applicable).
    Other,
}

impl Cause {
    pub const ALL: [Cause; 5] = [Cause::PteUnusedDrop, Cause::CbrlZap, Cause::Diag10, Cause::ZeroPageZap, Cause::Other];

    /// The table of causes: the identifier (`name`, the key Python uses) and the description.
    pub const TABLE: [(Cause, &'static str, &'static str); 5] = [
        (Cause::PteUnusedDrop, "pte_unused", "pte_unused drop in try_to_unmap_one"),
        (Cause::CbrlZap, "cbrl", "CBRL zap of a swapped UNUSED page (__gmap_zap → ptep_zap_unused)"),
        (Cause::Diag10, "diag10", "DIAG 0x10 (gmap_discard)"),
        (Cause::ZeroPageZap, "zero_page", "zero page zapped when storage keys are enabled"),
        (Cause::Other, "other", "other"),
    ];

    fn row(self) -> (Cause, &'static str, &'static str) {
        Cause::TABLE[self as usize]
    }

    /// The identifier: `"pte_unused"`, `"cbrl"`, `"diag10"`, `"zero_page"`, `"other"`.
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// The cause in words.
    pub fn description(self) -> &'static str {
        self.row().2
    }
}

impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.k.state_hash(h);
        self.uffd.hash(h);
        self.stream.hash(h);
        self.unsent.hash(h);
        self.requests.hash(h);
        self.received.hash(h);
        self.requested.hash(h);
        self.running.hash(h);
        self.done.hash(h);
        self.used.hash(h);
        self.expected.hash(h);
        self.blocked.hash(h);
        self.inflight.hash(h);
    }
}

impl State {
    /// The destination at the switchover of `sc`.
    pub fn new(sc: &Scenario) -> Result<State> {
        if sc.pages.is_empty() || sc.pages.len() > 16 {
            return Err(Error::invalid("the explorer's scenario needs 1 to 16 guest pages"));
        }
        if sc.vcpus == 0 || sc.vcpus > 4 {
            return Err(Error::invalid("the explorer's scenario needs 1 to 4 vCPUs"));
        }
        let mut k = Kernel::new(sc.profile.clone(), sc.host_pages * 4096, sc.swap_pages * 4096, 0)?;
        k.set_kswapd_mode(KswapdMode::Actor);
        k.set_cost(Cost { access: 0, minor_fault: 0, swap_read: 0, swap_write: 0, reclaim_scan: 0, uffd_copy: 0 });
        let n = sc.pages.len();
        let pid = k.spawn("qemu-system-s390x", true)?;
        let base = k.mmap(pid, (n as u64) << 12, MapKind::Anon, false, None)?;
        let mut st = State {
            k,
            pid,
            base,
            uffd: None,
            stream: VecDeque::new(),
            unsent: vec![false; n],
            requests: VecDeque::new(),
            received: vec![false; n],
            requested: vec![false; n],
            running: false,
            done: false,
            used: vec![false; n],
            expected: vec![0; n],
            content: vec![0; n],
            blocked: vec![None; sc.vcpus as usize],
            writes: 0,
            inflight: Vec::new(),
            qemu: sc.qemu,
            guest_steps: sc.guest_steps,
        };
        // precopy: every page arrived once (QEMU's load thread wrote it, or read a zero page)
        for (g, class) in sc.pages.iter().enumerate() {
            let value = match class {
                PageClass::FreeZero | PageClass::ZeroReceived => 0,
                _ => 0x1000 + g as u64,
            };
            st.content[g] = value;
            let a = st.hva(g as u32);
            if value == 0 {
                st.k.access(pid, 1001, a, false, 0)?;
            } else {
                st.k.access(pid, 1001, a, true, value)?;
            }
            st.received[g] = true;
            st.used[g] = matches!(class, PageClass::UsedReceived | PageClass::UsedDirty);
            st.expected[g] = value;
            if matches!(class, PageClass::UsedDirty) {
                // dirtied on the source after it was sent: the guest's current value
                st.writes += 1;
                st.content[g] = 0x2000 + g as u64;
                st.expected[g] = st.content[g];
            }
        }
        // the switchover: final storage attributes, discards, LISTEN, RUN, then postcopy
        st.stream.push_back(Msg::CmmaDone);
        for (g, class) in sc.pages.iter().enumerate() {
            if matches!(class, PageClass::UsedDirty | PageClass::FreeZero) {
                st.stream.push_back(Msg::Discard(g as u32));
                st.unsent[g] = true;
            }
        }
        st.stream.push_back(Msg::Listen);
        st.stream.push_back(Msg::Run);
        if sc.start == Start::Listen {
            while !matches!(st.stream.front(), Some(Msg::Run) | None) {
                st.apply(Step::Deliver, &[]);
            }
        }
        st.k.clear_events();
        Ok(st)
    }

    fn hva(&self, g: u32) -> u64 {
        self.base + ((g as u64) << 12)
    }

    fn gfn_of(&self, addr: u64) -> u32 {
        ((addr - self.base) >> 12) as u32
    }

    fn n(&self) -> u32 {
        self.used.len() as u32
    }

    /// The steps enabled now.
    pub fn enabled(&self, out: &mut Vec<Step>) {
        out.clear();
        if self.done {
            return;
        }
        if !self.stream.is_empty() {
            out.push(Step::Deliver);
        }
        if self.uffd.is_some() && self.unsent.iter().any(|&u| u) {
            out.push(Step::SendNext);
        }
        if !self.requests.is_empty() {
            out.push(Step::ServeRequest);
        }
        if let Some(u) = self.uffd {
            if self.k.uffd_waiters(u).is_ok_and(|ws| ws.iter().any(|w| !w.read)) {
                out.push(Step::FaultThread);
            }
        }
        let mut any = false;
        for g in 0..self.n() {
            let arch = self.k.arch();
            if let Some(p) =
                self.k.pte_at(self.pid, self.hva(g)).filter(|&p| arch.pte_present(p) && !arch.pte_special(p))
            {
                if arch.pte_young(p) {
                    out.push(Step::Age(g));
                }
                out.push(Step::Reclaim(g));
                any = true;
            }
        }
        if any {
            out.push(Step::DirectReclaim);
        }
        if !self.running {
            return;
        }
        let gs = self.guest_steps;
        for v in 0..self.blocked.len() as u32 {
            if self.blocked[v as usize].is_some() {
                // a vCPU parked in handle_userfault runs no instruction, so no ESSA of its own
                // intercepts either
                continue;
            }
            if self.k.cbrl_len(self.pid, v) > 0 {
                out.push(Step::Intercept(v));
            }
            for g in 0..self.n() {
                let used = self.used[g as usize];
                if used {
                    if gs.free {
                        out.push(Step::Free(v, g));
                    }
                    if gs.read {
                        out.push(Step::Read(v, g));
                    }
                    if gs.write {
                        out.push(Step::Write(v, g));
                    }
                } else {
                    if gs.alloc {
                        out.push(Step::Alloc(v, g));
                    }
                    if gs.diag10 {
                        out.push(Step::Diag10(v, g));
                    }
                }
            }
        }
        if gs.enable_skey && !self.k.mm_uses_skeys(self.pid).unwrap_or(true) {
            out.push(Step::EnableSkey);
        }
    }

    /// Apply `s` (which must be enabled) and check the predicates in `check`: every selected
    /// predicate is evaluated on its own (one violated predicate never hides another), and the
    /// violations come back in the order of [`Predicate`] (empty while all hold).
    pub fn apply(&mut self, s: Step, check: &[Predicate]) -> Vec<Violation> {
        let pid = self.pid;
        let mut violations = Vec::new();
        match s {
            Step::Deliver => {
                let Some(m) = self.stream.pop_front() else { return violations };
                match m {
                    Msg::CmmaDone => {
                        for g in 0..self.n() {
                            let bits = if self.used[g as usize] { 0 } else { 0x01 };
                            let _ = self.k.set_cmma_bits(pid, self.hva(g), bits);
                        }
                    }
                    Msg::Discard(g) => {
                        self.received[g as usize] = false;
                        let _ = self.k.madvise(pid, self.hva(g), 4096, Advice::Dontneed);
                    }
                    Msg::Listen => {
                        let Ok(u) = self.k.userfaultfd(pid) else { return violations };
                        let _ = self.k.uffdio_api(u, UFFD_API, 0);
                        let _ =
                            self.k.uffdio_register(u, self.base, (self.n() as u64) << 12, UFFDIO_REGISTER_MODE_MISSING);
                        self.uffd = Some(u);
                    }
                    Msg::Run => self.running = true,
                    Msg::Page(g) => {
                        let Some(u) = self.uffd else { return violations };
                        let v = self.content[g as usize];
                        let r = if v == 0 {
                            self.k.uffdio_zeropage(u, self.hva(g), 4096, 0)
                        } else {
                            self.k.uffdio_copy(u, self.hva(g), &[v], 0)
                        };
                        match r {
                            Ok(_) => {
                                self.received[g as usize] = true;
                                self.requested[g as usize] = false;
                            }
                            Err(e) => {
                                violations.push(Violation {
                                    predicate: Predicate::DataLost,
                                    message: format!("postcopy_place_page failed for guest page {g}: {e}"),
                                    cause: Cause::Other,
                                });
                            }
                        }
                    }
                    Msg::Eof => {
                        if let Some((i, b)) = self.blocked.iter().enumerate().find_map(|(i, b)| b.map(|b| (i, b))) {
                            violations.push(Violation {
                                predicate: Predicate::BlockedAtEnd,
                                message: format!(
                                    "vCPU {i} is still parked on guest page {} when the migration ends: only the cleanup's UFFDIO_UNREGISTER releases it",
                                    b.1
                                ),
                                cause: self.cause_of(b.1),
                            });
                        }
                        if let Some(u) = self.uffd.take() {
                            let _ = self.k.uffdio_unregister(u, self.base, (self.n() as u64) << 12);
                            let _ = self.k.uffd_close(u);
                        }
                        self.done = true;
                    }
                }
            }
            Step::SendNext => {
                if let Some(g) = self.unsent.iter().position(|&u| u) {
                    self.unsent[g] = false;
                    self.stream.push_back(Msg::Page(g as u32));
                    if !self.unsent.iter().any(|&u| u) {
                        self.stream.push_back(Msg::Eof);
                    }
                }
            }
            Step::ServeRequest => {
                let Some(g) = self.requests.pop_front() else { return violations };
                if self.unsent[g as usize] {
                    self.unsent[g as usize] = false;
                    self.stream.push_back(Msg::Page(g));
                    if !self.unsent.iter().any(|&u| u) {
                        self.stream.push_back(Msg::Eof);
                    }
                } else {
                    self.k.log(Ev::GetQueuedPageNotDirty, pid, 0, self.hva(g), g as u64, 0, 0);
                }
            }
            Step::FaultThread => {
                let Some(u) = self.uffd else { return violations };
                let msgs: Vec<UffdMsg> = self.k.uffd_read(u).unwrap_or_default();
                for m in msgs.iter().filter_map(UffdMsg::pagefault) {
                    let g = self.gfn_of(m.address);
                    match self.qemu {
                        QemuVersion::V3_0 => self.requests.push_back(g),
                        QemuVersion::V5_2 => {
                            if !self.received[g as usize] && !self.requested[g as usize] {
                                self.requested[g as usize] = true;
                                self.requests.push_back(g);
                            }
                        }
                    }
                }
            }
            Step::Age(g) => {
                if let Some(pfn) = self.pfn_of(g) {
                    self.k.folio_referenced(pfn);
                }
            }
            Step::Reclaim(g) => {
                if let Some(pfn) = self.pfn_of(g) {
                    self.k.reclaim_one(pfn);
                }
            }
            Step::DirectReclaim => {
                self.k.try_to_free_pages(SWAP_CLUSTER_MAX);
            }
            Step::Intercept(v) => {
                self.k.process_cbrl(pid, v);
            }
            Step::Alloc(v, g) => {
                self.used[g as usize] = true;
                self.writes += 1;
                let value = 0x10_0000 + self.writes;
                self.expected[g as usize] = value;
                let _ = self.k.essa(pid, v, self.hva(g), ESSA_SET_STABLE);
                let r = self.k.access(pid, v, self.hva(g), true, value);
                self.after_access(s, v, g, r.ok(), true);
            }
            Step::Free(v, g) => {
                self.used[g as usize] = false;
                let _ = self.k.essa(pid, v, self.hva(g), ESSA_SET_UNUSED);
            }
            Step::Read(v, g) => {
                let r = self.k.access(pid, v, self.hva(g), false, 0);
                if let Ok(Access::Done { value }) = r {
                    violations.extend(self.check_read(g, value));
                }
                self.after_access(s, v, g, r.ok(), false);
            }
            Step::Write(v, g) => {
                self.writes += 1;
                let value = 0x10_0000 + self.writes;
                self.expected[g as usize] = value;
                let r = self.k.access(pid, v, self.hva(g), true, value);
                self.after_access(s, v, g, r.ok(), true);
            }
            Step::Diag10(_, g) => {
                let a = self.hva(g);
                let _ = self.k.diag10(pid, a, a + 4096);
            }
            Step::EnableSkey => {
                let _ = self.k.enable_skey(pid);
            }
        }
        self.resume_vcpus(&mut violations);
        self.check(check, &mut violations);
        violations.retain(|v| check.contains(&v.predicate));
        violations.sort_by_key(|v| v.predicate);
        violations
    }

    fn after_access(&mut self, s: Step, v: u32, g: u32, r: Option<Access>, write: bool) {
        if let Some(Access::Blocked { .. }) = r {
            self.blocked[v as usize] = Some((s, g));
            if write {
                self.inflight.push(g);
            }
        }
    }

    fn check_read(&self, g: u32, got: u64) -> Option<Violation> {
        let want = self.expected[g as usize];
        if self.used[g as usize] && got != want && !self.inflight.contains(&g) {
            return Some(Violation {
                predicate: Predicate::DataLost,
                message: format!("guest page {g} reads {got:#x}, the guest last wrote {want:#x}"),
                cause: self.cause_of(g),
            });
        }
        None
    }

    /// vCPUs whose userfault was resolved ran their access to the end.
    fn resume_vcpus(&mut self, violations: &mut Vec<Violation>) {
        let mut resumed = Vec::new();
        for v in 0..self.blocked.len() {
            let Some((s, g)) = self.blocked[v] else { continue };
            let parked = self.k.thread_blocked(self.pid, v as u32).unwrap_or(false);
            if !parked {
                self.blocked[v] = None;
                resumed.push((v as u32, s, g));
            }
        }
        // reads first: a read woken in the same step as a write to its page raced with that
        // write, and may return the value from before it
        for &(v, s, g) in &resumed {
            if let (Step::Read(..), Some(Access::Done { value })) = (s, self.k.last_access(self.pid, v)) {
                violations.extend(self.check_read(g, value));
            }
        }
        for (_, s, g) in resumed {
            if let Some(i) = self.inflight.iter().position(|&x| x == g) {
                if matches!(s, Step::Alloc(..) | Step::Write(..)) {
                    self.inflight.swap_remove(i);
                }
            }
        }
    }

    /// The state predicates of `check` (userfault on a received page, the model's invariants).
    fn check(&self, check: &[Predicate], out: &mut Vec<Violation>) {
        if check.contains(&Predicate::UserfaultOnReceived) {
            if let Some(u) = self.uffd {
                for w in self.k.uffd_waiters(u).unwrap_or_default() {
                    let g = self.gfn_of(w.msg.address);
                    if self.received[g as usize] {
                        out.push(Violation {
                            predicate: Predicate::UserfaultOnReceived,
                            message: format!(
                                "vCPU {} takes a userfault on guest page {g}, which the destination already received: QEMU will never send it again",
                                w.tid
                            ),
                            cause: self.cause_of(g),
                        });
                    }
                }
            }
        }
        if check.contains(&Predicate::Invariants) {
            if let Err(e) = self.k.check_invariants() {
                out.push(Violation { predicate: Predicate::Invariants, message: e, cause: Cause::Other });
            }
        }
    }

    /// The frame mapped at guest page `g`, if present.
    fn pfn_of(&self, g: u32) -> Option<u32> {
        let arch = self.k.arch();
        self.k.pte_at(self.pid, self.hva(g)).filter(|&p| arch.pte_present(p)).map(|p| arch.pte_pfn(p))
    }

    /// What last made guest page `g` missing, from the log.
    fn cause_of(&self, g: u32) -> Cause {
        let a = self.hva(g);
        for e in self.k.events().iter().rev() {
            match e.kind {
                Ev::TryToUnmapOne | Ev::TryToMigrateOne if e.addr == a && e.b == ttu_result::DROP_UNUSED => {
                    return Cause::PteUnusedDrop;
                }
                Ev::GmapZap if e.addr == a && e.b == 1 => return Cause::CbrlZap,
                Ev::Diag10 if a >= e.a && a < e.b && e.c > 0 => return Cause::Diag10,
                Ev::ZeroPageZap if e.addr == a && e.a == 0 => return Cause::ZeroPageZap,
                _ => {}
            }
        }
        Cause::Other
    }

    /// The state's hash.
    pub fn key(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }

    /// The destination kernel.
    pub fn kernel(&self) -> &Kernel {
        &self.k
    }

    /// The QEMU process and the host address of guest page 0.
    pub fn ram(&self) -> (u32, u64) {
        (self.pid, self.base)
    }

    /// Guest pages in the scenario.
    pub fn pages(&self) -> u32 {
        self.n()
    }

    /// Whether the destination has received guest page `g` (QEMU's received bitmap).
    pub fn received(&self, g: u32) -> bool {
        self.received.get(g as usize).copied().unwrap_or(false)
    }

    /// Whether the guest uses page `g`.
    pub fn used(&self, g: u32) -> bool {
        self.used.get(g as usize).copied().unwrap_or(false)
    }

    /// The guest page each vCPU is parked on.
    pub fn blocked(&self) -> Vec<Option<u32>> {
        self.blocked.iter().map(|b| b.map(|x| x.1)).collect()
    }

    /// The host PTE of guest page `g`, if a page table covers it.
    pub fn pte(&self, g: u32) -> Option<u64> {
        (g < self.n()).then(|| self.k.pte_at(self.pid, self.hva(g))).flatten()
    }

    /// The PGSTE of guest page `g` (0 where no page table covers it).
    pub fn pgste(&self, g: u32) -> u64 {
        if g >= self.n() {
            return 0;
        }
        self.k.pgste_at(self.pid, self.hva(g)).unwrap_or(0)
    }

    /// Guest pages with a userfault waiting (queued or read by the fault thread, not resolved).
    pub fn userfaults(&self) -> Vec<u32> {
        let Some(u) = self.uffd else { return Vec::new() };
        self.k.uffd_waiters(u).unwrap_or_default().iter().map(|w| self.gfn_of(w.msg.address)).collect()
    }

    /// "switchover", "postcopy" or "done".
    pub fn phase(&self) -> &'static str {
        if self.done {
            "done"
        } else if self.running {
            "postcopy"
        } else {
            "switchover"
        }
    }
}

/// In what sense a counterexample's trace is minimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Minimal {
    /// No shorter trace leads to the violation: the exhaustive search found it (iterative
    /// deepening: every shorter interleaving was searched first).
    Shortest,
    /// No shorter trace with the same guest steps leads to the violation: a walk found it, and
    /// a search of every interleaving of its guest steps (as a set, each usable any number of
    /// times) with any steps of the migration stream, QEMU, KVM and host reclaim, up to one
    /// step shorter, found none. A trace with other guest steps (another vCPU, page or guest
    /// action) could still be shorter.
    ShortestForItsGuestSteps,
    /// Removing any step, or any run of steps, loses the violation (delta debugging); the
    /// search for a shorter trace over its steps ran out of its state budget.
    OneMinimal,
    /// As a walk found it: the search was stopped before shrinking.
    Unshrunk,
}

impl Minimal {
    pub fn name(self) -> &'static str {
        match self {
            Minimal::Shortest => "shortest",
            Minimal::ShortestForItsGuestSteps => "shortest_for_its_guest_steps",
            Minimal::OneMinimal => "one_minimal",
            Minimal::Unshrunk => "unshrunk",
        }
    }
}

/// A violation and the steps that lead to it from the initial state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    pub violation: Violation,
    pub steps: Vec<Step>,
    /// The steps described in kernel and QEMU terms.
    pub explained: Vec<String>,
    /// How minimal `steps` is.
    pub minimal: Minimal,
}

/// What an exploration covered and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The first counterexample of each predicate, shrunk.
    pub found: Vec<Counterexample>,
    /// Distinct states visited (by state hash) over all search passes and walks, the initial
    /// state included; the shrinking searches are not counted.
    pub states: u64,
    /// Steps applied over all search passes and walks (the iterative deepening applies the
    /// steps of shallow interleavings again in each deeper pass).
    pub transitions: u64,
    /// The deepest bound completed without running out of the state budget.
    pub depth_completed: u32,
    /// Every interleaving up to the bound was explored (the budget was not hit).
    pub exhaustive: bool,
    /// The progress callback asked to stop: the counterexamples are not shrunk.
    pub interrupted: bool,
    pub walks: u64,
    pub seconds: f64,
}

/// Bounds of a search.
#[derive(Clone, Debug)]
pub struct Bounds {
    pub depth: u32,
    pub max_states: u64,
    pub walks: u64,
    pub walk_len: u32,
    pub seed: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { depth: 12, max_states: 2_000_000, walks: 200, walk_len: 40, seed: 0 }
    }
}

/// A user predicate: None while it holds, else what is wrong.
pub type UserPredicate<'a> = &'a mut dyn FnMut(&State) -> Option<String>;

/// What to check after every step: built-in predicates and, optionally, the user's.
pub struct Checker<'a> {
    pub builtins: Vec<Predicate>,
    pub user: Option<UserPredicate<'a>>,
}

impl Checker<'_> {
    pub fn builtins(p: &[Predicate]) -> Checker<'static> {
        Checker { builtins: p.to_vec(), user: None }
    }

    /// Apply `s` and evaluate every predicate: the violated ones, built-in ones first in the
    /// order of [`Predicate`], then the user's (each evaluated whatever the others say).
    fn step(&mut self, st: &mut State, s: Step) -> Vec<Violation> {
        let mut v = st.apply(s, &self.builtins);
        if let Some(f) = self.user.as_mut() {
            v.extend(f(st).map(|message| Violation { predicate: Predicate::Custom, message, cause: Cause::Other }));
        }
        v
    }
}

/// Replay `steps` from the initial state up to the first step that violates a predicate: the
/// index of that step and the first of its violations (in the order of [`Predicate`]).
pub fn replay(sc: &Scenario, steps: &[Step], ck: &mut Checker<'_>) -> Result<(State, Option<(usize, Violation)>)> {
    let (st, v) = replay_all(sc, steps, ck)?;
    Ok((st, v.and_then(|(i, v)| v.into_iter().next().map(|v| (i, v)))))
}

/// The index of the first step that violated a predicate, and all its violations.
pub type Violated = (usize, Vec<Violation>);

/// Replay `steps` up to the first step that violates a predicate, with all its violations.
pub fn replay_all(sc: &Scenario, steps: &[Step], ck: &mut Checker<'_>) -> Result<(State, Option<Violated>)> {
    let mut st = State::new(sc)?;
    let mut en = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        st.enabled(&mut en);
        if !en.contains(s) {
            return Err(not_enabled(i, *s));
        }
        let v = ck.step(&mut st, *s);
        if !v.is_empty() {
            return Ok((st, Some((i, v))));
        }
    }
    Ok((st, None))
}

/// The error for step `i` (0-based) that is not enabled where it stands in a trace.
fn not_enabled(i: usize, s: Step) -> Error {
    Error::invalid(format!("step {} ({}) is not enabled at that point", i + 1, s.text()))
}

/// The violation of `key` that `steps` ends in, if its last step is the first to violate.
fn ends_in(sc: &Scenario, steps: &[Step], key: (Predicate, Cause), ck: &mut Checker<'_>) -> Option<Violation> {
    match replay_all(sc, steps, ck) {
        Ok((_, Some((i, v)))) if i + 1 == steps.len() => v.into_iter().find(|v| (v.predicate, v.cause) == key),
        _ => None,
    }
}

/// Describe each step of a trace in kernel and QEMU terms from what replaying it logged.
/// A step that is not enabled where it stands is refused as [`replay`] refuses it.
pub fn explain(sc: &Scenario, steps: &[Step]) -> Result<Vec<String>> {
    let mut st = State::new(sc)?;
    let mut out = Vec::new();
    let mut en = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        st.enabled(&mut en);
        if !en.contains(s) {
            return Err(not_enabled(i, *s));
        }
        let before = st.k.events_len();
        let stream_head = st.stream.front().copied();
        st.apply(*s, &[]);
        let evs = &st.k.events()[before..];
        let mut d = match s {
            Step::Deliver => match stream_head {
                Some(Msg::CmmaDone) => {
                    "migration stream: STATTR_FLAG_DONE → KVM_S390_SET_CMMA_BITS (free guest pages UNUSED)".to_string()
                }
                Some(Msg::Discard(g)) => {
                    format!("migration stream: discard guest page {g} (received bit cleared, MADV_DONTNEED)")
                }
                Some(Msg::Listen) => "migration stream: LISTEN → UFFDIO_REGISTER of guest RAM (MISSING)".to_string(),
                Some(Msg::Run) => "migration stream: RUN → the guest runs on the destination".to_string(),
                Some(Msg::Page(g)) => format!(
                    "migration stream: guest page {g} arrives → {}",
                    if st.content[g as usize] == 0 { "UFFDIO_ZEROPAGE" } else { "UFFDIO_COPY" }
                ),
                Some(Msg::Eof) => "migration stream: EOF → postcopy cleanup (UFFDIO_UNREGISTER)".to_string(),
                None => "deliver".to_string(),
            },
            Step::SendNext => "source: sends its next page".to_string(),
            Step::ServeRequest => "source: takes a page request".to_string(),
            Step::FaultThread => "destination: QEMU's fault thread reads the userfaultfd".to_string(),
            Step::Age(g) => format!("host reclaim ages guest page {g} (folio_referenced: the PTE becomes old)"),
            Step::Reclaim(g) => format!("host reclaim of guest page {g} (shrink_folio_list)"),
            Step::DirectReclaim => {
                "host direct reclaim (try_to_free_pages → do_try_to_free_pages, SWAP_CLUSTER_MAX)".to_string()
            }
            Step::Intercept(v) => format!("KVM: ESSA intercept on vCPU {v} processes its CBRL"),
            Step::Alloc(v, g) => format!("guest vCPU {v} allocates page {g}: ESSA SET_STABLE, then writes it"),
            Step::Free(v, g) => format!("guest vCPU {v} frees page {g}: ESSA SET_UNUSED"),
            Step::Read(v, g) => format!("guest vCPU {v} reads page {g}"),
            Step::Write(v, g) => format!("guest vCPU {v} writes page {g}"),
            Step::Diag10(v, g) => format!("guest vCPU {v} releases page {g} with DIAG 0x10"),
            Step::EnableSkey => "guest enables storage keys (s390_enable_skey)".to_string(),
        };
        let mut notes = Vec::new();
        for e in evs {
            let what = match e.kind {
                Ev::TryToUnmapOne | Ev::TryToMigrateOne => Some(match e.b {
                    ttu_result::DROP_UNUSED => {
                        format!("try_to_unmap_one: pte_unused(pteval {:#x}) → PTE left none, no swap entry", e.c)
                    }
                    r => format!("try_to_unmap_one: {}", ttu_result::NAMES.get(r as usize).copied().unwrap_or("?")),
                }),
                Ev::HandleUserfault => Some("handle_userfault(VM_UFFD_MISSING): the vCPU parks".to_string()),
                Ev::GmapZap if e.b == 1 => Some("__gmap_zap → ptep_zap_unused clears the swap PTE".to_string()),
                Ev::Diag10 => Some(format!("gmap_discard zapped {} PTE(s)", e.c)),
                Ev::GetQueuedPageNotDirty => {
                    Some("get_queued_page: already sent (!dirty), request dropped".to_string())
                }
                Ev::Essa if e.b == 1 => Some("the host PTE is invalid: the page goes on the CBRL".to_string()),
                Ev::SkeyEnable if e.a > 0 => Some(format!("{} zero-page mapping(s) removed", e.a)),
                Ev::ThreadWoken => Some("a parked vCPU is woken and retries".to_string()),
                _ => None,
            };
            if let Some(w) = what {
                if !notes.contains(&w) {
                    notes.push(w);
                }
            }
        }
        if !notes.is_empty() {
            d = format!("{d}: {}", notes.join("; "));
        }
        out.push(d);
    }
    Ok(out)
}

/// Delta debugging: remove runs of steps (halving the run length down to one) while the trace
/// still ends in a violation of `key`, until no single step can go: a 1-minimal trace.
pub fn shrink(sc: &Scenario, steps: &[Step], key: (Predicate, Cause), ck: &mut Checker<'_>) -> Vec<Step> {
    let mut cur = steps.to_vec();
    // cut after the violating step
    if let Ok((_, Some((i, _)))) = replay_all(sc, &cur, ck) {
        cur.truncate(i + 1);
    }
    // the candidate, cut after its first violation, if that is one of `key`
    let mut violates = |t: &[Step]| -> Option<Vec<Step>> {
        match replay_all(sc, t, ck) {
            Ok((_, Some((i, v)))) if v.iter().any(|v| (v.predicate, v.cause) == key) => Some(t[..=i].to_vec()),
            _ => None,
        }
    };
    let mut chunk = cur.len() / 2;
    while chunk >= 1 {
        let mut i = 0;
        let mut progress = false;
        while i < cur.len() {
            let mut cand = cur.clone();
            let end = (i + chunk).min(cand.len());
            cand.drain(i..end);
            match (!cand.is_empty()).then(|| violates(&cand)).flatten() {
                Some(c) => {
                    cur = c;
                    progress = true;
                }
                None => i += chunk,
            }
        }
        if !progress {
            chunk /= 2;
        }
    }
    cur
}

/// How a search for a shorter trace ended.
enum Shorter {
    Found(Vec<Step>),
    None,
    OutOfBudget,
}

/// The shortest trace that ends in a violation of `key` made of the guest steps `steps` uses
/// (as a set; each any number of times) and any other steps: iterative deepening from `from` steps up to one step less than
/// `steps`, pruning states already seen at an equal or larger remaining depth, so the first
/// trace found is a shortest one. At most `budget` distinct states per pass; `progress` is
/// called every 4096 of them and stops the search when it returns false.
fn shortest_over(
    sc: &Scenario,
    steps: &[Step],
    key: (Predicate, Cause),
    from: u32,
    budget: u64,
    ck: &mut Checker<'_>,
    progress: &mut impl FnMut() -> bool,
) -> Shorter {
    let Ok(root) = State::new(sc) else { return Shorter::OutOfBudget };
    let mut alphabet: Vec<Step> = Vec::new();
    for s in steps.iter().filter(|s| s.is_guest()) {
        if !alphabet.contains(s) {
            alphabet.push(*s);
        }
    }
    struct Pass<'c, 'p, 'a, P: FnMut() -> bool> {
        alphabet: Vec<Step>,
        key: (Predicate, Cause),
        ck: &'c mut Checker<'a>,
        seen: HashMap<u64, u32>,
        path: Vec<Step>,
        states: u64,
        budget: u64,
        progress: &'p mut P,
    }
    impl<P: FnMut() -> bool> Pass<'_, '_, '_, P> {
        /// Some(true): found (in `path`); Some(false): out of budget or stopped; None: none.
        fn dfs(&mut self, st: &State, left: u32) -> Option<bool> {
            if left == 0 {
                return None;
            }
            let mut en = Vec::new();
            st.enabled(&mut en);
            en.retain(|s| !s.is_guest() || self.alphabet.contains(s));
            for s in en {
                let mut next = st.clone();
                self.path.push(s);
                let v = self.ck.step(&mut next, s);
                if !v.is_empty() {
                    if v.iter().any(|v| (v.predicate, v.cause) == self.key) {
                        return Some(true);
                    }
                    self.path.pop();
                    continue;
                }
                let k = next.key();
                if !matches!(self.seen.get(&k), Some(&l) if l >= left - 1) {
                    self.seen.insert(k, left - 1);
                    self.states += 1;
                    if self.states >= self.budget || (self.states % 4096 == 0 && !(self.progress)()) {
                        return Some(false);
                    }
                    if let Some(r) = self.dfs(&next, left - 1) {
                        return Some(r);
                    }
                }
                self.path.pop();
            }
            None
        }
    }
    let mut pass = Pass { alphabet, key, ck, seen: HashMap::new(), path: Vec::new(), states: 0, budget, progress };
    for depth in from.max(1)..steps.len() as u32 {
        pass.seen.clear();
        pass.path.clear();
        pass.states = 0;
        match pass.dfs(&root, depth) {
            Some(true) => return Shorter::Found(pass.path),
            Some(false) => return Shorter::OutOfBudget,
            None => {}
        }
    }
    Shorter::None
}

/// Distinct states a shrinking search may visit per depth pass (at most `Bounds::max_states`).
const SHRINK_STATES: u64 = 200_000;

/// Explore `sc` within `b`, checking `ck`. `progress` is called with the states seen so far
/// every 4096 new states (and every 4096 states of a shrinking search); it returns false to
/// stop the search.
///
/// A counterexample found by the exhaustive passes is a shortest one. One found by a random
/// walk is cut after its violation, shrunk by delta debugging (1-minimal), then replaced by the
/// shortest trace with the same guest steps if a search of those interleavings (with any steps
/// of the other actors), from one step past the depth the exhaustive search completed, finds a
/// shorter one ([`Minimal`]).
pub fn explore(
    sc: &Scenario,
    ck: &mut Checker<'_>,
    b: &Bounds,
    mut progress: impl FnMut(u64) -> bool,
) -> Result<Report> {
    let t0 = std::time::Instant::now();
    let root = State::new(sc)?;
    let mut rep = Report::default();
    let mut found: HashMap<(Predicate, Cause), Vec<Step>> = HashMap::new();
    let mut visited: HashSet<u64> = HashSet::new();
    visited.insert(root.key());
    rep.states = 1;
    // iterative deepening: the first counterexample of each (predicate, cause) is a shortest one
    let mut budget_hit = false;
    for depth in 1..=b.depth {
        let mut seen: HashMap<u64, u32> = HashMap::new();
        let mut path = Vec::new();
        let mut stop = false;
        let mut d = Dfs {
            ck: &mut *ck,
            seen: &mut seen,
            visited: &mut visited,
            path: &mut path,
            found: &mut found,
            rep: &mut rep,
            max_states: b.max_states,
            stop: &mut stop,
            progress: &mut progress,
        };
        d.dfs(&root, depth);
        if rep.interrupted {
            break;
        }
        if stop {
            budget_hit = true;
            break;
        }
        rep.depth_completed = depth;
    }
    rep.exhaustive = !budget_hit && !rep.interrupted;
    let by_search: Vec<(Predicate, Cause)> = found.keys().copied().collect();
    // random walks beyond the bound
    let mut rng = Rng::new(b.seed);
    let mut en = Vec::new();
    for _ in 0..b.walks {
        if rep.interrupted || (rep.walks % 64 == 63 && !progress(rep.states)) {
            rep.interrupted = true;
            break;
        }
        rep.walks += 1;
        let mut st = root.clone();
        let mut path = Vec::new();
        for _ in 0..b.walk_len {
            st.enabled(&mut en);
            if en.is_empty() {
                break;
            }
            let s = en[rng.below(en.len() as u64) as usize];
            path.push(s);
            rep.transitions += 1;
            let v = ck.step(&mut st, s);
            if visited.insert(st.key()) {
                rep.states += 1;
            }
            if !v.is_empty() {
                for v in v {
                    found.entry((v.predicate, v.cause)).or_insert_with(|| path.clone());
                }
                break;
            }
        }
    }
    let mut keys: Vec<(Predicate, Cause)> = found.keys().copied().collect();
    keys.sort();
    for key in keys {
        let (steps, minimal) = if by_search.contains(&key) {
            (found[&key].clone(), Minimal::Shortest)
        } else if rep.interrupted {
            (found[&key].clone(), Minimal::Unshrunk)
        } else {
            let cut = shrink(sc, &found[&key], key, ck);
            let states = rep.states;
            let mut more = || progress(states);
            match shortest_over(sc, &cut, key, rep.depth_completed + 1, b.max_states.min(SHRINK_STATES), ck, &mut more)
            {
                Shorter::Found(s) => (s, Minimal::ShortestForItsGuestSteps),
                Shorter::None => (cut, Minimal::ShortestForItsGuestSteps),
                Shorter::OutOfBudget => (cut, Minimal::OneMinimal),
            }
        };
        let Some(violation) = ends_in(sc, &steps, key, ck) else { continue };
        let Ok(explained) = explain(sc, &steps) else { continue };
        rep.found.push(Counterexample { violation, steps, explained, minimal });
    }
    rep.seconds = t0.elapsed().as_secs_f64();
    Ok(rep)
}

/// One depth pass of the exhaustive search.
struct Dfs<'a, 'c, P: FnMut(u64) -> bool> {
    ck: &'a mut Checker<'c>,
    /// State hash → the largest remaining depth it was searched with in this pass.
    seen: &'a mut HashMap<u64, u32>,
    /// Every state hash visited by any pass.
    visited: &'a mut HashSet<u64>,
    path: &'a mut Vec<Step>,
    found: &'a mut HashMap<(Predicate, Cause), Vec<Step>>,
    rep: &'a mut Report,
    max_states: u64,
    stop: &'a mut bool,
    progress: &'a mut P,
}

impl<P: FnMut(u64) -> bool> Dfs<'_, '_, P> {
    fn dfs(&mut self, st: &State, left: u32) {
        if left == 0 || *self.stop {
            return;
        }
        let mut en = Vec::new();
        st.enabled(&mut en);
        for s in en {
            let mut next = st.clone();
            self.rep.transitions += 1;
            self.path.push(s);
            let v = self.ck.step(&mut next, s);
            let key = next.key();
            if self.visited.insert(key) {
                self.rep.states += 1;
                if self.rep.states % 4096 == 0 && !(self.progress)(self.rep.states) {
                    self.rep.interrupted = true;
                    *self.stop = true;
                }
                if self.rep.states >= self.max_states {
                    *self.stop = true;
                }
            }
            if !v.is_empty() {
                for v in v {
                    self.found.entry((v.predicate, v.cause)).or_insert_with(|| self.path.clone());
                }
            } else if !*self.stop && !matches!(self.seen.get(&key), Some(&l) if l >= left - 1) {
                self.seen.insert(key, left - 1);
                self.dfs(&next, left - 1);
            }
            self.path.pop();
            if *self.stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;

    fn sc(p: &str) -> Scenario {
        Scenario::small(Profile::get(p, Arch::S390x).unwrap(), QemuVersion::V3_0)
    }

    #[test]
    fn cause_table_has_one_row_per_cause_in_order() {
        for (i, c) in Cause::ALL.into_iter().enumerate() {
            assert_eq!(Cause::TABLE[i].0, c);
            assert_eq!((c.name(), c.description()), (Cause::TABLE[i].1, Cause::TABLE[i].2));
        }
    }

    #[test]
    fn explain_refuses_steps_replay_refuses_instead_of_panicking() {
        let listen = Scenario { start: Start::Listen, ..sc("4.17") };
        let prefix = [Step::Reclaim(0), Step::Deliver];
        assert_eq!(explain(&listen, &prefix).unwrap().len(), 2);
        // guest page 99 is beyond the scenario's guest RAM; the guest does not run before RUN
        for (scen, bad) in [
            (&listen, Step::Alloc(0, 99)),
            (&listen, Step::Write(0, 99)),
            (&listen, Step::Free(0, 99)),
            (&sc("4.17"), Step::Alloc(0, 0)),
        ] {
            let steps: Vec<Step> = if scen.start == Start::Listen { [&prefix[..], &[bad]].concat() } else { vec![bad] };
            let why = explain(scen, &steps).unwrap_err().to_string();
            assert!(why.contains("not enabled"), "{why}");
            let mut ck = Checker::builtins(&[Predicate::UserfaultOnReceived]);
            assert_eq!(replay(scen, &steps, &mut ck).err().map(|e| e.to_string()), Some(why));
        }
    }

    #[test]
    fn finds_the_seed_on_417_and_not_on_418() {
        let b = Bounds { depth: 8, max_states: 1_000_000, walks: 0, ..Default::default() };
        let r = explore(&sc("4.17"), &mut Checker::builtins(&[Predicate::UserfaultOnReceived]), &b, |_| true).unwrap();
        let causes: Vec<Cause> = r.found.iter().map(|c| c.violation.cause).collect();
        let cx = r
            .found
            .iter()
            .find(|c| c.violation.cause == Cause::PteUnusedDrop)
            .unwrap_or_else(|| panic!("{causes:?} {:?}", r.found));
        let text = cx.explained.join("\n");
        assert!(text.contains("pte_unused"), "{text}");
        // five stream messages up to RUN, a reclaim, the guest touching the page again
        assert_eq!(cx.steps.len(), 7, "{:?}", cx.steps);
        assert!(cx.steps.contains(&Step::DirectReclaim), "{:?}", cx.steps);
        // on 4.18 a pte_unused drop only happens before LISTEN arms guest RAM: the switchover
        // window (FINDINGS.md)
        let r = explore(&sc("4.18"), &mut Checker::builtins(&[Predicate::UserfaultOnReceived]), &b, |_| true).unwrap();
        for c in r.found.iter().filter(|c| c.violation.cause == Cause::PteUnusedDrop) {
            let text = c.explained.join("\n");
            let drop = text.find("pte_unused").unwrap();
            let listen = text.find("LISTEN").unwrap();
            assert!(drop < listen, "{text}");
        }
    }

    /// The seed on 4.17 up to the guest touching the dropped page 1 (received, free in the
    /// guest, dropped by pte_unused), with the migration's last page sent: the next delivery
    /// is EOF.
    fn parked_on_the_seed(touch: Step) -> State {
        let mut st = State::new(&sc("4.17")).unwrap();
        let steps = [
            Step::Deliver,       // STATTR_FLAG_DONE: page 1 UNUSED
            Step::DirectReclaim, // pte_unused drops page 1
            Step::Deliver,       // discard 2
            Step::Deliver,       // discard 3
            Step::Deliver,       // LISTEN
            Step::Deliver,       // RUN
            Step::SendNext,
            Step::SendNext,
            Step::Deliver, // page 2
            Step::Deliver, // page 3
        ];
        for s in steps {
            assert!(st.apply(s, &Predicate::ALL).is_empty(), "{s:?}");
        }
        if let Step::Read(_, g) = touch {
            // as if the guest used the page the stale UNUSED state let reclaim drop
            st.used[g as usize] = true;
        }
        st.apply(touch, &[]);
        assert_eq!(st.blocked(), vec![Some(1)]);
        assert_eq!(st.stream.front(), Some(&Msg::Eof));
        st
    }

    #[test]
    fn each_predicate_is_checked_whatever_the_others_say() {
        // a write parked at EOF: the migration ends with the vCPU blocked, and the cleanup's
        // UFFDIO_UNREGISTER lets the write complete on a fresh page: nothing is lost
        let st = parked_on_the_seed(Step::Alloc(0, 1));
        let eof = |check: &[Predicate]| st.clone().apply(Step::Deliver, check);
        let preds = |v: Vec<Violation>| v.iter().map(|v| (v.predicate, v.cause)).collect::<Vec<_>>();
        assert_eq!(preds(eof(&[Predicate::BlockedAtEnd])), [(Predicate::BlockedAtEnd, Cause::PteUnusedDrop)]);
        assert!(eof(&[Predicate::DataLost]).is_empty());
        // a read parked at EOF on a page the guest uses: the cleanup wakes it on a fresh zero
        // page, so it reads 0 where the guest had 0x1001: blocked at the end and data lost,
        // each reported when selected alone
        let st = parked_on_the_seed(Step::Read(0, 1));
        let eof = |check: &[Predicate]| st.clone().apply(Step::Deliver, check);
        assert_eq!(preds(eof(&[Predicate::BlockedAtEnd])), [(Predicate::BlockedAtEnd, Cause::PteUnusedDrop)]);
        let lost = eof(&[Predicate::DataLost]);
        assert_eq!(preds(lost.clone()), [(Predicate::DataLost, Cause::PteUnusedDrop)]);
        assert!(lost[0].message.contains("reads 0x0"), "{}", lost[0].message);
        assert_eq!(
            preds(eof(&Predicate::ALL)),
            [(Predicate::BlockedAtEnd, Cause::PteUnusedDrop), (Predicate::DataLost, Cause::PteUnusedDrop)]
        );
    }

    #[test]
    fn steps_round_trip_as_text() {
        for s in [Step::Deliver, Step::Reclaim(3), Step::Alloc(1, 2), Step::Diag10(0, 1), Step::EnableSkey] {
            assert_eq!(Step::parse(&s.text()).unwrap(), s);
        }
        assert_eq!(Step::parse("reclaim_batch").unwrap(), Step::DirectReclaim);
        assert!(Step::parse("jump").is_err());
    }
}
