//! The reverse map (mm/rmap.c): which PTEs map a page, and the page's mapcount bookkeeping.
//!
//! `rmap_walk` visits, for an anon page, every VMA linked to the page's anon_vma that covers the
//! page's index, and for a shmem page every VMA of the file's `i_mmap` that covers it; in each
//! such VMA `page_vma_mapped_walk` checks the one PTE at `vma_address(page, vma)` and yields
//! it if it is present and maps the page.

pub mod referenced;
pub mod unmap;

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vm;
use std::ops::ControlFlow;

/// One mapping of a page found by the rmap walk (`struct page_vma_mapped_walk` when it returns
/// true: the VMA, the address and the PTE, "with the PTL held").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mapping {
    pub pid: u32,
    pub vma: u32,
    pub addr: u64,
    /// Index of the PTE slot in the mm's page tables.
    pub idx: usize,
}

/// How many VMAs of a page [`Kernel::prefetch_rmap`] looks ahead into (a page shared by more
/// is rare in reclaim's batches; the walk finds the rest as it goes).
const RMAP_PREFETCH_VMAS: usize = 4;

/// The type of a `done` or `invalid_vma` hook that is a plain function (or `None::<Hook>`).
pub(crate) type Hook = fn(&Kernel, u32) -> bool;

/// `struct rmap_walk_control` (include/linux/rmap.h): what [`Kernel::rmap_walk`] does at each
/// VMA. `rmap_one` is a closure (it carries the kernel's `arg`); `done` and `invalid_vma` are
/// functions (usually `Kernel` methods), `None` where the kernel leaves the hook NULL. Nothing
/// is boxed and no hook is called through a pointer: the walk is generic over all three, so
/// a walk allocates nothing and the hooks inline (this is reclaim's hot path).
pub(crate) struct RmapWalkControl<F, D = Hook, I = Hook> {
    /// `rmap_one(folio, vma, address, arg)` for a mapping found in a VMA: `Break` stops the walk
    /// (the kernel's `return false`).
    pub rmap_one: F,
    /// `done(folio)`: checked after each VMA's `rmap_one`; true stops the walk.
    pub done: Option<D>,
    /// `invalid_vma(vma, arg)`: a VMA it returns true for is skipped before `rmap_one`.
    pub invalid_vma: Option<I>,
}

/// An `rmap_one`'s kernel return value as the walk's control: true continues, false stops.
#[inline]
pub(crate) fn walk_on(cont: bool) -> ControlFlow<()> {
    if cont { ControlFlow::Continue(()) } else { ControlFlow::Break(()) }
}

impl Kernel {
    /// PG_anon_exclusive where the profile has it (v5.19+, `Profile::pg_anon_exclusive`),
    /// else no flag: 4.x pages carry no exclusivity bit (`RMAP_EXCLUSIVE` there only picks the
    /// anon_vma in `__page_set_anon_rmap`).
    pub(crate) fn anon_exclusive_flag(&self) -> u32 {
        if self.profile.pg_anon_exclusive { pg::PG_ANON_EXCLUSIVE } else { 0 }
    }

    /// `page_add_new_anon_rmap` (mm/rmap.c 4.13..4.18; 6.12 `folio_add_new_anon_rmap`) +
    /// `__SetPageSwapBacked`: file a fresh anon page under the VMA's
    /// anon_vma at the VMA's linear index of `addr`; it is mapped once and exclusive.
    pub(crate) fn page_add_new_anon_rmap(&mut self, pfn: u32, vma: u32, addr: u64) {
        let av = self.anon_vma_prepare(vma);
        let index = self.vma(vma).pgoff_of(addr);
        self.mem.set_rmap_fields(pfn, index, 1, av + 1);
        let x = self.anon_exclusive_flag();
        self.mem.frames[pfn as usize].set(pg::PAGE_MAPPING_ANON | pg::PG_SWAPBACKED | pg::PG_UPTODATE | x);
    }

    /// `page_add_anon_rmap` / `page_add_file_rmap` / `page_dup_rmap`: one more mapping.
    #[inline]
    pub(crate) fn page_add_rmap(&mut self, pfn: u32) {
        self.mem.inc_mapcount(pfn);
    }

    /// `page_remove_rmap` (mm/rmap.c 4.13..4.18: `if (unlikely(PageMlocked(page)))
    /// clear_page_mlock(page);` after the last mapping; 6.12 `folio_remove_rmap_ptes` with an
    /// mlock_count, the same for an order-0 page mapped once): one mapping less; when the last
    /// goes, an mlocked page is no longer mlocked and returns to an evictable list.
    pub(crate) fn page_remove_rmap(&mut self, pfn: u32) {
        debug_assert!(self.mem.frames[pfn as usize].mapped(), "page_remove_rmap of unmapped page {pfn}");
        let left = self.mem.dec_mapcount(pfn);
        let f = &mut self.mem.frames[pfn as usize];
        if left == 0 {
            f.clear(pg::PG_ANON_EXCLUSIVE);
            if f.test(pg::PG_MLOCKED) {
                self.clear_page_mlock(pfn);
            }
        }
    }

    /// The VMAs the rmap must look at for `pfn`, and the address of the page in each
    /// (`rmap_walk_anon` over the anon_vma, `rmap_walk_file` over `i_mmap`).
    pub(crate) fn rmap_vmas(&self, pfn: u32, out: &mut Vec<(u32, u64)>) {
        out.clear();
        let Some((list, index)) = self.rmap_list(pfn) else { return };
        for &id in list {
            if let Some(Some(v)) = self.vmas.get(id as usize) {
                if let Some(addr) = v.address_of(index) {
                    out.push((id, addr));
                }
            }
        }
    }

    /// The VMA list the rmap walks for `pfn` (its anon_vma's, or its file's `i_mmap`) and the
    /// page's index; None for a page with no mapping.
    #[inline]
    fn rmap_list(&self, pfn: u32) -> Option<(&[u32], u64)> {
        let f = &self.mem.frames[pfn as usize];
        if !f.has_mapping() {
            return None;
        }
        let (mapping, index) = self.mem.mapping_and_index(pfn);
        let list = if f.anon() {
            &self.anon_vmas[(mapping - 1) as usize].vmas
        } else {
            match self.files.get((mapping - 1) as usize) {
                Some(Some(a)) => &a.i_mmap,
                _ => return None,
            }
        };
        Some((list, index))
    }

    /// A look ahead for the rmap walk reclaim makes of `pfn` soon (`folio_referenced`,
    /// `try_to_unmap`): start loading the PTE slot of the page in the first VMAs that may map
    /// it (the walk's `page_vma_mapped` reads them; LRU-tail pages are scattered over the
    /// address space, so each is a cache miss). A cache hint only ([`crate::sim::prefetch`]):
    /// no state changes, not even the walk hints.
    pub(crate) fn prefetch_rmap(&self, pfn: u32) {
        let Some((list, index)) = self.rmap_list(pfn) else { return };
        for &id in list.iter().take(RMAP_PREFETCH_VMAS) {
            if let Some(Some(v)) = self.vmas.get(id as usize) {
                if let Some(addr) = v.address_of(index) {
                    let pt = &self.mmx(v.mm).pt;
                    if let Some(i) = pt.peek_index(addr) {
                        pt.prefetch_slot(i);
                    }
                }
            }
        }
    }

    /// `page_vma_mapped_walk` (mm/page_vma_mapped.c, v4.11+, all profiles) for one VMA: the PTE
    /// at `addr` if it is present and maps `pfn` (migration and device entries never match).
    pub(crate) fn page_vma_mapped(&self, pfn: u32, vma: u32, addr: u64) -> Option<Mapping> {
        let pid = self.vma(vma).mm;
        let mm = self.mmx(pid);
        let idx = mm.pt.pte_index(addr)?;
        let pte = mm.pt.pte(idx);
        let arch = self.arch();
        if arch.pte_present(pte) && arch.pte_pfn(pte) == pfn { Some(Mapping { pid, vma, addr, idx }) } else { None }
    }

    /// Every PTE that maps `pfn`, in rmap-walk order.
    pub fn rmap_mappings(&self, pfn: u32) -> Vec<Mapping> {
        let mut vmas = Vec::new();
        self.rmap_vmas(pfn, &mut vmas);
        vmas.iter().filter_map(|&(v, a)| self.page_vma_mapped(pfn, v, a)).collect()
    }

    /// `rmap_walk(folio, rwc)` (`rmap_walk_anon` / `rmap_walk_file`): for each VMA that may
    /// map `pfn`, in rmap order,
    /// ```text
    /// if (rwc->invalid_vma && rwc->invalid_vma(vma, rwc->arg)) continue;
    /// if (!rwc->rmap_one(folio, vma, address, rwc->arg)) break;
    /// if (rwc->done && rwc->done(folio)) break;
    /// ```
    /// The kernel's `rmap_one` runs `page_vma_mapped_walk` itself and returns true when it finds
    /// no PTE; here the walk does that lookup and calls `rmap_one` only with a mapping it found,
    /// but `done` is still checked after every VMA that was not skipped, as in the kernel.
    /// Returns false if `rmap_one` stopped the walk. Same in every profile (R4.19 and R6.12
    /// have this loop; `anon_lock`, `try_lock` and KSM are not modelled: no lock contention,
    /// no KSM pages).
    pub(crate) fn rmap_walk<F, D, I>(&mut self, pfn: u32, rwc: &mut RmapWalkControl<F, D, I>) -> bool
    where
        F: FnMut(&mut Kernel, Mapping) -> ControlFlow<()>,
        D: Fn(&Kernel, u32) -> bool,
        I: Fn(&Kernel, u32) -> bool,
    {
        let mut vmas = std::mem::take(&mut self.rmap_scratch);
        self.rmap_vmas(pfn, &mut vmas);
        let mut completed = true;
        for &(v, a) in &vmas {
            if rwc.invalid_vma.as_ref().is_some_and(|invalid| invalid(self, v)) {
                continue;
            }
            if let Some(m) = self.page_vma_mapped(pfn, v, a) {
                if (rwc.rmap_one)(self, m).is_break() {
                    completed = false;
                    break;
                }
            }
            if rwc.done.as_ref().is_some_and(|done| done(self, pfn)) {
                break;
            }
        }
        self.rmap_scratch = vmas;
        completed
    }

    /// `folio_not_mapped` (v5.14+; `page_not_mapped` in 4.x, whose `try_to_unmap` uses
    /// `page_mapcount_is_zero` = `!total_mapcount(page)`, the same for the model's order-0
    /// pages): the `done` hook of try_to_unmap, try_to_migrate and try_to_munlock.
    pub(crate) fn folio_not_mapped(&self, pfn: u32) -> bool {
        !self.mem.frames[pfn as usize].mapped()
    }

    /// `invalid_migration_vma` → `vma_is_temporary_stack` (4.17 `is_vma_temporary_stack`): a
    /// stack VMA that exec has not finished moving (`VM_GROWSDOWN|VM_GROWSUP` with both bits of
    /// `VM_STACK_INCOMPLETE_SETUP` = `VM_RAND_READ|VM_SEQ_READ`) is skipped by migration. The
    /// model has no exec and never sets VM_GROWSDOWN, so this is never true; it is kept so that
    /// the walk has the kernel's hooks. (VM_GROWSUP does not exist on s390 or x86_64.)
    pub(crate) fn invalid_migration_vma(&self, vma: u32) -> bool {
        let flags = self.vma(vma).flags;
        let incomplete = vm::VM_RAND_READ | vm::VM_SEQ_READ;
        flags & vm::VM_GROWSDOWN != 0 && flags & incomplete == incomplete
    }

    /// `mark_page_accessed` (4.x / `folio_mark_accessed`): a second reference activates an
    /// inactive page and ages the workingset clock (`workingset_activation`, mm/workingset.c
    /// v6.12, read with anon workingset detection only); the first only sets PG_referenced.
    pub(crate) fn mark_page_accessed(&mut self, pfn: u32) {
        if self.lru_gen_enabled() {
            // v6.12 folio_mark_accessed: "if (lru_gen_enabled()) { folio_inc_refs(folio); return; }"
            self.folio_inc_refs(pfn);
            return;
        }
        let f = &self.mem.frames[pfn as usize];
        if !f.test(pg::PG_ACTIVE) && !f.test(pg::PG_UNEVICTABLE) && f.test(pg::PG_REFERENCED) && f.test(pg::PG_LRU) {
            self.activate_page(pfn);
            self.mem.frames[pfn as usize].clear(pg::PG_REFERENCED);
            if self.profile.workingset_anon {
                self.workingset_age();
            }
        } else if !f.test(pg::PG_REFERENCED) {
            self.mem.frames[pfn as usize].set(pg::PG_REFERENCED);
        }
    }

    /// `try_to_munlock(page)` (4.x) as a question: whether any mapping of `pfn` is in a
    /// VM_LOCKED VMA. The kernel walks with `rmap_one = try_to_unmap_one(TTU_MUNLOCK)`, which
    /// returns true for an unlocked VMA and re-mlocks the page and stops at a locked one, and
    /// `done = page_not_mapped`; the caller here clears the mlock when the answer is no.
    /// Simplification: 6.12 has no such walk (mlock_count on the folio, v5.18), the model asks
    /// the rmap in every profile.
    pub(crate) fn mapped_in_locked_vma(&mut self, pfn: u32) -> bool {
        let mut rwc = RmapWalkControl {
            rmap_one: |k: &mut Kernel, m: Mapping| walk_on(k.vma(m.vma).flags & vm::VM_LOCKED == 0),
            done: Some(Kernel::folio_not_mapped),
            invalid_vma: None::<Hook>,
        };
        !self.rmap_walk(pfn, &mut rwc)
    }
}

#[cfg(test)]
mod tests {
    use super::{Hook, Mapping, RmapWalkControl, walk_on};
    use crate::kernel::Kernel;
    use crate::mm::madvise::Advice;
    use crate::mm::mmap::PROT_READ;
    use crate::mm::vm;
    use crate::rmap::unmap::TtuFlags;
    use crate::testutil::{kernel, proc_with_pages};
    use std::cell::Cell;
    use std::ops::ControlFlow;

    /// One anon page written by a parent and shared with three forked children: four PTEs
    /// map it, each in a VMA of the page's anon_vma tree. Returns the kernel, the pids in rmap
    /// order, the address and the pfn.
    fn shared_page(profile: &str) -> (Kernel, Vec<u32>, u64, u32) {
        let mut k = kernel(profile);
        let (parent, a) = proc_with_pages(&mut k, false, 1);
        for _ in 0..3 {
            k.fork(parent).unwrap();
        }
        let pfn = k.arch().pte_pfn(k.pte_at(parent, a).unwrap());
        assert_eq!(k.mem.mapcount(pfn), 4);
        let pids: Vec<u32> = k.rmap_mappings(pfn).iter().map(|m| m.pid).collect();
        assert_eq!(pids.len(), 4);
        assert_eq!(pids[0], parent, "the parent's VMA comes first in its own anon_vma");
        k.check_invariants().unwrap();
        (k, pids, a, pfn)
    }

    /// mlock `pid`'s mapping of the shared page without breaking COW: populating a private
    /// writable VMA faults for write (`FOLL_WRITE`), so the VMA is made read-only first.
    fn mlock_shared(k: &mut Kernel, pid: u32, a: u64) {
        k.mprotect(pid, a, 4096, PROT_READ).unwrap();
        k.mlock(pid, a, 4096).unwrap();
    }

    /// Unmap one mapping the way zap does (clear the PTE, drop the rmap and the reference).
    fn unmap_one(k: &mut Kernel, pfn: u32, m: Mapping) {
        k.ptep_clear_flush(m.pid, m.idx);
        k.page_remove_rmap(pfn);
        k.put_page(pfn);
    }

    #[test]
    fn rmap_one_visits_every_mapping_in_rmap_order_or_stops_the_walk() {
        let (mut k, pids, _, pfn) = shared_page("6.12");
        let mut seen = Vec::new();
        let mut rwc = RmapWalkControl {
            rmap_one: |_: &mut Kernel, m: Mapping| {
                seen.push(m.pid);
                ControlFlow::Continue(())
            },
            done: None::<Hook>,
            invalid_vma: None::<Hook>,
        };
        assert!(k.rmap_walk(pfn, &mut rwc), "a walk that nobody stopped completes");
        assert_eq!(seen, pids);

        let mut seen = Vec::new();
        let mut rwc = RmapWalkControl {
            rmap_one: |_: &mut Kernel, m: Mapping| {
                seen.push(m.pid);
                walk_on(seen.len() < 2)
            },
            done: None::<Hook>,
            invalid_vma: None::<Hook>,
        };
        assert!(!k.rmap_walk(pfn, &mut rwc), "rmap_one returning false stops the walk");
        assert_eq!(seen, pids[..2], "no mapping after the one that stopped it is visited");
    }

    thread_local! {
        /// How many VMAs `count_vmas` was asked about (the walk asks `invalid_vma` of every VMA
        /// it reaches, so this counts the VMAs reached).
        static ASKED: Cell<u32> = const { Cell::new(0) };
    }

    fn count_vmas(_: &Kernel, _: u32) -> bool {
        ASKED.with(|c| c.set(c.get() + 1));
        false
    }

    #[test]
    fn done_stops_the_walk_once_the_page_is_unmapped() {
        for with_done in [true, false] {
            let (mut k, pids, a, pfn) = shared_page("6.12");
            // the last child in rmap order breaks COW: its VMA stays in the anon_vma tree but
            // no longer maps the page, so three mappings are left over four VMAs
            let last = pids[3];
            k.access(last, 0, a, true, 99).unwrap();
            assert_eq!(k.mem.mapcount(pfn), 3);
            ASKED.with(|c| c.set(0));
            let mut unmapped = 0;
            let mut rwc = RmapWalkControl {
                rmap_one: |k: &mut Kernel, m: Mapping| {
                    unmap_one(k, pfn, m);
                    unmapped += 1;
                    ControlFlow::Continue(())
                },
                done: if with_done { Some(Kernel::folio_not_mapped) } else { None },
                invalid_vma: Some(count_vmas),
            };
            assert!(k.rmap_walk(pfn, &mut rwc));
            assert_eq!(unmapped, 3);
            assert!(k.folio_not_mapped(pfn));
            let asked = ASKED.with(Cell::get);
            if with_done {
                assert_eq!(asked, 3, "folio_not_mapped stopped the walk before the fourth VMA");
            } else {
                assert_eq!(asked, 4, "without done the walk goes on to every VMA");
            }
        }
    }

    #[test]
    fn done_is_checked_after_each_rmap_one() {
        let (mut k, pids, _, pfn) = shared_page("6.12");
        let mut seen = Vec::new();
        let mut rwc = RmapWalkControl {
            rmap_one: |k: &mut Kernel, m: Mapping| {
                seen.push(m.pid);
                unmap_one(k, pfn, m);
                ControlFlow::Continue(())
            },
            done: Some(|k: &Kernel, pfn: u32| k.mem.mapcount(pfn) <= 2),
            invalid_vma: None::<Hook>,
        };
        assert!(k.rmap_walk(pfn, &mut rwc), "done ends the walk without failing it");
        assert_eq!(seen, pids[..2]);
        assert_eq!(k.rmap_mappings(pfn).iter().map(|m| m.pid).collect::<Vec<_>>(), pids[2..]);
    }

    #[test]
    fn invalid_vma_skips_a_vma_before_rmap_one() {
        let (mut k, pids, a, pfn) = shared_page("6.12");
        k.madvise(pids[2], a, 4096, Advice::Random).unwrap();
        let mut seen = Vec::new();
        let mut rwc = RmapWalkControl {
            rmap_one: |_: &mut Kernel, m: Mapping| {
                seen.push(m.pid);
                ControlFlow::Continue(())
            },
            done: None::<Hook>,
            invalid_vma: Some(|k: &Kernel, v: u32| k.vma(v).flags & vm::VM_RAND_READ != 0),
        };
        assert!(k.rmap_walk(pfn, &mut rwc));
        assert_eq!(seen, [pids[0], pids[1], pids[3]]);
    }

    #[test]
    fn try_to_unmap_stops_at_a_locked_vma_and_keeps_the_later_mappings() {
        for p in ["4.17", "4.18", "6.12"] {
            let (mut k, pids, a, pfn) = shared_page(p);
            mlock_shared(&mut k, pids[2], a);
            assert_eq!(k.mem.mapcount(pfn), 4, "{p}: COW not broken");
            assert!(k.add_to_swap(pfn));
            assert!(!k.try_to_unmap(pfn, TtuFlags::IGNORE_ACCESS), "{p}: still mapped");
            let left: Vec<u32> = k.rmap_mappings(pfn).iter().map(|m| m.pid).collect();
            assert_eq!(left, pids[2..], "{p}: the two before the locked VMA were unmapped");
            for &pid in &pids[..2] {
                assert!(k.arch().is_swap_pte(k.pte_at(pid, a).unwrap()), "{p}");
            }
            // without the lock the same walk unmaps the rest and stops: done = folio_not_mapped
            k.munlock(pids[2], a, 4096).unwrap();
            assert!(k.try_to_unmap(pfn, TtuFlags::IGNORE_ACCESS), "{p}");
            assert!(k.rmap_mappings(pfn).is_empty());
        }
    }

    #[test]
    fn munlock_keeps_the_page_mlocked_while_another_locked_vma_maps_it() {
        let (mut k, pids, a, pfn) = shared_page("4.18");
        mlock_shared(&mut k, pids[1], a);
        mlock_shared(&mut k, pids[3], a);
        assert_eq!(k.mem.mapcount(pfn), 4, "COW not broken");
        let mlocked = |k: &Kernel| k.mem.frames[pfn as usize].test(crate::mm::page::pg::PG_MLOCKED);
        assert!(mlocked(&k));
        k.munlock(pids[1], a, 4096).unwrap();
        assert!(mlocked(&k), "try_to_munlock found the other locked VMA");
        k.munlock(pids[3], a, 4096).unwrap();
        assert!(!mlocked(&k), "no locked VMA maps it any more");
    }
}
