//! `reclaim.Profile` and `reclaim.PROFILES`.

use super::errors::call;
use crate::arch::Arch;
use crate::profile::{PROFILE_NAMES, Profile, SWITCHES, SwitchKind, SwitchValue, derive};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList};

fn value_to_py(py: Python<'_>, v: SwitchValue) -> PyResult<Bound<'_, PyAny>> {
    Ok(match v {
        SwitchValue::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        SwitchValue::Int(i) => i.into_pyobject(py)?.into_any(),
        SwitchValue::Choice(c) => c.into_pyobject(py)?.into_any(),
    })
}

/// `reclaim.SWITCHES`: every switch as a dict (name, values, commit), in the order of the
/// profile's fields (the listing of `reclaim profiles`).
fn switch_table(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let l = PyList::empty(py);
    for s in SWITCHES {
        let d = PyDict::new(py);
        d.set_item("name", s.name)?;
        let values: Vec<String> = match s.kind {
            SwitchKind::Bool => vec!["true".into(), "false".into()],
            SwitchKind::Int => vec![],
            SwitchKind::Choice(c) => c.iter().map(|x| x.to_string()).collect(),
        };
        d.set_item(
            "kind",
            match s.kind {
                SwitchKind::Bool => "bool",
                SwitchKind::Int => "int",
                SwitchKind::Choice(_) => "choice",
            },
        )?;
        d.set_item("values", values)?;
        d.set_item("commit", s.commit)?;
        l.append(d)?;
    }
    Ok(l)
}

/// A kernel profile: the switches of one release on one arch (read-only; `Profile.derive` makes a
/// variant).
#[pyclass(name = "Profile", module = "reclaim", frozen, from_py_object)]
#[derive(Clone)]
pub struct PyProfile(pub Profile);

#[pymethods]
impl PyProfile {
    #[new]
    #[pyo3(signature = (name, arch = "s390x"))]
    fn new(name: &str, arch: &str) -> PyResult<Self> {
        Ok(PyProfile(call(|| Profile::by_names(name, arch))?))
    }
    /// The profile's name: "4.13", "4.17", "4.18", "6.12", a distribution-like variant
    /// (`reclaim.VARIANTS`, e.g. "6.12-debian"), or a variant's (`Profile.derive`).
    #[getter]
    fn name(&self) -> &'static str {
        self.0.name
    }
    /// The kernel release modelled, as (major, minor), e.g. (4, 18).
    #[getter]
    fn release(&self) -> (u16, u16) {
        self.0.release
    }
    /// The architecture: "s390x" or "x86_64" (PTE format, PGSTEs, what userfaultfd offers).
    #[getter]
    fn arch(&self) -> &'static str {
        self.0.arch.name()
    }
    /// Every switch by name, as a dict of plain values (bools, ints, and the choice names of
    /// the other switches), plus what the arch offers (`uffd_features_offered`,
    /// `arch_has_uffd_wp`, `arch_has_uffd_minor`).
    fn switches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = &self.0;
        let d = PyDict::new(py);
        for s in SWITCHES {
            d.set_item(s.name, value_to_py(py, s.get(p))?)?;
        }
        d.set_item("uffd_features_offered", p.uffd_features_offered())?;
        d.set_item("arch_has_uffd_wp", p.arch_has_uffd_wp())?;
        d.set_item("arch_has_uffd_minor", p.arch_has_uffd_minor())?;
        d.set_item("lru_gen_caps", p.lru_gen_caps())?;
        Ok(d)
    }
    /// A variant of profile `base` (a built-in or derived profile name, or a `Profile`) with
    /// `switches` changed, named `name` (default: the base name and the changes, e.g.
    /// "4.18+cbrl_guard=UffdArmed"). A value is a bool, an int, or a string (a choice name,
    /// case-insensitive, or "true"/"false"/a number). The variant is defined for this process:
    /// every API that takes a profile name (Kernel, the studies, the explorer, replay, sweeps)
    /// accepts its name. Raises `reclaim.ProfileError` for an unknown switch or value (the
    /// message lists the choices) or a name that is built-in, malformed or taken by a variant
    /// with other switches.
    #[staticmethod]
    #[pyo3(signature = (base, name = None, *, arch = "s390x", **switches))]
    fn derive(
        base: &Bound<'_, PyAny>,
        name: Option<&str>,
        arch: &str,
        switches: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let base: String = match base.extract::<PyRef<'_, PyProfile>>() {
            Ok(p) => p.0.name.to_string(),
            Err(_) => base.extract()?,
        };
        let mut vals: Vec<(String, SwitchValue)> = Vec::new();
        if let Some(d) = switches {
            for (k, v) in d.iter() {
                let k: String = k.extract()?;
                let sw = call(|| derive::switch(&k))?;
                let val = if let Ok(b) = v.cast::<PyBool>() {
                    SwitchValue::Bool(b.is_true())
                } else if let Ok(i) = v.extract::<u64>() {
                    SwitchValue::Int(i)
                } else if let Ok(t) = v.extract::<String>() {
                    call(|| sw.parse(&t))?
                } else {
                    let t = v.repr()?.to_string();
                    return Err(super::errors::to_pyerr(crate::error::Error::Profile(format!(
                        "switch {k} cannot be {t}; its values are: {}",
                        sw.kind.describe()
                    ))));
                };
                vals.push((k, val));
            }
        }
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                let mut n = base.clone();
                for (k, v) in &vals {
                    n.push_str(&format!("+{k}={v}"));
                }
                n
            }
        };
        let refs: Vec<(&str, SwitchValue)> = vals.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        Ok(PyProfile(call(|| Profile::derive(&base, Arch::parse(arch)?, &name, &refs))?))
    }
    /// Whether this is a built-in profile (not a variant from `Profile.derive`).
    #[getter]
    fn builtin(&self) -> bool {
        self.0.is_builtin()
    }
    /// The built-in profile this one derives from (itself for a built-in profile).
    #[getter]
    fn base(&self) -> PyProfile {
        PyProfile(self.0.base())
    }
    /// The switches whose values differ from `other`'s: {switch: (self's value, other's)}.
    fn diff<'py>(&self, py: Python<'py>, other: &PyProfile) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (n, a, b) in self.0.diff(&other.0) {
            d.set_item(n, (value_to_py(py, a)?, value_to_py(py, b)?))?;
        }
        Ok(d)
    }
    /// This profile with the switches `names` set to `other`'s values, named `name`, not
    /// registered (one step of `reclaim.bisect`: pass the object, not its name).
    fn with_switches_of(&self, other: &PyProfile, names: Vec<String>, name: &str) -> PyResult<PyProfile> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(PyProfile(call(|| self.0.with_switches_of(&other.0, &refs, name))?))
    }
    /// Pickle as (base, name, arch, changed switches), so a variant reaches a worker process.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cls = py.import("reclaim")?.getattr("Profile")?;
        if self.0.is_builtin() {
            return (cls, (self.0.name, self.0.arch.name())).into_pyobject(py).map(|b| b.into_any());
        }
        let base = self.0.base();
        let kw = PyDict::new(py);
        for (n, _, v) in base.diff(&self.0) {
            kw.set_item(n, value_to_py(py, v)?)?;
        }
        let f = py.import("reclaim.variants")?.getattr("_restore_profile")?;
        (f, (base.name, self.0.name, self.0.arch.name(), kw)).into_pyobject(py).map(|b| b.into_any())
    }
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.hash(&mut h);
        h.finish()
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.0 == other.0
    }
    fn __repr__(&self) -> String {
        format!("Profile({:?}, arch={:?})", self.0.name, self.0.arch.name())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyProfile>()?;
    let names: Vec<&str> = PROFILE_NAMES.to_vec();
    m.add("PROFILE_NAMES", names)?;
    m.add("SWITCHES", switch_table(m.py())?)?;
    let variants = PyList::empty(m.py());
    for v in crate::profile::VARIANTS {
        let d = PyDict::new(m.py());
        d.set_item("name", v.name)?;
        d.set_item("base", v.base)?;
        let sw = PyDict::new(m.py());
        for (n, val) in v.switches {
            sw.set_item(n, value_to_py(m.py(), *val)?)?;
        }
        d.set_item("switches", sw)?;
        d.set_item("stands_for", v.stands_for)?;
        variants.append(d)?;
    }
    m.add("VARIANTS", variants)?;
    Ok(())
}
