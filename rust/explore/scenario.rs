//! The scenario: its guest pages and what each is at the switchover, where the search starts,
//! the guest steps that exist, the predicates checked and the steps of every actor.

use crate::error::{Error, Result};
use crate::profile::Profile;
use crate::qemu::QemuVersion;

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
