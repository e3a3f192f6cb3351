//! Partial-order reduction: what each step reads and writes, and when two steps commute.
//!
//! The search explores one order of steps that commute (sleep sets, Godefroid 1996: a step
//! explored from a state "sleeps" in the siblings explored after it, and in their subtrees,
//! for as long as the steps taken are independent of it; a sleeping step is not taken, since
//! the interleavings it starts were covered from the state where it was explored first).
//!
//! Two steps are independent in a state when their footprints there — the resources each
//! reads and writes, [`Footprint`] — are disjoint where one of them writes, and at most one
//! of them writes what the selected state predicates read ([`visible`]). Then, from that state:
//! - both orders reach the same state (the state hash, and what the hash leaves out but the
//!   findings read: the values the guest writes, the events a page's cause is read from);
//! - neither enables nor disables the other (what decides a step's enabledness is in its
//!   read set);
//! - each step reports the same violations in either order: a step's own checks read only its
//!   read set, and the state predicates see either what the visible writer left (the same in
//!   both orders) or a state that already passed them.
//!
//! The footprints are conservative: a step is local to a guest page (its PTE, PGSTE, the frame
//! it maps alone) only where the model's code for it provably touches nothing else, else it
//! touches the whole host kernel. `Bounds::por_verify` checks every independence the search
//! relies on by running both orders (tests use it).

use super::scenario::{Predicate, Step};
use super::state::{Msg, State};
use crate::kvm::CBRL_ENTRIES;
use crate::mm::page::ZERO_PFN;

/// The resources of the explored state a step reads or writes, as bits.
pub(super) mod res {
    /// The front of the migration stream (pop).
    pub const STREAM_HEAD: u64 = 1 << 0;
    /// The back of the migration stream (push: only while the stream is non-empty for a step
    /// that pops it, so the two commute).
    pub const STREAM_TAIL: u64 = 1 << 1;
    /// The source's pages not yet sent.
    pub const UNSENT: u64 = 1 << 2;
    /// The front of the return path's page requests (pop).
    pub const REQ_HEAD: u64 = 1 << 3;
    /// The back of the return path (push).
    pub const REQ_TAIL: u64 = 1 << 4;
    /// QEMU's received and requested bitmaps.
    pub const QSTATE: u64 = 1 << 5;
    /// Whether the guest runs.
    pub const RUNNING: u64 = 1 << 6;
    /// The destination's userfaultfd (registered or not) and the end of the migration.
    pub const UFFD: u64 = 1 << 7;
    /// The userfaultfd's waiting faults (queued, read by the fault thread).
    pub const WAITERS: u64 = 1 << 8;
    /// The host kernel beyond the guest pages' own entries: LRU lists, page allocator, swap,
    /// VMAs, mm flags, KVM's migration mode and storage-key state.
    pub const KERNEL: u64 = 1 << 9;
    /// The guest's write counter (the values it writes).
    pub const WRITES: u64 = 1 << 10;
    /// vCPU `v`'s thread (parked or not, its last access) and its CBRL.
    pub const fn vcpu(v: u32) -> u64 {
        1 << (12 + v)
    }
    /// Guest page `g`: its PTE and PGSTE, the frame it maps alone, what the guest uses it for
    /// and expects in it, and the events its cause is read from.
    pub const fn page(g: u32) -> u64 {
        1 << (16 + g)
    }
    /// Every vCPU.
    pub const VCPUS: u64 = 0xf << 12;
    /// Every guest page.
    pub const PAGES: u64 = 0xffff << 16;
    /// The host kernel with every guest page.
    pub const KERNEL_ALL: u64 = KERNEL | PAGES;
    /// Everything.
    pub const ALL: u64 = u64::MAX;
}

/// What a step reads and writes in a state (a write is also a read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Footprint {
    pub reads: u64,
    pub writes: u64,
}

impl Footprint {
    fn rw(reads: u64, writes: u64) -> Footprint {
        Footprint { reads: reads | writes, writes }
    }

    /// Whether two steps with these footprints commute, when the state predicates read
    /// `visible`.
    pub fn independent(self, o: Footprint, visible: u64) -> bool {
        self.writes & o.reads == 0
            && o.writes & self.reads == 0
            && !(self.writes & visible != 0 && o.writes & visible != 0)
    }
}

/// The resources the state predicates of `check` read (with a user predicate, which reads
/// any of the state: everything). `DataLost` and `BlockedAtEnd` are checked by the step that
/// violates them, from its own read set.
pub(super) fn visible(check: &[Predicate], user: bool) -> u64 {
    if user {
        return res::ALL;
    }
    let mut v = 0;
    for p in check {
        v |= match p {
            // a waiter on a received page: its cause is read from the events of the page,
            // which only whole-kernel steps write
            Predicate::UserfaultOnReceived => res::WAITERS | res::QSTATE | res::UFFD,
            Predicate::Invariants => res::KERNEL_ALL | res::WAITERS | res::UFFD | res::VCPUS,
            Predicate::BlockedAtEnd | Predicate::DataLost => 0,
            Predicate::Custom => res::ALL,
        };
    }
    v
}

impl State {
    /// The footprint of `s`, enabled in this state.
    pub(super) fn footprint(&self, s: Step) -> Footprint {
        use res::*;
        let all = Footprint::rw(ALL, ALL);
        match s {
            Step::Deliver => match self.stream.front() {
                Some(Msg::Run) => Footprint::rw(0, STREAM_HEAD | RUNNING),
                // postcopy_place_page: the kernel, the waiters it wakes, the vCPUs resumed
                Some(Msg::Page(_)) => {
                    let w = ALL & !(STREAM_TAIL | UNSENT | REQ_HEAD | REQ_TAIL);
                    Footprint::rw(w, w)
                }
                _ => all,
            },
            Step::SendNext => Footprint::rw(UFFD, UNSENT | STREAM_TAIL),
            Step::ServeRequest => Footprint::rw(0, REQ_HEAD | UNSENT | STREAM_TAIL),
            Step::FaultThread => Footprint::rw(UFFD, WAITERS | REQ_TAIL | QSTATE),
            Step::Age(g) => {
                if self.maps_alone(g) {
                    Footprint::rw(KERNEL, page(g))
                } else {
                    Footprint::rw(KERNEL_ALL, KERNEL_ALL)
                }
            }
            Step::Reclaim(_) | Step::DirectReclaim => Footprint::rw(KERNEL_ALL, KERNEL_ALL),
            Step::Intercept(v) => Footprint::rw(KERNEL_ALL, KERNEL_ALL | vcpu(v)),
            Step::Alloc(v, g) | Step::Free(v, g) | Step::Read(v, g) | Step::Write(v, g) => {
                let essa = matches!(s, Step::Alloc(..) | Step::Free(..));
                let access = !matches!(s, Step::Free(..));
                let write = matches!(s, Step::Alloc(..) | Step::Write(..));
                let counter = if write { WRITES } else { 0 };
                let local = (!essa || self.essa_is_local(v, g)) && (!access || self.access_is_local(g, write));
                if local {
                    Footprint::rw(KERNEL | RUNNING, page(g) | vcpu(v) | counter)
                } else {
                    // a fault: the allocator, the LRUs, swap, a userfault (the waiters)
                    Footprint::rw(KERNEL_ALL | RUNNING, KERNEL_ALL | WAITERS | vcpu(v) | counter)
                }
            }
            Step::Diag10(..) | Step::EnableSkey => all,
        }
    }

    /// The same state, and the same in what the state hash leaves out but the findings read:
    /// the guest's write counter (the values it writes next) and each page's cause.
    pub(super) fn same_as(&self, o: &State) -> bool {
        self.key() == o.key() && self.writes == o.writes && (0..self.n()).all(|g| self.cause_of(g) == o.cause_of(g))
    }

    /// Guest page `g` maps a frame of its own (present, not the zero page, mapped once), so
    /// `folio_referenced` and a hardware access touch only its PTE, PGSTE and that frame.
    fn maps_alone(&self, g: u32) -> bool {
        let arch = self.k.arch();
        let Some(pte) = self.k.pte_at(self.pid, self.hva(g)) else { return false };
        if !arch.pte_present(pte) || arch.pte_special(pte) {
            return false;
        }
        let pfn = arch.pte_pfn(pte);
        pfn != ZERO_PFN && (pfn as usize) < self.k.mem.frames.len() && self.k.mem.mapcount(pfn) == 1
    }

    /// An access to `g` completes in the hardware (no fault: `hw_access_ok`), on a frame the
    /// page maps alone.
    fn access_is_local(&self, g: u32, write: bool) -> bool {
        let arch = self.k.arch();
        self.maps_alone(g) && self.k.pte_at(self.pid, self.hva(g)).is_some_and(|p| arch.hw_access_ok(p, write))
    }

    /// ESSA on `g` by vCPU `v` is interpreted (`pgste_perform_essa`: the PGSTE, perhaps a CBRL
    /// entry of `v`) and not intercepted: no migration mode, a CBRL with room, a page table.
    fn essa_is_local(&self, v: u32, g: u32) -> bool {
        !self.k.kvm_migration_mode()
            && self.k.cbrl_len(self.pid, v) < CBRL_ENTRIES
            && self.k.pte_at(self.pid, self.hva(g)).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Bounds, Checker, Predicate, Scenario, Start, explore};
    use crate::arch::Arch;
    use crate::profile::Profile;
    use crate::qemu::QemuVersion;

    fn sc(p: &str, start: Start) -> Scenario {
        Scenario { start, ..Scenario::small(Profile::get(p, Arch::S390x).unwrap(), QemuVersion::V3_0) }
    }

    /// What a search found: each (predicate, cause) with the length of its trace, how minimal
    /// it is and the cause of the trace's violation, in the report's order.
    fn findings(r: &super::super::Report) -> Vec<(Predicate, super::super::Cause, usize, &'static str)> {
        r.found.iter().map(|c| (c.violation.predicate, c.violation.cause, c.steps.len(), c.minimal.name())).collect()
    }

    const CASES: [(&str, Start, u32); 6] = [
        ("4.17", Start::Switchover, 8),
        ("4.17", Start::Listen, 6),
        ("4.18", Start::Switchover, 8),
        ("4.18", Start::Listen, 6),
        ("6.12", Start::Switchover, 8),
        ("6.12", Start::Listen, 6),
    ];

    #[test]
    fn sleep_sets_find_what_every_interleaving_finds() {
        for preds in [&[Predicate::UserfaultOnReceived][..], &Predicate::ALL[..]] {
            for (p, start, depth) in CASES {
                let s = sc(p, start);
                let b = Bounds { depth, walks: 20, ..Default::default() };
                let plain =
                    explore(&s, &mut Checker::builtins(preds), &Bounds { por: false, ..b.clone() }, |_| true).unwrap();
                let por = explore(&s, &mut Checker::builtins(preds), &b, |_| true).unwrap();
                assert!(plain.exhaustive && por.exhaustive, "{p} {start:?}");
                assert_eq!(findings(&por), findings(&plain), "{p} {start:?} {preds:?}");
                assert_eq!((plain.pruned, plain.por), (0, false));
                assert!(por.pruned > 0, "{p} {start:?}: nothing pruned");
                assert!(por.transitions < plain.transitions, "{p} {start:?}");
            }
        }
    }

    #[test]
    fn every_independence_relied_on_commutes() {
        for preds in [&[Predicate::UserfaultOnReceived][..], &Predicate::ALL[..]] {
            for (p, start, depth) in CASES {
                let b = Bounds { depth: depth - 1, walks: 0, por_verify: true, ..Default::default() };
                let r = explore(&sc(p, start), &mut Checker::builtins(preds), &b, |_| true).unwrap();
                assert!(r.por_unsound.is_empty(), "{p} {start:?}: {:?}", &r.por_unsound[..r.por_unsound.len().min(5)]);
            }
        }
    }

    /// The explorer's successors share their parent's page tables copy-on-write: whatever
    /// step a successor takes (reclaim, a fault, an ESSA, a DIAG 0x10, a delivered page), the
    /// parent's PTEs, PGSTEs and state hash stay as they were, along a path of a few steps.
    #[test]
    fn a_successors_writes_are_invisible_to_its_parent() {
        let s = sc("4.18", Start::Listen);
        let mut st = super::State::new(&s).unwrap();
        let mut ck = Checker::builtins(&Predicate::ALL);
        let mut en = Vec::new();
        let snap = |st: &super::State| {
            let ptes: Vec<_> = (0..st.pages()).map(|g| (st.pte(g), st.pgste(g))).collect();
            (st.key(), ptes, st.kernel().check_invariants())
        };
        let mut changed = 0;
        for depth in 0..4 {
            st.enabled(&mut en);
            let before = snap(&st);
            for &step in &en {
                let mut next = st.clone();
                let _ = ck.step(&mut next, step);
                changed += (next.key() != before.0) as u32;
                assert_eq!(snap(&st), before, "depth {depth}: {step:?} leaked into its parent");
            }
            let Some(&first) = en.iter().find(|s| matches!(s, super::Step::Reclaim(_) | super::Step::Deliver)) else {
                break;
            };
            let _ = ck.step(&mut st, first);
        }
        assert!(changed > 10, "the successors changed the state ({changed})");
    }

    #[test]
    fn a_user_predicate_reads_everything_so_nothing_sleeps() {
        let mut f = |_: &super::State| None;
        let mut ck = Checker { builtins: vec![Predicate::UserfaultOnReceived], user: Some(&mut f) };
        let b = Bounds { depth: 5, walks: 0, ..Default::default() };
        let r = explore(&sc("4.18", Start::Listen), &mut ck, &b, |_| true).unwrap();
        assert_eq!(r.pruned, 0);
    }

    #[test]
    fn the_same_seed_finds_the_same_in_the_same_order() {
        let s = sc("4.17", Start::Switchover);
        let b = Bounds { depth: 7, walks: 50, seed: 7, ..Default::default() };
        let run = || explore(&s, &mut Checker::builtins(&Predicate::ALL), &b, |_| true).unwrap();
        let (a, c) = (run(), run());
        assert_eq!(a.found, c.found);
        assert_eq!((a.states, a.transitions, a.pruned), (c.states, c.transitions, c.pruned));
    }
}
