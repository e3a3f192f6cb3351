//! Many accesses in one call: a thread's stream of loads and stores, each one
//! [`Kernel::access`], and how the kernel accounted each (`mm_account_fault`: no fault, a minor
//! or a major fault), so that a study of millions of accesses needs no call per access from
//! Python (`Process.access_batch`, `Process.run_workload`, trace replay).

use crate::error::Result;
use crate::fault::Access;
use crate::kernel::Kernel;
use crate::mm::vmstat::Vm;
use crate::uffd::msg::UffdPagefault;

/// How one access of a batch went.
///
/// "Resident" is what /proc/pid/pagemap says before the access: the PTE is present. Hit, minor
/// and major split the completed accesses by whether a page had to be brought in and from
/// where; the other outcomes are [`Access`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Outcome {
    /// The page was resident: no page had to be brought in. The access may still have taken a
    /// fault that brings none in (the kernel counts those in `min_flt`): the s390 young/dirty
    /// emulation of `handle_pte_fault`, or a write-protect fault (`do_wp_page`).
    Hit = 0,
    /// The page was not resident and a fault brought it in without I/O: `do_anonymous_page`
    /// (first touch, zero page), `do_swap_page` from the swap cache, `do_read_fault` /
    /// `do_shared_fault` from the shmem page cache.
    Minor = 1,
    /// A fault read the page from the swap device: `do_swap_page` (or `shmem_swapin_folio`)
    /// returned `VM_FAULT_MAJOR`, counted in `pgmajfault`.
    Major = 2,
    /// `handle_userfault` parked the thread (`VM_FAULT_RETRY`); a batch stops after it.
    Userfault = 3,
    /// SIGSEGV: no VMA or the VMA forbids the access.
    Sigsegv = 4,
    /// SIGBUS (`VM_FAULT_SIGBUS`).
    Sigbus = 5,
    /// `VM_FAULT_OOM`.
    Oom = 6,
}

impl Outcome {
    pub const COUNT: usize = 7;
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Hit,
        Outcome::Minor,
        Outcome::Major,
        Outcome::Userfault,
        Outcome::Sigsegv,
        Outcome::Sigbus,
        Outcome::Oom,
    ];
    /// The names, by code.
    pub const NAMES: [&'static str; Outcome::COUNT] =
        ["hit", "minor", "major", "userfault", "sigsegv", "sigbus", "oom"];

    pub fn name(self) -> &'static str {
        Outcome::NAMES[self as usize]
    }
}

/// Accesses counted by [`Outcome`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OutcomeCounts(pub [u64; Outcome::COUNT]);

impl OutcomeCounts {
    #[inline]
    pub fn add(&mut self, o: Outcome) {
        self.0[o as usize] += 1;
    }

    #[inline]
    pub fn get(&self, o: Outcome) -> u64 {
        self.0[o as usize]
    }

    /// Accesses counted.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Accesses to a page that was not resident and that a fault brought in: minor + major.
    pub fn misses(&self) -> u64 {
        self.get(Outcome::Minor) + self.get(Outcome::Major)
    }

    /// `misses / total` (0 for no accesses).
    pub fn miss_ratio(&self) -> f64 {
        let t = self.total();
        if t == 0 { 0.0 } else { self.misses() as f64 / t as f64 }
    }
}

/// Where a batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchEnd {
    /// Every access ran.
    Completed,
    /// Access `index` (0-based, of this call) parked the thread on a userfault with `msg` of
    /// context `uffd`; the accesses after it did not run.
    Parked { index: usize, uffd: u32, msg: UffdPagefault },
}

impl Kernel {
    /// [`Kernel::access`] and how the kernel accounted it ([`Outcome`]).
    pub fn access_accounted(
        &mut self,
        pid: u32,
        tid: u32,
        addr: u64,
        write: bool,
        value: u64,
    ) -> Result<(Outcome, Access)> {
        self.mm(pid)?;
        let before = self.pte_before(pid, addr);
        self.access_accounted_pte(pid, tid, addr, write, value, before, None)
    }

    /// The PTE an access of `addr` starts from (the empty PTE where no page table covers it).
    /// `pid` must be alive.
    #[inline]
    pub(crate) fn pte_before(&self, pid: u32, addr: u64) -> u64 {
        self.pte_at(pid, addr).unwrap_or(self.arch().pte_none_val())
    }

    /// [`Kernel::access_accounted`] for a caller that already read the PTE (`before`), and
    /// knows its slot if `slot` is given ([`Kernel::access_in_slot`]).
    #[inline]
    pub(crate) fn access_accounted_pte(
        &mut self,
        pid: u32,
        tid: u32,
        addr: u64,
        write: bool,
        value: u64,
        before: u64,
        slot: Option<usize>,
    ) -> Result<(Outcome, Access)> {
        let majflt = self.vmstat.get(Vm::pgmajfault);
        let a = self.access_in_slot(pid, tid, addr, write, value, slot)?;
        let o = match a {
            Access::Done { .. } if self.vmstat.get(Vm::pgmajfault) != majflt => Outcome::Major,
            Access::Done { .. } if self.arch().pte_present(before) => Outcome::Hit,
            Access::Done { .. } => Outcome::Minor,
            Access::Blocked { .. } => Outcome::Userfault,
            Access::Segv { .. } => Outcome::Sigsegv,
            Access::Bus => Outcome::Sigbus,
            Access::Oom => Outcome::Oom,
        };
        Ok((o, a))
    }

    /// Run `accesses` (address, store?, value stored) by thread `tid` of `pid` in order, each
    /// one [`Kernel::access`], and hand each outcome and value (read or stored; 0 unless the
    /// access completed) to `out`. Stops after an access that parks the thread on a userfault:
    /// a parked thread issues nothing more. An error (no such process, the thread is parked
    /// already) comes before any access ran.
    pub fn access_batch(
        &mut self,
        pid: u32,
        tid: u32,
        accesses: impl IntoIterator<Item = (u64, bool, u64)>,
        mut out: impl FnMut(Outcome, u64),
    ) -> Result<BatchEnd> {
        self.mm(pid)?;
        for (index, (addr, write, value)) in accesses.into_iter().enumerate() {
            let (o, a) = self.access_accounted(pid, tid, addr, write, value)?;
            match a {
                Access::Done { value } => out(o, value),
                Access::Blocked { uffd, msg } => {
                    out(o, 0);
                    return Ok(BatchEnd::Parked { index, uffd, msg });
                }
                _ => out(o, 0),
            }
        }
        Ok(BatchEnd::Completed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::mm::mmap::MapKind;
    use crate::testutil::kernel;

    /// The outcome of one access, found by looking at the page before and the counters after.
    fn one_by_one(k: &mut Kernel, pid: u32, addr: u64, write: bool, value: u64) -> (Outcome, u64) {
        let present = k.pte_at(pid, addr).is_some_and(|p| k.arch().pte_present(p));
        let maj = k.vmstat.get(Vm::pgmajfault);
        let a = k.access(pid, 0, addr, write, value).unwrap();
        match a {
            Access::Done { value } if k.vmstat.get(Vm::pgmajfault) > maj => (Outcome::Major, value),
            Access::Done { value } if present => (Outcome::Hit, value),
            Access::Done { value } => (Outcome::Minor, value),
            Access::Segv { .. } => (Outcome::Sigsegv, 0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_is_the_same_accesses_one_by_one() {
        let (mut a, mut b) = (kernel("4.18"), kernel("4.18"));
        // (page, store?, value): 4096 pages, 8 MiB of memory: reclaim runs; one access in 500
        // is outside the VMA (page None)
        let mut rng = crate::sim::rng::Rng::new(3);
        let accesses: Vec<_> =
            (0..6000u64).map(|i| ((i % 500 != 7).then(|| rng.below(4096)), rng.chance(0.7), i)).collect();
        let mut outs = [Vec::new(), Vec::new()];
        for (k, out) in [(&mut a, 0), (&mut b, 1)] {
            let pid = k.spawn("t", false).unwrap();
            let base = k.mmap(pid, 4096 * 4096, MapKind::Anon, false, None).unwrap();
            let acc: Vec<_> = accesses.iter().map(|&(p, w, v)| (p.map_or(0x1000, |p| base + p * 4096), w, v)).collect();
            if out == 0 {
                let end = k.access_batch(pid, 0, acc, |o, v| outs[0].push((o, v))).unwrap();
                assert_eq!(end, BatchEnd::Completed);
            } else {
                for (x, w, v) in acc {
                    let r = one_by_one(k, pid, x, w, v);
                    outs[1].push(r);
                }
            }
        }
        assert_eq!(outs[0], outs[1]);
        assert_eq!(a.log.hash(), b.log.hash());
        assert_eq!(a.vmstat, b.vmstat);
        let mut c = OutcomeCounts::default();
        outs[0].iter().for_each(|(o, _)| c.add(*o));
        assert!(c.get(Outcome::Hit) > 0 && c.get(Outcome::Minor) > 0 && c.get(Outcome::Major) > 0, "{c:?}");
        assert_eq!(c.get(Outcome::Sigsegv), 12);
        assert_eq!(c.get(Outcome::Major), a.vmstat.get(Vm::pgmajfault));
        a.check_invariants().unwrap();
    }

    /// `handle_userfault` reports `vmf->real_address` with UFFD_FEATURE_EXACT_ADDRESS (6.12):
    /// the faulting byte on x86_64 (CR2), only the page on s390x (arch/s390/mm/fault.c
    /// `get_fault_address`: `teid.addr * PAGE_SIZE`), as a real s390x 6.12 guest shows.
    #[test]
    fn exact_address_is_the_byte_on_x86_64_and_the_page_on_s390x() {
        use crate::arch::Arch;
        use crate::profile::{Profile, uffd_features::EXACT_ADDRESS};
        for (arch, want) in [(Arch::X86_64, 0x18), (Arch::S390x, 0)] {
            let mut k = Kernel::new(Profile::get("6.12", arch).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
            let pid = k.spawn("t", false).unwrap();
            let base = k.mmap(pid, 4 * 4096, MapKind::Anon, false, None).unwrap();
            let u = k.userfaultfd(pid).unwrap();
            k.uffdio_api(u, crate::uffd::ioctl::UFFD_API, EXACT_ADDRESS).unwrap();
            k.uffdio_register(u, base, 4 * 4096, crate::uffd::ioctl::UFFDIO_REGISTER_MODE_MISSING).unwrap();
            let Access::Blocked { msg, .. } = k.access(pid, 0, base + 0x18, false, 0).unwrap() else {
                panic!("no userfault on {arch:?}")
            };
            assert_eq!(msg.address, base + want, "{arch:?}");
        }
    }

    #[test]
    fn a_userfault_stops_the_batch_and_a_parked_thread_is_refused() {
        let mut k = kernel("4.18");
        let pid = k.spawn("t", false).unwrap();
        let base = k.mmap(pid, 16 * 4096, MapKind::Anon, false, None).unwrap();
        let u = k.userfaultfd(pid).unwrap();
        k.uffdio_api(u, crate::uffd::ioctl::UFFD_API, 0).unwrap();
        k.uffdio_register(u, base + 8 * 4096, 8 * 4096, crate::uffd::ioctl::UFFDIO_REGISTER_MODE_MISSING).unwrap();
        let acc = (0..16u64).map(|i| (base + i * 4096, true, i));
        let mut n = 0;
        let end = k.access_batch(pid, 0, acc.clone(), |_, _| n += 1).unwrap();
        let BatchEnd::Parked { index, msg, .. } = end else { panic!("{end:?}") };
        assert_eq!((index, n, msg.address), (8, 9, base + 8 * 4096));
        let before = k.log.hash();
        let e = k.access_batch(pid, 0, acc, |_, _| n += 1).unwrap_err();
        assert!(matches!(e, Error::ThreadBlocked(_)), "{e}");
        assert_eq!((n, k.log.hash()), (9, before));
    }
}
