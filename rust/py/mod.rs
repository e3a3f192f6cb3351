//! The PyO3 layer: classes that convert arguments and call the core; nothing else lives here.

mod arrays;
mod batch;
mod convert;
mod errors;
mod explore;
mod files;
mod html;
mod kernel;
mod process;
mod profile;
mod s390;
mod study;
mod trace;
mod uffd;

use pyo3::prelude::*;

/// The extension module `reclaim._reclaim`.
#[pymodule]
fn _reclaim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    profile::register(m)?;
    s390::register(m)?;
    m.add_class::<kernel::PyKernel>()?;
    m.add_function(wrap_pyfunction!(convert::parse_size, m)?)?;
    m.add_class::<kernel::PyEvent>()?;
    m.add_class::<process::PyProcess>()?;
    m.add_class::<process::PyAccess>()?;
    uffd::register(m)?;
    batch::register(m)?;
    study::register(m)?;
    explore::register(m)?;
    arrays::register(m)?;
    trace::register(m)?;
    files::register(m)?;
    Ok(())
}
