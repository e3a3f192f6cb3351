//! `reclaim.Profile` and `reclaim.PROFILES`.

use super::errors::call;
use crate::profile::{PROFILE_NAMES, Profile};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A kernel profile: the switches of one release on one arch (read-only).
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
    /// The profile's name: "4.17", "4.18" or "6.12".
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
    /// Every switch by name, as a dict of plain values.
    fn switches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = &self.0;
        let d = PyDict::new(py);
        d.set_item("pgste_layout", format!("{:?}", p.pgste_layout).to_lowercase())?;
        d.set_item("swp_exclusive", p.swp_exclusive)?;
        d.set_item("forbids_zeropage", format!("{:?}", p.forbids_zeropage))?;
        d.set_item("zero_page_removal", format!("{:?}", p.zero_page_removal))?;
        d.set_item("ttu_young_check", p.ttu_young_check)?;
        d.set_item("vma_has_recency", p.vma_has_recency)?;
        d.set_item("unused_guard", format!("{:?}", p.unused_guard))?;
        d.set_item("try_to_migrate_split", p.try_to_migrate_split)?;
        d.set_item("lazyfree_refcount_check", p.lazyfree_refcount_check)?;
        d.set_item("min_free_kbytes_max", p.min_free_kbytes_max)?;
        d.set_item("new_anon_active", p.new_anon_active)?;
        d.set_item("swapin_activates", p.swapin_activates)?;
        d.set_item("workingset_anon", p.workingset_anon)?;
        d.set_item("references_two_strikes", p.references_two_strikes)?;
        d.set_item("madv_cold_pageout", p.madv_cold_pageout)?;
        d.set_item("uffd_minor", p.uffd_minor)?;
        d.set_item("uffd_wp", p.uffd_wp)?;
        d.set_item("uffd_zeropage_checks_forbids", p.uffd_zeropage_checks_forbids)?;
        d.set_item("uffd_register_vma_find", p.uffd_register_vma_find)?;
        d.set_item("mfill_pte_always_dirty", p.mfill_pte_always_dirty)?;
        d.set_item("uffd_private_shmem_anon", p.uffd_private_shmem_anon)?;
        d.set_item("pg_anon_exclusive", p.pg_anon_exclusive)?;
        d.set_item("zap_unused_reset_clears_nodat", p.zap_unused_reset_clears_nodat)?;
        d.set_item("swapin_exclusive_writable", p.swapin_exclusive_writable)?;
        // the switches derived from the release (Profile's methods, each with its commit)
        d.set_item("mprotect_write_upgrade", p.mprotect_write_upgrade())?;
        d.set_item("uffd_remap_clears_unfeatured", p.uffd_remap_clears_unfeatured())?;
        d.set_item("proactive_reclaim_quarter_batch", p.proactive_reclaim_quarter_batch())?;
        d.set_item("hwpoison_ttu_flag", p.hwpoison_ttu_flag())?;
        d.set_item("migration_entry_ad", p.migration_entry_ad())?;
        d.set_item("vmscan_write_folio_tracepoint", p.vmscan_write_folio_tracepoint())?;
        d.set_item("uffd_features_offered", p.uffd_features_offered())?;
        d.set_item("arch_has_uffd_wp", p.arch_has_uffd_wp())?;
        d.set_item("arch_has_uffd_minor", p.arch_has_uffd_minor())?;
        Ok(d)
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
    Ok(())
}
