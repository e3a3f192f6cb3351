//! shmem objects (mm/shmem.c): the page cache of a shmem inode, shared by every mapping.
//!
//! A shmem page is swap-backed (it lives on the anon LRU lists), holds one reference for the
//! page cache, and is filed by (address_space, index). When reclaimed, `shmem_writepage`
//! replaces the page-cache entry by its swap entry; a later fault swaps it back into the cache.

use crate::error::{Errno, Error, Result};
use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::{AddressSpace, CacheEntry};

impl Kernel {
    /// `shmem_file_setup` (mm/shmem.c, 4.17 and 6.12; also `shmem_kernel_file_setup` for
    /// `shmem_zero_setup`'s "dev/zero"): a new shmem object of `pages` pages.
    pub fn shmem_create(&mut self, name: &str, pages: u64) -> u32 {
        self.files.push(Some(AddressSpace {
            name: name.to_string(),
            pages: Default::default(),
            i_mmap: Vec::new(),
            size_pages: pages,
        }));
        (self.files.len() - 1) as u32
    }

    pub fn file(&self, id: u32) -> Result<&AddressSpace> {
        match self.files.get(id as usize) {
            Some(Some(f)) => Ok(f),
            _ => Err(Error::errno(Errno::EINVAL, "shmem", format!("no shmem object {id}"))),
        }
    }

    pub(crate) fn filex(&self, id: u32) -> &AddressSpace {
        self.files[id as usize].as_ref().expect("live shmem object")
    }

    pub(crate) fn filex_mut(&mut self, id: u32) -> &mut AddressSpace {
        self.files[id as usize].as_mut().expect("live shmem object")
    }

    /// `shmem_add_to_page_cache` (mm/shmem.c, 4.17 and 6.12): file page `pfn` at `index` (the
    /// cache holds a reference: `folio_ref_add(folio, nr)`), PG_swapbacked and uptodate.
    pub(crate) fn shmem_add_to_page_cache(&mut self, file: u32, index: u64, pfn: u32) {
        self.mem.set_index(pfn, index);
        self.mem.set_mapping(pfn, file + 1);
        let f = &mut self.mem.frames[pfn as usize];
        f.set(pg::PG_SWAPBACKED | pg::PG_UPTODATE);
        f.clear(pg::PAGE_MAPPING_ANON);
        self.mem.inc_refcount(pfn);
        self.filex_mut(file).pages.insert(index, CacheEntry::Page(pfn));
    }

    /// Drop page-cache page `index` of `file` and its cache reference (mm/shmem.c
    /// `shmem_undo_range` → `truncate_inode_folio` for a page that no PTE maps any more), or
    /// free its swap entry (`shmem_free_swap` → `free_swap_and_cache`, 4.17 and 6.12).
    pub(crate) fn shmem_delete_from_page_cache(&mut self, file: u32, index: u64) {
        match self.filex_mut(file).pages.remove(&index) {
            Some(CacheEntry::Page(pfn)) => {
                self.mem.set_mapping(pfn, 0);
                self.put_page(pfn);
            }
            Some(CacheEntry::Swap(off)) => {
                self.free_swap_and_cache(off);
            }
            None => {}
        }
    }

    /// Punch `[start, end)` page indices out of `file` (mm/shmem.c `shmem_fallocate
    /// (FALLOC_FL_PUNCH_HOLE)`, 4.17 and 6.12: `unmap_mapping_range(mapping, unmap_start, 1 +
    /// unmap_end - unmap_start, 0); shmem_truncate_range(…); /* No need to unmap again:
    /// hole-punching leaves COWed pages */`): unmap the page-cache pages from every mapping
    /// (private COW copies and their swap entries stay: `even_cows` 0), then drop the pages
    /// and swap entries of the object (`shmem_undo_range`). Dropping the whole object (its last
    /// mapping gone) goes the same way. Simplification: uffd-wp markers in the range are
    /// dropped (`full`), as the truncation's `unmap_mapping_folio` does for a mapped folio.
    pub(crate) fn shmem_punch(&mut self, file: u32, start: u64, end: u64) {
        let vmas = self.filex(file).i_mmap.clone();
        for id in vmas {
            let v = self.vma(id).clone();
            let lo = start.max(v.pgoff);
            let hi = end.min(v.pgoff + v.pages());
            if lo < hi {
                let a = v.start + ((lo - v.pgoff) << 12);
                let b = v.start + ((hi - v.pgoff) << 12);
                self.zap_page_range_details(id, a, b, true, false);
            }
        }
        let idx: Vec<u64> = self.filex(file).pages.range(start..end).map(|(k, _)| *k).collect();
        for i in idx {
            self.shmem_delete_from_page_cache(file, i);
        }
    }

    /// Drop a shmem object whose last mapping is gone (the memfd is closed).
    pub(crate) fn shmem_release_if_unused(&mut self, file: u32) {
        if self.filex(file).i_mmap.is_empty() {
            let size = self.filex(file).size_pages;
            self.shmem_punch(file, 0, size);
            self.files[file as usize] = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::fault::Access;
    use crate::mm::madvise::Advice;
    use crate::mm::mmap::MapKind;
    use crate::testutil::kernel;

    #[test]
    fn madv_remove_punches_the_shmem_page_but_leaves_a_private_mappings_cow_copy() {
        // mm/shmem.c shmem_fallocate (4.17, 6.12): unmap_mapping_range(…, 0) then
        // shmem_truncate_range: "hole-punching leaves COWed pages"; 6.12 zap_pte_range
        // should_zap_folio / should_zap_cows keep anon folios and swap entries
        for profile in ["4.17", "6.12"] {
            let mut k = kernel(profile);
            let pid = k.spawn("p", false).unwrap();
            let s = k.mmap(pid, 2 * 4096, MapKind::Shmem, true, None).unwrap();
            let file = k.vma(k.vma_lookup(pid, s).unwrap()).file.unwrap();
            let p = k.mmap(pid, 2 * 4096, MapKind::Shmem, false, Some((file, 0))).unwrap();
            k.access(pid, 0, s, true, 5).unwrap();
            k.access(pid, 0, s + 4096, true, 6).unwrap();
            // page 0 of the private mapping is a COW copy, page 1 maps the shmem page
            k.access(pid, 0, p, true, 7).unwrap();
            assert_eq!(k.access(pid, 0, p + 4096, false, 0).unwrap(), Access::Done { value: 6 });
            k.madvise(pid, s, 2 * 4096, Advice::Remove).unwrap();
            assert_eq!(
                k.access(pid, 0, p, false, 0).unwrap(),
                Access::Done { value: 7 },
                "{profile}: the COW copy stays"
            );
            assert_eq!(k.access(pid, 0, p + 4096, false, 0).unwrap(), Access::Done { value: 0 }, "{profile}: punched");
            assert_eq!(k.access(pid, 0, s, false, 0).unwrap(), Access::Done { value: 0 }, "{profile}: punched");
            k.check_invariants().unwrap();
        }
    }
}
