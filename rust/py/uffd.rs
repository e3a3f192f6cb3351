//! `reclaim.Userfaultfd` and its messages.

use super::convert::{Shared, size_arg, with};
use super::errors::core_error;
use crate::error::Error;
use crate::uffd::ioctl::*;
use crate::uffd::{
    UFFD_EVENT_PAGEFAULT, UFFD_EVENT_REMAP, UFFD_PAGEFAULT_FLAG_MINOR, UFFD_PAGEFAULT_FLAG_WP,
    UFFD_PAGEFAULT_FLAG_WRITE, UffdMsg,
};
use pyo3::prelude::*;

/// A message read from a userfaultfd (`struct uffd_msg`).
#[pyclass(name = "UffdEvent", module = "reclaim", frozen, get_all, from_py_object)]
#[derive(Clone)]
pub struct PyUffdEvent {
    /// "PAGEFAULT", "FORK", "REMAP", "REMOVE" or "UNMAP".
    pub event: &'static str,
    /// The uffd_msg event code (0x12 ..).
    pub code: u8,
    /// PAGEFAULT: the faulting address (page-aligned unless EXACT_ADDRESS); REMOVE/UNMAP: start.
    pub address: u64,
    /// PAGEFAULT: UFFD_PAGEFAULT_FLAG_* bits.
    pub flags: u64,
    /// PAGEFAULT with THREAD_ID: the thread.
    pub ptid: u32,
    /// REMOVE/UNMAP: end of the range; REMAP: the new address (`arg.remap.to`; `address` is
    /// `from`).
    pub end: u64,
    /// REMAP: the length moved (`arg.remap.len`, the old length).
    pub len: u64,
    /// FORK: the id of the child's userfaultfd.
    pub ufd: u32,
    /// The userfaultfd this message came from.
    pub uffd: u32,
}

impl PyUffdEvent {
    pub fn from_msg(uffd: u32, m: UffdMsg) -> Self {
        PyUffdEvent {
            event: m.event_name(),
            code: m.event,
            address: m.address,
            flags: if m.event == UFFD_EVENT_REMAP { 0 } else { m.flags },
            ptid: m.ptid,
            end: m.end,
            len: if m.event == UFFD_EVENT_REMAP { m.flags } else { 0 },
            ufd: m.ufd,
            uffd,
        }
    }
    pub fn describe(&self) -> String {
        if self.code == UFFD_EVENT_PAGEFAULT {
            let mut f = Vec::new();
            if self.flags & UFFD_PAGEFAULT_FLAG_WRITE != 0 {
                f.push("WRITE");
            }
            if self.flags & UFFD_PAGEFAULT_FLAG_WP != 0 {
                f.push("WP");
            }
            if self.flags & UFFD_PAGEFAULT_FLAG_MINOR != 0 {
                f.push("MINOR");
            }
            format!("PAGEFAULT at {:#x} [{}]", self.address, f.join("|"))
        } else if self.event == "REMAP" {
            format!("REMAP {:#x} -> {:#x} len {:#x}", self.address, self.end, self.len)
        } else if self.event == "FORK" {
            format!("FORK ufd={}", self.ufd)
        } else {
            format!("{} {:#x}..{:#x}", self.event, self.address, self.end)
        }
    }
}

#[pymethods]
impl PyUffdEvent {
    /// PAGEFAULT of a write (UFFD_PAGEFAULT_FLAG_WRITE).
    #[getter]
    fn write(&self) -> bool {
        self.flags & UFFD_PAGEFAULT_FLAG_WRITE != 0
    }
    /// PAGEFAULT of a write-protect fault (UFFD_PAGEFAULT_FLAG_WP).
    #[getter]
    fn wp(&self) -> bool {
        self.flags & UFFD_PAGEFAULT_FLAG_WP != 0
    }
    /// PAGEFAULT of a minor fault (UFFD_PAGEFAULT_FLAG_MINOR).
    #[getter]
    fn minor(&self) -> bool {
        self.flags & UFFD_PAGEFAULT_FLAG_MINOR != 0
    }
    fn __repr__(&self) -> String {
        format!("UffdEvent({})", self.describe())
    }
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
    /// The features agreed in UFFDIO_API.
    #[getter]
    fn features(&self, py: Python<'_>) -> PyResult<u64> {
        with(py, &self.k, |k| Ok(k.uffds[self.id as usize].features))
    }
    /// The features the kernel offered in UFFDIO_API.
    #[getter]
    fn offered(&self) -> u64 {
        self.offered
    }

    /// UFFDIO_REGISTER; returns the ioctls bitmask guaranteed on the range.
    #[pyo3(signature = (addr, length, missing = true, wp = false, minor = false))]
    fn register(
        &self,
        py: Python<'_>,
        addr: u64,
        length: &Bound<'_, PyAny>,
        missing: bool,
        wp: bool,
        minor: bool,
    ) -> PyResult<u64> {
        let len = size_arg(length, "length")?;
        let mode = flag(missing, UFFDIO_REGISTER_MODE_MISSING)
            | flag(wp, UFFDIO_REGISTER_MODE_WP)
            | flag(minor, UFFDIO_REGISTER_MODE_MINOR);
        with(py, &self.k, |k| k.uffdio_register(self.id, addr, len, mode))
    }

    /// UFFDIO_UNREGISTER (wakes threads parked on MISSING faults in the range).
    fn unregister(&self, py: Python<'_>, addr: u64, length: &Bound<'_, PyAny>) -> PyResult<()> {
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
        dst: u64,
        value: &Bound<'_, PyAny>,
        length: Option<&Bound<'_, PyAny>>,
        dontwake: bool,
        wp: bool,
    ) -> PyResult<u64> {
        let mode = flag(dontwake, UFFDIO_COPY_MODE_DONTWAKE) | flag(wp, UFFDIO_COPY_MODE_WP);
        if let Ok(v) = value.extract::<u64>() {
            let len = len_arg(length)?;
            return with(py, &self.k, |k| k.uffdio_copy_same(self.id, dst, len, v, mode));
        }
        let values: Vec<u64> = value.extract()?;
        if values.is_empty() {
            return Err(core_error(py, Error::errno(crate::Errno::EINVAL, "UFFDIO_COPY", "len is 0")));
        }
        with(py, &self.k, |k| k.uffdio_copy(self.id, dst, &values, mode))
    }

    /// UFFDIO_ZEROPAGE over `length` bytes at `dst`. Returns the bytes mapped.
    #[pyo3(signature = (dst, length = None, dontwake = false))]
    fn zeropage(&self, py: Python<'_>, dst: u64, length: Option<&Bound<'_, PyAny>>, dontwake: bool) -> PyResult<u64> {
        let len = len_arg(length)?;
        with(py, &self.k, |k| k.uffdio_zeropage(self.id, dst, len, flag(dontwake, UFFDIO_ZEROPAGE_MODE_DONTWAKE)))
    }

    /// UFFDIO_CONTINUE (MINOR ranges).
    #[pyo3(signature = (addr, length = None, dontwake = false))]
    fn continue_(&self, py: Python<'_>, addr: u64, length: Option<&Bound<'_, PyAny>>, dontwake: bool) -> PyResult<u64> {
        let len = len_arg(length)?;
        with(py, &self.k, |k| k.uffdio_continue(self.id, addr, len, flag(dontwake, UFFDIO_CONTINUE_MODE_DONTWAKE)))
    }

    /// UFFDIO_WRITEPROTECT: set (`wp=True`) or clear write protection on a WP range.
    #[pyo3(signature = (addr, length, wp = true, dontwake = false))]
    fn writeprotect(
        &self,
        py: Python<'_>,
        addr: u64,
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
    fn wake(&self, py: Python<'_>, addr: u64, length: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
        let len = len_arg(length)?;
        with(py, &self.k, |k| k.uffdio_wake(self.id, addr, len))
    }

    /// read(2): the pending messages (page faults first, then FORK/REMOVE/UNMAP events).
    fn read_events(&self, py: Python<'_>) -> PyResult<Vec<PyUffdEvent>> {
        let msgs = with(py, &self.k, |k| k.uffd_read(self.id))?;
        Ok(msgs.into_iter().map(|m| PyUffdEvent::from_msg(self.id, m)).collect())
    }

    /// close(2): disarm every range and wake everyone parked on this userfaultfd.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        with(py, &self.k, |k| k.uffd_close(self.id))
    }

    fn __repr__(&self) -> String {
        format!("Userfaultfd(id={}, pid={})", self.id, self.pid)
    }
}
