//! LRU list maintenance of mm/swap.c (`lru_cache_add`, `activate_page`, `deactivate_page`,
//! `mark_page_lazyfree`) and the page side of mlock (mm/mlock.c: `mlock_vma_page`,
//! `clear_page_mlock`).

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vm;
use crate::mm::vmstat::Vm;
use crate::sim::log::Ev;

impl Kernel {
    /// `lru_cache_add` / `folio_add_lru` → `__pagevec_lru_add_fn` (mm/swap.c v4.16..v4.18) /
    /// `lru_add` (mm/swap.c v6.12): put a page on the LRU list its flags select. PG_unevictable
    /// is cleared first (`was_unevictable = folio_test_clear_unevictable(folio)`); an evictable
    /// page that was unevictable counts UNEVICTABLE_PGRESCUED, an mlocked one loses PG_active,
    /// goes to the unevictable list and counts UNEVICTABLE_PGCULLED unless it was unevictable
    /// already (`if (!was_unevictable)`). 4.13's `putback_lru_page` counts the same two events
    /// by `was_unevictable` / `is_unevictable`.
    /// With MGLRU, a page added in a fault is made active first (6.12.117 `folio_add_lru`: "if
    /// (lru_gen_enabled() && !folio_test_unevictable(folio) && lru_gen_in_fault() &&
    /// !(current->flags & PF_MEMALLOC)) folio_set_active(folio);"), so it joins the youngest
    /// generation.
    pub(crate) fn lru_cache_add(&mut self, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        if self.in_lru_fault && !f.test(pg::PG_UNEVICTABLE) {
            f.set(pg::PG_ACTIVE);
        }
        let was_unevictable = f.test(pg::PG_UNEVICTABLE);
        f.clear(pg::PG_UNEVICTABLE);
        if f.test(pg::PG_MLOCKED) {
            f.clear(pg::PG_ACTIVE);
            f.set(pg::PG_UNEVICTABLE);
            if !was_unevictable {
                self.vmstat.inc(Vm::unevictable_pgs_culled);
            }
        } else if was_unevictable {
            self.vmstat.inc(Vm::unevictable_pgs_rescued);
        }
        self.lru.add(&mut self.mem.frames, pfn);
        if self.log.enabled(Ev::LruInsertion) {
            self.trace_mm_lru_insertion(pfn);
        }
    }

    /// `trace_mm_lru_insertion` (include/trace/events/pagemap.h; in `__pagevec_lru_add_fn`
    /// v4.13..v4.18, `lru_add` v6.12, after the page is on its list): the pfn,
    /// `folio_lru_list` (`page_lru`) and `trace_pagemap_flags`. The model has no buffer heads
    /// or PG_mappedtodisk: those flags are never set.
    fn trace_mm_lru_insertion(&mut self, pfn: u32) {
        use crate::sim::log::pagemap_flags as pf;
        let f = &self.mem.frames[pfn as usize];
        let lru = if f.test(pg::PG_UNEVICTABLE) {
            4
        } else {
            2 * (!f.test(pg::PG_SWAPBACKED)) as u64 + f.test(pg::PG_ACTIVE) as u64
        };
        let mut flags = if f.anon() { pf::ANONYMOUS } else { pf::FILE };
        if f.mapped() {
            flags |= pf::MAPPED;
        }
        if f.test(pg::PG_SWAPCACHE) {
            flags |= pf::SWAPCACHE;
        }
        if f.test(pg::PG_SWAPBACKED) {
            flags |= pf::SWAPBACKED;
        }
        self.log(Ev::LruInsertion, 0, 0, 0, pfn as u64, lru, flags);
    }

    /// `update_page_reclaim_stat(lruvec, file, rotated)` (mm/swap.c v4.13..v4.18, called by
    /// `__pagevec_lru_add_fn` and `__activate_page`): `recent_scanned[file]++`, and
    /// `recent_rotated[file]++` when `rotated`. The v5.8 cost model
    /// ([`Profile::scan_balance_by_cost`](crate::profile::Profile)) has no such statistic.
    fn update_page_reclaim_stat(&mut self, pfn: u32, rotated: bool) {
        if self.profile.scan_balance_by_cost {
            return;
        }
        let file = !self.mem.frames[pfn as usize].test(pg::PG_SWAPBACKED) as usize;
        self.lru_recent.scanned[file] += 1;
        if rotated {
            self.lru_recent.rotated[file] += 1;
        }
    }

    /// `lru_cache_add_active_or_unevictable` (mm/swap.c 4.13..4.18) / `folio_add_lru_vma`
    /// (mm/swap.c 6.12): a page faulted into `vma`. New anon pages start active on profiles
    /// with `new_anon_active`; in a locked VMA the page is mlocked (UNEVICTABLE_PGMLOCKED) and
    /// goes to the unevictable list: through `lru_cache_add` with UNEVICTABLE_PGCULLED from
    /// v4.16 ([`Profile::lru_add_culls_unevictable`]; 6.12 `mlock_new_folio` →
    /// `__mlock_new_folio` counts it too), through 4.13's `add_page_to_unevictable_list`
    /// (`ClearPageActive; SetPageUnevictable; SetPageLRU; add_page_to_lru_list(…,
    /// LRU_UNEVICTABLE)`), which counts nothing, before. An evictable page counts in 4.x's
    /// reclaim statistic (`update_page_reclaim_stat(lruvec, file, active)`).
    ///
    /// [`Profile::lru_add_culls_unevictable`]: crate::profile::Profile::lru_add_culls_unevictable
    pub(crate) fn lru_cache_add_vma(&mut self, pfn: u32, vma: u32) {
        let flags = self.vma(vma).flags;
        if flags & (vm::VM_LOCKED | vm::VM_SPECIAL) == vm::VM_LOCKED {
            let f = &mut self.mem.frames[pfn as usize];
            if !f.test(pg::PG_MLOCKED) {
                f.set(pg::PG_MLOCKED);
                self.vmstat.inc(Vm::unevictable_pgs_mlocked);
            }
            if !self.profile.lru_add_culls_unevictable {
                let f = &mut self.mem.frames[pfn as usize];
                f.clear(pg::PG_ACTIVE);
                f.set(pg::PG_UNEVICTABLE);
                self.lru.add(&mut self.mem.frames, pfn);
                return;
            }
        } else if self.profile.new_anon_active {
            self.mem.frames[pfn as usize].set(pg::PG_ACTIVE);
        }
        if !self.mem.frames[pfn as usize].test(pg::PG_MLOCKED) {
            let active = self.mem.frames[pfn as usize].test(pg::PG_ACTIVE);
            self.update_page_reclaim_stat(pfn, active);
        }
        self.lru_cache_add(pfn);
    }

    /// `activate_page` → `__activate_page` (mm/swap.c 4.13..4.18) / `folio_activate` →
    /// `lru_activate` (mm/swap.c 6.12): an inactive, evictable page on an LRU moves to the head
    /// of the active list, PGACTIVATE (`if (PageLRU(page) && !PageActive(page) &&
    /// !PageUnevictable(page))`; 6.12 `if (folio_test_active(folio) ||
    /// folio_test_unevictable(folio)) return;` after `folio_test_clear_lru`). 4.x also counts
    /// it in the reclaim statistic (`update_page_reclaim_stat(lruvec, file, 1)`). No per-CPU
    /// batch: the move is immediate.
    pub(crate) fn activate_page(&mut self, pfn: u32) {
        let f = &self.mem.frames[pfn as usize];
        if f.test(pg::PG_LRU) && !f.test(pg::PG_ACTIVE) && !f.test(pg::PG_UNEVICTABLE) {
            self.mem.frames[pfn as usize].set(pg::PG_ACTIVE);
            self.lru.relink(&mut self.mem.frames, pfn);
            self.vmstat.inc(Vm::pgactivate);
            self.update_page_reclaim_stat(pfn, true);
        }
    }

    /// `deactivate_page` / `folio_deactivate` (MADV_COLD) → `lru_deactivate_fn`: an *active*
    /// page on an LRU moves to the head of the inactive list, losing PG_referenced. An inactive
    /// page is left where it is (mm/swap.c v6.12 `folio_deactivate`: "if
    /// (folio_test_unevictable(folio) || !(folio_test_active(folio) || lru_gen_enabled()))
    /// return;"; v4.5..v5.x `deactivate_page`: "if (PageLRU(page) && PageActive(page) &&
    /// !PageUnevictable(page))"). With MGLRU every evictable page is deactivated
    /// (`lru_deactivate`: del, clear PG_active and PG_referenced, add: out of the youngest
    /// generations).
    pub(crate) fn deactivate_page(&mut self, pfn: u32) {
        let f = &self.mem.frames[pfn as usize];
        if self.lru_gen_enabled() && f.test(pg::PG_LRU) && !f.test(pg::PG_UNEVICTABLE) {
            self.lru.del(&mut self.mem.frames, pfn);
            self.mem.frames[pfn as usize].clear(pg::PG_ACTIVE | pg::PG_REFERENCED);
            self.lru.add(&mut self.mem.frames, pfn);
            self.vmstat.inc(Vm::pgdeactivate);
            return;
        }
        if f.test(pg::PG_LRU) && f.test(pg::PG_ACTIVE) && !f.test(pg::PG_UNEVICTABLE) {
            let fm = &mut self.mem.frames[pfn as usize];
            fm.clear(pg::PG_ACTIVE | pg::PG_REFERENCED);
            self.lru.relink(&mut self.mem.frames, pfn);
            self.vmstat.inc(Vm::pgdeactivate);
        }
    }

    /// `mark_page_lazyfree` / `folio_mark_lazyfree` (MADV_FREE): a clean anon page becomes
    /// lazily freeable: off the anon lists, not swap-backed, onto the inactive file list.
    pub(crate) fn mark_page_lazyfree(&mut self, pfn: u32) {
        let f = &self.mem.frames[pfn as usize];
        if f.test(pg::PG_LRU)
            && f.anon()
            && f.test(pg::PG_SWAPBACKED)
            && !f.test(pg::PG_SWAPCACHE)
            && !f.test(pg::PG_UNEVICTABLE)
        {
            self.lru.del(&mut self.mem.frames, pfn);
            let fm = &mut self.mem.frames[pfn as usize];
            fm.clear(pg::PG_ACTIVE | pg::PG_REFERENCED | pg::PG_SWAPBACKED);
            self.lru.add(&mut self.mem.frames, pfn);
            self.vmstat.inc(Vm::pglazyfree);
        }
    }

    /// `mlock_vma_page`: mark mlocked and move to the unevictable list.
    pub(crate) fn mlock_page(&mut self, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        if f.test(pg::PG_MLOCKED) {
            return;
        }
        f.set(pg::PG_MLOCKED);
        self.vmstat.inc(Vm::unevictable_pgs_mlocked);
        if f.test(pg::PG_LRU) && !f.test(pg::PG_UNEVICTABLE) {
            let fm = &mut self.mem.frames[pfn as usize];
            fm.clear(pg::PG_ACTIVE);
            fm.set(pg::PG_UNEVICTABLE);
            self.lru.relink(&mut self.mem.frames, pfn);
            self.vmstat.inc(Vm::unevictable_pgs_culled);
        }
    }

    /// `munlock_vma_page` (mm/mlock.c 4.13..4.18) / `munlock_folio` → `__munlock_folio`
    /// (mm/mlock.c 6.12): no locked VMA maps the page any more; PG_mlocked cleared,
    /// UNEVICTABLE_PGMUNLOCKED, and an unevictable page goes back to an evictable list
    /// (UNEVICTABLE_PGRESCUED).
    pub(crate) fn munlock_page(&mut self, pfn: u32) {
        self.unmlock_page(pfn, Vm::unevictable_pgs_munlocked);
    }

    /// `clear_page_mlock` (mm/mlock.c 4.13..4.18, from `page_remove_rmap` when the last mapping
    /// of an mlocked page goes: "if (!TestClearPageMlocked(page)) return; …
    /// count_vm_event(UNEVICTABLE_PGCLEARED); if (!isolate_lru_page(page))
    /// putback_lru_page(page);"): as [`Kernel::munlock_page`] but counted as
    /// UNEVICTABLE_PGCLEARED. From v5.18 ([`Profile::remove_rmap_clears_mlock`] false) the
    /// unmap munlocks (`munlock_vma_folio`), which is [`Kernel::munlock_page`].
    ///
    /// [`Profile::remove_rmap_clears_mlock`]: crate::profile::Profile::remove_rmap_clears_mlock
    pub(crate) fn clear_page_mlock(&mut self, pfn: u32) {
        let counter = if self.profile.remove_rmap_clears_mlock {
            Vm::unevictable_pgs_cleared
        } else {
            Vm::unevictable_pgs_munlocked
        };
        self.unmlock_page(pfn, counter);
    }

    fn unmlock_page(&mut self, pfn: u32, counter: Vm) {
        let f = &mut self.mem.frames[pfn as usize];
        if !f.test(pg::PG_MLOCKED) {
            return;
        }
        f.clear(pg::PG_MLOCKED);
        self.vmstat.inc(counter);
        if f.test(pg::PG_UNEVICTABLE) {
            let on_lru = f.test(pg::PG_LRU);
            f.clear(pg::PG_UNEVICTABLE);
            if on_lru {
                self.lru.relink(&mut self.mem.frames, pfn);
            }
            self.vmstat.inc(Vm::unevictable_pgs_rescued);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::mm::madvise::Advice;
    use crate::mm::mmap::MapKind;
    use crate::mm::page::pg;
    use crate::mm::vmstat::Vm;
    use crate::testutil::{kernel, proc_with_pages};
    use crate::vmscan::lru::LruList;

    /// `mm_lru_insertion` (include/trace/events/pagemap.h, traced by `__pagevec_lru_add_fn`
    /// v4.13..v4.18 and `lru_add` v6.12): off as tracefs has it at boot, so a log without it
    /// is the log as before; once enabled, one event per page added to an LRU, with its pfn,
    /// list and pagemap flags (6.12 with MGLRU: `lru_gen_add_folio` clears PG_active, so a
    /// faulted anon page reports LRU_INACTIVE_ANON).
    #[test]
    fn mm_lru_insertion_is_traced_only_once_enabled() {
        use crate::sim::log::{Ev, pagemap_flags as pf};
        for profile in ["4.17", "6.12", "6.12-debian"] {
            let mut k = kernel(profile);
            proc_with_pages(&mut k, false, 4);
            assert!(!k.trace_enabled(Ev::LruInsertion), "{profile}");
            assert!(k.events().iter().all(|e| e.kind != Ev::LruInsertion), "{profile}: off by default");
            k.trace_enable(Ev::LruInsertion, true).unwrap();
            let (pid, a) = proc_with_pages(&mut k, false, 3);
            let ins: Vec<_> = k.events().iter().filter(|e| e.kind == Ev::LruInsertion).collect();
            assert_eq!(ins.len(), 3, "{profile}: one per page added");
            let pfn = k.arch().pte_pfn(k.pte_at(pid, a).unwrap()) as u64;
            let e = ins[0];
            assert_eq!(e.a, pfn);
            let want_lru = if profile == "4.17" { 1 } else { 0 }; // 4.x: new anon pages are active
            assert_eq!(e.b, want_lru, "{profile}: folio_lru_list");
            assert_eq!(e.c & (pf::ANONYMOUS | pf::SWAPBACKED), pf::ANONYMOUS | pf::SWAPBACKED, "{profile}");
            assert!(k.trace_enable(Ev::TryToUnmapOne, true).is_err(), "the model's own event");
        }
    }

    /// A page faulted into a VM_LOCKED VMA goes to the unevictable list in every profile; 4.13's
    /// `lru_cache_add_active_or_unevictable` (mm/swap.c) does it through
    /// `add_page_to_unevictable_list`, which counts no UNEVICTABLE_PGCULLED; from 9c4e6b1a7027
    /// (v4.16) `__pagevec_lru_add_fn` culls it and counts it (4.17, 4.18), as 6.12's
    /// `__mlock_new_folio` (mm/mlock.c) does.
    #[test]
    fn a_page_faulted_into_a_locked_vma_is_counted_as_culled_from_v4_16_only() {
        for (p, culled) in [("4.13", 0), ("4.17", 4), ("4.18", 4), ("6.12", 4)] {
            let mut k = kernel(p);
            let pid = k.spawn("test", false).unwrap();
            let a = k.mmap(pid, 4 * 4096, MapKind::Anon, false, None).unwrap();
            k.mlock(pid, a, 4 * 4096).unwrap();
            assert_eq!(k.vmstat.get(Vm::unevictable_pgs_mlocked), 4, "{p}");
            assert_eq!(k.vmstat.get(Vm::unevictable_pgs_culled), culled, "{p}");
            assert_eq!(k.lru.size(LruList::Unevictable), 4, "{p}: every page on the unevictable list");
            k.check_invariants().unwrap();
        }
    }

    /// The last unmapping of an mlocked page by a hole punched into its shmem object (through a
    /// forked child's unlocked mapping): 4.x `page_remove_rmap` → `clear_page_mlock` (mm/rmap.c,
    /// mm/mlock.c 4.13..4.18) counts UNEVICTABLE_PGCLEARED; 6.12 unmaps it from the locked VMA
    /// with `munlock_vma_folio` (mm/rmap.c `__folio_remove_rmap`'s caller), UNEVICTABLE_PGMUNLOCKED.
    #[test]
    fn truncating_an_mlocked_shmem_page_counts_pgcleared_on_4x_and_pgmunlocked_on_612() {
        for (p, cleared) in [("4.13", true), ("4.18", true), ("6.12", false)] {
            let mut k = kernel(p);
            let pid = k.spawn("test", false).unwrap();
            let a = k.mmap(pid, 4096, MapKind::Anon, true, None).unwrap();
            k.access(pid, 0, a, true, 7).unwrap();
            k.mlock(pid, a, 4096).unwrap();
            let child = k.fork(pid).unwrap();
            k.madvise(child, a, 4096, Advice::Remove).unwrap();
            let (c, m) = (k.vmstat.get(Vm::unevictable_pgs_cleared), k.vmstat.get(Vm::unevictable_pgs_munlocked));
            assert_eq!((c, m), if cleared { (1, 0) } else { (0, 1) }, "{p}: (cleared, munlocked)");
            assert_eq!(k.vmstat.get(Vm::unevictable_pgs_rescued), 1, "{p}");
            k.check_invariants().unwrap();
        }
    }

    /// 4.x `__activate_page` (mm/swap.c 4.13..4.18) counts an activation in the reclaim
    /// statistic (`update_page_reclaim_stat(lruvec, file, 1)`: recent_scanned and recent_rotated
    /// of the anon type); 6.12's `lru_activate` has no such statistic (the v5.8 cost model).
    #[test]
    fn activating_a_page_counts_as_rotated_in_the_4x_reclaim_statistic() {
        for (p, counts) in [("4.18", true), ("6.12", false)] {
            let mut k = kernel(p);
            let (pid, a) = proc_with_pages(&mut k, false, 1);
            let pfn = k.pte_at(pid, a).map(|e| k.arch().pte_pfn(e)).unwrap();
            k.deactivate_page(pfn);
            let before = k.lru_recent.clone();
            k.activate_page(pfn);
            assert!(k.mem.frames[pfn as usize].test(pg::PG_ACTIVE), "{p}");
            let (ds, dr) = (k.lru_recent.scanned[0] - before.scanned[0], k.lru_recent.rotated[0] - before.rotated[0]);
            assert_eq!((ds, dr), if counts { (1, 1) } else { (0, 0) }, "{p}: (recent_scanned, recent_rotated)");
        }
    }
}
