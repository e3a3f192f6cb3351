//! `reclaim.Process`: one process (an mm) of a kernel, and the access results.

use super::batch::PyBatchResult;
use super::convert::{Shared, arg, pairs_dict, size_arg, with};
use super::errors::{call, to_pyerr};
use super::s390::{PyEssa, PyPgste, PyPte, essa_result, orc_arg};
use super::uffd::{PyUserfaultfd, describe, pagefault_to_py};
use crate::arch::s390::pgste::Pgste;
use crate::error::Error;
use crate::fault::Access;
use crate::mm::madvise::Advice;
use crate::mm::mmap::MapKind;
use crate::uffd::{UffdMsg, UffdPagefault};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The outcome of a read or write.
#[pyclass(name = "AccessResult", module = "reclaim", frozen)]
pub struct PyAccess {
    /// "completed", "blocked", "sigsegv", "sigbus" or "oom".
    #[pyo3(get)]
    pub kind: &'static str,
    /// The value read (or written) when completed, else None.
    #[pyo3(get)]
    pub value: Option<u64>,
    /// The userfaultfd and the page fault message the thread is parked on, when blocked.
    parked: Option<(u32, UffdPagefault)>,
}

#[pymethods]
impl PyAccess {
    /// The userfault message (an `UffdPagefault`) the thread is parked on, when blocked.
    #[getter]
    fn event(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.parked.map(|(u, m)| pagefault_to_py(py, u, m)).transpose()
    }
    /// The access completed.
    #[getter]
    fn completed(&self) -> bool {
        self.kind == "completed"
    }
    /// The thread is parked on a userfault.
    #[getter]
    fn blocked(&self) -> bool {
        self.kind == "blocked"
    }
    /// "SIGSEGV" or "SIGBUS" if the access raised one, else None.
    #[getter]
    fn signal(&self) -> Option<&'static str> {
        match self.kind {
            "sigsegv" => Some("SIGSEGV"),
            "sigbus" => Some("SIGBUS"),
            _ => None,
        }
    }
    fn __repr__(&self) -> String {
        match (self.kind, self.value, &self.parked) {
            ("completed", Some(v), _) => format!("AccessResult(completed, value={v:#x})"),
            ("blocked", _, Some((_, m))) => format!("AccessResult(blocked on {})", describe(&UffdMsg::Pagefault(*m))),
            (k, _, _) => format!("AccessResult({k})"),
        }
    }
}

pub fn access_to_py(a: Access) -> PyAccess {
    match a {
        Access::Done { value } => PyAccess { kind: "completed", value: Some(value), parked: None },
        Access::Blocked { uffd, msg } => PyAccess { kind: "blocked", value: None, parked: Some((uffd, msg)) },
        Access::Segv { .. } => PyAccess { kind: "sigsegv", value: None, parked: None },
        Access::Bus => PyAccess { kind: "sigbus", value: None, parked: None },
        Access::Oom => PyAccess { kind: "oom", value: None, parked: None },
    }
}

/// A process of a kernel.
#[pyclass(name = "Process", module = "reclaim", frozen)]
pub struct PyProcess {
    pub k: Shared,
    pub pid: u32,
}

/// userfaultfd features: an int mask, or names (one or a list) for `uffd::features::parse`.
fn feature_arg(f: &Bound<'_, PyAny>) -> PyResult<u64> {
    if f.is_instance_of::<pyo3::types::PyInt>() {
        return f.extract::<u64>().map_err(|_| {
            to_pyerr(Error::invalid(format!("userfaultfd features {f} is not a 64-bit mask of UFFD_FEATURE_* bits")))
        });
    }
    let names: Vec<String> = if let Ok(s) = f.extract::<String>() { vec![s] } else { f.extract()? };
    call(|| crate::uffd::features::parse(&names))
}

/// A protection: an int mask of the kernel's PROT_READ (1), PROT_WRITE (2), PROT_EXEC (4)
/// (PROT_NONE is 0), or a string of the letters "r", "w", "x" in any order ("rw", "r", "rx";
/// "-" is ignored, so "r-x" works) or "none".
fn prot_arg(p: &Bound<'_, PyAny>) -> PyResult<u64> {
    use crate::mm::mmap::{PROT_EXEC, PROT_READ, PROT_WRITE};
    if p.is_instance_of::<pyo3::types::PyInt>() {
        return p.extract::<u64>().map_err(|_| {
            to_pyerr(Error::invalid(format!(
                "prot {p} is not a mask of PROT_READ (1), PROT_WRITE (2) and PROT_EXEC (4)"
            )))
        });
    }
    let Ok(s) = p.extract::<String>() else {
        return Err(to_pyerr(Error::invalid(format!(
            "prot must be a string like \"rw\", \"r\" or \"none\", or an int of PROT_* bits, not {p}"
        ))));
    };
    let t = s.trim().to_ascii_lowercase();
    if t == "none" {
        return Ok(0);
    }
    let mut bits = 0;
    for c in t.chars() {
        let b = match c {
            'r' => PROT_READ,
            'w' => PROT_WRITE,
            'x' => PROT_EXEC,
            '-' => continue,
            _ => {
                return Err(to_pyerr(Error::invalid(format!(
                    "prot {s:?}: use the letters r, w, x (e.g. \"rw\", \"r\") or \"none\""
                ))));
            }
        };
        bits |= b;
    }
    if bits == 0 {
        return Err(to_pyerr(Error::invalid(format!("prot {s:?} names no protection; say \"none\" for PROT_NONE"))));
    }
    Ok(bits)
}

#[pymethods]
impl PyProcess {
    /// The process id (the mm's pid in the event log).
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }
    /// The name given to `Kernel.spawn` (the task's comm).
    #[getter]
    fn name(&self, py: Python<'_>) -> PyResult<String> {
        with(py, &self.k, |k| Ok(k.comm(self.pid)?.to_string()))
    }
    /// A KVM host process (`mm_has_pgste`).
    #[getter]
    fn kvm(&self, py: Python<'_>) -> PyResult<bool> {
        with(py, &self.k, |k| k.mm_has_pgste(self.pid))
    }
    /// Whether the process still exists (False once it exited and its mm was torn down).
    #[getter]
    fn alive(&self, py: Python<'_>) -> PyResult<bool> {
        with(py, &self.k, |k| Ok(k.mm(self.pid).is_ok()))
    }

    /// `mmap(NULL, length, prot, ...)`; kind "anon" or "shmem"; `prot` "rw" (default), "r",
    /// "none", ... or an int of PROT_* bits; returns the address.
    #[pyo3(signature = (length, kind = "anon", shared = false, prot = None))]
    fn mmap(
        &self,
        py: Python<'_>,
        length: &Bound<'_, PyAny>,
        kind: &str,
        shared: bool,
        prot: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        use crate::mm::mmap::{PROT_READ, PROT_WRITE};
        let prot = prot.map(prot_arg).transpose()?.unwrap_or(PROT_READ | PROT_WRITE);
        let len = size_arg(length, "length")?;
        let kind = match kind {
            "anon" => MapKind::Anon,
            "shmem" => MapKind::Shmem,
            other => {
                return Err(to_pyerr(Error::invalid(format!("kind must be \"anon\" or \"shmem\", not {other:?}"))));
            }
        };
        with(py, &self.k, |k| k.mmap_prot(self.pid, len, prot, kind, shared, None))
    }

    /// `mprotect(addr, length, prot)`: `prot` as for mmap. EINVAL for an unaligned address,
    /// ENOMEM if part of the range is not mapped.
    fn mprotect(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: &Bound<'_, PyAny>,
        prot: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let len = size_arg(length, "length")?;
        let prot = prot_arg(prot)?;
        with(py, &self.k, |k| k.mprotect(self.pid, addr, len, prot))
    }

    /// `mremap(old_addr, old_length, new_length, MREMAP_MAYMOVE if maymove)`: returns the
    /// address of the mapping afterwards (moved when it cannot grow in place).
    #[pyo3(signature = (old_addr, old_length, new_length, maymove = true))]
    fn mremap(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::old_addr)] old_addr: u64,
        old_length: &Bound<'_, PyAny>,
        new_length: &Bound<'_, PyAny>,
        maymove: bool,
    ) -> PyResult<u64> {
        let old_len = size_arg(old_length, "old_length")?;
        let new_len = size_arg(new_length, "new_length")?;
        with(py, &self.k, |k| k.mremap(self.pid, old_addr, old_len, new_len, maymove))
    }

    /// `munmap(addr, length)`.
    fn munmap(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let len = size_arg(length, "length")?;
        with(py, &self.k, |k| k.munmap(self.pid, addr, len))
    }

    /// `mlock(addr, length)`.
    fn mlock(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let len = size_arg(length, "length")?;
        with(py, &self.k, |k| k.mlock(self.pid, addr, len))
    }

    /// `munlock(addr, length)`.
    fn munlock(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let len = size_arg(length, "length")?;
        with(py, &self.k, |k| k.munlock(self.pid, addr, len))
    }

    /// `madvise(addr, length, advice)`; advice one of "normal", "random", "sequential",
    /// "willneed", "dontneed", "free", "remove", "cold", "pageout", or "hwpoison"
    /// (MADV_HWPOISON, x86_64 only: each present anonymous page is unmapped with a hwpoison
    /// entry and the next access to it is SIGBUS; EINVAL on s390, which has no
    /// CONFIG_MEMORY_FAILURE).
    fn madvise(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: &Bound<'_, PyAny>,
        advice: &str,
    ) -> PyResult<()> {
        let len = size_arg(length, "length")?;
        with(py, &self.k, |k| k.madvise(self.pid, addr, len, Advice::parse(advice)?))
    }

    /// `fork()`: the child process.
    fn fork(&self, py: Python<'_>) -> PyResult<PyProcess> {
        let pid = with(py, &self.k, |k| k.fork(self.pid))?;
        Ok(PyProcess { k: self.k.clone(), pid })
    }

    /// The process exits (`exit_mmap`).
    fn exit(&self, py: Python<'_>) -> PyResult<()> {
        with(py, &self.k, |k| k.exit_mm(self.pid))
    }

    /// Load from `addr` by thread `tid`.
    #[pyo3(signature = (addr, tid = 0))]
    fn read(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        #[pyo3(from_py_with = arg::tid)] tid: u32,
    ) -> PyResult<PyAccess> {
        with(py, &self.k, |k| k.access(self.pid, tid, addr, false, 0)).map(access_to_py)
    }

    /// Store `value` (the page's content tag) at `addr` by thread `tid`.
    #[pyo3(signature = (addr, value, tid = 0))]
    fn write(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        #[pyo3(from_py_with = arg::value)] value: u64,
        #[pyo3(from_py_with = arg::tid)] tid: u32,
    ) -> PyResult<PyAccess> {
        with(py, &self.k, |k| k.access(self.pid, tid, addr, true, value)).map(access_to_py)
    }

    /// Run the accesses `addrs` (a numpy uint64 array) by thread `tid`, in Rust with the GIL
    /// released: a store where `writes` (a bool array) says so, of `values` (uint64; default:
    /// the page's address). The result has an outcome code and the value read or stored per
    /// access. A userfault parks the thread: the batch stops there (`stopped_at`).
    #[pyo3(signature = (addrs, writes = None, *, tid = 0, values = None))]
    fn access_batch(
        &self,
        py: Python<'_>,
        addrs: &Bound<'_, PyAny>,
        writes: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = arg::tid)] tid: u32,
        values: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyBatchResult> {
        super::batch::access_batch(py, &self.k, self.pid, tid, addrs, writes, values)
    }

    /// `count` accesses by thread `tid` over `length` bytes from `start`, generated in Rust: the
    /// page from `pattern` ("uniform", "zipf[:s]", "sequential", "phased[:fraction:len]"), a
    /// store of the page's address with probability `write_fraction`; seeded. Per-access
    /// arrays only with `arrays=True`. The event log records every fault as usual: mute
    /// per-page events (`Kernel.mute`) for runs of millions of accesses.
    #[pyo3(signature = (pattern = "zipf:0.9", *, start, length, count, write_fraction = 0.3, seed = 0, tid = 0, arrays = false))]
    #[allow(clippy::too_many_arguments)]
    fn run_workload(
        &self,
        py: Python<'_>,
        pattern: &str,
        #[pyo3(from_py_with = arg::start)] start: u64,
        length: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::count)] count: u64,
        write_fraction: f64,
        #[pyo3(from_py_with = arg::seed)] seed: u64,
        #[pyo3(from_py_with = arg::tid)] tid: u32,
        arrays: bool,
    ) -> PyResult<PyBatchResult> {
        let len = size_arg(length, "length")?;
        super::batch::run_workload(py, &self.k, self.pid, tid, pattern, start, len, count, write_fraction, seed, arrays)
    }

    /// The outcome of the last access thread `tid` completed (e.g. after a wake), or None.
    #[pyo3(signature = (tid = 0))]
    fn last_access(&self, py: Python<'_>, #[pyo3(from_py_with = arg::tid)] tid: u32) -> PyResult<Option<PyAccess>> {
        with(py, &self.k, |k| {
            k.mm(self.pid)?;
            Ok(k.last_access(self.pid, tid).map(access_to_py))
        })
    }

    /// Whether thread `tid` is parked on a userfault.
    #[pyo3(signature = (tid = 0))]
    fn is_blocked(&self, py: Python<'_>, #[pyo3(from_py_with = arg::tid)] tid: u32) -> PyResult<bool> {
        with(py, &self.k, |k| k.thread_blocked(self.pid, tid))
    }

    /// What /proc/pid/pagemap says of `addr`: "present", "swapped" or "none". A hwpoison entry
    /// is "swapped", as pagemap reports it (PM_SWAP for every swap PTE).
    fn page_state(&self, py: Python<'_>, #[pyo3(from_py_with = arg::addr)] addr: u64) -> PyResult<&'static str> {
        with(py, &self.k, |k| Ok(k.pagemap_entry(self.pid, addr)?.name()))
    }

    /// pagemap states of `length` bytes from `addr` as a numpy uint8 array: 0 none, 1 present,
    /// 2 swapped.
    fn page_states<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        length: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, numpy::PyArray1<u8>>> {
        let len = size_arg(length, "length")?;
        let v = with(py, &self.k, |k| k.pagemap(self.pid, addr, len.div_ceil(4096)))?;
        Ok(numpy::PyArray1::from_vec(py, v.into_iter().map(|s| s as u8).collect()))
    }

    /// The PTE at `addr` (the empty PTE if no page table covers it).
    fn pte(&self, py: Python<'_>, #[pyo3(from_py_with = arg::addr)] addr: u64) -> PyResult<PyPte> {
        with(py, &self.k, |k| {
            k.mm(self.pid)?;
            Ok(PyPte { v: k.pte_at(self.pid, addr & !0xfff).unwrap_or(k.arch().pte_none_val()), swp: k.swp_format() })
        })
    }

    /// The PGSTE at `addr` (KVM processes only).
    fn pgste(&self, py: Python<'_>, #[pyo3(from_py_with = arg::addr)] addr: u64) -> PyResult<PyPgste> {
        with(py, &self.k, |k| Ok(PyPgste { v: Pgste(k.pgste_at(self.pid, addr)?), layout: k.profile().pgste_layout }))
    }

    /// The rss counters: {"MM_FILEPAGES", "MM_ANONPAGES", "MM_SWAPENTS", "MM_SHMEMPAGES"}.
    fn rss<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        pairs_dict(py, &with(py, &self.k, |k| k.rss_stat(self.pid))?)
    }

    /// The VMAs: list of (start, end, [VM_* flag names]).
    fn vmas(&self, py: Python<'_>) -> PyResult<Vec<(u64, u64, Vec<&'static str>)>> {
        with(py, &self.k, |k| k.maps(self.pid))
    }

    /// A userfaultfd for this process, after the UFFDIO_API handshake with `features` (an int
    /// or names like ["EVENT_REMOVE", "THREAD_ID"]).
    #[pyo3(signature = (features = None))]
    fn userfaultfd(&self, py: Python<'_>, features: Option<&Bound<'_, PyAny>>) -> PyResult<PyUserfaultfd> {
        let feats = match features {
            Some(f) => feature_arg(f)?,
            None => 0,
        };
        let (id, offered) = with(py, &self.k, |k| {
            let id = k.userfaultfd(self.pid)?;
            let (offered, _) = k.uffdio_api(id, crate::uffd::ioctl::UFFD_API, feats)?;
            Ok((id, offered))
        })?;
        Ok(PyUserfaultfd { k: self.k.clone(), id, pid: self.pid, offered })
    }

    /// The userfaultfds open on this process (not closed, not released by its exit), oldest
    /// first: handles for contexts made before a snapshot, so that a restored kernel's parked
    /// threads can be woken with UFFDIO_COPY, ZEROPAGE or WAKE.
    fn userfaultfds(&self, py: Python<'_>) -> PyResult<Vec<PyUserfaultfd>> {
        let (ids, offered) =
            with(py, &self.k, |k| Ok((k.userfaultfds_of(self.pid)?, k.profile().uffd_features_offered())))?;
        Ok(ids.into_iter().map(|id| PyUserfaultfd { k: self.k.clone(), id, pid: self.pid, offered }).collect())
    }

    /// ESSA with `orc` (0..7 or a name like "set_unused") by vCPU `vcpu` on the guest page at
    /// host address `addr`: what the SIE hardware does (and KVM, when it intercepts).
    #[pyo3(signature = (addr, orc, vcpu = 0))]
    fn essa(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        orc: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = arg::vcpu)] vcpu: u32,
    ) -> PyResult<PyEssa> {
        let orc = orc_arg(orc)?;
        let (r, layout) = with(py, &self.k, |k| Ok((k.essa(self.pid, vcpu, addr, orc)?, k.profile().pgste_layout)))?;
        let mut e = essa_result(orc, r.essa, layout);
        e.intercepted = r.intercepted;
        e.zapped = r.zapped;
        e.cbrl_len = r.cbrl_len as u32;
        e.program_interrupt = r.program_interrupt;
        Ok(e)
    }

    /// Whether the KVM VM of this process offers facility 147 (ESSA_SET_STABLE_NODAT, QEMU's
    /// `cmm-nt`) to its guest; offered by default, as QEMU's host CPU model does. Without it,
    /// ESSA orc 7 gets a specification exception (`EssaResult.program_interrupt`).
    fn set_kvm_facility_147(&self, py: Python<'_>, offered: bool) -> PyResult<()> {
        with(py, &self.k, |k| k.set_kvm_facility_147(self.pid, offered))
    }

    /// KVM processes vCPU `vcpu`'s CBRL (`__gmap_zap` of each entry); returns swap PTEs zapped.
    #[pyo3(signature = (vcpu = 0))]
    fn process_cbrl(&self, py: Python<'_>, #[pyo3(from_py_with = arg::vcpu)] vcpu: u32) -> PyResult<u32> {
        with(py, &self.k, |k| {
            k.mm(self.pid)?;
            Ok(k.process_cbrl(self.pid, vcpu))
        })
    }

    /// DIAG 0x10 over host addresses [start, end): KVM's `gmap_discard`. Returns pages zapped.
    fn diag10(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::start)] start: u64,
        #[pyo3(from_py_with = arg::end)] end: u64,
    ) -> PyResult<u32> {
        with(py, &self.k, |k| k.diag10(self.pid, start, end))
    }

    /// KVM_S390_SET_CMMA_BITS for the page at `addr` (`bits` as GET_CMMA_BITS returns them).
    fn set_cmma_bits(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = arg::addr)] addr: u64,
        #[pyo3(from_py_with = arg::bits)] bits: u8,
    ) -> PyResult<()> {
        with(py, &self.k, |k| k.set_cmma_bits(self.pid, addr, bits))
    }

    /// KVM_S390_GET_CMMA_BITS for the page at `addr`.
    fn get_cmma_bits(&self, py: Python<'_>, #[pyo3(from_py_with = arg::addr)] addr: u64) -> PyResult<u8> {
        with(py, &self.k, |k| k.get_cmma_bits(self.pid, addr))
    }

    /// `s390_enable_skey`: the guest starts using storage keys. Returns zero-page mappings
    /// removed (zapped or unshared, per profile).
    fn enable_skey(&self, py: Python<'_>) -> PyResult<u32> {
        with(py, &self.k, |k| k.enable_skey(self.pid))
    }

    /// Migrate the page at `addr` to another frame (compaction / NUMA); returns the new pfn,
    /// or None if it was not migrated (or every mapping was dropped).
    fn migrate_page(&self, py: Python<'_>, #[pyo3(from_py_with = arg::addr)] addr: u64) -> PyResult<Option<u32>> {
        with(py, &self.k, |k| k.migrate_page(self.pid, addr))
    }

    fn __eq__(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.k, &other.k) && self.pid == other.pid
    }
    fn __hash__(&self) -> u64 {
        self.pid as u64
    }
    fn __repr__(&self) -> String {
        format!("Process(pid={})", self.pid)
    }
}
