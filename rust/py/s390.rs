//! `reclaim.s390`: the PTE and PGSTE value types, swap entries and ESSA.

use super::errors::call;
use crate::arch::s390::essa;
use crate::arch::s390::pgste::{Pgste, PgsteLayout};
use crate::arch::s390::pte::{self as p, Pte};
use crate::error::Error;
use crate::profile::Profile;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// An s390 page-table entry value. `Pte(0x400).none()`; predicates and modifiers carry the
/// kernel's names without the `pte_` prefix; modifiers return a new value.
#[pyclass(name = "Pte", module = "reclaim.s390", frozen, eq, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyPte(pub Pte);

fn u64_arg(v: i128, what: &str) -> PyResult<u64> {
    u64::try_from(v)
        .map_err(|_| super::errors::to_pyerr(Error::invalid(format!("{what} {v} is not a 64-bit unsigned value"))))
}

#[pymethods]
impl PyPte {
    #[new]
    fn new(value: i128) -> PyResult<Self> {
        Ok(PyPte(Pte(u64_arg(value, "pte value")?)))
    }

    /// The empty PTE (`_PAGE_INVALID`).
    #[classmethod]
    fn empty(_cls: &Bound<'_, PyType>) -> Self {
        PyPte(Pte::NONE)
    }

    /// `mk_pte(pfn, prot)`: a present PTE (young, as s390's mk_pte_phys makes it).
    #[classmethod]
    fn mk(_cls: &Bound<'_, PyType>, pfn: i128, prot: i128) -> PyResult<Self> {
        let pfn = u64_arg(pfn, "pfn")?;
        if pfn >= 1 << 52 {
            return call(|| Err(Error::invalid(format!("pfn {pfn:#x} does not fit in a PTE (52 bits)"))));
        }
        Ok(PyPte(Pte::mk(pfn, u64_arg(prot, "prot")?)))
    }

    /// The raw u64.
    #[getter]
    fn value(&self) -> u64 {
        self.0.val()
    }
    fn __int__(&self) -> u64 {
        self.0.val()
    }
    fn __index__(&self) -> u64 {
        self.0.val()
    }
    fn __repr__(&self) -> String {
        format!("Pte({:#x}: {})", self.0.val(), self.0.decode())
    }
    fn none(&self) -> bool {
        self.0.none()
    }
    fn present(&self) -> bool {
        self.0.present()
    }
    fn swap(&self) -> bool {
        self.0.swap()
    }
    fn young(&self) -> bool {
        self.0.young()
    }
    fn dirty(&self) -> bool {
        self.0.dirty()
    }
    fn write(&self) -> bool {
        self.0.write()
    }
    fn read(&self) -> bool {
        self.0.read()
    }
    fn special(&self) -> bool {
        self.0.special()
    }
    fn soft_dirty(&self) -> bool {
        self.0.soft_dirty()
    }
    fn unused(&self) -> bool {
        self.0.unused()
    }
    fn protnone(&self) -> bool {
        self.0.protnone()
    }
    /// The hardware invalid bit (I).
    fn hw_invalid(&self) -> bool {
        self.0.hw_invalid()
    }
    /// The hardware protect bit (P).
    fn hw_protect(&self) -> bool {
        self.0.hw_protect()
    }
    fn pfn(&self) -> u64 {
        self.0.pfn()
    }
    fn mkold(&self) -> Self {
        PyPte(self.0.mkold())
    }
    fn mkyoung(&self) -> Self {
        PyPte(self.0.mkyoung())
    }
    fn mkdirty(&self) -> Self {
        PyPte(self.0.mkdirty())
    }
    fn mkclean(&self) -> Self {
        PyPte(self.0.mkclean())
    }
    fn wrprotect(&self) -> Self {
        PyPte(self.0.wrprotect())
    }
    fn mkwrite(&self) -> Self {
        PyPte(self.0.mkwrite())
    }
    fn mkspecial(&self) -> Self {
        PyPte(self.0.mkspecial())
    }
    fn modify(&self, prot: i128) -> PyResult<Self> {
        Ok(PyPte(self.0.modify(u64_arg(prot, "prot")?)))
    }
    fn swp_type(&self) -> u32 {
        self.0.swp_type()
    }
    fn swp_offset(&self) -> u64 {
        self.0.swp_offset()
    }
    fn swp_exclusive(&self) -> bool {
        self.0.swp_exclusive()
    }
    fn swp_mkexclusive(&self) -> Self {
        PyPte(self.0.swp_mkexclusive())
    }
    fn swp_soft_dirty(&self) -> bool {
        self.0.swp_soft_dirty()
    }
}

/// `mk_swap_pte(type, offset)`.
#[pyfunction]
fn mk_swap_pte(swp_type: i128, offset: i128) -> PyResult<PyPte> {
    call(|| {
        if !(0..32).contains(&swp_type) {
            return Err(Error::invalid(format!("swap type {swp_type} is outside 0..31 (5 bits)")));
        }
        if !(0..(1i128 << 52)).contains(&offset) {
            return Err(Error::invalid(format!("swap offset {offset} is outside 0..2**52-1 (52 bits)")));
        }
        Ok(PyPte(Pte::mk_swap(swp_type as u32, offset as u64)))
    })
}

fn layout_for(profile: &str) -> PyResult<PgsteLayout> {
    if profile == "new" {
        return Ok(PgsteLayout::New);
    }
    call(|| Ok(Profile::by_names(profile, "s390x")?.pgste_layout))
}

/// A PGSTE value. `layout` comes from a profile name (UC/IN/VSIE moved in v6.14; pass
/// `profile="new"` for that layout).
#[pyclass(name = "Pgste", module = "reclaim.s390", frozen, from_py_object)]
#[derive(Clone, Copy)]
pub struct PyPgste {
    pub v: Pgste,
    pub layout: PgsteLayout,
}

#[pymethods]
impl PyPgste {
    #[new]
    #[pyo3(signature = (value, profile = "4.18"))]
    fn new(value: i128, profile: &str) -> PyResult<Self> {
        Ok(PyPgste { v: Pgste(u64_arg(value, "pgste value")?), layout: layout_for(profile)? })
    }
    #[getter]
    fn value(&self) -> u64 {
        self.v.val()
    }
    fn __int__(&self) -> u64 {
        self.v.val()
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.v == other.v
    }
    fn __hash__(&self) -> u64 {
        self.v.val()
    }
    fn __repr__(&self) -> String {
        format!("Pgste({:#x}: {})", self.v.val(), self.v.decode(self.layout))
    }
    /// "STABLE", "UNUSED", "POT_VOLATILE" or "VOLATILE".
    #[getter]
    fn usage(&self) -> &'static str {
        self.v.usage().name()
    }
    fn zero(&self) -> bool {
        self.v.zero()
    }
    fn nodat(&self) -> bool {
        self.v.nodat()
    }
    fn uc(&self) -> bool {
        self.v.uc(self.layout)
    }
    fn in_(&self) -> bool {
        self.v.in_bit(self.layout)
    }
    fn vsie(&self) -> bool {
        self.v.vsie(self.layout)
    }
    fn gr(&self) -> bool {
        self.v.gr()
    }
    fn gc(&self) -> bool {
        self.v.gc()
    }
    fn hr(&self) -> bool {
        self.v.hr()
    }
    fn hc(&self) -> bool {
        self.v.hc()
    }
}

/// The outcome of ESSA on one page (`pgste_perform_essa`).
#[pyclass(name = "EssaResult", module = "reclaim.s390", frozen, get_all)]
pub struct PyEssa {
    /// The orc performed.
    pub orc: u32,
    pub old_pgste: PyPgste,
    pub new_pgste: PyPgste,
    /// 1 if the page goes on the CBRL (its host PTE is invalid and it may be discarded).
    pub res: u32,
    /// (Process.essa) KVM intercepted the instruction and processed the CBRL.
    pub intercepted: bool,
    /// (Process.essa) swap PTEs the CBRL processing zapped.
    pub zapped: u32,
    /// (Process.essa) entries left on the vCPU's CBRL.
    pub cbrl_len: u32,
}

#[pymethods]
impl PyEssa {
    fn __repr__(&self) -> String {
        format!(
            "EssaResult(orc={} ({}), res={}, usage {} -> {})",
            self.orc,
            essa::ORC_NAMES[self.orc as usize],
            self.res,
            self.old_pgste.v.usage().name(),
            self.new_pgste.v.usage().name()
        )
    }
}

/// Parse an orc given as int or name.
pub fn orc_arg(orc: &Bound<'_, PyAny>) -> PyResult<u32> {
    if let Ok(n) = orc.extract::<i64>() {
        return call(|| {
            if n < 0 {
                return essa::check_orc(u32::MAX);
            }
            essa::check_orc(u32::try_from(n).unwrap_or(u32::MAX))
        });
    }
    let s: String = orc.extract()?;
    call(|| essa::parse_orc(&s))
}

pub fn essa_result(orc: u32, r: essa::Essa, layout: PgsteLayout) -> PyEssa {
    PyEssa {
        orc,
        old_pgste: PyPgste { v: r.old_pgste, layout },
        new_pgste: PyPgste { v: r.new_pgste, layout },
        res: r.res,
        intercepted: false,
        zapped: 0,
        cbrl_len: 0,
    }
}

/// `pgste_perform_essa(pte, pgste, orc)` on values: what ESSA does to the PGSTE of a page whose
/// host PTE is `pte`. `orc` is 0..7 or a name like `"set_unused"`.
#[pyfunction(name = "essa")]
fn essa_values(pte: &PyPte, pgste: &PyPgste, orc: &Bound<'_, PyAny>) -> PyResult<PyEssa> {
    let orc = orc_arg(orc)?;
    let r = call(|| essa::pgste_perform_essa(pte.0, pgste.v, orc))?;
    Ok(essa_result(orc, r, pgste.layout))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPte>()?;
    m.add_class::<PyPgste>()?;
    m.add_class::<PyEssa>()?;
    m.add_function(wrap_pyfunction!(mk_swap_pte, m)?)?;
    m.add_function(wrap_pyfunction!(essa_values, m)?)?;
    let consts: [(&str, u64); 20] = [
        ("_PAGE_NOEXEC", p::_PAGE_NOEXEC),
        ("_PAGE_PROTECT", p::_PAGE_PROTECT),
        ("_PAGE_INVALID", p::_PAGE_INVALID),
        ("_PAGE_LARGE", p::_PAGE_LARGE),
        ("_PAGE_PRESENT", p::_PAGE_PRESENT),
        ("_PAGE_SOFT_DIRTY", p::_PAGE_SOFT_DIRTY),
        ("_PAGE_YOUNG", p::_PAGE_YOUNG),
        ("_PAGE_DIRTY", p::_PAGE_DIRTY),
        ("_PAGE_READ", p::_PAGE_READ),
        ("_PAGE_WRITE", p::_PAGE_WRITE),
        ("_PAGE_SPECIAL", p::_PAGE_SPECIAL),
        ("_PAGE_UNUSED", p::_PAGE_UNUSED),
        ("_PAGE_SWP_EXCLUSIVE", p::_PAGE_SWP_EXCLUSIVE),
        ("PAGE_NONE", p::PAGE_NONE),
        ("PAGE_RO", p::PAGE_RO),
        ("PAGE_RX", p::PAGE_RX),
        ("PAGE_RW", p::PAGE_RW),
        ("PAGE_RWX", p::PAGE_RWX),
        ("PAGE_SIZE", p::PAGE_SIZE),
        ("PAGE_SHIFT", p::PAGE_SHIFT as u64),
    ];
    let s390 = PyModule::new(m.py(), "s390_consts")?;
    for (k, v) in consts {
        s390.add(k, v)?;
    }
    m.add_submodule(&s390)?;
    Ok(())
}
