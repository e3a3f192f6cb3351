//! `reclaim.Userfaultfd` and its messages.

use super::convert::{IntArg, Shared, arg, size_arg, with};
use super::errors::{call, core_error};
use crate::error::Error;
use crate::uffd::ioctl::*;
use crate::uffd::{
    UFFD_PAGEFAULT_FLAG_MINOR, UFFD_PAGEFAULT_FLAG_NAMES, UFFD_PAGEFAULT_FLAG_WP, UFFD_PAGEFAULT_FLAG_WRITE, UffdMsg,
    UffdPagefault,
};
use pyo3::prelude::*;

/// A message read from a userfaultfd (`struct uffd_msg`): the base of one class per event,
/// as the kernel's `arg` union has one member per event.
#[pyclass(name = "UffdEvent", module = "reclaim", frozen, subclass)]
pub struct PyUffdEvent {
    /// "PAGEFAULT", "FORK", "REMAP", "REMOVE" or "UNMAP" (`UFFD_EVENT_*` without the prefix).
    #[pyo3(get)]
    event: &'static str,
    /// The uffd_msg event code (0x12 ..).
    #[pyo3(get)]
    code: u8,
    /// The userfaultfd this message came from.
    #[pyo3(get)]
    uffd: u32,
}

/// UFFD_EVENT_PAGEFAULT (`uffd_msg.arg.pagefault`).
#[pyclass(name = "UffdPagefault", module = "reclaim", extends = PyUffdEvent, frozen)]
pub struct PyUffdPagefault {
    flags: u64,
    /// The faulting address (page-aligned unless UFFD_FEATURE_EXACT_ADDRESS).
    #[pyo3(get)]
    address: u64,
    /// With UFFD_FEATURE_THREAD_ID the faulting thread's id (`feat.ptid`), else 0.
    #[pyo3(get)]
    ptid: u32,
}

/// `value` as the named flag class `class` of `reclaim.flags` (an `enum.IntFlag`).
pub fn named_flags(py: Python<'_>, class: &str, value: u64) -> PyResult<Py<PyAny>> {
    Ok(py.import("reclaim.flags")?.getattr(class)?.call1((value,))?.unbind())
}

/// UFFD_EVENT_FORK (`uffd_msg.arg.fork`).
#[pyclass(name = "UffdFork", module = "reclaim", extends = PyUffdEvent, frozen, get_all)]
pub struct PyUffdFork {
    /// The child's userfaultfd (its `Userfaultfd.id`).
    ufd: u32,
}

/// UFFD_EVENT_REMAP (`uffd_msg.arg.remap`): mremap moved the range.
#[pyclass(name = "UffdRemap", module = "reclaim", extends = PyUffdEvent, frozen)]
pub struct PyUffdRemap {
    /// The old address (`remap.from`; `from_` because `from` is a Python keyword).
    #[pyo3(get, name = "from_")]
    from: u64,
    /// The new address (`remap.to`).
    #[pyo3(get)]
    to: u64,
    /// The length moved (`remap.len`, the old length).
    #[pyo3(get)]
    len: u64,
}

/// UFFD_EVENT_REMOVE (`uffd_msg.arg.remove`): MADV_DONTNEED/FREE/REMOVE of [start, end).
#[pyclass(name = "UffdRemove", module = "reclaim", extends = PyUffdEvent, frozen, get_all)]
pub struct PyUffdRemove {
    /// The start of the range (`remove.start`).
    start: u64,
    /// The end of the range, exclusive (`remove.end`).
    end: u64,
}

/// UFFD_EVENT_UNMAP (`uffd_msg.arg.remove`, which the kernel reuses): munmap of [start, end).
#[pyclass(name = "UffdUnmap", module = "reclaim", extends = PyUffdEvent, frozen, get_all)]
pub struct PyUffdUnmap {
    /// The start of the range (`remove.start`).
    start: u64,
    /// The end of the range, exclusive (`remove.end`).
    end: u64,
}

/// The message `m` of userfaultfd `uffd` as an instance of its event's class.
pub fn uffd_msg_to_py(py: Python<'_>, uffd: u32, m: UffdMsg) -> PyResult<Py<PyAny>> {
    let base = PyClassInitializer::from(PyUffdEvent { event: m.event_name(), code: m.event(), uffd });
    Ok(match m {
        UffdMsg::Pagefault(p) => {
            Py::new(py, base.add_subclass(PyUffdPagefault { flags: p.flags, address: p.address, ptid: p.ptid }))?
                .into_any()
        }
        UffdMsg::Fork { ufd } => Py::new(py, base.add_subclass(PyUffdFork { ufd }))?.into_any(),
        UffdMsg::Remap { from, to, len } => Py::new(py, base.add_subclass(PyUffdRemap { from, to, len }))?.into_any(),
        UffdMsg::Remove { start, end } => Py::new(py, base.add_subclass(PyUffdRemove { start, end }))?.into_any(),
        UffdMsg::Unmap { start, end } => Py::new(py, base.add_subclass(PyUffdUnmap { start, end }))?.into_any(),
    })
}

/// A page fault message as an `UffdPagefault`.
pub fn pagefault_to_py(py: Python<'_>, uffd: u32, p: UffdPagefault) -> PyResult<Py<PyAny>> {
    uffd_msg_to_py(py, uffd, UffdMsg::Pagefault(p))
}

/// The one-line description of a message (its `repr` without the class name).
pub fn describe(m: &UffdMsg) -> String {
    match *m {
        UffdMsg::Pagefault(p) => {
            let f: Vec<&str> =
                UFFD_PAGEFAULT_FLAG_NAMES.iter().filter(|(_, b)| p.flags & b != 0).map(|(n, _)| *n).collect();
            format!("PAGEFAULT at {:#x} [{}]", p.address, f.join("|"))
        }
        UffdMsg::Remap { from, to, len } => format!("REMAP {from:#x} -> {to:#x} len {len:#x}"),
        UffdMsg::Fork { ufd } => format!("FORK ufd={ufd}"),
        UffdMsg::Remove { start, end } | UffdMsg::Unmap { start, end } => {
            format!("{} {start:#x}..{end:#x}", m.event_name())
        }
    }
}

#[pymethods]
impl PyUffdPagefault {
    /// The UFFD_PAGEFAULT_FLAG_* bits as `reclaim.UffdPagefaultFlag`.
    #[getter]
    fn flags(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        named_flags(py, "UffdPagefaultFlag", self.flags)
    }
    /// A write fault (UFFD_PAGEFAULT_FLAG_WRITE).
    #[getter]
    fn write(&self) -> bool {
        self.flags & UFFD_PAGEFAULT_FLAG_WRITE != 0
    }
    /// A write-protect fault (UFFD_PAGEFAULT_FLAG_WP).
    #[getter]
    fn wp(&self) -> bool {
        self.flags & UFFD_PAGEFAULT_FLAG_WP != 0
    }
    /// A minor fault (UFFD_PAGEFAULT_FLAG_MINOR).
    #[getter]
    fn minor(&self) -> bool {
        self.flags & UFFD_PAGEFAULT_FLAG_MINOR != 0
    }
    fn __repr__(&self) -> String {
        let m = UffdMsg::Pagefault(UffdPagefault { flags: self.flags, address: self.address, ptid: self.ptid });
        format!("UffdPagefault({})", describe(&m))
    }
}

#[pymethods]
impl PyUffdFork {
    fn __repr__(&self) -> String {
        format!("UffdFork({})", describe(&UffdMsg::Fork { ufd: self.ufd }))
    }
}

#[pymethods]
impl PyUffdRemap {
    fn __repr__(&self) -> String {
        format!("UffdRemap({})", describe(&UffdMsg::Remap { from: self.from, to: self.to, len: self.len }))
    }
}

#[pymethods]
impl PyUffdRemove {
    fn __repr__(&self) -> String {
        format!("UffdRemove({})", describe(&UffdMsg::Remove { start: self.start, end: self.end }))
    }
}

#[pymethods]
impl PyUffdUnmap {
    fn __repr__(&self) -> String {
        format!("UffdUnmap({})", describe(&UffdMsg::Unmap { start: self.start, end: self.end }))
    }
}

/// `reclaim._reclaim.uffd_feature_bits(names)`: the UFFD_FEATURE_* mask of feature names
/// (`uffd::features::parse`: names with or without the prefix, `BIT<n>` for a raw bit).
#[pyfunction]
fn uffd_feature_bits(names: Vec<String>) -> PyResult<u64> {
    call(|| crate::uffd::features::parse(&names))
}

/// The classes, `UFFD_FEATURES` (name to bit, include/uapi/linux/userfaultfd.h) and
/// `uffd_feature_bits`, for the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(uffd_feature_bits, m)?)?;
    let features = pyo3::types::PyDict::new(m.py());
    for (n, b) in crate::profile::uffd_features::NAMES {
        features.set_item(n, b)?;
    }
    m.add("UFFD_FEATURES", features)?;
    let ioctls = pyo3::types::PyDict::new(m.py());
    for (n, b) in crate::uffd::ioctl::UFFD_IOCTL_NAMES {
        ioctls.set_item(n, b)?;
    }
    m.add("UFFD_IOCTLS", ioctls)?;
    let pf = pyo3::types::PyDict::new(m.py());
    for (n, b) in UFFD_PAGEFAULT_FLAG_NAMES {
        pf.set_item(n, b)?;
    }
    m.add("UFFD_PAGEFAULT_FLAGS", pf)?;
    m.add_class::<PyUserfaultfd>()?;
    m.add_class::<PyUffdEvent>()?;
    m.add_class::<PyUffdPagefault>()?;
    m.add_class::<PyUffdFork>()?;
    m.add_class::<PyUffdRemap>()?;
    m.add_class::<PyUffdRemove>()?;
    m.add_class::<PyUffdUnmap>()?;
    Ok(())
}

/// A userfaultfd of a process (after UFFDIO_API).
#[pyclass(name = "Userfaultfd", module = "reclaim", frozen)]
pub struct PyUserfaultfd {
    pub k: Shared,
    pub id: u32,
    pub pid: u32,
    /// The features UFFDIO_API offered.
    pub offered: u64,
}

/// `bit` if `on`.
fn flag(on: bool, bit: u64) -> u64 {
    if on { bit } else { 0 }
}

fn len_arg(v: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
    match v {
        Some(v) => size_arg(v, "length"),
        None => Ok(4096),
    }
}

#[pymethods]
impl PyUserfaultfd {
    /// The userfaultfd's id within its kernel (`UffdEvent.uffd` of its messages; a FORK message's
    /// `ufd` names the child's).
    #[getter]
    fn id(&self) -> u32 {
        self.id
    }
    /// The features agreed in UFFDIO_API, as `reclaim.UffdFeature`.
    #[getter]
    fn features(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let f = with(py, &self.k, |k| k.uffd_features(self.id))?;
        named_flags(py, "UffdFeature", f)
    }
    /// The features the kernel offered in UFFDIO_API, as `reclaim.UffdFeature`.
    #[getter]
    fn offered(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        named_flags(py, "UffdFeature", self.offered)
    }

    /// UFFDIO_REGISTER with exactly the modes named; MISSING alone when none is (the kernel
    /// has no default mode: `userfaultfd_register` takes `uffdio_register.mode` as given and
    /// refuses 0 with EINVAL). Returns the ioctls guaranteed on the range
    /// (`uffdio_register.ioctls`) as `reclaim.UffdIoctl`.
    #[pyo3(signature = (addr, length, missing = None, wp = false, minor = false))]
    fn register(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: &Bound<'_, PyAny>,
        missing: Option<bool>,
        wp: bool,
        minor: bool,
    ) -> PyResult<Py<PyAny>> {
        let len = size_arg(length, "length")?;
        let missing = missing.unwrap_or(!wp && !minor);
        let mode = flag(missing, UFFDIO_REGISTER_MODE_MISSING)
            | flag(wp, UFFDIO_REGISTER_MODE_WP)
            | flag(minor, UFFDIO_REGISTER_MODE_MINOR);
        let ioctls = with(py, &self.k, |k| k.uffdio_register(self.id, addr, len, mode))?;
        named_flags(py, "UffdIoctl", ioctls)
    }

    /// UFFDIO_UNREGISTER (wakes threads parked on MISSING faults in the range).
    fn unregister(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let len = size_arg(length, "length")?;
        with(py, &self.k, |k| k.uffdio_unregister(self.id, addr, len))
    }

    /// UFFDIO_COPY: fill `length` bytes at `dst` with pages whose content is `value` (or one
    /// value per page when `value` is a list); wakes the faulters unless `dontwake`. Returns
    /// the bytes copied.
    #[pyo3(signature = (dst, value, length = None, dontwake = false, wp = false))]
    fn copy(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::dst)] dst: u64,
        value: &Bound<'_, PyAny>,
        length: Option<&Bound<'_, PyAny>>,
        dontwake: bool,
        wp: bool,
    ) -> PyResult<u64> {
        let mode = flag(dontwake, UFFDIO_COPY_MODE_DONTWAKE) | flag(wp, UFFDIO_COPY_MODE_WP);
        if value.is_instance_of::<pyo3::types::PyInt>() {
            let v = u64::from_arg(value, "value")?;
            let len = len_arg(length)?;
            return with(py, &self.k, |k| k.uffdio_copy_same(self.id, dst, len, v, mode));
        }
        let values = value.try_iter()?.map(|v| u64::from_arg(&v?, "value")).collect::<PyResult<Vec<u64>>>()?;
        if values.is_empty() {
            return Err(core_error(py, Error::errno(crate::Errno::EINVAL, "UFFDIO_COPY", "len is 0")));
        }
        with(py, &self.k, |k| k.uffdio_copy(self.id, dst, &values, mode))
    }

    /// UFFDIO_ZEROPAGE over `length` bytes at `dst`. Returns the bytes mapped.
    #[pyo3(signature = (dst, length = None, dontwake = false))]
    fn zeropage(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::dst)] dst: u64,
        length: Option<&Bound<'_, PyAny>>,
        dontwake: bool,
    ) -> PyResult<u64> {
        let len = len_arg(length)?;
        with(py, &self.k, |k| k.uffdio_zeropage(self.id, dst, len, flag(dontwake, UFFDIO_ZEROPAGE_MODE_DONTWAKE)))
    }

    /// UFFDIO_CONTINUE (MINOR ranges).
    #[pyo3(signature = (addr, length = None, dontwake = false))]
    fn continue_(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: Option<&Bound<'_, PyAny>>,
        dontwake: bool,
    ) -> PyResult<u64> {
        let len = len_arg(length)?;
        with(py, &self.k, |k| k.uffdio_continue(self.id, addr, len, flag(dontwake, UFFDIO_CONTINUE_MODE_DONTWAKE)))
    }

    /// UFFDIO_WRITEPROTECT: set (`wp=True`) or clear write protection on a WP range.
    #[pyo3(signature = (addr, length, wp = true, dontwake = false))]
    fn writeprotect(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: &Bound<'_, PyAny>,
        wp: bool,
        dontwake: bool,
    ) -> PyResult<()> {
        let len = size_arg(length, "length")?;
        let mode = flag(wp, UFFDIO_WRITEPROTECT_MODE_WP) | flag(dontwake, UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
        with(py, &self.k, |k| k.uffdio_writeprotect(self.id, addr, len, mode))
    }

    /// UFFDIO_WAKE; returns the threads woken.
    #[pyo3(signature = (addr, length = None))]
    fn wake(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let len = len_arg(length)?;
        with(py, &self.k, |k| k.uffdio_wake(self.id, addr, len))
    }

    /// read(2): the pending messages (page faults first, then FORK/REMOVE/UNMAP events).
    fn read_events(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let msgs = with(py, &self.k, |k| k.uffd_read(self.id))?;
        msgs.into_iter().map(|m| uffd_msg_to_py(py, self.id, m)).collect()
    }

    /// close(2): disarm every range and wake everyone parked on this userfaultfd.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        with(py, &self.k, |k| k.uffd_close(self.id))
    }

    fn __repr__(&self) -> String {
        format!("Userfaultfd(id={}, pid={})", self.id, self.pid)
    }
}
