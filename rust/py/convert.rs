//! Conversions the binding shares: the shared kernel handle and the call on it, size
//! arguments, name/value tables to dicts. A leaf of `rust/py`: it imports no binding class.

use super::errors::{call, core_error, locked};
use crate::error::Error;
use crate::kernel::Kernel;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::{Arc, Mutex};

/// The shared handle on a kernel: Python objects (Kernel, Process, Userfaultfd) hold it.
pub type Shared = Arc<Mutex<Kernel>>;

/// Run `f` on the kernel with the GIL released and the kernel's lock taken (see
/// [`locked`]); errors become ReclaimError subclasses, a panic InternalError (and the kernel is
/// poisoned: later calls refuse).
pub fn with<T: Send>(
    py: Python<'_>,
    k: &Shared,
    f: impl FnOnce(&mut Kernel) -> crate::Result<T> + Send,
) -> PyResult<T> {
    locked(py, k, f)
}

/// `reclaim._reclaim.parse_size(value, what)`: bytes from an int or a string with a binary
/// unit, the one parser behind every size argument (Python's `reclaim.units.size` calls it).
#[pyfunction]
#[pyo3(signature = (value, what = "size"))]
pub fn parse_size(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    size_arg(value, what)
}

/// A size argument: int bytes or a string with a binary unit.
pub fn size_arg(v: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    let py = v.py();
    if let Ok(n) = v.extract::<i128>() {
        if n < 0 {
            return Err(core_error(py, Error::invalid(format!("{what} must not be negative, got {n}"))));
        }
        return u64::try_from(n).map_err(|_| core_error(py, Error::invalid(format!("{what} {n} is too large"))));
    }
    if v.is_instance_of::<pyo3::types::PyInt>() {
        return Err(core_error(py, Error::invalid(format!("{what} {v} is out of range"))));
    }
    if let Ok(s) = v.cast::<PyString>() {
        let s = s.to_str()?;
        return call(|| crate::units::parse_size(s));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "{what} must be an int (bytes) or a string like \"512MiB\", not {}",
        v.get_type().name()?
    )))
}

/// A dict of `(name, value)` pairs, in their order.
pub fn pairs_dict<'py, V: IntoPyObject<'py> + Copy>(
    py: Python<'py>,
    pairs: &[(&str, V)],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (n, v) in pairs {
        d.set_item(*n, *v)?;
    }
    Ok(d)
}
