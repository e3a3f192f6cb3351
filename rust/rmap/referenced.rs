//! `folio_referenced` / `page_referenced` (mm/rmap.c): how many mappings used the page since
//! the last look, clearing their young bits on the way.
//!
//! On s390 `ptep_clear_flush_young` exchanges the PTE with `pte_mkold`, which is
//! hardware-invalid: the next access faults and the fault makes the PTE young again. In a PGSTE
//! mm the exchange passes through the PGSTE commit logic like any other.

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vm;
use crate::rmap::{Hook, Mapping, RmapWalkControl, walk_on};
use std::ops::ControlFlow;

/// What `folio_referenced` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Referenced {
    /// Mappings (VMAs) through which the page was referenced (`pra.referenced`).
    pub referenced: u32,
    /// The union of the flags of the VMAs that referenced it, plus VM_LOCKED if a locked VMA
    /// maps it (`*vm_flags`).
    pub vm_flags: u64,
}

impl Kernel {
    /// `folio_referenced(folio, is_locked, memcg, &vm_flags)` (4.x `page_referenced`): walk the
    /// rmap with `rmap_one = folio_referenced_one` and no `done`. `pra.mapcount` starts at the
    /// page's mapcount and each mapping found decrements it; `folio_referenced_one` stops the
    /// walk when it reaches zero ("To break the loop"). `invalid_vma`: 4.x sets
    /// `invalid_page_referenced_vma` only for memcg reclaim (not modelled: no memcg), so no VMA
    /// is skipped, and page_referenced_one clears the young bit of a VM_SEQ_READ mapping without
    /// counting it. With [`Profile::vma_has_recency`](crate::profile::Profile) (v6.3+) it is
    /// always `invalid_folio_referenced_vma`, which skips VMAs without recency (its memcg test
    /// is not modelled).
    /// At a VM_LOCKED mapping the walk stops with VM_LOCKED reported; from v5.18
    /// ([`Profile::referenced_mlocks`](crate::profile::Profile)) `folio_referenced_one`
    /// (mm/rmap.c v6.12) first mlocks the folio ("Restore the mlock which got missed":
    /// `mlock_vma_folio(folio, vma)`, which mlocks only when `(vm_flags & (VM_LOCKED |
    /// VM_SPECIAL)) == VM_LOCKED`), so `folio_check_references`' FOLIOREF_ACTIVATE puts it on the
    /// unevictable list. Not modelled: the page lock (`is_locked`, trylock failure returns 1), `try_lock`
    /// contention (-1), idle page tracking (`folio_test_clear_young`). With MGLRU a young PTE
    /// is made old by `lru_gen_look_around` with its neighbours ([`crate::vmscan::lru_gen`]).
    pub(crate) fn folio_referenced(&mut self, pfn: u32) -> Referenced {
        let mut r = Referenced::default();
        let f = &self.mem.frames[pfn as usize];
        if !f.mapped() || !f.has_mapping() {
            return r;
        }
        let mut mapcount = self.mem.mapcount(pfn);
        let recency = self.profile.vma_has_recency;
        let mut rwc = RmapWalkControl {
            rmap_one: |k: &mut Kernel, m: Mapping| {
                // folio_referenced_one / page_referenced_one
                let flags = k.vma(m.vma).flags;
                if flags & vm::VM_LOCKED != 0 {
                    if k.profile.referenced_mlocks && flags & (vm::VM_LOCKED | vm::VM_SPECIAL) == vm::VM_LOCKED {
                        k.mlock_page(pfn);
                    }
                    r.vm_flags |= vm::VM_LOCKED;
                    return ControlFlow::Break(());
                }
                // 6.12.117 folio_referenced_one: "if (lru_gen_enabled() && pvmw.pte) { if
                // (lru_gen_look_around(&pvmw)) referenced++; } else if (pvmw.pte) { if
                // (ptep_clear_flush_young_notify(..)) referenced++; }"
                let young = if k.lru_gen_enabled() {
                    k.lru_gen_look_around(m)
                } else {
                    k.ptep_test_and_clear_young(m.pid, m.idx)
                };
                // 4.x "Don't treat a reference through a sequentially read mapping as such"
                // (v6.3+ never gets here for such a VMA: invalid_folio_referenced_vma)
                if young && flags & vm::VM_SEQ_READ == 0 {
                    r.referenced += 1;
                    r.vm_flags |= flags;
                }
                mapcount = mapcount.wrapping_sub(1); // pra->mapcount-- (an int in the kernel)
                walk_on(mapcount != 0)
            },
            done: None::<Hook>,
            invalid_vma: recency.then_some(Kernel::invalid_folio_referenced_vma),
        };
        self.rmap_walk(pfn, &mut rwc);
        r
    }

    /// `vma_has_recency(vma)` (include/linux/mm_inline.h, v6.3+): false for VM_SEQ_READ or
    /// VM_RAND_READ (MADV_SEQUENTIAL / MADV_RANDOM). Its `FMODE_NOREUSE` test
    /// (POSIX_FADV_NOREUSE) is not modelled: the model has no fadvise.
    pub(crate) fn vma_has_recency(&self, vma: u32) -> bool {
        self.vma(vma).flags & (vm::VM_SEQ_READ | vm::VM_RAND_READ) == 0
    }

    /// `invalid_folio_referenced_vma(vma, arg)` (v6.3+): skip a VMA without recency ("If the
    /// folio has been used in another mapping, we will catch it"); the memcg half is not
    /// modelled.
    fn invalid_folio_referenced_vma(&self, vma: u32) -> bool {
        !self.vma_has_recency(vma)
    }

    /// `TestClearPageReferenced`.
    pub(crate) fn test_clear_referenced(&mut self, pfn: u32) -> bool {
        let f = &mut self.mem.frames[pfn as usize];
        let r = f.test(pg::PG_REFERENCED);
        f.clear(pg::PG_REFERENCED);
        r
    }
}

#[cfg(test)]
mod tests {
    use crate::mm::madvise::Advice;
    use crate::mm::mmap::MapKind;
    use crate::mm::page::pg;
    use crate::testutil::{kernel, proc_with_pages};

    /// A page mapped by a parent and a forked child, both PTEs young; the child's VMA gets
    /// `advice`. Returns what folio_referenced found and whether the child's PTE is still young.
    fn referenced_with(profile: &str, advice: Advice) -> (u32, bool) {
        let mut k = kernel(profile);
        let (parent, a) = proc_with_pages(&mut k, false, 1);
        let child = k.fork(parent).unwrap();
        k.madvise(child, a, 4096, advice).unwrap();
        // both mappings used the page since the last look
        k.access(parent, 0, a, false, 0).unwrap();
        k.access(child, 0, a, false, 0).unwrap();
        let arch = k.arch();
        let pfn = arch.pte_pfn(k.pte_at(parent, a).unwrap());
        assert_eq!(k.mem.mapcount(pfn), 2, "{profile}: COW still shared");
        assert!(arch.pte_young(k.pte_at(child, a).unwrap()));
        let r = k.folio_referenced(pfn);
        assert!(!arch.pte_young(k.pte_at(parent, a).unwrap()), "{profile}: the parent's bit is cleared");
        (r.referenced, arch.pte_young(k.pte_at(child, a).unwrap()))
    }

    #[test]
    fn a_reference_through_every_mapping_counts() {
        for p in ["4.17", "4.18", "6.12"] {
            assert_eq!(referenced_with(p, Advice::Normal), (2, false), "{p}");
        }
    }

    #[test]
    fn sequential_mappings_are_cleared_but_not_counted_before_v63_and_skipped_after() {
        // 4.x page_referenced_one: ptep_clear_flush_young, then "Don't treat a reference
        // through a sequentially read mapping as such"
        assert_eq!(referenced_with("4.18", Advice::Sequential), (1, false));
        // 6.12 invalid_folio_referenced_vma: the VMA is not visited, its PTE stays young
        assert_eq!(referenced_with("6.12", Advice::Sequential), (1, true));
    }

    #[test]
    fn random_mappings_count_before_v63_and_are_skipped_after() {
        assert_eq!(referenced_with("4.18", Advice::Random), (2, false));
        assert_eq!(referenced_with("6.12", Advice::Random), (1, true));
    }

    /// zap_pte_range (mm/memory.c) takes the same `vma_has_recency` test since v6.3: unmapping a
    /// young PTE of a shmem page (MADV_DONTNEED here) marks the page accessed unless the VMA
    /// has no recency.
    #[test]
    fn zap_marks_a_page_accessed_through_a_random_mapping_only_before_v63() {
        for (p, marked) in [("4.18", true), ("6.12", false)] {
            let mut k = kernel(p);
            let pid = k.spawn("t", false).unwrap();
            let a = k.mmap(pid, 4096, MapKind::Shmem, true, None).unwrap();
            k.access(pid, 0, a, true, 7).unwrap();
            let pfn = k.arch().pte_pfn(k.pte_at(pid, a).unwrap());
            k.mem.frames[pfn as usize].clear(pg::PG_REFERENCED | pg::PG_ACTIVE);
            k.madvise(pid, a, 4096, Advice::Random).unwrap();
            // MADV_DONTNEED zaps the PTE and keeps the object (and so the page)
            k.madvise(pid, a, 4096, Advice::Dontneed).unwrap();
            assert_eq!(k.mem.mapcount(pfn), 0);
            let f = &k.mem.frames[pfn as usize];
            assert_eq!(f.test(pg::PG_REFERENCED) || f.test(pg::PG_ACTIVE), marked, "{p}");
        }
    }

    /// A page of a VM_LOCKED VMA that missed its mlock (here: munlocked behind the VMA's back)
    /// reaches the tail of the active anon list. 6.12 `folio_referenced_one` (mm/rmap.c, v5.18
    /// cea86fe246b6) mlocks it ("Restore the mlock which got missed": `mlock_vma_folio`) and
    /// `shrink_active_list`'s putback culls it to the unevictable list; 4.18's
    /// `page_referenced_one` only reports VM_LOCKED, and the page is deactivated.
    #[test]
    fn shrink_active_list_mlocks_a_page_of_a_locked_vma_on_612_and_deactivates_it_on_418() {
        use crate::mm::vmstat::Vm;
        use crate::vmscan::lru::LruList;
        use crate::vmscan::shrink::ScanControl;
        for (p, mlocked) in [("4.18", false), ("6.12", true)] {
            let mut k = kernel(p);
            let (pid, a) = proc_with_pages(&mut k, false, 1);
            k.mlock(pid, a, 4096).unwrap();
            let pfn = k.arch().pte_pfn(k.pte_at(pid, a).unwrap());
            k.munlock_page(pfn);
            k.activate_page(pfn);
            assert_eq!(LruList::of(&k.mem.frames[pfn as usize]), LruList::ActiveAnon, "{p}");
            let culled = k.vmstat.get(Vm::unevictable_pgs_culled);
            let mut sc = ScanControl::new(32, true);
            k.shrink_active_list(1, LruList::ActiveAnon, &mut sc);
            let f = &k.mem.frames[pfn as usize];
            assert_eq!(f.test(pg::PG_MLOCKED), mlocked, "{p}");
            let want = if mlocked { LruList::Unevictable } else { LruList::InactiveAnon };
            assert_eq!(LruList::of(f), want, "{p}");
            assert_eq!(k.vmstat.get(Vm::unevictable_pgs_culled) - culled, u64::from(mlocked), "{p}");
            assert_eq!(k.vmstat.get(Vm::pgdeactivate), u64::from(!mlocked), "{p}");
            k.check_invariants().unwrap();
        }
    }
}
