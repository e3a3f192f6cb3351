//! The multi-gen LRU (MGLRU, `CONFIG_LRU_GEN`) as v6.12 has it, audited against the 6.12.117
//! source the Debian guests run (docs/fidelity.md, "MGLRU"): mm/vmscan.c's lru_gen
//! sections, `lru_gen_add_folio` / `lru_gen_del_folio` of include/linux/mm_inline.h, the
//! refault side of mm/workingset.c (`lru_gen_eviction` / `lru_gen_refault`) and
//! `folio_inc_refs` of mm/swap.c. A profile turns it on with its `lru_gen` switch
//! ([`crate::profile::Profile::lru_gen`]); off, nothing here runs. Outside this file: a page
//! added in a fault is made active (`folio_add_lru` with `lru_gen_in_fault`, rust/mm/swap.rs,
//! `Kernel.in_lru_fault` set by `handle_mm_fault`), so it joins the youngest generation.
//!
//! Each evictable page is in one generation of its type (anon, file): `gen = seq %
//! MAX_NR_GENS`, between `min_seq[type]` (the oldest) and `max_seq` (the youngest), held in the
//! page's flags (`LRU_GEN_MASK`: gen + 1) and on that generation's list. Aging
//! (`try_to_inc_max_seq`) opens a new youngest generation; eviction (`evict_folios`) takes
//! pages from the oldest, sorts out the protected ones (`sort_folio`: tiers from the page's
//! access count, `LRU_REFS_MASK` + PG_referenced + PG_workingset, against the refault PID
//! controller) and hands the rest to the classic `shrink_folio_list`, so every eviction ends in
//! `try_to_unmap_one` as on the classic lists (the seed's `pte_unused` guard applies).
//!
//! The caps (`/sys/kernel/mm/lru_gen/enabled`): `LRU_GEN_CORE` always; `LRU_GEN_MM_WALK` and
//! `LRU_GEN_NONLEAF_YOUNG` only where the arch has a hardware accessed bit
//! (`should_walk_mmu`: `arch_has_hw_pte_young() && get_cap(LRU_GEN_MM_WALK)`). s390 has none
//! (its young bit is emulated with invalid PTEs), so it reports 0x0001 and ages without walking
//! page tables: only `lru_gen_look_around` clears young bits, around the pages eviction looks
//! at. x86_64 reports 0x0007 and walks.
//!
//! Simplifications, written down where they are made:
//! - One node, no memcgs: one lruvec, `shrink_one` on it (no memcg LRU, no
//!   `mem_cgroup_below_min`); every reclaim is root reclaim (`lru_gen_shrink_node`). One zone,
//!   or with the guest's zones (crate::mm::mmzone) ZONE_DMA and ZONE_DMA32, each generation
//!   with a list per zone (`lrugen->folios[gen][type][zone]`, [`crate::vmscan::lru`]):
//!   `scan_folios` walks the zones from `sc->reclaim_idx` down, `sort_folio` moves a page of a
//!   zone above it to the next generation ("ineligible"), `inc_min_seq` empties the oldest
//!   generation zone by zone and kswapd's `should_abort_scan` asks every eligible zone's
//!   watermark.
//! - `NR_HIST_GENS` is 1 (CONFIG_LRU_GEN_STATS off, the distributions' choice).
//! - The page-table walk (x86_64: the mm list, the Bloom filters) is `vmscan/lru_gen_walk.rs`,
//!   with its own simplifications. A page it (or kswapd's look-around) promotes changes only
//!   its generation bits and the generation sizes (`folio_update_gen`, `nr_pages`), as in the
//!   release: it stays on its old list until `sort_folio` ("promoted", a sorted page:
//!   PGREFILL) or `inc_min_seq` moves it, and `try_to_inc_min_seq` asks whether a
//!   generation's lists are empty. The walk's batched sizes (`update_batch_size` /
//!   `reset_batch_size`) are applied at once. `folio_activate` and `folio_add_lru` have no
//!   per-CPU batches.
//! - `min_ttl` is kept in model nanoseconds; below it `lru_gen_age_node` invokes
//!   `out_of_memory`, which in the model kills nothing and counts `oom_kill` (as the
//!   allocator's does).
//! - Pages under writeback (the virtio-blk swap device, [`crate::mm::page_io`]) as each
//!   release has them: 6.12.117 lets them through `sort_folio` to `shrink_folio_list`, which
//!   reactivates them; 6.12.107 keeps them in `sort_folio` ("waiting for writeback",
//!   [`crate::profile::Profile::lru_gen_writeback_reactivates`]). Their write's completion
//!   rotates them to the tail of the oldest generation (`folio_rotate_reclaimable` →
//!   `lru_move_tail` → `lru_gen_add_folio(.., reclaiming=true)`, PGROTATED). No page lock is
//!   held across the model's steps, so the "locked" cases never arise; no flusher, so
//!   `sc->nr.file_taken` / `unqueued_dirty` (which wake it) are not kept.

use crate::kernel::Kernel;
use crate::mm::mmzone::{ZONE_DMA, ZONE_DMA32};
use crate::mm::page::{Frame, pg};
use crate::mm::swap_state::Shadow;
use crate::mm::vm;
use crate::mm::vmstat::Vm;
use crate::rmap::Mapping;
use crate::sim::log::Ev;
use crate::vmscan::lru::{Lru, LruList};
use crate::vmscan::lru_gen_walk::{pmd_entry_item, suitable_to_scan};
use crate::vmscan::shrink::{DEF_PRIORITY, SWAPPINESS, ScanControl};

pub use crate::vmscan::lru::lru_gen_folio::*;

/// `struct ctrl_pos` of the PID controller.
#[derive(Clone, Copy, Debug, Default)]
struct CtrlPos {
    refaulted: u64,
    total: u64,
    gain: u64,
}

/// `positive_ctrl_err` (mm/vmscan.c, 6.12.117): true if the PV has few refaults or a lower refaulted/total than
/// the SP.
fn positive_ctrl_err(sp: &CtrlPos, pv: &CtrlPos) -> bool {
    pv.refaulted < MIN_LRU_BATCH
        || pv.refaulted * (sp.total + MIN_LRU_BATCH) * sp.gain <= (sp.refaulted + 1) * pv.total * pv.gain
}

impl Lru {
    /// `lru_gen_add_folio` (include/linux/mm_inline.h, 6.12.117): put an evictable page in a
    /// generation: active (a page added in a fault, `folio_add_lru` with `lru_gen_in_fault`, or
    /// activated) → the youngest; anon not in the swap cache, or a PG_reclaim page dirty or
    /// under writeback ("a dirty page pending writeback") → the second youngest; `reclaiming` or too few generations → the oldest; else the second
    /// oldest. An active page loses PG_active ("see the comment on MIN_NR_GENS about
    /// PG_active") and, with `lru_gen_activate_resets_refs` (6.12.114+), PG_referenced and its
    /// LRU_REFS_MASK count, not PG_workingset ("Don't clear PG_workingset here"); before
    /// (6.12.107: `set_mask_bits(&folio->flags, LRU_GEN_MASK | BIT(PG_active), flags)`) it keeps
    /// them. Returns false for an unevictable page (the classic list takes it).
    pub(crate) fn lru_gen_add_folio(&mut self, frames: &mut [Frame], pfn: u32, reclaiming: bool) -> bool {
        let f = &frames[pfn as usize];
        if f.test(pg::PG_UNEVICTABLE) || !self.lrugen.enabled {
            return false;
        }
        let ty = folio_type(f);
        let g = &self.lrugen;
        let seq = if f.test(pg::PG_ACTIVE) {
            g.max_seq
        } else if (ty == LRU_GEN_ANON && !f.test(pg::PG_SWAPCACHE))
            || (f.test(pg::PG_RECLAIM) && (f.test(pg::PG_DIRTY) || f.test(pg::PG_WRITEBACK)))
        {
            g.max_seq - 1
        } else if reclaiming || g.min_seq[ty] + MIN_NR_GENS as u64 >= g.max_seq {
            g.min_seq[ty]
        } else {
            g.min_seq[ty] + 1
        };
        let gn = lru_gen_from_seq(seq);
        let f = &mut frames[pfn as usize];
        set_gen(f, gn);
        if f.test(pg::PG_ACTIVE) {
            let refs = if self.lrugen.activate_resets_refs { LRU_REFS_MASK | pg::PG_REFERENCED } else { 0 };
            f.flags &= !(refs | pg::PG_ACTIVE);
        }
        self.lru_gen_update_size(frames, pfn, None, Some(gn));
        if reclaiming {
            self.link_tail(frames, pfn, list_index(gn, ty));
        } else {
            self.link_head(frames, pfn, list_index(gn, ty));
        }
        true
    }

    /// `list_move` (`tail`: `list_move_tail`) of a page of a generation to the head (tail) of
    /// generation `gen`'s list of its zone (`&lrugen->folios[gen][type][zone]`): the list
    /// changes, not the page's generation bits nor `nr_pages`.
    fn list_move_to_gen(&mut self, frames: &mut [Frame], pfn: u32, gn: usize, tail: bool) {
        let ty = folio_type(&frames[pfn as usize]);
        self.unlink(frames, pfn);
        if tail {
            self.link_tail(frames, pfn, list_index(gn, ty));
        } else {
            self.link_head(frames, pfn, list_index(gn, ty));
        }
    }

    /// `folio_inc_gen` (mm/vmscan.c, 6.12.117 and 6.12.107) on a page on the oldest
    /// generation's list: into the next generation (its flags, and `nr_pages` by
    /// `lru_gen_update_size`), losing its access count and LRU_REFS_FLAGS; PG_reclaim if
    /// `reclaiming` ("for folio_end_writeback()"). A page whose flags already name another
    /// generation ("folio_update_gen() has promoted this page?") keeps it, and its size is
    /// counted there already. Returns the page's generation; the caller moves the page to its
    /// list.
    fn folio_inc_gen(&mut self, frames: &mut [Frame], pfn: u32, reclaiming: bool) -> usize {
        let f = &mut frames[pfn as usize];
        let old_gen = lru_gen_from_seq(self.lrugen.min_seq[folio_type(f)]);
        if let Some(gn) = folio_lru_gen(f) {
            if gn != old_gen {
                return gn;
            }
        }
        let new_gen = (old_gen + 1) % MAX_NR_GENS;
        f.flags &= !(LRU_REFS_MASK | LRU_REFS_FLAGS);
        set_gen(f, new_gen);
        if reclaiming {
            f.set(pg::PG_RECLAIM);
        }
        self.lru_gen_update_size(frames, pfn, Some(old_gen), Some(new_gen));
        new_gen
    }

    /// `read_ctrl_pos` (mm/vmscan.c, 6.12.117).
    fn read_ctrl_pos(&self, ty: usize, tier: usize, gain: u64) -> CtrlPos {
        let g = &self.lrugen;
        let mut total = g.avg_total[ty][tier] + g.evicted[ty][tier];
        if tier > 0 {
            total += g.protected[ty][tier - 1];
        }
        CtrlPos { refaulted: g.avg_refaulted[ty][tier] + g.refaulted[ty][tier], total, gain }
    }

    /// `reset_ctrl_pos` (v6.12, NR_HIST_GENS = 1): on a carryover (min_seq advances) fold the
    /// generation's counters into the moving averages (smoothing 1/2) and clear them; without
    /// one there is nothing to do.
    fn reset_ctrl_pos(&mut self, ty: usize, carryover: bool) {
        if !carryover {
            return;
        }
        let g = &mut self.lrugen;
        for tier in 0..MAX_NR_TIERS {
            g.avg_refaulted[ty][tier] = (g.avg_refaulted[ty][tier] + g.refaulted[ty][tier]) / 2;
            let mut sum = g.avg_total[ty][tier] + g.evicted[ty][tier];
            if tier > 0 {
                sum += g.protected[ty][tier - 1];
            }
            g.avg_total[ty][tier] = sum / 2;
            g.refaulted[ty][tier] = 0;
            g.evicted[ty][tier] = 0;
            if tier > 0 {
                g.protected[ty][tier - 1] = 0;
            }
        }
    }

    /// `get_tier_idx` (mm/vmscan.c, 6.12.117): the last tier to evict: tiers whose refault rate stays within
    /// twice the first tier's (gain 1:2) are evicted, the ones above are protected.
    fn get_tier_idx(&self, ty: usize) -> usize {
        let sp = self.read_ctrl_pos(ty, 0, 1);
        let mut tier = 1;
        while tier < MAX_NR_TIERS {
            let pv = self.read_ctrl_pos(ty, tier, 2);
            if !positive_ctrl_err(&sp, &pv) {
                break;
            }
            tier += 1;
        }
        tier - 1
    }

    /// `get_type_to_scan` (mm/vmscan.c, 6.12.117): compare the first tiers of anon and file (gains swappiness
    /// and MAX_SWAPPINESS - swappiness), then the tiers of the chosen type against the other's
    /// first. Returns (type, tier_idx).
    fn get_type_to_scan(&self, swappiness: u64) -> (usize, usize) {
        let gain = [swappiness, MAX_SWAPPINESS - swappiness];
        let sp = self.read_ctrl_pos(LRU_GEN_ANON, 0, gain[LRU_GEN_ANON]);
        let pv = self.read_ctrl_pos(LRU_GEN_FILE, 0, gain[LRU_GEN_FILE]);
        let ty = positive_ctrl_err(&sp, &pv) as usize;
        let sp = self.read_ctrl_pos(1 - ty, 0, gain[1 - ty]);
        let mut tier = 1;
        while tier < MAX_NR_TIERS {
            let pv = self.read_ctrl_pos(ty, tier, gain[ty]);
            if !positive_ctrl_err(&sp, &pv) {
                break;
            }
            tier += 1;
        }
        (ty, tier - 1)
    }
}

/// `fls_long`.
fn fls_long(x: u64) -> i32 {
    (u64::BITS - x.leading_zeros()) as i32
}

impl Kernel {
    /// `lru_gen_enabled()`.
    #[inline]
    pub fn lru_gen_enabled(&self) -> bool {
        self.lru.lrugen.enabled
    }

    /// `should_walk_mmu` (mm/vmscan.c, 6.12.117): `arch_has_hw_pte_young() && get_cap(LRU_GEN_MM_WALK)`.
    fn should_walk_mmu(&self) -> bool {
        self.lru.lrugen.caps & caps::LRU_GEN_MM_WALK != 0
    }

    /// `get_swappiness` (mm/vmscan.c, 6.12.117): 0 when reclaim may not swap or fewer than MIN_LRU_BATCH swap
    /// slots are free (`mem_cgroup_get_nr_swap_pages`), else `vm_swappiness`.
    fn lru_gen_swappiness(&self, sc: &ScanControl) -> u64 {
        let free = (self.swap.total() - self.swap.inuse()) as u64;
        if !sc.may_swap || free < MIN_LRU_BATCH { 0 } else { SWAPPINESS }
    }

    /// `lru_gen_shrink_node` (mm/vmscan.c, 6.12.117) for the one lruvec (`shrink_many` with one
    /// memcg is one `shrink_one`): `set_mm_walk` (kswapd has `pgdat->mm_walk`, so its
    /// `lru_gen_look_around` promotes with `folio_update_gen`; direct reclaim has none until an
    /// aging walk allocates one), `set_initial_priority`, `try_to_shrink_lruvec` with kswapd's
    /// `nr_reclaimed` counted from 0 (so `should_abort_scan` sees this call's), then
    /// `clear_mm_walk`; progress resets kswapd's failures. Pages put back while reclaiming are
    /// not added "in a fault" (reclaim runs with PF_MEMALLOC: `folio_add_lru`).
    pub(crate) fn lru_gen_shrink_node(&mut self, sc: &mut ScanControl) {
        let reclaimed = sc.nr_reclaimed;
        if sc.may_writepage && sc.may_unmap {
            let in_fault = std::mem::replace(&mut self.in_lru_fault, false);
            self.lru.lrugen.mm_walk = sc.kswapd;
            self.set_initial_priority(sc);
            if sc.kswapd {
                sc.nr_reclaimed = 0;
            }
            self.try_to_shrink_lruvec(sc);
            if sc.kswapd {
                sc.nr_reclaimed += reclaimed;
            }
            self.lru.lrugen.mm_walk = false;
            self.in_lru_fault = in_fault;
        }
        if sc.nr_reclaimed > reclaimed {
            self.kswapd.failures = 0;
        }
    }

    /// `set_initial_priority` (6.12.117): at DEF_PRIORITY, start at the priority where
    /// `(reclaimable >> priority)` roughly meets `nr_to_reclaim`, reclaimable being the
    /// inactive pages (anon only if it can be swapped), clamped to [DEF_PRIORITY / 2,
    /// DEF_PRIORITY] ("to prevent overshoots of shrinker objects").
    fn set_initial_priority(&mut self, sc: &mut ScanControl) {
        if sc.priority != DEF_PRIORITY || sc.nr_to_reclaim < MIN_LRU_BATCH {
            return;
        }
        let mut reclaimable = self.lru.size(LruList::InactiveFile);
        if self.swap.total() > self.swap.inuse() {
            reclaimable += self.lru.size(LruList::InactiveAnon);
        }
        let priority = fls_long(reclaimable) - 1 - fls_long(sc.nr_to_reclaim - 1);
        sc.priority = priority.clamp(DEF_PRIORITY / 2, DEF_PRIORITY);
    }

    /// `try_to_shrink_lruvec` (mm/vmscan.c, 6.12.117): evict batches while `get_nr_to_scan` allows, until the
    /// scan target is met or `should_abort_scan`. Returns whether the lruvec ran low on cold
    /// pages (`nr_to_scan < 0`).
    pub(crate) fn try_to_shrink_lruvec(&mut self, sc: &mut ScanControl) -> bool {
        let swappiness = self.lru_gen_swappiness(sc);
        let mut scanned = 0u64;
        let mut nr_to_scan;
        loop {
            nr_to_scan = self.get_nr_to_scan(sc, swappiness);
            if nr_to_scan <= 0 {
                break;
            }
            let delta = self.evict_folios(sc, swappiness);
            if delta == 0 {
                break;
            }
            scanned += delta;
            if scanned >= nr_to_scan as u64 {
                break;
            }
            if self.should_abort_scan(sc) {
                break;
            }
        }
        nr_to_scan < 0
    }

    /// `should_abort_scan` (mm/vmscan.c, 6.12.117): enough reclaimed (`max(nr_to_reclaim, compact_gap(0))`), or
    /// kswapd with every eligible zone (0 to `sc->reclaim_idx`) above its high watermark +
    /// MIN_LRU_BATCH (`zone_watermark_ok(zone, 0, wmark_pages(zone, WMARK_HIGH) +
    /// MIN_LRU_BATCH, sc->reclaim_idx, 0)`: with the guest's zones the DMA zone's mark holds its
    /// boost, and its `lowmem_reserve` when DMA32 is eligible).
    fn should_abort_scan(&self, sc: &ScanControl) -> bool {
        if sc.nr_reclaimed >= sc.nr_to_reclaim.max(2) {
            return true;
        }
        if !sc.kswapd {
            return false;
        }
        if let Some(z) = self.zones.as_deref() {
            if z.dma.nr_free() <= z.dma_mark(z.dma.wmark.high + MIN_LRU_BATCH, sc.reclaim_idx) {
                return false;
            }
            if sc.reclaim_idx < ZONE_DMA32 {
                return true;
            }
        }
        self.mem.nr_free() > self.mem.wmark.high + MIN_LRU_BATCH
    }

    /// `get_nr_to_scan` (mm/vmscan.c, 6.12.117): the evictable pages `>> priority`, unless aging is due and
    /// the priority is raised: then `try_to_inc_max_seq`, and -1 (stop: low on cold pages) if
    /// it made a generation, 0 if not.
    fn get_nr_to_scan(&mut self, sc: &ScanControl, swappiness: u64) -> i64 {
        let max_seq = self.lru.lrugen.max_seq;
        let (need_aging, nr_to_scan) = self.should_run_aging(max_seq, swappiness != 0);
        if !need_aging || sc.priority == DEF_PRIORITY {
            return (nr_to_scan >> sc.priority) as i64;
        }
        if self.try_to_inc_max_seq(max_seq, swappiness != 0, false) { -1 } else { 0 }
    }

    /// `should_run_aging` (mm/vmscan.c, 6.12.117): true when no evictable type has more than MIN_NR_GENS
    /// generations, or with exactly MIN_NR_GENS + 1 when the youngest holds over 1/MIN_NR_GENS
    /// of the pages or the oldest under 1/(MIN_NR_GENS + 2). Also returns the evictable pages.
    pub(crate) fn should_run_aging(&self, max_seq: u64, can_swap: bool) -> (bool, u64) {
        let g = &self.lru.lrugen;
        let first = !can_swap as usize;
        if g.min_seq[first] + MIN_NR_GENS as u64 > max_seq {
            return (true, 0);
        }
        let (mut old, mut young, mut total) = (0u64, 0u64, 0u64);
        for ty in first..2 {
            for seq in g.min_seq[ty]..=max_seq {
                let size = self.lru.gen_size(lru_gen_from_seq(seq), ty);
                total += size;
                if seq == max_seq {
                    young += size;
                } else if seq + MIN_NR_GENS as u64 == max_seq {
                    old += size;
                }
            }
        }
        if g.min_seq[first] + (MIN_NR_GENS as u64) < max_seq {
            return (false, total);
        }
        let aging = young * MIN_NR_GENS as u64 > total || old * (MIN_NR_GENS as u64 + 2) < total;
        (aging, total)
    }

    /// `try_to_inc_max_seq` (mm/vmscan.c, 6.12.117): without `mm_state` (CONFIG_LRU_GEN_WALKS_MMU
    /// needs ARCH_HAS_HW_PTE_YOUNG, which s390 lacks) straight to `inc_max_seq`; without the
    /// MM_WALK cap `iterate_mm_list_nowalk`; else walk the mm list's page tables first
    /// (`vmscan/lru_gen_walk.rs`: Bloom filters, `walk_mm`), promoting the pages their young
    /// PTEs map to the current youngest generation.
    pub(crate) fn try_to_inc_max_seq(&mut self, seq: u64, can_swap: bool, force_scan: bool) -> bool {
        if seq < self.lru.lrugen.max_seq {
            return false;
        }
        if self.should_walk_mmu() {
            // set_mm_walk(NULL, true): the walk stays until clear_mm_walk
            self.lru.lrugen.mm_walk = true;
            self.lru_gen_walk_mm_list(seq, can_swap, force_scan);
        } else {
            self.iterate_mm_list_nowalk();
        }
        self.inc_max_seq(seq, can_swap, force_scan)
    }

    /// `get_pte_pfn` + `get_pfn_folio` (mm/vmscan.c, 6.12.117): the pfn of a present, young PTE that maps a
    /// page other than the zero page.
    pub(super) fn lru_gen_pte_pfn(&self, pte: u64) -> Option<u32> {
        let arch = self.arch();
        if !arch.pte_present(pte) || !arch.pte_young(pte) || arch.pte_special(pte) {
            return None;
        }
        let pfn = arch.pte_pfn(pte);
        (pfn != crate::mm::page::ZERO_PFN && (pfn as usize) < self.mem.frames.len()).then_some(pfn)
    }

    /// The dirty half of `lru_gen_look_around` / `walk_update_folio`: a dirty PTE marks the
    /// page dirty unless it is anon, swap-backed and not in the swap cache.
    pub(super) fn lru_gen_mark_dirty(&mut self, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        let anon_not_in_swapcache = f.anon() && f.test(pg::PG_SWAPBACKED) && !f.test(pg::PG_SWAPCACHE);
        if !(f.test(pg::PG_DIRTY) || anon_not_in_swapcache) {
            f.set(pg::PG_DIRTY);
        }
    }

    /// `folio_update_gen` (mm/vmscan.c, 6.12.117 and 6.12.107) with its caller's
    /// `update_batch_size`: promote a page to generation `gen` by its flags alone, clearing its
    /// access count, and count it there in `nr_pages`; it stays on the list it is on until
    /// `sort_folio` ("promoted") or `inc_min_seq` meets it there. A page off the lists
    /// ("lru_gen_del_folio() has isolated this page?") gets PG_referenced for
    /// shrink_folio_list instead.
    ///
    /// The kernel's walk (`walk_pte_range`, kswapd's `lru_gen_look_around` with
    /// `current->reclaim_state->mm_walk`) batches the size changes in `walk->nr_pages` and
    /// folds them into `lrugen->nr_pages` under the LRU lock (`reset_batch_size`, at the end of
    /// `walk_mm` and in `evict_folios` after `shrink_folio_list`); the model applies each at
    /// once: nothing of it reads the sizes in between.
    pub(super) fn folio_update_gen(&mut self, pfn: u32, gn: usize) {
        let f = &mut self.mem.frames[pfn as usize];
        match folio_lru_gen(f) {
            None => f.set(pg::PG_REFERENCED),
            Some(old) => {
                f.flags &= !(LRU_REFS_MASK | LRU_REFS_FLAGS);
                set_gen(f, gn);
                if old != gn {
                    self.lru.lru_gen_update_size(&self.mem.frames, pfn, Some(old), Some(gn));
                }
            }
        }
    }

    /// `inc_max_seq` (mm/vmscan.c, 6.12.117): if a type already has MAX_NR_GENS generations, its oldest is
    /// emptied into the next first (`inc_min_seq`); then a new youngest generation, born now.
    pub(crate) fn inc_max_seq(&mut self, seq: u64, can_swap: bool, _force_scan: bool) -> bool {
        if seq != self.lru.lrugen.max_seq {
            return false;
        }
        for ty in (0..2).rev() {
            if self.lru.lrugen.nr_gens(ty) != MAX_NR_GENS as u64 {
                continue;
            }
            // inc_min_seq moves at most MAX_LRU_BATCH pages a call: the kernel drops the lock
            // and restarts until it succeeds
            while !self.inc_min_seq(ty, can_swap) {}
        }
        let next = lru_gen_from_seq(self.lru.lrugen.max_seq + 1);
        self.lru.lrugen.timestamps[next] = self.now;
        self.lru.lrugen.max_seq += 1;
        true
    }

    /// `inc_min_seq` (mm/vmscan.c, 6.12.117 and 6.12.107): empty the oldest generation's lists
    /// of `ty`, each page to the tail of the list of the generation `folio_inc_gen` gives it
    /// (the next one, or the one a promotion in place gave it), zone by zone from ZONE_DMA up
    /// ("for (zone = 0; zone < MAX_NR_ZONES; zone++)"), at most MAX_LRU_BATCH a call, then
    /// advance `min_seq`. Anon is not emptied when it cannot be swapped.
    fn inc_min_seq(&mut self, ty: usize, can_swap: bool) -> bool {
        if ty != LRU_GEN_ANON || can_swap {
            let old_gen = lru_gen_from_seq(self.lru.lrugen.min_seq[ty]);
            let mut remaining = MAX_LRU_BATCH;
            for zone in [ZONE_DMA, ZONE_DMA32] {
                while let Some(pfn) = self.lru.tail_zone(list_index(old_gen, ty), zone) {
                    let new_gen = self.lru.folio_inc_gen(&mut self.mem.frames, pfn, false);
                    self.lru.list_move_to_gen(&mut self.mem.frames, pfn, new_gen, true);
                    remaining -= 1;
                    if remaining == 0 {
                        return false;
                    }
                }
            }
        }
        self.lru.reset_ctrl_pos(ty, true);
        self.lru.lrugen.min_seq[ty] += 1;
        true
    }

    /// `try_to_inc_min_seq` (mm/vmscan.c, 6.12.117 and 6.12.107): advance each evictable
    /// type's `min_seq` past its oldest generations whose lists are empty ("find the oldest
    /// populated generation": `list_empty` of every zone's list, not `nr_pages`; a generation
    /// whose pages were all promoted in place has a size of 0 but is not passed until its lists
    /// are sorted), keeping MIN_NR_GENS, anon never ahead of file when both are evictable.
    #[allow(clippy::needless_range_loop)] // the kernel's `for (type = !can_swap; ...)`
    fn try_to_inc_min_seq(&mut self, can_swap: bool) -> bool {
        let g = &self.lru.lrugen;
        let mut min_seq = g.min_seq;
        let first = !can_swap as usize;
        for ty in first..2 {
            while min_seq[ty] + (MIN_NR_GENS as u64) <= g.max_seq {
                if self.lru.size_at(list_index(lru_gen_from_seq(min_seq[ty]), ty)) > 0 {
                    break;
                }
                min_seq[ty] += 1;
            }
        }
        // "see the comment on lru_gen_folio"
        if can_swap {
            min_seq[LRU_GEN_ANON] = min_seq[LRU_GEN_ANON].min(min_seq[LRU_GEN_FILE]);
            min_seq[LRU_GEN_FILE] = min_seq[LRU_GEN_ANON].max(g.min_seq[LRU_GEN_FILE]);
        }
        let mut success = false;
        for ty in first..2 {
            if min_seq[ty] == self.lru.lrugen.min_seq[ty] {
                continue;
            }
            self.lru.reset_ctrl_pos(ty, true);
            self.lru.lrugen.min_seq[ty] = min_seq[ty];
            success = true;
        }
        success
    }

    /// `evict_folios` (mm/vmscan.c, 6.12.117 and 6.12.107): isolate a batch from the oldest
    /// generation (`isolate_folios`), run the classic `shrink_folio_list` on it, and put back
    /// the survivors in the order they were shrunk (`move_folios_to_lru`); a PG_reclaim page
    /// still dirty or under writeback goes back as it is (PG_referenced restored from
    /// PG_workingset: `lru_gen_add_folio` puts it in the second youngest generation, or, if
    /// `shrink_folio_list` reactivated it, the youngest); other rejected pages do not go back to
    /// the oldest generation (PG_active, so `lru_gen_add_folio` makes them youngest); clean
    /// unmapped ones get one retry ("folios that may have missed folio_rotate_reclaimable()").
    /// An unevictable survivor is left for `move_folios_to_lru` to cull, or, before
    /// [`crate::profile::Profile::lru_gen_sort_lets_unevictable_through`] (6.12.107), put back
    /// at once (`folio_putback_lru`). Returns the pages scanned.
    pub(crate) fn evict_folios(&mut self, sc: &mut ScanControl, swappiness: u64) -> u64 {
        let (mut scanned, ty, list) = self.isolate_folios(sc, swappiness);
        scanned += self.try_to_inc_min_seq(swappiness != 0) as u64;
        if self.lru.lrugen.nr_gens((swappiness == 0) as usize) == MIN_NR_GENS as u64 {
            scanned = 0;
        }
        if list.is_empty() {
            return scanned;
        }
        let mut list = list;
        let mut skip_retry = false;
        loop {
            let nr = list.len() as u64;
            let (reclaimed, keep, stat) = self.shrink_folio_list(list, sc, false);
            sc.nr_reclaimed += reclaimed;
            self.log_reclaim(Ev::LruShrinkInactive, scanned, reclaimed, stat.nr_unmap_fail);
            let mut clean = Vec::new();
            // pages not for move_folios_to_lru: retried, or (6.12.107) put back already
            let mut off_list = vec![false; keep.len()];
            for (i, &pfn) in keep.iter().enumerate() {
                let f = self.mem.frames[pfn as usize];
                if f.test(pg::PG_MLOCKED) {
                    // move_folios_to_lru() culls unevictable folios via folio_putback_lru();
                    // 6.12.107: "list_del(&folio->lru); folio_putback_lru(folio);"
                    if !self.profile.lru_gen_sort_lets_unevictable_through {
                        self.putback_lru_page(pfn);
                        off_list[i] = true;
                    }
                    continue;
                }
                let fm = &mut self.mem.frames[pfn as usize];
                if f.test(pg::PG_RECLAIM) && (f.test(pg::PG_DIRTY) || f.test(pg::PG_WRITEBACK)) {
                    // restore LRU_REFS_FLAGS cleared by isolate_folio()
                    if f.test(pg::PG_WORKINGSET) {
                        fm.set(pg::PG_REFERENCED);
                    }
                    continue;
                }
                if skip_retry
                    || f.test(pg::PG_ACTIVE)
                    || f.test(pg::PG_REFERENCED)
                    || f.mapped()
                    || f.test(pg::PG_LOCKED)
                    || f.test(pg::PG_DIRTY)
                    || f.test(pg::PG_WRITEBACK)
                {
                    // don't add rejected folios to the oldest generation
                    fm.flags &= !(LRU_REFS_MASK | LRU_REFS_FLAGS);
                    fm.set(pg::PG_ACTIVE);
                    continue;
                }
                // retry folios that may have missed folio_rotate_reclaimable()
                off_list[i] = true;
                clean.push(pfn);
            }
            // move_folios_to_lru: the survivors but the clean ones, in the order shrunk
            for (&pfn, _) in keep.iter().zip(&off_list).filter(|(_, r)| !**r) {
                self.putback_lru_page(pfn);
            }
            // "item = PGSTEAL_KSWAPD + reclaimer_offset(); if (!cgroup_reclaim(sc))
            // __count_vm_events(item, reclaimed);" (evict_folios, mm/vmscan.c 6.12)
            if !sc.cgroup_reclaim {
                let steal = if sc.kswapd { Vm::pgsteal_kswapd } else { Vm::pgsteal_direct };
                self.vmstat.add(steal, reclaimed);
            }
            self.vmstat.add(if ty == LRU_GEN_FILE { Vm::pgsteal_file } else { Vm::pgsteal_anon }, reclaimed);
            self.tick(self.cost.reclaim_scan * nr);
            if clean.is_empty() {
                break;
            }
            list = clean;
            skip_retry = true;
        }
        scanned
    }

    /// `isolate_folios` (mm/vmscan.c, 6.12.117): the obvious type first (file when anon cannot be swapped, anon
    /// when its oldest generation is older), else the PID controller's (`get_type_to_scan`);
    /// if nothing could be scanned of it, the other type. Returns (scanned, type, pages).
    fn isolate_folios(&mut self, sc: &mut ScanControl, swappiness: u64) -> (u64, usize, Vec<u32>) {
        let g = &self.lru.lrugen;
        let mut tier: Option<usize> = None;
        let mut ty = if swappiness == 0 {
            LRU_GEN_FILE
        } else if g.min_seq[LRU_GEN_ANON] < g.min_seq[LRU_GEN_FILE] {
            LRU_GEN_ANON
        } else if swappiness == 1 {
            LRU_GEN_FILE
        } else if swappiness == MAX_SWAPPINESS {
            LRU_GEN_ANON
        } else {
            let (t, idx) = self.lru.get_type_to_scan(swappiness);
            tier = Some(idx);
            t
        };
        let mut scanned = 0;
        let mut list = Vec::new();
        for _ in (swappiness == 0) as usize..2 {
            let t = tier.unwrap_or_else(|| self.lru.get_tier_idx(ty));
            (scanned, list) = self.scan_folios(sc, ty, t);
            if scanned > 0 {
                break;
            }
            ty = 1 - ty;
            tier = None;
        }
        (scanned, ty, list)
    }

    /// `scan_folios` (mm/vmscan.c, 6.12.117): from the tail of the oldest generation of `ty`, sort each page
    /// (`sort_folio`) or isolate it (`isolate_folio`), until MAX_LRU_BATCH scanned or
    /// MIN_LRU_BATCH isolated. Nothing when only MIN_NR_GENS generations are left. Counts
    /// pgscan (isolated) and pgrefill (sorted), traces `mm_vmscan_lru_isolate`.
    ///
    /// The generation's lists are walked zone by zone, "zone = (sc->reclaim_idx + i) %
    /// MAX_NR_ZONES" for i from MAX_NR_ZONES down: `reclaim_idx` first, then the zones below
    /// it, then (last) those above, whose pages `sort_folio` moves on as ineligible. With the
    /// guest's zones: DMA32 then DMA, or for a reclaim of ZONE_DMA only (a boosted kswapd) DMA
    /// then DMA32. The model's `isolate_folio` never fails, so no page is skipped (the
    /// kernel's PGSCAN_SKIP here counts only isolation failures).
    fn scan_folios(&mut self, sc: &ScanControl, ty: usize, tier: usize) -> (u64, Vec<u32>) {
        let mut list = Vec::new();
        if self.lru.lrugen.nr_gens(ty) == MIN_NR_GENS as u64 {
            return (0, list);
        }
        let gn = lru_gen_from_seq(self.lru.lrugen.min_seq[ty]);
        let (mut scanned, mut sorted, mut isolated) = (0u64, 0u64, 0u64);
        let mut remaining = MAX_LRU_BATCH;
        let zones = if sc.reclaim_idx >= ZONE_DMA32 { [ZONE_DMA32, ZONE_DMA] } else { [ZONE_DMA, ZONE_DMA32] };
        'zones: for zone in zones {
            while let Some(pfn) = self.lru.tail_zone(list_index(gn, ty), zone) {
                scanned += 1;
                if self.sort_folio(pfn, sc, tier) {
                    sorted += 1;
                } else {
                    self.isolate_folio(pfn);
                    list.push(pfn);
                    isolated += 1;
                }
                remaining -= 1;
                if remaining == 0 || isolated >= MIN_LRU_BATCH {
                    break 'zones;
                }
            }
        }
        // "if (!cgroup_reclaim(sc)) { __count_vm_events(item, isolated);
        // __count_vm_events(PGREFILL, sorted); }" (scan_folios, mm/vmscan.c 6.12)
        if !sc.cgroup_reclaim {
            self.vmstat.add(if sc.kswapd { Vm::pgscan_kswapd } else { Vm::pgscan_direct }, isolated);
            self.vmstat.add(Vm::pgrefill, sorted);
        }
        self.vmstat.add(if ty == LRU_GEN_FILE { Vm::pgscan_file } else { Vm::pgscan_anon }, isolated);
        let lru = if ty == LRU_GEN_FILE { LruList::InactiveFile } else { LruList::InactiveAnon };
        self.log_reclaim(Ev::LruIsolate, scanned, isolated, lru as u64);
        let scanned = if isolated > 0 || remaining == 0 { scanned } else { 0 };
        (scanned, list)
    }

    /// `sort_folio` (mm/vmscan.c, 6.12.117 and 6.12.107): true when the page stays (moved
    /// within the generations). An unevictable (mlocked) page is let through ("the generic path
    /// will cull it": `shrink_folio_list` activates it and `move_folios_to_lru` puts it on the
    /// unevictable list), or, before `lru_gen_sort_lets_unevictable_through` (6.12.107), culled
    /// here (PG_unevictable, onto the unevictable list, UNEVICTABLE_PGCULLED); a page whose
    /// flags name a generation other than the oldest ("promoted" in place by
    /// `folio_update_gen`) moves to the head of that generation's list; a page of a tier above `tier_idx`, or with the most accesses, is protected into
    /// the next generation (counted in `protected`); a page of a zone above `sc->reclaim_idx`
    /// ("ineligible", the guest's zones only) goes to the tail of the next generation. Before
    /// `lru_gen_writeback_reactivates` (6.12.107, "waiting for writeback"), a page locked,
    /// under writeback or (file) dirty stays too: `folio_inc_gen(.., reclaiming=true)` (PG_reclaim
    /// "for folio_end_writeback()") to the head of the next generation; 6.12.117 lets it through
    /// to `shrink_folio_list`.
    fn sort_folio(&mut self, pfn: u32, sc: &ScanControl, tier_idx: usize) -> bool {
        let f = self.mem.frames[pfn as usize];
        let ty = folio_type(&f);
        if f.test(pg::PG_MLOCKED) {
            if self.profile.lru_gen_sort_lets_unevictable_through {
                // unevictable: let it through and the generic path will cull it
                return false;
            }
            // 6.12.107 "unevictable": lru_gen_del_folio(.., true), folio_set_unevictable,
            // lruvec_add_folio, UNEVICTABLE_PGCULLED
            self.lru.del_reclaiming(&mut self.mem.frames, pfn, true);
            self.mem.frames[pfn as usize].set(pg::PG_UNEVICTABLE);
            self.lru.add(&mut self.mem.frames, pfn);
            self.vmstat.inc(Vm::unevictable_pgs_culled);
            return true;
        }
        // promoted (by folio_update_gen, in place): to the head of its generation's list
        let gn = folio_lru_gen(&f).unwrap_or(MAX_NR_GENS);
        if gn != lru_gen_from_seq(self.lru.lrugen.min_seq[ty]) {
            self.lru.list_move_to_gen(&mut self.mem.frames, pfn, gn, false);
            return true;
        }
        let refs = folio_lru_refs(&f);
        let tier = lru_tier_from_refs(refs);
        // protected
        if tier > tier_idx || refs == 1 << LRU_REFS_WIDTH {
            let gn = self.lru.folio_inc_gen(&mut self.mem.frames, pfn, false);
            self.lru.list_move_to_gen(&mut self.mem.frames, pfn, gn, true);
            self.lru.lrugen.protected[ty][tier - 1] += 1;
            return true;
        }
        // ineligible
        if self.lru.zonenum(pfn) > sc.reclaim_idx {
            let gn = self.lru.folio_inc_gen(&mut self.mem.frames, pfn, false);
            self.lru.list_move_to_gen(&mut self.mem.frames, pfn, gn, true);
            return true;
        }
        // 6.12.107 "waiting for writeback"
        if !self.profile.lru_gen_writeback_reactivates
            && (f.test(pg::PG_LOCKED) || f.test(pg::PG_WRITEBACK) || (ty == LRU_GEN_FILE && f.test(pg::PG_DIRTY)))
        {
            let gn = self.lru.folio_inc_gen(&mut self.mem.frames, pfn, true);
            self.lru.list_move_to_gen(&mut self.mem.frames, pfn, gn, false);
            return true;
        }
        false
    }

    /// `isolate_folio` (mm/vmscan.c, 6.12.117 and 6.12.107): off the generation
    /// (`lru_gen_del_folio(.., true)`) with a reference; an unreferenced page loses its access
    /// count and LRU_REFS_FLAGS ("see the comment on MAX_NR_TIERS"); PG_referenced is cleared
    /// "for shrink_folio_list()", and so, before `lru_gen_writeback_reactivates` (6.12.107), is
    /// PG_reclaim (= PG_readahead: a swap-readahead page taken and kept loses its mark); 6.12.117
    /// leaves it. The "swap constrained" refusal (whose dirty test the same backport narrowed to
    /// anon pages) needs a reclaim without __GFP_IO, which the model does not make.
    pub(crate) fn isolate_folio(&mut self, pfn: u32) {
        self.lru.del_reclaiming(&mut self.mem.frames, pfn, true);
        let clear_reclaim = !self.profile.lru_gen_writeback_reactivates;
        let f = &mut self.mem.frames[pfn as usize];
        if !f.test(pg::PG_REFERENCED) {
            f.flags &= !(LRU_REFS_MASK | LRU_REFS_FLAGS);
        }
        if clear_reclaim {
            f.clear(pg::PG_RECLAIM);
        }
        f.clear(pg::PG_REFERENCED);
        f.set(pg::PG_ISOLATED);
        self.mem.inc_refcount(pfn);
    }

    /// `lru_gen_age_node` (mm/vmscan.c, 6.12.117), kswapd's `kswapd_age_node` with MGLRU: no aging of its own;
    /// with `min_ttl` set, if the oldest generation is younger than min_ttl the working set
    /// would be lost, and the kernel invokes the OOM killer (the model's `out_of_memory` kills
    /// nothing and counts `oom_kill`).
    pub(crate) fn lru_gen_age_node(&mut self, sc: &mut ScanControl) {
        self.set_initial_priority(sc);
        let min_ttl = self.lru.lrugen.min_ttl;
        if min_ttl == 0 || self.lruvec_is_reclaimable(sc, min_ttl) {
            return;
        }
        self.vmstat.inc(Vm::oom_kill);
    }

    /// `lruvec_is_reclaimable` (6.12.117): sizable (`lruvec_is_sizable`: its evictable pages
    /// `>> priority`, the root memcg being online) and its oldest file generation
    /// (`min_seq[LRU_GEN_FILE]`, which anon's never passes) born more than `min_ttl` ago.
    fn lruvec_is_reclaimable(&self, sc: &ScanControl, min_ttl: u64) -> bool {
        let swappiness = self.lru_gen_swappiness(sc);
        let g = &self.lru.lrugen;
        let first = (swappiness == 0) as usize;
        let mut total = 0;
        for ty in first..2 {
            for seq in g.min_seq[ty]..=g.max_seq {
                total += self.lru.gen_size(lru_gen_from_seq(seq), ty);
            }
        }
        // lruvec_is_sizable: the root memcg is online, so `total >> priority`
        if total >> sc.priority == 0 {
            return false;
        }
        // "see the comment on lru_gen_folio": the file type's oldest generation
        let birth = g.timestamps[lru_gen_from_seq(g.min_seq[LRU_GEN_FILE])];
        self.now > birth + min_ttl
    }

    /// `lru_gen_look_around` (mm/vmscan.c, 6.12.117), from `folio_referenced_one` for each PTE
    /// of the page: false if the PTE was old. Else it is made old (`ptep_clear_young_notify`),
    /// and so are the young PTEs around it (same page table and VMA, at most MIN_LRU_BATCH
    /// pages; not in a VM_SPECIAL VMA), whose pages are promoted to the youngest generation:
    /// with a walk (`current->reclaim_state->mm_walk`: kswapd always)
    /// by `folio_update_gen`, else by `folio_clear_lru_refs` + `folio_activate` (counting
    /// pgactivate; 6.12.107, without `lru_gen_activate_resets_refs`: `folio_activate` alone, the
    /// page keeps its accesses); a page off the lists gets PG_referenced. Anon pages around a file page are
    /// left alone (`get_pfn_folio`: `!can_swap`). A dirty PTE marks its page dirty. Where the
    /// lruvec has `mm_state` (x86_64), the PTE table goes into the Bloom filter of `max_seq`
    /// when one PTE in 8 of the range was young ("feedback from rmap walkers to page table
    /// walkers", `vmscan/lru_gen_walk.rs`). True.
    pub(crate) fn lru_gen_look_around(&mut self, m: Mapping) -> bool {
        if !self.ptep_test_and_clear_young(m.pid, m.idx) {
            return false;
        }
        let v = self.vma(m.vma);
        // exclude special VMAs containing anon pages from COW
        if v.flags & vm::VM_SPECIAL != 0 {
            return true;
        }
        let pmd_span = self.arch().geometry().0.pt_span();
        let pmd_mask = !(pmd_span - 1);
        let mut start = (m.addr & pmd_mask).max(v.start);
        let mut end = (m.addr | !pmd_mask).min(v.end - 1) + 1;
        if end - start == 4096 {
            return true;
        }
        let batch = MIN_LRU_BATCH * 4096;
        if end - start > batch {
            if m.addr - start < batch / 2 {
                end = start + batch;
            } else if end - m.addr < batch / 2 {
                start = end - batch;
            } else {
                start = m.addr - batch / 2;
                end = m.addr + batch / 2;
            }
        }
        let own = self.arch().pte_pfn(self.mmx(m.pid).pt.pte(m.idx));
        let can_swap =
            (own as usize) < self.mem.frames.len() && folio_type(&self.mem.frames[own as usize]) == LRU_GEN_ANON;
        let new_gen = lru_gen_from_seq(self.lru.lrugen.max_seq);
        let walk = self.lru.lrugen.mm_walk;
        let arch = self.arch();
        let mut young = 1u64;
        // the range is inside the page's own PTE table: its slots are consecutive around m.idx;
        // a first pass keeps the present young ones (at most MIN_LRU_BATCH)
        let first = m.idx - ((m.addr - start) / 4096) as usize;
        let n = ((end - start) / 4096) as usize;
        let mut cand = [0usize; MIN_LRU_BATCH as usize];
        let mut nc = 0;
        let pt = &self.mmx(m.pid).pt;
        for idx in first..first + n {
            let pte = pt.pte(idx);
            if arch.pte_present(pte) && arch.pte_young(pte) {
                cand[nc] = idx;
                nc += 1;
            }
        }
        for &idx in &cand[..nc] {
            let pte = self.mmx(m.pid).pt.pte(idx);
            let Some(pfn) = self.lru_gen_pte_pfn(pte) else { continue };
            // get_pfn_folio: file VMAs can contain anon pages from COW
            if !can_swap && folio_type(&self.mem.frames[pfn as usize]) == LRU_GEN_ANON {
                continue;
            }
            if !self.ptep_test_and_clear_young(m.pid, idx) {
                continue;
            }
            young += 1;
            if arch.pte_dirty(pte) {
                self.lru_gen_mark_dirty(pfn);
            }
            if walk {
                self.folio_update_gen(pfn, new_gen);
                continue;
            }
            match folio_lru_gen(&self.mem.frames[pfn as usize]) {
                None => self.mem.frames[pfn as usize].set(pg::PG_REFERENCED),
                Some(old) if old != new_gen => {
                    if self.lru.lrugen.activate_resets_refs {
                        self.mem.frames[pfn as usize].flags &= !(LRU_REFS_MASK | LRU_REFS_FLAGS);
                    }
                    self.activate_page(pfn);
                }
                Some(_) => {}
            }
        }
        // "feedback from rmap walkers to page table walkers"
        if self.lru_gen_walks_mmu() && suitable_to_scan((end - start) / 4096, young) {
            let max_seq = self.lru.lrugen.max_seq;
            self.lru.lrugen.mm_state.update_bloom_filter(max_seq, pmd_entry_item(m.pid, m.addr));
        }
        true
    }

    /// `folio_inc_refs` (mm/swap.c, 6.12.117), `folio_mark_accessed` with MGLRU: the first access
    /// sets PG_referenced, the second PG_workingset, later ones count up `LRU_REFS_MASK`
    /// (saturating); the page stays in its generation (eviction sorts it by tier).
    pub(crate) fn folio_inc_refs(&mut self, pfn: u32) {
        let f = &mut self.mem.frames[pfn as usize];
        if f.test(pg::PG_UNEVICTABLE) {
            return;
        }
        if !f.test(pg::PG_REFERENCED) {
            f.set(pg::PG_REFERENCED);
            return;
        }
        if !f.test(pg::PG_WORKINGSET) {
            f.set(pg::PG_WORKINGSET);
            return;
        }
        if f.flags & LRU_REFS_MASK != LRU_REFS_MASK {
            f.flags += 1 << LRU_REFS_PGOFF;
        }
    }

    // ------------------------------------------------------------------ mm/workingset.c

    /// `lru_gen_eviction` (mm/workingset.c, 6.12.117): count the page as evicted from its tier and
    /// return its shadow: the `min_seq` of its type with `max(refs - 1, 0)` in the low
    /// LRU_REFS_WIDTH bits (the token, truncated to the shadow's width as EVICTION_MASK does),
    /// and the workingset bit (`refs != 0`) on top.
    pub(crate) fn lru_gen_eviction(&mut self, pfn: u32) -> Shadow {
        let f = &self.mem.frames[pfn as usize];
        let ty = folio_type(f);
        let refs = folio_lru_refs(f);
        let tier = lru_tier_from_refs(refs);
        let min_seq = self.lru.lrugen.min_seq[ty];
        let token = ((min_seq << LRU_REFS_WIDTH) | refs.saturating_sub(1) as u64) as u32 & SHADOW_TOKEN_MASK;
        self.lru.lrugen.evicted[ty][tier] += 1;
        Shadow { eviction: token, workingset: refs != 0 }
    }

    /// `lru_gen_refault` (mm/workingset.c, 6.12.117) for a page read back from swap with `shadow`:
    /// counts workingset_refault; if the page was evicted from the current oldest generation
    /// (`lru_gen_test_recent`), counts the refault in its tier (the PID controller's input) and
    /// workingset_activate; in a fault (`lru_gen_in_fault`) or with many accesses the page
    /// gets the most accesses and PG_workingset, so that `sort_folio` protects it
    /// (workingset_restore).
    pub(crate) fn lru_gen_refault(&mut self, pfn: u32, shadow: Shadow, in_fault: bool) {
        let ty = folio_type(&self.mem.frames[pfn as usize]);
        self.vmstat.inc(if ty == LRU_GEN_FILE { Vm::workingset_refault_file } else { Vm::workingset_refault_anon });
        let token = shadow.eviction & SHADOW_TOKEN_MASK;
        let workingset = shadow.workingset;
        let min_seq = self.lru.lrugen.min_seq[ty];
        let recent = (token >> LRU_REFS_WIDTH) as u64 == min_seq & (SHADOW_TOKEN_MASK >> LRU_REFS_WIDTH) as u64;
        if !recent {
            return;
        }
        let refs = (token & ((1 << LRU_REFS_WIDTH) - 1)) as usize + workingset as usize;
        let tier = lru_tier_from_refs(refs);
        self.lru.lrugen.refaulted[ty][tier] += 1;
        self.vmstat.inc(if ty == LRU_GEN_FILE { Vm::workingset_activate_file } else { Vm::workingset_activate_anon });
        if in_fault || refs >= (1 << LRU_REFS_WIDTH) - 1 {
            let f = &mut self.mem.frames[pfn as usize];
            f.flags |= LRU_REFS_MASK;
            f.set(pg::PG_WORKINGSET);
            // WORKINGSET_RESTORE_BASE + type: only anon (swap-backed) pages refault from swap
            self.vmstat.inc(Vm::workingset_restore_anon);
        }
    }

    // ------------------------------------------------------------------ debugfs

    /// `/sys/kernel/debug/lru_gen` (`lru_gen_seq_show`, mm/vmscan.c, v6.12) of the one lruvec:
    /// a line per generation from `min_seq[LRU_GEN_ANON]` (`full`: the last MAX_NR_GENS
    /// seqs) to `max_seq` with its age in ms and its anon and file pages (`full` marks a seq
    /// below a type's min_seq with `x`), and with `full` (`lru_gen_full`, `-v`) a line per tier
    /// of the PID controller: `R`/`T` the moving averages at max_seq, `r`/`e`/`p` refaulted,
    /// evicted and protected at min_seq, `x` where a count is not kept; where the arch walks
    /// page tables (x86_64, `mm_state`) a line of the walk's mm stats under each generation:
    /// `T`/`Y` leaf entries walked and young, `F`/`A` PTE tables found in and added to the
    /// Bloom filters, at max_seq (`lru_gen_seq_show_full`).
    pub fn lru_gen_debugfs(&self, full: bool) -> String {
        use std::fmt::Write as _;
        let g = &self.lru.lrugen;
        let mut out = String::from("memcg     0 /\n node     0\n");
        let first = if !full { g.min_seq[LRU_GEN_ANON] } else { g.max_seq.saturating_sub(MAX_NR_GENS as u64 - 1) };
        for seq in first..=g.max_seq {
            let gn = lru_gen_from_seq(seq);
            let age_ms = self.now.saturating_sub(g.timestamps[gn]) / 1_000_000;
            let _ = write!(out, " {seq:10} {age_ms:10}");
            for ty in 0..2 {
                let mark = if full && seq < g.min_seq[ty] { 'x' } else { ' ' };
                let _ = write!(out, " {:10}{mark}", self.lru.gen_size(gn, ty));
            }
            out.push('\n');
            if !full {
                continue;
            }
            for tier in 0..MAX_NR_TIERS {
                let _ = write!(out, "            {tier:10}");
                for ty in 0..2 {
                    let (s, n) = if seq == g.max_seq {
                        ("RTx", [g.avg_refaulted[ty][tier], g.avg_total[ty][tier], 0])
                    } else if seq == g.min_seq[ty] {
                        let p = if tier > 0 { g.protected[ty][tier - 1] } else { 0 };
                        ("rep", [g.refaulted[ty][tier], g.evicted[ty][tier], p])
                    } else {
                        ("xxx", [0; 3])
                    };
                    for (v, c) in n.iter().zip(s.chars()) {
                        let _ = write!(out, " {v:10}{c}");
                    }
                }
                out.push('\n');
            }
            if self.lru_gen_walks_mmu() {
                // the mm stats (CONFIG_LRU_GEN_WALKS_MMU), at max_seq only with NR_HIST_GENS 1
                out.push_str("                      ");
                for (i, c) in "TYFA".chars().enumerate() {
                    let (v, c) = if seq == g.max_seq { (g.mm_state.stats[i], c) } else { (0, 'x') };
                    let _ = write!(out, " {v:10}{c}");
                }
                out.push('\n');
            }
        }
        out
    }

    /// Set `/sys/kernel/mm/lru_gen/min_ttl_ms` (`lru_gen_min_ttl`): kswapd protects the working
    /// set of the last `ms` milliseconds (`lru_gen_age_node`); 0 turns it off.
    pub fn set_lru_gen_min_ttl_ms(&mut self, ms: u64) {
        self.lru.lrugen.min_ttl = ms.saturating_mul(1_000_000);
    }
}

/// The shadow's token bits (the model's EVICTION_MASK: 31 bits); the workingset bit is
/// [`Shadow::workingset`].
const SHADOW_TOKEN_MASK: u32 = Shadow::EVICTION_MASK;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::mm::mmap::MapKind;
    use crate::profile::Profile;
    use crate::testutil::proc_with_pages;

    /// A "6.12-debian" kernel (MGLRU on) of `arch` with 8 MiB of memory and 8 MiB of swap.
    fn lru_gen_kernel(arch: Arch) -> Kernel {
        Kernel::new(Profile::get("6.12-debian", arch).unwrap(), 8 << 20, 8 << 20, 1).unwrap()
    }

    /// The pfn mapped at `addr` of `pid`.
    fn pfn_at(k: &Kernel, pid: u32, addr: u64) -> u32 {
        k.arch().pte_pfn(k.pte_at(pid, addr).unwrap())
    }

    /// `n` agings in a row (`try_to_inc_max_seq` with swap, no forced scan), each one making a
    /// new generation.
    fn age(k: &mut Kernel, n: usize) {
        for _ in 0..n {
            let seq = k.lru.lrugen.max_seq;
            assert!(k.try_to_inc_max_seq(seq, true, false));
        }
    }

    /// Make the PTEs of `n` pages from `a` old (as after an earlier look at them).
    fn make_old(k: &mut Kernel, pid: u32, a: u64, n: u64) {
        for i in 0..n {
            let idx = k.mmx(pid).pt.pte_index(a + i * 4096).unwrap();
            k.ptep_test_and_clear_young(pid, idx);
        }
    }

    #[test]
    fn tiers_follow_order_base_2_of_refs_plus_one() {
        // lru_tier_from_refs (include/linux/mm_inline.h, 6.12.117)
        assert_eq!([0, 1, 2, 3, 4].map(lru_tier_from_refs), [0, 1, 2, 2, 3]);
    }

    /// folio_add_lru (mm/swap.c, 6.12.117) in a fault (`lru_gen_in_fault`) sets PG_active, so
    /// lru_gen_add_folio (include/linux/mm_inline.h) puts a freshly faulted page in the
    /// youngest generation, `max_seq`, and clears PG_active; outside a fault an anon page not in
    /// the swap cache goes to the second youngest (`max_seq - 1`).
    #[test]
    fn a_faulted_page_joins_the_youngest_generation_and_a_put_back_one_the_second() {
        for arch in [Arch::S390x, Arch::X86_64] {
            let mut k = lru_gen_kernel(arch);
            let (pid, a) = proc_with_pages(&mut k, false, 4);
            let youngest = lru_gen_from_seq(k.lru.lrugen.max_seq);
            let pfn = pfn_at(&k, pid, a);
            let f = &k.mem.frames[pfn as usize];
            assert_eq!(folio_lru_gen(f), Some(youngest), "{arch:?}");
            assert!(!f.test(pg::PG_ACTIVE));
            assert!(!k.in_lru_fault, "lru_gen_exit_fault");
            assert_eq!(k.lru.gen_size(youngest, LRU_GEN_ANON), 4);
            // the classic gauges count the two youngest generations as active
            assert_eq!(k.lru.size(LruList::ActiveAnon), 4);
            assert_eq!(k.lru.size(LruList::InactiveAnon), 0);
            // isolated for reclaim (lru_gen_del_folio(.., true): no PG_active) and put back
            k.isolate_folio(pfn);
            k.putback_lru_page(pfn);
            let second = lru_gen_from_seq(k.lru.lrugen.max_seq - 1);
            assert_eq!(folio_lru_gen(&k.mem.frames[pfn as usize]), Some(second), "{arch:?}");
            k.check_invariants().unwrap();
        }
    }

    /// lru_gen_add_folio (include/linux/mm_inline.h, 6.12.117): an active page loses
    /// PG_referenced and its LRU_REFS_MASK count but keeps PG_workingset ("Don't clear
    /// PG_workingset here because it can affect PSI accounting").
    #[test]
    fn an_activated_page_loses_its_access_count_but_not_workingset() {
        let mut k = lru_gen_kernel(Arch::S390x);
        let (pid, a) = proc_with_pages(&mut k, false, 1);
        let pfn = pfn_at(&k, pid, a);
        for _ in 0..4 {
            k.folio_inc_refs(pfn);
        }
        let f = k.mem.frames[pfn as usize];
        assert!(f.test(pg::PG_REFERENCED) && f.test(pg::PG_WORKINGSET) && f.flags & LRU_REFS_MASK != 0);
        // isolate_lru_page (not reclaiming): lru_gen_del_folio sets PG_active for an active gen
        assert!(k.isolate_lru_page(pfn));
        assert!(k.mem.frames[pfn as usize].test(pg::PG_ACTIVE));
        k.putback_lru_page(pfn);
        let f = k.mem.frames[pfn as usize];
        assert!(!f.test(pg::PG_ACTIVE) && !f.test(pg::PG_REFERENCED));
        assert_eq!(f.flags & LRU_REFS_MASK, 0);
        assert!(f.test(pg::PG_WORKINGSET));
        assert_eq!(folio_lru_refs(&f), 1);
        k.check_invariants().unwrap();
    }

    /// try_to_inc_max_seq → inc_max_seq (mm/vmscan.c, 6.12.117): aging opens a new, empty
    /// youngest generation; with MAX_NR_GENS generations already, inc_min_seq first empties the
    /// oldest into the next (folio_inc_gen) and advances min_seq.
    #[test]
    fn aging_creates_a_generation() {
        let mut k = lru_gen_kernel(Arch::S390x);
        let (pid, a) = proc_with_pages(&mut k, false, 8);
        let (max0, min0) = (k.lru.lrugen.max_seq, k.lru.lrugen.min_seq);
        assert_eq!((max0, min0), (3, [0, 0]), "lru_gen_init_lruvec: max_seq = MIN_NR_GENS + 1");
        k.tick(1000);
        assert!(k.try_to_inc_max_seq(max0, true, false));
        assert_eq!(k.lru.lrugen.max_seq, max0 + 1);
        assert_eq!(k.lru.lrugen.min_seq, [1, 1], "four generations: the oldest is folded into the next");
        assert_eq!(k.lru.lrugen.timestamps[lru_gen_from_seq(max0 + 1)], k.now, "born now");
        assert_eq!(k.lru.gen_size(lru_gen_from_seq(max0 + 1), LRU_GEN_ANON), 0, "the new generation is empty");
        // the pages stayed in their generation, now the second youngest (still active)
        let f = &k.mem.frames[pfn_at(&k, pid, a) as usize];
        assert_eq!(folio_lru_gen(f), Some(lru_gen_from_seq(max0)));
        assert_eq!(k.lru.size(LruList::ActiveAnon), 8);
        // one more generation and they are inactive
        assert!(k.try_to_inc_max_seq(max0 + 1, true, false));
        assert_eq!(k.lru.size(LruList::InactiveAnon), 8);
        // a stale seq does not age again
        assert!(!k.try_to_inc_max_seq(max0, true, false));
        k.check_invariants().unwrap();
    }

    /// evict_folios → isolate_folios → scan_folios (mm/vmscan.c, 6.12.117): reclaim takes pages
    /// from the oldest generation and leaves the younger ones; every eviction goes through
    /// shrink_folio_list and try_to_unmap_one (the pages become swap entries).
    #[test]
    fn eviction_takes_the_oldest_generation() {
        let mut k = lru_gen_kernel(Arch::S390x);
        let (old_pid, old_a) = proc_with_pages(&mut k, false, 64);
        // faulted into max_seq = 3; three agings make seq 3 the oldest (min_seq 3, max_seq 6)
        age(&mut k, 3);
        let (young_pid, young_a) = proc_with_pages(&mut k, false, 64);
        make_old(&mut k, old_pid, old_a, 64);
        make_old(&mut k, young_pid, young_a, 64);
        let oldest = lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]);
        assert_eq!(folio_lru_gen(&k.mem.frames[pfn_at(&k, old_pid, old_a) as usize]), Some(oldest));
        let got = k.reclaim(32);
        assert!(got >= 32, "reclaimed {got}");
        let arch = k.arch();
        let swapped = |k: &Kernel, pid: u32, a: u64| {
            (0..64).filter(|i| arch.is_swap_pte(k.pte_at(pid, a + i * 4096).unwrap())).count()
        };
        assert!(swapped(&k, old_pid, old_a) >= 32, "the oldest generation was evicted");
        assert_eq!(swapped(&k, young_pid, young_a), 0, "the youngest was not touched");
        assert!(k.log.events().iter().any(|e| e.kind == Ev::LruIsolate), "mm_vmscan_lru_isolate traced");
        assert!(k.log.events().iter().any(|e| e.kind == Ev::TryToUnmapOne));
        assert!(k.vmstat.get(Vm::pswpout) >= 32);
        k.check_invariants().unwrap();
    }

    /// lru_gen_refault (mm/workingset.c, 6.12.117): a page swapped back in from a shadow of the
    /// current oldest generation, in a fault, counts as refaulted in its tier (the PID
    /// controller's input), activated and restored: LRU_REFS_MASK and PG_workingset. The fault's
    /// folio_add_lru then makes it active, and lru_gen_add_folio clears LRU_REFS_MASK again: it
    /// lands in the youngest generation with PG_workingset only (tier 1).
    #[test]
    fn a_refaulting_page_is_restored_into_the_youngest_generation() {
        let mut k = lru_gen_kernel(Arch::S390x);
        // one page read per fault: readahead's neighbours would refault too
        k.set_page_cluster(0).unwrap();
        let (pid, a) = proc_with_pages(&mut k, false, 64);
        make_old(&mut k, pid, a, 64);
        assert!(k.reclaim(32) >= 32);
        let arch = k.arch();
        let gone = (0..64).find(|i| arch.is_swap_pte(k.pte_at(pid, a + i * 4096).unwrap())).unwrap();
        let evicted: u64 = k.lru.lrugen.evicted[LRU_GEN_ANON].iter().sum();
        assert!(evicted >= 32, "lru_gen_eviction counts each eviction in its tier");
        let before = k.vmstat.get(Vm::workingset_restore_anon);
        k.access(pid, 0, a + gone * 4096, false, 0).unwrap();
        assert_eq!(k.vmstat.get(Vm::workingset_refault_anon), 1);
        assert_eq!(k.vmstat.get(Vm::workingset_activate_anon), 1, "the shadow is of the oldest generation");
        assert_eq!(k.vmstat.get(Vm::workingset_restore_anon), before + 1, "in a fault");
        let pfn = pfn_at(&k, pid, a + gone * 4096);
        let f = k.mem.frames[pfn as usize];
        assert!(f.test(pg::PG_WORKINGSET));
        assert_eq!(folio_lru_refs(&f), 1, "LRU_REFS_MASK cleared by lru_gen_add_folio");
        assert_eq!(folio_lru_gen(&f), Some(lru_gen_from_seq(k.lru.lrugen.max_seq)));
        let refaulted: u64 = k.lru.lrugen.refaulted[LRU_GEN_ANON].iter().sum();
        assert_eq!(refaulted, 1);
        k.check_invariants().unwrap();
    }

    /// lru_gen_add_folio (include/linux/mm_inline.h) before "mm/mglru: reset page lru tier bits
    /// when activating" (Debian 6.12.107, the s390x guests; `lru_gen_activate_resets_refs`
    /// off): `set_mask_bits(&folio->flags, LRU_GEN_MASK | BIT(PG_active), flags)` leaves the
    /// accesses lru_gen_refault gave a page refaulted in a fault, so it stays in the top tier
    /// (refs = LRU_REFS_MASK + PG_workingset = BIT(LRU_REFS_WIDTH)) and sort_folio (6.12.107 as
    /// 6.12.117 here) protects it into the next generation when eviction reaches it; 6.12.117
    /// clears them (tier 1) and evicts it.
    #[test]
    fn before_6_12_114_a_page_refaulted_in_a_fault_keeps_its_accesses_and_is_protected() {
        for (profile, resets) in [("6.12.107-debian", false), ("6.12-debian", true)] {
            let mut k = Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
            assert_eq!(k.lru.lrugen.activate_resets_refs, resets);
            k.set_page_cluster(0).unwrap();
            let (pid, a) = proc_with_pages(&mut k, false, 64);
            make_old(&mut k, pid, a, 64);
            assert!(k.reclaim(32) >= 32);
            let arch = k.arch();
            let gone = (0..64).find(|i| arch.is_swap_pte(k.pte_at(pid, a + i * 4096).unwrap())).unwrap();
            k.access(pid, 0, a + gone * 4096, false, 0).unwrap();
            assert_eq!(k.vmstat.get(Vm::workingset_restore_anon), 1, "{profile}");
            let pfn = pfn_at(&k, pid, a + gone * 4096);
            let f = k.mem.frames[pfn as usize];
            let refs = folio_lru_refs(&f);
            assert_eq!(refs, if resets { 1 } else { 1 << LRU_REFS_WIDTH }, "{profile}");
            // make its generation the oldest and let eviction sort it (tier_idx 1: tier 1 stays)
            let gn = folio_lru_gen(&f).unwrap();
            k.lru.lrugen.min_seq[LRU_GEN_ANON] = k.lru.lrugen.max_seq;
            k.lru.lrugen.max_seq += 2;
            assert_eq!(lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]), gn);
            let protected = k.lru.lrugen.protected[LRU_GEN_ANON];
            let kept = k.sort_folio(pfn, &ScanControl::new(0, true), 1);
            assert_eq!(kept, !resets, "{profile}: protected only with its accesses kept");
            if kept {
                let f = k.mem.frames[pfn as usize];
                assert_ne!(folio_lru_gen(&f), Some(gn), "{profile}: into the next generation");
                assert_eq!(k.lru.lrugen.protected[LRU_GEN_ANON][2], protected[2] + 1, "{profile}: tier 3");
            }
        }
    }

    /// sort_folio (mm/vmscan.c, 6.12.117) on pages at the tail of the oldest generation: a page
    /// with the most accesses is protected into the next generation and counted in `protected`
    /// of its tier; a page whose generation is another ("promoted", as folio_update_gen leaves
    /// it) moves to that generation's list; an mlocked page is let through (false) for
    /// shrink_folio_list to cull; a plain page is evicted (false).
    #[test]
    fn sort_folio_protects_promotes_and_lets_through() {
        let mut k = lru_gen_kernel(Arch::S390x);
        let (pid, a) = proc_with_pages(&mut k, false, 4);
        age(&mut k, 3);
        let min_gen = lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]);
        let pfns: Vec<u32> = (0..4).map(|i| pfn_at(&k, pid, a + i * 4096)).collect();
        assert!(pfns.iter().all(|&p| folio_lru_gen(&k.mem.frames[p as usize]) == Some(min_gen)));
        let sc = ScanControl::new(0, true);
        // protected: PG_referenced, PG_workingset, then LRU_REFS_MASK up to its top
        for _ in 0..5 {
            k.folio_inc_refs(pfns[0]);
        }
        assert_eq!(folio_lru_refs(&k.mem.frames[pfns[0] as usize]), 1 << LRU_REFS_WIDTH);
        assert!(k.sort_folio(pfns[0], &sc, MAX_NR_TIERS - 1));
        assert_eq!(folio_lru_gen(&k.mem.frames[pfns[0] as usize]), Some((min_gen + 1) % MAX_NR_GENS));
        assert_eq!(k.lru.lrugen.protected[LRU_GEN_ANON][lru_tier_from_refs(1 << LRU_REFS_WIDTH) - 1], 1);
        assert_eq!(folio_lru_refs(&k.mem.frames[pfns[0] as usize]), 0, "folio_inc_gen clears the count");
        // promoted: the flags name the youngest generation, the page is still on the oldest list
        let youngest = lru_gen_from_seq(k.lru.lrugen.max_seq);
        k.folio_update_gen(pfns[1], youngest);
        let oldest_list = list_index(min_gen, LRU_GEN_ANON);
        assert_eq!(k.mem.frames[pfns[1] as usize].lru_list() as usize, oldest_list);
        assert!(k.sort_folio(pfns[1], &sc, 0));
        assert_eq!(k.mem.frames[pfns[1] as usize].lru_list() as usize, list_index(youngest, LRU_GEN_ANON));
        // unevictable: let through
        k.mem.frames[pfns[2] as usize].set(pg::PG_MLOCKED);
        assert!(!k.sort_folio(pfns[2], &sc, 0));
        k.mem.frames[pfns[2] as usize].clear(pg::PG_MLOCKED);
        // a tier-0 page: evicted
        assert!(!k.sort_folio(pfns[3], &sc, 0));
        k.check_invariants().unwrap();
    }

    /// get_tier_idx / positive_ctrl_err (mm/vmscan.c, 6.12.117): the PID controller evicts a tier
    /// whose refault rate is within twice the first tier's, and protects it once it refaults
    /// more.
    #[test]
    fn the_pid_controller_protects_a_tier_that_refaults_more_than_the_first() {
        let mut lru = Lru::with_lru_gen(true);
        let g = &mut lru.lrugen;
        g.evicted[LRU_GEN_ANON] = [1000, 1000, 1000, 1000];
        g.refaulted[LRU_GEN_ANON] = [100, 100, 100, 100];
        assert_eq!(lru.get_tier_idx(LRU_GEN_ANON), MAX_NR_TIERS - 1, "same rates: evict every tier");
        lru.lrugen.refaulted[LRU_GEN_ANON][1] = 900;
        assert_eq!(lru.get_tier_idx(LRU_GEN_ANON), 0, "tier 1 refaults 9x as often: protected");
        // below MIN_LRU_BATCH refaults the controller does not act
        lru.lrugen.refaulted[LRU_GEN_ANON] = [0, 63, 0, 0];
        assert_eq!(lru.get_tier_idx(LRU_GEN_ANON), MAX_NR_TIERS - 1);
    }

    /// The caps (/sys/kernel/mm/lru_gen/enabled) and the young emulation: s390 has no hardware
    /// young bit, so 6.12 reports 0x0001 and aging walks no page tables (`try_to_inc_max_seq`
    /// without `mm_state` goes straight to `inc_max_seq`): the PTEs stay young and the pages
    /// stay in their generation. x86_64 reports 0x0007 and the walk (`walk_pte_range`) makes
    /// young PTEs old and promotes their pages to the youngest generation (`folio_update_gen`).
    #[test]
    fn aging_walks_page_tables_only_with_the_mm_walk_cap() {
        for (arch, caps, walks) in [(Arch::S390x, 0x0001, false), (Arch::X86_64, 0x0007, true)] {
            let mut k = lru_gen_kernel(arch);
            assert_eq!(k.lru.lrugen.caps, caps, "{arch:?}");
            let (pid, a) = proc_with_pages(&mut k, false, 8);
            let faulted = lru_gen_from_seq(k.lru.lrugen.max_seq);
            make_old(&mut k, pid, a, 8);
            // touch the first page again: young once more
            k.access(pid, 0, a, false, 0).unwrap();
            let seq = k.lru.lrugen.max_seq;
            assert!(k.try_to_inc_max_seq(seq, true, false));
            let young = k.arch().pte_young(k.pte_at(pid, a).unwrap());
            assert_eq!(young, !walks, "{arch:?}: the walk clears young bits");
            let gn = folio_lru_gen(&k.mem.frames[pfn_at(&k, pid, a) as usize]).unwrap();
            assert_eq!(gn, faulted, "{arch:?}: the walk's generation is max_seq before the increment");
            // the next aging finds it young (s390: never looked at)
            k.access(pid, 0, a, false, 0).unwrap();
            let seq = k.lru.lrugen.max_seq;
            assert!(k.try_to_inc_max_seq(seq, true, false));
            let gn = folio_lru_gen(&k.mem.frames[pfn_at(&k, pid, a) as usize]).unwrap();
            let expect = if walks { lru_gen_from_seq(seq) } else { faulted };
            assert_eq!(gn, expect, "{arch:?}: folio_update_gen promotes what the walk found young");
            let cold = folio_lru_gen(&k.mem.frames[pfn_at(&k, pid, a + 4096) as usize]).unwrap();
            assert_eq!(cold, faulted, "{arch:?}: an old PTE's page stays");
            k.check_invariants().unwrap();
        }
    }

    /// lru_gen_look_around (mm/vmscan.c, 6.12.117) on s390 (caps 0x0001), from
    /// folio_referenced_one: the page's own PTE is made old first (referenced), then the young
    /// PTEs around it, i.e. made invalid: their pages are promoted to the youngest generation
    /// (direct reclaim has no walk: folio_activate, pgactivate), and the next access to one is
    /// a (minor) fault that makes it young again. An old PTE is not referenced.
    #[test]
    fn look_around_makes_neighbours_old_and_promotes_them_on_s390() {
        let mut k = lru_gen_kernel(Arch::S390x);
        let (pid, a) = proc_with_pages(&mut k, false, 16);
        for _ in 0..2 {
            let seq = k.lru.lrugen.max_seq;
            assert!(k.try_to_inc_max_seq(seq, true, false));
        }
        let target = pfn_at(&k, pid, a);
        assert!(k.isolate_lru_page(target));
        let activations = k.vmstat.get(Vm::pgactivate);
        let r = k.folio_referenced(target);
        assert_eq!(r.referenced, 1);
        let arch = k.arch();
        assert!(!arch.pte_young(k.pte_at(pid, a).unwrap()), "its own PTE made old");
        let neighbour = a + 5 * 4096;
        let pte = k.pte_at(pid, neighbour).unwrap();
        assert!(!arch.pte_young(pte), "the neighbour's PTE was made old");
        let npfn = arch.pte_pfn(pte);
        let youngest = lru_gen_from_seq(k.lru.lrugen.max_seq);
        assert_eq!(folio_lru_gen(&k.mem.frames[npfn as usize]), Some(youngest), "promoted (folio_activate)");
        assert_eq!(k.vmstat.get(Vm::pgactivate), activations + 15, "the fifteen neighbours");
        assert_eq!(k.folio_referenced(target).referenced, 0, "an old PTE: not referenced");
        k.putback_lru_page(target);
        let faults = k.vmstat.get(Vm::pgfault);
        k.access(pid, 0, neighbour, false, 0).unwrap();
        assert_eq!(k.vmstat.get(Vm::pgfault), faults + 1, "s390 young emulation: a minor fault");
        assert!(arch.pte_young(k.pte_at(pid, neighbour).unwrap()));
        k.check_invariants().unwrap();
    }

    /// lru_gen_look_around (mm/vmscan.c, 6.12.107): a young neighbour already in the youngest
    /// generation (`old_gen == new_gen`) is made old and left in it, not activated; until it is
    /// accessed again it is not referenced, so on s390 (no page-table walk to find it young
    /// again) a page seldom used beside a young page that eviction met ages out with its
    /// generation (FINDINGS section 8, the s390x MGLRU phase row).
    #[test]
    fn look_around_leaves_an_old_neighbour_in_the_youngest_generation_on_s390() {
        let mut k = Kernel::new(Profile::get("6.12.107-debian", Arch::S390x).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
        let (pid, a) = proc_with_pages(&mut k, false, 16);
        let youngest = lru_gen_from_seq(k.lru.lrugen.max_seq);
        let target = pfn_at(&k, pid, a);
        let neighbour = a + 5 * 4096;
        let npfn = pfn_at(&k, pid, neighbour);
        assert_eq!(folio_lru_gen(&k.mem.frames[npfn as usize]), Some(youngest), "faulted into max_seq");
        assert!(k.isolate_lru_page(target));
        let activations = k.vmstat.get(Vm::pgactivate);
        assert_eq!(k.folio_referenced(target).referenced, 1);
        let arch = k.arch();
        assert!(!arch.pte_young(k.pte_at(pid, neighbour).unwrap()), "the neighbour's PTE was made old");
        assert_eq!(folio_lru_gen(&k.mem.frames[npfn as usize]), Some(youngest), "left where it was");
        assert_eq!(k.vmstat.get(Vm::pgactivate), activations, "no folio_activate");
        k.putback_lru_page(target);
        assert!(k.isolate_lru_page(npfn));
        assert_eq!(k.folio_referenced(npfn).referenced, 0, "not referenced when eviction meets it");
        k.putback_lru_page(npfn);
        k.check_invariants().unwrap();
    }

    /// lru_gen_shrink_node (mm/vmscan.c, 6.12.117): kswapd reclaims with `pgdat->mm_walk`, so
    /// its lru_gen_look_around promotes with folio_update_gen (no pgactivate), and clears the
    /// walk when done; set_initial_priority never starts below DEF_PRIORITY / 2.
    #[test]
    fn kswapd_looks_around_with_its_walk_and_no_activations() {
        let mut k = lru_gen_kernel(Arch::S390x);
        let (pid, a) = proc_with_pages(&mut k, false, 64);
        age(&mut k, 3);
        let mut sc = ScanControl::new(4096, true);
        k.lru_gen_shrink_node(&mut sc);
        assert!(sc.priority >= DEF_PRIORITY / 2, "priority {}", sc.priority);
        assert!(!k.lru.lrugen.mm_walk, "clear_mm_walk");
        assert_eq!(k.vmstat.get(Vm::pgactivate), 0, "folio_update_gen, not folio_activate");
        let youngest = lru_gen_from_seq(k.lru.lrugen.max_seq);
        let promoted = (1..64)
            .filter(|i| folio_lru_gen(&k.mem.frames[pfn_at(&k, pid, a + i * 4096) as usize]) == Some(youngest))
            .count();
        assert!(promoted > 0, "look-around promoted the neighbours");
        k.check_invariants().unwrap();
    }

    /// folio_inc_refs (mm/swap.c, 6.12.117): accesses through a file descriptor count up the tiers
    /// (PG_referenced, then PG_workingset, then LRU_REFS_MASK, saturating) without moving the
    /// page.
    #[test]
    fn mark_accessed_counts_up_the_tiers() {
        let mut k = lru_gen_kernel(Arch::S390x);
        let pid = k.spawn("t", false).unwrap();
        let a = k.mmap(pid, 4096, MapKind::Shmem, true, None).unwrap();
        k.access(pid, 0, a, true, 7).unwrap();
        let pfn = pfn_at(&k, pid, a);
        let gn = folio_lru_gen(&k.mem.frames[pfn as usize]);
        let mut tiers = Vec::new();
        for _ in 0..6 {
            k.mark_page_accessed(pfn);
            tiers.push(lru_tier_from_refs(folio_lru_refs(&k.mem.frames[pfn as usize])));
        }
        assert_eq!(tiers, [0, 1, 2, 2, 3, 3]);
        assert_eq!(folio_lru_gen(&k.mem.frames[pfn as usize]), gn);
    }

    /// lru_deactivate (mm/swap.c, 6.12.117) with MGLRU: MADV_COLD takes a page of the youngest
    /// generation out of it (`!(folio_test_active(folio) || lru_gen_enabled())` lets every
    /// evictable page through).
    #[test]
    fn madv_cold_takes_a_page_out_of_the_youngest_generation() {
        let mut k = lru_gen_kernel(Arch::S390x);
        let (pid, a) = proc_with_pages(&mut k, false, 1);
        let pfn = pfn_at(&k, pid, a);
        k.activate_page(pfn);
        let youngest = lru_gen_from_seq(k.lru.lrugen.max_seq);
        assert_eq!(folio_lru_gen(&k.mem.frames[pfn as usize]), Some(youngest));
        k.madvise(pid, a, 4096, crate::mm::madvise::Advice::Cold).unwrap();
        assert_eq!(folio_lru_gen(&k.mem.frames[pfn as usize]), Some(lru_gen_from_seq(k.lru.lrugen.max_seq - 1)));
        assert_eq!(k.vmstat.get(Vm::pgdeactivate), 1);
        k.check_invariants().unwrap();
    }

    /// A kernel of `profile` (s390x, 8 MiB) with the virtio-blk swap device on one CPU (writes
    /// stay queued until something waits for them) and 64 anon pages with old PTEs in the
    /// oldest of four generations; the process and its first address.
    fn writeback_kernel(profile: &str) -> (Kernel, u32, u64) {
        let mut k = Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
        k.set_swap_io(crate::mm::page_io::SwapIo::VirtioBlk).unwrap();
        k.set_kswapd_mode(crate::vmscan::kswapd::KswapdMode::OneCpu);
        let (pid, a) = proc_with_pages(&mut k, false, 64);
        age(&mut k, 3);
        make_old(&mut k, pid, a, 64);
        (k, pid, a)
    }

    /// The pfns of the 64 pages of `writeback_kernel`, now in the swap cache.
    fn cached_pfns(k: &Kernel) -> Vec<u32> {
        (1..=64).filter_map(|off| k.swap.cache_page(off)).collect()
    }

    /// lru_gen_add_folio (include/linux/mm_inline.h) and evict_folios (mm/vmscan.c), 6.12.107
    /// and 6.12.117 alike, with the swap written asynchronously: pageout leaves each page under
    /// writeback with PG_reclaim, shrink_folio_list keeps it ("if (folio_test_writeback(folio))
    /// goto keep;"), evict_folios puts it back as it is (no retry: "folio_test_reclaim(folio) &&
    /// (folio_test_dirty(folio) || folio_test_writeback(folio))") and lru_gen_add_folio puts a
    /// PG_reclaim page under writeback in the second youngest generation ("a dirty page pending
    /// writeback"). The write's completion (folio_end_writeback, mm/filemap.c) →
    /// folio_rotate_reclaimable → lru_move_tail (mm/swap.c) → lru_gen_add_folio(..,
    /// reclaiming=true) moves it to the tail of the oldest generation, PGROTATED, where the
    /// next eviction frees it without writing it again.
    #[test]
    fn a_page_written_asynchronously_waits_in_the_second_youngest_generation_and_completion_rotates_it_to_the_oldest() {
        for profile in ["6.12.107-debian", "6.12-debian"] {
            let (mut k, _, _) = writeback_kernel(profile);
            let mut sc = ScanControl::new(64, false);
            k.evict_folios(&mut sc, SWAPPINESS);
            assert_eq!(sc.nr_reclaimed, 0, "{profile}: every write is in flight");
            assert_eq!((k.vmstat.get(Vm::pswpout), k.nr_writeback()), (64, 64), "{profile}");
            let pending = lru_gen_from_seq(k.lru.lrugen.max_seq - 1);
            for pfn in cached_pfns(&k) {
                let f = k.mem.frames[pfn as usize];
                assert!(f.test(pg::PG_WRITEBACK) && f.test(pg::PG_RECLAIM), "{profile}");
                assert_eq!(folio_lru_gen(&f), Some(pending), "{profile}: the second youngest");
            }
            k.check_invariants().unwrap();
            k.swap_io_complete();
            assert_eq!(k.vmstat.get(Vm::pgrotated), 64, "{profile}");
            let oldest = lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]);
            let pfns = cached_pfns(&k);
            assert_eq!(k.lru.tail_at(list_index(oldest, LRU_GEN_ANON)), pfns.last().copied(), "{profile}");
            for &pfn in &pfns {
                let f = k.mem.frames[pfn as usize];
                assert!(!f.test(pg::PG_WRITEBACK) && !f.test(pg::PG_RECLAIM), "{profile}");
                assert_eq!(folio_lru_gen(&f), Some(oldest), "{profile}: rotated to the oldest");
            }
            k.check_invariants().unwrap();
            // a third generation to evict from (get_nr_to_scan would age first)
            let seq = k.lru.lrugen.max_seq;
            assert!(k.try_to_inc_max_seq(seq, true, false));
            let mut sc = ScanControl::new(64, false);
            k.evict_folios(&mut sc, SWAPPINESS);
            assert_eq!(sc.nr_reclaimed, 64, "{profile}: clean, unmapped: freed");
            assert_eq!(k.vmstat.get(Vm::pswpout), 64, "{profile}: not written again");
            k.check_invariants().unwrap();
        }
    }

    /// evict_folios (mm/vmscan.c, 6.12.107 and 6.12.117): "retry folios that may have missed
    /// folio_rotate_reclaimable()". A page whose write completes while it is still isolated
    /// (here: the virtio-blk queue is full when the batch's second page is written, so the
    /// device completes every queued write, the batch's first among them) is not on an LRU
    /// when folio_end_writeback runs, so it is not rotated; it comes back from
    /// shrink_folio_list clean, unmapped and off writeback, and the retry frees it.
    #[test]
    fn a_page_whose_write_completed_while_isolated_is_retried_and_freed() {
        use crate::mm::page_io::VIRTIO_BLK_QUEUE_DEPTH;
        for profile in ["6.12.107-debian", "6.12-debian"] {
            let (mut k, _, _) = writeback_kernel(profile);
            // fill the queue but one with another process's pages (MADV_PAGEOUT)
            let n = VIRTIO_BLK_QUEUE_DEPTH as u64 - 1;
            let (other, b) = proc_with_pages(&mut k, false, n);
            k.madvise(other, b, n * 4096, crate::mm::madvise::Advice::Pageout).unwrap();
            assert_eq!(k.nr_writeback(), n as usize, "{profile}");
            let mut sc = ScanControl::new(64, false);
            k.evict_folios(&mut sc, SWAPPINESS);
            assert_eq!(sc.nr_reclaimed, 1, "{profile}: the batch's first page, retried");
            assert_eq!(k.vmstat.get(Vm::pgrotated), n, "{profile}: the others' pages, on the LRU");
            assert_eq!(k.nr_writeback(), 63, "{profile}: the rest of the batch in flight");
            k.check_invariants().unwrap();
        }
    }

    /// sort_folio (mm/vmscan.c) meeting a page still under writeback at the tail of the oldest
    /// generation: 6.12.107 keeps it ("waiting for writeback": folio_inc_gen(.., true) sets
    /// PG_reclaim and moves it to the head of the next generation; counted in PGREFILL, not
    /// isolated); 6.12.117, after "mm/mglru: use the common routine for dirty/writeback
    /// reactivation" (lru_gen_writeback_reactivates), lets it through: isolated (PGSCAN),
    /// shrink_folio_list's case 2 activates it (PGACTIVATE) and lru_gen_add_folio puts the
    /// active page in the youngest generation. Completion rotates it in both.
    #[test]
    fn before_6_12_114_sort_folio_keeps_a_page_under_writeback_and_after_it_shrink_folio_list_reactivates_it() {
        for (profile, reactivates) in [("6.12.107-debian", false), ("6.12-debian", true)] {
            let (mut k, _, _) = writeback_kernel(profile);
            assert_eq!(k.profile.lru_gen_writeback_reactivates, reactivates);
            let mut sc = ScanControl::new(64, false);
            k.evict_folios(&mut sc, SWAPPINESS);
            // one more generation, so that theirs (max_seq - 1) is the oldest of three
            let seq = k.lru.lrugen.max_seq;
            assert!(k.try_to_inc_max_seq(seq, true, false));
            let pending = lru_gen_from_seq(seq - 1);
            assert_eq!(lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]), pending, "{profile}");
            let (scan, refill, act) =
                (k.vmstat.get(Vm::pgscan_direct), k.vmstat.get(Vm::pgrefill), k.vmstat.get(Vm::pgactivate));
            let mut sc = ScanControl::new(64, false);
            k.evict_folios(&mut sc, SWAPPINESS);
            assert_eq!(sc.nr_reclaimed, 0, "{profile}");
            let (scan, refill, act) = (
                k.vmstat.get(Vm::pgscan_direct) - scan,
                k.vmstat.get(Vm::pgrefill) - refill,
                k.vmstat.get(Vm::pgactivate) - act,
            );
            let expect = if reactivates {
                ((64, 0, 64), lru_gen_from_seq(k.lru.lrugen.max_seq))
            } else {
                ((0, 64, 0), lru_gen_from_seq(seq))
            };
            assert_eq!((scan, refill, act), expect.0, "{profile}: (pgscan, pgrefill, pgactivate)");
            for pfn in cached_pfns(&k) {
                let f = k.mem.frames[pfn as usize];
                assert!(f.test(pg::PG_WRITEBACK) && f.test(pg::PG_RECLAIM), "{profile}");
                assert_eq!(folio_lru_gen(&f), Some(expect.1), "{profile}");
            }
            assert_eq!(k.vmstat.get(Vm::pswpout), 64, "{profile}: no second write");
            k.check_invariants().unwrap();
            k.swap_io_complete();
            assert_eq!(k.vmstat.get(Vm::pgrotated), 64, "{profile}");
            k.check_invariants().unwrap();
        }
    }

    /// isolate_folio (mm/vmscan.c): 6.12.107 clears PG_reclaim "for shrink_folio_list()", and
    /// with it PG_readahead (the same bit): a swap-readahead page that eviction takes and keeps
    /// no longer counts a readahead hit when it is faulted; 6.12.117 (after "mm/mglru: use the
    /// common routine for dirty/writeback reactivation") leaves it.
    #[test]
    fn before_6_12_114_isolate_folio_clears_pg_reclaim_and_so_pg_readahead() {
        for (profile, clears) in [("6.12.107-debian", true), ("6.12-debian", false)] {
            let mut k = Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
            let (pid, a) = proc_with_pages(&mut k, false, 1);
            let pfn = pfn_at(&k, pid, a);
            k.mem.frames[pfn as usize].set(pg::PG_READAHEAD);
            k.isolate_folio(pfn);
            assert_eq!(!k.mem.frames[pfn as usize].test(pg::PG_RECLAIM), clears, "{profile}");
            k.putback_lru_page(pfn);
        }
    }

    /// sort_folio (mm/vmscan.c) on an unevictable (mlocked) page in the oldest generation:
    /// 6.12.107 culls it there (lru_gen_del_folio, folio_set_unevictable, lruvec_add_folio,
    /// UNEVICTABLE_PGCULLED; a sorted page, PGREFILL); 6.12.117, after "mm/mglru: fix and
    /// remove redundant unevictable folio handling" (lru_gen_sort_lets_unevictable_through),
    /// lets it through: isolated (PGSCAN), and shrink_folio_list / move_folios_to_lru's
    /// folio_putback_lru cull it. Either way it ends on the unevictable list, counted culled once.
    #[test]
    fn before_6_12_114_sort_folio_culls_an_unevictable_page_itself() {
        for (profile, through) in [("6.12.107-debian", false), ("6.12-debian", true)] {
            let mut k = Kernel::new(Profile::get(profile, Arch::S390x).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
            assert_eq!(k.profile.lru_gen_sort_lets_unevictable_through, through);
            let (pid, a) = proc_with_pages(&mut k, false, 64);
            age(&mut k, 3);
            // the page at the tail of the oldest generation: the first eviction meets
            let oldest = list_index(lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]), LRU_GEN_ANON);
            let pfn = k.lru.tail_at(oldest).unwrap();
            k.mem.frames[pfn as usize].set(pg::PG_MLOCKED);
            let (scan, refill) = (k.vmstat.get(Vm::pgscan_direct), k.vmstat.get(Vm::pgrefill));
            let mut sc = ScanControl::new(1, false);
            k.evict_folios(&mut sc, SWAPPINESS);
            let f = k.mem.frames[pfn as usize];
            assert!(f.test(pg::PG_UNEVICTABLE) && f.test(pg::PG_LRU), "{profile}");
            assert_eq!(f.lru_list() as usize, LruList::Unevictable as usize, "{profile}");
            assert_eq!(k.vmstat.get(Vm::unevictable_pgs_culled), 1, "{profile}");
            // 6.12.107 sorted it; 6.12.117 isolated it with the others
            assert_eq!(k.vmstat.get(Vm::pgrefill) - refill, !through as u64, "{profile}");
            assert_eq!(k.vmstat.get(Vm::pgscan_direct) - scan, 64 - !through as u64, "{profile}");
            let _ = (pid, a);
        }
    }

    /// Profile::check_switches: MGLRU exists from v6.1; a 4.x profile refuses it, saying why.
    #[test]
    fn lru_gen_is_refused_before_v6_1() {
        let e = Profile::derive(
            "4.18",
            Arch::S390x,
            "4.18+lru_gen",
            &[("lru_gen", crate::profile::SwitchValue::Bool(true))],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("v6.1") && e.contains("v4.18") && e.contains("workingset_anon"), "{e}");
        assert_eq!(Profile::get("6.12", Arch::S390x).unwrap().lru_gen_caps(), 0, "upstream default: off");
    }

    /// A "6.12-debian" x86_64 kernel with guest zones (DMA 2,304 pages, DMA32 5,887) whose
    /// process faulted `n` pages in, which no reclaim has met: (kernel, pid, start).
    fn zoned_faulted(n: u64) -> (Kernel, u32, u64) {
        use crate::mm::mmzone::ZoneSpec;
        let mut k =
            Kernel::new(Profile::get("6.12-debian", Arch::X86_64).unwrap(), 8192 * 4096, 16384 * 4096, 1).unwrap();
        let dma = ZoneSpec { managed: 2304, held: 0, min: 16, low: 20, high: 24, lowmem_reserve: 20 };
        let dma32 = ZoneSpec { managed: 5887, held: 100, min: 40, low: 50, high: 60, lowmem_reserve: 0 };
        k.set_guest_zones(dma, dma32, None).unwrap();
        let (pid, a) = proc_with_pages(&mut k, false, n);
        (k, pid, a)
    }

    /// A 6.12-debian x86_64 kernel with the guest's zones (`Kernel::set_guest_zones`: 2304 DMA
    /// pages, 5887 DMA32) and a process of `n` pages, the last ones from ZONE_DMA once DMA32 is
    /// at its low watermark, every PTE made old (so the aging walk promotes none), aged until
    /// the pages are the oldest generation. Returns the kernel, the DMA pages and the DMA32 pages.
    fn zoned_oldest(n: u64) -> (Kernel, Vec<u32>, Vec<u32>) {
        let (mut k, pid, a) = zoned_faulted(n);
        make_old(&mut k, pid, a, n);
        let gn = folio_lru_gen(&k.mem.frames[pfn_at(&k, pid, a) as usize]).unwrap();
        while lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]) != gn {
            let seq = k.lru.lrugen.max_seq;
            assert!(k.try_to_inc_max_seq(seq, true, false));
        }
        let pfns: Vec<u32> = (0..n).map(|i| pfn_at(&k, pid, a + i * 4096)).collect();
        assert!(pfns.iter().all(|&p| folio_lru_gen(&k.mem.frames[p as usize]) == Some(gn)), "all in the oldest");
        let (dma, dma32): (Vec<u32>, Vec<u32>) =
            pfns.into_iter().partition(|&p| k.lru.zonenum(p) == crate::mm::mmzone::ZONE_DMA);
        k.check_invariants().unwrap();
        (k, dma, dma32)
    }

    /// `lru_gen_add_folio` (include/linux/mm_inline.h, 6.12.117) adds a folio to
    /// `lrugen->folios[gen][type][folio_zonenum(folio)]`: with the guest's zones a page of
    /// ZONE_DMA is on its generation's list of that zone, a DMA32 page on the other, and the
    /// generation's size (`nr_pages[gen][type][zone]` over the zones) counts both.
    #[test]
    fn a_page_joins_its_generation_on_the_list_of_its_zone() {
        let (k, dma, dma32) = zoned_oldest(6000);
        assert!(dma.len() > 200 && dma32.len() > 5000, "{} DMA, {} DMA32", dma.len(), dma32.len());
        let li = list_index(lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]), LRU_GEN_ANON);
        assert_eq!(k.lru.size_zone(li, crate::mm::mmzone::ZONE_DMA), dma.len() as u64);
        assert_eq!(k.lru.size_zone(li, crate::mm::mmzone::ZONE_DMA32), dma32.len() as u64);
        assert_eq!(k.lru.size_at(li), 6000);
        // the first page faulted (the tail) is DMA32's; the DMA list's tail is DMA's first
        assert_eq!(k.lru.tail_zone(li, crate::mm::mmzone::ZONE_DMA32), Some(dma32[0]));
        assert_eq!(k.lru.tail_zone(li, crate::mm::mmzone::ZONE_DMA), Some(dma[0]));
    }

    /// `scan_folios` (mm/vmscan.c, 6.12.117) walks the oldest generation's lists from
    /// `zone = sc->reclaim_idx` down ("(sc->reclaim_idx + i) % MAX_NR_ZONES"): a reclaim of
    /// every zone takes DMA32's pages first, though DMA's are as old; a reclaim of ZONE_DMA
    /// only (kswapd woken for a boosted DMA zone) takes DMA's, and when they run out before
    /// MIN_LRU_BATCH, `sort_folio` moves each DMA32 page it meets to the next generation
    /// ("ineligible": `zone > sc->reclaim_idx`), counted in PGREFILL, until MAX_LRU_BATCH.
    #[test]
    fn scan_folios_takes_the_zones_from_reclaim_idx_down_and_moves_on_ineligible_pages() {
        use crate::mm::mmzone::{ZONE_DMA, ZONE_DMA32};
        let (mut k, dma, dma32) = zoned_oldest(6000);
        let mut sc = ScanControl::new(0, true);
        assert_eq!(sc.reclaim_idx, ZONE_DMA32);
        let (scanned, list) = k.scan_folios(&sc, LRU_GEN_ANON, 0);
        assert_eq!((scanned, list.len() as u64), (MIN_LRU_BATCH, MIN_LRU_BATCH));
        assert_eq!(list, dma32[..MIN_LRU_BATCH as usize], "DMA32's oldest first");
        assert_eq!(k.vmstat.get(Vm::pgrefill), 0);
        for pfn in list {
            k.putback_lru_page(pfn);
        }
        // a reclaim of ZONE_DMA: DMA's pages, then DMA32's moved on
        sc.reclaim_idx = ZONE_DMA;
        let oldest = lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]);
        let mut taken = Vec::new();
        let mut refill = 0;
        while taken.len() < dma.len() {
            let (scanned, list) = k.scan_folios(&sc, LRU_GEN_ANON, 0);
            assert!(list.iter().all(|p| k.lru.zonenum(*p) == ZONE_DMA), "only DMA pages are isolated");
            refill = scanned - list.len() as u64;
            taken.extend(list);
        }
        assert_eq!(taken, dma, "DMA's pages in their order");
        assert!(refill > 0 && refill < MAX_LRU_BATCH, "the last batch moved {refill} DMA32 pages on");
        assert_eq!(k.vmstat.get(Vm::pgrefill), refill);
        // (the first batch, put back, went to the second youngest generation)
        let rest = &dma32[MIN_LRU_BATCH as usize..];
        let moved = rest.iter().filter(|&&p| folio_lru_gen(&k.mem.frames[p as usize]) != Some(oldest)).count();
        assert_eq!(moved as u64, refill, "each ineligible page went to the next generation");
        for pfn in taken {
            k.putback_lru_page(pfn);
        }
        k.check_invariants().unwrap();
    }

    /// `inc_min_seq` (mm/vmscan.c, 6.12.117) empties the oldest generation zone by zone ("for
    /// (zone = 0; zone < MAX_NR_ZONES; zone++)"), each page to the next generation's list of
    /// its own zone: with every type at MAX_NR_GENS generations a new one moves both zones'
    /// pages on.
    #[test]
    fn inc_min_seq_moves_the_oldest_generation_of_every_zone() {
        let (mut k, dma, dma32) = zoned_oldest(6000);
        let next = (lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]) + 1) % MAX_NR_GENS;
        assert_eq!(k.lru.lrugen.nr_gens(LRU_GEN_ANON), MAX_NR_GENS as u64);
        let seq = k.lru.lrugen.max_seq;
        assert!(k.inc_max_seq(seq, true, false));
        assert!(dma.iter().chain(&dma32).all(|&p| folio_lru_gen(&k.mem.frames[p as usize]) == Some(next)));
        let li = list_index(next, LRU_GEN_ANON);
        assert_eq!(k.lru.size_zone(li, crate::mm::mmzone::ZONE_DMA), dma.len() as u64);
        k.check_invariants().unwrap();
    }

    /// `should_abort_scan` (mm/vmscan.c, 6.12.117): kswapd stops once every eligible zone is
    /// above its high watermark + MIN_LRU_BATCH (`zone_watermark_ok`, whose mark holds the
    /// zone's boost and `lowmem_reserve[sc->reclaim_idx]`): a DMA zone boosted above its free
    /// pages keeps kswapd scanning though DMA32 is well above its mark, and a reclaim of
    /// ZONE_DMA only asks DMA alone.
    #[test]
    fn kswapd_scans_on_while_an_eligible_zone_is_below_its_mark() {
        use crate::mm::mmzone::ZONE_DMA;
        let (mut k, _, _) = zoned_oldest(1000);
        let mut sc = ScanControl::new(0, true);
        assert!(k.should_abort_scan(&sc), "both zones far above high");
        let free = k.zones().unwrap().dma.nr_free();
        k.zones.as_deref_mut().unwrap().dma.watermark_boost = free;
        assert!(!k.should_abort_scan(&sc), "DMA below its boosted mark");
        sc.reclaim_idx = ZONE_DMA;
        assert!(!k.should_abort_scan(&sc));
        k.zones.as_deref_mut().unwrap().dma.watermark_boost = 0;
        assert!(k.should_abort_scan(&sc));
        sc.kswapd = false;
        assert!(!k.should_abort_scan(&sc), "direct reclaim stops only on nr_to_reclaim");
    }
    /// A node no reclaim has met has every page in the generation its fault put it in
    /// (`max_seq`: `lru_gen_add_folio` in a fault), and `scan_folios` evicts nothing while
    /// only MIN_NR_GENS generations are left, so its first reclaim (mm/vmscan.c 6.12.117; here
    /// kswapd for ZONE_DMA alone, as a boosted DMA zone wakes it) ages twice before it can
    /// evict: `get_nr_to_scan` → `try_to_inc_max_seq` when `should_run_aging` finds the node
    /// "completely out of cold folios", and again when the youngest generation holds more than
    /// 1/MIN_NR_GENS of the pages. Run back to back, the second walk finds no young PTE (the
    /// first cleared them all), and the DMA list goes in fault order, pages just used with it;
    /// a page used between the two walks is promoted by the second and kept. (The zoned replay
    /// of the phase trace loses its working set this way: FINDINGS section 8.)
    #[test]
    fn a_first_reclaim_ages_twice_and_keeps_only_what_was_used_between_the_two_walks() {
        use crate::mm::mmzone::ZONE_DMA;
        let n = 6000;
        // balance_pgdat's priority loop for ZONE_DMA until a pass reclaims
        let reclaim_dma = |k: &mut Kernel| {
            let mut sc = ScanControl::new(MIN_LRU_BATCH, true);
            sc.reclaim_idx = ZONE_DMA;
            while sc.nr_reclaimed == 0 && sc.priority > 1 {
                k.lru_gen_shrink_node(&mut sc);
                sc.priority -= 1;
            }
            sc.nr_reclaimed
        };
        let dma_pages = |k: &Kernel, pid: u32, a: u64| -> Vec<u64> {
            (0..n).map(|i| a + i * 4096).filter(|&v| k.lru.zonenum(pfn_at(k, pid, v)) == ZONE_DMA).collect()
        };
        let swapped = |k: &Kernel, pid: u32, pages: &[u64]| -> Vec<u64> {
            pages.iter().copied().filter(|&v| k.arch().is_swap_pte(k.pte_at(pid, v).unwrap())).collect()
        };
        // back to back
        let (mut k, pid, a) = zoned_faulted(n);
        let dma = dma_pages(&k, pid, a);
        assert!(dma.len() > 2 * MIN_LRU_BATCH as usize, "{} DMA pages", dma.len());
        assert_eq!((k.lru.lrugen.max_seq, k.lru.lrugen.min_seq), (3, [0, 0]));
        assert_eq!(reclaim_dma(&mut k), MIN_LRU_BATCH);
        assert_eq!(k.lru.lrugen.max_seq, 5, "two agings before the first eviction");
        assert_eq!(swapped(&k, pid, &dma), dma[..MIN_LRU_BATCH as usize], "DMA's first-faulted pages");
        k.check_invariants().unwrap();
        // the first DMA pages used again between the walks
        let (mut k, pid, a) = zoned_faulted(n);
        let dma = dma_pages(&k, pid, a);
        assert!(k.try_to_inc_max_seq(3, true, false));
        for &v in &dma[..MIN_LRU_BATCH as usize] {
            k.access(pid, 0, v, false, 0).unwrap();
        }
        assert_eq!(reclaim_dma(&mut k), MIN_LRU_BATCH);
        assert_eq!(k.lru.lrugen.max_seq, 5);
        let used = 2 * MIN_LRU_BATCH as usize;
        assert_eq!(swapped(&k, pid, &dma), dma[MIN_LRU_BATCH as usize..used], "the used pages were promoted");
        k.check_invariants().unwrap();
    }

    /// `lru_gen_look_around` with kswapd's walk → `folio_update_gen` + `update_batch_size`
    /// (mm/vmscan.c, 6.12.117): the neighbours it promotes change only their generation bits
    /// and the generation sizes (`lrugen->nr_pages`), and stay on the oldest generation's list;
    /// the next `scan_folios` meets them there and `sort_folio` ("promoted") moves each to the
    /// head of its generation's list, a sorted page counted in PGREFILL, the sizes unchanged.
    #[test]
    fn a_page_promoted_in_place_stays_on_its_list_until_sort_folio_moves_it_counted_in_pgrefill() {
        let mut k = lru_gen_kernel(Arch::S390x);
        let (pid, a) = proc_with_pages(&mut k, false, 256);
        age(&mut k, 3);
        let oldest = lru_gen_from_seq(k.lru.lrugen.min_seq[LRU_GEN_ANON]);
        let youngest = lru_gen_from_seq(k.lru.lrugen.max_seq);
        let (old_list, young_list) = (list_index(oldest, LRU_GEN_ANON), list_index(youngest, LRU_GEN_ANON));
        assert_eq!((k.lru.gen_size(oldest, LRU_GEN_ANON), k.lru.size_at(old_list)), (256, 256));
        // kswapd's walk (set_mm_walk): one eviction batch of the 64 pages faulted first, of which
        // only the last has a young PTE: its look-around reaches 31 pages after the batch
        make_old(&mut k, pid, a, 63);
        let mut sc = ScanControl::new(MIN_LRU_BATCH, true);
        k.lru.lrugen.mm_walk = true;
        k.evict_folios(&mut sc, SWAPPINESS);
        k.lru.lrugen.mm_walk = false;
        // (the batch's rejected pages went back to the youngest list: `lru_gen_add_folio`)
        let put_back = k.lru.pages_at(&k.mem.frames, young_list);
        let promoted: Vec<u32> = (0..256)
            .map(|i| pfn_at(&k, pid, a + i * 4096))
            .filter(|&p| folio_lru_gen(&k.mem.frames[p as usize]) == Some(youngest) && !put_back.contains(&p))
            .collect();
        assert!(!promoted.is_empty(), "look-around promoted neighbours");
        assert!(
            promoted.iter().all(|&p| k.mem.frames[p as usize].lru_list() as usize == old_list),
            "a promoted page is still on the oldest list"
        );
        let n = (promoted.len() + put_back.len()) as u64;
        assert_eq!(k.lru.gen_size(youngest, LRU_GEN_ANON), n, "nr_pages counts them in the youngest");
        assert_eq!(k.lru.size_at(old_list), k.lru.gen_size(oldest, LRU_GEN_ANON) + promoted.len() as u64);
        k.check_invariants().unwrap();
        // the next scan sorts what it meets of them, to the head of the youngest list
        let refill = k.vmstat.get(Vm::pgrefill);
        let (scanned, list) = k.scan_folios(&sc, LRU_GEN_ANON, 0);
        let young = k.lru.pages_at(&k.mem.frames, young_list);
        let moved = &young[..young.len() - put_back.len()];
        assert_eq!(young[moved.len()..], put_back[..]);
        assert!(!moved.is_empty() && moved.iter().all(|p| promoted.contains(p)), "{moved:?}");
        assert_eq!(k.vmstat.get(Vm::pgrefill) - refill, moved.len() as u64, "each move is a sorted page");
        assert_eq!(scanned, list.len() as u64 + moved.len() as u64);
        assert_eq!(k.lru.gen_size(youngest, LRU_GEN_ANON), n, "the sizes were already counted");
        for pfn in list {
            k.putback_lru_page(pfn);
        }
        k.check_invariants().unwrap();
    }

    /// `try_to_inc_min_seq` (mm/vmscan.c, 6.12.117) looks for "the oldest populated
    /// generation" by its lists (`list_empty`), not by `nr_pages`: a generation whose pages
    /// were all promoted in place (`folio_update_gen`) has a size of 0 (as the debugfs view,
    /// `lru_gen_seq_show`, shows it) but keeps `min_seq` until `sort_folio` has moved them;
    /// then `min_seq` passes it.
    #[test]
    fn min_seq_waits_for_the_lists_of_a_generation_not_its_size() {
        let mut k = lru_gen_kernel(Arch::X86_64);
        let (pid, a) = proc_with_pages(&mut k, false, 8);
        make_old(&mut k, pid, a, 8);
        age(&mut k, 3);
        let min_seq = k.lru.lrugen.min_seq[LRU_GEN_ANON];
        let (oldest, youngest) = (lru_gen_from_seq(min_seq), lru_gen_from_seq(k.lru.lrugen.max_seq));
        for i in 0..8 {
            k.folio_update_gen(pfn_at(&k, pid, a + i * 4096), youngest);
        }
        assert_eq!(k.lru.gen_size(oldest, LRU_GEN_ANON), 0);
        assert_eq!(k.lru.size_at(list_index(oldest, LRU_GEN_ANON)), 8);
        let view = k.lru_gen_debugfs(false);
        let line = |seq: u64| view.lines().find(|l| l.split_whitespace().next() == Some(&seq.to_string())).unwrap();
        let anon = |l: &str| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap();
        assert_eq!((anon(line(min_seq)), anon(line(k.lru.lrugen.max_seq))), (0, 8), "{view}");
        assert!(!k.try_to_inc_min_seq(true), "the oldest lists are not empty");
        assert_eq!(k.lru.lrugen.min_seq[LRU_GEN_ANON], min_seq);
        k.check_invariants().unwrap();
        // scan_folios sorts all 8 to the youngest list (nothing to isolate: scanned 0)
        let sc = ScanControl::new(MIN_LRU_BATCH, true);
        assert_eq!(k.scan_folios(&sc, LRU_GEN_ANON, 0), (0, vec![]));
        assert_eq!(k.vmstat.get(Vm::pgrefill), 8);
        assert!(k.try_to_inc_min_seq(true));
        assert!(k.lru.lrugen.min_seq[LRU_GEN_ANON] > min_seq);
        k.check_invariants().unwrap();
    }

    /// The window of a type's generations, `min_seq ..= max_seq`, as generation indices.
    fn window(k: &Kernel, ty: usize) -> Vec<usize> {
        (k.lru.lrugen.min_seq[ty]..=k.lru.lrugen.max_seq).map(lru_gen_from_seq).collect()
    }

    /// The generation whose list the page `pfn` is on.
    fn on_list(k: &Kernel, pfn: u32) -> usize {
        (k.mem.frames[pfn as usize].lru_list() as usize - crate::vmscan::lru::NR_LRU_LISTS) / 2
    }

    /// inc_max_seq → inc_min_seq, try_to_inc_min_seq, folio_update_gen, sort_folio (mm/vmscan.c,
    /// 6.12.117; 6.12.107 has the same): an anon page the walk promotes in place while swap has
    /// room keeps its old list; once swap is full (`get_swappiness` 0, `can_swap` false) an
    /// aging with MAX_NR_GENS anon generations advances `min_seq[LRU_GEN_ANON]` without moving
    /// the oldest list (`goto done`), which becomes the new youngest. When swap has room again,
    /// `try_to_inc_min_seq` passes the page's flag generation, whose lists are empty: the page,
    /// still on its old list, names a generation outside `min_seq ..= max_seq`, where
    /// `nr_pages` counts it and `lru_gen_seq_show` does not show it. Nothing reads it there:
    /// with MIN_NR_GENS generations `scan_folios` takes nothing, the next aging makes the
    /// page's generation the youngest, and eviction then meets the page on its old list:
    /// `sort_folio` ("promoted") moves it to its generation's list, not evicted.
    #[test]
    fn an_anon_page_promoted_in_place_may_name_a_generation_outside_the_window_after_swap_was_full() {
        let mut k = lru_gen_kernel(Arch::X86_64);
        let (pid, a) = proc_with_pages(&mut k, false, 8);
        let pfn = pfn_at(&k, pid, a);
        let list = lru_gen_from_seq(k.lru.lrugen.max_seq);
        // an aging with swap (the walk makes the faulted PTEs old), and the empty generations passed
        assert!(k.try_to_inc_max_seq(3, true, false));
        assert!(k.try_to_inc_min_seq(true));
        assert_eq!((k.lru.lrugen.min_seq, k.lru.lrugen.max_seq), ([3, 3], 4));
        // the page is used again before each of two agings: their walks promote it in place
        // (the second walks its PTE table only as the first found it young: the Bloom
        // filter), the second to two generations younger than its list
        k.access(pid, 0, a, false, 0).unwrap();
        assert!(k.try_to_inc_max_seq(4, true, false));
        assert_eq!(folio_lru_gen(&k.mem.frames[pfn as usize]), Some(lru_gen_from_seq(4)));
        k.access(pid, 0, a, false, 0).unwrap();
        assert!(k.try_to_inc_max_seq(5, true, false));
        let promoted = lru_gen_from_seq(5);
        assert_eq!(folio_lru_gen(&k.mem.frames[pfn as usize]), Some(promoted));
        assert_eq!(on_list(&k, pfn), list, "promoted in place: still on its old list");
        k.check_invariants().unwrap();
        // swap full: the aging with four anon generations leaves the oldest list where it is
        assert!(k.try_to_inc_max_seq(6, false, false));
        assert_eq!(k.lru.lrugen.min_seq[LRU_GEN_ANON], 4, "inc_min_seq: anon, !can_swap: goto done");
        assert_eq!(lru_gen_from_seq(k.lru.lrugen.max_seq), list, "the old list is the youngest generation");
        k.check_invariants().unwrap();
        // swap has room: the generations whose lists are empty are passed, the page's too
        assert!(k.try_to_inc_min_seq(true));
        assert_eq!(k.lru.lrugen.min_seq, [6, 6]);
        assert!(!window(&k, LRU_GEN_ANON).contains(&promoted), "{:?}", window(&k, LRU_GEN_ANON));
        assert_eq!(k.lru.gen_size(promoted, LRU_GEN_ANON), 1, "nr_pages still counts it there");
        k.check_invariants().unwrap();
        // reclaim finds fewer than three generations from min_seq (should_run_aging) and ages
        // first; its walk finds the page's PTE old: the page keeps its flags and its list
        assert!(k.try_to_inc_max_seq(7, true, false));
        assert_eq!(folio_lru_gen(&k.mem.frames[pfn as usize]), Some(promoted));
        assert!(!window(&k, LRU_GEN_ANON).contains(&promoted), "{:?}", window(&k, LRU_GEN_ANON));
        k.check_invariants().unwrap();
        // eviction passes the empty generation below the page's list; that leaves MIN_NR_GENS
        // generations, of which scan_folios takes nothing: the page stays outside the window
        let mut sc = ScanControl::new(crate::vmscan::shrink::SWAP_CLUSTER_MAX, false);
        let swappiness = k.lru_gen_swappiness(&sc);
        assert!(swappiness > 0, "swap has room");
        k.evict_folios(&mut sc, swappiness);
        assert_eq!(window(&k, LRU_GEN_ANON), [list, lru_gen_from_seq(8)]);
        assert_eq!(on_list(&k, pfn), list);
        assert_eq!(k.lru.gen_size(promoted, LRU_GEN_ANON), 1);
        // lru_gen_seq_show shows the window only: the page is in none of its generations
        let shown: u64 = window(&k, LRU_GEN_ANON).iter().map(|&g| k.lru.gen_size(g, LRU_GEN_ANON)).sum();
        assert_eq!(shown, 7);
        assert!(!k.lru_gen_debugfs(true).is_empty());
        k.check_invariants().unwrap();
        // the next aging opens the page's generation: it is the youngest
        assert!(k.try_to_inc_max_seq(8, true, false));
        assert_eq!(lru_gen_from_seq(k.lru.lrugen.max_seq), promoted);
        k.check_invariants().unwrap();
        // eviction scans the page's list: sort_folio moves the page to its generation's list
        // (counted in PGREFILL), the youngest; the others, unused, are swapped out
        let refill = k.vmstat.get(Vm::pgrefill);
        k.evict_folios(&mut sc, swappiness);
        assert_eq!((folio_lru_gen(&k.mem.frames[pfn as usize]), on_list(&k, pfn)), (Some(promoted), promoted));
        assert_eq!(k.vmstat.get(Vm::pgrefill) - refill, 1, "sorted");
        let arch = k.arch();
        assert!(arch.pte_present(k.pte_at(pid, a).unwrap()), "the promoted page is not evicted");
        let swapped = (1..8).filter(|i| arch.is_swap_pte(k.pte_at(pid, a + i * 4096).unwrap())).count();
        assert_eq!(swapped, 7, "the unused pages are");
        k.check_invariants().unwrap();
    }

    /// As above, with a page promoted in place three generations younger than its list, by
    /// kswapd's look-around (`lru_gen_look_around` with its `mm_walk`: `folio_update_gen`)
    /// while anon has MAX_NR_GENS generations: once swap was full and has room again, eviction
    /// meets the page on its old list while its generation is outside the window, and
    /// `sort_folio` (mm/vmscan.c, 6.12.117) moves it to that generation's list, outside the
    /// window too, not evicted; the next aging makes it the youngest.
    #[test]
    fn sort_folio_moves_a_page_promoted_in_place_to_its_generation_outside_the_window() {
        let mut k = lru_gen_kernel(Arch::X86_64);
        let (pid, a) = proc_with_pages(&mut k, false, 8);
        let pfn = pfn_at(&k, pid, a);
        let list = lru_gen_from_seq(k.lru.lrugen.max_seq);
        assert!(k.try_to_inc_max_seq(3, true, false));
        assert!(k.try_to_inc_min_seq(true));
        assert!(k.try_to_inc_max_seq(4, true, false));
        assert!(k.try_to_inc_max_seq(5, true, false));
        assert_eq!((k.lru.lrugen.min_seq, k.lru.lrugen.max_seq), ([3, 3], 6));
        // the first page and its neighbour are used; kswapd's reclaim isolates the neighbour,
        // finds it referenced and looks around it
        k.access(pid, 0, a, false, 0).unwrap();
        k.access(pid, 0, a + 4096, false, 0).unwrap();
        let target = pfn_at(&k, pid, a + 4096);
        assert!(k.isolate_lru_page(target));
        k.lru.lrugen.mm_walk = true;
        assert_eq!(k.folio_referenced(target).referenced, 1);
        k.lru.lrugen.mm_walk = false;
        let promoted = lru_gen_from_seq(6);
        assert_eq!((folio_lru_gen(&k.mem.frames[pfn as usize]), on_list(&k, pfn)), (Some(promoted), list));
        k.check_invariants().unwrap();
        // swap full: anon's oldest list is left in place and becomes the youngest
        assert!(k.try_to_inc_max_seq(6, false, false));
        assert_eq!(lru_gen_from_seq(k.lru.lrugen.max_seq), list);
        // swap has room: two agings, each after try_to_inc_min_seq passed what it could
        assert!(k.try_to_inc_min_seq(true));
        assert!(k.try_to_inc_max_seq(7, true, false));
        assert!(k.try_to_inc_min_seq(true));
        assert!(k.try_to_inc_max_seq(8, true, false));
        assert_eq!(window(&k, LRU_GEN_ANON), [list, lru_gen_from_seq(8), lru_gen_from_seq(9)]);
        assert!(!window(&k, LRU_GEN_ANON).contains(&promoted));
        k.check_invariants().unwrap();
        let mut sc = ScanControl::new(crate::vmscan::shrink::SWAP_CLUSTER_MAX, false);
        let swappiness = k.lru_gen_swappiness(&sc);
        let refill = k.vmstat.get(Vm::pgrefill);
        k.evict_folios(&mut sc, swappiness);
        assert_eq!((folio_lru_gen(&k.mem.frames[pfn as usize]), on_list(&k, pfn)), (Some(promoted), promoted));
        assert!(!window(&k, LRU_GEN_ANON).contains(&promoted), "sorted onto a list outside the window");
        assert!(k.vmstat.get(Vm::pgrefill) > refill, "sorted");
        assert!(k.arch().pte_present(k.pte_at(pid, a).unwrap()), "not evicted");
        assert_eq!(k.lru.gen_size(promoted, LRU_GEN_ANON), 1);
        k.check_invariants().unwrap();
        assert!(k.try_to_inc_max_seq(9, true, false));
        assert_eq!(lru_gen_from_seq(k.lru.lrugen.max_seq), promoted, "the youngest");
        // (the neighbour, kept isolated so far, goes back)
        k.putback_lru_page(target);
        k.check_invariants().unwrap();
    }
}
