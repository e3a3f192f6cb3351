//! Reclaim (mm/vmscan.c, mm/swap.c, mm/page_alloc.c): LRU maintenance, the page allocator's
//! watermark logic, shrink_* and kswapd, try_to_unmap / try_to_migrate, swap.

pub mod kswapd;
pub mod lru;
pub mod shrink;
pub mod swap;
pub mod unmap;
pub mod vmstat;

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vm;
use crate::sim::log::Ev;
use lru::LruList;
use vmstat::Vm;

/// Who asks for a page, and what the allocator may do to get one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gfp {
    /// A user page (GFP_HIGHUSER_MOVABLE): may wake kswapd and enter direct reclaim.
    User,
    /// No reclaim at all (GFP_NOWAIT): fails below the min watermark.
    NoWait,
}

impl Kernel {
    /// `alloc_pages(gfp, 0)`: the fast path takes a page above the low watermark; below it
    /// kswapd is woken and the page is taken if above min; below min, direct reclaim
    /// (`__alloc_pages_direct_reclaim` → `try_to_free_pages`) runs and the allocation is
    /// retried while reclaim makes progress (at most MAX_RECLAIM_RETRIES = 16 rounds). `None`
    /// means out of memory; the caller decides (a fault returns VM_FAULT_OOM).
    pub fn alloc_page(&mut self, gfp: Gfp) -> Option<u32> {
        let w = self.mem.wmark;
        let free = self.mem.nr_free();
        if free > w.low {
            return self.take_page();
        }
        self.wakeup_kswapd();
        if free > w.min {
            return self.take_page();
        }
        if gfp == Gfp::NoWait {
            return None;
        }
        for _ in 0..16 {
            let got = self.try_to_free_pages(32);
            if self.mem.nr_free() > w.min {
                return self.take_page();
            }
            if got == 0 {
                break;
            }
        }
        // out_of_memory: the model kills nothing; the allocation fails
        self.vmstat.inc(Vm::oom_kill);
        None
    }

    fn take_page(&mut self) -> Option<u32> {
        let p = self.mem.take()?;
        self.vmstat.inc(Vm::pgalloc_normal);
        Some(p)
    }

    /// `lru_cache_add` / `folio_add_lru`: put a page on the LRU list its flags select; an
    /// mlocked page goes to the unevictable list (`page_evictable`).
    pub(crate) fn lru_cache_add(&mut self, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        if f.test(pg::PG_MLOCKED) {
            f.clear(pg::PG_ACTIVE);
            f.set(pg::PG_UNEVICTABLE);
            self.vmstat.inc(Vm::unevictable_pgs_culled);
        }
        self.lru.add(&mut self.mem.frames, pfn);
    }

    /// `lru_cache_add_active_or_unevictable` (4.x) / `folio_add_lru_vma` (6.x): a page faulted
    /// into `vma`. New anon pages start active on profiles with `new_anon_active`; in a locked
    /// VMA the page is mlocked.
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
    /// !PageUnevictable(page))"). MGLRU (`lru_gen_enabled`) is not modelled.
    pub(crate) fn deactivate_page(&mut self, pfn: u32) {
        let f = &self.mem.frames[pfn as usize];
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

    /// `clear_page_mlock` / `munlock_vma_page`: no locked VMA maps the page any more; it goes
    /// back to an evictable list (`putback_lru_page`).
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

    /// Pages on each LRU list (the nr_* gauges of /proc/vmstat).
    pub fn lru_sizes(&self) -> [(LruList, u64); 5] {
        LruList::ALL.map(|l| (l, self.lru.size(l)))
    }

    pub(crate) fn log_reclaim(&mut self, kind: Ev, a: u64, b: u64, c: u64) {
        self.log(kind, 0, 0, 0, a, b, c);
    }
}
