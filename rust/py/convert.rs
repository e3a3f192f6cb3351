//! Conversions the binding shares: the shared kernel handle and the call on it, size
//! arguments, name/value tables to dicts. A leaf of `rust/py`: it imports no binding class.

use super::errors::{call, core_error, locked};
use crate::error::Error;
use crate::kernel::Kernel;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString};
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

/// A size argument: int bytes (an int or an object with `__index__`, checked as [`IntArg`]) or
/// a string with a binary unit.
pub fn size_arg(v: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if let Ok(s) = v.cast::<PyString>() {
        let s = s.to_str()?;
        return call(|| crate::units::parse_size(s));
    }
    if v.is_instance_of::<PyInt>() || v.hasattr(pyo3::intern!(v.py(), "__index__"))? {
        if v.lt(0)? {
            return call(|| {
                Err(crate::Error::invalid(format!(
                    "{what} must be an integer from 0 to {}, got {v}: a size cannot be negative",
                    u64::MAX
                )))
            });
        }
        return u64::from_arg(v, what);
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be an int (bytes) or a string like \"512MiB\", not {}",
        v.get_type().name()?
    )))
}

/// An integer parameter's type: an unsigned integer, or an optional one (None stays None).
/// The one conversion of every integer a Python caller passes to the binding: an int (or an
/// object with `__index__`, such as a numpy integer) in the type's range converts; a negative
/// or too large one is a `reclaim.ArgumentError` naming the parameter and the range, another
/// type a `TypeError` naming the parameter. Parameters use it through [`arg`].
pub trait IntArg: Sized {
    /// `v` converted, or the error naming the parameter `what`.
    fn from_arg(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Self>;
}

/// The value of an integer argument as an i128 (every unsigned type the binding takes fits), or
/// the error naming it.
fn int_value(v: &Bound<'_, PyAny>, what: &str, max: u128) -> PyResult<i128> {
    let py = v.py();
    match v.extract::<i128>() {
        Ok(n) => Ok(n),
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => Err(range_error(py, what, v, max)),
        Err(_) => Err(PyTypeError::new_err(format!("{what} must be an int, not {}", v.get_type().name()?))),
    }
}

fn range_error(py: Python<'_>, what: &str, v: impl std::fmt::Display, max: u128) -> PyErr {
    core_error(py, Error::invalid(format!("{what} must be an integer from 0 to {max}, got {v}")))
}

macro_rules! unsigned_arg {
    ($($t:ty)*) => {$(
        impl IntArg for $t {
            fn from_arg(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
                let n = int_value(v, what, <$t>::MAX as u128)?;
                <$t>::try_from(n).map_err(|_| range_error(v.py(), what, n, <$t>::MAX as u128))
            }
        }
    )*};
}
unsigned_arg!(u8 u16 u32 u64 usize);

impl<T: IntArg> IntArg for Option<T> {
    fn from_arg(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
        if v.is_none() { Ok(None) } else { T::from_arg(v, what).map(Some) }
    }
}

/// Integer parameters by name, for `#[pyo3(from_py_with = arg::NAME)]` on a parameter `NAME`
/// of an unsigned type or an Option of one: [`IntArg`] with the parameter's name in the error.
/// Every integer parameter of the binding is declared this way (`tests/test_errors.py` calls
/// each with -1 and 2**64).
pub mod arg {
    use super::IntArg;
    use pyo3::prelude::*;

    macro_rules! named {
        ($($name:ident)*) => {$(
            #[doc = concat!("The integer argument `", stringify!($name), "`.")]
            pub fn $name<T: IntArg>(v: &Bound<'_, PyAny>) -> PyResult<T> {
                T::from_arg(v, stringify!($name))
            }
        )*};
    }
    named!(
        addr bandwidth bits count depth dest_memory dest_swap dst end g guest_memory host host_pages
        latency_ns limit load_interval_ns max_states max_time_ns n nr_pages offset old_addr
        op_interval_ns other_load page_cluster pages pfn pid precopy_iterations prot requests seed since source_memory
        source_swap start swap_pages swp_type tid until until_ns value vcpu vcpus walk_len walks
    );
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
