//! Core errors and panics to `reclaim.exceptions` classes.

use crate::error::{Errno, Error};
use pyo3::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Build the Python exception for a core error.
pub fn to_pyerr(e: Error) -> PyErr {
    Python::attach(|py| {
        let (class, errno): (&str, Option<Errno>) = match &e {
            Error::InvalidArgument(_) => ("ArgumentError", Some(Errno::EINVAL)),
            Error::Errno { errno: Errno::EINVAL, .. } => ("SyscallArgumentError", Some(Errno::EINVAL)),
            Error::Errno { errno, .. } => ("SyscallError", Some(*errno)),
            Error::ThreadBlocked(_) => ("ThreadBlockedError", None),
            Error::Format { .. } => ("FormatError", None),
            Error::Io(_) => ("FileError", None),
            Error::Profile(_) => ("ProfileError", Some(Errno::EINVAL)),
        };
        let call = match &e {
            Error::Errno { call, .. } => Some(*call),
            _ => None,
        };
        let msg = e.to_string();
        let built = py.import("reclaim.exceptions").and_then(|m| {
            let cls = m.getattr(class)?;
            let obj = cls.call1((msg.clone(), errno.map(|x| x.code()), errno.map(|x| x.name()), call))?;
            Ok(PyErr::from_value(obj))
        });
        built.unwrap_or_else(|err| err)
    })
}

/// Run a core call: errors become `ReclaimError` subclasses and a panic (a bug in the model)
/// becomes `reclaim.InternalError` instead of unwinding into Python.
pub fn call<T>(f: impl FnOnce() -> crate::Result<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_pyerr(e)),
        Err(panic) => Err(internal(panic_message(&panic))),
    }
}

/// Run a core call on the state behind `m`. The lock is taken inside [`call`], so a panic
/// unwinds through the guard and poisons the mutex: later calls refuse the half-updated state
/// with `InternalError` instead of using it.
pub fn call_locked<S, T>(m: &std::sync::Mutex<S>, f: impl FnOnce(&mut S) -> crate::Result<T>) -> PyResult<T> {
    let r = call(|| match m.lock() {
        Ok(mut g) => f(&mut g).map(Some),
        Err(_) => Ok(None),
    })?;
    r.ok_or_else(|| {
        internal("this model's state was left inconsistent by an earlier internal error; create a new one".into())
    })
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

/// `reclaim.InternalError` for a model bug or a poisoned model.
pub fn internal(msg: String) -> PyErr {
    Python::attach(|py| {
        let full = format!("internal error in the reclaim engine (please report it): {msg}");
        py.import("reclaim.exceptions")
            .and_then(|m| Ok(PyErr::from_value(m.getattr("InternalError")?.call1((full,))?)))
            .unwrap_or_else(|err| err)
    })
}
