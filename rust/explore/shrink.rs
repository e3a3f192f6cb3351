//! Shrinking a counterexample: delta debugging, then the shortest trace over its guest steps.

use super::apply::{Checker, replay_all};
use super::scenario::{Predicate, Scenario, Step};
use super::state::{Cause, State};
use std::collections::HashMap;

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
pub(super) enum Shorter {
    Found(Vec<Step>),
    None,
    OutOfBudget,
}

/// The shortest trace that ends in a violation of `key` made of the guest steps `steps` uses
/// (as a set; each any number of times) and any other steps: iterative deepening from `from` steps up to one step less than
/// `steps`, pruning states already seen at an equal or larger remaining depth, so the first
/// trace found is a shortest one. At most `budget` distinct states per pass; `progress` is
/// called every 4096 of them and stops the search when it returns false.
pub(super) fn shortest_over(
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
