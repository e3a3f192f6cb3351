//! `Process.access_batch` and `Process.run_workload`: many accesses in one call, run by the
//! core's `Kernel::access_batch` with the GIL released, the outcomes back as numpy arrays.

use super::convert::{Shared, with};
use super::errors::{call, to_pyerr, under_lock};
use super::uffd::pagefault_to_py;
use crate::error::Error;
use crate::fault::batch::{BatchEnd, Outcome, OutcomeCounts};
use crate::mm::vmstat::Vm;
use crate::sim::workload::{AccessStream, Pattern};
use crate::uffd::UffdPagefault;
use numpy::{Element, PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Accesses run under one take of the kernel lock, between two checks for signals (Ctrl-C).
const CHUNK: usize = 1 << 16;

/// The outcome of many accesses (`Process.access_batch`, `Process.run_workload`).
#[pyclass(name = "BatchResult", module = "reclaim", frozen)]
pub struct PyBatchResult {
    counts: OutcomeCounts,
    /// (index, userfaultfd, message) of the access that parked the thread.
    parked: Option<(u64, u32, UffdPagefault)>,
    pgfault: u64,
    outcomes: Option<Py<PyArray1<u8>>>,
    values: Option<Py<PyArray1<u64>>>,
    addrs: Option<Py<PyArray1<u64>>>,
    writes: Option<Py<PyArray1<bool>>>,
}

/// Counts by outcome name, every name present.
pub fn counts_dict<'py>(py: Python<'py>, c: &OutcomeCounts) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for o in Outcome::ALL {
        d.set_item(o.name(), c.get(o))?;
    }
    Ok(d)
}

#[pymethods]
impl PyBatchResult {
    /// Accesses that ran (all of them, unless one parked the thread).
    #[getter]
    fn requests(&self) -> u64 {
        self.counts.total()
    }
    /// Accesses by outcome: {"hit", "minor", "major", "userfault", "sigsegv", "sigbus", "oom"}.
    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        counts_dict(py, &self.counts)
    }
    /// (minor + major) / requests: the share of accesses to a page that was not resident.
    #[getter]
    fn miss_ratio(&self) -> f64 {
        self.counts.miss_ratio()
    }
    /// handle_mm_fault calls during the batch (vmstat pgfault): the minor and major faults, and
    /// the faults of hits that brought no page in (s390 young/dirty emulation, write-protect).
    #[getter]
    fn pgfault(&self) -> u64 {
        self.pgfault
    }
    /// Index of the access that parked the thread on a userfault (the last that ran), or None.
    #[getter]
    fn stopped_at(&self) -> Option<u64> {
        self.parked.as_ref().map(|p| p.0)
    }
    /// The userfault message the thread is parked on, or None.
    #[getter]
    fn event(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.parked.map(|(_, u, m)| pagefault_to_py(py, u, m)).transpose()
    }
    /// The outcome code of each access that ran (uint8, an index into reclaim.OUTCOMES), or None
    /// when arrays were not asked for.
    #[getter]
    fn outcomes<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<u8>>> {
        self.outcomes.as_ref().map(|a| a.bind(py).clone())
    }
    /// The value each access read or stored (uint64; 0 unless it completed), or None.
    #[getter]
    fn values<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<u64>>> {
        self.values.as_ref().map(|a| a.bind(py).clone())
    }
    /// run_workload(arrays=True): the address of each access that ran (uint64), else None.
    #[getter]
    fn addrs<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<u64>>> {
        self.addrs.as_ref().map(|a| a.bind(py).clone())
    }
    /// run_workload(arrays=True): whether each access that ran was a store (bool), else None.
    #[getter]
    fn writes<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<bool>>> {
        self.writes.as_ref().map(|a| a.bind(py).clone())
    }
    fn __len__(&self) -> usize {
        self.counts.total() as usize
    }
    fn __repr__(&self) -> String {
        let c: Vec<String> = Outcome::ALL
            .iter()
            .filter(|o| self.counts.get(**o) > 0)
            .map(|o| format!("{}={}", o.name(), self.counts.get(*o)))
            .collect();
        let stop = self.parked.as_ref().map_or(String::new(), |p| format!(", stopped_at={}", p.0));
        format!("BatchResult(requests={}, {}{stop})", self.counts.total(), c.join(", "))
    }
}

fn arg_error(msg: String) -> PyErr {
    to_pyerr(Error::invalid(msg))
}

/// `v` as a 1-D contiguous numpy array of `T` (numpy name `dtype`), or an ArgumentError that
/// says what it is instead and how to convert it.
pub(super) fn array_arg<'py, T: Element>(
    v: &Bound<'py, PyAny>,
    what: &str,
    dtype: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    let Ok(a) = v.cast::<PyArray1<T>>() else {
        let got = match v.cast::<PyUntypedArray>() {
            Ok(u) => format!("a {}-D array of {}", u.ndim(), u.dtype()),
            Err(_) => format!("a {}", v.get_type().name()?),
        };
        return Err(arg_error(format!(
            "{what} must be a 1-D numpy array of {dtype}, not {got}: convert it with np.asarray({what}, dtype=np.{dtype})"
        )));
    };
    if !a.is_c_contiguous() {
        return Err(arg_error(format!("{what} must be contiguous in memory: pass np.ascontiguousarray({what})")));
    }
    a.try_readonly().map_err(|e| arg_error(format!("{what} cannot be read now: {e}")))
}

/// Where the accesses of a batch come from.
enum Source<'a> {
    /// Caller's arrays (read with the GIL held: another thread may write them meanwhile).
    Arrays { addrs: &'a [u64], writes: Option<&'a [bool]>, values: Option<&'a [u64]> },
    /// A generator, run with the GIL released.
    Stream(AccessStream),
}

/// Run `n` accesses of `src` by thread `tid` of `pid`, a chunk at a time with the GIL released;
/// keep the per-access arrays if `arrays`.
fn run(
    py: Python<'_>,
    k: &Shared,
    pid: u32,
    tid: u32,
    n: u64,
    mut src: Source<'_>,
    arrays: bool,
) -> PyResult<PyBatchResult> {
    let keep_inputs = arrays && matches!(src, Source::Stream(_));
    let (mut outcomes, mut values, mut addrs, mut writes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut counts = OutcomeCounts::default();
    let mut buf: Vec<(u64, bool, u64)> = Vec::with_capacity(CHUNK.min(n as usize));
    let pgfault = with(py, k, |k| {
        k.mm(pid)?;
        Ok(k.vm_event(Vm::pgfault))
    })?;
    let (mut done, mut parked) = (0u64, None);
    while done < n && parked.is_none() {
        let m = CHUNK.min((n - done) as usize);
        buf.clear();
        if let Source::Arrays { addrs, writes, values } = &src {
            let at = done as usize;
            buf.extend((at..at + m).map(|i| {
                let addr = addrs[i];
                (addr, writes.is_some_and(|w| w[i]), values.map_or(addr & !0xfff, |v| v[i]))
            }));
        }
        if arrays {
            outcomes.reserve(m);
            values.reserve(m);
        }
        let end = py.detach(|| {
            if let Source::Stream(s) = &mut src {
                buf.extend(s.by_ref().take(m));
            }
            under_lock(k, |k| {
                k.access_batch(pid, tid, buf.iter().copied(), |o, v| {
                    counts.add(o);
                    if arrays {
                        outcomes.push(o as u8);
                        values.push(v);
                    }
                })
            })
        });
        let end = end.map_err(|e| e.into_pyerr(py))?;
        let ran = match end {
            BatchEnd::Completed => m,
            BatchEnd::Parked { index, uffd, msg } => {
                parked = Some((done + index as u64, uffd, msg));
                index + 1
            }
        };
        if keep_inputs {
            addrs.extend(buf[..ran].iter().map(|a| a.0));
            writes.extend(buf[..ran].iter().map(|a| a.1));
        }
        done += ran as u64;
        py.check_signals()?;
    }
    let pgfault = with(py, k, |k| Ok(k.vm_event(Vm::pgfault) - pgfault))?;
    let arr = |v: Vec<u64>| PyArray1::from_vec(py, v).unbind();
    Ok(PyBatchResult {
        counts,
        parked,
        pgfault,
        outcomes: arrays.then(|| PyArray1::from_vec(py, outcomes).unbind()),
        values: arrays.then(|| arr(values)),
        addrs: keep_inputs.then(|| arr(addrs)),
        writes: keep_inputs.then(|| PyArray1::from_vec(py, writes).unbind()),
    })
}

/// `Process.access_batch`.
pub fn access_batch(
    py: Python<'_>,
    k: &Shared,
    pid: u32,
    tid: u32,
    addrs: &Bound<'_, PyAny>,
    writes: Option<&Bound<'_, PyAny>>,
    values: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyBatchResult> {
    let a = array_arg::<u64>(addrs, "addrs", "uint64")?;
    let w = writes.map(|w| array_arg::<bool>(w, "writes", "bool_")).transpose()?;
    let v = values.map(|v| array_arg::<u64>(v, "values", "uint64")).transpose()?;
    let a = a.as_slice().map_err(|e| arg_error(format!("addrs: {e}")))?;
    let w = w.as_ref().map(|w| w.as_slice()).transpose().map_err(|e| arg_error(format!("writes: {e}")))?;
    let v = v.as_ref().map(|v| v.as_slice()).transpose().map_err(|e| arg_error(format!("values: {e}")))?;
    for (what, len) in [("writes", w.map(<[bool]>::len)), ("values", v.map(<[u64]>::len))] {
        if let Some(len) = len.filter(|&l| l != a.len()) {
            return Err(arg_error(format!("{what} has {len} elements but addrs has {}", a.len())));
        }
    }
    run(py, k, pid, tid, a.len() as u64, Source::Arrays { addrs: a, writes: w, values: v }, true)
}

/// `Process.run_workload`: `count` accesses of `pattern` over `length` bytes from `start`.
#[allow(clippy::too_many_arguments)]
pub fn run_workload(
    py: Python<'_>,
    k: &Shared,
    pid: u32,
    tid: u32,
    pattern: &str,
    start: u64,
    length: u64,
    count: u64,
    write_fraction: f64,
    seed: u64,
    arrays: bool,
) -> PyResult<PyBatchResult> {
    let stream = call(|| {
        let pages = crate::units::check_pages("length", length)?;
        AccessStream::new(Pattern::parse(pattern)?, start, pages, write_fraction, seed)
    })?;
    run(py, k, pid, tid, count, Source::Stream(stream), arrays)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBatchResult>()?;
    m.add("OUTCOMES", Outcome::NAMES.to_vec())?;
    Ok(())
}
