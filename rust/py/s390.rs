//! `reclaim.s390`: the PTE and PGSTE value types, swap entries and ESSA.

use super::convert::arg;
use super::errors::call;
use crate::arch::s390::essa;
use crate::arch::s390::pgste::{Pgste, PgsteLayout};
use crate::arch::s390::pte::{self as p, Pte};
use crate::arch::{Arch, SwpFormat};
use crate::error::Error;
use crate::profile::Profile;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// A page-table entry value in its arch's format (s390x unless made by an x86_64 kernel).
/// `Pte(0x400).none()`; predicates and modifiers carry the kernel's names without the `pte_`
/// prefix; modifiers return a new value.
#[pyclass(name = "Pte", module = "reclaim.s390", frozen, eq, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyPte {
    pub v: u64,
    /// The arch and, for a swap PTE on x86_64, the release's layout.
    pub swp: SwpFormat,
}

impl PyPte {
    pub fn s390(p: Pte) -> PyPte {
        PyPte { v: p.val(), swp: SwpFormat { arch: Arch::S390x, x86_offset_inverted: true } }
    }
    fn with(&self, v: u64) -> PyPte {
        PyPte { v, swp: self.swp }
    }
    fn s(&self) -> Pte {
        Pte(self.v)
    }
    fn s390_only(&self, f: impl Fn(Pte) -> bool) -> bool {
        self.swp.arch == Arch::S390x && f(self.s())
    }
}

#[pymethods]
impl PyPte {
    #[new]
    /// `profile` picks the release's swap-entry layout (x86_64 4.x profiles: the pre-L1TF
    /// one); without it a swap PTE is read in the v4.19+ layout.
    #[pyo3(signature = (value, arch = "s390x", profile = None))]
    fn new(#[pyo3(from_py_with = arg::value)] value: u64, arch: &str, profile: Option<&str>) -> PyResult<Self> {
        let swp = call(|| match profile {
            Some(n) => Ok(Profile::by_names(n, arch)?.swp_format()),
            None => Ok(SwpFormat { arch: Arch::parse(arch)?, x86_offset_inverted: true }),
        })?;
        Ok(PyPte { v: value, swp })
    }

    /// The empty PTE (`_PAGE_INVALID`).
    #[classmethod]
    fn empty(_cls: &Bound<'_, PyType>) -> Self {
        PyPte::s390(Pte::NONE)
    }

    /// `mk_pte(pfn, prot)`: a present PTE (young, as s390's mk_pte_phys makes it).
    #[classmethod]
    fn mk(
        _cls: &Bound<'_, PyType>,
        #[pyo3(from_py_with = arg::pfn)] pfn: u64,
        #[pyo3(from_py_with = arg::prot)] prot: u64,
    ) -> PyResult<Self> {
        if pfn >= 1 << 52 {
            return call(|| Err(Error::invalid(format!("pfn {pfn:#x} does not fit in a PTE (52 bits)"))));
        }
        Ok(PyPte::s390(Pte::mk(pfn, prot)))
    }

    /// The raw u64.
    #[getter]
    fn value(&self) -> u64 {
        self.v
    }
    /// "s390x" or "x86_64".
    #[getter]
    fn arch(&self) -> &'static str {
        self.swp.arch.name()
    }
    fn __int__(&self) -> u64 {
        self.v
    }
    fn __index__(&self) -> u64 {
        self.v
    }
    fn __repr__(&self) -> String {
        let a = if self.swp.arch == Arch::S390x { String::new() } else { format!(", {}", self.swp.arch.name()) };
        format!("Pte({:#x}{a}: {})", self.v, self.swp.decode_pte(self.v))
    }
    /// `pte_none`: the entry is empty (s390: exactly `_PAGE_INVALID`, 0x400).
    fn none(&self) -> bool {
        self.swp.arch.pte_none(self.v)
    }
    /// `pte_present`: the entry maps a page (s390: the software `_PAGE_PRESENT` bit, set also while
    /// an old PTE has the hardware invalid bit).
    fn present(&self) -> bool {
        self.swp.arch.pte_present(self.v)
    }
    /// `pte_swap`: the entry is a swap entry (s390: `_PAGE_PROTECT` set, `_PAGE_PRESENT` clear).
    fn swap(&self) -> bool {
        self.swp.arch.is_swap_pte(self.v)
    }
    /// `pte_young`: the page was referenced since the PTE was last made old (s390: `_PAGE_YOUNG`).
    fn young(&self) -> bool {
        self.swp.arch.pte_young(self.v)
    }
    /// `pte_dirty`: the page was written through this PTE (s390: `_PAGE_DIRTY`).
    fn dirty(&self) -> bool {
        self.swp.arch.pte_dirty(self.v)
    }
    /// `pte_write`: the mapping allows writes (s390: the software `_PAGE_WRITE` bit).
    fn write(&self) -> bool {
        self.swp.arch.pte_write(self.v)
    }
    /// s390's software read bit (x86 has none: False).
    fn read(&self) -> bool {
        self.s390_only(|p| p.read())
    }
    /// `pte_special`: no struct page behind the entry, e.g. the zero page (s390: `_PAGE_SPECIAL`).
    fn special(&self) -> bool {
        self.swp.arch.pte_special(self.v)
    }
    /// `pte_soft_dirty`: written since soft-dirty tracking was last reset (s390: `_PAGE_SOFT_DIRTY`).
    fn soft_dirty(&self) -> bool {
        self.swp.arch.pte_soft_dirty(self.v)
    }
    /// `pte_unused`: the value carries `_PAGE_UNUSED`, set only on the old value `ptep_xchg_commit`
    /// returns when the PGSTE usage state is UNUSED (x86_64: always False).
    fn unused(&self) -> bool {
        self.swp.arch.pte_unused(self.v)
    }
    /// `pte_uffd_wp` (always False on s390).
    fn uffd_wp(&self) -> bool {
        self.swp.arch.pte_uffd_wp(self.v)
    }
    /// `pte_protnone` (NUMA hinting): present and not readable (`_PAGE_READ` clear), as the
    /// s390 kernel tests it (x86_64: False).
    fn protnone(&self) -> bool {
        self.s390_only(|p| p.protnone())
    }
    /// The s390 hardware invalid bit (I).
    fn hw_invalid(&self) -> bool {
        self.s390_only(|p| p.hw_invalid())
    }
    /// The s390 hardware protect bit (P).
    fn hw_protect(&self) -> bool {
        self.s390_only(|p| p.hw_protect())
    }
    /// `pte_pfn`: the page frame number the entry maps.
    fn pfn(&self) -> u64 {
        match self.swp.arch {
            Arch::S390x => self.s().pfn(),
            Arch::X86_64 => crate::arch::x86::Pte(self.v).pfn(),
        }
    }
    /// `pte_mkold`: the PTE made old (s390: `_PAGE_YOUNG` cleared and `_PAGE_INVALID` set, so the next
    /// access faults).
    fn mkold(&self) -> Self {
        self.with(self.swp.arch.pte_mkold(self.v))
    }
    /// `pte_mkyoung`: the PTE made young (s390: `_PAGE_YOUNG` set, and `_PAGE_INVALID` cleared if
    /// readable).
    fn mkyoung(&self) -> Self {
        self.with(self.swp.arch.pte_mkyoung(self.v))
    }
    /// `pte_mkdirty`: the PTE made dirty (s390: `_PAGE_DIRTY` and `_PAGE_SOFT_DIRTY` set, and
    /// `_PAGE_PROTECT` cleared if writable).
    fn mkdirty(&self) -> Self {
        self.with(self.swp.arch.pte_mkdirty(self.v))
    }
    /// `pte_mkclean`: the PTE made clean (s390: `_PAGE_DIRTY` cleared and `_PAGE_PROTECT` set, so the
    /// next write faults).
    fn mkclean(&self) -> Self {
        self.with(self.swp.arch.pte_mkclean(self.v))
    }
    /// `pte_wrprotect`: the PTE made read-only (s390: `_PAGE_WRITE` cleared and `_PAGE_PROTECT` set).
    fn wrprotect(&self) -> Self {
        self.with(self.swp.arch.pte_wrprotect(self.v))
    }
    /// `pte_mkwrite`: the PTE made writable (s390: `_PAGE_WRITE` set, and `_PAGE_PROTECT` cleared if
    /// dirty).
    fn mkwrite(&self) -> Self {
        self.with(self.swp.arch.pte_mkwrite(self.v))
    }
    /// `pte_mkspecial`: the PTE marked special (s390: `_PAGE_SPECIAL` set).
    fn mkspecial(&self) -> Self {
        self.with(self.swp.arch.pte_mkspecial(self.v))
    }
    /// `pte_modify` (s390).
    fn modify(&self, #[pyo3(from_py_with = arg::prot)] prot: u64) -> PyResult<Self> {
        Ok(self.with(self.s().modify(prot).val()))
    }
    /// `__swp_type`: the swap device (type) of a swap PTE (s390: 5 bits at bit 2).
    fn swp_type(&self) -> u32 {
        self.swp.swp_type(self.v)
    }
    /// `__swp_offset`: the slot on the swap device of a swap PTE (s390: 52 bits at bit 12).
    fn swp_offset(&self) -> u64 {
        self.swp.swp_offset(self.v)
    }
    /// `pte_swp_exclusive` (v6.0+): the swapped page was exclusive to this mm (s390:
    /// `_PAGE_SWP_EXCLUSIVE`, aliasing `_PAGE_LARGE`).
    fn swp_exclusive(&self) -> bool {
        self.swp.arch.pte_swp_exclusive(self.v)
    }
    /// `pte_swp_mkexclusive` (v6.0+): the swap PTE marked exclusive.
    fn swp_mkexclusive(&self) -> Self {
        self.with(self.swp.arch.pte_swp_mkexclusive(self.v))
    }
    /// `pte_swp_soft_dirty`: the soft-dirty bit kept in a swap PTE (s390: `_PAGE_SOFT_DIRTY`).
    fn swp_soft_dirty(&self) -> bool {
        self.swp.arch.pte_swp_soft_dirty(self.v)
    }
    /// `pte_swp_uffd_wp`: the userfaultfd write-protect marker of a swap PTE (always False on s390,
    /// which has no `_PAGE_UFFD_WP` bit; x86_64: `_PAGE_SWP_UFFD_WP`).
    fn swp_uffd_wp(&self) -> bool {
        self.swp.arch.pte_swp_uffd_wp(self.v)
    }
}

/// `mk_swap_pte(type, offset)`.
#[pyfunction]
fn mk_swap_pte(
    #[pyo3(from_py_with = arg::swp_type)] swp_type: u32,
    #[pyo3(from_py_with = arg::offset)] offset: u64,
) -> PyResult<PyPte> {
    call(|| {
        if swp_type >= 32 {
            return Err(Error::invalid(format!("swap type {swp_type} is outside 0..31 (5 bits)")));
        }
        if offset >= 1 << 52 {
            return Err(Error::invalid(format!("swap offset {offset} is outside 0..2**52-1 (52 bits)")));
        }
        Ok(PyPte::s390(Pte::mk_swap(swp_type, offset)))
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
    fn new(#[pyo3(from_py_with = arg::value)] value: u64, profile: &str) -> PyResult<Self> {
        Ok(PyPgste { v: Pgste(value), layout: layout_for(profile)? })
    }
    /// The raw u64.
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
    /// `_PGSTE_GPS_ZERO`: the page is logically zero (its content was discarded and reads back as
    /// zeroes).
    fn zero(&self) -> bool {
        self.v.zero()
    }
    /// `_PGSTE_GPS_NODAT`: the guest does not use the page for DAT tables (ESSA SET_STABLE_NODAT).
    fn nodat(&self) -> bool {
        self.v.nodat()
    }
    /// `PGSTE_UC_BIT`: the host user (QEMU) dirtied the page, for migration (user dirty); its
    /// position depends on the layout.
    fn uc(&self) -> bool {
        self.v.uc(self.layout)
    }
    /// `PGSTE_IN_BIT`: notify KVM when the PTE is invalidated (IPTE notify); position per layout.
    fn in_(&self) -> bool {
        self.v.in_bit(self.layout)
    }
    /// `PGSTE_VSIE_BIT`: the page is referenced in a shadow (VSIE) table; position per layout.
    fn vsie(&self) -> bool {
        self.v.vsie(self.layout)
    }
    /// `PGSTE_GR_BIT`: the guest referenced the page (guest reference bit).
    fn gr(&self) -> bool {
        self.v.gr()
    }
    /// `PGSTE_GC_BIT`: the guest changed the page (guest change bit).
    fn gc(&self) -> bool {
        self.v.gc()
    }
    /// `PGSTE_HR_BIT`: the host referenced the page (host reference bit).
    fn hr(&self) -> bool {
        self.v.hr()
    }
    /// `PGSTE_HC_BIT`: the host changed the page (host change bit).
    fn hc(&self) -> bool {
        self.v.hc()
    }
}

/// The outcome of ESSA on one page (`pgste_perform_essa`).
#[pyclass(name = "EssaResult", module = "reclaim.s390", frozen, get_all)]
pub struct PyEssa {
    /// The orc performed.
    pub orc: u32,
    /// The page's PGSTE before the ESSA.
    pub old_pgste: PyPgste,
    /// The page's PGSTE after it (usage state and `_PGSTE_GPS_NODAT` / `_PGSTE_GPS_ZERO` set by the orc).
    pub new_pgste: PyPgste,
    /// 1 if the page goes on the CBRL (its host PTE is invalid and it may be discarded).
    pub res: u32,
    /// (Process.essa) KVM intercepted the instruction and processed the CBRL.
    pub intercepted: bool,
    /// (Process.essa) swap PTEs the CBRL processing zapped.
    pub zapped: u32,
    /// (Process.essa) entries left on the vCPU's CBRL.
    pub cbrl_len: u32,
    /// (Process.essa) the program interruption KVM injected instead (6 = PGM_SPECIFICATION:
    /// orc 7 in a VM without facility 147); None when the ESSA was performed.
    pub program_interrupt: Option<u16>,
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
    if orc.is_instance_of::<pyo3::types::PyInt>() {
        // any int: one in range is the orc, any other (negative, huge) the same ArgumentError
        return match orc.extract::<u32>() {
            Ok(n) => call(|| essa::check_orc(n)),
            Err(_) => Err(super::errors::to_pyerr(Error::invalid(format!(
                "ESSA orc {orc} is outside 0..{} (pgste_perform_essa returns -EINVAL)",
                essa::ESSA_MAX
            )))),
        };
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
        program_interrupt: None,
    }
}

/// `pgste_perform_essa(pte, pgste, orc)` on values: what ESSA does to the PGSTE of a page whose
/// host PTE is `pte`. `orc` is 0..7 or a name like `"set_unused"`.
#[pyfunction(name = "essa")]
fn essa_values(pte: &PyPte, pgste: &PyPgste, orc: &Bound<'_, PyAny>) -> PyResult<PyEssa> {
    let orc = orc_arg(orc)?;
    let r = call(|| essa::pgste_perform_essa(pte.s(), pgste.v, orc))?;
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
    m.add("ESSA_ORC_NAMES", essa::ORC_NAMES.to_vec())?;
    Ok(())
}
