//! Kernel profiles: every behaviour that changed across releases, as data.
//!
//! A profile is a struct of switches plus the arch, chosen by name. Code never tests a release
//! number; it tests the switch (a field) that names the behaviour, each with its commit in
//! [`SWITCHES`], so that two profiles can run side by side in one study, a user can derive a
//! variant ([`Profile::derive`]) and the next release is a small change here.
//!
//! | profile | what it stands for |
//! |---|---|
//! | `"4.13"` | before fa41ba0d08de (v4.14): a KVM guest may get the shared zero page from a fault, and enabling storage keys zaps zero-page mappings; before 9c4e6b1a7027 (v4.16) a page faulted into a locked VMA goes to the unevictable list uncounted |
//! | `"4.17"` | before the seed fix: `pte_unused` drops the page unguarded |
//! | `"4.18"` | the fix bce73e484239: `pte_unused(pteval) && !userfaultfd_armed(vma)` |
//! | `"6.12"` | current shape: no young check in try_to_unmap_one (v5.11), try_to_migrate_one (v5.14), MINOR (v5.13), the zero page re-enabled for KVM guests and unshared instead of zapped (v6.11), UFFDIO_ZEROPAGE places a zeroed folio where the zero page is forbidden (v6.10), swap PTEs carry `_PAGE_SWP_EXCLUSIVE` (v6.0), PG_anon_exclusive and read swap-ins of exclusive pages mapped writable (v5.19), filled PTEs always dirty (v6.0), UFFDIO_COPY into MAP_PRIVATE shmem allocates anon memory (v4.20), MADV_SEQUENTIAL/MADV_RANDOM mappings have no recency for folio_referenced and zap (v6.3), folio_referenced mlocks a page of a locked VMA and the last unmap munlocks instead of clearing (v5.18) |

use crate::arch::Arch;
use crate::arch::s390::pgste::PgsteLayout;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub mod derive;
pub mod fixes;
pub use derive::{SWITCHES, Switch, SwitchKind, SwitchValue, VARIANTS, Variant};
pub use fixes::CandidateFixes;

/// The guard on the `pte_unused` branch of `try_to_unmap_one` / `try_to_migrate_one`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UnusedGuard {
    /// `} else if (pte_unused(pteval)) {` (v3.15 .. v4.17).
    None,
    /// `} else if (pte_unused(pteval) && !userfaultfd_armed(vma)) {` (v4.18 ..).
    UffdArmed,
    /// `likely(pte_present(pteval)) && pte_unused(pteval) && !userfaultfd_armed(vma)`
    /// (D. Hildenbrand's device-exclusive series, 2025).
    PresentAndUffdArmed,
}

/// What `mm_forbids_zeropage(mm)` is on s390.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ForbidsZeropage {
    /// `mm_use_skey` (before v4.14).
    UsesSkeys,
    /// `mm_has_pgste` (v4.14 .. v6.10, fa41ba0d08de): KVM guests never get the shared zero page
    /// from a fault.
    HasPgste,
    /// `!mm->context.allow_cow_sharing` (v6.11+): forbidden once storage keys or protected
    /// virtualization are enabled.
    NoCowSharing,
}

/// When and how s390 removes shared zero-page mappings from a KVM process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZeroPageRemoval {
    /// `s390_enable_skey` → `__s390_enable_skey`: zero-page PTEs are cleared to none when the
    /// guest enables storage keys (before v4.14 / fa41ba0d08de).
    ZapOnSkeyEnable,
    /// `s390_enable_sie` → `zap_zero_pages`: cleared to none once, when the process becomes a
    /// KVM host (v4.14 .. v6.10); enabling storage keys only resets keys.
    ZapOnSieEnable,
    /// `s390_disable_cow_sharing` → `__s390_unshare_zeropages`: each zero-page mapping is
    /// replaced by a fresh anonymous page through a FAULT_FLAG_UNSHARE fault when storage
    /// keys are enabled ("we cannot simply zap all shared zeropages, because this could later
    /// trigger unexpected userfaultfd missing events"; v6.11+).
    UnshareOnCowDisable,
}

/// Serde of [`Profile::name`]: a snapshot stores the name (with every switch beside it);
/// reading it back gives the built-in name's `&'static str`, or a derived profile's interned
/// name (`derive.rs`); a malformed name is refused both ways.
mod builtin_name {
    use serde::{Deserialize, Deserializer, Serializer, de, ser::Error};

    pub fn serialize<S: Serializer>(name: &&'static str, s: S) -> Result<S::Ok, S::Error> {
        super::check_builtin_name(name).map_err(S::Error::custom)?;
        s.serialize_str(name)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::Profile::restore_name(&name).map_err(de::Error::custom)
    }
}

/// `&'static str` under another name: serde's derive borrows every field spelled `&str` from
/// the input, which `builtin_name` (a lookup, no borrow) must not be tied to.
pub type StaticName = &'static str;

/// Refuse a profile name that is neither built-in nor a well-formed derived name (a snapshot
/// could not restore it).
fn check_builtin_name(name: &str) -> Result<()> {
    Profile::restore_name(name).map(|_| ())
}

/// A kernel profile.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Profile {
    /// The profile's name, e.g. `"4.18"`, or a derived profile's (`Profile::derive`).
    #[serde(with = "builtin_name")]
    pub name: StaticName,
    /// (major, minor) of the release modelled.
    pub release: (u16, u16),
    pub arch: Arch,

    // --- arch layer ---
    /// Where PGSTE UC/IN/VSIE live.
    pub pgste_layout: PgsteLayout,
    /// Swap PTEs carry `_PAGE_SWP_EXCLUSIVE` for exclusive anon pages (v6.0+).
    pub swp_exclusive: bool,
    /// x86_64 swap PTEs hold the offset inverted from bit 9 and the type in bits 59..63
    /// ("x86/speculation/l1tf: Protect swap entries against L1TF", v4.19, after "Change order
    /// of offset/type in swap entry"); before (v4.8..v4.18), arch/x86/include/asm/pgtable_64.h
    /// had `__swp_entry(type, offset) ((type) << (SWP_TYPE_FIRST_BIT)) | ((offset) <<
    /// SWP_OFFSET_FIRST_BIT)`: type in bits 9..13, the offset as it is from bit 14. No effect on
    /// s390. Read through [`Profile::swp_format`].
    pub x86_swp_offset_inverted: bool,
    /// PG_anon_exclusive exists (6c287605fd56 "mm: remember exclusively mapped anonymous pages
    /// with PG_anon_exclusive", v5.19); before, an anon page carries no exclusivity flag.
    pub pg_anon_exclusive: bool,
    /// `ptep_zap_unused` with `reset` clears NODAT along with the usage bits ("KVM: s390/mm:
    /// Properly reset no-dat", v6.7); before, only `_PGSTE_GPS_USAGE_MASK`.
    pub zap_unused_reset_clears_nodat: bool,
    /// `mm_forbids_zeropage`.
    pub forbids_zeropage: ForbidsZeropage,
    /// How zero-page mappings leave a KVM process.
    pub zero_page_removal: ZeroPageRemoval,

    // --- rmap / reclaim ---
    /// try_to_unmap_one clears the young bit itself and fails on a young PTE
    /// (`!TTU_IGNORE_ACCESS && ptep_clear_flush_young_notify`); removed in v5.11.
    pub ttu_young_check: bool,
    /// `vma_has_recency(vma)` (v6.3, "mm: add vma_has_recency()"): a VMA with VM_SEQ_READ or
    /// VM_RAND_READ carries no recency. folio_referenced skips it altogether
    /// (`invalid_folio_referenced_vma`: its young bit is neither tested nor cleared, its
    /// VM_LOCKED not seen) and zap_pte_range does not `mark_page_accessed` through it. Before,
    /// only VM_SEQ_READ mattered: page_referenced_one cleared the young bit but did not count
    /// it, and zap skipped mark_page_accessed; VM_RAND_READ references counted.
    pub vma_has_recency: bool,
    /// The guard on the `pte_unused` drop.
    pub unused_guard: UnusedGuard,
    /// `try_to_migrate_one` split out of try_to_unmap_one (v5.14+). Before, migration went
    /// through try_to_unmap_one with TTU_MIGRATION (same branch order).
    pub try_to_migrate_split: bool,
    /// shrink_folio_list's lazyfree check (v5.x+): a clean lazyfree anon folio is dropped only
    /// if `folio_ref_count == 1 + folio_mapcount` in try_to_unmap_one (6.x), else the PTE is
    /// restored; before, only the dirty bit decided.
    pub lazyfree_refcount_check: bool,
    /// New anon pages start on the active list (`lru_cache_add_active_or_unevictable`, up to
    /// v5.8); from v5.9 they start inactive (`lru_cache_add_inactive_or_unevictable`).
    pub new_anon_active: bool,
    /// `do_swap_page` maps an exclusive page writable on a read fault too (c145e0b47c77 "mm:
    /// streamline COW logic in do_swap_page()", v5.19): `if (!folio_test_ksm(folio) &&
    /// (exclusive || folio_ref_count(folio) == 1)) { if ((vma->vm_flags & VM_WRITE) &&
    /// !userfaultfd_pte_wp(vma, pte) && !pte_needs_soft_dirty_wp(vma, pte)) { pte =
    /// pte_mkwrite(pte, vma); ...`. Before, only a write fault with `reuse_swap_page` did.
    pub swapin_exclusive_writable: bool,
    /// `do_swap_page` activates the page it maps (`activate_page`, up to v5.8); from v5.9 a
    /// swapped-in page is activated only by workingset refault detection.
    pub swapin_activates: bool,
    /// Workingset detection for anon pages: shadow entries left in the swap cache on eviction,
    /// `workingset_refault_anon` on swap-in (v5.9+).
    pub workingset_anon: bool,
    /// `folio_check_references` (v5.9+): a referenced swap-backed page needs a second strike
    /// like a file page (4.x activated it on the first); a VM_LOCKED mapping gives ACTIVATE
    /// (4.x: RECLAIM).
    pub references_two_strikes: bool,
    /// `folio_referenced_one` mlocks the folio it finds mapped in a VM_LOCKED VMA ("Restore the
    /// mlock which got missed": `mlock_vma_folio(folio, vma)`, cea86fe246b6 "mm/munlock: rmap
    /// call mlock_vma_page() munlock_vma_page()", v5.18); before, `page_referenced_one` only
    /// reported VM_LOCKED and `try_to_unmap_one` mlocked the page.
    pub referenced_mlocks: bool,
    /// `page_remove_rmap` calls `clear_page_mlock` when the last mapping of an mlocked page
    /// goes (UNEVICTABLE_PGCLEARED; 4.x). Removed in v5.18 by "mm/munlock: replace
    /// clear_page_mlock() by final clearance": the unmap through a VM_LOCKED VMA munlocks
    /// (`munlock_vma_folio`, UNEVICTABLE_PGMUNLOCKED).
    pub remove_rmap_clears_mlock: bool,
    /// `__pagevec_lru_add_fn` puts an mlocked page on the unevictable list itself and counts
    /// UNEVICTABLE_PGCULLED (9c4e6b1a7027 "mm, mlock, vmscan: no more skipping pagevecs",
    /// v4.16); before, `lru_cache_add_active_or_unevictable` used `add_page_to_unevictable_list`,
    /// which counts nothing.
    pub lru_add_culls_unevictable: bool,
    /// The v5.8+ scan balance (`prepare_scan_control` / `get_scan_count`, mm/vmscan.c v6.12):
    /// anon against file by reclaim cost (`lru_note_cost`: `anon_cost`, `file_cost`) instead
    /// of `recent_scanned` / `recent_rotated`; "file is tiny" and "cache trim mode" decided at
    /// the reclaim root; active lists deactivated when refaults activated pages since the last
    /// reclaim (`may_deactivate`, `snapshot_refaults`), not only when the inactive list is low,
    /// with a forced retry (`force_deactivate`). 4.x: the v4.13..v4.19 get_scan_count.
    pub scan_balance_by_cost: bool,
    /// MADV_COLD and MADV_PAGEOUT exist (v5.4+); before, they are -EINVAL.
    pub madv_cold_pageout: bool,
    /// Upper bound of `min_free_kbytes` from `init_per_zone_wmark_min`: 65536 up to v5.7,
    /// 262144 from v5.8.
    pub min_free_kbytes_max: u64,
    /// Direct reclaim that has reclaimed nothing by priority 1 throttles on
    /// VMSCAN_THROTTLE_NOPROGRESS (`consider_reclaim_throttle` → `reclaim_throttle`, mm/vmscan.c
    /// 6.12.117): 69392a403f49 "mm/vmscan: throttle reclaim when no progress is being made"
    /// (v5.16), made a `cond_resched()` unless writeback dominates and a one-jiffy sleep by
    /// 1b4e3f26f9f7 "mm: vmscan: Reduce throttling due to a failure to make progress" (v5.16,
    /// `skip_throttle_noprogress`). 4.13..4.18 have no such throttle (their direct reclaim
    /// waits in `wait_iff_congested` / `congestion_wait`, not at this point).
    pub consider_reclaim_throttle: bool,

    // --- userfaultfd ---
    /// UFFD_FEATURE_MINOR_SHMEM / VM_UFFD_MINOR / UFFDIO_CONTINUE exist (v5.13+), and
    /// `userfaultfd_armed` includes VM_UFFD_MINOR.
    pub uffd_minor: bool,
    /// UFFDIO_REGISTER_MODE_WP is implemented (v5.7+); where the arch lacks
    /// HAVE_ARCH_USERFAULTFD_WP (s390) registration still fails with EINVAL.
    pub uffd_wp: bool,
    /// UFFDIO_ZEROPAGE places a zeroed folio when `mm_forbids_zeropage` (v6.10+); before, it
    /// mapped the shared zero page even in a KVM mm.
    pub uffd_zeropage_checks_forbids: bool,
    /// UFFDIO_REGISTER/UNREGISTER look the range up with `vma_find` (v6.1+, maple tree): no VMA
    /// in the range is -EINVAL; before, `find_vma_prev` gave -ENOMEM when no VMA lies at or
    /// above the start.
    pub uffd_register_vma_find: bool,
    /// `mfill_atomic_install_pte` makes every filled PTE dirty (`_dst_pte =
    /// pte_mkdirty(_dst_pte);`, 9ae0f87d009c "mm/shmem: unconditionally set pte dirty in
    /// mfill_atomic_install_pte", v6.0); before, `mcopy_atomic_pte` and
    /// `shmem_mcopy_atomic_pte` did `if (dst_vma->vm_flags & VM_WRITE) _dst_pte =
    /// pte_mkwrite(pte_mkdirty(_dst_pte));`.
    pub mfill_pte_always_dirty: bool,
    /// UFFDIO_COPY/ZEROPAGE into a MAP_PRIVATE shmem VMA allocate an anonymous page
    /// (5b51072e97d5 "userfaultfd: shmem: allocate anonymous memory for MAP_PRIVATE shmem",
    /// v4.20: `if (!(dst_vma->vm_flags & VM_SHARED))` picks `mcopy_atomic_pte`); before,
    /// `__mcopy_atomic` sent every shmem VMA to `shmem_mcopy_atomic_pte` /
    /// `shmem_mfill_zeropage_pte`, which put the page in the shmem page cache.
    pub uffd_private_shmem_anon: bool,
    /// `vma_wants_manual_pte_write_upgrade` in mprotect's `change_protection`: a private
    /// writable VMA gets its exclusive anon PTEs made writable at once (64fe24a3e05e, "mm/mprotect:
    /// try avoiding write faults for exclusive anonymous pages when changing protection", v6.0).
    pub mprotect_write_upgrade: bool,
    /// `mlock_fixup` mlocks the present pages of a VMA it locks (`mlock_vma_pages_range` →
    /// `mlock_pte_range`) and munlocks them when it unlocks (34b6792380ce, "mm/munlock:
    /// mlock_pte_range() when mlocking or munlocking", v5.18); before, mlock_fixup only set
    /// VM_LOCKED and the pages were mlocked by `__mm_populate`'s GUP (FOLL_MLOCK) or later by
    /// reclaim. Seen when mlock fails before populating (a hole in the range: ENOMEM).
    pub mlock_fixup_mlocks_pages: bool,
    /// `mremap_userfaultfd_prep` drops the uffd registration of the moved VMA when the context
    /// lacks UFFD_FEATURE_EVENT_REMAP (P. Xu, "userfaultfd: clear flag if remap event not
    /// enabled", patch of December 2018, v5.0; commit id unverified); before, the VMA stayed
    /// registered.
    pub uffd_remap_clears_unfeatured: bool,
    /// Proactive reclaim asks for a quarter of what is left per pass (287d5fedb377, "mm: memcg:
    /// use larger batches for proactive reclaim", v6.9); before, SWAP_CLUSTER_MAX at most.
    pub proactive_reclaim_quarter_batch: bool,
    /// The 6.x shape of memory failure: TTU_HWPOISON asks for the hwpoison branch of
    /// try_to_unmap_one (6da6b1d4a7df, "mm/hwpoison: convert TTU_IGNORE_HWPOISON to
    /// TTU_HWPOISON", v6.3, backported to 6.1.y and 6.2.y; 4.x took it unless TTU_IGNORE_HWPOISON, the same bit), and swap.h
    /// reserves the 6.x number of special swap types.
    pub hwpoison_ttu_flag: bool,
    /// Migration entries remember the young and dirty bits of the PTE they replace
    /// (2e3468778dbe, "mm/swap: remember young/dirty bit for page migrations", v6.1:
    /// `make_migration_entry_young/dirty` in try_to_migrate_one, restored by
    /// remove_migration_pte); before, remove_migration_pte made every new PTE old.
    pub migration_entry_ad: bool,
    /// How many swap types `SWP_DEVICE_NUM` reserves where CONFIG_DEVICE_PRIVATE is set
    /// (include/linux/swap.h): none before 5042db43cc26 ("mm/ZONE_DEVICE: new type of
    /// ZONE_DEVICE for unaddressable memory", v4.14: SWP_DEVICE_WRITE/READ), 4 since
    /// b756a3b5e7ea ("mm: device exclusive memory access", v5.14: SWP_DEVICE_EXCLUSIVE_WRITE/READ).
    pub swp_device_types: u64,
    /// A swap type is reserved for PTE markers, `SWP_PTE_MARKER` (5c041f5d1f23, "mm: teach core
    /// mm about pte markers", v5.19; under CONFIG_PTE_MARKER there, unconditional
    /// `#define SWP_PTE_MARKER_NUM 1` in 6.12).
    pub pte_markers: bool,
    /// uffd-wp on file-backed memory with `PTE_MARKER_UFFD_WP` markers (v5.19: 1db9dbc2ef05
    /// "mm/uffd: PTE_MARKER_UFFD_WP", 999dad824c39 "mm/shmem: persist uffd-wp bit across
    /// zapping for file-backed", fe2567eb5521 "mm/shmem: allow uffd wr-protect none pte for
    /// file-backed mem", b1f9e876862d "mm/uffd: enable write protection for shmem &
    /// hugetlbfs"): UFFDIO_REGISTER_MODE_WP is accepted on shmem, try_to_unmap_one and zap
    /// leave a marker where a uffd-wp PTE was, UFFDIO_WRITEPROTECT marks none PTEs
    /// ([`crate::mm::pte_marker`]); before, `vma_can_userfault` refused WP on shmem.
    pub uffd_wp_markers: bool,
    /// UFFDIO_UNREGISTER of a VM_UFFD_WP range resolves its write protection first (`if
    /// (userfaultfd_wp(vma)) uffd_wp_range(vma, start, vma_end - start, false);`, f369b07c8614
    /// "mm/uffd: reset write protection when unregister with wp-mode", v6.0), dropping the
    /// uffd-wp markers; before, PTEs kept the bit (markers were cleared lazily at fault).
    pub uffd_unregister_resets_wp: bool,
    /// Closing a userfaultfd resolves the write protection of every VM_UFFD_WP VMA it had
    /// registered, as UNREGISTER does (c88033efe9a3 "mm/userfaultfd: reset ptes when close()
    /// for wr-protected ones", v6.9; 6.12.117 `userfaultfd_release_all` →
    /// `userfaultfd_clear_vma`: `if (userfaultfd_wp(vma)) uffd_wp_range(vma, start, end -
    /// start, false);`): uffd-wp PTE bits are cleared and markers dropped. Before, `close()`
    /// only cleared the VMA flags: the bits stayed, markers were cleared lazily at fault.
    pub uffd_close_resets_wp: bool,
    /// A VM_SHARED VMA registered for uffd-wp is write-notified: `userfaultfd_set_vm_flags`
    /// recomputes `vm_page_prot` when VM_UFFD_WP changes (`vma_set_page_prot`), and
    /// `vma_wants_writenotify` returns true for `userfaultfd_wp(vma)`, so pages map read-only
    /// and the first write takes a `wp_page_shared` fault (51d3d5eb74ff "mm/userfaultfd:
    /// enable writenotify while userfaultfd-wp is enabled for a VMA", posted 2022-12 after
    /// v6.1-rc7, so v6.2 — release unverified; 6.12.117 mm/userfaultfd.c, mm/vma.c). Before,
    /// a shared VMA kept its writable `vm_page_prot` ([`crate::mm::mmap`]).
    pub uffd_wp_writenotify: bool,
    /// shrink_folio_list's writeback tracepoint is `mm_vmscan_write_folio` (e0cd5e7ffa54,
    /// "mm/vmscan: Convert pageout() to take a folio", v5.18: `-TRACE_EVENT(mm_vmscan_writepage,`
    /// `+TRACE_EVENT(mm_vmscan_write_folio,`); before, `mm_vmscan_writepage`.
    pub vmscan_write_folio_tracepoint: bool,
    /// The feature bits UFFDIO_API offers on an arch with every capability (`UFFD_API_FEATURES`).
    pub uffd_api_features: u64,
    /// The multi-gen LRU reclaims (`CONFIG_LRU_GEN_ENABLED=y`, [`crate::vmscan::lru_gen`]):
    /// merged in v6.1, off by default upstream, on in the distributions' 6.x kernels (Debian,
    /// Fedora, Arch). The caps follow the arch ([`Profile::lru_gen_caps`]).
    pub lru_gen: bool,
    /// MGLRU's activation resets a page's tier bits ("mm/mglru: reset page lru tier bits when
    /// activating", W. Xu, mainline v6.13, id unverified; in Debian's 6.12 from the stable
    /// update 6.12.114, so the 6.12.117 guests have it and the 6.12.107 s390x guest does not):
    /// `lru_gen_add_folio` of an active page clears LRU_REFS_MASK and PG_referenced with
    /// PG_active (not PG_workingset), and `lru_gen_look_around` clears a page's LRU_REFS_MASK
    /// and LRU_REFS_FLAGS (`folio_clear_lru_refs`) before `folio_activate`. Before, an
    /// activated page kept its accesses: a page refaulted in a fault (`lru_gen_refault` gives
    /// it the most) stays in the top tier, which `sort_folio` protects once.
    pub lru_gen_activate_resets_refs: bool,
    /// MGLRU leaves pages under writeback to `shrink_folio_list` ("mm/mglru: use the common
    /// routine for dirty/writeback reactivation", author, mainline release and id unverified; in
    /// Debian's 6.12 from the stable update 6.12.114, so the 6.12.117 guests have it and the
    /// 6.12.107 s390x guest does not): `sort_folio` lets a locked, under-writeback or dirty file
    /// page through to isolation, where `shrink_folio_list` activates it (case 2, PGACTIVATE)
    /// and `lru_gen_add_folio` puts it back in the youngest generation; `isolate_folio` no longer
    /// clears PG_reclaim. Before (6.12.107 `sort_folio`, "waiting for writeback"), `sort_folio`
    /// keeps such a page: `folio_inc_gen(.., reclaiming=true)` sets PG_reclaim and moves it to
    /// the head of the second oldest generation (counted in PGREFILL, not PGSCAN), and
    /// `isolate_folio` clears PG_reclaim (= PG_readahead) of every page it takes.
    pub lru_gen_writeback_reactivates: bool,
    /// MGLRU lets an unevictable page through to the generic path ("mm/mglru: fix and remove
    /// redundant unevictable folio handling", author, mainline release and id unverified; Debian's
    /// 6.12 from the stable update 6.12.114): `sort_folio` returns false for it, so it is
    /// isolated (PGSCAN) and `shrink_folio_list` → `move_folios_to_lru` culls it; `evict_folios`
    /// leaves it on the list for `move_folios_to_lru`. Before (6.12.107), `sort_folio` culls it
    /// itself (`lru_gen_del_folio`, `folio_set_unevictable`, `lruvec_add_folio`,
    /// UNEVICTABLE_PGCULLED; counted in PGREFILL and not against the MIN_LRU_BATCH isolated)
    /// and `evict_folios` puts back an unevictable survivor at once (`folio_putback_lru`).
    pub lru_gen_sort_lets_unevictable_through: bool,

    // --- candidate fixes (profile/fixes.rs), as released in every built-in profile ---
    pub fixes: CandidateFixes,
}

/// `UFFD_FEATURE_*` (include/uapi/linux/userfaultfd.h).
pub mod uffd_features {
    pub const PAGEFAULT_FLAG_WP: u64 = 1 << 0;
    pub const EVENT_FORK: u64 = 1 << 1;
    pub const EVENT_REMAP: u64 = 1 << 2;
    pub const EVENT_REMOVE: u64 = 1 << 3;
    pub const MISSING_HUGETLBFS: u64 = 1 << 4;
    pub const MISSING_SHMEM: u64 = 1 << 5;
    pub const EVENT_UNMAP: u64 = 1 << 6;
    pub const SIGBUS: u64 = 1 << 7;
    pub const THREAD_ID: u64 = 1 << 8;
    pub const MINOR_HUGETLBFS: u64 = 1 << 9;
    pub const MINOR_SHMEM: u64 = 1 << 10;
    pub const EXACT_ADDRESS: u64 = 1 << 11;
    pub const WP_HUGETLBFS_SHMEM: u64 = 1 << 12;
    pub const WP_UNPOPULATED: u64 = 1 << 13;
    pub const POISON: u64 = 1 << 14;
    pub const WP_ASYNC: u64 = 1 << 15;
    pub const MOVE: u64 = 1 << 16;

    /// Names, for parsing and display.
    pub const NAMES: [(&str, u64); 17] = [
        ("PAGEFAULT_FLAG_WP", PAGEFAULT_FLAG_WP),
        ("EVENT_FORK", EVENT_FORK),
        ("EVENT_REMAP", EVENT_REMAP),
        ("EVENT_REMOVE", EVENT_REMOVE),
        ("MISSING_HUGETLBFS", MISSING_HUGETLBFS),
        ("MISSING_SHMEM", MISSING_SHMEM),
        ("EVENT_UNMAP", EVENT_UNMAP),
        ("SIGBUS", SIGBUS),
        ("THREAD_ID", THREAD_ID),
        ("MINOR_HUGETLBFS", MINOR_HUGETLBFS),
        ("MINOR_SHMEM", MINOR_SHMEM),
        ("EXACT_ADDRESS", EXACT_ADDRESS),
        ("WP_HUGETLBFS_SHMEM", WP_HUGETLBFS_SHMEM),
        ("WP_UNPOPULATED", WP_UNPOPULATED),
        ("POISON", POISON),
        ("WP_ASYNC", WP_ASYNC),
        ("MOVE", MOVE),
    ];

    /// UFFD_API_FEATURES of v4.13 (include/uapi/linux/userfaultfd.h): the events and the
    /// hugetlbfs/shmem MISSING support, without SIGBUS and THREAD_ID, which v4.14 added
    /// (2d6d6f5a09a9 "mm: userfaultfd: add feature to request for a signal delivery",
    /// 9d4ac934829a "userfaultfd: provide pid in userfault msg"; ids unverified, the SIGBUS
    /// patch was posted on 2017-07-24, after the v4.13 merge window).
    pub const API_4_13: u64 = EVENT_FORK | EVENT_REMAP | EVENT_REMOVE | EVENT_UNMAP | MISSING_HUGETLBFS | MISSING_SHMEM;

    /// UFFD_API_FEATURES of v4.14..v4.18 (PAGEFAULT_FLAG_WP is defined but not offered).
    pub const API_4_18: u64 =
        EVENT_FORK | EVENT_REMAP | EVENT_REMOVE | EVENT_UNMAP | MISSING_HUGETLBFS | MISSING_SHMEM | SIGBUS | THREAD_ID;

    /// UFFD_API_FEATURES of v6.12 (before arch masking).
    pub const API_6_12: u64 = API_4_18
        | PAGEFAULT_FLAG_WP
        | MINOR_HUGETLBFS
        | MINOR_SHMEM
        | EXACT_ADDRESS
        | WP_HUGETLBFS_SHMEM
        | WP_UNPOPULATED
        | POISON
        | WP_ASYNC
        | MOVE;
}

fn s390(name: &'static str) -> Profile {
    match name {
        "4.17" => Profile {
            name,
            release: (4, 17),
            arch: Arch::S390x,
            pgste_layout: PgsteLayout::Old,
            swp_exclusive: false,
            x86_swp_offset_inverted: false,
            pg_anon_exclusive: false,
            zap_unused_reset_clears_nodat: false,
            forbids_zeropage: ForbidsZeropage::HasPgste,
            zero_page_removal: ZeroPageRemoval::ZapOnSieEnable,
            ttu_young_check: true,
            vma_has_recency: false,
            unused_guard: UnusedGuard::None,
            try_to_migrate_split: false,
            lazyfree_refcount_check: false,
            new_anon_active: true,
            swapin_exclusive_writable: false,
            swapin_activates: true,
            workingset_anon: false,
            references_two_strikes: false,
            referenced_mlocks: false,
            remove_rmap_clears_mlock: true,
            lru_add_culls_unevictable: true,
            scan_balance_by_cost: false,
            madv_cold_pageout: false,
            min_free_kbytes_max: 65536,
            consider_reclaim_throttle: false,
            uffd_minor: false,
            uffd_wp: false,
            uffd_zeropage_checks_forbids: false,
            uffd_register_vma_find: false,
            mfill_pte_always_dirty: false,
            uffd_private_shmem_anon: false,
            mprotect_write_upgrade: false,
            mlock_fixup_mlocks_pages: false,
            uffd_remap_clears_unfeatured: false,
            proactive_reclaim_quarter_batch: false,
            hwpoison_ttu_flag: false,
            migration_entry_ad: false,
            swp_device_types: 2,
            pte_markers: false,
            uffd_wp_markers: false,
            uffd_unregister_resets_wp: false,
            uffd_close_resets_wp: false,
            uffd_wp_writenotify: false,
            vmscan_write_folio_tracepoint: false,
            uffd_api_features: uffd_features::API_4_18,
            lru_gen: false,
            lru_gen_activate_resets_refs: false,
            lru_gen_writeback_reactivates: false,
            lru_gen_sort_lets_unevictable_through: false,
            fixes: CandidateFixes::RELEASED,
        },
        "4.18" => Profile { name, release: (4, 18), unused_guard: UnusedGuard::UffdArmed, ..s390("4.17") },
        "4.13" => Profile {
            name,
            release: (4, 13),
            forbids_zeropage: ForbidsZeropage::UsesSkeys,
            zero_page_removal: ZeroPageRemoval::ZapOnSkeyEnable,
            swp_device_types: 0,
            uffd_api_features: uffd_features::API_4_13,
            lru_add_culls_unevictable: false,
            ..s390("4.17")
        },
        _ => Profile {
            name: "6.12",
            release: (6, 12),
            arch: Arch::S390x,
            pgste_layout: PgsteLayout::Old,
            swp_exclusive: true,
            x86_swp_offset_inverted: true,
            pg_anon_exclusive: true,
            zap_unused_reset_clears_nodat: true,
            forbids_zeropage: ForbidsZeropage::NoCowSharing,
            zero_page_removal: ZeroPageRemoval::UnshareOnCowDisable,
            ttu_young_check: false,
            vma_has_recency: true,
            unused_guard: UnusedGuard::UffdArmed,
            try_to_migrate_split: true,
            lazyfree_refcount_check: true,
            new_anon_active: false,
            swapin_exclusive_writable: true,
            swapin_activates: false,
            workingset_anon: true,
            references_two_strikes: true,
            referenced_mlocks: true,
            remove_rmap_clears_mlock: false,
            lru_add_culls_unevictable: true,
            scan_balance_by_cost: true,
            madv_cold_pageout: true,
            min_free_kbytes_max: 262144,
            consider_reclaim_throttle: true,
            uffd_minor: true,
            uffd_wp: true,
            uffd_zeropage_checks_forbids: true,
            uffd_register_vma_find: true,
            mfill_pte_always_dirty: true,
            uffd_private_shmem_anon: true,
            mprotect_write_upgrade: true,
            mlock_fixup_mlocks_pages: true,
            uffd_remap_clears_unfeatured: true,
            proactive_reclaim_quarter_batch: true,
            hwpoison_ttu_flag: true,
            migration_entry_ad: true,
            swp_device_types: 4,
            pte_markers: true,
            uffd_wp_markers: true,
            uffd_unregister_resets_wp: true,
            uffd_close_resets_wp: true,
            uffd_wp_writenotify: true,
            vmscan_write_folio_tracepoint: true,
            uffd_api_features: uffd_features::API_6_12,
            lru_gen: false,
            lru_gen_activate_resets_refs: true,
            lru_gen_writeback_reactivates: true,
            lru_gen_sort_lets_unevictable_through: true,
            fixes: CandidateFixes::RELEASED,
        },
    }
}

/// The names of the built-in profiles.
pub const PROFILE_NAMES: [&str; 4] = ["4.13", "4.17", "4.18", "6.12"];

impl Profile {
    /// The built-in profile `name` for `arch`, or a derived one defined in this process
    /// (`Profile::derive`).
    pub fn get(name: &str, arch: Arch) -> Result<Profile> {
        let Some(&n) = PROFILE_NAMES.iter().find(|n| **n == name) else {
            if let Some(p) = derive::lookup(name, arch) {
                return Ok(p);
            }
            if let Some(p) = derive::variant(name, arch) {
                return p;
            }
            let derived = derive::derived_names();
            let also = if derived.is_empty() { String::new() } else { format!("; derived: {}", derived.join(", ")) };
            return Err(Error::invalid(format!(
                "unknown profile {name:?}; known profiles: {}, {}{also} (Profile.derive or --set defines a variant)",
                PROFILE_NAMES.join(", "),
                derive::VARIANTS.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
            )));
        };
        let p = s390(n);
        Ok(Profile { arch, ..p })
    }

    /// Whether a snapshot can store this profile: its name is a built-in or well-formed derived
    /// one (its switches are stored beside it).
    pub fn check_storable(&self) -> Result<()> {
        check_builtin_name(self.name)
    }

    /// Parse `name` and `arch` names.
    pub fn by_names(name: &str, arch: &str) -> Result<Profile> {
        Profile::get(name, Arch::parse(arch)?)
    }

    /// The swap-entry format of this profile's arch and release.
    #[inline]
    pub fn swp_format(&self) -> crate::arch::SwpFormat {
        crate::arch::SwpFormat { arch: self.arch, x86_offset_inverted: self.x86_swp_offset_inverted }
    }

    /// Whether the arch can track write-protect faults (HAVE_ARCH_USERFAULTFD_WP): s390 has no
    /// free software PTE bit for uffd-wp.
    pub fn arch_has_uffd_wp(&self) -> bool {
        match self.arch {
            Arch::S390x => false,
            Arch::X86_64 => true,
        }
    }

    /// Whether MINOR faults are available: the release has them and the arch selects
    /// HAVE_ARCH_USERFAULTFD_MINOR (s390 does not).
    pub fn arch_has_uffd_minor(&self) -> bool {
        match self.arch {
            Arch::S390x => false,
            Arch::X86_64 => true,
        }
    }

    /// `/sys/kernel/mm/lru_gen/enabled` as the kernel boots with `lru_gen` on: LRU_GEN_CORE,
    /// plus LRU_GEN_MM_WALK and LRU_GEN_NONLEAF_YOUNG where the arch has a hardware accessed
    /// bit (`arch_has_hw_pte_young`, `arch_has_hw_nonleaf_pmd_young`: x86_64 0x0007; s390, whose
    /// young bit is emulated by invalid PTEs, 0x0001). 0 with `lru_gen` off.
    pub fn lru_gen_caps(&self) -> u64 {
        use crate::vmscan::lru::lru_gen_folio::caps::*;
        if !self.lru_gen {
            return 0;
        }
        match self.arch {
            Arch::S390x => LRU_GEN_CORE,
            Arch::X86_64 => LRU_GEN_CORE | LRU_GEN_MM_WALK | LRU_GEN_NONLEAF_YOUNG,
        }
    }

    /// Refuse switch values the release cannot have: `lru_gen` before v6.1 (MGLRU, and the
    /// anon workingset shadows its refault detection needs, do not exist there).
    pub fn check_switches(&self) -> Result<()> {
        if self.lru_gen {
            let mut why = Vec::new();
            if self.release < (6, 1) {
                why.push(format!(
                    "MGLRU (CONFIG_LRU_GEN) was merged in v6.1 and profile {:?} models v{}.{}",
                    self.name, self.release.0, self.release.1
                ));
            }
            if !self.workingset_anon {
                why.push(
                    "lru_gen_eviction leaves its shadows in the swap cache, which needs workingset_anon (v5.9)".into(),
                );
            }
            if !why.is_empty() {
                return Err(Error::Profile(format!(
                    "lru_gen cannot be on in this profile: {}; derive from \"6.12\" instead",
                    why.join("; ")
                )));
            }
        }
        Ok(())
    }

    /// The features UFFDIO_API offers on this profile and arch: `userfaultfd_api`
    /// (fs/userfaultfd.c). 4.13..4.18 offer `UFFD_API_FEATURES` as it is and refuse any other
    /// bit (`if (uffdio_api.api != UFFD_API || (features & ~UFFD_API_FEATURES)) goto err_out;`,
    /// -EINVAL). 6.12 masks it first: `#ifndef CONFIG_HAVE_ARCH_USERFAULTFD_MINOR` drops
    /// MINOR_HUGETLBFS|MINOR_SHMEM, `#ifndef CONFIG_HAVE_ARCH_USERFAULTFD_WP` drops
    /// PAGEFAULT_FLAG_WP and `#ifndef CONFIG_PTE_MARKER_UFFD_WP` (which depends on it) drops
    /// WP_HUGETLBFS_SHMEM, WP_UNPOPULATED and WP_ASYNC; since "Fix userfaultfd_api to return
    /// EINVAL as expected" (v6.10, CVE-2024-41027) it then refuses `features &
    /// ~uffdio_api.features`, the masked set, which `Kernel::uffdio_api` does too.
    /// Simplified: 6.12's -EPERM for EVENT_FORK without CAP_SYS_PTRACE (the model's processes
    /// are privileged) and its `features |= UFFD_FEATURE_WP_UNPOPULATED` for WP_ASYNC (the
    /// model has no WP_ASYNC behaviour) are not modelled.
    pub fn uffd_features_offered(&self) -> u64 {
        use uffd_features::*;
        let mut f = self.uffd_api_features;
        if !(self.uffd_minor && self.arch_has_uffd_minor()) {
            f &= !(MINOR_HUGETLBFS | MINOR_SHMEM);
        }
        if !(self.uffd_wp && self.arch_has_uffd_wp()) {
            f &= !(PAGEFAULT_FLAG_WP | WP_HUGETLBFS_SHMEM | WP_UNPOPULATED | WP_ASYNC);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_profiles_resolve() {
        for n in PROFILE_NAMES {
            let p = Profile::by_names(n, "s390x").unwrap();
            assert_eq!(p.name, n);
            assert_eq!(p.arch, Arch::S390x);
        }
    }

    #[test]
    fn unknown_profile_lists_the_known_ones() {
        let e = Profile::by_names("5.4", "s390x").unwrap_err().to_string();
        assert!(e.contains("4.17") && e.contains("4.18") && e.contains("6.12"), "{e}");
        let e = Profile::by_names("4.18", "sparc").unwrap_err().to_string();
        assert!(e.contains("s390x"), "{e}");
    }

    #[test]
    fn the_seed_fix_is_the_only_difference_between_417_and_418() {
        let a = Profile::get("4.17", Arch::S390x).unwrap();
        let b = Profile::get("4.18", Arch::S390x).unwrap();
        assert_eq!(a.unused_guard, UnusedGuard::None);
        assert_eq!(b.unused_guard, UnusedGuard::UffdArmed);
        assert_eq!(Profile { name: "4.17", release: (4, 17), unused_guard: UnusedGuard::None, ..b }, a);
    }

    /// `userfaultfd_api` (fs/userfaultfd.c) checks `features & ~UFFD_API_FEATURES`; v4.13's
    /// include/uapi/linux/userfaultfd.h has no SIGBUS (bit 7) or THREAD_ID (bit 8), which came
    /// in v4.14, so a 4.13 UFFDIO_API asking for them is -EINVAL.
    #[test]
    fn userfaultfd_api_offers_sigbus_and_thread_id_from_v4_14_only() {
        use uffd_features::*;
        for arch in [Arch::S390x, Arch::X86_64] {
            let f = Profile::get("4.13", arch).unwrap().uffd_features_offered();
            assert_eq!(f & (SIGBUS | THREAD_ID), 0, "4.13 {arch:?}");
            assert_ne!(f & (EVENT_UNMAP | MISSING_SHMEM), 0);
            for n in ["4.17", "4.18", "6.12"] {
                let f = Profile::get(n, arch).unwrap().uffd_features_offered();
                assert_eq!(f & (SIGBUS | THREAD_ID), SIGBUS | THREAD_ID, "{n} {arch:?}");
            }
        }
    }

    #[test]
    fn s390_never_offers_minor_or_wp_features() {
        use uffd_features::*;
        for n in PROFILE_NAMES {
            let f = Profile::get(n, Arch::S390x).unwrap().uffd_features_offered();
            assert_eq!(f & (MINOR_SHMEM | MINOR_HUGETLBFS | WP_HUGETLBFS_SHMEM | WP_ASYNC), 0, "{n}");
            assert_ne!(f & EVENT_REMOVE, 0);
        }
    }
}
