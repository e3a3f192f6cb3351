//! `reclaim`: an executable model of Linux memory reclaim on s390.
//!
//! The core is a plain Rust library (no PyO3 here); the Python front lives in `py/` behind the
//! `python` cargo feature. See `docs/design.md` in the repository for the layers (`arch`: PTE,
//! PGSTE, DAT; `mm`, `rmap`, `vmscan`, `fault`, `uffd`; `kvm`, `qemu`; `explore`, `study`,
//! `trace`; the services in `sim`; beside the kernel, the invariant checks in `invariants` and
//! snapshots in `snapshot`), the [`Kernel`] context, profiles and their switches, and
//! what one step is.
// `unsafe` is denied everywhere but in `sim::prefetch` (a cache hint that cannot fault).
#![deny(unsafe_code)]

pub mod arch;
pub mod error;
pub mod explore;
pub mod fault;
pub mod files;
pub mod fs;
pub mod hostmem;
pub mod invariants;
pub mod kernel;
pub mod kernel_state;
pub mod kvm;
pub mod mm;
pub mod named;
pub mod profile;
pub mod qemu;
pub mod rmap;
pub mod sched;
pub mod sim;
pub mod snapshot;
pub mod study;
pub mod trace;
pub mod uffd;
pub mod units;
pub mod vmscan;

#[cfg(feature = "python")]
mod py;

pub use error::{Errno, Error, Result};
pub use kernel::Kernel;
pub use profile::Profile;

/// Helpers for the unit tests of every module.
#[cfg(test)]
pub(crate) mod testutil {
    use crate::arch::Arch;
    use crate::kernel::Kernel;
    use crate::mm::mmap::MapKind;
    use crate::profile::Profile;

    /// A kernel of `profile` with 8 MiB of memory and 8 MiB of swap.
    pub fn kernel(profile: &str) -> Kernel {
        Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), 8 << 20, 8 << 20, 1).unwrap()
    }

    /// A process with `pages` of private anonymous memory, every page written with its index + 1.
    pub fn proc_with_pages(k: &mut Kernel, kvm: bool, pages: u64) -> (u32, u64) {
        let pid = k.spawn("test", kvm).unwrap();
        let a = k.mmap(pid, pages * 4096, MapKind::Anon, false, None).unwrap();
        for i in 0..pages {
            let r = k.access(pid, 0, a + i * 4096, true, i + 1).unwrap();
            assert_eq!(r, crate::fault::Access::Done { value: i + 1 });
        }
        k.check_invariants().unwrap();
        (pid, a)
    }

    /// A kernel of `profile` whose one-page process has that page swapped out: (kernel, pid,
    /// address).
    pub fn swapped_out(profile: &str) -> (Kernel, u32, u64) {
        let mut k = kernel(profile);
        let (pid, a) = proc_with_pages(&mut k, false, 1);
        for _ in 0..8 {
            if k.arch().is_swap_pte(k.pte_at(pid, a).unwrap()) {
                break;
            }
            k.reclaim(8);
        }
        assert!(k.arch().is_swap_pte(k.pte_at(pid, a).unwrap()), "{profile}: swapped out");
        (k, pid, a)
    }
}
