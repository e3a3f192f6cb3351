//! The search: iterative deepening up to a bound, random walks beyond it, and the report of
//! what it covered and found.

use super::apply::{Checker, replay_all};
use super::explain::explain;
use super::por::{Footprint, visible};
use super::scenario::{Predicate, Scenario, Step};
use super::shrink::{Shorter, shortest_over, shrink};
use super::state::{Cause, State, Violation};
use crate::error::Result;
use crate::sim::rng::Rng;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The hasher of the sets keyed by state hash: the key is already a hash
/// ([`State::key`]), so it is used as it is (SipHash over it again cost a few percent of a step).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, k: u64) {
        self.0 = k;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Sets and maps keyed by state hash.
type ByKey = BuildHasherDefault<KeyHasher>;

/// Every state hash visited by any pass or walk, and the model's invariants of those states.
///
/// The invariants are a function of the state ([`Kernel::check_invariants`] reads only what
/// [`State::key`] hashes), and the search already takes two states with one key for one state
/// (it searches from the first only), so a state reached again is not checked again: its
/// result is the one its first visit computed. Each visited key was checked when it was
/// inserted (the root is checked up front), and the rare keys whose check failed keep their
/// message, so a state reached again reports the same violation with the same words.
///
/// [`Kernel::check_invariants`]: crate::kernel::Kernel::check_invariants
#[derive(Default)]
struct Visited {
    keys: HashSet<u64, ByKey>,
    /// The visited keys whose invariant check failed, with its message.
    broken: HashMap<u64, String, ByKey>,
}

impl Visited {
    /// Record `key`; true if it is new.
    fn insert(&mut self, key: u64) -> bool {
        self.keys.insert(key)
    }

    /// The invariant violation of `st` (whose key is `key`), checked only if no state of that
    /// key was visited.
    fn invariants(&mut self, key: u64, st: &State) -> Option<String> {
        if self.keys.contains(&key) {
            return self.broken.get(&key).cloned();
        }
        let r = st.kernel().check_invariants().err();
        if let Some(e) = &r {
            self.broken.insert(key, e.clone());
        }
        r
    }

    /// Apply `s` to `st` with `ck`, the invariants looked up ([`Visited::invariants`]): the
    /// violations, the new state's key and whether that key is new (it is recorded).
    fn step(&mut self, ck: &mut Checker<'_>, st: &mut State, s: Step) -> (Vec<Violation>, u64, bool) {
        let mut key = None;
        let v = ck.step_with(st, s, |st| {
            let k = st.key();
            key = Some(k);
            self.invariants(k, st)
        });
        let key = key.unwrap_or_else(|| st.key());
        (v, key, self.insert(key))
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
    /// Partial-order reduction was on ([`Bounds::por`]).
    pub por: bool,
    /// Steps the exhaustive passes did not take because they slept (partial-order reduction:
    /// an interleaving that only reorders independent steps of one already explored).
    pub pruned: u64,
    /// With [`Bounds::por_verify`]: each independence the search relied on that running both
    /// orders contradicted (empty when the reduction is sound on what was explored).
    pub por_unsound: Vec<String>,
}

/// Bounds of a search.
#[derive(Clone, Debug)]
pub struct Bounds {
    pub depth: u32,
    pub max_states: u64,
    pub walks: u64,
    pub walk_len: u32,
    pub seed: u64,
    /// Partial-order reduction (sleep sets, `explore::por`) in the exhaustive passes: the
    /// same findings, fewer states. Off: every interleaving is taken.
    pub por: bool,
    /// Check every independence the reduction relies on by running both orders (slow: for
    /// tests); what contradicts it goes to [`Report::por_unsound`].
    pub por_verify: bool,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { depth: 12, max_states: 8_000_000, walks: 200, walk_len: 40, seed: 0, por: true, por_verify: false }
    }
}

/// The violation of `key` that `steps` ends in, if its last step is the first to violate.
fn ends_in(sc: &Scenario, steps: &[Step], key: (Predicate, Cause), ck: &mut Checker<'_>) -> Option<Violation> {
    match replay_all(sc, steps, ck) {
        Ok((_, Some((i, v)))) if i + 1 == steps.len() => v.into_iter().find(|v| (v.predicate, v.cause) == key),
        _ => None,
    }
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
    let mut rep = Report { por: b.por, ..Report::default() };
    let visible = visible(&ck.builtins, ck.user.is_some());
    let mut found: HashMap<(Predicate, Cause), Vec<Step>> = HashMap::new();
    let mut visited = Visited::default();
    if ck.builtins.contains(&Predicate::Invariants) {
        // every visited key has been checked (Visited::invariants)
        let _ = visited.invariants(root.key(), &root);
    }
    visited.insert(root.key());
    rep.states = 1;
    // iterative deepening: the first counterexample of each (predicate, cause) is a shortest one
    let mut budget_hit = false;
    for depth in 1..=b.depth {
        let mut seen: HashMap<u64, Seen, ByKey> = HashMap::default();
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
            por: b.por,
            verify: b.por_verify,
            visible,
            bufs: Vec::new(),
        };
        d.dfs(&root, depth, &[], None);
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
            let (v, _, new) = visited.step(ck, &mut st, s);
            if new {
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

/// How a state was searched in a depth pass: with how many steps left, and which steps slept
/// there (the steps not taken from it).
struct Seen {
    left: u32,
    sleep: Vec<Step>,
}

/// One depth pass of the exhaustive search.
struct Dfs<'a, 'c, P: FnMut(u64) -> bool> {
    ck: &'a mut Checker<'c>,
    /// State hash → how it was searched in this pass.
    seen: &'a mut HashMap<u64, Seen, ByKey>,
    /// Every state hash visited by any pass, and the invariants' results.
    visited: &'a mut Visited,
    path: &'a mut Vec<Step>,
    found: &'a mut HashMap<(Predicate, Cause), Vec<Step>>,
    rep: &'a mut Report,
    max_states: u64,
    stop: &'a mut bool,
    progress: &'a mut P,
    por: bool,
    verify: bool,
    /// What the state predicates read ([`visible`]).
    visible: u64,
    /// Buffers of the enabled steps, the steps explored and the child's sleep set, one set per
    /// level of the recursion, kept for the next call at that level (no allocation per state).
    bufs: Vec<Bufs>,
}

/// The buffers of one [`Dfs::dfs`] call.
#[derive(Default)]
struct Bufs {
    en: Vec<Step>,
    done: Vec<(Step, Footprint)>,
    child_sleep: Vec<Step>,
    /// The successor being searched: each step's state is cloned into it with `clone_from`,
    /// which reuses the vectors the last step's state allocated (no allocation per step).
    next: Option<State>,
}

impl<P: FnMut(u64) -> bool> Dfs<'_, '_, P> {
    /// Search from `st` with `left` steps left; the steps of `sleep` are not taken (each is
    /// independent of every step since the state where it was explored). With `only`, the
    /// state was searched before with at least `left` steps left and took every step but
    /// those: take only those.
    fn dfs(&mut self, st: &State, left: u32, sleep: &[Step], only: Option<&[Step]>) {
        if left == 0 || *self.stop {
            return;
        }
        let Bufs { mut en, mut done, mut child_sleep, mut next } = self.bufs.pop().unwrap_or_default();
        st.enabled(&mut en);
        // the steps explored from here so far (the sleeping ones, those of the search before)
        // with their footprints
        done.clear();
        if self.por {
            done.extend(sleep.iter().map(|&z| (z, st.footprint(z))));
            if let Some(only) = only {
                let before = en.iter().filter(|s| !sleep.contains(s) && !only.contains(s));
                done.extend(before.map(|&s| (s, st.footprint(s))));
            }
        }
        for &s in &en {
            if sleep.contains(&s) {
                self.rep.pruned += 1;
                continue;
            }
            if only.is_some_and(|o| !o.contains(&s)) {
                continue;
            }
            child_sleep.clear();
            let fs = if self.por {
                let fs = st.footprint(s);
                child_sleep.extend(done.iter().filter(|(_, fz)| fz.independent(fs, self.visible)).map(|&(z, _)| z));
                Some(fs)
            } else {
                None
            };
            let next = match &mut next {
                Some(n) => {
                    n.clone_from(st);
                    n
                }
                None => next.insert(st.clone()),
            };
            self.rep.transitions += 1;
            self.path.push(s);
            let (v, key, new) = self.visited.step(self.ck, next, s);
            if new {
                self.rep.states += 1;
                if self.rep.states % 4096 == 0 && !(self.progress)(self.rep.states) {
                    self.rep.interrupted = true;
                    *self.stop = true;
                }
                if self.rep.states >= self.max_states {
                    *self.stop = true;
                }
            }
            if self.verify && v.is_empty() {
                for &z in &child_sleep {
                    if let Err(why) = commute(self.ck, st, s, z) {
                        self.rep.por_unsound.push(format!("after {:?}: {why}", self.path));
                    }
                }
            }
            if !v.is_empty() {
                for v in v {
                    self.found.entry((v.predicate, v.cause)).or_insert_with(|| self.path.clone());
                }
            } else if !*self.stop {
                match self.visit(key, left - 1, &child_sleep) {
                    Visit::Skip => {}
                    Visit::Search => self.dfs(next, left - 1, &child_sleep, None),
                    Visit::Missing(only) => self.dfs(next, left - 1, &child_sleep, Some(&only)),
                }
            }
            self.path.pop();
            if *self.stop {
                break;
            }
            if let Some(fs) = fs {
                done.push((s, fs));
            }
        }
        self.bufs.push(Bufs { en, done, child_sleep, next });
    }

    /// Whether a state reached with `left` steps left and `sleep` asleep must be searched, and
    /// which of its steps: none if it was searched with at least as many steps left and a sleep
    /// set contained in `sleep` (that search took every step this one would); only the steps
    /// that slept then and do not now if it was searched with at least as many steps left;
    /// else all. Records the search.
    fn visit(&mut self, key: u64, left: u32, sleep: &[Step]) -> Visit {
        match self.seen.get_mut(&key) {
            Some(s) if s.left >= left => {
                let missing: Vec<Step> = s.sleep.iter().copied().filter(|z| !sleep.contains(z)).collect();
                if missing.is_empty() {
                    return Visit::Skip;
                }
                if s.left == left {
                    // both searches together took every step outside both sleep sets
                    s.sleep.retain(|z| sleep.contains(z));
                }
                Visit::Missing(missing)
            }
            _ => {
                self.seen.insert(key, Seen { left, sleep: sleep.to_vec() });
                Visit::Search
            }
        }
    }
}

/// What to search from a state reached again ([`Dfs::visit`]).
enum Visit {
    Skip,
    Search,
    /// Only these steps (the others were taken from it before).
    Missing(Vec<Step>),
}

/// Whether `s` and `z`, both enabled in `st` and taken as independent, commute there: each
/// stays enabled after the other, both orders reach the same state (with the same guest
/// values and causes), and each reports the same violations after the other as alone.
fn commute(ck: &mut Checker<'_>, st: &State, s: Step, z: Step) -> std::result::Result<(), String> {
    let keys = |v: Vec<super::state::Violation>| {
        let mut k: Vec<(Predicate, Cause)> = v.into_iter().map(|v| (v.predicate, v.cause)).collect();
        k.sort();
        k
    };
    let mut en = Vec::new();
    let run = |ck: &mut Checker<'_>, first: Step, second: Step, en: &mut Vec<Step>| {
        let mut a = st.clone();
        let v1 = keys(ck.step(&mut a, first));
        a.enabled(en);
        let enabled = en.contains(&second);
        let v2 = if enabled { keys(ck.step(&mut a, second)) } else { Vec::new() };
        (a, v1, enabled, v2)
    };
    let (a, va1, a_en, va2) = run(ck, s, z, &mut en);
    let (b, vb1, b_en, vb2) = run(ck, z, s, &mut en);
    let (s_t, z_t) = (s.text(), z.text());
    if !a_en || !b_en {
        return Err(format!("{s_t} and {z_t}: one disables the other"));
    }
    if !a.same_as(&b) {
        return Err(format!("{s_t} and {z_t}: the two orders reach different states"));
    }
    // each step after the other (once the other passed every check) reports what it reports
    // alone
    if va1.is_empty() && va2 != vb1 {
        return Err(format!("{z_t} after {s_t} reports {va2:?}, alone {vb1:?}"));
    }
    if vb1.is_empty() && vb2 != va1 {
        return Err(format!("{s_t} after {z_t} reports {vb2:?}, alone {va1:?}"));
    }
    Ok(())
}
