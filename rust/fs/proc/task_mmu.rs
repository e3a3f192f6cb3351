//! `/proc/PID/pagemap`, `/proc/PID/maps` and the rss counters of `/proc/PID/status`
//! (fs/proc/task_mmu.c).

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mm::{RSS_NAMES, vm};

/// What pagemap says of one page: `pte_to_pagemap_entry` (fs/proc/task_mmu.c) sets
/// PM_PRESENT for a present PTE and PM_SWAP for any swap PTE (a migration or hwpoison entry
/// or a PTE marker included); neither for an empty one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PageState {
    /// No page: the PTE is empty or no page table covers the address.
    None = 0,
    /// PM_PRESENT.
    Present = 1,
    /// PM_SWAP.
    Swapped = 2,
}

impl PageState {
    /// "none", "present" or "swapped".
    pub fn name(self) -> &'static str {
        match self {
            PageState::None => "none",
            PageState::Present => "present",
            PageState::Swapped => "swapped",
        }
    }
}

/// The most pages one [`Kernel::pagemap`] call reports (1 TiB of address space: a 256 MiB
/// array), as `pagemap_read` reads a bounded buffer at a time.
pub const MAX_PAGEMAP_PAGES: u64 = 1 << 28;

impl Kernel {
    fn page_state_of(&self, pte: Option<u64>) -> PageState {
        let arch = self.arch();
        match pte {
            Some(p) if arch.pte_present(p) => PageState::Present,
            Some(p) if arch.is_swap_pte(p) => PageState::Swapped,
            _ => PageState::None,
        }
    }

    /// `/proc/PID/pagemap` of the page at `addr` (`pagemap_pmd_range` for one PTE).
    pub fn pagemap_entry(&self, pid: u32, addr: u64) -> Result<PageState> {
        self.mm(pid)?;
        Ok(self.page_state_of(self.pte_at(pid, addr & !0xfff)))
    }

    /// Bit 57 of the `/proc/PID/pagemap` entry of the page at `addr`, PM_UFFD_WP
    /// (`pte_to_pagemap_entry`, 6.12 fs/proc/task_mmu.c): a present PTE with `pte_uffd_wp`, a
    /// swap PTE with `pte_swp_uffd_wp`, or a `PTE_MARKER_UFFD_WP` marker (`if
    /// (pte_marker_entry_uffd_wp(entry)) flags |= PM_UFFD_WP;`, which also has PM_SWAP).
    pub fn pagemap_uffd_wp(&self, pid: u32, addr: u64) -> Result<bool> {
        self.mm(pid)?;
        let arch = self.arch();
        Ok(match self.pte_at(pid, addr & !0xfff) {
            Some(p) if arch.pte_present(p) => arch.pte_uffd_wp(p),
            Some(p) => self.pte_swp_uffd_wp_any(p),
            None => false,
        })
    }

    /// `/proc/PID/pagemap` of `pages` pages from the page of `addr`: `pagemap_read`
    /// (fs/proc/task_mmu.c) walks the page tables and reports each page; pages no page table
    /// covers are [`PageState::None`] (`pagemap_pte_hole`).
    pub fn pagemap(&self, pid: u32, addr: u64, pages: u64) -> Result<Vec<PageState>> {
        self.mm(pid)?;
        let addr = addr & !0xfff;
        if pages > MAX_PAGEMAP_PAGES {
            return Err(Error::invalid(format!(
                "{pages} pages is more than one call reports ({MAX_PAGEMAP_PAGES}, 1 TiB): read the range in parts"
            )));
        }
        let end = addr
            .checked_add(pages << 12)
            .ok_or_else(|| Error::invalid(format!("{addr:#x} + {pages} pages wraps around the address space")))?;
        let mut out = vec![PageState::None; pages as usize];
        let n = self.arch().geometry().0.pt_entries;
        let mm = self.mmx(pid);
        mm.pt.for_each_pt(addr, end, |va, base| {
            for i in 0..n {
                let a = va + ((i as u64) << 12);
                if a < addr || a >= end {
                    continue;
                }
                out[((a - addr) >> 12) as usize] = self.page_state_of(Some(mm.pt.pte(base + i)));
            }
        });
        Ok(out)
    }

    /// `/proc/PID/maps`: each VMA as (start, end, its VM_* flag names), in address order.
    pub fn maps(&self, pid: u32) -> Result<Vec<(u64, u64, Vec<&'static str>)>> {
        Ok(self
            .mm(pid)?
            .vmas
            .values()
            .map(|&id| {
                let v = self.vma(id);
                (v.start, v.end, vm::names(v.flags))
            })
            .collect())
    }

    /// The mm's rss counters by name (`get_mm_counter` of MM_FILEPAGES, MM_ANONPAGES,
    /// MM_SWAPENTS, MM_SHMEMPAGES, as `task_mem` reports them in /proc/PID/status).
    pub fn rss_stat(&self, pid: u32) -> Result<[(&'static str, i64); 4]> {
        let rss = self.mm(pid)?.rss;
        Ok(std::array::from_fn(|i| (RSS_NAMES[i], rss[i])))
    }
}

#[cfg(test)]
mod tests {
    use super::PageState;
    use crate::testutil::{kernel, proc_with_pages};

    #[test]
    fn pagemap_reports_present_then_swapped_pages_and_none_past_the_mapping() {
        let mut k = kernel("4.18");
        let (pid, a) = proc_with_pages(&mut k, false, 8);
        let pm = k.pagemap(pid, a, 10).unwrap();
        assert_eq!(&pm[..8], &[PageState::Present; 8]);
        assert_eq!(&pm[8..], &[PageState::None; 2], "past the mapping: pagemap_pte_hole");
        k.reclaim(64);
        let pm = k.pagemap(pid, a, 8).unwrap();
        let swapped = pm.iter().filter(|s| **s == PageState::Swapped).count();
        assert!(swapped > 0, "reclaim left swap PTEs: {pm:?}");
        for (i, s) in pm.iter().enumerate() {
            assert_eq!(*s, k.pagemap_entry(pid, a + i as u64 * 4096 + 7).unwrap(), "page {i}");
        }
    }

    #[test]
    fn pagemap_refuses_unknown_processes_and_oversized_ranges() {
        let mut k = kernel("6.12");
        let (pid, a) = proc_with_pages(&mut k, false, 1);
        assert!(k.pagemap(pid + 100, a, 1).is_err());
        assert!(k.pagemap(pid, a, super::MAX_PAGEMAP_PAGES + 1).is_err());
        assert!(k.pagemap(pid, !0xfff, 2).is_err(), "wraps around");
    }

    #[test]
    fn maps_and_rss_stat_describe_the_written_mapping() {
        let mut k = kernel("6.12");
        let (pid, a) = proc_with_pages(&mut k, false, 4);
        let maps = k.maps(pid).unwrap();
        assert!(maps.iter().any(|(s, e, _)| *s == a && *e == a + 4 * 4096));
        let rss = k.rss_stat(pid).unwrap();
        assert_eq!(rss[1], ("MM_ANONPAGES", 4));
    }
}
