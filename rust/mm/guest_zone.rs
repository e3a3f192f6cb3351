//! A zone sized as a real guest reported it: the managed pages, the pages other users already
//! held when a workload started (the kernel's own allocations, the initramfs, other
//! processes) and the zone watermarks, all as `/proc/zoneinfo` gives them. Trace replay
//! against a Linux guest (issue 18) builds the model's one zone from these numbers, so that
//! the model and the guest put the replayed process under the same pressure.
//!
//! The guest's `managed` is what `zone_managed_pages` counts (memblock's reserved memory, the
//! kernel image, is not in it); pages held by others are `managed - nr_free_pages` at the
//! start. The model reserves those frames (`PG_reserved`: never freed, on no LRU, never
//! reclaimed) and takes the guest's `min`/`low`/`high` instead of computing them
//! (`__setup_per_zone_wmarks`, mm/page_alloc.c), since a guest with several zones sums them.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mm::page::{Watermarks, pg::PG_RESERVED};

/// What a guest reported of its memory, in pages (the sums over its zones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestZone {
    /// Pages held by others when the workload starts (`managed - free`).
    pub held: u64,
    /// `min`, `low` and `high` of `/proc/zoneinfo`.
    pub min: u64,
    pub low: u64,
    pub high: u64,
}

impl Kernel {
    /// Take `z.held` free frames out of use (reserved, as the guest's other memory is for the
    /// replayed process) and set the zone watermarks to the guest's. Call it on a fresh
    /// kernel, before any process maps memory. Fails (EINVAL) when the frames are not free or
    /// the watermarks are not `min <= low <= high` below the free pages left.
    pub fn set_guest_zone(&mut self, z: GuestZone) -> Result<()> {
        let free = self.mem.nr_free();
        if z.held >= free {
            return Err(Error::invalid(format!(
                "the guest held {} pages; the model's zone has only {free} free",
                z.held
            )));
        }
        if !(z.min <= z.low && z.low <= z.high && z.high < free - z.held) {
            return Err(Error::invalid(format!(
                "watermarks min {} low {} high {} must rise and stay below the {} free pages",
                z.min,
                z.low,
                z.high,
                free - z.held
            )));
        }
        for _ in 0..z.held {
            let Some(pfn) = self.mem.take() else {
                return Err(Error::invalid("the free list ran out while reserving the guest's pages"));
            };
            self.mem.frames[pfn as usize].flags = PG_RESERVED;
        }
        let kbytes = self.mem.wmark.min_free_kbytes;
        self.mem.wmark = Watermarks { min: z.min, low: z.low, high: z.high, min_free_kbytes: kbytes };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::mm::mmap::MapKind;
    use crate::profile::Profile;

    fn kernel(pages: u64) -> Kernel {
        Kernel::new(Profile::get("6.12", Arch::X86_64).unwrap(), pages * 4096, 4096 * 4096, 0).unwrap()
    }

    #[test]
    fn held_pages_leave_the_free_list_and_the_guest_watermarks_apply() {
        let mut k = kernel(1024);
        let free = k.mem.nr_free();
        k.set_guest_zone(GuestZone { held: 300, min: 20, low: 25, high: 30 }).unwrap();
        assert_eq!(k.mem.nr_free(), free - 300);
        assert_eq!((k.watermarks().min, k.watermarks().low, k.watermarks().high), (20, 25, 30));
        k.mem.check().unwrap();
        // a process that touches every page it can: reclaim runs, and never takes a held page
        let pid = k.spawn("p", false).unwrap();
        let base = k.mmap(pid, 2048 * 4096, MapKind::Anon, false, None).unwrap();
        for i in 0..2048u64 {
            k.access(pid, 0, base + i * 4096, true, i + 1).unwrap();
        }
        k.check_invariants().unwrap();
        let reserved = k.mem.frames.iter().filter(|f| f.test(PG_RESERVED)).count();
        assert_eq!(reserved, 301, "the zero page and the 300 held pages");
        assert!(k.vm_event(crate::mm::vmstat::Vm::pswpout) > 1000);
    }

    #[test]
    fn impossible_guest_numbers_are_einval() {
        let mut k = kernel(1024);
        assert!(k.set_guest_zone(GuestZone { held: 5000, min: 1, low: 2, high: 3 }).is_err());
        assert!(k.set_guest_zone(GuestZone { held: 10, min: 30, low: 20, high: 40 }).is_err());
        assert!(k.set_guest_zone(GuestZone { held: 10, min: 1, low: 2, high: 2000 }).is_err());
        assert_eq!(k.mem.nr_free(), 1023, "a refused call changes nothing");
    }
}
