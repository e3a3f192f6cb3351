//! `reclaim._reclaim.run_postcopy`: the postcopy study, run with the GIL released.

use super::arrays::EventColumns;
use super::convert::{arg, pairs_dict};
use super::errors::{call, catch, core_error, invariant_error, locked};
use super::kernel::{PyEvent, event_to_py};
use crate::arch::Arch;
use crate::kvm::guest::GuestConfig;
use crate::profile::Profile;
use crate::qemu::{LinkConfig, QemuVersion};
use crate::sim::log::{Ev, Event};
use crate::sim::workload::Pattern;
use crate::study::postcopy::{self, PostcopyConfig, StudyResult, Trace};
use crate::study::world::World;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::Mutex;

/// The result of a postcopy study (see `reclaim.studies.postcopy`).
#[pyclass(name = "PostcopyResult", module = "reclaim", frozen)]
pub struct PyStudyResult {
    r: StudyResult,
    profile: String,
    source_profile: String,
    /// The hosts' profiles by host index: 0 the source, 1 the destination.
    host_profiles: [Profile; 2],
    qemu: String,
    seed: u64,
    vcpus: u32,
}

fn chain_step<'py>(py: Python<'py>, s: &postcopy::ChainStep) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("t", s.t)?;
    d.set_item("host", s.host)?;
    d.set_item("what", &s.what)?;
    d.set_item("event", s.event.kind.name())?;
    Ok(d)
}

#[pymethods]
impl PyStudyResult {
    /// "completed", "hung" or "failed".
    #[getter]
    fn outcome(&self) -> &'static str {
        self.r.outcome.name()
    }
    /// Why the migration failed (None unless failed).
    #[getter]
    fn failure(&self) -> Option<String> {
        self.r.failure.clone()
    }
    /// The destination host's kernel profile.
    #[getter]
    fn profile(&self) -> String {
        self.profile.clone()
    }
    /// The source host's kernel profile.
    #[getter]
    fn source_profile(&self) -> String {
        self.source_profile.clone()
    }
    /// The QEMU postcopy logic that ran: "3.0" (2.12/3.0) or "5.2" (5.2+).
    #[getter]
    fn qemu(&self) -> String {
        self.qemu.clone()
    }
    /// The seed of the run's RNG (same seed, same event log).
    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }
    /// The guest's number of vCPUs.
    #[getter]
    fn vcpus(&self) -> u32 {
        self.vcpus
    }
    /// The measurements, by name (times in ns).
    #[getter]
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.r.metrics.items() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
    /// The hung vCPU: {"vcpu", "gfn", "since", "released_at"} (None unless hung).
    #[getter]
    fn hang<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(h) = &self.r.hang else { return Ok(None) };
        let d = PyDict::new(py);
        d.set_item("vcpu", h.vcpu)?;
        d.set_item("gfn", h.gfn)?;
        d.set_item("since", h.since)?;
        d.set_item("released_at", h.released_at)?;
        Ok(Some(d))
    }
    /// Every wait of a vCPU on a page QEMU had already sent: {"vcpu", "gfn", "since",
    /// "waited_ns", "released_at" (None: never), "released_by" ("postcopy cleanup",
    /// "woken before the end" or "never"), "guest_would_show" (the guest watchdogs a stall that
    /// long sets off, see `guest_watchdogs()`)}. Empty unless hung.
    #[getter]
    fn stalls<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.r
            .stalls
            .iter()
            .map(|s| {
                let d = PyDict::new(py);
                d.set_item("vcpu", s.vcpu)?;
                d.set_item("gfn", s.gfn)?;
                d.set_item("since", s.since)?;
                d.set_item("waited_ns", s.waited_ns)?;
                d.set_item("released_at", s.released_at)?;
                d.set_item("released_by", s.released_by.name())?;
                d.set_item("guest_would_show", s.guest_symptoms().iter().map(|w| w.name).collect::<Vec<_>>())?;
                Ok(d)
            })
            .collect()
    }
    /// The causal chain of the hung page, in kernel and QEMU terms (empty unless hung).
    #[getter]
    fn chain<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let Some(h) = &self.r.hang else { return Ok(Vec::new()) };
        h.chain.iter().map(|s| chain_step(py, s)).collect()
    }
    /// The events of both hosts in time order (host 0: source, 1: destination), optionally
    /// only those of trace `name`.
    #[pyo3(signature = (name = None))]
    fn events(&self, name: Option<&str>) -> Vec<PyEvent> {
        let profiles = &self.host_profiles;
        let kind = name.map(Ev::by_name);
        self.r
            .events
            .iter()
            .filter(|e: &&Event| kind.is_none_or(|k| Some(e.kind) == k))
            .map(|e| event_to_py(e, &profiles[usize::from(e.host).min(1)]))
            .collect()
    }
    /// The events of both hosts as numpy columns (see Kernel.event_arrays).
    fn event_arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        EventColumns::of(&self.r.events).into_dict(py)
    }
    /// Number of events recorded.
    #[getter]
    fn n_events(&self) -> usize {
        self.r.events.len()
    }
    /// Platform-independent hash of the event log (same seed, same hash).
    #[getter]
    fn log_hash(&self) -> u64 {
        self.r.log_hash
    }
    /// "full", "chain" or "rare": how much of the log was kept.
    #[getter]
    fn trace(&self) -> &'static str {
        match self.r.trace {
            Trace::Chain => "chain",
            Trace::Rare => "rare",
            _ => "full",
        }
    }
    /// The result as an HTML table (Jupyter): outcome, the main metrics and each stall.
    fn _repr_html_(&self) -> String {
        let m = &self.r.metrics;
        let mut rows: Vec<(String, String)> = vec![
            ("outcome".into(), self.r.outcome.name().into()),
            ("profile (source → destination)".into(), format!("{} → {}", self.source_profile, self.profile)),
            ("QEMU, seed".into(), format!("{}, {}", self.qemu, self.seed)),
            ("migration time".into(), format!("{:.3} s", m.total_time_ns as f64 / 1e9)),
            ("userfaults on received pages".into(), m.userfaults_on_received.to_string()),
            ("destination pages dropped (pte_unused)".into(), m.dest_pages_dropped.to_string()),
            ("destination pages swapped".into(), m.dest_pages_swapped.to_string()),
            ("swap PTEs zapped by the CBRL".into(), m.dest_cbrl_zapped.to_string()),
        ];
        if let Some(f) = &self.r.failure {
            rows.push(("failure".into(), f.clone()));
        }
        for s in &self.r.stalls {
            let shows: Vec<&str> = s.guest_symptoms().iter().map(|w| w.name).collect();
            rows.push((
                format!("stall: vCPU {} on guest page {:#x}", s.vcpu, s.gfn),
                format!(
                    "{:.3} s, released by {}; a real guest shows {}",
                    s.waited_ns as f64 / 1e9,
                    s.released_by.name(),
                    if shows.is_empty() { "nothing".to_string() } else { shows.join(", ") }
                ),
            ));
        }
        super::html::table("PostcopyResult", &rows)
    }
    fn __repr__(&self) -> String {
        format!(
            "PostcopyResult(profile={:?}, qemu={:?}, seed={}, outcome={:?})",
            self.profile,
            self.qemu,
            self.seed,
            self.r.outcome.name()
        )
    }
}

/// A postcopy study in progress: advance it in slices of simulated time (for progress bars),
/// then take its result.
#[pyclass(name = "PostcopyRun", module = "reclaim", frozen)]
pub struct PyPostcopyRun {
    w: Mutex<World>,
    cfg: PostcopyConfig,
}

#[pymethods]
impl PyPostcopyRun {
    /// Build the hosts, boot the guest on the source and start the migration. Sizes in bytes;
    /// see `reclaim.studies.postcopy` for the meaning of each parameter.
    #[new]
    #[pyo3(signature = (*, profile, source_profile, qemu, guest_memory, vcpus, workload, used_fraction, write_fraction, turnover,
        free_policy, cmma, nodat, diag10, op_interval_ns, source_memory, source_swap, dest_memory, dest_swap,
        other_load, load_interval_ns, bandwidth, latency_ns, precopy_iterations, seed, max_time_ns, trace))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        profile: &str,
        source_profile: &str,
        qemu: &str,
        #[pyo3(from_py_with = arg::guest_memory)] guest_memory: u64,
        #[pyo3(from_py_with = arg::vcpus)] vcpus: u32,
        workload: &str,
        used_fraction: f64,
        write_fraction: f64,
        turnover: f64,
        free_policy: &str,
        cmma: bool,
        nodat: bool,
        diag10: f64,
        #[pyo3(from_py_with = arg::op_interval_ns)] op_interval_ns: u64,
        #[pyo3(from_py_with = arg::source_memory)] source_memory: u64,
        #[pyo3(from_py_with = arg::source_swap)] source_swap: u64,
        #[pyo3(from_py_with = arg::dest_memory)] dest_memory: u64,
        #[pyo3(from_py_with = arg::dest_swap)] dest_swap: u64,
        #[pyo3(from_py_with = arg::other_load)] other_load: u64,
        #[pyo3(from_py_with = arg::load_interval_ns)] load_interval_ns: u64,
        #[pyo3(from_py_with = arg::bandwidth)] bandwidth: u64,
        #[pyo3(from_py_with = arg::latency_ns)] latency_ns: u64,
        #[pyo3(from_py_with = arg::precopy_iterations)] precopy_iterations: u32,
        #[pyo3(from_py_with = arg::seed)] seed: u64,
        #[pyo3(from_py_with = arg::max_time_ns)] max_time_ns: u64,
        trace: &str,
    ) -> PyResult<Self> {
        let cfg = call(|| {
            let p = Profile::get(profile, Arch::S390x)?;
            let sp = Profile::get(source_profile, Arch::S390x)?;
            let pages = crate::units::check_pages("guest_memory", guest_memory)?;
            let trace = match trace {
                "auto" => Trace::Auto,
                "full" => Trace::Full,
                "chain" => Trace::Chain,
                "rare" => Trace::Rare,
                o => {
                    return Err(crate::Error::invalid(format!(
                        "trace must be \"auto\", \"full\", \"chain\" or \"rare\", not {o:?}"
                    )));
                }
            };
            if bandwidth == 0 {
                return Err(crate::Error::invalid("bandwidth must be positive"));
            }
            Ok(PostcopyConfig {
                profile: p,
                source_profile: sp,
                qemu: QemuVersion::parse(qemu)?,
                guest: GuestConfig {
                    pages,
                    vcpus,
                    used_fraction,
                    pattern: Pattern::parse(workload)?,
                    write_fraction,
                    turnover,
                    free_policy: crate::kvm::guest::FreePolicy::parse(free_policy)?,
                    cmma,
                    nodat,
                    diag10,
                    op_interval_ns,
                },
                source_memory,
                source_swap,
                dest_memory,
                dest_swap,
                other_load,
                load_interval_ns: load_interval_ns.max(1),
                link: LinkConfig { bandwidth, latency_ns },
                precopy_iterations,
                seed,
                max_time_ns,
                trace,
            })
        })?;
        let w = py
            .detach(|| {
                catch(|| {
                    let mut w = postcopy::build(&cfg)?;
                    w.start();
                    Ok(w)
                })
            })
            .map_err(|e| e.into_pyerr(py))?;
        Ok(PyPostcopyRun { w: Mutex::new(w), cfg })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (now, steps, finished) = locked(py, &self.w, |w| Ok((w.now, w.steps, w.finished())))?;
        Ok(format!(
            "PostcopyRun(profile='{}', qemu='{}', seed={}, now={:.3}s, steps={}, finished={})",
            self.cfg.profile.name,
            self.cfg.qemu.name(),
            self.cfg.seed,
            now as f64 / 1e9,
            steps,
            if finished { "True" } else { "False" }
        ))
    }

    /// Run up to simulated time `until_ns` (or the end). Returns whether the run is over.
    fn advance(&self, py: Python<'_>, #[pyo3(from_py_with = arg::until_ns)] until_ns: u64) -> PyResult<bool> {
        let max = self.cfg.max_time_ns;
        locked(py, &self.w, |w| {
            w.run(until_ns.min(max));
            Ok(w.finished() || w.now >= max || !w.has_pending())
        })
    }

    /// Stop (or resume) recording events of the trace `name` on both hosts (a long run mutes
    /// the per-operation kinds, e.g. "kvm:essa").
    #[pyo3(signature = (name, muted = true))]
    fn mute(&self, py: Python<'_>, name: &str, muted: bool) -> PyResult<()> {
        let kind = crate::sim::log::Ev::by_name(name)
            .ok_or_else(|| core_error(py, crate::Error::invalid(format!("unknown event name {name:?}"))))?;
        locked(py, &self.w, |w| {
            for k in &mut w.hosts {
                k.mute(kind, muted);
            }
            Ok(())
        })
    }

    /// Actions the run has applied (guest operations, sends, deliveries, kswapd runs...).
    #[getter]
    fn steps(&self, py: Python<'_>) -> PyResult<u64> {
        locked(py, &self.w, |w| Ok(w.steps))
    }

    /// Bytes of heap the run's state takes (both hosts, with their event logs, and the guest).
    fn heap_bytes(&self, py: Python<'_>) -> PyResult<usize> {
        locked(py, &self.w, |w| Ok(w.heap_bytes()))
    }

    /// Check the model's invariants on both hosts and the run around them; raises
    /// reclaim.InvariantError naming the first violation.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        let r = locked(py, &self.w, |w| Ok(w.check_invariants()))?;
        r.map_err(|msg| invariant_error(py, msg))
    }

    /// Simulated time now (ns).
    #[getter]
    fn now(&self, py: Python<'_>) -> PyResult<u64> {
        locked(py, &self.w, |w| Ok(w.now))
    }

    /// (pages the source has sent, pages it will send at least: two passes' worth at most).
    #[getter]
    fn progress(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        locked(py, &self.w, |w| {
            let s = &w.src.stats;
            Ok((s.precopy_pages + s.postcopy_pages, s.precopy_pages + s.postcopy_pages + w.src.dirty.count()))
        })
    }

    /// /proc/vmstat of host 0 (source) or 1 (destination) now.
    fn vmstat<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::host)] host: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let v = locked(py, &self.w, |w| Ok(host_kernel(w, host)?.vmstat()))?;
        pairs_dict(py, &v)
    }

    /// pagemap states of the guest's RAM on host 0 or 1 now (numpy uint8 per guest page:
    /// 0 none, 1 present, 2 swapped).
    fn page_states<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::host)] host: usize,
    ) -> PyResult<Bound<'py, numpy::PyArray1<u8>>> {
        let v = locked(py, &self.w, |w| {
            let (pid, base) = if host == 0 { (w.src.pid, w.src.ram_base) } else { (w.dst.pid, w.dst.ram_base) };
            host_kernel(w, host)?.pagemap(pid, base, w.src.pages)
        })?;
        Ok(numpy::PyArray1::from_vec(py, v.into_iter().map(|s| s as u8).collect()))
    }

    /// The destination QEMU's received bitmap now (numpy bool per guest page). A received page
    /// whose PTE is none (`page_states(1)` 0) was dropped or zapped after it arrived: QEMU will
    /// not send it again.
    fn received<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, numpy::PyArray1<bool>>> {
        let v: Vec<bool> = locked(py, &self.w, |w| Ok((0..w.dst.pages).map(|g| w.dst.received.test(g)).collect()))?;
        Ok(numpy::PyArray1::from_vec(py, v))
    }

    /// Write the whole run (its configuration, both hosts, QEMU, the guest, the link, the RNGs
    /// and the pending actions) to the file `path`, atomically. `PostcopyRun.restore(path)`
    /// continues from it with the same events as this run would.
    fn snapshot(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        locked(py, &self.w, |w| postcopy::snapshot(w, &self.cfg, &path))
    }

    /// The run of the snapshot file `path`. Raises FileError if it cannot be read, FormatError
    /// if it is not a snapshot of a postcopy run of this format version or is damaged.
    #[classmethod]
    fn restore(_cls: &Bound<'_, pyo3::types::PyType>, py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let (w, cfg) = py.detach(move || catch(|| postcopy::restore(&path))).map_err(|e| e.into_pyerr(py))?;
        Ok(PyPostcopyRun { w: Mutex::new(w), cfg })
    }

    /// The result (of a finished run, or of the state so far).
    fn result(&self, py: Python<'_>) -> PyResult<PyStudyResult> {
        let r = locked(py, &self.w, |w| Ok(postcopy::result(w, &self.cfg)))?;
        Ok(PyStudyResult {
            r,
            profile: self.cfg.profile.name.to_string(),
            source_profile: self.cfg.source_profile.name.to_string(),
            host_profiles: [self.cfg.source_profile.clone(), self.cfg.profile.clone()],
            qemu: self.cfg.qemu.name().to_string(),
            seed: self.cfg.seed,
            vcpus: self.cfg.guest.vcpus,
        })
    }
}

/// Host 0 (source) or 1 (destination) of a run.
fn host_kernel(w: &World, host: usize) -> crate::Result<&crate::Kernel> {
    w.hosts.get(host).ok_or_else(|| crate::Error::invalid(format!("host is 0 (source) or 1 (destination), not {host}")))
}

/// The guest kernel's watchdogs a long vCPU stall sets off, with their default thresholds:
/// [{"name", "knob", "threshold_s", "source", "message"}], in order of threshold.
#[pyfunction]
fn guest_watchdogs(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    crate::study::stall::GUEST_WATCHDOGS
        .iter()
        .map(|w| {
            let d = PyDict::new(py);
            d.set_item("name", w.name)?;
            d.set_item("knob", w.knob)?;
            d.set_item("threshold_s", w.threshold_s)?;
            d.set_item("source", w.source)?;
            d.set_item("message", w.message)?;
            Ok(d)
        })
        .collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(guest_watchdogs, m)?)?;
    m.add_class::<PyStudyResult>()?;
    m.add_class::<PyPostcopyRun>()?;
    Ok(())
}
