//! `reclaim.Scenario` and `reclaim._reclaim.explore_scenario`: the explorer (see
//! `rust/explore`), searched with the GIL released; a Python predicate takes it back per state.

use super::convert::arg;
use super::errors::{call, core_error, to_pyerr};
use super::s390::{PyPgste, PyPte};
use crate::arch::Arch;
use crate::error::Error;
use crate::explore::{
    self, Bounds, Checker, Counterexample, GuestSteps, PageClass, Predicate, Report, Scenario, Start, State, Step,
};
use crate::profile::Profile;
use crate::qemu::QemuVersion;
use pyo3::prelude::*;
use std::sync::Mutex;

/// A small postcopy scenario for the explorer: the destination host at the switchover with a
/// few guest pages in the states a migration creates.
#[pyclass(name = "Scenario", module = "reclaim", frozen)]
pub struct PyScenario {
    sc: Scenario,
}

fn parse_steps(steps: Vec<String>) -> PyResult<Vec<Step>> {
    call(|| steps.iter().map(|s| Step::parse(s)).collect())
}

fn parse_predicates(names: Option<Vec<String>>) -> PyResult<Vec<Predicate>> {
    match names {
        None => Ok(Predicate::ALL.to_vec()),
        Some(n) => call(|| n.iter().map(|s| Predicate::parse(s)).collect()),
    }
}

#[pymethods]
impl PyScenario {
    /// `profile`: an s390x profile name; `pages`: one class per guest page ("used_received",
    /// "free_received", "used_dirty", "free_zero"); `guest_steps`: the guest actions allowed
    /// ("alloc", "free", "read", "write", "diag10", "enable_skey"; all by default); `start`:
    /// "switchover" (before the final storage attributes) or "listen" (guest RAM just armed).
    #[new]
    #[pyo3(signature = (profile = None, *, qemu = "3.0", pages = None, vcpus = 1, host_pages = 64, swap_pages = 64,
        guest_steps = None, start = "switchover"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        profile: Option<&Bound<'_, PyAny>>,
        qemu: &str,
        pages: Option<Vec<String>>,
        #[pyo3(from_py_with = arg::vcpus)] vcpus: u32,
        #[pyo3(from_py_with = arg::host_pages)] host_pages: u64,
        #[pyo3(from_py_with = arg::swap_pages)] swap_pages: u64,
        guest_steps: Option<Vec<String>>,
        start: &str,
    ) -> PyResult<Self> {
        // a Profile object (a variant, registered or not) or a profile name
        let prof = match profile {
            None => call(|| Profile::get("4.17", Arch::S390x))?,
            Some(o) => match o.extract::<PyRef<'_, super::profile::PyProfile>>() {
                Ok(p) => Profile { arch: Arch::S390x, ..p.0.clone() },
                Err(_) => {
                    let name: String = o.extract()?;
                    call(|| Profile::get(&name, Arch::S390x))?
                }
            },
        };
        let sc = call(|| {
            let mut sc = Scenario::small(prof, QemuVersion::parse(qemu)?);
            if let Some(p) = pages {
                sc.pages = p.iter().map(|c| PageClass::parse(c)).collect::<crate::Result<_>>()?;
            }
            if let Some(g) = guest_steps {
                sc.guest_steps = GuestSteps::from_names(&g)?;
            }
            if !(64..=1 << 20).contains(&host_pages) {
                return Err(Error::invalid(format!("host_pages must be 64 to 1048576, not {host_pages}")));
            }
            if swap_pages > 1 << 20 {
                return Err(Error::invalid(format!("swap_pages must be at most 1048576, not {swap_pages}")));
            }
            sc.vcpus = vcpus;
            sc.start = Start::parse(start)?;
            sc.host_pages = host_pages;
            sc.swap_pages = swap_pages;
            State::new(&sc)?;
            Ok(sc)
        })?;
        Ok(PyScenario { sc })
    }

    /// The s390x profile name: "4.17", "4.18" or "6.12".
    #[getter]
    fn profile(&self) -> &'static str {
        self.sc.profile.name
    }
    /// The QEMU postcopy logic: "3.0" (2.12/3.0: the fault thread requests every faulting page) or
    /// "5.2" (5.2+: `migrate_send_rp_req_pages` does not request a page already received).
    #[getter]
    fn qemu(&self) -> &'static str {
        self.sc.qemu.name()
    }
    /// One class per guest page: "used_received", "free_received", "used_dirty" or "free_zero".
    #[getter]
    fn pages(&self) -> Vec<&'static str> {
        self.sc.pages.iter().map(|c| c.name()).collect()
    }
    /// The guest's vCPUs (threads that fault and can block on a userfault).
    #[getter]
    fn vcpus(&self) -> u32 {
        self.sc.vcpus
    }
    /// The destination host's memory in pages (at least 64).
    #[getter]
    fn host_pages(&self) -> u64 {
        self.sc.host_pages
    }
    /// The destination host's swap in pages.
    #[getter]
    fn swap_pages(&self) -> u64 {
        self.sc.swap_pages
    }
    /// The guest actions the search may take ("alloc", "free", "read", "write", "diag10",
    /// "enable_skey").
    #[getter]
    fn guest_steps(&self) -> Vec<&'static str> {
        self.sc.guest_steps.names()
    }
    /// Where the search starts: "switchover" (before the final storage attributes) or "listen"
    /// (guest RAM just registered with userfaultfd).
    #[getter]
    fn start(&self) -> &'static str {
        self.sc.start.name()
    }

    /// Replay `steps` (their text form, e.g. "reclaim:1") from the initial state, checking
    /// `predicates` (all built-in ones by default) and `predicate`; stops at the first
    /// violation. A step that is not enabled where it comes raises `ArgumentError`.
    #[pyo3(signature = (steps, *, predicates = None, predicate = None))]
    fn replay(
        &self,
        py: Python<'_>,
        steps: Vec<String>,
        predicates: Option<Vec<String>>,
        predicate: Option<Py<PyAny>>,
    ) -> PyResult<PyReplay> {
        let steps = parse_steps(steps)?;
        let builtins = parse_predicates(predicates)?;
        let user_err = Mutex::new(None);
        let mut user = |st: &State| user_check(&predicate, &user_err, st);
        let mut ck = Checker { builtins, user: predicate.is_some().then_some(&mut user as _) };
        let r = call(|| explore::replay(&self.sc, &steps, &mut ck));
        take_err(&user_err)?;
        let (st, v) = r?;
        Ok(PyReplay {
            violation: v.as_ref().map(|(_, v)| PyViolation::from(v)),
            step: v.map(|(i, _)| i),
            state: Py::new(py, PyExploreState::of(&st))?,
        })
    }

    /// The steps enabled in the initial state (their text form).
    fn initial_steps(&self) -> PyResult<Vec<String>> {
        let st = call(|| State::new(&self.sc))?;
        let mut en = Vec::new();
        st.enabled(&mut en);
        Ok(en.iter().map(|s| s.text()).collect())
    }

    /// Describe `steps` in kernel and QEMU terms, one line each.
    fn explain(&self, steps: Vec<String>) -> PyResult<Vec<String>> {
        let steps = parse_steps(steps)?;
        call(|| explore::explain(&self.sc, &steps))
    }

    fn __repr__(&self) -> String {
        let q = |v: Vec<&str>| v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
        let p = &self.sc.profile;
        // a variant is spelled out, so the repr replays in a process that never derived it
        let profile = if p.is_builtin() {
            format!("{:?}", p.name)
        } else {
            let base = p.base();
            let sw: Vec<String> = base.diff(p).iter().map(|(n, _, v)| format!(", {n}={}", py_value(*v))).collect();
            format!("reclaim.Profile.derive({:?}, {:?}{})", base.name, p.name, sw.concat())
        };
        format!(
            "reclaim.Scenario({}, qemu={:?}, pages=[{}], vcpus={}, host_pages={}, swap_pages={}, guest_steps=[{}], start={:?})",
            profile,
            self.sc.qemu.name(),
            q(self.pages()),
            self.sc.vcpus,
            self.sc.host_pages,
            self.sc.swap_pages,
            q(self.guest_steps()),
            self.sc.start.name()
        )
    }
}

/// Call the user's predicate on a state: None while it holds. Its exceptions are kept in
/// `err` (the first one) and end the search. `err` is only held to look or to store, never
/// while Python runs.
fn user_check(f: &Option<Py<PyAny>>, err: &Mutex<Option<PyErr>>, st: &State) -> Option<String> {
    let f = f.as_ref()?;
    if err.lock().map(|e| e.is_some()).unwrap_or(true) {
        return None;
    }
    let (verdict, failed) = Python::attach(|py| {
        let view = match Py::new(py, PyExploreState::of(st)) {
            Ok(v) => v,
            Err(e) => return (None, Some(e)),
        };
        match f.call1(py, (view,)) {
            Ok(r) => {
                let r = r.bind(py);
                if r.is_none() {
                    return (None, None);
                }
                if let Ok(ok) = r.extract::<bool>() {
                    return ((!ok).then(|| "the predicate returned False".to_string()), None);
                }
                match r.extract::<String>() {
                    Ok(msg) => (Some(msg), None),
                    Err(_) => (
                        None,
                        Some(core_error(
                            py,
                            Error::invalid(format!(
                                "a predicate returns None or True while the state is fine, and a str (what is wrong) or False when it is not; got {}",
                                r.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                            )),
                        )),
                    ),
                }
            }
            Err(e) => (None, Some(e)),
        }
    });
    if let Some(e) = failed {
        if let Ok(mut slot) = err.lock() {
            slot.get_or_insert(e);
        }
    }
    verdict
}

fn take_err(err: &Mutex<Option<PyErr>>) -> PyResult<()> {
    match err.lock().ok().and_then(|mut e| e.take()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Explore `scenario` up to the bounds. `progress(states)` is called now and then; a Python
/// exception in it or in `predicate` (or Ctrl-C) ends the search and is raised.
#[pyfunction]
#[pyo3(signature = (scenario, *, depth, max_states, walks, walk_len, seed, predicates = None, predicate = None,
    progress = None, por = true))]
#[allow(clippy::too_many_arguments)]
fn explore_scenario(
    py: Python<'_>,
    scenario: &PyScenario,
    #[pyo3(from_py_with = arg::depth)] depth: u32,
    #[pyo3(from_py_with = arg::max_states)] max_states: u64,
    #[pyo3(from_py_with = arg::walks)] walks: u64,
    #[pyo3(from_py_with = arg::walk_len)] walk_len: u32,
    #[pyo3(from_py_with = arg::seed)] seed: u64,
    predicates: Option<Vec<String>>,
    predicate: Option<Py<PyAny>>,
    progress: Option<Py<PyAny>>,
    por: bool,
) -> PyResult<PyExploreResult> {
    if depth == 0 || depth > 64 {
        return Err(to_pyerr(Error::invalid(format!("depth must be 1 to 64, not {depth}"))));
    }
    if max_states == 0 {
        return Err(to_pyerr(Error::invalid("max_states must be positive")));
    }
    let builtins = parse_predicates(predicates)?;
    let b = Bounds { depth, max_states, walks, walk_len, seed, por, por_verify: false };
    let sc = scenario.sc.clone();
    let err = Mutex::new(None);
    let report = py.detach(|| {
        let mut user = |st: &State| user_check(&predicate, &err, st);
        let mut ck = Checker { builtins, user: predicate.is_some().then_some(&mut user as _) };
        let on_progress = |states: u64| -> bool {
            if err.lock().map(|e| e.is_some()).unwrap_or(true) {
                return false;
            }
            Python::attach(|py| {
                let r = py.check_signals().and_then(|_| match &progress {
                    Some(f) => f.call1(py, (states,)).map(|_| ()),
                    None => Ok(()),
                });
                match r {
                    Ok(()) => true,
                    Err(e) => {
                        if let Ok(mut slot) = err.lock() {
                            slot.get_or_insert(e);
                        }
                        false
                    }
                }
            })
        };
        call(|| explore::explore(&sc, &mut ck, &b, on_progress))
    });
    take_err(&err)?;
    let report = report?;
    Ok(PyExploreResult { found: report.found.iter().map(PyCounterexample::from).collect(), report, b })
}

/// A violated predicate.
#[pyclass(name = "Violation", module = "reclaim", frozen)]
#[derive(Clone)]
pub struct PyViolation {
    #[pyo3(get)]
    predicate: &'static str,
    /// The kernel path that made the page missing, short ("pte_unused", "cbrl", "diag10",
    /// "zero_page", "other").
    #[pyo3(get)]
    cause: &'static str,
    /// The same, in words.
    #[pyo3(get)]
    cause_text: &'static str,
    #[pyo3(get)]
    message: String,
}

impl From<&explore::Violation> for PyViolation {
    fn from(v: &explore::Violation) -> Self {
        PyViolation {
            predicate: v.predicate.name(),
            cause: v.cause.name(),
            cause_text: v.cause.description(),
            message: v.message.clone(),
        }
    }
}

#[pymethods]
impl PyViolation {
    fn __repr__(&self) -> String {
        format!("Violation(predicate={:?}, cause={:?}, message={:?})", self.predicate, self.cause, self.message)
    }
}

/// A violation with the shortest steps found that lead to it.
#[pyclass(name = "Counterexample", module = "reclaim", frozen)]
#[derive(Clone)]
pub struct PyCounterexample {
    #[pyo3(get)]
    violation: PyViolation,
    /// The steps, in their replayable text form.
    #[pyo3(get)]
    steps: Vec<String>,
    /// The steps in kernel and QEMU terms.
    #[pyo3(get)]
    explained: Vec<String>,
    /// How minimal the steps are: "shortest" (no shorter trace exists), "shortest_for_its_guest_steps"
    /// (none with the same guest steps), "one_minimal" (no step can be removed) or "unshrunk".
    #[pyo3(get)]
    minimal: &'static str,
}

impl From<&Counterexample> for PyCounterexample {
    fn from(c: &Counterexample) -> Self {
        PyCounterexample {
            violation: PyViolation::from(&c.violation),
            steps: c.steps.iter().map(|s| s.text()).collect(),
            explained: c.explained.clone(),
            minimal: c.minimal.name(),
        }
    }
}

#[pymethods]
impl PyCounterexample {
    fn __repr__(&self) -> String {
        format!("Counterexample({:?}, {:?}, steps={:?})", self.violation.predicate, self.violation.cause, self.steps)
    }
}

/// What an exploration covered and found (`reclaim.explore` wraps it).
#[pyclass(name = "ExploreReport", module = "reclaim", frozen)]
pub struct PyExploreResult {
    report: Report,
    found: Vec<PyCounterexample>,
    b: Bounds,
}

#[pymethods]
impl PyExploreResult {
    /// The first counterexample of each (predicate, cause), shrunk.
    #[getter]
    fn found(&self) -> Vec<PyCounterexample> {
        self.found.clone()
    }
    /// Distinct states visited over all search passes and walks (the initial state included).
    #[getter]
    fn states(&self) -> u64 {
        self.report.states
    }
    /// Steps taken over all passes and walks.
    #[getter]
    fn transitions(&self) -> u64 {
        self.report.transitions
    }
    /// The deepest bound searched completely.
    #[getter]
    fn depth_completed(&self) -> u32 {
        self.report.depth_completed
    }
    #[getter]
    fn depth(&self) -> u32 {
        self.b.depth
    }
    #[getter]
    fn max_states(&self) -> u64 {
        self.b.max_states
    }
    /// Every interleaving up to `depth` was searched (the state budget was not hit).
    #[getter]
    fn exhaustive(&self) -> bool {
        self.report.exhaustive
    }
    #[getter]
    fn walks(&self) -> u64 {
        self.report.walks
    }
    #[getter]
    fn seconds(&self) -> f64 {
        self.report.seconds
    }
    /// Whether partial-order reduction (sleep sets) was on in the exhaustive passes.
    #[getter]
    fn por(&self) -> bool {
        self.report.por
    }
    /// Steps the exhaustive passes did not take because they only reorder independent steps of
    /// an interleaving already explored (0 without partial-order reduction).
    #[getter]
    fn pruned(&self) -> u64 {
        self.report.pruned
    }
}

/// The explorer's state, as a user predicate sees it (a snapshot).
#[pyclass(name = "ExploreState", module = "reclaim", frozen)]
pub struct PyExploreState {
    /// "switchover", "postcopy" or "done".
    #[pyo3(get)]
    phase: &'static str,
    /// Per guest page: the destination received it (QEMU's received bitmap).
    #[pyo3(get)]
    received: Vec<bool>,
    /// Per guest page: the guest uses it.
    #[pyo3(get)]
    used: Vec<bool>,
    /// Per vCPU: the guest page it is parked on, or None.
    #[pyo3(get)]
    blocked: Vec<Option<u32>>,
    /// Guest pages with a userfault waiting.
    #[pyo3(get)]
    userfaults: Vec<u32>,
    ptes: Vec<Option<u64>>,
    pgstes: Vec<u64>,
    arch: Arch,
    swp: crate::arch::SwpFormat,
    layout: crate::arch::s390::pgste::PgsteLayout,
}

impl PyExploreState {
    fn of(st: &State) -> Self {
        let n = st.pages();
        PyExploreState {
            phase: st.phase(),
            received: (0..n).map(|g| st.received(g)).collect(),
            used: (0..n).map(|g| st.used(g)).collect(),
            blocked: st.blocked(),
            userfaults: st.userfaults(),
            ptes: (0..n).map(|g| st.pte(g)).collect(),
            pgstes: (0..n).map(|g| st.pgste(g)).collect(),
            arch: st.kernel().arch(),
            swp: st.kernel().swp_format(),
            layout: st.kernel().profile().pgste_layout,
        }
    }

    fn page(&self, g: usize) -> PyResult<usize> {
        if g < self.ptes.len() {
            Ok(g)
        } else {
            Err(to_pyerr(Error::invalid(format!("guest page {g} is not in the scenario (0..{})", self.ptes.len()))))
        }
    }
}

#[pymethods]
impl PyExploreState {
    /// Guest pages in the scenario.
    #[getter]
    fn pages(&self) -> usize {
        self.ptes.len()
    }
    /// The host PTE backing guest page `g`.
    fn pte(&self, #[pyo3(from_py_with = arg::g)] g: usize) -> PyResult<PyPte> {
        let v = self.ptes[self.page(g)?].unwrap_or(self.arch.pte_none_val());
        Ok(PyPte { v, swp: self.swp })
    }
    /// The PGSTE of guest page `g`.
    fn pgste(&self, #[pyo3(from_py_with = arg::g)] g: usize) -> PyResult<PyPgste> {
        Ok(PyPgste { v: crate::arch::s390::pgste::Pgste(self.pgstes[self.page(g)?]), layout: self.layout })
    }
    fn __repr__(&self) -> String {
        format!(
            "ExploreState(phase={:?}, received={:?}, used={:?}, blocked={:?}, userfaults={:?})",
            self.phase, self.received, self.used, self.blocked, self.userfaults
        )
    }
}

/// The outcome of `Scenario.replay`.
#[pyclass(name = "Replay", module = "reclaim", frozen)]
pub struct PyReplay {
    /// The first violation, or None.
    #[pyo3(get)]
    violation: Option<PyViolation>,
    /// The index of the step that violated it.
    #[pyo3(get)]
    step: Option<usize>,
    /// The state after the last step replayed.
    #[pyo3(get)]
    state: Py<PyExploreState>,
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScenario>()?;
    m.add_class::<PyViolation>()?;
    m.add_class::<PyCounterexample>()?;
    m.add_class::<PyExploreResult>()?;
    m.add_class::<PyExploreState>()?;
    m.add_class::<PyReplay>()?;
    m.add_function(wrap_pyfunction!(explore_scenario, m)?)?;
    let names: Vec<&str> = Predicate::ALL.iter().map(|p| p.name()).collect();
    m.add("PREDICATE_NAMES", names)?;
    let causes = pyo3::types::PyDict::new(m.py());
    for (_, name, text) in explore::Cause::TABLE {
        causes.set_item(name, text)?;
    }
    m.add("CAUSES", causes)?;
    Ok(())
}

/// A switch value as Python source.
fn py_value(v: crate::profile::SwitchValue) -> String {
    use crate::profile::SwitchValue;
    match v {
        SwitchValue::Bool(b) => {
            if b {
                "True".into()
            } else {
                "False".into()
            }
        }
        SwitchValue::Int(i) => i.to_string(),
        SwitchValue::Choice(c) => format!("{c:?}"),
    }
}
