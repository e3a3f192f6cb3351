//! The event log as numpy columns (the base of the DataFrame / Arrow views).

use crate::sim::log::{Ev, Event};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Columns `t`, `host`, `kind`, `pid`, `tid`, `addr`, `a`, `b`, `c` of an event log, built in
/// one pass (with no Python involved: under an engine lock, with the GIL released), then handed
/// to numpy, which owns the buffers.
pub struct EventColumns {
    t: Vec<u64>,
    host: Vec<u8>,
    kind: Vec<u8>,
    pid: Vec<u32>,
    tid: Vec<u16>,
    addr: Vec<u64>,
    a: Vec<u64>,
    b: Vec<u64>,
    c: Vec<u64>,
}

impl EventColumns {
    pub fn of(events: &[Event]) -> Self {
        let n = events.len();
        let mut c = EventColumns {
            t: Vec::with_capacity(n),
            host: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            pid: Vec::with_capacity(n),
            tid: Vec::with_capacity(n),
            addr: Vec::with_capacity(n),
            a: Vec::with_capacity(n),
            b: Vec::with_capacity(n),
            c: Vec::with_capacity(n),
        };
        for e in events {
            c.t.push(e.t);
            c.host.push(e.host);
            c.kind.push(e.kind as u8);
            c.pid.push(e.pid);
            c.tid.push(e.tid);
            c.addr.push(e.addr);
            c.a.push(e.a);
            c.b.push(e.b);
            c.c.push(e.c);
        }
        c
    }

    /// The columns as a dict of numpy arrays.
    pub fn into_dict(self, py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("t", PyArray1::from_vec(py, self.t))?;
        d.set_item("host", PyArray1::from_vec(py, self.host))?;
        d.set_item("kind", PyArray1::from_vec(py, self.kind))?;
        d.set_item("pid", PyArray1::from_vec(py, self.pid))?;
        d.set_item("tid", PyArray1::from_vec(py, self.tid))?;
        d.set_item("addr", PyArray1::from_vec(py, self.addr))?;
        d.set_item("a", PyArray1::from_vec(py, self.a))?;
        d.set_item("b", PyArray1::from_vec(py, self.b))?;
        d.set_item("c", PyArray1::from_vec(py, self.c))?;
        Ok(d)
    }
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
