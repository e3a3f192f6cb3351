//! PTE markers (v5.19+): a non-present PTE that maps nothing and holds no swap slot but tells
//! the fault path something about the address. The model has the one marker uffd-wp uses,
//! `PTE_MARKER_UFFD_WP`: a file-backed (shmem) PTE that was write-protected through
//! userfaultfd keeps its protection when the page is unmapped (reclaim, MADV_DONTNEED), and
//! UFFDIO_WRITEPROTECT can protect a PTE that is still none.
//!
//! Kernel sources (6.12): include/linux/swapops.h (`make_pte_marker`, `is_pte_marker`,
//! `pte_marker_get`), include/linux/userfaultfd_k.h (`pte_marker_uffd_wp`,
//! `pte_swp_uffd_wp_any`, `userfaultfd_wp_use_markers`, `userfaultfd_wp_unpopulated`),
//! include/linux/mm_inline.h (`pte_install_uffd_wp_if_needed`), mm/memory.c
//! (`handle_pte_marker`, `pte_marker_handle_uffd_wp`, `pte_marker_clear`, `do_pte_missing`,
//! `zap_install_uffd_wp_if_needed`). Profiles: [`crate::Profile::pte_markers`] reserves the
//! swap type; [`crate::Profile::uffd_wp_markers`] is the file-backed uffd-wp that uses it.
//!
//! Simplifications: PTE_MARKER_POISONED (v6.6, hugetlb/shmem swapin errors) and
//! PTE_MARKER_GUARD (v6.13) are not modelled; a marker word without the uffd-wp bit cannot
//! be made, so `handle_pte_marker`'s WARN branches are unreachable.

use super::swapfile::MAX_SWAPFILES_SHIFT;
use crate::fault::{Fault, Vmf};
use crate::kernel::Kernel;
use crate::mm::vm;
use crate::profile::uffd_features::WP_UNPOPULATED;

/// `PTE_MARKER_UFFD_WP` (include/linux/swapops.h): "BIT(0)".
pub const PTE_MARKER_UFFD_WP: u64 = 1 << 0;

impl Kernel {
    /// `SWP_PTE_MARKER` (include/linux/swap.h): `MAX_SWAPFILES + SWP_HWPOISON_NUM +
    /// SWP_MIGRATION_NUM + SWP_DEVICE_NUM`, i.e. the last of the `1 << MAX_SWAPFILES_SHIFT`
    /// types (`SWP_PTE_MARKER_NUM` is 1). None before v5.19.
    pub fn swp_pte_marker_type(&self) -> Option<u32> {
        self.profile.pte_markers.then_some((1 << MAX_SWAPFILES_SHIFT) - 1)
    }

    /// `make_pte_marker(marker)`: `swp_entry_to_pte(swp_entry(SWP_PTE_MARKER, marker))`.
    pub(crate) fn make_pte_marker(&self, marker: u64) -> Option<u64> {
        self.swp_pte_marker_type().map(|t| self.swp_format().mk_swap_pte(t, marker))
    }

    /// `is_pte_marker(pte)`: a swap PTE of type SWP_PTE_MARKER.
    pub fn is_pte_marker(&self, pte: u64) -> bool {
        let arch = self.arch();
        arch.is_swap_pte(pte) && self.swp_pte_marker_type() == Some(self.swp_format().swp_type(pte))
    }

    /// `pte_marker_uffd_wp(pte)` (include/linux/userfaultfd_k.h).
    pub fn pte_marker_uffd_wp(&self, pte: u64) -> bool {
        self.is_pte_marker(pte) && self.swp_format().swp_offset(pte) & PTE_MARKER_UFFD_WP != 0
    }

    /// `pte_swp_uffd_wp_any(pte)`: a swap PTE write-protected in either form, the uffd-wp bit
    /// of a swap PTE or a uffd-wp marker.
    pub fn pte_swp_uffd_wp_any(&self, pte: u64) -> bool {
        let arch = self.arch();
        arch.is_swap_pte(pte) && (arch.pte_swp_uffd_wp(pte) || self.pte_marker_uffd_wp(pte))
    }

    /// `pte_none_mostly(pte)`: none, or a marker (`mfill_atomic_install_pte` fills over one).
    pub(crate) fn pte_none_mostly(&self, pte: u64) -> bool {
        self.arch().pte_none(pte) || self.is_pte_marker(pte)
    }

    /// `userfaultfd_wp(vma)`: the VMA is registered for write-protect tracking.
    pub(crate) fn userfaultfd_wp(&self, vma: u32) -> bool {
        self.vma(vma).flags & vm::VM_UFFD_WP != 0
    }

    /// `userfaultfd_wp_unpopulated(vma)`: the context has UFFD_FEATURE_WP_UNPOPULATED (v6.4).
    fn userfaultfd_wp_unpopulated(&self, vma: u32) -> bool {
        self.vma(vma).uffd.and_then(|c| self.uffds.get(c as usize)).is_some_and(|c| c.features & WP_UNPOPULATED != 0)
    }

    /// `userfaultfd_wp_use_markers(vma)` (6.12 include/linux/userfaultfd_k.h): "Only
    /// wr-protect mode uses pte markers"; "File-based uffd-wp always need markers"; anonymous
    /// memory only with UFFD_FEATURE_WP_UNPOPULATED.
    pub(crate) fn userfaultfd_wp_use_markers(&self, vma: u32) -> bool {
        if !self.profile.uffd_wp_markers || !self.userfaultfd_wp(vma) {
            return false;
        }
        !self.vma(vma).is_anonymous() || self.userfaultfd_wp_unpopulated(vma)
    }

    /// `pte_install_uffd_wp_if_needed(vma, addr, pte, pteval)` (6.12 include/linux/mm_inline.h)
    /// on a PTE just cleared: in a file-backed VMA registered for WP, a PTE that was uffd-wp
    /// (present with `pte_uffd_wp`, or a swap PTE / marker with `pte_swp_uffd_wp_any`) becomes a
    /// `PTE_MARKER_UFFD_WP` marker, "so we don't lose the tracking info". Anonymous VMAs never
    /// get one here. Returns whether it installed the marker.
    pub(crate) fn pte_install_uffd_wp_if_needed(&mut self, pid: u32, idx: usize, vma: u32, pteval: u64) -> bool {
        if !self.profile.uffd_wp_markers || self.vma(vma).is_anonymous() || !self.userfaultfd_wp(vma) {
            return false;
        }
        let arch = self.arch();
        let arm = (arch.pte_present(pteval) && arch.pte_uffd_wp(pteval)) || self.pte_swp_uffd_wp_any(pteval);
        if !arm {
            return false;
        }
        let Some(m) = self.make_pte_marker(PTE_MARKER_UFFD_WP) else { return false };
        self.set_pte_at(pid, idx, m);
        true
    }

    /// `handle_pte_marker` (6.12 mm/memory.c), reached from `do_swap_page` for a marker:
    /// "PTE markers should never be empty" (SIGBUS); the uffd-wp marker goes to
    /// `pte_marker_handle_uffd_wp`; "This is an unknown pte marker" (SIGBUS).
    pub(crate) fn handle_pte_marker(&mut self, vmf: Vmf) -> Fault {
        let marker = self.swp_format().swp_offset(vmf.orig_pte);
        if marker == 0 {
            return Fault::Sigbus;
        }
        if marker & PTE_MARKER_UFFD_WP != 0 {
            return self.pte_marker_handle_uffd_wp(vmf);
        }
        Fault::Sigbus
    }

    /// `pte_marker_handle_uffd_wp`: "Just in case there're leftover special ptes even after the
    /// region got unregistered - we can simply clear them" (`pte_marker_clear`, then the access
    /// faults again on a none PTE); otherwise `do_pte_missing`, which maps the page with the
    /// uffd-wp bit (`vmf_orig_pte_uffd_wp`), so a write then takes the WP userfault.
    fn pte_marker_handle_uffd_wp(&mut self, vmf: Vmf) -> Fault {
        if !self.userfaultfd_wp(vmf.vma) {
            // pte_marker_clear: only if the PTE is still the marker (pte_same)
            if self.mmx(vmf.pid).pt.pte(vmf.idx) == vmf.orig_pte {
                self.pte_clear(vmf.pid, vmf.idx);
            }
            return Fault::Retry;
        }
        if self.vma(vmf.vma).is_anonymous() { self.do_anonymous_page(vmf) } else { self.do_fault(vmf) }
    }

    /// `vmf_orig_pte_uffd_wp(vmf)`: the fault started on a uffd-wp marker; the PTE it installs
    /// gets `pte_mkuffd_wp` (`set_pte_range`, `do_anonymous_page`).
    pub(crate) fn vmf_orig_pte_uffd_wp(&self, vmf: &Vmf) -> bool {
        self.pte_marker_uffd_wp(vmf.orig_pte)
    }
}

#[cfg(test)]
mod tests {
    use crate::fault::Access;
    use crate::fs::proc::task_mmu::PageState;
    use crate::kernel::Kernel;
    use crate::mm::madvise::Advice;
    use crate::mm::mmap::MapKind;
    use crate::profile::Profile;
    use crate::uffd::ioctl::{UFFD_API, UFFDIO_REGISTER_MODE_WP, UFFDIO_WRITEPROTECT_MODE_WP};
    use crate::uffd::msg::{UFFD_PAGEFAULT_FLAG_WP, UffdMsg};

    fn kernel_x86() -> Kernel {
        Kernel::new(Profile::get("6.12", crate::arch::Arch::X86_64).unwrap(), 8 << 20, 8 << 20, 1).unwrap()
    }

    /// x86_64 6.12: a shared shmem page written, registered for WP and write-protected.
    fn shmem_wp(n: u64) -> (Kernel, u32, u32, u64) {
        shmem_wp_on(kernel_x86(), n)
    }

    fn shmem_wp_on(mut k: Kernel, n: u64) -> (Kernel, u32, u32, u64) {
        let pid = k.spawn("t", false).unwrap();
        let a = k.mmap(pid, n * 4096, MapKind::Shmem, true, None).unwrap();
        for i in 0..n {
            k.access(pid, 0, a + i * 4096, true, 10 + i).unwrap();
        }
        let u = k.userfaultfd(pid).unwrap();
        k.uffdio_api(u, UFFD_API, 0).unwrap();
        k.uffdio_register(u, a, n * 4096, UFFDIO_REGISTER_MODE_WP).unwrap();
        k.uffdio_writeprotect(u, a, n * 4096, UFFDIO_WRITEPROTECT_MODE_WP).unwrap();
        (k, pid, u, a)
    }

    fn assert_wp_userfault(k: &mut Kernel, pid: u32, u: u32, a: u64, what: &str) {
        let r = k.access(pid, 0, a, true, 99).unwrap();
        assert!(matches!(r, Access::Blocked { .. }), "{what}: the write must block, got {r:?}");
        let msgs = k.uffd_read(u).unwrap();
        assert!(
            msgs.iter().any(|m| matches!(m, UffdMsg::Pagefault(p) if p.flags & UFFD_PAGEFAULT_FLAG_WP != 0)),
            "{what}: a WP pagefault message, got {msgs:?}"
        );
        k.check_invariants().unwrap();
    }

    /// 6.12 mm/rmap.c try_to_unmap_one → `pte_install_uffd_wp_if_needed` (mm_inline.h), then
    /// mm/memory.c do_swap_page → `handle_pte_marker` → `pte_marker_handle_uffd_wp` →
    /// `do_fault` with the uffd-wp bit → `do_wp_page` → handle_userfault(VM_UFFD_WP).
    #[test]
    fn write_protected_shmem_page_still_faults_wp_after_reclaim_on_612() {
        let (mut k, pid, u, a) = shmem_wp(2);
        for _ in 0..8 {
            if k.is_pte_marker(k.pte_at(pid, a).unwrap()) {
                break;
            }
            k.reclaim(64);
        }
        let pte = k.pte_at(pid, a).unwrap();
        assert!(k.pte_marker_uffd_wp(pte), "reclaim left a uffd-wp marker, got {pte:#x}");
        assert_eq!(k.pagemap_entry(pid, a).unwrap(), PageState::Swapped, "pagemap: PM_SWAP");
        assert!(k.pagemap_uffd_wp(pid, a).unwrap(), "pagemap: PM_UFFD_WP for a marker");
        // a read maps the page again, still write-protected
        assert!(matches!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 10 }));
        assert!(k.arch().pte_uffd_wp(k.pte_at(pid, a).unwrap()));
        assert_wp_userfault(&mut k, pid, u, a, "reclaim");
    }

    /// 6.12 mm/memory.c zap_present_folio_ptes → `zap_install_uffd_wp_if_needed` for
    /// MADV_DONTNEED (no ZAP_FLAG_DROP_MARKER): the marker stays and the next write faults WP.
    #[test]
    fn write_protected_shmem_page_still_faults_wp_after_madv_dontneed_on_612() {
        let (mut k, pid, u, a) = shmem_wp(1);
        k.madvise(pid, a, 4096, Advice::Dontneed).unwrap();
        assert!(k.pte_marker_uffd_wp(k.pte_at(pid, a).unwrap()), "MADV_DONTNEED left a marker");
        // a second zap keeps it ("for file: only drop the marker if explicitly requested")
        k.madvise(pid, a, 4096, Advice::Dontneed).unwrap();
        assert!(k.pte_marker_uffd_wp(k.pte_at(pid, a).unwrap()));
        assert_wp_userfault(&mut k, pid, u, a, "MADV_DONTNEED");
    }

    /// 6.12 mm/mprotect.c change_pte_range: UFFDIO_WRITEPROTECT on a none PTE of a shmem VMA
    /// installs a marker (`userfaultfd_wp_use_markers`); an anonymous VMA gets one only with
    /// UFFD_FEATURE_WP_UNPOPULATED. Resolving drops the marker ("the next page fault will
    /// trigger without uffd trapping").
    #[test]
    fn writeprotect_marks_untouched_shmem_but_not_untouched_anon_on_612() {
        let mut k = kernel_x86();
        let pid = k.spawn("t", false).unwrap();
        let s = k.mmap(pid, 4096, MapKind::Shmem, true, None).unwrap();
        let an = k.mmap(pid, 4096, MapKind::Anon, false, None).unwrap();
        let u = k.userfaultfd(pid).unwrap();
        k.uffdio_api(u, UFFD_API, 0).unwrap();
        for a in [s, an] {
            k.uffdio_register(u, a, 4096, UFFDIO_REGISTER_MODE_WP).unwrap();
            k.uffdio_writeprotect(u, a, 4096, UFFDIO_WRITEPROTECT_MODE_WP).unwrap();
        }
        assert!(k.pte_marker_uffd_wp(k.pte_at(pid, s).unwrap()), "untouched shmem: a marker");
        assert!(!k.pte_at(pid, an).is_some_and(|p| k.is_pte_marker(p)), "anon without WP_UNPOPULATED: no marker");
        assert_wp_userfault(&mut k, pid, u, s, "untouched shmem");
        // the anon page is allocated without a userfault (no marker, no uffd-wp bit)
        assert!(matches!(k.access(pid, 1, an, true, 5).unwrap(), Access::Done { value: 5 }));
        // resolving drops the marker of a second, untouched shmem page
        let s2 = k.mmap(pid, 4096, MapKind::Shmem, true, None).unwrap();
        k.uffdio_register(u, s2, 4096, UFFDIO_REGISTER_MODE_WP).unwrap();
        k.uffdio_writeprotect(u, s2, 4096, UFFDIO_WRITEPROTECT_MODE_WP).unwrap();
        assert!(k.pte_marker_uffd_wp(k.pte_at(pid, s2).unwrap()));
        k.uffdio_writeprotect(u, s2, 4096, 0).unwrap();
        assert_eq!(k.pte_at(pid, s2), Some(k.arch().pte_none_val()));
        k.check_invariants().unwrap();
    }

    /// 6.12 fs/userfaultfd.c userfaultfd_unregister: "if (userfaultfd_wp(vma))
    /// uffd_wp_range(vma, start, vma_end - start, false);" (f369b07c8614, v6.0) drops the
    /// markers; a write after UNREGISTER completes.
    #[test]
    fn unregister_drops_uffd_wp_markers_on_612() {
        let (mut k, pid, u, a) = shmem_wp(1);
        k.madvise(pid, a, 4096, Advice::Dontneed).unwrap();
        assert!(k.pte_marker_uffd_wp(k.pte_at(pid, a).unwrap()));
        k.uffdio_unregister(u, a, 4096).unwrap();
        assert_eq!(k.pte_at(pid, a), Some(k.arch().pte_none_val()), "UNREGISTER cleared the marker");
        assert_eq!(k.access(pid, 0, a, true, 7).unwrap(), Access::Done { value: 7 });
        k.check_invariants().unwrap();
    }

    /// munmap (unmap_vmas: ZAP_FLAG_DROP_MARKER) drops the markers; a marker never counts in
    /// an rss counter nor holds a swap slot.
    #[test]
    fn munmap_drops_markers_and_markers_hold_no_swap_slot() {
        let (mut k, pid, _u, a) = shmem_wp(2);
        k.madvise(pid, a, 2 * 4096, Advice::Dontneed).unwrap();
        assert_eq!(k.swap.inuse(), 0);
        assert_eq!(k.mmx(pid).rss, [0; 4]);
        k.munmap(pid, a, 2 * 4096).unwrap();
        assert!(k.pte_at(pid, a).is_none_or(|p| p == k.arch().pte_none_val()));
        k.check_invariants().unwrap();
    }

    /// 6.12.117 fs/userfaultfd.c `userfaultfd_release` → `userfaultfd_release_all` →
    /// `userfaultfd_clear_vma` (mm/userfaultfd.c): "Reset ptes for the whole vma range if
    /// wr-protected" (c88033efe9a3, v6.9). After close() the marker of a zapped page is gone and
    /// the present PTE has lost its uffd-wp bit; without the switch (v6.0..v6.8) both stay.
    #[test]
    fn closing_a_userfaultfd_drops_uffd_wp_markers_and_bits_on_612() {
        use crate::profile::SwitchValue;
        let off = Profile::derive(
            "6.12",
            crate::arch::Arch::X86_64,
            "6.12-close-keeps-wp",
            &[("uffd_close_resets_wp", SwitchValue::Bool(false))],
        )
        .unwrap();
        for (profile, resets) in [(Profile::get("6.12", crate::arch::Arch::X86_64).unwrap(), true), (off, false)] {
            let k = Kernel::new(profile, 8 << 20, 8 << 20, 1).unwrap();
            let (mut k, pid, u, a) = shmem_wp_on(k, 2);
            k.madvise(pid, a, 4096, Advice::Dontneed).unwrap();
            assert!(k.pte_marker_uffd_wp(k.pte_at(pid, a).unwrap()));
            assert!(k.arch().pte_uffd_wp(k.pte_at(pid, a + 4096).unwrap()));
            k.uffd_close(u).unwrap();
            let (marker, bit) = (k.pte_at(pid, a).unwrap(), k.pte_at(pid, a + 4096).unwrap());
            assert_eq!(k.pte_marker_uffd_wp(marker), !resets, "resets={resets}: {marker:#x}");
            assert_eq!(k.arch().pte_uffd_wp(bit), !resets, "resets={resets}: {bit:#x}");
            if resets {
                assert_eq!(marker, k.arch().pte_none_val());
            }
            // no context is left: the writes complete either way (a leftover marker is cleared
            // at the fault, `pte_marker_clear`)
            assert_eq!(k.access(pid, 0, a, true, 7).unwrap(), Access::Done { value: 7 });
            assert_eq!(k.access(pid, 0, a + 4096, true, 8).unwrap(), Access::Done { value: 8 });
            k.check_invariants().unwrap();
        }
    }
}
