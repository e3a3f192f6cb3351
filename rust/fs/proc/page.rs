//! `/proc/kpageflags`, `/proc/kpagecount` (fs/proc/page.c): one page frame's state by pfn.

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mm::page::FrameView;

impl Kernel {
    /// The frame `pfn` (its flags, refcount, mapcount, ...): what `kpageflags_read` and
    /// `kpagecount_read` report of it, and more. An error beyond memory.
    pub fn page_frame(&self, pfn: u32) -> Result<FrameView> {
        self.mem.view(pfn).ok_or_else(|| Error::invalid(format!("pfn {pfn} is beyond memory")))
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{kernel, proc_with_pages};

    #[test]
    fn a_written_page_has_one_mapping_and_pfns_past_memory_are_refused() {
        let mut k = kernel("4.18");
        let (pid, a) = proc_with_pages(&mut k, false, 1);
        let pte = k.pte_at(pid, a).unwrap();
        let pfn = crate::arch::s390::pte::Pte(pte).pfn() as u32;
        let f = k.page_frame(pfn).unwrap();
        assert_eq!((f.mapcount, f.content), (1, 1));
        assert!(k.page_frame(u32::MAX).is_err());
    }
}
