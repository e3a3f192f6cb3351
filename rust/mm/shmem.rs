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
    /// `shmem_file_setup`: a new shmem object of `pages` pages.
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

    /// `shmem_add_to_page_cache`: file page `pfn` at `index` (the cache holds a reference).
    pub(crate) fn shmem_add_to_page_cache(&mut self, file: u32, index: u64, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        f.mapping = file + 1;
        f.set_index(index);
        f.set(pg::PG_SWAPBACKED | pg::PG_UPTODATE);
        f.clear(pg::PAGE_MAPPING_ANON);
        f.refcount += 1;
        self.filex_mut(file).pages.insert(index, CacheEntry::Page(pfn));
    }

    /// Drop page-cache page `index` of `file` and its cache reference (`shmem_undo_range` for a
    /// page that no PTE maps any more).
    pub(crate) fn shmem_delete_from_page_cache(&mut self, file: u32, index: u64) {
        match self.filex_mut(file).pages.remove(&index) {
            Some(CacheEntry::Page(pfn)) => {
                self.mem.frames[pfn as usize].mapping = 0;
                self.put_page(pfn);
            }
            Some(CacheEntry::Swap(off)) => {
                self.free_swap_and_cache(off);
            }
            None => {}
        }
    }

    /// Punch `[start, end)` page indices out of `file` (`shmem_fallocate(PUNCH_HOLE)` /
    /// `shmem_truncate_range`): unmap the pages from every mapping, then drop them and their
    /// swap entries.
    pub(crate) fn shmem_punch(&mut self, file: u32, start: u64, end: u64) {
        let vmas = self.filex(file).i_mmap.clone();
        for id in vmas {
            let v = self.vma(id).clone();
            let lo = start.max(v.pgoff);
            let hi = end.min(v.pgoff + v.pages());
            if lo < hi {
                let a = v.start + ((lo - v.pgoff) << 12);
                let b = v.start + ((hi - v.pgoff) << 12);
                self.zap_page_range(id, a, b, true);
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
