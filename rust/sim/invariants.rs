//! Model invariants, checked by tests after every step and by the explorer: a brute-force
//! recount of everything the kernel keeps incrementally.
//!
//! - rss counters equal a recount of each mm's page tables;
//! - every page's mapcount equals the PTEs that map it, and its refcount equals
//!   mapcount + page-cache / swap-cache references + isolation;
//! - every frame is free, reserved, or accounted for (mapped, in the swap cache or in a shmem
//!   page cache), and every accounted frame is on exactly one LRU list;
//! - LRU list sizes match their members;
//! - each swap slot's count equals the swap PTEs and shmem entries that reference it, and
//!   SWAP_HAS_CACHE is set exactly when a swap-cache page holds the slot;
//! - the rmap walk of every mapped page finds exactly the PTEs the brute-force scan finds.

use crate::kernel::Kernel;
use crate::mm::page::{ZERO_PFN, pg};
use crate::mm::{CacheEntry, MM_SWAPENTS};
use crate::vmscan::lru::LruList;
use std::collections::BTreeMap;

impl Kernel {
    /// Check every invariant; the error names the first violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        let arch = self.arch();
        let nframes = self.mem.frames.len();
        let mut mapcount = vec![0u32; nframes];
        let mut swaprefs: BTreeMap<u32, u32> = BTreeMap::new();
        let mut mappings: BTreeMap<u32, Vec<(u32, u64)>> = BTreeMap::new();
        for m in self.mms.iter().flatten().filter(|m| m.alive) {
            let mut rss = [0i64; 4];
            let mut pts = Vec::new();
            m.pt.for_each_pt(0, u64::MAX, |va, base| pts.push((va, base)));
            let n = arch.geometry().0.pt_entries;
            for (va, base) in pts {
                for i in 0..n {
                    let pte = m.pt.pte(base + i);
                    if arch.pte_none(pte) {
                        continue;
                    }
                    let addr = va + ((i as u64) << 12);
                    if self.vma_lookup(m.pid, addr).is_none() {
                        return Err(format!("pid {} has a PTE {pte:#x} at {addr:#x} outside any VMA", m.pid));
                    }
                    if arch.pte_present(pte) {
                        if arch.pte_unused(pte) {
                            return Err(format!("pid {} stores _PAGE_UNUSED in a present PTE at {addr:#x}", m.pid));
                        }
                        let pfn = arch.pte_pfn(pte);
                        if pfn == ZERO_PFN {
                            continue;
                        }
                        if pfn as usize >= nframes || self.mem.is_free(pfn) {
                            return Err(format!("pid {} maps a free or bogus pfn {pfn} at {addr:#x}", m.pid));
                        }
                        mapcount[pfn as usize] += 1;
                        rss[self.mm_counter(pfn)] += 1;
                        mappings.entry(pfn).or_default().push((m.pid, addr));
                    } else {
                        let off = arch.swp_offset(pte) as u32;
                        if !self.swap.is_valid(off) {
                            return Err(format!("pid {} has a swap PTE with a bad offset {off} at {addr:#x}", m.pid));
                        }
                        *swaprefs.entry(off).or_default() += 1;
                        rss[MM_SWAPENTS] += 1;
                    }
                }
            }
            if rss != m.rss {
                return Err(format!("pid {} rss {:?} but the page tables count {:?}", m.pid, m.rss, rss));
            }
        }
        let mut cache_of: BTreeMap<u32, u32> = BTreeMap::new();
        for f in self.files.iter().flatten() {
            for e in f.pages.values() {
                match e {
                    CacheEntry::Page(p) => *cache_of.entry(*p).or_default() += 1,
                    CacheEntry::Swap(off) => *swaprefs.entry(*off).or_default() += 1,
                }
            }
        }
        let mut on_lru = [0u64; 5];
        for (pfn, f) in self.mem.frames.iter().enumerate() {
            let pfn32 = pfn as u32;
            if f.test(pg::PG_RESERVED) || f.test(pg::PG_BUDDY) {
                continue;
            }
            if self.pinned.contains(&pfn32) {
                continue;
            }
            if f.mapcount != mapcount[pfn] {
                return Err(format!("pfn {pfn}: mapcount {} but {} PTEs map it", f.mapcount, mapcount[pfn]));
            }
            let in_swapcache = f.swap_offset().is_some();
            if in_swapcache != f.test(pg::PG_SWAPCACHE) {
                return Err(format!("pfn {pfn}: PG_swapcache {} but private {}", f.test(pg::PG_SWAPCACHE), f.private));
            }
            if let Some(off) = f.swap_offset() {
                if self.swap.cache_page(off) != Some(pfn32) {
                    return Err(format!("pfn {pfn} says it caches slot {off}, the swap cache disagrees"));
                }
            }
            let pagecache = cache_of.get(&pfn32).copied().unwrap_or(0);
            let isolated = f.test(pg::PG_ISOLATED) as u32;
            let expect = f.mapcount + in_swapcache as u32 + pagecache + isolated;
            if f.refcount != expect {
                return Err(format!(
                    "pfn {pfn}: refcount {} but mapcount {} + swapcache {} + pagecache {} + isolated {} = {expect} (flags {:?})",
                    f.refcount,
                    f.mapcount,
                    in_swapcache as u32,
                    pagecache,
                    isolated,
                    f.flag_names()
                ));
            }
            if expect == 0 {
                return Err(format!("pfn {pfn} is neither free nor accounted for (flags {:?})", f.flag_names()));
            }
            if f.test(pg::PG_LRU) {
                if LruList::of(f) as u8 != f.lru_list {
                    return Err(format!(
                        "pfn {pfn} is on list {} but its flags select {:?}",
                        f.lru_list,
                        LruList::of(f)
                    ));
                }
                on_lru[f.lru_list as usize] += 1;
            } else if !f.test(pg::PG_ISOLATED) {
                return Err(format!("pfn {pfn} is in use but on no LRU list (flags {:?})", f.flag_names()));
            }
        }
        for l in LruList::ALL {
            if self.lru.size(l) != on_lru[l as usize] {
                return Err(format!("{} is {} but {} pages are on it", l.name(), self.lru.size(l), on_lru[l as usize]));
            }
        }
        for off in self.swap.used_slots() {
            let refs = swaprefs.get(&off).copied().unwrap_or(0);
            if self.swap.count(off) != refs {
                return Err(format!("swap slot {off}: count {} but {refs} references", self.swap.count(off)));
            }
            if self.swap.has_cache(off) != self.swap.cache_page(off).is_some() {
                return Err(format!(
                    "swap slot {off}: SWAP_HAS_CACHE {} but cache page {:?}",
                    self.swap.has_cache(off),
                    self.swap.cache_page(off)
                ));
            }
        }
        for (off, refs) in &swaprefs {
            if self.swap.map(*off) == 0 {
                return Err(format!("swap slot {off} is free but {refs} entries reference it"));
            }
        }
        let used = self.swap.used_slots().count() as u32;
        if used != self.swap.inuse() {
            return Err(format!("swap inuse {} but {used} slots are used", self.swap.inuse()));
        }
        for (pfn, maps) in &mappings {
            let mut found: Vec<(u32, u64)> = self.rmap_mappings(*pfn).iter().map(|m| (m.pid, m.addr)).collect();
            let mut want = maps.clone();
            found.sort_unstable();
            want.sort_unstable();
            if found != want {
                return Err(format!("rmap of pfn {pfn} finds {found:x?} but the page tables map it at {want:x?}"));
            }
        }
        Ok(())
    }
}
