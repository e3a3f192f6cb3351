//! `/proc/vmstat`: the gauges and event counters (`vmstat_start` in mm/vmstat.c).

use crate::kernel::Kernel;
use crate::mm::page::pg;

impl Kernel {
    /// `/proc/vmstat` as `vmstat_start` lists it (mm/vmstat.c): the gauges first —
    /// nr_free_pages, the LRU list sizes nr_{inactive,active}_{anon,file} and nr_unevictable,
    /// nr_swap_pages (free swap slots, `get_nr_swap_pages`), nr_swapcached (pages in the swap
    /// cache), nr_shmem (shmem pages in their page cache) — then every event counter by its kernel name.
    pub fn vmstat(&self) -> Vec<(&'static str, u64)> {
        let mut out = Vec::with_capacity(64);
        out.push(("nr_free_pages", self.nr_free_pages()));
        out.extend(self.lru_sizes().map(|(l, n)| (l.name(), n)));
        out.push(("nr_swap_pages", (self.swap.total() - self.swap.inuse()) as u64));
        let cached = self.mem.frames.iter().filter(|f| f.test(pg::PG_SWAPCACHE)).count();
        out.push(("nr_swapcached", cached as u64));
        // NR_SHMEM: shmem pages in their page cache (`shmem_add_to_page_cache` adds,
        // `shmem_delete_from_page_cache` and `shmem_writepage` take away; mm/shmem.c 6.12)
        let shmem = (self.files.iter().flatten())
            .flat_map(|f| f.pages.values())
            .filter(|e| matches!(e, crate::mm::CacheEntry::Page(_)))
            .count();
        out.push(("nr_shmem", shmem as u64));
        out.extend(self.vmstat.iter());
        if let Some(z) = self.zones() {
            // the zones' counters (crate::mm::mmzone): PGSCAN_SKIP of DMA32, kcompactd's wakes
            // after a boosted balance_pgdat, and the model's boosts, claims and steals
            out.push(("pgskip_dma32", z.pgskip_dma32));
            out.push(("compact_daemon_wake", z.compact_daemon_wake));
            out.push(("model_watermark_boosts", z.nr_boosts));
            out.push(("model_pageblock_claims", z.nr_claims));
            out.push(("model_page_steals", z.nr_steals));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{kernel, proc_with_pages};

    fn get(v: &[(&str, u64)], name: &str) -> u64 {
        v.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name} missing")).1
    }

    #[test]
    fn vmstat_gauges_follow_reclaim_and_counters_are_listed_once() {
        let mut k = kernel("6.12");
        let (_, _) = proc_with_pages(&mut k, false, 16);
        let before = k.vmstat();
        let slots = get(&before, "nr_swap_pages");
        assert_eq!(get(&before, "nr_free_pages"), k.meminfo()[1].1 / 4, "MemFree and nr_free_pages agree");
        k.reclaim(16);
        let after = k.vmstat();
        let out = get(&after, "pswpout");
        assert!(out > 0, "reclaim swapped pages out");
        assert_eq!(slots - get(&after, "nr_swap_pages"), out, "each page written out takes one slot");
        let mut names: Vec<&str> = after.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "no name twice");
    }
}
