//! The one atomic writer (`crate::files`) for the Python writers: exports, plots, sweep tables.

use super::errors::call;
use pyo3::prelude::*;
use std::path::PathBuf;

/// Write `data` to `path` atomically (a temporary file of its own, synced, renamed over `path`,
/// the directory synced); a target that is not a regular file is refused. `what` names the
/// output in errors, which name the path.
#[pyfunction]
#[pyo3(signature = (path, data, what = "output"))]
fn write_file(py: Python<'_>, path: PathBuf, data: &[u8], what: &str) -> PyResult<()> {
    py.detach(|| call(|| crate::files::write_bytes(&path, what, data)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(write_file, m)?)?;
    Ok(())
}
