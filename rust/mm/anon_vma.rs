//! `anon_vma` and `anon_vma_chain` (mm/rmap.c): how the rmap finds every VMA that may map an
//! anonymous page, across fork.
//!
//! A page is filed under the anon_vma of the VMA it was faulted in (`page->mapping`). After
//! fork the child VMA is linked to every anon_vma of the parent VMA (`anon_vma_clone`) and
//! gets an anon_vma of its own whose root is the parent's root (`anon_vma_fork`), so that a
//! COW-shared page is found in both processes and a page the child faults later only in the
//! child.
//!
//! Simplification: anon_vma ids are never reused and the reuse of an existing anon_vma by a
//! fresh VMA (`find_mergeable_anon_vma`, `anon_vma_clone` reuse heuristics) is not modelled.

use crate::kernel::Kernel;
use crate::mm::AnonVma;

impl Kernel {
    fn new_anon_vma(&mut self, root: Option<u32>, parent: Option<u32>) -> u32 {
        let id = self.anon_vmas.len() as u32;
        self.anon_vmas.push(AnonVma { root: root.unwrap_or(id), parent: parent.unwrap_or(id), vmas: Vec::new() });
        id
    }

    /// Link `vma` to `av` (an anon_vma_chain entry).
    pub(crate) fn anon_vma_chain_link(&mut self, vma: u32, av: u32) {
        let v = self.vma_mut(vma);
        if !v.anon_vma_chain.contains(&av) {
            v.anon_vma_chain.push(av);
            self.anon_vmas[av as usize].vmas.push(vma);
        }
    }

    /// `anon_vma_prepare`: give `vma` an anon_vma before its first anon page.
    pub(crate) fn anon_vma_prepare(&mut self, vma: u32) -> u32 {
        if let Some(av) = self.vma(vma).anon_vma {
            return av;
        }
        let av = self.new_anon_vma(None, None);
        self.vma_mut(vma).anon_vma = Some(av);
        self.anon_vma_chain_link(vma, av);
        av
    }

    /// `anon_vma_clone`: link `dst` to every anon_vma `src` is linked to (VMA split).
    pub(crate) fn anon_vma_clone(&mut self, dst: u32, src: u32) {
        let chain = self.vma(src).anon_vma_chain.clone();
        for av in chain {
            self.anon_vma_chain_link(dst, av);
        }
        let a = self.vma(src).anon_vma;
        self.vma_mut(dst).anon_vma = a;
    }

    /// `anon_vma_fork` (mm/rmap.c, 4.13..6.12): the child VMA `dst` of parent VMA `src`: linked to
    /// every anon_vma of the parent VMA, plus a new anon_vma whose root is the parent's root and
    /// whose parent is the parent VMA's anon_vma.
    pub(crate) fn anon_vma_fork(&mut self, dst: u32, src: u32) {
        let Some(pav) = self.vma(src).anon_vma else {
            self.vma_mut(dst).anon_vma = None;
            return;
        };
        let chain = self.vma(src).anon_vma_chain.clone();
        self.vma_mut(dst).anon_vma_chain.clear();
        for av in chain {
            self.anon_vma_chain_link(dst, av);
        }
        let root = self.anon_vmas[pav as usize].root;
        let av = self.new_anon_vma(Some(root), Some(pav));
        self.vma_mut(dst).anon_vma = Some(av);
        self.anon_vma_chain_link(dst, av);
    }
}
