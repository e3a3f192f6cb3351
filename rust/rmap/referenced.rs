//! `folio_referenced` / `page_referenced` (mm/rmap.c): how many mappings used the page since
//! the last look, clearing their young bits on the way.
//!
//! On s390 `ptep_clear_flush_young` exchanges the PTE with `pte_mkold`, which is
//! hardware-invalid: the next access faults and the fault makes the PTE young again. In a PGSTE
//! mm the exchange passes through the PGSTE commit logic like any other.

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vm;
use crate::rmap::{Mapping, RmapWalkControl, walk_on};
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
    /// is skipped; the model's 6.12 has no `invalid_vma` either (see the simplification below).
    /// Not modelled: the page lock (`is_locked`, trylock failure returns 1), `try_lock`
    /// contention (-1), idle page tracking (`folio_test_clear_young`), lru_gen look-around.
    pub(crate) fn folio_referenced(&mut self, pfn: u32) -> Referenced {
        let mut r = Referenced::default();
        let f = &self.mem.frames[pfn as usize];
        if !f.mapped() || f.mapping == 0 {
            return r;
        }
        let mut mapcount = f.mapcount;
        let mut rwc = RmapWalkControl {
            rmap_one: |k: &mut Kernel, m: Mapping| {
                // folio_referenced_one / page_referenced_one
                let flags = k.vma(m.vma).flags;
                if flags & vm::VM_LOCKED != 0 {
                    r.vm_flags |= vm::VM_LOCKED;
                    return ControlFlow::Break(());
                }
                let young = k.ptep_test_and_clear_young(m.pid, m.idx);
                if young && flags & vm::VM_SEQ_READ == 0 {
                    r.referenced += 1;
                    r.vm_flags |= flags;
                }
                mapcount = mapcount.wrapping_sub(1); // pra->mapcount-- (an int in the kernel)
                walk_on(mapcount != 0)
            },
            done: None,
            invalid_vma: None,
        };
        self.rmap_walk(pfn, &mut rwc);
        r
    }

    /// `TestClearPageReferenced`.
    pub(crate) fn test_clear_referenced(&mut self, pfn: u32) -> bool {
        let f = &mut self.mem.frames[pfn as usize];
        let r = f.test(pg::PG_REFERENCED);
        f.clear(pg::PG_REFERENCED);
        r
    }
}
