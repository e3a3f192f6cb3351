//! `reclaim.Kernel`: one host.

use super::convert::{Shared, arg, pairs_dict, size_arg, with};
use super::errors::{call, catch, core_error, invariant_error};
use super::process::PyProcess;
use super::profile::PyProfile;
use crate::arch::Arch;
use crate::error::Error;
use crate::kernel::Kernel;
use crate::named::Named;
use crate::profile::Profile;
use crate::sim::log::{Ev, Event};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A kernel event from the log.
#[pyclass(name = "Event", module = "reclaim", frozen, get_all)]
pub struct PyEvent {
    /// Simulated time, nanoseconds.
    pub t: u64,
    /// The model's event name, e.g. "rmap:try_to_unmap_one" (the same in every profile).
    pub name: &'static str,
    /// The kernel tracepoint the event mirrors, by its name in the release of the profile of
    /// the host that logged it (e.g. "mm_vmscan_writepage" on 4.17, "mm_vmscan_write_folio"
    /// on 6.12); None for the model's own events, which no kernel tracepoint mirrors.
    pub tracepoint: Option<&'static str>,
    /// Which host of the run logged it (0 for a lone kernel; source 0, destination 1 in a migration).
    pub host: u8,
    /// The process (mm) concerned, 0 if none.
    pub pid: u32,
    /// The thread: a vCPU's index for guest threads.
    pub tid: u16,
    /// The virtual address concerned (0 if none).
    pub addr: u64,
    /// The one-line rendering in ftrace style.
    pub text: String,
    /// The first kind-specific field (named by `fields()` and `EVENT_FIELDS`; 0 if unused).
    pub a: u64,
    /// The second kind-specific field (named by `fields()` and `EVENT_FIELDS`; 0 if unused).
    pub b: u64,
    /// The third kind-specific field (named by `fields()` and `EVENT_FIELDS`; 0 if unused).
    pub c: u64,
}

#[pymethods]
impl PyEvent {
    /// The kind-specific fields by name.
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        if let Some(kind) = Ev::by_name(self.name) {
            for (n, v) in kind.fields().iter().zip([self.a, self.b, self.c]) {
                if let Some(n) = n {
                    d.set_item(*n, v)?;
                }
            }
        }
        Ok(d)
    }
    fn __repr__(&self) -> String {
        format!("Event(t={}ns {})", self.t, self.text)
    }
}

/// The Python event of `e`, logged by a host running `profile`.
pub fn event_to_py(e: &Event, profile: &Profile) -> PyEvent {
    PyEvent {
        t: e.t,
        name: e.kind.name(),
        tracepoint: e.kind.tracepoint(profile),
        host: e.host,
        pid: e.pid,
        tid: e.tid,
        addr: e.addr,
        text: e.render(),
        a: e.a,
        b: e.b,
        c: e.c,
    }
}

/// A host kernel of one profile: memory, swap, processes, reclaim, userfaultfd.
#[pyclass(name = "Kernel", module = "reclaim", frozen)]
pub struct PyKernel {
    pub k: Shared,
}

#[pymethods]
impl PyKernel {
    #[new]
    #[pyo3(signature = (profile = None, arch = "s390x", memory = None, swap = None, seed = 0))]
    fn new(
        profile: Option<&Bound<'_, PyAny>>,
        arch: &str,
        memory: Option<&Bound<'_, PyAny>>,
        swap: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::seed)] seed: u64,
    ) -> PyResult<Self> {
        let prof = match profile {
            None => call(|| Profile::by_names("4.18", arch))?,
            Some(p) => {
                if let Ok(p) = p.extract::<PyRef<'_, PyProfile>>() {
                    if p.0.arch.name() != arch {
                        call(|| Profile::get(p.0.name, Arch::parse(arch)?))?
                    } else {
                        p.0.clone()
                    }
                } else {
                    let name: String = p.extract()?;
                    call(|| Profile::by_names(&name, arch))?
                }
            }
        };
        let mem = match memory {
            Some(m) => size_arg(m, "memory")?,
            None => 2 << 30,
        };
        let sw = match swap {
            Some(s) => size_arg(s, "swap")?,
            None => 1 << 30,
        };
        let k = call(|| Kernel::new(prof, mem, sw, seed))?;
        Ok(PyKernel { k: Arc::new(Mutex::new(k)) })
    }

    /// The kernel profile.
    #[getter]
    fn profile(&self, py: Python<'_>) -> PyResult<PyProfile> {
        with(py, &self.k, |k| Ok(PyProfile(k.profile().clone())))
    }

    /// Simulated time in nanoseconds.
    #[getter]
    fn now(&self, py: Python<'_>) -> PyResult<u64> {
        with(py, &self.k, |k| Ok(k.now()))
    }

    /// Total memory in bytes.
    #[getter]
    fn memory(&self, py: Python<'_>) -> PyResult<u64> {
        with(py, &self.k, |k| Ok(k.memory_bytes()))
    }

    /// The zone watermarks in pages: {"min", "low", "high", "min_free_kbytes"}.
    fn watermarks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let w = with(py, &self.k, |k| Ok(k.watermarks()))?;
        let d = PyDict::new(py);
        d.set_item("min", w.min)?;
        d.set_item("low", w.low)?;
        d.set_item("high", w.high)?;
        d.set_item("min_free_kbytes", w.min_free_kbytes)?;
        Ok(d)
    }

    /// Create a process. `kvm=True` makes it a KVM host process (`mm_has_pgste`).
    #[pyo3(signature = (name, kvm = false))]
    fn spawn(&self, py: Python<'_>, name: &str, kvm: bool) -> PyResult<PyProcess> {
        let pid = with(py, &self.k, |k| k.spawn(name, kvm))?;
        Ok(PyProcess { k: self.k.clone(), pid })
    }

    /// The live processes.
    fn processes(&self, py: Python<'_>) -> PyResult<Vec<PyProcess>> {
        let pids = with(py, &self.k, |k| Ok(k.pids()))?;
        Ok(pids.into_iter().map(|pid| PyProcess { k: self.k.clone(), pid }).collect())
    }

    /// Reclaim `nr_pages` as a write to memory.reclaim does; returns the pages reclaimed as
    /// the kernel counts them (`nr_reclaimed`). This is cgroup reclaim: it counts in
    /// pgscan_anon/pgsteal_anon but not in pgscan_direct/pgsteal_direct or allocstall (with
    /// MGLRU the model still counts it as direct: an open deviation, docs/fidelity.md).
    fn reclaim(&self, py: Python<'_>, #[pyo3(from_py_with = arg::nr_pages)] nr_pages: u64) -> PyResult<u64> {
        with(py, &self.k, |k| Ok(k.reclaim(nr_pages)))
    }

    /// Run kswapd now if it is woken (it also runs by itself after every operation).
    fn kswapd(&self, py: Python<'_>) -> PyResult<u64> {
        with(py, &self.k, |k| Ok(k.kswapd_step()))
    }

    /// /proc/vmstat: the event counters by their kernel names, plus the gauges nr_free_pages,
    /// nr_{in,}active_{anon,file}, nr_unevictable, nr_swap_pages (free slots), nr_swapcached,
    /// nr_shmem.
    fn vmstat<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        pairs_dict(py, &with(py, &self.k, |k| Ok(k.vmstat()))?)
    }

    /// `/sys/kernel/debug/lru_gen` as 6.12 shows it (MGLRU): per generation its seq, age in ms
    /// and anon and file pages; `verbose` (`lru_gen_full`) adds the tiers of the refault PID
    /// controller. Only the header with MGLRU off (lru_gen_enabled 0).
    #[pyo3(signature = (verbose = false))]
    fn lru_gen(&self, py: Python<'_>, verbose: bool) -> PyResult<String> {
        with(py, &self.k, |k| Ok(if k.lru_gen_enabled() { k.lru_gen_debugfs(verbose) } else { String::new() }))
    }

    /// `/sys/kernel/mm/lru_gen/enabled`: the MGLRU caps (0x0001 LRU_GEN_CORE, 0x0002
    /// LRU_GEN_MM_WALK, 0x0004 LRU_GEN_NONLEAF_YOUNG); 0 when the profile's lru_gen is off.
    #[getter]
    fn lru_gen_enabled(&self, py: Python<'_>) -> PyResult<u64> {
        with(py, &self.k, |k| Ok(k.lru.lrugen.caps))
    }

    /// `/sys/kernel/mm/lru_gen/min_ttl_ms` (MGLRU's thrashing prevention; 0 = off).
    #[getter]
    fn lru_gen_min_ttl_ms(&self, py: Python<'_>) -> PyResult<u64> {
        with(py, &self.k, |k| Ok(k.lru.lrugen.min_ttl / 1_000_000))
    }

    #[setter]
    fn set_lru_gen_min_ttl_ms(&self, py: Python<'_>, ms: u64) -> PyResult<()> {
        with(py, &self.k, |k| {
            k.set_lru_gen_min_ttl_ms(ms);
            Ok(())
        })
    }

    /// /proc/meminfo-like totals in KiB: MemTotal, MemFree, SwapTotal, SwapFree, Active(anon),
    /// Inactive(anon), Unevictable.
    fn meminfo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        pairs_dict(py, &with(py, &self.k, |k| Ok(k.meminfo()))?)
    }

    /// The event log, optionally filtered by trace name, pid and time range [since, until).
    #[pyo3(signature = (name = None, pid = None, since = None, until = None))]
    fn events(
        &self,
        py: Python<'_>,
        name: Option<&str>,
        #[pyo3(from_py_with = arg::pid)] pid: Option<u32>,
        #[pyo3(from_py_with = arg::since)] since: Option<u64>,
        #[pyo3(from_py_with = arg::until)] until: Option<u64>,
    ) -> PyResult<Vec<PyEvent>> {
        let kind = match name {
            Some(n) => Some(Ev::by_name(n).ok_or_else(|| {
                let names: Vec<&str> = Ev::ALL.iter().map(|e| e.name()).collect();
                core_error(py, Error::invalid(format!("unknown event name {n:?}; known: {}", names.join(", "))))
            })?),
            None => None,
        };
        with(py, &self.k, |k| {
            let profile = k.profile();
            Ok(k.events()
                .iter()
                .filter(|e| kind.is_none_or(|x| e.kind == x))
                .filter(|e| pid.is_none_or(|p| e.pid == p))
                .filter(|e| since.is_none_or(|s| e.t >= s))
                .filter(|e| until.is_none_or(|u| e.t < u))
                .map(|e| event_to_py(e, profile))
                .collect())
        })
    }

    /// The event log as numpy columns: t, host, kind (index into EVENT_KINDS), pid, tid, addr,
    /// a, b, c (the kind's fields, see EVENT_FIELDS).
    fn event_arrays<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        // the columns are built under the lock, with the GIL released, then handed to numpy
        let cols = with(py, &self.k, |k| Ok(super::arrays::EventColumns::of(k.events())))?;
        cols.into_dict(py)
    }

    /// Stop (or resume) recording events of the trace `name`.
    #[pyo3(signature = (name, muted = true))]
    fn mute(&self, py: Python<'_>, name: &str, muted: bool) -> PyResult<()> {
        let kind =
            Ev::by_name(name).ok_or_else(|| core_error(py, Error::invalid(format!("unknown event name {name:?}"))))?;
        with(py, &self.k, |k| {
            k.mute(kind, muted);
            Ok(())
        })
    }

    /// Enable (or disable) the kernel tracepoint `name` (tracefs
    /// `events/<system>/<name>/enable`): `mm_lru_insertion` is off until enabled.
    #[pyo3(signature = (name, enabled = true))]
    fn trace_enable(&self, py: Python<'_>, name: &str, enabled: bool) -> PyResult<()> {
        let kind =
            Ev::by_name(name).ok_or_else(|| core_error(py, Error::invalid(format!("unknown event name {name:?}"))))?;
        with(py, &self.k, |k| k.trace_enable(kind, enabled))
    }

    /// Whether the events of `name` are recorded.
    fn trace_enabled(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        let kind =
            Ev::by_name(name).ok_or_else(|| core_error(py, Error::invalid(format!("unknown event name {name:?}"))))?;
        with(py, &self.k, |k| Ok(k.trace_enabled(kind)))
    }

    /// A platform-independent hash of the event log: equal seeds give equal hashes.
    fn log_hash(&self, py: Python<'_>) -> PyResult<u64> {
        with(py, &self.k, |k| Ok(k.log_hash()))
    }

    /// Check every model invariant (rss, mapcount, refcount, LRU, swap_map, rmap); raises
    /// reclaim.InvariantError naming the first violation.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        let r = with(py, &self.k, |k| Ok(k.check_invariants()))?;
        r.map_err(|msg| invariant_error(py, msg))
    }

    /// Threads parked on userfaults: list of (pid, tid, address, since_ns).
    fn blocked(&self, py: Python<'_>) -> PyResult<Vec<(u32, u32, u64, u64)>> {
        with(py, &self.k, |k| Ok(k.blocked_threads().into_iter().map(|(p, t, b)| (p, t, b.addr, b.since)).collect()))
    }

    /// `vm.page-cluster`: swap readahead reads up to `2**page_cluster` pages (0 to 31; the
    /// kernel's default is 3, or 2 below 16 MiB of memory).
    #[getter]
    fn page_cluster(&self, py: Python<'_>) -> PyResult<u8> {
        with(py, &self.k, |k| Ok(k.page_cluster()))
    }
    #[setter]
    fn set_page_cluster(&self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let v: u32 = arg::page_cluster(v)?;
        with(py, &self.k, |k| k.set_page_cluster(v))
    }

    /// How the swap device completes writes: "synchronous" (the default; inside the submit, as
    /// a SWP_SYNCHRONOUS_IO device such as zram does) or "virtio-blk" (queued: pages stay under
    /// writeback until the CPU waits; with the classic lists or MGLRU). Setting it completes
    /// pending writes.
    #[getter]
    fn swap_io(&self, py: Python<'_>) -> PyResult<&'static str> {
        with(py, &self.k, |k| Ok(k.swap_io().name()))
    }
    #[setter]
    fn set_swap_io(&self, py: Python<'_>, v: &str) -> PyResult<()> {
        let io = call(|| crate::mm::page_io::SwapIo::from_name(v))?;
        with(py, &self.k, |k| k.set_swap_io(io))
    }

    /// How reclaim reads the memcg statistics it compares: "live" (the default) or "rstat-6.12"
    /// (the flushed counts of a v6.12 kernel with CONFIG_MEMCG=y: `prepare_scan_control` sees
    /// refault activations only after `flush_memcg_stats_dwork`, every 2 s of the model's
    /// clock). A kernel with "rstat-6.12" cannot be snapshotted.
    #[getter]
    fn memcg_stats(&self, py: Python<'_>) -> PyResult<&'static str> {
        with(py, &self.k, |k| Ok(k.memcg_stats().name()))
    }
    #[setter]
    fn set_memcg_stats(&self, py: Python<'_>, v: &str) -> PyResult<()> {
        let s = call(|| crate::mm::memcontrol::MemcgStats::from_name(v))?;
        with(py, &self.k, |k| k.set_memcg_stats(s))
    }

    /// KVM migration mode on this host (every ESSA is intercepted).
    #[getter]
    fn kvm_migration_mode(&self, py: Python<'_>) -> PyResult<bool> {
        with(py, &self.k, |k| Ok(k.kvm_migration_mode()))
    }
    #[setter]
    fn set_kvm_migration_mode(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        with(py, &self.k, |k| {
            k.set_kvm_migration_mode(on);
            Ok(())
        })
    }

    /// A page frame's state: flags, refcount, mapcount, content, lru list.
    fn page<'py>(&self, py: Python<'py>, #[pyo3(from_py_with = arg::pfn)] pfn: u32) -> PyResult<Bound<'py, PyDict>> {
        let f = with(py, &self.k, |k| k.page_frame(pfn))?;
        let d = PyDict::new(py);
        d.set_item("pfn", pfn)?;
        d.set_item("flags", f.flag_names())?;
        d.set_item("refcount", f.refcount)?;
        d.set_item("mapcount", f.mapcount)?;
        d.set_item("content", f.content)?;
        d.set_item("index", f.index)?;
        d.set_item("swap_offset", f.swap_offset())?;
        Ok(d)
    }

    /// Bytes of heap the model's state takes.
    fn heap_bytes(&self, py: Python<'_>) -> PyResult<usize> {
        with(py, &self.k, |k| Ok(k.heap_bytes()))
    }

    /// Write the whole state of this kernel to the file `path` (atomically: a temporary file in
    /// the same directory, synced, renamed). `Kernel.restore(path)` continues from it with the
    /// same events as this kernel would.
    fn snapshot(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        with(py, &self.k, |k| k.snapshot(&path))
    }

    /// The kernel of the snapshot file `path`. Raises FileError if it cannot be read,
    /// FormatError if it is not a snapshot of a kernel of this format version or is damaged.
    #[classmethod]
    fn restore(_cls: &Bound<'_, pyo3::types::PyType>, py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let k = py.detach(move || catch(|| Kernel::restore(&path))).map_err(|e| e.into_pyerr(py))?;
        Ok(PyKernel { k: Arc::new(Mutex::new(k)) })
    }

    /// The kernel as an HTML table (Jupyter).
    fn _repr_html_(&self, py: Python<'_>) -> PyResult<String> {
        with(py, &self.k, |k| {
            let rows = vec![
                ("profile".to_string(), k.profile().name.to_string()),
                ("arch".to_string(), k.arch().name().to_string()),
                ("memory".to_string(), format!("{} MiB", k.memory_bytes() >> 20)),
                ("swap".to_string(), format!("{} MiB", (k.swap_pages() * 4096) >> 20)),
                ("processes".to_string(), k.pids().len().to_string()),
                ("events".to_string(), k.events_len().to_string()),
            ];
            Ok(super::html::table("Kernel", &rows))
        })
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        with(py, &self.k, |k| {
            Ok(format!(
                "Kernel(profile={:?}, arch={:?}, memory={} MiB, swap={} MiB, processes={})",
                k.profile().name,
                k.arch().name(),
                k.memory_bytes() >> 20,
                (k.swap_pages() * 4096) >> 20,
                k.pids().len()
            ))
        })
    }
}
