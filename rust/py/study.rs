//! `reclaim._reclaim.run_postcopy`: the postcopy study, run with the GIL released.

use super::arrays::EventColumns;
use super::convert::{arg, pairs_dict};
use super::errors::{call, catch, core_error, invariant_error, locked};
use super::kernel::{PyEvent, event_to_py};
use crate::arch::Arch;
use crate::kvm::guest::GuestConfig;
use crate::profile::Profile;
use crate::qemu::{LinkConfig, QemuVersion};
use crate::sim::log::Event;
use crate::sim::workload::Pattern;
use crate::sim::world::World;
use crate::study::postcopy::{self, PostcopyConfig, StudyResult, Trace};
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
    qemu: String,
    seed: u64,
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
        self.r.events.iter().filter(|e: &&Event| name.is_none_or(|n| e.kind.name() == n)).map(event_to_py).collect()
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

    /// Run up to simulated time `until_ns` (or the end). Returns whether the run is over.
    fn advance(&self, py: Python<'_>, #[pyo3(from_py_with = arg::until_ns)] until_ns: u64) -> PyResult<bool> {
        let max = self.cfg.max_time_ns;
        locked(py, &self.w, |w| {
            w.run(until_ns.min(max));
            Ok(w.finished() || w.now >= max || w.pending().is_empty())
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
            qemu: self.cfg.qemu.name().to_string(),
            seed: self.cfg.seed,
        })
    }
}

/// Host 0 (source) or 1 (destination) of a run.
fn host_kernel(w: &World, host: usize) -> crate::Result<&crate::Kernel> {
    w.hosts.get(host).ok_or_else(|| crate::Error::invalid(format!("host is 0 (source) or 1 (destination), not {host}")))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStudyResult>()?;
    m.add_class::<PyPostcopyRun>()?;
    Ok(())
}
