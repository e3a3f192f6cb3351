//! Core errors and panics to `reclaim.exceptions` classes, and the one way the binding runs a
//! call on an engine behind a lock ([`locked`]).
//!
//! The rule every binding follows: nothing is built in Python (no object, no `PyErr`) while an
//! engine lock is held. A call runs with the GIL released and the lock taken, returns plain Rust
//! values or a [`Failure`], and only after the lock is dropped and the GIL taken back is the
//! failure turned into an exception. Building a `PyErr` needs the GIL: under the lock, a thread
//! waiting for the GIL while another (holding the GIL) waits for the lock would deadlock.

use crate::error::{Errno, Error};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

/// The exception classes of `reclaim.exceptions`, imported once per interpreter.
struct Classes {
    argument: Py<PyType>,
    syscall_argument: Py<PyType>,
    syscall: Py<PyType>,
    thread_blocked: Py<PyType>,
    format: Py<PyType>,
    file: Py<PyType>,
    profile: Py<PyType>,
    internal: Py<PyType>,
    invariant: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let m = py.import("reclaim.exceptions")?;
        let get = |name: &str| -> PyResult<Py<PyType>> { Ok(m.getattr(name)?.cast_into::<PyType>()?.unbind()) };
        Ok(Classes {
            argument: get("ArgumentError")?,
            syscall_argument: get("SyscallArgumentError")?,
            syscall: get("SyscallError")?,
            thread_blocked: get("ThreadBlockedError")?,
            format: get("FormatError")?,
            file: get("FileError")?,
            profile: get("ProfileError")?,
            internal: get("InternalError")?,
            invariant: get("InvariantError")?,
        })
    })
}

/// One of the classes.
#[derive(Clone, Copy)]
enum Class {
    Argument,
    SyscallArgument,
    Syscall,
    ThreadBlocked,
    Format,
    File,
    Profile,
    Internal,
    Invariant,
}

impl Classes {
    fn get(&self, c: Class) -> &Py<PyType> {
        match c {
            Class::Argument => &self.argument,
            Class::SyscallArgument => &self.syscall_argument,
            Class::Syscall => &self.syscall,
            Class::ThreadBlocked => &self.thread_blocked,
            Class::Format => &self.format,
            Class::File => &self.file,
            Class::Profile => &self.profile,
            Class::Internal => &self.internal,
            Class::Invariant => &self.invariant,
        }
    }
}

/// An instance of `class` called with `args` (or the error that stopped it).
fn build<'py, A: pyo3::call::PyCallArgs<'py>>(py: Python<'py>, class: Class, args: A) -> PyErr {
    classes(py).and_then(|c| Ok(PyErr::from_value(c.get(class).bind(py).call1(args)?))).unwrap_or_else(|err| err)
}

/// The Python exception for a core error (a `ReclaimError` subclass carrying the errno).
pub fn core_error(py: Python<'_>, e: Error) -> PyErr {
    let errno: Option<Errno> = match &e {
        Error::InvalidArgument(_) | Error::Profile(_) => Some(Errno::EINVAL),
        Error::Errno { errno, .. } => Some(*errno),
        _ => None,
    };
    let call = match &e {
        Error::Errno { call, .. } => Some(*call),
        _ => None,
    };
    let msg = e.to_string();
    let class = match &e {
        Error::InvalidArgument(_) => Class::Argument,
        Error::Errno { errno: Errno::EINVAL, .. } => Class::SyscallArgument,
        Error::Errno { .. } => Class::Syscall,
        Error::ThreadBlocked(_) => Class::ThreadBlocked,
        Error::Format { .. } => Class::Format,
        Error::Io(_) => Class::File,
        Error::Profile(_) => Class::Profile,
    };
    build(py, class, (msg, errno.map(|x| x.code()), errno.map(|x| x.name()), call))
}

/// [`core_error`] for callers that hold the GIL but have no token at hand.
pub fn to_pyerr(e: Error) -> PyErr {
    Python::attach(|py| core_error(py, e))
}

/// `reclaim.InvariantError` naming a violated invariant.
pub fn invariant_error(py: Python<'_>, msg: String) -> PyErr {
    build(py, Class::Invariant, (msg,))
}

/// `reclaim.InternalError` for a model bug.
pub fn internal(py: Python<'_>, msg: &str) -> PyErr {
    let full = format!("internal error in the reclaim engine (please report it): {msg}");
    build(py, Class::Internal, (full,))
}

/// How a core call failed, in Rust terms: converted to an exception by
/// [`Failure::into_pyerr`] once no lock is held.
#[derive(Debug)]
pub enum Failure {
    /// The core refused the call (a `ReclaimError` subclass).
    Core(Error),
    /// The core panicked: a bug in the model (`InternalError`). A panic under the lock poisons
    /// the state behind it.
    Panic(String),
    /// An earlier panic left the state behind the lock half-updated; the call was refused.
    Poisoned,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl Failure {
    /// The Python exception (built with the GIL held and no engine lock taken).
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Core(e) => core_error(py, e),
            Failure::Panic(msg) => internal(py, &msg),
            Failure::Poisoned => build(
                py,
                Class::Internal,
                ("this object's state was left half-updated by an earlier internal error in the reclaim engine \
                  (raised then as InternalError) and it refuses further calls: create a new one, or restore a \
                  snapshot taken before the error"
                    .to_string(),),
            ),
        }
    }
}

/// Run a core call, catching a panic: no Python involved, so it may run with the GIL released.
pub fn catch<T>(f: impl FnOnce() -> crate::Result<T>) -> Result<T, Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(Failure::Core),
        Err(panic) => Err(Failure::Panic(panic_message(&panic))),
    }
}

/// Run a core call with the GIL held (argument parsing, building a config): errors become
/// `ReclaimError` subclasses and a panic `reclaim.InternalError` instead of unwinding into
/// Python. Calls on an engine behind a lock use [`locked`].
pub fn call<T>(f: impl FnOnce() -> crate::Result<T>) -> PyResult<T> {
    catch(f).map_err(|e| Python::attach(|py| e.into_pyerr(py)))
}

/// The lock on `m` taken, `f` run on the state behind it; a panic in `f` unwinds through the
/// guard and poisons the mutex, so later calls get [`Failure::Poisoned`] instead of using the
/// half-updated state. Returns with the lock dropped.
pub fn under_lock<S, T>(m: &Mutex<S>, f: impl FnOnce(&mut S) -> crate::Result<T>) -> Result<T, Failure> {
    match catch_unwind(AssertUnwindSafe(|| m.lock().map(|mut g| f(&mut g)))) {
        Ok(Ok(r)) => r.map_err(Failure::Core),
        Ok(Err(_poisoned)) => Err(Failure::Poisoned),
        Err(panic) => Err(Failure::Panic(panic_message(&panic))),
    }
}

/// The one way the binding calls an engine behind a lock: `f` runs with the GIL released (other
/// Python threads run meanwhile) and the lock taken; it returns plain Rust values. A failure is
/// turned into a Python exception only after the lock is dropped and the GIL is back.
pub fn locked<S: Send, T: Send>(
    py: Python<'_>,
    m: &Mutex<S>,
    f: impl FnOnce(&mut S) -> crate::Result<T> + Send,
) -> PyResult<T> {
    py.detach(|| under_lock(m, f)).map_err(|e| e.into_pyerr(py))
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
