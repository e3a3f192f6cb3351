//! The reverse map (mm/rmap.c): which PTEs map a page, and the page's mapcount bookkeeping.
//!
//! `rmap_walk` visits, for an anon page, every VMA linked to the page's anon_vma that covers the
//! page's index, and for a shmem page every VMA of the file's `i_mmap` that covers it; in each
//! such VMA `page_vma_mapped_walk` checks the one PTE at `vma_address(page, vma)` and yields
//! it if it is present and maps the page.

pub mod referenced;

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vm;

/// One mapping of a page found by the rmap walk (`struct page_vma_mapped_walk` when it returns
/// true: the VMA, the address and the PTE, "with the PTL held").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mapping {
    pub pid: u32,
    pub vma: u32,
    pub addr: u64,
    /// Index of the PTE slot in the mm's page tables.
    pub idx: usize,
}

impl Kernel {
    /// `page_add_new_anon_rmap` + `__SetPageSwapBacked`: file a fresh anon page under the VMA's
    /// anon_vma at the VMA's linear index of `addr`; it is mapped once and exclusive.
    pub(crate) fn page_add_new_anon_rmap(&mut self, pfn: u32, vma: u32, addr: u64) {
        let av = self.anon_vma_prepare(vma);
        let index = self.vma(vma).pgoff_of(addr);
        let f = &mut self.mem.frames[pfn as usize];
        f.mapping = av + 1;
        f.index = index;
        f.mapcount = 1;
        f.set(pg::PAGE_MAPPING_ANON | pg::PG_SWAPBACKED | pg::PG_UPTODATE | pg::PG_ANON_EXCLUSIVE);
    }

    /// `page_add_anon_rmap` / `page_add_file_rmap` / `page_dup_rmap`: one more mapping.
    #[inline]
    pub(crate) fn page_add_rmap(&mut self, pfn: u32) {
        self.mem.frames[pfn as usize].mapcount += 1;
    }

    /// `page_remove_rmap`: one mapping less; when the last goes, an mlocked page is no longer
    /// mlocked (`clear_page_mlock`) and returns to an evictable list.
    pub(crate) fn page_remove_rmap(&mut self, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        debug_assert!(f.mapcount > 0, "page_remove_rmap of unmapped page {pfn}");
        f.mapcount -= 1;
        if f.mapcount == 0 {
            f.clear(pg::PG_ANON_EXCLUSIVE);
            if f.test(pg::PG_MLOCKED) {
                self.clear_page_mlock(pfn);
            }
        }
    }

    /// The VMAs the rmap must look at for `pfn`, and the address of the page in each
    /// (`rmap_walk_anon` over the anon_vma, `rmap_walk_file` over `i_mmap`).
    pub(crate) fn rmap_vmas(&self, pfn: u32, out: &mut Vec<(u32, u64)>) {
        out.clear();
        let f = &self.mem.frames[pfn as usize];
        if f.mapping == 0 {
            return;
        }
        let list = if f.anon() {
            &self.anon_vmas[(f.mapping - 1) as usize].vmas
        } else {
            match self.files.get((f.mapping - 1) as usize) {
                Some(Some(a)) => &a.i_mmap,
                _ => return,
            }
        };
        for &id in list {
            if let Some(Some(v)) = self.vmas.get(id as usize) {
                if let Some(addr) = v.address_of(f.index) {
                    out.push((id, addr));
                }
            }
        }
    }

    /// `page_vma_mapped_walk` for one VMA: the PTE at `addr` if it is present and maps `pfn`.
    pub(crate) fn page_vma_mapped(&self, pfn: u32, vma: u32, addr: u64) -> Option<Mapping> {
        let pid = self.vma(vma).mm;
        let mm = self.mmx(pid);
        let idx = mm.pt.pte_index(addr)?;
        let pte = mm.pt.pte(idx);
        let arch = self.arch();
        if arch.pte_present(pte) && arch.pte_pfn(pte) == pfn { Some(Mapping { pid, vma, addr, idx }) } else { None }
    }

    /// Every PTE that maps `pfn`, in rmap-walk order.
    pub fn rmap_mappings(&self, pfn: u32) -> Vec<Mapping> {
        let mut vmas = Vec::new();
        self.rmap_vmas(pfn, &mut vmas);
        vmas.iter().filter_map(|&(v, a)| self.page_vma_mapped(pfn, v, a)).collect()
    }

    /// `rmap_walk(page, rwc)`: call `rmap_one` for each mapping until it returns false or
    /// `done` (the mapcount reached zero, for try_to_unmap). Returns false if `rmap_one`
    /// stopped the walk.
    pub(crate) fn rmap_walk(
        &mut self,
        pfn: u32,
        mut rmap_one: impl FnMut(&mut Kernel, Mapping) -> bool,
        stop_when_unmapped: bool,
    ) -> bool {
        let mut vmas = std::mem::take(&mut self.rmap_scratch);
        self.rmap_vmas(pfn, &mut vmas);
        let mut completed = true;
        for &(v, a) in &vmas {
            let Some(m) = self.page_vma_mapped(pfn, v, a) else {
                continue;
            };
            if !rmap_one(self, m) {
                completed = false;
                break;
            }
            if stop_when_unmapped && !self.mem.frames[pfn as usize].mapped() {
                break;
            }
        }
        self.rmap_scratch = vmas;
        completed
    }

    /// `mark_page_accessed` (4.x / `folio_mark_accessed`): a second reference activates an
    /// inactive page; the first only sets PG_referenced.
    pub(crate) fn mark_page_accessed(&mut self, pfn: u32) {
        let f = &self.mem.frames[pfn as usize];
        if !f.test(pg::PG_ACTIVE) && !f.test(pg::PG_UNEVICTABLE) && f.test(pg::PG_REFERENCED) && f.test(pg::PG_LRU) {
            self.activate_page(pfn);
            self.mem.frames[pfn as usize].clear(pg::PG_REFERENCED);
        } else if !f.test(pg::PG_REFERENCED) {
            self.mem.frames[pfn as usize].set(pg::PG_REFERENCED);
        }
    }

    /// Whether any mapping of `pfn` is in a VM_LOCKED VMA (`try_to_munlock`'s question).
    pub(crate) fn mapped_in_locked_vma(&self, pfn: u32) -> bool {
        self.rmap_mappings(pfn).iter().any(|m| self.vma(m.vma).flags & vm::VM_LOCKED != 0)
    }
}
