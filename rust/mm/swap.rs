//! LRU list maintenance of mm/swap.c (`lru_cache_add`, `activate_page`, `deactivate_page`,
//! `mark_page_lazyfree`) and the page side of mlock (mm/mlock.c: `mlock_vma_page`,
//! `clear_page_mlock`).

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vm;
use crate::mm::vmstat::Vm;

impl Kernel {
    /// `lru_cache_add` / `folio_add_lru`: put a page on the LRU list its flags select; an
    /// mlocked page goes to the unevictable list (`page_evictable`). With MGLRU, a page added
    /// in a fault is made active first (6.12.117: "if (lru_gen_enabled() &&
    /// !folio_test_unevictable(folio) && lru_gen_in_fault() && !(current->flags &
    /// PF_MEMALLOC)) folio_set_active(folio);"), so it joins the youngest generation.
    pub(crate) fn lru_cache_add(&mut self, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        if self.in_lru_fault && !f.test(pg::PG_UNEVICTABLE) {
            f.set(pg::PG_ACTIVE);
        }
        if f.test(pg::PG_MLOCKED) {
            f.clear(pg::PG_ACTIVE);
            f.set(pg::PG_UNEVICTABLE);
            self.vmstat.inc(Vm::unevictable_pgs_culled);
        }
        self.lru.add(&mut self.mem.frames, pfn);
    }

    /// `lru_cache_add_active_or_unevictable` (mm/swap.c 4.13..4.18) / `folio_add_lru_vma` (6.12):
    /// a page faulted into `vma`. New anon pages start active on profiles with `new_anon_active`;
    /// in a locked VMA the page is mlocked. 4.13 put it on the unevictable list through
    /// `add_page_to_unevictable_list`, which counts no UNEVICTABLE_PGCULLED; the model counts it as
    /// 4.16+ do (a known counter deviation, docs/fidelity.md).
    pub(crate) fn lru_cache_add_vma(&mut self, pfn: u32, vma: u32) {
        let flags = self.vma(vma).flags;
        if flags & (vm::VM_LOCKED | vm::VM_SPECIAL) == vm::VM_LOCKED {
            let f = &mut self.mem.frames[pfn as usize];
            if !f.test(pg::PG_MLOCKED) {
                f.set(pg::PG_MLOCKED);
                self.vmstat.inc(Vm::unevictable_pgs_mlocked);
            }
        } else if self.profile.new_anon_active {
            self.mem.frames[pfn as usize].set(pg::PG_ACTIVE);
        }
        self.lru_cache_add(pfn);
    }

    /// `activate_page` / `folio_activate`: move an inactive page on an LRU to the active list.
    pub(crate) fn activate_page(&mut self, pfn: u32) {
        let f = &self.mem.frames[pfn as usize];
        if f.test(pg::PG_LRU) && !f.test(pg::PG_ACTIVE) && !f.test(pg::PG_UNEVICTABLE) {
            self.mem.frames[pfn as usize].set(pg::PG_ACTIVE);
            self.lru.relink(&mut self.mem.frames, pfn);
            self.vmstat.inc(Vm::pgactivate);
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

    /// `clear_page_mlock` / `munlock_vma_page` (mm/mlock.c 4.13..4.18; 6.12 `munlock_folio`): no
    /// locked VMA maps the page any more; it goes back to an evictable list (`putback_lru_page`).
    /// Counted as UNEVICTABLE_PGMUNLOCKED on every path; 4.x's `clear_page_mlock` (the last-unmap
    /// path) counts UNEVICTABLE_PGCLEARED instead (a known counter deviation, docs/fidelity.md).
    pub(crate) fn clear_page_mlock(&mut self, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        if !f.test(pg::PG_MLOCKED) {
            return;
        }
        f.clear(pg::PG_MLOCKED);
        self.vmstat.inc(Vm::unevictable_pgs_munlocked);
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
