//! `/proc/meminfo` (fs/proc/meminfo.c, `meminfo_proc_show`).

use crate::kernel::Kernel;
use crate::vmscan::lru::LruList;

impl Kernel {
    /// The `/proc/meminfo` lines the model has, in KiB and in the kernel's order: MemTotal
    /// (`totalram_pages`, the managed pages), MemFree, Active(anon), Inactive(anon),
    /// Unevictable, SwapTotal, SwapFree. Models `meminfo_proc_show` (fs/proc/meminfo.c, v4.18
    /// and v6.12 alike for these lines).
    pub fn meminfo(&self) -> [(&'static str, u64); 7] {
        let kib = |pages: u64| pages * 4;
        let swap_total = self.swap.total() as u64;
        let swap_free = swap_total - self.swap.inuse() as u64;
        [
            ("MemTotal", kib(self.mem.managed())),
            ("MemFree", kib(self.mem.nr_free())),
            ("Active(anon)", kib(self.lru.size(LruList::ActiveAnon))),
            ("Inactive(anon)", kib(self.lru.size(LruList::InactiveAnon))),
            ("Unevictable", kib(self.lru.size(LruList::Unevictable))),
            ("SwapTotal", kib(swap_total)),
            ("SwapFree", kib(swap_free)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{kernel, proc_with_pages};

    fn line(k: &crate::Kernel, name: &str) -> u64 {
        k.meminfo().iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn meminfo_counts_written_anon_pages_and_swapped_slots() {
        let mut k = kernel("4.18");
        let free0 = line(&k, "MemFree");
        let swap_free0 = line(&k, "SwapFree");
        assert_eq!(line(&k, "SwapTotal"), swap_free0, "no swap used at boot");
        assert!(line(&k, "MemTotal") >= free0);
        let (_, _) = proc_with_pages(&mut k, false, 16);
        let anon = line(&k, "Active(anon)") + line(&k, "Inactive(anon)");
        assert_eq!(anon, 16 * 4, "16 written anonymous pages are on the anon LRU lists");
        assert!(line(&k, "MemFree") <= free0 - 16 * 4);
        let reclaimed = k.reclaim(16);
        assert!(reclaimed > 0);
        let swapped = swap_free0 - line(&k, "SwapFree");
        assert!(swapped > 0, "reclaimed anonymous pages took swap slots");
        assert_eq!(line(&k, "Active(anon)") + line(&k, "Inactive(anon)") + swapped, anon);
    }
}
