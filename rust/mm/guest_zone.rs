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
//!
//! Of the pages others held, the guest's tmpfs files (its initramfs unpacked into a tmpfs
//! rootfs) are not reserved: they are shmem pages on the anon LRU lists, which the guest's
//! reclaim can swap out for the process ([`GuestTmpfs`]).

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mm::page::{Watermarks, pg, pg::PG_RESERVED};

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

/// The guest's tmpfs pages when the workload started: `pages` shmem pages in the page cache
/// and on the LRU (`nr_shmem` less the mlocked ones), `active` of them on the active list
/// (as `/proc/meminfo`'s `Active(anon)` has them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestTmpfs {
    pub pages: u64,
    pub active: u64,
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

    /// Fill a tmpfs file of `t.pages` pages, as the guest's initramfs was written into its
    /// rootfs before the workload: `shmem_write_begin` → `shmem_get_folio(SGP_WRITE)` allocates
    /// each folio, `shmem_add_to_page_cache` (PG_swapbacked, the cache's reference) and
    /// `folio_add_lru`, `shmem_write_end` dirties it (mm/shmem.c 6.12); `t.active` of them
    /// (the first) start on the active list, where the guest's later reads
    /// (`folio_mark_accessed` in `shmem_file_read_iter`) put them. No PTE maps them and no
    /// mapping holds the file, so they stay in the page cache until reclaim swaps them out
    /// (`shmem_writepage`). Call it on a fresh kernel after [`Kernel::set_guest_zone`], before
    /// the workload: the pages are the oldest on their lists. Counts no event but the
    /// allocations. Returns the shmem object. Fails (EINVAL) when `active > pages` or the
    /// pages would take the zone below its high watermark.
    pub fn add_guest_tmpfs(&mut self, t: GuestTmpfs) -> Result<u32> {
        let free = self.mem.nr_free();
        if t.active > t.pages {
            return Err(Error::invalid(format!("the guest's tmpfs had {} active pages of {}", t.active, t.pages)));
        }
        if t.pages.saturating_add(self.mem.wmark.high) >= free {
            return Err(Error::invalid(format!(
                "the guest's {} tmpfs pages do not fit above the high watermark {} in {free} free pages",
                t.pages, self.mem.wmark.high
            )));
        }
        let file = self.shmem_create("rootfs", t.pages);
        for index in 0..t.pages {
            let Some(pfn) = self.mem.take() else {
                return Err(Error::invalid("the free list ran out while filling the guest's tmpfs"));
            };
            self.vmstat.inc(crate::mm::vmstat::Vm::pgalloc_normal);
            self.shmem_add_to_page_cache(file, index, pfn);
            self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
            if index < t.active {
                self.mem.frames[pfn as usize].set(pg::PG_ACTIVE);
            }
            self.lru_cache_add(pfn);
            self.put_page(pfn);
        }
        Ok(file)
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
    fn guest_tmpfs_pages_are_oldest_shmem_on_the_lru_and_reclaim_swaps_them_out() {
        // mm/shmem.c 6.12 shmem_writepage: an unmapped shmem folio on the inactive anon list
        // goes to swap like an anon one
        let mut k = kernel(1024);
        k.set_guest_zone(GuestZone { held: 100, min: 20, low: 25, high: 30 }).unwrap();
        let free = k.mem.nr_free();
        k.add_guest_tmpfs(GuestTmpfs { pages: 300, active: 200 }).unwrap();
        assert_eq!(k.mem.nr_free(), free - 300);
        let gauge = |k: &Kernel, name: &str| k.vmstat().into_iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(gauge(&k, "nr_shmem"), 300);
        assert_eq!((gauge(&k, "nr_active_anon"), gauge(&k, "nr_inactive_anon")), (200, 100));
        assert_eq!(k.vm_event(crate::mm::vmstat::Vm::pgactivate), 0, "placed, not activated");
        k.check_invariants().unwrap();
        let pid = k.spawn("p", false).unwrap();
        let base = k.mmap(pid, 2048 * 4096, MapKind::Anon, false, None).unwrap();
        for i in 0..2048u64 {
            k.access(pid, 0, base + i * 4096, true, i + 1).unwrap();
        }
        k.check_invariants().unwrap();
        // the inactive ones went first (the oldest on the inactive list); the active ones stay
        // while the inactive list is not low and no refault activated a page (6.12
        // prepare_scan_control: may_deactivate stays 0, shrink_list skips the active list)
        assert!(
            gauge(&k, "nr_shmem") <= 200,
            "reclaim swapped the inactive tmpfs pages out: {}",
            gauge(&k, "nr_shmem")
        );
        assert!(k.vm_event(crate::mm::vmstat::Vm::pswpout) >= 100);
    }

    #[test]
    fn guest_tmpfs_that_does_not_fit_is_einval() {
        let mut k = kernel(1024);
        assert!(k.add_guest_tmpfs(GuestTmpfs { pages: 10, active: 11 }).is_err());
        assert!(k.add_guest_tmpfs(GuestTmpfs { pages: 1020, active: 0 }).is_err());
        assert_eq!(k.mem.nr_free(), 1023, "a refused call changes nothing");
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
