//! `try_to_unmap` / `try_to_unmap_one` and `try_to_migrate` / `try_to_migrate_one`
//! (mm/rmap.c), in the order each profile's kernel runs them. The seed bug lives here.
//!
//! ```text
//! try_to_unmap_one, per mapping found by the rmap walk:
//!   VM_LOCKED (unless TTU_IGNORE_MLOCK)      -> mlock the page, abort        (every profile)
//!   young (4.x, unless TTU_IGNORE_ACCESS)    -> abort                        ("4.17", "4.18")
//!   pteval = ptep_clear_flush(..)            -> on s390 may carry _PAGE_UNUSED
//!   pte_install_uffd_wp_if_needed (v5.19+)   -> uffd-wp file PTE becomes a PTE marker
//!   pte_dirty(pteval)                        -> set_page_dirty
//!   PageHWPoison && TTU_HWPOISON (6.12) / !TTU_IGNORE_HWPOISON (4.x)
//!                                            -> dec mm_counter, set_pte_at(hwpoison entry)
//!   pte_unused(pteval) [guard per profile]   -> dec rss, PTE stays none, no swap entry
//!   anon, swapbacked != swapcache            -> WARN, abort; the PTE stays none
//!   anon lazyfree: clean -> discard; redirtied -> restore, SetPageSwapBacked, abort
//!   anon: swap_duplicate fails               -> restore, abort
//!   anon: dec MM_ANONPAGES, inc MM_SWAPENTS, set_pte_at(swp_pte)
//!   file/shmem: dec mm_counter_file
//!   discard: page_remove_rmap, put_page
//! ```
//! The guard: `"4.17"` none; `"4.18"`/`"6.12"` `!userfaultfd_armed(vma)`; with
//! [`UnusedGuard::PresentAndUffdArmed`] also `pte_present(pteval)`.
//!
//! The hwpoison branch is reached from memory_failure → hwpoison_user_mappings (MADV_HWPOISON,
//! [`crate::mm::memory_failure`]), on x86_64 only: s390 does not select
//! ARCH_SUPPORTS_MEMORY_FAILURE, so there is no CONFIG_MEMORY_FAILURE, nothing sets PG_hwpoison
//! and `ttu_result::HWPOISON` never occurs there. A poisoned page is off the LRU, so reclaim and
//! migration never reach the branch; only hwpoison_user_mappings does.

use crate::kernel::Kernel;
use crate::mm::page::pg;
use crate::mm::swapfile::SWAP_TYPE;
use crate::mm::vmstat::Vm;
use crate::mm::{MM_ANONPAGES, MM_SWAPENTS, vm};
use crate::profile::UnusedGuard;
use crate::rmap::{Mapping, RmapWalkControl, walk_on};
use crate::sim::log::{Ev, ttu_result};

/// `enum ttu_flags` (v4.18 values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtuFlags(pub u32);

impl TtuFlags {
    pub const NONE: TtuFlags = TtuFlags(0);
    pub const MIGRATION: TtuFlags = TtuFlags(0x1);
    pub const MUNLOCK: TtuFlags = TtuFlags(0x2);
    pub const SPLIT_HUGE_PMD: TtuFlags = TtuFlags(0x4);
    pub const IGNORE_MLOCK: TtuFlags = TtuFlags(0x8);
    /// Removed in v5.11 ("always assume TTU_IGNORE_ACCESS").
    pub const IGNORE_ACCESS: TtuFlags = TtuFlags(0x10);
    /// 4.x: "corrupted page is recoverable": skip the hwpoison branch.
    pub const IGNORE_HWPOISON: TtuFlags = TtuFlags(0x20);
    /// 6.x `TTU_HWPOISON` ("do convert pte to hwpoison entry"): the same bit with the opposite
    /// sense; the hwpoison branch runs only when it is set.
    pub const HWPOISON: TtuFlags = TtuFlags(0x20);
    pub const BATCH_FLUSH: TtuFlags = TtuFlags(0x40);
    pub const RMAP_LOCKED: TtuFlags = TtuFlags(0x80);

    pub fn has(self, f: TtuFlags) -> bool {
        self.0 & f.0 != 0
    }
}

impl std::ops::BitOr for TtuFlags {
    type Output = TtuFlags;
    fn bitor(self, o: TtuFlags) -> TtuFlags {
        TtuFlags(self.0 | o.0)
    }
}

impl Kernel {
    /// `userfaultfd_armed(vma)`: VM_UFFD_MISSING | VM_UFFD_WP (4.18), plus VM_UFFD_MINOR where
    /// the profile has it (v5.13+: `vm_flags & __VM_UFFD_FLAGS`).
    pub fn userfaultfd_armed(&self, vma: u32) -> bool {
        let mut mask = vm::VM_UFFD_MISSING | vm::VM_UFFD_WP;
        if self.profile.uffd_minor {
            mask |= self.vm_uffd_minor();
        }
        self.vma(vma).flags & mask != 0
    }

    /// The `pte_unused` branch condition of this profile.
    fn unused_branch(&self, pteval: u64, vma: u32) -> bool {
        let arch = self.arch();
        if !arch.pte_unused(pteval) {
            return false;
        }
        match self.profile.unused_guard {
            UnusedGuard::None => true,
            UnusedGuard::UffdArmed => !self.userfaultfd_armed(vma),
            UnusedGuard::PresentAndUffdArmed => arch.pte_present(pteval) && !self.userfaultfd_armed(vma),
        }
    }

    /// `try_to_unmap(page, flags)`: walk the rmap with `rmap_one = try_to_unmap_one` and
    /// `done = folio_not_mapped` (4.x: `page_mapcount_is_zero`, the same for order-0 pages), so
    /// the walk stops once the page is no longer mapped. 4.x also sets `invalid_vma =
    /// invalid_migration_vma` for TTU_MIGRATION of an anon non-KSM page (6.12's try_to_unmap
    /// never migrates: that is try_to_migrate). Returns `!page_mapped(page)` (4.x's return
    /// value; 6.12's returns void and its callers test `folio_mapped`).
    pub fn try_to_unmap(&mut self, pfn: u32, flags: TtuFlags) -> bool {
        let migration = flags.has(TtuFlags::MIGRATION) && self.mem.frames[pfn as usize].anon();
        let mut rwc = RmapWalkControl {
            rmap_one: |k: &mut Kernel, m: Mapping| walk_on(k.try_to_unmap_one(pfn, m, flags)),
            done: Some(Kernel::folio_not_mapped),
            invalid_vma: migration.then_some(Kernel::invalid_migration_vma),
        };
        self.rmap_walk(pfn, &mut rwc);
        !self.mem.frames[pfn as usize].mapped()
    }

    fn log_ttu(&mut self, kind: Ev, m: Mapping, pfn: u32, result: u64, pteval: u64) {
        self.log(kind, m.pid, 0, m.addr, pfn as u64, result, pteval);
    }

    /// `try_to_unmap_one` for one mapping. Returns false to abort the rmap walk.
    pub(crate) fn try_to_unmap_one(&mut self, pfn: u32, m: Mapping, flags: TtuFlags) -> bool {
        let vflags = self.vma(m.vma).flags;
        let arch = self.arch();
        if !flags.has(TtuFlags::IGNORE_MLOCK) && vflags & vm::VM_LOCKED != 0 {
            self.mlock_page(pfn);
            self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::ABORT_MLOCK, 0);
            return false;
        }
        if self.profile.ttu_young_check
            && !flags.has(TtuFlags::IGNORE_ACCESS)
            && self.ptep_test_and_clear_young(m.pid, m.idx)
        {
            self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::ABORT_YOUNG, 0);
            return false;
        }
        // "Nuke the page table entry."
        let pteval = self.ptep_clear_flush(m.pid, m.idx);
        // v5.19+: "Now the pte is cleared. If this pte was uffd-wp armed, we may want to
        // replace a none pte with a marker pte if it's file-backed, so we don't lose the
        // tracking info." (pte_install_uffd_wp_if_needed; the branches below that set a PTE
        // overwrite the marker)
        self.pte_install_uffd_wp_if_needed(m.pid, m.idx, m.vma, pteval);
        if arch.pte_dirty(pteval) {
            self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
        }
        let f = self.mem.frames[pfn as usize];
        let hwpoison = f.test(pg::PG_HWPOISON)
            && if self.hwpoison_6x() { flags.has(TtuFlags::HWPOISON) } else { !flags.has(TtuFlags::IGNORE_HWPOISON) };
        if let Some(e) = self.mk_hwpoison_pte(pfn).filter(|_| hwpoison) {
            // pteval = swp_entry_to_pte(make_hwpoison_entry(subpage)); dec_mm_counter
            let c = self.mm_counter(pfn);
            self.add_rss(m.pid, c, -1);
            self.set_pte_at(m.pid, m.idx, e);
            self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::HWPOISON, pteval);
        } else if self.unused_branch(pteval, m.vma) {
            // The guest does not need the page: the PTE stays none, no swap entry.
            let c = self.mm_counter(pfn);
            self.add_rss(m.pid, c, -1);
            self.vmstat.inc(Vm::model_pte_unused_dropped);
            self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::DROP_UNUSED, pteval);
        } else if flags.has(TtuFlags::MIGRATION) {
            // make_migration_entry: the caller installs the new page at once (migration is
            // one step in the model), so the entry is not stored
            self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::MIGRATION_ENTRY, pteval);
            self.migration_targets.push((m.pid, m.vma, m.addr, m.idx, pteval));
        } else if f.anon() {
            if f.test(pg::PG_SWAPBACKED) != f.test(pg::PG_SWAPCACHE) {
                // WARN_ON_ONCE: a swap-backed page without a swap slot (cannot happen from
                // reclaim: shrink_folio_list calls add_to_swap first). The kernel aborts the
                // walk and leaves the PTE cleared ("We have to invalidate as we cleared the
                // pte"): 4.13/4.17/4.18 `ret = false; page_vma_mapped_walk_done(&pvmw);
                // break;`, 6.12 `goto walk_abort;`. No restore, no rmap removal: the page
                // keeps its mapcount and the PTE stays none.
                self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::ABORT_NOT_SWAPCACHE, pteval);
                return false;
            }
            if !f.test(pg::PG_SWAPBACKED) {
                // MADV_FREE page
                let drop = if self.profile.lazyfree_refcount_check {
                    self.mem.refcount(pfn) == 1 + self.mem.mapcount(pfn) && !f.test(pg::PG_DIRTY)
                } else {
                    !f.test(pg::PG_DIRTY)
                };
                if drop {
                    self.add_rss(m.pid, MM_ANONPAGES, -1);
                    self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::LAZYFREE_DISCARD, pteval);
                } else {
                    self.set_pte_at(m.pid, m.idx, pteval);
                    self.mem.frames[pfn as usize].set(pg::PG_SWAPBACKED);
                    self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::LAZYFREE_REDIRTIED, pteval);
                    return false;
                }
            } else {
                let off = f.swap_offset().expect("swap cache page has a slot");
                // swap_duplicate cannot fail here in the model, so this abort is kept only for
                // the kernel's order: the slot is held by the swap cache (SWAP_HAS_CACHE), so
                // it is neither free nor bad (-ENOENT/-EINVAL), and counts above SWAP_MAP_MAX
                // go to continuation counts that the model always gets, where the kernel's
                // add_swap_count_continuation(GFP_ATOMIC) may fail (-ENOMEM). Allocation
                // failure of that page is not modelled (no GFP_ATOMIC pool).
                if self.swap.duplicate(off).is_err() {
                    self.set_pte_at(m.pid, m.idx, pteval);
                    self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::ABORT_SWAP_DUP, pteval);
                    return false;
                }
                self.add_rss(m.pid, MM_ANONPAGES, -1);
                self.add_rss(m.pid, MM_SWAPENTS, 1);
                let mut swp = self.swp_format().mk_swap_pte(SWAP_TYPE, off as u64);
                if arch.pte_soft_dirty(pteval) {
                    swp = arch.pte_swp_mksoft_dirty(swp);
                }
                if self.profile.swp_exclusive && f.test(pg::PG_ANON_EXCLUSIVE) {
                    // folio_try_share_anon_rmap_pte: the page is no longer exclusive
                    swp = arch.pte_swp_mkexclusive(swp);
                    self.mem.frames[pfn as usize].clear(pg::PG_ANON_EXCLUSIVE);
                }
                swp = self.swp_carry_uffd_wp(pteval, swp);
                self.set_pte_at(m.pid, m.idx, swp);
                self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::SWAP, pteval);
            }
        } else {
            let c = self.mm_counter(pfn);
            self.add_rss(m.pid, c, -1);
            self.log_ttu(Ev::TryToUnmapOne, m, pfn, ttu_result::FILE, pteval);
        }
        // discard:
        self.page_remove_rmap(pfn);
        self.put_page(pfn);
        true
    }

    /// The workingset clock (`lruvec->nonresident_age`).
    pub(crate) fn workingset_age(&mut self) -> u32 {
        self.nonresident_age = self.nonresident_age.wrapping_add(1);
        self.nonresident_age
    }

    /// `try_to_migrate_one` ("6.12"; the same order as try_to_unmap_one without the mlock and
    /// young checks, the same `pte_unused` guard, then a migration entry).
    pub(crate) fn try_to_migrate_one(&mut self, pfn: u32, m: Mapping, kind: Ev) -> bool {
        let pteval = self.ptep_clear_flush(m.pid, m.idx);
        if self.arch().pte_dirty(pteval) {
            self.mem.frames[pfn as usize].set(pg::PG_DIRTY);
        }
        if self.unused_branch(pteval, m.vma) {
            let c = self.mm_counter(pfn);
            self.add_rss(m.pid, c, -1);
            self.vmstat.inc(Vm::model_pte_unused_dropped);
            self.log(kind, m.pid, 0, m.addr, pfn as u64, ttu_result::DROP_UNUSED, pteval);
        } else {
            self.log(kind, m.pid, 0, m.addr, pfn as u64, ttu_result::MIGRATION_ENTRY, pteval);
            self.migration_targets.push((m.pid, m.vma, m.addr, m.idx, pteval));
        }
        self.page_remove_rmap(pfn);
        self.put_page(pfn);
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::arch::s390::essa::{ESSA_SET_STABLE, ESSA_SET_UNUSED};
    use crate::fault::Access;
    use crate::mm::page::pg;
    use crate::mm::vmstat::Vm;
    use crate::mm::{MM_ANONPAGES, MM_SWAPENTS};
    use crate::testutil::{kernel, proc_with_pages};
    use crate::uffd::ioctl::UFFDIO_REGISTER_MODE_MISSING;

    /// The seed at unit level: a KVM process, anon RAM written, registered MISSING, the page
    /// UNUSED, reclaim picks it.
    fn seed(profile: &str) -> (crate::kernel::Kernel, u32, u64) {
        let mut k = kernel(profile);
        let (pid, a) = proc_with_pages(&mut k, true, 4);
        let u = k.userfaultfd(pid).unwrap();
        k.uffdio_api(u, 0xAA, 0).unwrap();
        k.uffdio_register(u, a, 4 * 4096, UFFDIO_REGISTER_MODE_MISSING).unwrap();
        k.essa(pid, 0, a, ESSA_SET_UNUSED).unwrap();
        k.reclaim(4);
        assert_eq!(k.mmx(pid).rss[MM_ANONPAGES], 0, "{profile}: every page left memory");
        k.check_invariants().unwrap();
        (k, pid, a)
    }

    #[test]
    fn unused_page_in_armed_vma_is_dropped_on_417() {
        let (k, pid, a) = seed("4.17");
        assert_eq!(k.pte_at(pid, a), Some(0x400), "the PTE is left none");
        assert_eq!(k.mmx(pid).rss[MM_SWAPENTS], 3, "only the three STABLE pages got swap entries");
        assert_eq!(k.mmx(pid).rss[MM_ANONPAGES], 0);
        assert_eq!(k.vmstat.get(Vm::model_pte_unused_dropped), 1);
        assert_eq!(k.swap.inuse(), 3, "no swap slot is held for the dropped page");
    }

    #[test]
    fn unused_page_in_armed_vma_is_swapped_on_418_and_612() {
        for p in ["4.18", "6.12"] {
            let (mut k, pid, a) = seed(p);
            let pte = k.pte_at(pid, a).unwrap();
            assert!(k.arch().is_swap_pte(pte), "{p}: swap PTE expected, got {pte:#x}");
            assert_eq!(k.mmx(pid).rss[MM_SWAPENTS], 4, "{p}");
            assert_eq!(k.vmstat.get(Vm::model_pte_unused_dropped), 0);
            // the guest reuses the page: a plain swap-in, no userfault, content intact
            k.essa(pid, 0, a, ESSA_SET_STABLE).unwrap();
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 1 }, "{p}");
            assert_eq!(k.vmstat.get(Vm::model_userfaults), 0);
            k.check_invariants().unwrap();
        }
    }

    /// PG_anon_exclusive is v5.19 (6c287605fd56, `__page_set_anon_rmap` /
    /// `page_add_new_anon_rmap` with RMAP_EXCLUSIVE, mm/rmap.c): a 6.12 page mapped by one
    /// process carries it (after a first fault and after a swap-in); 4.13/4.17/4.18 pages never
    /// do, so `Kernel.page()` does not report `anon_exclusive` there.
    #[test]
    fn pg_anon_exclusive_is_set_on_612_pages_and_never_on_4x_pages() {
        for p in ["4.13", "4.17", "4.18", "6.12"] {
            let (mut k, pid, a) = crate::testutil::swapped_out(p);
            assert_eq!(k.access(pid, 0, a, true, 5).unwrap(), Access::Done { value: 5 }, "{p}");
            let pfn = k.arch().pte_pfn(k.pte_at(pid, a).unwrap());
            let f = k.mem.frames[pfn as usize];
            assert_eq!(f.test(pg::PG_ANON_EXCLUSIVE), p == "6.12", "{p}: after a swap-in");
            let (pid2, c) = proc_with_pages(&mut k, false, 1);
            let pfn = k.arch().pte_pfn(k.pte_at(pid2, c).unwrap());
            assert_eq!(k.mem.frames[pfn as usize].test(pg::PG_ANON_EXCLUSIVE), p == "6.12", "{p}: a new page");
        }
    }

    /// The swap PTE `try_to_unmap_one` (mm/rmap.c) writes on x86_64 is arch/x86/include/asm/
    /// pgtable_64.h's `__swp_entry` of the release: 4.13, 4.17 and 4.18 (v4.8..v4.18)
    /// `((type) << SWP_TYPE_FIRST_BIT) | ((offset) << SWP_OFFSET_FIRST_BIT)`, the offset as it
    /// is from bit 14; 6.12 (v4.19+, "x86/speculation/l1tf: Protect swap entries against L1TF")
    /// the offset inverted from bit 9, the type in bits 59..63. Swap-in reads it back.
    #[test]
    fn x86_reclaim_writes_the_plain_swap_offset_before_v4_19_and_the_inverted_one_on_612() {
        use crate::arch::Arch;
        use crate::profile::Profile;
        for p in ["4.13", "4.17", "4.18", "6.12"] {
            let mut k =
                crate::kernel::Kernel::new(Profile::get(p, Arch::X86_64).unwrap(), 8 << 20, 8 << 20, 1).unwrap();
            let (pid, a) = proc_with_pages(&mut k, false, 1);
            for _ in 0..8 {
                if k.arch().is_swap_pte(k.pte_at(pid, a).unwrap()) {
                    break;
                }
                k.reclaim(8);
            }
            let pte = k.pte_at(pid, a).unwrap();
            assert!(k.arch().is_swap_pte(pte), "{p}: swapped out");
            let off = k.swp_format().swp_offset(pte);
            assert!(off > 0, "{p}: a swap slot");
            let soft = crate::arch::x86::_PAGE_SWP_SOFT_DIRTY | crate::arch::x86::_PAGE_SWP_EXCLUSIVE;
            if p == "6.12" {
                assert_eq!(pte >> 59, 0, "{p}: type 0 in the top bits");
                assert_eq!(pte & !soft, (!off) << 14 >> 5 & !0x1ff, "{p}: {pte:#x}");
            } else {
                assert_eq!(pte & !soft, off << 14, "{p}: type 0 in bits 9..13, the offset from bit 14: {pte:#x}");
            }
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 1 }, "{p}: swapped back in");
            k.check_invariants().unwrap();
        }
    }

    /// `try_to_unmap_one` (mm/rmap.c; 4.13/4.17/4.18 `WARN_ON_ONCE(1); ret = false; ...
    /// break;`, 6.12 `WARN_ON_ONCE(1); goto walk_abort;`): a swap-backed anon page that is not
    /// in the swap cache aborts the walk with its PTE cleared, not restored; the page stays
    /// "mapped" (mapcount kept) and try_to_unmap reports failure.
    #[test]
    fn swapbacked_page_outside_the_swap_cache_leaves_the_pte_cleared() {
        use crate::rmap::unmap::TtuFlags;
        use crate::sim::log::{Ev, ttu_result};
        for p in ["4.13", "4.17", "4.18", "6.12"] {
            let mut k = kernel(p);
            let (pid, a) = proc_with_pages(&mut k, false, 1);
            let arch = k.arch();
            let pfn = arch.pte_pfn(k.pte_at(pid, a).unwrap());
            let f = k.mem.frames[pfn as usize];
            assert!(f.test(pg::PG_SWAPBACKED) && !f.test(pg::PG_SWAPCACHE), "{p}: a fresh anon page");
            assert!(!k.try_to_unmap(pfn, TtuFlags::IGNORE_ACCESS), "{p}: the walk aborted");
            assert_eq!(k.pte_at(pid, a), Some(arch.pte_none_val()), "{p}: the PTE stays cleared");
            assert_eq!(k.mem.mapcount(pfn), 1, "{p}: no page_remove_rmap");
            let last = *k.log.events().last().unwrap();
            assert_eq!((last.kind, last.b), (Ev::TryToUnmapOne, ttu_result::ABORT_NOT_SWAPCACHE), "{p}");
        }
    }

    #[test]
    fn dropped_page_becomes_a_userfault_on_417() {
        let (mut k, pid, a) = seed("4.17");
        k.essa(pid, 0, a, ESSA_SET_STABLE).unwrap();
        let r = k.access(pid, 0, a, false, 0).unwrap();
        assert!(matches!(r, Access::Blocked { .. }), "{r:?}");
        assert_eq!(k.blocked_threads().len(), 1);
    }

    #[test]
    fn without_userfaultfd_unused_is_dropped_everywhere_and_stable_is_swapped() {
        for p in ["4.17", "4.18", "6.12"] {
            let mut k = kernel(p);
            let (pid, a) = proc_with_pages(&mut k, true, 2);
            k.essa(pid, 0, a, ESSA_SET_UNUSED).unwrap();
            // the dropped page is freed by the putback and not counted in nr_reclaimed
            assert_eq!(k.reclaim(2), 1);
            assert_eq!(k.pte_at(pid, a), Some(0x400), "{p}: UNUSED dropped");
            assert!(k.arch().is_swap_pte(k.pte_at(pid, a + 4096).unwrap()), "{p}: STABLE swapped");
            // the dropped page reads back as a fresh zero page: the guest said it was unused
            assert_eq!(k.access(pid, 0, a, false, 0).unwrap(), Access::Done { value: 0 });
            assert_eq!(k.access(pid, 0, a + 4096, false, 0).unwrap(), Access::Done { value: 2 });
            k.check_invariants().unwrap();
        }
    }
}
