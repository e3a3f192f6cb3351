//! One step applied to the state, the predicates checked after it, and a trace replayed.

use super::scenario::{Predicate, Scenario, Step};
use super::state::{Cause, Msg, State, Violation};
use crate::arch::s390::essa::{ESSA_SET_STABLE, ESSA_SET_UNUSED};
use crate::error::{Error, Result};
use crate::fault::Access;
use crate::mm::madvise::Advice;
use crate::profile::fixes::CmmaApply;
use crate::qemu::dest::migrate_send_rp_req_pages;
use crate::sim::log::Ev;
use crate::uffd::UffdMsg;
use crate::uffd::ioctl::{UFFD_API, UFFDIO_REGISTER_MODE_MISSING};
use crate::vmscan::shrink::SWAP_CLUSTER_MAX;

impl State {
    /// The destination QEMU's `kvm_s390_stattrib_synchronize`: KVM_S390_SET_CMMA_BITS, free
    /// guest pages UNUSED.
    fn apply_cmma(&mut self) {
        for g in 0..self.n() {
            let bits = if self.used[g as usize] { 0 } else { 0x01 };
            let _ = self.k.set_cmma_bits(self.pid, self.hva(g), bits);
        }
    }

    /// Apply `s` (which must be enabled) and check the predicates in `check`: every selected
    /// predicate is evaluated on its own (one violated predicate never hides another), and the
    /// violations come back in the order of [`Predicate`] (empty while all hold).
    pub fn apply(&mut self, s: Step, check: &[Predicate]) -> Vec<Violation> {
        self.apply_with(s, check, |st| st.k.check_invariants().err())
    }

    /// [`State::apply`] with the model's invariants (if `check` selects them) evaluated by
    /// `invariants` on the state after the step: the explorer's search looks a state it has
    /// checked before up by its key instead of checking it again ([`crate::explore`]'s search).
    pub(super) fn apply_with(
        &mut self,
        s: Step,
        check: &[Predicate],
        invariants: impl FnOnce(&State) -> Option<String>,
    ) -> Vec<Violation> {
        let pid = self.pid;
        let mut violations = Vec::new();
        match s {
            Step::Deliver => {
                let Some(m) = self.stream.pop_front() else { return violations };
                match m {
                    // candidate QEMU change (profile/fixes.rs): applied at LISTEN instead
                    Msg::CmmaDone if self.k.profile.fixes.cmma_apply == CmmaApply::AfterListen => {}
                    Msg::CmmaDone => self.apply_cmma(),
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
                        if self.k.profile.fixes.cmma_apply == CmmaApply::AfterListen {
                            self.apply_cmma();
                        }
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
                    // the destination's own decision (rust/qemu/dest.rs), not a copy of it
                    let req = migrate_send_rp_req_pages(self.qemu, self.received[g as usize]);
                    if req.record_requested {
                        self.requested[g as usize] = true;
                    }
                    if req.send {
                        self.requests.push_back(g);
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
        self.check(check, &mut violations, invariants);
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
    fn check(&self, check: &[Predicate], out: &mut Vec<Violation>, invariants: impl FnOnce(&State) -> Option<String>) {
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
            if let Some(e) = invariants(self) {
                out.push(Violation { predicate: Predicate::Invariants, message: e, cause: Cause::Other });
            }
        }
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
    pub(super) fn step(&mut self, st: &mut State, s: Step) -> Vec<Violation> {
        self.step_with(st, s, |st| st.k.check_invariants().err())
    }

    /// [`Checker::step`] with the model's invariants evaluated by `invariants`
    /// ([`State::apply_with`]).
    pub(super) fn step_with(
        &mut self,
        st: &mut State,
        s: Step,
        invariants: impl FnOnce(&State) -> Option<String>,
    ) -> Vec<Violation> {
        let mut v = st.apply_with(s, &self.builtins, invariants);
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
pub(super) fn not_enabled(i: usize, s: Step) -> Error {
    Error::invalid(format!("step {} ({}) is not enabled at that point", i + 1, s.text()))
}
