//! `folio_referenced` / `page_referenced` (mm/rmap.c): how many mappings used the page since
//! the last look, clearing their young bits on the way.
//!
//! On s390 `ptep_clear_flush_young` exchanges the PTE with `pte_mkold`, which is
//! hardware-invalid: the next access faults and the fault makes the PTE young again. In a PGSTE
//! mm the exchange passes through the PGSTE commit logic like any other.

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::vm;

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
    /// `folio_referenced(folio, is_locked, memcg, &vm_flags)`.
    pub(crate) fn folio_referenced(&mut self, pfn: u32) -> Referenced {
        let mut r = Referenced::default();
        let f = &self.mem.frames[pfn as usize];
        if !f.mapped() || f.mapping == 0 {
            return r;
        }
        self.rmap_walk(
            pfn,
            |k, m| {
                // page_referenced_one
                let flags = k.vma(m.vma).flags;
                if flags & vm::VM_LOCKED != 0 {
                    r.vm_flags |= vm::VM_LOCKED;
                    return false;
                }
                let young = k.ptep_test_and_clear_young(m.pid, m.idx);
                if young && flags & vm::VM_SEQ_READ == 0 {
                    r.referenced += 1;
                    r.vm_flags |= flags;
                }
                true
            },
            false,
        );
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
