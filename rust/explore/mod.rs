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
//!
//! The files: `scenario.rs` (the scenario, its steps and predicates), `state.rs` (the state and
//! the steps enabled in it), `apply.rs` (one step applied and checked; a trace replayed),
//! `search.rs` (the search and its report), `shrink.rs` (shrinking a counterexample),
//! `explain.rs` (a trace in kernel and QEMU terms).

mod apply;
mod explain;
mod por;
mod scenario;
mod search;
mod shrink;
mod state;

pub use apply::{Checker, UserPredicate, Violated, replay, replay_all};
pub use explain::explain;
pub use scenario::{GuestSteps, PageClass, Predicate, Scenario, Start, Step};
pub use search::{Bounds, Counterexample, Minimal, Report, explore};
pub use shrink::shrink;
pub use state::{Cause, State, Violation};

#[cfg(test)]
mod tests {
    use super::state::Msg;
    use super::*;
    use crate::arch::Arch;
    use crate::profile::Profile;
    use crate::qemu::QemuVersion;

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

    /// QEMU 5.2 `migrate_send_rp_req_pages` (migration/migration.c) suppresses only a received
    /// page: two vCPUs faulting on the same page before it arrives send two requests. The
    /// explorer uses the destination's implementation (rust/qemu/dest.rs), so it agrees.
    #[test]
    fn explorer_requests_a_page_again_for_a_second_fault_on_qemu_52() {
        for (qemu, want) in [(QemuVersion::V5_2, 2), (QemuVersion::V3_0, 2)] {
            let scen = Scenario { vcpus: 2, ..Scenario::small(Profile::get("6.12", Arch::S390x).unwrap(), qemu) };
            let mut st = State::new(&scen).unwrap();
            for _ in 0..5 {
                assert!(st.apply(Step::Deliver, &[]).is_empty()); // attributes, discards, LISTEN, RUN
            }
            // guest page 2 is dirty: not received until the source sends it again
            st.apply(Step::Read(0, 2), &[]);
            st.apply(Step::FaultThread, &[]);
            st.apply(Step::Read(1, 2), &[]);
            st.apply(Step::FaultThread, &[]);
            assert_eq!(st.blocked(), vec![Some(2), Some(2)], "{qemu:?}");
            assert_eq!(st.requests.iter().filter(|&&g| g == 2).count(), want, "{qemu:?}: {:?}", st.requests);
            // a received page is not requested on 5.2
            let req = crate::qemu::dest::migrate_send_rp_req_pages(qemu, true);
            assert_eq!(req.send, qemu == QemuVersion::V3_0, "{qemu:?}");
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
