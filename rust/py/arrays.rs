//! The event log as numpy columns (the base of the DataFrame / Arrow views).

use crate::sim::log::{Ev, Event};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Columns `t`, `host`, `kind`, `pid`, `tid`, `addr`, `a`, `b`, `c` of `events`, one numpy
/// array each (built in one pass; numpy owns the buffers).
pub fn event_columns<'py>(py: Python<'py>, events: &[Event]) -> PyResult<Bound<'py, PyDict>> {
    let n = events.len();
    let (mut t, mut host, mut kind, mut pid, mut tid) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut addr, mut a, mut b, mut c) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for e in events {
        t.push(e.t);
        host.push(e.host);
        kind.push(e.kind as u8);
        pid.push(e.pid);
        tid.push(e.tid);
        addr.push(e.addr);
        a.push(e.a);
        b.push(e.b);
        c.push(e.c);
    }
    let d = PyDict::new(py);
    d.set_item("t", PyArray1::from_vec(py, t))?;
    d.set_item("host", PyArray1::from_vec(py, host))?;
    d.set_item("kind", PyArray1::from_vec(py, kind))?;
    d.set_item("pid", PyArray1::from_vec(py, pid))?;
    d.set_item("tid", PyArray1::from_vec(py, tid))?;
    d.set_item("addr", PyArray1::from_vec(py, addr))?;
    d.set_item("a", PyArray1::from_vec(py, a))?;
    d.set_item("b", PyArray1::from_vec(py, b))?;
    d.set_item("c", PyArray1::from_vec(py, c))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let names: Vec<&str> = Ev::ALL.iter().map(|e| e.name()).collect();
    m.add("EVENT_KINDS", names)?;
    let fields = PyDict::new(m.py());
    for e in Ev::ALL {
        let f: Vec<Option<&str>> = e.fields().to_vec();
        fields.set_item(e.name(), f)?;
    }
    m.add("EVENT_FIELDS", fields)?;
    let paths: Vec<&str> = crate::sim::log::fault_path::NAMES.to_vec();
    m.add("FAULT_PATHS", paths)?;
    let ttu: Vec<&str> = crate::sim::log::ttu_result::NAMES.to_vec();
    m.add("TTU_RESULTS", ttu)?;
    Ok(())
}
