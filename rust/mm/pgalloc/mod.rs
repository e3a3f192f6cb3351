//! Page-table pages out of the memory the page tables map, when chosen
//! ([`Kernel::set_pgtable_pages`]): the kernel's `__pte_alloc` (mm/memory.c) takes a PTE
//! table with `pte_alloc_one` → `__pte_alloc_one` → `pagetable_alloc(GFP_PGTABLE_USER, 0)`
//! (include/asm-generic/pgalloc.h, 6.12), and the upper levels' `__pmd_alloc`/`__pud_alloc`
//! likewise (`pmd_alloc_one`, `pud_alloc_one`): a page of the zone, allocated as any GFP_KERNEL
//! page (it may wake kswapd and reclaim), held until `free_pgtables` frees the table (munmap,
//! exit). By default the model keeps its tables apart from the frames
//! (`Kernel::pte_alloc`): the switch is for the replay oracle, whose guest's process spends
//! one page of its memory on every 512 pages it maps.

use crate::error::{Error, Result};
use crate::kernel::Kernel;

pub mod frames;
pub use frames::PgtablePages;

impl Kernel {
    /// The tables of `pid`'s mm: its page tables and upper tables.
    fn nr_tables(&self, pid: u32) -> usize {
        let pt = &self.mmx(pid).pt;
        pt.nr_page_tables() + pt.nr_upper_tables()
    }

    /// Take the page tables' pages out of the zone's memory from now on (`true`), or keep them
    /// apart from the frames (`false`, the default). Set it on a kernel without processes: the
    /// tables a fault makes afterwards (`Kernel::pte_alloc`) each take a page; a fork's
    /// copies and the KVM and userfaultfd paths' tables stay apart. Fails (EINVAL) once a
    /// process exists.
    pub fn set_pgtable_pages(&mut self, on: bool) -> Result<()> {
        if self.mms.iter().any(Option::is_some) {
            return Err(Error::invalid("set the page tables' pages before any process starts"));
        }
        self.pgtable_pages = on.then(Box::default);
        Ok(())
    }

    /// The page tables' pages, when [`Kernel::set_pgtable_pages`] chose them.
    pub fn pgtable_pages(&self) -> Option<&PgtablePages> {
        self.pgtable_pages.as_deref()
    }

    /// `pte_alloc_one` and the upper levels' `p?d_alloc_one` for the `tables_before..` tables
    /// `pid`'s mm has now: one GFP_KERNEL page each
    /// ([`Gfp::Kernel`](crate::mm::page_alloc::Gfp::Kernel)), PG_reserved while the
    /// table holds it. False when the allocator found no page (the fault's VM_FAULT_OOM).
    pub(crate) fn pgtable_alloc(&mut self, pid: u32, tables_before: usize) -> bool {
        if self.pgtable_pages.is_none() {
            return true;
        }
        for _ in tables_before..self.nr_tables(pid) {
            let Some(pfn) = self.alloc_kernel_page() else { return false };
            if let Some(p) = self.pgtable_pages.as_deref_mut() {
                p.frames.entry(pid).or_default().push(pfn);
            }
        }
        true
    }

    /// `pagetable_free` of the tables `pid`'s mm no longer has (`free_pgtables` after munmap:
    /// `tables_before` were there), or of all its tables (`exit`: `exit_mmap`). A table the
    /// model made without a page (before the switch, a fork's copy) frees none.
    pub(crate) fn pgtable_free(&mut self, pid: u32, tables_before: usize, exit: bool) {
        let now = self.nr_tables(pid);
        let Some(p) = self.pgtable_pages.as_deref_mut() else { return };
        let Some(held) = p.frames.get_mut(&pid) else { return };
        let n = if exit { held.len() } else { tables_before.saturating_sub(now).min(held.len()) };
        let freed: Vec<u32> = held.drain(held.len() - n..).collect();
        for pfn in freed {
            self.free_kernel_page(pfn);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::arch::Arch;
    use crate::kernel::Kernel;
    use crate::mm::mmap::MapKind;
    use crate::profile::Profile;

    fn kernel(pages: u64) -> Kernel {
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).expect("profile"), pages * 4096, 8 << 20, 1)
            .expect("kernel");
        k.set_pgtable_pages(true).expect("fresh kernel");
        k
    }

    /// mm/memory.c `__pte_alloc` → `pte_alloc_one` (include/asm-generic/pgalloc.h, 6.12): the
    /// first touch of each 2 MiB of a mapping takes a PTE table's page out of free memory.
    #[test]
    fn a_fault_in_a_new_2mib_range_takes_a_page_table_page_from_free_memory() {
        let mut k = kernel(4096);
        let pid = k.spawn("p", false).expect("spawn");
        let base = k.mmap(pid, 8 << 20, MapKind::Anon, false, None).expect("mmap");
        k.access(pid, 0, base, true, 1).expect("first touch");
        let tables = k.pgtable_pages().expect("on").nr_pages();
        assert!(tables >= 1, "the first fault made tables: {tables}");
        let free = k.nr_free_pages();
        // a second page of the same table: one frame (the page), no table
        k.access(pid, 0, base + 4096, true, 1).expect("same table");
        assert_eq!(k.nr_free_pages(), free - 1);
        assert_eq!(k.pgtable_pages().expect("on").nr_pages(), tables);
        // the next 2 MiB: the page and its PTE table
        k.access(pid, 0, base + (2 << 20), true, 1).expect("next table");
        assert_eq!(k.nr_free_pages(), free - 3);
        assert_eq!(k.pgtable_pages().expect("on").nr_pages(), tables + 1);
    }

    /// mm/mmap.c `exit_mmap` → `free_pgtables` (6.12): the tables' pages come back at exit.
    #[test]
    fn exit_gives_the_page_tables_pages_back() {
        let mut k = kernel(4096);
        let before = k.nr_free_pages();
        let pid = k.spawn("p", false).expect("spawn");
        let base = k.mmap(pid, 8 << 20, MapKind::Anon, false, None).expect("mmap");
        for i in 0..4u64 {
            k.access(pid, 0, base + (i << 21), true, 1).expect("touch");
        }
        assert!(k.pgtable_pages().expect("on").nr_pages() >= 4);
        k.exit_mm(pid).expect("exit");
        assert_eq!(k.pgtable_pages().expect("on").nr_pages(), 0);
        assert_eq!(k.nr_free_pages(), before);
    }

    /// With the guest's zones a table's page is a GFP_KERNEL one: from DMA32 while it is above
    /// its low watermark, then an unmovable `rmqueue` from DMA (`gfp_migratetype`,
    /// `get_page_from_freelist`, mm/page_alloc.c 6.12.117), given back to the DMA zone's lists
    /// at exit.
    #[test]
    fn with_the_guest_zones_a_table_falls_back_to_an_unmovable_dma_page() {
        use crate::mm::mmzone::{Use, ZoneSpec};
        let mut k = Kernel::new(Profile::get("6.12", Arch::X86_64).expect("profile"), 8192 * 4096, 16384 * 4096, 0)
            .expect("kernel");
        let dma = ZoneSpec { managed: 2304, held: 0, min: 16, low: 20, high: 24, lowmem_reserve: 20 };
        let dma32 = ZoneSpec { managed: 5887, held: 5887 - 100, min: 40, low: 50, high: 60, lowmem_reserve: 0 };
        k.set_guest_zones(dma, dma32, None).expect("zones");
        k.set_pgtable_pages(true).expect("fresh kernel");
        let pid = k.spawn("p", false).expect("spawn");
        let base = k.mmap(pid, 8 << 20, MapKind::Anon, false, None).expect("mmap");
        let mut i = 0;
        while k.mem.nr_free() > k.mem.wmark.low {
            k.access(pid, 0, base + (i << 12), true, 1).expect("touch");
            i += 1;
        }
        let kernel_pages =
            |k: &Kernel| k.zones().expect("zones").dma.uses.iter().filter(|u| **u == Use::Kernel).count();
        assert_eq!(kernel_pages(&k), 0, "the first tables came from DMA32");
        k.access(pid, 0, base + (2 << 20), true, 1).expect("a new 2 MiB range");
        assert_eq!(kernel_pages(&k), 1, "DMA32 at low: the table is an unmovable DMA page");
        k.exit_mm(pid).expect("exit");
        assert_eq!(kernel_pages(&k), 0);
        k.zones().expect("zones").dma.check().expect("DMA lists");
        k.check_invariants().expect("invariants");
    }

    /// Without the switch the tables stay apart from the frames, as every study has them.
    #[test]
    fn by_default_page_tables_take_no_frame() {
        let mut k =
            Kernel::new(Profile::get("6.12", Arch::X86_64).expect("profile"), 4096 * 4096, 8 << 20, 1).expect("kernel");
        let pid = k.spawn("p", false).expect("spawn");
        let base = k.mmap(pid, 8 << 20, MapKind::Anon, false, None).expect("mmap");
        let free = k.nr_free_pages();
        k.access(pid, 0, base, true, 1).expect("touch");
        assert_eq!(k.nr_free_pages(), free - 1);
        assert!(k.pgtable_pages().is_none());
        assert!(k.set_pgtable_pages(true).is_err(), "a process exists");
    }
}
