//! Trace files and their replay: `reclaim.replay` and `reclaim.trace`.

use super::batch::counts_dict;
use super::convert::{arg, pairs_dict, size_arg};
use super::errors::{call, catch, core_error, locked};
use crate::error::Error;
use crate::fault::batch::{Outcome, OutcomeCounts};
use crate::mm::guest_zone::{GuestTmpfs, GuestZone};
use crate::mm::mmzone::{PageTypes, ZoneSpec};
use crate::named::Named;
use crate::profile::Profile;
use crate::trace::replay::{GuestZones, MemorySize, Replay, ReplayConfig};
use crate::trace::{self, Columns, Format};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyString};
use std::path::PathBuf;
use std::sync::Mutex;

/// `guest_zones`: (DMA, DMA32, DMA's page types or None, kernel_alloc_every); a zone is
/// (managed, held, min, low, high, lowmem_reserve), the page types (unmovable blocks,
/// reclaimable blocks, unmovable free pages, reclaimable free pages).
type ZoneArg = (u64, u64, u64, u64, u64, u64);
type GuestZonesArg = (ZoneArg, ZoneArg, Option<(u64, u64, u64, u64)>, u64);

fn zone_spec((managed, held, min, low, high, lowmem_reserve): ZoneArg) -> ZoneSpec {
    ZoneSpec { managed, held, min, low, high, lowmem_reserve }
}

/// The memory of a replay: a float (a fraction of the trace's distinct pages), a string
/// "25%" (the same), or a size (int bytes, "64MiB").
fn memory_arg(v: &Bound<'_, PyAny>) -> PyResult<MemorySize> {
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(MemorySize::Fraction(f.value()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        if let Some(p) = s.to_str()?.trim().strip_suffix('%') {
            let f = p.trim().parse::<f64>().map_err(|_| {
                core_error(v.py(), Error::invalid(format!("memory {p:?}% is not a percentage of the trace's pages")))
            })?;
            return Ok(MemorySize::Fraction(f / 100.0));
        }
    }
    Ok(MemorySize::Bytes(size_arg(v, "memory")?))
}

/// A trace replay in progress: advance it a slice of requests at a time (for progress bars and
/// Ctrl-C), then take its result. See `reclaim.replay`.
#[pyclass(name = "ReplayRun", module = "reclaim", frozen)]
pub struct PyReplayRun {
    r: Mutex<Replay>,
    path: String,
}

#[pymethods]
impl PyReplayRun {
    /// Read the trace (twice: requests, keys, distinct pages) and build the kernel and the
    /// process, with the GIL released.
    #[new]
    #[pyo3(signature = (path, *, format = "auto", profile = "6.12", arch = "s390x", memory = None, swap = None,
        kvm = false, limit = None, seed = 0, as_recorded = false, shmem = false, guest = None,
        guest_tmpfs = None, page_cluster = None, one_cpu = false, swap_io = "synchronous", x86_tlb = None, memcg_stats = "live",
        guest_zones = None, guest_clock = None, sched_tick = false, pgtable_pages = false, swap_cache_nodes = false,
        pcp_lists = false, direct_reclaim_ns = 0.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        format: &str,
        profile: &str,
        arch: &str,
        memory: Option<&Bound<'_, PyAny>>,
        swap: Option<&Bound<'_, PyAny>>,
        kvm: bool,
        #[pyo3(from_py_with = arg::limit)] limit: Option<u64>,
        #[pyo3(from_py_with = arg::seed)] seed: u64,
        as_recorded: bool,
        shmem: bool,
        guest: Option<(u64, u64, u64, u64)>,
        guest_tmpfs: Option<(u64, u64)>,
        #[pyo3(from_py_with = arg::page_cluster)] page_cluster: Option<u32>,
        one_cpu: bool,
        swap_io: &str,
        x86_tlb: Option<String>,
        memcg_stats: &str,
        guest_zones: Option<GuestZonesArg>,
        guest_clock: Option<(f64, f64, f64, f64, f64)>,
        sched_tick: bool,
        pgtable_pages: bool,
        swap_cache_nodes: bool,
        pcp_lists: bool,
        direct_reclaim_ns: f64,
    ) -> PyResult<Self> {
        let memory = match memory {
            Some(m) => memory_arg(m)?,
            None => MemorySize::Fraction(0.25),
        };
        let swap = swap.map(|s| size_arg(s, "swap")).transpose()?;
        let cfg = call(|| {
            if guest_clock.is_none() && direct_reclaim_ns != 0.0 {
                return Err(crate::error::Error::invalid(
                    "direct_reclaim_ns is guest time: give the guest clock too (guest_clock=...)",
                ));
            }
            Ok(ReplayConfig {
                profile: Profile::by_names(profile, arch)?,
                format: Format::parse(format)?,
                memory,
                swap,
                kvm,
                limit,
                seed,
                as_recorded,
                shmem,
                guest: guest.map(|(held, min, low, high)| GuestZone { held, min, low, high }),
                guest_tmpfs: guest_tmpfs.map(|(pages, active)| GuestTmpfs { pages, active }),
                page_cluster,
                one_cpu,
                swap_io: crate::mm::page_io::SwapIo::from_name(swap_io)?,
                x86_tlb,
                memcg_stats: crate::mm::memcontrol::MemcgStats::from_name(memcg_stats)?,
                guest_zones: guest_zones.map(|(dma, dma32, types, every)| GuestZones {
                    dma: zone_spec(dma),
                    dma32: zone_spec(dma32),
                    types: types.map(|(unmovable_blocks, reclaimable_blocks, unmovable_free, reclaimable_free)| {
                        PageTypes { unmovable_blocks, reclaimable_blocks, unmovable_free, reclaimable_free }
                    }),
                    kernel_alloc_every: every,
                }),
                guest_clock: guest_clock.map(|(request, minor_fault, major_fault, swap_write, page_scanned)| {
                    crate::sched::GuestCost {
                        request,
                        minor_fault,
                        major_fault,
                        swap_write,
                        page_scanned,
                        direct_reclaim: direct_reclaim_ns,
                    }
                }),
                sched_tick,
                pgtable_pages,
                swap_cache_nodes,
                pcp_lists,
            })
        })?;
        let r = py.detach(|| catch(|| Replay::open(&path, &cfg))).map_err(|e| e.into_pyerr(py))?;
        Ok(PyReplayRun { r: Mutex::new(r), path: path.display().to_string() })
    }

    /// Replay up to `n` more requests with the GIL released. Returns whether it is done.
    fn advance(&self, py: Python<'_>, #[pyo3(from_py_with = arg::n)] n: u64) -> PyResult<bool> {
        locked(py, &self.r, |r| r.advance(n))
    }

    /// (requests replayed, requests to replay).
    #[getter]
    fn progress(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        locked(py, &self.r, |r| Ok((r.done, r.total)))
    }

    /// Simulated time of the kernel (ns).
    #[getter]
    fn now(&self, py: Python<'_>) -> PyResult<u64> {
        locked(py, &self.r, |r| Ok(r.kernel.now()))
    }

    /// The kernel's `/sys/kernel/debug/lru_gen` now, as `Kernel.lru_gen(verbose)` gives it
    /// (`verbose`: `lru_gen_full`); "" with MGLRU off.
    #[pyo3(signature = (verbose = false))]
    fn lru_gen(&self, py: Python<'_>, verbose: bool) -> PyResult<String> {
        locked(py, &self.r, |r| {
            Ok(if r.kernel.lru_gen_enabled() { r.kernel.lru_gen_debugfs(verbose) } else { String::new() })
        })
    }

    /// The zones' free pages now, as the agent samples the guest's (`/proc/zoneinfo`'s "pages
    /// free" and the per-cpu lists' "count:"): `[[free, pcp], ...]`, DMA then DMA32 with the
    /// guest's zones, else the one zone's pair (pcp 0 without the per-cpu lists).
    fn zone_free(&self, py: Python<'_>) -> PyResult<Vec<[u64; 2]>> {
        locked(py, &self.r, |r| {
            let k = &r.kernel;
            let (dma_pcp, top_pcp) = k.pcp_count().unwrap_or((0, 0));
            Ok(match k.zones() {
                Some(z) => vec![[z.dma.nr_free(), dma_pcp], [k.nr_free_pages() - z.dma.nr_free(), top_pcp]],
                None => vec![[k.nr_free_pages(), top_pcp]],
            })
        })
    }

    /// The result so far.
    fn result(&self, py: Python<'_>) -> PyResult<PyReplayResult> {
        locked(py, &self.r, |r| {
            Ok(PyReplayResult {
                path: self.path.clone(),
                format: r.format.name(),
                profile: r.kernel.profile().name,
                mapping: r.map.name(),
                requests: r.done,
                distinct_pages: r.distinct_pages,
                hits: r.count(Outcome::Hit),
                minor_faults: r.count(Outcome::Minor),
                major_faults: r.count(Outcome::Major),
                misses: r.counts.misses(),
                miss_ratio: r.counts.miss_ratio(),
                pages_reclaimed: r.pages_reclaimed(),
                pages_swapped_out: r.pages_swapped_out(),
                resident_pages: r.resident_pages(),
                memory: r.memory,
                swap: r.swap,
                seconds: r.seconds,
                scan_seconds: r.scan_seconds,
                requests_per_second: r.requests_per_second(),
                log_hash: r.kernel.log_hash(),
                n_events: r.kernel.events_len(),
                swap_cache_nodes: r.kernel.swap_cache_nodes(),
                swap_cache_slab_pages: r.kernel.swap_cache_slab().map(|c| c.nr_pages()),
                pcp_pages_mean: r.pcp_pages_mean(),
                counts: r.counts,
                vmstat: r.kernel.vmstat(),
            })
        })
    }
}

/// What a trace replay measured (see `reclaim.replay`).
#[pyclass(name = "ReplayResult", module = "reclaim", frozen)]
// Not get_all: `counts` and `vmstat` have getters of their own that build the dicts.
pub struct PyReplayResult {
    /// The trace file replayed.
    #[pyo3(get)]
    pub path: String,
    /// "binary", "csv", "oracle", "damon" or "perf".
    #[pyo3(get)]
    pub format: &'static str,
    /// The kernel profile it ran on ("4.17", "4.18" or "6.12").
    #[pyo3(get)]
    pub profile: &'static str,
    /// How keys became pages: "offset" (each key its page) or "hashed" (sparse keys).
    #[pyo3(get)]
    pub mapping: &'static str,
    /// Requests replayed.
    #[pyo3(get)]
    pub requests: u64,
    /// Distinct pages of the trace (under the mapping).
    #[pyo3(get)]
    pub distinct_pages: u64,
    /// Accesses to a resident page.
    #[pyo3(get)]
    pub hits: u64,
    /// Accesses to a non-resident page brought in without I/O (first touch, swap cache).
    #[pyo3(get)]
    pub minor_faults: u64,
    /// Accesses that read the page back from swap.
    #[pyo3(get)]
    pub major_faults: u64,
    /// minor_faults + major_faults.
    #[pyo3(get)]
    pub misses: u64,
    /// misses / requests.
    #[pyo3(get)]
    pub miss_ratio: f64,
    /// pgsteal_kswapd + pgsteal_direct.
    #[pyo3(get)]
    pub pages_reclaimed: u64,
    /// pswpout.
    #[pyo3(get)]
    pub pages_swapped_out: u64,
    /// Pages of the trace resident at the end (the process's MM_ANONPAGES).
    #[pyo3(get)]
    pub resident_pages: u64,
    /// Bytes of host memory.
    #[pyo3(get)]
    pub memory: u64,
    /// Bytes of swap.
    #[pyo3(get)]
    pub swap: u64,
    /// Wall-clock seconds of the replay pass.
    #[pyo3(get)]
    pub seconds: f64,
    /// Wall-clock seconds of the two reads of the trace before the replay pass.
    #[pyo3(get)]
    pub scan_seconds: f64,
    /// Requests replayed per wall-clock second of the replay pass.
    #[pyo3(get)]
    pub requests_per_second: f64,
    /// Hash of the kernel's event log (same trace and seed, same hash).
    #[pyo3(get)]
    pub log_hash: u64,
    /// Events in the log (reclaim's; per-page events are not recorded in a replay).
    #[pyo3(get)]
    pub n_events: usize,
    /// The swap cache's xarray nodes at the end (``swap_cache_nodes=True``), else None.
    #[pyo3(get)]
    pub swap_cache_nodes: Option<u64>,
    /// Pages of the ``radix_tree_node`` slabs those nodes held at the end, else None.
    #[pyo3(get)]
    pub swap_cache_slab_pages: Option<u64>,
    /// The mean over the requests of the pages on the per-cpu lists after each
    /// (``pcp_lists=True``), else None.
    #[pyo3(get)]
    pub pcp_pages_mean: Option<f64>,
    counts: OutcomeCounts,
    vmstat: Vec<(&'static str, u64)>,
}

#[pymethods]
impl PyReplayResult {
    /// Accesses by outcome name (as BatchResult.counts).
    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        counts_dict(py, &self.counts)
    }
    /// /proc/vmstat of the kernel at the end (as Kernel.vmstat()).
    #[getter]
    fn vmstat<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        pairs_dict(py, &self.vmstat)
    }
    /// Every field as a dict (JSON-ready).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("path", &self.path)?;
        d.set_item("format", self.format)?;
        d.set_item("profile", self.profile)?;
        d.set_item("mapping", self.mapping)?;
        for (k, v) in [
            ("requests", self.requests),
            ("distinct_pages", self.distinct_pages),
            ("hits", self.hits),
            ("minor_faults", self.minor_faults),
            ("major_faults", self.major_faults),
            ("misses", self.misses),
            ("pages_reclaimed", self.pages_reclaimed),
            ("pages_swapped_out", self.pages_swapped_out),
            ("resident_pages", self.resident_pages),
            ("memory", self.memory),
            ("swap", self.swap),
            ("log_hash", self.log_hash),
            ("n_events", self.n_events as u64),
        ] {
            d.set_item(k, v)?;
        }
        for (k, v) in [
            ("miss_ratio", self.miss_ratio),
            ("seconds", self.seconds),
            ("scan_seconds", self.scan_seconds),
            ("requests_per_second", self.requests_per_second),
        ] {
            d.set_item(k, v)?;
        }
        d.set_item("counts", self.counts(py)?)?;
        d.set_item("vmstat", self.vmstat(py)?)?;
        Ok(d)
    }
    fn __repr__(&self) -> String {
        format!(
            "ReplayResult({:?}, requests={}, distinct_pages={}, miss_ratio={:.4}, major_faults={}, {:.0} requests/s)",
            self.path, self.requests, self.distinct_pages, self.miss_ratio, self.major_faults, self.requests_per_second
        )
    }
}

/// Read the first `limit` requests of the trace at `path`: (format, keys, writes, times).
#[pyfunction]
#[pyo3(signature = (path, *, format = "auto", limit = None))]
#[allow(clippy::type_complexity)]
fn trace_read<'py>(
    py: Python<'py>,
    path: PathBuf,
    format: &str,
    #[pyo3(from_py_with = arg::limit)] limit: Option<u64>,
) -> PyResult<(&'static str, Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<bool>>, Bound<'py, PyArray1<u64>>)> {
    let (f, t) = py.detach(|| {
        call(|| {
            let (f, mut r) = trace::open(&path, Format::parse(format)?)?;
            Ok((f, trace::read_columns(&mut r, limit.unwrap_or(u64::MAX))?))
        })
    })?;
    Ok((f.name(), PyArray1::from_vec(py, t.keys), PyArray1::from_vec(py, t.writes), PyArray1::from_vec(py, t.times)))
}

/// A format to write: binary, csv or oracle (not "auto"; damon and perf are only read).
fn write_format(name: &str) -> crate::Result<Format> {
    Format::parse(name)?.ok_or_else(|| Error::invalid("say which format to write: binary, csv or oracle"))
}

/// Write `keys` (uint64; with `writes` bool and `times` uint64, of the same length) to `path`.
#[pyfunction]
#[pyo3(signature = (path, keys, writes = None, times = None, *, format = "binary"))]
fn trace_write(
    py: Python<'_>,
    path: PathBuf,
    keys: &Bound<'_, PyAny>,
    writes: Option<&Bound<'_, PyAny>>,
    times: Option<&Bound<'_, PyAny>>,
    format: &str,
) -> PyResult<()> {
    let k = super::batch::array_arg::<u64>(keys, "keys", "uint64")?;
    let w = writes.map(|w| super::batch::array_arg::<bool>(w, "writes", "bool_")).transpose()?;
    let t = times.map(|t| super::batch::array_arg::<u64>(t, "times", "uint64")).transpose()?;
    // copies: the file is written with the GIL released, while Python may change the arrays
    let (k, w, t) = (k.to_vec()?, w.map(|w| w.to_vec()).transpose()?, t.map(|t| t.to_vec()).transpose()?);
    py.detach(|| {
        call(|| {
            trace::write(&path, write_format(format)?, Columns { keys: &k, writes: w.as_deref(), times: t.as_deref() })
        })
    })
}

/// Write a Zipf trace of `requests` over `pages` pages to `path` (see reclaim.trace.write_zipf).
#[pyfunction]
#[pyo3(signature = (path, requests, pages, *, s = 1.0, seed = 0, write_fraction = 0.0, format = "oracle"))]
#[allow(clippy::too_many_arguments)]
fn trace_write_zipf(
    py: Python<'_>,
    path: PathBuf,
    #[pyo3(from_py_with = arg::requests)] requests: u64,
    #[pyo3(from_py_with = arg::pages)] pages: u64,
    s: f64,
    #[pyo3(from_py_with = arg::seed)] seed: u64,
    write_fraction: f64,
    format: &str,
) -> PyResult<()> {
    py.detach(|| call(|| trace::write_zipf(&path, write_format(format)?, requests, pages, s, write_fraction, seed)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyReplayRun>()?;
    m.add_class::<PyReplayResult>()?;
    m.add_function(wrap_pyfunction!(trace_read, m)?)?;
    m.add_function(wrap_pyfunction!(trace_write, m)?)?;
    m.add_function(wrap_pyfunction!(trace_write_zipf, m)?)?;
    Ok(())
}
